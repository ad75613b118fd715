"""Pydantic record models: parsing, narrowing, ``model=`` on every processor, poison records."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import types
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, Json, ValidationError, field_validator

import anybatch.models
from anybatch import (
    AsyncBatchProcessor,
    AsyncSqsFifoPartialProcessor,
    BasePartialProcessor,
    BatchProcessingError,
    BatchProcessor,
    EventType,
    ExceptionInfo,
    FailureResponse,
    ModelMismatchError,
    SQSFifoCircuitBreakerError,
    SqsFifoPartialProcessor,
    Status,
    SuccessResponse,
    async_process_partial_response,
    process_partial_response,
)
from anybatch._cli import main as cli_main
from anybatch.models import (
    DynamoDBStreamChangedRecordModel,
    DynamoDBStreamRecordModel,
    KinesisDataStreamRecord,
    KinesisDataStreamRecordModel,
    KinesisDataStreamRecordPayload,
    SqsAttributesModel,
    SqsMsgAttributeModel,
    SqsRecordModel,
    UserIdentity,
    converter_for,
)
from anybatch.records import DynamoDBRecord, KinesisStreamRecord, SQSRecord
from anybatch.testing import (
    dynamodb_event,
    dynamodb_record,
    kinesis_event,
    kinesis_record,
    sqs_event,
    sqs_record,
)

ROOT = Path(__file__).resolve().parent.parent


# --- models of the tests ----------------------------------------------------------------


class Order(BaseModel):
    order_id: int
    quantity: int = Field(gt=0)


class OrderRecord(SqsRecordModel):
    body: Json[Order]


class OrderPayload(KinesisDataStreamRecordPayload):
    data: Json[Order]


class OrderKinesisRecord(KinesisDataStreamRecordModel):
    kinesis: OrderPayload


class OrderKey(BaseModel):
    order_id: int


class OrderChange(DynamoDBStreamChangedRecordModel):
    Keys: OrderKey
    NewImage: Order | None = None
    OldImage: Order | None = None


class OrderDynamoDBRecord(DynamoDBStreamRecordModel):
    dynamodb: OrderChange


def order(order_id: int, quantity: int = 1) -> dict[str, int]:
    return {"order_id": order_id, "quantity": quantity}


def failures(response: Any) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def message_ids(event: dict[str, Any]) -> list[str]:
    return [record["messageId"] for record in event["Records"]]


#: Orders 0..4; record 2 is a poison pill: its body is not JSON.
POISONED: list[str | dict[str, int]] = [order(0), order(1), "{not json", order(3), order(4)]


# --- the models parse the events Lambda delivers ------------------------------------------


def test_sqs_record_model_reads_every_field_of_an_sqs_record() -> None:
    raw = sqs_record("hello", index=3, receive_count=2, message_attributes={"tenant": "acme"})

    record = SqsRecordModel.model_validate(raw)

    assert record.messageId == raw["messageId"]
    assert record.receiptHandle == raw["receiptHandle"]
    assert record.body == "hello"
    assert record.md5OfBody == raw["md5OfBody"]
    assert record.md5OfMessageAttributes is None
    assert record.eventSource == "aws:sqs"
    assert record.eventSourceARN == raw["eventSourceARN"]
    assert record.awsRegion == "us-east-1"
    assert isinstance(record.attributes, SqsAttributesModel)
    assert record.attributes.ApproximateReceiveCount == "2"
    assert record.attributes.SenderId == raw["attributes"]["SenderId"]
    sent_ms = int(raw["attributes"]["SentTimestamp"])
    assert record.attributes.SentTimestamp == datetime.fromtimestamp(
        sent_ms / 1000, tz=timezone.utc
    )
    assert record.attributes.MessageGroupId is None
    tenant = record.messageAttributes["tenant"]
    assert isinstance(tenant, SqsMsgAttributeModel)
    assert (tenant.stringValue, tenant.dataType, tenant.binaryValue) == ("acme", "String", None)


def test_sqs_record_model_reads_the_fifo_attributes() -> None:
    raw = sqs_record("x", fifo=True, group_id="g-7")

    attributes = SqsRecordModel.model_validate(raw).attributes

    assert attributes.MessageGroupId == "g-7"
    assert attributes.SequenceNumber == raw["attributes"]["SequenceNumber"]
    assert attributes.MessageDeduplicationId == raw["attributes"]["MessageDeduplicationId"]


def test_sqs_record_model_refuses_a_record_of_another_source() -> None:
    raw = sqs_record("x")
    raw["eventSource"] = "aws:kinesis"

    with pytest.raises(ValidationError, match="eventSource"):
        SqsRecordModel.model_validate(raw)


def test_kinesis_record_model_decodes_the_data_to_bytes() -> None:
    raw = kinesis_record(b"\x00binary\xff", index=1, partition_key="pk-1")

    record = KinesisDataStreamRecordModel.model_validate(raw)

    assert record.kinesis.data == b"\x00binary\xff"
    assert record.kinesis.partitionKey == "pk-1"
    assert record.kinesis.sequenceNumber == raw["kinesis"]["sequenceNumber"]
    assert record.kinesis.kinesisSchemaVersion == "1.0"
    assert (
        record.kinesis.approximateArrivalTimestamp == raw["kinesis"]["approximateArrivalTimestamp"]
    )
    assert (record.eventSource, record.eventName) == ("aws:kinesis", "aws:kinesis:record")
    assert record.eventID == raw["eventID"]
    assert record.invokeIdentityArn == raw["invokeIdentityArn"]
    assert record.eventSourceARN == raw["eventSourceARN"]


def test_kinesis_data_that_is_not_base64_fails_validation() -> None:
    raw = kinesis_record(b"x")
    raw["kinesis"]["data"] = "not base64!"

    with pytest.raises(ValidationError, match=r"kinesis\.data"):
        KinesisDataStreamRecordModel.model_validate(raw)


def test_kinesis_record_decompresses_cloudwatch_logs_data() -> None:
    logs = {"messageType": "DATA_MESSAGE", "logEvents": [{"id": "1", "message": "hi"}]}
    raw = kinesis_record(gzip.compress(json.dumps(logs).encode()))

    record = KinesisDataStreamRecordModel.model_validate(raw)

    assert record.decompress_zlib_record_data_as_json() == logs


def test_kinesis_record_cannot_decompress_narrowed_data() -> None:
    record = OrderKinesisRecord.model_validate(kinesis_record(order(1)))

    with pytest.raises(TypeError, match="narrowed"):
        record.decompress_zlib_record_data_as_json()


def test_kinesis_record_keeps_the_incumbents_name() -> None:
    assert KinesisDataStreamRecord is KinesisDataStreamRecordModel


def test_dynamodb_record_model_turns_keys_and_images_into_python_values() -> None:
    raw = dynamodb_record(
        {"pk": "order#1", "sk": 7},
        new_image={
            "pk": "order#1",
            "sk": 7,
            "price": Decimal("9.99"),
            "tags": {"a", "b"},
            "blob": b"\x01\x02",
            "lines": [{"sku": "A", "qty": 2}],
            "gone": None,
            "paid": True,
        },
        old_image={"pk": "order#1", "sk": 7, "paid": False},
        index=2,
    )

    record = DynamoDBStreamRecordModel.model_validate(raw)

    change = record.dynamodb
    assert isinstance(change, DynamoDBStreamChangedRecordModel)
    assert change.Keys == {"pk": "order#1", "sk": Decimal(7)}
    assert change.NewImage == {
        "pk": "order#1",
        "sk": Decimal(7),
        "price": Decimal("9.99"),
        "tags": {"a", "b"},
        "blob": b"\x01\x02",
        "lines": [{"sku": "A", "qty": Decimal(2)}],
        "gone": None,
        "paid": True,
    }
    assert change.OldImage == {"pk": "order#1", "sk": Decimal(7), "paid": False}
    assert change.SequenceNumber == raw["dynamodb"]["SequenceNumber"]
    assert change.SizeBytes == 26
    assert change.StreamViewType == "NEW_AND_OLD_IMAGES"
    assert isinstance(change.ApproximateCreationDateTime, datetime)
    assert record.eventName == "MODIFY"
    assert record.eventVersion == 1.1
    assert record.eventSource == "aws:dynamodb"
    assert record.eventID == raw["eventID"]
    assert record.userIdentity is None


def test_dynamodb_record_model_reads_a_ttl_deletion() -> None:
    raw = dynamodb_record({"pk": "session#1"}, old_image={"pk": "session#1"})
    raw["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}

    record = DynamoDBStreamRecordModel.model_validate(raw)

    assert record.eventName == "REMOVE"
    assert record.dynamodb.NewImage is None
    assert record.userIdentity == UserIdentity(type="Service", principalId="dynamodb.amazonaws.com")


def test_dynamodb_attribute_of_unknown_type_fails_validation() -> None:
    raw = dynamodb_record({"pk": "a"}, new_image={"pk": "a"})
    raw["dynamodb"]["NewImage"]["pk"] = {"XX": "a"}

    with pytest.raises(ValidationError, match="unknown DynamoDB attribute type"):
        DynamoDBStreamRecordModel.model_validate(raw)


# Field names are the incumbent's (Powertools' parser models), so handlers keep working.
INCUMBENT_FIELDS: dict[type[BaseModel], set[str]] = {
    SqsRecordModel: {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "md5OfMessageAttributes",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    },
    SqsAttributesModel: {
        "ApproximateReceiveCount",
        "ApproximateFirstReceiveTimestamp",
        "MessageDeduplicationId",
        "MessageGroupId",
        "SenderId",
        "SentTimestamp",
        "SequenceNumber",
        "AWSTraceHeader",
        "DeadLetterQueueSourceArn",
    },
    SqsMsgAttributeModel: {
        "stringValue",
        "binaryValue",
        "stringListValues",
        "binaryListValues",
        "dataType",
    },
    KinesisDataStreamRecordModel: {
        "eventSource",
        "eventVersion",
        "eventID",
        "eventName",
        "invokeIdentityArn",
        "awsRegion",
        "eventSourceARN",
        "kinesis",
    },
    KinesisDataStreamRecordPayload: {
        "kinesisSchemaVersion",
        "partitionKey",
        "sequenceNumber",
        "data",
        "approximateArrivalTimestamp",
    },
    DynamoDBStreamRecordModel: {
        "eventID",
        "eventName",
        "eventVersion",
        "eventSource",
        "awsRegion",
        "eventSourceARN",
        "dynamodb",
        "userIdentity",
    },
    DynamoDBStreamChangedRecordModel: {
        "ApproximateCreationDateTime",
        "Keys",
        "NewImage",
        "OldImage",
        "SequenceNumber",
        "SizeBytes",
        "StreamViewType",
    },
}


@pytest.mark.parametrize("model", list(INCUMBENT_FIELDS), ids=lambda m: m.__name__)
def test_models_have_the_incumbents_field_names(model: type[BaseModel]) -> None:
    assert set(model.model_fields) == INCUMBENT_FIELDS[model]


def test_models_module_exports_exactly_its_public_names() -> None:
    defined_here = {
        name
        for name, value in vars(anybatch.models).items()
        if not name.startswith("_")
        and isinstance(value, type | types.FunctionType)
        and value.__module__ == "anybatch.models"
    }
    assert set(anybatch.models.__all__) == defined_here
    for name in anybatch.models.__all__:
        assert getattr(anybatch.models, name).__doc__, name


# --- subclasses narrow the payload ---------------------------------------------------------


def test_sqs_subclass_parses_a_json_body_into_its_model() -> None:
    record = OrderRecord.model_validate(sqs_record(order(7, 3)))

    assert record.body == Order(order_id=7, quantity=3)


def test_sqs_subclass_refuses_a_body_that_is_not_its_model() -> None:
    with pytest.raises(ValidationError, match=r"body\.quantity"):
        OrderRecord.model_validate(sqs_record(order(7, 0)))


def test_kinesis_subclass_parses_the_decoded_data_into_its_model() -> None:
    record = OrderKinesisRecord.model_validate(kinesis_record(order(5, 2)))

    assert record.kinesis.data == Order(order_id=5, quantity=2)
    assert isinstance(record.kinesis, OrderPayload)


def test_dynamodb_subclass_parses_keys_and_images_into_its_models() -> None:
    raw = dynamodb_record(
        {"order_id": 9}, new_image=order(9, 4), old_image=order(9, 1), event_name="MODIFY"
    )

    record = OrderDynamoDBRecord.model_validate(raw)

    assert record.dynamodb.Keys == OrderKey(order_id=9)
    assert record.dynamodb.NewImage == Order(order_id=9, quantity=4)
    assert record.dynamodb.OldImage == Order(order_id=9, quantity=1)


def test_dynamodb_subclass_keeps_a_missing_image_empty() -> None:
    record = OrderDynamoDBRecord.model_validate(dynamodb_record({"order_id": 9}, new_image=None))

    assert record.dynamodb.NewImage is None


# --- model= on the processors: the handler gets the model ----------------------------------


def test_blocking_processor_hands_the_handler_the_model() -> None:
    seen: list[OrderRecord] = []

    def handler(record: OrderRecord) -> int:
        seen.append(record)
        return record.body.quantity

    event = sqs_event([order(1, 2), order(2, 5)])
    processor = BatchProcessor(EventType.SQS, model=OrderRecord)
    response = process_partial_response(event, handler, processor)

    assert response == {"batchItemFailures": []}
    assert [type(r) for r in seen] == [OrderRecord, OrderRecord]
    assert [r.body.order_id for r in seen] == [1, 2]
    assert processor.success_messages == seen
    assert [outcome.result for outcome in processor.result] == [2, 5]


@pytest.mark.anyio
async def test_async_processor_hands_the_handler_the_model() -> None:
    seen: list[int] = []

    async def handler(record: OrderKinesisRecord) -> None:
        seen.append(record.kinesis.data.order_id)

    processor = AsyncBatchProcessor(EventType.KinesisDataStreams, model=OrderKinesisRecord)
    response = await async_process_partial_response(
        kinesis_event([order(1), order(2), order(3)]), handler, processor
    )

    assert response == {"batchItemFailures": []}
    assert sorted(seen) == [1, 2, 3]


@pytest.mark.anyio
async def test_async_processor_runs_a_sync_handler_with_the_model() -> None:
    def handler(record: OrderDynamoDBRecord) -> int:
        assert record.dynamodb.NewImage is not None
        return record.dynamodb.NewImage.quantity

    processor = AsyncBatchProcessor(EventType.DynamoDBStreams, model=OrderDynamoDBRecord)
    event = dynamodb_event(
        [{"keys": {"order_id": i}, "new_image": order(i, i + 1)} for i in range(3)]
    )
    await async_process_partial_response(event, handler, processor)

    assert [outcome.result for outcome in processor.result] == [1, 2, 3]


def test_handler_that_takes_the_lambda_context_gets_the_model_and_the_context() -> None:
    got: list[tuple[Any, Any]] = []

    def handler(record: OrderRecord, lambda_context: Any) -> None:
        got.append((record.body.order_id, lambda_context))

    context = object()
    processor = BatchProcessor(EventType.SQS, model=OrderRecord)
    process_partial_response(sqs_event([order(4)]), handler, processor, context=context)

    assert got == [(4, context)]


def test_a_model_that_is_not_a_subclass_but_has_the_fields_of_the_records_is_used() -> None:
    class Slim(BaseModel):
        messageId: str
        body: Json[Order]

    seen: list[Any] = []
    processor = BatchProcessor(EventType.SQS, model=Slim)
    event = sqs_event([order(1), "{}"])
    response = process_partial_response(event, seen.append, processor)

    assert [type(r) for r in seen] == [Slim]
    assert failures(response) == [message_ids(event)[1]]


def test_a_model_that_overrides_model_validate_is_validated_through_it() -> None:
    class Counted(OrderRecord):
        calls: ClassVar[int] = 0

        @classmethod
        def model_validate(cls, obj: Any, **kwargs: Any) -> Counted:
            cls.calls += 1
            return super().model_validate(obj, **kwargs)

    processor = BatchProcessor(EventType.SQS, model=Counted)
    process_partial_response(sqs_event([order(1), order(2)]), lambda record: None, processor)

    assert Counted.calls == 2


def test_a_model_with_a_forward_reference_is_completed_when_the_processor_is_built() -> None:
    assert not LateRecord.__pydantic_complete__  # LateOrder did not exist yet
    convert = converter_for(EventType.SQS, LateRecord)

    assert convert(sqs_record({"note": "hi"})).body == LateOrder(note="hi")


class LateRecord(SqsRecordModel):
    body: Json[LateOrder]


class LateOrder(BaseModel):
    note: str


# --- poison records fail alone, with the identifier of the raw record ----------------------


class Recorder(BatchProcessor[Any]):
    """A processor that keeps what its hooks were given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hooked: list[tuple[str, Any]] = []

    def success_handler(self, record: Any, result: Any) -> SuccessResponse:
        self.hooked.append(("success", record))
        return super().success_handler(record, result)

    def failure_handler(self, record: Any, exception: ExceptionInfo) -> FailureResponse:
        self.hooked.append(("failure", record))
        return super().failure_handler(record, exception)


