"""Drop-ins (files that the loaded config imports) seen before a change and after the restart, on real containerd:
a handler of ours that a drop-in defines, or a drop-in that replaces containerd 1.x's whole CRI section, is an
error naming the drop-in, and nothing is changed (before) or the change is rolled back (after)."""

from __future__ import annotations

import pytest

from components.core.nodescript import install_script, shq, uninstall_script

from .corpus import ENTRIES, seed
from .helpers import last_line, sample_node, snapshot

pytestmark = pytest.mark.integration

ENTRY = {e.id: e for e in ENTRIES}
DAEMON_PATHS = ("var/lib/containerd", "run", "var/log", "opt", "var/lib/rancher/k3s/agent/containerd",
                "var/lib/rancher/k3s/agent/etc/cni", "usr", "var/lib/wasm-shim-fleet")
#: A drop-in that sets a registry path, as admins write them: on containerd 1.x its CRI section replaces the
#: main file's whole CRI section, runtimes included.
CRI_DROPIN = '[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'
#: A drop-in that defines one of our handlers (containerd 2 deep-merges it over ours).
OURS_DROPIN = "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.slight-v1-2-3]\n" \
              "  runtime_type = \"io.containerd.other.v1\"\n"


@pytest.fixture
def eks_al2(make_node, containerd1):
    node = make_node("containerd-1", containerd1)
    node.original = seed(node, ENTRY["eks-al2"], "1.6")
    node.dropins = node.root / "etc/containerd/config.d"
    node.dropins.mkdir(parents=True)
    return node


@pytest.fixture
def k3s_v3(make_node, containerd2):
    node = make_node("k3s-2", containerd2)
    node.original = seed(node, ENTRY["k3s-v3"], "2.2")
    node.dropins = node.root / "var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.d"
    node.dropins.mkdir(parents=True)
    return node


def test_a_drop_in_that_replaces_the_cri_section_on_containerd_1_is_refused_before_any_change(eks_al2):
    node = eks_al2
    (node.dropins / "10-registry.toml").write_text(CRI_DROPIN)
    node.start()
    snap, restarts = snapshot(node.root, ignore=DAEMON_PATHS), node.restarts()
    result = node.run(install_script(sample_node("containerd-1")))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"{node.dropins}/10-registry.toml line 1" in result.stderr
    assert "replaces the whole CRI plugin section" in result.stderr and "nothing was changed" in result.stderr
    assert snapshot(node.root, ignore=DAEMON_PATHS) == snap and node.restarts() == restarts


def test_a_drop_in_that_defines_one_of_our_handlers_is_refused_before_any_change(k3s_v3):
    node = k3s_v3
    (node.dropins / "50-other.toml").write_text(OURS_DROPIN)
    node.start()
    snap, restarts = snapshot(node.root, ignore=DAEMON_PATHS), node.restarts()
    result = node.run(install_script(sample_node("k3s-2")))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"the drop-in {node.dropins}/50-other.toml line 1 (handler slight-v1-2-3)" in result.stderr
    assert "nothing was changed" in result.stderr
    assert snapshot(node.root, ignore=DAEMON_PATHS) == snap and node.restarts() == restarts
    assert not node.config.exists()


@pytest.mark.parametrize("layout", ["eks-al2", "k3s-v3"])
def test_a_drop_in_that_appears_with_the_restart_is_named_and_the_change_rolled_back(layout, request):
    node = request.getfixturevalue(layout.replace("-", "_"))
    flavor = "containerd-1" if layout == "eks-al2" else "k3s-2"
    name, text = ("10-registry.toml", CRI_DROPIN) if layout == "eks-al2" else ("50-other.toml", OURS_DROPIN)
    late = node.dropins / name
    # The restart command that brings the drop-in (someone else's automation between our check and the restart).
    restart = f"printf '%s' {shq(text)} > {shq(str(late))} && {node.restart}"
    result = node.run(install_script(sample_node(flavor)), restart=restart)
    assert result.returncode == 1
    assert str(late) in result.stderr and "restored the previous config and restarted containerd on it" in result.stderr
    if node.original is None:
        assert not node.config.exists()
    else:
        assert node.config.read_bytes() == node.original
    assert node.cri_ok()
    late.unlink()
    again = node.run(install_script(sample_node(flavor)))
    assert (again.returncode, last_line(again.stdout)) == (0, "changed"), again.stderr


def test_a_drop_in_that_took_one_of_our_handlers_since_the_install_stops_the_uninstall(k3s_v3):
    node = k3s_v3
    plan = sample_node("k3s-2")
    assert node.run(install_script(plan)).returncode == 0
    installed = node.config.read_bytes()
    (node.dropins / "50-other.toml").write_text(OURS_DROPIN)
    result = node.run(uninstall_script(plan))
    assert result.returncode == 1
    assert f"{node.dropins}/50-other.toml line 1 (handler slight-v1-2-3)" in result.stderr
    assert "nothing was changed" in result.stderr
    assert node.config.read_bytes() == installed
    (node.dropins / "50-other.toml").unlink()
    gone = node.run(uninstall_script(plan))
    assert gone.returncode == 0, gone.stderr
    assert not node.config.exists()
