"""The processors: the incumbent's classes and protocol over one core.

A processor is configured once (its knobs: ``anybatch._options``) and reused across warm
invocations. What one batch holds lives in the invocation's state (``_invocation``); one
batch's run, from reading its records to its typed outcomes, is ``_run``'s; the records run on
the engine (``_engine``). What stays here is the public surface: the context-manager protocol,
``process()`` / ``async_process()``, the hooks subclasses override (``success_handler``,
``failure_handler``, ``_prepare``, ``_clean``, ``_process_record``, ``_async_process_record``,
``_make_schedule``) and the classes users make.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, overload

from . import _run as run_batch
from ._exceptions import (
    BatchProcessingError,
    ExceptionInfo,
    HandlerTypeError,
    ProcessorStateError,
    RecordSkippedError,
    SQSFifoCircuitBreakerError,
    SQSFifoMessageGroupCircuitBreakerError,
)
from ._handlers import HandlerKind, accepts_lambda_context, handler_kind, is_async_callable
from ._invocation import batch_of, state
from ._options import DEFAULT_DEADLINE_MARGIN, POLICY_OPTIONS, check_options
from ._outcome import (
    BatchResult,
    FailureResponse,
    PartialItemFailureResponse,
    SuccessResponse,
    describe,
)
from ._reading import Reading, reading_of
from ._sources import EventType, event_source

if TYPE_CHECKING:
    import logging
    from types import TracebackType

    from typing_extensions import Self, TypeVar, Unpack

    from ._engine import Schedule
    from ._invocation import _Batch  # pyright: ignore[reportPrivateUsage]
    from ._observers import Observers
    from ._options import ProcessorOptions, RunOptions
    from ._permanent import Router
    from ._run import Run
    from .records import SQSRecord

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
    "accepts_lambda_context",
    "is_async_callable",
]

RecordT = TypeVar("RecordT")
if TYPE_CHECKING:
    SqsRecordT = TypeVar("SqsRecordT", default=SQSRecord)
else:  # the SQS views are imported when a batch is read, not with anybatch
    SqsRecordT = TypeVar("SqsRecordT")


def _method(cls: type[Any], name: str) -> object:
    """The function *cls* has for *name*, found as attribute lookup finds it."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    return None


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
    #: Exception types besides ``PermanentFailure`` whose failures are permanent, and the
    #: async function a permanent failure is handed to (see ``docs/permanent.md``).
    permanent: tuple[type[BaseException], ...] = ()
    on_permanent_failure: Callable[[Any, BaseException], Any] | None = None
    _router: Router | None = None  # the SQS processors' dead-letter queue
    _observing: Observers | None = None

    if TYPE_CHECKING:
        records: Sequence[Mapping[str, Any]]
        handler: Callable[..., Any]
        lambda_context: Any
        batch_response: PartialItemFailureResponse
        success_messages: list[RecordT]
        fail_messages: list[RecordT]
        exceptions: list[ExceptionInfo]
        _run: Run | None
        _result: BatchResult[RecordT] | None
    else:
        records = state("records", "The records of the batch being processed.")
        handler = state("handler", "The record handler of the batch being processed.")
        lambda_context = state("lambda_context", "The Lambda context of the batch.")
        batch_response = state("batch_response", "The partial batch response of the batch.")
        success_messages = state("success_messages", "The records that succeeded.")
        fail_messages = state("fail_messages", "The records that did not succeed.")
        exceptions = state("exceptions", "One ExceptionInfo per record that did not succeed.")
        _run = state("run", None)
        _result = state("result", None)

    # What the engine knows of the class (set for each subclass by __init_subclass__).
    _default_hooks: ClassVar[bool] = True
    _custom_sync: ClassVar[bool] = False
    _custom_async: ClassVar[bool] = False
    _custom: ClassVar[bool] = False  # either of the two
    _default_schedule: ClassVar[bool] = True  # _make_schedule not overridden

    #: The previous batch's models, let go one by one as the next batch makes its own.
    _previous_models: list[Any] | None = None
    _fixed: Reading | None = None
    _known_handler: tuple[Callable[..., Any], HandlerKind] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hooks: tuple[object, object] = (cls.success_handler, cls.failure_handler)
        cls._default_hooks = hooks == _DEFAULT_HOOKS
        base: Any = BasePartialProcessor
        cls._custom_sync = vars(base)["_process_record"] is not _method(cls, "_process_record")
        cls._custom_async = vars(base)["_async_process_record"] is not _method(
            cls, "_async_process_record"
        )
        cls._custom = cls._custom_sync or cls._custom_async
        cls._default_schedule = getattr(cls._make_schedule, "anybatch_default", False)
        if "default_concurrency" in vars(cls) and "concurrency" not in vars(cls):
            cls.concurrency = cls.default_concurrency

    @property
    def _batch(self) -> _Batch:
        """The batch state of this invocation: bound by an entry point, else the shared one."""
        return batch_of(self)

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
            self._fixed = reading_of(event_type, model)
            self.event_type = self._fixed.source
        self.raise_on_entire_batch_failure = raise_on_entire_batch_failure
        self.logger = logger
        # The knobs, checked in one place (anybatch._options) and set as attributes.
        settings = check_options(options, type(self).__name__, self.default_concurrency)
        for name, value in settings.items():
            setattr(self, name, value)
        if self.observers:
            from ._observers import Observers  # with observers only: import cost is cold start

            self._observing = Observers.of(self.observers)

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
        # Refuses a generator function, before anything runs.
        batch.kind = self._handler_kind(handler)
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
        reported = run_batch.REPORTED.get()
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
        return run_batch.process(self)

    async def async_process(self) -> list[SuccessResponse | FailureResponse]:
        """Process the batch on the running event loop (asyncio or trio, through anyio).

        Sync handlers run in worker threads, so they never block the loop.
        """
        return await run_batch.async_process(self)

    @run_batch.default_hook
    def _make_schedule(self, records: Sequence[Mapping[str, Any]]) -> Schedule:
        """The schedule of one batch: its ordering keys and failure policies.

        Subclasses may override it to decide the policy per batch. By default every record
        runs; records that share an ordering key run one at a time, in order. A failure skips
        the rest of its key only where the source asks for it (an SQS FIFO batch) or
        ``skip_key_on_failure=True`` does.
        """
        return run_batch.default_schedule(self, self._reading_for(records).source, records)

    def _records_of(self, event: object) -> list[Any]:
        """The records of *event*, read by the processor's source (or the event's own)."""
        fixed = self._fixed
        source = fixed.source if fixed is not None else event_source(event)
        return source.records(event)

    def _reading_for(self, records: Sequence[Mapping[str, Any]]) -> Reading:
        """How to read *records*: the processor's event type, or the one the batch names."""
        return run_batch.reading_for(self, records)

    def _response_of(self, batch: _Batch) -> PartialItemFailureResponse:
        """:meth:`response` for *batch*, read straight from it unless a subclass overrides it."""
        if type(self).response is _BASE_RESPONSE:
            return batch.batch_response
        return self.response()

    def _handler_kind(self, handler: Callable[..., Any]) -> HandlerKind:
        """How to call *handler*: async or not, ``lambda_context``, ``record=`` by keyword.

        Kept for the next batch: warm invocations pass the same handler.
        """
        known = self._known_handler
        if known is not None and known[0] is handler:
            return known[1]
        kind = handler_kind(handler)
        self._known_handler = (handler, kind)
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


_DEFAULT_HOOKS: tuple[object, object] = (
    vars(BasePartialProcessor)["success_handler"],
    vars(BasePartialProcessor)["failure_handler"],
)
_BASE_RESPONSE: object = vars(BasePartialProcessor)["response"]


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
