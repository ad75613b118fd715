"""Subclass hooks: count successes and failures as CloudWatch metrics.

The recipe of Powertools' docs ("Extending BatchProcessor"), without Powertools:
override ``success_handler`` and ``failure_handler``, count, and call ``super()`` so
that the record is still reported. The counts are written once per invocation as a
CloudWatch Embedded Metric Format (EMF) line on stderr, which Lambda ships to CloudWatch
Logs. Run::

    anybatch run examples/events/classic.json examples.custom_hooks:lambda_handler

stdout shows the response (the two bad invoices); stderr shows the EMF line with
``BatchRecordSuccesses`` 3 and ``BatchRecordFailures`` 2.

Unlike Powertools, anybatch calls the hooks after the whole batch has run: once per
record, in record order, never two at once, so no lock is needed even when records ran
concurrently.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from anybatch import (
    BatchProcessor,
    EventType,
    ExceptionInfo,
    FailureResponse,
    PartialItemFailureResponse,
    SuccessResponse,
    process_partial_response,
)

if TYPE_CHECKING:
    from anybatch.records import SQSRecord

NAMESPACE = "anybatch-examples"


class Metrics:
    """Counters flushed as one CloudWatch EMF record."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.counts: Counter[str] = Counter()

    def add_metric(self, name: str, value: int = 1) -> None:
        """Add *value* to the counter *name*."""
        self.counts[name] += value

    def flush(self) -> None:
        """Write the counters as one EMF line on stderr and reset them."""
        names = sorted(self.counts)
        record: dict[str, Any] = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.namespace,
                        "Dimensions": [[]],
                        "Metrics": [{"Name": name, "Unit": "Count"} for name in names],
                    }
                ],
            },
            **{name: self.counts[name] for name in names},
        }
        print(json.dumps(record), file=sys.stderr)
        self.counts.clear()


metrics = Metrics(NAMESPACE)


class MetricsProcessor(BatchProcessor["SQSRecord"]):
    """A ``BatchProcessor`` that counts what happened to each record."""

    def success_handler(self, record: SQSRecord, result: Any) -> SuccessResponse:
        """Called once per record that succeeded."""
        metrics.add_metric("BatchRecordSuccesses")
        return super().success_handler(record, result)

    def failure_handler(
        self,
        record: SQSRecord,
        exception: ExceptionInfo,
    ) -> FailureResponse:
        """Called once per record that did not succeed: ``super()`` reports it."""
        metrics.add_metric("BatchRecordFailures")
        return super().failure_handler(record, exception)


processor = MetricsProcessor(EventType.SQS)


def record_handler(record: SQSRecord) -> str:
    """Charge one invoice; a body that is not JSON or a negative amount raises."""
    invoice = json.loads(record.body)
    if invoice["amount"] < 0:
        raise ValueError(f"invoice {invoice['invoice']} has a negative amount")
    return str(invoice["invoice"])


def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    """Process the batch, then flush the metrics (also when the whole batch failed)."""
    try:
        return process_partial_response(
            event,
            record_handler,
            processor,
            context=context,
        )
    finally:
        metrics.flush()
