"""Node commands through the cluster (`transport: kubernetes`), as plain data: the pod that runs one resource
script on its node, the script that pod runs on the host, and the command line of the runner that drives it.

Nothing here talks to a cluster (the runner, components/incluster_run.py, does) and nothing imports pulumi or a
package outside the standard library at import time: the runner imports this module with any python3.

How one resource script reaches its node (the same script text as over SSH, only the way differs):

1. The runner (a local command where `pulumi up` runs) creates a pod in the runner namespace, pinned to the
   node (`nodeName`), `hostPID`, privileged, whose only process is
   `wsf-enter -- /bin/sh -c HOST_SCRIPT wasm-shim-fleet-run <mode> <run id>` (deploy/runner/wsf-enter.c): it
   joins the namespaces of the container runtime that started the pod (the containerd shim, in containerd's
   namespaces, which are the node's: where containerd reads its config and finds shims) and runs the host's
   own `/bin/sh` there, exactly as an SSH session would. The script text (and the kit, for the kit resource)
   travel in the pod's environment; nothing is mounted.
2. HOST_SCRIPT writes the script to `/var/lib/wasm-shim-fleet/runs/<run id>/` on the node and starts it
   **detached from the pod**: in its own session, moved into the cgroups of the node's container runtime (the
   containerd shim that started the pod), with that runtime's environment, so neither a containerd restart nor
   the pod's end can kill it. It writes its stdout, stderr and exit status into the run folder.
3. HOST_SCRIPT waits for the exit status, prints stdout, stderr and the status between markers that carry
   the run id, and removes the run folder. The runner reads the pod's log, checks the markers and exits with the
   script's status. If the pod dies before the markers (its runtime restarted under it), the runner starts
   another pod in `attach` mode on the same run id, which only waits for the same result: the script never runs
   twice and its result is never lost. Every pod is deleted when the command ends, whatever happened.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

#: The namespace the program creates for its runner pods (Pod Security `privileged` there only).
DEFAULT_NAMESPACE = "wasm-shim-fleet-runner"
#: Labels and annotations on every runner pod: who made it, for which node and resource, which run.
MANAGED_BY = ("app.kubernetes.io/managed-by", "wasm-shim-fleet")
COMPONENT = ("app.kubernetes.io/component", "node-command")
RUN_LABEL = "wasm-shim-fleet.io/run"
NODE_ANNOTATION = "wasm-shim-fleet.io/node"
RESOURCE_ANNOTATION = "wasm-shim-fleet.io/resource"
#: The Pod Security admission labels of the runner namespace.
POD_SECURITY = {"pod-security.kubernetes.io/enforce": "privileged",
                "pod-security.kubernetes.io/warn": "privileged",
                "pod-security.kubernetes.io/audit": "privileged"}
#: Where runs keep their script and result on the node, relative to the node root.
RUNS_DIR = "/var/lib/wasm-shim-fleet/runs"
#: The PATH of the host shell before the container runtime's environment is read.
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: The container's command before the host program (deploy/runner/wsf-enter.c, at the image's root).
ENTER = ("/wsf-enter", "--")
#: The runner image must be pinned by digest: `<repository>[:tag]@sha256:<64 hex>`.
_IMAGE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
                    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[0-9a-f]{64}$")
_RUN_ID = re.compile(r"^[0-9a-f]{16,32}$")
#: Environment names of the pod's container.
SCRIPT_ENV = "WSF_RUN_SCRIPT"
PAYLOAD_ENV = "WSF_RUN_PAYLOAD"
MODES = ("start", "attach")


def image_problem(image: object) -> str | None:
    """Why `image` cannot be the runner image, or None. It must be pinned by digest: a tag can move, and the
    pod runs privileged in every node's host namespaces."""
    if not isinstance(image, str) or not image:
        return "is not an image reference"
    if "@sha256:" not in image:
        return "is not pinned by digest (a tag can be moved to other bytes, and this image runs as root on every node)"
    if not _IMAGE.match(image):
        return "is not an image reference of the form <registry>/<repository>[:tag]@sha256:<64 lower-case hex>"
    return None


def namespace_problem(name: str) -> str | None:
    """Why `name` cannot be the runner namespace, or None. The program creates it, labels it Pod Security
    `privileged` and deletes it with the stack: a namespace of Kubernetes' own would lose that protection for
    the cluster's own workloads (and be deleted)."""
    if name == "default" or name.startswith("kube-"):
        return ("is a namespace Kubernetes owns (default, kube-*): the program labels its runner namespace Pod "
                "Security privileged and deletes it with the stack")
    return None


