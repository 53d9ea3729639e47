"""A throwaway Kubernetes control plane for the e2e tier.

Starts, on 127.0.0.1 only, on free ports, inside a temporary directory:
etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (which
plays the kubelet of the fake nodes made by `create_node` and turns pods bound to
them Running). Binaries come from the toolchain that `toolchain/build.sh` builds
(see `ensure_toolchain`); certificates are made with the `openssl` command.

    with Cluster(bin_dir) as c:
        c.create_node("n1", labels={"wasm": "yes"})
        c.create(api_path("v1", "configmaps", "default"), {...})

Everything it started is stopped (and the temp dir removed) on exit, and the
processes also die with the Python process that started them.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "toolchain" / "build.sh"

# kwok manages the nodes carrying this annotation (and only those).
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
SERVICE_CIDR = "10.96.0.0/24"
POD_CIDR = "10.244.0.0/16"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class ToolchainMissing(RuntimeError):
    pass


class ApiError(RuntimeError):
    def __init__(self, status: int, method: str, path: str, body: Any):
        self.status = status
        self.body = body
        msg = body.get("message") if isinstance(body, dict) else body
        super().__init__(f"{method} {path}: HTTP {status}: {msg}")


def ensure_toolchain(timeout: float = 3 * 3600) -> Path:
    """Return the toolchain bin dir, building it with toolchain/build.sh if needed.

    WSF_TOOLCHAIN_BIN, if set, names a bin dir to use as it is. The build is
    idempotent and takes a second or two when everything is already built.
    """
    given = os.environ.get("WSF_TOOLCHAIN_BIN")
    if given:
        bin_dir = Path(given)
    else:
        if not BUILD_SCRIPT.exists():
            raise ToolchainMissing(f"{BUILD_SCRIPT} is missing")
        proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise ToolchainMissing(
                "the e2e toolchain could not be built; run `bash toolchain/build.sh` and fix what it "
                f"reports (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
            )
        lines = proc.stdout.strip().splitlines()
        bin_dir = Path(lines[-1]) if lines else Path()
    missing = [n for n in (*COMPONENTS, "kubectl", "pulumi", "pulumi-resource-kubernetes",
                           "pulumi-resource-command", "../share/kwok/stages.yaml")
               if not (bin_dir / n).is_file()]
    if missing:
        raise ToolchainMissing(
            f"toolchain bin dir {bin_dir} lacks {', '.join(missing)}; run `bash toolchain/build.sh`"
        )
    return bin_dir


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_path(api_version: str, plural: str, namespace: str | None = None, name: str | None = None) -> str:
    """REST path of a collection or object: api_path("apps/v1", "deployments", "default")."""
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{plural}"
    if name:
        base += f"/{name}"
    return base


def _with_parent_death_signal(argv: list[str]) -> list[str]:
    """argv run under util-linux's setpriv, so the process gets SIGTERM when the test process dies. Not a
    preexec_fn: Python code between fork and exec can abort the child while gRPC threads (the Automation API's
    server) are running in this process."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")


