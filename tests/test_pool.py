"""components/core/pool.py: a NodePool's arguments checked by the stack config's rules and named by argument."""

from __future__ import annotations

import pytest

from components.core.flavors import FLAVORS, Flavor, flavor_problems
from components.core.pool import PENDING, CatalogEntry, NodeSpec, PoolSpec, plan_pool
from tests.conftest import SHA

CATALOG = [CatalogEntry("slight", v, f"https://example.org/slight-{v}.tar.gz", SHA[v], "containerd-shim-slight-v1")
           for v in ("1.2.3", "1.2.4")]


def spec(**kw) -> PoolSpec:
    base = dict(pool="pool-a", catalog=CATALOG, releases=["slight@1.2.4"], retiring=["slight@1.2.3"],
                nodes=[NodeSpec("node-a", PENDING, PENDING, PENDING)], has_credentials=True)
    base.update(kw)
    return PoolSpec(**base)


CASES = [
    ("unknown release", dict(releases=["slight@9.9.9"]), "releases[0]", "not in the catalog"),
    ("bad digest", dict(catalog=[*CATALOG, CatalogEntry("slight", "1.3.0", "https://e.org/x", "abc")]),
     "catalog[2].sha256", "is not a sha256"),
    ("bad version", dict(catalog=[*CATALOG, CatalogEntry("slight", "1.3", "https://e.org/x", SHA["1.2.3"])]),
     "catalog[2].version", "1.3"),
    ("node name an Output", dict(nodes=[NodeSpec(PENDING, "10.0.0.1")]), "nodes[0].name", "is a pulumi Output"),
    ("node name not a DNS name", dict(nodes=[NodeSpec("Node_A", "10.0.0.1")]), "nodes[0].name", "DNS"),
    ("plain bad host", dict(nodes=[NodeSpec("node-a", "10.0.0.1:22")]), "nodes[0].host", "not a host name"),
    ("plain bad host key", dict(nodes=[NodeSpec("node-a", "h", None, "ssh-dss AAAA")]), "nodes[0].host_key",
     "not an SSH public host key"),
    ("no credentials", dict(has_credentials=False), "nodes[0].credentials", "no SSH credentials"),
    ("bad node user", dict(nodes=[NodeSpec("node-a", "h", user="Root")]), "nodes[0].credentials.user",
     "not a POSIX user name"),
    ("unknown flavor name", dict(containerd="containerd-9"), "containerd", "not a known containerd flavor"),
    ("bad pool name", dict(pool="Pool A"), "pool", "DNS label"),
    ("bad runtime", dict(runtime="Wasm_Time"), "runtime", "prefixes every RuntimeClass"),
]


@pytest.mark.parametrize("kw,path,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_problem_is_named_by_the_argument_it_came_from(kw, path, words):
    planned = plan_pool(spec(**kw))
    assert not planned.ok and planned.nodes == ()
    hits = [p for p in planned.errors if p.path == path]
    assert hits, [str(p) for p in planned.problems]
    assert words in hits[0].message


def test_every_problem_comes_at_once():
    planned = plan_pool(spec(releases=["slight@9.9.9"], pool="Pool A", has_credentials=False))
    assert {"releases[0]", "pool", "nodes[0].credentials"} <= {p.path for p in planned.errors}


def test_pending_connection_values_plan_like_plain_ones_and_stay_unknown_in_the_plan():
    pending = plan_pool(spec())
    plain = plan_pool(spec(nodes=[NodeSpec("node-a", "10.0.0.9", 2222, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA")]))
    assert pending.ok and plain.ok
    a, b = pending.nodes[0], plain.nodes[0]
    assert (a.handlers, a.labels, a.binaries, a.aliases) == (b.handlers, b.labels, b.binaries, b.aliases)
    assert (a.host, a.port, a.host_key) == ("", None, None)
    assert (b.host, b.port) == ("10.0.0.9", 2222)
    assert not [p for p in pending.problems if "host key not pinned" in p.message]  # an Output key is pinned
    assert [rc.name for rc in pending.runtime_classes] == ["wasmtime-slight", "wasmtime-slight-v1",
                                                           "wasmtime-slight-v1-2", "wasmtime-slight-v1-2-4"]


def test_a_layout_of_your_own_plans_under_its_name():
    layout = Flavor("lab", 3, "/opt/lab/config.toml", False, "true", "/opt/lab/config.toml", "/run/lab.sock",
                    also_accepts=(4,))
    planned = plan_pool(spec(containerd=layout))
    assert planned.ok and planned.nodes[0].flavor == "lab" and planned.nodes[0].containerd is layout
    assert planned.nodes[0].to_json()["layout"]["configVersion"] == 3


@pytest.mark.parametrize("flavor", list(FLAVORS.values()), ids=list(FLAVORS))
def test_the_built_in_flavors_would_pass_the_layout_rules_but_for_their_names(flavor):
    assert [field for field, _ in flavor_problems(flavor)] == ["name"]
