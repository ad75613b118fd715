"""Faults on the wire: aiobotocore's httpx backend, answered by respx as SQS would answer.

Throttling, server errors, partial ``Failed`` entries, dropped connections and slow answers:
whatever happens, no failed record is ever deleted, and every success is either deleted or
reported as not deleted.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
import respx
from aiobotocore.config import AioConfig
from aiobotocore.httpxsession import HttpxSession

from anybatch.sqs import (
    AsyncPartialSQSProcessor,
    PartialSQSProcessor,
    RetryPolicy,
    SQSBatchProcessingError,
    SqsBatchProcessor,
)
from anybatch.testing import fake_lambda_context, sqs_event, sqs_record

if TYPE_CHECKING:
    from anybatch.records import SQSRecord

# aiobotocore prefers httpx2 and warns (once) when it finds the original httpx instead.
pytestmark = pytest.mark.filterwarnings(
    "ignore:aiobotocore's httpx backend now prefers httpx2:DeprecationWarning"
)

ENDPOINT = "http://127.0.0.1:9"  # never reached: respx answers; loopback if anything leaked
FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.002)
HTTPX = AioConfig(http_session_cls=HttpxSession)

Fault = Callable[[list[dict[str, Any]]], httpx.Response]


@dataclass
class Seen:
    """One request that reached "SQS"."""

    action: str
    queue_url: str
    region: str
    entries: list[dict[str, Any]]

    @property
    def ids(self) -> list[str]:
        return [entry["Id"] for entry in self.entries]


@dataclass
class FakeSQSEndpoint:
    """Answers each request with the next scripted fault, then with success for every entry."""

    script: list[Fault] = field(default_factory=list)
    delay: float = 0.0
    seen: list[Seen] = field(default_factory=list)
    access_keys: list[str] = field(default_factory=list)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        credential = request.headers["Authorization"].split("Credential=")[1].split("/")
        if credential[0] not in self.access_keys:
            self.access_keys.append(credential[0])
        action = request.headers["X-Amz-Target"].removeprefix("AmazonSQS.")
        self.seen.append(Seen(action, body["QueueUrl"], credential[2], body["Entries"]))
        if self.delay:
            await anyio.sleep(self.delay)
        if self.script:
            return self.script.pop(0)(body["Entries"])
        return answer()(body["Entries"])

    def handles(self, action: str = "DeleteMessageBatch") -> set[str]:
        return {e["ReceiptHandle"] for s in self.seen if s.action == action for e in s.entries}


def answer(failed: dict[str, tuple[str, bool]] | None = None, missing: set[str] = set()) -> Fault:  # noqa: B006
    """A 200 answer: entries in *failed* fail (code, sender fault), those in *missing* vanish."""
    failed = failed or {}

    def respond(entries: list[dict[str, Any]]) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "Successful": [
                    {"Id": e["Id"]}
                    for e in entries
                    if e["Id"] not in failed and e["Id"] not in missing
                ],
                "Failed": [
                    {
                        "Id": e["Id"],
                        "Code": failed[e["Id"]][0],
                        "SenderFault": failed[e["Id"]][1],
                        "Message": "no",
                    }
                    for e in entries
                    if e["Id"] in failed
                ],
            },
        )

    return respond


def throttled(entries: list[dict[str, Any]]) -> httpx.Response:
    return httpx.Response(
        400,
        json={"__type": "com.amazonaws.sqs#ThrottlingException", "message": "Rate exceeded"},
        headers={"x-amzn-query-error": "ThrottlingException;Sender"},
    )


def server_error(entries: list[dict[str, Any]]) -> httpx.Response:
    return httpx.Response(500, json={"__type": "InternalFailure", "message": "boom"})


def access_denied(entries: list[dict[str, Any]]) -> httpx.Response:
    return httpx.Response(
        403, json={"__type": "com.amazonaws.sqs#AccessDenied", "message": "not yours"}
    )


def dropped(entries: list[dict[str, Any]]) -> httpx.Response:
    raise httpx.RemoteProtocolError("Server disconnected without sending a response.")


def refused(entries: list[dict[str, Any]]) -> httpx.Response:
    raise httpx.ConnectError("Connection refused")


@pytest.fixture
def sqs() -> Iterator[FakeSQSEndpoint]:
    endpoint = FakeSQSEndpoint()
    with respx.mock(using="httpx", assert_all_called=False) as router:
        router.post(f"{ENDPOINT}/").mock(side_effect=endpoint)
        yield endpoint


@pytest.fixture
def legacy() -> Iterator[Callable[..., PartialSQSProcessor[SQSRecord]]]:
    made: list[PartialSQSProcessor[SQSRecord]] = []

    def make(**kwargs: Any) -> PartialSQSProcessor[SQSRecord]:
        processor: PartialSQSProcessor[SQSRecord] = PartialSQSProcessor(
            HTTPX, endpoint_url=ENDPOINT, retry=kwargs.pop("retry", FAST), **kwargs
        )
        made.append(processor)
        return processor

    yield make
    for processor in made:
        processor.close()


def fail_bad(record: SQSRecord) -> str:
    if record.body.startswith("bad"):
        raise ValueError(record.body)
    return record.body


def run(
    processor: PartialSQSProcessor[SQSRecord], event: dict[str, Any]
) -> SQSBatchProcessingError:
    context = fake_lambda_context(30)
    with (
        pytest.raises(SQSBatchProcessingError) as caught,
        processor(event["Records"], fail_bad, lambda_context=context),
    ):
        processor.process()
    return caught.value


def bodies(count: int, bad: tuple[int, ...]) -> list[str]:
    return [f"bad-{i}" if i in bad else f"ok-{i}" for i in range(count)]


def assert_no_failure_deleted(sqs: FakeSQSEndpoint, event: dict[str, Any]) -> None:
    failed = {r["receiptHandle"] for r in event["Records"] if r["body"].startswith("bad")}
    assert not failed & sqs.handles()


def test_throttled_calls_are_made_again_until_they_succeed(
    sqs: FakeSQSEndpoint, legacy: Callable[..., PartialSQSProcessor[SQSRecord]]
) -> None:
    sqs.script = [throttled, throttled]
    event = sqs_event(bodies(4, bad=(1,)))
    processor = legacy()
    error = run(processor, event)
    assert error.not_deleted == ()
    assert len(processor.cleanup.deleted) == 3
    assert processor.cleanup.api_calls == 3
    assert [s.ids for s in sqs.seen] == [["0", "2", "3"]] * 3
    assert_no_failure_deleted(sqs, event)


def test_server_errors_and_dropped_connections_are_retried(
    sqs: FakeSQSEndpoint, legacy: Callable[..., PartialSQSProcessor[SQSRecord]]
) -> None:
    sqs.script = [server_error, dropped, refused]
    event = sqs_event(bodies(3, bad=(0,)))
    processor = legacy()
    run(processor, event)
    assert len(processor.cleanup.deleted) == 2
    assert processor.cleanup.api_calls == 4
    assert_no_failure_deleted(sqs, event)


def test_only_transiently_failed_entries_are_sent_again(
    sqs: FakeSQSEndpoint, legacy: Callable[..., PartialSQSProcessor[SQSRecord]]
) -> None:
    sqs.script = [
        answer(
            {"1": ("InternalError", False), "2": ("ReceiptHandleIsInvalid", True)}, missing={"3"}
        )
    ]
    event = sqs_event(bodies(5, bad=(4,)))
    processor = legacy()
    error = run(processor, event)
    assert [s.ids for s in sqs.seen] == [["0", "1", "2", "3"], ["1", "3"]]
    assert processor.cleanup.deleted == tuple(event["Records"][i]["messageId"] for i in (0, 1, 3))
    (undeleted,) = error.not_deleted
    assert (undeleted.message_id, undeleted.code, undeleted.attempts) == (
        event["Records"][2]["messageId"],
        "ReceiptHandleIsInvalid",
        1,
    )
    assert undeleted.receipt_handle == event["Records"][2]["receiptHandle"]
    assert "could not be deleted" in str(error)
    assert [o.identifier for o in error.failures] == [event["Records"][4]["messageId"]]
    assert_no_failure_deleted(sqs, event)


def test_persistent_server_errors_leave_the_successes_reported_as_not_deleted(
    sqs: FakeSQSEndpoint, legacy: Callable[..., PartialSQSProcessor[SQSRecord]]
) -> None:
    sqs.script = [server_error] * 10
    event = sqs_event(bodies(3, bad=(2,)))
    processor = legacy()
    error = run(processor, event)
    assert len(sqs.seen) == FAST.attempts
    assert [(u.code, u.attempts) for u in error.not_deleted] == [("InternalFailure", 4)] * 2
    assert processor.cleanup.deleted == ()


def test_a_call_refused_for_good_is_not_made_again(
    sqs: FakeSQSEndpoint, legacy: Callable[..., PartialSQSProcessor[SQSRecord]]
) -> None:
    sqs.script = [access_denied]
    event = sqs_event(bodies(3, bad=(1,)))
    error = run(legacy(), event)
    assert len(sqs.seen) == 1
    assert [(u.code, u.attempts) for u in error.not_deleted] == [("AccessDenied", 1)] * 2


def test_suppress_exception_still_reports_what_was_not_deleted(
    sqs: FakeSQSEndpoint, legacy: Callable[..., PartialSQSProcessor[SQSRecord]]
) -> None:
    sqs.script = [access_denied]
    event = sqs_event(bodies(2, bad=(1,)))
    processor = legacy(suppress_exception=True)
    with processor(event["Records"], fail_bad):
        processor.process()
    assert [u.code for u in processor.cleanup.not_deleted] == ["AccessDenied"]


def test_each_queue_is_called_at_its_url_in_its_region(
    sqs: FakeSQSEndpoint, legacy: Callable[..., PartialSQSProcessor[SQSRecord]]
) -> None:
    east = "arn:aws:sqs:us-east-1:111111111111:orders"
    west = "arn:aws:sqs:eu-west-1:222222222222:orders"
    records = [
        sqs_record("ok-0", index=0, queue_arn=east),
        sqs_record("bad-1", index=1, queue_arn=east),
    ]
    records += [sqs_record("ok-2", index=2, queue_arn=west)]
    records += [sqs_record(f"ok-{i}", index=i, queue_arn=east) for i in range(3, 15)]
    processor = legacy()
    run(processor, {"Records": records})
    calls = sorted((s.region, s.queue_url, len(s.entries)) for s in sqs.seen)
    assert calls == [
        ("eu-west-1", f"{ENDPOINT}/222222222222/orders", 1),
        ("us-east-1", f"{ENDPOINT}/111111111111/orders", 3),
        ("us-east-1", f"{ENDPOINT}/111111111111/orders", 10),
    ]
    assert all(len({e["Id"] for e in s.entries}) == len(s.entries) for s in sqs.seen)


def test_calls_go_out_concurrently_up_to_the_bound(
    sqs: FakeSQSEndpoint, legacy: Callable[..., PartialSQSProcessor[SQSRecord]]
) -> None:
    sqs.delay = 0.05
    event = sqs_event(bodies(201, bad=(200,)))
    processor = legacy(max_concurrent_calls=5)
    start = time.monotonic()
    run(processor, event)
    elapsed = time.monotonic() - start
    assert processor.cleanup.api_calls == 20
    assert len(processor.cleanup.deleted) == 200
    assert 4 * 0.05 <= elapsed < 20 * 0.05  # 4 waves of 5, not 20 one after another


@pytest.mark.anyio
async def test_calls_still_in_flight_at_the_deadline_are_reported_not_deleted(
    sqs: FakeSQSEndpoint,
) -> None:
    sqs.delay = 30.0
    event = sqs_event(bodies(3, bad=(0,)))
    processor = AsyncPartialSQSProcessor(HTTPX, endpoint_url=ENDPOINT, retry=FAST)
    start = time.monotonic()
    try:
        with pytest.raises(SQSBatchProcessingError) as caught:
            async with processor(
                event["Records"], fail_bad, lambda_context=fake_lambda_context(1.5)
            ):
                await processor.async_process()
    finally:
        await processor.aclose()
    assert time.monotonic() - start < 2.0  # 1.5 s, less the margin kept for returning
    assert [u.code for u in caught.value.not_deleted] == ["DeadlineExceeded"] * 2


def test_visibility_failures_are_logged_and_reported_not_raised(
    sqs: FakeSQSEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    sqs.script = [answer({"1": ("ReceiptHandleIsInvalid", True)})]
    event = sqs_event(bodies(3, bad=(0, 1)))
    logger = logging.getLogger("test.sqs.visibility")
    processor = SqsBatchProcessor(
        config=HTTPX,
        endpoint_url=ENDPOINT,
        retry=FAST,
        failed_visibility_timeout=lambda n: 60 * n,
        logger=logger,
    )
    try:
        with (
            caplog.at_level(logging.WARNING, logger=logger.name),
            processor(event["Records"], fail_bad),
        ):
            processor.process()
    finally:
        processor.close()
    (seen,) = sqs.seen
    assert seen.action == "ChangeMessageVisibilityBatch"
    assert [e["VisibilityTimeout"] for e in seen.entries] == [60, 60]
    assert processor.cleanup.visibility_changed == (event["Records"][0]["messageId"],)
    assert [u.code for u in processor.cleanup.visibility_not_changed] == ["ReceiptHandleIsInvalid"]
    assert len(processor.response()["batchItemFailures"]) == 2
    assert any("given a new visibility timeout" in r.getMessage() for r in caplog.records)
    assert sqs.handles() == set()  # partial-response mode never deletes


def signing_keys(sqs: FakeSQSEndpoint, session: Any) -> list[str]:
    """The access keys that signed the calls of a legacy batch made with *session*."""
    processor: PartialSQSProcessor[SQSRecord] = PartialSQSProcessor(
        HTTPX, boto3_session=session, endpoint_url=ENDPOINT, retry=FAST
    )
    try:
        run(processor, sqs_event(bodies(2, bad=(1,))))
    finally:
        processor.close()
    return sqs.access_keys


def test_explicit_boto3_session_credentials_sign_the_calls(sqs: FakeSQSEndpoint) -> None:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="AKIDFROMBOTO3",
        aws_secret_access_key="secret",
        aws_session_token="token",
        region_name="eu-west-1",
    )
    assert signing_keys(sqs, session) == ["AKIDFROMBOTO3"]


def test_a_boto3_session_profile_carries_over(
    sqs: FakeSQSEndpoint, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[team]\naws_access_key_id = AKIDTEAMPROFILE\naws_secret_access_key = s\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    session = boto3.session.Session(profile_name="team")
    assert signing_keys(sqs, session) == ["AKIDTEAMPROFILE"]


def test_the_legacy_processor_tells_its_observers(sqs: FakeSQSEndpoint) -> None:
    results: list[Any] = []

    class Observer:
        def batch_finished(self, result: Any) -> None:
            results.append(result)

    processor: PartialSQSProcessor[SQSRecord] = PartialSQSProcessor(
        HTTPX, endpoint_url=ENDPOINT, retry=FAST, observers=[Observer()]
    )
    try:
        run(processor, sqs_event(bodies(3, bad=(1,))))
    finally:
        processor.close()
    (result,) = results
    assert [o.status.value for o in result] == ["success", "failed", "success"]
    assert all(o.duration is not None for o in result)


def _client_error(status: int, code: str) -> Exception:
    from botocore.exceptions import ClientError

    answer: Any = {
        "Error": {"Code": code, "Message": f"{code}!"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    error: Exception = ClientError(answer, "DeleteMessageBatch")
    return error


def _botocore_error(name: str, **fields: str) -> Exception:
    import botocore.exceptions

    error: Exception = getattr(botocore.exceptions, name)(**fields)
    return error


@pytest.mark.parametrize(
    ("error", "code", "retryable"),
    [
        (_client_error(429, "TooManyRequests"), "TooManyRequests", True),
        (_client_error(503, "ServiceUnavailable"), "ServiceUnavailable", True),
        (
            _client_error(400, "AWS.SimpleQueueService.NonExistentQueue"),
            "AWS.SimpleQueueService.NonExistentQueue",
            False,
        ),
        (_client_error(403, "AccessDenied"), "AccessDenied", False),
        (
            _botocore_error("EndpointConnectionError", endpoint_url="http://127.0.0.1:1"),
            "EndpointConnectionError",
            True,
        ),
        (
            _botocore_error("ReadTimeoutError", endpoint_url="http://127.0.0.1:1"),
            "ReadTimeoutError",
            True,
        ),
        (_botocore_error("NoCredentialsError"), "NoCredentialsError", False),
    ],
)
def test_what_a_botocore_error_says_about_trying_again(
    error: Exception, code: str, retryable: bool
) -> None:
    from anybatch.sqs._client import _problem_of  # pyright: ignore[reportPrivateUsage]

    problem = _problem_of(error)
    assert problem is not None
    assert problem.code == code
    assert problem.retryable is retryable


def test_any_other_exception_is_no_sqs_problem_and_propagates() -> None:
    from anybatch.sqs._client import _problem_of  # pyright: ignore[reportPrivateUsage]

    assert _problem_of(ValueError("a bug in a hook")) is None
