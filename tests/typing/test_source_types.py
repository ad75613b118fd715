"""Type tests for event sources: mypy --strict and pyright strict check them, nothing runs them.

A source brings its record type: ``AsyncBatchProcessor(EventType.Kafka)`` is a processor of
``KafkaEventRecord`` without an overload per source. Lines marked ``# type: ignore[...]`` must
stay errors (both checkers report an unused ignore).
"""

# pyright: reportUnnecessaryTypeIgnoreComment=error

from __future__ import annotations

from typing import Any, Literal, cast

from pydantic import BaseModel, Json
from typing_extensions import assert_type

from anybatch import (
    AsyncBatchProcessor,
    BatchProcessor,
    BatchResult,
    EventType,
    FirehoseResponse,
    KafkaItemIdentifier,
    PartialItemFailureResponse,
    async_process_partial_response,
    process_partial_response,
)
from anybatch.models import FirehoseRecordModel, KafkaRecordModel
from anybatch.records import (
    DynamoDBRecord,
    FirehoseRecord,
    KafkaEventRecord,
    KinesisStreamRecord,
    SQSRecord,
)


class Order(BaseModel):
    order_id: int


class OrderKafkaRecord(KafkaRecordModel):
    value: Json[Order]


class OrderFirehoseRecord(FirehoseRecordModel):
    data: Json[Order]


def every_source_brings_its_record_type() -> None:
    assert_type(AsyncBatchProcessor(EventType.Kafka), AsyncBatchProcessor[KafkaEventRecord])
    assert_type(BatchProcessor(EventType.Kafka), BatchProcessor[KafkaEventRecord])
    assert_type(
        AsyncBatchProcessor(EventType.Kafka.in_partition_order()),
        AsyncBatchProcessor[KafkaEventRecord],
    )
    assert_type(BatchProcessor(EventType.Firehose), BatchProcessor[FirehoseRecord])
    assert_type(AsyncBatchProcessor(EventType.SQS), AsyncBatchProcessor[SQSRecord])
    assert_type(BatchProcessor(EventType.KinesisDataStreams), BatchProcessor[KinesisStreamRecord])
    assert_type(AsyncBatchProcessor(EventType.DynamoDBStreams), AsyncBatchProcessor[DynamoDBRecord])
    assert_type(BatchProcessor(), BatchProcessor[Any])  # the event names its source


def a_model_replaces_the_view() -> None:
    assert_type(
        AsyncBatchProcessor(EventType.Kafka, model=OrderKafkaRecord),
        AsyncBatchProcessor[OrderKafkaRecord],
    )
    assert_type(
        BatchProcessor(EventType.Firehose, model=OrderFirehoseRecord),
        BatchProcessor[OrderFirehoseRecord],
    )


async def kafka_handler(record: KafkaEventRecord) -> None:
    record.value_as_json()


def sqs_handler(record: SQSRecord) -> None:
    pass


def transform(record: FirehoseRecord) -> bytes:
    return record.data_as_bytes()


def transform_order(record: OrderFirehoseRecord) -> dict[str, int]:
    return {"order_id": record.data.order_id}


async def the_kafka_handler_gets_kafka_records(event: dict[str, Any]) -> None:
    processor = AsyncBatchProcessor(EventType.Kafka)
    response = await async_process_partial_response(event, kafka_handler, processor)
    assert_type(response, PartialItemFailureResponse)
    await async_process_partial_response(event, sqs_handler, processor)  # type: ignore[arg-type]


def a_firehose_handler_gets_firehose_records(event: dict[str, Any]) -> FirehoseResponse:
    processor = BatchProcessor(EventType.Firehose)
    assert_type(processor.result, BatchResult[FirehoseRecord])
    with_model = BatchProcessor(EventType.Firehose, model=OrderFirehoseRecord)
    process_partial_response(event, transform_order, with_model)
    process_partial_response(event, sqs_handler, processor)  # type: ignore[arg-type]
    # The entry points are typed for every other source's partial batch response (and for
    # processors that override response()); a Firehose function casts its answer.
    response = cast("FirehoseResponse", process_partial_response(event, transform, processor))
    assert_type(response["records"][0]["result"], Literal["Ok", "Dropped", "ProcessingFailed"])
    return response


async def the_other_sources_answer_with_a_partial_batch_response(event: dict[str, Any]) -> None:
    processor = BatchProcessor(EventType.SQS)
    assert_type(process_partial_response(event, sqs_handler, processor), PartialItemFailureResponse)
    assert_type(processor.result.response(), PartialItemFailureResponse)
    failures = processor.response()["batchItemFailures"]
    assert_type(failures[0]["itemIdentifier"], str | KafkaItemIdentifier)
