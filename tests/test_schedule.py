"""The engine's decisions, tested without an event loop."""

from __future__ import annotations

import contextvars
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anybatch._engine import (
    CANCELLED,
    FAILURE,
    NOT_STARTED,
    SKIPPED_KEY,
    SKIPPED_STOP,
    SUCCESS,
    WAIT,
    Schedule,
    run_each_inline,
    run_inline,
)


def drain(schedule: Schedule, fail: set[int] = frozenset()) -> list[int]:  # type: ignore[assignment]
    """Run *schedule* sequentially; return the start order."""
    started: list[int] = []
    while (index := schedule.next()) is not None:
        assert index != WAIT
        started.append(index)
        schedule.finish(index, FAILURE if index in fail else SUCCESS, None)
    return started


def test_unordered_records_start_in_arrival_order() -> None:
    assert drain(Schedule(5)) == [0, 1, 2, 3, 4]


def test_every_record_gets_exactly_one_outcome() -> None:
    schedule = Schedule(3)
    drain(schedule, fail={1})
    kinds, _ = schedule.close()
    assert kinds == [SUCCESS, FAILURE, SUCCESS]


def test_same_key_waits_while_one_is_in_flight() -> None:
    schedule = Schedule(3, ["a", "a", "b"])
    assert schedule.next() == 0
    assert schedule.next() == 2  # "b" may start, the second "a" may not
    assert schedule.next() == WAIT
    assert schedule.finish(0, SUCCESS, None) is True
    assert schedule.next() == 1


def test_earliest_startable_record_starts_first() -> None:
    schedule = Schedule(4, ["a", "b", "a", "b"])
    assert [schedule.next(), schedule.next()] == [0, 1]
    schedule.finish(1, SUCCESS, None)
    schedule.finish(0, SUCCESS, None)
    assert schedule.next() == 2


def test_records_without_key_never_wait() -> None:
    schedule = Schedule(3, ["a", None, None])
    assert [schedule.next(), schedule.next(), schedule.next()] == [0, 1, 2]


def test_skip_key_on_failure_skips_later_records_of_its_key_only() -> None:
    schedule = Schedule(5, ["a", "b", "a", "b", "a"], skip_key_on_failure=True)
    assert drain(schedule, fail={0}) == [0, 1, 3]
    kinds, _ = schedule.close()
    assert kinds == [FAILURE, SUCCESS, SKIPPED_KEY, SUCCESS, SKIPPED_KEY]


def test_failure_of_an_unkeyed_record_skips_nothing() -> None:
    schedule = Schedule(3, [None, None, "a"], skip_key_on_failure=True)
    drain(schedule, fail={0})
    assert schedule.close()[0] == [FAILURE, SUCCESS, SUCCESS]


def test_by_default_every_record_of_a_failed_key_still_runs_in_order() -> None:
    schedule = Schedule(3, ["a", "a", "a"])
    assert drain(schedule, fail={0}) == [0, 1, 2]
    assert schedule.close()[0] == [FAILURE, SUCCESS, SUCCESS]


def test_stop_on_failure_starts_nothing_after_a_failure() -> None:
    schedule = Schedule(4, stop_on_failure=True)
    assert drain(schedule, fail={1}) == [0, 1]
    assert schedule.close()[0] == [SUCCESS, FAILURE, SKIPPED_STOP, SKIPPED_STOP]


def test_records_in_flight_at_a_stop_keep_their_own_outcome() -> None:
    schedule = Schedule(3, stop_on_failure=True)
    first, second = schedule.next(), schedule.next()
    assert (first, second) == (0, 1)
    schedule.finish(0, FAILURE, None)
    assert schedule.next() is None
    schedule.finish(1, SUCCESS, None)
    assert schedule.close()[0] == [FAILURE, SUCCESS, SKIPPED_STOP]