def test_blocking_processor_fails_only_the_poison_record() -> None:
    handled: list[int] = []
    event = sqs_event(POISONED)
    processor = BatchProcessor(EventType.SQS, model=OrderRecord)

    response = process_partial_response(
        event, lambda record: handled.append(record.body.order_id), processor
    )

    assert failures(response) == [message_ids(event)[2]]
    assert handled == [0, 1, 3, 4]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_blocking_processor_with_an_async_handler_fails_only_the_poison_record(
    backend: Any,
) -> None:
    async def handler(record: OrderRecord) -> None:
        pass

    event = sqs_event(POISONED)
    processor = BatchProcessor(EventType.SQS, model=OrderRecord, concurrency=3, backend=backend)

    response = process_partial_response(event, handler, processor)

    assert failures(response) == [message_ids(event)[2]]


@pytest.mark.anyio
async def test_async_processor_fails_only_the_poison_record() -> None:
    handled: list[int] = []

    async def handler(record: OrderRecord) -> None:
        handled.append(record.body.order_id)

    event = sqs_event(POISONED)
    processor = AsyncBatchProcessor(EventType.SQS, model=OrderRecord)
    response = await async_process_partial_response(event, handler, processor)

    assert failures(response) == [message_ids(event)[2]]
    assert sorted(handled) == [0, 1, 3, 4]


