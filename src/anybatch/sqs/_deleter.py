"""The driver of the SQS calls: a bounded pool of workers, retries, and the deadline.

The decisions (which entries, which calls, what to retry, how long to wait) are ``_plan``'s;
the I/O is behind :class:`SQSBatchApi`, whose aiobotocore adapter lives in ``_client``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import anyio

from ._plan import Action, Call, CallState, Entry, Problem, QueueRef, SQSActionFailure

if TYPE_CHECKING:
    from ._plan import RetryPolicy

__all__ = ["SQSBatchApi", "SQSCallError", "Settlement", "perform"]


class SQSCallError(Exception):
    """A batch call failed as a whole; :attr:`problem` says why and whether to retry."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(f"{problem.code}: {problem.message}")
        self.problem = problem


class SQSBatchApi(Protocol):
    """The I/O the SQS actions need: one batch call to one queue."""

    async def send(
        self, action: Action, queue: QueueRef, entries: list[dict[str, Any]]
    ) -> Mapping[str, Any]:
        """Make the call; return SQS's response (``Successful``, ``Failed``).

        Raise :class:`SQSCallError` when the call fails as a whole.
        """
        ...


class Settlement(NamedTuple):
    """What the calls did: the entries SQS confirmed, and the failures."""

    done: tuple[Entry, ...]
    failures: tuple[SQSActionFailure, ...]
    api_calls: int


_DEADLINE = Problem(
    "DeadlineExceeded", "the invocation's deadline came before SQS confirmed the entry", False
)


async def perform(
    api: SQSBatchApi,
    calls: Sequence[Call],
    policy: RetryPolicy,
    *,
    max_concurrent_calls: int,
    time_left: float | None = None,
    rand: Callable[[], float] = random.random,
) -> Settlement:
    """Make *calls* with at most *max_concurrent_calls* in flight, retrying per *policy*.

    With *time_left* (seconds), no retry waits past it and calls still in flight then are
    cancelled: their entries end as ``DeadlineExceeded`` failures.
    """
    states = [CallState(call, policy) for call in calls]
    deadline = None if time_left is None else anyio.current_time() + time_left
    if deadline is None:  # no cancel scope to pay for: the worker's settles have no deadline
        await _every(api, states, max_concurrent_calls, None, rand)
    else:
        with anyio.CancelScope(deadline=deadline):
            await _every(api, states, max_concurrent_calls, deadline, rand)
    done: list[Entry] = []
    failures: list[SQSActionFailure] = []
    for state in states:
        state.give_up(_DEADLINE)  # what is still pending was cut off by the deadline
        done.extend(state.done)
        failures.extend(state.failures)
    return Settlement(tuple(done), tuple(failures), sum(state.attempts for state in states))


async def _every(
    api: SQSBatchApi,
    states: list[CallState],
    max_concurrent_calls: int,
    deadline: float | None,
    rand: Callable[[], float],
) -> None:
    """Run every call to its end (or the deadline's cancellation)."""
    if len(states) == 1 or max_concurrent_calls == 1:  # one at a time: no tasks needed
        await _worker(api, iter(states), deadline, rand)
    else:
        queue = iter(states)
        async with anyio.create_task_group() as group:
            for _ in range(min(max_concurrent_calls, len(states))):
                group.start_soon(_worker, api, queue, deadline, rand)


async def _worker(
    api: SQSBatchApi,
    queue: Iterator[CallState],
    deadline: float | None,
    rand: Callable[[], float],
) -> None:
    for state in queue:
        await _run(api, state, deadline, rand)


async def _run(
    api: SQSBatchApi, state: CallState, deadline: float | None, rand: Callable[[], float]
) -> None:
    """One call through its attempts, until nothing is left to send (or the deadline)."""
    call = state.call
    while True:
        try:
            response = await api.send(call.action, call.queue, state.request())
            state.received(response)
        except SQSCallError as exc:
            state.failed(exc.problem)
        except Exception as exc:  # unexpected (a malformed answer...): report, don't crash
            state.failed(Problem(type(exc).__name__, str(exc), False))
        delay = state.retry_delay(rand())
        if delay is None:
            return
        if deadline is not None and anyio.current_time() + delay >= deadline:
            state.give_up(_DEADLINE)
            return
        await anyio.sleep(delay)
