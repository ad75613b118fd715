"""anybatch's import cost at two or more git revisions, side by side, in one sitting.

The import companion of ``compare_revisions.py`` and ``compare_wall.py``: each revision's
``src/`` (taken with ``git archive``) is put first on ``PYTHONPATH`` of fresh interpreters that
run ``bench_import.py``'s statement under ``-X importtime``, the revisions taking turns in an
order that rotates each round; bytecode is cached for all of them, as ``bench_import.py``
does. The figure is the median over the rounds; the ratio is to the first revision::

    python bench/compare_import.py 0c3616a HEAD
    python bench/compare_import.py 0c3616a HEAD --rounds 31
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench_import import ANYBATCH, bytecode_env, importtime, top_level_cost
from compare_revisions import extract


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("revisions", nargs="+", help="git revisions; the first is the baseline")
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args(argv)
    revisions = args.revisions
    with tempfile.TemporaryDirectory(prefix="compare-import-") as tmp:
        sources = {rev: extract(rev, Path(tmp)) for rev in dict.fromkeys(revisions)}
        cache = Path(tmp) / "pycache"
        # One environment per position: a revision given twice is its own noise (A/A).
        envs = [
            {**bytecode_env(str(cache / str(i))), "PYTHONPATH": str(sources[rev])}
            for i, rev in enumerate(revisions)
        ]
        startup = frozenset(name for _, depth, name in importtime("pass", envs[0]) if depth == 0)
        for env in envs:  # one untimed run each: bytecode cached, file cache warm
            importtime(ANYBATCH, env)
        costs: list[list[float]] = [[] for _ in revisions]
        for round_ in range(args.rounds):
            order = list(range(len(revisions)))
            shift = round_ % len(order)
            for i in order[shift:] + order[:shift]:
                costs[i].append(top_level_cost(ANYBATCH, startup, envs[i]))
    base = statistics.median(costs[0])
    print(f"{ANYBATCH}: median of {args.rounds} fresh interpreters; ratio to {revisions[0]}")
    for rev, samples in zip(revisions, costs, strict=True):
        median = statistics.median(samples)
        print(
            f"{rev:>12s}  {median * 1e3:6.1f} ms  {median / base:6.3f}x  "
            f"(best {min(samples) * 1e3:.1f} ms)"
        )


if __name__ == "__main__":
    main()