def test_fifo_processor_skipping_groups_fails_only_the_poison_record() -> None:
    event = sqs_event(POISONED, group_ids=lambda i: f"group-{i}")
    processor = SqsFifoPartialProcessor(model=OrderRecord, skip_group_on_error=True)

    response = process_partial_response(event, lambda record: None, processor)

    assert failures(response) == [message_ids(event)[2]]


def test_fifo_processor_stops_at_the_poison_record_and_reports_it_first() -> None:
    handled: list[int] = []
    event = sqs_event(POISONED, group_ids=lambda i: f"group-{i}")
    processor = SqsFifoPartialProcessor(model=OrderRecord)

    response = process_partial_response(
        event, lambda record: handled.append(record.body.order_id), processor
    )

    assert handled == [0, 1]
    assert failures(response) == message_ids(event)[2:]
    statuses = [outcome.status for outcome in processor.result]
    assert statuses[2] is Status.FAILED
    assert isinstance(processor.result[2].exception, ValidationError)
    assert isinstance(processor.result[3].exception, SQSFifoCircuitBreakerError)


@pytest.mark.anyio
async def test_async_fifo_processor_fails_only_the_poison_record_of_its_group() -> None:
    handled: list[int] = []

    async def handler(record: OrderRecord) -> None:
        handled.append(record.body.order_id)

    groups = ["a", "b", "a", "b", "b"]  # the poison record 2 is the last of group "a"
    event = sqs_event(POISONED, group_ids=groups)
    processor = AsyncSqsFifoPartialProcessor(model=OrderRecord, skip_group_on_error=True)
    response = await async_process_partial_response(event, handler, processor)

    assert failures(response) == [message_ids(event)[2]]
    assert sorted(handled) == [0, 1, 3, 4]


