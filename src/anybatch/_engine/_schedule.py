"""The engine's decisions, without I/O: what starts next, what is skipped, how each record ended.

:class:`Schedule` is a small state machine driven by thin drivers (``_inline``, ``_anyio``,
``_asyncio``; see the package's docstring for their contract). A driver asks
:meth:`Schedule.next` for the next record, runs it, and tells :meth:`Schedule.finish` how it
ended; the rules live here once. An unconstrained schedule (no keys, no stop policy) has a
fast path in its interface: :meth:`Schedule.claim_all` hands the driver every record and the
outcome arrays to fill in record order, instead of two calls per record.

Rules kept here:

* records with the same ordering key start one at a time, in arrival order; among the records
  that may start, the earliest in the batch starts first (so ``concurrency=1`` is exactly the
  sequential order);
* with ``skip_key_on_failure``, after a failure in an ordered key, the key's later records are
  not started (``SKIPPED_KEY``); with ``stop_on_failure`` no record starts after the first
  failure (``SKIPPED_STOP``);
* at the deadline no record starts (``NOT_STARTED``); records in flight then end as
  ``CANCELLED``;
* every record ends with exactly one outcome.
"""

from __future__ import annotations

import heapq
import sys
from collections import deque
from collections.abc import Callable, Generator, Hashable, Sequence
from typing import Any, Final, cast

__all__ = [
    "CANCELLED",
    "FAILURE",
    "NOT_STARTED",
    "RUNNING",
    "SKIPPED_KEY",
    "SKIPPED_STOP",
    "SUCCESS",
    "TIMEOUT",
    "WAIT",
    "OnTasks",
    "Resolved",
    "Schedule",
    "is_asyncio_cancellation",
]

# Outcome codes (plain ints: they are written once per record on the hot path).
SUCCESS: Final = 0
FAILURE: Final = 1  # the handler raised an Exception
TIMEOUT: Final = 2  # the handler ran longer than record_timeout
CANCELLED: Final = 3  # in flight at the deadline: cancelled or abandoned
NOT_STARTED: Final = 4  # not started before the deadline
SKIPPED_STOP: Final = 5  # not started: stop_on_failure after an earlier failure
SKIPPED_KEY: Final = 6  # not started: an earlier record with the same key failed
_PENDING: Final = -1
RUNNING: Final = -2  # started, no outcome yet

#: :meth:`Schedule.next` result: nothing may start now, but a record in flight may unblock one.
WAIT: Final = -1
#: ``Schedule.current`` while the inline driver's plain loop runs the records in index order:
#: it notes nothing per record, and :meth:`Schedule.running` finds the one running.
IN_ORDER: Final = -2


def is_asyncio_cancellation(exc: BaseException) -> bool:
    """Whether *exc* is asyncio's ``CancelledError`` (read without importing asyncio).

    Raised by a handler where no asyncio scope asked for it (inline, or in a thread under
    trio), it is that record's failure, as a foreign cancellation is on asyncio.
    """
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(exc, asyncio.CancelledError)


class Resolved(tuple[Any]):
    """What an async driver's *func* may return instead of an awaitable: ``(value,)``, known.

    A handler that ended without waiting (see ``anybatch._context``) needs no ``await``; the
    drivers take ``step[0]`` directly. A tuple, made without a Python frame: one is made per
    record.
    """

    __slots__ = ()

    def __await__(self) -> Generator[Any, Any, Any]:
        yield from ()  # a generator that never suspends
        return self[0]


