"""Every mistake in a stack file gets a precise error: its config path, the value, the rule and the fix.

All problems are collected in one run, never just the first.
"""

from __future__ import annotations

import copy

import pytest

from components.core.config import StackFileError, check_config, read_stack_file
from tests.conftest import errors, pool, release, stack, warnings


def good() -> dict:
    return stack([pool("p", ["slight@1.2.3", "slight@1.2.4"], ["node-a"])])


def test_a_good_stack_has_no_errors_and_no_warnings():
    cfg, problems = check_config(good())
    assert problems == []
    assert list(cfg.releases) == ["slight@1.2.3", "slight@1.2.4"]
    assert cfg.runtime == "wasmtime"


# (mutation of the good stack, path expected, words the message must contain)
CASES = [
    ("malformed semver", lambda r: r["shims"]["slight"][0].update(version="1.2"),
     "shims.slight[0].version", ["'1.2'", "not a semantic version", "1.2.3"]),
    ("version read as a number", lambda r: r["shims"]["slight"][0].update(version=1.2),
     "shims.slight[0].version", ["number", "quoted"]),
    ("build metadata", lambda r: r["shims"]["slight"][0].update(version="1.2.3+build.5"),
     "shims.slight[0].version", ["+build.5", "build metadata", "remove it"]),
    ("duplicate release", lambda r: r["shims"]["slight"].append(release("v1.2.3")),
     "shims.slight[2].version", ["listed twice", "shims.slight[0]"]),
    ("names that collide", lambda r: r["shims"]["slight"].extend([release("2.0.0-rc.1"), release("2.0.0-rc-1")]),
     "shims.slight[3].version", ["2.0.0-rc-1", "same names", "2.0.0-rc.1", "shims.slight[2].version"]),
    ("shim name not a DNS label", lambda r: r["shims"].update({"Slight_X": [release("1.0.0")]}),
     "shims.Slight_X", ["'Slight_X'", "DNS label", "rename"]),
    ("shim name that looks versioned", lambda r: r["shims"].update({"spin-v2": [release("1.0.0")]}),
     "shims.spin-v2", ["-v<digit>", "collide"]),
    ("composed name over 63", lambda r: r["shims"]["slight"].append(release("1.0.0-" + "a" * 50)),
     "shims.slight[2].version", ["over the 63", "shorten"]),
    ("sha256 not 64 hex", lambda r: r["shims"]["slight"][0].update(sha256="abc"),
     "shims.slight[0].sha256", ["'abc'", "64 hex", "sha256sum"]),
    ("sha256 missing", lambda r: r["shims"]["slight"][0].pop("sha256"),
     "shims.slight[0].sha256", ["missing"]),
    ("url over http", lambda r: r["shims"]["slight"][0].update(url="http://example.org/x.tgz"),
     "shims.slight[0].url", ["http://example.org/x.tgz", "https://", "file://"]),
    ("url with a quote", lambda r: r["shims"]["slight"][0].update(url="https://example.org/x'$(id).tgz"),
     "shims.slight[0].url", ["percent-encode"]),
    ("archive member escaping", lambda r: r["shims"]["slight"][0].update(binary="../../etc/passwd"),
     "shims.slight[0].binary", ["relative path", "no '..'"]),
    ("unknown release key", lambda r: r["shims"]["slight"][0].update(sha265="x"),
     "shims.slight[0].sha265", ["unknown key", "version, url, sha256, binary"]),
    ("pool names an unknown release", lambda r: r["nodePools"][0]["releases"].append("slight@9.9.9"),
     "nodePools[0].releases[2]", ["slight@9.9.9", "not in the catalog", "slight@1.2.3, slight@1.2.4"]),
    ("pool names an unknown shim", lambda r: r["nodePools"][0]["releases"].append("spin@1.0.0"),
     "nodePools[0].releases[2]", ["no shim 'spin'"]),
    ("release pin without @", lambda r: r["nodePools"][0]["releases"].append("slight-1.2.3"),
     "nodePools[0].releases[2]", ["<shim>@<version>"]),
    ("release both active and retiring", lambda r: r["nodePools"][0].update(retiring=["slight@1.2.3"]),
     "nodePools[0].retiring[0]", ["already listed at nodePools[0].releases[0]"]),
    ("node in two pools", lambda r: r["nodePools"].append(pool("q", ["slight@1.2.3"], ["node-a"])),
     "nodePools[1].nodes[0].name", ["'node-a'", "nodePools[0].nodes[0]", "one pool"]),
    ("duplicate pool name", lambda r: r["nodePools"].append(pool("p", ["slight@1.2.3"], ["node-b"])),
     "nodePools[1].name", ["declared twice", "nodePools[0].name"]),
    ("unknown containerd flavor", lambda r: r["nodePools"][0].update(containerd="containerd-3"),
     "nodePools[0].containerd", ["'containerd-3'", "containerd-legacy, containerd-1, containerd-2, k3s, rke2"]),
    ("host with shell characters", lambda r: r["nodePools"][0]["nodes"][0].update(host="10.0.0.4; rm -rf /"),
     "nodePools[0].nodes[0].host", ["not a host name or IP address"]),
    ("host with a port", lambda r: r["nodePools"][0]["nodes"][0].update(host="10.0.0.4:2222"),
     "nodePools[0].nodes[0].host", ["the port goes in 'port'"]),
    ("node name with upper case", lambda r: r["nodePools"][0]["nodes"][0].update(name="Node_A"),
     "nodePools[0].nodes[0].name", ["Kubernetes node name"]),
    ("port out of range", lambda r: r["nodePools"][0]["nodes"][0].update(port=70000),
     "nodePools[0].nodes[0].port", ["70000", "1 to 65535"]),
    ("bad host key", lambda r: r["nodePools"][0]["nodes"][0].update(hostKey="hello"),
     "nodePools[0].nodes[0].hostKey", ["public host key"]),
    ("ssh user with shell characters", lambda r: r["ssh"].update(user="root$(id)"),
     "ssh.user", ["POSIX user name"]),
    ("ssh key missing", lambda r: r["ssh"].pop("privateKey"),
     "ssh.privateKey", ["pulumi config set --secret --path ssh.privateKey"]),
    ("releases not a list", lambda r: r["nodePools"][0].update(releases="slight@1.2.3"),
     "nodePools[0].releases", ["a string", "must be a list"]),
    ("nodePools not a list", lambda r: r.update(nodePools={"name": "p"}),
     "nodePools", ["a mapping", "list of pools"]),
    ("unknown top-level key", lambda r: r.update(nodepools=[]),
     "nodepools", ["unknown key 'wasm-shim-fleet:nodepools'"]),
    ("runtime prefix not a DNS label", lambda r: r.update(runtime="Wasm.Time"),
     "runtime", ["DNS label"]),
    ("seedConfig on an ssh pool", lambda r: r["nodePools"][0].update(seedConfig="examples/c.toml"),
     "nodePools[0].seedConfig", ["only for transport local"]),
    ("unknown transport", lambda r: r["nodePools"][0].update(transport="winrm"),
     "nodePools[0].transport", ["ssh", "local"]),
    ("deprecation keeps no release", lambda r: r.update(deprecation={"keep": 0}),
     "deprecation.keep", ["0", "whole number >= 1", "2 keeps N and N-1"]),
    ("deprecation keep not a number", lambda r: r.update(deprecation={"keep": True}),
     "deprecation.keep", ["True", "whole number"]),
    ("unknown deprecation mode", lambda r: r.update(deprecation={"mode": "loud"}),
     "deprecation.mode", ["'loud'", "off, warn or error"]),
]


