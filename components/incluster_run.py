"""The runner of `transport: kubernetes` node commands: run one resource script on its node through the
cluster, print the script's stdout and stderr, and exit with its status.

Run by the engine as a command:local:Command's interpreter (components/incluster.py builds its arguments):

    python3 components/incluster_run.py --node N --namespace NS --image IMG@sha256:... --resource R \
        [--payload-file FILE] --script SCRIPT

It needs only the Python standard library and `kubectl` (KUBECTL, else on PATH) with the stack's kubeconfig
(WSF_KUBECONFIG: a path or the file's contents; WSF_KUBE_CONTEXT). The pod, the script on the host and the
result markers are in components/core/incluster.py. A pod whose log ends before the result (its runtime was
restarted under it) is followed by one in `attach` mode on the same run id: the script runs once, its result
is never lost. Deleting a pod that printed the result acknowledges it (the node then forgets the run). Every
pod this runner creates is deleted before it exits, whatever happened (also on SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: import the pure core from the project folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.core import incluster  # noqa: E402 - after the path set-up above
from components.kubeconfig import kubectl_kubeconfig  # noqa: E402 - after the path set-up above

#: Waiting reasons that will not resolve by themselves: the run fails at once with the kubelet's message.
FATAL_WAITING = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                 "CreateContainerConfigError", "CreateContainerError", "RunContainerError")
#: A pod that is not running after this long (an unready node, no room) fails the run.
START_TIMEOUT = float(os.environ.get("WSF_RUN_START_TIMEOUT", "300"))
#: A script that has not finished after this long fails the run (the kit's own waits are far shorter).
RUN_TIMEOUT = float(os.environ.get("WSF_RUN_TIMEOUT", "3600"))
#: How many pods may end before the result is read (each followed by one in attach mode).
MAX_ATTEMPTS = 5


class RunError(Exception):
    """The run failed for a reason of its own (not the script's status); the message says what to do."""


class Kubectl:
    def __init__(self, tmp: str) -> None:
        self.argv = [os.environ.get("KUBECTL") or "kubectl"]
        config = kubectl_kubeconfig(os.environ.get("WSF_KUBECONFIG"), tmp)
        if config:
            self.argv += ["--kubeconfig", config]
        if os.environ.get("WSF_KUBE_CONTEXT"):
            self.argv += ["--context", os.environ["WSF_KUBE_CONTEXT"]]

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([*self.argv, *args], input=stdin, capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            raise RunError(f"kubectl is not installed where pulumi runs ({self.argv[0]}); install it or set "
                           "KUBECTL: node commands of transport kubernetes run through it") from None
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(args, 124, "", f"kubectl {args[0]} timed out after {timeout:.0f}s")


class Runner:
    def __init__(self, args: argparse.Namespace, kubectl: Kubectl) -> None:
        self.a = args
        self.k = kubectl
        self.run_id = secrets.token_hex(8)
        self.created: list[str] = []
        self.payload = None
        if args.payload_file:
            try:
                self.payload = Path(args.payload_file).read_text()
            except OSError:
                self.payload = None  # the script finds no payload and says so; a delete needs none

    def where(self) -> str:
        return f"node {self.a.node} ({self.a.resource})"

    def create(self, mode: str, attempt: int) -> str:
        pod = incluster.pod_manifest(node=self.a.node, namespace=self.a.namespace, image=self.a.image,
                                     run_id=self.run_id, script=self.a.script, resource=self.a.resource,
                                     mode=mode, attempt=attempt, payload=self.payload)
        name = pod["metadata"]["name"]
        deadline = time.monotonic() + 60
        while True:
            p = self.k("create", "-f", "-", "-o", "name", stdin=json.dumps(pod))
            if p.returncode == 0:
                self.created.append(name)
                return name
            # A new namespace gets its default ServiceAccount from the controller-manager a moment later.
            if "serviceaccount" in p.stderr.lower() and "not found" in p.stderr and time.monotonic() < deadline:
                time.sleep(1)
                continue
            hint = ""
            if "is forbidden" in p.stderr and "cannot create resource" in p.stderr:
                hint = " (the stack's kubeconfig needs the rights in deploy/rbac.yaml)"
            elif "privileged" in p.stderr:
                hint = (" (the runner pod is privileged: the API server must allow privileged containers, "
                        "kube-apiserver --allow-privileged=true as managed clusters have it, and Pod Security must "
                        "be privileged in that namespace)")
            raise RunError(f"{self.where()}: cannot create the runner pod in namespace {self.a.namespace}: "
                           f"{p.stderr.strip()}{hint}")

    def wait(self, name: str) -> tuple[tuple[str, str, int] | None, dict]:
        """(the run's result, once the pod's log holds all of it, or None when the pod ended or vanished
        without it; the pod as last seen)."""
        started = time.monotonic()
        running_since = None
        while True:
            p = self.k("get", "pod", name, "-n", self.a.namespace, "-o", "json")
            if p.returncode != 0:
                if "NotFound" in p.stderr or "not found" in p.stderr:
                    return None, {}
                raise RunError(f"{self.where()}: cannot read pod {name}: {p.stderr.strip()}")
            pod = json.loads(p.stdout)
            phase = pod.get("status", {}).get("phase")
            for cs in pod.get("status", {}).get("containerStatuses", []) or []:
                waiting = (cs.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") in FATAL_WAITING:
                    raise RunError(f"{self.where()}: the runner pod cannot start: {waiting.get('reason')}: "
                                   f"{waiting.get('message', '')} (image {self.a.image}: it must be present on "
                                   "or pullable by the node)")
                if "running" in (cs.get("state") or {}) and running_since is None:
                    running_since = time.monotonic()
            if running_since is not None or phase in ("Succeeded", "Failed"):
                result = incluster.parse_result(self.logs(name), self.run_id)
                if result is not None:
                    return result, pod
                if phase in ("Succeeded", "Failed"):
                    return None, pod
            now = time.monotonic()
            if running_since is None and now - started > START_TIMEOUT:
                raise RunError(f"{self.where()}: the runner pod did not start within {START_TIMEOUT:.0f}s "
                               f"(phase {phase}); is the node Ready?")
            if now - started > RUN_TIMEOUT:
                raise RunError(f"{self.where()}: the command did not finish within {RUN_TIMEOUT:.0f}s; run "
                               f"{self.run_id} may still be running on the node "
                               f"({incluster.RUNS_DIR}/{self.run_id})")
            time.sleep(1 if now - started < 30 else 2)

    def logs(self, name: str) -> str:
        p = self.k("logs", name, "-n", self.a.namespace, timeout=120)
        return p.stdout if p.returncode == 0 else ""

    def check_namespace(self) -> None:
        """Privileged pods go only into the namespace the program created for them (its managed-by label)."""
        why = incluster.namespace_problem(self.a.namespace)
        if why is None:
            p = self.k("get", "namespace", self.a.namespace, "-o", "json")
            if p.returncode != 0:
                raise RunError(f"{self.where()}: cannot read namespace {self.a.namespace} (the program creates it "
                               f"before any node command): {p.stderr.strip()}")
            why = incluster.managed_namespace_problem(json.loads(p.stdout))
        if why is not None:
            raise RunError(f"{self.where()}: refusing to start a privileged runner pod in namespace "
                           f"{self.a.namespace}: it {why}; set kubernetes.runnerNamespace to a namespace of its "
                           f"own (default {incluster.DEFAULT_NAMESPACE}), which `pulumi up` creates")

    def run(self) -> int:
        self.check_namespace()
        mode = "start"
        for attempt in range(MAX_ATTEMPTS):
            name = self.create(mode, attempt)
            result, pod = self.wait(name)
            if result is not None:
                out, err, rc = result
                sys.stdout.write(out)
                sys.stderr.write(err)
                # Deleting the pod acknowledges the result: only then does the node forget the run.
                self.delete(name)
                return rc
            log = self.logs(name) if pod else ""
            status = _terminated(pod)
            code = status.get("exitCode") if status is not None else None
            if code == 2 and "not starting it twice" in log:
                raise RunError(f"{self.where()}: {log.strip()}")
            if mode == "attach" and code == 3:
                raise RunError(f"{self.where()}: {log.strip().splitlines()[-1] if log.strip() else 'no result'}")
            if mode == "start" and code in (1, 2, 125, 126, 127) and log.strip() \
                    and "--- wasm-shim-fleet run" not in log:
                # The host script failed before it started anything and said why (no /bin/sh, a read-only run
                # folder, not under a container runtime it knows). Any other end (killed, its runtime restarted,
                # exit 255 "Unknown") is followed by an attach pod, which also says if the run never started.
                raise RunError(f"{self.where()}: the runner could not start the command on the host "
                               f"(exit {code}): {log.strip()[-2000:]}")
            self.delete(name)
            print(f"wasm-shim-fleet: {self.where()}: runner pod {name} ended before the result of run "
                  f"{self.run_id} (its container runtime restarted?); attaching again", file=sys.stderr)
            mode = "attach"
        raise RunError(f"{self.where()}: no result for run {self.run_id} after {MAX_ATTEMPTS} pods; it may still "
                       f"be running on the node ({incluster.RUNS_DIR}/{self.run_id})")

    def delete(self, name: str) -> None:
        p = self.k("delete", "pod", name, "-n", self.a.namespace, "--ignore-not-found", "--wait=true",
                   "--timeout=120s", timeout=150)
        if p.returncode == 0 and name in self.created:
            self.created.remove(name)

    def cleanup(self) -> list[str]:
        for name in list(self.created):
            self.delete(name)
        return list(self.created)


def _terminated(pod: dict) -> dict | None:
    for cs in (pod.get("status") or {}).get("containerStatuses", []) or []:
        t = (cs.get("state") or {}).get("terminated")
        if t is not None:
            return t
    return None


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="incluster_run", description=__doc__.split("\n\n")[0])
    p.add_argument("--node", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--resource", required=True)
    p.add_argument("--payload-file")
    p.add_argument("--script", required=True)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    why = incluster.image_problem(args.image)
    if why is not None:
        print(f"wasm-shim-fleet: runner image {args.image!r} {why}", file=sys.stderr)
        return 2

    def stop(signum, _frame):
        raise KeyboardInterrupt(signum)

    signal.signal(signal.SIGTERM, stop)
    # The engine's environment may carry the stack's passphrase; kubectl and its plugins get none of it.
    for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"):
        os.environ.pop(name, None)
    with tempfile.TemporaryDirectory(prefix="wsf-run-") as tmp:
        runner = Runner(args, Kubectl(tmp))
        try:
            return runner.run()
        except RunError as exc:
            print(f"wasm-shim-fleet: error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"wasm-shim-fleet: {runner.where()}: interrupted; run {runner.run_id} may still finish on the "
                  "node", file=sys.stderr)
            return 130
        finally:
            left = runner.cleanup()
            if left:
                print(f"wasm-shim-fleet: warning: could not delete runner pod(s) {', '.join(left)} in namespace "
                      f"{args.namespace}; delete them with kubectl", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
