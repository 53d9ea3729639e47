"""NodePool: the shim binaries, containerd handler table and labels of every node in one pool."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from .core import naming, nodescript
from .core.kit_graph import kit_stage_dir, node_resources
from .core.plan import NodePlan
from .incluster import InCluster, node_command

TYPE = "wasm-shim-fleet:index:NodePool"


@dataclass(frozen=True)
class SshConnection:
    """How to reach nodes of `transport: ssh` pools."""

    #: Login user on the nodes (root, or a user whose shell may write containerd's config).
    user: str
    #: Default SSH port; a node's own `port` wins.
    port: int
    #: The private key. Always pass a Pulumi secret (pulumi.Output.secret); it never reaches a script.
    private_key: pulumi.Input[str]
    #: Optional bastion: {"host", "port", "user", "host_key", "private_key"}.
    proxy: dict | None = None


@dataclass(frozen=True)
class RuntimeHandlerCheck:
    """How the `verify` step reads Nodes (components/core/verify.py): with kubectl on the machine running pulumi."""

    #: A kubeconfig path or its contents (None: kubectl's usual lookup). Passed to the check as a secret.
    kubeconfig: str | None = None
    #: kubeconfig context (None: the current one).
    context: str | None = None


@dataclass(frozen=True)
class NodePoolArgs:
    """Typed arguments of NodePool."""

    #: The planned nodes of this pool (components.core.plan.NodePlan), all with the same `pool`.
    nodes: Sequence[NodePlan]
    #: SSH settings; required when the pool's transport is ssh.
    ssh: SshConnection | None = None
    #: Absolute folder under which `transport: local` node roots live (`<local_base>/<localRoot>/<node>`).
    local_base: str | None = None
    #: Kubernetes provider for the label patches (None: the default provider).
    k8s_provider: pulumi.ProviderResource | None = None
    #: Before labelling a node, check its handlers in node.status.runtimeHandlers (None: no check, e.g. when
    #: manifests are rendered instead of applied).
    runtime_handler_check: RuntimeHandlerCheck | None = None
    #: How `transport: kubernetes` nodes are reached (components.incluster.InCluster); required for them.
    in_cluster: InCluster | None = None


class NodePool(pulumi.ComponentResource):
    """One node pool. For each node it creates:

    - `<name>-<node>-kit`: delivers the node kit (components/core/kit/wsf.sh): over SSH a command
      CopyToRemote of the staged kit folder, for a local node a local command that copies and checks it;
    - `<name>-<node>-bin-<binary>` (command Command): downloads, verifies and installs one shim binary;
      depends on the kit;
    - `<name>-<node>-handlers` (command Command): the node's containerd handler table, restart, check;
      depends on the kit and the binaries;
    - `<name>-<node>-verify` (command local Command, with `runtime_handler_check`): the kubelet reports the
      node's handlers in node.status.runtimeHandlers (where it reports them); depends on the handler table;
    - `<name>-<node>-labels` (kubernetes core/v1 NodePatch): the node's labels, with its own field manager;
      depends on the handler table (through `verify` when there is one).
    Outputs: `nodes`, per node its releases, retiring releases, labels, handlers and binaries (with sha256).
    """

    def __init__(self, name: str, args: NodePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        pools = {n.pool for n in args.nodes}
        if len(pools) > 1:
            raise ValueError(f"NodePool {name}: nodes come from several pools {sorted(pools)}")
        props = {
            "pool": next(iter(pools), None),
            "containerd": args.nodes[0].flavor if args.nodes else None,
            "nodes": [n.to_json() for n in args.nodes],
        }
        super().__init__(TYPE, name, props, opts)
        # One secret Output of the key for the whole pool, and one connection per node shared by its commands
        # (building them per command was a visible share of the program's time at 1000 nodes).
        self._private_key = pulumi.Output.secret(args.ssh.private_key) if args.ssh is not None else None
        self._staged = False
        self.nodes: dict[str, dict] = {}
        for node in args.nodes:
            self._node(name, node, args)
            self.nodes[node.name] = {"releases": list(node.releases), "retiring": list(node.retiring),
                                     "labels": dict(node.labels), "handlers": dict(node.handlers),
                                     "binaries": {k: b.to_json() for k, b in node.binaries.items()}}
        self.register_outputs({"nodes": self.nodes})

    def _node(self, name: str, node: NodePlan, args: NodePoolArgs) -> None:
        """Create the node's resources exactly as components.core.kit_graph.node_resources lays them out."""
        built: dict[str, pulumi.Resource] = {}
        connection = None
        if node.transport == "kubernetes":
            if args.in_cluster is None:
                raise ValueError(f"node {node.name}: transport kubernetes needs NodePoolArgs.in_cluster")
        elif node.transport != "local":
            if args.ssh is None:
                raise ValueError(f"node {node.name}: transport ssh needs NodePoolArgs.ssh")
            connection = _connection(node, args.ssh, self._private_key)
        if not self._staged:
            stage_kit()  # the folder the kit resources copy from (content-addressed, written once)
            self._staged = True
        check = args.runtime_handler_check
        for r in node_resources(name, node, args.local_base, verify=check is not None):
            opts = pulumi.ResourceOptions(parent=self, depends_on=[built[d] for d in r.depends_on],
                                          provider=args.k8s_provider if r.kind == "patch" else None)
            if r.kind == "copy":
                built[r.name] = command.remote.CopyToRemote(
                    r.name, connection=connection, source=pulumi.FileArchive(r.copy_source),
                    remote_path=r.remote_path, opts=opts)
            elif r.kind == "verify" and check is not None:
                env = {"WSF_KUBECONFIG": pulumi.Output.secret(check.kubeconfig or ""),
                       "WSF_KUBE_CONTEXT": check.context or ""}
                built[r.name] = command.local.Command(r.name, create=r.create, environment=env,
                                                      interpreter=["/bin/sh", "-c"], opts=opts)
            elif r.kind == "command" and node.transport == "kubernetes" and args.in_cluster is not None:
                # Through the cluster: the same scripts, run on the node by a runner pod (components/incluster.py).
                built[r.name] = node_command(r, node, args.in_cluster, opts)
            elif r.kind == "command" and node.transport == "local":
                built[r.name] = command.local.Command(r.name, create=r.create, update=r.update, delete=r.delete,
                                                      interpreter=["/bin/sh", "-c"], opts=opts)
            elif r.kind == "command":
                built[r.name] = command.remote.Command(r.name, connection=connection, create=r.create,
                                                       update=r.update, delete=r.delete, opts=opts)
            else:
                # --- NodePatch annotations block: the labels of one node, one field manager per node ---
                built[r.name] = k8s.core.v1.NodePatch(
                    r.name,
                    metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                        name=node.name,
                        labels=dict(node.labels),
                        # One field manager per node (naming.field_manager): deleting or shrinking the patch
                        # relinquishes only the labels this node's patch set. No force unless the stack says
                        # kubernetes.forceLabels: a label another manager owns is a conflict error, not taken.
                        annotations={"pulumi.com/patchFieldManager": naming.field_manager(node.name),
                                     **({"pulumi.com/patchForce": "true"} if node.force_labels else {})},
                    ),
                    opts=opts,
                )
                # The node's labels as the API server answered this patch: no value when the patch fails, so
                # the stack records what is really on the node (components/core/deployed.py).
                vars(self).setdefault("labels_applied", {})[node.name] = built[r.name].metadata.apply(
                    lambda m: dict(m.labels or {}) if m is not None else {})