class OnTasks(tuple[Any, ...]):
    """Async records run directly in their worker task's context, while they leave it be.

    ``(enter, isolate, starts)``. Each worker of the native asyncio driver calls *enter* as
    it starts, in its own context: *enter* notes there a box for the record it runs, and
    returns it (a list whose item 0 the driver sets to the record's index, -1: none); the
    driver then keeps a copy of its context. Before each record the driver checks that its
    worker's context still equals the copy (in O(1): copies share their mapping until one is
    changed). While it does, the record runs directly in it; once a record of a worker has
    changed it, that worker's later records each run through *isolate* (by index), in their
    own copy. With *starts*, each record's start is noted. A plain tuple subclass, made with
    ``tuple.__new__``: a ``NamedTuple`` class costs a cold start about 150 µs to create.
    """

    __slots__ = ()

    @property
    def enter(self) -> Callable[[], list[Any]]:
        return cast("Callable[[], list[Any]]", self[0])

    @property
    def isolate(self) -> Callable[[int], Any]:
        return cast("Callable[[int], Any]", self[1])

    @property
    def starts(self) -> list[float] | None:
        return cast("list[float] | None", self[2])


class Schedule:
    """Decide which record starts next and collect how each one ended.

    *keys*, when given, holds one ordering key per record (``None``: that record is not
    ordered). Records are identified by their index.
    """

    __slots__ = (
        "_cursor",
        "_key_of",
        "_queues",
        "_ready",
        "_remaining",
        "_searched",
        "_stopped",
        "current",
        "durations",
        "ends",
        "kinds",
        "n",
        "skip_key_on_failure",
        "stop_on_failure",
        "values",
    )

    def __init__(
        self,
        n: int,
        keys: Sequence[Hashable | None] | None = None,
        *,
        stop_on_failure: bool = False,
        skip_key_on_failure: bool = False,
    ) -> None:
        self.n = n
        self.stop_on_failure = stop_on_failure
        self.skip_key_on_failure = skip_key_on_failure
        #: Outcome code of each record (``_PENDING`` / ``RUNNING`` until it has one).
        self.kinds: list[int] = [_PENDING] * n
        #: The handler's result (success) or the exception (any other outcome).
        self.values: list[Any] = [None] * n
        #: With :meth:`time_records`: each record's handler time and end (``clock`` seconds).
        self.durations: list[float | None] | None = None
        self.ends: list[float | None] | None = None
        self._stopped: int | None = None
        #: The record the inline driver runs now (-1: none; IN_ORDER: see :meth:`running`).
        self.current = -1
        self._searched = 0  # running(): every record before this one has its outcome
        self._cursor = 0
        self._remaining = n
        self._key_of: list[int] | None = None
        if keys is not None:  # the queues exist only with keys: nothing else reads them
            self._build_queues(keys)

    def _build_queues(self, keys: Sequence[Hashable | None]) -> None:
        ids: dict[Hashable, int] = {}
        key_of: list[int] = []
        queues: dict[int, deque[int]] = {}
        self._queues = queues
        self._ready: list[tuple[int, int]] = []
        for index, key in enumerate(keys):
            # A record without a key gets a key of its own: it never waits for anything.
            kid = -1 - index if key is None else ids.setdefault(key, len(ids))
            key_of.append(kid)
            queue = queues.get(kid)
            if queue is None:
                queues[kid] = deque((index,))
                self._ready.append((index, kid))
            else:
                queue.append(index)
        self._key_of = key_of  # _ready is sorted already: it was filled in index order

    def next(self) -> int | None:
        """Return the index of the record to start now, :data:`WAIT`, or ``None`` when none will.

        ``WAIT`` means records are left whose keys are in flight: ask again after a
        :meth:`finish`.
        """
        if self._stopped is not None:
            return None
        if self._key_of is None:
            index = self._cursor
            if index >= self.n:
                return None
            self._cursor = index + 1
        elif self._ready:
            index, kid = heapq.heappop(self._ready)
            self._queues[kid].popleft()
        elif self._remaining:
            return WAIT  # every key left has a record in flight
        else:
            return None
        self._remaining -= 1
        self.kinds[index] = RUNNING
        return index

    def finish(self, index: int, kind: int, value: Any, held: bool = False) -> bool:
        """Record how *index* ended. Return ``True`` when a waiting record may now start.

        *held*: the record has its outcome but its work still runs (a thread or task the
        driver abandoned after its timeout). Its key stays held for good: no later record of
        that key may start beside it, so they end ``SKIPPED_KEY`` and are retried in order.
        """
        self.kinds[index] = kind
        self.values[index] = value
        if kind != SUCCESS and self.stop_on_failure:
            # Nothing starts any more; the rest of the batch, this key's records included, is
            # reported as stopped (as the incumbent's FIFO processor reports it).
            if self._stopped is None:
                self._stopped = SKIPPED_STOP
            return False
        key_of = self._key_of
        if key_of is None:
            return False
        kid = key_of[index]
        queue = self._queues[kid]
        if not queue:
            return False
        if kid >= 0 and (held or (kind != SUCCESS and self.skip_key_on_failure)):
            for later in queue:
                self.kinds[later] = SKIPPED_KEY
            self._remaining -= len(queue)
            queue.clear()
            return False
        heapq.heappush(self._ready, (queue[0], kid))
        return True

    def time_records(self, *, ends: bool = True) -> None:
        """Have the drivers note how long each record's handler ran.

        With *ends*, they also note when it ended (what a span needs).
        """
        durations: list[float | None] = [None] * self.n
        self.durations = durations
        self.ends = list(durations) if ends else None

    def running(self) -> int:
        """The record the inline driver runs now, ``-1`` when none: what current_record() reads.

        Its plain loop runs the records in index order and notes none of them (a write per
        record costs it about 2% of a 10-record batch): the one running is then the first
        without an outcome. The search starts where the last one ended (the records before
        it had theirs, and keep them), so a call per record costs a step or two.
        """
        index = self.current
        if index != IN_ORDER:
            return index
        try:
            index = self.kinds.index(_PENDING, self._searched)
        except ValueError:  # every record has its outcome
            return -1
        self._searched = index
        return index

    @property
    def pending(self) -> int:
        """How many records have not started yet and still may."""
        return self._remaining

    @property
    def unconstrained(self) -> bool:
        """Whether nothing can hold a record back: no ordering keys, no stop policy."""
        return self._key_of is None and not self.stop_on_failure and self._cursor == 0

    def claim_all(self) -> tuple[list[int], list[Any]]:
        """Hand every record of an unconstrained schedule to the driver: the fast path.

        Nothing but the deadline can hold back or reorder such a schedule, so the driver
        starts records in index order by itself and writes each outcome straight into the
        returned ``(kinds, values)``: ``RUNNING`` when it starts one, its outcome code and
        value when it ends. At the deadline it calls :meth:`stop` and starts no more; the
        records it never reached stay pending, and :meth:`close` settles them.
        """
        if self._key_of is not None or self.stop_on_failure or self._cursor:
            raise ValueError("claim_all() needs a schedule without keys or stop policy")
        self._cursor = self.n
        self._remaining = 0
        return self.kinds, self.values

    def stop(self, why: int = NOT_STARTED) -> None:
        """Start no more records (the deadline has come, or the caller gave up)."""
        if self._stopped is None:
            self._stopped = why

    def close(self) -> tuple[list[int], list[Any]]:
        """Give every record without an outcome its final one and return ``(kinds, values)``.

        Records still running were cancelled or abandoned at the deadline; records never
        started were stopped by the deadline or a stop policy.
        """
        not_started = NOT_STARTED if self._stopped is None else self._stopped
        kinds = self.kinds
        # The usual case: every record succeeded (identity checks), or ran to its end.
        if kinds.count(SUCCESS) == len(kinds) or (RUNNING not in kinds and _PENDING not in kinds):
            return kinds, self.values
        for index, kind in enumerate(kinds):
            if kind == RUNNING:
                kinds[index] = CANCELLED
            elif kind == _PENDING:
                kinds[index] = not_started
        return kinds, self.values
