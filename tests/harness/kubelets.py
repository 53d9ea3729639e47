"""Real Kubernetes nodes on this machine: per node a real kubelet, its own containerd, CNI bridge, cgroup root,
node root and sshd test host, joined to a test control plane (tests/e2e/cluster.py).

The settings are the ones measured on these machines (cgroup v1 hierarchies, no CAP_SYS_RESOURCE, no image
registry; see the real-nodes tier in docs/testing.md):

- kubelet: `failCgroupV1: false`, `cgroupDriver: cgroupfs` with a `cgroupRoot` of its own created beforehand in
  every v1 hierarchy, `failSwapOn: false`, `oomScoreAdj: 0`; named by IP (`--hostname-override=127.0.0.N`,
  the kubelet refuses a loopback `--node-ip`), serving on 127.0.0.N with anonymous auth + AlwaysAllow (the test
  API server has no kubelet client certificate; loopback only); root dir, cert dir, pod logs, ports of its own.
- containerd: `containerd config default` of its own binary with every path under the node root, CRI's
  `restrict_oom_score_adj = true`, the locally built pause image as sandbox image, the node's CNI config dir,
  runc's root in the node root; started with the node root's `usr/local/bin` first on PATH, which is where the
  program installs shim binaries, so containerd finds them the way it would on a real node.
- CNI: Debian's containernetworking-plugins (bridge, host-local, loopback); a bridge and /24 per node.

Everything is undone on exit: pods deleted, kubelets and containerd stopped, processes left in the nodes'
cgroups killed, mounts under the node roots unmounted, cgroups removed, bridges deleted, network namespaces
removed, the sysctls the kubelet and the bridge plugin change put back, the work dir (with keys) removed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import images
from tests.harness.nodes import RESTART, containerd_major, localize, require, stop_pid
from tests.harness.sshd import SshHost, free_port, start_hosts, stop_hosts

CNI_BIN = "/usr/lib/cni"
#: Host settings a kubelet or the CNI bridge plugin may change; saved before the nodes start, restored after.
SYSCTLS = ("vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
           "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes", "net.ipv4.ip_forward",
           "net.ipv4.conf.all.forwarding", "net.bridge.bridge-nf-call-iptables")
CGROUP_FS = Path("/sys/fs/cgroup")
#: Paths every containerd shim uses whatever the node's root: runc shims' sockets (/run/containerd/s) and
#: runwasi shims' container state (/run/containerd/<engine>/<namespace>).
RUN_CONTAINERD = Path("/run/containerd")
SHARED_RUN = (RUN_CONTAINERD / "s", RUN_CONTAINERD / "fleettest")
NETNS_DIR = Path("/var/run/netns")
#: The kubelet links container logs here whatever its root dir (a fixed path in the kubelet).
CONTAINER_LOGS = Path("/var/log/containers")
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class RealNode:
    """One real node: `name` is the Kubernetes node name (an IP, see above), `label` a short tag (a, b, ...)."""

    label: str
    name: str
    root: Path
    containerd: str
    flavor: str
    cgroup_root: str
    bridge: str
    subnet: str
    kubelet_port: int = 0
    healthz_port: int = 0
    kubelet: subprocess.Popen | None = field(default=None, repr=False)
    host: SshHost | None = None
    #: more settings of the node's environment (its containerd's and its sshd sessions'), e.g. CURL_CA_BUNDLE
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def socket(self) -> Path:
        return self.root / "run/containerd/containerd.sock"

    @property
    def config(self) -> Path:
        return self.root / "etc/containerd/config.toml"

    @property
    def bin_dir(self) -> Path:
        return self.root / "usr/local/bin"

    @property
    def env(self) -> dict[str, str]:
        """The node's session environment (sshd) and the environment its containerd starts with."""
        return {"WSF_NODE_ROOT": str(self.root), "CONTAINERD_BIN": self.containerd,
                "PATH": f"{self.bin_dir}:{Path(self.containerd).parent}:{HOST_PATH}", **self.extra_env}

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ctr", "--address", str(self.socket), "-n", "k8s.io", *args], capture_output=True,
                              text=True, check=check, timeout=120)

    def start_containerd(self) -> None:
        proc = subprocess.run(["sh", str(RESTART)], env={**os.environ, **self.env}, capture_output=True,
                              text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"containerd of node {self.label} did not start: {proc.stderr}\n"
                               f"{(self.root / 'var/log/containerd.log').read_text()[-3000:]}")

    def containerd_pid(self) -> int | None:
        p = self.root / "run/containerd-test-daemon.pid"
        return int(p.read_text()) if p.exists() else None

    def container_runtime(self, container_id: str) -> str:
        """The runtime name containerd recorded for a container (`ctr containers info`)."""
        info = json.loads(self.ctr("containers", "info", container_id).stdout)
        return info["Runtime"]["Name"]

    def task_pid(self, container_id: str) -> int:
        for line in self.ctr("tasks", "ls").stdout.splitlines()[1:]:
            parts = line.split()
            if parts and parts[0] == container_id:
                return int(parts[1])
        raise LookupError(f"no task {container_id} on node {self.label}")

    def log_tail(self, what: str = "kubelet", lines: int = 30) -> str:
        path = self.root / f"var/log/{what}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


