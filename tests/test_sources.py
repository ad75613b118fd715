"""Reading events: records, identifiers, and clear errors for events that cannot be read."""

from __future__ import annotations

from typing import Any

import pytest

from anybatch import (
    AsyncBatchProcessor,
    BatchProcessingError,
    BatchProcessor,
    EventType,
    InvalidEventError,
    UnexpectedBatchTypeError,
    process_partial_response,
)
from anybatch.testing import dynamodb_event, kinesis_event, sqs_event


def ok(record: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("event", "message", "index"),
    [
        ([], "must be an object with a 'Records' list, got list", None),
        ("text", "got str", None),
        ({"Body": "x"}, "has no 'Records' list (its keys: 'Body')", None),
        ({"Records": {"a": 1}}, "'Records' must be a list, got dict", None),
        ({"Records": [{"messageId": "a"}, "b"]}, "record 1 must be an object, got str", 1),
        ({"Records": [{"messageId": "a"}, {"body": "b"}]}, "record 1 has no 'messageId'", 1),
        ({"Records": [{"messageId": ""}]}, "record 0 has an unusable ('') 'messageId'", 0),
        ({"Records": [{"messageId": None}]}, "record 0 has no 'messageId'", 0),
        ({"Records": [{"messageId": 7}]}, "record 0 has an unusable (7) 'messageId'", 0),
    ],
)
def test_unreadable_sqs_events_raise_one_documented_error(
    event: Any, message: str, index: int | None
) -> None:
    with pytest.raises(InvalidEventError) as caught:
        process_partial_response(event, ok, BatchProcessor(EventType.SQS))
    assert message in str(caught.value)
    assert caught.value.index == index


def test_invalid_event_error_is_what_incumbent_users_catch() -> None:
    assert UnexpectedBatchTypeError is InvalidEventError
    assert issubclass(InvalidEventError, BatchProcessingError)
    assert issubclass(InvalidEventError, ValueError)


def test_a_record_of_another_source_names_its_event_source() -> None:
    event = kinesis_event([b"x"])
    with pytest.raises(InvalidEventError, match="its eventSource is 'aws:kinesis'"):
        process_partial_response(event, ok, BatchProcessor(EventType.SQS))


@pytest.mark.parametrize(
    ("event_type", "event", "field"),
    [
        (EventType.KinesisDataStreams, {"Records": [{"kinesis": {}}]}, "kinesis.sequenceNumber"),
        (EventType.KinesisDataStreams, {"Records": [{"kinesis": "x"}]}, "kinesis.sequenceNumber"),
        (EventType.DynamoDBStreams, {"Records": [{"dynamodb": {}}]}, "dynamodb.SequenceNumber"),
    ],
)
def test_stream_records_without_sequence_number_are_refused(
    event_type: EventType[Any], event: Any, field: str
) -> None:
    with pytest.raises(InvalidEventError, match=field):
        process_partial_response(event, ok, BatchProcessor(event_type))


def test_no_handler_runs_when_a_later_record_is_unreadable() -> None:
    calls: list[str] = []
    event = sqs_event(["a"])
    event["Records"].append({"body": "no id"})
    with pytest.raises(InvalidEventError):
        process_partial_response(
            event, lambda r: calls.append(r.body), BatchProcessor(EventType.SQS)
        )
    assert calls == []


def test_unknown_event_type_is_refused() -> None:
    with pytest.raises(InvalidEventError, match="unknown event type 'RabbitMQ'"):
        BatchProcessor("RabbitMQ")


def test_event_type_by_name_is_accepted() -> None:
    processor = AsyncBatchProcessor("SQS")
    assert processor.event_type is EventType.SQS


def test_a_record_that_breaks_its_view_fails_alone_with_its_identifier() -> None:
    event = sqs_event(["{}", "{}"])
    del event["Records"][1]["body"]  # malformed, but it still has an identifier
    processor = BatchProcessor(EventType.SQS)
    response = process_partial_response(event, lambda r: r.json_body, processor)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}


def test_dynamodb_and_kinesis_events_from_the_builders_are_readable() -> None:
    for event_type, event in [
        (EventType.DynamoDBStreams, dynamodb_event([{"keys": {"id": 1}}])),
        (EventType.KinesisDataStreams, kinesis_event(["x"])),
        (EventType.SQS, sqs_event(["x"], fifo=True)),
    ]:
        assert process_partial_response(event, ok, BatchProcessor(event_type)) == {
            "batchItemFailures": []
        }
