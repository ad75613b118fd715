r"""Firehose data transformation: clean up click events before they are delivered to S3.

Each record's answer goes back to Firehose, every record once and in order. Run::

    anybatch run examples/events/firehose.json \
        examples.firehose_transform:lambda_handler

A click is returned as one line of JSON with its page lower-cased and partitioned by
country (Firehose's dynamic partitioning); a click from a bot is dropped; a record that
is not JSON fails (``ProcessingFailed``: Firehose delivers it to the error prefix,
unchanged). Records still running when the deadline comes fail too, so the function
answers in time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from anybatch import (
    BatchProcessor,
    EventType,
    FirehoseResponse,
    process_partial_response,
)
from anybatch.records import DROP, FirehoseResult

if TYPE_CHECKING:
    from anybatch.records import FirehoseRecord

processor = BatchProcessor(EventType.Firehose)


def record_handler(record: FirehoseRecord) -> FirehoseResult:
    """The cleaned-up click, or DROP for a bot's."""
    click = record.data_as_json()  # not JSON: the record fails alone
    if click.get("agent") == "bot":
        return DROP
    country = click["country"]
    cleaned = {"page": click["page"].lower(), "country": country, "at": click["at"]}
    return FirehoseResult(cleaned, partition_keys={"country": country})


def lambda_handler(event: dict[str, Any], context: Any) -> FirehoseResponse:
    """The function's entry point: Firehose's answer for every record.

    The entry points are typed for the partial batch response of the other sources; a
    Firehose processor's is a FirehoseResponse.
    """
    response = process_partial_response(event, record_handler, processor, context)
    return cast("FirehoseResponse", response)
