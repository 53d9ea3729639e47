"""Agent pools as plain data: what the program puts in the cluster for a pool whose nodes are chosen by label
(`transport: agent`), and what the node agent (deploy/agent, Go) reads.

Per stack (shared by its agent pools): a namespace, the agents' RBAC (a ClusterRole that may read Nodes and
patch them, a Role for Events and for reading their DaemonSet), and a ValidatingAdmissionPolicy that lets an
agent change only the Node its pod runs on (the node-name claim of its bound token), and there only the fleet's
labels, its pool's claim and its pool's status annotation. Per pool: a ServiceAccount, a ConfigMap with the
pool's desired state (content-addressed name), and a DaemonSet whose pods run the agent on every node the
pool's nodeSelector matches, now and later.

What a node agent does with the state (deploy/agent/converge.go): claim the node for its pool (label
`wasm-shim-fleet.io/pool`), remove labels the pool no longer promises, run the `binaries` script (the node kit,
delivered with the run, then each binary: download, sha256, probe), the `table` script (one containerd restart
when the table changes, verified, rolled back on failure; then the binaries the pool no longer runs go), check
`node.status.runtimeHandlers`, and only then label the node. Every script is rendered here by the same code that
renders the other transports' scripts (components/core/nodescript.py), and runs on the host through the same
host script as the per-node in-cluster transport (`kit/run-on-host.sh`, through `/wsf-enter`).

A bump changes the state, so the ConfigMap's name and the pod template's `desired` annotation: the DaemonSet rolls
node by node (`rollout.maxUnavailable`, `rollout.minReadySeconds`). The program waits for that rollout itself
(components/agent_run.py, mode `rollout`) so that a node whose agent cannot converge fails `pulumi up` with the
node's name and the agent's reason, instead of a generic timeout. Removing the pool (or `pulumi destroy`) deletes
the DaemonSet first (no agent ever uninstalls on a signal: a rollout replaces pods) and then runs a short-lived
DaemonSet of the same agent in mode `uninstall` on the same nodes (mode `uninstall` of agent_run.py), which takes
labels, table, binaries and kit back, and is deleted once every node has done so.

Nothing here imports pulumi; the components (components/agent.py) turn these dicts into resources.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from . import incluster, naming, nodescript
from .plan import AgentPoolPlan, FleetPlan

#: state.json's format, checked by the agent.
STATE_VERSION = 1
#: Where the agent container finds the state (the ConfigMap) and keeps its ready file (an emptyDir).
STATE_DIR = "/etc/wasm-shim-fleet"
RUN_DIR = "/run/wasm-shim-fleet"
#: The agent binary in the image (deploy/agent), and /wsf-enter beside it (deploy/runner/wsf-enter.c).
AGENT_BINARY = "/wsf-agent"
#: Labels of the agents' objects; the DaemonSet selects its pods by app, pool and mode.
APP = ("app.kubernetes.io/name", "wasm-shim-fleet-agent")
POOL_LABEL = "wasm-shim-fleet.io/agent-pool"
MODE_LABEL = "wasm-shim-fleet.io/agent-mode"
MODES = ("install", "uninstall")
#: Pod template annotations: the releases in words (what a reviewer reads in a preview) and the state's hash.
RELEASES_ANNOTATION = "wasm-shim-fleet.io/releases"
RETIRING_ANNOTATION = "wasm-shim-fleet.io/retiring"
DESIRED_ANNOTATION = "wasm-shim-fleet.io/desired"
#: How long a node's agent may take to see its handlers in node.status.runtimeHandlers after a restart.
VERIFY_SECONDS = 120
#: A pod being replaced finishes the pass in flight (a handler table change restarts containerd once).
GRACE_SECONDS = 600
#: The rollout fails once a node's agent has failed this many passes in a row on the new state.
FAIL_AFTER = 3


def label_handlers(plan: FleetPlan, pool: AgentPoolPlan) -> dict[str, str]:
    """Each label the pool's nodes carry -> the handler it promises (the handler of the class selecting it)."""
    by_label = {k: rc.handler for rc in plan.runtime_classes for k in rc.node_selector}
    return {label: by_label[label] for label in pool.node.labels}


