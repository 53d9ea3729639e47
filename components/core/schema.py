"""A JSON Schema of `Pulumi.<stack>.yaml` for editors: completion and shape checks while typing.

Built from the same constants the checks use (keys, flavors, transports, modes), so it cannot drift from
them; `stack-config.schema.json` at the repository root is its output (a test keeps the two equal):

    venv/bin/python -m components.core.schema > stack-config.schema.json

It describes shape only. The domain rules (semver, names and their limits, pins that resolve, unique
nodes, what the program refuses) stay in config.py, with their messages: run `python -m components plan`.
"""

from __future__ import annotations

import json
from typing import Any

from .config import (
    DEFAULT_MAX_BYTES,
    DEPRECATION_KEYS,
    DEPRECATION_MODES,
    K8S_KEYS,
    MAX_MAX_BYTES,
    NAMESPACE,
    NODE_KEYS,
    POOL_KEYS,
    PROBES,
    PROXY_KEYS,
    RELEASE_KEYS,
    ROLLOUT_KEYS,
    SSH_KEYS,
    TOP_KEYS,
    TRANSPORTS,
)
from .flavors import FLAVORS


def _object(props: dict[str, Any], keys: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, Any]:
    assert set(props) == set(keys), (sorted(props), keys)  # every key the checks accept, and no other
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    return out


