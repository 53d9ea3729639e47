"""The runner of an agent pool's two local commands (components/agent.py): wait for a rollout, or uninstall.

Run by the engine as a command:local:Command's interpreter:

    python3 components/agent_run.py --job '<JSON job>'

The job is the command's text (components/core/agent.py: rollout_job, uninstall_job), so a preview shows it and
the state keeps it; a delete recorded long ago runs its own recorded job. It needs only the Python standard
library and `kubectl` (KUBECTL, else on PATH) with the stack's kubeconfig (WSF_KUBECONFIG: a path or the file's
contents; WSF_KUBE_CONTEXT).

- `rollout`: wait until the pool's DaemonSet runs the job's desired state on every node it selects, each agent
  Ready (for `minReadySeconds`). Fail as soon as a node's agent has failed `failAfter` passes in a row on this
  state, or refused the node, or its pod cannot start, naming the node and the agent's reason; and fail when
  the rollout has not finished within `timeoutSeconds`, naming the nodes it waits for. The DaemonSet stops
  where an agent does not become Ready, so every node not yet reached keeps what it ran.
- `uninstall`: the pool's DaemonSet is gone (the engine deleted it just before). Wait until its agent pods are
  gone too (a pod being replaced finishes its pass), then run the job's uninstall DaemonSet, whose agents take
  labels, handler table, binaries and kit back on every node the pool selected, wait until each is Ready (done),
  and delete it. A node that cannot uninstall fails the command, naming it and why; the uninstall DaemonSet is
  deleted either way, so it never outlives the command.
- `none`: nothing (the cleanup command's create).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: import the pure core from the project folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.core import agent  # noqa: E402 - after the path set-up above
from components.incluster_run import Kubectl, RunError  # noqa: E402 - after the path set-up above

#: Waiting reasons of an agent container that will not resolve by themselves.
FATAL_WAITING = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                 "CreateContainerConfigError", "CreateContainerError", "RunContainerError", "CrashLoopBackOff")
POLL = 2.0
PROGRESS_EVERY = 15.0


def _say(text: str) -> None:
    print(f"wasm-shim-fleet: {text}", file=sys.stderr, flush=True)


class Cluster:
    """The few reads and writes the jobs need, through kubectl."""

    def __init__(self, kubectl: Kubectl, namespace: str) -> None:
        self.k = kubectl
        self.ns = namespace

    def _json(self, *args: str) -> Any:
        p = self.k(*args, "-o", "json")
        if p.returncode != 0:
            if "NotFound" in p.stderr or "not found" in p.stderr:
                return None
            raise RunError(f"kubectl {' '.join(args)}: {p.stderr.strip()}")
        return json.loads(p.stdout)

    def daemonset(self, name: str) -> dict | None:
        return self._json("get", "daemonset", name, "-n", self.ns)

    def pods(self, selector: Mapping[str, str]) -> list[dict]:
        sel = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        found = self._json("get", "pods", "-n", self.ns, "-l", sel)
        return list((found or {}).get("items") or [])

    def node(self, name: str) -> dict | None:
        return self._json("get", "node", name)

    def last_log_line(self, pod: str) -> str:
        """The agent's last log line (what it says when it could not even report on its Node)."""
        p = self.k("logs", pod, "-n", self.ns, "--tail", "5")
        lines = [ln for ln in (p.stdout or "").splitlines() if ln.strip()] if p.returncode == 0 else []
        return lines[-1][-300:] if lines else ""

    def apply(self, manifest: Mapping[str, Any]) -> None:
        p = self.k("apply", "-f", "-", stdin=json.dumps(manifest))
        if p.returncode != 0:
            raise RunError(f"cannot create DaemonSet {manifest['metadata']['name']} in namespace {self.ns}: "
                           f"{p.stderr.strip()}")

    def delete_daemonset(self, name: str) -> None:
        p = self.k("delete", "daemonset", name, "-n", self.ns, "--ignore-not-found", "--wait=true",
                   "--timeout=120s", timeout=150)
        if p.returncode != 0:
            raise RunError(f"cannot delete DaemonSet {name} in namespace {self.ns}: {p.stderr.strip()}")


