"""A Pulumi program of your own that uses wasm-shim-fleet's components.

It makes two "machines" as resources of its own (stand-ins: `machine.sh` starts an sshd on 127.0.0.1 per machine
and prints its address, host key and a login key; in your program these would be VMs), then installs slight
1.2.4 (and keeps 1.2.3 installed, retiring) on both with one `NodePool`, whose nodes take the machines' outputs
as host, port, host key and per-node credentials. `RuntimeClassSet.for_pools` makes the RuntimeClasses the
pool's labels call for. Kubernetes objects go to the cluster of `kubeconfig` (config), or are written as
manifests into `<workdir>/rendered` without one.

Config: `workdir` (absolute folder for the machines; required), `kubeconfig` (optional).
Outputs: `runtimeClassNames`, `handlers` (per node, once its handler table is applied), `labels` (per node).
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s
from wasm_shim_fleet import (
    NodePool,
    NodePoolArgs,
    PoolNode,
    RuntimeClassSet,
    RuntimeClassSetArgs,
    ShimRelease,
    SshCredentials,
)

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE.parent / "artifacts"  # small stand-in shim releases (examples/artifacts/make_artifacts.py)
SEED = HERE.parent / "containerd" / "config.toml"  # each machine's containerd config before the shims

config = pulumi.Config()
workdir = config.require("workdir")
kubeconfig = config.get("kubeconfig")

# --- the machines: resources of this program, whose outputs say how to reach them ----------------------------
machines = {}
for name in ("node-a", "node-b"):
    script = shlex.join(["sh", str(HERE / "machine.sh"), "start", name, workdir, str(SEED)])
    machine = command.local.Command(
        f"machine-{name}", create=script, delete=shlex.join(["sh", str(HERE / "machine.sh"), "stop", name, workdir]),
        # stdout carries the machine's login key: keep it a secret in the state
        opts=pulumi.ResourceOptions(additional_secret_outputs=["stdout"]))
    machines[name] = machine.stdout.apply(json.loads)

# --- the shims: one NodePool over those machines ----------------------------------------------------------------
sums = dict(reversed(line.split()) for line in (ARTIFACTS / "SHA256SUMS").read_text().splitlines())
catalog = [ShimRelease(shim="slight", version=v, url=f"file://{ARTIFACTS}/slight-v{v}-linux-amd64.tar.gz",
                       sha256=sums[f"slight-v{v}-linux-amd64.tar.gz"], binary="containerd-shim-slight-v1")
           for v in ("1.2.3", "1.2.4")]

if kubeconfig:
    provider = k8s.Provider("k8s", kubeconfig=kubeconfig)
else:
    provider = k8s.Provider("k8s", render_yaml_to_directory=os.path.join(workdir, "rendered"), kubeconfig="")

pool = NodePool("shims", NodePoolArgs(
    catalog=catalog,
    releases=["slight@1.2.4"],
    retiring=["slight@1.2.3"],
    containerd="containerd-1",
    # The stand-in machines run no containerd daemon: nothing to restart (the config is still checked with
    # `containerd config dump` when containerd is on the machine's PATH).
    restart=":",
    nodes=[PoolNode(name=name, host=info["host"], port=info["port"], host_key=info["hostKey"],
                    credentials=SshCredentials(user="root", private_key=info["privateKey"]))
           for name, info in machines.items()],
    k8s_provider=provider,
))
classes = RuntimeClassSet("classes", RuntimeClassSetArgs.for_pools([pool], k8s_provider=provider))

pulumi.export("runtimeClassNames", classes.names)
pulumi.export("handlers", pool.handlers)
pulumi.export("labels", pool.labels)
