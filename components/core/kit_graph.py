"""The resources of one node, as plain data: which exist, which depends on which, and the exact text each
sends to the node.

The engine runs creates and updates in dependency order, then deletes in reverse dependency order of the
old graph. The graph below makes that the safe order on a node:

    kit  ->  bin-<binary> ...  ->  handlers  [->  verify]  ->  labels

- the kit (the shared node logic, components/core/kit/wsf.sh) is delivered first, by reference: over SSH a
  `command:remote:CopyToRemote` of a staged folder `kit/<sha256>/wsf.sh` + `kit/selected` (components.nodepool
  writes it, kit_stage_dir names it), for
  local nodes a command that copies the staged file and checks it, through the cluster (transport kubernetes)
  a command whose runner pod carries the staged file and whose script checks it; the other scripts never name
  a kit, so a kit change changes this resource only;
- adding a release: the binary is installed, then the handler table names it and containerd is restarted
  and checked, then the labels that promise it appear (P1, P2);
- with a cluster to label (not in render mode), `verify` checks between the table and the labels that the
  kubelet reports the node's handlers in node.status.runtimeHandlers (components/core/verify.py; a local
  command where pulumi runs);
- removing a release or a node: labels go first, then the handler table stops naming the binary (or is
  removed, restoring the original config), then the binary is deleted, and the kit last;
- the handler table is one command per node, updated in place when the table changes: at most one
  containerd restart per node per `pulumi up` (P3);
- across the nodes of a pool (components/core/rollout.py): a node's handler table also waits for the label
  patches of the batch before its own, and, after the canary, its binaries wait for the canary's binaries of
  the same name (`order`). These are dependencies only, never inputs.

Pure (no pulumi, no I/O): the components build exactly these resources, and
`python -m components node-script STACK NODE` prints them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from . import nodescript
from .plan import NodePlan
from .rollout import Batches


@dataclass(frozen=True)
class NodeResource:
    name: str  # Pulumi resource name
    role: str  # kit | binary | handlers | verify | labels
    depends_on: tuple[str, ...]
    #: command | copy (command:remote:CopyToRemote) | patch (NodePatch) | verify (a local command, where
    #: pulumi runs, whose text is `create`)
    kind: str = "command"
    create: str | None = None
    update: str | None = None  # None: pulumi-command runs `create` again on an update
    delete: str | None = None
    #: kind copy: the local folder copied (a FileArchive) and where it goes on the node.
    copy_source: str | None = None
    remote_path: str | None = None
    #: the binary's name, for role binary
    binary: str | None = None
    #: transport kubernetes: a local file the runner pod carries to the node with the script (the kit),
    #: found there as "$WSF_RUN_PAYLOAD"
    payload: str | None = None


def node_prefix(pool_component: str, node: NodePlan) -> str:
    return f"{pool_component}-{node.name}"


def kit_resource(pool_component: str, node: NodePlan) -> str:
    return f"{node_prefix(pool_component, node)}-kit"


@dataclass(frozen=True)
class NodeOrder:
    """What one node's resources wait for besides its own (resource names, components/core/kit_graph.py)."""

    #: its handler table waits for these (the label patches of the batch before it)
    table_after: tuple[str, ...] = ()
    #: binary name -> the canary's resources of that binary, which its own binary waits for
    binaries_after: Mapping[str, tuple[str, ...]] | None = None


def binary_resource(pool_component: str, node: NodePlan, binary: str) -> str:
    return f"{node_prefix(pool_component, node)}-bin-{binary}"


def handlers_resource(pool_component: str, node: NodePlan) -> str:
    return f"{node_prefix(pool_component, node)}-handlers"


def verify_resource(pool_component: str, node: NodePlan) -> str:
    return f"{node_prefix(pool_component, node)}-verify"


def labels_resource(pool_component: str, node: NodePlan) -> str:
    return f"{node_prefix(pool_component, node)}-labels"