def agent_state(plan: FleetPlan, pool: AgentPoolPlan, force_labels: bool = False) -> dict[str, Any]:
    """state.json of the pool, without its `desired` hash (desired_hash adds it)."""
    node = pool.node
    return {
        "version": STATE_VERSION,
        "pool": pool.name,
        "releases": list(node.releases),
        "retiring": list(node.retiring),
        "labels": label_handlers(plan, pool),
        "claimLabel": naming.CLAIM_LABEL,
        "fleetLabelPrefix": naming.fleet_label_prefix(plan.runtime, plan.label_prefix),
        "statusAnnotation": naming.agent_status_annotation(pool.name),
        "fieldManager": naming.agent_field_manager(pool.name),
        "forceLabels": force_labels,
        "handlers": dict(node.handlers),
        "verifySeconds": VERIFY_SECONDS,
        "checkSeconds": pool.check_seconds,
        "scripts": nodescript.agent_scripts(node),
    }


def desired_hash(state: Mapping[str, Any], *, image: str, api_server: str | None, kit: str | None = None,
                 host_script: str | None = None) -> str:
    """The hash of everything a pool's agents run with: a change of any of it rolls the DaemonSet."""
    doc = {"state": {k: v for k, v in state.items() if k != "desired"}, "image": image, "apiServer": api_server,
           "kit": nodescript.kit_sha256(kit), "host": hashlib.sha256(
               (incluster.HOST_SCRIPT if host_script is None else host_script).encode()).hexdigest()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def state_json(state: Mapping[str, Any], desired: str) -> str:
    return json.dumps({**state, "desired": desired}, indent=1, sort_keys=True) + "\n"


def config_map_name(pool: str, desired: str) -> str:
    """Content-addressed: a new state is a new ConfigMap, so the pods of the old state keep theirs until replaced."""
    return f"{naming.agent_name(pool)}-{desired[:10]}"


def config_map(pool: str, namespace: str, state: Mapping[str, Any], desired: str,
               kit: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": config_map_name(pool, desired), "namespace": namespace,
                     "labels": _common_labels(pool)},
        "immutable": True,
        "data": {"state.json": state_json(state, desired), "kit.sh": nodescript.kit_text() if kit is None else kit,
                 "run-on-host.sh": incluster.HOST_SCRIPT},
    }


def _common_labels(pool: str | None = None) -> dict[str, str]:
    out = {incluster.MANAGED_BY[0]: incluster.MANAGED_BY[1], APP[0]: APP[1]}
    if pool is not None:
        out[POOL_LABEL] = pool
    return out


def selector_labels(pool: str, mode: str = "install") -> dict[str, str]:
    """The labels by which a pool's DaemonSet (of a mode) selects its pods."""
    return {APP[0]: APP[1], POOL_LABEL: pool, MODE_LABEL: mode}


def daemonset_name(pool: str, mode: str = "install") -> str:
    return naming.agent_name(pool) + ("" if mode == "install" else "-uninstall")


