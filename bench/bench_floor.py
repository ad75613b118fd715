"""The common case against its floor: anybatch, the incumbent and hand-written code.

The *floor* is what a user could write by hand for the same job (``floors.py``): a loop
calling the handler in ``try/except`` and building the response; for async, one reused loop
awaiting each record in turn. Each figure of ``_floor_cases.py`` (SQS with 10 or 100
records, sync or async, with a Lambda context or without; Kafka with 10,000 records) is run
by anybatch, the incumbent (Powertools' batch utility, its async path as on Lambda) and the
floor, warm, with a no-op record handler, and measured two ways:

* **instructions** under ``valgrind --tool=callgrind`` (see ``_callgrind.py``): per
  invocation, the count of a longer run of warm invocations minus a shorter one, so start-up
  and warm-up cancel out. Counts do not move with the machine's load, so these figures repeat
  from run to run; the three libraries are counted in parallel processes;
* **wall time**, best of interleaved rounds (``_common.interleave``), as everywhere else.

Cold start: a fresh process reads a 100-record SQS event, imports the library and runs the
batch through the async entry point with a Lambda context; the figure is the excess over a
bare interpreter reading the same event (median of alternating runs; instructions of the
whole process, once each). Its floor imports asyncio and runs ``floors.sqs_async``.

The rows are the targets of the near-the-floor work (``TARGETS``), judged in both measures;
``run_all.py`` also prints them as one table (:func:`print_floor_table`), with the figures
recorded before that work and the "no worse" rows read from the other benchmarks.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import _callgrind
import _floor_cases
from _common import Row, fmt_ratio, fmt_time, info_row, interleave, main, say
from _floor_cases import FIGURES, LIBRARIES

HERE = Path(__file__).resolve().parent
#: Each wall-time sample runs this many records' worth of invocations (at least one).
RECORDS_PER_SAMPLE = 4_000
COLD_RUNS = 7
COLD_RECORDS = 100


@dataclass(frozen=True)
class Target:
    """One line of the table: a ratio, its figure before the work, and the goal."""

    label: str
    figure: str  # a key of FIGURES, or "cold"
    versus: str  # "incumbent" or "floor"
    today: str
    goal: float
    #: The measures judged: both, or instructions alone.
    judged: tuple[str, ...] = ("instr", "wall")

    def row_name(self, measure: str) -> str:
        return f"floor: {self.label} ({measure})"


TARGETS = (
    Target("async 10, vs incumbent", "async-10", "incumbent", "0.64x", 0.35),
    Target("async 10, vs floor", "async-10", "floor", "4.9x", 2.5),
    Target("async 100, vs floor", "async-100", "floor", "5.9x", 3.0),
    Target("sync 10, vs incumbent", "sync-10", "incumbent", "0.82x", 0.5),
    Target("sync 10 no context, vs incumbent", "sync-10-nocontext", "incumbent", "1.3x", 0.8),
    Target("sync 100, vs floor", "sync-100", "floor", "10.4x", 5.0, judged=("instr",)),
    Target("Kafka 10k sync, vs incumbent", "kafka-sync", "incumbent", "0.87x", 0.5),
    Target("Kafka 10k async, vs incumbent", "kafka-async", "incumbent", "0.31x", 0.2),
    Target("cold start async, vs incumbent", "cold", "incumbent", "0.57x", 0.5),
)


@dataclass(frozen=True)
class NoWorse:
    """A figure of another benchmark that must stay where it was before the work."""

    label: str
    row_name: str
    today: float
    kind: str  # "ratio" (lower is better) or "eff" (percent, higher is better)


#: Wall-time figures move from run to run; "no worse" allows this much before it says MISS.
RATIO_SLACK = 1.05
EFF_SLACK_POINTS = 1.0
NO_WORSE = (
    NoWorse("engine 10k, vs incumbent", "engine: 10k records, no-op async", 0.150, "ratio"),
    NoWorse(
        "I/O asyncio, share of floor", "io: 5k x 10 ms, conc=100, asyncio vs floor", 99.3, "eff"
    ),
    NoWorse("I/O trio, share of floor", "io: 5k x 10 ms, conc=100, trio vs floor", 98.0, "eff"),
    NoWorse("FIFO, share of ideal", "fifo: 10 groups x 100 x 10 ms, async", 98.0, "eff"),
    NoWorse("models 10k, vs incumbent", "models: 10k SQS, Json body model", 0.90, "ratio"),
    NoWorse("models, the model's share", "models: the model's own share", 0.96, "ratio"),
    NoWorse("models, GC running", "models: 10k SQS, GC running", 0.92, "ratio"),
)


def fmt_count(instructions: float) -> str:
    """``424k``, ``1,131k``, ``163.6M`` instructions."""
    if abs(instructions) < 10_000_000:
        return f"{instructions / 1e3:,.0f}k"
    return f"{instructions / 1e6:,.1f}M"


# --- warm figures ----------------------------------------------------------------------------


def wall_times() -> dict[str, dict[str, float]]:
    """Seconds per invocation, per figure and library: best of interleaved samples."""
    times: dict[str, dict[str, float]] = {}
    for name, figure in FIGURES.items():
        calls = max(1, RECORDS_PER_SAMPLE // figure.records)
        cases: dict[str, Callable[[], None]] = {}
        for library in LIBRARIES:
            run = _floor_cases.build(name, library)
            cases[library] = lambda run=run, calls=calls: run(calls)
        rounds = 15 if figure.records <= 100 else 9
        timings = interleave(cases, rounds=rounds, warmup=2)
        times[name] = {library: timings[library].best / calls for library in LIBRARIES}
    return times


def instruction_counts() -> dict[str, dict[str, float]]:
    """Instructions per invocation, per figure and library (one callgrind process each)."""
    from bench_import import bytecode_env

    commands = {
        library: [
            sys.executable,
            str(HERE / "_floor_cases.py"),
            *(f"{name}/{library}" for name in FIGURES),
        ]
        for library in LIBRARIES
    }
    with tempfile.TemporaryDirectory() as tmp:
        # Bytecode cached, as a pip install leaves it: otherwise an editable anybatch would be
        # compiled in every process (PYTHONDONTWRITEBYTECODE). One native run fills the cache.
        env = bytecode_env(tmp)
        env.pop("LAMBDA_TASK_ROOT", None)
        for command in commands.values():
            subprocess.run(command, env=env, check=True)
        results = _callgrind.parallel(
            [
                lambda command=command: _callgrind.count_segments(command, env)
                for command in commands.values()
            ]
        )
    counts: dict[str, dict[str, float]] = {name: {} for name in FIGURES}
    for library, segments in zip(LIBRARIES, results, strict=True):
        assert isinstance(segments, list)
        for index, name in enumerate(FIGURES):
            lo, hi = _floor_cases.segments(name)
            short, long = segments[2 * index], segments[2 * index + 1]
            counts[name][library] = (long - short) / (hi - lo)
    return counts


# --- cold start ------------------------------------------------------------------------------

COLD_PROLOGUE = f"""
import json, sys
sys.path.insert(0, {str(HERE)!r})
class Context:
    aws_request_id = "00000000-0000-4000-8000-00000000c0de"
    function_name = "anybatch-function"
    def get_remaining_time_in_millis(self):
        return 900_000