# ------------------------------------------------------------------------------------------------ host state
def read_sysctls() -> dict[str, str]:
    out = {}
    for key in SYSCTLS:
        p = Path("/proc/sys") / key.replace(".", "/")
        if p.exists():
            out[key] = p.read_text().strip()
    return out


def restore_sysctls(saved: dict[str, str]) -> None:
    for key, value in saved.items():
        p = Path("/proc/sys") / key.replace(".", "/")
        try:
            if p.read_text().strip() != value:
                p.write_text(value + "\n")
        except OSError:
            pass


def cgroup_hierarchies(unified: bool = False) -> list[Path]:
    """The mounted cgroup v1 hierarchies (cpu, memory, pids, name=systemd, ...); with `unified`, the cgroup2
    mount of a hybrid host too (the kubelet creates its tree there as well)."""
    kinds = ("cgroup", "cgroup2") if unified else ("cgroup",)
    out = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        parts = line.split()
        if parts[2] in kinds:
            out.append(Path(parts[1]))
    return out


def make_cgroup_root(name: str) -> None:
    for h in cgroup_hierarchies():
        d = h / name.strip("/")
        d.mkdir(exist_ok=True)
        if (h / "cpuset.cpus").exists():
            for f in ("cpuset.cpus", "cpuset.mems"):
                (d / f).write_text((h / f).read_text())


def cgroup_pids(name: str) -> set[int]:
    pids: set[int] = set()
    for h in cgroup_hierarchies(unified=True):
        base = h / name.strip("/")
        if base.is_dir():
            for procs in base.rglob("cgroup.procs"):
                with suppress(OSError):
                    pids.update(int(x) for x in procs.read_text().split())
    return pids


def remove_cgroup_root(name: str) -> list[str]:
    """Kill what is left in the cgroup tree, then remove it bottom-up; returns what could not be removed."""
    for _ in range(20):
        pids = cgroup_pids(name)
        if not pids:
            break
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    left = []
    for h in cgroup_hierarchies(unified=True):
        base = h / name.strip("/")
        if not base.is_dir():
            continue
        for d in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with suppress(OSError):
                d.rmdir()
        try:
            base.rmdir()
        except OSError:
            left.append(str(base))
    return left


def mounts_under(root: Path) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    out = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1].encode().decode("unicode_escape")
        if target == str(root) or target.startswith(prefix):
            out.append(target)
    return out


def unmount_under(root: Path) -> None:
    for _ in range(5):
        targets = mounts_under(root)
        if not targets:
            return
        for t in sorted(targets, key=len, reverse=True):
            subprocess.run(["umount", "-l", t], capture_output=True)


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line or executable path contains `text` (a node root)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            exe = os.readlink(d / "exe") if (d / "exe").exists() else ""
        except OSError:
            continue
        if text in cmd or text in exe:
            found.append(int(d.name))
    return found


def kill_all(pids: Sequence[int]) -> None:
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in pids:
        with suppress(ChildProcessError):
            os.waitpid(pid, 0)