def daemonset(pool: AgentPoolPlan, *, namespace: str, image: str, desired: str, api_server: str | None = None,
              mode: str = "install") -> dict[str, Any]:
    """The DaemonSet that runs the pool's agent on every node its selector matches."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {MODES}")
    env: list[dict[str, Any]] = [
        {"name": "WSF_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "WSF_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "WSF_POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "WSF_POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "WSF_AGENT_MODE", "value": mode},
    ]
    if mode == "install":  # an agent that ends on a node its DaemonSet no longer selects uninstalls it there
        env.append({"name": "WSF_DAEMONSET", "value": daemonset_name(pool.name)})
    if api_server:
        host, _, port = api_server.rpartition(":")
        env += [{"name": "KUBERNETES_SERVICE_HOST", "value": host.strip("[]")},
                {"name": "KUBERNETES_SERVICE_PORT", "value": port}]
    node = pool.node
    rollout = pool.rollout
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {
            "name": daemonset_name(pool.name, mode), "namespace": namespace, "labels": _common_labels(pool.name),
            # The program waits for the rollout itself (agent_run.py rollout), naming the node that fails and why.
            "annotations": {"pulumi.com/skipAwait": "true"},
        },
        "spec": {
            "selector": {"matchLabels": selector_labels(pool.name, mode)},
            "minReadySeconds": rollout.min_ready_seconds,
            "updateStrategy": {"type": "RollingUpdate",
                               "rollingUpdate": {"maxUnavailable": rollout.max_unavailable, "maxSurge": 0}},
            "template": {
                "metadata": {
                    "labels": {**selector_labels(pool.name, mode), incluster.MANAGED_BY[0]: incluster.MANAGED_BY[1]},
                    "annotations": {RELEASES_ANNOTATION: " ".join(node.releases) or "(none)",
                                    RETIRING_ANNOTATION: " ".join(node.retiring) or "(none)",
                                    DESIRED_ANNOTATION: desired},
                },
                "spec": {
                    "serviceAccountName": naming.agent_name(pool.name),
                    "automountServiceAccountToken": True,
                    # hostPID: /wsf-enter finds the container runtime among its ancestors and joins its
                    # namespaces; hostNetwork: the agent works before (and without) the pod network.
                    "hostPID": True,
                    "hostNetwork": True,
                    "enableServiceLinks": False,
                    "nodeSelector": dict(pool.node_selector),
                    # A node agent runs on every selected node whatever its taints (Wasm node groups are often
                    # tainted for their workloads).
                    "tolerations": [{"operator": "Exists"}],
                    "terminationGracePeriodSeconds": GRACE_SECONDS,
                    "containers": [{
                        "name": "agent",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": [AGENT_BINARY],
                        "env": env,
                        "volumeMounts": [{"name": "state", "mountPath": STATE_DIR, "readOnly": True},
                                         {"name": "run", "mountPath": RUN_DIR}],
                        "readinessProbe": {"exec": {"command": [AGENT_BINARY, "ready"]}, "periodSeconds": 5,
                                           "failureThreshold": 1},
                        # privileged: the node commands run as root in the host's namespaces (they write
                        # /usr/local/bin and containerd's config and restart containerd), see docs/operating.md.
                        "securityContext": {"privileged": True, "runAsUser": 0, "readOnlyRootFilesystem": True},
                        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
                    }],
                    "volumes": [
                        {"name": "state", "configMap": {"name": config_map_name(pool.name, desired),
                                                        "defaultMode": 0o444}},
                        {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                    ],
                },
            },
        },
    }


# ---------------------------------------------------------------------------------------- access
def cluster_name(namespace: str) -> str:
    """The name of the stack's cluster-wide objects for its agents (one set per agent namespace)."""
    return f"wasm-shim-fleet-agent.{namespace}"


def service_account(pool: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": naming.agent_name(pool), "namespace": namespace, "labels": _common_labels(pool)}}


def namespace_manifest(namespace: str) -> dict[str, Any]:
    """The agents' namespace: Pod Security `privileged` there only (the agents are privileged)."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {**_common_labels(), **incluster.POD_SECURITY}}}


def cluster_role(namespace: str) -> dict[str, Any]:
    """Read Nodes, patch Nodes: the admission policy limits a patch to the agent's own Node and the fleet's keys."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": cluster_name(namespace), "labels": _common_labels()},
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch"]}]}


