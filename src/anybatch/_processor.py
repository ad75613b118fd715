"""The processors: one core, reached blocking (``process``) or awaited (``async_process``).

A processor is configured once and reused across warm invocations; everything about one batch
lives in a :class:`_Run` made when processing starts and is dropped when the next batch is
prepared. Record handling itself is the engine's: the I/O-free :class:`~._schedule.Schedule`
driven either inline (a sync handler at ``concurrency=1``: no event loop, no thread) or by the
anyio worker pool in ``_engine`` (awaited, or on the long-lived loop of ``_portal``).
"""

from __future__ import annotations

import _thread
import functools
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar, Token
from itertools import islice, repeat
from types import CodeType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, NamedTuple, cast, overload

from ._engine import SUCCESS, Schedule, drive, run_inline, runs_inline
from ._engine._threads import ThreadAwaitable
from ._exceptions import (
    BatchProcessingError,
    ExceptionInfo,
    HandlerTypeError,
    ProcessorStateError,
    RecordFailedError,
    RecordSkippedError,
    SQSFifoCircuitBreakerError,
    SQSFifoMessageGroupCircuitBreakerError,
)
from ._options import DEFAULT_DEADLINE_MARGIN, POLICY_OPTIONS, check_options
from ._outcome import (
    BatchResult,
    FailureResponse,
    PartialItemFailureResponse,
    Status,
    SuccessResponse,
    describe,
    outcome_exception,
    status_of,
)
from ._sources import EventType, batch_source, event_source, source_of
from .records import SQSRecord

if TYPE_CHECKING:
    import logging
    from types import TracebackType

    from typing_extensions import Self, TypeVar, Unpack

    from ._options import ProcessorOptions, RunOptions

    _Logger = logging.Logger | logging.LoggerAdapter[Any]
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

#: How many reported records the batch's summary log line names.
_SUMMARY_FIRST = 3

#: The interface's defaults, which the processor need not call.
_SETTLE: object = vars(EventType)["settle"]
_RESPOND: object = vars(EventType)["response"]

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
    flags = getattr(code, "co_flags", 0)  # AsyncMock's stand-in code says CO_COROUTINE too
    if isinstance(flags, int) and flags & _CO_COROUTINE:
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
    flags = code.co_flags if type(code) is CodeType else 0
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
    if type(code) is CodeType:  # not a Mock's stand-in (AsyncMock fakes its class)
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        return "lambda_context" in names
    import inspect

    try:
        return "lambda_context" in inspect.signature(func).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _refuse_awaitables(values: list[Any], handler: object, is_async: bool) -> None:
    """Fail the batch if the handler's results are awaitables: they would count as successes.

    A plain ``def`` that returns a coroutine, or an ``async def`` that returns one without
    awaiting it (``return store(record)``), did none of its work. Checked once the batch has
    run, outside every record's failure boundary, so it fails the batch, not each record.
    """
    if values.count(None) == len(values):  # handlers that return nothing: identity checks
        return
    types = set(map(type, values))
    if ThreadAwaitable not in types and not any(hasattr(kind, "__await__") for kind in types):
        return
    for value in values:
        if isinstance(value, ThreadAwaitable):
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


class _Reading(NamedTuple):
    """How records of one event type are read: their source, view and handler argument."""

    source: EventType[Any]
    view: Callable[[Mapping[str, Any]], Any]
    convert: Callable[[Mapping[str, Any]], Any]

    @property
    def converts(self) -> bool:
        """Whether a model makes each handler argument (it may refuse a record)."""
        return self.convert is not self.view


_READINGS: dict[tuple[EventType[Any], type[Any] | None], _Reading] = {}

#: The batch states the entry points bound in this context: (processor, its state, outer).
_Bound = tuple["BasePartialProcessor[Any]", "_Batch", Any]
_BOUND: ContextVar[_Bound | None] = ContextVar("anybatch_batches", default=None)
#: How many invocations run on a state of their own (bound in _BOUND) right now.
_bound_anywhere = 0
_CLAIM = _thread.allocate_lock()  # makes "is the processor's own state free? take it" one step


def _reading(event_type: object, model: type[Any] | None) -> _Reading:
    """The :class:`_Reading` of *event_type* with *model*; checks that the model fits."""
    source = source_of(event_type)
    key = (source, model)
    try:
        reading = _READINGS.get(key)
    except TypeError:  # not a class at all: converter_for says what is wrong with it
        reading = None
    if reading is None:
        view = source.view
        convert = view
        if model is not None:
            from .models import converter_for  # imports pydantic: only when a model is used

            convert = converter_for(source, model)
        reading = _READINGS[key] = _Reading(source, view, convert)
    return reading


