"""Fixtures of the integration tier: real containerd daemons in temporary node roots, and real sshd test hosts.

Everything listens on unix sockets inside the node roots or on 127.0.0.1; every daemon started here is
stopped by pid at teardown. Missing prerequisites FAIL the tests, saying what to install.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from components.core.flavors import FLAVORS

from .helpers import INPUTS, last_line, run_script

HERE = Path(__file__).resolve().parent
RESTART = HERE / "restart-containerd.sh"
BUILD_CONTAINERD2 = HERE / "build-containerd2.sh"
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


@pytest.fixture(scope="session")
def containerd1() -> str:
    """Debian's containerd (1.6 on Debian 12)."""
    binary = require("containerd", "containerd")
    require("ctr", "containerd")
    require("runc", "runc")
    if containerd_major(binary) != 1:
        pytest.fail(f"{binary} is not containerd 1.x; the tier expects Debian 12's containerd 1.6")
    return binary


@pytest.fixture(scope="session")
def containerd2() -> str:
    """containerd 2.x built from the Go module proxy into /var/cache/wasm-shim-fleet/containerd2 (idempotent)."""
    if not shutil.which("go"):
        pytest.fail("containerd-2 tests need Go (>= 1.23) to build containerd 2.x with "
                    f"{BUILD_CONTAINERD2}; install Go or run that script once")
    result = subprocess.run(["sh", str(BUILD_CONTAINERD2)], capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        pytest.fail(f"building containerd 2.x failed: {result.stderr[-2000:]}")
    binary = last_line(result.stdout)
    assert containerd_major(binary) == 2
    return binary


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
    return text


@dataclass
class Node:
    """A node root in a temporary folder, with containerd running in it like on a real node."""

    root: Path
    flavor: str
    containerd: str
    refuse_if: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.root / FLAVORS[self.flavor].config_path.lstrip("/")

    @property
    def socket(self) -> Path:
        return self.root / "run/containerd/containerd.sock"

    @property
    def restart(self) -> str:
        """CONTAINERD_RESTART for this node: assignments, then the stand-in for systemctl."""
        env = f"CONTAINERD_BIN='{self.containerd}'"
        if self.refuse_if:
            env += f" REFUSE_IF='{self.refuse_if}'"
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
        env = dict(os.environ, NODE_ROOT=str(self.root), CONTAINERD_BIN=self.containerd)
        subprocess.run(["sh", str(RESTART)], env=env, check=True, capture_output=True, text=True, timeout=60)

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

        out = subprocess.run([self.containerd, "--config", str(self.config), "config", "dump"],
                             capture_output=True, text=True, check=True).stdout
        return tomllib.loads(out)

    def dump_runtimes(self) -> dict[str, str]:
        """handler -> runtime_type as containerd reads the config file."""
        plugins = self.dump()["plugins"]
        if containerd_major(self.containerd) == 1:
            runtimes = plugins["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
        else:
            runtimes = plugins["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]
        return {name: t["runtime_type"] for name, t in runtimes.items()}

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


@pytest.fixture(scope="session", autouse=True)
def subreaper() -> Iterator[None]:
    """Make this test process the reaper of the daemons it starts through scripts (which exit and orphan them),
    so that stopped daemons do not stay behind as zombies of a pid 1 that does not reap."""
    import ctypes

    pr_set_child_subreaper = 36
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)
    yield
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break


@pytest.fixture
def make_node() -> Iterator:
    """make_node(flavor, containerd_binary) -> Node; daemons stopped and roots removed at teardown.
    Roots are short paths in /tmp: unix socket paths are limited to 108 bytes."""
    nodes: list[Node] = []

    def make(flavor: str, binary: str, **kw) -> Node:
        root = Path(tempfile.mkdtemp(prefix="wsf-", dir="/tmp"))
        node = Node(root, flavor, binary, **kw)
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.stop()
    for node in nodes:
        subprocess.run(["umount", "-l", str(node.root)], capture_output=True)
        shutil.rmtree(node.root, ignore_errors=True)


# ------------------------------------------------------------------------------------------- sshd
@dataclass
class SshHost:
    """One Debian openssh-server listening on 127.0.0.1:port, root login with the test key only."""

    port: int
    host_key: str  # "ssh-ed25519 AAAA..." as a stack's nodes[].hostKey pins it
    key_file: Path
    known_hosts: Path
    process: subprocess.Popen

    def ssh(self, command: str, *options: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run `command` as root the way pulumi-command's remote.Command does: one exec request carrying the
        whole string (the login shell runs it with -c), no stdin."""
        argv = ["ssh", "-n", "-p", str(self.port), "-i", str(self.key_file), "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "LogLevel=ERROR", *options,
                "root@127.0.0.1", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ssh_hosts(tmp_path_factory) -> Iterator[list[SshHost]]:
    """Three sshd test hosts on loopback (different ports), key auth with a key generated here."""
    sshd = require("sshd", "openssh-server")
    require("ssh", "openssh-client")
    keygen = require("ssh-keygen", "openssh-client")
    work = tmp_path_factory.mktemp("sshd")
    key = work / "id_ed25519"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "wsf-test", "-f", str(key)], check=True)
    (work / "authorized_keys").write_text((work / "id_ed25519.pub").read_text())
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    hosts: list[SshHost] = []
    try:
        for i in range(3):
            host_key = work / f"host{i}_ed25519"
            subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
            port = _free_port()
            cfg = work / f"sshd{i}.conf"
            cfg.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {work}/sshd{i}.pid
AuthorizedKeysFile {work}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
MaxSessions 20
MaxStartups 50
""")
            check = subprocess.run([sshd, "-t", "-f", str(cfg)], capture_output=True, text=True)
            if check.returncode != 0:
                pytest.fail(f"sshd rejects its test config: {check.stderr}")
            pub = " ".join((work / f"host{i}_ed25519.pub").read_text().split()[:2])
            known = work / f"known_hosts{i}"
            known.write_text(f"[127.0.0.1]:{port} {pub}\n")
            with open(work / f"sshd{i}.log", "w") as log:  # the child keeps its own copy of the descriptor
                proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(cfg)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=log)
            host = SshHost(port, pub, key, known, proc)
            hosts.append(host)
            for _ in range(100):
                if host.ssh("true", timeout=10).returncode == 0:
                    break
                if proc.poll() is not None:
                    pytest.fail(f"sshd exited: {(work / f'sshd{i}.log').read_text()}")
                time.sleep(0.1)
            else:
                pytest.fail(f"sshd on 127.0.0.1:{port} does not accept the test key")
        yield hosts
    finally:
        for host in hosts:
            host.process.terminate()
            try:
                host.process.wait(10)
            except subprocess.TimeoutExpired:
                host.process.kill()
                host.process.wait()
