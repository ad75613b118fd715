"""Each record in its own copy of the invocation's context, and what runs inside can ask.

A handler that sets a :class:`~contextvars.ContextVar` (the incumbent Logger's
``thread_safe_append_keys``, a tracing span, a request id) sets it in its record's own copy of
the invocation's context: no other record sees it, whatever the concurrency, in tasks and
threads alike, and every record sees what was set before the batch. Inside, :func:`current_record`
is the record being handled, :func:`current_record_deadline` when it must end, and
:class:`RecordIdFilter` stamps log lines with its identifier.

The cost is a context copy and an entry per record (and, for an async handler, its first
step taken by hand and one more through a small awaitable each time it resumes): a fraction
of a microsecond a record, measured in ``bench/bench_context.py``. The inline driver enters
one copy a batch and compares it with the caller's context after each record, making a
fresh one only after a record changed it. A batch's deadline and
``record_timeout`` are noted once per batch; with a ``record_timeout``, each record's start
too (a clock read).
"""

from __future__ import annotations

import time
from _thread import allocate_lock
from collections.abc import Callable, Generator, Sequence
from contextvars import Context, ContextVar, copy_context
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Protocol

from ._engine import OnTasks, Resolved

__all__ = [
    "AT_END",
    "ENDS",
    "add_record_id",
    "at_batch_end",
    "current_batch",
    "current_record",
    "current_record_deadline",
    "current_record_id",
    "in_own_context",
    "limits",
    "end_awaited",
    "end_blocking",
    "end_budget",
    "open_batch",
    "record_end",
]

#: The coroutine type, untyped: checking a handler's result against it narrows nothing.
_COROUTINE: Any = CoroutineType

#: A batch's limits, noted once per batch: (its deadline on :func:`time.monotonic`, its
#: record_timeout, and each record's start when it has one).
_Limits = tuple[float | None, float | None, list[float] | None]

#: (what handlers get, identifiers, index, the batch's limits or None)
_Here = tuple[Sequence[Any], Sequence[Any], int, _Limits | None]

#: The async record being handled in this context.
_CURRENT: ContextVar[_Here | None] = ContextVar("anybatch_current_record", default=None)


if TYPE_CHECKING:  # a Protocol class costs a cold start about 80 µs to make

    class _InlineEntry(Protocol):
        """A sync batch running inline (the run itself: ``anybatch._run.Run``).

        Its schedule says which record runs (``schedule.running()``); *deadline* is the batch's,
        on :func:`time.monotonic`.
        """

        schedule: Any
        handed: Sequence[Any]
        ids: Sequence[Any]
        deadline: float | None


#: The sync batch running inline that this context's record belongs to, if any: its run,
#: set by the inline driver in the copy of the context its records run in (never in the
#: caller's), so that each record's copy, and what a record hands its context to (a task, a
#: thread), sees it; copies made during another batch never do.
INLINE_BATCH: ContextVar[_InlineEntry | None] = ContextVar("anybatch_inline_batch", default=None)


#: The async record a worker task of the native asyncio driver runs directly in its own
#: context (see :func:`on_tasks`): its box, ``[index, handed, ids, limits]``, whose index
#: the worker sets to the record it runs (-1 between records). One list a worker: the
#: workers of a busy process are alive by the hundred. Set once in each worker's context, so
#: that what a record starts (a task, a thread with a copy of the context) sees it too.
_WORKER: ContextVar[list[Any] | None] = ContextVar("anybatch_worker_record", default=None)


def _task_here() -> _Here | None:
    worker = _WORKER.get()
    if worker is None:
        return None
    index: int = worker[0]
    if index < 0:
        return None
    return (worker[1], worker[2], index, worker[3])


def _here() -> _Here | None:
    # A record of an async or threaded batch sets the variable in its own copy of the
    # context, so the innermost such record wins; a sync batch run inline inside one does
    # too (in_own_context's exact mode). Else an inline batch's schedule says which of its
    # records runs (an async or threaded batch hides the inline one it started from).
    here = _CURRENT.get()
    if here is not None:
        return here
    inline = INLINE_BATCH.get()
    if inline is not None:
        index = inline.schedule.running()
        if index >= 0:  # (an inline record has no timeout)
            return (inline.handed, inline.ids, index, limits(inline.deadline, None, 0))
    return _task_here()


def limits(deadline: float | None, record_timeout: float | None, n: int) -> _Limits | None:
    """A batch's limits, for :func:`current_record_deadline`: ``None`` when it has none.

    *deadline* is on :func:`time.monotonic`; with a *record_timeout* each of the *n* records
    notes its start.
    """
    if deadline is None and record_timeout is None:
        return None
    return (deadline, record_timeout, None if record_timeout is None else [0.0] * n)


