"""An SQS-triggered Lambda function in legacy mode: deletes what succeeded, then raises.

Its event source mapping does not have ``ReportBatchItemFailures``, so a partial batch
response would be ignored. When some orders fail, the messages that succeeded are
deleted from their queue and the function raises ``SQSBatchProcessingError``: Lambda
then returns only the failed messages to the queue. Each failed message is hidden for a
time that doubles with every delivery (10 s, 20 s, 40 s... at most 15 minutes), so
retries back off instead of hammering what failed.

The queue's URL and region come from each record's ``eventSourceARN``; credentials, and
the endpoint if ``AWS_ENDPOINT_URL_SQS`` is set, come from botocore's usual
configuration. Needs ``pip install 'anybatch[sqs]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from anybatch.sqs import PartialSQSProcessor, sqs_batch_processor

if TYPE_CHECKING:
    from anybatch.records import SQSRecord


def backoff(receive_count: int) -> float:
    """Seconds to hide a failed message: 10 s at first, doubling, at most 15 minutes."""
    return min(10.0 * 2.0 ** (receive_count - 1), 900.0)


# Made once per execution environment: every warm invocation reuses its SQS client.
processor = PartialSQSProcessor(failed_visibility_timeout=backoff)


def record_handler(record: SQSRecord) -> int:
    """Handle one order: fail it when its quantity is not positive."""
    order = record.json_body
    if order["quantity"] <= 0:
        raise ValueError(f"order {order['id']} has no quantity")
    return int(order["quantity"])


@sqs_batch_processor(record_handler=record_handler, processor=processor)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Runs only when every order succeeded: when some fail, the decorator raises."""
    return {"processed": len(event["Records"])}