@pytest.mark.anyio
async def test_async_processor_reports_a_kinesis_poison_record_by_sequence_number() -> None:
    event = kinesis_event([order(0), b"\xff not json", order(2)])

    async def handler(record: OrderKinesisRecord) -> None:
        pass

    processor = AsyncBatchProcessor(EventType.KinesisDataStreams, model=OrderKinesisRecord)
    response = await async_process_partial_response(event, handler, processor)

    assert failures(response) == [event["Records"][1]["kinesis"]["sequenceNumber"]]


def test_blocking_processor_reports_a_dynamodb_poison_record_by_sequence_number() -> None:
    event = dynamodb_event(
        [
            {"keys": {"order_id": 0}, "new_image": order(0)},
            {"keys": {"order_id": 1}, "new_image": {"order_id": 1, "quantity": -1}},
            {"keys": {"order_id": "two"}, "new_image": order(2)},
            {"keys": {"order_id": 3}, "new_image": order(3)},
        ]
    )
    processor = BatchProcessor(EventType.DynamoDBStreams, model=OrderDynamoDBRecord)

    response = process_partial_response(event, lambda record: None, processor)

    sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
    assert failures(response) == sequence_numbers[1:3]


def test_poison_record_reaches_the_failure_hook_as_a_record_view() -> None:
    event = sqs_event(POISONED[:3])
    processor = Recorder(EventType.SQS, model=OrderRecord)

    process_partial_response(event, lambda record: None, processor)

    kinds = [(kind, type(record)) for kind, record in processor.hooked]
    assert kinds == [("success", OrderRecord), ("success", OrderRecord), ("failure", SQSRecord)]
    poison = processor.hooked[2][1]
    assert poison.message_id == message_ids(event)[2]
    assert processor.fail_messages == [poison]
    exc_type, exc, _ = processor.exceptions[0]
    assert exc_type is ValidationError
    assert isinstance(exc, ValidationError)
    assert exc.title == "OrderRecord"


