"""One contract, every driver: the engine's per-record rules, proven on each way it runs.

The drivers are the inline loop (blocking, no event loop), anyio's worker pool on asyncio and
on trio, the native asyncio pool, and sync handlers in worker threads (under the native
asyncio pool and under anyio on trio). Each rule runs keyed and unkeyed:

* success, failure and ``record_timeout``;
* the deadline before any record starts, and in the middle of the batch;
* a fatal ``BaseException`` stops the batch and propagates;
* a cancellation nobody asked for fails its record only;
* a handler that swallows its cancellation still ends on time;
* work abandoned at its timeout keeps its ordering key: no later record of the key starts.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from anybatch._engine import (
    CANCELLED,
    FAILURE,
    NOT_STARTED,
    SKIPPED_KEY,
    SUCCESS,
    TIMEOUT,
    Schedule,
    run_inline,
)
from anybatch._engine._anyio import run_pool
from anybatch._engine._asyncio import run_pool_asyncio
from anybatch._engine._threads import in_threads
from anybatch._exceptions import RecordTimeoutError

#: (name, runs async handlers, can time a record out)
DRIVERS = {
    "inline": (False, False),
    "anyio-asyncio": (True, True),
    "anyio-trio": (True, True),
    "asyncio": (True, True),
    "threads-asyncio": (False, True),
    "threads-trio": (False, True),
}
ASYNC_DRIVERS = [name for name, (is_async, _) in DRIVERS.items() if is_async]
TIMED_DRIVERS = [name for name, (_, timed) in DRIVERS.items() if timed]
KEYED = [pytest.param(False, id="unkeyed"), pytest.param(True, id="keyed")]


class Fatal(BaseException):
    """Neither an Exception nor a cancellation: it must stop the batch and propagate."""


@dataclass
class Trace:
    """What the handlers saw: who ran, when, and how many ran at once per key."""

    started: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)
    overlaps: list[tuple[int, int]] = field(default_factory=list)
    running: dict[Any, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, index: int, key: Any) -> None:
        with self.lock:
            self.started.append(index)
            if key is not None:
                if key in self.running:
                    self.overlaps.append((self.running[key], index))
                self.running[key] = index

    def end(self, index: int, key: Any) -> None:
        with self.lock:
            self.ended.append(index)
            if key is not None and self.running.get(key) == index:
                del self.running[key]


#: What a record's handler does: "ok", "fail", "sleep", "block" (long: only a timeout or the
#: deadline ends it), "stubborn" (swallows its cancellation, then waits again), "fatal",
#: "foreign" (a cancellation nobody asked for).
Plan = Sequence[str]


def make_handler(
    driver: str, plan: Plan, keys: Sequence[Any], trace: Trace, release: threading.Event
) -> Callable[[int], Any]:
    """The record handler for *driver*, called with the record's index."""
    if DRIVERS[driver][0]:

        async def handle_async(index: int) -> str:
            action, key = plan[index], keys[index]
            trace.start(index, key)
            try:
                if action == "fail":
                    raise ValueError(f"record {index} failed")
                if action == "fatal":
                    raise Fatal()
                if action == "sleep":
                    await anyio.sleep(0.05)
                elif action == "block":
                    await anyio.sleep(30)
                elif action == "stubborn":
                    try:
                        await anyio.sleep(30)
                    except anyio.get_cancelled_exc_class():
                        await anyio.sleep(30)  # swallows its cancellation and waits again
                elif action == "foreign":
                    if driver.endswith("trio"):  # asyncio's, where no asyncio scope asked
                        raise asyncio.CancelledError()
                    victim = asyncio.ensure_future(asyncio.sleep(30))
                    victim.cancel()
                    await victim  # somebody else's cancellation reaches this handler
                else:
                    await anyio.lowlevel.checkpoint()
                return f"done {index}"
            finally:
                trace.end(index, key)

        return handle_async

    def handle_sync(index: int) -> str:
        action, key = plan[index], keys[index]
        trace.start(index, key)
        try:
            if action == "fail":
                raise ValueError(f"record {index} failed")
            if action == "fatal":
                raise Fatal()
            if action == "foreign":
                raise asyncio.CancelledError()  # no loop asked for it
            if action == "sleep":
                time.sleep(0.05)
            elif action in ("block", "stubborn"):
                release.wait(30)  # a thread cannot be interrupted: only abandoned
            return f"done {index}"
        finally:
            trace.end(index, key)

    return handle_sync


@dataclass
class Outcome:
    kinds: list[int]
    values: list[Any]
    seconds: float
    trace: Trace


