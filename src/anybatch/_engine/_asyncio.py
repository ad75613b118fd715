"""The asyncio driver of :class:`~anybatch._schedule.Schedule`: native tasks, started lazily.

The same rules as the anyio pool in ``_engine`` (bounded, ordered, per-record timeout,
deadline, failure isolation, outer cancellation), for the loop Lambda functions run on, at a
fraction of the fixed cost per invocation. Measured here, anyio's task group costs about 8 µs
and each worker it spawns about 13 µs, where a native task costs about 4 µs; and importing
anyio's asyncio backend costs a cold start about 30 ms. So on asyncio:

* workers are plain asyncio tasks, and only as many as the batch can use: one starts the
  batch, and more start only when a handler really suspends (a ``call_soon`` callback
  scheduled before the await runs only once the running task yields), then as many as the
  records left and the limit allow, at once. Handlers that never wait run one after another
  in one task; handlers that do wait get up to ``concurrency`` workers in the next loop
  turn, and wait together;
* on Python 3.12+ a worker task starts eagerly (``eager_start``): it runs its records at
  once, inside its making, until a handler first waits. A batch whose handlers never wait
  then ends without a loop turn of its own. Only the pool's workers start so: the tasks a
  handler makes keep asyncio's order, and a task factory set on the loop, or a loop that
  overrides ``create_task``, makes the workers as it would any task;
* the deadline and ``record_timeout`` are loop timers that cancel the tasks concerned; the
  engine knows its own cancellations from any other, so a ``CancelledError`` that no timer or
  caller asked for fails only its record;
* asyncio delivers a cancellation once: a handler that catches it and awaits again would keep
  the invocation past its deadline. A task that has not ended :data:`ABANDON_AFTER` seconds
  after the engine cancelled it is abandoned, as a worker thread is: its record keeps the
  outcome it was cancelled for (and its ordering key stays held), the task runs on unheard,
  and a new worker takes its slot.

Nothing here imports anyio.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Container, Sequence
from contextvars import copy_context
from time import monotonic
from typing import TYPE_CHECKING, Any

from .._exceptions import RecordTimeoutError
from ._schedule import (
    FAILURE,
    NOT_STARTED,
    RUNNING,
    SUCCESS,
    TIMEOUT,
    WAIT,
    Resolved,
    Schedule,
)

if TYPE_CHECKING:
    from ._schedule import OnTasks

__all__ = ["ABANDON_AFTER", "run_pool_asyncio"]

#: Seconds a handler the engine cancelled (its timeout, the deadline, the caller) gets to end
#: before its task is abandoned. Enough for cleanup that awaits (closing a connection), short
#: beside the deadline's margin.
ABANDON_AFTER = 0.1

_log = logging.getLogger("anybatch.engine")

if sys.version_info >= (3, 11):

    def _forget_cancellation(task: asyncio.Task[Any]) -> None:
        """Take back a cancellation request that was handled (asyncio counts them)."""
        if task.cancelling():
            task.uncancel()

else:  # pragma: no cover - Python 3.10 keeps no count of cancellation requests

    def _forget_cancellation(task: asyncio.Task[Any]) -> None:
        """Nothing to take back: Python 3.10 keeps no count."""


_EAGER = sys.version_info >= (3, 12)
#: Whether a loop type makes its tasks as asyncio's own loops (and uvloop's) do, by type: a
#: loop that overrides create_task (to instrument its tasks, say) keeps making the workers.
_PLAIN_TASKS: dict[type[Any], bool] = {}


def _plain_tasks(loop: asyncio.AbstractEventLoop) -> bool:
    kind = type(loop)
    plain = _PLAIN_TASKS.get(kind)
    if plain is None:
        method = getattr(kind, "create_task", None)
        plain = _PLAIN_TASKS[kind] = method is asyncio.BaseEventLoop.create_task or (
            getattr(method, "__module__", None) == "uvloop.loop"  # uvloop's own, compiled
            and getattr(method, "__qualname__", None) == "Loop.create_task"
        )
    return plain


def _ended(arg: Any) -> Awaitable[Any]:  # pragma: no cover - nothing calls it
    """What a pool calls once it has ended: nothing may (see run_pool_asyncio)."""
    raise RuntimeError("the worker pool has ended")


class _Pool:
    """One batch's workers on asyncio: the state :func:`run_pool_asyncio` and its workers share.

    One slotted object a batch, where closures cost every batch about 45 cells, 13 functions
    and their tuples, which the batches in flight of a busy process (the SQS worker) keep
    alive by the dozen: the young collections they bring on cost it more than their calls.
    """

    __slots__ = (
        "args", "counted_out", "cursor", "deadline", "done", "durations", "eager", "ends",
        "enter", "fatal", "free", "func", "gone", "held", "isolate", "kinds", "live", "loop",
        "n", "record_timeout", "schedule", "slots", "starting", "starts", "stopping", "tasks",
        "timers", "values", "waiting", "wake",
    )  # fmt: skip

    def __init__(
        self,
        schedule: Schedule,
        func: Callable[[Any], Awaitable[Any]],
        args: Sequence[Any],
        limit: int,
        record_timeout: float | None,
        time_left: float | None,
        running: Container[int] | None,
        on_tasks: OnTasks | None,
    ) -> None:
        loop = self.loop = asyncio.get_running_loop()
        self.schedule = schedule
        self.func = func
        self.args = args
        self.n = schedule.n
        # The workers check the deadline on time.monotonic, the clock of the timings, so that
        # one read per record serves both; the expiry timer is on the loop's clock (uvloop's
        # is its own): run_pool_asyncio sets it.
        self.deadline = None if time_left is None else monotonic() + time_left
        self.durations, self.ends = schedule.durations, schedule.ends
        self.free = free = schedule.unconstrained  # the fast path: see Schedule.claim_all
        self.kinds, self.values = (
            schedule.claim_all() if free else (schedule.kinds, schedule.values)
        )
        self.held = (() if running is None else running).__contains__
        self.record_timeout = record_timeout
        self.cursor = 0  # the next record of an unconstrained schedule
        self.tasks: list[asyncio.Task[None]] = []
        self.live = 0
        self.slots = limit  # workers that may exist: one more for each abandoned task
        self.gone: set[asyncio.Task[None]] = set()  # abandoned tasks, until they end
        self.counted_out: set[asyncio.Task[None]] = set()  # until their done callback
        self.done = loop.create_future()
        self.wake: asyncio.Future[None] | None = None  # keyed schedules: wait for a finish()
        self.waiting = 0
        # The engine cancels its workers: the deadline, a fatal error, the caller.
        self.stopping = False
        self.starting = False  # a start_another() callback is pending
        self.fatal: list[BaseException] = []
        self.timers: list[asyncio.TimerHandle] = []  # give_up_all() after a fatal error
        # An eager worker runs inside its making (see the module doc), into its try block:
        # its finally counts it out whatever ends it, so it needs no done callback. A task
        # made the usual way may be cancelled before it ever runs: its done callback counts
        # it out then.
        self.eager = _EAGER and loop.get_task_factory() is None and _plain_tasks(loop)
        self.enter: Callable[[], list[Any]] | None
        if on_tasks is None:
            self.enter, self.isolate, self.starts = None, func, None
        else:
            self.enter, self.isolate, self.starts = on_tasks

    def spawn(self) -> bool:
        """Start a worker, if one may start and a record waits for it: whether it did."""
        if (
            self.stopping
            or len(self.tasks) >= self.slots
            or not (self.cursor < self.n if self.free else self.schedule.pending)
        ):
            return False
        # Counted in before it is made: an eager task runs the worker (to its end, if no
        # handler waits) inside its making.
        self.live += 1
        if self.eager:
            make: Any = asyncio.Task  # read each time, as asyncio.create_task reads it
            task: asyncio.Task[None] = make(self.worker(), loop=self.loop, eager_start=True)
        else:
            task = self.loop.create_task(self.worker())
            task.add_done_callback(self.ended)
        self.tasks.append(task)
        return True

    def start_another(self) -> None:
        # A handler waits: workers for the records left, up to the limit, at once. Started
        # in one loop turn, waiting handlers wait together: their timers and answers come
        # due together, and the loop wakes for them once. (Widening over several turns, as
        # it did, spread them out, and each wake-up apart costs a sleep in the selector:
        # the SQS worker's loop slept three times as often as hand-written code's.)
        self.starting = False
        if self.stopping:  # late: the pool has ended (and may have let spawn go)
            return
        # As many as records are left: a worker made the usual way (not eager) claims its
        # record only once it runs, so spawn() cannot tell it has one.
        for _ in range(self.n - self.cursor if self.free else self.schedule.pending):
            if not self.spawn():  # the limit, or no record left to start
                return

    def ended(self, task: asyncio.Task[None]) -> None:
        # A task's done callback (not eager): it was counted out already, unless it never ran.
        if task in self.counted_out:
            self.counted_out.discard(task)
            return
        if self.gone and task in self.gone:
            self.gone.discard(task)  # counted out when it was abandoned
            return
        self.live -= 1
        if not self.live and not self.done.done():
            self.done.set_result(None)

    def leave(self, task: asyncio.Task[None]) -> None:
        # A worker ends (whatever ends it): counted out unless it was abandoned.
        if self.gone and task in self.gone:
            return  # counted out when it was abandoned
        if not self.eager:
            self.counted_out.add(task)  # until its done callback
        self.live -= 1
        if not self.live and not self.done.done():
            self.done.set_result(None)

    def abandon(self, task: asyncio.Task[None], why: str) -> None:
        """Stop waiting for *task*: its handler did not end after its cancellation."""
        self.gone.add(task)
        self.slots += 1
        self.live -= 1
        _log.warning(
            "a record handler did not end %.1f s after %s cancelled it; its task is abandoned "
            "and runs on in the background (a handler that catches CancelledError must "
            "re-raise it)",
            ABANDON_AFTER,
            why,
        )

    def give_up(self, task: asyncio.Task[None], index: int) -> None:
        # The handler swallowed its timeout's cancellation: the record is timed out and keeps
        # its key, the task runs on unheard, a new worker takes its slot.
        if task.done() or task in self.gone:
            return
        self.abandon(task, "its record_timeout")
        error = RecordTimeoutError(self.record_timeout or 0.0)
        if self.free:
            self.kinds[index], self.values[index] = TIMEOUT, error
        else:
            self.schedule.finish(index, TIMEOUT, error, True)
            if self.waiting and self.wake is not None:
                self.wake.set_result(None)
                self.wake = None
        self.spawn()
        if not self.live and not self.done.done():
            self.done.set_result(None)

    def give_up_all(self, why: str) -> None:
        # Tasks the deadline (or the caller) cancelled and that have not ended: their records
        # stay RUNNING (reported as cut off by the deadline) and nobody waits for them.
        for task in self.tasks:
            if not task.done() and task not in self.gone:
                self.abandon(task, why)
        if not self.live and not self.done.done():
            self.done.set_result(None)

    def stop_all(self) -> None:
        self.stopping = True
        for task in self.tasks:
            task.cancel()

    def expire(self) -> None:
        self.schedule.stop(NOT_STARTED)
        self.stop_all()
        self.loop.call_later(ABANDON_AFTER, self.give_up_all, "the deadline")

    def time_out(self, task: asyncio.Task[None], index: int, watch: list[Any]) -> None:
        # A record's timeout: cancel its worker, and give up on it if it does not end soon.
        watch[0] = True
        task.cancel()
        watch[1] = self.loop.call_later(ABANDON_AFTER, self.give_up, task, index)

    async def worker(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:  # from here, whatever ends the worker, its finally counts it out
            # Locals for what each record reads, once a worker rather than once a record; not
            # the handler and the records (self.func, self.args), which the pool lets go of
            # as it ends: a worker abandoned then (its handler runs on) must not keep them.
            # The rest is read from the pool where it is used: a worker's frame is alive as
            # long as its record runs, and a busy process (the SQS worker) keeps them by the
            # hundred, each local a slot of every one.
            schedule = self.schedule
            n, free, kinds, values = self.n, self.free, self.kinds, self.values
            deadline, gone, tasks = self.deadline, self.gone, self.tasks
            # With record_timeout: whether this worker's timeout fired, and the timer that
            # will give up on its record. A list that time_out() writes, made only with a
            # timeout.
            watch: list[Any] | None = None if self.record_timeout is None else [False, None]
            # The clock is read once per record: a record starts when the worker's previous
            # one ended (or when it came back from waiting for a key). With a deadline the
            # read at the top of the loop serves both: it checks the deadline and ends the
            # time of the record that ran last (``ran``).
            took, ended_at = self.durations, self.ends
            timing = took is not None
            last = monotonic() if timing else 0.0
            ran = -1
            dirty = False  # a record changed this worker's context (with on_tasks)
            # With on_tasks: the box that says which record this worker runs in its own
            # context, for current_record(); and a copy of that context as it started, to
            # tell whether a record changed it: asyncio hands out a task's own (3.12), else
            # each check takes a copy.
            box: list[Any] | None = None
            mine = None
            own = False
            if self.enter is not None:
                box = self.enter()
                mine = copy_context()
                own = hasattr(task, "get_context")

            while True:
                if deadline is not None:
                    now = monotonic()
                    if ran >= 0:
                        took[ran] = now - last  # type: ignore[index]
                        if ended_at is not None:
                            ended_at[ran] = now
                        ran = -1
                    last = now
                    if now >= deadline:
                        schedule.stop(NOT_STARTED)
                        return
                index: int | None
                if free:
                    index = self.cursor
                    if index >= n:
                        return
                    self.cursor = index + 1
                else:
                    index = schedule.next()
                    if index is None:
                        return
                    if index == WAIT:
                        if self.wake is None:
                            self.wake = self.loop.create_future()
                        self.waiting += 1
                        try:
                            await self.wake
                        except asyncio.CancelledError:
                            if self.stopping:
                                return
                            raise
                        finally:
                            self.waiting -= 1
                        if timing and deadline is None:
                            last = monotonic()
                        continue
                kinds[index] = RUNNING
                # Another worker starts only if this handler really waits (see the module
                # doc): the callback runs when this task yields. One is pending at a time;
                # when no handler waits it runs once, as the last worker ends, and finds
                # nothing to do.
                if not self.starting and len(tasks) < self.slots:
                    self.starting = True
                    self.loop.call_soon(self.start_another)
                timer = None
                if watch is not None:
                    timer = self.loop.call_later(
                        self.record_timeout or 0.0, self.time_out, task, index, watch
                    )
                try:
                    if box is None:
                        step = self.func(self.args[index])
                    else:
                        if self.starts is not None:
                            self.starts[index] = monotonic()
                        if not dirty:
                            try:  # a value whose == cannot answer (an array): a change
                                dirty = (task.get_context() if own else copy_context()) != mine  # type: ignore[attr-defined]
                            except Exception:
                                dirty = True
                        if dirty:  # this worker's records each run in a copy of their own
                            box[0] = -1
                            step = self.isolate(index)
                        else:
                            box[0] = index
                            step = self.func(self.args[index])
                    result = step[0] if type(step) is Resolved else await step
                    kind = SUCCESS
                except Exception as exc:
                    kind, result = FAILURE, exc
                except asyncio.CancelledError as exc:
                    if self.stopping:
                        return  # the record stays RUNNING: cancelled at the deadline (or torn down)
                    if watch is not None and watch[0]:
                        kind, result = TIMEOUT, RecordTimeoutError(self.record_timeout or 0.0)
                    else:
                        # A cancellation the engine did not ask for (the handler awaited a
                        # task somebody else cancelled, or cancelled its own) is that record's
                        # failure, never the deadline's. Nobody else holds this worker task.
                        kind, result = FAILURE, exc
                        _forget_cancellation(task)
                except BaseException as exc:
                    if gone and task in gone:
                        return  # abandoned: its record's outcome is settled already
                    # KeyboardInterrupt, SystemExit...: stop every worker, raise it in the
                    # caller.
                    self.fatal.append(exc)
                    self.stop_all()
                    if len(self.fatal) == 1:  # and what will not end by then is abandoned
                        self.timers.append(
                            self.loop.call_later(ABANDON_AFTER, self.give_up_all, "a fatal error")
                        )
                    return
                finally:
                    # What the record started and still runs names no record from now on
                    # (rather than the worker's next one).
                    if box is not None:
                        box[0] = -1
                    if timer is not None:
                        timer.cancel()
                        assert watch is not None
                        if watch[1] is not None:
                            watch[1].cancel()
                            watch[1] = None
                if gone and task in gone:
                    return  # abandoned: its record's outcome is settled already
                if watch is not None and watch[0]:
                    watch[0] = False
                    _forget_cancellation(task)  # our own timeout's cancellation is spent
                if timing:
                    if deadline is not None:
                        ran = index  # timed by the read at the top of the loop
                    else:
                        now = monotonic()
                        took[index] = now - last  # type: ignore[index]
                        if ended_at is not None:
                            ended_at[index] = now
                        last = now
                if free:
                    kinds[index] = kind
                    values[index] = result
                else:
                    schedule.finish(index, kind, result, kind == TIMEOUT and self.held(index))
                    if self.waiting and self.wake is not None:
                        # A key may have unblocked, a stop may have come, or nothing is left.
                        self.wake.set_result(None)
                        self.wake = None
                if self.stopping:  # its handler swallowed the engine's cancellation
                    return
        finally:
            # Counted out here rather than by its done callback: the pool wakes a loop turn
            # sooner when its last worker ends.
            self.leave(task)


async def run_pool_asyncio(
    schedule: Schedule,
    func: Callable[[Any], Awaitable[Any]],
    args: Sequence[Any],
    *,
    concurrency: int | None,
    record_timeout: float | None = None,
    time_left: float | None = None,
    running: Container[int] | None = None,
    on_tasks: OnTasks | None = None,
) -> None:
    """Run every record *schedule* lets start, at most *concurrency* at a time, on asyncio.

    The contract of :func:`anybatch._engine.run_pool`: an :class:`Exception` fails its record
    only; *record_timeout* bounds each call; at *time_left* seconds no record starts and
    calls in flight are cancelled; cancellation from outside and other
    :class:`BaseException` s propagate after every worker has stopped, or been abandoned
    (:data:`ABANDON_AFTER`). *running* holds the indices whose work goes on after the call
    returned (a worker thread abandoned at its timeout): such a record keeps its key held.
    With *on_tasks* (see :class:`~anybatch._engine.OnTasks`), records run directly in their
    worker's context while they leave it as they found it.
    """
    n = schedule.n
    limit = n if concurrency is None else min(concurrency, n)
    if limit <= 0:
        return
    pool = _Pool(schedule, func, args, limit, record_timeout, time_left, running, on_tasks)
    loop, tasks = pool.loop, pool.tasks
    expiry = None if time_left is None else loop.call_at(loop.time() + time_left, pool.expire)
    try:
        pool.spawn()
        await pool.done
    except asyncio.CancelledError:
        # Cancelled from outside: stop the workers and let them unwind (a caller's cancel
        # scope may cancel again meanwhile), then propagate.
        pool.stop_all()
        give_up_at = loop.time() + ABANDON_AFTER
        while True:
            pending = [task for task in tasks if not task.done() and task not in pool.gone]
            left = give_up_at - loop.time()
            if not pending or left <= 0:
                break
            try:
                await asyncio.wait(pending, timeout=left)
            except asyncio.CancelledError:
                continue
        pool.give_up_all("the caller")
        raise
    finally:
        if expiry is not None:
            expiry.cancel()
        for timer in pool.timers:
            timer.cancel()
        pool.timers.clear()
        # The workers' tasks and the pool refer to one another: a cycle that only the
        # garbage collector would free, with the batch's records in it (through *func*,
        # *args* and the tasks' contexts). No record starts any more (an abandoned task
        # returns before it would start another, and a late start_another() finds the pool
        # stopping): let them go. (An abandoned task still runs its worker, and keeps the
        # pool until it ends.)
        pool.stopping = True
        tasks.clear()
        pool.func, pool.args, pool.isolate, pool.enter = _ended, (), _ended, None
    if pool.fatal:
        raise pool.fatal[0]