@pytest.mark.parametrize(
    ("event_type", "model", "event", "view"),
    [
        (
            EventType.KinesisDataStreams,
            OrderKinesisRecord,
            kinesis_event([b"nope"]),
            KinesisStreamRecord,
        ),
        (
            EventType.DynamoDBStreams,
            OrderDynamoDBRecord,
            dynamodb_event([{"keys": {"order_id": "x"}}]),
            DynamoDBRecord,
        ),
    ],
)
def test_stream_poison_records_reach_the_outcome_as_record_views(
    event_type: EventType[Any], model: type[BaseModel], event: dict[str, Any], view: type[Any]
) -> None:
    processor = BatchProcessor(event_type, model=model, raise_on_entire_batch_failure=False)

    process_partial_response(event, lambda record: None, processor)

    (outcome,) = processor.result
    assert outcome.status is Status.FAILED
    assert type(outcome.record) is view
    assert isinstance(outcome.exception, ValidationError)


def test_validation_error_raised_by_the_handler_fails_only_its_record() -> None:
    # The incumbent's #2091: a ValidationError from the handler itself (here from validating
    # the very same model) must not be mistaken for the record failing its model.
    def handler(record: OrderRecord) -> None:
        if record.body.order_id == 1:
            OrderRecord.model_validate({"messageId": "not a record"})

    event = sqs_event([order(0), order(1), order(2)])
    processor = Recorder(EventType.SQS, model=OrderRecord)
    response = process_partial_response(event, handler, processor)

    assert failures(response) == [message_ids(event)[1]]
    failed = [record for kind, record in processor.hooked if kind == "failure"]
    assert [type(record) for record in failed] == [OrderRecord]


