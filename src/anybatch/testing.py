"""Builders of realistic Lambda events and a fake Lambda context, for tests and examples.

The events have the shape Lambda delivers (every field a handler may read is present), with
deterministic identifiers, so tests can assert exact responses::

    event = sqs_event(["a", "b"], fifo=True, group_ids=["g1", "g2"])
    context = fake_lambda_context(timeout=3.0)
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

__all__ = [
    "FakeLambdaContext",
    "dynamodb_event",
    "dynamodb_record",
    "fake_lambda_context",
    "firehose_event",
    "firehose_record",
    "kafka_event",
    "kafka_record",
    "kinesis_event",
    "kinesis_record",
    "serialize_dynamodb",
    "sqs_event",
    "sqs_record",
]

_REGION = "us-east-1"
_ACCOUNT = "123456789012"
_EPOCH_MS = 1_700_000_000_000


def _message_id(index: int) -> str:
    return f"00000000-0000-4000-8000-{index:012d}"


def _text(body: str | bytes | Mapping[str, Any] | Sequence[Any]) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, bytes):
        return body.decode("utf-8")
    return json.dumps(body)


def sqs_record(
    body: str | bytes | Mapping[str, Any] | Sequence[Any] = "",
    *,
    index: int = 0,
    message_id: str | None = None,
    queue_arn: str | None = None,
    fifo: bool = False,
    group_id: str | None = None,
    receive_count: int = 1,
    receipt_handle: str | None = None,
    message_attributes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One SQS record as Lambda delivers it. A non-string *body* is sent as JSON."""
    import hashlib

    text = _text(body)
    if queue_arn is None:
        name = "anybatch-queue.fifo" if fifo else "anybatch-queue"
        queue_arn = f"arn:aws:sqs:{_REGION}:{_ACCOUNT}:{name}"
    region = queue_arn.split(":")[3]
    attributes = {
        "ApproximateReceiveCount": str(receive_count),
        "SentTimestamp": str(_EPOCH_MS + index),
        "SenderId": "AIDAIENQZJOLO23YVJ4VO",
        "ApproximateFirstReceiveTimestamp": str(_EPOCH_MS + index + 5),
    }
    if fifo or group_id is not None:
        attributes["SequenceNumber"] = str(18_849_496_460_467_696_128 + index)
        attributes["MessageGroupId"] = group_id if group_id is not None else "group-0"
        attributes["MessageDeduplicationId"] = hashlib.sha256(
            f"{index}:{text}".encode()
        ).hexdigest()
    return {
        "messageId": message_id if message_id is not None else _message_id(index),
        "receiptHandle": receipt_handle
        if receipt_handle is not None
        else base64.b64encode(f"receipt-{index}".encode()).decode(),
        "body": text,
        "attributes": attributes,
        "messageAttributes": {
            name: {
                "stringValue": value,
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
            for name, value in (message_attributes or {}).items()
        },
        "md5OfBody": hashlib.md5(text.encode()).hexdigest(),  # SQS's own digest
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def sqs_event(
    bodies: Iterable[str | bytes | Mapping[str, Any] | Sequence[Any]],
    *,
    fifo: bool = False,
    group_ids: Sequence[str] | Callable[[int], str] | None = None,
    queue_arn: str | None = None,
) -> dict[str, Any]:
    """An SQS event with one record per body.

    For a FIFO queue (``fifo=True``, or *group_ids* given) each record carries a
    ``MessageGroupId``: ``group_ids[i]``, ``group_ids(i)``, or ``"group-0"``.
    """
    records: list[dict[str, Any]] = []
    for index, body in enumerate(bodies):
        group: str | None = None
        if callable(group_ids):
            group = group_ids(index)
        elif group_ids is not None:
            group = group_ids[index]
        records.append(
            sqs_record(
                body,
                index=index,
                queue_arn=queue_arn,
                fifo=fifo or group_ids is not None,
                group_id=group,
            )
        )
    return {"Records": records}


def kinesis_record(
    data: str | bytes | Mapping[str, Any] | Sequence[Any],
    *,
    index: int = 0,
    partition_key: str = "partition-0",
    sequence_number: str | None = None,
    stream_arn: str = f"arn:aws:kinesis:{_REGION}:{_ACCOUNT}:stream/anybatch-stream",
) -> dict[str, Any]:
    """One Kinesis Data Streams record; *data* is base64-encoded (non-strings as JSON)."""
    raw = data if isinstance(data, bytes) else _text(data).encode()
    sequence = (
        sequence_number
        if sequence_number is not None
        else f"4959{index:052d}"  # as long and ordered as real ones
    )
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence,
            "data": base64.b64encode(raw).decode(),
            "approximateArrivalTimestamp": (_EPOCH_MS + index) / 1000,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{_ACCOUNT}:role/anybatch-role",
        "awsRegion": stream_arn.split(":")[3],
        "eventSourceARN": stream_arn,
    }


def kinesis_event(
    datas: Iterable[str | bytes | Mapping[str, Any] | Sequence[Any]],
    *,
    partition_keys: Sequence[str] | Callable[[int], str] | None = None,
) -> dict[str, Any]:
    """A Kinesis Data Streams event with one record per payload."""
    records: list[dict[str, Any]] = []
    for index, data in enumerate(datas):
        if callable(partition_keys):
            key = partition_keys(index)
        elif partition_keys is not None:
            key = partition_keys[index]
        else:
            key = f"partition-{index}"
        records.append(kinesis_record(data, index=index, partition_key=key))
    return {"Records": records}


def serialize_dynamodb(value: object) -> dict[str, Any]:
    """Turn a Python value into a DynamoDB attribute value (the inverse of deserializing)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | float | Decimal):
        return {"N": str(value)}
    if isinstance(value, bytes):
        return {"B": base64.b64encode(value).decode()}
    if isinstance(value, Mapping):
        mapping = cast("Mapping[object, object]", value)
        return {"M": {str(k): serialize_dynamodb(v) for k, v in mapping.items()}}
    if isinstance(value, set | frozenset):
        items: list[object] = sorted(cast("set[object]", value), key=repr)
        strings = [v for v in items if isinstance(v, str)]
        if len(strings) == len(items):
            return {"SS": strings}
        blobs = [v for v in items if isinstance(v, bytes)]
        if len(blobs) == len(items):
            return {"BS": [base64.b64encode(v).decode() for v in blobs]}
        return {"NS": [str(v) for v in items]}
    if isinstance(value, list | tuple):
        return {"L": [serialize_dynamodb(v) for v in cast("Sequence[object]", value)]}
    raise TypeError(f"cannot serialize {type(value).__name__} as a DynamoDB value")


def dynamodb_record(
    keys: Mapping[str, Any],
    *,
    new_image: Mapping[str, Any] | None = None,
    old_image: Mapping[str, Any] | None = None,
    event_name: str | None = None,
    index: int = 0,
    sequence_number: str | None = None,
    table_arn: str = f"arn:aws:dynamodb:{_REGION}:{_ACCOUNT}:table/anybatch-table",
) -> dict[str, Any]:
    """One DynamoDB Streams record; *keys* and images are plain Python values."""
    if event_name is None:
        event_name = "INSERT" if old_image is None else "REMOVE" if new_image is None else "MODIFY"
    change: dict[str, Any] = {
        "ApproximateCreationDateTime": (_EPOCH_MS // 1000) + index,
        "Keys": {k: serialize_dynamodb(v) for k, v in keys.items()},
        "SequenceNumber": sequence_number
        if sequence_number is not None
        else str(100_000_000_000_000_000_000 + index),
        "SizeBytes": 26,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new_image is not None:
        change["NewImage"] = {k: serialize_dynamodb(v) for k, v in new_image.items()}
    if old_image is not None:
        change["OldImage"] = {k: serialize_dynamodb(v) for k, v in old_image.items()}
    return {
        "eventID": f"{index:032x}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": table_arn.split(":")[3],
        "dynamodb": change,
        "eventSourceARN": f"{table_arn}/stream/2026-01-01T00:00:00.000",
    }


def dynamodb_event(
    changes: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """A DynamoDB Streams event; each change is keyword arguments of :func:`dynamodb_record`.

    ``dynamodb_event([{"keys": {"id": 1}, "new_image": {"id": 1, "name": "a"}}])``
    """
    return {
        "Records": [dynamodb_record(index=index, **change) for index, change in enumerate(changes)]
    }


def _bytes(payload: str | bytes | Mapping[str, Any] | Sequence[Any]) -> bytes:
    return payload if isinstance(payload, bytes) else _text(payload).encode()


def kafka_record(
    value: str | bytes | Mapping[str, Any] | Sequence[Any] | None,
    *,
    topic: str = "orders",
    partition: int = 0,
    offset: int = 0,
    key: str | bytes | None = None,
    headers: Mapping[str, str | bytes] | None = None,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """One Kafka record as Lambda delivers it.

    *key* and *value* are base64 (non-strings as JSON), each header's value a list of bytes;
    ``value=None`` makes a tombstone (no value).
    """
    record: dict[str, Any] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": _EPOCH_MS + offset if timestamp is None else timestamp,
        "timestampType": "CREATE_TIME",
        "headers": [
            {name: list(v.encode() if isinstance(v, str) else v)}
            for name, v in (headers or {}).items()
        ],
    }
    if key is not None:
        record["key"] = base64.b64encode(key.encode() if isinstance(key, str) else key).decode()
    if value is not None:
        record["value"] = base64.b64encode(_bytes(value)).decode()
    return record


def kafka_event(
    values: Iterable[str | bytes | Mapping[str, Any] | Sequence[Any] | None],
    *,
    topic: str = "orders",
    partitions: Sequence[int] | Callable[[int], int] | None = None,
    keys: Sequence[str | None] | Callable[[int], str | None] | None = None,
    self_managed: bool = False,
) -> dict[str, Any]:
    """A Kafka event with one record per value, grouped by ``"<topic>-<partition>"``.

    Records are in partition 0 unless *partitions* says otherwise; offsets count up from 100
    within each partition. ``self_managed=True`` makes a self-managed Kafka event instead of
    an Amazon MSK one.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for index, value in enumerate(values):
        if callable(partitions):
            partition = partitions(index)
        else:
            partition = partitions[index] if partitions is not None else 0
        key = keys(index) if callable(keys) else keys[index] if keys is not None else None
        group = groups.setdefault(f"{topic}-{partition}", [])
        offset = 100 + len(group)
        group.append(kafka_record(value, topic=topic, partition=partition, offset=offset, key=key))
    event: dict[str, Any] = {
        "eventSource": "SelfManagedKafka" if self_managed else "aws:kafka",
        "bootstrapServers": "b-1.anybatch.kafka.us-east-1.amazonaws.com:9092,"
        "b-2.anybatch.kafka.us-east-1.amazonaws.com:9092",
        "records": groups,
    }
    if not self_managed:
        event["eventSourceArn"] = (
            f"arn:aws:kafka:{_REGION}:{_ACCOUNT}:cluster/anybatch/"
            "00000000-0000-4000-8000-000000000000-1"
        )
    return event


def firehose_record(
    data: str | bytes | Mapping[str, Any] | Sequence[Any],
    *,
    index: int = 0,
    record_id: str | None = None,
    kinesis_metadata: bool = False,
) -> dict[str, Any]:
    """One record of a Firehose transformation event; *data* base64 (non-strings as JSON)."""
    record: dict[str, Any] = {
        "recordId": record_id
        or f"49546986683135544286507457936321625675700192471156785154{index:04d}",
        "approximateArrivalTimestamp": _EPOCH_MS + index,
        "data": base64.b64encode(_bytes(data)).decode(),
    }
    if kinesis_metadata:
        record["kinesisRecordMetadata"] = {
            "shardId": "shardId-000000000000",
            "partitionKey": f"partition-{index}",
            "approximateArrivalTimestamp": _EPOCH_MS + index,
            "sequenceNumber": f"4959{index:052d}",
            "subsequenceNumber": 0,
        }
    return record


def firehose_event(
    datas: Iterable[str | bytes | Mapping[str, Any] | Sequence[Any]],
    *,
    kinesis_metadata: bool = False,
) -> dict[str, Any]:
    """A Firehose data-transformation event with one record per payload.

    ``kinesis_metadata=True``: the delivery stream reads a Kinesis stream.
    """
    event: dict[str, Any] = {
        "invocationId": "00000000-0000-4000-8000-00000000f1e0",
        "deliveryStreamArn": f"arn:aws:firehose:{_REGION}:{_ACCOUNT}:deliverystream/anybatch",
        "region": _REGION,
        "records": [
            firehose_record(data, index=index, kinesis_metadata=kinesis_metadata)
            for index, data in enumerate(datas)
        ],
    }
    if kinesis_metadata:
        event["sourceKinesisStreamArn"] = f"arn:aws:kinesis:{_REGION}:{_ACCOUNT}:stream/anybatch"
    return event


class FakeLambdaContext:
    """A Lambda context whose ``get_remaining_time_in_millis()`` counts down on a real clock."""

    def __init__(
        self,
        timeout: float = 3.0,
        *,
        function_name: str = "anybatch-function",
        memory_limit_in_mb: int = 128,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{_REGION}:{_ACCOUNT}:function:{function_name}"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = "00000000-0000-4000-8000-00000000c0de"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2026/01/01/[$LATEST]00000000000000000000000000000000"
        self.timeout = timeout
        self._clock = clock
        self._deadline = clock() + timeout

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before this invocation would time out (never negative)."""
        return max(0, int((self._deadline - self._clock()) * 1000))


def fake_lambda_context(timeout: float = 3.0, **kwargs: Any) -> FakeLambdaContext:
    """A :class:`FakeLambdaContext` whose invocation times out *timeout* seconds from now."""
    return FakeLambdaContext(timeout, **kwargs)
