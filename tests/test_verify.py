"""The runtimeHandlers check before labels: its script against a stand-in kubectl, and its place in the graph."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from components.core.kit_graph import node_resources
from components.core.plan import plan_from_config
from components.core.verify import runtime_handlers_script

# A kubectl stand-in: prints the next line of $FAKE_ANSWERS on each call (the last one once exhausted),
# records its arguments, and fails when the line is "FAIL".
FAKE_KUBECTL = """#!/bin/sh
n=$(cat "$FAKE_DIR/calls" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$FAKE_DIR/calls"
echo "$*" >> "$FAKE_DIR/args"
total=$(wc -l < "$FAKE_DIR/answers")
[ "$n" -le "$total" ] || n=$total
line=$(sed -n "${n}p" "$FAKE_DIR/answers")
if [ "$line" = FAIL ]; then echo 'Error from server (NotFound): nodes "x" not found' >&2; exit 1; fi
if [ -n "${KUBECONFIG_SEEN:-}" ]; then for a in "$@"; do case $a in /*) cat "$a" >> "$KUBECONFIG_SEEN";; esac; done; fi
printf '%s' "$line"
"""


@pytest.fixture
def node_c(test_plan_stack):
    _, plan = plan_from_config(test_plan_stack)
    return plan.node("node-c")


def run(tmp_path: Path, node, answers: list[str], env: dict[str, str] | None = None, wait: int = 4):
    (tmp_path / "answers").write_text("\n".join(answers) + "\n")
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(FAKE_KUBECTL)
    kubectl.chmod(0o755)
    full = {"PATH": "/usr/bin:/bin", "FAKE_DIR": str(tmp_path), "KUBECTL": str(kubectl), "TMPDIR": str(tmp_path),
            **(env or {})}
    return subprocess.run(["sh", "-c", runtime_handlers_script(node, wait_seconds=wait)], capture_output=True,
                          text=True, env=full, timeout=60)


def test_passes_when_every_handler_is_reported(tmp_path, node_c):
    proc = run(tmp_path, node_c, ["runc " + " ".join(node_c.handlers)])
    assert proc.returncode == 0, proc.stderr
    assert "lists every handler" in proc.stdout


def test_waits_for_the_kubelet_to_catch_up_with_the_restart(tmp_path, node_c):
    proc = run(tmp_path, node_c, ["runc", "runc", " ".join(["runc", *node_c.handlers])], wait=10)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "calls").read_text().strip() == "3"


def test_fails_the_node_with_one_line_naming_the_missing_handlers(tmp_path, node_c):
    proc = run(tmp_path, node_c, ["runc slight slight-v1 slight-v1-2 slight-v1-2-3"])
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert "handler(s) slight-v1-2-4 not in node.status.runtimeHandlers" in line
    assert "not labelled" in line


def test_a_kubelet_that_reports_no_runtime_handlers_is_nothing_to_verify(tmp_path, node_c):
    proc = run(tmp_path, node_c, [""])
    assert proc.returncode == 0 and "nothing to verify" in proc.stdout


def test_a_node_missing_from_the_cluster_fails(tmp_path, node_c):
    proc = run(tmp_path, node_c, ["FAIL"])
    assert proc.returncode == 1 and "cannot read the Node" in proc.stderr


def test_kubeconfig_contents_go_to_a_private_temp_file_that_is_removed(tmp_path, node_c):
    seen = tmp_path / "seen"
    contents = "apiVersion: v1\nkind: Config\n# client-key-data: secret\n"
    proc = run(tmp_path, node_c, ["runc " + " ".join(node_c.handlers)],
               env={"WSF_KUBECONFIG": contents, "WSF_KUBE_CONTEXT": "prod", "KUBECONFIG_SEEN": str(seen)})
    assert proc.returncode == 0, proc.stderr
    assert seen.read_text() == contents
    assert "--context prod" in (tmp_path / "args").read_text()
    leftovers = [p for p in os.listdir(tmp_path) if p.startswith("tmp")]
    assert leftovers == []


def test_a_kubeconfig_path_is_passed_as_it_is(tmp_path, node_c):
    proc = run(tmp_path, node_c, ["runc " + " ".join(node_c.handlers)], env={"WSF_KUBECONFIG": "/etc/kube.conf"})
    assert proc.returncode == 0
    assert "--kubeconfig /etc/kube.conf get node node-c" in (tmp_path / "args").read_text()


def test_the_check_sits_between_the_handler_table_and_the_labels(node_c):
    graph = {g.name: g for g in node_resources("fleet-c", node_c, verify=True)}
    assert graph["fleet-c-node-c-verify"].depends_on == ("fleet-c-node-c-handlers",)
    assert graph["fleet-c-node-c-labels"].depends_on == ("fleet-c-node-c-verify",)
    without = {g.name: g for g in node_resources("fleet-c", node_c)}
    assert "fleet-c-node-c-verify" not in without
    assert without["fleet-c-node-c-labels"].depends_on == ("fleet-c-node-c-handlers",)


ONE_LINE = '{"apiVersion":"v1","kind":"Config","users":[{"name":"u","user":{"token":"s3cret-token"}}]}'


def test_a_one_line_json_kubeconfig_is_contents_never_an_argument(tmp_path, node_c):
    """CI secrets often hold a kubeconfig as one line of JSON: it goes to a private file, never on kubectl's
    command line (visible in `ps`, and echoed by kubectl when it cannot open it as a path)."""
    seen = tmp_path / "seen"
    proc = run(tmp_path, node_c, ["runc " + " ".join(node_c.handlers)],
               env={"WSF_KUBECONFIG": ONE_LINE, "KUBECONFIG_SEEN": str(seen)})
    assert proc.returncode == 0, proc.stderr
    assert "s3cret-token" not in (tmp_path / "args").read_text()
    assert seen.read_text() == ONE_LINE


def test_every_command_of_the_program_gives_kubectl_the_same_private_file_for_contents(tmp_path, monkeypatch):
    """One rule (components/kubeconfig.py) for the runner, the rollout and cleanup commands and `check`."""
    from components.check_live import read_api_nodes
    from components.core.config import kubeconfig_is_contents
    from components.incluster_run import Kubectl
    from components.kubeconfig import kubectl_kubeconfig

    assert kubeconfig_is_contents(ONE_LINE) and kubeconfig_is_contents("apiVersion: v1\nkind: Config\n")
    assert not kubeconfig_is_contents("~/.kube/config")
    assert kubectl_kubeconfig("~/.kube/config", tmp_path) == os.path.expanduser("~/.kube/config")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    path = kubectl_kubeconfig(ONE_LINE, private)
    assert path == str(private / "kubeconfig") and os.stat(path).st_mode & 0o777 == 0o600
    monkeypatch.setenv("WSF_KUBECONFIG", ONE_LINE)
    k = Kubectl(str(tmp_path))
    assert "s3cret-token" not in " ".join(k.argv) and k.argv[1:3] == ["--kubeconfig", str(tmp_path / "kubeconfig")]
    # check: kubectl (a stand-in that fails naming its arguments, as kubectl does) never sees the contents
    kubectl = tmp_path / "kubectl-echo"
    kubectl.write_text('#!/bin/sh\necho "error: stat $*: no such file or directory" >&2\nexit 1\n')
    kubectl.chmod(0o755)
    with pytest.raises(RuntimeError) as err:
        read_api_nodes(ONE_LINE, None, kubectl=str(kubectl))
    assert "s3cret-token" not in str(err.value)
