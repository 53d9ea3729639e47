"""Fixtures of the integration tier: real containerd daemons in temporary node roots, and real sshd test hosts.

Everything listens on unix sockets inside the node roots or on 127.0.0.1; every daemon started here is
stopped by pid at teardown. Missing prerequisites FAIL the tests, saying what to install. The harnesses
themselves live in tests/harness (the e2e tier uses them too).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.nodes import Node, become_subreaper, containerd_major, reap_children, require
from tests.harness.sshd import SshHost, start_hosts, stop_hosts

from .corpus import stop_watcher
from .helpers import last_line

HERE = Path(__file__).resolve().parent
BUILD_CONTAINERD2 = HERE / "build-containerd2.sh"


@pytest.fixture(scope="session")
def containerd1() -> str:
    """Debian's containerd (1.6 on Debian 12)."""
    binary = require("containerd", "containerd")
    require("ctr", "containerd")
    require("runc", "runc")
    if containerd_major(binary) != 1:
        pytest.fail(f"{binary} is not containerd 1.x; the tier expects Debian 12's containerd 1.6")
    return binary


def build_containerd2(version: str) -> str:
    """containerd 2.x built from the Go module proxy into /var/cache/wasm-shim-fleet/containerd2 (idempotent)."""
    if not shutil.which("go"):
        pytest.fail("containerd-2 tests need Go (>= 1.23) to build containerd 2.x with "
                    f"{BUILD_CONTAINERD2}; install Go or run that script once")
    result = subprocess.run(["sh", str(BUILD_CONTAINERD2)], capture_output=True, text=True, timeout=1800,
                            env={**os.environ, "CONTAINERD2_VERSION": version})
    if result.returncode != 0:
        pytest.fail(f"building containerd {version} failed: {result.stderr[-2000:]}")
    binary = last_line(result.stdout)
    assert containerd_major(binary) == 2
    return binary


@pytest.fixture(scope="session")
def containerd2() -> str:
    """containerd 2.2 (config version 3)."""
    return build_containerd2("v2.2.9")


@pytest.fixture(scope="session")
def containerd23() -> str:
    """containerd 2.3 (config version 4: `config default` says `version = 4`)."""
    return build_containerd2("v2.3.0")



@pytest.fixture(scope="session", autouse=True)
def subreaper() -> Iterator[None]:
    become_subreaper()
    yield
    reap_children()


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
        stop_watcher(node)
        node.stop()
    for node in nodes:
        subprocess.run(["umount", "-l", str(node.root)], capture_output=True)
        shutil.rmtree(node.root, ignore_errors=True)



@pytest.fixture(scope="session")
def ssh_hosts(tmp_path_factory) -> Iterator[list[SshHost]]:
    """Three sshd test hosts on loopback (different ports), key auth with a key generated here."""
    hosts = start_hosts(tmp_path_factory.mktemp("sshd"), 3)
    yield hosts
    stop_hosts(hosts)
