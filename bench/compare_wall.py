"""anybatch at two or more git revisions, side by side: wall time per warm invocation.

The wall-time companion of ``compare_revisions.py`` (instruction counts): instructions do
not see what a change does to caches, branches and memory, and a change can save
instructions yet cost time. For each figure, one process per revision (each with that
revision's ``src/`` first on ``PYTHONPATH``, taken with ``git archive``) runs the same case
of ``_floor_cases.py``; the processes take turns, round after round, in an order that
rotates each round, so that the machine's load falls on all of them alike::

    python bench/compare_wall.py 0c3616a HEAD
    python bench/compare_wall.py 0c3616a HEAD --figures sync-10 async-10 --sets 5

A round times a block of invocations (about 40 ms) with the garbage collector off; a
process's figure is its fastest round. That is done *sets* times with fresh processes (a
process's memory layout moves its figure by itself), and each ratio printed is the median,
over the sets, of a revision's fastest round over the baseline's.

The noise is measured, not assumed: each set also runs a second process of the baseline
(``A/A``), whose ratio to the first would be 1.000 on a quiet machine. A revision's ratio
means something only beyond the spread of that one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import _floor_cases
from compare_revisions import extract

HERE = Path(__file__).resolve().parent
DEFAULT_FIGURES = ("sync-10", "sync-10-nocontext", "sync-100", "async-10", "async-100")
#: Records a round runs: about 40 ms of invocations at every size.
ROUND_RECORDS = 20_000

_CHILD = r"""
import gc, sys, time
sys.path.insert(0, sys.argv[1])
import _floor_cases
run = _floor_cases.build(sys.argv[2], "anybatch")
n = int(sys.argv[3])
run(max(50, n // 4))  # warm: caches, the loop, specialised bytecode
print("ready", flush=True)
for _ in sys.stdin:
    gc.collect()
    gc.disable()
    started = time.perf_counter_ns()
    run(n)
    elapsed = time.perf_counter_ns() - started
    gc.enable()
    print(elapsed / n / 1000, flush=True)
"""


def one_set(sources: dict[str, Path], figure: str, rounds: int) -> dict[str, float]:
    """Each process's fastest round (µs an invocation), keyed by revision ("A/A": again)."""
    n = max(1, ROUND_RECORDS // _floor_cases.FIGURES[figure].records)
    names = [*sources, "A/A"]
    paths = [*sources.values(), next(iter(sources.values()))]
    children = {}
    for name, src in zip(names, paths, strict=True):
        env = {**os.environ, "PYTHONPATH": str(src), "PYTHONHASHSEED": "0"}
        children[name] = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(HERE), figure, str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
    try:
        for child in children.values():
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError(f"{figure}: a case did not start")
        fastest = dict.fromkeys(names, float("inf"))
        for turn in range(rounds):
            shift = turn % len(names)
            for name in names[shift:] + names[:shift]:
                child = children[name]
                assert child.stdin is not None
                assert child.stdout is not None
                child.stdin.write("go\n")
                child.stdin.flush()
                fastest[name] = min(fastest[name], float(child.stdout.readline()))
    finally:
        for child in children.values():
            if child.stdin is not None:
                child.stdin.close()
            child.wait()
    return fastest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("revisions", nargs="+", help="git revisions; the first is the baseline")
    parser.add_argument("--figures", nargs="+", default=list(DEFAULT_FIGURES))
    parser.add_argument("--sets", type=int, default=3, help="fresh processes, this many times")
    parser.add_argument("--rounds", type=int, default=40, help="rounds per set")
    args = parser.parse_args(argv)
    unknown = [f for f in args.figures if f not in _floor_cases.FIGURES]
    if unknown:
        sys.exit(f"unknown figures {unknown}; known: {', '.join(_floor_cases.FIGURES)}")
    if len(set(args.revisions)) != len(args.revisions):
        sys.exit("name each revision once")
    base = args.revisions[0]
    print(
        f"µs per warm invocation (fastest round), no-op handler; median over {args.sets} sets "
        f"of the ratio to {base}; A/A: {base} again, the noise"
    )
    with tempfile.TemporaryDirectory() as tmp:
        sources = {rev: extract(rev, Path(tmp)) for rev in args.revisions}
        for figure in args.figures:
            sets = [one_set(sources, figure, args.rounds) for _ in range(args.sets)]
            label = _floor_cases.FIGURES[figure].label
            for name in [*args.revisions, "A/A"]:
                ratios = [found[name] / found[base] for found in sets]
                times = statistics.median(found[name] for found in sets)
                spread = f"{min(ratios):.3f}-{max(ratios):.3f}"
                print(
                    f"{label:32s} {name:>12s} {times:9.2f} µs  "
                    f"{statistics.median(ratios):6.3f}x  (sets: {spread})"
                )


if __name__ == "__main__":
    main()
