"""containerd flavors as data: where each kind of node keeps its config and how it restarts containerd.

A flavor names the runtimes tables it may write (field notes trap 6), its own first. Which one a node gets is
decided on the node, by asking the containerd that reads the file (its `config dump`): containerd 2.x reads a
version 2 file's runtimes either from `io.containerd.grpc.v1.cri` (migrated) or from
`io.containerd.cri.v1.runtime` as written (AKS's containerd 2 config), so `containerd-2` may write either into
such a file, whichever containerd reads without losing a runtime. containerd 2.3's version 4 keeps version 3's
runtimes table. k3s and rke2 render containerd's config themselves from a template that must begin with
`{{ template "base" . }}` (`config.toml.tmpl` on containerd 1.x, `config-v3.toml.tmpl` on 2.x); for them we
write the template, never the rendered file.
"""

from __future__ import annotations

import re
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
    #: Shell command that restarts containerd (overridable per run with WSF_RESTART). Empty: the distribution
    #: restarts containerd itself when the file changes (k0s watches its drop-in folder); the node waits for it.
    restart: str
    #: The file containerd actually loads (differs from config_path for templates).
    loaded_config_path: str
    #: containerd's socket, relative to the node root, for post-restart checks.
    socket: str
    #: The first line of `config_path` when the fleet creates it (k3s/rke2 templates, k0s drop-ins); None: the
    #: file must exist (a main config holding only our tables would drop containerd's built-in runc).
    #: `{version}` stands for the config version of the tables written (a k0s drop-in follows its root config).
    create_base: str | None = None
    #: Config versions of the file containerd loads that this flavor's tables fit (default: config_version).
    #: containerd 2.3's config version 4 keeps the runtimes table of version 3.
    also_accepts: tuple[int, ...] = ()
    #: Other runtimes tables (by config version) the flavor may write when the node's containerd reads them
    #: there: containerd 2.x migrates a version 2 file's `io.containerd.grpc.v1.cri` runtimes.
    also_writes: tuple[int, ...] = ()

    @property
    def accepts(self) -> tuple[int, ...]:
        return (self.config_version, *self.also_accepts)

    def base_for(self, table_version: int) -> str | None:
        """The first line of a file the flavor creates, for tables of that config version."""
        return None if self.create_base is None else self.create_base.replace("{version}", str(table_version))

    @property
    def tables(self) -> tuple[int, ...]:
        """The config versions whose runtimes table the flavor may write, its own first."""
        return (self.config_version, *(v for v in self.also_writes if v != self.config_version))

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
            also_writes=(2,),
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
        # k0s starts containerd on /etc/k0s/containerd.toml, which imports the drop-ins of /etc/k0s/containerd.d/
        # (k0s 1.27-1.3x on containerd 1.7: version 2, CRI drop-ins merged into /run/k0s/containerd-cri.toml,
        # which it imports; on containerd 2.x: version 3, drop-ins imported as they are). k0s watches that folder
        # and restarts containerd itself when a file in it changes (pkg/component/worker/containerd/component.go,
        # watchDropinConfigs): no restart command, the node waits for containerd to come back.
        Flavor(
            name="k0s",
            config_version=3,
            config_path="/etc/k0s/containerd.d/wasm-shim-fleet.toml",
            template=True,
            restart="",
            loaded_config_path="/etc/k0s/containerd.toml",
            socket="/run/k0s/containerd.sock",
            create_base="version = {version}",
            also_accepts=(2,),
            also_writes=(2,),
        ),
    )
}


#: The characters a path in a layout may hold: they reach the node's shell quoted, and stay readable.
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/-]*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
#: Config versions containerd knows, and those whose runtimes table we can write (RUNTIMES_TABLE).
KNOWN_CONFIG_VERSIONS = (1, 2, 3, 4)


def flavor_problems(flavor: Flavor) -> list[tuple[str, str]]:
    """What is wrong with a caller's own containerd layout, as (field, value + rule + fix) pairs: every one.

    A layout reaches the node as assignments in the resource scripts (nodescript.flavor_function), so its paths
    are held to plain absolute paths and its commands to one line."""
    out: list[tuple[str, str]] = []
    if not isinstance(flavor.name, str) or not _DNS_LABEL.match(flavor.name):
        out.append(("name", f"{flavor.name!r} is not a DNS label (lower-case letters, digits, '-', at most 63); "
                            "name the layout e.g. my-containerd"))
    elif flavor.name in FLAVORS:
        out.append(("name", f"{flavor.name!r} is a built-in containerd flavor; pass the name "
                            f"{flavor.name!r} instead of a layout, or give your layout a name of its own"))
    if flavor.config_version not in RUNTIMES_TABLE:
        out.append(("config_version", f"{flavor.config_version!r} is not a config version whose runtimes table "
                                      f"is known; use one of {', '.join(map(str, RUNTIMES_TABLE))} (containerd "
                                      "2.3's version 4 files take 3 with also_accepts=(4,))"))
    bad = [v for v in flavor.also_accepts if v not in KNOWN_CONFIG_VERSIONS]
    if bad:
        out.append(("also_accepts", f"{bad!r} holds config versions containerd does not have; use values from "
                                    f"{KNOWN_CONFIG_VERSIONS}"))
    bad = [v for v in flavor.also_writes if v not in RUNTIMES_TABLE]
    if bad:
        out.append(("also_writes", f"{bad!r} holds config versions whose runtimes table is not known; use values "
                                   f"from {tuple(RUNTIMES_TABLE)}"))
    for field in ("config_path", "loaded_config_path", "socket"):
        value = getattr(flavor, field)
        if not isinstance(value, str) or not _SAFE_PATH.match(value) or "/../" in value + "/":
            out.append((field, f"{value!r} is not a plain absolute path (letters, digits, '._/-', starting "
                               "with /, no '..'); give the path as the node sees it"))
    for field in ("restart", "create_base"):
        value = getattr(flavor, field)
        if field == "create_base" and value is None:
            continue
        if field == "restart" and value == "":
            continue  # the distribution restarts containerd itself when the file changes
        if not isinstance(value, str) or not value.strip() or "\n" in value or "\0" in value:
            out.append((field, f"{value!r} must be one non-empty line"
                               + (" (the command that restarts containerd on the node, or '' when the "
                                  "distribution restarts it itself)" if field == "restart"
                                  else " (the first line of a file the fleet creates), or None")))
    if not isinstance(flavor.template, bool):
        out.append(("template", f"{flavor.template!r} must be True or False"))
    return out