@pytest.mark.parametrize(("case", "mutate", "path", "words"), CASES, ids=[c[0] for c in CASES])
def test_each_mistake_names_its_path_value_rule_and_fix(case, mutate, path, words):
    raw = good()
    mutate(raw)
    errs = errors(raw)
    assert path in errs, f"{case}: expected an error at {path}, got {errs}"
    for w in words:
        assert w in errs[path], f"{case}: {w!r} missing from {errs[path]!r}"


def test_all_problems_are_collected_in_one_run():
    raw = good()
    for _, mutate, _, _ in CASES[:12]:
        mutate(raw)
    raw["nodePools"].append(pool("p", ["slight@7.7.7"], ["node-a"]))
    errs = errors(raw)
    assert {"shims.slight[0].version", "shims.slight[0].url", "shims.Slight_X", "nodePools[1].name",
            "nodePools[1].releases[0]", "nodePools[1].nodes[0].name"} <= set(errs)


def test_a_pin_of_a_broken_catalog_entry_points_at_the_entry():
    raw = good()
    raw["shims"]["slight"][0]["sha256"] = "short"
    errs = errors(raw)
    assert "shims.slight[0].sha256" in errs
    assert "pins the catalog entry at shims.slight[0], which has errors" in errs["nodePools[0].releases[0]"]