def _s(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
SECRET = {"description": "a private key; set it with `pulumi config set --secret --path <key> < keyfile`",
          "oneOf": [{"type": "object", "properties": {"secure": {"type": "string"}}, "required": ["secure"],
                     "additionalProperties": False},
                    {"type": "string"}]}


def stack_schema() -> dict[str, Any]:
    release = _object({
        "version": _s("semantic version (quote it), e.g. \"1.2.3\"; no +build metadata"),
        "url": _s("https://..., file:///abs/path or file:relative/path of the artifact"),
        "sha256": _s("sha256 of the file the url serves", pattern="^[0-9a-fA-F]{64}$"),
        "binary": _s("member of the archive to install; omit for a bare binary"),
        "probe": {"enum": list(PROBES),
                  "description": "version (default): run the installed binary with -v before use; none: skip"},
        "maxBytes": {"type": "integer", "minimum": 1, "maximum": MAX_MAX_BYTES, "default": DEFAULT_MAX_BYTES,
                     "description": "the largest download a node accepts for this entry (default 256 MiB)"},
    }, RELEASE_KEYS, ("version", "url", "sha256"))
    pin = _s("<shim>@<version>, e.g. slight@1.2.3", pattern="^[^@]+@[^@]+$")
    node = _object({
        "name": _s("the Kubernetes node name (`kubectl get nodes`)"),
        "host": _s("SSH address: host name or IP, without port (not for transport kubernetes)"),
        "port": {**PORT, "description": "SSH port (default: ssh.port)"},
        "hostKey": _s("pinned host key: a line of `ssh-keyscan -t ed25519 HOST` without the host name; required "
                      "for transport ssh (unless ssh.insecureAcceptAnyHostKey)"),
    }, NODE_KEYS, ("name",))
    pool = _object({
        "name": _s("pool name, a DNS label"),
        "containerd": {"enum": list(FLAVORS), "description": "containerd flavor (default containerd-1)"},
        "releases": {"type": "array", "items": pin, "description": "what every node runs, labelled"},
        "retiring": {"type": "array", "items": pin, "description": "installed and handled, no longer labelled"},
        "nodes": {"type": "array", "items": node},
        "transport": {"enum": list(TRANSPORTS),
                      "description": "ssh (default), kubernetes (node commands through the cluster), agent (nodes "
                                     "chosen by nodeSelector, each converged by a node agent; the default when "
                                     "nodeSelector is given) or local (node = folder)"},
        "localRoot": _s("transport local: node roots are <localRoot>/<node> (default nodes)"),
        "restart": _s("shell command that restarts containerd (default: the flavor's)"),
        "seedConfig": _s("transport local: containerd config copied into a node root without one"),
        "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1,
                         "description": "transport agent: node labels (key: value) that choose the pool's nodes, "
                                        "now and later"},
        "rollout": _object({
            "maxUnavailable": {"oneOf": [{"type": "integer", "minimum": 1},
                                         {"type": "string", "pattern": "^[0-9]{1,3}%$"}],
                               "description": "nodes (or a percentage) converging at once (default 1)"},
            "minReadySeconds": {"type": "integer", "minimum": 0, "maximum": 3600,
                                "description": "a node's agent must stay Ready this long before the next (default 0)"},
            "timeoutSeconds": {"type": "integer", "minimum": 30, "maximum": 21600,
                               "description": "pulumi up fails if the rollout has not finished by then (default 600)"},
        }, ROLLOUT_KEYS),
        "checkSeconds": {"type": "integer", "minimum": 10, "maximum": 3600,
                         "description": "transport agent: how often each agent checks and repairs its node "
                                        "(default 60)"},
    }, POOL_KEYS, ("name",))
    proxy = _object({"host": _s("bastion host"), "port": PORT, "user": _s("bastion user"),
                     "privateKey": SECRET,
                     "hostKey": _s("the bastion's pinned host key; required (unless ssh.insecureAcceptAnyHostKey)")},
                    PROXY_KEYS, ("host",))
    ssh = _object({"user": _s("login user on the nodes (default root)"), "port": {**PORT, "default": 22},
                   "privateKey": SECRET, "proxy": proxy,
                   "insecureAcceptAnyHostKey": {
                       "type": "boolean", "default": False,
                       "description": "LAB ONLY: SSH nodes and the bastion may go without a pinned hostKey; then "
                                      "no host key is checked and a machine in the middle gets the root commands"}},
                  SSH_KEYS)
    kubernetes = _object({
        "kubeconfig": _s("path or contents (default: the usual lookup)"),
        "context": _s("kubeconfig context"),
        "renderDir": _s("write manifests here (inside the project) instead of applying them"),
        "forceLabels": {"type": "boolean", "default": False,
                        "description": "take over labels another field manager set (default false: conflict error)"},
        "runnerImage": _s("transport kubernetes: image of the node-command pods (nsenter), pinned by digest",
                          pattern="@sha256:[0-9a-f]{64}$"),
        "runnerNamespace": _s("transport kubernetes: namespace the program creates for those pods "
                              "(default wasm-shim-fleet-runner); not default or kube-*",
                              **{"not": {"pattern": "^(default$|kube-)"}}),
        "agentImage": _s("transport agent: the node agent's image (deploy/build_image.py), pinned by digest",
                         pattern="@sha256:[0-9a-f]{64}$"),
        "agentNamespace": _s("transport agent: namespace the program creates for the agents (default "
                             "wasm-shim-fleet); not default or kube-*", **{"not": {"pattern": "^(default$|kube-)"}}),
        "agentApiServer": _s("transport agent: host:port of the API server as nodes reach it (default: the "
                             "in-cluster Service)"),
    }, K8S_KEYS)
    deprecation = _object({"mode": {"enum": list(DEPRECATION_MODES)},
                           "keep": {"type": "integer", "minimum": 1, "default": 2}}, DEPRECATION_KEYS)
    ours = {
        "runtime": _s("prefix of RuntimeClass names and label keys (default wasmtime)"),
        "labelPrefix": _s("optional label key prefix, a DNS subdomain and '/', e.g. wasm.example.org/"),
        "shims": {"type": "object", "description": "the catalog: shim name -> releases",
                  "additionalProperties": {"type": "array", "items": release}},
        "nodePools": {"type": "array", "items": pool},
        "ssh": ssh,
        "kubernetes": kubernetes,
        "deprecation": deprecation,
    }
    assert set(ours) == set(TOP_KEYS)
    known = "|".join(TOP_KEYS)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://wasm-shim-fleet.invalid/stack-config.schema.json",
        "title": f"Pulumi.<stack>.yaml of {NAMESPACE}",
        "description": "Shape only; `python -m components plan Pulumi.<stack>.yaml` runs every check.",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": {f"{NAMESPACE}:{k}": v for k, v in ours.items()},
                # a key of this namespace that is none of the above is a mistake
                "propertyNames": {"not": {"pattern": f"^{NAMESPACE}:(?!({known})$)"}},
            },
        },
        "required": ["config"],
    }


if __name__ == "__main__":
    print(json.dumps(stack_schema(), indent=2))
