"""The processors: one core, reached blocking (``process``) or awaited (``async_process``).

A processor is configured once and reused across warm invocations; everything about one batch
lives in a :class:`_Run` made when processing starts and is dropped when the next batch is
prepared. Record handling itself is the engine's: the I/O-free :class:`~._schedule.Schedule`
driven either inline (a sync handler at ``concurrency=1``: no event loop, no thread) or by the
anyio worker pool in ``_engine`` (awaited, or on the long-lived loop of ``_portal``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, cast, overload

from ._exceptions import (
    BatchProcessingError,
    ExceptionInfo,
    HandlerTypeError,
    MissingDependencyError,
    ProcessorStateError,
    RecordSkippedError,
    SQSFifoCircuitBreakerError,
    SQSFifoMessageGroupCircuitBreakerError,
)
from ._outcome import (
    BatchResult,
    FailureResponse,
    PartialItemFailureResponse,
    SuccessResponse,
    describe,
    outcome_exception,
    status_of,
)
from ._schedule import SUCCESS, Schedule, run_each_inline, run_inline
from ._sources import EventType, SourceSpec, identifiers, ordering_keys, spec
from .records import DynamoDBRecord, KinesisStreamRecord, SQSRecord

if TYPE_CHECKING:
    import logging
    from types import TracebackType

    from typing_extensions import Self, TypedDict, TypeVar, Unpack

    _Logger = logging.Logger | logging.LoggerAdapter[Any]

    class ProcessorOptions(TypedDict, total=False):
        """The knobs every processor takes as keywords (see :class:`BasePartialProcessor`)."""

        concurrency: int | None
        record_timeout: float | None
        deadline_margin: float | None
        stop_on_failure: bool
        ordered: bool
        backend: Literal["asyncio", "trio"]
else:  # typing_extensions costs milliseconds of import time; defaults matter to checkers only
    from typing import TypeVar as _TypeVar

    def TypeVar(name: str, *, default: object = None) -> Any:
        return _TypeVar(name)


__all__ = [
    "DEFAULT_DEADLINE_MARGIN",
    "AsyncBatchProcessor",
    "AsyncSqsFifoPartialProcessor",
    "BasePartialProcessor",
    "BatchProcessor",
    "SqsFifoPartialProcessor",
]

RecordT = TypeVar("RecordT")
SqsRecordT = TypeVar("SqsRecordT", default=SQSRecord)

#: Seconds kept free before the Lambda timeout when a context is given: time to build and
#: return the response (and to let abandoned worker threads be ignored).
DEFAULT_DEADLINE_MARGIN = 1.0

_VIEWS: dict[EventType, Callable[[Mapping[str, Any]], Any]] = {
    EventType.SQS: SQSRecord,
    EventType.KinesisDataStreams: KinesisStreamRecord,
    EventType.DynamoDBStreams: DynamoDBRecord,
}

_CO_GENERATOR = 0x20
_CO_COROUTINE = 0x80
_CO_ASYNC_GENERATOR = 0x200
_UNSET: Any = object()


def _unwrap(func: object, *, wrapped: bool) -> object:
    while True:
        if isinstance(func, functools.partial):
            partial: functools.partial[object] = func  # pyright: ignore[reportUnknownVariableType]
            func = partial.func
        elif wrapped and hasattr(func, "__wrapped__"):
            func = getattr(func, "__wrapped__")  # noqa: B009 - not every callable has it
        else:
            return func


def is_async_callable(func: object) -> bool:
    """Whether calling *func* returns an awaitable by declaration (``async def``)."""
    # Not through __wrapped__: a sync wrapper of an async function is sync (as inspect sees it).
    target = _unwrap(func, wrapped=False)
    code = getattr(getattr(target, "__func__", target), "__code__", None)
    if code is None:  # an object with an async __call__
        owner: type[object] = type(target)
        call: object = getattr(owner, "__call__", None)  # noqa: B004 - the method, not callable()
        code = getattr(call, "__code__", None)
    if code is not None and code.co_flags & _CO_COROUTINE:
        return True
    # inspect.markcoroutinefunction (3.12+) sets this attribute to inspect's own marker. Compare
    # with that marker, as inspect does: a Mock answers every attribute with a new Mock.
    marker = getattr(target, "_is_coroutine_marker", None)
    if marker is None:
        return False
    import inspect

    return marker is getattr(inspect, "_is_coroutine_mark", _UNSET)


def _refuse_generator_function(func: object) -> None:
    """Refuse a record handler whose call only makes a generator: its body would never run."""
    target = _unwrap(func, wrapped=False)
    code = getattr(getattr(target, "__func__", target), "__code__", None)
    flags = 0 if code is None else code.co_flags
    if flags & (_CO_GENERATOR | _CO_ASYNC_GENERATOR):
        kind = "an async generator" if flags & _CO_ASYNC_GENERATOR else "a generator"
        raise HandlerTypeError(
            f"the record handler {func!r} is {kind} function: calling it runs none of its "
            "body, so every record would count as a success; 'return' a result instead of "
            "'yield'ing it"
        )


def accepts_lambda_context(func: object) -> bool:
    """Whether *func* declares a ``lambda_context`` parameter."""
    target = _unwrap(func, wrapped=True)  # through decorators, as inspect.signature does
    code = getattr(getattr(target, "__func__", target), "__code__", None)
    if code is not None:
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        return "lambda_context" in names
    import inspect

    try:
        return "lambda_context" in inspect.signature(func).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _check_backend(backend: str) -> str:
    if backend not in ("asyncio", "trio"):
        raise ValueError(f"backend must be 'asyncio' or 'trio', got {backend!r}")
    if backend == "trio":
        import importlib.util

        if importlib.util.find_spec("trio") is None:
            raise MissingDependencyError("backend='trio' needs trio: pip install 'anybatch[trio]'")
    return backend


def _check_seconds(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds or None, got {value!r}")
    if value != value or value < 0 or (name == "record_timeout" and value == 0):
        raise ValueError(
            f"{name} must be {'> 0' if name == 'record_timeout' else '>= 0'}, got {value!r}"
        )
    return float(value)


def _check_concurrency(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"concurrency must be a positive int or None (unbounded), got {value!r}")
    if value < 1:
        raise ValueError(f"concurrency must be >= 1 or None (unbounded), got {value}")
    return value


def _refuse_awaitables(values: list[Any], handler: object, is_async: bool) -> None:
    """Fail the batch if the handler's results are awaitables: they would count as successes.

    A plain ``def`` that returns a coroutine, or an ``async def`` that returns one without
    awaiting it (``return store(record)``), did none of its work. Checked once the batch has
    run, outside every record's failure boundary, so it fails the batch, not each record.
    """
    types = set(map(type, values))
    if _Awaitable not in types and not any(hasattr(kind, "__await__") for kind in types):
        return
    for value in values:
        if isinstance(value, _Awaitable):
            value = value.awaitable
        close = getattr(value, "close", None) if hasattr(value, "__await__") else None
        if close is not None:
            close()  # no "coroutine was never awaited" warning on top of the error
    if is_async:
        raise HandlerTypeError(
            f"the record handler {handler!r} returned an awaitable without awaiting it, so "
            "its work never ran; await it: 'return await ...'"
        )
    raise HandlerTypeError(
        f"the record handler {handler!r} returned an awaitable although it is not declared "
        "'async def'; declare it 'async def' so that anybatch awaits it"
    )


def _in_threads(func: Callable[[Any], Any]) -> Callable[[Any], Awaitable[Any]]:
    """Run *func* in worker threads; a call is abandoned when it is cancelled.

    The engine's worker pool already bounds how many calls are awaited at once. The threads
    get a limiter without a bound of their own: trio keeps a limiter's token until an
    abandoned thread really ends, so a bounded one would let a hung handler hold its slot and
    every later record time out without ever running.
    """
    import math

    from anyio import CapacityLimiter, to_thread

    limiter = CapacityLimiter(math.inf)

    def guarded(arg: Any) -> Any:
        result = func(arg)
        # trio refuses a thread's coroutine result with a TypeError; hand it back wrapped so
        # that _refuse_awaitables reports the handler instead of failing every record.
        return _Awaitable(result) if hasattr(result, "__await__") else result

    def in_thread(arg: Any) -> Awaitable[Any]:
        return to_thread.run_sync(guarded, arg, abandon_on_cancel=True, limiter=limiter)

    return in_thread


class _Awaitable:
    """An awaitable a sync handler returned in a worker thread."""

    __slots__ = ("awaitable",)

    def __init__(self, awaitable: object) -> None:
        self.awaitable = awaitable


class _Run:
    """Everything about the batch being processed.

    The drivers call ``func(inputs[index])`` for each record they start: *inputs* are the
    record views (built up front: a view cannot fail), or the indices when a model converts
    each record inside its own failure boundary. ``args`` holds what the handler received,
    for the hooks and the results.
    """

    __slots__ = (
        "args",
        "func",
        "handler",
        "ids",
        "inputs",
        "is_async",
        "n",
        "records",
        "schedule",
        "started",
        "time_left",
    )

    def __init__(
        self,
        records: Sequence[Mapping[str, Any]],
        ids: list[str],
        schedule: Schedule,
        handler: Callable[[Any], Any],
        is_async: bool,
        time_left: float | None,
    ) -> None:
        self.records = records
        self.ids = ids
        self.n = len(records)
        self.schedule = schedule
        self.handler = handler
        self.is_async = is_async
        self.time_left = time_left
        self.started = time.monotonic()
        self.args: list[Any] = [None] * self.n
        self.func: Callable[[Any], Any] = handler
        self.inputs: Sequence[Any] = self.args

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

    def remaining(self) -> float | None:
        if self.time_left is None:
            return None
        return self.time_left - (time.monotonic() - self.started)


class BasePartialProcessor(Generic[RecordT]):
    """The processor core shared by every facade.

    Use it as the incumbent documents its processors::

        with processor(records, record_handler, lambda_context=context):
            processed = processor.process()        # or: await processor.async_process()
        return processor.response()

    Subclasses may override :meth:`success_handler` and :meth:`failure_handler`, which are
    called once per record, in record order, after the batch has run.
    """

    DEFAULT_RESPONSE: ClassVar[PartialItemFailureResponse] = {"batchItemFailures": []}
    #: ``concurrency`` when none is given.
    default_concurrency: ClassVar[int | None] = 1
    #: The exception a record gets when ``stop_on_failure`` kept it from starting.
    stop_skip_error: ClassVar[type[RecordSkippedError]] = RecordSkippedError
    #: The exception a record gets when an earlier failure of its ordering key skipped it.
    key_skip_error: ClassVar[type[RecordSkippedError]] = RecordSkippedError

    records: Sequence[Mapping[str, Any]]
    handler: Callable[..., Any]
    lambda_context: Any

    def __init__(
        self,
        event_type: EventType,
        model: type[Any] | None = None,
        raise_on_entire_batch_failure: bool = True,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        *,
        concurrency: int | None = _UNSET,
        record_timeout: float | None = None,
        deadline_margin: float | None = DEFAULT_DEADLINE_MARGIN,
        stop_on_failure: bool = False,
        ordered: bool = True,
        backend: Literal["asyncio", "trio"] = "asyncio",
    ) -> None:
        self._source: SourceSpec = spec(event_type)
        self.event_type: EventType = self._source.event_type
        self.model = model
        self.raise_on_entire_batch_failure = raise_on_entire_batch_failure
        self.logger = logger
        self.concurrency = _check_concurrency(
            self.default_concurrency if concurrency is _UNSET else concurrency
        )
        self.record_timeout = _check_seconds("record_timeout", record_timeout)
        self.deadline_margin = _check_seconds("deadline_margin", deadline_margin)
        self.stop_on_failure = stop_on_failure
        self.ordered = ordered
        self.backend = _check_backend(backend)
        hooks: tuple[object, object] = (type(self).success_handler, type(self).failure_handler)
        self._default_hooks = hooks == _DEFAULT_HOOKS
        self._view: Callable[[Mapping[str, Any]], Any] = _VIEWS[self.event_type]
        self._convert: Callable[[Mapping[str, Any]], Any] = self._view
        if model is not None:
            from .models import converter_for  # imports pydantic: only when a model is used

            self._convert = converter_for(self.event_type, model)
        self.success_messages: list[RecordT] = []
        self.fail_messages: list[RecordT] = []
        self.exceptions: list[ExceptionInfo] = []
        self.batch_response: PartialItemFailureResponse = {"batchItemFailures": []}
        self.lambda_context = None
        self._result: BatchResult[RecordT] | None = None
        self._run: _Run | None = None
        self._previous_models: list[Any] | None = None
        self._busy = False
        #: Whether process() builds the list it returns; the entry points that only need the
        #: response turn it off for their batch (10,000 tuples nobody reads cost about 1 ms).
        self._collect = True

    # -- the incumbent's protocol ---------------------------------------------------------

    def __call__(
        self,
        records: Sequence[Mapping[str, Any]],
        handler: Callable[..., Any],
        lambda_context: Any = None,
    ) -> Self:
        """Set the batch to process: its records, the record handler, the Lambda context."""
        if self._busy:
            raise ProcessorStateError(
                "this processor is already processing a batch; one processor runs one batch "
                "at a time (make one processor per concurrent invocation)"
            )
        if not callable(handler):
            raise HandlerTypeError(f"the record handler must be callable, got {handler!r}")
        _refuse_generator_function(handler)
        self.records = records
        self.handler = handler
        self.lambda_context = lambda_context
        return self

    def __enter__(self) -> Self:
        self._prepare()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._busy = False
        if exc_type is None:
            if self._run is None:
                raise ProcessorStateError(
                    "the batch was not processed: call processor.process(), or await "
                    "processor.async_process() (a coroutine: not awaiting it processes "
                    "nothing), inside the 'with' block"
                )
            self._clean()
            self._check_entire_batch()

    def _prepare(self) -> None:
        """Forget everything about the previous batch."""
        if not hasattr(self, "handler"):
            raise ProcessorStateError(
                "call the processor with the batch first: "
                "with processor(records, record_handler, lambda_context=context): ..."
            )
        self.success_messages = []
        self.fail_messages = []
        self.exceptions = []
        self.batch_response = {"batchItemFailures": []}
        run = self._run
        # The previous batch's models are let go one at a time as this batch makes its own
        # (see _Run.convert_each); a private copy, so a result the user kept stays whole.
        self._previous_models = None
        if run is not None and self._convert is not self._view:
            self._previous_models = list(run.args)
        self._result = None
        self._run = None
        self._busy = True
        self._collect = True

    def _clean(self) -> None:
        """Called once after every record has run, when the block exits without an error.

        A hook for subclasses (flush what the batch collected, for example). The response is
        built when ``process()`` returns and the entire-batch check follows this hook, so an
        override that does not call ``super()._clean()`` loses neither.
        """

    def _check_entire_batch(self) -> None:
        """Raise :class:`BatchProcessingError` when every record's handler ran and failed."""
        result = self._result
        if result is None or not self.raise_on_entire_batch_failure or not result.all_failed:
            return
        raise BatchProcessingError(
            f"All records failed processing. {len(result)} individual errors "
            "logged separately below.",
            child_exceptions=[outcome.exc_info for outcome in result],
        )

    def response(self) -> PartialItemFailureResponse:
        """The partial batch response of the last batch: every record that did not succeed."""
        return self.batch_response

    @property
    def result(self) -> BatchResult[RecordT]:
        """Every record's typed outcome in the last batch processed."""
        if self._result is None:
            raise ProcessorStateError("no batch has been processed yet")
        return self._result

    def success_handler(self, record: RecordT, result: Any) -> SuccessResponse:
        """Called for each record that succeeded; keeps it in ``success_messages``."""
        self.success_messages.append(record)
        return SuccessResponse("success", result, record)

    def failure_handler(self, record: RecordT, exception: ExceptionInfo) -> FailureResponse:
        """Called for each record that did not succeed; keeps it and its exception."""
        self.exceptions.append(exception)
        self.fail_messages.append(record)
        return FailureResponse("fail", f"{describe(exception[0])}:{describe(exception[1])}", record)

    # -- processing ----------------------------------------------------------------------

    def process(self) -> list[SuccessResponse | FailureResponse]:
        """Process the batch, blocking until every record has an outcome.

        Sync handlers run inline at ``concurrency=1`` (no thread, no event loop), in worker
        threads otherwise; async handlers run on anybatch's long-lived event loop.
        """
        run = self._start()
        if not run.is_async and self.concurrency == 1 and self.record_timeout is None:
            remaining = run.remaining()
            if remaining is None and run.schedule.unconstrained:
                run_each_inline(run.schedule, run.func, run.inputs)
            else:
                deadline = None if remaining is None else time.monotonic() + remaining
                run_inline(run.schedule, run.func, run.inputs, deadline)
            _refuse_awaitables(run.schedule.values, run.handler, False)
        else:
            from ._portal import run_blocking

            run_blocking(self.backend, self._drive, run)
        return self._complete(run)

    async def async_process(self) -> list[SuccessResponse | FailureResponse]:
        """Process the batch on the running event loop (asyncio or trio, through anyio).

        Sync handlers run in worker threads, so they never block the loop.
        """
        run = self._start()
        await self._drive(run)
        return self._complete(run)

    async def _drive(self, run: _Run) -> None:
        from ._engine import run_pool

        func = run.func
        if not run.is_async:
            func = _in_threads(func)
        await run_pool(
            run.schedule,
            func,
            run.inputs,
            concurrency=self.concurrency,
            record_timeout=self.record_timeout,
            time_left=run.remaining(),
        )
        _refuse_awaitables(run.schedule.values, run.handler, run.is_async)

    def _make_schedule(self, records: Sequence[Mapping[str, Any]]) -> Schedule:
        """The schedule of one batch: its ordering keys and stop policy.

        Subclasses may override it to decide the policy per batch (for example, stop at the
        first failure when the batch comes from a FIFO queue).
        """
        keys = ordering_keys(records, self._source) if self.ordered else None
        return Schedule(len(records), keys, stop_on_failure=self.stop_on_failure)

    def _start(self) -> _Run:
        if not self._busy:
            raise ProcessorStateError(
                "process() runs inside the processor's context manager: "
                "with processor(records, record_handler, lambda_context=context): "
                "processor.process()"
            )
        if self._run is not None:
            raise ProcessorStateError("this batch was processed already; prepare the next one")
        records = self.records
        ids = identifiers(records, self._source)
        schedule = self._make_schedule(records)
        handler = self.handler
        context = self.lambda_context
        is_async = is_async_callable(handler)
        if context is not None and accepts_lambda_context(handler):
            handler = functools.partial(handler, lambda_context=context)
        run = self._run = _Run(records, ids, schedule, handler, is_async, self._time_left())
        if self._convert is self._view:
            run.args[:] = map(self._view, records)
        else:  # a model may refuse a record: that is the record's failure, not the batch's
            run.convert_each(self._convert, self._previous_models)
            self._previous_models = None
        return run

    def _time_left(self) -> float | None:
        context = self.lambda_context
        margin = self.deadline_margin
        if context is None or margin is None:
            return None
        remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
        if remaining_ms is None:
            return None
        return float(remaining_ms()) / 1000.0 - margin

    def _complete(self, run: _Run) -> list[SuccessResponse | FailureResponse]:
        kinds, values = run.schedule.close()
        args = run.args
        errors: dict[int, BaseException] = {}
        if kinds.count(SUCCESS) == len(kinds) and self._default_hooks:
            # Everything succeeded and nobody listens to the hooks: no per-record calls.
            self.success_messages = list(args)
            processed: list[SuccessResponse | FailureResponse] = []
            if self._collect:
                # SuccessResponse("success", value, record) each, without a Python frame apiece.
                new: Callable[[type[SuccessResponse], tuple[str, Any, Any]], SuccessResponse]
                new = cast("Any", tuple).__new__
                processed = list(
                    map(new, repeat(SuccessResponse), zip(repeat("success"), values, args))
                )
        else:
            processed = self._call_hooks(run, kinds, values, errors)
        result = self._result = BatchResult(run.ids, kinds, values, args, errors)
        # From the outcomes, not from fail_messages: a failure_handler override that does not
        # call super() must not make failed records go unreported. Built now, so that
        # response() is right inside the block too, and after a block that raised.
        self.batch_response = result.response()
        return processed

    def _call_hooks(
        self,
        run: _Run,
        kinds: list[int],
        values: list[Any],
        errors: dict[int, BaseException],
    ) -> list[SuccessResponse | FailureResponse]:
        """Call ``success_handler`` / ``failure_handler`` for each record, in record order."""
        records, args, ids = run.records, run.args, run.ids
        view = self._view
        stop_error, key_error = self.stop_skip_error, self.key_skip_error
        success_handler, failure_handler = self.success_handler, self.failure_handler
        logger = self.logger
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
            if logger is not None:
                status = status_of(kind).value
                logger.warning(
                    "record %s %s; it is reported for retry: %s: %s",
                    ids[index],
                    status,
                    type(exc).__name__,
                    describe(exc),
                    exc_info=(type(exc), exc, exc.__traceback__),
                    extra={"item_identifier": ids[index], "anybatch_status": status},
                )
        return processed


