"""Shared by the node-script tests (fast tier and integration tier): sample stacks, running a script the way
the program does, and snapshots of a node root."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

from components.core import nodescript
from components.core.nodescript import with_env
from components.core.plan import NodePlan, plan_from_config
from tests.harness import artifacts
from tests.harness.artifacts import sums as artifact_sums

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = artifacts.DIR
GOLDEN = REPO / "tests" / "golden"
INPUTS = GOLDEN / "inputs"

# (artifact file, member or None, shim, version)
SAMPLE = (
    ("slight-v1.2.3-linux-amd64.tar.gz", "containerd-shim-slight-v1", "slight", "1.2.3"),
    ("slight-v1.3.0-linux-amd64.tar.gz", "bin/containerd-shim-slight-v1", "slight", "1.3.0"),
    ("containerd-shim-spin-v0.3.0-v1", None, "spin", "0.3.0"),
)


def host_key(host: str) -> str:
    """A pinned host key for a sample node (SSH nodes need one): the host's name, base64 shaped."""
    import base64

    return "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + base64.b64encode(host.encode()).decode().rstrip("=")


def sample_raw(flavor: str = "containerd-1", *, urls: str = "file", nodes: tuple[str, ...] = ("node-a",),
               releases: tuple[str, ...] = ("slight@1.2.3", "slight@1.3.0", "spin@0.3.0"),
               sha_override: dict[str, str] | None = None, url_override: dict[str, str] | None = None,
               restart: str | None = None) -> dict[str, Any]:
    """A stack config with the fake artifacts of examples/artifacts; `urls='https'` gives machine-independent
    URLs (for golden files), `urls='file'` URLs a script can really fetch here."""
    sums = artifact_sums()
    shims: dict[str, list[dict[str, Any]]] = {}
    for fname, member, shim, version in SAMPLE:
        key = f"{shim}@{version}"
        url = (f"file://{ARTIFACTS / fname}" if urls == "file"
               else f"https://artifacts.example.org/{shim}/{version}/{fname}")
        entry: dict[str, Any] = {"version": version, "url": (url_override or {}).get(key, url),
                                 "sha256": (sha_override or {}).get(key, sums[fname])}
        if member:
            entry["binary"] = member
        shims.setdefault(shim, []).append(entry)
    pool: dict[str, Any] = {"name": "pool-a", "containerd": flavor, "releases": list(releases),
                            "nodes": [{"name": n, "host": f"10.0.0.{4 + i}", "hostKey": host_key(f"10.0.0.{4 + i}")}
                                      for i, n in enumerate(nodes)]}
    if restart is not None:
        pool["restart"] = restart
    return {
        "shims": shims,
        "nodePools": [pool],
        "ssh": {"user": "root", "port": 22, "privateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n"},
    }


def sample_node(flavor: str = "containerd-1", node: str = "node-a", **kw: Any) -> NodePlan:
    _, plan = plan_from_config(sample_raw(flavor, **kw))
    assert plan.errors == [], plan.errors
    return plan.node(node)


def minimal_path(tmp: Path) -> str:
    """A PATH holding only sh, coreutils, tar and gzip: the tools the script contract allows (no curl needed
    for file:// URLs; flock, ctr, crictl and containerd are optional and absent here)."""
    bindir = tmp / "minimal-bin"
    if bindir.exists():
        return str(bindir)
    bindir.mkdir(parents=True)
    names: set[str] = set()
    try:
        listing = subprocess.run(["dpkg", "-L", "coreutils"], capture_output=True, text=True, check=True).stdout
        names = {Path(p).name for p in listing.split() if "/bin/" in p}
    except (OSError, subprocess.CalledProcessError):
        names = {"cat", "cp", "mv", "rm", "mkdir", "chmod", "head", "tail", "sha256sum", "date", "stat",
                 "readlink", "truncate", "dirname", "basename", "sleep", "pwd", "echo", "printf", "test", "[",
                 "true", "false", "env", "ls"}
    for name in sorted(names | {"sh", "tar", "gzip"}):
        src = shutil.which(name)
        if src:
            (bindir / name).symlink_to(src)
    return str(bindir)


def run_script(script: str, root: Path, *, restart: str = ":", shell: str = "sh", path: str | None = None,
               env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a node script the way the program does over SSH: WSF_NODE_ROOT and WSF_RESTART as assignments
    in front of the script text (with_env), the text given to a shell as a command, no stdin."""
    text = with_env(script, {"WSF_NODE_ROOT": str(root), "WSF_RESTART": restart})
    full_env = {"PATH": path or os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LANG": "C"}
    full_env.update(env or {})
    return subprocess.run([shutil.which(shell) or shell, "-c", text],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, env=full_env, timeout=timeout)


def snapshot(root: Path, ignore: tuple[str, ...] = ()) -> dict[str, tuple[int, str]]:
    """Every path under root -> (mode, sha256 or '' for folders): compare two to prove nothing changed."""
    out: dict[str, tuple[int, str]] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if any(rel == i or rel.startswith(i + "/") for i in ignore):
            continue
        st = p.lstat()
        digest = "" if stat.S_ISDIR(st.st_mode) else hashlib.sha256(p.read_bytes()).hexdigest()
        out[rel] = (stat.S_IMODE(st.st_mode), digest)
    return out


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


#: The kit's step marker, and the one of a debug kit that kills its own run at one step.
STEP = 'step() {\n    [ -z "${2:-}" ] || say "$2"\n}\n'


def debug_kit(kill_at: str) -> str:
    """A kit built only by the tests: the node kit whose `step` kills the run with SIGKILL at step `kill_at`
    (to prove that a run interrupted there converges when re-run). Never sent by the program."""
    text = nodescript.kit_text()
    assert text.count(STEP) == 1, "the kit's step() changed: update tests/integration/helpers.py"
    killing = (f'step() {{\n    [ -z "${{2:-}}" ] || say "$2"\n'
               f'    if [ "$1" = {nodescript.shq(kill_at)} ]; then kill -9 $$; fi\n}}\n')
    return text.replace(STEP, killing)


def install_kit(root: Path, text: str | None = None) -> str:
    """Deliver a kit into a node root the way the kit resource does (kit/<sha256>/wsf.sh, then `selected`);
    returns its sha256."""
    text = nodescript.kit_text() if text is None else text
    sha = nodescript.kit_sha256(text)
    folder = root / nodescript.KIT_DIR.lstrip("/") / sha
    folder.mkdir(parents=True, exist_ok=True)
    (folder / nodescript.KIT_NAME).write_text(text)
    (folder.parent / "selected").write_text(sha + "\n")
    return sha
