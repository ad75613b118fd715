"""The worker's contract with the queue: its visibility timeout, the heartbeat's bounds, a
visibility policy that raises, and the queue's partition in every record."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest

from anybatch import BatchProcessor, EventType
from anybatch.records import SQSRecord
from anybatch.sqs import SQSWorker
from anybatch.sqs._plan import Heartbeat, QueueRef, parse_queue_arn
from anybatch.testing import sqs_record

from ._fake_sqs import HTTPX_BACKEND
from ._fake_sqs import worker as fake_worker
from ._running import run_until

if TYPE_CHECKING:
    from ._fake_sqs import FakeQueue
    from ._moto import MakeQueue, Queue

pytestmark = pytest.mark.anyio


def worker_for(queue: Queue, handler: Any, **options: Any) -> SQSWorker:
    options.setdefault("wait_time", 1)
    return SQSWorker(
        queue.url, handler, BatchProcessor(EventType.SQS), endpoint_url=queue.endpoint, **options
    )


# -- the heartbeat ----------------------------------------------------------------------------


def beats(heartbeat: Heartbeat, lag: float = 0.0) -> list[tuple[float, int]]:
    """Drive *heartbeat* on a fake clock: each wake *lag* seconds late (and never early)."""
    made: list[tuple[float, int]] = []
    now = 0.0
    while heartbeat.due is not None and len(made) < 10_000:
        now = max(now, heartbeat.due) + lag
        seconds = heartbeat.extend(now)
        if seconds is not None:
            made.append((round(now, 2), seconds))
    return made


def test_the_heartbeat_extends_when_a_third_is_left_and_stops_at_max_visibility() -> None:
    assert beats(Heartbeat(0.0, 120, 300)) == [(80.0, 120), (160.0, 120), (240.0, 60)]
    assert beats(Heartbeat(0.0, 4, 5)) == [(2.67, 2)]  # to the limit, then left alone
    assert beats(Heartbeat(0.0, 30, 30)) == []  # nothing to extend
    assert len(beats(Heartbeat(0.0, 30, 43_200))) == 2159


@pytest.mark.parametrize(("timeout", "limit"), [(4, 5), (120, 300), (30, 43_200), (1, 2)])
@pytest.mark.parametrize("lag", [0.0, 0.001, 0.2])
def test_the_heartbeat_asks_once_per_extension_however_late_it_wakes(
    timeout: int, limit: int, lag: float
) -> None:
    made = beats(Heartbeat(0.0, timeout, limit), lag)
    # Each extension gains time; a third of the timeout at most is spent before the next.
    assert len(made) <= limit / (timeout * 2 / 3) + 1
    assert all(now + seconds <= limit for now, seconds in made)


def test_the_heartbeat_gives_up_when_it_wakes_too_late_to_extend() -> None:
    heartbeat = Heartbeat(0.0, 4, 5)
    assert heartbeat.extend(4.5) is None
    assert heartbeat.due is None
    assert heartbeat.extend(4.6) is None


@HTTPX_BACKEND
async def test_a_message_near_max_visibility_is_extended_once_then_left_alone(
    sqs: FakeQueue,
) -> None:
    sqs.add(["slow"])

    async def slow(record: SQSRecord) -> None:
        await anyio.sleep(4)  # past the point where a third of 4 s no longer fits before 5 s

    worker = fake_worker(slow, visibility_timeout=4, max_visibility=5)
    stats = await run_until(worker, lambda: sqs.messages[0].deleted)
    # One extension (to the 5 s limit), then none: not one call after another.
    assert sqs.calls.get("ChangeMessageVisibilityBatch", 0) == 1
    assert stats.extended == 1
    assert stats.deleted == 1


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