context = Context()
with open(sys.argv[1], encoding="utf-8") as file:
    event = json.load(file)
"""

COLD_SCRIPTS = {
    "bare": COLD_PROLOGUE
    + """
def record_handler(record):
    pass
for record in event["Records"]:
    record_handler(record)
""",
    "floor": COLD_PROLOGUE
    + """
from floors import sqs_async
async def record_handler(record):
    pass
lambda_handler = sqs_async(record_handler)
assert lambda_handler(event, context) == {"batchItemFailures": []}
""",
    "anybatch": COLD_PROLOGUE
    + """
from anybatch import (
    AsyncBatchProcessor, EventType, as_lambda_handler, async_process_partial_response
)
processor = AsyncBatchProcessor(EventType.SQS)
async def record_handler(record):
    pass
@as_lambda_handler
async def lambda_handler(event, context):
    return await async_process_partial_response(event, record_handler, processor, context)
assert lambda_handler(event, context) == {"batchItemFailures": []}
""",
    "incumbent": COLD_PROLOGUE
    + """
import os
os.environ["LAMBDA_TASK_ROOT"] = "/var/task"
import warnings
warnings.simplefilter("ignore", DeprecationWarning)
from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor, EventType, async_process_partial_response
)
processor = AsyncBatchProcessor(event_type=EventType.SQS)
async def record_handler(record):
    pass
def lambda_handler(event, context):
    return async_process_partial_response(event, record_handler, processor, context)