# ------------------------------------------------------------------------------------------------ containerd
def containerd_config(node: RealNode, pause_ref: str) -> str:
    """`containerd config default` of the node's binary, localized, with the CRI settings this machine needs."""
    text = subprocess.run([node.containerd, "config", "default"], capture_output=True, text=True,
                          check=True).stdout
    text = localize(text, node.root)
    cni_conf = f"{node.root}/etc/cni/net.d"
    subs = [
        (r"(restrict_oom_score_adj = )false", r"\g<1>true"),
        (r"(sandbox_image = )\"[^\"]*\"", rf'\g<1>"{pause_ref}"'),          # 1.x
        (r"(sandbox = )'[^']*'", rf"\g<1>'{pause_ref}'"),                    # 2.x pinned_images
        (r"(\bbin_dir = )[\"']/opt/cni/bin[\"']", rf"\g<1>'{CNI_BIN}'"),     # 1.x (2.x: '' beside bin_dirs)
        (r"(bin_dirs = )\[[^\]]*\]", rf"\g<1>['{CNI_BIN}']"),                # 2.x
        (r"(conf_dir = )[\"'][^\"']*[\"']", rf"\g<1>'{cni_conf}'"),
        (r"(\n\s*Root = )[\"'][\"']", rf"\g<1>'{node.root}/run/runc'"),      # runc's state
        (r"(disable_apparmor = )false", r"\g<1>true"),
        (r"/etc/containerd/conf\.d/", f"{node.root}/etc/containerd/conf.d/"),   # 2.x imports
    ]
    for pattern, repl in subs:
        text, n = re.subn(pattern, repl, text)
        if n == 0 and pattern.startswith(("(restrict", "(conf_dir")):
            raise RuntimeError(f"containerd's default config has no {pattern!r}")
    return text


def cni_config(node: RealNode) -> dict:
    return {
        "cniVersion": "0.4.0",
        "name": f"wsf-{node.label}",
        "plugins": [
            {"type": "bridge", "bridge": node.bridge, "isGateway": True, "ipMasq": False, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": node.subnet}]],
                      "dataDir": f"{node.root}/var/lib/cni/networks"}},
            {"type": "loopback"},
        ],
    }


# ------------------------------------------------------------------------------------------------ kubelet
def kubelet_config(node: RealNode) -> dict:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node.name,
        "port": node.kubelet_port,
        "readOnlyPort": 0,
        "healthzBindAddress": node.name,
        "healthzPort": node.healthz_port,
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "containerRuntimeEndpoint": f"unix://{node.socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": node.cgroup_root,
        "failCgroupV1": False,
        "failSwapOn": False,
        "oomScoreAdj": 0,
        "podLogsDir": f"{node.root}/var/log/pods",
        "resolvConf": "",
        "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "localStorageCapacityIsolation": False,
        "protectKernelDefaults": False,
        "registerNode": True,
        "nodeStatusUpdateFrequency": "2s",
        "syncFrequency": "5s",
        "fileCheckFrequency": "5s",
        "maxPods": 30,
    }


@dataclass
class NodeSet:
    """The running real nodes, by label."""

    nodes: dict[str, RealNode]
    work: Path
    pause_ref: str
    hello_ref: str
    #: what a node joining later needs (set by real_nodes)
    _start: Any = field(default=None, repr=False)

    def __getitem__(self, label: str) -> RealNode:
        return self.nodes[label]

    def by_name(self, name: str) -> RealNode:
        return next(n for n in self.nodes.values() if n.name == name)

    def join(self, label: str, containerd: str, flavor: str, node_labels: dict[str, str] | None = None,
             images: Sequence[Path] = ()) -> RealNode:
        """Start one more real node now (a node that joins the cluster after the program ran): its containerd
        with `images` imported, then its kubelet, registering with `node_labels`; returns once it is Ready.
        It is stopped and cleaned up with the others."""
        return self._start(label, containerd, flavor, node_labels or {}, images)


def _start_kubelet(node: RealNode, kubelet: str, kubeconfig: Path, node_labels: dict[str, str] | None = None
                   ) -> None:
    d = node.root / "etc/kubelet"
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.yaml").write_text(yaml.safe_dump(kubelet_config(node), sort_keys=False))
    log = node.root / "var/log/kubelet.log"
    argv = [kubelet, f"--config={d / 'config.yaml'}", f"--kubeconfig={kubeconfig}",
            f"--hostname-override={node.name}", f"--root-dir={node.root / 'var/lib/kubelet'}",
            f"--cert-dir={node.root / 'var/lib/kubelet/pki'}", "--v=1"]
    if node_labels:
        argv.append("--node-labels=" + ",".join(f"{k}={v}" for k, v in sorted(node_labels.items())))
    setpriv = shutil.which("setpriv")
    if setpriv:
        argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
    with open(log, "wb") as out:
        node.kubelet = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PATH": HOST_PATH})


def _stop_kubelet(node: RealNode) -> None:
    proc = node.kubelet
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    node.kubelet = None


