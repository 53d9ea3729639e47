"""Names follow the proposal's scheme with dashes everywhere, and stay valid Kubernetes names."""

import pytest

from components.core import naming


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("1.2.3", "v1-2-3"),
        ("v1.2.3", "v1-2-3"),
        ("0.1.0-alpha.1", "v0-1-0-alpha-1"),
        ("1.0.0-beta1", "v1-0-0-beta1"),
        ("2.0.0-RC.1", "v2-0-0-rc-1"),
        ("10.20.30", "v10-20-30"),
    ],
)
def test_versions_encode_with_dashes_and_lower_case(text, encoded):
    assert naming.encode_version(naming.parse_version(text)) == encoded


@pytest.mark.parametrize("text", ["1.2", "1", "one.two.three", "1.2.3.4", "", "v", "01.2.3"])
def test_malformed_versions_are_rejected(text):
    with pytest.raises(ValueError, match="not a semantic version"):
        naming.parse_version(text)


def test_proposal_names_for_slight_1_2_3():
    v = naming.parse_version("1.2.3")
    handler = naming.exact_handler("slight", v)
    assert handler == "slight-v1-2-3"
    assert naming.binary_name("slight", v) == "containerd-shim-slight-v1-2-3-v1"
    assert naming.runtime_type(handler) == "io.containerd.slight-v1-2-3.v1"
    assert naming.class_name("wasmtime", handler) == "wasmtime-slight-v1-2-3"
    assert naming.label_key("wasmtime", handler, "slight") == "wasmtime-slight-v1-2-3"


def test_runtime_type_maps_to_the_binary_name_the_way_containerd_does():
    # containerd takes the last two dot-separated parts: io.containerd.<name>.<ver> -> containerd-shim-<name>-<ver>
    v = naming.parse_version("0.1.0-alpha.1")
    rt = naming.runtime_type(naming.exact_handler("slight", v))
    _, _, name, ver = rt.split(".")
    assert f"containerd-shim-{name}-{ver}" == naming.binary_name("slight", v)


def test_series_handlers_and_the_any_label():
    v = naming.parse_version("1.2.3")
    assert naming.minor_series("slight", v) == "slight-v1-2"
    assert naming.major_series("slight", v) == "slight-v1"
    assert naming.any_handler("slight") == "slight"
    assert naming.label_key("wasmtime", "slight", "slight") == "wasmtime-slight-enabled"
    assert naming.class_name("wasmtime", "slight") == "wasmtime-slight"


def test_zero_major_has_no_major_series():
    assert naming.major_series("slight", naming.parse_version("0.9.8")) is None


@pytest.mark.parametrize(
    ("value", "ok"),
    [("slight", True), ("a", True), ("a-b-1", True), ("-a", False), ("a-", False), ("A", False),
     ("a.b", False), ("a" * 63, True), ("a" * 64, False), ("", False)],
)
def test_dns_labels(value, ok):
    assert naming.is_dns_label(value) is ok


@pytest.mark.parametrize(("key", "runtime", "prefix", "ours"), [
    ("wasmtime-slight-v1-2-3", "wasmtime", "", True),
    ("wasmtime-slight-enabled", "wasmtime", "", True),
    ("spin-slight-v1", "wasmtime", "", False),
    ("wasmtime", "wasmtime", "", False),
    ("wasm.example.org/wasmtime-slight-v1", "wasmtime", "wasm.example.org/", True),
    # under a prefix, the same name without it (or under another prefix) belongs to someone else
    ("wasmtime-slight-v1", "wasmtime", "wasm.example.org/", False),
    ("other.example.org/wasmtime-slight-v1", "wasmtime", "wasm.example.org/", False),
    ("kubernetes.io/os", "wasmtime", "", False),
])
def test_the_fleets_own_labels_are_those_it_composes_under_its_runtime_and_prefix(key, runtime, prefix, ours):
    assert naming.is_fleet_label(key, runtime, prefix) is ours
    assert naming.fleet_label_prefix(runtime, prefix) == f"{prefix}{runtime}-"


def test_every_label_the_fleet_composes_is_recognised_as_its_own():
    v = naming.parse_version("1.2.3")
    for prefix in ("", "wasm.example.org/"):
        for handler in ("slight-v1-2-3", naming.minor_series("slight", v), "slight"):
            assert naming.is_fleet_label(naming.label_key("wasmtime", handler, "slight", prefix), "wasmtime", prefix)