def test_unused_catalog_release_and_empty_pool_are_warnings():
    raw = stack([pool("p", ["slight@1.2.3"], []), pool("q", ["slight@1.2.3"], ["node-a"])])
    warns = warnings(raw)
    assert "installed on no node" in warns["shims.slight[1]"]
    assert "has no nodes" in warns["nodePools[0].nodes"]
    assert errors(raw) == {}


def test_leading_v_and_upper_case_sha_are_accepted_and_normalised():
    raw = good()
    raw["shims"]["slight"][0].update(version="v1.2.3", sha256="A" * 64)
    cfg, problems = check_config(raw)
    assert [p for p in problems if p.severity == "error"] == []
    assert cfg.releases["slight@1.2.3"].sha256 == "a" * 64


def test_a_file_url_on_an_ssh_pool_is_a_warning_because_each_node_reads_its_own_disk():
    raw = good()
    raw["shims"]["slight"][0]["url"] = "file:///srv/artifacts/slight-1.2.3.tar.gz"
    assert "reads that path on its own disk" in warnings(raw)["nodePools[0]"]
    assert errors(raw) == {}


def test_local_transport_needs_no_ssh():
    raw = stack([pool("p", ["slight@1.2.3"], ["node-a"], transport="local")], versions=("1.2.3",))
    del raw["ssh"]
    assert errors(raw) == {}


def test_encrypted_secret_in_a_stack_file_counts_as_present():
    raw = good()
    raw["ssh"]["privateKey"] = {"secure": "v1:abcdef"}
    assert errors(raw) == {}