_DEFAULT_HOOKS: tuple[object, object] = (
    vars(BasePartialProcessor)["success_handler"],
    vars(BasePartialProcessor)["failure_handler"],
)


class BatchProcessor(BasePartialProcessor[RecordT]):
    """Process a batch from blocking code: ``process()``, ``process_partial_response``.

    Accepts sync or async record handlers. ``concurrency`` defaults to 1: a sync handler then
    runs inline in the calling thread, exactly as the incumbent's ``BatchProcessor``.
    """

    # One overload per event type, so that type checkers know the record type a handler gets.
    @overload
    def __init__(
        self: BatchProcessor[SQSRecord],
        event_type: Literal[EventType.SQS],
        model: None = None,
        raise_on_entire_batch_failure: bool = True,
        logger: _Logger | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None: ...
    @overload
    def __init__(
        self: BatchProcessor[KinesisStreamRecord],
        event_type: Literal[EventType.KinesisDataStreams],
        model: None = None,
        raise_on_entire_batch_failure: bool = True,
        logger: _Logger | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None: ...
    @overload
    def __init__(
        self: BatchProcessor[DynamoDBRecord],
        event_type: Literal[EventType.DynamoDBStreams],
        model: None = None,
        raise_on_entire_batch_failure: bool = True,
        logger: _Logger | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None: ...
    @overload
    def __init__(
        self: BatchProcessor[Any],
        event_type: EventType,
        model: None = None,
        raise_on_entire_batch_failure: bool = True,
        logger: _Logger | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None: ...
    @overload
    def __init__(
        self,
        event_type: EventType,
        model: type[RecordT],
        raise_on_entire_batch_failure: bool = True,
        logger: _Logger | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None: ...
    def __init__(
        self,
        event_type: EventType,
        model: type[Any] | None = None,
        raise_on_entire_batch_failure: bool = True,
        logger: _Logger | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None:
        super().__init__(event_type, model, raise_on_entire_batch_failure, logger, **options)


class AsyncBatchProcessor(BasePartialProcessor[RecordT]):
    """Process a batch from async code: ``await async_process_partial_response(...)``.

    ``concurrency`` (default 100) bounds how many records are handled at once; ``None`` is
    unbounded. Sync record handlers are accepted too and run in worker threads.
    """

    default_concurrency: ClassVar[int | None] = 100

    @overload
    def __init__(
        self: AsyncBatchProcessor[SQSRecord],
        event_type: Literal[EventType.SQS],
        model: None = None,
        raise_on_entire_batch_failure: bool = True,
        logger: _Logger | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None: ...
    @overload
    def __init__(
        self: AsyncBatchProcessor[KinesisStreamRecord],
        event_type: Literal[EventType.KinesisDataStreams],
        model: None = None,
        raise_on_entire_batch_failure: bool = True,
        logger: _Logger | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None: ...
    @overload
    def __init__(
        self: AsyncBatchProcessor[DynamoDBRecord],
        event_type: Literal[EventType.DynamoDBStreams],
        model: None = None,
        raise_on_entire_batch_failure: bool = True,
        logger: _Logger | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None: ...
    @overload
    def __init__(
        self: AsyncBatchProcessor[Any],
        event_type: EventType,
        model: None = None,
        raise_on_entire_batch_failure: bool = True,
        logger: _Logger | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None: ...
    @overload
    def __init__(
        self,
        event_type: EventType,
        model: type[RecordT],
        raise_on_entire_batch_failure: bool = True,
        logger: _Logger | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None: ...
    def __init__(
        self,
        event_type: EventType,
        model: type[Any] | None = None,
        raise_on_entire_batch_failure: bool = True,
        logger: _Logger | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None:
        super().__init__(event_type, model, raise_on_entire_batch_failure, logger, **options)


class SqsFifoPartialProcessor(BasePartialProcessor[SqsRecordT]):
    """Process an SQS FIFO batch from blocking code, keeping each message group in order.

    ``skip_group_on_error=False`` (default): after the first failure no record starts, and
    every record that did not succeed is reported: at ``concurrency=1`` (the default) exactly
    the incumbent's sequential behaviour. ``skip_group_on_error=True``: a failure skips only
    the later records of its message group; other groups carry on. With ``concurrency > 1``
    different groups run side by side, each still one record at a time, in order.
    """

    stop_skip_error: ClassVar[type[RecordSkippedError]] = SQSFifoCircuitBreakerError
    key_skip_error: ClassVar[type[RecordSkippedError]] = SQSFifoMessageGroupCircuitBreakerError

    def __init__(
        self,
        model: type[SqsRecordT] | None = None,
        skip_group_on_error: bool = False,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        *,
        raise_on_entire_batch_failure: bool = True,
        concurrency: int | None = _UNSET,
        record_timeout: float | None = None,
        deadline_margin: float | None = DEFAULT_DEADLINE_MARGIN,
        backend: Literal["asyncio", "trio"] = "asyncio",
    ) -> None:
        self.skip_group_on_error = skip_group_on_error
        super().__init__(
            EventType.SQS,
            model,
            raise_on_entire_batch_failure,
            logger,
            concurrency=concurrency,
            record_timeout=record_timeout,
            deadline_margin=deadline_margin,
            stop_on_failure=not skip_group_on_error,
            ordered=True,
            backend=backend,
        )


class AsyncSqsFifoPartialProcessor(SqsFifoPartialProcessor[SqsRecordT]):
    """:class:`SqsFifoPartialProcessor` for async code (``concurrency`` defaults to 100)."""

    default_concurrency: ClassVar[int | None] = 100