#: Called with every batch's result once it has one (``anybatch run`` counts outcomes).
batch_observer: Callable[[BatchResult[Any]], None] | None = None

#: The exceptions ``failure_handler`` was given while a custom ``_process_record`` ran.
_REPORTED: ContextVar[list[BaseException] | None] = ContextVar("anybatch_reported", default=None)


def _method(cls: type[Any], name: str) -> object:
    """The function *cls* has for *name*, found as attribute lookup finds it."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    return None


def _is_success_entry(entry: object) -> bool:
    return (
        isinstance(entry, tuple)
        and len(cast("tuple[object, ...]", entry)) > 0
        and (cast("tuple[object, ...]", entry)[0] == "success")
    )


class _Run:
    """Everything about the batch being processed.

    The drivers call ``func(inputs[index])`` for each record they start: *inputs* are the
    record views (built up front: a view cannot fail), or the indices when a model converts
    each record inside its own failure boundary. ``args`` holds what the handler received,
    for the hooks and the results.
    """

    __slots__ = (
        "args",
        "batch",
        "entries",
        "func",
        "handler",
        "ids",
        "inputs",
        "is_async",
        "n",
        "reading",
        "records",
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
        reading: _Reading,
        batch: _Batch,
    ) -> None:
        self.reading = reading
        self.batch = batch
        self.started_at = 0.0  # time.time() when the batch started (with observers)
        #: What a custom _process_record returned for each record (custom processors only).
        self.entries: list[Any] | None = None
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

    def process_each(self, method: Callable[[Any], Any]) -> None:
        """Let a custom processor's ``_process_record`` (or its async twin) run each record.

        Its entry is the record's result; a ``"fail"`` entry fails the record with the
        exception given to ``failure_handler`` (or a :class:`RecordFailedError` when an
        override of ``failure_handler`` kept it to itself).
        """
        records = self.records
        entries: list[Any] = [None] * self.n
        self.entries = entries

        def settle(index: int, entry: Any, reported: list[BaseException]) -> Any:
            entries[index] = entry
            if _is_success_entry(entry):
                return entry
            exc = reported[-1] if reported else None
            if not isinstance(exc, Exception):
                raise RecordFailedError(entry)
            raise exc

        def run_sync(index: int) -> Any:
            reported: list[BaseException] = []
            token = _REPORTED.set(reported)
            try:
                entry = method(records[index])
            finally:
                _REPORTED.reset(token)
            return settle(index, entry, reported)

        async def run_async(index: int) -> Any:
            reported: list[BaseException] = []
            token = _REPORTED.set(reported)
            try:
                entry = await method(records[index])
            finally:
                _REPORTED.reset(token)
            return settle(index, entry, reported)

        func: Callable[[int], Any] = run_async if self.is_async else run_sync
        self.func = func
        self.inputs = range(self.n)

    def remaining(self) -> float | None:
        if self.time_left is None:
            return None
        return self.time_left - (time.monotonic() - self.started)


class BatchStarted(NamedTuple):
    """What an observer's ``batch_started`` learns of a batch before its records run."""

    #: ``"SQS"``, ``"KinesisDataStreams"``, ``"DynamoDBStreams"``.
    event_type: str
    #: How many records the batch holds.
    size: int
    #: Seconds before the deadline, or ``None`` without a Lambda context.
    time_left: float | None
    #: The raw records.
    records: Sequence[Mapping[str, Any]]


class _Watchers:
    """A processor's observers, sorted by the methods they implement.

    An observer that raises is logged and ignored: it never fails a record or the batch.
    """

    __slots__ = ("durations", "ends", "on_finished", "on_record", "on_started")

    def __init__(self, observers: Sequence[object]) -> None:
        def methods(name: str) -> list[Callable[[Any], object]]:
            return [m for m in (getattr(o, name, None) for o in observers) if callable(m)]

        self.on_started = methods("batch_started")
        self.on_record = methods("record_finished")
        self.on_finished = methods("batch_finished")
        # What the observers need of each record's time: a clock read per record costs
        # about 45 ns and each note another 10-20 ns, so none is taken that nobody reads.
        timings = {_timing_of(o) for o in observers}
        self.ends = "spans" in timings
        self.durations = self.ends or "durations" in timings

    @classmethod
    def of(cls, observers: Sequence[object]) -> _Watchers | None:
        watch = cls(observers)
        return watch if watch.on_started or watch.on_record or watch.on_finished else None

    def started(self, info: BatchStarted) -> None:
        for method in self.on_started:
            _call_observer(method, info)

    def finished(self, result: BatchResult[Any]) -> None:
        if self.on_record:
            for outcome in result:
                for method in self.on_record:
                    _call_observer(method, outcome)
        for method in self.on_finished:
            _call_observer(method, result)


