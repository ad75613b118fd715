"""Reading events: records, identifiers, and clear errors for events that cannot be read."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from typing_extensions import assert_type

from anybatch import (
    AsyncBatchProcessor,
    BatchProcessingError,
    BatchProcessor,
    EventType,
    InvalidEventError,
    UnexpectedBatchTypeError,
    process_partial_response,
)
from anybatch.records import SQSRecord
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


# Powertools' EventType is an Enum, and configuration becomes a type the enum's way:
# EventType(os.environ["EVENT_TYPE"]).
EVERY_VALUE = ["SQS", "KinesisDataStreams", "DynamoDBStreams", "Kafka", "Firehose"]


@pytest.mark.parametrize("value", EVERY_VALUE)
def test_event_type_called_with_a_value_is_that_source(value: str) -> None:
    source = EventType(value)
    assert source is getattr(EventType, value)
    assert source.value == value
    assert BatchProcessor(source).event_type is source


def test_event_type_takes_every_value_of_the_incumbents_enum() -> None:
    from aws_lambda_powertools.utilities.batch import EventType as IncumbentEventType

    incumbent = [member.value for member in IncumbentEventType]
    assert set(incumbent) <= set(EVERY_VALUE)
    assert [EventType(value).value for value in incumbent] == incumbent
    assert [source.value for source in EventType] == EVERY_VALUE


def test_event_type_called_with_a_source_is_that_source() -> None:
    by_partition = EventType.Kafka.in_partition_order()
    assert EventType(EventType.SQS) is EventType.SQS
    assert EventType(by_partition) is by_partition


@pytest.mark.parametrize("value", ["RabbitMQ", "sqs", "", 1, None])
def test_event_type_called_with_an_unknown_value_raises_value_error(value: Any) -> None:
    with pytest.raises(ValueError, match=rf"^{value!r} is not a valid EventType; expected one of"):
        EventType(value)


def test_event_type_called_without_one_value_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="takes one value"):
        EventType()
    with pytest.raises(TypeError, match="takes one value"):
        EventType("SQS", "Kafka")  # type: ignore[call-arg]


def test_event_type_by_value_is_typed_as_a_source_of_any_record() -> None:
    # Picked at run time, so its record type is Any; EventType.SQS keeps its own.
    assert_type(EventType("SQS"), EventType[Any])
    assert_type(BatchProcessor(EventType("SQS")), BatchProcessor[Any])
    assert_type(BatchProcessor(EventType.SQS), BatchProcessor[SQSRecord])


def test_event_type_by_value_imports_only_that_sources_module() -> None:
    code = (
        "import sys\n"
        "from anybatch import EventType\n"
        "EventType(sys.argv[1])\n"
        "print(sorted(m for m in sys.modules if m.startswith('anybatch._sources.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "Kafka"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert done.stdout.strip() == "['anybatch._sources._base', 'anybatch._sources.kafka']"


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
