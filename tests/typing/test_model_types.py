"""Type tests for ``model=``: mypy --strict and pyright strict check them, nothing runs them.

A processor built with ``model=M`` is a processor of ``M``: the entry points then expect a
record handler that takes an ``M``, and refuse one that takes another record type (the lines
marked ``# type: ignore[...]`` must stay errors: both checkers report an unused ignore).
"""

# pyright: reportUnnecessaryTypeIgnoreComment=error

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import BaseModel, Json
from typing_extensions import assert_type

from anybatch import (
    AsyncBatchProcessor,
    AsyncSqsFifoPartialProcessor,
    BatchProcessor,
    BatchResult,
    EventType,
    PartialItemFailureResponse,
    SqsFifoPartialProcessor,
    async_batch_processor,
    async_process_partial_response,
    batch_processor,
    process_partial_response,
)
from anybatch.models import (
    DynamoDBStreamChangedRecordModel,
    DynamoDBStreamRecordModel,
    KinesisDataStreamRecordModel,
    KinesisDataStreamRecordPayload,
    SqsRecordModel,
    converter_for,
)
from anybatch.records import DynamoDBRecord, KinesisStreamRecord, SQSRecord


class Order(BaseModel):
    order_id: int


class OrderRecord(SqsRecordModel):
    body: Json[Order]


class OrderPayload(KinesisDataStreamRecordPayload):
    data: Json[Order]


class OrderKinesisRecord(KinesisDataStreamRecordModel):
    kinesis: OrderPayload


class OrderChange(DynamoDBStreamChangedRecordModel):
    NewImage: Order | None = None


class OrderDynamoDBRecord(DynamoDBStreamRecordModel):
    dynamodb: OrderChange


def subclasses_narrow_the_payload(
    sqs: OrderRecord,
    kinesis: OrderKinesisRecord,
    dynamodb: OrderDynamoDBRecord,
    plain: SqsRecordModel,
) -> None:
    assert_type(sqs.body, Order)
    assert_type(sqs.body.order_id, int)
    assert_type(sqs.messageId, str)
    assert_type(sqs.attributes.MessageGroupId, str | None)
    assert_type(kinesis.kinesis, OrderPayload)
    assert_type(kinesis.kinesis.data, Order)
    assert_type(kinesis.kinesis.sequenceNumber, str)
    assert_type(dynamodb.dynamodb.NewImage, Order | None)
    assert_type(dynamodb.dynamodb.SequenceNumber, str)
    # Un-narrowed payload fields are Any to checkers, so that subclasses may narrow them.
    assert_type(plain.body, Any)


def processors_are_generic_in_the_model() -> None:
    assert_type(BatchProcessor(EventType.SQS, model=OrderRecord), BatchProcessor[OrderRecord])
    assert_type(
        AsyncBatchProcessor(EventType.SQS, model=OrderRecord), AsyncBatchProcessor[OrderRecord]
    )
    assert_type(
        AsyncBatchProcessor(EventType.KinesisDataStreams, model=OrderKinesisRecord),
        AsyncBatchProcessor[OrderKinesisRecord],
    )
    assert_type(
        BatchProcessor(EventType.DynamoDBStreams, model=OrderDynamoDBRecord),
        BatchProcessor[OrderDynamoDBRecord],
    )
    assert_type(SqsFifoPartialProcessor(model=OrderRecord), SqsFifoPartialProcessor[OrderRecord])
    assert_type(
        AsyncSqsFifoPartialProcessor(model=OrderRecord),
        AsyncSqsFifoPartialProcessor[OrderRecord],
    )


def without_a_model_processors_hand_out_record_views() -> None:
    assert_type(BatchProcessor(EventType.SQS), BatchProcessor[SQSRecord])
    assert_type(
        AsyncBatchProcessor(EventType.KinesisDataStreams),
        AsyncBatchProcessor[KinesisStreamRecord],
    )
    assert_type(BatchProcessor(EventType.DynamoDBStreams), BatchProcessor[DynamoDBRecord])
    assert_type(SqsFifoPartialProcessor(), SqsFifoPartialProcessor[SQSRecord])


def what_a_processor_of_a_model_holds() -> None:
    processor = BatchProcessor(EventType.SQS, model=OrderRecord)
    assert_type(processor.success_messages, list[OrderRecord])
    assert_type(processor.result, BatchResult[OrderRecord])
    assert_type(
        converter_for(EventType.SQS, OrderRecord), Callable[[Mapping[str, Any]], OrderRecord]
    )


async def order_handler(record: OrderRecord) -> int:
    return record.body.order_id


async def order_handler_with_context(record: OrderRecord, lambda_context: Any) -> None:
    pass


async def base_model_handler(record: SqsRecordModel) -> None:
    pass


async def view_handler(record: SQSRecord) -> None:
    pass


async def kinesis_handler(record: OrderKinesisRecord) -> None:
    pass


def sync_order_handler(record: OrderRecord) -> None:
    pass


async def the_async_entry_point_checks_the_handler(event: dict[str, Any]) -> None:
    processor = AsyncBatchProcessor(EventType.SQS, model=OrderRecord)
    expected: Callable[[OrderRecord], Awaitable[int]] = order_handler
    response = await async_process_partial_response(event, expected, processor)
    assert_type(response, PartialItemFailureResponse)
    await async_process_partial_response(event, order_handler_with_context, processor)
    # A handler of a base class of the model accepts the model too.
    await async_process_partial_response(event, base_model_handler, processor)
    await async_process_partial_response(event, view_handler, processor)  # type: ignore[arg-type]
    await async_process_partial_response(event, kinesis_handler, processor)  # type: ignore[arg-type]


def the_blocking_entry_point_checks_the_handler(event: dict[str, Any]) -> None:
    processor = BatchProcessor(EventType.SQS, model=OrderRecord)
    process_partial_response(event, sync_order_handler, processor)
    process_partial_response(event, order_handler, processor)  # async handlers block too
    process_partial_response(event, view_handler, processor)  # type: ignore[arg-type]
    fifo = SqsFifoPartialProcessor(model=OrderRecord)
    process_partial_response(event, sync_order_handler, fifo)
    process_partial_response(event, kinesis_handler, fifo)  # type: ignore[arg-type]


def the_decorators_check_the_handler() -> None:
    processor = BatchProcessor(EventType.SQS, model=OrderRecord)
    batch_processor(record_handler=sync_order_handler, processor=processor)
    batch_processor(record_handler=view_handler, processor=processor)  # type: ignore[arg-type]
    async_processor = AsyncBatchProcessor(EventType.SQS, model=OrderRecord)
    async_batch_processor(record_handler=order_handler, processor=async_processor)
    async_batch_processor(record_handler=view_handler, processor=async_processor)  # type: ignore[arg-type]