_TIMINGS = ("spans", "durations", "none")


def _timing_of(observer: object) -> str:
    """An observer's ``timing``: ``"spans"`` (the default), ``"durations"`` or ``"none"``."""
    timing = getattr(observer, "timing", "spans")
    if timing not in _TIMINGS:
        raise ValueError(
            f"observer {observer!r} has timing={timing!r}; expected one of "
            + ", ".join(map(repr, _TIMINGS))
        )
    return cast("str", timing)


def _call_observer(method: Callable[[Any], object], arg: object) -> None:
    try:
        method(arg)
    except Exception:
        import logging

        logging.getLogger("anybatch.observe").warning(
            "observer %r raised; it is ignored", method, exc_info=True
        )


class _Batch:
    """The state of one batch: what the processor was called with, and how it went.

    A processor keeps one for the context-manager protocol, and the entry points
    (``process_partial_response`` and the rest) bind a fresh one for each invocation in a
    :class:`~contextvars.ContextVar`, so that invocations running at once in threads or tasks
    never share one.
    """

    __slots__ = (
        "batch_response",
        "busy",
        "claimed",
        "collect",
        "exceptions",
        "extras",
        "fail_messages",
        "handler",
        "lambda_context",
        "records",
        "result",
        "run",
        "success_messages",
    )

    def __init__(self) -> None:
        self.records: Sequence[Mapping[str, Any]] = ()
        self.handler: Callable[..., Any] | None = None
        self.lambda_context: Any = None
        self.success_messages: list[Any] = []
        self.fail_messages: list[Any] = []
        self.exceptions: list[ExceptionInfo] = []
        self.batch_response: PartialItemFailureResponse = {"batchItemFailures": []}
        self.run: _Run | None = None
        self.result: BatchResult[Any] | None = None
        #: Inside the processor's ``with`` block.
        self.busy = False
        #: Taken by an entry point's invocation (from before its ``with`` block to after).
        self.claimed = False
        #: Whether process() builds the list it returns; the entry points that only need the
        #: response turn it off for their batch (10,000 tuples nobody reads cost about 1 ms).
        self.collect = True
        #: What subclasses keep per batch (the SQS processors' calls and their report).
        self.extras: dict[str, Any] = {}