@contextmanager
def real_nodes(cluster, kubelet: str, specs: Sequence[tuple[str, str, str]], work: Path,
               ssh: bool | Collection[str] = True, extra_env: dict[str, str] | None = None) -> Iterator[NodeSet]:
    """Start one real node per spec (label, containerd binary, flavor), joined to `cluster`; stop them all.

    `ssh`: whether the nodes get an sshd test host, or the labels of the nodes that do. `extra_env`: settings
    of every node's environment (its containerd's and its sshd sessions').

    `work` must be a short path (unix sockets): node roots are `work/<label>`. Nodes are named 127.0.0.2,
    127.0.0.3, ... in spec order."""
    require("ctr", "containerd")
    require("ip", "iproute2")
    for plugin in ("bridge", "host-local", "loopback"):
        if not (Path(CNI_BIN) / plugin).exists():
            pytest.fail(f"the nodes tier needs the CNI plugin {CNI_BIN}/{plugin} (Debian package "
                        "containernetworking-plugins; scripts/setup.sh installs it)")
    if not cgroup_hierarchies():
        pytest.fail("the nodes tier expects cgroup v1 hierarchies under /sys/fs/cgroup (measured setting)")
    saved_sysctls = read_sysctls()
    netns_before = set(os.listdir(NETNS_DIR)) if NETNS_DIR.is_dir() else None
    run_before = {p: set(os.listdir(p)) if p.is_dir() else None for p in (RUN_CONTAINERD, *SHARED_RUN)}
    logs_before = set(os.listdir(CONTAINER_LOGS)) if CONTAINER_LOGS.is_dir() else None
    tag = f"{os.getpid() % 100000}"
    nodes: dict[str, RealNode] = {}
    hosts: list[SshHost] = []
    images_dir = work / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    pause_ref, pause_tar = images.build_pause_image(images_dir)
    hello_ref, hello_tar = images.build_wasm_image(images_dir)
    def start(label: str, binary: str, flavor: str, node_labels: dict[str, str], more: Sequence[Path] = ()
              ) -> RealNode:
        i = len(nodes)
        node = RealNode(label=label, name=f"127.0.0.{i + 2}", root=work / label, containerd=binary,
                        flavor=flavor, cgroup_root=f"/wsf-{tag}-{label}", bridge=f"wsf{tag}{label}"[:15],
                        subnet=f"10.{88 + i}.{int(tag) % 250}.0/24", extra_env=dict(extra_env or {}))
        nodes[label] = node
        for d in ("etc/containerd", "etc/cni/net.d", "usr/local/bin", "var/log", "run"):
            (node.root / d).mkdir(parents=True, exist_ok=True)
        node.config.write_text(containerd_config(node, pause_ref))
        (node.root / "etc/cni/net.d/10-wsf.conflist").write_text(json.dumps(cni_config(node), indent=1))
        node.start_containerd()
        for tarball in (pause_tar, hello_tar, *more):
            images.import_image("ctr", node.socket, tarball)
        make_cgroup_root(node.cgroup_root)
        node.kubelet_port, node.healthz_port = free_port(), free_port()
        _start_kubelet(node, kubelet, cluster.kubeconfig, node_labels)
        return node

    def join(label: str, binary: str, flavor: str, node_labels: dict[str, str], more: Sequence[Path]) -> RealNode:
        node = start(label, binary, flavor, node_labels, more)
        cluster.wait_for(lambda: _kubelet_alive(node) and cluster.node_ready(node.name),
                         f"kubelet of node {node.label} ({node.name}) to be Ready", timeout=300)
        return node

    try:
        for label, binary, flavor in specs:
            start(label, binary, flavor, {})
        for node in nodes.values():
            cluster.wait_for(lambda node=node: _kubelet_alive(node) and cluster.node_ready(node.name),
                             f"kubelet of node {node.label} ({node.name}) to be Ready", timeout=300)
        with_ssh = [n for n in nodes.values() if ssh is True or (ssh and n.label in ssh)]
        if with_ssh:
            ssh_dir = work / "sshd"
            ssh_dir.mkdir()
            hosts = start_hosts(ssh_dir, len(with_ssh), env=[n.env for n in with_ssh])
            for node, host in zip(with_ssh, hosts, strict=True):
                node.host = host
        yield NodeSet(nodes, work, pause_ref, hello_ref, join)
    finally:
        problems = teardown(cluster, list(nodes.values()), hosts)
        restore_sysctls(saved_sysctls)
        if NETNS_DIR.is_dir():
            for name in set(os.listdir(NETNS_DIR)) - (netns_before or set()):
                subprocess.run(["umount", "-l", str(NETNS_DIR / name)], capture_output=True)
                (NETNS_DIR / name).unlink(missing_ok=True)
            if netns_before is None and not os.listdir(NETNS_DIR):
                NETNS_DIR.rmdir()
        if CONTAINER_LOGS.is_dir():
            for name in set(os.listdir(CONTAINER_LOGS)) - (logs_before or set()):
                (CONTAINER_LOGS / name).unlink(missing_ok=True)
            if logs_before is None and not os.listdir(CONTAINER_LOGS):
                CONTAINER_LOGS.rmdir()
        for path in (*SHARED_RUN, RUN_CONTAINERD):  # what the nodes' shims created there, deepest first
            if path.is_dir():
                for name in set(os.listdir(path)) - (run_before[path] or set()):
                    if (path / name).is_dir() and not (path / name).is_symlink():
                        shutil.rmtree(path / name, ignore_errors=True)
                    else:
                        (path / name).unlink(missing_ok=True)
                if run_before[path] is None:
                    with suppress(OSError):
                        path.rmdir()
        if problems:
            raise RuntimeError("the real nodes left things behind: " + "; ".join(problems))


