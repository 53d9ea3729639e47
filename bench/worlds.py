"""What the engine and SSH-host benchmarks run against: the e2e tier's world (tests/e2e/conftest.py
`open_fleet`: control plane, kwok Nodes, node roots with containerd, sshd hosts, one Automation API stack),
plus a local https artifact server the hosts trust through CURL_CA_BUNDLE.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tests.e2e.cluster import ToolchainMissing, ensure_toolchain
from tests.e2e.conftest import ARTIFACTS


class Unavailable(RuntimeError):
    """A prerequisite (toolchain, containerd, sshd) is missing: the metric is skipped with this reason."""


def toolchain() -> Path:
    try:
        return ensure_toolchain()
    except ToolchainMissing as exc:
        raise Unavailable(f"real-engine toolchain absent: {str(exc).splitlines()[0]}") \
            from None


@contextlib.contextmanager
def on_path(bin_dir: Path) -> Iterator[None]:
    """The toolchain first on PATH (the engine finds its provider plugins there), as the e2e fixture does."""
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{old}"
    try:
        yield
    finally:
        os.environ["PATH"] = old


@contextlib.contextmanager
def world(bin_dir: Path, node_names: list[str], *, ssh_hosts: bool, host_env: dict[str, str] | None = None):
    """tests/e2e/conftest.py's open_fleet, with its pytest.fail (missing containerd/sshd) turned into
    Unavailable."""
    import pytest

    from tests.e2e.conftest import open_fleet

    with on_path(bin_dir), engine_tmpdir():
        try:
            with open_fleet(bin_dir, node_names, ssh_hosts=ssh_hosts, host_env=host_env, stack_name="bench",
                            prefix="wsf-bench-") as fleet:
                yield fleet
        except pytest.fail.Exception as exc:
            raise Unavailable(str(exc)) from None


@contextlib.contextmanager
def engine_tmpdir() -> Iterator[None]:
    """TMPDIR of the engine runs (and their plugins) is a folder removed afterwards, as in the e2e tier: the
    Kubernetes provider writes the kubeconfig it is given, client key included, to a temporary file it never
    removes."""
    tmp = tempfile.mkdtemp(prefix="wsf-bench-tmp-", dir="/tmp")
    old = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = tmp  # the Automation API passes os.environ on to the pulumi CLI
    tempfile.tempdir = None  # tempfile caches the folder it first found: look again, here and after
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old
        tempfile.tempdir = None
        shutil.rmtree(tmp, ignore_errors=True)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def https_artifacts() -> Iterator[tuple[str, Path]]:
    """examples/artifacts over https://127.0.0.1:<port>/ with a fresh self-signed certificate.
    Yields (base URL, certificate file for CURL_CA_BUNDLE)."""
    work = Path(tempfile.mkdtemp(prefix="wsf-bench-https-"))
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1",
                    "-addext", "basicConstraints=critical,CA:TRUE"], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    handler = functools.partial(_Quiet, directory=str(ARTIFACTS))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        for p in (cert, key):
            p.unlink(missing_ok=True)
        work.rmdir()


def served(raw: dict, base: str | None) -> dict:
    """The config with every file:// artifact URL of examples/artifacts moved to `base` (None: as it is)."""
    if base:
        for entries in raw["shims"].values():
            for e in entries:
                e["url"] = e["url"].replace(f"file://{ARTIFACTS}", base)
    return raw


class EventClock:
    """on_event callback: when the engine first started and last finished a step on a command resource, and
    which URNs it touched."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        #: WSF_BENCH_PROGRESS=N: print to stderr how long the first N, 2N, ... resource steps took
        self.progress = int(os.environ.get("WSF_BENCH_PROGRESS", "0") or 0)
        self.urns: dict[str, str] = {}  # urn -> op
        self.first_start: float | None = None
        self.last_done: float | None = None
        self.in_flight = 0
        self.max_in_flight = 0  # node commands the engine had started and not finished, at most

    def __call__(self, event) -> None:
        now = time.monotonic()
        pre, out = event.resource_pre_event, event.res_outputs_event
        if pre is not None:
            self.urns[pre.metadata.urn] = str(getattr(pre.metadata.op, "value", pre.metadata.op))
            if self.progress and len(self.urns) % self.progress == 0:
                print(f"# {len(self.urns)} resource steps after {now - self.start:.1f} s", file=sys.stderr, flush=True)
            if "command:remote:Command" in pre.metadata.type:
                self.first_start = now if self.first_start is None else self.first_start
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if out is not None and "command:remote:Command" in out.metadata.type:
            self.last_done = now
            self.in_flight -= 1

    @property
    def command_span(self) -> float | None:
        if self.first_start is None or self.last_done is None:
            return None
        return self.last_done - self.first_start


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


@contextlib.contextmanager
def hosts_world(bin_dir: Path, node_names: list[str], host_env: dict[str, str] | None = None):
    """Node roots with their own containerd and sshd test hosts (tests/harness), one Automation API stack of the
    project's program, and no control plane: the stack renders its Kubernetes manifests (kubernetes.renderDir)
    instead of applying them. Enough for what happens on the nodes (restarts, their order); the `hosts` group
    measures the same with a control plane and kwok Nodes."""
    import pytest

    from tests.e2e.conftest import PROJECT, Fleet, _program
    from tests.e2e.engine import offline_stack
    from tests.harness.nodes import Node, become_subreaper, reap_children, require
    from tests.harness.sshd import start_hosts, stop_hosts

    class RenderedFleet(Fleet):
        def config(self, pools, sha_override=None):
            raw = super().config(pools, sha_override)
            raw["kubernetes"] = {"renderDir": str(self.workdir / "rendered")}
            return raw

    class NoCluster:
        kubeconfig = None

    nodes: dict = {}
    hosts: list = []
    work = Path(tempfile.mkdtemp(prefix="wsf-bench-h-", dir="/tmp"))
    with on_path(bin_dir), engine_tmpdir():
        try:
            containerd = require("containerd", "containerd")
            require("ctr", "containerd")
            become_subreaper()
            for name in node_names:
                root = work / name
                root.mkdir()
                nodes[name] = Node(root, "containerd-1", containerd)
            originals = {name: node.seed() for name, node in nodes.items()}
            (work / "sshd").mkdir()
            hosts = start_hosts(work / "sshd", len(node_names),
                                env=[{"WSF_NODE_ROOT": str(nodes[n].root), **(host_env or {})} for n in node_names])
            stack = offline_stack(bin_dir, work, PROJECT, "bench-hosts", _program)
            yield RenderedFleet(NoCluster(), nodes, dict(zip(node_names, hosts, strict=True)), originals, stack,
                                work, nodes[node_names[0]].restart)
        except pytest.fail.Exception as exc:
            raise Unavailable(str(exc)) from None
        finally:
            stop_hosts(hosts)
            for node in nodes.values():
                node.stop()
            reap_children()
            shutil.rmtree(work, ignore_errors=True)
