"""The node agent (deploy/agent, Go) and the node image (deploy/build_image.py): the Go tests, vet and gofmt, a
reproducible build, and the agent's scripts run by the real kit against a real containerd, from install through a
bump (prune-binaries) to uninstall, with the kit's read-only `status` between."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from components.core import nodescript
from components.core.plan import plan_from_config
from tests.harness import images

from .helpers import last_line, sample_raw

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
AGENT = REPO / "deploy" / "agent"


def _go() -> str:
    found = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None)
    if not found:
        pytest.fail("the node agent is Go: install Go >= 1.23 (scripts/setup.sh finds or fetches it)")
    return found


def _go_env(tmp_path: Path) -> dict[str, str]:
    cache = Path(os.environ.get("WSF_CACHE", "/var/cache/wasm-shim-fleet")) / "go-agent"
    return {**os.environ, "GOCACHE": str(cache / "cache"), "GOPATH": str(cache / "path"), "GOFLAGS": "",
            "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "TMPDIR": str(tmp_path)}


def test_the_agents_go_tests_vet_and_format_pass(tmp_path):
    go, env = _go(), _go_env(tmp_path)
    fmt = subprocess.run([str(Path(go).parent / "gofmt"), "-l", "."], cwd=AGENT, capture_output=True, text=True)
    assert fmt.returncode == 0 and fmt.stdout == "", f"gofmt would change: {fmt.stdout}{fmt.stderr}"
    for argv in ([go, "vet", "./..."], [go, "test", "-count=1", "./..."]):
        proc = subprocess.run(argv, cwd=AGENT, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{' '.join(argv[1:])} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"


def test_the_node_image_is_built_from_source_reproducibly_with_only_the_two_binaries(tmp_path):
    build = images.builder()
    ref, tarball = build.build_image(tmp_path / "one.oci.tar")
    again, _ = build.build_image(tmp_path / "two.oci.tar")
    assert ref == again and ref.startswith(f"{build.REPOSITORY}@sha256:")
    with tarfile.open(tarball) as tar:
        index = json.loads(tar.extractfile("index.json").read())
        (manifest,) = index["manifests"]
        assert manifest["annotations"]["io.containerd.image.name"] == ref
        body = json.loads(tar.extractfile("blobs/sha256/" + manifest["digest"].split(":")[1]).read())
        (layer,) = body["layers"]
        with tarfile.open(fileobj=tar.extractfile("blobs/sha256/" + layer["digest"].split(":")[1])) as inner:
            assert sorted(inner.getnames()) == ["wsf-agent", "wsf-enter"]
    # the agent binary is static and answers `version`
    _, agent_bin, key = build.build_binaries(Path(os.environ.get("WSF_CACHE", "/var/cache/wasm-shim-fleet")) / "image")
    out = subprocess.run([str(agent_bin), "version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == key[:12]
    ldd = subprocess.run(["ldd", str(agent_bin)], capture_output=True, text=True)
    assert "not a dynamic executable" in (ldd.stdout + ldd.stderr)


def test_a_build_for_another_repository_never_replaces_the_cached_archive_of_this_one():
    """The archive names its image (`io.containerd.image.name`), and containerd imports it under that name: a
    build for another repository sharing the cache must leave this repository's archive as it is."""
    build = images.builder()

    def named(tarball: Path) -> str:
        with tarfile.open(tarball) as tar:
            (manifest,) = json.loads(tar.extractfile("index.json").read())["manifests"]
            return manifest["annotations"]["io.containerd.image.name"]

    ref, tarball = build.build_image()
    other, other_tarball = build.build_image(repository="registry.example.org/wasm-shim-fleet/node")
    assert other_tarball != tarball and other.split("@")[1] == ref.split("@")[1]
    assert named(tarball) == ref and named(other_tarball) == other


def _agent_scripts(releases: list[str], restart: str) -> dict[str, str]:
    raw = sample_raw("containerd-1", releases=tuple(releases))
    pool = raw["nodePools"][0]
    del pool["nodes"], raw["ssh"]
    pool.update({"nodeSelector": {"g": "wasm"}, "restart": restart})
    raw["kubernetes"] = {"agentImage": "registry.example.org/node@sha256:" + "a" * 64}
    _, plan = plan_from_config(raw, REPO)
    assert plan.ok, plan.errors
    return nodescript.agent_scripts(plan.agent_pools[0].node)


def _host_traces() -> list[str]:
    """What of ours would be on this machine's own root if a script ignored WSF_NODE_ROOT."""
    return sorted(str(p) for p in Path("/usr/local/bin").glob("containerd-shim-slight-*")) + \
        [str(p) for p in (Path("/var/lib/wasm-shim-fleet"),) if p.exists()]


def test_the_agents_scripts_install_bump_report_and_uninstall_with_the_real_kit(make_node, containerd1, tmp_path):
    before = _host_traces()
    node = make_node("containerd-1", containerd1)
    original = node.seed()
    kit = tmp_path / "kit.sh"
    kit.write_text(nodescript.kit_text())
    both = _agent_scripts(["slight@1.2.3", "slight@1.3.0"], node.restart)
    one = _agent_scripts(["slight@1.3.0"], node.restart)

    def run(scripts: dict[str, str], step: str) -> subprocess.CompletedProcess[str]:
        env = {"WSF_RUN_PAYLOAD": str(kit)} if step == "binaries" else {}
        return node.run(scripts[step], env=env)

    for step in ("binaries", "table"):
        proc = run(both, step)
        assert proc.returncode == 0, proc.stderr
        assert last_line(proc.stdout) == "changed"
    assert node.dump_runtimes()["slight-v1-2-3"] == "io.containerd.slight-v1-2-3.v1"
    assert "wsf-status handler slight-v1-2-3 io.containerd.slight-v1-2-3.v1 ok" in run(both, "status").stdout
    # a second pass changes nothing and restarts nothing
    restarts = node.restarts()
    for step in ("binaries", "table"):
        proc = run(both, step)
        assert proc.returncode == 0 and last_line(proc.stdout) == "unchanged", proc.stdout + proc.stderr
    assert node.restarts() == restarts
    # the bump drops 1.2.3: the table goes first, then prune-binaries removes its binary (the node's own record)
    for step in ("binaries", "table"):
        assert run(one, step).returncode == 0
    bin_dir = node.root / "usr/local/bin"
    assert not (bin_dir / "containerd-shim-slight-v1-2-3-v1").exists()
    assert (bin_dir / "containerd-shim-slight-v1-3-0-v1").exists()
    assert "slight-v1-2-3" not in node.dump_runtimes() and "runc" in node.dump_runtimes()
    # a binary gone under its handler: the status says so (the agent then keeps no label promising it)
    (bin_dir / "containerd-shim-slight-v1-3-0-v1").unlink()
    assert "wsf-status handler slight-v1-3-0 io.containerd.slight-v1-3-0.v1 no-binary" in run(one, "status").stdout
    # uninstall: the original config byte for byte, no binary, no kit
    proc = run(one, "uninstall")
    assert proc.returncode == 0, proc.stderr
    assert node.config.read_bytes() == original
    assert not list(bin_dir.glob("containerd-shim-*"))
    assert not (node.root / "var/lib/wasm-shim-fleet/kit").exists()
    # every part of the agent's scripts acted on the node root it was given (settings passed as the
    # harness passes them: shell assignments in front of the text), never on this machine's own root
    assert _host_traces() == before
