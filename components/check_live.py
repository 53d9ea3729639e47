"""`python -m components check STACK_FILE`: read what the cluster and the nodes really have, read-only, and
print the drift from the plan per node (components/core/check.py); exit 2 when there is drift. The thin
adapter that does the reading lives here, outside the pure core.

Reads: the Node objects (labels, node.status.runtimeHandlers) with `kubectl get nodes -o json` (the stack's
kubernetes.kubeconfig/context, else kubectl's usual lookup); per node, over its transport (OpenSSH's `ssh`
for ssh pools, with the node's pinned hostKey; `sh` for local pools; a runner pod for kubernetes pools), the
sha256 of every `containerd-shim-*` binary and the containerd config the program edits. Nothing is changed
(a runner pod and its run folder on the node exist only while it reads).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .core import agent
from .core.check import NodeState, Report, check_agent_pool, check_fleet
from .core.config import Kubernetes, StackFileError, kubeconfig_is_contents, project_dir, read_stack_file
from .core.plan import FleetPlan, NodePlan, plan_from_config
from .kubeconfig import kubectl_kubeconfig

#: Separates the two parts of the read script's output.
_MARK = "--- wasm-shim-fleet check: config"
_RECORD = "record "
_NO_CONFIG = "--- wasm-shim-fleet check: no config file"


def read_script(node: NodePlan) -> str:
    """The read-only script run on a node: sha256 of each shim binary, then the containerd config."""
    cfg = shlex.quote(node.containerd.config_path)
    return f"""set -eu
R=${{WSF_NODE_ROOT:-/}}
while :; do case $R in */) R=${{R%/}} ;; *) break ;; esac; done
for f in "$R"/usr/local/bin/containerd-shim-*; do
    if [ -f "$f" ]; then sha256sum "$f"; fi
