"""The dict-backed record views."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anybatch.records import (
    DynamoDBRecord,
    KinesisStreamRecord,
    SQSRecord,
    deserialize_dynamodb,
)
from anybatch.testing import (
    dynamodb_record,
    kinesis_record,
    serialize_dynamodb,
    sqs_record,
)


def test_sqs_record_reads_every_field() -> None:
    raw = sqs_record(
        {"order": 1},
        index=3,
        fifo=True,
        group_id="g1",
        receive_count=2,
        message_attributes={"tenant": "acme"},
    )
    record = SQSRecord(raw)
    assert record.message_id == raw["messageId"]
    assert record.receipt_handle == raw["receiptHandle"]
    assert record.body == '{"order": 1}'
    assert record.json_body == {"order": 1}
    assert record.attributes.message_group_id == "g1"
    assert record.attributes.approximate_receive_count == "2"
    assert record.attributes.message_deduplication_id is not None
    assert record.attributes.sequence_number is not None
    assert record.message_attributes["tenant"].string_value == "acme"
    assert record.message_attributes["tenant"].data_type == "String"
    assert record.event_source == "aws:sqs"
    assert record.event_source_arn.endswith(":anybatch-queue.fifo")
    assert record.aws_region == "us-east-1"
    assert (
        record.queue_url == "https://sqs.us-east-1.amazonaws.com/123456789012/anybatch-queue.fifo"
    )
    assert record.raw_event is raw
    assert record["messageId"] == raw["messageId"]
    assert dict(record) == raw


def test_views_decode_lazily_and_only_once() -> None:
    raw = sqs_record("not json")
    record = SQSRecord(raw)  # building the view reads nothing
    with pytest.raises(ValueError, match="Expecting value"):
        _ = record.json_body
    raw2 = sqs_record('{"a": 1}')
    record2 = SQSRecord(raw2)
    first = record2.json_body
    raw2["body"] = '{"a": 2}'
    assert record2.json_body is first


def test_standard_queue_records_have_no_group() -> None:
    assert SQSRecord(sqs_record("x")).attributes.message_group_id is None


def test_kinesis_record_decodes_its_data() -> None:
    raw = kinesis_record({"n": 5}, partition_key="pk", index=2)
    record = KinesisStreamRecord(raw)
    assert record.kinesis.partition_key == "pk"
    assert record.kinesis.sequence_number == raw["kinesis"]["sequenceNumber"]
    assert record.kinesis.data_as_bytes() == b'{"n": 5}'
    assert record.kinesis.data_as_text() == '{"n": 5}'
    assert record.kinesis.data_as_json() == {"n": 5}
    assert record.kinesis.data == base64.b64encode(b'{"n": 5}').decode()
    assert record.event_source == "aws:kinesis"
    assert record.event_name == "aws:kinesis:record"


def test_dynamodb_record_deserializes_keys_and_images() -> None:
    raw = dynamodb_record(
        {"id": 7},
        new_image={"id": 7, "name": "x", "tags": {"a", "b"}, "blob": b"\x00", "none": None},
        old_image={"id": 7, "name": "y"},
    )
    record = DynamoDBRecord(raw)
    assert record.event_name == "MODIFY"
    assert record.dynamodb.keys == {"id": Decimal(7)}
    assert record.dynamodb.new_image == {
        "id": Decimal(7),
        "name": "x",
        "tags": {"a", "b"},
        "blob": b"\x00",
        "none": None,
    }
    assert record.dynamodb.old_image == {"id": Decimal(7), "name": "y"}
    assert record.dynamodb.sequence_number == raw["dynamodb"]["SequenceNumber"]
    assert record.dynamodb.stream_view_type == "NEW_AND_OLD_IMAGES"


def test_insert_has_no_old_image() -> None:
    record = DynamoDBRecord(dynamodb_record({"id": 1}, new_image={"id": 1}))
    assert record.event_name == "INSERT"
    assert record.dynamodb.old_image is None


def test_unknown_dynamodb_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown DynamoDB attribute type 'X'"):
        deserialize_dynamodb({"X": "1"})


dynamo_values = st.recursive(
    st.none()
    | st.booleans()
    | st.text(max_size=5)
    | st.integers(-(10**6), 10**6).map(Decimal)
    | st.binary(max_size=5)
    | st.frozensets(st.text(min_size=1, max_size=3), min_size=1, max_size=3).map(set),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)


@given(dynamo_values)
def test_dynamodb_values_round_trip(value: object) -> None:
    assert deserialize_dynamodb(serialize_dynamodb(value)) == value