def test_pinned_host_key_silences_the_warning():
    raw = good()
    raw["nodePools"][0]["nodes"][0]["hostKey"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"
    assert warnings(raw) == {}


def test_relative_file_urls_resolve_against_the_project_folder(tmp_path):
    raw = good()
    raw["shims"]["slight"][0]["url"] = "file:examples/artifacts/slight-1.2.3.tar.gz"
    cfg, problems = check_config(raw, tmp_path)
    assert [p for p in problems if p.severity == "error"] == []
    assert cfg.releases["slight@1.2.3"].url == f"file://{tmp_path}/examples/artifacts/slight-1.2.3.tar.gz"


def test_stack_file_reading(tmp_path):
    f = tmp_path / "Pulumi.dev.yaml"
    f.write_text("config:\n  wasm-shim-fleet:runtime: wasm\n  other:key: 1\n")
    assert read_stack_file(f) == {"runtime": "wasm"}
    with pytest.raises(StackFileError, match="cannot read"):
        read_stack_file(tmp_path / "missing.yaml")
    f.write_text("config: [1, 2\n")
    with pytest.raises(StackFileError, match="not valid YAML"):
        read_stack_file(f)


# ------------------------------------------------------------------------------ hostile and odd values
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n"


def test_a_plaintext_private_key_in_a_stack_file_is_a_warning():
    raw = good()
    raw["ssh"]["privateKey"] = KEY
    _, problems = check_config(raw, secret_keys=())
    warns = {p.path: p.message for p in problems if p.severity == "warning"}
    assert "plain text" in warns["ssh.privateKey"] and "--secret" in warns["ssh.privateKey"]
    assert "c2VjcmV0" not in warns["ssh.privateKey"]


def test_a_private_key_the_engine_holds_as_a_secret_or_still_encrypted_is_fine():
    raw = good()
    raw["ssh"]["privateKey"] = KEY
    assert "ssh.privateKey" not in {p.path for p in check_config(raw, secret_keys={"ssh"})[1]}
    raw["ssh"]["privateKey"] = {"secure": "v1:abc"}
    assert "ssh.privateKey" not in {p.path for p in check_config(raw, secret_keys=())[1]}


def test_an_ssh_node_without_a_pinned_host_key_is_an_error_that_names_the_opt_out():
    raw = good()
    del raw["nodePools"][0]["nodes"][0]["hostKey"]
    _, problems = check_config(raw)
    assert [(p.severity, p.path, p.message) for p in problems] == [(
        "error", "nodePools[0].nodes[0].hostKey",
        "missing: node 'node-a' is reached over SSH, and without a pinned host key pulumi-command checks none, so "
        "every command sent to it trusts whatever answers at that address and hands it the root command stream; "
        "add hostKey (a line of `ssh-keyscan -t ed25519 HOST` without the host name), or, in a lab only, set "
        "ssh.insecureAcceptAnyHostKey: true")]


def test_a_bastion_without_a_pinned_host_key_is_an_error():
    raw = good()
    raw["ssh"]["proxy"] = {"host": "bastion.example.org"}
    assert "missing: bastion 'bastion.example.org' is reached over SSH" in errors(raw)["ssh.proxy.hostKey"]
    raw["ssh"]["proxy"]["hostKey"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"
    assert check_config(raw)[1] == []


def test_the_lab_opt_out_turns_each_unpinned_host_into_a_loud_warning():
    raw = good()
    del raw["nodePools"][0]["nodes"][0]["hostKey"]
    raw["ssh"]["proxy"] = {"host": "bastion.example.org"}
    raw["ssh"]["insecureAcceptAnyHostKey"] = True
    cfg, problems = check_config(raw)
    assert [(p.severity, p.path) for p in problems] == [("warning", "ssh.proxy.hostKey"),
                                                        ("warning", "nodePools[0].nodes[0].hostKey")]
    assert all(p.message.startswith("INSECURE: ") for p in problems)
    assert cfg.ssh.insecure_accept_any_host_key
    raw["ssh"]["insecureAcceptAnyHostKey"] = "yes"
    assert "must be true or false" in errors(raw)["ssh.insecureAcceptAnyHostKey"]


def test_nodes_reached_locally_or_through_the_cluster_need_no_host_key():
    raw = stack([pool("dev", ["slight@1.2.3"], ["dev-a"], transport="local")])
    assert [p for p in check_config(raw)[1] if p.severity == "error"] == []


def test_two_nodes_at_one_address_are_a_warning_naming_both():
    raw = stack([pool("p", ["slight@1.2.3"], ["node-a"]), pool("q", ["slight@1.2.4"], ["node-b"])])
    raw["nodePools"][1]["nodes"][0]["host"] = "10.0.0.4"
    msg = warnings(raw)["nodePools[1].nodes[0].host"]
    assert "'node-a'" in msg and "nodePools[0].nodes[0]" in msg and "10.0.0.4 port 22" in msg
    raw["nodePools"][1]["nodes"][0]["port"] = 2222
    assert "nodePools[1].nodes[0].host" not in warnings(raw)


@pytest.mark.parametrize("render", ["/tmp/rendered", "../elsewhere", "rendered/../../x"])
def test_a_render_dir_outside_the_project_is_a_warning(tmp_path, render):
    raw = good()
    raw["kubernetes"] = {"renderDir": render}
    _, problems = check_config(raw, tmp_path)
    assert any(p.path == "kubernetes.renderDir" and "outside the project" in p.message for p in problems)
    raw["kubernetes"] = {"renderDir": "rendered/dev"}
    assert not any(p.path == "kubernetes.renderDir" for p in check_config(raw, tmp_path)[1])


@pytest.mark.parametrize(("where", "mutate"), [
    ("nodePools[0].name", lambda r: r["nodePools"][0].update(name="p" * 70)),
    ("runtime", lambda r: r.update(runtime="w" * 64)),
    ("shims." + "s" * 64, lambda r: r["shims"].update({"s" * 64: []})),
    ("nodePools[0].nodes[0].name", lambda r: r["nodePools"][0]["nodes"][0].update(name="n" * 64 + ".example")),
])
def test_a_name_over_a_length_limit_quotes_its_length_and_the_limit(where, mutate):
    raw = good()
    mutate(raw)
    msg = errors(raw)[where]
    assert "characters, over the 63" in msg


def test_a_look_alike_letter_in_a_name_is_shown_escaped_and_named():
    raw = good()
    raw["nodePools"][0]["nodes"][0]["name"] = "n\u043ede-a"  # Cyrillic o
    msg = errors(raw)["nodePools[0].nodes[0].name"]
    assert "'n\\u043ede-a'" in msg and "U+043E CYRILLIC SMALL LETTER O" in msg
    assert "\u043e" not in msg


def test_long_values_are_cut_in_messages():
    raw = good()
    raw["nodePools"][0]["containerd"] = "x" * 100_000
    msg = errors(raw)["nodePools[0].containerd"]
    assert len(msg) < 400 and "(100002 characters)" in msg


def test_unknown_keys_suggest_the_nearest_known_one():
    raw = good()
    raw["nodePools"][0]["retireing"] = []
    raw["nodepools"] = []
    errs = errors(raw)
    assert "did you mean retiring?" in errs["nodePools[0].retireing"]
    assert "did you mean nodePools?" in errs["nodepools"]


def test_an_empty_config_says_what_to_declare():
    assert "no wasm-shim-fleet:* keys" in errors({})["wasm-shim-fleet"]


def test_the_private_key_is_in_no_repr_and_no_message():
    raw = good()
    raw["ssh"]["privateKey"] = KEY
    raw["ssh"]["proxy"] = {"host": "b.example.org", "privateKey": KEY}
    raw["ssh"]["user"] = ["bad"]
    cfg, problems = check_config(raw, secret_keys=())
    assert cfg.ssh.private_key == KEY
    assert "c2VjcmV0" not in repr(cfg)
    assert all("c2VjcmV0" not in str(p) for p in problems)
    raw["ssh"] = [KEY]  # pasted in the wrong place
    assert all("c2VjcmV0" not in str(p) for p in check_config(raw)[1])


ODD_VALUES = [None, "", 0, -1, 2**70, 1.5, float("nan"), True, [], {}, [[]], [{}], {"a": {"b": []}}, "\u043e",
              "x" * 1000, "slight@", "@", "a\nb", "\x00", ["slight@1.2.3", 5], {"secure": 1}, ("t",)]


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*path, i))