def _ready(pod: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _cannot_start(pod: Mapping[str, Any]) -> str | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in FATAL_WAITING:
            return f"the agent pod {pod['metadata']['name']} cannot start: {waiting['reason']}: " \
                   f"{waiting.get('message', '').strip()}"
    return None


def _agent_status(cluster: Cluster, node: str, key: str) -> dict | None:
    found = cluster.node(node)
    if not found:
        return None
    return agent.parse_status(((found.get("metadata") or {}).get("annotations") or {}).get(key))


def _logged(cluster: Cluster, pod: Mapping[str, Any] | None) -> str:
    """What an agent that wrote no report last logged."""
    if not pod:
        return "no report"
    line = cluster.last_log_line(pod["metadata"]["name"])
    return f"no report; its agent last logged: {line}" if line else "no report"


def _names(nodes: list[str], limit: int = 8) -> str:
    shown = ", ".join(sorted(nodes)[:limit])
    return shown + (f" and {len(nodes) - limit} more" if len(nodes) > limit else "")


def rollout(cluster: Cluster, job: Mapping[str, Any], clock=time.monotonic, sleep=time.sleep) -> int:
    pool, name, desired = job["pool"], job["daemonset"], job["desired"]
    what = " ".join(job.get("releases") or []) or "no release"
    deadline = clock() + float(job["timeoutSeconds"])
    last_progress = 0.0
    while True:
        ds = cluster.daemonset(name)
        if ds is None:
            raise RunError(f"pool {pool}: DaemonSet {name} does not exist in namespace {cluster.ns}")
        template = ((ds["spec"]["template"].get("metadata") or {}).get("annotations") or {})
        if template.get(agent.DESIRED_ANNOTATION) != desired:
            raise RunError(f"pool {pool}: DaemonSet {name} runs state {template.get(agent.DESIRED_ANNOTATION)!r}, "
                           f"not {desired} (was it changed outside pulumi?); run `pulumi up` again")
        st = ds.get("status") or {}
        want = int(st.get("desiredNumberScheduled") or 0)
        updated = int(st.get("updatedNumberScheduled") or 0)
        available = int(st.get("numberAvailable") or 0)
        settled = int(st.get("observedGeneration") or 0) >= int(ds["metadata"].get("generation") or 0)
        if settled and updated >= want and available >= want and not st.get("numberUnavailable"):
            if want == 0:
                _say(f"pool {pool}: its nodeSelector matches no node yet; nodes that join with those labels get "
                     f"{what} from their agent")
            else:
                _say(f"pool {pool}: {want} node(s) run {what} (state {desired[:12]}), each agent Ready")
            print(f"pool {pool}: {want} node(s) converged to {desired[:12]}")
            return 0
        pods = cluster.pods({k: v for k, v in job.get("selector", agent.selector_labels(pool)).items()})
        done = sum(1 for p in pods if _ready(p) and ((p.get("metadata") or {}).get("annotations") or {}).get(
            agent.DESIRED_ANNOTATION) == desired)
        waiting = []
        for pod in pods:
            annotations = (pod.get("metadata") or {}).get("annotations") or {}
            if annotations.get(agent.DESIRED_ANNOTATION) != desired or _ready(pod):
                continue
            node = (pod.get("spec") or {}).get("nodeName") or "(unscheduled)"
            waiting.append(node)
            why = _cannot_start(pod)
            status = _agent_status(cluster, node, job["statusAnnotation"]) if why is None and node else None
            if status and status.get("desired") == desired:
                if status.get("state") == "refused":
                    why = status.get("reason") or "refused"
                elif status.get("state") == "failed" and int(status.get("attempts") or 0) >= int(job["failAfter"]):
                    why = f"{status.get('reason') or 'failed'} ({status.get('attempts')} attempts)"
            if why is not None:
                raise RunError(f"pool {pool}: the rollout stopped at node {node}: {why}. {done} of {want} "
                               "node(s) run the new state; every node not yet reached keeps what it ran (its "
                               "pods and labels). Fix the cause and run `pulumi up` again")
        now = clock()
        if now > deadline:
            detail = []
            by_node = {(p.get("spec") or {}).get("nodeName"): p for p in pods}
            for node in sorted(waiting)[:8]:
                status = _agent_status(cluster, node, job["statusAnnotation"]) if node != "(unscheduled)" else None
                said = (f"{status.get('state')}: {status.get('reason') or '-'}" if status
                        else _logged(cluster, by_node.get(node)))
                detail.append(f"{node} ({said})")
            raise RunError(f"pool {pool}: the rollout did not finish within {job['timeoutSeconds']}s: {updated} of "
                           f"{want} node(s) updated, {available} available; waiting for "
                           f"{', '.join(detail) or 'the DaemonSet controller'}. Nodes not yet reached keep what "
                           "they ran")
        if now - last_progress >= PROGRESS_EVERY:
            _say(f"pool {pool}: {updated} of {want} node(s) updated, {available} available"
                 + (f"; converging: {_names(waiting)}" if waiting else ""))
            last_progress = now
        sleep(POLL)


def uninstall(cluster: Cluster, job: Mapping[str, Any], clock=time.monotonic, sleep=time.sleep) -> int:
    pool = job["pool"]
    deadline = clock() + float(job["timeoutSeconds"])
    # The pool's own agents first: one still finishing its pass could label a node after the uninstall.
    last = 0.0
    while True:
        left = cluster.pods(job["selector"])
        if not left:
            break
        if clock() > deadline:
            raise RunError(f"pool {pool}: {len(left)} agent pod(s) still terminating after {job['timeoutSeconds']}s "
                           f"({_names([p['metadata']['name'] for p in left])}); nothing was uninstalled yet: run "
                           "the destroy (or up) again once they are gone")
        if clock() - last >= PROGRESS_EVERY:
            _say(f"pool {pool}: waiting for {len(left)} agent pod(s) to finish before the uninstall")
            last = clock()
        sleep(POLL)
    manifest = job["daemonset"]
    name = manifest["metadata"]["name"]
    cluster.apply(manifest)
    try:
        last = 0.0
        while True:
            ds = cluster.daemonset(name)
            st = (ds or {}).get("status") or {}
            want = int(st.get("desiredNumberScheduled") or 0)
            ready = int(st.get("numberReady") or 0)
            settled = ds is not None and int(st.get("observedGeneration") or 0) >= int(
                ds["metadata"].get("generation") or 0)
            pods = cluster.pods(manifest["spec"]["selector"]["matchLabels"])
            nodes = sorted((p.get("spec") or {}).get("nodeName") or "" for p in pods)
            if settled and ready >= want and len(pods) >= want:
                _say(f"pool {pool}: uninstalled from {want} node(s)" + (f": {_names(nodes)}" if nodes else ""))
                print(f"pool {pool}: uninstalled from {want} node(s)")
                return 0
            for pod in pods:
                if _ready(pod):
                    continue
                node = (pod.get("spec") or {}).get("nodeName") or ""
                why = _cannot_start(pod)
                status = _agent_status(cluster, node, job["statusAnnotation"]) if why is None and node else None
                if status and status.get("state") == "failed" and int(status.get("attempts") or 0) >= 3:
                    why = status.get("reason") or "failed"
                if why is not None:
                    raise RunError(f"pool {pool}: node {node} cannot uninstall: {why}. Fix the cause and run the "
                                   "destroy (or up) again; nodes that did uninstall stay clean")
            if clock() > deadline:
                late = [f"{(p.get('spec') or {}).get('nodeName') or p['metadata']['name']} ({_logged(cluster, p)})"
                        for p in pods if not _ready(p)]
                raise RunError(f"pool {pool}: the uninstall did not finish within {job['timeoutSeconds']}s: {ready} "
                               f"of {want} node(s) done; not done: {_names(late) or 'pods not yet created'} (a node "
                               "that is not Ready cannot run it: bring it back, or delete the Node, then run the "
                               "destroy (or up) again)")
            if clock() - last >= PROGRESS_EVERY:
                _say(f"pool {pool}: uninstalling: {ready} of {want} node(s) done")
                last = clock()
            sleep(POLL)
    finally:
        cluster.delete_daemonset(name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="agent_run", description=__doc__.split("\n\n")[0])
    p.add_argument("--job", required=True, help="the job, a JSON document")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        job = json.loads(args.job)
    except ValueError as exc:
        print(f"wasm-shim-fleet: error: the command's job is not JSON ({exc})", file=sys.stderr)
        return 2
    action = job.get("action") if isinstance(job, dict) else None
    if action == "none":
        return 0
    if action not in ("rollout", "uninstall"):
        print(f"wasm-shim-fleet: error: unknown job action {action!r}", file=sys.stderr)
        return 2

    def stop(signum, _frame):
        raise KeyboardInterrupt(signum)

    signal.signal(signal.SIGTERM, stop)
    with tempfile.TemporaryDirectory(prefix="wsf-agent-run-") as tmp:
        cluster = Cluster(Kubectl(tmp), job["namespace"])
        try:
            return (rollout if action == "rollout" else uninstall)(cluster, job)
        except RunError as exc:
            print(f"wasm-shim-fleet: error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"wasm-shim-fleet: pool {job.get('pool')}: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