def stage_kit(text: str | None = None) -> str:
    """Write the staged kit folder that the kit resources copy from (idempotent; content-addressed) and return
    it."""
    text = nodescript.kit_text() if text is None else text
    sha = nodescript.kit_sha256(text)
    folder = Path(kit_stage_dir(sha)) / "kit"
    kit = folder / sha / nodescript.KIT_NAME
    if not kit.exists() or nodescript.kit_sha256(kit.read_text()) != sha:
        kit.parent.mkdir(parents=True, exist_ok=True)
        kit.write_text(text)
    selected = folder / "selected"
    if not selected.exists() or selected.read_text() != sha + "\n":
        selected.write_text(sha + "\n")
    return str(folder)


def _connection(node: NodePlan, ssh: SshConnection, private_key: pulumi.Input[str]) -> command.remote.ConnectionArgs:
    """The node's SSH connection; `private_key` is the pool's secret Output of ssh.private_key."""
    proxy = None
    if ssh.proxy:
        proxy = command.remote.ProxyConnectionArgs(
            host=ssh.proxy["host"],
            port=ssh.proxy.get("port") or 22,
            user=ssh.proxy.get("user") or ssh.user,
            host_key=ssh.proxy.get("host_key"),
            private_key=ssh.proxy.get("private_key") or ssh.private_key,
        )
    return command.remote.ConnectionArgs(
        host=node.host,
        port=node.port or ssh.port,
        user=ssh.user,
        private_key=private_key,
        host_key=node.host_key,
        proxy=proxy,
    )
