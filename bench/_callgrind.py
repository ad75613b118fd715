"""Instruction counts under valgrind's callgrind: figures that hold on a loaded machine.

Wall time on a shared machine moves with whatever else runs; the number of instructions a
piece of Python executes does not. ``valgrind --tool=callgrind`` counts them (about 50 times
slower than running natively), so these counts are taken on modest numbers of invocations.

How one case is counted, in one process (:func:`count_segments` runs it):

* the process builds the case and warms it up (untimed: the processor's caches, the loop, the
  interpreter's specialised bytecode), then runs two *segments*, of *lo* and *hi* invocations;
* each segment is bracketed by :func:`mark` (``os.getsid(0)``, a system call nothing else here
  makes), and callgrind runs with ``--dump-before=getsid``, so it writes the instructions
  counted since the previous mark into a file of its own at every mark;
* the figure per invocation is ``(I(hi) - I(lo)) / (hi - lo)``: whatever a segment costs
  besides the invocations (the marks, the loop around the calls) cancels out, as does the
  process's start-up, which lies outside every segment.

The garbage collector is off in each segment (after a full collection), as in the wall-time
benchmarks, and ``PYTHONHASHSEED`` is fixed, so a count repeats to within a few instructions.
Whole-process counts (:func:`count_process`, for cold starts) need no marks.

``valgrind`` is looked up on ``PATH``; where it is missing, :func:`available` says so and the
benchmarks print their instruction rows as skipped.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = [
    "available",
    "count_process",
    "count_segment_events",
    "count_segments",
    "estimate",
    "last_level_misses",
    "mark",
    "parallel",
    "segment",
]

#: The C function whose every call makes callgrind dump its counters (see :func:`mark`).
MARKER = "getsid"
VALGRIND = shutil.which("valgrind")
_SUMMARY = re.compile(r"^summary:\s+(\d+)", re.MULTILINE)
_EVENTS = re.compile(r"^events:\s+(.+)$", re.MULTILINE)
_SUMMARY_LINE = re.compile(r"^summary:\s+(.+)$", re.MULTILINE)
_PART = re.compile(r"^part:\s+(\d+)", re.MULTILINE)
#: The weights of the cycle estimate KCachegrind shows for callgrind's counts ("CEst"): 10
#: cycles per first-level miss and per mispredicted branch, 100 per last-level miss.
L1_MISS, LL_MISS, BRANCH_MISS = 10, 100, 10


def available() -> bool:
    return VALGRIND is not None


def estimate(events: Mapping[str, float]) -> float:
    """The cycle estimate of a segment's *events* (``--cache-sim=yes``, and
    ``--branch-sim=yes`` for the branches): instructions plus what their misses cost.

    Wall time follows it more closely than the instructions alone: code that touches more
    functions and objects misses more.
    """
    l1 = events["I1mr"] + events["D1mr"] + events["D1mw"]
    branches = events.get("Bcm", 0) + events.get("Bim", 0)
    return (
        events["Ir"] + L1_MISS * l1 + LL_MISS * last_level_misses(events) + BRANCH_MISS * branches
    )


def last_level_misses(events: Mapping[str, float]) -> float:
    """The last-level misses of a segment's *events* (``--cache-sim=yes``): code, reads, writes."""
    return events["ILmr"] + events["DLmr"] + events["DLmw"]


def mark() -> None:
    """A segment boundary: under ``--dump-before=getsid`` callgrind dumps its counters here."""
    os.getsid(0)


def segment(run: Callable[[int], object], n: int) -> None:
    """Run ``run(n)`` between two marks, with the garbage collector off (after a collection)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        mark()
        run(n)
        mark()
    finally:
        if was_enabled:
            gc.enable()


def _summary(text: str, name: str) -> int:
    """The instructions a callgrind dump counted (its ``summary:`` line)."""
    found = _SUMMARY.search(text)
    if found is None:
        raise RuntimeError(f"{name}: no summary line")
    return int(found.group(1))


def _events(text: str, name: str) -> dict[str, int]:
    """Every event a callgrind dump counted, by name (``Ir``, ``D1mr``, ``DLmr``...)."""
    names, counts = _EVENTS.search(text), _SUMMARY_LINE.search(text)
    if names is None or counts is None:
        raise RuntimeError(f"{name}: no events or summary line")
    events = names.group(1).split()
    values = [int(value) for value in counts.group(1).split()]
    values += [0] * (len(events) - len(values))  # callgrind leaves trailing zeros out
    return dict(zip(events, values, strict=True))


def _environment(env: Mapping[str, str] | None) -> dict[str, str]:
    environment = dict(os.environ if env is None else env)
    environment["PYTHONHASHSEED"] = "0"
    return environment


def _valgrind(
    command: Sequence[str], out: Path, *, marks: bool, options: Sequence[str] = ()
) -> list[str]:
    if VALGRIND is None:
        raise RuntimeError("valgrind is not installed")
    arguments = [
        VALGRIND,
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        f"--log-file={out}.log",
    ]
    if marks:
        arguments.append(f"--dump-before={MARKER}")
    return [*arguments, *options, *command]


def count_process(command: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Instructions of one whole process running *command* (from its first instruction)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            _valgrind(command, out, marks=False),
            env=_environment(env),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return _summary(out.read_text(encoding="utf-8"), out.name)


def count_segments(command: Sequence[str], env: Mapping[str, str] | None = None) -> list[int]:
    """Instructions of each segment that *command* runs with :func:`segment`, in order."""
    return [_summary(text, name) for name, text in _segment_dumps(command, env, ())]


def count_segment_events(
    command: Sequence[str], env: Mapping[str, str] | None = None, options: Sequence[str] = ()
) -> list[dict[str, int]]:
    """Every event of each segment, by name: with *options* such as ``--cache-sim=yes``."""
    return [_events(text, name) for name, text in _segment_dumps(command, env, options)]


def _segment_dumps(
    command: Sequence[str], env: Mapping[str, str] | None, options: Sequence[str]
) -> list[tuple[str, str]]:
    """The dumps of the segments *command* runs, in order: (file name, text).

    Each segment's two marks make two dumps: the first holds what ran before the segment,
    the second the segment itself; so segment *k* (from 0) is dump ``2k + 2``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            _valgrind(command, out, marks=True, options=options),
            env=_environment(env),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        parts: dict[int, tuple[str, str]] = {}
        for file in Path(tmp).glob("callgrind.out.*"):
            if file.suffix == ".log":
                continue
            text = file.read_text(encoding="utf-8")
            part = _PART.search(text)
            if part is None:
                raise RuntimeError(f"{file.name}: no part number")
            parts[int(part.group(1))] = (file.name, text)
    dumps = len(parts)
    if dumps % 2 or sorted(parts) != list(range(1, dumps + 1)):
        raise RuntimeError(
            f"callgrind made {dumps} dumps where marks come in pairs: something else called "
            f"{MARKER}()"
        )
    return [parts[number] for number in range(2, dumps + 1, 2)]


def parallel(jobs: Sequence[Callable[[], object]]) -> list[object]:
    """Run *jobs* (each running valgrind) on every CPU: counts do not depend on the load."""
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda job: job(), jobs))
