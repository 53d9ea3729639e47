"""The Pulumi program: read the stack config through the core, then instantiate the fleet.

Every problem in the config is reported (with its config path) before any resource is registered, so a
bad stack file never touches a node or the cluster.
"""

from __future__ import annotations

import gc
import json
import os

import pulumi
import pulumi_kubernetes as k8s

from components.core.config import NAMESPACE, strip_namespace
from components.core.plan import plan_from_config
from components.fleet import ShimFleet, ShimFleetArgs
from components.nodepool import RuntimeHandlerCheck, SshConnection


def read_config() -> dict:
    """Every `wasm-shim-fleet:*` key, decoded, secrets included (they leave here only as Outputs)."""
    from pulumi.runtime import config as runtime_config  # all keys, so unknown ones can be reported

    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    out = {}
    for key, value in strip_namespace(merged).items():
        try:
            out[key] = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            out[key] = value
    return out


# The program is a short-lived process that builds a few resources per node and exits. Python's cyclic GC
# would walk the Pulumi SDK's live futures and outputs again and again (about 6 s of 15 s at 1000 nodes,
# bench/RESULTS.md) without finding garbage worth it; peak memory is the same without it.
gc.disable()

project_dir = os.getcwd()
cfg, plan = plan_from_config(read_config(), project_dir)
for problem in plan.problems:
    (pulumi.log.error if problem.severity == "error" else pulumi.log.warn)(f"{NAMESPACE}:{problem}")
if not plan.ok:
    raise pulumi.RunError(f"{len(plan.errors)} error(s) in the stack config; nothing was changed "
                          "(run `python -m components plan Pulumi.<stack>.yaml` to see them all)")

ssh = None
if cfg.ssh.private_key is not None:
    proxy = None
    if cfg.ssh.proxy is not None:
        p = cfg.ssh.proxy
        proxy = {"host": p.host, "port": p.port, "user": p.user, "host_key": p.host_key,
                 "private_key": pulumi.Output.secret(cfg.ssh.proxy_private_key) if p.has_private_key else None}
    ssh = SshConnection(user=cfg.ssh.user, port=cfg.ssh.port, private_key=pulumi.Output.secret(cfg.ssh.private_key),
                        proxy=proxy)

k8s_settings = cfg.kubernetes
check = None
if k8s_settings.render_dir:
    # kubeconfig="" explicitly: left None, pulumi-kubernetes fills it from $KUBECONFIG, and the provider then
    # rejects the pair ("kubeconfig" arg is not compatible with "renderYamlToDirectory" arg).
    provider = k8s.Provider("k8s", render_yaml_to_directory=os.path.join(project_dir, k8s_settings.render_dir),
                            kubeconfig="")
else:
    provider = k8s.Provider("k8s", kubeconfig=k8s_settings.kubeconfig, context=k8s_settings.context)
    kubeconfig = k8s_settings.kubeconfig
    if kubeconfig and "\n" not in kubeconfig:
        kubeconfig = os.path.expanduser(kubeconfig)
    check = RuntimeHandlerCheck(kubeconfig, k8s_settings.context)

fleet = ShimFleet("fleet", ShimFleetArgs(plan=plan, ssh=ssh, local_base=project_dir, k8s_provider=provider,
                                         runtime_handler_check=check))
pulumi.export("runtimeClasses", fleet.runtime_classes)
pulumi.export("nodes", fleet.nodes)
