"""Test nodes: a node root in a temporary folder with a real containerd daemon running in it, restarted the
way a node's systemd would, through restart-containerd.sh. Shared by the integration and e2e tiers."""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from components.core.flavors import FLAVORS
from tests.integration.helpers import INPUTS, run_script

HERE = Path(__file__).resolve().parent
RESTART = HERE.parent / "integration" / "restart-containerd.sh"
APT_HINT = ("apt-get install -y containerd runc openssh-server openssh-client shellcheck "
            "(see tests/integration/README.md)")


def require(tool: str, package: str) -> str:
    found = shutil.which(tool) or next((p for p in (f"/usr/sbin/{tool}", f"/sbin/{tool}") if os.path.exists(p)),
                                       None)
    if not found:
        pytest.fail(f"the integration tier needs {tool} (Debian package {package}): {APT_HINT}")
    return found


def containerd_major(binary: str) -> int:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout.split()
    return int(out[2].lstrip("v").split(".")[0])


# ------------------------------------------------------------------------------------------ nodes
_PATHS = ("/var/lib/containerd", "/run/containerd/containerd.sock", "/run/containerd", "/opt/containerd",
          "/var/run/nri/nri.sock")


def localize(text: str, root: Path) -> str:
    """A containerd config with every default path moved under the node root, and NRI off (its socket would be
    shared by every daemon on this machine)."""
    for q in ('"', "'"):
        for p in _PATHS:
            text = text.replace(f"{q}{p}{q}", f"{q}{root}{p}{q}")
    text = re.sub(r"(\[plugins\.['\"]io\.containerd\.nri\.v1\.nri['\"]\]\n\s*disable = )false", r"\1true", text)
    # containerd 2.3's default config loads erofs plugins; without mkfs.erofs (Debian erofs-utils) on the machine
    # its transfer service, and with it the CRI plugin, fail to load. These test nodes do not use erofs.
    if "io.containerd.differ.v1.erofs" in text and not shutil.which("mkfs.erofs"):
        erofs = ", ".join(f"'io.containerd.{p}.erofs'" for p in ("differ.v1", "snapshotter.v1", "mount-handler.v1"))
        text = text.replace("disabled_plugins = []", f"disabled_plugins = [{erofs}]", 1)
    return text


