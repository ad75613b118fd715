"""``anybatch worker``'s options made into a worker: its handler, processor and settings.

The command line (``anybatch._cli``) parses the options and loads the user's objects; this
turns them into an :class:`~._worker.SQSWorker`, in the command's process or in each process
of a supervisor (``--processes``).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any, cast

from anybatch._exceptions import MissingDependencyError
from anybatch._processor import (
    AsyncBatchProcessor,
    BasePartialProcessor,
    BatchProcessor,
    is_async_callable,
)
from anybatch._sources import EventType
from anybatch.observe import OpenTelemetryMetrics

from ._backoff import parse_failed_visibility
from ._deadletter import check_dead_letter_queue
from ._metrics import check_metrics, observe_worker, serve_metrics
from ._worker import SQSWorker

__all__ = ["OptionError", "make_worker", "worker_processor"]

logger = logging.getLogger("anybatch.worker")


class OptionError(ValueError):
    """An option of ``anybatch worker`` that cannot be used: a usage error (exit status 2)."""


def make_worker(
    args: argparse.Namespace,
    load: Callable[..., Any],
    *,
    metrics_host: str | None = None,
    report: Callable[[str, object], None] | None = None,
) -> SQSWorker:
    """The worker the options *args* describe, its handler and processor loaded by *load*.

    With *metrics_host* and ``--metrics-port``, its metrics are served there; under a
    supervisor (*report*: what tells it), on a free port it is told of. Raises
    :class:`OptionError` for options that cannot be used.
    """
    if args.metrics_port is not None:
        try:
            check_metrics()
        except MissingDependencyError as exc:
            raise OptionError(str(exc)) from None
    handler = load(args.handler)

    if isinstance(handler, BasePartialProcessor):
        raise OptionError(
            f"{args.handler} is a processor, not a record handler: give it as "
            f"--processor {args.handler}, and HANDLER the function that handles one record"
        )
    if not callable(handler):
        raise OptionError(f"{args.handler} is not a function (it is a {type(handler).__name__})")
    serving = metrics_host is not None and args.metrics_port is not None
    if metrics_host is not None and args.metrics_port is not None:
        port: int = args.metrics_port if report is None else 0
        try:
            _, port = serve_metrics(port, metrics_host)
        except OSError as exc:
            raise OptionError(f"--metrics-port {port}: {exc.strerror or exc}") from None
        if report is not None:
            report("metrics", port)
    processor = worker_processor(args, handler, load, metrics=args.metrics_port is not None)
    dead_letter_queue = args.dead_letter_queue
    try:
        check_dead_letter_queue(True if dead_letter_queue == "own" else dead_letter_queue)
    except ValueError as exc:
        raise OptionError(f"--dead-letter-queue: {exc}") from None
    own = processor.on_permanent_failure or processor._router  # pyright: ignore[reportPrivateUsage]
    if dead_letter_queue and own is not None:
        raise OptionError(
            "--dead-letter-queue: the processor has a target of its own already "
            "(on_permanent_failure=, or an SQS processor's dead_letter_queue=); a permanent "
            "failure goes to one target"
        )
    worker = SQSWorker(
        args.queue_url,
        handler,
        processor,
        max_in_flight=args.max_in_flight,
        pollers=args.pollers,
        wait_time=args.wait_time,
        visibility_timeout=args.visibility_timeout,
        failed_visibility_timeout=parse_failed_visibility(args.failed_visibility_timeout),
        drain_timeout=args.drain_timeout,
        region=args.region,
        endpoint_url=args.endpoint_url,
        health_file=args.health_file,
        dead_letter_queue=True if dead_letter_queue == "own" else dead_letter_queue,
    )
    if serving:
        observe_worker(worker)
    return worker


def worker_processor(
    args: argparse.Namespace, handler: Any, load: Callable[..., Any], *, metrics: bool = False
) -> BasePartialProcessor[Any]:
    """``--processor`` loaded, or one made for *handler* (with ``--concurrency``...).

    With *metrics*, a processor made here gets an :class:`OpenTelemetryMetrics` observer;
    a user's processor without one is logged: only the worker's figures are served then.
    """
    if args.processor is not None:
        if args.concurrency is not None or args.record_timeout is not None:
            raise OptionError("give --processor, or --concurrency / --record-timeout, not both")
        processor = load(args.processor, what="--processor")
        if not isinstance(processor, BasePartialProcessor):
            raise OptionError(
                f"--processor {args.processor} is not a processor (it is a "
                f"{type(processor).__name__}): name an AsyncBatchProcessor(EventType.SQS) "
                "or a BatchProcessor(EventType.SQS)"
            )
        if metrics and not any(isinstance(o, OpenTelemetryMetrics) for o in processor.observers):
            logger.warning(
                "--processor %s has no OpenTelemetryMetrics observer: --metrics-port serves the "
                "worker's figures only; add observers=[OpenTelemetryMetrics()] for the records'",
                args.processor,
            )
        return cast("BasePartialProcessor[Any]", processor)  # type: ignore[redundant-cast]
    options: dict[str, Any] = {"record_timeout": args.record_timeout}
    if metrics:
        options["observers"] = [OpenTelemetryMetrics()]
    if args.concurrency is not None:
        options["concurrency"] = args.concurrency
    if is_async_callable(handler):
        return AsyncBatchProcessor(EventType.SQS, **options)
    options.setdefault("concurrency", 10)  # a sync handler runs in that many threads
    return BatchProcessor(EventType.SQS, **options)
