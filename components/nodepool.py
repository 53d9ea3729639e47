"""NodePool: the shim binaries, containerd handler table and labels of every node in one pool.

Two ways in, one way to resources:
- `NodePoolArgs`: a platform engineer's own program gives a catalog, the pool's releases and retiring list, a
  containerd flavor (a built-in name or a `ContainerdLayout` of their own) and nodes whose host, port, host key
  and credentials may be Outputs of other resources. The pure core checks and plans them
  (components/core/pool.py: the stack config's rules, named by argument) before anything is registered.
- `PlannedNodePoolArgs`: nodes already planned from a stack config (ShimFleet, the project's program).
Either way each node's resources are built by `NodePool.build_node_resources` from the same plain data
(components/core/kit_graph.node_resources).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from .core import naming, nodescript
from .core.config import DEFAULT_RUNTIME, Problem, Rollout, connection_problems, rollout_problems
from .core.flavors import Flavor
from .core.kit_graph import NodeOrder, kit_stage_dir, node_orders, node_resources
from .core.plan import NodePlan, RuntimeClassPlan
from .core.pool import PENDING, CatalogEntry, NodeSpec, PoolSpec, plan_pool
from .core.rollout import Batches, pool_batches
from .incluster import InCluster, node_command

TYPE = "wasm-shim-fleet:index:NodePool"

#: One catalog entry: a shim release and its artifact (`shim`, `version`, `url`, `sha256`, archive member
#: `binary`, `probe`). Plain values: they go into the node scripts.
ShimRelease = CatalogEntry
#: A containerd layout of your own (`name`, `config_version`, `config_path`, `template`, `restart`,
#: `loaded_config_path`, `socket`, `create_base`, `also_accepts`), for nodes no built-in flavor describes.
ContainerdLayout = Flavor


@dataclass(frozen=True)
class SshCredentials:
    """How to log in to a node: a private key or an SSH agent socket (one of them)."""

    #: Login user on the node (root, or a user whose shell may write containerd's config). A plain value.
    user: str = "root"
    #: The private key (PEM/OpenSSH text). May be an Output; it is always passed on as a secret and never reaches
    #: a script, an output or a log.
    private_key: pulumi.Input[str] | None = None
    #: Path of an SSH agent's socket on the machine running pulumi (instead of a private key), e.g.
    #: os.environ["SSH_AUTH_SOCK"].
    agent_socket: pulumi.Input[str] | None = None
    #: Passphrase of an encrypted private key (a secret).
    private_key_password: pulumi.Input[str] | None = None

    def __repr__(self) -> str:  # never a key in a repr
        return (f"SshCredentials(user={self.user!r}, private_key={'<set>' if self.private_key is not None else None},"
                f" agent_socket={'<set>' if self.agent_socket is not None else None})")


@dataclass(frozen=True)
class Bastion:
    """An SSH jump host (ProxyJump) between pulumi and the nodes."""

    host: pulumi.Input[str]
    port: pulumi.Input[int] = 22
    #: Pinned host key of the bastion ("ssh-ed25519 AAAA..."); without it the bastion's identity is not checked.
    host_key: pulumi.Input[str] | None = None
    #: Login to the bastion (None: the node's credentials).
    credentials: SshCredentials | None = None


@dataclass(frozen=True)
class PoolNode:
    """One node of a pool."""

    #: The Kubernetes node name. A plain str: it names the node's resources and its label patch.
    name: str
    #: Address of the node's SSH server (an Output of the resource that made the machine, or a plain value).
    host: pulumi.Input[str] | None = None
    #: SSH port (None: the pool's `port`).
    port: pulumi.Input[int] | None = None
    #: Pinned SSH host key ("ssh-ed25519 AAAA..."); without it the node's identity is not checked.
    host_key: pulumi.Input[str] | None = None
    #: Credentials of this node (None: the pool's).
    credentials: SshCredentials | None = None


@dataclass(frozen=True)
class RuntimeHandlerCheck:
    """How the `verify` step reads Nodes (components/core/verify.py): with kubectl on the machine running pulumi."""

    #: A kubeconfig path or its contents (None: kubectl's usual lookup). Passed to the check as a secret.
    kubeconfig: str | None = None
    #: kubeconfig context (None: the current one).
    context: str | None = None


@dataclass(frozen=True)
class NodePoolArgs:
    """Typed arguments of a NodePool in your own program. Every problem is reported at once, by argument name,
    before any resource is registered (NodePoolArgsError)."""

    #: Every shim release the pool may name (ShimRelease); releases not pinned here are simply not installed.
    catalog: Sequence[CatalogEntry]
    #: Releases every node of the pool runs and is labelled for, as "<shim>@<version>" (e.g. "slight@1.2.3").
    releases: Sequence[str]
    #: The pool's nodes.
    nodes: Sequence[PoolNode]
    #: Releases still installed and handled but no longer labelled (step one of removing a version).
    retiring: Sequence[str] = ()
    #: A built-in containerd flavor ("containerd-1", "containerd-2", "k3s", ...) or a ContainerdLayout.
    containerd: str | ContainerdLayout = "containerd-1"
    #: Credentials of every node without its own.
    credentials: SshCredentials | None = None
    #: SSH port of nodes that give none.
    port: int = 22
    #: A bastion between pulumi and the nodes.
    proxy: Bastion | None = None
    #: Command that restarts containerd on a node (None: the flavor's).
    restart: str | None = None
    #: Prefix of RuntimeClass names and label keys.
    runtime: str = DEFAULT_RUNTIME
    #: Prefix of node label keys ("wasm.example.org/"), or "".
    label_prefix: str = ""
    #: Take over labels another field manager set on the nodes (default: a conflict is an error).
    force_labels: bool = False
    #: The pool's name in node scripts and outputs (None: the NodePool's resource name).
    pool: str | None = None
    #: Kubernetes provider for the label patches (None: the default provider).
    k8s_provider: pulumi.ProviderResource | None = None
    #: Before labelling a node, check its handlers in node.status.runtimeHandlers (None: no check).
    runtime_handler_check: RuntimeHandlerCheck | None = None
    #: Lab only: nodes and the bastion may go without a pinned host_key. pulumi-command then checks no host
    #: key at all, and a machine in the middle receives the root command stream (each one is warned about).
    insecure_accept_any_host_key: bool = False
    #: How a change rolls over the nodes (components/core/rollout.py): `Rollout(max_unavailable=..., canary=...)`;
    #: None: one canary node (the first of `nodes`), then at most 25 % of the nodes at a time.
    rollout: Rollout | None = None


@dataclass(frozen=True)
class SshConnection:
    """How a stack config's `transport: ssh` pools are reached (one login for the fleet; ShimFleet)."""

    #: Login user on the nodes (root, or a user whose shell may write containerd's config).
    user: str
    #: Default SSH port; a node's own `port` wins.
    port: int
    #: The private key. Always pass a Pulumi secret (pulumi.Output.secret); it never reaches a script.
    private_key: pulumi.Input[str] | None = None
    #: Optional bastion.
    proxy: Bastion | None = None
    #: An SSH agent socket instead of the private key.
    agent_socket: pulumi.Input[str] | None = None