def _state(name: str, doc: str) -> Any:
    """A processor attribute that lives in the batch state of the current invocation."""

    def get(self: BasePartialProcessor[Any]) -> Any:
        return getattr(self._batch, name)  # pyright: ignore[reportPrivateUsage]

    def set_(self: BasePartialProcessor[Any], value: Any) -> None:
        setattr(self._batch, name, value)  # pyright: ignore[reportPrivateUsage]

    return property(get, set_, doc=doc)


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

    # The settings, as class-level defaults too: a subclass that never calls
    # super().__init__() (as the incumbent's "create your own processor" example does) works.
    event_type: EventType[Any] | None = None
    model: type[Any] | None = None
    raise_on_entire_batch_failure: bool = True
    logger: logging.Logger | logging.LoggerAdapter[Any] | None = None
    concurrency: int | None = 1
    record_timeout: float | None = None
    deadline_margin: float | None = DEFAULT_DEADLINE_MARGIN
    stop_on_failure: bool = False
    skip_key_on_failure: bool | None = None
    ordered: bool = True
    backend: Literal["asyncio", "trio"] = "asyncio"
    #: How many reported records of a batch get a log line of their own (with ``logger=``).
    log_records: int = 10
    #: What the processor tells about each batch (see :mod:`anybatch.observe`).
    observers: tuple[Any, ...] = ()
    _watch: _Watchers | None = None

    if TYPE_CHECKING:
        records: Sequence[Mapping[str, Any]]
        handler: Callable[..., Any]
        lambda_context: Any
        batch_response: PartialItemFailureResponse
        success_messages: list[RecordT]
        fail_messages: list[RecordT]
        exceptions: list[ExceptionInfo]
        _run: _Run | None
        _result: BatchResult[RecordT] | None
    else:
        records = _state("records", "The records of the batch being processed.")
        handler = _state("handler", "The record handler of the batch being processed.")
        lambda_context = _state("lambda_context", "The Lambda context of the batch.")
        batch_response = _state("batch_response", "The partial batch response of the batch.")
        success_messages = _state("success_messages", "The records that succeeded.")
        fail_messages = _state("fail_messages", "The records that did not succeed.")
        exceptions = _state("exceptions", "One ExceptionInfo per record that did not succeed.")
        _run = _state("run", None)
        _result = _state("result", None)

    # What the engine knows of the class (set for each subclass by __init_subclass__).
    _default_hooks: ClassVar[bool] = True
    _custom_sync: ClassVar[bool] = False
    _custom_async: ClassVar[bool] = False

    #: The previous batch's models, let go one by one as the next batch makes its own.
    _previous_models: list[Any] | None = None
    _fixed: _Reading | None = None
    _known_handler: tuple[Callable[..., Any], bool, bool] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hooks: tuple[object, object] = (cls.success_handler, cls.failure_handler)
        cls._default_hooks = hooks == _DEFAULT_HOOKS
        base: Any = BasePartialProcessor
        cls._custom_sync = vars(base)["_process_record"] is not _method(cls, "_process_record")
        cls._custom_async = vars(base)["_async_process_record"] is not _method(
            cls, "_async_process_record"
        )
        if "default_concurrency" in vars(cls) and "concurrency" not in vars(cls):
            cls.concurrency = cls.default_concurrency

    @property
    def _batch(self) -> _Batch:
        """The batch state of this invocation: bound by an entry point, else the shared one."""
        if _bound_anywhere:  # only while some invocation runs on a state of its own
            bound = _BOUND.get()
            while bound is not None:
                if bound[0] is self:
                    return bound[1]
                bound = bound[2]
        try:
            shared: _Batch = self.__dict__["_shared"]
        except KeyError:
            return self._batch_of_processor()
        return shared

    def _bind(self) -> tuple[Token[_Bound | None] | None, _Batch]:
        """Take batch state for an entry point's invocation.

        The processor's own state when it is free (the usual case: one invocation at a time);
        otherwise, when another invocation holds it (threads or tasks at once, as on Lambda
        Managed Instances), a fresh state bound to this context, so that everything the
        processor reads or writes during this invocation, hooks included, is its own.
        """
        shared = self._batch_of_processor()
        with _CLAIM:
            if not (shared.claimed or shared.busy):
                shared.claimed = True
                return None, shared
        global _bound_anywhere
        batch = _Batch()
        batch.claimed = True
        with _CLAIM:
            _bound_anywhere += 1
        return _BOUND.set((self, batch, _BOUND.get())), batch

    def _unbind(self, token: Token[_Bound | None] | None, batch: _Batch) -> None:
        """End the invocation :meth:`_bind` began."""
        global _bound_anywhere
        batch.claimed = False
        if token is not None:
            _BOUND.reset(token)
            with _CLAIM:
                _bound_anywhere -= 1

    def _batch_of_processor(self) -> _Batch:
        shared: _Batch | None = self.__dict__.get("_shared")
        if shared is None:
            shared = self.__dict__["_shared"] = _Batch()
        return shared

    def __init__(
        self,
        event_type: EventType[Any] | str | None = None,
        model: type[Any] | None = None,
        raise_on_entire_batch_failure: bool = True,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None:
        self.model = model
        self.event_type = None
        if event_type is not None:
            # Read the event type (and check the model against it) now, not on every batch.
            self._fixed = _reading(event_type, model)
            self.event_type = self._fixed.source
        self.raise_on_entire_batch_failure = raise_on_entire_batch_failure
        self.logger = logger
        # The knobs, checked in one place (anybatch._options) and set as attributes.
        settings = check_options(options, type(self).__name__, self.default_concurrency)
        for name, value in settings.items():
            setattr(self, name, value)
        self._watch = _Watchers.of(self.observers)

    # -- the incumbent's protocol ---------------------------------------------------------

    def __call__(
        self,
        records: Sequence[Mapping[str, Any]],
        handler: Callable[..., Any],
        lambda_context: Any = None,
    ) -> Self:
        """Set the batch to process: its records, the record handler, the Lambda context."""
        self._set_batch(self._batch, records, handler, lambda_context)
        return self

    def __enter__(self) -> Self:
        self._begin(self._batch)
        self._prepare()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._end(self._batch, exc_type is None)

    # The protocol's steps on a given batch state: the entry points, which hold theirs, call
    # them directly (one state lookup per invocation instead of one per step).

    def _set_batch(
        self,
        batch: _Batch,
        records: Sequence[Mapping[str, Any]],
        handler: Callable[..., Any],
        lambda_context: Any,
    ) -> None:
        if batch.busy:
            raise ProcessorStateError(
                "this processor is already processing a batch in this 'with' block; the "
                "context-manager protocol runs one batch at a time per processor (the entry "
                "points, process_partial_response and the decorators, run concurrent "
                "invocations on one processor)"
            )
        if not callable(handler):
            raise HandlerTypeError(f"the record handler must be callable, got {handler!r}")
        self._handler_kind(handler)  # refuses a generator function, before anything runs
        batch.records = records
        batch.handler = handler
        batch.lambda_context = lambda_context

    def _end(self, batch: _Batch, ok: bool) -> None:
        batch.busy = False
        if ok:
            if batch.run is None:
                raise ProcessorStateError(
                    "the batch was not processed: call processor.process(), or await "
                    "processor.async_process() (a coroutine: not awaiting it processes "
                    "nothing), inside the 'with' block"
                )
            self._clean()
            self._check_entire_batch(batch)

    def _begin(self, batch: _Batch) -> None:
        """Forget everything about the previous batch (before the ``_prepare`` hook)."""
        if batch.handler is None:
            raise ProcessorStateError(
                "call the processor with the batch first: "
                "with processor(records, record_handler, lambda_context=context): ..."
            )
        batch.success_messages = []
        batch.fail_messages = []
        batch.exceptions = []
        batch.batch_response = {"batchItemFailures": []}
        batch.result = None
        batch.run = None
        batch.busy = True
        batch.collect = True
        batch.extras = {}

    def _prepare(self) -> None:
        """Called when the ``with`` block is entered, before any record runs.

        A hook for subclasses (reset what they collect, open a resource). anybatch's own
        state is reset before it, so an override need not call ``super()._prepare()``.
        """

    def _clean(self) -> None:
        """Called once after every record has run, when the block exits without an error.

        A hook for subclasses (flush what the batch collected, for example). The response is
        built when ``process()`` returns and the entire-batch check follows this hook, so an
        override that does not call ``super()._clean()`` loses neither.
        """

    def _check_entire_batch(self, batch: _Batch) -> None:
        """Raise :class:`BatchProcessingError` when every record's handler ran and failed."""
        result = batch.result
        if result is None or not self.raise_on_entire_batch_failure:
            return
        if not result.entire_batch_failed:
            return
        raise BatchProcessingError(
            f"All records failed processing. {len(result)} individual errors "
            "logged separately below.",
            child_exceptions=[outcome.exc_info for outcome in result],
        )

    def response(self) -> PartialItemFailureResponse:
        """The partial batch response of the last batch: every record that did not succeed.

        A Firehose batch's response answers every record instead: a ``FirehoseResponse``.
        The entry points, this method and ``BatchResult.response()`` keep the one type that
        every other source returns, and that processors overriding ``response()`` declare;
        a Firehose function casts: ``cast(FirehoseResponse, process_partial_response(...))``.
        """
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
        reported = _REPORTED.get()
        if reported is not None and exception[1] is not None:
            reported.append(exception[1])  # a custom _process_record's failure: the record's
        self.exceptions.append(exception)
        self.fail_messages.append(record)
        return FailureResponse("fail", f"{describe(exception[0])}:{describe(exception[1])}", record)

    # -- processing ----------------------------------------------------------------------

    def process(self) -> list[SuccessResponse | FailureResponse]:
        """Process the batch, blocking until every record has an outcome.

        Sync handlers run inline at ``concurrency=1`` (no thread, no event loop), in worker
        threads otherwise; async handlers run on anybatch's long-lived event loop.
        """
        run = self._start(awaited=False)
        if runs_inline(run.is_async, self.concurrency, self.record_timeout):
            remaining = run.remaining()
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
        run = self._start(awaited=True)
        await self._drive(run)
        return self._complete(run)

    async def _drive(self, run: _Run) -> None:
        await drive(
            run.schedule,
            run.func,
            run.inputs,
            is_async=run.is_async,
            concurrency=self.concurrency,
            record_timeout=self.record_timeout,
            time_left=run.remaining(),
        )
        _refuse_awaitables(run.schedule.values, run.handler, run.is_async)

    def _make_schedule(self, records: Sequence[Mapping[str, Any]]) -> Schedule:
        """The schedule of one batch: its ordering keys and failure policies.

        Subclasses may override it to decide the policy per batch. By default every record
        runs; records that share an ordering key run one at a time, in order. A failure skips
        the rest of its key only where the source asks for it (an SQS FIFO batch) or
        ``skip_key_on_failure=True`` does.
        """
        source = self._reading_for(records).source
        skip = self.skip_key_on_failure
        keys = None
        if self.ordered:
            # A record_timeout may abandon a thread (or a task that will not end) that still
            # runs its record: the keys then keep the rest of its key from starting beside it.
            if self.concurrency != 1 or self.record_timeout is not None:
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
            stop_on_failure=self.stop_on_failure,
            skip_key_on_failure=bool(skip) and keys is not None,
        )

    def _records_of(self, event: object) -> list[Any]:
        """The records of *event*, read by the processor's source (or the event's own)."""
        fixed = self._fixed
        source = fixed.source if fixed is not None else event_source(event)
        return source.records(event)

    def _reading_for(self, records: Sequence[Mapping[str, Any]]) -> _Reading:
        """How to read *records*: the processor's event type, or the one the batch names."""
        fixed = self._fixed
        if fixed is not None:
            return fixed
        return _reading(batch_source(records), self.model)

    def _start(self, *, awaited: bool) -> _Run:
        batch = self._batch
        if not batch.busy:
            raise ProcessorStateError(
                "process() runs inside the processor's context manager: "
                "with processor(records, record_handler, lambda_context=context): "
                "processor.process()"
            )
        if batch.run is not None:
            raise ProcessorStateError("this batch was processed already; prepare the next one")
        records = batch.records
        reading = self._reading_for(records)
        ids = reading.source.identifiers(records)
        schedule = self._make_schedule(records)
        handler = cast("Callable[..., Any]", batch.handler)
        context = batch.lambda_context
        cls = type(self)
        custom = cls._custom_sync or cls._custom_async
        if custom:
            # The subclass's _process_record / _async_process_record handles each record.
            is_async = cls._custom_async and (awaited or not cls._custom_sync)
        else:
            is_async, takes_context = self._handler_kind(handler)
            if context is not None and takes_context:
                handler = functools.partial(handler, lambda_context=context)
        run = batch.run = _Run(
            records, ids, schedule, handler, is_async, self._time_left(context), reading, batch
        )
        watch = self._watch
        if watch is not None:
            if watch.durations:
                schedule.time_records(ends=watch.ends)
            run.started_at = time.time()
            watch.started(BatchStarted(reading.source.name, run.n, run.time_left, records))
        if custom:
            run.process_each(self._async_process_record if is_async else self._process_record)
        elif not reading.converts:
            run.args = run.inputs = list(map(reading.view, records))
        else:  # a model may refuse a record: that is the record's failure, not the batch's
            # The previous batch's models go as this one's are made (see _Run.convert_each);
            # taken, so that an invocation running at the same time makes its own.
            previous, self._previous_models = self._previous_models, None
            run.convert_each(reading.convert, previous)
        return run

    def _handler_kind(self, handler: Callable[..., Any]) -> tuple[bool, bool]:
        """Whether *handler* is async, and whether it takes ``lambda_context``.

        Kept for the next batch: warm invocations pass the same handler.
        """
        known = self._known_handler
        if known is not None and known[0] is handler:
            return known[1], known[2]
        _refuse_generator_function(handler)
        kind = (is_async_callable(handler), accepts_lambda_context(handler))
        self._known_handler = (handler, *kind)
        return kind

    # -- custom processors (the incumbent's extension point) -------------------------------

    def _process_record(self, record: Any) -> SuccessResponse | FailureResponse:
        """Handle one raw record from blocking code; override it to build your own processor.

        The engine calls an override once per record, under the processor's concurrency,
        ordering and deadline rules. It returns ``self.success_handler(record, result)`` or
        ``self.failure_handler(record, sys.exc_info())``; a ``"fail"`` entry fails the
        record. This default (used only by an override's ``super()`` call) calls the record
        handler with the record's view.
        """
        run = self._run
        arg = record if run is None else run.reading.convert(record)
        try:
            result = self.handler(arg)
        except Exception:
            return self.failure_handler(arg, sys.exc_info())
        return self.success_handler(arg, result)

    async def _async_process_record(self, record: Any) -> SuccessResponse | FailureResponse:
        """The awaitable twin of :meth:`_process_record`, for ``async_process()``."""
        run = self._run
        arg = record if run is None else run.reading.convert(record)
        try:
            result = await self.handler(arg)
        except Exception:
            return self.failure_handler(arg, sys.exc_info())
        return self.success_handler(arg, result)

    def _time_left(self, context: Any) -> float | None:
        margin = self.deadline_margin
        if context is None or margin is None:
            return None
        remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
        if remaining_ms is None:
            return None
        return float(remaining_ms()) / 1000.0 - margin

    def _complete(self, run: _Run) -> list[SuccessResponse | FailureResponse]:
        batch = run.batch
        kinds, values = run.schedule.close()
        source = run.reading.source
        settled = None
        if type(source).settle is not _SETTLE:
            # The source reads what the handlers returned (and may fail a record for it)
            # before any hook or observer sees the outcomes.
            settled = source.settle(run.records, kinds, values)
        args = run.args
        errors: dict[int, BaseException] = {}
        processed: list[SuccessResponse | FailureResponse] = []
        if run.entries is not None:
            processed = self._complete_custom(run, kinds, values, errors)
        elif kinds.count(SUCCESS) == len(kinds) and self._default_hooks:
            # Everything succeeded and nobody listens to the hooks: no per-record calls.
            batch.success_messages = list(args)
            if batch.collect:
                # SuccessResponse("success", value, record) each, without a Python frame apiece.
                new: Callable[[type[SuccessResponse], tuple[str, Any, Any]], SuccessResponse]
                new = cast("Any", tuple).__new__
                processed = list(
                    map(new, repeat(SuccessResponse), zip(repeat("success"), values, args))
                )
        else:
            processed = self._call_hooks(run, kinds, values, errors)
        respond = None if type(source).response is _RESPOND else source.response
        result = batch.result = BatchResult(run.ids, kinds, values, args, errors, respond)
        result.settled = settled
        # From the outcomes, not from fail_messages: a failure_handler override that does not
        # call super() must not make failed records go unreported. Built now, so that
        # response() is right inside the block too, and after a block that raised.
        batch.batch_response = result.response()
        watch = self._watch
        if watch is not None:
            schedule = run.schedule
            result.durations, result.ends = schedule.durations, schedule.ends
            result.event_type = run.reading.source.name
            result.source, result.raw_records = run.reading.source, run.records
            result.started_at, result.started = run.started_at, run.started
            result.duration = time.monotonic() - run.started
            result.time_left = run.remaining()
            watch.finished(result)
        if run.reading.converts:
            self._previous_models = list(args)  # a copy: a result kept by the user stays whole
        if batch_observer is not None:
            batch_observer(result)
        return processed

    def _complete_custom(
        self,
        run: _Run,
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
        stop_error, key_error = self.stop_skip_error, self.key_skip_error
        processed: list[SuccessResponse | FailureResponse] = []
        for index, kind in enumerate(kinds):
            run.args[index] = records[index]
            entry = entries[index]
            if kind != SUCCESS:
                exc = errors[index] = outcome_exception(kind, values[index], stop_error, key_error)
                if entry is None or entry[0] == "success":
                    entry = self.failure_handler(
                        records[index], (type(exc), exc, exc.__traceback__)
                    )
            assert entry is not None  # a success always has its entry
            processed.append(entry)
        self._log_reported(run, kinds, errors)
        return processed

    def _call_hooks(
        self,
        run: _Run,
        kinds: list[int],
        values: list[Any],
        errors: dict[int, BaseException],
    ) -> list[SuccessResponse | FailureResponse]:
        """Call ``success_handler`` / ``failure_handler`` for each record, in record order."""
        records, args = run.records, run.args
        view = run.reading.view
        stop_error, key_error = self.stop_skip_error, self.key_skip_error
        success_handler, failure_handler = self.success_handler, self.failure_handler
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
        self._log_reported(run, kinds, errors)
        return processed

    def _log_reported(self, run: _Run, kinds: list[int], errors: dict[int, BaseException]) -> None:
        """One summary line per batch, then a line for each of the first reported records.

        A 10,000-record batch cut by its deadline must not write 10,000 tracebacks: the
        summary counts every record by status and names the first few reported ones; at
        most ``log_records`` of them get a line of their own, with the traceback. Record
        bodies are never logged.
        """
        logger = self.logger
        if logger is None or not errors:
            return
        ids = run.ids
        name = run.reading.source.describe
        counts = {status.value: 0 for status in Status}
        for code in set(kinds):
            counts[status_of(code).value] += kinds.count(code)
        shown = ", ".join(f"{count} {name}" for name, count in counts.items() if count)
        first = [
            f"{name(ids[index])} {status_of(kinds[index]).value}: "
            f"{type(exc).__name__}: {describe(exc)}"
            for index, exc in islice(errors.items(), _SUMMARY_FIRST)
        ]
        more = len(errors) - len(first)
        logger.warning(
            "batch of %d records: %s; %d reported for retry: %s%s",
            len(kinds),
            shown,
            len(errors),
            "; ".join(first),
            f"; and {more} more" if more > 0 else "",
            extra={"anybatch_counts": {k: v for k, v in counts.items() if v}},
        )
        for index, exc in islice(errors.items(), self.log_records):
            status = status_of(kinds[index]).value
            logger.warning(
                "record %s %s; it is reported for retry: %s: %s",
                name(ids[index]),
                status,
                type(exc).__name__,
                describe(exc),
                exc_info=(type(exc), exc, exc.__traceback__),
                extra={"item_identifier": ids[index], "anybatch_status": status},
            )


_DEFAULT_HOOKS: tuple[object, object] = (
    vars(BasePartialProcessor)["success_handler"],
    vars(BasePartialProcessor)["failure_handler"],
)


class BatchProcessor(BasePartialProcessor[RecordT]):
    """Process a batch from blocking code: ``process()``, ``process_partial_response``.

    Accepts sync or async record handlers. ``concurrency`` defaults to 1: a sync handler then
    runs inline in the calling thread, exactly as the incumbent's ``BatchProcessor``.
    """

    # The source brings its record type: BatchProcessor(EventType.Kafka) hands its handler
    # KafkaEventRecord s, and a model= its model; no overload per source.
    @overload
    def __init__(
        self,
        event_type: EventType[RecordT],
        model: None = None,
        raise_on_entire_batch_failure: bool = True,
        logger: _Logger | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None: ...
    @overload
    def __init__(
        self,
        event_type: EventType[Any] | str | None,
        model: type[RecordT],
        raise_on_entire_batch_failure: bool = True,
        logger: _Logger | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None: ...
    @overload
    def __init__(
        self: BatchProcessor[Any],
        event_type: str | None = None,
        model: None = None,
        raise_on_entire_batch_failure: bool = True,
        logger: _Logger | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None: ...
    def __init__(
        self,
        event_type: EventType[Any] | str | None = None,
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

    # The source brings its record type: BatchProcessor(EventType.Kafka) hands its handler
    # KafkaEventRecord s, and a model= its model; no overload per source.
    @overload
    def __init__(
        self,
        event_type: EventType[RecordT],
        model: None = None,
        raise_on_entire_batch_failure: bool = True,
        logger: _Logger | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None: ...
    @overload
    def __init__(
        self,
        event_type: EventType[Any] | str | None,
        model: type[RecordT],
        raise_on_entire_batch_failure: bool = True,
        logger: _Logger | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None: ...
    @overload
    def __init__(
        self: AsyncBatchProcessor[Any],
        event_type: str | None = None,
        model: None = None,
        raise_on_entire_batch_failure: bool = True,
        logger: _Logger | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None: ...
    def __init__(
        self,
        event_type: EventType[Any] | str | None = None,
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
        **options: Unpack[RunOptions],
    ) -> None:
        policy = [name for name in POLICY_OPTIONS if name in options]
        if policy:
            raise TypeError(
                f"{type(self).__name__}() takes no {policy[0]}: a FIFO batch keeps every "
                "message group in order, and skip_group_on_error decides what a failure "
                "stops (False: the rest of the batch; True: the rest of its group)"
            )
        self.skip_group_on_error = skip_group_on_error
        super().__init__(
            EventType.SQS,
            model,
            raise_on_entire_batch_failure,
            logger,
            stop_on_failure=not skip_group_on_error,
            skip_key_on_failure=True,
            ordered=True,
            **options,
        )


class AsyncSqsFifoPartialProcessor(SqsFifoPartialProcessor[SqsRecordT]):
    """:class:`SqsFifoPartialProcessor` for async code (``concurrency`` defaults to 100)."""

    default_concurrency: ClassVar[int | None] = 100
