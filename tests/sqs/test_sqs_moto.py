"""Legacy mode and failed-message visibility end to end, over real HTTP to moto's server.

Every test sends real messages, receives them with real receipt handles, hands them to a
processor as Lambda would, and then looks at what is left in the queue.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import anyio.lowlevel
import pytest
from aiobotocore.session import AioSession, get_session
from botocore.config import Config

from anybatch import (
    BatchProcessingError,
    ProcessorStateError,
    SQSFifoCircuitBreakerError,
    as_lambda_handler,
    async_process_partial_response,
    process_partial_response,
)
from anybatch.sqs import (
    AsyncPartialSQSProcessor,
    AsyncSqsBatchProcessor,
    PartialSQSProcessor,
    SQSBatchProcessingError,
    SqsBatchProcessor,
    async_sqs_batch_processor,
    sqs_batch_processor,
)

if TYPE_CHECKING:
    from anybatch.records import SQSRecord

    from ._moto import MakeQueue


def fail_bad(record: SQSRecord) -> str:
    if record.body.startswith("bad"):
        raise ValueError(f"cannot handle {record.body}")
    return record.body


async def async_fail_bad(record: SQSRecord) -> str:
    await anyio.lowlevel.checkpoint()
    return fail_bad(record)


@pytest.fixture
def endpoint(moto_endpoint: str) -> str:
    return moto_endpoint


@pytest.fixture
def processors() -> Iterator[list[PartialSQSProcessor[Any] | SqsBatchProcessor[Any]]]:
    """Blocking processors to close (their clients live on anybatch's loop) after a test."""
    made: list[PartialSQSProcessor[Any] | SqsBatchProcessor[Any]] = []
    yield made
    for processor in made:
        processor.close()


def counting_session() -> tuple[AioSession, list[str]]:
    """An aiobotocore session that notes every SQS client made through it."""
    session = get_session()
    made: list[str] = []
    session.register("creating-client-class.sqs", lambda **kwargs: made.append("sqs"))
    return session, made


# --- legacy mode, blocking ------------------------------------------------------------------------


def test_legacy_mode_deletes_the_successes_and_raises_when_the_block_exits(
    make_queue: MakeQueue, endpoint: str, processors: list[Any]
) -> None:
    queue = make_queue()
    bodies = [f"ok-{i}" for i in range(14)]
    bodies[3], bodies[8] = "bad-3", "bad-8"
    event = queue.event(bodies)
    processor = PartialSQSProcessor(endpoint_url=endpoint)
    processors.append(processor)
    processed: list[Any] = []

    with pytest.raises(SQSBatchProcessingError) as caught, processor(event["Records"], fail_bad):
        processed = processor.process()
    assert [status for status, _, _ in processed].count("fail") == 2  # process() returned first

    failed_ids = [event["Records"][i]["messageId"] for i in (3, 8)]
    assert [outcome.identifier for outcome in caught.value.failures] == failed_ids
    assert len(caught.value.child_exceptions) == 2
    assert caught.value.not_deleted == ()
    assert isinstance(caught.value, BatchProcessingError)
    assert len(processor.cleanup.deleted) == 12
    assert processor.cleanup.api_calls == 2  # 10 + 2 entries
    assert queue.counts() == (0, 2)
    assert queue.bodies_left(event["Records"]) == ["bad-3", "bad-8"]


def test_suppress_exception_deletes_the_successes_without_raising(
    make_queue: MakeQueue, endpoint: str, processors: list[Any]
) -> None:
    queue = make_queue()
    event = queue.event(["ok-0", "bad-1", "ok-2"])
    processor = PartialSQSProcessor(endpoint_url=endpoint, suppress_exception=True)
    processors.append(processor)
    with processor(event["Records"], fail_bad):
        processor.process()
    assert processor.response() == {
        "batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]
    }
    assert queue.bodies_left(event["Records"]) == ["bad-1"]


class _SilentHooks(PartialSQSProcessor[Any]):
    """A failure hook that keeps nothing: the failures must still be raised, not deleted."""

    def failure_handler(self, record: Any, exception: Any) -> Any:
        return ("fail", str(exception[1]), record)


def test_a_failure_hook_that_keeps_nothing_still_raises_and_deletes_no_failure(
    make_queue: MakeQueue, endpoint: str, processors: list[Any]
) -> None:
    queue = make_queue()
    event = queue.event(["ok-0", "bad-1"])
    processor = _SilentHooks(endpoint_url=endpoint)
    processors.append(processor)
    with pytest.raises(SQSBatchProcessingError), processor(event["Records"], fail_bad):
        processor.process()
    assert processor.fail_messages == []
    assert queue.bodies_left(event["Records"]) == ["bad-1"]


def test_nothing_is_deleted_when_every_record_succeeded(
    make_queue: MakeQueue, endpoint: str, processors: list[Any]
) -> None:
    queue = make_queue()
    event = queue.event(["ok-0", "ok-1"])
    session, made = counting_session()
    processor = PartialSQSProcessor(session=session, endpoint_url=endpoint)
    processors.append(processor)
    with processor(event["Records"], fail_bad):
        processor.process()
    assert processor.cleanup.api_calls == 0
    assert made == []  # not even a client
    assert queue.counts() == (0, 2)  # Lambda deletes them when the function returns


def test_nothing_is_deleted_when_every_record_failed(
    make_queue: MakeQueue, endpoint: str, processors: list[Any]
) -> None:
    queue = make_queue()
    event = queue.event(["bad-0", "bad-1"])
    processor = PartialSQSProcessor(endpoint_url=endpoint)
    processors.append(processor)
    with pytest.raises(SQSBatchProcessingError), processor(event["Records"], fail_bad):
        processor.process()
    assert processor.cleanup.api_calls == 0
    assert queue.bodies_left(event["Records"]) == ["bad-0", "bad-1"]


def test_a_fifo_batch_stops_at_the_first_failure_and_deletes_only_what_came_before(
    make_queue: MakeQueue, endpoint: str, processors: list[Any]
) -> None:
    queue = make_queue(fifo=True)
    bodies = ["ok-0", "ok-1", "bad-2", "ok-3", "ok-4", "ok-5"]
    event = queue.event(bodies, group_ids=["g1", "g2"] * 3)
    seen: list[str] = []

    def handler(record: SQSRecord) -> str:
        seen.append(record.body)
        return fail_bad(record)

    processor = PartialSQSProcessor(endpoint_url=endpoint)
    processors.append(processor)
    with pytest.raises(SQSBatchProcessingError) as caught, processor(event["Records"], handler):
        processor.process()
    assert seen == ["ok-0", "ok-1", "bad-2"]
    skipped = [type(outcome.exception) for outcome in caught.value.failures[1:]]
    assert skipped == [SQSFifoCircuitBreakerError] * 3  # as the incumbent's FIFO processor
    assert queue.bodies_left(event["Records"]) == ["bad-2", "ok-3", "ok-4", "ok-5"]


def test_a_batch_spanning_queues_and_regions_deletes_from_each(
    make_queue: MakeQueue, endpoint: str, processors: list[Any]
) -> None:
    east, west = make_queue(region="us-east-1"), make_queue(region="eu-west-1")
    records = east.event(["ok-e0", "bad-e1", "ok-e2"])["Records"]
    records += west.event(["ok-w0", "ok-w1", "bad-w2"])["Records"]
    session, made = counting_session()
    processor = PartialSQSProcessor(session=session, endpoint_url=endpoint)
    processors.append(processor)
    with pytest.raises(SQSBatchProcessingError), processor(records, fail_bad):
        processor.process()
    assert sorted(made) == ["sqs", "sqs"]  # one client per region
    assert len(processor.cleanup.deleted) == 4
    assert east.bodies_left(records[:3]) == ["bad-e1"]
    assert west.bodies_left(records[3:]) == ["bad-w2"]


def test_botocores_own_endpoint_setting_is_honoured(
    make_queue: MakeQueue, endpoint: str, processors: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", endpoint)
    queue = make_queue()
    event = queue.event(["ok-0", "bad-1"])
    config = Config(connect_timeout=5, read_timeout=5)  # botocore's, as Powertools took it
    processor = PartialSQSProcessor(config, suppress_exception=True)  # no endpoint_url
    processors.append(processor)
    with processor(event["Records"], fail_bad):
        processor.process()
    assert queue.bodies_left(event["Records"]) == ["bad-1"]


def test_the_client_is_made_once_reused_when_warm_and_made_again_after_close(
    make_queue: MakeQueue, endpoint: str
) -> None:
    queue = make_queue()
    session, made = counting_session()
    processor = PartialSQSProcessor(session=session, endpoint_url=endpoint, suppress_exception=True)
    try:
        for _ in range(2):
            event = queue.event(["ok", "bad"])
            with processor(event["Records"], fail_bad):
                processor.process()
            assert len(processor.cleanup.deleted) == 1
        assert made == ["sqs"]
        processor.close()
        event = queue.event(["ok", "bad"])
        with processor(event["Records"], fail_bad):
            processor.process()
        assert made == ["sqs", "sqs"]
    finally:
        processor.close()


def test_the_decorator_raises_instead_of_calling_the_handler_when_records_failed(
    make_queue: MakeQueue, endpoint: str
) -> None:
    queue = make_queue()
    processor = PartialSQSProcessor(endpoint_url=endpoint)
    calls: list[str] = []

    @sqs_batch_processor(record_handler=fail_bad, processor=processor)
    def lambda_handler(event: dict[str, Any], context: Any) -> str:
        calls.append("handler")
        return "done"

    try:
        assert lambda_handler(queue.event(["ok-0"]), None) == "done"
        bad_event = queue.event(["ok-1", "bad-2"])
        with pytest.raises(SQSBatchProcessingError):
            lambda_handler(bad_event, None)
        assert calls == ["handler"]
        assert queue.counts() == (0, 2)  # ok-0 waits for Lambda to delete it; ok-1 is gone
        assert queue.bodies_left(bad_event["Records"]) == ["bad-2"]
    finally:
        processor.close()


def test_the_decorator_with_settings_suppresses_as_asked(
    make_queue: MakeQueue, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", endpoint)
    queue = make_queue()

    @sqs_batch_processor(record_handler=fail_bad, suppress_exception=True)
    def lambda_handler(event: dict[str, Any], context: Any) -> str:
        return "done"

    event = queue.event(["ok-0", "bad-1"])
    try:
        assert lambda_handler(event, None) == "done"
        assert queue.bodies_left(event["Records"]) == ["bad-1"]
    finally:
        for obj in gc.get_objects():  # the processor the decorator made, to close its client
            if isinstance(obj, PartialSQSProcessor):
                obj.close()


def test_records_become_models_and_handlers_may_run_on_trio_while_deletes_use_asyncio(
    make_queue: MakeQueue, endpoint: str, processors: list[Any]
) -> None:
    from anybatch.models import SqsRecordModel

    queue = make_queue()
    event = queue.event(["ok-0", "bad-1", "ok-2"])
    seen: list[str] = []

    async def handler(record: SqsRecordModel) -> None:
        await anyio.lowlevel.checkpoint()  # on trio: anybatch's trio loop
        seen.append(type(record).__name__)
        if record.body.startswith("bad"):
            raise ValueError(record.body)

    processor = PartialSQSProcessor(
        endpoint_url=endpoint, model=SqsRecordModel, backend="trio", suppress_exception=True
    )
    processors.append(processor)
    with processor(event["Records"], handler):
        processor.process()
    assert seen == ["SqsRecordModel"] * 3
    assert len(processor.cleanup.deleted) == 2
    assert queue.bodies_left(event["Records"]) == ["bad-1"]


# --- visibility -----------------------------------------------------------------------------------


def test_failed_messages_come_back_as_soon_as_asked(
    make_queue: MakeQueue, endpoint: str, processors: list[Any]
) -> None:
    queue = make_queue()
    event = queue.event(["ok-0", "bad-1", "bad-2"])
    counts: list[int] = []

    def backoff(receive_count: int) -> int:
        counts.append(receive_count)
        return 0

    processor = PartialSQSProcessor(
        endpoint_url=endpoint, suppress_exception=True, failed_visibility_timeout=backoff
    )
    processors.append(processor)
    with processor(event["Records"], fail_bad):
        processor.process()
    assert counts == [1, 1]
    assert processor.cleanup.visibility_changed == tuple(
        r["messageId"] for r in event["Records"][1:]
    )
    assert queue.counts() == (2, 0)  # visible again now, not after the queue's 30 s


def test_partial_response_processor_hides_failures_and_deletes_nothing(
    make_queue: MakeQueue, endpoint: str, processors: list[Any]
) -> None:
    queue = make_queue()
    event = queue.event(["ok-0", "bad-1", "ok-2"])
    processor = SqsBatchProcessor(endpoint_url=endpoint, failed_visibility_timeout=0)
    processors.append(processor)
    response = process_partial_response(event, fail_bad, processor)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert processor.cleanup.deleted == ()
    assert queue.counts() == (1, 2)  # the failure is visible; Lambda deletes the successes


def test_partial_response_processor_still_raises_when_every_record_failed(
    make_queue: MakeQueue, endpoint: str, processors: list[Any]
) -> None:
    queue = make_queue()
    event = queue.event(["bad-0"])
    processor = SqsBatchProcessor(endpoint_url=endpoint, failed_visibility_timeout=0)
    processors.append(processor)
    with pytest.raises(BatchProcessingError) as caught:
        process_partial_response(event, fail_bad, processor)
    assert not isinstance(caught.value, SQSBatchProcessingError)
    assert queue.counts() == (1, 0)


# --- async ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_legacy_mode_deletes_on_the_running_loop(
    make_queue: MakeQueue, endpoint: str
) -> None:
    queue = make_queue()
    event = queue.event(["ok-0", "bad-1", "ok-2"])
    processor = AsyncPartialSQSProcessor(endpoint_url=endpoint)
    try:
        with pytest.raises(SQSBatchProcessingError):
            async with processor(event["Records"], async_fail_bad):
                await processor.async_process()
        assert len(processor.cleanup.deleted) == 2
    finally:
        await processor.aclose()
    assert queue.bodies_left(event["Records"]) == ["bad-1"]


@pytest.mark.anyio
async def test_async_partial_response_processor_hides_failures(
    make_queue: MakeQueue, endpoint: str
) -> None:
    queue = make_queue()
    event = queue.event(["ok-0", "bad-1"])
    processor = AsyncSqsBatchProcessor(endpoint_url=endpoint, failed_visibility_timeout=0)
    try:
        response = await async_process_partial_response(event, async_fail_bad, processor)
    finally:
        await processor.aclose()
    assert len(response["batchItemFailures"]) == 1
    assert queue.counts() == (1, 1)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_async_processor_works_on_trio_through_anybatchs_asyncio_loop(
    make_queue: MakeQueue, endpoint: str
) -> None:
    queue = make_queue()
    event = queue.event(["ok-0", "bad-1"])
    processor = AsyncPartialSQSProcessor(endpoint_url=endpoint, suppress_exception=True)
    try:
        async with processor(event["Records"], async_fail_bad):
            await processor.async_process()
    finally:
        await processor.aclose()
    assert len(processor.cleanup.deleted) == 1
    assert queue.bodies_left(event["Records"]) == ["bad-1"]


def test_async_decorator_runs_through_as_lambda_handler(
    make_queue: MakeQueue, endpoint: str
) -> None:
    queue = make_queue()
    processor = AsyncPartialSQSProcessor(endpoint_url=endpoint)

    @as_lambda_handler
    @async_sqs_batch_processor(record_handler=async_fail_bad, processor=processor)
    async def lambda_handler(event: dict[str, Any], context: Any) -> str:
        return "done"

    try:
        assert lambda_handler(queue.event(["ok-0"]), None) == "done"
        event = queue.event(["ok-1", "bad-2"])
        with pytest.raises(SQSBatchProcessingError):
            lambda_handler(event, None)
    finally:
        processor.close()  # as_lambda_handler ran it on anybatch's loop
    assert queue.counts() == (0, 2)
    assert queue.bodies_left(event["Records"]) == ["bad-2"]


def test_clients_of_another_loop_are_refused_before_any_record_runs(
    make_queue: MakeQueue, endpoint: str
) -> None:
    queue = make_queue()
    processor = AsyncPartialSQSProcessor(endpoint_url=endpoint, suppress_exception=True)
    first_loop = asyncio.new_event_loop()
    ran: list[str] = []

    async def process(bodies: list[str]) -> None:
        async def handler(record: SQSRecord) -> None:
            ran.append(record.body)
            if record.body.startswith("bad"):
                raise ValueError(record.body)

        with processor(queue.event(bodies)["Records"], handler):
            await processor.async_process()

    try:
        first_loop.run_until_complete(process(["ok-0", "bad-1"]))  # clients now on first_loop
        assert ran == ["ok-0", "bad-1"]
        with pytest.raises(ProcessorStateError, match="another event loop"):
            asyncio.run(process(["ok-2"]))  # asyncio.run per invocation: a new loop
        assert ran == ["ok-0", "bad-1"]
        with pytest.raises(ProcessorStateError, match="close them there"):
            processor.close()  # anybatch's loop is not theirs either
    finally:
        first_loop.run_until_complete(processor.aclose())
        first_loop.close()

    async def process_then_close() -> None:  # the other way to run a loop per invocation
        await process(["ok-3", "bad-4"])
        await processor.aclose()

    asyncio.run(process_then_close())
    asyncio.run(process_then_close())
    assert ran[-2:] == ["ok-3", "bad-4"]


# --- boto3_session=, as Powertools documents it ---------------------------------------------


def test_the_documented_boto3_session_decorator_deletes_the_successes(
    make_queue: MakeQueue, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", endpoint)  # the documented code names none
    queue = make_queue()
    event = queue.event(["ok-0", "bad-1", "ok-2"])
    session = boto3.session.Session()

    @sqs_batch_processor(record_handler=fail_bad, boto3_session=session)
    def lambda_handler(event: Any, context: Any) -> dict[str, str]:
        return {"statusCode": "200"}

    try:
        with pytest.raises(SQSBatchProcessingError):
            lambda_handler(event, None)
        assert queue.bodies_left(event["Records"]) == ["bad-1"]
    finally:
        for obj in gc.get_objects():  # the processor the decorator made, to close its client
            if isinstance(obj, PartialSQSProcessor):
                obj.close()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_documented_boto3_session_processor_deletes_the_successes(
    make_queue: MakeQueue,
    endpoint: str,
    processors: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    backend: Any,
) -> None:
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", endpoint)
    queue = make_queue(region="eu-west-1")
    event = queue.event(["ok-0", "bad-1"])
    session = boto3.session.Session(region_name="eu-west-1")
    processor = PartialSQSProcessor(boto3_session=session, suppress_exception=True, backend=backend)
    processors.append(processor)
    with processor(event["Records"], async_fail_bad):
        processor.process()
    assert list(processor.cleanup.deleted) == [event["Records"][0]["messageId"]]
    assert queue.bodies_left(event["Records"]) == ["bad-1"]


def test_a_boto3_session_as_the_third_positional_argument_works_as_in_powertools(
    make_queue: MakeQueue, endpoint: str, processors: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", endpoint)
    queue = make_queue()
    event = queue.event(["ok-0", "bad-1"])
    processor = PartialSQSProcessor(None, True, boto3.session.Session())
    processors.append(processor)
    with processor(event["Records"], fail_bad):
        processor.process()
    assert queue.bodies_left(event["Records"]) == ["bad-1"]


def test_boto3_session_and_session_together_are_refused() -> None:
    import boto3

    with pytest.raises(TypeError, match="not both"):
        PartialSQSProcessor(session=get_session(), boto3_session=boto3.session.Session())
    with pytest.raises(TypeError, match=r"boto3\.session\.Session"):
        PartialSQSProcessor(boto3_session=object())


# --- the client's user agent ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_user_agent_is_botocores_own_built_once_per_set_of_features(
    make_queue: MakeQueue, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.useragent import UserAgentString, register_feature_id

    from anybatch._botocore import remember_user_agent
    from anybatch.sqs._client import AioSQS
    from anybatch.sqs._plan import parse_queue_arn

    botocores = UserAgentString.to_string
    built: list[str] = []

    def counted(self: UserAgentString) -> str:
        text: str = botocores(self)
        built.append(text)
        return text

    monkeypatch.setattr(UserAgentString, "to_string", counted)

    def ours() -> int:  # the test's own boto3 calls, made through the same class, left out
        return len([text for text in built if text.startswith("aiobotocore/")])

    builds: list[int] = []
    creators: list[UserAgentString] = []
    sent: list[tuple[str, str, str]] = []  # (event, the header sent, botocore's own)

    def compare(request: Any, event_name: str, **_: Any) -> None:
        header = request.headers["User-Agent"]
        header = header.decode() if isinstance(header, bytes) else header
        sent.append((event_name, header, botocores(creators[0])))

    def compress_deletes(**_: Any) -> None:  # a feature some calls register, as botocore's do
        register_feature_id("GZIP_REQUEST_COMPRESSION")

    session = get_session()
    session.register("before-send.sqs", compare)
    session.register("before-call.sqs.DeleteMessageBatch", compress_deletes)
    queue = make_queue()
    queue.send([f"m-{i}" for i in range(5)])
    sqs = AioSQS(session=session, endpoint_url=endpoint)
    try:
        client: Any = await sqs._client(queue.region)  # pyright: ignore[reportPrivateUsage]
        creators.append(client._user_agent_creator)
        for _ in range(3):
            messages = await sqs.receive(
                queue.url, queue.region, max_messages=1, wait_time=0, visibility_timeout=30
            )
            entries = [{"Id": "0", "ReceiptHandle": m["ReceiptHandle"]} for m in messages]
            await sqs.send("delete", parse_queue_arn(queue.arn), entries)
            builds.append(ours())
        # Calls at once, each in its own task (and botocore context): each its own header.
        first = await sqs.receive(
            queue.url, queue.region, max_messages=1, wait_time=0, visibility_timeout=30
        )
        entries = [{"Id": "0", "ReceiptHandle": first[0]["ReceiptHandle"]}]
        last, _ = await asyncio.gather(
            sqs.receive(
                queue.url, queue.region, max_messages=1, wait_time=0, visibility_timeout=30
            ),
            sqs.send("delete", parse_queue_arn(queue.arn), entries),
        )
        entries = [{"Id": "0", "ReceiptHandle": last[0]["ReceiptHandle"]}]
        await sqs.send("delete", parse_queue_arn(queue.arn), entries)
    finally:
        await sqs.aclose()
    assert queue.counts() == (0, 0)
    assert len(sent) == 10
    # botocore's own header, to the byte; then what other libraries' handlers add to every
    # call's (Powertools, once imported, appends its own "PT/..." to every session's calls).
    assert all(header.startswith(own) for _, header, own in sent)
    assert len({header[len(own) :] for _, header, own in sent}) == 1
    assert [event for event, _, _ in sent[:6]] == [
        "before-send.sqs.ReceiveMessage",
        "before-send.sqs.DeleteMessageBatch",
    ] * 3
    receives = {h for event, h, _ in sent if event.endswith("ReceiveMessage")}
    deletes = {h for event, h, _ in sent if event.endswith("DeleteMessageBatch")}
    assert len(receives) == 1
    assert len(deletes) == 1

    def features(header: str) -> list[str]:  # "... m/g,N,L ..." -> ["g", "N", "L"]
        return header.partition(" m/")[2].split(" ")[0].split(",")

    assert "L" not in features(receives.pop())
    assert "L" in features(deletes.pop())  # the deletes' own feature
    # botocore builds each call's header twice (before and after the call registers its
    # features): twenty builds for ten calls. Here: once per set of features, all in the
    # first round (a receive and a delete), none after.
    assert 2 <= builds[0] <= 4
    assert ours() == builds[0]
    assert remember_user_agent(object()) is False  # nothing to remember: left as it is