def node_orders(pool_component: str, nodes: Sequence[NodePlan], batches: Batches) -> dict[str, NodeOrder]:
    """node name -> NodeOrder, for the NodePlans of one pool (`nodes`) rolled in `batches`."""
    by_name = {n.name: n for n in nodes}
    canary = batches.batches[0] if batches.canary else ()
    out: dict[str, NodeOrder] = {}
    for i, batch in enumerate(batches.batches):
        before = tuple(labels_resource(pool_component, by_name[n]) for n in batches.batches[i - 1]) if i else ()
        for name in batch:
            node = by_name[name]
            after: dict[str, tuple[str, ...]] = {}
            if name not in canary:
                for b in node.binaries:
                    after[b] = tuple(binary_resource(pool_component, by_name[c], b) for c in canary
                                     if b in by_name[c].binaries)
            out[name] = NodeOrder(before, {k: v for k, v in after.items() if v})
    return out


def kit_stage_dir(sha: str) -> str:
    """The local folder copied to SSH nodes: `<it>/kit/<sha>/wsf.sh` and `<it>/kit/selected`. Written by
    components.nodepool.stage_kit; the path is the same for every node and every run with this kit."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "wasm-shim-fleet", "kit-stage", sha)


def node_resources(pool_component: str, node: NodePlan, local_base: str | None = None,
                   kit: str | None = None, verify: bool = False, order: NodeOrder | None = None) -> list[NodeResource]:
    """The node's resources in creation order, with the text each sends. `local_base`: the folder that local
    node roots, seed configs and the kit file are relative to (the project folder). `kit`: the kit text (tests
    only; default the kit file). `verify`: check node.status.runtimeHandlers before the labels. `order`: what
    the node waits for in its pool's rollout (node_orders above; None: nothing)."""
    from . import verify as runtime_handlers

    root = None
    seed = None
    kit_text = nodescript.kit_text() if kit is None else kit
    sha = nodescript.kit_sha256(kit_text)
    if node.transport == "local":
        if not local_base:
            raise ValueError(f"node {node.name}: transport local needs the project folder (local_base)")
        base = local_base.rstrip("/")
        root = f"{base}/{node.node_root}"
        if node.seed_config:
            seed = f"{base}/{node.seed_config}"
        kit_file = os.path.join(kit_stage_dir(sha), "kit", sha, nodescript.KIT_NAME)
        kit_res = NodeResource(kit_resource(pool_component, node), "kit", (),
                               create=nodescript.kit_copy_script(node, kit_file, root, sha),
                               delete=nodescript.kit_remove_script(node, root))
    elif node.transport == "kubernetes":
        # Through the cluster: the runner pod carries the staged kit file; the script keeps it only if it hashes
        # to the sha256 written in this text (nodescript.kit_payload_script).
        kit_res = NodeResource(kit_resource(pool_component, node), "kit", (),
                               create=nodescript.kit_payload_script(node, None, sha),
                               delete=nodescript.kit_remove_script(node),
                               payload=os.path.join(kit_stage_dir(sha), "kit", sha, nodescript.KIT_NAME))
    else:
        kit_res = NodeResource(kit_resource(pool_component, node), "kit", (), kind="copy",
                               copy_source=os.path.join(kit_stage_dir(sha), "kit"),
                               remote_path=nodescript.STATE_DIR)
    out = [kit_res]
    order = order if order is not None else NodeOrder()
    bin_after = order.binaries_after or {}
    for b in node.binaries.values():
        out.append(NodeResource(binary_resource(pool_component, node, b.name), "binary",
                                (kit_res.name, *bin_after.get(b.name, ())),
                                create=nodescript.install_binary_script(node, b, root),
                                delete=nodescript.remove_binary_script(node, b, root), binary=b.name))
    # After the binaries (and so after the kit, which each of them follows); on a node with none, after the kit;
    # and after the label patches of the previous batch of the pool's rollout.
    handlers = NodeResource(handlers_resource(pool_component, node), "handlers",
                            (*(tuple(r.name for r in out[1:]) or (kit_res.name,)), *order.table_after),
                            create=nodescript.apply_table_script(node, root, seed),
                            delete=nodescript.remove_table_script(node, root))
    if not verify:
        labels = NodeResource(labels_resource(pool_component, node), "labels", (handlers.name,), kind="patch")
        return [*out, handlers, labels]
    check = NodeResource(verify_resource(pool_component, node), "verify", (handlers.name,), kind="verify",
                         create=runtime_handlers.runtime_handlers_script(node))
    labels = NodeResource(labels_resource(pool_component, node), "labels", (check.name,), kind="patch")
    return [*out, handlers, check, labels]
