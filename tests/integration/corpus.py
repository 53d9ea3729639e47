"""The corpus of real containerd configs (tests/corpus, provenance in its README) and test nodes that run them.

Each entry is a config as a distribution ships it (rendered where the distribution renders a template), the
containerd flavor a pool on such a node names, the containerd releases that read it here, the config version of
the runtimes table the node kit is expected to write into it (decided on the node by asking containerd) and how
the distribution lays it out:

- main: containerd loads the file itself (/etc/containerd/config.toml);
- base: k3s/rke2 render the loaded config from their base template (the corpus file, rendered) and the
  node's `config.toml.tmpl` / `config-v3.toml.tmpl`, which the kit writes (restart-containerd.sh RENDER=base:);
- snap: microk8s renders args/containerd.toml from args/containerd-template.toml (the corpus file) by
  replacing the snap's placeholders (RENDER=snap:);
- k0s: containerd loads /etc/k0s/containerd.toml (the corpus file), which imports /etc/k0s/containerd.d/*.toml,
  the folder k0s watches; k0s-watch.sh restarts containerd when it changes, as k0s does.

A test node gets the file with its paths moved under the node root and its listening ports made ephemeral
(`for_node`), so that nothing of the machine is touched; the bytes the kit must give back are those.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from components.core.flavors import FLAVORS

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
HERE = Path(__file__).resolve().parent
K0S_WATCH = HERE / "k0s-watch.sh"


@dataclass(frozen=True)
class Entry:
    id: str
    file: str  # in tests/corpus
    flavor: str
    daemons: tuple[str, ...]  # containerd releases that read it: "1.6", "2.2", "2.3"
    table: int  # config version of the runtimes table the kit writes
    layout: str = "main"  # main | base | snap | k0s
    #: The kit refuses this config (the error says this), changing nothing; None: it is served.
    refused: str | None = None


ENTRIES = (
    Entry("eks-al2", "eks-al2-containerd-1.7.toml", "containerd-1", ("1.6",), 2),
    Entry("eks-al2023-1.7", "eks-al2023-containerd-1.7.toml", "containerd-1", ("1.6",), 2),
    # The same version 2 file on a containerd 2 node: containerd 2 migrates its io.containerd.grpc.v1.cri runtimes,
    # so the kit writes its tables there (under io.containerd.cri.v1.runtime containerd would drop the file's own).
    Entry("eks-al2023-1.7-on-2", "eks-al2023-containerd-1.7.toml", "containerd-2", ("2.2", "2.3"), 2),
    Entry("eks-al2023-2", "eks-al2023-containerd-2.toml", "containerd-2", ("2.2", "2.3"), 3),
    Entry("aks-1", "aks-containerd-1.toml", "containerd-1", ("1.6",), 2),
    # `version = 2` with the 2.x plugin ids: containerd 2 reads its runtimes from io.containerd.cri.v1.runtime.
    Entry("aks-2", "aks-containerd-2.toml", "containerd-2", ("2.2", "2.3"), 3),
    Entry("gke", "gke-containerd.toml", "containerd-1", ("1.6",), 2),
    Entry("gke-on-2", "gke-containerd.toml", "containerd-2", ("2.2",), 2),
    Entry("kind", "kind-containerd.toml", "containerd-1", ("1.6",), 2),
    # Version 1, no runtimes table: runc is containerd's built-in default, which containerd 1.6 drops once the file
    # has a runtimes table. The kit refuses and says to declare runc.
    Entry("minikube", "minikube-containerd.toml", "containerd-legacy", ("1.6",), 1,
          refused="would lose runtime runc, which comes from containerd's built-in defaults"),
    Entry("k3s-v2", "k3s-v2-config.toml", "k3s", ("1.6",), 2, "base"),
    Entry("rke2-v2", "rke2-v2-config.toml", "rke2", ("1.6",), 2, "base"),
    Entry("k3s-v3", "k3s-v3-config.toml", "k3s-2", ("2.2", "2.3"), 3, "base"),
    Entry("rke2-v3", "rke2-v3-config.toml", "rke2-2", ("2.2",), 3, "base"),
    Entry("microk8s", "microk8s-containerd-template.toml", "microk8s", ("1.6",), 2, "snap"),
    Entry("k0s", "k0s-containerd.toml", "k0s", ("2.2", "2.3"), 3, "k0s"),
)

#: containerd release -> the session fixture that provides it
DAEMON_FIXTURE = {"1.6": "containerd1", "2.2": "containerd2", "2.3": "containerd23"}

_QUOTED_PATH = re.compile(r"""(["'])(/[^"'\s]*)""")
_LISTEN = re.compile(r"""(["'])(0\.0\.0\.0|127\.0\.0\.1):[0-9]+\1""")
_STREAM_PORT = re.compile(r"""(stream_server_port\s*=\s*)(["'])[0-9]+\2""")
_EROFS_OFF = ("disabled_plugins = ['io.containerd.differ.v1.erofs', 'io.containerd.snapshotter.v1.erofs', "
              "'io.containerd.mount-handler.v1.erofs']  # test node: no mkfs.erofs\n")
_NRI = '\n# test node: NRI off (its socket would be shared by every containerd 2 on this machine)\n' \
       '[plugins."io.containerd.nri.v1.nri"]\n  disable = true\n'


def for_node(text: str, root: Path, daemon: str) -> str:
    """A corpus config for a test node: every quoted absolute path under the node root (paths containerd opens
    or creates: its root, state, socket, opt and CNI folders, imports, base runtime spec), listening addresses on
    ephemeral loopback ports, and, for containerd 2, NRI off."""
    text = _QUOTED_PATH.sub(lambda m: m.group(1) + str(root) + m.group(2), text)
    text = _LISTEN.sub(lambda m: f"{m.group(1)}127.0.0.1:0{m.group(1)}", text)
    text = _STREAM_PORT.sub(lambda m: f"{m.group(1)}{m.group(2)}0{m.group(2)}", text)
    if daemon != "1.6" and "io.containerd.nri.v1.nri" not in text:
        text = text + ("" if text.endswith("\n") else "\n") + _NRI
    if daemon == "2.3" and not shutil.which("mkfs.erofs"):
        # containerd 2.3 loads its erofs plugins whatever the config says; without mkfs.erofs (Debian
        # erofs-utils) its transfer service, and with it the CRI plugin, fail to load. These nodes use no erofs.
        assert "disabled_plugins" not in text
        text = _EROFS_OFF + text
    return text


def base_runtime_spec(root: Path) -> None:
    """The base runtime spec the EKS configs name (containerd's CRI plugin loads it at start)."""
    spec = root / "etc/containerd/base-runtime-spec.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(subprocess.run(["ctr", "oci", "spec"], capture_output=True, text=True, check=True).stdout)


def seed(node, entry: Entry, daemon: str) -> bytes | None:
    """Lay the entry out on the node the way its distribution does and start containerd (for k0s, the watcher
    too: `node.watcher`). Returns the bytes of the file the kit edits (None: it does not exist yet)."""
    text = for_node((CORPUS / entry.file).read_text(), node.root, daemon)
    flavor = FLAVORS[entry.flavor]
    if "base_runtime_spec" in text:
        base_runtime_spec(node.root)
    if entry.layout == "base":
        base = node.root / ".wsf-test/base.toml"
        base.parent.mkdir(parents=True)
        base.write_text(text)
        node.render = f"base:{flavor.config_path.lstrip('/')}"
    elif entry.layout == "snap":
        node.config.parent.mkdir(parents=True, exist_ok=True)
        node.config.write_text(text)
        node.render = f"snap:{flavor.config_path.lstrip('/')}"
    else:
        node.loaded.parent.mkdir(parents=True, exist_ok=True)
        node.loaded.write_text(text)
    if entry.layout == "k0s":
        (node.root / "etc/k0s/containerd.d").mkdir(parents=True)
    node.start()
    if entry.layout == "k0s":
        env = dict(os.environ, WSF_NODE_ROOT=str(node.root), **node._settings())
        node.watcher = subprocess.Popen(["sh", str(K0S_WATCH)], env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return node.config.read_bytes() if node.config.exists() else None


def stop_watcher(node) -> None:
    proc = getattr(node, "watcher", None)
    if proc is not None and proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
