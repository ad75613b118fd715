"""anybatch at two or more git revisions, side by side: instructions per warm invocation.

For a change that must not cost speed (a refactoring, a new feature on the hot path), the
figures before and after, in one sitting::

    python bench/compare_revisions.py 0c3616a HEAD
    python bench/compare_revisions.py 0c3616a HEAD --figures sync-10 async-10
    python bench/compare_revisions.py 0c3616a HEAD --cache   # with cache and branch misses

Each revision's ``src/`` is taken with ``git archive`` into a temporary folder; the cases of
``_floor_cases.py`` (this checkout's) then run under ``valgrind --tool=callgrind`` with that
folder first on ``PYTHONPATH``, so every revision runs the same event, handler and context.
The figure is the count of a long run of warm invocations minus a short one, divided by the
difference (see ``_callgrind.py``); counts do not move with the machine's load.

``--cache`` also simulates the caches and the branch predictor and prints an estimate of the
cycles (instructions, plus 10 per first-level miss and per mispredicted branch, plus 100
per last-level miss: KCachegrind's weights). Wall time follows this estimate more closely
than the instructions alone: code that touches more functions misses more.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _callgrind
import _floor_cases

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_FIGURES = ("sync-10", "sync-10-nocontext", "sync-100", "async-10", "async-100")


def extract(revision: str, into: Path) -> Path:
    """*revision*'s ``src/`` under *into*; returns the folder to put on ``PYTHONPATH``."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, "src"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    folder = into / revision.replace("/", "_")
    folder.mkdir()
    tar_path = folder / "src.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(folder, filter="data")
    return folder / "src"


def count(src: Path, figure: str, cache: bool) -> tuple[float, float | None]:
    """Instructions (and the cycle estimate, with *cache*) per invocation of *figure*."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, str(HERE / "_floor_cases.py"), f"{figure}/anybatch"]
    lo, hi = _floor_cases.segments(figure)
    if not cache:
        counts = _callgrind.count_segments(command, env)
        return (counts[1] - counts[0]) / (hi - lo), None
    options = ["--cache-sim=yes", "--branch-sim=yes"]
    short, long = _callgrind.count_segment_events(command, env, options)
    per = {name: (long[name] - short[name]) / (hi - lo) for name in short}
    return per["Ir"], _callgrind.estimate(per)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("revisions", nargs="+", help="git revisions; the first is the baseline")
    parser.add_argument("--figures", nargs="+", default=list(DEFAULT_FIGURES))
    parser.add_argument("--cache", action="store_true", help="also simulate caches, branches")
    args = parser.parse_args(argv)
    if not _callgrind.available():
        sys.exit("valgrind is not installed: instruction counts need it")
    unknown = [f for f in args.figures if f not in _floor_cases.FIGURES]
    if unknown:
        sys.exit(f"unknown figures {unknown}; known: {', '.join(_floor_cases.FIGURES)}")
    with tempfile.TemporaryDirectory() as tmp:
        sources = {rev: extract(rev, Path(tmp)) for rev in args.revisions}
        jobs = [(rev, fig) for fig in args.figures for rev in args.revisions]
        with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
            counted = pool.map(lambda job: count(sources[job[0]], job[1], args.cache), jobs)
            results = dict(zip(jobs, counted, strict=True))
    base = args.revisions[0]
    print(f"per warm invocation, no-op handler; ratio to {base}")
    for figure in args.figures:
        label = _floor_cases.FIGURES[figure].label
        for rev in args.revisions:
            instructions, cycles = results[rev, figure]
            ratio = instructions / results[base, figure][0]
            line = f"{label:32s} {rev:>12s} {instructions:12,.0f} instr  {ratio:6.3f}x"
            if cycles is not None:
                base_cycles = results[base, figure][1]
                assert base_cycles is not None
                line += f"   est {cycles:12,.0f} cycles  {cycles / base_cycles:6.3f}x"
            print(line)


if __name__ == "__main__":
    main()