def current_record() -> Any:
    """The record being handled in this context, as its handler got it; ``None`` elsewhere.

    Inside a record handler (and whatever it calls, in its task or thread) this is the
    record's view (``SQSRecord``...), or its model with ``model=``. Outside one, ``None``.
    """
    here = _here()
    return None if here is None else here[0][here[2]]


def current_record_id() -> Any:
    """The identifier of the record being handled (``messageId``, sequence number...).

    What the partial batch response would report the record by: a string, or a Kafka
    record's ``{"partition": ..., "offset": ...}``; ``None`` outside a record handler.
    """
    here = _here()
    return None if here is None else here[1][here[2]]


def current_record_deadline() -> float | None:
    """When the record being handled must end, on the :func:`time.monotonic` clock.

    The earlier of the record's own end (when it started, plus the processor's
    ``record_timeout``) and the batch's deadline (the Lambda context's remaining time less
    ``deadline_margin``), where anybatch cancels or abandons the record's handler.
    ``None`` outside a record handler, or when neither applies. A handler that may overrun
    can stop in time, or pass what is left on::

        deadline = anybatch.current_record_deadline()
        timeout = None if deadline is None else deadline - time.monotonic()
    """
    here = _here()
    if here is None or here[3] is None:
        return None
    deadline, timeout, starts = here[3]
    if starts is None or timeout is None:
        return deadline
    ends = starts[here[2]] + timeout
    return ends if deadline is None or ends < deadline else deadline


def record_end() -> float | None:
    """The record's own end (its start plus ``record_timeout``), on :func:`time.monotonic`.

    ``None`` outside a record handler, or without a ``record_timeout``.
    """
    here = _here()
    if here is None or here[3] is None:
        return None
    _, timeout, starts = here[3]
    return None if starts is None or timeout is None else starts[here[2]] + timeout


def current_batch() -> tuple[Sequence[Any], Sequence[Any], int] | None:
    """The batch of the record being handled: (what its handlers get, identifiers, index).

    ``None`` outside a record handler. What handlers get is filled in as records start (a
    ``model=`` instance is made when its record starts): an entry not yet made is ``None``.
    """
    here = _here()
    return None if here is None else (here[0], here[1], here[2])


if TYPE_CHECKING:  # a Protocol class costs a cold start about 80 µs to make

    class BatchEnder(Protocol):
        """What a batch's records left to do when the batch ends (see :func:`at_batch_end`)."""

        def end_blocking(self, budget: float) -> None:
            """Do it, blocking, within *budget* seconds (the batch ran under ``process()``).

            Must not raise: what could not be done is logged.
            """
            ...

        async def end(self, budget: float) -> None:
            """Do it on the running loop, within *budget* seconds. Must not raise."""
            ...


#: The batches running, by ``id()`` of what their handlers get (each entry holds that
#: sequence, so that its id stays its own), with what their records left to do when they end:
#: the idempotency layer's held-back writes.
AT_END: dict[int, tuple[Sequence[Any], list[BatchEnder]]] = {}
_at_end_lock = allocate_lock()  # _thread's: importing threading costs a cold start


class ENDS:
    """Whether anything in this process may leave work for a batch's end.

    Off until a companion that does is made (``idempotent(store, batched=True)`` turns it on
    with :meth:`use`): until then a batch notes nothing, and pays nothing, for its end.
    """

    used = False

    @classmethod
    def use(cls) -> None:
        """Turn the switch on, for good."""
        cls.used = True


#: The longest a batch's end waits for what its records left to do (their held-back writes);
#: less when the invocation has less time left (see :func:`end_budget`).
END_TIMEOUT = 10.0
#: What a batch's end leaves of the invocation's time, for the response to go out.
END_SPARE = 0.2


def end_budget(left: float | None, margin: float | None) -> float:
    """Seconds a batch's end may take: until shortly before the invocation's own end.

    *left* is the time left until the batch's deadline (``None``: no Lambda context) and
    *margin* the processor's ``deadline_margin``, the time between that deadline and the
    invocation's end.
    """
    if left is None:
        return END_TIMEOUT
    return max(0.0, min(END_TIMEOUT, left + (margin or 0.0) - END_SPARE))


def open_batch(handed: Sequence[Any]) -> None:
    """Note that the batch whose handlers get *handed* runs.

    Until :func:`end_blocking` or :func:`end_awaited` ends it, its records may leave work for
    its end (:func:`at_batch_end`).
    """
    AT_END[id(handed)] = (handed, [])