def drive(
    driver: str,
    plan: Plan,
    *,
    keys: Sequence[Any] | None = None,
    concurrency: int | None = 3,
    record_timeout: float | None = None,
    time_left: float | None = None,
) -> Outcome:
    """Run *plan* on *driver* and return every record's outcome and what the handlers saw."""
    trace, release = Trace(), threading.Event()
    record_keys: Sequence[Any] = keys if keys is not None else [None] * len(plan)
    schedule = Schedule(len(plan), keys)
    handler = make_handler(driver, plan, record_keys, trace, release)
    indices = list(range(len(plan)))
    began = time.monotonic()
    try:
        if driver == "inline":
            deadline = None if time_left is None else time.monotonic() + time_left
            run_inline(schedule, handler, indices, deadline)
        else:

            async def main() -> None:
                func: Callable[[int], Any] = handler
                running = None
                if driver.startswith("threads"):
                    func, running = in_threads(handler, indices)
                pool: Any = (
                    run_pool_asyncio if driver in ("asyncio", "threads-asyncio") else run_pool
                )
                await pool(
                    schedule,
                    func,
                    indices,
                    concurrency=concurrency,
                    record_timeout=record_timeout,
                    time_left=time_left,
                    running=running,
                )

            backend = "trio" if driver.endswith("trio") else "asyncio"
            anyio.run(main, backend=backend)
    finally:
        release.set()  # let abandoned threads end
    seconds = time.monotonic() - began
    kinds, values = schedule.close()
    return Outcome(list(kinds), list(values), seconds, trace)


def keys_for(keyed: bool, n: int) -> list[Any] | None:
    return [("key", index % 2) for index in range(n)] if keyed else None


# -- success, failure, timeout -------------------------------------------------------------


@pytest.mark.parametrize("keyed", KEYED)
@pytest.mark.parametrize("driver", DRIVERS)
def test_each_record_succeeds_or_fails_on_its_own(driver: str, keyed: bool) -> None:
    plan = ["ok", "fail", "sleep", "ok", "fail", "ok"]
    outcome = drive(driver, plan, keys=keys_for(keyed, len(plan)))
    assert outcome.kinds == [SUCCESS, FAILURE, SUCCESS, SUCCESS, FAILURE, SUCCESS]
    assert outcome.values[0] == "done 0"
    assert isinstance(outcome.values[1], ValueError)
    assert sorted(outcome.trace.started) == list(range(len(plan)))
    assert outcome.trace.overlaps == []


@pytest.mark.parametrize("keyed", KEYED)
@pytest.mark.parametrize("driver", TIMED_DRIVERS)
def test_a_record_past_its_timeout_times_out_alone(driver: str, keyed: bool) -> None:
    plan = ["block", "ok", "ok", "ok"]
    outcome = drive(driver, plan, keys=keys_for(keyed, len(plan)), record_timeout=0.2)
    assert outcome.kinds[0] == TIMEOUT
    assert isinstance(outcome.values[0], RecordTimeoutError)
    assert outcome.kinds[1] == SUCCESS
    assert outcome.kinds[3] == SUCCESS
    # Keyed: record 2 shares record 0's key, which was abandoned while it still ran.
    assert outcome.kinds[2] == (SKIPPED_KEY if keyed and driver.startswith("threads") else SUCCESS)
    assert outcome.seconds < 10
    assert outcome.trace.overlaps == []


# -- the deadline ----------------------------------------------------------------------------


@pytest.mark.parametrize("keyed", KEYED)
@pytest.mark.parametrize("driver", DRIVERS)
def test_nothing_starts_when_the_deadline_has_passed(driver: str, keyed: bool) -> None:
    outcome = drive(driver, ["ok", "ok", "ok"], keys=keys_for(keyed, 3), time_left=0.0)
    assert outcome.kinds == [NOT_STARTED] * 3
    assert outcome.trace.started == []


@pytest.mark.parametrize("keyed", KEYED)
@pytest.mark.parametrize("driver", [d for d in DRIVERS if d != "inline"])
def test_the_deadline_cuts_the_batch_short_mid_run(driver: str, keyed: bool) -> None:
    plan = ["ok", "block", "ok", "block", "ok", "ok", "ok", "ok"]
    outcome = drive(driver, plan, keys=keys_for(keyed, len(plan)), concurrency=2, time_left=0.3)
    assert outcome.kinds[0] == SUCCESS
    assert outcome.kinds[1] == CANCELLED
    assert outcome.kinds.count(SUCCESS) + outcome.kinds.count(CANCELLED) + outcome.kinds.count(
        NOT_STARTED
    ) == len(plan)
    assert NOT_STARTED in outcome.kinds
    assert outcome.seconds < 3