class Cluster:
    """One control plane. Use as a context manager, or call start() / stop()."""

    #: The API server URL of every control plane this process started (to recognise files naming them).
    started: list[str] = []

    def __init__(self, bin_dir: str | os.PathLike | None = None, workdir: str | os.PathLike | None = None,
                 keep_workdir: bool | None = None, startup_timeout: float = 180.0):
        self.bin_dir = Path(bin_dir) if bin_dir else None
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else None
        self.keep_workdir = (os.environ.get("WSF_KEEP_CLUSTER_DIR") == "1") if keep_workdir is None else keep_workdir
        self.startup_timeout = startup_timeout
        self.procs: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}
        self.server = ""
        self.kubeconfig: Path | None = None
        self._ssl: ssl.SSLContext | None = None

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def binary(self, name: str) -> str:
        if self.bin_dir and (self.bin_dir / name).is_file():
            return str(self.bin_dir / name)
        found = shutil.which(name)
        if not found:
            raise ToolchainMissing(f"{name} not found (bin dir {self.bin_dir}); run `bash toolchain/build.sh`")
        return found

    def start(self) -> None:
        if shutil.which("openssl") is None:
            raise RuntimeError("the openssl command is needed (Debian package: openssl)")
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="wsf-cluster-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name in ("etcd-client", "etcd-peer", "kube-apiserver", "kube-controller-manager",
                     "kube-scheduler", "kwok"):
            self.ports[name] = free_port()
        self.server = f"https://127.0.0.1:{self.ports['kube-apiserver']}"
        Cluster.started.append(self.server)
        self._make_certs()
        self._write_kubeconfig()
        self._start_etcd()
        self._start_apiserver()
        self._start_controller_manager()
        self._start_scheduler()
        self._start_kwok()
        # the serviceaccount controller has run once "default" exists; pods need it
        self.wait_for(lambda: self.get_or_none(api_path("v1", "serviceaccounts", "default", "default")),
                      "kube-controller-manager to create the default service account")

    def stop(self) -> None:
        # reverse start order, one at a time: etcd goes last, after the API server has let go of it
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()
        if self.workdir and self._own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ---------------------------------------------------------------- processes
    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        assert self.workdir is not None
        with open(self.workdir / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                _with_parent_death_signal([self.binary(name), *args]),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        self.procs[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 40) -> str:
        assert self.workdir is not None
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def wait_for(self, probe: Callable[[], Any], what: str, timeout: float | None = None,
                 interval: float = 0.5) -> Any:
        """Poll probe() until it returns something truthy; fail if a component died or time ran out."""
        deadline = time.monotonic() + (timeout or self.startup_timeout)
        last_exc: Exception | None = None
        while True:
            self._check_alive()
            try:
                result = probe()
                if result:
                    return result
            except (OSError, ApiError, ValueError) as exc:
                last_exc = exc
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n}.log\n{self.log_tail(n, 15)}" for n in self.procs)
                raise TimeoutError(f"timed out waiting for {what} (last error: {last_exc})\n{logs}")
            time.sleep(interval)

    def _http_ok(self, url: str, ctx: ssl.SSLContext | None = None) -> bool:
        with urllib.request.urlopen(url, timeout=5, context=ctx) as resp:
            return resp.status == 200

    # ---------------------------------------------------------------- certificates
    def _make_certs(self) -> None:
        pki = self.workdir / "pki"
        pki.mkdir(exist_ok=True)
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
                 "-days", "7", "-subj", "/CN=wsf-e2e-ca",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature", cwd=pki)
        sans = ("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
                "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1")
        self._leaf(pki, "apiserver", "/CN=kube-apiserver", "serverAuth", sans)
        self._leaf(pki, "admin", "/O=system:masters/CN=wsf-e2e-admin", "clientAuth", None)
        _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
        _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
        self.pki = pki

    @staticmethod
    def _leaf(pki: Path, name: str, subject: str, usage: str, sans: str | None) -> None:
        ext = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment",
               f"extendedKeyUsage={usage}"]
        if sans:
            ext.append(sans)
        (pki / f"{name}.ext").write_text("\n".join(ext) + "\n")
        _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                 f"{name}.csr", "-subj", subject, cwd=pki)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial",
                 str(int.from_bytes(os.urandom(8), "big")), "-days", "7", "-out", f"{name}.crt",
                 "-extfile", f"{name}.ext", cwd=pki)

    def _write_kubeconfig(self) -> None:
        def b64(name: str) -> str:
            return base64.b64encode((self.pki / name).read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "wsf-e2e", "cluster": {
                "server": self.server, "certificate-authority-data": b64("ca.crt")}}],
            "users": [{"name": "wsf-e2e-admin", "user": {
                "client-certificate-data": b64("admin.crt"), "client-key-data": b64("admin.key")}}],
            "contexts": [{"name": "wsf-e2e", "context": {"cluster": "wsf-e2e", "user": "wsf-e2e-admin",
                                                         "namespace": "default"}}],
            "current-context": "wsf-e2e",
        }
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig.chmod(0o600)
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        self._ssl = ctx

    # ---------------------------------------------------------------- components
    def _start_etcd(self) -> None:
        client = f"http://127.0.0.1:{self.ports['etcd-client']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        self._spawn("etcd", [
            "--name=wsf-e2e", f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=wsf-e2e={peer}", "--initial-cluster-state=new",
            "--unsafe-no-fsync", "--log-level=warn",
        ])
        self.wait_for(lambda: self._http_ok(f"{client}/health"), "etcd")

    def _start_apiserver(self) -> None:
        pki = self.pki
        self._spawn("kube-apiserver", [
            f"--etcd-servers=http://127.0.0.1:{self.ports['etcd-client']}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={self.ports['kube-apiserver']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=RBAC",
            # as on kubeadm and managed clusters: privileged pods exist (transport kubernetes runs node commands
            # in them), and Pod Security admission decides per namespace
            "--allow-privileged=true",
            # RuntimeClass is on by default; named so that turning it off is a visible change
            "--enable-admission-plugins=RuntimeClass",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
        ])
        self.wait_for(lambda: self._http_ok(f"{self.server}/readyz", self._ssl), "kube-apiserver /readyz")

    def _component_common(self, name: str) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={self.ports[name]}",
            f"--cert-dir={self.workdir / (name + '-certs')}",
            "--leader-elect=false",
        ]

    def _insecure_ctx(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _start_controller_manager(self) -> None:
        name = "kube-controller-manager"
        self._spawn(name, [
            *self._component_common(name),
            f"--service-account-private-key-file={self.pki / 'sa.key'}",
            f"--root-ca-file={self.pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
        ])
        self.wait_for(lambda: self._http_ok(f"https://127.0.0.1:{self.ports[name]}/healthz",
                                            self._insecure_ctx()), name)

    def _start_scheduler(self) -> None:
        name = "kube-scheduler"
        self._spawn(name, self._component_common(name))
        self.wait_for(lambda: self._http_ok(f"https://127.0.0.1:{self.ports[name]}/healthz",
                                            self._insecure_ctx()), name)

    def _start_kwok(self) -> None:
        home = self.workdir / "kwok-home"  # keeps kwok from reading ~/.kwok/kwok.yaml
        home.mkdir(exist_ok=True)
        key, value = KWOK_NODE_ANNOTATION
        stages = Path(self.binary("kwok")).resolve().parent.parent / "share" / "kwok" / "stages.yaml"
        if not stages.is_file():
            raise ToolchainMissing(f"{stages} (kwok's stages) is missing; run `bash toolchain/build.sh`")
        self._spawn("kwok", [
            f"--config={stages}",
            f"--kubeconfig={self.kubeconfig}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={key}={value}",
            f"--cidr={POD_CIDR}", "--node-ip=127.0.0.1",
            f"--server-address=127.0.0.1:{self.ports['kwok']}",
        ], env={"HOME": str(home), "KUBECONFIG": str(self.kubeconfig)})
        self.wait_for(lambda: self._http_ok(f"http://127.0.0.1:{self.ports['kwok']}/healthz"), "kwok")

    # ---------------------------------------------------------------- API access
    def request(self, method: str, path: str, body: Any = None,
                content_type: str = "application/json") -> Any:
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=30, context=self._ssl) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                payload: Any = json.loads(raw)
            except ValueError:
                payload = raw.decode(errors="replace")
            raise ApiError(err.code, method, path, payload) from None
        return json.loads(raw) if raw else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def get_or_none(self, path: str) -> Any:
        try:
            return self.get(path)
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def create(self, path: str, obj: dict) -> Any:
        return self.request("POST", path, obj)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary("kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
                              capture_output=True, text=True, check=check)

    def limited_kubeconfig(self, work: Path, rbac: Path = REPO_ROOT / "deploy" / "rbac.yaml") -> Path:
        """A kubeconfig of the user the shipped ClusterRole binds (deploy/rbac.yaml, applied here): the admin
        certificate impersonating `wasm-shim-fleet`, so every call of the program, its commands and kubectl has
        exactly those rights."""
        self.kubectl("apply", "-f", str(rbac))
        config = yaml.safe_load(self.kubeconfig.read_text())
        config["users"][0]["user"]["as"] = "wasm-shim-fleet"
        path = work / "fleet.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        can = self.kubectl(f"--kubeconfig={path}", "auth", "can-i", "create", "secrets", "-n", "default",
                           check=False)
        if can.stdout.strip() != "no":
            raise RuntimeError(f"the limited user may create secrets: {can.stdout}{can.stderr}")
        return path

    # ---------------------------------------------------------------- nodes and pods
    def create_node(self, name: str, labels: dict[str, str] | None = None, wait: bool = True,
                    timeout: float = 60.0) -> dict:
        """Create a Node that kwok manages (heartbeats, Ready condition, pod status)."""
        key, value = KWOK_NODE_ANNOTATION
        resources = {"cpu": "32", "memory": "256Gi", "pods": "110"}
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                           "kubernetes.io/arch": "amd64", "type": "kwok", **(labels or {})},
                "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
            },
            "spec": {},
            "status": {"allocatable": resources, "capacity": resources,
                       "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux",
                                    "kubeletVersion": "fake", "kubeProxyVersion": "fake"}},
        }
        created = self.create(api_path("v1", "nodes"), node)
        if wait:
            self.wait_for(lambda: self.node_ready(name), f"node {name} to be Ready", timeout=timeout)
        return created

    def node_ready(self, name: str) -> bool:
        """Ready, and the node lifecycle controller has lifted its not-ready/unreachable taints."""
        node = self.get(api_path("v1", "nodes", name=name))
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in node.get("status", {}).get("conditions", []))
        blocked = any(t.get("key") in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
                      for t in node.get("spec", {}).get("taints", []))
        return ready and not blocked

    def pods(self, namespace: str = "default", label_selector: str | None = None) -> list[dict]:
        path = api_path("v1", "pods", namespace)
        if label_selector:
            path += "?labelSelector=" + urllib.request.quote(label_selector)
        return self.get(path)["items"]
