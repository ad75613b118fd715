"""Permanent failures to a dead-letter queue, against moto's SQS server over HTTP.

The message lands in the DLQ with its body, its attributes and the failure's, and is deleted
from the source queue (legacy mode) or not reported (partial batch responses); a send that
fails leaves it reported: nothing is lost.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
import respx
from aiobotocore.config import AioConfig
from aiobotocore.httpxsession import HttpxSession

from anybatch import PermanentFailure, Status, async_process_partial_response
from anybatch import process_partial_response as process
from anybatch.sqs import (
    AsyncPartialSQSProcessor,
    AsyncSqsBatchProcessor,
    PartialSQSProcessor,
    RetryPolicy,
    SQSBatchProcessingError,
    SqsBatchProcessor,
)

from ._moto import Queue

if TYPE_CHECKING:
    from anybatch.records import SQSRecord

pytestmark = pytest.mark.filterwarnings(
    "ignore:aiobotocore's httpx backend now prefers httpx2:DeprecationWarning"
)

FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002)
ATTRIBUTES = {
    "tenant": {"DataType": "String", "StringValue": "acme"},
    "weight": {"DataType": "Number", "StringValue": "12.5"},
    "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01binary"},
}


def judge(record: SQSRecord) -> str:
    if record.body.startswith("bad"):
        raise PermanentFailure(f"{record.body} is not an order")
    if record.body.startswith("flaky"):
        raise ConnectionError("try again")
    return record.body


async def async_judge(record: SQSRecord) -> str:
    await anyio.lowlevel.checkpoint()
    return judge(record)


def with_dead_letter_queue(source: Queue, *, redrive: bool = True) -> Queue:
    """A DLQ of the source's kind, named in the source's RedrivePolicy when *redrive*."""
    dlq = Queue(source.endpoint, fifo=source.fifo)
    if redrive:
        policy = {"deadLetterTargetArn": dlq.arn, "maxReceiveCount": "5"}
        source.client.set_queue_attributes(
            QueueUrl=source.url, Attributes={"RedrivePolicy": json.dumps(policy)}
        )
    return dlq


def lambda_event(queue: Queue, bodies: list[str]) -> dict[str, Any]:
    """Send *bodies* with ATTRIBUTES, receive them back as Lambda's event delivers them."""
    for body in bodies:
        extra = {"MessageGroupId": "g"} if queue.fifo else {}
        queue.client.send_message(
            QueueUrl=queue.url, MessageBody=body, MessageAttributes=ATTRIBUTES, **extra
        )
    messages: list[dict[str, Any]] = []
    while len(messages) < len(bodies):
        answer = queue.client.receive_message(
            QueueUrl=queue.url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages.extend(answer.get("Messages", []))
    return {"Records": [lambda_record(queue, message) for message in messages]}


def lambda_record(queue: Queue, message: dict[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for name, value in message.get("MessageAttributes", {}).items():
        binary = value.get("BinaryValue")
        attributes[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": None if binary is None else base64.b64encode(binary).decode(),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message["Attributes"],
        "messageAttributes": attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue.arn,
        "awsRegion": queue.region,
    }


def dead_letters(dlq: Queue) -> list[dict[str, Any]]:
    answer = dlq.client.receive_message(
        QueueUrl=dlq.url,
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return list(answer.get("Messages", []))


def reported(response: Any) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def check_dead_letter(message: dict[str, Any], body: str, source_id: str) -> None:
    assert message["Body"] == body
    attributes = message["MessageAttributes"]
    assert attributes["tenant"] == ATTRIBUTES["tenant"]
    assert attributes["weight"] == ATTRIBUTES["weight"]
    assert attributes["blob"] == ATTRIBUTES["blob"]
    assert attributes["anybatch.error_type"]["StringValue"] == "anybatch.PermanentFailure"
    assert attributes["anybatch.error_message"]["StringValue"] == f"{body} is not an order"


def test_a_standard_queue_sends_a_permanent_failure_to_its_redrive_dlq(
    moto_endpoint: str,
) -> None:
    source = Queue(moto_endpoint)
    dlq = with_dead_letter_queue(source)
    processor: SqsBatchProcessor[SQSRecord] = SqsBatchProcessor(
        dead_letter_queue=True, endpoint_url=moto_endpoint, retry=FAST
    )
    try:
        event = lambda_event(source, ["ok", "bad-1", "flaky"])
        response = process(event, judge, processor)
    finally:
        processor.close()
    records = event["Records"]
    assert reported(response) == [records[2]["messageId"]]  # bad-1: not reported
    (message,) = dead_letters(dlq)
    check_dead_letter(message, "bad-1", records[1]["messageId"])
    assert [o.status for o in processor.result] == [Status.SUCCESS, Status.ROUTED, Status.FAILED]
    assert processor.cleanup.dead_lettered == (records[1]["messageId"],)
    assert processor.cleanup.not_dead_lettered == ()


def test_the_legacy_mode_deletes_what_it_dead_lettered(moto_endpoint: str) -> None:
    source = Queue(moto_endpoint)
    dlq = with_dead_letter_queue(source)
    processor: PartialSQSProcessor[SQSRecord] = PartialSQSProcessor(
        endpoint_url=moto_endpoint, dead_letter_queue=True, retry=FAST
    )
    event = lambda_event(source, ["ok", "bad-1", "flaky"])
    try:
        with (
            pytest.raises(SQSBatchProcessingError) as caught,
            processor(event["Records"], judge),
        ):
            processor.process()
    finally:
        processor.close()
    assert [o.record.body for o in caught.value.failures] == ["flaky"]
    assert source.bodies_left(event["Records"]) == ["flaky"]  # ok and bad-1 are deleted
    assert [m["Body"] for m in dead_letters(dlq)] == ["bad-1"]


@pytest.mark.anyio
async def test_a_fifo_queue_keeps_the_group_and_stops_after_the_failure(
    moto_endpoint: str,
) -> None:
    source = Queue(moto_endpoint, fifo=True)
    dlq = with_dead_letter_queue(source)
    processor: AsyncPartialSQSProcessor[SQSRecord] = AsyncPartialSQSProcessor(
        endpoint_url=moto_endpoint, dead_letter_queue=True, retry=FAST
    )
    event = lambda_event(source, ["ok", "bad-1", "after"])
    try:
        with pytest.raises(SQSBatchProcessingError):
            async with processor(event["Records"], async_judge):
                await processor.async_process()
    finally:
        await processor.aclose()
    records = event["Records"]
    assert [o.status for o in processor.result] == [Status.SUCCESS, Status.ROUTED, Status.SKIPPED]
    (message,) = dead_letters(dlq)
    check_dead_letter(message, "bad-1", records[1]["messageId"])
    assert message["Attributes"]["MessageGroupId"] == "g"
    assert message["Attributes"]["MessageDeduplicationId"] == records[1]["messageId"]
    # 'after' comes back in order; the routed message is gone from the group.
    assert source.bodies_left(records) == ["after"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_an_explicit_queue_url_on_asyncio_and_trio(moto_endpoint: str, backend: str) -> None:
    source = Queue(moto_endpoint)
    dlq = with_dead_letter_queue(source, redrive=False)
    processor: AsyncSqsBatchProcessor[SQSRecord] = AsyncSqsBatchProcessor(
        dead_letter_queue=dlq.url, endpoint_url=moto_endpoint, retry=FAST
    )
    event = lambda_event(source, ["bad-1", "ok"])

    async def main() -> Any:
        try:
            return await async_process_partial_response(event, async_judge, processor)
        finally:
            await processor.aclose()

    response = anyio.run(main, backend=backend)
    assert reported(response) == []
    check_dead_letter(dead_letters(dlq)[0], "bad-1", event["Records"][0]["messageId"])


def test_without_a_redrive_policy_the_failure_is_reported(moto_endpoint: str) -> None:
    source = Queue(moto_endpoint)
    processor: SqsBatchProcessor[SQSRecord] = SqsBatchProcessor(
        dead_letter_queue=True, endpoint_url=moto_endpoint, retry=FAST
    )
    event = lambda_event(source, ["bad-1", "ok"])
    try:
        response = process(event, judge, processor)
    finally:
        processor.close()
    assert reported(response) == [event["Records"][0]["messageId"]]
    (refused,) = processor.cleanup.not_dead_lettered
    assert refused.code == "NoRedrivePolicy"
    assert processor.result[0].status is Status.FAILED
    assert processor.result[0].permanent


@dataclass
class Wire:
    """Forwards each request to moto, but fails every ``SendMessageBatch``."""

    endpoint: str
    fault: str = "error"
    seen: list[str] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        action = request.headers["X-Amz-Target"].split(".")[-1]
        self.seen.append(action)
        if action == "SendMessageBatch":
            entries = json.loads(request.content)["Entries"]
            if self.fault == "error":
                body = {"__type": "com.amazonaws.sqs#InternalError", "message": "down"}
                return httpx.Response(500, json=body)
            failed = [
                {"Id": e["Id"], "Code": "KmsAccessDenied", "SenderFault": True, "Message": "no"}
                for e in entries
            ]
            return httpx.Response(200, json={"Successful": [], "Failed": failed})
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        outgoing = urllib.request.Request(
            self.endpoint + "/", data=request.content, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(outgoing, timeout=10) as reply:
                return httpx.Response(
                    reply.status, headers=dict(reply.headers), content=reply.read()
                )
        except urllib.error.HTTPError as reply:
            return httpx.Response(reply.code, headers=dict(reply.headers), content=reply.read())


@pytest.fixture
def wire(moto_endpoint: str) -> Iterator[Wire]:
    found = Wire(moto_endpoint)
    with respx.mock(using="httpx", assert_all_called=False) as router:
        router.post(f"{moto_endpoint}/").mock(side_effect=found)
        yield found


@pytest.mark.parametrize("fault", ["error", "failed entry"])
def test_a_failing_dead_letter_send_leaves_the_record_reported(
    moto_endpoint: str, wire: Wire, fault: str
) -> None:
    wire.fault = fault
    source = Queue(moto_endpoint)
    dlq = with_dead_letter_queue(source)
    processor: PartialSQSProcessor[SQSRecord] = PartialSQSProcessor(
        AioConfig(http_session_cls=HttpxSession),
        endpoint_url=moto_endpoint,
        dead_letter_queue=True,
        retry=FAST,
    )
    event = lambda_event(source, ["ok", "bad-1"])
    try:
        with pytest.raises(SQSBatchProcessingError) as caught, processor(event["Records"], judge):
            processor.process()
    finally:
        processor.close()
    assert [o.record.body for o in caught.value.failures] == ["bad-1"]
    assert wire.seen.count("SendMessageBatch") == (FAST.attempts if fault == "error" else 1)
    (refused,) = processor.cleanup.not_dead_lettered
    assert refused.code == ("InternalError" if fault == "error" else "KmsAccessDenied")
    assert dead_letters(dlq) == []
    assert source.bodies_left(event["Records"]) == ["bad-1"]  # never lost; ok deleted


def test_dead_letter_queue_and_a_hook_are_one_target_too_many() -> None:
    async def hook(record: object, error: BaseException) -> None: ...

    with pytest.raises(TypeError, match="not both"):
        SqsBatchProcessor(dead_letter_queue=True, on_permanent_failure=hook)
    with pytest.raises(TypeError, match="needs failed_visibility_timeout= or dead_letter_queue="):
        SqsBatchProcessor()
    with pytest.raises(ValueError, match="queue URL"):
        PartialSQSProcessor(dead_letter_queue="my-dlq")


@pytest.mark.parametrize("value", [None, 5])
def test_a_binary_attribute_without_bytes_makes_the_send_fail_by_name(value: object) -> None:
    # SQS would refuse the whole call; the record alone is reported, saying which attribute.
    from anybatch.sqs._deadletter import send_entry
    from anybatch.sqs._plan import Problem, parse_queue_arn

    record = {
        "messageId": "m-1",
        "body": "hello",
        "messageAttributes": {"blob": {"dataType": "Binary", "binaryValue": value}},
    }
    target = parse_queue_arn("arn:aws:sqs:eu-west-1:123456789012:dlq")
    sent = send_entry(3, record, ValueError("bad"), target)
    assert sent == Problem(
        "InvalidRecord",
        f"record 3: its message attribute 'blob' is Binary with no binary value "
        f"(got {type(value).__name__})",
        False,
    )