def managed_namespace_problem(namespace: dict) -> str | None:
    """Why the runner must not start privileged pods in this Namespace object (as the API server returns it),
    or None: only in the one the program created, which carries its managed-by label."""
    name = (namespace.get("metadata") or {}).get("name", "")
    why = namespace_problem(name)
    if why is not None:
        return why
    labels = (namespace.get("metadata") or {}).get("labels") or {}
    if labels.get(MANAGED_BY[0]) != MANAGED_BY[1]:
        return (f"has no label {MANAGED_BY[0]}={MANAGED_BY[1]}: the runner starts its privileged pods only in "
                "the namespace the program created for them")
    return None


def pod_name(run_id: str, attempt: int = 0) -> str:
    return f"wsf-run-{run_id}-{attempt}"


def _short(value: str, limit: int = 63) -> str:
    """A label value: the value itself when it fits, else a prefix and a hash (label values are <= 63)."""
    if len(value) <= limit and re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", value):
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:10]
    head = re.sub(r"[^A-Za-z0-9._-]", "-", value)[: limit - 11].strip("._-") or "x"
    return f"{head}-{digest}"


def k8s_literal(text: str) -> str:
    """`text` as a container's command, args or env value that Kubernetes passes on unchanged: the kubelet
    expands `$(NAME)` there and turns `$$` into `$`, so every `$` is written `$$`."""
    return text.replace("$", "$$")


def pod_manifest(*, node: str, namespace: str, image: str, run_id: str, script: str, resource: str,
                 mode: str = "start", attempt: int = 0, payload: str | None = None) -> dict:
    """The pod that runs `script` on `node` (mode start), or waits for the result of run `run_id` (attach)."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {MODES}")
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r} is not 16-32 lower-case hex digits")
    env = []
    if mode == "start":
        env.append({"name": SCRIPT_ENV, "value": k8s_literal(script)})
        if payload is not None:
            env.append({"name": PAYLOAD_ENV, "value": k8s_literal(payload)})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(run_id, attempt),
            "namespace": namespace,
            "labels": {MANAGED_BY[0]: MANAGED_BY[1], COMPONENT[0]: COMPONENT[1], RUN_LABEL: run_id},
            "annotations": {NODE_ANNOTATION: node, RESOURCE_ANNOTATION: resource},
        },
        "spec": {
            "nodeName": node,
            "hostPID": True,
            # Node commands must not depend on the pod network (they may be what repairs a node); the command
            # enters the host's network namespace anyway.
            "hostNetwork": True,
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 5,
            # A node command must run on its node whatever the node's taints (a cordoned or tainted node is
            # still the node the stack names); nodeName already bypasses the scheduler.
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": "run",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": [*ENTER, "/bin/sh", "-c", k8s_literal(HOST_SCRIPT), "wasm-shim-fleet-run", mode, run_id],
                "env": env,
                "securityContext": {"privileged": True, "runAsUser": 0},
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
            }],
        },
    }


def result_markers(run_id: str) -> tuple[str, str, str]:
    """The lines the host script prints before the script's stdout, its stderr and its exit status."""
    head = f"--- wasm-shim-fleet run {run_id}: "
    return f"{head}stdout ---", f"{head}stderr ---", f"{head}exit "


def parse_result(log: str, run_id: str) -> tuple[str, str, int] | None:
    """(stdout, stderr, exit status) of the run from its pod's log, or None when the log does not hold the
    whole result (the pod ended before printing it). The log is: the stdout marker, stdout, a newline, the
    stderr marker, stderr, a newline, the exit marker with the status."""
    out_mark, err_mark, exit_mark = result_markers(run_id)
    begin = log.find(out_mark + "\n")
    if begin < 0:
        return None
    body = log[begin + len(out_mark) + 1:]
    found = list(re.finditer(rf"(?m)^{re.escape(exit_mark)}([0-9]+) ---$", body))
    if not found or not body[: found[-1].start()].endswith("\n"):
        return None
    m = found[-1]
    head = body[: m.start() - 1]
    sep = "\n" + err_mark + "\n"
    i = ("\n" + head).find(sep)
    if i < 0:
        return None
    head = "\n" + head
    return head[1:i], head[i + len(sep):], int(m.group(1))


#: The script the pod runs on the host, with the host's /bin/sh in PID 1's namespaces (kit/run-on-host.sh:
#: POSIX sh, no interpolation; it reads only its arguments and the pod's environment).
HOST_SCRIPT = (Path(__file__).resolve().parent / "kit" / "run-on-host.sh").read_text()


def runner_interpreter(*, python: str, runner: str, node: str, namespace: str, image: str, resource: str,
                       payload_file: str | None = None) -> list[str]:
    """The `interpreter` of a node command's command:local:Command: the runner and its settings; the engine
    appends the resource script (create, update or delete) as the last argument."""
    argv = [python, runner, "--node", node, "--namespace", namespace, "--image", image, "--resource", resource]
    if payload_file is not None:
        argv += ["--payload-file", payload_file]
    return [*argv, "--script"]
