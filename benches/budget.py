#!/usr/bin/env python3
"""The instructions-per-request budget (issue 20): compares benches/instructions.sh's figures
(target/callgrind/per-request.json, written by `cargo bench --bench compare -- --instructions`)
with benches/budget.toml and fails when a path's figure exceeds its budget by more than the
file's tolerance. A path that has a budget but no figure, or a figure but no budget, fails
too (a renamed path must not silently escape its budget). A figure well under its budget is
reported (more than twice the tolerance under), not failed: lower the budget in the same
commit as the change that earned it.

    budget.py FIGURES.json [BUDGET.toml]   check (exit 1 when over budget)
    budget.py --self-test                  show that the check fails what it must
"""
import json
import sys
import tomllib
from pathlib import Path

BUDGET = Path(__file__).resolve().parent / "budget.toml"


def check(figures, budget):
    """Returns (lines to print, failures)."""
    tolerance = float(budget["tolerance_percent"])
    paths = budget["paths"]
    bare = figures.get("bare_pingora")
    lines = [
        f"instructions per request, budget + {tolerance:g} % allowed:",
        "",
        f"{'path':<18} {'measured':>10} {'budget':>10} {'vs budget':>10} {'vs bare':>8}",
    ]
    failures = []
    for name, limit in paths.items():
        if name not in figures:
            failures.append(f"{name}: has a budget but was not measured")
            continue
        got = figures[name]
        change = (got / limit - 1) * 100
        ratio = f"{got / bare:.2f}x" if bare else "-"
        lines.append(f"{name:<18} {got:>10.0f} {limit:>10} {change:>+9.1f}% {ratio:>8}")
        if got > limit * (1 + tolerance / 100):
            failures.append(
                f"{name}: {got:.0f} instructions per request, over its budget of {limit} "
                f"by {change:.1f} % (more than {tolerance:g} %): find what the change added "
                f"(callgrind_annotate --inclusive=yes on target/callgrind/) or, if it is worth "
                f"it, raise the budget in benches/budget.toml with the reason in the commit"
            )
        elif got < limit * (1 - 2 * tolerance / 100):
            lines.append(
                f"  {name} is {-change:.1f} % under its budget: lower it in benches/budget.toml"
            )
    for name in figures:
        if name not in paths and name not in ("bare_pingora", "nginx"):
            failures.append(f"{name}: measured but has no budget in benches/budget.toml")
    if bare:
        lines.append(f"{'bare_pingora':<18} {bare:>10.0f} {'(floor)':>10}")
    return lines, failures


def self_test():
    budget = {"tolerance_percent": 3, "paths": {"public": 1000, "authenticated": 2000}}
    cases = [
        ({"public": 1030, "authenticated": 2000, "bare_pingora": 800}, 0),  # at +3 %: passes
        ({"public": 1031, "authenticated": 2000}, 1),  # just over: fails
        ({"public": 900, "authenticated": 2100}, 1),  # one over, one under
        ({"public": 1000}, 1),  # a budgeted path not measured
        ({"public": 1000, "authenticated": 2000, "new_path": 5}, 1),  # no budget
    ]
    for figures, want in cases:
        _, failures = check(figures, budget)
        if len(failures) != want:
            sys.exit(f"budget.py self-test: {figures} gave {failures}, wanted {want} failure(s)")
    # The checked-in budget parses and has what check() reads.
    real = tomllib.loads(BUDGET.read_text())
    check({name: 0 for name in real["paths"]}, real)
    print("budget.py self-test: over-budget, missing and unbudgeted paths fail")


def main(argv):
    if argv[1:] == ["--self-test"]:
        self_test()
        return 0
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    figures = json.loads(Path(argv[1]).read_text())
    budget_file = Path(argv[2]) if len(argv) == 3 else BUDGET
    lines, failures = check(figures, tomllib.loads(budget_file.read_text()))
    print("\n".join(lines))
    for f in failures:
        print(f"OVER BUDGET: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