done
for f in "$R"/var/lib/wasm-shim-fleet/binaries/*.sha256; do
    if [ -f "$f" ]; then printf '{_RECORD}%s %s\\n' "$(basename "$f" .sha256)" "$(cat "$f")"; fi
done
if [ -f "$R"{cfg} ]; then echo '{_MARK}'; cat "$R"{cfg}; else echo '{_NO_CONFIG}'; fi
"""


def parse_read_output(text: str) -> tuple[dict[str, str], dict[str, tuple[str, str]], str | None]:
    """(binary -> sha256, binary -> (artifact sha256, installed sha256) records, config text or None)."""
    head, sep, after = text.partition(_MARK + "\n")
    config: str | None = after
    if not sep:
        head = text.split(_NO_CONFIG, 1)[0]
        config = None
    binaries, records = {}, {}
    for line in head.splitlines():
        if line.startswith(_RECORD):
            parts = line[len(_RECORD):].split()
            if len(parts) == 3:
                records[parts[0]] = (parts[1], parts[2])
            continue
        parts = line.split(None, 1)
        if len(parts) == 2 and len(parts[0]) == 64:
            binaries[os.path.basename(parts[1].strip())] = parts[0]
    return binaries, records, config


def _run_on_node(node: NodePlan, user: str, identity: str | None, base_dir: Path,
                 timeout: float, k8s: Kubernetes | None = None) -> subprocess.CompletedProcess[str]:
    script = read_script(node)
    if node.transport == "kubernetes":
        # Through the cluster, in a runner pod like the program's own node commands (components/incluster_run.py).
        if k8s is None or k8s.runner_image is None:
            raise OSError("transport kubernetes needs kubernetes.runnerImage")
        from .core import incluster as ic

        runner = str(Path(__file__).resolve().parent / "incluster_run.py")
        argv = ic.runner_interpreter(python=sys.executable, runner=runner, node=node.name,
                                     namespace=k8s.runner_namespace, image=k8s.runner_image,
                                     resource=f"check-{node.name}")
        kubeconfig = k8s.kubeconfig or ""
        if kubeconfig and not kubeconfig_is_contents(kubeconfig):
            kubeconfig = os.path.expanduser(kubeconfig)
        env = {**os.environ, "WSF_KUBECONFIG": kubeconfig, "WSF_KUBE_CONTEXT": k8s.context or ""}
        return subprocess.run([*argv, script], capture_output=True, text=True, env=env, timeout=timeout + 300)
    if node.transport == "local":
        env = {**os.environ, "WSF_NODE_ROOT": str((base_dir / node.node_root).resolve())}
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="wsf-check-") as tmp:
        argv = ["ssh", "-n", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "LogLevel=ERROR"]
        if node.port:
            argv += ["-p", str(node.port)]
        if identity:
            argv += ["-i", identity, "-o", "IdentitiesOnly=yes"]
        if node.host_key:
            known = Path(tmp) / "known_hosts"
            host = node.host if not node.port or node.port == 22 else f"[{node.host}]:{node.port}"
            known.write_text(f"{host} {node.host_key}\n")
            argv += ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}"]
        argv += [f"{user}@{node.host}", script]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def read_node_files(node: NodePlan, user: str, identity: str | None, base_dir: Path,
                    timeout: float = 60, k8s: Kubernetes | None = None) -> NodeState:
    """The node's files as a NodeState (labels and runtime handlers left for the caller). `k8s`: the stack's
    kubernetes settings, for nodes of transport kubernetes."""
    try:
        proc = _run_on_node(node, user, identity, base_dir, timeout, k8s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return NodeState(node.name, labels=None, error=str(exc))
    if proc.returncode != 0:
        return NodeState(node.name, labels=None,
                         error=(proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1])
    binaries, records, config = parse_read_output(proc.stdout)
    return NodeState(node.name, labels=None, binaries=binaries, records=records, config_text=config)


def read_api_nodes(kubeconfig: str | None, context: str | None, kubectl: str | None = None) -> dict[str, Any]:
    """name -> Node object, via kubectl. A kubeconfig given as contents (not a path) is written to a private
    temporary file that is removed before this returns."""
    kubectl = kubectl or os.environ.get("KUBECTL", "kubectl")
    argv = [kubectl, "get", "nodes", "-o", "json"]
    if context:
        argv += ["--context", context]
    with tempfile.TemporaryDirectory(prefix="wsf-check-") as tmp:
        path = kubectl_kubeconfig(kubeconfig, tmp)
        if path:
            argv += ["--kubeconfig", path]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl get nodes failed: {proc.stderr.strip()}")
    return {item["metadata"]["name"]: item for item in json.loads(proc.stdout)["items"]}


def observe(plan: FleetPlan, api_nodes: Mapping[str, Any], user: str, identity: str | None,
            base_dir: Path, k8s: Kubernetes | None = None) -> dict[str, NodeState]:
    states = {}
    for node in plan.nodes:
        obj = api_nodes.get(node.name)
        labels = obj["metadata"].get("labels", {}) if obj else None
        handlers = None
        if obj and "runtimeHandlers" in obj.get("status", {}):
            handlers = [h.get("name", "") for h in obj["status"]["runtimeHandlers"]]
        files = read_node_files(node, user, identity, base_dir, k8s=k8s)
        states[node.name] = replace(files, labels=labels, runtime_handlers=handlers)
    return states


def check_main(stack_file: str, identity: str | None = None, as_json: bool = False) -> int:
    try:
        raw = read_stack_file(stack_file)
    except StackFileError as exc:
        print(f"check: {exc}", file=sys.stderr)
        return 2
    base_dir = project_dir(stack_file)
    cfg, plan = plan_from_config(raw, base_dir)
    for p in plan.problems:
        print(f"{stack_file}: {p}", file=sys.stderr)
    if not plan.ok:
        print("check: fix the errors above first", file=sys.stderr)
        return 2
    if cfg.kubernetes.render_dir:
        print("check: this stack renders manifests (kubernetes.renderDir) instead of applying them; there is no "
              "cluster to compare with", file=sys.stderr)
        return 2
    try:
        api_nodes = read_api_nodes(cfg.kubernetes.kubeconfig, cfg.kubernetes.context)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"check: cannot read the cluster's nodes: {exc}", file=sys.stderr)
        return 1
    report: Report = check_fleet(plan, observe(plan, api_nodes, cfg.ssh.user, identity, base_dir,
                                                      cfg.kubernetes))
    report = with_agent_pools(report, plan, cfg.kubernetes, api_nodes)
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.words(), end="")
    return 0 if report.clean else 2


def with_agent_pools(report: Report, plan: FleetPlan, k8s: Kubernetes, api_nodes: Mapping[str, Any]) -> Report:
    """The report with every agent pool's nodes, as their agents published them on the Nodes (no SSH, no pod)."""
    if not plan.agent_pools:
        return report
    drift, nodes, info = list(report.drift), list(report.nodes), dict(report.info)
    for pool in plan.agent_pools:
        state = agent.agent_state(plan, pool, k8s.force_labels)
        desired = agent.desired_hash(state, image=k8s.agent_image or "", api_server=k8s.agent_api_server)
        found, checked, notes = check_agent_pool(plan, pool, desired, api_nodes)
        drift += found
        nodes += [n for n in checked if n not in nodes]
        info.update(notes)
        selected = [n for n in checked if agent.selects(pool.node_selector,
                                                        api_nodes[n]["metadata"].get("labels") or {})]
        print(f"pool {pool.name} (agent): selects {len(selected)} node(s) with "
              f"{', '.join(f'{k}={v}' for k, v in sorted(pool.node_selector.items()))}", file=sys.stderr)
    return Report(tuple(drift), tuple(nodes), info)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="compare what the cluster and nodes really have with the plan (read-only); "
                                     "exit 2 on drift")
    p.add_argument("stack_file")
    p.add_argument("--identity", help="SSH private key file for ssh pools (default: your ssh agent and config)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=lambda a: check_main(a.stack_file, a.identity, a.json))