def test_poison_record_of_a_model_with_its_own_title_fails_alone() -> None:
    # The incumbent matches the error's title against the class name; this one differs.
    class Titled(OrderRecord):
        model_config = ConfigDict(title="Orders")

    event = sqs_event(POISONED)
    response = process_partial_response(
        event, lambda record: None, BatchProcessor(EventType.SQS, model=Titled)
    )

    assert failures(response) == [message_ids(event)[2]]


def test_a_validator_that_raises_something_else_fails_only_its_record() -> None:
    class Picky(Order):
        @field_validator("order_id")
        @classmethod
        def known(cls, value: int) -> int:
            return {0: 0, 1: 1}[value]  # KeyError: not wrapped in a ValidationError

    class PickyRecord(SqsRecordModel):
        body: Json[Picky]

    event = sqs_event([order(0), order(2), order(1)])
    processor = BatchProcessor(EventType.SQS, model=PickyRecord)
    response = process_partial_response(event, lambda record: None, processor)

    assert failures(response) == [message_ids(event)[1]]
    refused = processor.result[1]
    assert isinstance(refused.exception, KeyError)
    record: object = refused.record  # the record view: there is no model to give
    assert type(record) is SQSRecord


def test_every_record_poisoned_fails_the_whole_batch_with_each_validation_error() -> None:
    event = sqs_event(["a", "b"])
    processor = BatchProcessor(EventType.SQS, model=OrderRecord)

    with pytest.raises(BatchProcessingError) as caught:
        process_partial_response(event, lambda record: None, processor)

    errors = [exc for _, exc, _ in caught.value.child_exceptions]
    assert all(isinstance(exc, ValidationError) for exc in errors)
    assert len(errors) == 2
    assert failures(processor.response()) == message_ids(event)


def test_poison_state_does_not_leak_into_the_next_batch() -> None:
    processor = BatchProcessor(EventType.SQS, model=OrderRecord)
    first = sqs_event(POISONED)
    process_partial_response(first, lambda record: None, processor)

    response = process_partial_response(sqs_event([order(8)]), lambda record: None, processor)

    assert response == {"batchItemFailures": []}
    assert processor.fail_messages == []
    assert [type(r) for r in processor.success_messages] == [OrderRecord]


def test_a_result_kept_from_the_previous_batch_stays_whole() -> None:
    processor = BatchProcessor(EventType.SQS, model=OrderRecord)
    process_partial_response(sqs_event([order(1), order(2)]), lambda record: None, processor)
    kept_result, kept_messages = processor.result, processor.success_messages

    process_partial_response(sqs_event([order(3), order(4)]), lambda record: None, processor)

    assert [outcome.record.body.order_id for outcome in kept_result] == [1, 2]
    assert [record.body.order_id for record in kept_messages] == [1, 2]
    assert [outcome.record.body.order_id for outcome in processor.result] == [3, 4]


