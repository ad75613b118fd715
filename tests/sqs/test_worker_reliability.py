"""The worker's contract with the queue: its visibility timeout, the heartbeat's bounds, a
visibility policy that raises, and the queue's partition in every record."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest

from anybatch import BatchProcessor, EventType
from anybatch.records import SQSRecord
from anybatch.sqs import SQSWorker, SQSWorkerError
from anybatch.sqs._heartbeat import Heartbeats
from anybatch.sqs._plan import Heartbeat, QueueRef, RetryPolicy, parse_queue_arn
from anybatch.sqs._room import Room
from anybatch.sqs._settle import Caller, settle_calls
from anybatch.sqs._stats import WorkerStats
from anybatch.testing import sqs_record

from ._fake_sqs import ARN, HTTPX_BACKEND
from ._fake_sqs import worker as fake_worker
from ._running import run_until
from .test_worker import receive_all

if TYPE_CHECKING:
    from ._fake_sqs import FakeQueue
    from ._moto import MakeQueue, Queue

pytestmark = pytest.mark.anyio


def worker_for(queue: Queue, handler: Any, **options: Any) -> SQSWorker:
    options.setdefault("wait_time", 1)
    return SQSWorker(
        queue.url, handler, BatchProcessor(EventType.SQS), endpoint_url=queue.endpoint, **options
    )


# -- the queue's visibility timeout -----------------------------------------------------------


async def test_a_failed_message_comes_back_after_the_queues_own_visibility_timeout(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue(visibility_timeout=1)
    queue.send(["bad"])
    receives: list[int] = []

    def handler(record: SQSRecord) -> None:
        receives.append(int(record.attributes.approximate_receive_count))
        raise ValueError("bad")

    # No visibility_timeout: the queue's 1 s, not 30 s, hides the failed message.
    stats = await run_until(worker_for(queue, handler), lambda: len(receives) >= 2, within=10)
    assert receives[:2] == [1, 2]
    assert stats.deleted == 0


async def test_the_heartbeat_keeps_to_the_queues_own_visibility_timeout(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue(visibility_timeout=2)
    queue.send(["slow"])
    peeked: list[int] = []
    done: list[str] = []

    def handler(record: SQSRecord) -> None:
        for _ in range(4):  # 3 s: longer than the queue's visibility timeout
            anyio.from_thread.run(anyio.sleep, 0.75)
            peeked.append(len(receive_all(queue)))
        done.append(record.body)

    stats = await run_until(worker_for(queue, handler, wait_time=0), lambda: bool(done))
    assert peeked == [0] * 4  # extended in time: nobody else could receive it
    assert stats.extended >= 1
    assert stats.deleted == 1


async def test_visibility_timeout_overrides_the_queues(make_queue: MakeQueue) -> None:
    queue = make_queue(visibility_timeout=1)
    queue.send(["bad"])
    receives: list[int] = []

    def handler(record: SQSRecord) -> None:
        receives.append(int(record.attributes.approximate_receive_count))
        raise ValueError("bad")

    worker = worker_for(queue, handler, visibility_timeout=60)

    async with anyio.create_task_group() as group:

        async def stop_later() -> None:
            while not receives:  # noqa: ASYNC110 - polls a condition of the test's own
                await anyio.sleep(0.02)
            await anyio.sleep(2.5)  # the queue's 1 s, more than twice over
            worker.stop()

        group.start_soon(stop_later)
        with anyio.fail_after(20):
            await worker.run()
    assert receives == [1]  # hidden for the 60 s asked for
    assert queue.counts() == (0, 1)


@HTTPX_BACKEND
async def test_a_queue_without_a_usable_visibility_timeout_is_refused_at_start(
    sqs: FakeQueue,
) -> None:
    async def handler(record: SQSRecord) -> None: ...

    sqs.visibility_timeout = 0  # every receive would hand its messages out again at once
    with pytest.raises(ValueError, match=r"visibility timeout of .*worker-faults is 0 s"):
        await fake_worker(handler).run()
    sqs.visibility_timeout = 600
    with pytest.raises(ValueError, match=r"max_visibility \(300 s\)"):
        await fake_worker(handler, max_visibility=300).run()
    sqs.faults["GetQueueAttributes"] = [
        lambda: httpx.Response(200, json={"Attributes": {"QueueArn": ARN}})
    ]
    with pytest.raises(SQSWorkerError, match="gave no VisibilityTimeout") as raised:
        await fake_worker(handler).run()
    assert raised.value.code == "InvalidQueueAttributes"
    sqs.faults["GetQueueAttributes"] = [
        lambda: httpx.Response(200, json={"Attributes": {"VisibilityTimeout": "30"}})
    ]
    with pytest.raises(SQSWorkerError, match="not the ARN of an SQS queue: None"):
        await fake_worker(handler).run()


@HTTPX_BACKEND
async def test_a_visibility_timeout_setting_needs_no_queue_setting(sqs: FakeQueue) -> None:
    sqs.faults["GetQueueAttributes"] = [
        lambda: httpx.Response(200, json={"Attributes": {"QueueArn": ARN}})
    ]
    sqs.add(["ok"])

    async def handler(record: SQSRecord) -> None: ...

    worker = fake_worker(handler, visibility_timeout=5)
    stats = await run_until(worker, lambda: sqs.messages[0].deleted)
    assert stats.deleted == 1


def test_max_visibility_is_checked_against_the_visibility_timeout_given() -> None:
    async def handler(record: Any) -> None: ...

    url = "https://sqs.us-east-1.amazonaws.com/123456789012/q"
    with pytest.raises(ValueError, match=r"between visibility_timeout \(60\) and 43200"):
        SQSWorker(url, handler, visibility_timeout=60, max_visibility=30)
    with pytest.raises(ValueError, match="max_visibility must be > 0"):
        SQSWorker(url, handler, max_visibility=0)
    assert SQSWorker(url, handler).visibility_timeout is None  # the queue's, read at start


# -- the heartbeat ----------------------------------------------------------------------------


def beats(heartbeat: Heartbeat, lag: float = 0.0) -> list[tuple[float, int]]:
    """Drive *heartbeat* on a fake clock: each wake *lag* seconds late (and never early)."""
    made: list[tuple[float, int]] = []
    now = 0.0
    while heartbeat.due is not None and len(made) < 10_000:
        now = max(now, heartbeat.due) + lag
        seconds = heartbeat.extend(now)
        if seconds is not None:
            made.append((round(now, 2), seconds))
    return made


def test_the_heartbeat_extends_when_a_third_is_left_and_stops_at_max_visibility() -> None:
    assert beats(Heartbeat(0.0, 120, 300)) == [(80.0, 120), (160.0, 120), (240.0, 60)]
    assert beats(Heartbeat(0.0, 4, 5)) == [(2.67, 2)]  # to the limit, then left alone
    assert beats(Heartbeat(0.0, 30, 30)) == []  # nothing to extend
    assert len(beats(Heartbeat(0.0, 30, 43_200))) == 2159


@pytest.mark.parametrize(("timeout", "limit"), [(4, 5), (120, 300), (30, 43_200), (1, 2)])
@pytest.mark.parametrize("lag", [0.0, 0.001, 0.2])
def test_the_heartbeat_asks_once_per_extension_however_late_it_wakes(
    timeout: int, limit: int, lag: float
) -> None:
    made = beats(Heartbeat(0.0, timeout, limit), lag)
    # Each extension gains time; a third of the timeout at most is spent before the next.
    assert len(made) <= limit / (timeout * 2 / 3) + 1
    assert all(now + seconds <= limit for now, seconds in made)


def test_the_heartbeat_gives_up_when_it_wakes_too_late_to_extend() -> None:
    heartbeat = Heartbeat(0.0, 4, 5)
    assert heartbeat.extend(4.5) is None
    assert heartbeat.due is None
    assert heartbeat.extend(4.6) is None


@HTTPX_BACKEND
async def test_a_message_near_max_visibility_is_extended_once_then_left_alone(
    sqs: FakeQueue,
) -> None:
    sqs.add(["slow"])

    async def slow(record: SQSRecord) -> None:
        await anyio.sleep(4)  # past the point where a third of 4 s no longer fits before 5 s

    worker = fake_worker(slow, visibility_timeout=4, max_visibility=5)
    stats = await run_until(worker, lambda: sqs.messages[0].deleted)
    # One extension (to the 5 s limit), then none: not one call after another.
    assert sqs.calls.get("ChangeMessageVisibilityBatch", 0) == 1
    assert stats.extended == 1
    assert stats.deleted == 1


class ExtensionCalls:
    """An SQS API that confirms every entry, and notes whose visibility it was asked to extend."""

    def __init__(self) -> None:
        self.extended: list[str] = []
        self.at: list[float] = []  # when each was asked (time.monotonic())
        self.seen: dict[str, anyio.Event] = {}

    async def send(
        self, action: str, queue: QueueRef, entries: list[dict[str, Any]]
    ) -> dict[str, Any]:
        assert action == "change_visibility"
        self.extended.extend(entry["ReceiptHandle"] for entry in entries)
        self.at.extend(time.monotonic() for _ in entries)
        for entry in entries:
            self.seen.setdefault(entry["ReceiptHandle"], anyio.Event()).set()
        return {"Successful": [{"Id": entry["Id"]} for entry in entries], "Failed": []}


async def test_one_timer_starts_each_batchs_heartbeat_when_due_whatever_ended_before() -> None:
    api = ExtensionCalls()
    stats = WorkerStats()
    heartbeats = Heartbeats(Caller(api, RetryPolicy(), 1), 1, 60, stats)
    queue = parse_queue_arn(ARN)

    def batch(name: str) -> list[dict[str, Any]]:
        return [{"messageId": name, "receiptHandle": f"handle-{name}"}]

    now = time.monotonic()
    # The first batch's extension (due 2/3 s after it was received) sets the timer; it ends
    # at once: the timer fires for nothing, and is set again for the next batch due.
    first = heartbeats.start(queue, batch("ended"), now)
    later = heartbeats.start(queue, batch("later"), now + 0.3)
    await heartbeats.stop(first)
    # Received before the others (a batch handed over late): due sooner than the timer.
    sooner = heartbeats.start(queue, batch("sooner"), now - 0.5)
    try:
        with anyio.fail_after(5):
            await api.seen.setdefault("handle-later", anyio.Event()).wait()
        assert api.extended[0] == "handle-sooner"  # (and again every 2/3 s since)
        assert api.at[0] < now + 0.5  # while it was still hidden: not at the timer's first time
        assert "handle-ended" not in api.extended
        assert stats.extended >= 2
    finally:
        await heartbeats.stop(later)
        await heartbeats.stop(sooner)
        heartbeats.close()
    made = len(api.extended)
    await anyio.sleep(1.2)  # stopped: no heartbeat goes on
    assert len(api.extended) == made


async def test_a_heartbeat_timer_run_a_little_early_still_starts_the_heartbeat_due() -> None:
    api = ExtensionCalls()
    heartbeats = Heartbeats(Caller(api, RetryPolicy(), 1), 1, 60, WorkerStats())
    records = [{"messageId": "m", "receiptHandle": "h"}]
    key = heartbeats.start(parse_queue_arn(ARN), records, time.monotonic())
    # A loop may run a timer before its time, by its clock's resolution (15.6 ms on
    # Windows): as the loop would, at once. The heartbeat starts, rather than the timer
    # being set again and again until the clock reaches its time.
    heartbeats._fire()
    try:
        assert heartbeats._timer is None
        with anyio.fail_after(5):
            await api.seen.setdefault("h", anyio.Event()).wait()  # and extends when due
    finally:
        await heartbeats.stop(key)
        heartbeats.close()


async def test_a_settled_batch_wakes_as_many_pollers_as_its_room_has_receives_for() -> None:
    room = Room(15)
    woken: list[int] = []

    async def poller(number: int) -> None:
        await room.wait()
        woken.append(number)

    async with anyio.create_task_group() as group:
        for number in range(4):
            group.start_soon(poller, number)
        await anyio.wait_all_tasks_blocked()
        room.wake(5)  # one receive's room: one poller, not every one
        await anyio.wait_all_tasks_blocked()
        assert woken == [0]
        room.wake(6)  # less than a receive while batches run: nobody
        await anyio.wait_all_tasks_blocked()
        assert woken == [0]
        room.wake(0)  # a receive of 10, then 5 left beside it: not another's room
        await anyio.wait_all_tasks_blocked()
        assert woken == [0, 1]
        room.wake_all()  # stopping
    assert woken == [0, 1, 2, 3]


def test_a_receive_asks_for_a_whole_receives_room_or_any_when_nothing_is_in_flight() -> None:
    assert Room(100).receive_size(0) == 10
    assert Room(100).receive_size(90) == 10
    assert Room(100).receive_size(95) == 0  # part of a receive while batches run: wait
    assert Room(100).receive_size(100) == 0
    assert Room(5).receive_size(0) == 5  # nothing in flight: any room beats none
    assert Room(5).receive_size(1) == 0


@HTTPX_BACKEND
async def test_the_room_a_batch_frees_goes_to_a_receive_while_other_batches_run(
    sqs: FakeQueue,
) -> None:
    sqs.add(["slow"] * 10 + ["fast"] * 10 + ["next"] * 10)
    release = anyio.Event()
    next_ran = anyio.Event()

    async def handler(record: SQSRecord) -> None:
        if record.body == "slow":
            await release.wait()
        elif record.body == "next":
            next_ran.set()

    worker = fake_worker(handler, max_in_flight=20, pollers=2)
    async with anyio.create_task_group() as group:

        async def check() -> None:
            with anyio.fail_after(5):
                await next_ran.wait()  # received with the room the fast batch freed
            assert not release.is_set()  # while the slow batch still runs
            release.set()
            with anyio.fail_after(5):
                while sum(message.deleted for message in sqs.messages) < 30:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            worker.stop()

        group.start_soon(check)
        stats = await worker.run()
    assert stats.deleted == 30


# -- a failed_visibility_timeout that raises ---------------------------------------------------


async def test_a_visibility_policy_that_raises_is_logged_and_the_worker_goes_on(
    make_queue: MakeQueue, caplog: pytest.LogCaptureFixture
) -> None:
    queue = make_queue()
    queue.send(["ok-1", "bad", "ok-2"])
    seen: list[str] = []

    def handler(record: SQSRecord) -> None:
        seen.append(record.body)
        if record.body == "bad":
            raise ValueError("bad")

    def policy(receive_count: int) -> float:
        return 1 / 0

    worker = worker_for(queue, handler, failed_visibility_timeout=policy)
    with caplog.at_level(logging.WARNING, logger="anybatch.worker"):
        async with anyio.create_task_group() as group:

            async def send_later() -> None:
                while worker.stats.failed < 1:  # noqa: ASYNC110 - the test's own condition
                    await anyio.sleep(0.01)
                await anyio.to_thread.run_sync(queue.send, ["later"])

            group.start_soon(send_later)
            stats = await run_until(worker, lambda: worker.stats.deleted >= 3)
    assert sorted(seen) == ["bad", "later", "ok-1", "ok-2"]
    assert (stats.deleted, stats.failed, stats.visibility_not_changed) == (3, 1, 1)
    assert queue.counts() == (0, 1)  # the failed message: hidden for the queue's visibility
    assert "failed_visibility_timeout" in caplog.text
    assert "ZeroDivisionError" in caplog.text


def test_a_visibility_policy_that_raises_costs_only_its_own_message_hiding() -> None:
    queue = parse_queue_arn("arn:aws:sqs:us-east-1:123456789012:q")
    records = [sqs_record(body, message_id=body) for body in ("ok", "bad", "released")]

    def policy(receive_count: int) -> float:
        raise RuntimeError("policy bug")

    calls, errors = settle_calls(queue, records, ["delete", "fail", "release"], policy)
    assert [(call.action, [e.message_id for e in call.entries]) for call in calls] == [
        ("delete", ["ok"]),
        ("change_visibility", ["released"]),
    ]
    assert [(e.message_id, str(e.error)) for e in errors] == [("bad", "policy bug")]
    _, nan = settle_calls(queue, records, ["delete", "fail", "release"], lambda n: float("nan"))
    assert [type(e.error) for e in nan] == [ValueError]


# -- the partition ----------------------------------------------------------------------------


def test_a_queue_arn_keeps_its_partition() -> None:
    for arn in (
        "arn:aws:sqs:us-east-1:123456789012:q",
        "arn:aws-cn:sqs:cn-north-1:123456789012:q",
        "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:q.fifo",
    ):
        assert parse_queue_arn(arn).arn == arn
    assert parse_queue_arn("arn:aws-cn:sqs:cn-north-1:1:q") == QueueRef(
        "cn-north-1", "1", "q", "aws-cn"
    )
    with pytest.raises(ValueError, match="not the ARN of an SQS queue"):
        parse_queue_arn("arn::sqs:us-east-1:1:q")


@pytest.mark.parametrize(
    ("arn", "url"),
    [
        ("arn:aws:sqs:eu-west-1:1:q", "https://sqs.eu-west-1.amazonaws.com/1/q"),
        ("arn:aws-cn:sqs:cn-north-1:1:q", "https://sqs.cn-north-1.amazonaws.com.cn/1/q"),
        ("arn:aws-us-gov:sqs:us-gov-east-1:1:q", "https://sqs.us-gov-east-1.amazonaws.com/1/q"),
        ("arn:aws-iso:sqs:us-iso-east-1:1:q", "https://sqs.us-iso-east-1.c2s.ic.gov/1/q"),
        ("arn:aws-iso-b:sqs:us-isob-east-1:1:q", "https://sqs.us-isob-east-1.sc2s.sgov.gov/1/q"),
    ],
)
def test_a_records_queue_url_is_on_its_partitions_domain(arn: str, url: str) -> None:
    assert SQSRecord(sqs_record("x", queue_arn=arn)).queue_url == url


@pytest.mark.parametrize(
    ("region", "partition", "domain"),
    [
        ("cn-north-1", "aws-cn", "amazonaws.com.cn"),
        ("us-gov-west-1", "aws-us-gov", "amazonaws.com"),
    ],
)
async def test_the_records_carry_the_queues_partition(
    make_queue: MakeQueue, region: str, partition: str, domain: str
) -> None:
    queue = make_queue(region=region)
    queue.send(["x"])
    got: list[SQSRecord] = []

    def handler(record: SQSRecord) -> None:
        got.append(record)

    stats = await run_until(worker_for(queue, handler, region=region), lambda: bool(got))
    (record,) = got
    assert record.event_source_arn == f"arn:{partition}:sqs:{region}:123456789012:{queue.name}"
    assert record.event_source_arn == queue.arn
    assert record.queue_url == f"https://sqs.{region}.{domain}/123456789012/{queue.name}"
    assert record.aws_region == region
    assert stats.deleted == 1


# -- a blocked sync handler --------------------------------------------------------------------


async def test_run_returns_after_the_drain_while_a_sync_handler_is_still_blocked(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue()
    queue.send(["stuck"])
    started = threading.Event()
    release = threading.Event()

    def handler(record: SQSRecord) -> None:
        started.set()
        release.wait(30)  # blocked past the drain (set at the end, so the thread ends)

    worker = worker_for(queue, handler, drain_timeout=0.5)
    try:
        began = time.monotonic()
        stats = await run_until(worker, started.is_set)
        assert time.monotonic() - began < 10
    finally:
        release.set()
    assert (stats.released, stats.deleted) == (1, 0)
    assert queue.counts() == (1, 0)  # released for another worker
