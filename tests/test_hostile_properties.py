"""Property tests: random handler kinds and failures on both backends and both facades.

Whatever mix of successes, ``Exception`` s, stray cancellations and ``BaseException`` s a batch
holds, every record ends in one honest outcome (or the ``BaseException`` propagates), no
handler call and no task is left running, and the next batch on the same processor is right.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anybatch import (
    AsyncBatchProcessor,
    BatchProcessor,
    EventType,
    Status,
    async_process_partial_response,
    process_partial_response,
)
from anybatch.testing import firehose_event, kafka_event, sqs_event

if TYPE_CHECKING:
    from anybatch.records import SQSRecord


class Boom(BaseException):
    """A BaseException that is not a record failure."""


class InFlight:
    """Counts handler calls that started and have not ended."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0

    def __enter__(self) -> None:
        with self.lock:
            self.count += 1

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.count -= 1

    def settle(self, timeout: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        while self.count and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.count


def act(what: str) -> None:
    if what == "fail":
        raise ValueError("a record failure")
    if what == "base":
        raise Boom()


SOURCES: dict[str, Any] = {
    "sqs": (EventType.SQS, sqs_event, lambda record: record.body),
    "kafka": (EventType.Kafka, kafka_event, lambda record: record.value_as_text()),
    "firehose": (EventType.Firehose, firehose_event, lambda record: record.data_as_text()),
}


def reported(source: str, response: Any) -> list[Any]:
    """The identifiers a response reports as not done, in record order."""
    if source == "firehose":
        return [r["recordId"] for r in response["records"] if r["result"] != "Ok"]
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def make_handler(kind: str, in_flight: InFlight, source: str = "sqs") -> Any:
    payload = SOURCES[source][2]

    def sync_handler(record: SQSRecord) -> str:
        with in_flight:
            act(payload(record))
            return str(payload(record))

    async def async_handler(record: SQSRecord) -> str:
        with in_flight:
            await anyio.lowlevel.checkpoint()
            if payload(record) == "stray":
                task = asyncio.ensure_future(asyncio.sleep(9))
                task.cancel()
                await task
            act(payload(record))
            return str(payload(record))

    return async_handler if kind == "async" else sync_handler


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    backend = draw(st.sampled_from(["asyncio", "trio"]))
    kind = draw(st.sampled_from(["sync", "async"]))
    via = draw(st.sampled_from(["blocking", "awaited"]))
    concurrency = draw(st.sampled_from([1, 3, None]))
    choices = ["ok", "fail", "base"]
    if kind == "async" and backend == "asyncio":
        choices.append("stray")  # a cancellation nobody asked for exists on asyncio only
    plan = draw(st.lists(st.sampled_from(choices), min_size=1, max_size=10))
    return {
        "source": draw(st.sampled_from(sorted(SOURCES))),
        "backend": backend,
        "kind": kind,
        "via": via,
        "concurrency": concurrency,
        "plan": plan,
        "record_timeout": draw(st.sampled_from([None, 5.0])),
    }


def run_batch(scenario: dict[str, Any], processor: Any, bodies: list[str], handler: Any) -> Any:
    event = SOURCES[scenario["source"]][1](bodies)
    if scenario["via"] == "blocking":
        return process_partial_response(event, handler, processor)
    leftovers: list[int] = []

    async def main() -> Any:
        before = len(anyio.get_running_tasks())
        try:
            return await async_process_partial_response(event, handler, processor)
        finally:
            leftovers.append(len(anyio.get_running_tasks()) - before)

    try:
        return anyio.run(main, backend=scenario["backend"])
    finally:
        assert leftovers == [0], "a task outlived its batch"


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_every_mix_of_handler_outcomes_keeps_every_promise(scenario: dict[str, Any]) -> None:
    plan: list[str] = scenario["plan"]
    in_flight = InFlight()
    source = scenario["source"]
    handler = make_handler(scenario["kind"], in_flight, source)
    cls = BatchProcessor if scenario["via"] == "blocking" else AsyncBatchProcessor
    processor = cls(
        SOURCES[source][0],
        raise_on_entire_batch_failure=False,
        concurrency=scenario["concurrency"],
        record_timeout=scenario["record_timeout"],
        backend=scenario["backend"],
    )

    if "base" in plan:
        with pytest.raises(Boom):
            run_batch(scenario, processor, plan, handler)
    else:
        response = run_batch(scenario, processor, plan, handler)
        event_ids = reported(source, response)
        expected = [Status.SUCCESS if what == "ok" else Status.FAILED for what in plan]
        assert [outcome.status for outcome in processor.result] == expected
        failed = [o.identifier for o in processor.result if o.status is not Status.SUCCESS]
        assert event_ids == failed
    assert in_flight.settle() == 0, "a handler call outlived its batch"

    # The next (warm) invocation on the same processor is right.
    response = run_batch(scenario, processor, ["ok", "fail", "ok"], handler)
    assert len(reported(source, response)) == 1
    assert [o.status for o in processor.result] == [Status.SUCCESS, Status.FAILED, Status.SUCCESS]
    assert in_flight.settle() == 0


def _anyio_workers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "AnyIO worker thread"}


@settings(max_examples=30, deadline=None)
@given(
    plan=st.lists(st.sampled_from(["ok", "fail", "base"]), min_size=1, max_size=10),
    concurrency=st.sampled_from([2, 4, None]),
)
def test_threaded_batches_on_the_main_thread_leave_no_worker_thread(
    plan: list[str], concurrency: int | None
) -> None:
    before = _anyio_workers()
    in_flight = InFlight()
    processor = BatchProcessor(
        EventType.SQS, raise_on_entire_batch_failure=False, concurrency=concurrency
    )
    handler = make_handler("sync", in_flight)
    if "base" in plan:
        with pytest.raises(Boom):
            process_partial_response(sqs_event(plan), handler, processor)
    else:
        process_partial_response(sqs_event(plan), handler, processor)
    assert in_flight.settle() == 0
    deadline = time.monotonic() + 5
    while _anyio_workers() - before and time.monotonic() < deadline:
        time.sleep(0.005)
    assert _anyio_workers() - before == set()
