"""SQS FIFO: message groups run side by side, each group strictly in order.

Each order is a message group (``created`` → ``paid`` → ``shipped``). Run::

    anybatch run examples/events/fifo.json examples.fifo_handler:lambda_handler
    anybatch run examples/events/fifo.json examples.fifo_handler:async_lambda_handler
    anybatch run examples/events/fifo.json examples.fifo_handler:strict_lambda_handler

With ``skip_group_on_error=True`` a declined payment fails its message and skips the
rest of that group (``order-a`` and ``order-c`` are not shipped); ``order-b`` carries
on. Reported: the two declined payments and the two skipped shipments.
``strict_lambda_handler`` keeps the default ``skip_group_on_error=False``: processing
stops at the first failure and every message from there on is reported, as Powertools'
``SqsFifoPartialProcessor`` does.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anyio

from anybatch import (
    AsyncSqsFifoPartialProcessor,
    PartialItemFailureResponse,
    SqsFifoPartialProcessor,
    as_lambda_handler,
    async_process_partial_response,
    process_partial_response,
)

if TYPE_CHECKING:
    from anybatch.records import SQSRecord

# Sync handler: up to 4 message groups at once, each in a worker thread.
processor = SqsFifoPartialProcessor(skip_group_on_error=True, concurrency=4)
# Async handler: every group at once (up to the default 100), on one event loop.
async_processor = AsyncSqsFifoPartialProcessor(skip_group_on_error=True)
# Powertools' behaviour: one record at a time, stop at the first failure.
strict_processor = SqsFifoPartialProcessor()


class PaymentDeclinedError(Exception):
    """The card was declined: the order must not move on to shipping."""


def record_handler(record: SQSRecord) -> str:
    """Apply one step of an order; a declined payment raises."""
    step = record.json_body
    time.sleep(0.01)  # stands for a blocking call to the order service
    if step.get("card") == "declined":
        raise PaymentDeclinedError(f"{step['order']}: card declined")
    return f"{step['order']} {step['step']}"


async def async_record_handler(record: SQSRecord) -> str:
    """The same step, for the async processor."""
    step = record.json_body
    await anyio.sleep(0.01)  # stands for an awaited call to the order service
    if step.get("card") == "declined":
        raise PaymentDeclinedError(f"{step['order']}: card declined")
    return f"{step['order']} {step['step']}"


def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    """Blocking entry point: groups in worker threads, each group in order."""
    return process_partial_response(event, record_handler, processor, context=context)


@as_lambda_handler
async def async_lambda_handler(
    event: dict[str, Any],
    context: Any,
) -> PartialItemFailureResponse:
    """Async entry point: ``as_lambda_handler`` makes it a function Lambda can call."""
    return await async_process_partial_response(
        event, async_record_handler, async_processor, context=context
    )


def strict_lambda_handler(
    event: dict[str, Any],
    context: Any,
) -> PartialItemFailureResponse:
    """Stop at the first failure; report it and everything after it."""
    return process_partial_response(
        event,
        record_handler,
        strict_processor,
        context=context,
    )