def test_the_previous_batchs_models_are_let_go_as_the_next_batch_makes_its_own() -> None:
    # Each new model then reuses the memory of the old one at its index (a large batch of
    # models runs about a third faster so); nothing else holds the old ones here.
    released: list[int] = []

    class Tracked(OrderRecord):
        def __del__(self) -> None:
            released.append(self.body.order_id)

    processor = BatchProcessor(EventType.SQS, model=Tracked)
    process_partial_response(sqs_event([order(1), order(2), order(3)]), lambda r: None, processor)
    seen: list[tuple[int, list[int]]] = []

    def handler(record: Tracked) -> None:
        seen.append((record.body.order_id, list(released)))

    process_partial_response(sqs_event([order(4), order(5), order(6)]), handler, processor)

    assert seen == [(4, [1]), (5, [1, 2]), (6, [1, 2, 3])]


# --- a model that does not fit the event type is refused when the processor is built ------

PROCESSORS: dict[str, Callable[[EventType[Any], Any], BasePartialProcessor[Any]]] = {
    "BatchProcessor": lambda event_type, model: BatchProcessor(event_type, model=model),
    "AsyncBatchProcessor": lambda event_type, model: AsyncBatchProcessor(event_type, model=model),
    "SqsFifoPartialProcessor": lambda _, model: SqsFifoPartialProcessor(model=model),
    "AsyncSqsFifoPartialProcessor": lambda _, model: AsyncSqsFifoPartialProcessor(model=model),
}


@pytest.mark.parametrize("build", list(PROCESSORS.values()), ids=list(PROCESSORS))
def test_every_processor_refuses_a_kinesis_model_for_sqs(
    build: Callable[[EventType[Any], Any], BasePartialProcessor[Any]],
) -> None:
    with pytest.raises(ModelMismatchError) as caught:
        build(EventType.SQS, OrderKinesisRecord)

    message = str(caught.value)
    assert "OrderKinesisRecord" in message
    assert "EventType.SQS" in message
    assert "SqsRecordModel" in message


@pytest.mark.parametrize(
    ("event_type", "model", "names"),
    [
        (EventType.KinesisDataStreams, OrderRecord, ["OrderRecord", "KinesisDataStreams"]),
        (EventType.DynamoDBStreams, OrderKinesisRecord, ["OrderKinesisRecord", "DynamoDB"]),
        (EventType.SQS, OrderDynamoDBRecord, ["OrderDynamoDBRecord", "EventType.SQS"]),
        (EventType.KinesisDataStreams, KinesisDataStreamRecordPayload, ["Payload", "Kinesis"]),
    ],
)
def test_a_record_model_of_another_event_type_is_refused(
    event_type: EventType[Any], model: type[BaseModel], names: list[str]
) -> None:
    with pytest.raises(ModelMismatchError) as caught:
        AsyncBatchProcessor(event_type, model=model)

    for name in names:
        assert name in str(caught.value)


def test_a_model_of_the_payload_is_refused_with_how_to_narrow_the_body() -> None:
    with pytest.raises(ModelMismatchError, match=r"Order does not fit EventType\.SQS") as caught:
        BatchProcessor(EventType.SQS, model=Order)

    assert "body: Json[Order]" in str(caught.value)


def test_a_foreign_model_with_the_fields_of_another_event_type_is_refused() -> None:
    class StreamThing(BaseModel):  # e.g. the incumbent's KinesisDataStreamRecord
        eventSource: str
        kinesis: dict[str, Any]

    with pytest.raises(ModelMismatchError, match="kinesis") as caught:
        BatchProcessor(EventType.SQS, model=StreamThing)

    assert "StreamThing" in str(caught.value)


def test_a_model_fixed_to_another_event_source_is_refused() -> None:
    class Confused(BaseModel):
        messageId: str
        eventSource: Literal["aws:kinesis"]

    with pytest.raises(ModelMismatchError, match="'aws:sqs'") as caught:
        BatchProcessor(EventType.SQS, model=Confused)

    assert "Confused" in str(caught.value)


