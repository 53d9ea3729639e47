"""Shared fixtures: stack configs built in code, so each test states only what it varies."""

from __future__ import annotations

import copy
from typing import Any

import pytest

SHA = {v: (c * 64) for v, c in {"1.2.3": "a", "1.2.4": "b", "1.2.5": "c", "2.0.0": "d", "0.1.0-alpha.1": "e",
                                "0.2.0": "f", "0.2.1": "1"}.items()}


def release(version: str, shim: str = "slight", **extra: Any) -> dict[str, Any]:
    entry = {"version": version, "url": f"https://example.org/{shim}-{version}.tar.gz",
             "sha256": SHA.get(version, "0" * 64), "binary": f"containerd-shim-{shim}-v1"}
    entry.update(extra)
    return entry


def host_key(host: str) -> str:
    """A pinned host key for a test node (SSH nodes need one): the host's name, base64 shaped."""
    import base64

    return "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + base64.b64encode(host.encode()).decode().rstrip("=")


def stack(pools: list[dict[str, Any]], versions: tuple[str, ...] = ("1.2.3", "1.2.4"), **extra: Any) -> dict:
    raw = {
        "shims": {"slight": [release(v) for v in versions]},
        "nodePools": pools,
        "ssh": {"user": "root", "port": 22, "privateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n"},
    }
    raw.update(extra)
    return copy.deepcopy(raw)


def pool(name: str, releases: list[str], nodes: list[str], **extra: Any) -> dict[str, Any]:
    p = {"name": name, "containerd": "containerd-1", "releases": releases,
         "nodes": [{"name": n, "host": f"10.0.0.{i + 4}"} for i, n in enumerate(nodes)]}
    if extra.get("transport", "ssh") == "ssh":  # SSH nodes need a pinned host key
        for n in p["nodes"]:
            n["hostKey"] = host_key(n["host"])
    p.update(extra)
    return p


@pytest.fixture
def test_plan_stack() -> dict:
    """The proposal's test plan: A runs X.Y.Z, B runs X.Y.Z+1, C runs both."""
    return stack([
        pool("a", ["slight@1.2.3"], ["node-a"]),
        pool("b", ["slight@1.2.4"], ["node-b"]),
        pool("c", ["slight@1.2.3", "slight@1.2.4"], ["node-c"]),
    ])
