"""The cases of ``bench_floor.py``: anybatch, the incumbent and the floor, per figure.

A *figure* is one event shape (SQS or Kafka, sync or async handler, how many records, with a
Lambda context or without); each figure has three cases, built by :func:`build`:

* ``anybatch``: the documented entry point inside a Lambda handler, as a user writes it
  (``@as_lambda_handler`` on an ``async def`` awaiting ``async_process_partial_response``;
  a ``def`` returning ``process_partial_response``);
* ``incumbent``: Powertools' batch utility the same way; its async path as it runs on Lambda
  (``LAMBDA_TASK_ROOT`` set: ``run_until_complete`` on one reused loop);
* ``floor``: the hand-written code of ``floors.py``.

All three get the same event, the same no-op record handler and the same context, and are
checked once to answer ``{"batchItemFailures": []}``. Run as a script, this module is what
``bench_floor.py`` runs under callgrind::

    python bench/_floor_cases.py FIGURE/LIBRARY ...

builds each case in turn, warms it up, and runs it for the two numbers of invocations
:func:`segments` gives, each a segment of :mod:`_callgrind`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import floors

LIBRARIES = ("anybatch", "incumbent", "floor")
#: Kafka's event: records in this many partitions of one topic, with this many keys.
KAFKA_PARTITIONS = 10
KAFKA_KEYS = 100


@dataclass(frozen=True)
class Figure:
    """One event shape, run by all three libraries."""

    source: str  # "sqs" or "kafka"
    mode: str  # "sync" or "async": the record handler and the entry point
    records: int
    context: bool = True

    @property
    def label(self) -> str:
        what = "SQS" if self.source == "sqs" else "Kafka"
        text = f"{what} {self.mode}, {self.records:,} records"
        return text if self.context else f"{text}, no context"


FIGURES = {
    "async-10": Figure("sqs", "async", 10),
    "async-100": Figure("sqs", "async", 100),
    "sync-10": Figure("sqs", "sync", 10),
    "sync-10-nocontext": Figure("sqs", "sync", 10, context=False),
    "sync-100": Figure("sqs", "sync", 100),
    "kafka-sync": Figure("kafka", "sync", 10_000),
    "kafka-async": Figure("kafka", "async", 10_000),
}


def noop_sync(record: Any) -> None:
    """The record handler (the incumbent passes it as ``record=``)."""


async def noop_async(record: Any) -> None:
    """The async record handler."""


def event_for(figure: Figure) -> dict[str, Any]:
    from anybatch.testing import kafka_event, sqs_event

    if figure.source == "sqs":
        return sqs_event(f"message {i}" for i in range(figure.records))
    return kafka_event(
        ({"n": i} for i in range(figure.records)),
        topic="payments",
        partitions=lambda i: i % KAFKA_PARTITIONS,
        keys=lambda i: f"key-{i % KAFKA_KEYS}",
    )


@contextmanager
def on_lambda(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """The incumbent's async processor as on Lambda: LAMBDA_TASK_ROOT set, one reused loop."""
    os.environ["LAMBDA_TASK_ROOT"] = "/var/task"
    asyncio.set_event_loop(loop)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        asyncio.set_event_loop(None)
        del os.environ["LAMBDA_TASK_ROOT"]


def _anybatch(figure: Figure) -> Callable[[Any, Any], Any]:
    import anybatch

    event_type = anybatch.EventType.SQS if figure.source == "sqs" else anybatch.EventType.Kafka
    if figure.mode == "sync":
        processor = anybatch.BatchProcessor(event_type)

        def lambda_handler(event: Any, context: Any) -> Any:
            return anybatch.process_partial_response(event, noop_sync, processor, context)

        return lambda_handler
    async_processor = anybatch.AsyncBatchProcessor(event_type)

    @anybatch.as_lambda_handler
    async def async_lambda_handler(event: Any, context: Any) -> Any:
        return await anybatch.async_process_partial_response(
            event, noop_async, async_processor, context
        )

    return async_lambda_handler


def _incumbent(figure: Figure) -> Callable[[Any, Any], Any]:
    from aws_lambda_powertools.utilities import batch as powertools

    event_type = powertools.EventType.SQS if figure.source == "sqs" else powertools.EventType.Kafka
    if figure.mode == "sync":
        processor = powertools.BatchProcessor(event_type)

        def lambda_handler(event: Any, context: Any) -> Any:
            return powertools.process_partial_response(event, noop_sync, processor, context)

        return lambda_handler
    async_processor = powertools.AsyncBatchProcessor(event_type)

    def async_lambda_handler(event: Any, context: Any) -> Any:
        return powertools.async_process_partial_response(
            event, noop_async, async_processor, context
        )

    return async_lambda_handler


def _floor(figure: Figure) -> Callable[[Any, Any], Any]:
    make = {
        ("sqs", "sync"): lambda: floors.sqs_sync(noop_sync),
        ("sqs", "async"): lambda: floors.sqs_async(noop_async),
        ("kafka", "sync"): lambda: floors.kafka_sync(noop_sync),
        ("kafka", "async"): lambda: floors.kafka_async(noop_async),
    }
    return make[figure.source, figure.mode]()


def build(figure_name: str, library: str) -> Callable[[int], None]:
    """``run(n)``: *n* warm invocations of one case (its response checked once, here)."""
    from anybatch.testing import fake_lambda_context

    figure = FIGURES[figure_name]
    event = event_for(figure)
    # A long timeout: the deadline never comes within a run, as on a healthy invocation.
    context = fake_lambda_context(900.0) if figure.context else None
    lambda_handler = {"anybatch": _anybatch, "incumbent": _incumbent, "floor": _floor}[library](
        figure
    )

    def invoke() -> Any:
        return lambda_handler(event, context)

    if library == "incumbent" and figure.mode == "async":
        loop = asyncio.new_event_loop()  # the loop a warm Lambda keeps for the incumbent

        def run(n: int) -> None:
            with on_lambda(loop):
                for _ in range(n):
                    lambda_handler(event, context)

        def invoke() -> Any:
            with on_lambda(loop):
                return lambda_handler(event, context)

    else:

        def run(n: int) -> None:
            for _ in range(n):
                lambda_handler(event, context)

    response = dict(invoke())
    if response != {"batchItemFailures": []}:
        sys.exit(f"{figure_name}/{library} answered {str(response)[:200]}: the case is broken")
    return run


def warmup_calls(figure_name: str) -> int:
    """Untimed invocations before a case is counted: caches, loop, specialised bytecode."""
    return max(1, 200 // FIGURES[figure_name].records)


def segments(figure_name: str) -> tuple[int, int]:
    """The two segments' invocations under callgrind: about 1,000 records apart.

    The short one is a fifth of the difference: 20 and 120 invocations of 10 records, 2 and
    12 of 100; 0 and 1 of 10,000 (each already a thousand times the noise).
    """
    records = FIGURES[figure_name].records
    span = max(1, 1_000 // records)
    lo = span // 5
    return lo, lo + span


def main(cases: list[str]) -> None:
    from _callgrind import segment

    for case in cases:
        figure_name, library = case.split("/")
        run = build(figure_name, library)
        run(warmup_calls(figure_name))
        for n in segments(figure_name):
            segment(run, n)


if __name__ == "__main__":
    main(sys.argv[1:])
