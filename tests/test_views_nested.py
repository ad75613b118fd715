"""The nested-event helpers give what the incumbent's give, on the same events.

``SQSRecord.decoded_nested_s3_event`` and ``decoded_nested_sns_event`` return views (S3 and
SNS), and ``KinesisStreamRecordPayload.data_zlib_compressed_as_json()`` decodes CloudWatch
Logs payloads. Each property of the incumbent's classes is read on both sides and compared,
nested views included.
"""

from __future__ import annotations

import copy
import gzip
import json
import subprocess
import sys
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.common import DictWrapper as TheirView
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import (
    KinesisStreamRecord as TheirKinesisRecord,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord as TheirSQSRecord
from typing_extensions import assert_type

from anybatch import records
from anybatch.records import KinesisStreamRecord, S3Event, SNSMessage, SQSRecord
from anybatch.testing import kinesis_record, sqs_record

S3_RECORD: dict[str, Any] = {
    "eventVersion": "2.1",
    "eventSource": "aws:s3",
    "awsRegion": "eu-west-1",
    "eventTime": "2026-12-01T10:00:00.000Z",
    "eventName": "ObjectCreated:Put",
    "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
    "requestParameters": {"sourceIPAddress": "203.0.113.7"},
    "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8"},
    "s3": {
        "s3SchemaVersion": "1.0",
        "configurationId": "orders-uploaded",
        "bucket": {
            "name": "orders-bucket",
            "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
            "arn": "arn:aws:s3:::orders-bucket",
        },
        "object": {
            "key": "incoming/order+2026%2F12.json",
            "size": 1024,
            "eTag": "d41d8cd98f00b204e9800998ecf8427e",
            "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
            "sequencer": "0055AED6DCD90281E5",
        },
    },
}

GLACIER = {
    "restoreEventData": {
        "lifecycleRestorationExpiryTime": "2026-12-08T00:00:00.000Z",
        "lifecycleRestoreStorageClass": "GLACIER",
    }
}


def _s3_records() -> list[dict[str, Any]]:
    deleted = copy.deepcopy(S3_RECORD)
    deleted["eventName"] = "ObjectRemoved:Delete"
    del deleted["s3"]["object"]["eTag"], deleted["s3"]["object"]["versionId"]
    restored = copy.deepcopy(S3_RECORD)
    restored["eventName"] = "ObjectRestore:Completed"
    restored["glacierEventData"] = GLACIER
    tiering = copy.deepcopy(S3_RECORD)
    tiering["eventName"] = "IntelligentTiering"
    tiering["intelligentTieringEventData"] = {"destinationAccessTier": "ARCHIVE_ACCESS"}
    tiering["s3"]["get_object"] = tiering["s3"].pop("object")
    return [S3_RECORD, deleted, restored, tiering]


S3_EVENTS = {
    "put": {"Records": [S3_RECORD]},
    "every kind": {"Records": _s3_records()},
}

#: An SNS message as SNS delivers it to a queue without raw delivery.
SNS_IN_SQS: dict[str, Any] = {
    "Type": "Notification",
    "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
    "TopicArn": "arn:aws:sns:eu-west-1:123456789012:orders",
    "Subject": "order placed",
    "Message": '{"id": "order-1"}',
    "Timestamp": "2026-12-01T10:00:00.000Z",
    "SignatureVersion": "1",
    "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQ==",
    "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-01.pem",
    "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    "MessageAttributes": {
        "tenant": {"Type": "String", "Value": "acme"},
        "priority": {"Type": "Number", "Value": "3"},
    },
}

#: The same message with the keys spelled as in SNS's events for Lambda.
SNS_AS_FOR_LAMBDA = {
    **{k: v for k, v in SNS_IN_SQS.items() if not k.endswith("URL")},
    "SigningCertUrl": SNS_IN_SQS["SigningCertURL"],
    "UnsubscribeUrl": SNS_IN_SQS["UnsubscribeURL"],
}

