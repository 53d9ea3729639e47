"""Mutation score of the pure core: how many one-line bugs put into components/core/*.py the unit tier catches.

    nice -n 19 python bench/mutation.py [--sample N] [--module naming,...] [--max-children 2] [--json] [--keep DIR]

mutmut (requirements-dev.txt) rewrites each function of the core's Python modules into variants with one small
change each (a mutant: `<` for `<=`, a string or number changed, an argument dropped, ...) and runs, for every
mutant, the unit-tier tests that call that function (`python -m pytest` with the default markers, as
pyproject.toml sets them). A mutant is killed when a test fails.

tests/test_types.py is left out: mypy reads mutmut's rewritten source, not the project's, and runs in a process of
its own (so it is the test of no mutant). It runs in a copy of the checkout (every file git tracks or would add),
never in the checkout itself: mutmut writes its mutated tree into `mutants/` of the folder it runs in. The copy is a
git repository of its own, so the tests that copy "a fresh clone" find one. The run is bounded: mutmut stops a
mutant's tests after 8 x (their clean time plus a second) of CPU (`timeout`), and the whole run after --seconds.

Counted per module: killed, survived, no tests (no unit test calls the mutated function in the test process;
commands tested only as subprocesses land here), timeout (counted as killed, as mutmut does: the mutant made the
tests hang), other (suspicious, segfault, ...). score = (killed + timeout) / mutants tested. --json prints one
object per module and a total; `--survivors` lists each mutant not killed with its diff.

The core makes about 11,000 mutants, and a mutant of the config checks runs some 430 tests: all of them take about
a day on 2 cores. `--sample N` (the default, 600) tests N mutants drawn at random (seeded, so a run is
repeatable) from every module's, and the total comes with its 95 % confidence interval (Wilson); `--all` tests
every mutant of the chosen modules.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "components" / "core"
#: What the copy's pyproject.toml adds for mutmut (it reads [tool.mutmut] from the folder it runs in).
MUTMUT_CONFIG = """
[tool.mutmut]
source_paths = ["components/"]
only_mutate = ["components/core/*.py"]
also_copy = {also_copy}
pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "--ignore=tests/test_types.py"]
timeout_multiplier = 4.0
timeout_constant = 1.0
use_git_change_detection = false
"""
#: mutmut's exit codes (mutmut.stats.status_by_exit_code) grouped as reported here.
KILLED = {1, 3}
SURVIVED = {0}
NO_TESTS = {5, 33}
TIMEOUT = {24, -24, 152, 255, 36}


def modules() -> list[str]:
    return sorted(p.stem for p in CORE.glob("*.py") if p.stem != "__init__")


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True).stdout.decode()
    return [f for f in out.split("\0") if f and (ROOT / f).exists()]


def make_copy(dest: Path) -> None:
    """The checkout's files in `dest`, committed in a git repository of their own, with mutmut's settings added
    to its pyproject.toml and the virtualenv linked in as ./venv (as scripts/setup.sh leaves it)."""
    files = tracked_files()
    for rel in files:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel, follow_symlinks=False)
    top = sorted({Path(f).parts[0] for f in files} - {"components"})
    with open(dest / "pyproject.toml", "a") as f:
        f.write(MUTMUT_CONFIG.format(also_copy=json.dumps(top)))
    git = ["git", "-c", "user.name=mutation", "-c", "user.email=mutation@localhost", "-c", "init.defaultBranch=main"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "mutation copy"]):
        subprocess.run([*git, *args], cwd=dest, check=True, capture_output=True)
    venv = Path(sys.prefix)
    (dest / "mutants").mkdir()
    for where in (dest, dest / "mutants"):  # the tests run in mutants/, a few of them call ./venv/bin/python
        if not (where / "venv").exists():
            (where / "venv").symlink_to(venv)


def mutmut(work: Path, names: list[str], max_children: int, seconds: float, log) -> bool:
    """`mutmut run` of these mutant names (or patterns); False when it hit `seconds` (results so far still count:
    mutmut records each mutant's as it finishes)."""
    cmd = ["nice", "-n", "19", sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *names]
    proc = subprocess.Popen(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    try:
        proc.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return False


def all_mutants(work: Path) -> dict[str, list[str]]:
    """module -> the names of its mutants (mutmut writes them when it generates the mutants)."""
    return {m: sorted(results(work, m)) for m in modules()}


def wilson(killed: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % confidence interval of a proportion measured on a random sample (Wilson score interval), in %."""
    if n == 0:
        return 0.0, 100.0
    p = killed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


def results(work: Path, module: str) -> dict[str, int | None]:
    meta = work / "mutants" / "components" / "core" / f"{module}.py.meta"
    if not meta.exists():
        return {}
    return json.loads(meta.read_text()).get("exit_code_by_key", {})


def tally(codes: dict[str, int | None]) -> dict[str, int]:
    t = dict.fromkeys(("mutants", "killed", "timeout", "survived", "no_tests", "not_checked", "other"), 0)
    for code in codes.values():
        t["mutants"] += 1
        if code in KILLED:
            t["killed"] += 1
        elif code in TIMEOUT:
            t["timeout"] += 1
        elif code in SURVIVED:
            t["survived"] += 1
        elif code in NO_TESTS:
            t["no_tests"] += 1
        elif code is None:
            t["not_checked"] += 1
        else:
            t["other"] += 1
    return t


def score(t: dict[str, int]) -> float:
    """Killed (timeouts included) of the mutants tested (a run stopped by --seconds leaves some not checked)."""
    tested = t["mutants"] - t["not_checked"]
    return 100.0 * (t["killed"] + t["timeout"]) / tested if tested else 100.0


def show_survivors(work: Path, names: list[str]) -> None:
    for name in names:
        diff = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=work, capture_output=True,
                              text=True).stdout
        print(diff.rstrip() + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module", default="", help="comma-separated modules of components/core (default: all): "
                                                 + ",".join(modules()))
    ap.add_argument("--sample", type=int, default=600, help="mutants drawn at random (default 600)")
    ap.add_argument("--all", action="store_true", help="every mutant of the chosen modules instead of a sample")
    ap.add_argument("--seed", type=int, default=24, help="of the sample (default 24)")
    ap.add_argument("--max-children", type=int, default=2, help="mutants tested at once (default 2)")
    ap.add_argument("--seconds", type=float, default=7200, help="wall-clock bound of the mutants' run")
    ap.add_argument("--json", action="store_true", help="one JSON object per module, then the total")
    ap.add_argument("--survivors", action="store_true", help="print the diff of every mutant not killed")
    ap.add_argument("--keep", metavar="DIR", help="run in DIR and keep it (mutmut's results and log stay there)")
    args = ap.parse_args()
    chosen = [m for m in args.module.split(",") if m] or modules()
    unknown = sorted(set(chosen) - set(modules()))
    if unknown:
        ap.error(f"no module {', '.join(unknown)} in components/core")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="wsf-mutation-"))
    if not (work / "mutants").exists():
        work.mkdir(parents=True, exist_ok=True)
        make_copy(work)
    start = time.monotonic()
    try:
        with open(work / "mutation.log", "a") as log:
            # generates every mutant and maps each function to the tests that call it; tests no mutant
            mutmut(work, ["components.core.no-such-module.*"], args.max_children, args.seconds, log)
            by_module = {m: names for m, names in all_mutants(work).items() if m in chosen}
            pool = sorted(n for names in by_module.values() for n in names)
            picked = pool if args.all else sorted(random.Random(args.seed).sample(pool, min(args.sample, len(pool))))
            finished = mutmut(work, picked, args.max_children, args.seconds, log) if picked else True
        total: dict[str, int] = {}
        left: list[str] = []
        for module in chosen:
            mine = set(by_module.get(module, ()))
            codes = {k: v for k, v in results(work, module).items() if k in mine and k in set(picked)}
            t = tally(codes)
            left += sorted(k for k, c in codes.items() if c not in KILLED | TIMEOUT)
            for k, v in t.items():
                total[k] = total.get(k, 0) + v
            row = {"module": module, "generated": len(mine), **t, "score": round(score(t), 1)}
            if args.json:
                print(json.dumps(row), flush=True)
            elif t["mutants"]:
                print(f"{module:<16} {len(mine):>5} generated {t['mutants']:>5} tested {t['killed'] + t['timeout']:>5} "
                      f"killed  {t['survived']:>4} survived  {t['no_tests']:>4} no tests  {row['score']:>5.1f} %")
        low, high = wilson(total.get("killed", 0) + total.get("timeout", 0),
                           total.get("mutants", 0) - total.get("not_checked", 0))
        row = {"module": "total", "generated": len(pool), **total, "score": round(score(total), 1) if total else 0.0,
               "interval95": [round(low, 1), round(high, 1)] if not args.all else None,
               "seconds": round(time.monotonic() - start), "finished": finished}
        if args.json:
            print(json.dumps(row))
        else:
            interval = "" if args.all else f" (95 % interval {low:.1f}-{high:.1f} %)"
            print(f"{'total':<16} {len(pool):>5} generated {total.get('mutants', 0):>5} tested "
                  f"{total.get('killed', 0) + total.get('timeout', 0):>5} killed  {row['score']:.1f} %{interval}, "
                  f"{row['seconds']} s{'' if finished else ' (stopped at --seconds: not every mutant was tested)'}")
        if args.survivors:
            show_survivors(work, left)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
