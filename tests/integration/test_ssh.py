"""The node scripts over real SSH: three Debian openssh-server hosts on 127.0.0.1, each a node with its own
WSF_NODE_ROOT and its own containerd, driven concurrently the way pulumi-command runs a remote.Command."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from components.core import nodescript
from components.core.plan import plan_from_config

from .helpers import install_kit, last_line, sample_raw

pytestmark = pytest.mark.integration


def fleet(ssh_hosts, make_node, containerd1):
    """A stack with one pool of three nodes, one per test host (hostKey pinned), and a node root + containerd
    per node. Returns [(host, node, plan)]."""
    raw = sample_raw("containerd-1", nodes=tuple(f"node-{c}" for c in "abc"[: len(ssh_hosts)]))
    for host, entry in zip(ssh_hosts, raw["nodePools"][0]["nodes"], strict=True):
        entry.update(host="127.0.0.1", port=host.port, hostKey=host.host_key)
    _, plan = plan_from_config(raw)
    assert plan.errors == []
    out = []
    for host, node_plan in zip(ssh_hosts, plan.nodes, strict=True):
        node = make_node("containerd-1", containerd1)
        node.original = node.seed()
        assert (node_plan.host, node_plan.port) == ("127.0.0.1", host.port)
        out.append((host, node, node_plan))
    return out


def over_ssh(host, node, script: str):
    """What the components send: the assignments in front of the script text, as the SSH command."""
    return host.ssh(nodescript.with_env(script, {"WSF_NODE_ROOT": str(node.root), "WSF_RESTART": node.restart}))


def test_three_nodes_install_concurrently_over_ssh_and_converge(ssh_hosts, make_node, containerd1) -> None:
    nodes = fleet(ssh_hosts, make_node, containerd1)
    with ThreadPoolExecutor(len(nodes)) as pool:
        results = list(pool.map(lambda t: over_ssh(t[0], t[1], nodescript.install_script(t[2])), nodes))
    for (_, node, node_plan), result in zip(nodes, results, strict=True):
        assert result.returncode == 0, result.stderr
        assert last_line(result.stdout) == "changed"
        assert {h: node.loaded_runtimes().get(h) for h in node_plan.handlers} == node_plan.handlers
        assert node.cri_ok()
    with ThreadPoolExecutor(len(nodes)) as pool:
        again = list(pool.map(lambda t: over_ssh(t[0], t[1], nodescript.install_script(t[2])), nodes))
    assert [(r.returncode, last_line(r.stdout)) for r in again] == [(0, "unchanged")] * 3
    with ThreadPoolExecutor(len(nodes)) as pool:
        gone = list(pool.map(lambda t: over_ssh(t[0], t[1], nodescript.uninstall_script(t[2])), nodes))
    for (_, node, _), result in zip(nodes, gone, strict=True):
        assert result.returncode == 0, result.stderr
        assert node.config.read_bytes() == node.original


def test_commands_for_one_node_that_run_at_once_are_serialized_by_the_lock(ssh_hosts, make_node, containerd1):
    """The program's graph runs one command per node AND binary in parallel: they share the node's files."""
    host, node, node_plan = fleet(ssh_hosts[:1], make_node, containerd1)[0]
    install_kit(node.root)
    scripts = [nodescript.install_binary_script(node_plan, b) for b in node_plan.binaries.values()] * 2
    with ThreadPoolExecutor(len(scripts)) as pool:
        results = list(pool.map(lambda s: over_ssh(host, node, s), scripts))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert sorted(last_line(r.stdout) for r in results) == ["changed"] * 3 + ["unchanged"] * 3
    bindir = node.root / "usr/local/bin"
    assert sorted(p.name for p in bindir.iterdir()) == sorted(node_plan.binaries)
    table = over_ssh(host, node, nodescript.apply_table_script(node_plan))
    assert table.returncode == 0, table.stderr
    assert {h: node.loaded_runtimes().get(h) for h in node_plan.handlers} == node_plan.handlers


def test_sshd_drops_setenv_so_the_scripts_carry_their_settings_in_their_text(ssh_hosts) -> None:
    """pulumi-command 1.2.1 passes `environment` with SSH Setenv, which sshd ignores without AcceptEnv: the
    scripts therefore read WSF_NODE_ROOT/WSF_RESTART from assignments at the front of their own text."""
    host = ssh_hosts[0]
    probe = 'echo "${WSF_NODE_ROOT-unset}"'
    dropped = host.ssh(probe, "-o", "SetEnv=WSF_NODE_ROOT=/from-setenv")
    assert dropped.stdout.strip() == "unset"
    carried = host.ssh(nodescript.with_env(probe, {"WSF_NODE_ROOT": "/from-the-text"}))
    assert carried.stdout.strip() == "/from-the-text"


def test_a_failure_over_ssh_exits_non_zero_with_one_line_on_stderr(ssh_hosts, make_node, containerd1) -> None:
    host, node, node_plan = fleet(ssh_hosts[:1], make_node, containerd1)[0]
    node.config.write_text("version = 3\n")
    result = over_ssh(host, node, nodescript.install_script(node_plan))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "config version 3" in result.stderr and "containerd-2" in result.stderr