def at_batch_end(handed: Sequence[Any], ender: BatchEnder) -> bool:
    """Have *ender* run when the batch whose handlers get *handed* ends.

    It runs before the batch's outcomes are read, whether the batch ends normally or by an
    exception. Called from inside one of its records (see :func:`current_batch`). Returns
    ``False``, and nothing will run *ender*, when the batch has ended already (a record
    abandoned at its timeout or the deadline runs on).
    """
    with _at_end_lock:
        entry = AT_END.get(id(handed))  # a live *handed*'s own: ids are unique among the live
        if entry is None:
            return False
        entry[1].append(ender)
        return True


def _enders(handed: Sequence[Any]) -> list[BatchEnder]:
    # The entry of a live *handed* is its own: ids are unique among live objects.
    _at_end_lock.acquire()  # not `with`: a batch pays this whenever ENDS.used
    entry = AT_END.pop(id(handed), None)
    _at_end_lock.release()
    return [] if entry is None else entry[1]


def end_blocking(handed: Sequence[Any], left: float | None, margin: float | None) -> None:
    """End the batch of *handed*: run what its records left to do, blocking.

    Within :func:`end_budget` of *left* and *margin*, shared by what each left.
    """
    enders = _enders(handed)
    if not enders:
        return
    ends = time.monotonic() + end_budget(left, margin)
    for ender in enders:
        ender.end_blocking(max(0.0, ends - time.monotonic()))


async def end_awaited(handed: Sequence[Any], left: float | None, margin: float | None) -> None:
    """End the batch of *handed*: run what its records left to do, on the running loop.

    Within :func:`end_budget` of *left* and *margin*, shared by what each left; shielded
    from a cancellation that ends the batch.
    """
    enders = _enders(handed)
    if not enders:
        return
    from anyio import CancelScope

    ends = time.monotonic() + end_budget(left, margin)
    with CancelScope(shield=True):
        for ender in enders:
            await ender.end(max(0.0, ends - time.monotonic()))


def add_record_id(logger: object, method_name: str, event_dict: Any) -> Any:
    """A structlog processor that adds ``record_id`` while a record is handled."""
    here = _here()
    if here is not None:
        event_dict.setdefault("record_id", here[1][here[2]])
    return event_dict


#: The record of an async or threaded batch that this context runs, if any (``None``): a
#: sync batch starting where it is not ``None`` (inside such a record) must name its records
#: by the context variable (:func:`in_own_context`), not by :data:`INLINE_BATCH`. Bound
#: methods of the variables, not functions: a blocking batch calls each once, on its hot path.
record_here: Callable[[], Any] = _CURRENT.get


def in_own_context(
    func: Callable[[Any], Any],
    inputs: Sequence[Any],
    handed: Sequence[Any],
    ids: Sequence[Any],
    is_async: bool,
    batch: _Limits | None = None,
) -> Callable[[int], Any]:
    """``func(inputs[index])``, called by index, each call in its own copy of the context.

    For the async drivers, worker threads, and a sync batch run inline inside an async or
    threaded record (the inline driver copies by itself).
    *handed* holds what each record's handler gets (filled in by the time it runs) and
    *ids* the identifiers: :func:`current_record` and :func:`current_record_id` read them.
    *batch* holds the batch's :func:`limits`: with a ``record_timeout``, each call notes its
    record's start, for :func:`current_record_deadline`.
    """
    call = (_async_in_own_context if is_async else _sync_in_own_context)(
        func, inputs, handed, ids, batch
    )
    starts = None if batch is None else batch[2]
    if starts is None:
        return call
    untimed, clock = call, time.monotonic

    def timed(index: int) -> Any:
        starts[index] = clock()
        return untimed(index)

    return timed


def _sync_in_own_context(
    func: Callable[[Any], Any],
    inputs: Sequence[Any],
    handed: Sequence[Any],
    ids: Sequence[Any],
    batch: _Limits | None,
) -> Callable[[int], Any]:
    set_current = _CURRENT.set

    def enter(index: int) -> Any:
        set_current((handed, ids, index, batch))
        return func(inputs[index])

    def call(index: int) -> Any:
        return copy_context().run(enter, index)

    return call


def hide_inline() -> Any:
    """Hide the inline batch this context runs, for an async or threaded batch started in it.

    Returns what :func:`show_inline` takes back (``None`` when there was nothing to hide).
    """
    return None if INLINE_BATCH.get() is None else INLINE_BATCH.set(None)


def show_inline(token: Any) -> None:
    """Undo :func:`hide_inline`."""
    if token is not None:
        INLINE_BATCH.reset(token)


