"""NodePool: the shim binaries, containerd handler table and labels of every node in one pool."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from .core import naming, nodescript, verify
from .core.flavors import FLAVORS
from .core.plan import NodePlan
from .graph import binary_resource, node_graph

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


class NodePool(pulumi.ComponentResource):
    """One node pool. For each node it creates:

    - `<name>-<node>-bin-<binary>` (command Command): downloads, verifies and installs one shim binary;
    - `<name>-<node>-handlers` (command Command): the node's containerd handler table, restart, check;
      depends on the binaries;
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
        self.nodes: dict[str, dict] = {}
        for node in args.nodes:
            self._node(name, node, args)
            self.nodes[node.name] = {"releases": list(node.releases), "retiring": list(node.retiring),
                                     "labels": dict(node.labels), "handlers": dict(node.handlers),
                                     "binaries": {k: b.to_json() for k, b in node.binaries.items()}}
        self.register_outputs({"nodes": self.nodes})

    def _node(self, name: str, node: NodePlan, args: NodePoolArgs) -> None:
        """Create the node's resources exactly as components.graph.node_graph lays them out."""
        built: dict[str, pulumi.Resource] = {}
        binaries = {binary_resource(name, node, b.name): b for b in node.binaries.values()}
        connection = None
        if node.transport != "local" and args.ssh is not None:
            connection = _connection(node, args.ssh, self._private_key)
        check = args.runtime_handler_check
        for g in node_graph(name, node, verify=check is not None):
            opts = pulumi.ResourceOptions(parent=self, depends_on=[built[d] for d in g.depends_on],
                                          provider=args.k8s_provider if g.role == "labels" else None)
            if g.role == "binary":
                binary = binaries[g.name]
                built[g.name] = self._command(g.name, node, args, connection, opts=opts,
                                              create=nodescript.install_binary_script(node, binary),
                                              delete=nodescript.remove_binary_script(node, binary))
            elif g.role == "verify" and check is not None:
                env = {"WSF_KUBECONFIG": pulumi.Output.secret(check.kubeconfig or ""),
                       "WSF_KUBE_CONTEXT": check.context or ""}
                built[g.name] = command.local.Command(g.name, create=verify.runtime_handlers_script(node),
                                                      environment=env, interpreter=["/bin/sh", "-c"], opts=opts)
            elif g.role == "handlers":
                table_script = _seeded(node, args.local_base, nodescript.apply_table_script(node))
                built[g.name] = self._command(g.name, node, args, connection, opts=opts, create=table_script,
                                              update=table_script, delete=nodescript.remove_table_script(node))
            else:
                built[g.name] = k8s.core.v1.NodePatch(
                    g.name,
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
                vars(self).setdefault("labels_applied", {})[node.name] = built[g.name].metadata.apply(
                    lambda m: dict(m.labels or {}) if m is not None else {})

    def _command(self, resource_name: str, node: NodePlan, args: NodePoolArgs,
                 connection: command.remote.ConnectionArgs | None, *, create: str, delete: str,
                 opts: pulumi.ResourceOptions, update: str | None = None) -> pulumi.Resource:
        if node.transport == "local":
            if not args.local_base:
                raise ValueError(f"node {node.name}: transport local needs NodePoolArgs.local_base")
            # The script's own defaults, with the node root made absolute.
            env = {**nodescript.script_env(node), "NODE_ROOT": f"{args.local_base.rstrip('/')}/{node.node_root}"}
            return command.local.Command(resource_name, create=create, update=update, delete=delete,
                                         environment=env, interpreter=["/bin/sh", "-c"], opts=opts)
        if connection is None:
            raise ValueError(f"node {node.name}: transport ssh needs NodePoolArgs.ssh")
        return command.remote.Command(resource_name, connection=connection, create=create,
                                      update=update, delete=delete, opts=opts)


def _seeded(node: NodePlan, local_base: str | None, script: str) -> str:
    """For a local node with `seedConfig`: copy that config into the node root first if it has none."""
    if node.transport != "local" or not node.seed_config or not local_base:
        return script
    flavor = FLAVORS[node.flavor]
    seed = nodescript.shq(f"{local_base.rstrip('/')}/{node.seed_config}")
    target = f'"$NODE_ROOT"{nodescript.shq(flavor.config_path)}'
    return (f"# local node: start from {node.seed_config} when the node root has no containerd config\n"
            f'if [ ! -e {target} ]; then mkdir -p "$(dirname {target})" && cp {seed} {target}; fi\n' + script)


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