def role(namespace: str) -> dict[str, Any]:
    """In the agents' namespace only: Events about their pods, and reading their DaemonSets."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "wasm-shim-fleet-agent", "namespace": namespace, "labels": _common_labels()},
            "rules": [{"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
                      {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["get"]}]}


def _subjects(namespace: str) -> list[dict[str, str]]:
    """Every ServiceAccount of the agents' namespace (where only the pools' agents run): a binding that does not
    change when pools come and go, so that a pool being removed keeps its rights until its uninstall is done."""
    return [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": f"system:serviceaccounts:{namespace}"}]


def cluster_role_binding(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": cluster_name(namespace), "labels": _common_labels()},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": cluster_name(namespace)},
            "subjects": _subjects(namespace)}


def role_binding(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "wasm-shim-fleet-agent", "namespace": namespace, "labels": _common_labels()},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "wasm-shim-fleet-agent"},
            "subjects": _subjects(namespace)}


def _cel(text: str) -> str:
    """A string literal of CEL (single quotes; our values hold no quote or backslash, checked)."""
    if "'" in text or "\\" in text:
        raise ValueError(f"{text!r} cannot be a CEL literal here")
    return f"'{text}'"


def admission_policy(namespace: str, runtime: str, label_prefix: str = "") -> dict[str, Any]:
    """What an agent's ServiceAccount may do to a Node, enforced by the API server (RBAC cannot say it): only its
    own Node (the node-name claim of its pod-bound token), only the fleet's labels (values "true"), its own
    pool's claim and status annotation, and nothing else of the Node (spec, other labels and annotations,
    finalizers, owners). A claim of another pool can be neither changed nor removed."""
    sa_prefix = f"system:serviceaccount:{namespace}:"
    fleet = _cel(naming.fleet_label_prefix(runtime, label_prefix))
    claim = _cel(naming.CLAIM_LABEL)
    status_suffix = _cel(f".agent.{naming.ANNOTATION_DOMAIN}/status")
    node_claim = "'authentication.kubernetes.io/node-name'"
    old, new = "variables.oldLabels", "variables.newLabels"
    ours = f"(k.startsWith({fleet}) || k == {claim})"
    same_label = f"(k in {old} && {new}[k] == {old}[k])"
    return {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": cluster_name(namespace), "labels": _common_labels()},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                    "operations": ["UPDATE"], "resources": ["nodes"]}]},
            "matchConditions": [{"name": "wasm-shim-fleet-agents",
                                 "expression": f"request.userInfo.username.startsWith({_cel(sa_prefix)})"}],
            "variables": [
                {"name": "pool", "expression": f"request.userInfo.username.replace("
                                               f"{_cel(sa_prefix + naming.AGENT_PREFIX)}, '')"},
                {"name": "oldLabels", "expression": "oldObject.metadata.?labels.orValue({})"},
                {"name": "newLabels", "expression": "object.metadata.?labels.orValue({})"},
                {"name": "oldAnnotations", "expression": "oldObject.metadata.?annotations.orValue({})"},
                {"name": "newAnnotations", "expression": "object.metadata.?annotations.orValue({})"},
                {"name": "statusKey", "expression": f"variables.pool + {status_suffix}"},
                {"name": "foreign", "expression": f"{claim} in {old} && {old}[{claim}] != variables.pool"},
            ],
            "validations": [
                {"expression": f"has(request.userInfo.extra) && {node_claim} in request.userInfo.extra && "
                               f"object.metadata.name in request.userInfo.extra[{node_claim}]",
                 "messageExpression": "'a wasm-shim-fleet agent may change only the Node its pod runs on, not ' + "
                                      "object.metadata.name",
                 "reason": "Forbidden"},
                {"expression": f"{new}.all(k, {ours} || {same_label}) && {old}.all(k, {ours} || k in {new})",
                 "message": f"a wasm-shim-fleet agent may set or remove only the fleet's labels "
                            f"({naming.fleet_label_prefix(runtime, label_prefix)}*, {naming.CLAIM_LABEL})",
                 "reason": "Forbidden"},
                {"expression": f"{new}.all(k, !k.startsWith({fleet}) || {new}[k] == 'true')",
                 "message": "the fleet's labels have the value \"true\"", "reason": "Forbidden"},
                {"expression": f"(!({claim} in {old}) || {old}[{claim}] == variables.pool || "
                               f"({claim} in {new} && {new}[{claim}] == {old}[{claim}])) && "
                               f"(!({claim} in {new}) || {new}[{claim}] == variables.pool || "
                               f"({claim} in {old} && {old}[{claim}] == {new}[{claim}]))",
                 "message": f"an agent may set {naming.CLAIM_LABEL} only to its own pool, and may not change "
                            "another pool's claim", "reason": "Forbidden"},
                {"expression": f"!variables.foreign || ({new}.all(k, !k.startsWith({fleet}) || {same_label}) && "
                               f"{old}.all(k, !k.startsWith({fleet}) || k in {new}))",
                 "message": "a node claimed by another pool keeps its fleet labels", "reason": "Forbidden"},
                {"expression": "variables.newAnnotations.all(k, k == variables.statusKey || "
                               "(k in variables.oldAnnotations && variables.oldAnnotations[k] == "
                               "variables.newAnnotations[k])) && variables.oldAnnotations.all(k, "
                               "k == variables.statusKey || k in variables.newAnnotations)",
                 "message": "a wasm-shim-fleet agent may set only its own pool's status annotation",
                 "reason": "Forbidden"},
                {"expression": "object.spec == oldObject.spec && "
                               "object.metadata.?finalizers.orValue([]) == oldObject.metadata.?finalizers.orValue([])"
                               " && object.metadata.?ownerReferences.orValue([]) == "
                               "oldObject.metadata.?ownerReferences.orValue([])",
                 "message": "a wasm-shim-fleet agent may not change a Node's spec, finalizers or owners",
                 "reason": "Forbidden"},
            ],
        },
    }


def admission_policy_binding(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": cluster_name(namespace), "labels": _common_labels()},
            "spec": {"policyName": cluster_name(namespace), "validationActions": ["Deny"]}}


# --------------------------------------------------------------------------------- rollout and cleanup
def rollout_job(pool: AgentPoolPlan, *, namespace: str, desired: str) -> dict[str, Any]:
    """What `agent_run.py` waits for after a change of the pool (the `create` text of its rollout command)."""
    return {"action": "rollout", "pool": pool.name, "namespace": namespace, "daemonset": daemonset_name(pool.name),
            "desired": desired, "releases": list(pool.node.releases), "retiring": list(pool.node.retiring),
            "timeoutSeconds": pool.rollout.timeout_seconds, "failAfter": FAIL_AFTER,
            "statusAnnotation": naming.agent_status_annotation(pool.name)}


def uninstall_job(pool: AgentPoolPlan, *, namespace: str, image: str, desired: str,
                  api_server: str | None = None) -> dict[str, Any]:
    """What `agent_run.py` does when the pool goes (the `delete` text of its cleanup command): wait until the
    pool's agent pods are gone, run the uninstall DaemonSet until it is Ready on every selected node, delete it."""
    return {"action": "uninstall", "pool": pool.name, "namespace": namespace,
            "selector": selector_labels(pool.name), "timeoutSeconds": pool.rollout.timeout_seconds,
            "statusAnnotation": naming.agent_status_annotation(pool.name),
            "daemonset": daemonset(pool, namespace=namespace, image=image, desired=desired, api_server=api_server,
                                   mode="uninstall")}


def job_text(job: Mapping[str, Any]) -> str:
    """A job as the command's text: one JSON document (what the preview shows and the state keeps)."""
    return json.dumps(job, sort_keys=True, separators=(",", ":")) + "\n"


# ------------------------------------------------------------------------------------- what agents say
def parse_status(value: str | None) -> dict[str, Any] | None:
    """The status annotation an agent wrote on its Node, or None when absent or unreadable."""
    if not value:
        return None
    try:
        doc = json.loads(value)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether a nodeSelector matches a node's labels (every key with its value)."""
    return all(labels.get(k) == v for k, v in selector.items())
