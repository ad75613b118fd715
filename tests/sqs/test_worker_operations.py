"""The worker as operators run it: its endpoint, its failure lines, its stop, its health file."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from anybatch import AsyncBatchProcessor, EventType
from anybatch.sqs import SQSWorker
from anybatch.sqs._endpoint import endpoint_of
from anybatch.sqs._failures import looks_like_lambda_handler

from ._running import run_until

if TYPE_CHECKING:
    from anybatch.records import SQSRecord

    from ._moto import MakeQueue

pytestmark = pytest.mark.anyio


# -- the endpoint -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("queue_url", "endpoint"),
    [
        ("http://127.0.0.1:9324/123456789012/orders", "http://127.0.0.1:9324"),
        ("http://localhost:4566/000000000000/orders", "http://localhost:4566"),
        ("https://sqs.us-east-1.amazonaws.com/123456789012/orders", None),
        ("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/orders", None),
        ("https://sqs.us-east-1.api.aws/123456789012/orders", None),
        ("https://vpce-1a2b.sqs.us-east-1.vpce.amazonaws.com/123456789012/orders", None),
        ("https://queue.amazonaws.com/123456789012/orders", None),
    ],
)
def test_the_queue_url_is_the_endpoint_unless_it_is_an_aws_host(
    queue_url: str, endpoint: str | None
) -> None:
    assert endpoint_of(queue_url, None, {}) == endpoint


def test_an_endpoint_given_or_configured_still_wins() -> None:
    url = "http://127.0.0.1:9324/123456789012/orders"
    assert endpoint_of(url, "http://elsewhere:1", {}) == "http://elsewhere:1"
    assert endpoint_of(url, None, {"AWS_ENDPOINT_URL_SQS": "http://elsewhere:1"}) is None
    assert endpoint_of(url, None, {"AWS_ENDPOINT_URL": "http://elsewhere:1"}) is None


async def test_a_worker_finds_a_local_queue_from_its_url_alone(
    make_queue: MakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_SQS", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    queue = make_queue()
    queue.send(["a", "b", "c"])
    seen: list[str] = []

    async def handler(record: SQSRecord) -> None:
        seen.append(record.body)

    worker = SQSWorker(queue.url, handler, wait_time=1)  # no endpoint_url
    assert worker.endpoint_url == queue.endpoint
    stats = await run_until(worker, lambda: len(seen) == 3)
    assert (sorted(seen), stats.deleted) == (["a", "b", "c"], 3)
    assert queue.counts() == (0, 0)


# -- what failed, and why -------------------------------------------------------------------------


def test_a_handler_of_event_and_context_looks_like_a_lambda_handler() -> None:
    def lambda_handler(event: Any, context: Any) -> None: ...
    def record_handler(record: Any) -> None: ...
    def with_context(record: Any, lambda_context: Any = None) -> None: ...

    assert looks_like_lambda_handler(lambda_handler)
    assert not looks_like_lambda_handler(record_handler)
    assert not looks_like_lambda_handler(with_context)


def worker_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "anybatch.worker"]


async def test_each_failed_message_gets_a_line_with_its_id_and_error_but_not_its_body(
    make_queue: MakeQueue, caplog: pytest.LogCaptureFixture
) -> None:
    queue = make_queue()
    # The bodies appear nowhere else: not in the handler's source, which tracebacks show.
    queue.send(["card-4111-ok", "card-4111-bad", "card-4111-worse"])
    ids: dict[str, str] = {}

    async def handler(record: SQSRecord) -> None:
        ids[record.body.rsplit("-", 1)[1]] = record.message_id
        if record.body.endswith("-bad"):
            raise ValueError("no quantity")
        if record.body.endswith("-worse"):
            raise KeyError("sku")

    caplog.set_level(logging.INFO, "anybatch.worker")
    processor = AsyncBatchProcessor(EventType.SQS, concurrency=1)
    worker = SQSWorker(queue.url, handler, processor, wait_time=1, max_in_flight=10)
    await run_until(worker, lambda: len(ids) == 3)
    bad, worse = ids["bad"], ids["worse"]
    failures = [line for line in worker_lines(caplog) if "record" in line]
    assert failures == [
        f"batch of 3 records: 1 success, 2 failed; 2 reported for retry: {bad} failed: "
        f"ValueError: no quantity; {worse} failed: KeyError: 'sku'",
        f"record {bad} failed; it is reported for retry: ValueError: no quantity",
        f"record {worse} failed; it is reported for retry: KeyError: 'sku'",
    ]
    assert "card-4111" not in caplog.text


async def test_a_batch_failing_the_same_way_says_so_once_with_a_hint_for_a_lambda_handler(
    make_queue: MakeQueue, caplog: pytest.LogCaptureFixture
) -> None:
    queue = make_queue()
    queue.send(["card-5500-1", "card-5500-2"])
    calls: list[str] = []

    async def lambda_handler(event: Any, context: Any) -> None:
        calls.append("called")  # never: the worker passes one record

    caplog.set_level(logging.INFO, "anybatch.worker")
    worker = SQSWorker(queue.url, lambda_handler, wait_time=1, max_in_flight=10)
    await run_until(worker, lambda: worker.stats.failed == 2)
    lines = [line for line in worker_lines(caplog) if "the same way" in line]
    assert len(lines) == 1
    assert re.fullmatch(
        r"batch of 2 messages: every one failed the same way: TypeError: .*lambda_handler\(\) "
        r"missing 1 required positional argument: 'context' \([0-9a-f-]{36}, [0-9a-f-]{36}\); "
        r"the record handler takes \(event, context\): it looks like a Lambda handler, but the "
        r"worker calls the handler of one record \(give that function, like "
        r"module:record_handler\)",
        lines[0],
    ), lines[0]
    assert calls == []
    assert "card-5500" not in caplog.text


async def test_a_processor_with_a_logger_logs_its_failures_itself_as_on_lambda(
    make_queue: MakeQueue, caplog: pytest.LogCaptureFixture
) -> None:
    queue = make_queue()
    queue.send(["bad"])

    async def handler(record: SQSRecord) -> None:
        raise ValueError("no quantity")

    caplog.set_level(logging.INFO)
    mine = logging.getLogger("tests.orders")
    processor = AsyncBatchProcessor(EventType.SQS, logger=mine)
    worker = SQSWorker(queue.url, handler, processor, wait_time=1)
    await run_until(worker, lambda: worker.stats.failed == 1)
    assert [r.name for r in caplog.records if "no quantity" in r.getMessage()] == [
        "tests.orders",
        "tests.orders",
    ]


# -- stopping --------------------------------------------------------------------------------------


async def test_a_stop_says_what_it_waits_for(
    make_queue: MakeQueue, caplog: pytest.LogCaptureFixture
) -> None:
    queue = make_queue()
    queue.send(["slow"])
    started = anyio.Event()

    async def handler(record: SQSRecord) -> None:
        started.set()
        await anyio.sleep(0.5)

    caplog.set_level(logging.INFO, "anybatch.worker")
    worker = SQSWorker(queue.url, handler, wait_time=2, pollers=1, max_in_flight=20)
    async with anyio.create_task_group() as group:

        async def stop_when_started() -> None:
            await started.wait()
            await anyio.sleep(0.1)  # the poller is back in its long poll
            worker.stop()

        group.start_soon(stop_when_started)
        await worker.run()
    stopping = [line for line in worker_lines(caplog) if line.startswith("stopping")]
    assert len(stopping) == 1
    assert re.fullmatch(
        r"stopping: waiting up to [12] s for 1 receive in flight; draining 1 message "
        r"\(up to 30 s\)",
        stopping[0],
    ), stopping[0]


async def test_an_idle_stop_and_a_second_one_say_so(
    make_queue: MakeQueue, caplog: pytest.LogCaptureFixture
) -> None:
    queue = make_queue()

    async def handler(record: SQSRecord) -> None: ...

    caplog.set_level(logging.INFO, "anybatch.worker")
    worker = SQSWorker(queue.url, handler, wait_time=1, pollers=2, max_in_flight=20)
    async with anyio.create_task_group() as group:

        async def stop_twice() -> None:
            while worker.stats.received == 0 and not worker._receiving:  # noqa: ASYNC110
                await anyio.sleep(0.01)
            worker.stop()
            worker.stop(now=True)

        group.start_soon(stop_twice)
        await worker.run()
    stopping = [line for line in worker_lines(caplog) if line.startswith("stopping")]
    assert len(stopping) == 2
    assert re.fullmatch(r"stopping: waiting up to 1 s for [12] receives? in flight", stopping[0])
    assert stopping[1] == "stopping now: 0 messages in flight left to their visibility timeout"


# -- the health file -------------------------------------------------------------------------------


async def test_the_health_file_lives_while_the_worker_runs_and_is_gone_after(
    make_queue: MakeQueue, tmp_path: Path
) -> None:
    queue = make_queue()
    queue.send(["a", "b"])
    health = tmp_path / "health"
    seen: dict[str, float] = {}

    async def handler(record: SQSRecord) -> None:
        seen[record.body] = health.stat().st_mtime
        if record.body == "b":
            await anyio.sleep(0.3)  # the loop runs on: the file is touched meanwhile
            seen["after"] = health.stat().st_mtime

    worker = SQSWorker(queue.url, handler, wait_time=1, health_file=health, health_interval=0.05)
    assert not health.exists()
    await run_until(worker, lambda: "after" in seen)
    assert seen["after"] > seen["b"]
    assert not health.exists()


async def test_a_loop_blocked_by_a_handler_stops_touching_the_health_file(
    make_queue: MakeQueue, tmp_path: Path
) -> None:
    queue = make_queue()
    queue.send(["block"])
    health = tmp_path / "health"
    mtimes: list[float] = []

    async def handler(record: SQSRecord) -> None:
        mtimes.append(health.stat().st_mtime)
        time.sleep(0.3)  # noqa: ASYNC251 - blocks the event loop: the bug the probe catches
        mtimes.append(health.stat().st_mtime)

    worker = SQSWorker(queue.url, handler, wait_time=1, health_file=health, health_interval=0.05)
    await run_until(worker, lambda: len(mtimes) == 2)
    assert mtimes[0] == mtimes[1]  # nothing touched it while the loop was blocked
    assert not health.exists()
