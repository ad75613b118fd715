"""One batch's run: start it, drive it on the engine, complete it into typed outcomes.

A processor hands the run what it needs of it (:class:`Hooks`). :func:`start` reads the batch
(views or models, identifiers, the schedule), :func:`process` and :func:`async_process` drive
it and route its permanent failures (``_permanent``), :func:`complete` turns the outcome codes
into a :class:`~._outcome.BatchResult`, the hooks' entries, the response, the observers'
calls and the log of reported records.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from itertools import repeat
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, cast

from . import _view
from ._context import (
    ENDS,
    INLINE_BATCH,
    end_awaited,
    end_blocking,
    hide_inline,
    in_own_context,
    limits,
    on_tasks,
    open_batch,
    record_here,
    show_inline,
)
from ._engine import (
    FAILURE,
    SUCCESS,
    Schedule,
    asyncio_running,
    drive,
    run_inline,
    runs_inline,
)
from ._exceptions import ProcessorStateError, RecordFailedError
from ._handlers import as_called, refuse_awaitables
from ._invocation import RESULTS, batch_of
from ._outcome import BatchResult, outcome_exception
from ._permanent import ROUTER, mark_routed, route_awaited, route_blocking
from ._reading import Reading, reading_of
from ._sources import EventType, batch_source

if TYPE_CHECKING:
    from ._exceptions import ExceptionInfo, RecordSkippedError
    from ._handlers import HandlerKind
    from ._invocation import _Batch  # pyright: ignore[reportPrivateUsage]
    from ._observers import Observers
    from ._outcome import FailureResponse, SuccessResponse
    from ._permanent import PermanentHooks, Routing

    # Type-checking only: a Protocol class costs a cold start about 80 µs to make.
    class Hooks(PermanentHooks, Protocol):
        """What one batch's run needs of its processor."""

        model: type[Any] | None
        concurrency: int | None
        record_timeout: float | None
        deadline_margin: float | None
        log_records: int
        stop_skip_error: ClassVar[type[RecordSkippedError]]
        key_skip_error: ClassVar[type[RecordSkippedError]]
        _fixed: Reading | None
        _observing: Observers | None
        _previous_models: list[Any] | None
        _default_hooks: ClassVar[bool]
        _custom_sync: ClassVar[bool]
        _custom_async: ClassVar[bool]
        _custom: ClassVar[bool]
        _default_schedule: ClassVar[bool]

        def success_handler(self, record: Any, result: Any) -> SuccessResponse: ...
        def failure_handler(self, record: Any, exception: ExceptionInfo) -> FailureResponse: ...
        def _make_schedule(self, records: Sequence[Mapping[str, Any]]) -> Schedule: ...
        def _handler_kind(self, handler: Callable[..., Any]) -> HandlerKind: ...
        def _process_record(self, record: Any) -> SuccessResponse | FailureResponse: ...
        async def _async_process_record(self, record: Any) -> SuccessResponse | FailureResponse: ...


__all__ = [
    "Reading",
    "Run",
    "async_process",
    "complete",
    "default_schedule",
    "process",
    "reading_of",
    "start",
]


_F = TypeVar("_F", bound=Callable[..., Any])


def default_hook(method: _F) -> _F:
    """Mark a processor's own hook: the run may do its work directly when not overridden."""
    method.__dict__["anybatch_default"] = True
    return method


_NONE: frozenset[int] = frozenset()


#: The exceptions ``failure_handler`` was given while a custom ``_process_record`` ran.
REPORTED: ContextVar[list[BaseException] | None] = ContextVar("anybatch_reported", default=None)


def _is_success_entry(entry: object) -> bool:
    return isinstance(entry, tuple) and cast("tuple[object, ...]", entry)[:1] == ("success",)