LOG_DATA = {
    "messageType": "DATA_MESSAGE",
    "owner": "123456789012",
    "logGroup": "/aws/lambda/orders",
    "logStream": "2026/12/01/[$LATEST]abc",
    "subscriptionFilters": ["to-kinesis"],
    "logEvents": [{"id": "1", "timestamp": 1764583200000, "message": "order-1 placed"}],
}


def _values(view: Any, name: str) -> tuple[str, Any]:
    """What reading *name* on *view* gives: ("ok", value) or ("raises", exception type)."""
    try:
        return "ok", getattr(view, name)
    except (KeyError, TypeError, IndexError) as exc:
        return "raises", type(exc)


def _properties(cls: type) -> list[str]:
    return sorted(n for n in dir(cls) if isinstance(getattr(cls, n, None), property))


def assert_same(ours: Any, theirs: Any, where: str = "view") -> None:
    """*ours* reads as *theirs*: every property of the incumbent's class, recursively."""
    if isinstance(theirs, TheirView):
        assert type(ours).__name__ == type(theirs).__name__, where
        assert dict(ours) == dict(theirs.raw_event), where
        for name in _properties(type(theirs)):
            if name in ("raw_event",):
                continue
            (their_kind, their_value), (our_kind, our_value) = (
                _values(theirs, name),
                _values(ours, name),
            )
            assert our_kind == their_kind, f"{where}.{name}: {our_value!r} / {their_value!r}"
            if their_kind == "raises":
                assert our_value is their_value, f"{where}.{name}"
            else:
                assert_same(our_value, their_value, f"{where}.{name}")
    elif isinstance(theirs, Iterator):
        assert_same(list(ours), list(theirs), where)
    elif isinstance(theirs, list):
        assert isinstance(ours, list), where
        assert len(ours) == len(theirs), where
        for index, (our, their) in enumerate(zip(ours, theirs, strict=True)):
            assert_same(our, their, f"{where}[{index}]")
    elif isinstance(theirs, dict) and any(isinstance(v, TheirView) for v in theirs.values()):
        assert isinstance(ours, Mapping), where
        assert sorted(ours) == sorted(theirs), where
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{where}[{key!r}]")
    else:
        assert ours == theirs, where
        assert type(ours) is type(theirs), where


@pytest.mark.parametrize("event", list(S3_EVENTS.values()), ids=list(S3_EVENTS))
def test_decoded_nested_s3_event_reads_as_the_incumbents(event: dict[str, Any]) -> None:
    raw = sqs_record(event)
    ours, theirs = (
        SQSRecord(raw).decoded_nested_s3_event,
        TheirSQSRecord(raw).decoded_nested_s3_event,
    )
    assert isinstance(ours, S3Event)
    assert_same(ours, theirs, "decoded_nested_s3_event")


def test_the_s3_views_answer_what_a_handler_asks() -> None:
    event = SQSRecord(sqs_record({"Records": _s3_records()})).decoded_nested_s3_event
    assert (event.bucket_name, event.object_key) == ("orders-bucket", "incoming/order 2026/12.json")
    put, deleted, restored, tiering = event.records
    assert put.s3.get_object.key == "incoming/order+2026%2F12.json"
    assert (put.s3.get_object.size, put.s3.get_object.version_id) == (
        1024,
        S3_RECORD["s3"]["object"]["versionId"],
    )
    assert (deleted.s3.get_object.etag, deleted.s3.get_object.version_id) == ("", None)
    glacier = restored.glacier_event_data
    assert glacier is not None
    assert glacier.restore_event_data.lifecycle_restore_storage_class == "GLACIER"
    assert put.glacier_event_data is None
    tier = tiering.intelligent_tiering_event_data
    assert tier is not None
    assert tier.destination_access_tier == "ARCHIVE_ACCESS"
    assert tiering.s3.get_object.sequencer == "0055AED6DCD90281E5"


