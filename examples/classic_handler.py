r"""Classic (blocking) Lambda handlers, sync record handler: Powertools' way, unchanged.

Three entry points process the same SQS batch and return the same response::

    anybatch run examples/events/classic.json examples.classic_handler:lambda_handler
    anybatch run examples/events/classic.json \
        examples.classic_handler:threaded_lambda_handler
    anybatch run examples/events/classic.json \
        examples.classic_handler:context_manager_handler

``lambda_handler`` uses the ``@batch_processor`` decorator with ``BatchProcessor``'s
default ``concurrency=1``: the record handler runs inline in the calling thread, one
record after another. ``threaded_lambda_handler`` runs it in up to 8 worker threads. The
body that is not JSON and the negative amount fail; only those two messages are
reported.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from anybatch import (
    BatchProcessor,
    EventType,
    PartialItemFailureResponse,
    batch_processor,
    process_partial_response,
)

if TYPE_CHECKING:
    from anybatch.records import SQSRecord

logger = logging.getLogger(__name__)
processor = BatchProcessor(EventType.SQS)
threaded_processor = BatchProcessor(EventType.SQS, concurrency=8)


def record_handler(record: SQSRecord) -> str:
    """Charge one invoice; a body that is not JSON raises ``json.JSONDecodeError``."""
    invoice = json.loads(record.body)
    if invoice["amount"] < 0:
        raise ValueError(f"invoice {invoice['invoice']} has a negative amount")
    time.sleep(0.01)  # stands for a blocking call: requests, boto3, a database driver
    return str(invoice["invoice"])


@batch_processor(record_handler=record_handler, processor=processor)
def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    """The batch is processed before this body runs: return the partial response."""
    return processor.response()


def threaded_lambda_handler(
    event: dict[str, Any],
    context: Any,
) -> PartialItemFailureResponse:
    """The same records, handled in up to 8 worker threads at once."""
    return process_partial_response(
        event,
        record_handler,
        threaded_processor,
        context=context,
    )


def context_manager_handler(
    event: dict[str, Any],
    context: Any,
) -> PartialItemFailureResponse:
    """The context-manager form, for code that inspects the outcomes, then returns."""
    with processor(event["Records"], record_handler, lambda_context=context):
        processed = processor.process()
    for status, result, _record in processed:
        if status == "success":
            logger.info("charged %s", result)
    return processor.response()