class Run:
    """Everything about the batch being processed.

    The drivers call ``func(inputs[index])`` for each record they start: *inputs* are the
    record views (built up front: a view cannot fail), or the indices when a model converts
    each record inside its own failure boundary; ``args`` holds what each handler received.
    """

    __slots__ = (
        "args",
        "batch",
        "deadline",
        "entries",
        "func",
        "handed",
        "handler",
        "ids",
        "inputs",
        "is_async",
        "n",
        "reading",
        "records",
        "routing",
        "schedule",
        "started",
        "started_at",
        "time_left",
    )

    def __init__(
        self,
        records: Sequence[Mapping[str, Any]],
        ids: Sequence[Any],
        schedule: Schedule,
        handler: Callable[[Any], Any],
        is_async: bool,
        time_left: float | None,
        reading: Reading,
        batch: _Batch,
    ) -> None:
        self.reading = reading
        self.batch = batch
        self.started_at = 0.0  # time.time() when the batch started (with observers)
        #: What a custom _process_record returned for each record (custom processors only).
        self.entries: list[Any] | None = None
        self.routing: Routing | None = None
        self.records = records
        self.ids = ids
        self.n = len(records)
        self.schedule = schedule
        self.handler = handler
        self.is_async = is_async
        self.time_left = time_left
        self.started = started = time.monotonic()
        #: The batch's deadline on time.monotonic (``None`` without a Lambda context).
        self.deadline = None if time_left is None else started + time_left
        self.args: list[Any] = [None] * self.n
        self.func: Callable[[Any], Any] = handler
        self.inputs: Sequence[Any] = self.args
        #: What each record's handler gets, for current_record() (custom: the raw records).
        self.handed: Sequence[Any] = self.args

    def convert_each(
        self, convert: Callable[[Mapping[str, Any]], Any], previous: list[Any] | None = None
    ) -> None:
        """Make the handler's argument of each record as it starts, with *convert*.

        *previous* holds the previous batch's models: the one at a record's index is let go
        just before the record's own model is made, which then reuses its memory. Letting
        them all go at once and allocating afresh costs a model processor about half again
        its time on large batches (page faults and cold caches).
        """
        records, args, handler = self.records, self.args, self.handler
        if not previous:

            def func(index: int) -> Any:
                arg = args[index] = convert(records[index])
                return handler(arg)

        else:
            previous.extend([None] * (self.n - len(previous)))

            def func(index: int) -> Any:
                previous[index] = None
                arg = args[index] = convert(records[index])
                return handler(arg)

        self.func = func
        self.inputs = range(self.n)

    def process_each(self, method: Callable[[Any], Any]) -> None:
        """Let a custom processor's ``_process_record`` (or its async twin) run each record.

        Its entry is the record's result; a ``"fail"`` entry fails the record with the
        exception given to ``failure_handler`` (or a :class:`RecordFailedError` when an
        override of ``failure_handler`` kept it to itself).
        """
        records = self.records
        entries: list[Any] = [None] * self.n
        self.entries = entries

        def outcome_of(index: int, entry: Any, reported: list[BaseException]) -> Any:
            entries[index] = entry
            if _is_success_entry(entry):
                return entry
            exc = reported[-1] if reported else None
            if not isinstance(exc, Exception):
                raise RecordFailedError(entry)
            raise exc

        def run_sync(index: int) -> Any:
            reported: list[BaseException] = []
            token = REPORTED.set(reported)
            try:
                entry = method(records[index])
            finally:
                REPORTED.reset(token)
            return outcome_of(index, entry, reported)

        async def run_async(index: int) -> Any:
            reported: list[BaseException] = []
            token = REPORTED.set(reported)
            try:
                entry = await method(records[index])
            finally:
                REPORTED.reset(token)
            return outcome_of(index, entry, reported)

        func: Callable[[int], Any] = run_async if self.is_async else run_sync
        self.func = func
        self.inputs = range(self.n)

    def remaining(self) -> float | None:
        if self.time_left is None:
            return None
        return self.time_left - (time.monotonic() - self.started)


def reading_for(processor: Hooks, records: Sequence[Mapping[str, Any]]) -> Reading:
    """How to read *records*: the processor's event type, or the one the batch names."""
    fixed = processor._fixed  # pyright: ignore[reportPrivateUsage]
    if fixed is not None:
        return fixed
    return reading_of(batch_source(records), processor.model)


def time_left(margin: float | None, context: Any) -> float | None:
    """Seconds before the batch's deadline: the context's remaining time less *margin*."""
    if context is None or margin is None:  # no context, or a processor without a deadline
        return None
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    remaining = None if remaining_ms is None else remaining_ms()
    if remaining is None or remaining >= 2**31 - 1:  # never runs out (the SQS worker's)
        return None
    return float(remaining) / 1000.0 - margin


