"""Timing utilities and result rows shared by the benchmarks.

Every benchmark measures anybatch and the incumbent (Powertools' batch utility) side by side
in the same process, with the cases *interleaved*: round 1 runs A, B, C; round 2 runs B, C,
A; and so on. On a shared, noisy machine that spreads interference over every case instead of
letting it land on one. Each sample is timed with :func:`time.perf_counter`, with the garbage
collector disabled (after a full collection) so a collection triggered by one case's garbage
does not land in another case's sample. The figure kept is the best (minimum) sample: noise
only ever adds time. Medians are printed next to it.

Each benchmark module exposes ``run() -> list[Row]`` and is runnable on its own
(``python bench/bench_engine.py``); ``--json PATH`` also writes its rows for ``run_all.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "Row",
    "check_no_failures",
    "Samples",
    "efficiency_row",
    "fmt_ratio",
    "fmt_time",
    "gc_paused",
    "info_row",
    "interleave",
    "interleave_async",
    "main",
    "print_rows",
    "ratio_row",
    "say",
]


def say(text: str = "") -> None:
    """Print a line now (unbuffered even when piped through run_all.py)."""
    print(text, flush=True)


# --- timing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Samples:
    """The timings (seconds) of one case, in the order they were taken."""

    name: str
    values: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def describe(self, per: int = 1, unit_name: str = "") -> str:
        """``best 1.23 ms  median 1.30 ms  (n=9)``, divided by *per* (e.g. per record)."""
        suffix = f"/{unit_name}" if unit_name else ""
        return (
            f"best {fmt_time(self.best / per)}{suffix}  "
            f"median {fmt_time(self.median / per)}{suffix}  (n={len(self.values)})"
        )


@contextmanager
def gc_paused(enabled: bool = True) -> Iterator[None]:
    """Collect garbage, then keep the collector off for the block (if *enabled*)."""
    if not enabled:
        yield
        return
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _rotations(names: Sequence[str], rounds: int) -> Iterator[list[str]]:
    """The order of the cases in each round: rotate by one every round."""
    n = len(names)
    for r in range(rounds):
        yield [names[(r + i) % n] for i in range(n)]


def interleave(
    cases: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    warmup: int = 1,
    pause_gc: bool = True,
) -> dict[str, Samples]:
    """Time each blocking case *rounds* times, interleaved, after *warmup* untimed rounds."""
    names = list(cases)
    for _ in range(warmup):
        for name in names:
            cases[name]()
    timings: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter
    for order in _rotations(names, rounds):
        for name in order:
            case = cases[name]
            with gc_paused(pause_gc):
                start = clock()
                case()
                elapsed = clock() - start
            timings[name].append(elapsed)
    return {name: Samples(name, tuple(values)) for name, values in timings.items()}


def interleave_async(
    cases: Mapping[str, Callable[[], Awaitable[object]]],
    *,
    rounds: int,
    warmup: int = 1,
    pause_gc: bool = True,
) -> dict[str, Samples]:
    """Like :func:`interleave`, but each case is awaited inside one running asyncio loop.

    Only the ``await`` is timed: the loop exists before and after, as in a long-lived
    async application.
    """

    async def main() -> dict[str, Samples]:
        names = list(cases)
        for _ in range(warmup):
            for name in names:
                await cases[name]()
        timings: dict[str, list[float]] = {name: [] for name in names}
        clock = time.perf_counter
        for order in _rotations(names, rounds):
            for name in order:
                case = cases[name]
                with gc_paused(pause_gc):
                    start = clock()
                    await case()
                    elapsed = clock() - start
                timings[name].append(elapsed)
        return {name: Samples(name, tuple(values)) for name, values in timings.items()}

    return asyncio.run(main())


# --- formatting ------------------------------------------------------------------------------


def fmt_time(seconds: float | None) -> str:
    """A duration with a readable unit: ``812 ns``, ``3.41 µs``, ``12.3 ms``, ``1.02 s``."""
    if seconds is None:
        return "—"
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def fmt_ratio(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.3f}x"


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of a benchmark's verdict.

    *anybatch* and *powertools* are seconds (``None``: not applicable). *measured* is the
    figure the goal is judged on, formatted; *ok* is ``None`` for informational rows.
    """

    name: str
    anybatch: float | None
    powertools: float | None
    measured: str
    goal: str
    ok: bool | None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.anybatch is None or not self.powertools:
            return None
        return self.anybatch / self.powertools

    @property
    def verdict(self) -> str:
        return "info" if self.ok is None else "PASS" if self.ok else "MISS"