def _kubelet_alive(node: RealNode) -> bool:
    if node.kubelet is not None and node.kubelet.poll() is not None:
        raise RuntimeError(f"kubelet of node {node.label} exited with {node.kubelet.returncode}:\n"
                           f"{node.log_tail()}")
    return True


def teardown(cluster, nodes: Sequence[RealNode], hosts: Sequence[SshHost]) -> list[str]:
    """Stop everything the nodes started; return what could not be cleaned."""
    problems: list[str] = []
    # Pods first, while the kubelets still run, so that they stop containers and tear down pod networks.
    try:
        names = {n.name for n in nodes}
        for ns in ("default",):
            cluster.kubectl("delete", "deployments,pods", "--all", "-n", ns, "--grace-period=1", "--wait=false",
                            check=False)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            pods = cluster.get("/api/v1/pods")["items"]
            if not [p for p in pods if p["spec"].get("nodeName") in names]:
                break
            time.sleep(1)
    except Exception as exc:  # the control plane may already be gone: the rest still cleans up
        problems.append(f"deleting pods: {exc}")
    stop_hosts(hosts)
    for node in nodes:
        _stop_kubelet(node)
    for node in nodes:
        pid = node.containerd_pid()
        remove_left = remove_cgroup_root(node.cgroup_root)  # container processes (pause, Wasm) in the pods
        if pid:
            stop_pid(pid)
        kill_all(processes_mentioning(str(node.root)))  # shims (they outlive containerd by design)
        unmount_under(node.root)
        if mounts_under(node.root):
            problems.append(f"mounts left under {node.root}: {mounts_under(node.root)}")
        left = remove_cgroup_root(node.cgroup_root) or remove_left
        if left and any(Path(p).exists() for p in left):
            problems.append(f"cgroups left: {left}")
        subprocess.run(["ip", "link", "del", node.bridge], capture_output=True)
    return problems


def major(node: RealNode) -> int:
    return containerd_major(node.containerd)


def host_snapshot() -> dict[str, set[str]]:
    """What a run of real nodes could leave behind on the host, to compare before and after."""
    def listing(path: Path) -> set[str]:
        return {str(path / n) for n in os.listdir(path)} if path.is_dir() else set()

    mounts = {line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()}
    cgroups = {str(d) for h in cgroup_hierarchies(unified=True) for d in h.glob("wsf-*")}
    links = set(subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout.split("\n"))
    links = {ln.split(":")[1].strip().split("@")[0] for ln in links if ln.count(":") >= 2}
    procs = {f"{pid} {' '.join(argv)}" for pid, argv in _procs() if any(w in " ".join(argv) for w in
                                                                         ("kubelet", "containerd", "wsfn-"))}
    return {
        "mounts": mounts, "cgroups": cgroups, "links": links, "processes": procs,
        "sysctls": {f"{k}={v}" for k, v in read_sysctls().items()},
        "files": (listing(RUN_CONTAINERD) | listing(RUN_CONTAINERD / "s") | listing(NETNS_DIR)
                  | listing(CONTAINER_LOGS) | {str(p) for p in Path("/tmp").glob("wsfn-*")}),
    }


def _procs() -> list[tuple[int, list[str]]]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                argv = (d / "cmdline").read_bytes().decode(errors="replace").split("\0")
                state = (d / "stat").read_text().split(")")[1].split()[0]
            except OSError:
                continue
            if argv and argv[0] and state != "Z":
                out.append((int(d.name), argv))
    return out


def leftovers(before: dict[str, set[str]]) -> list[str]:
    """What is on the host now and was not in `before` (sysctls: values that changed)."""
    after = host_snapshot()
    return [f"{kind}: {item}" for kind in after for item in sorted(after[kind] - before[kind])]
