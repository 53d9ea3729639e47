"""Node commands through the cluster (`transport: kubernetes`): the config rules, the resource graph (same names,
order and scripts as over SSH), the runner pod, the runner's arguments, the result markers, and the host script
itself, run for real under a stand-in container runtime process (no cluster needed for that part).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from components.core import incluster, nodescript
from components.core.config import check_config
from components.core.kit_graph import node_resources
from components.core.plan import plan_from_config
from components.incluster_run import parse_args
from tests.conftest import errors, pool, stack

DIGEST = "sha256:" + "ab" * 32
IMAGE = f"registry.example.org/wasm-shim-fleet/runner@{DIGEST}"
RUN_ID = "0123456789abcdef"


def in_cluster_stack(**k8s) -> dict:
    raw = stack([pool("p", ["slight@1.2.3"], ["node-a"], transport="kubernetes")])
    for n in raw["nodePools"][0]["nodes"]:
        n.pop("host")
    raw.pop("ssh")
    raw["kubernetes"] = {"runnerImage": IMAGE, **k8s}
    return raw


# --------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize(("image", "why"), [
    (IMAGE, None),
    (f"localhost/wsf/runner@{DIGEST}", None),
    (f"registry.example.org:5000/a/b:v1@{DIGEST}", None),
    ("registry.example.org/wasm-shim-fleet/runner:1.0", "not pinned by digest"),
    ("registry.example.org/wasm-shim-fleet/runner@sha256:abc", "form"),
    (f"Registry/UPPER@{DIGEST}", "form"),
    ("", "not an image reference"),
    (None, "not an image reference"),
])
def test_the_runner_image_must_be_pinned_by_digest(image, why):
    problem = incluster.image_problem(image)
    assert (problem is None) == (why is None)
    if why:
        assert why in problem


def test_an_in_cluster_pool_needs_no_ssh_and_its_nodes_no_address():
    cfg, problems = check_config(in_cluster_stack())
    assert [p for p in problems if p.severity == "error"] == []
    assert cfg.kubernetes.runner_image == IMAGE
    assert cfg.kubernetes.runner_namespace == incluster.DEFAULT_NAMESPACE
    _, plan = plan_from_config(in_cluster_stack())
    node = plan.node("node-a")
    assert node.transport == "kubernetes" and node.node_root == "/" and node.user is None


def test_an_in_cluster_pool_without_a_runner_image_is_an_error_naming_the_key_and_the_fix():
    raw = in_cluster_stack()
    del raw["kubernetes"]["runnerImage"]
    msg = errors(raw)["kubernetes.runnerImage"]
    assert "missing" in msg and "transport kubernetes" in msg and "@sha256:" in msg


def test_a_runner_image_by_tag_is_refused_with_its_value():
    msg = errors(in_cluster_stack(runnerImage="example.org/runner:latest"))["kubernetes.runnerImage"]
    assert "'example.org/runner:latest'" in msg and "not pinned by digest" in msg and "@sha256:" in msg


def test_transport_kubernetes_in_render_mode_is_an_error_on_the_pool():
    msg = errors(in_cluster_stack(renderDir="rendered/x"))["nodePools[0].transport"]
    assert "renderDir" in msg and "no cluster" in msg and "transport ssh or local" in msg


@pytest.mark.parametrize("key", ["host", "port", "hostKey"])
def test_an_in_cluster_node_with_an_ssh_address_is_an_error(key):
    raw = in_cluster_stack()
    raw["nodePools"][0]["nodes"][0][key] = {"host": "10.0.0.4", "port": 22, "hostKey": "ssh-ed25519 AAAA"}[key]
    msg = errors(raw)[f"nodePools[0].nodes[0].{key}"]
    assert "through the cluster" in msg and f"remove {key}" in msg


def test_a_bad_runner_namespace_is_an_error():
    msg = errors(in_cluster_stack(runnerNamespace="Not_A_Label"))["kubernetes.runnerNamespace"]
    assert "'Not_A_Label'" in msg and incluster.DEFAULT_NAMESPACE in msg


@pytest.mark.parametrize("namespace", ["default", "kube-system", "kube-public", "kube-node-lease"])
def test_a_runner_namespace_that_kubernetes_owns_is_an_error(namespace):
    msg = errors(in_cluster_stack(runnerNamespace=namespace))["kubernetes.runnerNamespace"]
    assert msg == (f"'{namespace}' is a namespace Kubernetes owns (default, kube-*): the program labels its runner "
                   "namespace Pod Security privileged and deletes it with the stack; it names the namespace the "
                   f"program creates for its runner pods, e.g. {incluster.DEFAULT_NAMESPACE}")


def test_a_mixed_fleet_checks_ssh_only_for_its_ssh_pool():
    raw = in_cluster_stack()
    raw["nodePools"].append(pool("q", ["slight@1.2.3"], ["node-b"]))
    msg = errors(raw)["ssh"]
    assert "transport ssh" in msg


# -------------------------------------------------------------------------------------------- the graph
def test_an_in_cluster_node_has_the_ssh_graph_names_order_and_scripts():
    _, plan = plan_from_config(in_cluster_stack())
    node = plan.node("node-a")
    ssh_node = type(node)(**{**vars(node), "transport": "ssh"})
    ours = node_resources("fleet-p", node, verify=True)
    theirs = node_resources("fleet-p", ssh_node, verify=True)
    assert [(r.name, r.role, r.depends_on) for r in ours] == [(r.name, r.role, r.depends_on) for r in theirs]
    for a, b in zip(ours[1:], theirs[1:], strict=True):
        assert (a.kind, a.create, a.update, a.delete) == (b.kind, b.create, b.update, b.delete)
    kit = ours[0]
    sha = nodescript.kit_sha256()
    assert kit.kind == "command" and kit.payload.endswith(f"/kit/{sha}/wsf.sh")
    assert f"s={sha}" in kit.create and 'cp "$WSF_RUN_PAYLOAD" "$t"' in kit.create
    assert kit.delete == nodescript.kit_remove_script(node)


def test_the_kit_script_keeps_only_a_payload_with_its_sha256(tmp_path):
    _, plan = plan_from_config(in_cluster_stack())
    node = plan.node("node-a")
    script = node_resources("fleet-p", node)[0].create
    good = tmp_path / "good"
    good.write_text(nodescript.kit_text())
    bad = tmp_path / "bad"
    bad.write_text(nodescript.kit_text() + "# changed\n")
    env = {"PATH": os.environ["PATH"], "WSF_NODE_ROOT": str(tmp_path / "root")}
    p = subprocess.run(["sh", "-c", script], env={**env, "WSF_RUN_PAYLOAD": str(bad)}, capture_output=True,
                       text=True)
    assert p.returncode == 1 and "sha256 is not" in p.stderr
    p = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
    assert p.returncode == 1 and "no kit came with this command" in p.stderr
    assert not (tmp_path / "root/var/lib/wasm-shim-fleet/kit/selected").exists()
    p = subprocess.run(["sh", "-c", script], env={**env, "WSF_RUN_PAYLOAD": str(good)}, capture_output=True,
                       text=True)
    assert p.returncode == 0 and p.stdout.endswith("changed\n")
    sha = nodescript.kit_sha256()
    assert (tmp_path / "root/var/lib/wasm-shim-fleet/kit/selected").read_text() == sha + "\n"


# ---------------------------------------------------------------------------------------- the runner pod
def kubelet_expands(value: str, env: dict[str, str]) -> str:
    """What the kubelet makes of a command, args or env value: `$$` -> `$`, `$(NAME)` -> NAME's value when the
    container defines NAME (k8s.io/kubernetes/third_party/forked/golang/expansion)."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "$" and i + 1 < len(value):
            if value[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            if value[i + 1] == "(" and ")" in value[i + 2:]:
                name = value[i + 2:value.index(")", i + 2)]
                if name in env:
                    out.append(env[name])
                    i += len(name) + 3
                    continue
        out.append(value[i])
        i += 1
    return "".join(out)


def test_the_script_reaches_the_container_unchanged_through_the_kubelets_variable_expansion():
    script = 'echo $$ $(PATH) $$(PATH) $(date) "$(cat x)" $((1+2)) ${A:-$}$\n'
    pod = incluster.pod_manifest(node="n", namespace="ns", image=IMAGE, run_id=RUN_ID, script=script,
                                 resource="r", payload="kit $$ $(WSF_RUN_SCRIPT)")
    (c,) = pod["spec"]["containers"]
    env = {"PATH": "/usr/bin", **{e["name"]: e["value"] for e in c["env"]}}
    assert kubelet_expands(env[incluster.SCRIPT_ENV], env) == script
    assert kubelet_expands(env[incluster.PAYLOAD_ENV], env) == "kit $$ $(WSF_RUN_SCRIPT)"
    assert kubelet_expands(c["command"][4], env) == incluster.HOST_SCRIPT


def test_the_runner_pod_is_pinned_privileged_hostpid_and_labelled():
    pod = incluster.pod_manifest(node="node-a", namespace="ns", image=IMAGE, run_id=RUN_ID, script="echo hi\n",
                                 resource="fleet-p-node-a-handlers")
    spec = pod["spec"]
    assert pod["metadata"]["namespace"] == "ns"
    assert pod["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "wasm-shim-fleet",
                                         "app.kubernetes.io/component": "node-command",
                                         incluster.RUN_LABEL: RUN_ID}
    assert pod["metadata"]["annotations"] == {incluster.NODE_ANNOTATION: "node-a",
                                              incluster.RESOURCE_ANNOTATION: "fleet-p-node-a-handlers"}
    assert spec["nodeName"] == "node-a" and spec["hostPID"] is True and spec["restartPolicy"] == "Never"
    assert spec["hostNetwork"] is True
    assert spec["automountServiceAccountToken"] is False
    assert spec["tolerations"] == [{"operator": "Exists"}]
    (c,) = spec["containers"]
    assert c["image"] == IMAGE and c["securityContext"]["privileged"] is True
    assert c["command"][:4] == ["/wsf-enter", "--", "/bin/sh", "-c"]
    assert c["command"][4] == incluster.k8s_literal(incluster.HOST_SCRIPT)
    assert c["command"][5:] == ["wasm-shim-fleet-run", "start", RUN_ID]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env == {incluster.SCRIPT_ENV: "echo hi\n"}
    assert "volumes" not in spec and "volumeMounts" not in c
    assert len(pod["metadata"]["name"]) <= 63


def test_an_attach_pod_carries_no_script_and_a_start_pod_carries_the_payload():
    attach = incluster.pod_manifest(node="n", namespace="ns", image=IMAGE, run_id=RUN_ID, script="x",
                                    resource="r", mode="attach", attempt=1)
    (c,) = attach["spec"]["containers"]
    assert c["env"] == [] and c["command"][-2:] == ["attach", RUN_ID]
    assert attach["metadata"]["name"] == f"wsf-run-{RUN_ID}-1"
    start = incluster.pod_manifest(node="n", namespace="ns", image=IMAGE, run_id=RUN_ID, script="x",
                                   resource="r", payload="KIT")
    env = {e["name"]: e["value"] for e in start["spec"]["containers"][0]["env"]}
    assert env[incluster.PAYLOAD_ENV] == "KIT"  # (no $ to escape)
    with pytest.raises(ValueError):
        incluster.pod_manifest(node="n", namespace="ns", image=IMAGE, run_id="$(reboot)", script="x", resource="r")


def test_the_runner_arguments_end_where_the_engine_appends_the_script():
    argv = incluster.runner_interpreter(python="/usr/bin/python3", runner="/p/components/incluster_run.py",
                                        node="node-a", namespace="ns", image=IMAGE, resource="r",
                                        payload_file="/k/wsf.sh")
    assert argv[:2] == ["/usr/bin/python3", "/p/components/incluster_run.py"] and argv[-1] == "--script"
    args = parse_args([*argv[2:], "#!/bin/sh\necho hi\n"])
    assert (args.node, args.namespace, args.image, args.resource, args.payload_file, args.script) == \
        ("node-a", "ns", IMAGE, "r", "/k/wsf.sh", "#!/bin/sh\necho hi\n")


def _log(out: str, err: str, rc: int, run_id: str = RUN_ID) -> str:
    a, b, c = incluster.result_markers(run_id)
    return f"{a}\n{out}\n{b}\n{err}\n{c}{rc} ---\n"


@pytest.mark.parametrize(("out", "err", "rc"), [
    ("changed\n", "", 0), ("", "wasm-shim-fleet: error: x\n", 1), ("a\nb", "c", 3), ("", "", 0), ("\n\n", "\n", 7),
])
def test_the_result_is_read_back_exactly(out, err, rc):
    assert incluster.parse_result("noise\n" + _log(out, err, rc), RUN_ID) == (out, err, rc)


def test_a_partial_log_or_another_runs_markers_are_no_result():
    full = _log("changed\n", "", 0)
    assert incluster.parse_result(full[: full.rfind("---") - 20], RUN_ID) is None
    assert incluster.parse_result(_log("x", "", 0, "fedcba9876543210"), RUN_ID) is None
    assert incluster.parse_result("", RUN_ID) is None


# ------------------------------------------------------------------------------- the host script, for real
@pytest.fixture
def runtime(tmp_path):
    """A stand-in container runtime: a process named containerd-shim-* with WSF_NODE_ROOT in its environment,
    whose child runs the host script (as a runner pod's process runs under its shim). `run` reads the "pod's"
    output up to the exit marker, then acknowledges it as the runner does by deleting the pod: SIGTERM."""
    shim = tmp_path / "containerd-shim-test"
    shutil.copy("/bin/sh", shim)
    root = tmp_path / "node"
    root.mkdir()

    def start(mode: str, run_id: str, script: str | None = None, payload: str | None = None) -> subprocess.Popen:
        env = {"PATH": os.environ["PATH"], "WSF_NODE_ROOT": str(root), "FROM_RUNTIME": "yes"}
        pod_env = {"PATH": "/"}  # what an image's config sets: the host script sets its own
        if script is not None:
            pod_env[incluster.SCRIPT_ENV] = script
        if payload is not None:
            pod_env[incluster.PAYLOAD_ENV] = payload
        exports = " ".join(f"{k}={nodescript.shq(v)}" for k, v in pod_env.items())
        inner = f"env -i {exports} /bin/sh -c {nodescript.shq(incluster.HOST_SCRIPT)} x {mode} {run_id}"
        # the shim runs the "pod" as a child (not exec), like a real shim runs its container
        return subprocess.Popen([str(shim), "-c", f"{inner}; exit $?"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    def run(mode: str, run_id: str, script: str | None = None, payload: str | None = None,
            ack: bool = True) -> subprocess.CompletedProcess:
        proc = start(mode, run_id, script, payload)
        lines = []
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            lines.append(line)
            if line.startswith(incluster.result_markers(run_id)[2]) or time.monotonic() > deadline:
                break
        os.killpg(proc.pid, signal.SIGTERM if ack else signal.SIGKILL)
        rest, err = proc.communicate(timeout=30)
        return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(lines) + rest, err)

    run.root = root
    run.start = start
    return run


def runs(root) -> list[str]:
    d = root / "var/lib/wasm-shim-fleet/runs"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_the_host_script_runs_the_script_with_the_runtimes_environment_and_forgets_it_once_acknowledged(runtime):
    script = '#!/bin/sh\necho "root=$WSF_NODE_ROOT from=${FROM_RUNTIME:-} pod=${WSF_RUN_SCRIPT:-none}"\n' \
             'cat "$WSF_RUN_PAYLOAD"; echo oops >&2; exit 4\n'
    p = runtime("start", RUN_ID, script, payload="PAYLOAD\n")
    out, err, rc = incluster.parse_result(p.stdout, RUN_ID)
    assert out == f"root={runtime.root} from=yes pod=none\nPAYLOAD\n" and err == "oops\n" and rc == 4
    # the run folder was under the node root the runtime named, and is gone once the result was acknowledged
    assert runs(runtime.root) == []


def test_the_host_script_keeps_its_run_private_and_stores_no_runtime_environment(runtime):
    """The container runtime's environment (proxy credentials, a join token) reaches the script, never a file; the
    script, its payload and its output are readable by root only."""
    proc = runtime.start("start", RUN_ID, '#!/bin/sh\necho "from=$FROM_RUNTIME"\n', payload="PAYLOAD\n")
    d = runtime.root / "var/lib/wasm-shim-fleet/runs" / RUN_ID
    for line in proc.stdout:  # the whole result printed: the pod now waits for its acknowledgement
        if line.startswith(incluster.result_markers(RUN_ID)[2]):
            break
    try:
        assert (d / "out").read_text() == "from=yes\n"
        assert not (d / "env").exists()
        assert all("FROM_RUNTIME=yes" not in p.read_text(errors="replace") for p in d.iterdir() if p.is_file())
        assert oct(d.parent.stat().st_mode & 0o777) == "0o700"
        assert {p.name: oct(p.stat().st_mode & 0o077) for p in [d, *d.iterdir()]} == \
            {p.name: "0o0" for p in [d, *d.iterdir()]}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)
    assert runs(runtime.root) == []


def test_a_run_whose_command_was_killed_before_its_status_is_removed_by_the_next_run(runtime):
    folder = runtime.root / "var/lib/wasm-shim-fleet/runs"
    dead = subprocess.Popen(["true"])
    dead.wait()
    killed = folder / "fedcba9876543210"  # its detached command died (SIGKILL, OOM) before writing rc
    killed.mkdir(parents=True)
    (killed / "script").write_text("#!/bin/sh\nsecret-setting\n")
    (killed / "pid").write_text(f"{dead.pid}\n")
    young = folder / "00112233445566778899aabb"  # just made by another pod: its command starts in a moment
    young.mkdir()
    p = runtime("start", RUN_ID, "#!/bin/sh\necho ok\n")
    assert incluster.parse_result(p.stdout, RUN_ID) == ("ok\n", "", 0)
    assert not killed.exists()
    assert runs(runtime.root) == ["00112233445566778899aabb"]


def test_a_result_whose_pod_died_unacknowledged_is_read_by_an_attach_pod_and_the_script_never_runs_twice(
        runtime, tmp_path):
    marker = tmp_path / "ran"
    script = f'#!/bin/sh\necho x >> {nodescript.shq(str(marker))}\nsleep 2\necho done\n'
    # the first "pod" dies while its script runs (SIGKILL, no acknowledgement): the script goes on, detached
    first = runtime.start("start", RUN_ID, script)
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate()
    assert runs(runtime.root) == [RUN_ID]
    again = runtime("start", RUN_ID, script)
    assert again.returncode == 2 and "not starting it twice" in again.stderr
    # an attach pod whose log is lost after printing (killed unacknowledged) leaves the result in place
    lost = runtime("attach", RUN_ID, ack=False)
    assert incluster.parse_result(lost.stdout, RUN_ID) == ("done\n", "", 0)
    assert runs(runtime.root) == [RUN_ID]
    p = runtime("attach", RUN_ID)
    assert incluster.parse_result(p.stdout, RUN_ID) == ("done\n", "", 0)
    assert marker.read_text() == "x\n"
    assert runs(runtime.root) == []
    gone = runtime("attach", RUN_ID)
    assert gone.returncode == 3 and "already reported" in gone.stderr


# ------------------------------------------------------------------------- the runner, with a fake kubectl
FAKE_KUBECTL = r'''#!/usr/bin/env python3
"""A stand-in kubectl for the runner's unit tests: pods and their states come from a scenario file."""
import json, os, sys
from pathlib import Path
state_file = Path(sys.argv[0]).with_name("state.json")
st = json.loads(state_file.read_text())
args = [a for a in sys.argv[1:] if not a.startswith("--kubeconfig") and a != st.get("kubeconfig")]
st["calls"].append(args)
st.setdefault("seen_env", []).extend(k for k in os.environ if k.startswith("PULUMI_CONFIG_PASSPHRASE"))
def save(): state_file.write_text(json.dumps(st))
verb = args[0]
if verb == "create":
    pod = json.loads(sys.stdin.read())
    if st["create_errors"]:
        save(); sys.stderr.write(st["create_errors"].pop(0)); save(); sys.exit(1)
    st["pods"][pod["metadata"]["name"]] = {"pod": pod, "step": 0}
    save(); print("pod/" + pod["metadata"]["name"]); sys.exit(0)
if verb == "get" and args[1] == "namespace":
    ns = st.get("namespace", {"metadata": {"name": args[2], "labels": {
        "app.kubernetes.io/managed-by": "wasm-shim-fleet"}}})
    save()
    if ns is None:
        sys.stderr.write(f'Error from server (NotFound): namespaces "{args[2]}" not found'); sys.exit(1)
    print(json.dumps(ns)); sys.exit(0)
name = args[2] if verb in ("get", "delete") else args[1]
p = st["pods"].get(name)
if verb == "get":
    if p is None or p.get("deleted"):
        save(); sys.stderr.write(f'Error from server (NotFound): pods "{name}" not found'); sys.exit(1)
    steps = st["script"][list(st["pods"]).index(name)]["states"]
    status = steps[min(p["step"], len(steps) - 1)]
    p["step"] += 1
    if status == "gone":
        p["deleted"] = True; save(); sys.stderr.write("NotFound"); sys.exit(1)
    save(); print(json.dumps({**p["pod"], "status": status})); sys.exit(0)
if verb == "logs":
    run = p["pod"]["metadata"]["labels"]["wasm-shim-fleet.io/run"]
    save(); print(st["script"][list(st["pods"]).index(name)]["log"].replace("RUNID", run), end=""); sys.exit(0)
if verb == "delete":
    if p: p["deleted"] = True
    save(); sys.exit(0)
'''
RUNNING = {"phase": "Running", "containerStatuses": [{"state": {"running": {}}}]}


def _result_log(out: str, err: str, rc: int) -> str:
    return _log(out, err, rc, "RUNID")


@pytest.fixture
def fake_kubectl(tmp_path, monkeypatch):
    exe = tmp_path / "kubectl"
    exe.write_text(FAKE_KUBECTL)
    exe.chmod(0o755)
    monkeypatch.setenv("KUBECTL", str(exe))
    monkeypatch.setenv("WSF_KUBECONFIG", "")

    def scenario(pods: list[dict], create_errors: list[str] | None = None, **extra):
        (tmp_path / "state.json").write_text(json.dumps({"pods": {}, "calls": [], "script": pods,
                                                         "create_errors": create_errors or [], **extra}))

    def state() -> dict:
        return json.loads((tmp_path / "state.json").read_text())

    scenario.state = state
    return scenario


def _run(capsys, script: str = "echo hi\n") -> tuple[int, str, str]:
    from components.incluster_run import main

    rc = main(["--node", "node-a", "--namespace", "ns", "--image", IMAGE, "--resource", "r", "--script", script])
    out, err = capsys.readouterr()
    return rc, out, err


def test_the_runner_prints_the_result_exits_with_its_status_and_acknowledges_by_deleting_the_pod(
        fake_kubectl, capsys):
    fake_kubectl([{"states": [{"phase": "Pending"}, RUNNING], "log": _result_log("changed\n", "warn\n", 3)}])
    rc, out, err = _run(capsys)
    assert (rc, out, err) == (3, "changed\n", "warn\n")
    st = fake_kubectl.state()
    (pod,) = st["pods"].values()
    assert pod["deleted"]
    assert pod["pod"]["spec"]["nodeName"] == "node-a"
    assert [c[0] for c in st["calls"]].count("delete") == 1


def test_a_pod_that_vanishes_before_the_result_is_followed_by_an_attach_pod(fake_kubectl, capsys):
    fake_kubectl([{"states": [RUNNING, "gone"], "log": "partial"},
                  {"states": [RUNNING], "log": _result_log("done\n", "", 0)}])
    rc, out, err = _run(capsys)
    assert (rc, out) == (0, "done\n")
    assert "attaching again" in err
    pods = list(fake_kubectl.state()["pods"].values())
    assert [p["pod"]["spec"]["containers"][0]["command"][-2] for p in pods] == ["start", "attach"]
    assert all(p["deleted"] for p in pods)
    # both pods belong to the same run
    assert len({p["pod"]["metadata"]["labels"][incluster.RUN_LABEL] for p in pods}) == 1


def test_a_pod_that_cannot_pull_its_image_fails_the_command_with_the_reason_and_is_deleted(fake_kubectl, capsys):
    waiting = {"phase": "Pending", "containerStatuses": [{"state": {"waiting": {
        "reason": "ErrImagePull", "message": "failed to resolve reference"}}}]}
    fake_kubectl([{"states": [waiting], "log": ""}])
    rc, out, err = _run(capsys)
    assert rc == 1 and "ErrImagePull: failed to resolve reference" in err and IMAGE in err
    assert all(p["deleted"] for p in fake_kubectl.state()["pods"].values())


def test_pod_creation_waits_for_a_new_namespaces_service_account_and_explains_other_refusals(fake_kubectl, capsys):
    fake_kubectl([{"states": [RUNNING], "log": _result_log("ok\n", "", 0)}],
                 create_errors=['Error from server (Forbidden): pods "x" is forbidden: error looking up service '
                                'account ns/default: serviceaccount "default" not found'])
    assert _run(capsys)[:2] == (0, "ok\n")
    fake_kubectl([], create_errors=['Error from server (Forbidden): pods is forbidden: User "u" cannot create '
                                    'resource "pods" in API group "" in the namespace "ns"'])
    rc, _, err = _run(capsys)
    assert rc == 1 and "deploy/rbac.yaml" in err


@pytest.mark.parametrize(("namespace", "why"), [
    ({"metadata": {"name": "ns", "labels": {}}}, "has no label app.kubernetes.io/managed-by=wasm-shim-fleet"),
    ({"metadata": {"name": "ns", "labels": {"app.kubernetes.io/managed-by": "helm"}}}, "has no label"),
    (None, "cannot read namespace ns"),
])
def test_the_runner_starts_no_pod_in_a_namespace_the_program_did_not_create(fake_kubectl, capsys, namespace, why):
    fake_kubectl([{"states": [RUNNING], "log": _result_log("ok\n", "", 0)}], namespace=namespace)
    rc, out, err = _run(capsys)
    assert rc == 1 and why in err and out == ""
    assert fake_kubectl.state()["pods"] == {}


def test_the_runner_refuses_a_namespace_of_kubernetes_own_without_asking_the_cluster(fake_kubectl, capsys):
    from components.incluster_run import main

    fake_kubectl([{"states": [RUNNING], "log": _result_log("ok\n", "", 0)}],
                 namespace={"metadata": {"name": "kube-system", "labels": {
                     "app.kubernetes.io/managed-by": "wasm-shim-fleet"}}})
    rc = main(["--node", "node-a", "--namespace", "kube-system", "--image", IMAGE, "--resource", "r",
               "--script", "echo hi"])
    err = capsys.readouterr().err
    assert rc == 1 and "refusing to start a privileged runner pod in namespace kube-system" in err
    assert fake_kubectl.state()["pods"] == {}


def test_kubectl_does_not_inherit_the_stacks_passphrase(fake_kubectl, capsys, monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "stack-secret")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", "/nonexistent/passphrase")
    fake_kubectl([{"states": [RUNNING], "log": _result_log("ok\n", "", 0)}])
    assert _run(capsys)[:2] == (0, "ok\n")
    st = fake_kubectl.state()
    assert len(st["calls"]) >= 3 and st["seen_env"] == []
