"""The SQS worker: the record handler of a Lambda function, consuming a queue anywhere.

Pollers long-poll the queue and turn each receive (up to 10 messages) into the records Lambda
would deliver; each receive is then processed as one batch by the processor, exactly as on
Lambda (ordering, concurrency, ``record_timeout``, models, observers), with the other batches
in flight. Then, through the same I/O adapter and retries as the legacy mode:

* a message whose handler succeeded is deleted (``DeleteMessageBatch``, up to 10 at a time);
* a message whose handler failed gets the visibility the *failed_visibility_timeout* policy
  says, or is left to the queue's own visibility timeout;
* a message that never ran (the rest of a failed FIFO group, or what a stop left unfinished)
  is released at once (visibility 0) for another worker, in its order;
* while a batch runs, its messages' visibility is extended (``ChangeMessageVisibilityBatch``)
  before it runs out, so that no other worker receives them mid-flight.

Whatever happens, every message received is deleted only after its handler succeeded, or
becomes visible again: released, failed, or when its visibility expires.

This module holds the worker and its receive loop; what a message becomes is ``_records``'s,
how a batch settles ``_settle``'s, the extensions ``_heartbeat``'s.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import anyio

from anybatch._exceptions import BatchProcessingError
from anybatch._invocation import Invocation
from anybatch._permanent import ROUTER
from anybatch._processor import AsyncBatchProcessor, BasePartialProcessor
from anybatch._sources import EventType

from ._deadletter import DeadLetterQueue, DeadLetterRouter, check_dead_letter_queue
from ._deleter import SQSCallError
from ._errors import SQSWorkerError
from ._failures import log_failures, looks_like_lambda_handler
from ._health import HealthFile
from ._heartbeat import Heartbeats
from ._plan import (
    MAX_VISIBILITY_TIMEOUT,
    QueueRef,
    RetryPolicy,
    VisibilityTimeout,
    check_visibility_timeout,
    parse_queue_arn,
)
from ._records import WorkerContext, lambda_record
from ._room import Room
from ._settle import Caller, Settle, settle, settles_after, settles_of
from ._stats import WorkerStats

if TYPE_CHECKING:
    from aiobotocore.session import AioSession  # pyright: ignore[reportMissingTypeStubs]
    from botocore.config import Config  # pyright: ignore[reportMissingTypeStubs]

    from ._client import AioSQS

__all__ = ["SQSWorker"]

logger = logging.getLogger("anybatch.worker")

#: A received batch to run: its queue, the context, its records, when it was received.
_Job = tuple[QueueRef, Any, list[dict[str, Any]], float]


def _check_positive(name: str, value: object, *, integer: bool = False) -> Any:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value != value:
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    if cast("float", value) <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


class SQSWorker:
    """Consume an SQS queue with a record handler and the processor it runs under on Lambda.

    ``await worker.run()`` polls until :meth:`stop` is called; it returns the
    :class:`WorkerStats`, or raises :class:`SQSWorkerError` when SQS refuses the queue for
    good (it does not exist, access is denied); throttling, server errors and lost
    connections are retried. *processor* is any SQS processor (``AsyncBatchProcessor(
    EventType.SQS, ...)``, ``BatchProcessor(...)`` for sync handlers, with ``model=`` and
    ``record_timeout=``); by default ``AsyncBatchProcessor(EventType.SQS)``.

    * *max_in_flight* (default: the processor's concurrency, at least 10, or 100 when it is
      unbounded): messages received and not yet processed, at most; no receive is made while
      they are that many.
    * *pollers* (default: enough to fill *max_in_flight* 10 at a time, at most 10) long-poll
      the queue at once, each for up to *wait_time* seconds (at most 20).
    * *visibility_timeout* (seconds; by default the queue's own, read with
      ``GetQueueAttributes`` when :meth:`run` starts) is asked for on each receive; while a
      batch runs, its messages' visibility is extended by that much whenever a third of it is
      left, up to *max_visibility* (default 12 hours, SQS's limit) since they were received:
      the extension that reaches it is the last.
    * *failed_visibility_timeout*: seconds, or a function of the receive count (such as
      :class:`ExponentialBackoff`), that a failed message stays hidden; ``None`` (the
      default) leaves it to the visibility timeout. A function that raises (or returns no
      number) is logged, and its message left to the visibility timeout.
    * *drain_timeout* (seconds, default 30): after :meth:`stop`, how long batches in flight
      may run on. What has not finished then is released for another worker.
    * *health_file*: a path the event loop touches every *health_interval* seconds (default
      5) from the start of :meth:`run` to its end (the drain included), and removes then: a
      liveness probe checks its age. A loop blocked by a handler stops touching it.
    * *dead_letter_queue*: where a permanent failure (a handler raised
      :class:`~anybatch.PermanentFailure`, or a type in the processor's ``permanent=``) goes:
      ``True`` for the queue's own dead-letter queue (its ``RedrivePolicy``), or a queue URL
      or ARN. The message is sent there with its body and attributes and the failure's type
      and message, then deleted from the queue; a send that fails leaves it to come back, as
      any failure. Not with a processor that has ``on_permanent_failure=`` (one target).

    The SQS client comes from *session* (aiobotocore) or *boto3_session*, *config* and
    *endpoint_url*, as for the legacy processors; *region* defaults to the queue URL's. With no
    *endpoint_url*, a queue URL whose host is not AWS's (``http://127.0.0.1:9324/...``) is its
    own endpoint, unless ``AWS_ENDPOINT_URL_SQS`` (or ``AWS_ENDPOINT_URL``) names one.
    """

    _heartbeats: Heartbeats  # run()'s, made once it knows the visibility timeout

    def __init__(
        self,
        queue_url: str,
        record_handler: Callable[..., Any],
        processor: BasePartialProcessor[Any] | None = None,
        *,
        max_in_flight: int | None = None,
        pollers: int | None = None,
        wait_time: float = 20.0,
        visibility_timeout: int | None = None,
        max_visibility: int = MAX_VISIBILITY_TIMEOUT,
        failed_visibility_timeout: VisibilityTimeout | None = None,
        drain_timeout: float = 30.0,
        region: str | None = None,
        session: AioSession | None = None,
        boto3_session: Any = None,
        config: Config | None = None,
        endpoint_url: str | None = None,
        retry: RetryPolicy | None = None,
        max_concurrent_calls: int = 10,
        health_file: str | os.PathLike[str] | None = None,
        health_interval: float = 5.0,
        dead_letter_queue: DeadLetterQueue | None = None,
    ) -> None:
        if not isinstance(cast("object", queue_url), str) or "/" not in queue_url:
            raise ValueError(f"queue_url must be an SQS queue URL, got {queue_url!r}")
        if not callable(record_handler):
            raise TypeError(f"record_handler must be callable, got {record_handler!r}")
        self.queue_url = queue_url
        self.record_handler = record_handler
        self._lambda = looks_like_lambda_handler(record_handler)  # for the failures' hint
        self.processor: BasePartialProcessor[Any] = (
            AsyncBatchProcessor(EventType.SQS) if processor is None else processor
        )
        source = self.processor.event_type
        if source is not None and source is not EventType.SQS:
            raise TypeError(f"an SQSWorker's processor reads EventType.SQS, not {source}")
        concurrency = self.processor.concurrency
        default_in_flight = 100 if concurrency is None else max(concurrency, 10)
        self.max_in_flight: int = _check_positive(
            "max_in_flight",
            default_in_flight if max_in_flight is None else max_in_flight,
            integer=True,
        )
        self.pollers: int = _check_positive(
            "pollers",
            min(10, math.ceil(self.max_in_flight / 10)) if pollers is None else pollers,
            integer=True,
        )
        if not 0 <= wait_time <= 20:
            raise ValueError(f"wait_time must be between 0 and 20 seconds, got {wait_time!r}")
        self.wait_time = wait_time
        self.visibility_timeout: int | None = None
        """The visibility timeout asked for; ``None``: the queue's own."""
        if visibility_timeout is not None:
            self.visibility_timeout = _check_positive(
                "visibility_timeout", visibility_timeout, integer=True
            )
        self.max_visibility: int = _check_positive("max_visibility", max_visibility, integer=True)
        least = "1" if visibility_timeout is None else f"visibility_timeout ({visibility_timeout})"
        if not (visibility_timeout or 1) <= max_visibility <= MAX_VISIBILITY_TIMEOUT:
            raise ValueError(
                f"max_visibility must be between {least} and {MAX_VISIBILITY_TIMEOUT} seconds, "
                f"got {max_visibility!r}"
            )
        self.failed_visibility_timeout = check_visibility_timeout(failed_visibility_timeout)
        self.drain_timeout: float = _check_positive("drain_timeout", drain_timeout)
        self.region = region or _region_of(queue_url)
        self.retry = retry or RetryPolicy()
        self.max_concurrent_calls = max_concurrent_calls
        from ._client import AioSQS
        from ._endpoint import endpoint_of

        #: Where the SQS calls go: *endpoint_url*, else the queue URL's host unless it is an
        #: AWS one (``None``: botocore's choice, ``AWS_ENDPOINT_URL_SQS`` or the region's).
        self.endpoint_url = endpoint_of(queue_url, endpoint_url)
        self._sqs: AioSQS = AioSQS(
            session=session,
            boto3_session=boto3_session,
            config=config,
            endpoint_url=self.endpoint_url,
            max_pool_connections=max(max_concurrent_calls, self.pollers) + 2,
        )
        self.health: HealthFile | None = None
        """The health file, touched every *health_interval* seconds while the worker runs."""
        if health_file is not None:
            self.health = HealthFile(
                health_file, _check_positive("health_interval", health_interval)
            )
        self.dead_letter_queue = dead_letter_queue
        target = check_dead_letter_queue(dead_letter_queue)
        own = self.processor.on_permanent_failure or self.processor._router  # pyright: ignore[reportPrivateUsage]
        if target is not False and own is not None:
            raise TypeError(
                "give the worker dead_letter_queue= or the processor a target of its own "
                "(on_permanent_failure=, an SQS processor's dead_letter_queue=), not both: a "
                "permanent failure goes to one target"
            )
        # The permanent failures of the batches it runs go through the worker's own client
        # (the processor itself is left as it was: see run()).
        self._router = (
            None
            if target is False
            else DeadLetterRouter(self._sqs, target, self.retry, max_concurrent_calls)
        )
        self.stats = WorkerStats()
        self._caller = Caller(self._sqs, self.retry, max_concurrent_calls)
        self._stopping = False
        self._stop_now = False
        self._room: Room | None = None  # the pollers waiting for room, while run() runs
        self._idle: list[asyncio.Future[_Job]] = []  # runners waiting for a batch
        self._receives: anyio.CancelScope | None = None
        self._in_flight = 0  # received and not yet processed (or reserved by a receive)
        self._reserved = 0  # of which reserved by the receives waiting
        self._receiving: list[float] = []  # when each receive waiting started
        self._settling = 0  # processed, their deletes and visibility changes being made
        self._drained: anyio.Event | None = None
        self._drain_until = math.inf
        self._fatal: SQSWorkerError | None = None
        self._visibility = self.visibility_timeout or 0  # the queue's, once run() read it

    # -- control ----------------------------------------------------------------------------

    def stop(self, *, now: bool = False) -> None:
        """Stop receiving; batches in flight get ``drain_timeout`` to finish.

        A receive already waiting is let finish (it is never cut off: SQS would hide what it
        returns until its visibility runs out); what it returns is released at once.
        ``now=True`` (a second signal) stops at once: nothing more is deleted or released,
        and the messages in flight become visible again when their visibility runs out.
        """
        first = not self._stopping
        if first:
            self._drain_until = time.monotonic() + self.drain_timeout
        self._stopping = True
        if self._room is not None and (first or (now and not self._stop_now)):
            logger.info("%s", self._stopping_line(now=now))
        if now:
            self._stop_now = True
            if self._receives is not None:
                self._receives.cancel()
            if self._drained is not None:
                self._drained.set()
        if self._room is not None:
            self._room.wake_all()

    @property
    def in_flight(self) -> int:
        """Messages received and not yet settled (processing, or being deleted or released)."""
        return self._in_flight - self._reserved + self._settling

    def _stopping_line(self, *, now: bool) -> str:
        """What a stop waits for: the receives in flight, the messages to drain."""
        messages = self.in_flight
        if now:
            return (
                f"stopping now: {_count(messages, 'message')} in flight left to their "
                "visibility timeout"
            )
        waits: list[str] = []
        if self._receiving:
            clock = time.monotonic()
            left = max(0.0, self.wait_time - (clock - max(self._receiving)))
            receives = _count(len(self._receiving), "receive")
            waits.append(f"waiting up to {math.ceil(left)} s for {receives} in flight")
        if messages:
            waits.append(f"draining {_count(messages, 'message')} (up to {self.drain_timeout:g} s)")
        return "stopping: " + ("; ".join(waits) or "nothing in flight")

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> WorkerStats:
        """Consume the queue until :meth:`stop`; return what was done."""
        queue = await self._queue()
        context = WorkerContext(queue)
        self._room = Room(self.max_in_flight)
        self._drained = anyio.Event()
        self._idle = []
        self._heartbeats = Heartbeats(
            self._caller, self._visibility, self.max_visibility, self.stats
        )
        logger.info(
            "worker started on %s: %d in flight at most, %d pollers, visibility timeout %d s%s",
            self.queue_url,
            self.max_in_flight,
            self.pollers,
            self._visibility,
            "" if self.visibility_timeout else " (the queue's)",
        )
        routing = ROUTER.set(self._router) if self._router is not None else None
        try:
            async with anyio.create_task_group() as batches:
                if self.health is not None:
                    batches.start_soon(self.health.keep_fresh)
                with anyio.CancelScope() as receives:
                    self._receives = receives
                    if self._stopping:
                        receives.cancel()
                    async with anyio.create_task_group() as pollers:
                        for _ in range(self.pollers):
                            pollers.start_soon(self._poll, queue, context, batches)
                # Stopped: no more receives. Batches in flight may finish within the drain.
                if (self._in_flight or self._settling) and not self._stop_now:
                    logger.info("draining %d messages in flight", self._in_flight + self._settling)
                    with anyio.move_on_after(max(0.0, self._drain_until - time.monotonic())):
                        await self._drained.wait()
                batches.cancel_scope.cancel()
        finally:
            self._heartbeats.close()
            if routing is not None:
                ROUTER.reset(routing)
            if self.health is not None:
                self.health.remove()
            with anyio.CancelScope(shield=True):
                await self._sqs.aclose()
        logger.info("worker stopped: %s", self.stats.summary())
        if self._fatal is not None:
            raise self._fatal
        return self.stats

    async def _queue(self) -> QueueRef:
        """The queue's ARN and visibility timeout, asked of SQS (which checks that it exists)."""
        try:
            attributes = await self._sqs.queue_attributes(
                self.queue_url, self.region, ["QueueArn", "VisibilityTimeout"]
            )
            queue, self._visibility = self._settings_of(attributes)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await self._sqs.aclose()
            if isinstance(exc, SQSCallError):
                raise SQSWorkerError(exc.problem.code, exc.problem.message) from None
            raise
        return queue

    def _settings_of(self, attributes: Mapping[str, str]) -> tuple[QueueRef, int]:
        """The queue, and the visibility timeout to ask for: the setting, or the queue's."""
        url = self.queue_url
        try:
            queue = parse_queue_arn(attributes.get("QueueArn"))
        except ValueError as exc:
            raise SQSWorkerError(
                "InvalidQueueAttributes", f"GetQueueAttributes of {url}: {exc}"
            ) from None
        if self.visibility_timeout is not None:
            return queue, self.visibility_timeout
        text = attributes.get("VisibilityTimeout")
        try:
            seconds = int(str(text))
        except ValueError:
            raise SQSWorkerError(
                "InvalidQueueAttributes",
                f"GetQueueAttributes of {url} gave no VisibilityTimeout ({text!r}): give the "
                "worker's visibility_timeout (--visibility-timeout)",
            ) from None
        if not 0 < seconds <= self.max_visibility:
            # 0: each receive's messages could be received again at once, mid-flight.
            raise ValueError(
                f"the visibility timeout of {url} is {seconds} s: the worker needs one between "
                f"1 s and max_visibility ({self.max_visibility} s); give the worker's "
                "visibility_timeout (--visibility-timeout), or change the queue's"
            )
        return queue, seconds

    async def _poll(self, queue: QueueRef, context: Any, batches: anyio.abc.TaskGroup) -> None:
        failures = 0
        room = self._room
        assert room is not None  # run() made it
        while not self._stopping:
            count = room.receive_size(self._in_flight)
            if not count:  # no room for a receive: woken when a batch has run
                await room.wait()
                continue
            self._in_flight += count  # reserved while the receive waits
            self._reserved += count
            started = time.monotonic()
            self._receiving.append(started)
            try:
                messages = await self._sqs.receive(
                    self.queue_url,
                    self.region,
                    max_messages=count,
                    wait_time=self.wait_time,
                    visibility_timeout=self._visibility,
                )
            except SQSCallError as exc:
                self._in_flight -= count
                self.stats.receive_errors += 1
                if not exc.problem.retryable:
                    logger.error("receive failed, the worker stops: %s", exc)
                    self._fatal = SQSWorkerError(exc.problem.code, exc.problem.message)
                    self.stop()
                    return
                failures += 1
                delay = self.retry.delay(min(failures, 10), random.random()) + 0.01 * failures
                logger.warning("receive failed (%s); trying again in %.2f s", exc, delay)
                await anyio.sleep(min(delay, 5.0))
                continue
            except BaseException:
                self._in_flight -= count
                raise
            finally:
                self._reserved -= count
                self._receiving.remove(started)
            failures = 0
            self._in_flight -= count - len(messages)
            if not messages:
                continue
            self.stats.received += len(messages)
            arn, region = queue.arn, queue.region
            records = [lambda_record(m, arn, region) for m in messages]
            del messages  # now, not once the next receive (that waits with them) returns
            if self.stopping:  # (a property: the stop came while the receive waited)
                # Received after the stop: released at once, for another worker.
                releases: list[Settle] = ["release"] * len(records)
                with anyio.CancelScope(shield=True):
                    await self._settle(queue, records, releases)
                self._release_slots(len(records))
                return
            self._start_batch(batches, (queue, context, records, time.monotonic()))
            del records  # the batch's, not the poller's while it waits for the next receive

    # -- one batch ----------------------------------------------------------------------------

    def _start_batch(self, batches: anyio.abc.TaskGroup, job: _Job) -> None:
        """Run a received batch: in a runner that waits for one, else in a new runner.

        Runners are tasks of *batches* that run one batch after another, so that a batch
        costs a hand-over, not a task of the group (whose making is a tenth of the
        worker's own CPU a message, measured). The group's cancellation (the drain ran out)
        reaches a runner's batch as it would a task of its own.
        """
        idle = self._idle
        while idle:
            waiter = idle.pop()
            if not waiter.done():  # (a runner cancelled while it waited has gone)
                waiter.set_result(job)
                return
        batches.start_soon(self._runner, job)

    async def _runner(self, job: _Job) -> None:
        """Run *job*, then each batch handed to this runner, until the group is cancelled.

        Each batch starts in the context the runner started in, as in a task of its own: a
        batch that leaves it changed (a processor hook or observer that set a context
        variable and did not reset it) ends its runner, and a new one takes the next batch.
        """
        loop = asyncio.get_running_loop()
        idle = self._idle
        start = contextvars.copy_context()
        while True:
            await self._batch(*job)
            del job  # an idle runner holds no batch's records
            if contextvars.copy_context() != start:
                return
            waiter: asyncio.Future[_Job] = loop.create_future()
            idle.append(waiter)
            job = await waiter

    async def _batch(
        self, queue: QueueRef, context: Any, records: list[dict[str, Any]], received: float
    ) -> None:
        cut: list[Settle] = []  # what to do should the drain cut the batch off
        context = context.for_batch(received, self._visibility, self.max_visibility)
        beating = self._heartbeats.start(queue, records, received)
        try:
            try:
                settles = await self._process(records, context, cut)
            finally:
                await self._heartbeats.stop(beating)
        except anyio.get_cancelled_exc_class():
            if self._stop_now:
                raise  # a second signal: nothing is settled, visibility runs out instead
            # The drain ran out: what succeeded is deleted, the rest released.
            drained: list[Settle] = cut or ["release"] * len(records)
            with anyio.CancelScope(shield=True):
                await self._settle(queue, records, drained)
            raise
        # Processed: its room goes to the next receive while its deletes are made.
        self._settling += len(records)
        self._release_slots(len(records))
        try:
            await self._settle(queue, records, settles)
        finally:
            self._settling -= len(records)
            self._check_drained()

    async def _process(
        self, records: list[dict[str, Any]], context: Any, cut: list[Settle]
    ) -> list[Settle]:
        """What to do with each message, from its outcome in the processor.

        The batch runs as an invocation of its own (the batches in flight share the
        processor). Cancelled (the drain ran out), it leaves in *cut* what to do with each
        message: those that succeeded by then are deleted, the rest released.
        """
        self.stats.batches += 1
        count = len(records)
        succeeded: list[int] = []
        try:
            invocation = Invocation(
                self.processor, {"Records": records}, self.record_handler, context
            )
            # Read inside the block: once it is left, the processor's state may be the next
            # batch's.
            with invocation:
                try:
                    await invocation.async_process()
                except BatchProcessingError:
                    pass  # every record's handler ran and failed: the outcomes say so
                except anyio.get_cancelled_exc_class():
                    cut[:] = settles_after(count, invocation.succeeded(), "release")
                    raise
                except Exception:
                    succeeded = invocation.succeeded()
                    raise
                result = invocation.result
            if result is None:
                raise RuntimeError("the processor ended the batch without a result")
        except Exception:
            # Not a record's failure (a processor override that raised...): nothing of the
            # batch is deleted that did not succeed, and the worker carries on.
            logger.exception("a batch of %d messages could not be processed", count)
            return settles_after(count, succeeded, "fail")
        if self.processor.logger is None:  # with a logger, the run logged them, as on Lambda
            log_failures(result, logger, self.processor.log_records, lambda_handler=self._lambda)
        return settles_of(result)

    async def _settle(
        self, queue: QueueRef, records: list[dict[str, Any]], settles: Sequence[Settle]
    ) -> None:
        await settle(
            self._caller, queue, records, settles, self.failed_visibility_timeout, self.stats
        )

    def _release_slots(self, count: int) -> None:
        self._in_flight -= count
        if self._room is not None:  # the pollers its room has receives for
            self._room.wake(self._in_flight)
        self._check_drained()

    def _check_drained(self) -> None:
        """After a stop: whether every message received is processed and settled."""
        idle = self._in_flight <= 0 and self._settling <= 0
        if self._stopping and idle and self._drained is not None:
            self._drained.set()


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _region_of(queue_url: str) -> str | None:
    """``us-east-1`` of ``https://sqs.us-east-1.amazonaws.com/...``; ``None`` otherwise."""
    host = queue_url.split("//", 1)[-1].split("/", 1)[0]
    parts = host.split(".")
    if len(parts) >= 3 and parts[0] == "sqs":
        return parts[1]
    return None
