"""containerd flavors as data: where each kind of node keeps its config and how it restarts containerd.

A flavor fixes the config schema version (field notes trap 6) and therefore the TOML table under which
runtimes are registered (containerd 2.3's version 4 keeps version 3's runtimes table: `containerd-2` takes
both). k3s and rke2 render containerd's config themselves from a template that must
begin with `{{ template "base" . }}` (`config.toml.tmpl` on containerd 1.x, `config-v3.toml.tmpl` on 2.x); for them
we write the template, never the rendered file.
"""

from __future__ import annotations

from dataclasses import dataclass

RUNTIMES_TABLE = {
    1: "plugins.cri.containerd.runtimes",
    2: 'plugins."io.containerd.grpc.v1.cri".containerd.runtimes',
    3: 'plugins."io.containerd.cri.v1.runtime".containerd.runtimes',
}


@dataclass(frozen=True)
class Flavor:
    """How one kind of node runs containerd."""

    name: str
    #: containerd config schema version the flavor expects (1, 2 or 3).
    config_version: int
    #: The file we edit, relative to the node root.
    config_path: str
    #: True when containerd does not load `config_path` itself: a template (k3s, rke2, microk8s) or a drop-in
    #: (k0s) from which the distribution renders `loaded_config_path` when it restarts containerd.
    template: bool
    #: Shell command that restarts containerd (overridable per run with WSF_RESTART).
    restart: str
    #: The file containerd actually loads (differs from config_path for templates).
    loaded_config_path: str
    #: containerd's socket, relative to the node root, for post-restart checks.
    socket: str
    #: The first line of `config_path` when the fleet creates it (k3s/rke2 templates, k0s drop-ins); None: the
    #: file must exist (a main config holding only our tables would drop containerd's built-in runc).
    create_base: str | None = None
    #: Config versions of the file containerd loads that this flavor's tables fit (default: config_version).
    #: containerd 2.3's config version 4 keeps the runtimes table of version 3.
    also_accepts: tuple[int, ...] = ()

    @property
    def accepts(self) -> tuple[int, ...]:
        return (self.config_version, *self.also_accepts)

    @property
    def runtimes_table(self) -> str:
        return RUNTIMES_TABLE[self.config_version]


#: First line of a k3s/rke2 template the fleet creates: renders the distribution's own config before our tables.
TEMPLATE_BASE = '{{ template "base" . }}'
_K3S_DIR = "/var/lib/rancher/k3s/agent/etc/containerd"
_RKE2_DIR = "/var/lib/rancher/rke2/agent/etc/containerd"

FLAVORS: dict[str, Flavor] = {
    f.name: f
    for f in (
        Flavor(
            name="containerd-legacy",
            config_version=1,
            config_path="/etc/containerd/config.toml",
            template=False,
            restart="systemctl restart containerd",
            loaded_config_path="/etc/containerd/config.toml",
            socket="/run/containerd/containerd.sock",
        ),
        Flavor(
            name="containerd-1",
            config_version=2,
            config_path="/etc/containerd/config.toml",
            template=False,
            restart="systemctl restart containerd",
            loaded_config_path="/etc/containerd/config.toml",
            socket="/run/containerd/containerd.sock",
        ),
        Flavor(
            name="containerd-2",
            config_version=3,
            config_path="/etc/containerd/config.toml",
            template=False,
            restart="systemctl restart containerd",
            loaded_config_path="/etc/containerd/config.toml",
            socket="/run/containerd/containerd.sock",
            also_accepts=(4,),
        ),
        Flavor(
            name="k3s",
            config_version=2,
            config_path=f"{_K3S_DIR}/config.toml.tmpl",
            template=True,
            restart="systemctl restart k3s 2>/dev/null || systemctl restart k3s-agent",
            loaded_config_path=f"{_K3S_DIR}/config.toml",
            socket="/run/k3s/containerd/containerd.sock",
            create_base=TEMPLATE_BASE,
        ),
        Flavor(
            name="rke2",
            config_version=2,
            config_path=f"{_RKE2_DIR}/config.toml.tmpl",
            template=True,
            restart="systemctl restart rke2-server 2>/dev/null || systemctl restart rke2-agent",
            loaded_config_path=f"{_RKE2_DIR}/config.toml",
            socket="/run/k3s/containerd/containerd.sock",
            create_base=TEMPLATE_BASE,
        ),
        # k3s and rke2 on containerd 2.x render config.toml (version 3) from config-v3.toml.tmpl.
        Flavor(
            name="k3s-2",
            config_version=3,
            config_path=f"{_K3S_DIR}/config-v3.toml.tmpl",
            template=True,
            restart="systemctl restart k3s 2>/dev/null || systemctl restart k3s-agent",
            loaded_config_path=f"{_K3S_DIR}/config.toml",
            socket="/run/k3s/containerd/containerd.sock",
            create_base=TEMPLATE_BASE,
        ),
        Flavor(
            name="rke2-2",
            config_version=3,
            config_path=f"{_RKE2_DIR}/config-v3.toml.tmpl",
            template=True,
            restart="systemctl restart rke2-server 2>/dev/null || systemctl restart rke2-agent",
            loaded_config_path=f"{_RKE2_DIR}/config.toml",
            socket="/run/k3s/containerd/containerd.sock",
            create_base=TEMPLATE_BASE,
        ),
        # microk8s renders args/containerd.toml from args/containerd-template.toml (a whole config, ${SNAP_DATA}
        # placeholders) when the snap's containerd starts.
        Flavor(
            name="microk8s",
            config_version=2,
            config_path="/var/snap/microk8s/current/args/containerd-template.toml",
            template=True,
            restart="snap restart microk8s.daemon-containerd",
            loaded_config_path="/var/snap/microk8s/current/args/containerd.toml",
            socket="/var/snap/microk8s/common/run/containerd.sock",
        ),
        # k0s merges CRI settings of drop-ins in /etc/k0s/containerd.d/ into the CRI config it generates.
        Flavor(
            name="k0s",
            config_version=2,
            config_path="/etc/k0s/containerd.d/wasm-shim-fleet.toml",
            template=True,
            restart="systemctl restart k0sworker 2>/dev/null || systemctl restart k0scontroller",
            loaded_config_path="/run/k0s/containerd-cri.toml",
            socket="/run/k0s/containerd.sock",
            create_base="version = 2",
        ),
    )
}