def test_a_field_alias_counts_as_the_field_it_reads() -> None:
    class Aliased(BaseModel):
        message_id: str = Field(alias="messageId")

    processor = BatchProcessor(EventType.SQS, model=Aliased)
    seen: list[Any] = []
    process_partial_response(sqs_event(["x"]), seen.append, processor)

    assert seen[0].message_id == "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    "not_a_model",
    [dict, int, OrderRecord.model_validate(sqs_record(order(1))), "OrderRecord"],
    ids=["dict", "int", "instance", "str"],
)
def test_something_that_is_not_a_pydantic_model_class_is_refused(not_a_model: Any) -> None:
    with pytest.raises(ModelMismatchError, match=r"pydantic model class.*EventType\.SQS"):
        BatchProcessor(EventType.SQS, model=not_a_model)


def test_model_mismatch_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        SqsFifoPartialProcessor(model=OrderDynamoDBRecord)


def test_converter_for_accepts_the_event_type_by_name() -> None:
    convert = converter_for("SQS", OrderRecord)

    assert convert(sqs_record(order(3))).body.order_id == 3


# --- imports: pydantic only with model=, and a clear error without it ----------------------


def run_python(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


PROCESS_WITHOUT_MODEL = """
import asyncio, sys
import anybatch
from anybatch import (
    AsyncBatchProcessor, AsyncSqsFifoPartialProcessor, BatchProcessor, EventType,
    SqsFifoPartialProcessor, async_process_partial_response, process_partial_response,
)
from anybatch.testing import kinesis_event, sqs_event

async def handler(record):
    return record.body

process_partial_response(sqs_event(["a"]), lambda record: None, BatchProcessor(EventType.SQS))
process_partial_response(sqs_event(["a"]), handler, BatchProcessor(EventType.SQS))
process_partial_response(sqs_event(["a"], fifo=True), lambda r: None, SqsFifoPartialProcessor())
asyncio.run(async_process_partial_response(
    sqs_event(["a"]), handler, AsyncBatchProcessor(EventType.SQS)))
asyncio.run(async_process_partial_response(
    sqs_event(["a"], fifo=True), handler, AsyncSqsFifoPartialProcessor()))
asyncio.run(async_process_partial_response(
    kinesis_event([b"a"]), lambda r: None, AsyncBatchProcessor(EventType.KinesisDataStreams)))
"""


def test_processors_without_a_model_never_import_pydantic() -> None:
    out = run_python(PROCESS_WITHOUT_MODEL + "print('pydantic' in sys.modules)")

    assert out.split() == ["False"]


def test_a_processor_with_a_model_imports_pydantic() -> None:
    # The check above can fail: the same probe sees pydantic once a model is used.
    out = run_python(
        PROCESS_WITHOUT_MODEL
        + "from anybatch.models import SqsRecordModel\n"
        + "BatchProcessor(EventType.SQS, model=SqsRecordModel)\n"
        + "print('pydantic' in sys.modules)"
    )

    assert out.split() == ["True"]


WITHOUT_PYDANTIC = """
import sys
sys.modules["pydantic"] = None  # what an environment without the extra looks like
import anybatch
from anybatch import BatchProcessor, EventType, MissingDependencyError, process_partial_response
from anybatch.testing import sqs_event

try:
    import anybatch.models
except MissingDependencyError as exc:
    print("models:", exc)
try:
    BatchProcessor(EventType.SQS, model=dict)
except ImportError as exc:
    print("model=:", type(exc).__name__, exc)
response = process_partial_response(sqs_event(["a"]), lambda r: None, BatchProcessor(EventType.SQS))
print("without model=:", response)
"""


def test_without_pydantic_the_models_say_which_extra_to_install() -> None:
    lines = run_python(WITHOUT_PYDANTIC).splitlines()

    assert len(lines) == 3, lines
    models, model_arg, without = lines
    assert models.startswith("models: ")
    assert "pip install 'anybatch[pydantic]'" in models
    assert model_arg.startswith("model=: MissingDependencyError ")
    assert "pip install 'anybatch[pydantic]'" in model_arg
    assert without == "without model=: {'batchItemFailures': []}"


# --- the example ------------------------------------------------------------------------


def test_models_example_reports_its_invalid_orders(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", [str(ROOT), *sys.path])

    code = cli_main(["run", "examples/events/sqs.json", "examples.models_order:lambda_handler"])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert failures(json.loads(captured.out)) == [
        "00000000-0000-4000-8000-000000000002",
        "00000000-0000-4000-8000-000000000004",
    ]


def test_models_example_runs_as_a_user_runs_it() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "anybatch",
            "run",
            "examples/events/sqs.json",
            "examples.models_order:lambda_handler",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert failures(json.loads(proc.stdout)) == [
        "00000000-0000-4000-8000-000000000002",
        "00000000-0000-4000-8000-000000000004",
    ]
