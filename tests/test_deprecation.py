"""The deprecation policy judges a step: adding N must not drop N-1 in the same step."""

from __future__ import annotations

import json

import pytest

from components.core.config import Deprecation, check_config
from components.core.deprecation import deprecation_problems
from tests.conftest import cli as run
from tests.conftest import pool, stack, write_stack

VERSIONS = ("1.2.3", "1.2.4", "1.2.5", "2.0.0", "0.1.0-alpha.1")


def cfg(pools, **kw):
    c, problems = check_config(stack(pools, versions=VERSIONS, **kw))
    assert not [p for p in problems if p.severity == "error"], problems
    return c


def a(releases, retiring=None, nodes=("node-a",), name="a"):
    extra = {"retiring": retiring} if retiring is not None else {}
    return pool(name, releases, list(nodes), **extra)


CASES = [
    # (id, old pins, new pins, problem expected with keep 2)
    ("adding N beside N-1 is fine", a(["slight@1.2.3"]), a(["slight@1.2.3", "slight@1.2.4"]), False),
    ("replacing N-1 by N in one step is a problem", a(["slight@1.2.3"]), a(["slight@1.2.4"]), True),
    ("keeping N-1 in retiring counts as keeping it", a(["slight@1.2.3"]),
     a(["slight@1.2.4"], retiring=["slight@1.2.3"]), False),
    ("dropping N-2 while adding N keeps N-1 and is fine", a(["slight@1.2.3", "slight@1.2.4"]),
     a(["slight@1.2.4", "slight@1.2.5"]), False),
    ("dropping N-1 but keeping N-2 is a problem", a(["slight@1.2.3", "slight@1.2.4"]),
     a(["slight@1.2.3", "slight@1.2.5"]), True),
    ("removing an old release without adding one is fine", a(["slight@1.2.4"], retiring=["slight@1.2.3"]),
     a(["slight@1.2.4"]), False),
    ("adding an older release is not a bump", a(["slight@1.2.4"]), a(["slight@1.2.3"]), False),
    ("a pool that did not exist before has nothing to keep", a(["slight@1.2.3"], name="b", nodes=("node-b",)),
     a(["slight@2.0.0"]), False),
    ("a major bump is a bump too", a(["slight@1.2.5"]), a(["slight@2.0.0"]), True),
    ("a prerelease newer than nothing before is a bump", a(["slight@0.1.0-alpha.1"]), a(["slight@1.2.3"]), True),
    ("the same pins are no step", a(["slight@1.2.3"]), a(["slight@1.2.3"]), False),
]


@pytest.mark.parametrize("old,new,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_deprecation_rule_with_the_default_keep(old, new, expected):
    problems = deprecation_problems(cfg([old]), cfg([new]))
    assert bool(problems) == expected, problems
    for p in problems:
        assert p.severity == "warning"  # warn is the default mode
        assert p.path == "nodePools[0].releases"


def test_the_problem_names_the_pool_what_was_added_and_what_was_dropped():
    [p] = deprecation_problems(cfg([a(["slight@1.2.3"])]), cfg([a(["slight@1.2.4"])]))
    assert "pool 'a' adds slight@1.2.4" in p.message
    assert "drops slight@1.2.3" in p.message
    assert "retiring" in p.message


def test_mode_error_makes_it_an_error_and_off_silences_it():
    old = cfg([a(["slight@1.2.3"])])
    new_error = cfg([a(["slight@1.2.4"])], deprecation={"mode": "error"})
    new_off = cfg([a(["slight@1.2.4"])], deprecation={"mode": "off"})
    assert [p.severity for p in deprecation_problems(old, new_error)] == ["error"]
    assert deprecation_problems(old, new_off) == []


def test_the_target_stack_policy_decides_unless_one_is_given():
    old = cfg([a(["slight@1.2.3"])], deprecation={"mode": "off"})
    new = cfg([a(["slight@1.2.4"])])
    assert [p.severity for p in deprecation_problems(old, new)] == ["warning"]
    assert [p.severity for p in deprecation_problems(old, new, Deprecation("error", 2))] == ["error"]


def test_keep_three_asks_for_the_two_newest_before_the_step():
    old = cfg([a(["slight@1.2.3", "slight@1.2.4"])])
    new = cfg([a(["slight@1.2.4", "slight@1.2.5"])], deprecation={"keep": 3})
    [p] = deprecation_problems(old, new)
    assert "drops slight@1.2.3" in p.message
    assert deprecation_problems(old, cfg([a(["slight@1.2.4", "slight@1.2.5"], retiring=["slight@1.2.3"])],
                                         deprecation={"keep": 3})) == []


def test_keep_one_allows_a_straight_swap():
    old = cfg([a(["slight@1.2.3"])])
    assert deprecation_problems(old, cfg([a(["slight@1.2.4"])], deprecation={"keep": 1})) == []


def test_each_pool_is_judged_by_name_and_reported_at_its_own_path():
    old = cfg([a(["slight@1.2.3"]), a(["slight@1.2.3"], name="b", nodes=("node-b",))])
    new = cfg([a(["slight@1.2.3"], name="b", nodes=("node-b",)), a(["slight@1.2.4"])])
    [p] = deprecation_problems(old, new)
    assert p.path == "nodePools[1].releases"
    assert "pool 'a'" in p.message


def test_diff_prints_the_warning_and_succeeds_by_default(tmp_path):
    # N-1 (1.2.4) is installed but unlabelled: removing it is a safe step for diff, yet it is the newest release
    # before 2.0.0 arrives, so only the deprecation policy speaks, and by default (warn) it does not refuse.
    versions = ("1.2.3", "1.2.4", "2.0.0")
    old = write_stack(tmp_path / "old.yaml", stack([a(["slight@1.2.3"], retiring=["slight@1.2.4"])], versions=versions))
    new = write_stack(tmp_path / "new.yaml", stack([a(["slight@1.2.3", "slight@2.0.0"])], versions=versions))
    r = run("diff", str(old), str(new))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "UNSAFE" not in r.stdout
    [line] = [x for x in r.stderr.splitlines() if "nodePools[0].releases" in x]
    assert line.startswith(f"{new}: warning: nodePools[0].releases: pool 'a' adds slight@2.0.0 and in the same step "
                           "drops slight@1.2.4"), line
    r = run("diff", str(old), str(new), "--json")
    assert r.returncode == 0
    assert [p["severity"] for p in json.loads(r.stdout)["deprecation"]] == ["warning"]


def test_diff_refuses_a_dropped_n_minus_1_when_the_stack_says_error(tmp_path):
    # N-1 (1.2.4) is installed but unlabelled: removing it is safe for diff, yet it is the newest release
    # before 2.0.0 arrives, so only the deprecation policy catches its going.
    versions = ("1.2.3", "1.2.4", "2.0.0")
    old = write_stack(tmp_path / "old.yaml", stack([a(["slight@1.2.3"], retiring=["slight@1.2.4"])], versions=versions))
    new_raw = stack([a(["slight@1.2.3", "slight@2.0.0"])], versions=versions, deprecation={"mode": "error"})
    r = run("diff", str(old), str(write_stack(tmp_path / "error.yaml", new_raw)), "--json")
    assert r.returncode == 2
    doc = json.loads(r.stdout)
    assert doc["safe"] is True
    assert [p["severity"] for p in doc["deprecation"]] == ["error"]