assert lambda_handler(event, context) == {"batchItemFailures": []}
""",
}


def cold_starts(counting: bool) -> tuple[dict[str, float], dict[str, float] | None]:
    """Median wall seconds, and instructions, of each cold script over the bare one's."""
    from bench_import import bytecode_env

    from anybatch.testing import sqs_event

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        event = folder / "event.json"
        event.write_text(json.dumps(sqs_event(f"message {i}" for i in range(COLD_RECORDS))))
        commands: dict[str, list[str]] = {}
        for name, code in COLD_SCRIPTS.items():
            script = folder / f"cold_{name}.py"
            script.write_text(code)
            commands[name] = [sys.executable, str(script), str(event)]
        env = bytecode_env(str(folder / "pycache"))
        env.pop("ANYBATCH_EVENT_LOOP", None)
        env.pop("LAMBDA_TASK_ROOT", None)
        for command in commands.values():  # untimed: fills the bytecode cache
            subprocess.run(command, env=env, check=True)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        names = list(commands)
        for round_ in range(COLD_RUNS):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                start = time.perf_counter()
                subprocess.run(commands[name], env=env, check=True)
                samples[name].append(time.perf_counter() - start)
        counts = None
        if counting:
            results = _callgrind.parallel(
                [
                    lambda command=command: _callgrind.count_process(command, env)
                    for command in commands.values()
                ]
            )
            counts = {
                name: float(n)  # type: ignore[arg-type]
                for name, n in zip(commands, results, strict=True)
            }
    bare = statistics.median(samples["bare"])
    wall = {name: statistics.median(values) - bare for name, values in samples.items()}
    wall["bare"] = bare
    if counts is not None:
        counts = {name: n - counts["bare"] if name != "bare" else n for name, n in counts.items()}
    return wall, counts


# --- rows ------------------------------------------------------------------------------------


def target_rows(
    target: Target,
    wall: dict[str, float],
    counts: dict[str, float] | None,
) -> list[Row]:
    ab, other = wall["anybatch"], wall[target.versus]
    ratio = ab / other
    note = (
        "the 'Powertools' column is the hand-written floor"
        if target.versus == "floor"
        else "with a Lambda context"
        if "no context" not in target.label
        else ""
    )
    goal = f"≤ {target.goal:g}x"
    rows: list[Row] = []
    if counts is None:
        rows.append(info_row(target.row_name("instr"), None, None, "skipped (no valgrind)"))
    else:
        counted = counts["anybatch"] / counts[target.versus]
        judged = "instr" in target.judged
        rows.append(
            Row(
                target.row_name("instr"),
                None,
                None,
                measured=f"{fmt_ratio(counted)} ({fmt_count(counts['anybatch'])}/"
                f"{fmt_count(counts[target.versus])})",
                goal=goal if judged else "—",
                ok=counted <= target.goal if judged else None,
            )
        )
    judged = "wall" in target.judged
    rows.append(
        Row(
            target.row_name("wall"),
            ab,
            other,
            measured=fmt_ratio(ratio),
            goal=goal if judged else "—",
            ok=ratio <= target.goal if judged else None,
            note=note,
        )
    )
    return rows


