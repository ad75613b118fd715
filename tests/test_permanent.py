"""Permanent failures: PermanentFailure, permanent=, on_permanent_failure, and their counts."""

from __future__ import annotations

import base64
import logging
from typing import Any

import anyio
import pytest

from anybatch import (
    AsyncBatchProcessor,
    BatchProcessor,
    EventType,
    PermanentFailure,
    Status,
    async_process_partial_response,
    process_partial_response,
)
from anybatch.records import FirehoseRecord, KafkaEventRecord, KinesisStreamRecord, SQSRecord
from anybatch.testing import (
    fake_lambda_context,
    firehose_event,
    kafka_event,
    kinesis_event,
    sqs_event,
)


class Unreadable(PermanentFailure):
    """A subclass: permanent too."""


def _text(record: Any) -> str:
    if isinstance(record, SQSRecord):
        return record.body
    if isinstance(record, KinesisStreamRecord):
        return base64.b64decode(record.kinesis.data).decode()
    if isinstance(record, FirehoseRecord):
        return record.data_as_text()
    assert isinstance(record, KafkaEventRecord)
    return str(record.decoded_value.decode() if record.decoded_value else "")


def judge(record: Any) -> str:
    text = _text(record)
    if text.startswith("bad"):
        raise PermanentFailure(f"{text} can never succeed")
    if text == "unreadable":
        raise Unreadable("no parser for it")
    if text == "flaky":
        raise ConnectionError("try again")
    return text


async def async_judge(record: Any) -> str:
    await anyio.lowlevel.checkpoint()
    return judge(record)