def test_deadline_marks_running_cancelled_and_pending_not_started() -> None:
    schedule = Schedule(3)
    schedule.next()
    schedule.stop(NOT_STARTED)
    assert schedule.next() is None
    assert schedule.close()[0] == [CANCELLED, NOT_STARTED, NOT_STARTED]


def test_a_deadline_after_a_stop_keeps_the_stop_reason() -> None:
    schedule = Schedule(3, stop_on_failure=True)
    schedule.finish(schedule.next() or 0, FAILURE, None)
    schedule.stop(NOT_STARTED)
    assert schedule.close()[0] == [FAILURE, SKIPPED_STOP, SKIPPED_STOP]


def test_run_inline_isolates_exceptions() -> None:
    schedule = Schedule(3)

    def call(index: int) -> int:
        if index == 1:
            raise ValueError("boom")
        return index * 10

    run_inline(schedule, call, range(3))
    kinds, values = schedule.close()
    assert kinds == [SUCCESS, FAILURE, SUCCESS]
    assert values[0] == 0
    assert values[2] == 20
    assert isinstance(values[1], ValueError)


def test_run_inline_lets_base_exceptions_through() -> None:
    def call(index: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_inline(Schedule(2), call, range(2))


def test_run_inline_starts_nothing_after_the_deadline() -> None:
    now = [0.0]
    schedule = Schedule(4)

    def call(index: int) -> None:
        now[0] += 1.0  # each record takes one second on the fake clock

    run_inline(schedule, call, range(4), deadline=2.0, clock=lambda: now[0])
    assert schedule.close()[0] == [SUCCESS, SUCCESS, NOT_STARTED, NOT_STARTED]


# --- properties: a random executor drives the schedule -------------------------------------


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[str | None], set[int], int, bool, int, bool]:
    n = draw(st.integers(0, 40))
    keys = draw(st.lists(st.sampled_from(["a", "b", "c", "d", None]), min_size=n, max_size=n))
    fail = draw(st.sets(st.integers(0, max(n - 1, 0)), max_size=n))
    concurrency = draw(st.integers(1, 6))
    stop = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    skip = draw(st.booleans())
    return keys, fail, concurrency, stop, seed, skip


class CountingSchedule(Schedule):
    """A schedule that counts the records in flight: what this test checks of the engine."""

    __slots__ = ("in_flight", "max_in_flight")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = self.max_in_flight = 0

    def next(self) -> int | None:
        index = super().next()
        if index is not None and index != WAIT:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return index

    def finish(self, index: int, kind: int, value: Any, held: bool = False) -> bool:
        self.in_flight -= 1
        return super().finish(index, kind, value, held)


@settings(max_examples=300, deadline=None)
@given(batches())
def test_random_executions_keep_every_ordering_rule(
    batch: tuple[list[str | None], set[int], int, bool, int, bool],
) -> None:
    keys, fail, concurrency, stop, seed, skip = batch
    rng = random.Random(seed)
    schedule = CountingSchedule(len(keys), keys, stop_on_failure=stop, skip_key_on_failure=skip)
    running: list[int] = []
    started: list[int] = []
    while True:
        # Start as many as the limit allows, then finish a random one.
        while len(running) < concurrency:
            index = schedule.next()
            if index is None or index == WAIT:
                break
            key = keys[index]
            assert key is None or all(keys[r] != key for r in running), "two of a key in flight"
            running.append(index)
            started.append(index)
        if not running:
            assert schedule.next() is None
            break
        done = running.pop(rng.randrange(len(running)))
        schedule.finish(done, FAILURE if done in fail else SUCCESS, None)
    kinds, _ = schedule.close()

    # Per key, records start in arrival order.
    for key in set(keys) - {None}:
        of_key = [i for i in started if keys[i] == key]
        assert of_key == sorted(of_key)
    # Every record ends once; success exactly for started records that did not fail.
    assert len(kinds) == len(keys)
    for index, kind in enumerate(kinds):
        if index in started:
            assert kind == (FAILURE if index in fail else SUCCESS)
        else:
            assert kind in (SKIPPED_KEY, SKIPPED_STOP)
    # A record is skipped for its key only after a failure of that key before it.
    for index, kind in enumerate(kinds):
        if kind == SKIPPED_KEY:
            assert any(keys[j] == keys[index] and kinds[j] == FAILURE for j in range(index))
    if not stop:
        assert SKIPPED_STOP not in kinds
    if not skip:
        assert SKIPPED_KEY not in kinds
    if not stop and not skip:
        assert sorted(started) == list(range(len(keys)))  # every record runs
    assert schedule.max_in_flight <= concurrency


