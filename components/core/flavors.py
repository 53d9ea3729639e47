"""containerd flavors as data: where each kind of node keeps its config and how it restarts containerd.

A flavor fixes the config schema version (field notes trap 6) and therefore the TOML table under which
runtimes are registered. k3s and rke2 render containerd's config themselves from a template that must
begin with `{{ template "base" . }}`; for them we write the template, never the rendered file.
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
    #: True when `config_path` is a k3s/rke2 template rendered by the distribution.
    template: bool
    #: Shell command that restarts containerd (overridable per run with CONTAINERD_RESTART).
    restart: str
    #: The file containerd actually loads (differs from config_path for templates).
    loaded_config_path: str
    #: containerd's socket, relative to the node root, for post-restart checks.
    socket: str

    @property
    def runtimes_table(self) -> str:
        return RUNTIMES_TABLE[self.config_version]


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
        ),
        Flavor(
            name="k3s",
            config_version=2,
            config_path=f"{_K3S_DIR}/config.toml.tmpl",
            template=True,
            restart="systemctl restart k3s 2>/dev/null || systemctl restart k3s-agent",
            loaded_config_path=f"{_K3S_DIR}/config.toml",
            socket="/run/k3s/containerd/containerd.sock",
        ),
        Flavor(
            name="rke2",
            config_version=2,
            config_path=f"{_RKE2_DIR}/config.toml.tmpl",
            template=True,
            restart="systemctl restart rke2-server 2>/dev/null || systemctl restart rke2-agent",
            loaded_config_path=f"{_RKE2_DIR}/config.toml",
            socket="/run/k3s/containerd/containerd.sock",
        ),
    )
}