class Target:
    """An ``on_permanent_failure`` hook that keeps what it was given."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.got: list[tuple[str, BaseException]] = []
        self.fail_on = fail_on

    async def __call__(self, record: Any, error: BaseException) -> None:
        await anyio.lowlevel.checkpoint()
        if _text(record) == self.fail_on:
            raise OSError("the bucket is unreachable")
        self.got.append((_text(record), error))


def failures(response: Any) -> list[Any]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


BODIES = ["ok", "bad-1", "flaky", "unreadable", "ok"]


def test_a_routed_record_is_not_reported_and_not_retried() -> None:
    target = Target()
    processor = BatchProcessor(EventType.SQS, on_permanent_failure=target)
    event = sqs_event(BODIES)
    response = process_partial_response(event, judge, processor)
    assert failures(response) == [event["Records"][2]["messageId"]]  # only the flaky one
    assert [text for text, _ in target.got] == ["bad-1", "unreadable"]
    assert isinstance(target.got[1][1], Unreadable)
    result = processor.result
    assert [o.status for o in result] == [
        Status.SUCCESS,
        Status.ROUTED,
        Status.FAILED,
        Status.ROUTED,
        Status.SUCCESS,
    ]
    assert [o.permanent for o in result] == [False, True, False, True, False]
    assert [o.index for o in result.routed] == [1, 3]
    assert [o.index for o in result.failed] == [2]
    assert [o.index for o in result.permanent] == [1, 3]
    assert isinstance(result[1].exception, PermanentFailure)
    assert result.counts()[Status.ROUTED] == 2


def test_without_a_target_a_permanent_failure_is_reported_like_any_other() -> None:
    processor = BatchProcessor(EventType.SQS)
    event = sqs_event(BODIES)
    response = process_partial_response(event, judge, processor)
    assert failures(response) == [event["Records"][i]["messageId"] for i in (1, 2, 3)]
    assert [o.status for o in processor.result.failed] == [Status.FAILED] * 3
    assert [o.permanent for o in processor.result.failed] == [True, False, True]
    assert processor.result.routed == []


def test_a_hook_that_raises_leaves_its_record_reported(caplog: pytest.LogCaptureFixture) -> None:
    target = Target(fail_on="bad-2")
    logger = logging.getLogger("test_permanent.raises")
    processor = BatchProcessor(EventType.SQS, on_permanent_failure=target, logger=logger)
    event = sqs_event(["bad-1", "bad-2", "ok"])
    with caplog.at_level(logging.WARNING, logger=logger.name):
        response = process_partial_response(event, judge, processor)
    assert failures(response) == [event["Records"][1]["messageId"]]
    assert [o.status for o in processor.result] == [Status.ROUTED, Status.FAILED, Status.SUCCESS]
    assert processor.result[1].permanent
    messages = [r.getMessage() for r in caplog.records]
    refused = [m for m in messages if "could not be routed" in m]
    assert len(refused) == 1
    assert "on_permanent_failure raised OSError: the bucket is unreachable" in refused[0]
    assert any("1 failed permanently and routed away, not retried" in m for m in messages)


def test_the_types_in_permanent_are_permanent() -> None:
    target = Target()
    processor = BatchProcessor(
        EventType.SQS, permanent=(ConnectionError,), on_permanent_failure=target
    )
    response = process_partial_response(sqs_event(["flaky", "ok"]), judge, processor)
    assert failures(response) == []
    assert processor.result[0].status is Status.ROUTED


def test_a_model_that_refuses_a_record_can_be_permanent() -> None:
    from pydantic import Json, ValidationError

    from anybatch.models import SqsRecordModel

    class Order(SqsRecordModel):
        body: Json[dict[str, int]]

    target = Target()
    processor = BatchProcessor(
        EventType.SQS, Order, permanent=ValidationError, on_permanent_failure=target
    )
    response = process_partial_response(
        sqs_event(['{"n": 1}', "not json"]), lambda order: order.body["n"], processor
    )
    assert failures(response) == []
    ((text, error),) = target.got
    assert text == "not json"  # the hook gets the record's view: no model exists for it
    assert isinstance(error, ValidationError)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_blocking_processors_route_sync_and_async_handlers(concurrency: int) -> None:
    for handler in (judge, async_judge):
        target = Target()
        processor = BatchProcessor(
            EventType.SQS, on_permanent_failure=target, concurrency=concurrency
        )
        process_partial_response(sqs_event(BODIES), handler, processor)
        assert [text for text, _ in target.got] == ["bad-1", "unreadable"]


@pytest.mark.anyio
@pytest.mark.parametrize("sync", [False, True])
async def test_awaited_processors_route_on_asyncio_and_trio(sync: bool) -> None:
    target = Target()
    processor = AsyncBatchProcessor(EventType.SQS, on_permanent_failure=target)
    event = sqs_event(BODIES)
    response = await async_process_partial_response(
        event, judge if sync else async_judge, processor
    )
    assert failures(response) == [event["Records"][2]["messageId"]]
    assert [text for text, _ in target.got] == ["bad-1", "unreadable"]


@pytest.mark.anyio
async def test_kinesis_with_a_hook_reports_only_what_the_hook_did_not_take() -> None:
    target = Target(fail_on="bad-3")
    processor = AsyncBatchProcessor(EventType.KinesisDataStreams, on_permanent_failure=target)
    event = kinesis_event(["ok", "bad-1", "bad-3", "ok"])
    response = await async_process_partial_response(event, async_judge, processor)
    sequence = event["Records"][2]["kinesis"]["sequenceNumber"]
    assert failures(response) == [sequence]
    assert [text for text, _ in target.got] == ["bad-1"]


@pytest.mark.anyio
async def test_kafka_with_a_hook() -> None:
    target = Target()
    processor = AsyncBatchProcessor(EventType.Kafka, on_permanent_failure=target)
    response = await async_process_partial_response(
        kafka_event(["ok", "bad-1", "flaky"]), async_judge, processor
    )
    assert [(i["partition"], i["offset"]) for i in failures(response)] == [("orders-0", 102)]
    assert [text for text, _ in target.got] == ["bad-1"]


def test_a_stream_key_skipped_after_a_permanent_failure_is_reported() -> None:
    # The records after it in its shard were skipped (not run): they come back, in order,
    # and the next delivery no longer holds the routed record.
    target = Target()
    processor = BatchProcessor(
        EventType.KinesisDataStreams, on_permanent_failure=target, skip_key_on_failure=True
    )
    event = kinesis_event(["ok", "bad-1", "ok"], partition_keys=["k", "k", "k"])
    response = process_partial_response(event, judge, processor)
    assert failures(response) == [event["Records"][2]["kinesis"]["sequenceNumber"]]
    assert [o.status for o in processor.result] == [Status.SUCCESS, Status.ROUTED, Status.SKIPPED]


def test_a_hook_cut_short_by_the_deadline_leaves_its_record_reported() -> None:
    async def slow(record: Any, error: BaseException) -> None:
        await anyio.sleep(30)

    processor = BatchProcessor(
        EventType.SQS, on_permanent_failure=slow, deadline_margin=1.0, concurrency=2
    )
    event = sqs_event(["bad-1", "ok"])
    response = process_partial_response(event, judge, processor, fake_lambda_context(1.3))
    assert failures(response) == [event["Records"][0]["messageId"]]
    assert processor.result[0].permanent


def test_a_batch_whose_every_record_was_routed_is_no_entire_batch_failure() -> None:
    processor = BatchProcessor(EventType.SQS, on_permanent_failure=Target())
    assert process_partial_response(sqs_event(["bad-1", "bad-2"]), judge, processor) == {
        "batchItemFailures": []
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"on_permanent_failure": print}, "must be an async function"),
        ({"on_permanent_failure": "s3"}, "must be an async function"),
        ({"permanent": "ValueError"}, "must be exception types"),
        ({"permanent": [ValueError, 3]}, "must be Exception subclasses"),
        ({"permanent": KeyboardInterrupt}, "must be Exception subclasses"),
    ],
)
def test_wrong_settings_say_what_is_wrong(options: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        BatchProcessor(EventType.SQS, **options)


def test_emf_counts_routed_and_permanent_records_apart() -> None:
    import io
    import json

    from anybatch.observe import EmfMetrics

    stream = io.StringIO()
    processor = BatchProcessor(
        EventType.SQS,
        on_permanent_failure=Target(fail_on="bad-2"),
        observers=[EmfMetrics("orders", stream=stream)],
    )
    process_partial_response(sqs_event(["ok", "bad-1", "bad-2", "flaky"]), judge, processor)
    document = json.loads(stream.getvalue())
    assert document["RecordsRouted"] == 1
    assert document["RecordsPermanent"] == 2
    assert document["RecordsFailed"] == 2  # bad-2 (its hook raised) and flaky: retried
    names = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert {"RecordsRouted", "RecordsPermanent"} <= set(names)


@pytest.mark.anyio
async def test_firehose_drops_what_its_hook_took_and_fails_the_rest() -> None:
    # A Firehose transformation has no retry to skip: a record whose permanent failure the
    # hook took is Dropped (handled, not delivered), one the hook refused ProcessingFailed.
    target = Target(fail_on="bad-3")

    async def transform(record: FirehoseRecord) -> str:
        return judge(record).upper()

    processor = AsyncBatchProcessor(EventType.Firehose, on_permanent_failure=target)
    event = firehose_event(["ok", "bad-1", "bad-3"])
    response: Any = await async_process_partial_response(event, transform, processor)
    assert [answer["result"] for answer in response["records"]] == [
        "Ok",
        "Dropped",
        "ProcessingFailed",
    ]
    assert [text for text, _ in target.got] == ["bad-1"]
    assert [o.status for o in processor.result] == [Status.SUCCESS, Status.ROUTED, Status.FAILED]