def default_schedule(
    processor: Any, source: EventType[Any], records: Sequence[Mapping[str, Any]]
) -> Schedule:
    """The default ``_make_schedule``: the source's ordering keys and the processor's policy.

    Every record runs; records that share a key run one at a time, in order. A failure skips
    the rest of its key only for an SQS FIFO batch, or with ``skip_key_on_failure=True``.
    """
    skip = processor.skip_key_on_failure
    keys = None
    if processor.ordered:
        # A record_timeout may abandon a record still running: its key then holds the rest.
        if processor.concurrency != 1 or processor.record_timeout is not None:
            keys = source.ordering_keys(records)
            if skip is None:
                skip = keys is not None and source.skips_key_on_failure(records)
        else:
            # One record at a time, in batch order, keeps every key's order by itself:
            # keys matter only when a failure skips the rest of its key.
            if skip is None:
                skip = source.skips_key_on_failure(records)
            if skip:
                keys = source.ordering_keys(records)
    return Schedule(
        len(records),
        keys,
        stop_on_failure=processor.stop_on_failure,
        skip_key_on_failure=bool(skip) and keys is not None,
    )


def start(processor: Hooks, *, awaited: bool) -> Run:
    """Read the current batch of *processor* into a :class:`Run`, ready to drive."""
    batch = batch_of(processor)  # type: ignore[arg-type]
    if not batch.busy:
        raise ProcessorStateError(
            "process() runs inside the processor's context manager: "
            "with processor(records, record_handler, lambda_context=context): "
            "processor.process()"
        )
    if batch.run is not None:
        raise ProcessorStateError("this batch was processed already; prepare the next one")
    records = batch.records
    reading = processor._fixed or reading_for(processor, records)  # pyright: ignore[reportPrivateUsage]
    ids = reading.source.identifiers(records)
    cls = type(processor)
    if cls._default_schedule:  # no _make_schedule override: the source is at hand  # pyright: ignore[reportPrivateUsage]
        schedule = default_schedule(processor, reading.source, records)
    else:
        schedule = processor._make_schedule(records)  # pyright: ignore[reportPrivateUsage]
    handler = batch.handler
    assert handler is not None  # _set_batch gave the batch one
    context = batch.lambda_context
    custom = cls._custom  # pyright: ignore[reportPrivateUsage]
    if custom:
        # The subclass's _process_record / _async_process_record handles each record.
        is_async = cls._custom_async and (awaited or not cls._custom_sync)  # pyright: ignore[reportPrivateUsage]
    else:
        kind: HandlerKind = batch.kind  # read by _set_batch
        is_async = kind.is_async
        if kind.by_keyword or (context is not None and kind.takes_context):
            handler = as_called(handler, kind, context)
    left = None if context is None else time_left(processor.deadline_margin, context)
    run = batch.run = Run(records, ids, schedule, handler, is_async, left, reading, batch)
    observing = processor._observing  # pyright: ignore[reportPrivateUsage]
    if observing is not None:
        if observing.durations:
            schedule.time_records(ends=observing.ends)
        run.started_at = time.time()
        from ._events import BatchStarted  # with observers only: import cost is cold start

        observing.started(BatchStarted(reading.source.name, run.n, run.time_left, records))
    if custom:
        method = processor._async_process_record if is_async else processor._process_record  # pyright: ignore[reportPrivateUsage]
        run.process_each(method)
        run.handed = records  # what current_record() gives while a record runs (see _context)
    elif reading.reuses:  # the previous batch's views that nothing holds any more
        spare = processor.__dict__.pop("_spare_views", None)  # taken in one step
        view = reading.view
        old = spare[1] if spare is not None and spare[0] is view else None
        run.args = run.inputs = run.handed = _view.make_views(view, records, old)
    elif not reading.converts:
        run.args = run.inputs = run.handed = list(map(reading.view, records))
    else:  # a model may refuse a record: that is the record's failure, not the batch's
        # The previous batch's models go as this one's are made (Run.convert_each); taken.
        previous = processor._previous_models  # pyright: ignore[reportPrivateUsage]
        processor._previous_models = None  # pyright: ignore[reportPrivateUsage]
        run.convert_each(reading.convert, previous)  # into run.args: run.handed already
    return run