def test_inline_starts_nothing_after_the_deadline() -> None:
    outcome = drive("inline", ["sleep"] * 40, time_left=0.3)
    assert outcome.kinds[0] == SUCCESS
    assert outcome.kinds[-1] == NOT_STARTED
    assert set(outcome.kinds) == {SUCCESS, NOT_STARTED}
    assert outcome.seconds < 1.5


# -- what is never a record's failure ----------------------------------------------------------


@pytest.mark.parametrize("keyed", KEYED)
@pytest.mark.parametrize("driver", DRIVERS)
def test_a_fatal_base_exception_stops_the_batch_and_propagates(driver: str, keyed: bool) -> None:
    plan = ["ok", "fatal", "sleep", "sleep", "sleep", "sleep"]
    with pytest.raises(Fatal):
        drive(driver, plan, keys=keys_for(keyed, len(plan)), concurrency=1)


@pytest.mark.parametrize("driver", TIMED_DRIVERS)
def test_a_fatal_base_exception_does_not_wait_for_a_handler_that_will_not_end(
    driver: str,
) -> None:
    # The fatal error stops every record; one that swallows its cancellation (or blocks
    # its thread) is abandoned, as at the deadline: the error propagates in time.
    plan = ["block" if driver.startswith("threads") else "stubborn", "fatal"]
    started = time.monotonic()
    with pytest.raises(Fatal):
        drive(driver, plan, concurrency=2)
    assert time.monotonic() - started < 5  # the stubborn handler's second wait is 30 s


@pytest.mark.parametrize("keyed", KEYED)
@pytest.mark.parametrize("driver", DRIVERS)
def test_a_cancellation_nobody_asked_for_fails_its_record_only(driver: str, keyed: bool) -> None:
    plan = ["ok", "foreign", "ok", "ok"]
    outcome = drive(driver, plan, keys=keys_for(keyed, len(plan)))
    assert outcome.kinds == [SUCCESS, FAILURE, SUCCESS, SUCCESS]
    assert isinstance(outcome.values[1], asyncio.CancelledError)


# -- hostile handlers: nothing outlives its time -------------------------------------------------


@pytest.mark.parametrize("keyed", KEYED)
@pytest.mark.parametrize("driver", TIMED_DRIVERS)
def test_a_handler_that_swallows_its_timeout_still_times_out(driver: str, keyed: bool) -> None:
    plan = ["ok", "stubborn", "ok", "ok", "ok"]
    outcome = drive(driver, plan, keys=keys_for(keyed, len(plan)), record_timeout=0.2)
    assert outcome.kinds[1] == TIMEOUT
    assert outcome.kinds[0] == SUCCESS
    assert outcome.kinds[2] == SUCCESS
    assert outcome.seconds < 5  # the handler's second wait is 30 s


@pytest.mark.parametrize("keyed", KEYED)
@pytest.mark.parametrize("driver", TIMED_DRIVERS)
def test_a_handler_that_swallows_the_deadline_still_ends_on_time(driver: str, keyed: bool) -> None:
    plan = ["ok", "stubborn", "ok", "block"]
    outcome = drive(driver, plan, keys=keys_for(keyed, len(plan)), time_left=0.3)
    assert outcome.kinds[0] == SUCCESS
    assert outcome.kinds[1] == CANCELLED
    assert outcome.seconds < 5


@pytest.mark.parametrize("concurrency", [1, 3])
@pytest.mark.parametrize("driver", TIMED_DRIVERS)
def test_abandoned_work_keeps_its_key_until_the_batch_ends(driver: str, concurrency: int) -> None:
    # Record 0 outlives its timeout: a thread cannot be stopped, a stubborn task will not
    # end. Record 2 shares its key and must not start beside it; record 1 has its own key.
    plan = ["block" if driver.startswith("threads") else "stubborn", "ok", "ok", "ok"]
    keys = ["a", None, "a", "b"]
    outcome = drive(driver, plan, keys=keys, concurrency=concurrency, record_timeout=0.1)
    assert outcome.kinds[0] == TIMEOUT
    assert outcome.kinds[1] == SUCCESS
    assert outcome.kinds[3] == SUCCESS
    assert outcome.trace.overlaps == []
    if outcome.kinds[2] != SUCCESS:  # anyio ends a stubborn task: its key is free again
        assert outcome.kinds[2] == SKIPPED_KEY
        assert 2 not in outcome.trace.started
    if driver in ("asyncio", "threads-asyncio", "threads-trio"):
        assert outcome.kinds[2] == SKIPPED_KEY