def _replace(raw, path, value):
    if not path:
        return value
    target = raw
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return raw


def _config_path(path: tuple) -> str:
    """("nodePools", 0, "nodes") -> nodePools[0].nodes, as problems name it."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _at(raw, path):
    for part in path:
        raw = raw[part]
    return raw


def test_any_value_of_the_wrong_type_anywhere_in_the_config_is_an_error_at_its_path():
    """Every value of a good stack (one with every section), replaced in turn by each odd value: the checks return,
    and a value of another type than the good one is an error at its path (or at the mapping or list that holds
    it). Problems stay one line each, quoting no raw control character."""
    base = good()
    base["ssh"]["proxy"] = {"host": "b.example.org", "port": 22, "user": "u", "hostKey": "ssh-ed25519 AAAA"}
    base["kubernetes"] = {"renderDir": "r", "context": "c", "kubeconfig": "k"}
    base["deprecation"] = {"mode": "warn", "keep": 2}
    base["nodePools"][0].update(retiring=[], transport="ssh", localRoot="nodes", restart="true")
    judged = 0
    for path in list(_paths(base))[1:]:
        good_value = _at(base, path)
        for value in ODD_VALUES:
            raw = _replace(copy.deepcopy(base), path, value)
            _, problems = check_config(raw)
            for p in problems:
                assert p.severity in ("error", "warning") and p.path and p.message
                assert "\n" not in p.message and "\x00" not in p.message, p
            if value is None or type(value) is type(good_value):
                continue  # None: the key left out (a default may apply); same type: may be a good value
            if path == ("ssh", "privateKey") and isinstance(value, dict) and "secure" in value:
                continue  # a stack file's encrypted value: the engine decrypts it, the file only holds its place
            where = _config_path(path)
            related = [p.path for p in problems if p.severity == "error"
                       and (p.path.startswith(where) or where.startswith(p.path))]
            assert related, f"{where} = {value!r} is accepted: {problems}"
            judged += 1
    assert judged > 300


def test_nesting_deeper_than_the_bound_is_an_error_not_a_recursion():
    deep: list = []
    for _ in range(20_000):
        deep = [deep]
    raw = good()
    raw["nodePools"][0]["releases"] = deep
    assert "nested more than 64" in errors(raw)["wasm-shim-fleet"]


def test_config_paths_of_odd_keys_are_escaped_and_cut():
    raw = good()
    raw["nodePools"][0]["x" * 10_000] = 1
    raw["shims"]["sl\u0131ght"] = []  # dotless i
    paths = set(errors(raw))
    assert "nodePools[0]." + "x" * 60 + "…" in paths
    assert "shims.sl\\u0131ght" in paths


@pytest.mark.parametrize(("deprecation", "mode", "keep"), [
    (None, "warn", 2), ({}, "warn", 2), ({"mode": "off"}, "off", 2), ({"mode": "error", "keep": 1}, "error", 1),
    ({"keep": 3}, "warn", 3), ({"mode": "loud", "keep": 0}, "warn", 2),
])
def test_the_deprecation_policy_defaults_to_warn_keeping_two_and_a_bad_value_falls_back(deprecation, mode, keep):
    raw = good()
    if deprecation is not None:
        raw["deprecation"] = deprecation
    cfg, _ = check_config(raw)
    assert (cfg.deprecation.mode, cfg.deprecation.keep) == (mode, keep)


def test_a_value_of_the_wrong_kind_is_named_in_words():
    raw = good()
    raw["nodePools"] = "slight-1-2-3"
    assert "'slight-1-2-3' is a string" in errors(raw)["nodePools"]


def test_a_yaml_syntax_error_says_where_and_what_without_quoting_the_file(tmp_path):
    f = tmp_path / "Pulumi.x.yaml"
    f.write_text("config:\n  wasm-shim-fleet:runtime: a: b\n")
    with pytest.raises(StackFileError) as exc:
        read_stack_file(f)
    assert "line 2, column " in str(exc.value) and "mapping values are not allowed" in str(exc.value)


@pytest.mark.parametrize("value", [0, -1, 1.5, "1MiB", True, (1 << 40) + 1])
def test_max_bytes_is_a_whole_number_of_bytes(value):
    raw = good()
    raw["shims"]["slight"][0]["maxBytes"] = value
    assert "is not a size in bytes from 1 to 1099511627776" in errors(raw)["shims.slight[0].maxBytes"]


def test_max_bytes_reaches_the_release():
    raw = good()
    raw["shims"]["slight"][0]["maxBytes"] = 1024
    cfg, problems = check_config(raw)
    assert problems == [] and cfg.releases["slight@1.2.3"].max_bytes == 1024