def process(processor: Hooks) -> list[SuccessResponse | FailureResponse]:
    """Process the current batch, blocking: inline when it can be, else on a loop."""
    run = start(processor, awaited=False)
    if runs_inline(run.is_async, processor.concurrency, processor.record_timeout):
        deadline, func, inputs, schedule = run.deadline, run.func, run.inputs, run.schedule
        if record_here() is not None:  # inside an async record: name each by the variable
            batch = limits(deadline, None, run.n)  # an inline record has no timeout
            func = in_own_context(func, inputs, run.handed, run.ids, False, batch)
            inputs = range(run.n)
        if ENDS.used:  # until it ends, its records may leave work for its end
            open_batch(run.handed)
        try:  # each record in its own context, where the batch is noted (see _context)
            run_inline(schedule, func, inputs, deadline, time.monotonic, (INLINE_BATCH, run))
        finally:
            schedule.current = -1  # over: what outlives it names none of its records
            if ENDS.used:  # what its records left (held-back idempotency writes)
                end_blocking(run.handed, run.remaining(), processor.deadline_margin)
        values = schedule.values
        if values.count(None) != len(values):  # handlers that returned something
            refuse_awaitables(values, run.handler, False)
    else:
        from ._portal import run_blocking

        run_blocking(processor.backend, _drive, processor, run)
    if processor._router or processor.on_permanent_failure or ROUTER.get():  # pyright: ignore[reportPrivateUsage]
        route_blocking(processor, run)  # not in _drive: the router may need another loop
    return complete(processor, run)


async def async_process(processor: Hooks) -> list[SuccessResponse | FailureResponse]:
    """Process the current batch on the running event loop."""
    run = start(processor, awaited=True)
    await _drive(processor, run)
    if processor._router or processor.on_permanent_failure or ROUTER.get():  # pyright: ignore[reportPrivateUsage]
        await route_awaited(processor, run)
    return complete(processor, run)


async def _drive(processor: Hooks, run: Run) -> None:
    # Each record in its own copy of the context (see _context); on native asyncio tasks, once.
    left, timeout = run.remaining(), processor.record_timeout
    batch = limits(None if left is None else time.monotonic() + left, timeout, run.n)
    hidden = hide_inline()
    tasks = None
    func, args = run.func, run.inputs
    if run.is_async and asyncio_running() and record_here() is None:
        tasks = on_tasks(func, args, run.handed, run.ids, batch)
    else:
        func = in_own_context(func, args, run.handed, run.ids, run.is_async, batch)
        args = range(run.n)
    if ENDS.used:  # until it ends, its records may leave work for its end
        open_batch(run.handed)
    try:
        await drive(
            run.schedule,
            func,
            args,
            is_async=run.is_async,
            concurrency=processor.concurrency,
            record_timeout=timeout,
            time_left=left,
            on_tasks=tasks,
        )
    finally:
        show_inline(hidden)
        if ENDS.used:  # what its records left (held-back idempotency writes)
            await end_awaited(run.handed, run.remaining(), processor.deadline_margin)
    refuse_awaitables(run.schedule.values, run.handler, run.is_async)


def complete(processor: Hooks, run: Run) -> list[SuccessResponse | FailureResponse]:
    """Turn the run's outcomes into the result, the hooks' entries and the response."""
    batch = run.batch
    del run.batch  # no cycle batch <-> run, left for the collector: a batch ends here
    kinds, values = run.schedule.close()
    n = len(kinds)
    ok = kinds.count(SUCCESS) == n  # identity checks: fast on the usual batch
    permanent = _NONE if ok and run.routing is None else mark_routed(processor, run, kinds, values)
    source = run.reading.source
    encoded = None
    if source.encodes:
        encoded = _encode(source, run.records, kinds, values)
        ok = kinds.count(SUCCESS) == n  # a value the source could not encode failed
    args = run.args
    errors: dict[int, BaseException] = {}
    processed: list[SuccessResponse | FailureResponse] = []
    if run.entries is not None:
        processed = _complete_custom(processor, run, kinds, values, errors)
    elif ok and type(processor)._default_hooks:  # pyright: ignore[reportPrivateUsage]
        # Everything succeeded and nobody listens to the hooks: no per-record calls.
        batch.success_messages = list(args)
        if batch.collect:
            # SuccessResponse("success", value, record) each, without a Python frame apiece.
            from ._outcome import SuccessResponse

            new: Callable[[type[SuccessResponse], tuple[str, Any, Any]], SuccessResponse]
            new = cast("Any", tuple).__new__
            processed = list(
                map(new, repeat(SuccessResponse), zip(repeat("success"), values, args))
            )
    else:
        processed = _call_hooks(processor, run, kinds, values, errors)
    result = batch.result = BatchResult(run.ids, kinds, values, args, errors)
    if permanent:
        result.permanent_indices = permanent
    if encoded is not None:
        result.encoded = encoded
    result.source, result.raw_records = source, run.records
    # From the outcomes, not from fail_messages (a failure_handler override may not call
    # super()). Built now: response() is right inside the block, and after one that raised.
    if source.responds:
        result.set_response(source.response(result))
        batch.batch_response = result.response()
    else:  # the partial batch response
        batch.batch_response = {"batchItemFailures": []} if ok else result.item_failures()
    observing = processor._observing  # pyright: ignore[reportPrivateUsage]
    if observing is not None:
        schedule = run.schedule
        result.durations, result.ends = schedule.durations, schedule.ends
        result.event_type = source.name
        result.started_at, result.started = run.started_at, run.started
        result.duration = time.monotonic() - run.started
        result.time_left = run.remaining()
        observing.finished(result)
    reading = run.reading
    if reading.reuses and run.entries is None and run.n >= _view.REUSE_FROM:  # kept: a copy
        processor.__dict__["_spare_views"] = (reading.view, list(args))  # see make_views
    elif reading.converts:
        # A copy: a result kept by the user stays whole.
        processor._previous_models = list(args)  # pyright: ignore[reportPrivateUsage]
    observer = RESULTS.get()  # anybatch run counts outcomes this way
    if observer is not None:
        observer(result)
    return processed