def on_tasks(
    func: Callable[[Any], Any],
    inputs: Sequence[Any],
    handed: Sequence[Any],
    ids: Sequence[Any],
    batch: _Limits | None = None,
) -> OnTasks:
    """What the native asyncio driver needs to run async records without copying contexts.

    A worker task starts in a copy of the batch's context, and notes there the box that
    says which record it runs (``_WORKER``, read by :func:`current_record`, and by whatever
    a record starts: its tasks and threads inherit the context); *enter* returns the box.
    While its records leave that context as they found it (the driver checks in O(1) before
    each record: the contexts share their mapping until one is changed), they run in it
    directly: no copy, no step taken by hand. Once a record has changed its worker's
    context, that worker runs its later records each in its own copy of the batch's
    context, as :func:`in_own_context` does. Nothing is left to undo: the notes live in the
    workers' contexts, and go with them.
    """
    tasks = _OnTasks(func, inputs, handed, ids, batch)
    starts = None if batch is None else batch[2]
    # tuple.__new__: a NamedTuple's own __new__ is a Python function, a frame per batch.
    return tuple.__new__(OnTasks, (tasks.enter, tasks.isolate, starts))  # pyright: ignore[reportUnknownMemberType]


class _OnTasks:
    """What :func:`on_tasks` hands the driver: one slotted object a batch, not closures.

    Closures cost a batch a cell for each name they share and a function each, which the
    batches in flight of a busy process (the SQS worker) keep alive by the dozen.
    """

    __slots__ = ("batch", "func", "handed", "ids", "inputs", "isolated", "pristine")

    def __init__(
        self,
        func: Callable[[Any], Any],
        inputs: Sequence[Any],
        handed: Sequence[Any],
        ids: Sequence[Any],
        batch: _Limits | None,
    ) -> None:
        self.func, self.inputs, self.handed, self.ids, self.batch = func, inputs, handed, ids, batch
        self.pristine = copy_context()  # what every record run in its own copy starts from
        self.isolated: Callable[[int], Any] | None = None  # made on first use (see isolate)

    def enter(self) -> list[Any]:
        """Note a new box in the running (worker's) context: ``[index, handed, ids, limits]``."""
        box = [-1, self.handed, self.ids, self.batch]
        _WORKER.set(box)
        return box

    def isolate(self, index: int) -> Any:
        """Start record *index* in its own copy of the batch's context."""
        isolated = self.isolated
        if isolated is None:  # most batches never need it
            isolated = self.isolated = _async_in_own_context(
                self.func, self.inputs, self.handed, self.ids, self.batch, self.pristine
            )
        return isolated(index)


def _async_in_own_context(
    func: Callable[[Any], Any],
    inputs: Sequence[Any],
    handed: Sequence[Any],
    ids: Sequence[Any],
    batch: _Limits | None,
    base: Context | None = None,
) -> Callable[[int], Any]:
    set_current = _CURRENT.set

    def first_step(index: int) -> Any:
        # The first step runs at once, in the record's context: a handler that never waits
        # (the common case) ends in it, and costs no stepping machinery.
        set_current((handed, ids, index, batch))
        steps: Any = func(inputs[index])
        if type(steps) is not _COROUTINE:  # another awaitable: step what it awaits
            await_ = getattr(steps, "__await__", None)
            if await_ is None:  # not awaitable: the driver's await says so, as it would have
                return steps
            steps = await_()
        try:
            yielded = steps.send(None)
        except StopIteration as done:
            return Resolved((done.value,))
        return _Resume(steps, yielded)

    def call_async(index: int) -> Any:
        context = copy_context() if base is None else base.copy()
        step = context.run(first_step, index)
        if type(step) is _Resume:
            step.context = context
        return step

    return call_async


class _Resume:
    """Go on with a handler that waits: each of its steps runs in its record's context.

    A coroutine runs in the context of the task that steps it; this steps it in the
    record's own copy instead, so that one worker task runs many records, each in its own.
    """

    __slots__ = ("_steps", "_yielded", "context")

    def __init__(self, steps: Any, yielded: Any) -> None:
        self._steps = steps
        self._yielded = yielded
        self.context: Context = Context()  # the record's, set once its first step is run

    def __await__(self) -> Generator[Any, Any, Any]:
        steps, run, yielded = self._steps, self.context.run, self._yielded
        send, throw = steps.send, steps.throw
        while True:
            try:
                value = yield yielded
            except GeneratorExit:
                run(steps.close)
                raise
            except BaseException as exc:
                try:
                    yielded = run(throw, exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    yielded = run(send, value)
                except StopIteration as done:
                    return done.value
