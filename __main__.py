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

from components.agent import AgentSettings
from components.core.config import NAMESPACE, Problem, config_key_problems, kubeconfig_is_contents, strip_namespace
from components.core.deployed import LABELS_OUTPUT, PLAN_OUTPUT, against_deployed
from components.core.plan import plan_from_config
from components.deployed_state import read_deployed
from components.fleet import ShimFleet, ShimFleetArgs
from components.incluster import InCluster, runner_namespace
from components.nodepool import Bastion, RuntimeHandlerCheck, SshConnection, SshCredentials
from components.sdk_debug import drop_sdk_debug
from components.stack_traces import keep_program_frames


def read_config() -> tuple[dict, set[str], list[Problem]]:
    """Every `wasm-shim-fleet:*` key, decoded, secrets included (they leave here only as Outputs); the keys
    the engine holds as secrets; and keys meant for this program that it would ignore (a misspelled
    namespace)."""
    from pulumi.runtime import config as runtime_config  # all keys, so unknown ones can be reported

    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret = set(runtime_config.get_config_secret_keys_env())
    out = {}
    for key, value in strip_namespace(merged).items():
        try:
            out[key] = json.loads(value) if isinstance(value, str) else value
        except (ValueError, RecursionError):
            out[key] = value
    secret_keys = {k for k in out
                   if runtime_config.is_config_secret(f"{NAMESPACE}:{k}") or f"{NAMESPACE}:{k}" in secret}
    return out, secret_keys, config_key_problems(merged)


# The program is a short-lived process that builds a few resources per node and exits. Python's cyclic GC
# would walk the Pulumi SDK's live futures and outputs again and again (about 6 s of 15 s at 1000 nodes,
# bench/RESULTS.md) without finding garbage worth it; peak memory is the same without it.
gc.disable()
# Each registration's stack trace: the line that built the resource, not the whole stack (components/stack_traces.py):
# ~2 KB less state per resource, and less time per registration.
keep_program_frames()
# The SDK's ~4 debug messages per resource, each a blocking round trip to the engine that only `--debug`
# shows (components/sdk_debug.py): not sent unless WSF_SDK_DEBUG=1.
drop_sdk_debug()

project_dir = os.getcwd()
raw_config, secret_keys, key_problems = read_config()
cfg, plan = plan_from_config(raw_config, project_dir, secret_keys)
for problem in (*key_problems, *plan.problems):
    (pulumi.log.error if problem.severity == "error" else pulumi.log.warn)(f"{NAMESPACE}:{problem}")
if not plan.ok or key_problems:
    raise pulumi.RunError(f"{len(plan.errors) + len(key_problems)} error(s) in the stack config; nothing was changed "
                          "(run `python -m components plan Pulumi.<stack>.yaml` to see them all)")

# The safe order against what is deployed (components/core/deployed.py): a handler that a deployed label
# still promises stays for one more step, whatever the stack file's history.
deployed, unread = read_deployed()
if unread:
    pulumi.log.warn(f"{NAMESPACE}: cannot read this stack's deployed state ({unread}); handlers are kept only "
                    "as the stack config says (retire before you remove)")
plan, against = against_deployed(plan, deployed)
for problem in against:
    (pulumi.log.error if problem.severity == "error" else pulumi.log.warn)(f"{NAMESPACE}:{problem}")
if not plan.ok:
    raise pulumi.RunError(f"{len(plan.errors)} step(s) refused against the deployed state; nothing was changed "
                          "(each error above says how to split the change)")

ssh = None
if cfg.ssh.private_key is not None:
    proxy = None
    if cfg.ssh.proxy is not None:
        p = cfg.ssh.proxy
        login = None
        if p.user is not None or p.has_private_key:
            login = SshCredentials(user=p.user or cfg.ssh.user, private_key=pulumi.Output.secret(
                cfg.ssh.proxy_private_key) if p.has_private_key else None)
        proxy = Bastion(host=p.host, port=p.port or 22, host_key=p.host_key, credentials=login)
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
    kubeconfig = k8s_settings.kubeconfig
    if kubeconfig and not kubeconfig_is_contents(kubeconfig):
        kubeconfig = os.path.expanduser(kubeconfig)
    # A secret: given as contents, the kubeconfig (its keys, tokens) must not be stored in plain text in the state.
    provider = k8s.Provider("k8s", kubeconfig=pulumi.Output.secret(kubeconfig) if kubeconfig else None,
                            context=k8s_settings.context)
    check = RuntimeHandlerCheck(kubeconfig, k8s_settings.context)

# transport kubernetes: node commands run in pods of the runner namespace, created before them and deleted
# after them (the config check refuses these pools in render mode and without a runner image).
in_cluster = None
if any(n.transport == "kubernetes" for n in plan.nodes) and not k8s_settings.render_dir:
    assert k8s_settings.runner_image is not None  # checked by the config
    in_cluster = InCluster(k8s_settings.runner_image, k8s_settings.runner_namespace, kubeconfig,
                           k8s_settings.context,
                           runner_namespace("runner-namespace", k8s_settings.runner_namespace, provider))

# transport agent: a DaemonSet of node agents per pool (the config check refuses these pools in render mode and
# without an agent image).
agents = None
if plan.agent_pools and not k8s_settings.render_dir:
    assert k8s_settings.agent_image is not None  # checked by the config
    agents = AgentSettings(image=k8s_settings.agent_image, namespace=k8s_settings.agent_namespace,
                           api_server=k8s_settings.agent_api_server, kubeconfig=kubeconfig,
                           context=k8s_settings.context, force_labels=k8s_settings.force_labels)

fleet = ShimFleet("fleet", ShimFleetArgs(plan=plan, ssh=ssh, local_base=project_dir, k8s_provider=provider,
                                         runtime_handler_check=check, in_cluster=in_cluster, agents=agents))
pulumi.export("runtimeClasses", fleet.runtime_classes)
pulumi.export("nodes", fleet.nodes)
if fleet.agent_pools:
    pulumi.export("agentPools", fleet.agent_pools)
# What this update applies, read back by the next one (components.core.deployed.PLAN_OUTPUT).
pulumi.export(PLAN_OUTPUT, {k: v for k, v in plan.to_json().items() if k != "problems"})
pulumi.export(LABELS_OUTPUT, fleet.labels_applied)