def test_decoded_nested_sns_event_reads_as_the_incumbents() -> None:
    raw = sqs_record(SNS_AS_FOR_LAMBDA)
    ours, theirs = (
        SQSRecord(raw).decoded_nested_sns_event,
        TheirSQSRecord(raw).decoded_nested_sns_event,
    )
    assert isinstance(ours, SNSMessage)
    assert_same(ours, theirs, "decoded_nested_sns_event")


def test_an_sns_message_as_sns_sends_it_to_a_queue_reads_fully() -> None:
    # SNS spells SigningCertURL and UnsubscribeURL so in a queue's bodies; the incumbent reads
    # only Lambda's spelling and raises KeyError. Every other property is the incumbent's.
    raw = sqs_record(SNS_IN_SQS)
    ours, theirs = (
        SQSRecord(raw).decoded_nested_sns_event,
        TheirSQSRecord(raw).decoded_nested_sns_event,
    )
    assert ours.signing_cert_url == SNS_IN_SQS["SigningCertURL"]
    assert ours.unsubscribe_url == SNS_IN_SQS["UnsubscribeURL"]
    with pytest.raises(KeyError):
        _ = theirs.signing_cert_url
    for name in set(_properties(type(theirs))) - {"signing_cert_url", "unsubscribe_url"}:
        assert_same(getattr(ours, name), getattr(theirs, name), name)
    assert json.loads(ours.message) == {"id": "order-1"}
    assert ours.message_attributes["priority"].get_type == "Number"
    assert ours.message_attributes["tenant"].value == "acme"


def test_an_sns_message_without_subject_or_attributes_reads_as_none_and_empty() -> None:
    body = {k: v for k, v in SNS_IN_SQS.items() if k not in ("Subject", "MessageAttributes")}
    message = SQSRecord(sqs_record(body)).decoded_nested_sns_event
    assert (message.subject, message.message_attributes) == (None, {})


@pytest.mark.parametrize(
    "compress",
    [gzip.compress, zlib.compress],
    ids=["gzip (what CloudWatch Logs sends)", "zlib"],
)
def test_data_zlib_compressed_as_json_reads_as_the_incumbents(compress: Any) -> None:
    raw = kinesis_record(compress(json.dumps(LOG_DATA).encode()))
    ours = KinesisStreamRecord(raw).kinesis.data_zlib_compressed_as_json()
    assert ours == TheirKinesisRecord(raw).kinesis.data_zlib_compressed_as_json() == LOG_DATA


def test_data_zlib_compressed_as_json_fails_the_record_on_a_plain_payload() -> None:
    raw = kinesis_record(json.dumps(LOG_DATA).encode())
    with pytest.raises(zlib.error):
        KinesisStreamRecord(raw).kinesis.data_zlib_compressed_as_json()


def test_the_helpers_are_typed_as_views() -> None:
    record = SQSRecord(sqs_record(SNS_IN_SQS))
    assert_type(record.decoded_nested_sns_event, SNSMessage)
    assert_type(record.decoded_nested_sns_event.subject, "str | None")
    s3 = SQSRecord(sqs_record(S3_EVENTS["put"])).decoded_nested_s3_event
    assert_type(s3, S3Event)
    assert_type(s3.record.s3.get_object.size, int)


def test_nested_views_are_named_by_the_public_module() -> None:
    for name in ("S3Event", "S3EventRecord", "S3Object", "SNSMessage", "SNSMessageAttribute"):
        assert getattr(records, name).__module__ == "anybatch.records"


def test_reading_an_sqs_batch_does_not_import_the_nested_views() -> None:
    code = (
        "from anybatch import BatchProcessor, EventType, process_partial_response\n"
        "from anybatch.testing import sqs_event\n"
        "process = BatchProcessor(EventType.SQS)\n"
        "process_partial_response(sqs_event(['a']), lambda r: r.body, process)\n"
        "import sys\n"
        "print('anybatch._sources._nested' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout == "False\n"