@dataclass(frozen=True)
class PlannedNodePoolArgs:
    """Arguments of a NodePool whose nodes are already planned (ShimFleet, from a stack config)."""

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
    #: How a change rolls over the nodes (the pool's `rollout`; None: the defaults, components/core/rollout.py).
    rollout: Rollout | None = None


class NodePoolArgsError(pulumi.InputPropertiesError, pulumi.RunError):
    """The arguments of a NodePool have errors: `errors` lists each (property_path, reason); the message lists
    them all, each with the value, the rule and the fix. A RunError, so the engine shows it without a
    traceback."""

    def __init__(self, name: str, problems: Sequence[Problem]) -> None:
        lines = "\n".join(f"  {p.path}: {p.message}" for p in problems)
        super().__init__(f"NodePool {name}: {len(problems)} error(s) in its arguments; nothing was created:\n{lines}",
                         [{"property_path": p.path, "reason": p.message} for p in problems])


@dataclass
class _Conn:
    """How one node is reached, as pulumi-command connection inputs (plain or Output)."""

    host: Any
    port: Any
    user: str
    host_key: Any
    credentials: dict[str, Any] = field(default_factory=dict)  # private_key / agent_socket_path / ...
    proxy: command.remote.ProxyConnectionArgs | None = None

    def args(self) -> command.remote.ConnectionArgs:
        return command.remote.ConnectionArgs(host=self.host, port=self.port, user=self.user, host_key=self.host_key,
                                             proxy=self.proxy, **self.credentials)