def run() -> list[Row]:
    counting = _callgrind.available()
    say("warm invocations, no-op handler, per invocation: wall time (best of interleaved ")
    say("samples) and, under callgrind, instructions (long run minus short run)")
    started = time.perf_counter()
    wall = wall_times()
    say(f"  wall time measured in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    cold_wall, cold_counts = cold_starts(counting)
    say(f"  cold starts measured in {time.perf_counter() - started:.1f} s")
    counts = None
    if counting:
        started = time.perf_counter()
        counts = instruction_counts()
        say(f"  instructions counted in {time.perf_counter() - started:.1f} s")
    else:
        say("  valgrind not found: no instruction counts (wall time only)")
    say()
    header = (
        f"  {'figure':<30} {'anybatch':>18} {'incumbent':>18} {'floor':>18} "
        f"{'vs incumbent':>14} {'vs floor':>14}"
    )
    say(header)

    def cell(seconds: float, instructions: float | None) -> str:
        text = fmt_time(seconds)
        return text if instructions is None else f"{text}, {fmt_count(instructions)}"

    for name, figure in FIGURES.items():
        w = wall[name]
        c = counts[name] if counts else dict.fromkeys(LIBRARIES)
        ratios = []
        for versus in ("incumbent", "floor"):
            text = f"{w['anybatch'] / w[versus]:.2f}x"
            if counts:
                text += f"/{counts[name]['anybatch'] / counts[name][versus]:.2f}x"
            ratios.append(text)
        say(
            f"  {figure.label:<30} {cell(w['anybatch'], c['anybatch']):>18} "
            f"{cell(w['incumbent'], c['incumbent']):>18} {cell(w['floor'], c['floor']):>18} "
            f"{ratios[0]:>14} {ratios[1]:>14}"
        )
    say("  (ratios: wall/instructions)")
    say()
    say(
        f"cold start: fresh process, import + one {COLD_RECORDS}-record async batch with a "
        f"context, over a bare interpreter ({fmt_time(cold_wall['bare'])}); median of "
        f"{COLD_RUNS} alternating runs"
    )
    for name in ("anybatch", "incumbent", "floor"):
        extra = f", {fmt_count(cold_counts[name])} instructions" if cold_counts else ""
        say(f"  {name:<10} +{fmt_time(cold_wall[name])}{extra}")
    say()

    rows: list[Row] = []
    for target in TARGETS:
        if target.figure == "cold":
            rows += target_rows(target, cold_wall, cold_counts)
        else:
            rows += target_rows(
                target, wall[target.figure], counts[target.figure] if counts else None
            )
    floor_ratio = cold_wall["anybatch"] / cold_wall["floor"]
    measured = fmt_ratio(floor_ratio)
    if cold_counts:
        measured += f", instr {fmt_ratio(cold_counts['anybatch'] / cold_counts['floor'])}"
    rows.append(
        info_row(
            "floor: cold start async, vs floor",
            cold_wall["anybatch"],
            cold_wall["floor"],
            measured,
            note="the 'Powertools' column is the floor: a fresh process importing asyncio "
            "and running floors.sqs_async",
        )
    )
    return rows


# --- the table run_all.py prints -------------------------------------------------------------


def _ratio_in(row: Row) -> float | None:
    """The ratio a row measured: ``0.412x (...)``, or anybatch / the other column."""
    if row.measured.endswith("x") or "x (" in row.measured:
        try:
            return float(row.measured.split("x")[0])
        except ValueError:
            return None
    return row.ratio


def _eff_in(row: Row) -> float | None:
    if not row.measured.startswith("eff "):
        return None
    return float(row.measured.removeprefix("eff ").rstrip("%"))


def print_floor_table(rows: Sequence[Row]) -> None:
    """The targets of the near-the-floor work: the figure before it, now, and the goal."""
    by_name = {row.name: row for row in rows}
    table: list[tuple[str, ...]] = []
    met = judged = 0
    for target in TARGETS:
        cells = []
        verdicts = []
        for measure in ("instr", "wall"):
            row = by_name.get(target.row_name(measure))
            value = None if row is None else _ratio_in(row)
            cells.append("—" if value is None else f"{value:.2f}x")
            if row is not None and row.ok is not None:
                verdicts.append(row.ok)
        result = "not run" if not verdicts else "PASS" if all(verdicts) else "MISS"
        if verdicts:
            judged += 1
            met += all(verdicts)
        measures = " + ".join(target.judged)
        table.append(
            (target.label, target.today, *cells, f"≤ {target.goal:g}x ({measures})", result)
        )
    for item in NO_WORSE:
        row = by_name.get(item.row_name)
        value = None if row is None else _ratio_in(row) if item.kind == "ratio" else _eff_in(row)
        if value is None:
            table.append((item.label, _fmt(item.today, item.kind), "—", "—", "no worse", "not run"))
            continue
        if item.kind == "ratio":
            ok = value <= item.today * RATIO_SLACK
        else:
            ok = value >= item.today - EFF_SLACK_POINTS
        judged += 1
        met += ok
        table.append(
            (
                item.label,
                _fmt(item.today, item.kind),
                "—",
                _fmt(value, item.kind),
                "no worse",
                "PASS" if ok else "MISS",
            )
        )
    header = ("figure", "before", "instructions", "wall", "target", "result")
    widths = [max(len(line[i]) for line in [header, *table]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        right = (cell.rjust(width) for cell, width in zip(rest, widths[1:], strict=True))
        return "  ".join([first.ljust(widths[0]), *right])

    say("NEAR THE FLOOR: anybatch / incumbent or / hand-written floor, per warm invocation, ")
    say("no-op handler, Lambda context unless said; 'before' is the figure the targets were set on")
    say(line(header))
    say("  ".join("-" * w for w in widths))
    for cells in table:
        say(line(cells))
    say(
        f"targets met: {met}/{judged}   (no worse: within {RATIO_SLACK - 1:.0%} on a ratio, "
        f"{EFF_SLACK_POINTS:g} point on a share, wall time's run-to-run noise)"
    )


def _fmt(value: float, kind: str) -> str:
    return f"{value:.2f}x" if kind == "ratio" else f"{value:.1f}%"


if __name__ == "__main__":
    os.environ.pop("LAMBDA_TASK_ROOT", None)
    main("bench_floor: the common case against its floor", run)
