"""The worker's contract with the queue: its visibility timeout, the heartbeat's bounds, a
visibility policy that raises, and the queue's partition in every record."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from anybatch import BatchProcessor, EventType
from anybatch.records import SQSRecord
from anybatch.sqs import SQSWorker
from anybatch.sqs._plan import QueueRef, parse_queue_arn
from anybatch.testing import sqs_record

from ._running import run_until

if TYPE_CHECKING:
    from ._moto import MakeQueue, Queue

pytestmark = pytest.mark.anyio


def worker_for(queue: Queue, handler: Any, **options: Any) -> SQSWorker:
    options.setdefault("wait_time", 1)
    return SQSWorker(
        queue.url, handler, BatchProcessor(EventType.SQS), endpoint_url=queue.endpoint, **options
    )


# -- the partition ----------------------------------------------------------------------------


def test_a_queue_arn_keeps_its_partition() -> None:
    for arn in (
        "arn:aws:sqs:us-east-1:123456789012:q",
        "arn:aws-cn:sqs:cn-north-1:123456789012:q",
        "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:q.fifo",
    ):
        assert parse_queue_arn(arn).arn == arn
    assert parse_queue_arn("arn:aws-cn:sqs:cn-north-1:1:q") == QueueRef(
        "cn-north-1", "1", "q", "aws-cn"
    )
    with pytest.raises(ValueError, match="not the ARN of an SQS queue"):
        parse_queue_arn("arn::sqs:us-east-1:1:q")


@pytest.mark.parametrize(
    ("arn", "url"),
    [
        ("arn:aws:sqs:eu-west-1:1:q", "https://sqs.eu-west-1.amazonaws.com/1/q"),
        ("arn:aws-cn:sqs:cn-north-1:1:q", "https://sqs.cn-north-1.amazonaws.com.cn/1/q"),
        ("arn:aws-us-gov:sqs:us-gov-east-1:1:q", "https://sqs.us-gov-east-1.amazonaws.com/1/q"),
        ("arn:aws-iso:sqs:us-iso-east-1:1:q", "https://sqs.us-iso-east-1.c2s.ic.gov/1/q"),
        ("arn:aws-iso-b:sqs:us-isob-east-1:1:q", "https://sqs.us-isob-east-1.sc2s.sgov.gov/1/q"),
    ],
)
def test_a_records_queue_url_is_on_its_partitions_domain(arn: str, url: str) -> None:
    assert SQSRecord(sqs_record("x", queue_arn=arn)).queue_url == url


@pytest.mark.parametrize(
    ("region", "partition", "domain"),
    [
        ("cn-north-1", "aws-cn", "amazonaws.com.cn"),
        ("us-gov-west-1", "aws-us-gov", "amazonaws.com"),
    ],
)
async def test_the_records_carry_the_queues_partition(
    make_queue: MakeQueue, region: str, partition: str, domain: str
) -> None:
    queue = make_queue(region=region)
    queue.send(["x"])
    got: list[SQSRecord] = []

    def handler(record: SQSRecord) -> None:
        got.append(record)

    stats = await run_until(worker_for(queue, handler, region=region), lambda: bool(got))
    (record,) = got
    assert record.event_source_arn == f"arn:{partition}:sqs:{region}:123456789012:{queue.name}"
    assert record.event_source_arn == queue.arn
    assert record.queue_url == f"https://sqs.{region}.{domain}/123456789012/{queue.name}"
    assert record.aws_region == region
    assert stats.deleted == 1
