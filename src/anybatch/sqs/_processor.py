"""The SQS processors: legacy "delete what succeeded", and failed-message visibility.

Both kinds are :class:`~anybatch.BasePartialProcessor` s for ``EventType.SQS``: records are
processed by the core engine exactly as by ``BatchProcessor``; then, inside ``process()`` /
``async_process()``, the SQS calls that the batch asks for are made through aiobotocore, and
the processor's block raises (legacy mode) when it exits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from anybatch import async_batch_processor, batch_processor
from anybatch._engine import Schedule
from anybatch._exceptions import (
    ProcessorStateError,
    RecordSkippedError,
    SQSFifoCircuitBreakerError,
    SQSFifoMessageGroupCircuitBreakerError,
)
from anybatch._options import is_int
from anybatch._outcome import Status
from anybatch._processor import BasePartialProcessor, SqsRecordT
from anybatch._sources import EventType

from ._client import AioSQS
from ._deadletter import DeadLetterQueue, DeadLetterRouter, check_dead_letter_queue
from ._deleter import Settlement, perform
from ._errors import SQSBatchProcessingError
from ._plan import (
    Call,
    Plan,
    RetryPolicy,
    SQSCleanup,
    VisibilityTimeout,
    check_visibility_timeout,
    cleanup,
    is_fifo_batch,
    plan,
)

if TYPE_CHECKING:
    from aiobotocore.session import AioSession  # pyright: ignore[reportMissingTypeStubs]
    from boto3.session import Session as Boto3Session  # pyright: ignore[reportMissingTypeStubs]
    from botocore.config import Config  # pyright: ignore[reportMissingTypeStubs]
    from typing_extensions import Self, Unpack

    from anybatch._options import ProcessorOptions
    from anybatch._outcome import FailureResponse, SuccessResponse

__all__ = [
    "AsyncPartialSQSProcessor",
    "AsyncSqsBatchProcessor",
    "PartialSQSProcessor",
    "SqsBatchProcessor",
    "async_sqs_batch_processor",
    "sqs_batch_processor",
]

R = TypeVar("R")
_NO_PLAN = Plan((), ())

#: Seconds kept free before the Lambda timeout for what follows the SQS calls (at most).
_SQS_MARGIN = 0.25


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # trio (aiobotocore needs asyncio: its calls hop to anybatch's loop)
        return False
    return True


def _is_boto3_session(value: object) -> bool:
    return type(value).__module__ == "boto3.session"


def _check_calls(value: object) -> int:
    if not is_int(value):
        raise TypeError(f"max_concurrent_calls must be a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"max_concurrent_calls must be >= 1, got {value}")
    return value


def _check_retry(value: object) -> RetryPolicy:
    if value is None:
        return RetryPolicy()
    if not isinstance(value, RetryPolicy):
        raise TypeError(f"retry must be a RetryPolicy or None, got {value!r}")
    return value


class _SQSProcessor(BasePartialProcessor[SqsRecordT]):
    """What both kinds share: the SQS calls after the batch, and the clients' lifetime."""

    #: Legacy mode: delete the records that succeeded when some did not.
    delete_successes: ClassVar[bool] = False

    failed_visibility_timeout: VisibilityTimeout | None
    #: Where permanent failures go: ``True`` (the queue's own), a queue URL or ARN, or
    #: ``None`` (nowhere: they are reported).
    dead_letter_queue: DeadLetterQueue | None
    retry: RetryPolicy
    max_concurrent_calls: int

    def _setup_sqs(
        self,
        *,
        config: Config | None,
        session: AioSession | None,
        endpoint_url: str | None,
        failed_visibility_timeout: VisibilityTimeout | None,
        retry: RetryPolicy | None,
        max_concurrent_calls: int,
        boto3_session: Boto3Session | None = None,
        dead_letter_queue: DeadLetterQueue | None = None,
    ) -> None:
        self.failed_visibility_timeout = check_visibility_timeout(failed_visibility_timeout)
        target = check_dead_letter_queue(dead_letter_queue)
        if target is not False and self.on_permanent_failure is not None:
            raise TypeError(
                "give dead_letter_queue= or on_permanent_failure=, not both: a permanent "
                "failure goes to one target"
            )
        self.dead_letter_queue = dead_letter_queue
        self.retry = _check_retry(retry)
        self.max_concurrent_calls = _check_calls(max_concurrent_calls)
        if boto3_session is None and _is_boto3_session(session):
            # The incumbent's third positional argument: PartialSQSProcessor(config, False, s).
            session, boto3_session = None, cast("Boto3Session", session)
        self._api = AioSQS(
            session=session,
            boto3_session=boto3_session,
            config=config,
            endpoint_url=endpoint_url,
            max_pool_connections=self.max_concurrent_calls,
        )
        if target is not False:
            self._router = DeadLetterRouter(
                self._api, target, self.retry, self.max_concurrent_calls
            )

    @property
    def _cleanup(self) -> SQSCleanup | None:
        cleanup: SQSCleanup | None = self._batch.extras.get("cleanup")
        return cleanup

    @_cleanup.setter
    def _cleanup(self, value: SQSCleanup | None) -> None:
        self._batch.extras["cleanup"] = value

    @property
    def _todo(self) -> Plan:
        todo: Plan = self._batch.extras.get("todo") or _NO_PLAN
        return todo

    @_todo.setter
    def _todo(self, value: Plan) -> None:
        self._batch.extras["todo"] = value

    # -- the batch ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def _prepare(self) -> None:
        super()._prepare()
        self._cleanup = None

    def process(self) -> list[SuccessResponse | FailureResponse]:
        """Process the batch, then make its SQS calls; blocks until both are done.

        The calls run on anybatch's long-lived asyncio loop, where the SQS clients stay
        open for the next warm invocation.
        """
        processed = super().process()
        calls = self._calls()
        settlement = None
        if calls:
            from anybatch._portal import call_on_loop

            settlement = call_on_loop("asyncio", self._perform, calls, self._sqs_time_left())
        self._settled(settlement)
        return processed

    async def async_process(self) -> list[SuccessResponse | FailureResponse]:
        """Process the batch on the running loop, then make its SQS calls there.

        On trio the calls are made on anybatch's asyncio loop (aiobotocore needs asyncio).
        """
        on_asyncio = _on_asyncio()
        if on_asyncio:
            self._api.check_loop()  # before any record runs, not after
        processed = await super().async_process()
        calls, time_left = self._calls(), self._sqs_time_left()
        settlement = None
        if calls and on_asyncio:
            settlement = await self._perform(calls, time_left)
        elif calls:
            from anyio import to_thread

            from anybatch._portal import call_on_loop

            settlement = await to_thread.run_sync(
                call_on_loop, "asyncio", self._perform, calls, time_left
            )
        self._settled(settlement)
        return processed

    def _calls(self) -> tuple[Call, ...]:
        """Plan what the batch asks of SQS; return the calls to make."""
        self._todo = plan(
            self.records,
            # A message in its dead-letter queue goes as one that succeeded does.
            [outcome.ok or outcome.status is Status.ROUTED for outcome in self.result],
            delete_successes=self.delete_successes,
            visibility=self.failed_visibility_timeout,
        )
        return self._todo.calls

    async def _perform(self, calls: Sequence[Call], time_left: float | None) -> Settlement:
        return await perform(
            self._api,
            calls,
            self.retry,
            max_concurrent_calls=self.max_concurrent_calls,
            time_left=time_left,
        )

    def _sqs_time_left(self) -> float | None:
        context, margin = self.lambda_context, self.deadline_margin
        remaining: Callable[[], float] | None = getattr(
            context, "get_remaining_time_in_millis", None
        )
        if remaining is None or margin is None:
            return None
        return float(remaining()) / 1000.0 - min(margin, _SQS_MARGIN)

    def _settled(self, settlement: Settlement | None) -> None:
        done, failures, calls = settlement or ((), (), 0)
        run = self._run
        routed: Settlement | None = (
            None if run is None or run.routing is None else run.routing.detail
        )
        if routed is not None:  # what the dead-letter sends did (logged as they were made)
            done, failures = (*routed.done, *done), (*routed.failures, *failures)
            calls += routed.api_calls
        report = self._cleanup = cleanup(done, [*self._todo.rejected, *failures], calls)
        logger = self.logger
        if logger is None:
            return
        for what, failed in (
            ("deleted", report.not_deleted),
            ("given a new visibility timeout", report.visibility_not_changed),
        ):
            for item in failed:
                logger.warning(
                    "SQS message %s could not be %s: %s: %s",
                    item.message_id,
                    what,
                    item.code,
                    item.reason,
                    extra={"item_identifier": item.message_id, "anybatch_sqs_code": item.code},
                )

    @property
    def cleanup(self) -> SQSCleanup:
        """What the last batch did in SQS: deleted messages, changed visibilities, failures."""
        if self._cleanup is None:
            raise ProcessorStateError("no batch has been processed yet")
        return self._cleanup

    # -- the clients ----------------------------------------------------------------------

    def close(self) -> None:
        """Close the SQS clients from blocking code. Blocks.

        Those ``process()`` made, or those ``async_process()`` made on anybatch's own loop
        (under ``as_lambda_handler``).
        """
        if self._api.has_clients:
            from anybatch._portal import call_on_loop, main_loop, run_blocking

            on_main_loop = self._api.loop is not None and self._api.loop is main_loop()
            (run_blocking if on_main_loop else call_on_loop)("asyncio", self._api.aclose)

    async def aclose(self) -> None:
        """Close the SQS clients that ``async_process()`` made."""
        if not self._api.has_clients:
            return
        if _on_asyncio():
            await self._api.aclose()
        else:
            from anyio import to_thread

            from anybatch._portal import call_on_loop

            await to_thread.run_sync(call_on_loop, "asyncio", self._api.aclose)


