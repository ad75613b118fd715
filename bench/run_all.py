"""Run every benchmark, each in a fresh interpreter, and print one summary table.

    python bench/run_all.py            # all of them
    python bench/run_all.py engine io  # only bench_engine.py and bench_io.py

A fresh interpreter per benchmark keeps them from disturbing each other (modules imported,
the blocking facade's loop thread, garbage left behind). Their detailed output is streamed as
it comes; the summary at the end lists every row with its verdict against the goals.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from _common import Row, print_rows, rows_from_json, say
from bench_floor import print_floor_table

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    "warm",
    "cold",
    "floor",
    "engine",
    "io",
    "import",
    "sync",
    "fifo",
    "models",
    "kafka",
    "sqs_delete",
    "worker",
    "idempotency",
)
#: Extra arguments per benchmark: the warm matrix draws the docs' chart.
EXTRA = {"warm": ["--chart", str(HERE.parent / "docs" / "assets" / "warm-invocations.png")]}


def measured_source() -> str:
    """Where the anybatch under test comes from, and its commit when it is a git checkout."""
    spec = importlib.util.find_spec("anybatch")
    if spec is None or spec.origin is None:
        return "anybatch not found"
    package = Path(spec.origin).parent
    git = ["git", "-C", str(package)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return f"anybatch from {package} (not a git checkout)"
    status = subprocess.run(
        [*git, "status", "--porcelain", "--", "."], capture_output=True, text=True
    )
    lines = status.stdout.splitlines()
    untracked = sum(1 for line in lines if line.startswith("??"))
    modified = len(lines) - untracked
    state = f" ({modified} modified, {untracked} untracked files)" if lines else " (clean)"
    return f"anybatch from {package} at {head.stdout.strip()}{state}"


def environment() -> str:
    versions = []
    for dist in ("anybatch", "aws-lambda-powertools", "anyio"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} (not installed)")
    return (
        f"Python {platform.python_version()} ({platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.system()}) · " + " · ".join(versions)
    )


def run_one(name: str) -> tuple[list[Row], float]:
    """Run ``bench_<name>.py`` in a fresh interpreter; return its rows and wall time."""
    script = HERE / f"bench_{name}.py"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        start = time.perf_counter()
        command = [sys.executable, str(script), "--json", str(out), *EXTRA.get(name, [])]
        proc = subprocess.run(command, check=False)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0 or not out.exists():
            say(f"!! {script.name} failed (exit status {proc.returncode})")
            return [Row(f"{name}: FAILED to run", None, None, "error", "—", False)], elapsed
        return rows_from_json(json.loads(out.read_text(encoding="utf-8"))), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "only",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})",
    )
    args = parser.parse_args()
    unknown = sorted(set(args.only) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {BENCHMARKS}")
    names: list[str] = args.only or list(BENCHMARKS)
    say(f"anybatch vs Powertools batch utility — {environment()}")
    say(measured_source())
    say(
        "times: best of N interleaved runs (import: median); ratio = anybatch / Powertools, "
        "lower is better"
    )
    say()
    rows: list[Row] = []
    durations: list[str] = []
    start = time.perf_counter()
    for name in names:
        result, elapsed = run_one(name)
        rows += result
        durations.append(f"{name} {elapsed:.1f} s")
        say()
    total = time.perf_counter() - start
    say("=" * 100)
    print_rows(rows, title="SUMMARY")
    judged = [row for row in rows if row.ok is not None]
    passed = sum(1 for row in judged if row.ok)
    say()
    say(
        f"goals met: {passed}/{len(judged)}   "
        f"misses: {', '.join(r.name for r in judged if not r.ok) or 'none'}"
    )
    say()
    print_floor_table(rows)
    say()
    say(f"suite wall time {total:.1f} s ({'; '.join(durations)})")


if __name__ == "__main__":
    main()