def ratio_row(
    name: str, anybatch: float, powertools: float, *, goal_max: float | None, note: str = ""
) -> Row:
    """A row judged on anybatch/Powertools ≤ *goal_max* (``None``: informational)."""
    ratio = anybatch / powertools
    return Row(
        name,
        anybatch,
        powertools,
        measured=fmt_ratio(ratio),
        goal="—" if goal_max is None else f"≤ {goal_max:.3g}x",
        ok=None if goal_max is None else ratio <= goal_max,
        note=note,
    )


def efficiency(ideal: float, wall: float) -> float:
    """Ideal time over measured wall time, in percent."""
    return 100.0 * ideal / wall


def efficiency_row(
    name: str,
    anybatch: float,
    powertools: float | None,
    *,
    ideal: float,
    goal_min_percent: float,
    note: str = "",
) -> Row:
    """A row judged on the efficiency ``ideal / anybatch`` ≥ *goal_min_percent*."""
    eff = efficiency(ideal, anybatch)
    return Row(
        name,
        anybatch,
        powertools,
        measured=f"eff {eff:.1f}%",
        goal=f"eff ≥ {goal_min_percent:g}%",
        ok=eff >= goal_min_percent,
        note=note,
    )


def info_row(
    name: str, anybatch: float | None, powertools: float | None, measured: str, note: str = ""
) -> Row:
    return Row(name, anybatch, powertools, measured=measured, goal="—", ok=None, note=note)


def print_rows(rows: Sequence[Row], title: str = "") -> None:
    """Print *rows* as an aligned table, then their notes as footnotes."""
    header = ("benchmark", "anybatch", "Powertools", "ratio", "measured", "goal", "result")
    notes: list[str] = []
    table: list[tuple[str, ...]] = []
    for row in rows:
        name = row.name
        if row.note:
            notes.append(row.note)
            name += f" [{len(notes)}]"
        table.append(
            (
                name,
                fmt_time(row.anybatch),
                fmt_time(row.powertools),
                fmt_ratio(row.ratio),
                row.measured,
                row.goal,
                row.verdict,
            )
        )
    widths = [max(len(line[i]) for line in [header, *table]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        right = (cell.rjust(width) for cell, width in zip(rest, widths[1:], strict=True))
        return "  ".join([first.ljust(widths[0]), *right])

    if title:
        say(title)
    say(line(header))
    say("  ".join("-" * w for w in widths))
    for cells in table:
        say(line(cells))
    for number, note in enumerate(notes, 1):
        say(f"  [{number}] {note}")


def rows_to_json(rows: Sequence[Row]) -> list[dict[str, Any]]:
    return [asdict(row) for row in rows]


def rows_from_json(data: Sequence[Mapping[str, Any]]) -> list[Row]:
    return [Row(**item) for item in data]


def main(title: str, run: Callable[[], list[Row]], argv: Sequence[str] | None = None) -> None:
    """Command line of one benchmark module: run it, print its table, maybe write JSON."""
    parser = argparse.ArgumentParser(description=title)
    parser.add_argument("--json", metavar="PATH", help="also write the result rows to PATH")
    args = parser.parse_args(argv)
    say(f"== {title} ==")
    start = time.perf_counter()
    rows = run()
    say()
    print_rows(rows)
    say(f"({time.perf_counter() - start:.1f} s)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(rows_to_json(rows), out)


def check_no_failures(response: Mapping[str, Any], what: str) -> None:
    """Stop the benchmark if a case reported failed records: its timing would be meaningless."""
    failures = response.get("batchItemFailures")
    if failures:
        sys.exit(f"{what}: {len(failures)} records failed; the benchmark is broken")