class PartialSQSProcessor(_SQSProcessor[SqsRecordT]):
    """Legacy SQS mode for blocking code: delete what succeeded, raise for what failed.

    For event source mappings without ``ReportBatchItemFailures``::

        processor = PartialSQSProcessor()

        def lambda_handler(event, context):
            with processor(event["Records"], record_handler, lambda_context=context):
                processor.process()
            return {"statusCode": 200}

    When some records failed, ``process()`` deletes every record that succeeded
    (``DeleteMessageBatch``, 10 a call, calls concurrent up to *max_concurrent_calls*,
    ``Failed`` entries checked, transient failures retried per *retry*), and the block raises
    :class:`SQSBatchProcessingError` when it exits, so Lambda returns only the failed messages
    to the queue — unless *suppress_exception*. When every record succeeded nothing is
    deleted: Lambda deletes the batch. A record that failed is never deleted.

    A batch from a FIFO queue stops at its first failure: only the records that succeeded
    before it are deleted. *failed_visibility_timeout* (seconds, or a function of the
    message's receive count) hides the failed messages for that long
    (``ChangeMessageVisibilityBatch``), so their retries back off.

    *config* (a botocore ``Config`` or ``AioConfig``), *session* (an aiobotocore session)
    or *boto3_session* (a boto3 ``Session``, as in Powertools: its profile, region and
    explicit credentials carry over), and *endpoint_url* are used to make the SQS clients;
    botocore's own configuration
    (``AWS_ENDPOINT_URL_SQS``, credentials chain) fills in the rest. Each queue's region
    and URL come from its records' ``eventSourceARN``.
    """

    delete_successes: ClassVar[bool] = True
    stop_skip_error: ClassVar[type[RecordSkippedError]] = SQSFifoCircuitBreakerError
    key_skip_error: ClassVar[type[RecordSkippedError]] = SQSFifoMessageGroupCircuitBreakerError

    def __init__(
        self,
        config: Config | None = None,
        suppress_exception: bool = False,
        session: AioSession | None = None,
        *,
        endpoint_url: str | None = None,
        boto3_session: Boto3Session | None = None,
        failed_visibility_timeout: VisibilityTimeout | None = None,
        dead_letter_queue: DeadLetterQueue | None = None,
        retry: RetryPolicy | None = None,
        max_concurrent_calls: int = 10,
        model: type[SqsRecordT] | None = None,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None:
        self.suppress_exception = suppress_exception
        super().__init__(
            EventType.SQS,
            model,
            raise_on_entire_batch_failure=False,  # legacy mode raises its own error in _clean
            logger=logger,
            **options,
        )
        self._setup_sqs(
            config=config,
            session=session,
            endpoint_url=endpoint_url,
            failed_visibility_timeout=failed_visibility_timeout,
            retry=retry,
            max_concurrent_calls=max_concurrent_calls,
            boto3_session=boto3_session,
            dead_letter_queue=dead_letter_queue,
        )

    def _make_schedule(self, records: Sequence[Mapping[str, Any]]) -> Schedule:
        if not is_fifo_batch(records):
            return super()._make_schedule(records)
        return Schedule(
            len(records),
            self._reading_for(records).source.ordering_keys(records),
            stop_on_failure=True,
        )

    def _clean(self) -> None:
        # From the outcomes, not from fail_messages: a failure_handler override that keeps
        # nothing must not let the failed messages be deleted with the batch.
        result = self.result
        failed = result.failed
        if not failed or self.suppress_exception:
            return
        raise SQSBatchProcessingError(
            f"Not all records processed successfully. {len(failed)} individual "
            "errors logged separately below.",
            [outcome.exc_info for outcome in failed],
            failures=failed,
            not_deleted=self.cleanup.not_deleted,
        )


class AsyncPartialSQSProcessor(PartialSQSProcessor[SqsRecordT]):
    """:class:`PartialSQSProcessor` for async code: ``await processor.async_process()``.

    ``concurrency`` defaults to 100. The SQS clients are made on the running loop and kept
    for the next invocation on that loop (``anybatch.as_lambda_handler`` keeps one);
    ``await processor.aclose()`` closes them.
    """

    default_concurrency: ClassVar[int | None] = 100


class SqsBatchProcessor(_SQSProcessor[SqsRecordT]):
    """``BatchProcessor(EventType.SQS)`` that also hides failed messages for a while.

    For event source mappings with ``ReportBatchItemFailures``: the partial batch response
    is built as by ``BatchProcessor``, and each failed message's visibility timeout is set
    from *failed_visibility_timeout* (seconds, or a function of its
    ``ApproximateReceiveCount``) with ``ChangeMessageVisibilityBatch``, so its retries back
    off instead of coming back as soon as the queue's visibility timeout ends::

        processor = SqsBatchProcessor(failed_visibility_timeout=lambda n: 10 * 2**n)

        def lambda_handler(event, context):
            return process_partial_response(event, record_handler, processor, context)

    A message whose visibility could not be changed is only logged (``logger``) and listed
    in :attr:`cleanup`: it comes back after the queue's own timeout.
    """

    def __init__(
        self,
        model: type[SqsRecordT] | None = None,
        raise_on_entire_batch_failure: bool = True,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        *,
        failed_visibility_timeout: VisibilityTimeout | None = None,
        dead_letter_queue: DeadLetterQueue | None = None,
        config: Config | None = None,
        session: AioSession | None = None,
        boto3_session: Boto3Session | None = None,
        endpoint_url: str | None = None,
        retry: RetryPolicy | None = None,
        max_concurrent_calls: int = 10,
        **options: Unpack[ProcessorOptions],
    ) -> None:
        if failed_visibility_timeout is None and dead_letter_queue in (None, False):
            raise TypeError(
                f"{type(self).__name__}() needs failed_visibility_timeout= or "
                "dead_letter_queue= (else BatchProcessor(EventType.SQS) does the same)"
            )
        super().__init__(EventType.SQS, model, raise_on_entire_batch_failure, logger, **options)
        self._setup_sqs(
            config=config,
            session=session,
            endpoint_url=endpoint_url,
            failed_visibility_timeout=failed_visibility_timeout,
            retry=retry,
            max_concurrent_calls=max_concurrent_calls,
            boto3_session=boto3_session,
            dead_letter_queue=dead_letter_queue,
        )


class AsyncSqsBatchProcessor(SqsBatchProcessor[SqsRecordT]):
    """:class:`SqsBatchProcessor` for async code (``concurrency`` defaults to 100)."""

    default_concurrency: ClassVar[int | None] = 100


# --- decorators ----------------------------------------------------------------------------


def _processor_or_settings(
    processor: PartialSQSProcessor[Any] | None,
    make: Callable[[], PartialSQSProcessor[Any]],
    suppress_exception: bool,
    settings: tuple[object, ...],
) -> PartialSQSProcessor[Any]:
    if processor is None:
        return make()
    if suppress_exception or any(value is not None for value in settings):
        raise TypeError(
            "give either processor= or the settings to make one (config, suppress_exception, "
            "session, boto3_session, endpoint_url, failed_visibility_timeout), not both"
        )
    return processor


def sqs_batch_processor(
    *,
    record_handler: Callable[..., Any],
    config: Config | None = None,
    suppress_exception: bool = False,
    session: AioSession | None = None,
    endpoint_url: str | None = None,
    failed_visibility_timeout: VisibilityTimeout | None = None,
    processor: PartialSQSProcessor[Any] | None = None,
    boto3_session: Boto3Session | None = None,
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Decorate a ``def lambda_handler(event, context)`` with the legacy SQS mode.

    The batch is processed first; when some records failed, those that succeeded are
    deleted and :class:`SQSBatchProcessingError` is raised (unless *suppress_exception*)
    instead of calling the handler. The processor (and its SQS clients) is made once, here,
    and reused by every warm invocation; pass *processor* to share or configure one.
    """
    chosen = _processor_or_settings(
        processor,
        lambda: PartialSQSProcessor(
            config,
            suppress_exception,
            session,
            endpoint_url=endpoint_url,
            boto3_session=boto3_session,
            failed_visibility_timeout=failed_visibility_timeout,
        ),
        suppress_exception,
        (config, session, endpoint_url, failed_visibility_timeout, boto3_session),
    )
    return batch_processor(record_handler=record_handler, processor=chosen)


def async_sqs_batch_processor(
    *,
    record_handler: Callable[..., Any],
    config: Config | None = None,
    suppress_exception: bool = False,
    session: AioSession | None = None,
    endpoint_url: str | None = None,
    failed_visibility_timeout: VisibilityTimeout | None = None,
    processor: PartialSQSProcessor[Any] | None = None,
    boto3_session: Boto3Session | None = None,
) -> Callable[[Callable[..., Awaitable[R]]], Callable[..., Awaitable[R]]]:
    """:func:`sqs_batch_processor` for an ``async def lambda_handler(event, context)``.

    Uses an :class:`AsyncPartialSQSProcessor`. Give the decorated handler to Lambda through
    ``anybatch.as_lambda_handler``, which keeps one event loop (and so the SQS clients)
    across warm invocations.
    """
    chosen = _processor_or_settings(
        processor,
        lambda: AsyncPartialSQSProcessor(
            config,
            suppress_exception,
            session,
            endpoint_url=endpoint_url,
            boto3_session=boto3_session,
            failed_visibility_timeout=failed_visibility_timeout,
        ),
        suppress_exception,
        (config, session, endpoint_url, failed_visibility_timeout, boto3_session),
    )
    return async_batch_processor(record_handler=record_handler, processor=chosen)