@dataclass
class Node:
    """A node root in a temporary folder, with containerd running in it like on a real node."""

    root: Path
    flavor: str
    containerd: str
    refuse_if: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    #: How the node's distribution renders the loaded config before containerd starts (restart-containerd.sh's
    #: RENDER: base:TEMPLATE for k3s/rke2, snap:TEMPLATE for microk8s), or None: containerd loads it as it is.
    render: str | None = None

    @property
    def config(self) -> Path:
        """The file the node scripts edit."""
        return self.root / FLAVORS[self.flavor].config_path.lstrip("/")

    @property
    def loaded(self) -> Path:
        """The file containerd is started on."""
        return self.root / FLAVORS[self.flavor].loaded_config_path.lstrip("/")

    @property
    def socket(self) -> Path:
        return self.root / FLAVORS[self.flavor].socket.lstrip("/")

    def _settings(self) -> dict[str, str]:
        """restart-containerd.sh's settings for this node (those that differ from its defaults)."""
        f = FLAVORS[self.flavor]
        env = {"CONTAINERD_BIN": self.containerd}
        if f.loaded_config_path != "/etc/containerd/config.toml":
            env["CONFIG"] = f.loaded_config_path.lstrip("/")
        if f.socket != "/run/containerd/containerd.sock":
            env["SOCKET"] = f.socket.lstrip("/")
        if self.render:
            env["RENDER"] = self.render
        if self.refuse_if:
            env["REFUSE_IF"] = self.refuse_if
        return env

    @property
    def restart(self) -> str:
        """WSF_RESTART for this node: assignments, then the stand-in for systemctl."""
        env = " ".join(f"{k}='{v}'" for k, v in self._settings().items())
        return f"{env} sh '{RESTART}'"

    def seed(self, text: str | None = None) -> bytes:
        """Write the node's initial config (default: `containerd config default` of its containerd; a version 1
        file for containerd-legacy) with paths under the root, start containerd on it, return its bytes."""
        if text is None:
            if self.flavor == "containerd-legacy":
                text = (INPUTS / "containerd-legacy.toml").read_text()
            else:
                text = subprocess.run([self.containerd, "config", "default"], capture_output=True, text=True,
                                      check=True).stdout
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(localize(text, self.root))
        self.start()
        return self.config.read_bytes()

    def start(self) -> None:
        env = dict(os.environ, WSF_NODE_ROOT=str(self.root), **self._settings())
        env.pop("REFUSE_IF", None)
        result = subprocess.run(["sh", str(RESTART)], env=env, capture_output=True, text=True, timeout=90)
        if result.returncode != 0:
            raise AssertionError(f"containerd did not start on {self.loaded}: {result.stderr.strip()}")

    def run(self, script: str, **kw) -> subprocess.CompletedProcess[str]:
        # The node's own containerd first on PATH: the script validates with the containerd it finds.
        env = {"PATH": f"{Path(self.containerd).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        env.update(self.extra_env)
        env.update(kw.pop("env", {}))
        return run_script(script, self.root, restart=kw.pop("restart", self.restart), env=env, **kw)

    def pid(self) -> int | None:
        p = self.root / "run/containerd-test-daemon.pid"
        return int(p.read_text()) if p.exists() else None

    def restarts(self) -> int:
        p = self.root / "var/log/restarts"
        return len(p.read_text().splitlines()) if p.exists() else 0

    def dump(self) -> dict:
        """`containerd --config FILE config dump`, parsed."""
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomlkit as tomllib

        out = subprocess.run([self.containerd, "--config", str(self.loaded), "config", "dump"],
                             capture_output=True, text=True, check=True).stdout
        return tomllib.loads(out)

    def dump_runtime_tables(self) -> dict[str, dict]:
        """handler -> its whole runtime table (options included) as containerd reads the loaded config."""
        plugins = self.dump()["plugins"]
        if containerd_major(self.containerd) == 1:
            runtimes = plugins["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
        else:
            runtimes = plugins["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]
        return dict(runtimes)

    def dump_runtimes(self) -> dict[str, str]:
        """handler -> runtime_type as containerd reads the loaded config."""
        return {name: t["runtime_type"] for name, t in self.dump_runtime_tables().items()}

    def loaded_runtimes(self) -> dict[str, str]:
        """handler -> runtime_type as the running daemon's CRI plugin loaded them (from its start-up log)."""
        log = (self.root / "var/log/containerd.log").read_text()
        last = log.rsplit("=== restart-containerd.sh: starting", 1)[-1]
        if containerd_major(self.containerd) == 1:
            line = next(ln for ln in last.splitlines() if "Start cri plugin with config" in ln)
            section = line.split("Runtimes:map[", 1)[1]
            return dict(re.findall(r"(?:^| )([A-Za-z0-9_.-]+):\{Type:(\S+) ", section))
        line = next(ln for ln in last.splitlines() if 'msg="starting cri plugin"' in ln)
        raw = line.split(' config="', 1)[1].rsplit('"', 1)[0]
        cfg = json.loads(raw.encode().decode("unicode_escape"))
        return {name: r["runtimeType"] for name, r in cfg["containerd"]["runtimes"].items()}

    def cri_ok(self) -> bool:
        out = subprocess.run(["ctr", "--address", str(self.socket), "plugins", "ls"], capture_output=True,
                             text=True)
        return any(ln.split()[:2] == ["io.containerd.grpc.v1", "cri"] and ln.split()[-1] == "ok"
                   for ln in out.stdout.splitlines())

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        stop_pid(pid)


def stop_pid(pid: int) -> None:
    """SIGTERM, then SIGKILL after 5 s; reaps it when it is our child (see `subreaper`)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        for _ in range(50):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:  # not ours: wait until it is gone or a zombie
                try:
                    if Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z":
                        return
                except FileNotFoundError:
                    return
            time.sleep(0.1)



def become_subreaper() -> None:
    """Make this process the reaper of the daemons it starts through scripts (which exit and orphan them), so
    that stopped daemons do not stay behind as zombies of a pid 1 that does not reap."""
    pr_set_child_subreaper = 36
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def reap_children() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
