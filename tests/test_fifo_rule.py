"""One rule tells an SQS batch from a FIFO queue, for every processor: the queue's ARN."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

import anybatch.sqs._plan
from anybatch import EventType
from anybatch._sources.sqs import is_fifo_batch
from anybatch.sqs import PartialSQSProcessor, SQSBatchProcessingError
from anybatch.testing import sqs_record

if TYPE_CHECKING:
    from anybatch.records import SQSRecord

STANDARD_ARN = "arn:aws:sqs:us-east-1:123456789012:orders"
FIFO_ARN = "arn:aws:sqs:us-east-1:123456789012:orders.fifo"
NOWHERE = "http://127.0.0.1:9"  # never called: a batch in which nothing succeeded deletes nothing


def fair_queue_batch(n: int = 4) -> list[dict[str, Any]]:
    """A fair queue's batch: a standard queue whose messages carry a MessageGroupId."""
    return [
        sqs_record(str(i), index=i, queue_arn=STANDARD_ARN, group_id="tenant-1") for i in range(n)
    ]


def without_arn(record: dict[str, Any]) -> dict[str, Any]:
    del record["eventSourceARN"]
    return record


def test_a_fair_queue_batch_is_not_fifo() -> None:
    assert not is_fifo_batch(fair_queue_batch())


def test_a_fifo_queue_batch_is_fifo_by_its_arn_with_or_without_message_groups() -> None:
    assert is_fifo_batch([sqs_record("a", queue_arn=FIFO_ARN, group_id="g")])
    ungrouped = sqs_record("a", queue_arn=FIFO_ARN)
    assert "MessageGroupId" not in ungrouped["attributes"]
    assert is_fifo_batch([ungrouped])


def test_a_record_without_an_arn_is_read_by_its_message_group() -> None:
    # Made by hand: with nothing else to go on, a message group is taken for a FIFO queue's.
    assert is_fifo_batch([without_arn(sqs_record("a", group_id="g"))])
    assert not is_fifo_batch([without_arn(sqs_record("a"))])


def test_an_empty_batch_is_not_fifo() -> None:
    assert not is_fifo_batch([])


@pytest.mark.parametrize(
    "records",
    [
        fair_queue_batch(),
        [sqs_record("a", queue_arn=FIFO_ARN, group_id="g")],
        [sqs_record("a", queue_arn=FIFO_ARN)],
        [without_arn(sqs_record("a", group_id="g"))],
        [without_arn(sqs_record("a"))],
        [sqs_record("a", queue_arn=STANDARD_ARN)],
    ],
)
def test_the_source_and_the_legacy_processors_follow_the_same_rule(
    records: list[dict[str, Any]],
) -> None:
    assert anybatch.sqs._plan.is_fifo_batch is is_fifo_batch
    assert EventType.SQS.skips_key_on_failure(records) is is_fifo_batch(records)


def fail(record: SQSRecord) -> None:
    raise ValueError(f"record {record.body} fails")


def test_the_legacy_processor_runs_every_record_of_a_fair_queue_batch() -> None:
    records = fair_queue_batch()
    processor = PartialSQSProcessor(endpoint_url=NOWHERE)
    seen: list[str] = []

    def handler(record: SQSRecord) -> None:
        seen.append(record.body)
        fail(record)

    with pytest.raises(SQSBatchProcessingError) as caught, processor(records, handler):
        processor.process()
    assert seen == ["0", "1", "2", "3"]  # a failure stops nothing
    assert [type(outcome.exception) for outcome in caught.value.failures] == [ValueError] * 4
    assert processor.cleanup.api_calls == 0
    processor.close()


def test_the_legacy_processor_stops_a_fifo_queue_batch_at_its_first_failure() -> None:
    records = [sqs_record(str(i), index=i, queue_arn=FIFO_ARN, group_id="g") for i in range(4)]
    processor = PartialSQSProcessor(endpoint_url=NOWHERE)
    seen: list[str] = []

    def handler(record: SQSRecord) -> None:
        seen.append(record.body)
        fail(record)

    with pytest.raises(SQSBatchProcessingError), processor(records, handler):
        processor.process()
    assert seen == ["0"]
    assert processor.cleanup.api_calls == 0
    processor.close()