def _encode(
    source: EventType[Any],
    records: Sequence[Mapping[str, Any]],
    kinds: list[int],
    values: list[Any],
) -> list[Any]:
    """What the response carries for each record that succeeded (``None`` for the others).

    A value the source cannot encode fails its record with the source's error, before any
    hook or observer sees the outcomes.
    """
    encoded: list[Any] = [None] * len(kinds)
    encode = source.encode
    for index, kind in enumerate(kinds):
        if kind == SUCCESS:
            try:
                encoded[index] = encode(records[index], values[index])
            except Exception as exc:
                kinds[index], values[index] = FAILURE, exc
    return encoded


def _complete_custom(
    processor: Hooks,
    run: Run,
    kinds: list[int],
    values: list[Any],
    errors: dict[int, BaseException],
) -> list[SuccessResponse | FailureResponse]:
    """What a custom ``_process_record`` returned for each record, in record order.

    A record it returned nothing for (never started, cut short, or ``_process_record``
    raised) gets its ``failure_handler`` call here, so every record has one entry.
    """
    entries = cast("list[SuccessResponse | FailureResponse | None]", run.entries)
    records: Sequence[Any] = run.records
    stop_error, key_error = processor.stop_skip_error, processor.key_skip_error
    processed: list[SuccessResponse | FailureResponse] = []
    for index, kind in enumerate(kinds):
        run.args[index] = records[index]
        entry = entries[index]
        if kind != SUCCESS:
            exc = errors[index] = outcome_exception(kind, values[index], stop_error, key_error)
            if entry is None or entry[0] == "success":
                entry = processor.failure_handler(
                    records[index], (type(exc), exc, exc.__traceback__)
                )
        assert entry is not None  # a success always has its entry
        processed.append(entry)
    _log(processor, run, kinds, errors)
    return processed


def _call_hooks(
    processor: Hooks,
    run: Run,
    kinds: list[int],
    values: list[Any],
    errors: dict[int, BaseException],
) -> list[SuccessResponse | FailureResponse]:
    """Call ``success_handler`` / ``failure_handler`` for each record, in record order."""
    records, args = run.records, run.args
    view = run.reading.view
    stop_error, key_error = processor.stop_skip_error, processor.key_skip_error
    success_handler, failure_handler = processor.success_handler, processor.failure_handler
    processed: list[SuccessResponse | FailureResponse] = []
    for index, kind in enumerate(kinds):
        record = args[index]
        if record is None:  # not converted: never started, or its model refused it
            record = args[index] = view(records[index])
        if kind == SUCCESS:
            processed.append(success_handler(record, values[index]))
            continue
        exc = outcome_exception(kind, values[index], stop_error, key_error)
        errors[index] = exc
        processed.append(failure_handler(record, (type(exc), exc, exc.__traceback__)))
    _log(processor, run, kinds, errors)
    return processed


def _log(processor: Hooks, run: Run, kinds: list[int], errors: dict[int, BaseException]) -> None:
    if processor.logger is None or not errors:
        return
    from ._report import log_reported  # with a logger and a report only

    log_reported(
        processor.logger,
        processor.log_records,
        run.ids,
        run.reading.source.describe,
        kinds,
        errors,
    )