def _once_known(output: pulumi.Output[Any], value: dict[str, str]) -> pulumi.Output[dict[str, str]]:
    """`value`, resolved when `output` is (a handler table is known once its command has run)."""
    return output.apply(lambda _: value)


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
    Attributes for a consumer: `handlers` and `labels` (node -> Output of its handler table / its labels, each
    resolving once the table is applied / the labels are patched), `runtime_classes` (the RuntimeClasses the
    pool's labels call for, plain data for RuntimeClassSet), `plans` (node -> NodePlan).
    """

    def __init__(self, name: str, args: NodePoolArgs | PlannedNodePoolArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        if isinstance(args, NodePoolArgs):
            nodes, conns, classes = _from_args(name, args)
            local_base, provider, check = None, args.k8s_provider, args.runtime_handler_check
            in_cluster = None
            rollout = args.rollout
        else:
            pools = {n.pool for n in args.nodes}
            if len(pools) > 1:
                raise ValueError(f"NodePool {name}: nodes come from several pools {sorted(pools)}")
            nodes, classes = list(args.nodes), ()
            conns = _from_ssh(nodes, args.ssh)
            local_base, provider, check = args.local_base, args.k8s_provider, args.runtime_handler_check
            in_cluster = args.in_cluster
            rollout = args.rollout
        props = {
            "pool": nodes[0].pool if nodes else None,
            "containerd": nodes[0].flavor if nodes else None,
            "nodes": [n.to_json() for n in nodes],
        }
        super().__init__(TYPE, name, props, opts)
        self._staged = False
        #: node -> its plan (plain data: names, handlers, labels, binaries)
        self.plans: dict[str, NodePlan] = {n.name: n for n in nodes}
        #: the RuntimeClasses this pool's labels call for (NodePoolArgs only; ShimFleet plans the fleet's)
        self.runtime_classes: tuple[RuntimeClassPlan, ...] = tuple(classes)
        self.nodes: dict[str, dict] = {}
        #: node -> Output of its handler table (handler -> runtime_type), known once the table is applied
        self.handlers: dict[str, pulumi.Output[dict[str, str]]] = {}
        #: node -> Output of its labels as the API server answered the label patch
        self.labels: dict[str, pulumi.Output[dict[str, str]]] = {}
        #: the pool's rollout batches (components/core/rollout.py): canary first, then maxUnavailable at a time
        self.batches: Batches = pool_batches(nodes[0].pool if nodes else name, [n.name for n in nodes], rollout)
        orders = node_orders(name, nodes, self.batches)
        self._built: dict[str, pulumi.Resource] = {}
        for node in nodes:
            built = self.build_node_resources(name, node, conns.get(node.name), local_base, provider, check,
                                              in_cluster, orders.get(node.name))
            table = cast(pulumi.CustomResource, built["handlers"])  # a command, local or remote
            patch = cast(k8s.core.v1.NodePatch, built["labels"])
            self.handlers[node.name] = _once_known(table.id, dict(node.handlers))
            self.labels[node.name] = patch.metadata.apply(
                lambda m: dict(m.labels or {}) if m is not None else {})
            self.nodes[node.name] = {"releases": list(node.releases), "retiring": list(node.retiring),
                                     "labels": dict(node.labels), "handlers": dict(node.handlers),
                                     "binaries": {k: b.to_json() for k, b in node.binaries.items()}}
        # kept under its former name for ShimFleet (the stack's deployedLabels output)
        self.labels_applied = self.labels
        self.register_outputs({"nodes": self.nodes})

    def build_node_resources(self, name: str, node: NodePlan, conn: _Conn | None, local_base: str | None,
                             provider: pulumi.ProviderResource | None,
                             check: RuntimeHandlerCheck | None,
                             in_cluster: InCluster | None = None,
                             order: NodeOrder | None = None) -> dict[str, pulumi.Resource]:
        """The one place a node's resources become pulumi resources: exactly as
        components.core.kit_graph.node_resources lays them out (names, order, dependencies, texts). A new
        transport adds its branch here. Returns them by role (kit, binary names, handlers, verify, labels).
        `order`: what the node waits for in the pool's rollout (resources of nodes built before it)."""
        built = self._built  # every node's, by resource name: a rollout's dependencies cross nodes
        by_role: dict[str, pulumi.Resource] = {}
        connection = None
        if node.transport == "kubernetes":
            if in_cluster is None:
                raise ValueError(f"node {node.name}: transport kubernetes needs PlannedNodePoolArgs.in_cluster")
        elif node.transport != "local":
            if conn is None:
                raise ValueError(f"node {node.name}: transport ssh needs SSH settings (PlannedNodePoolArgs.ssh)")
            connection = conn.args()
        if not self._staged:
            stage_kit()  # the folder the kit resources copy from (content-addressed, written once)
            self._staged = True
        for r in node_resources(name, node, local_base, verify=check is not None, order=order):
            opts = pulumi.ResourceOptions(parent=self, depends_on=[built[d] for d in r.depends_on],
                                          provider=provider if r.kind == "patch" else None)
            if r.kind == "copy":
                assert r.copy_source is not None  # node_resources gives every copy its source
                built[r.name] = command.remote.CopyToRemote(
                    r.name, connection=connection, source=pulumi.FileArchive(r.copy_source),
                    remote_path=r.remote_path, opts=opts)
            elif r.kind == "verify" and check is not None:
                env: dict[str, pulumi.Input[str]] = {"WSF_KUBECONFIG": pulumi.Output.secret(check.kubeconfig or ""),
                       "WSF_KUBE_CONTEXT": check.context or ""}
                built[r.name] = command.local.Command(r.name, create=r.create, environment=env,
                                                      interpreter=["/bin/sh", "-c"], opts=opts)
            elif r.kind == "command" and node.transport == "kubernetes" and in_cluster is not None:
                # Through the cluster: the same scripts, run on the node by a runner pod (components/incluster.py).
                built[r.name] = node_command(r, node, in_cluster, opts)
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
            by_role[r.binary if r.role == "binary" and r.binary else r.role] = built[r.name]
        return by_role


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


def _secret(value: Any) -> Any:
    return None if value is None else pulumi.Output.secret(value)


def _credential_inputs(creds: SshCredentials | None, secret_key: Any) -> dict[str, Any]:
    """pulumi-command connection fields of one login; only those given (a None field is not an input)."""
    if creds is None:
        return {}
    out: dict[str, Any] = {}
    if creds.private_key is not None:
        out["private_key"] = secret_key
    if creds.agent_socket is not None:
        out["agent_socket_path"] = creds.agent_socket
    if creds.private_key_password is not None:
        out["private_key_password"] = _secret(creds.private_key_password)
    return out


def _checked(pool: str, path: str, kind: str, value: pulumi.Input[Any]) -> Any:
    """A connection value as given, or, when it is an Output, an Output that fails with the stack config's rule
    (config.connection_problems) once it resolves to a bad value."""
    if not isinstance(value, pulumi.Output):
        return value

    def check(v: Any) -> Any:
        problems = connection_problems(path.rsplit(".", 1)[0], **{kind: v})
        if problems:
            raise NodePoolArgsError(pool, problems)
        return v

    return value.apply(check)


def _is_output(value: Any) -> bool:
    return isinstance(value, pulumi.Output)


def _spec_value(value: Any) -> Any:
    return PENDING if _is_output(value) else value


def _from_args(name: str, args: NodePoolArgs) -> tuple[list[NodePlan], dict[str, _Conn], tuple[RuntimeClassPlan, ...]]:
    """Check and plan the arguments (components/core/pool.py), and each node's connection."""
    proxy_text = None
    if args.proxy is not None:
        p = args.proxy
        shown = p.host if isinstance(p.host, str) else "(output)"
        user = p.credentials.user if p.credentials else (args.credentials.user if args.credentials else "root")
        proxy_text = (f"{user}@{shown}:{p.port if isinstance(p.port, int) else '(output)'}"
                      + (" hostKey pinned" if p.host_key is not None else " (host key not pinned)"))
    spec = PoolSpec(
        pool=args.pool if args.pool is not None else name,
        catalog=list(args.catalog), releases=list(args.releases), retiring=list(args.retiring),
        containerd=args.containerd,
        nodes=[NodeSpec(_spec_value(n.name), _spec_value(n.host), _spec_value(n.port), _spec_value(n.host_key),
                        n.credentials.user if n.credentials else None, _has_login(n.credentials))
               for n in args.nodes],
        user=args.credentials.user if args.credentials else "root", port=args.port,
        has_credentials=_has_login(args.credentials), restart=args.restart, runtime=args.runtime,
        label_prefix=args.label_prefix, force_labels=args.force_labels, proxy=proxy_text,
        insecure_accept_any_host_key=args.insecure_accept_any_host_key,
    )
    problems = list(_arg_problems(args))
    planned = plan_pool(spec)
    problems += planned.problems
    for w in (p for p in problems if p.severity == "warning"):
        pulumi.log.warn(f"NodePool {name}: {w.path}: {w.message}")
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise NodePoolArgsError(name, errors)
    keys: dict[int, Any] = {}

    def key_of(creds: SshCredentials) -> Any:  # one secret Output per login, shared by its nodes' commands
        if id(creds) not in keys:
            keys[id(creds)] = _secret(creds.private_key)
        return keys[id(creds)]

    proxy = None
    if args.proxy is not None:
        p = args.proxy
        pcreds = p.credentials or args.credentials
        proxy = command.remote.ProxyConnectionArgs(
            host=_checked(name, "proxy.host", "host", p.host), port=_checked(name, "proxy.port", "port", p.port),
            user=pcreds.user if pcreds else "root", host_key=_checked(name, "proxy.host_key", "host_key", p.host_key),
            **_credential_inputs(pcreds, key_of(pcreds) if pcreds else None))
    conns = {}
    for j, (n, node) in enumerate(zip(args.nodes, planned.nodes, strict=True)):
        creds = n.credentials or args.credentials
        assert creds is not None  # plan_pool reported a node without credentials
        port = n.port if n.port is not None else args.port
        conns[node.name] = _Conn(
            host=_checked(name, f"nodes[{j}].host", "host", n.host),
            port=_checked(name, f"nodes[{j}].port", "port", port),
            user=creds.user, host_key=_checked(name, f"nodes[{j}].host_key", "host_key", n.host_key),
            credentials=_credential_inputs(creds, key_of(creds)), proxy=proxy)
    return list(planned.nodes), conns, planned.runtime_classes


def _has_login(creds: SshCredentials | None) -> bool:
    return creds is not None and (creds.private_key is not None or creds.agent_socket is not None)


def _arg_problems(args: NodePoolArgs) -> list[Problem]:
    """What only the typed arguments can get wrong (the rest is the stack config's rules, in the core)."""
    out = []
    for path, creds in [("credentials", args.credentials), *((f"nodes[{j}].credentials", n.credentials)
                                                             for j, n in enumerate(args.nodes)),
                        ("proxy.credentials", args.proxy.credentials if args.proxy else None)]:
        if creds is None:
            continue
        if creds.private_key is not None and creds.agent_socket is not None:
            out.append(Problem("error", path, "has both private_key and agent_socket; give one of them"))
        elif creds.private_key is None and creds.agent_socket is None:
            out.append(Problem("error", path, "has neither private_key nor agent_socket; give one of them "
                                              "(a secret private key, or the path of an SSH agent socket)"))
        if not isinstance(creds.user, str):
            out.append(Problem("error", f"{path}.user", f"{type(creds.user).__name__} here; the login user is a "
                                                         "plain str (it is part of the node's plan)"))
    if args.proxy is not None and args.proxy.host is None:
        out.append(Problem("error", "proxy.host", "missing; give the bastion's address"))
    if args.proxy is not None and args.proxy.host_key is None:
        shown = args.proxy.host if isinstance(args.proxy.host, str) else "(an Output)"
        if args.insecure_accept_any_host_key:
            out.append(Problem("warning", "proxy.host_key",
                               f"INSECURE: bastion {shown!r} accepts any SSH host key "
                               "(insecure_accept_any_host_key=True), so every connection through it trusts whatever "
                               "answers at that address and hands it the root command stream; pin host_key before "
                               "this program reaches real machines"))
        else:
            out.append(Problem("error", "proxy.host_key",
                               f"missing: bastion {shown!r} is reached over SSH, and without a pinned host key "
                               "pulumi-command checks none, so every connection through it trusts whatever answers "
                               "at that address and hands it the root command stream; pass host_key (a line of "
                               "`ssh-keyscan -t ed25519 HOST` without the host name), or, in a lab only, pass "
                               "insecure_accept_any_host_key=True"))
    for j, n in enumerate(args.nodes):
        if n.host is None:
            out.append(Problem("error", f"nodes[{j}].host", f"node {n.name!r} has no host; give the address of "
                                                           "its SSH server (a value or another resource's Output)"))
    if not isinstance(args.catalog, Sequence) or isinstance(args.catalog, (str, Mapping)):
        out.append(Problem("error", "catalog", "must be a list of ShimRelease"))
    if args.rollout is not None:
        out += rollout_problems("rollout", args.rollout, args.pool)
    return out


def _from_ssh(nodes: Sequence[NodePlan], ssh: SshConnection | None) -> dict[str, _Conn]:
    """Connections of planned ssh nodes: the fleet's login (one secret Output of the key for the whole pool,
    shared by every command: building them per command was a visible share of the program's time at 1000
    nodes)."""
    if ssh is None:
        return {}
    key = _secret(ssh.private_key)
    login = SshCredentials(ssh.user, ssh.private_key, ssh.agent_socket)
    proxy = None
    if ssh.proxy is not None:
        p = ssh.proxy
        pcreds = p.credentials
        proxy = command.remote.ProxyConnectionArgs(
            host=p.host, port=p.port or 22, user=pcreds.user if pcreds else ssh.user, host_key=p.host_key,
            private_key=(pcreds.private_key if pcreds and pcreds.private_key is not None else ssh.private_key))
    return {n.name: _Conn(host=n.host, port=n.port or ssh.port, user=ssh.user, host_key=n.host_key,
                          credentials=_credential_inputs(login, key), proxy=proxy)
            for n in nodes if n.transport != "local"}
