"""Sync handlers under the async drivers: each call in a worker thread, abandoned on cancel."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = ["ThreadAwaitable", "in_threads"]


class ThreadAwaitable:
    """An awaitable a sync handler returned in a worker thread, handed back wrapped.

    trio refuses a thread's coroutine result with a ``TypeError``, which would fail every
    record; wrapped, it reaches the run layer, which reports the handler instead.
    """

    __slots__ = ("awaitable",)

    def __init__(self, awaitable: object) -> None:
        self.awaitable = awaitable


def in_threads(
    func: Callable[[Any], Any], inputs: Sequence[Any]
) -> tuple[Callable[[int], Awaitable[Any]], set[int]]:
    """Run ``func(inputs[index])`` in worker threads; a call is abandoned when it is cancelled.

    Returns the awaitable call, taking a record's index, and the set of the indices whose
    thread has not ended: a thread abandoned at its timeout runs on, and the drivers keep
    that record's ordering key held until the batch ends.

    The engine's worker pool already bounds how many calls are awaited at once. The threads
    get a limiter without a bound of their own: trio keeps a limiter's token until an
    abandoned thread really ends, so a bounded one would let a hung handler hold its slot and
    every later record time out without ever running.
    """
    from anyio import CapacityLimiter, to_thread

    limiter = CapacityLimiter(math.inf)
    running: set[int] = set()

    def guarded(index: int) -> Any:
        try:
            result = func(inputs[index])
        finally:
            running.discard(index)
        return ThreadAwaitable(result) if hasattr(result, "__await__") else result

    def in_thread(index: int) -> Awaitable[Any]:
        running.add(index)
        return to_thread.run_sync(guarded, index, abandon_on_cancel=True, limiter=limiter)

    return in_thread, running