def test_run_each_inline_runs_every_record_in_order() -> None:
    schedule = Schedule(3)
    run_each_inline(schedule, lambda arg: 10 / arg, [1, 0, 2])
    kinds, values = schedule.close()
    assert kinds == [SUCCESS, FAILURE, SUCCESS]
    assert values[0] == 10
    assert values[2] == 5
    assert isinstance(values[1], ZeroDivisionError)


_SEEN_BY_RECORDS: contextvars.ContextVar[str] = contextvars.ContextVar("seen_by_records")


@pytest.mark.parametrize("way", ["each", "each timed", "keyed"])
def test_inline_records_that_change_the_context_leave_the_next_one_its_own(way: str) -> None:
    # Records 1 and 3 set a variable; every record still starts from the caller's context,
    # the records after a change run too, and the caller's context is left as it was.
    keys = ["a", "b", "a", "c", "b"] if way == "keyed" else None
    schedule = Schedule(5, keys, skip_key_on_failure=way == "keyed")
    if way == "each timed":
        schedule.time_records()
    seen: list[str] = []

    def record(index: int) -> int:
        seen.append(_SEEN_BY_RECORDS.get())
        if index in (1, 3):
            _SEEN_BY_RECORDS.set(f"set by {index}")
        if index == 3:
            raise ValueError("fails after setting it")
        return index

    token = _SEEN_BY_RECORDS.set("the caller's")
    try:
        run_inline(schedule, record, range(5))
        assert _SEEN_BY_RECORDS.get() == "the caller's"
    finally:
        _SEEN_BY_RECORDS.reset(token)
    kinds, values = schedule.close()
    assert seen == ["the caller's"] * 5
    assert kinds == [SUCCESS, SUCCESS, SUCCESS, FAILURE, SUCCESS]
    assert values[:3] == [0, 1, 2]
    assert values[4] == 4
    if way == "each timed":
        assert schedule.durations is not None
        assert all(duration is not None for duration in schedule.durations)


def test_the_record_running_inline_is_known_in_every_loop() -> None:
    # What current_record() reads: the plain loop notes nothing per record, the timed and
    # keyed ones do; each says which record runs, and none once the batch is over.
    for way in ("each", "each timed", "keyed"):
        schedule = Schedule(4, ["a", "b", "a", "c"] if way == "keyed" else None)
        if way == "each timed":
            schedule.time_records()
        seen: list[int] = []

        def record(index: int, schedule: Schedule = schedule, seen: list[int] = seen) -> None:
            seen.append(schedule.running())
            if index == 1:
                raise ValueError("a failure does not move the count")

        assert schedule.running() == -1
        run_inline(schedule, record, range(4))
        assert seen == [0, 1, 2, 3], way
        kinds, _ = schedule.close()
        assert kinds == [SUCCESS, FAILURE, SUCCESS, SUCCESS]
        # Over: the plain loop's count finds none; the others leave the last one noted.
        assert schedule.running() == (-1 if way == "each" else 3), way


def test_run_each_inline_refuses_a_schedule_with_rules() -> None:
    with pytest.raises(ValueError, match="without keys or stop policy"):
        run_each_inline(Schedule(2, stop_on_failure=True), lambda arg: arg, [1, 2])
