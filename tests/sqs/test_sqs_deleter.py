"""The driver of the SQS calls, against an in-memory SQSBatchApi: pool bound, retries, deadline.

The fake stands for the network only (the Protocol's one method); the same driver runs over
real HTTP in the moto and respx tests.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import anyio
import pytest

from anybatch.sqs import RetryPolicy
from anybatch.sqs._deleter import SQSCallError, perform
from anybatch.sqs._plan import Action, Problem, QueueRef, plan
from anybatch.testing import sqs_record

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.001)


class FakeSQS:
    """Answers every entry as done after *latency*; the first *errors* calls fail."""

    def __init__(self, latency: float = 0.0, errors: list[Problem] | None = None) -> None:
        self.latency = latency
        self.errors = list(errors or [])
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: list[list[dict[str, Any]]] = []

    async def send(
        self, action: Action, queue: QueueRef, entries: list[dict[str, Any]]
    ) -> Mapping[str, Any]:
        self.requests.append(entries)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await anyio.sleep(self.latency)
        finally:
            self.in_flight -= 1
        if self.errors:
            raise SQSCallError(self.errors.pop(0))
        return {"Successful": [{"Id": entry["Id"]} for entry in entries], "Failed": []}


def delete_calls(n_records: int) -> Any:
    records = [sqs_record(str(i), index=i) for i in range(n_records + 1)]
    return plan(records, [True] * n_records + [False], delete_successes=True, visibility=None).calls


async def test_calls_run_concurrently_up_to_the_bound() -> None:
    fake = FakeSQS(latency=0.01)
    settlement = await perform(fake, delete_calls(200), FAST, max_concurrent_calls=7)
    assert fake.max_in_flight == 7
    assert settlement.api_calls == 20
    assert len(settlement.done) == 200
    assert settlement.failures == ()


async def test_a_call_that_fails_transiently_is_made_again() -> None:
    fake = FakeSQS(errors=[Problem("ThrottlingException", "slow down", True)] * 2)
    settlement = await perform(fake, delete_calls(3), FAST, max_concurrent_calls=1)
    assert settlement.api_calls == 3
    assert [e.record_index for e in settlement.done] == [0, 1, 2]


async def test_no_retry_waits_past_the_deadline() -> None:
    fake = FakeSQS(errors=[Problem("ThrottlingException", "slow down", True)])
    slow = RetryPolicy(attempts=3, base_delay=10.0, max_delay=10.0)
    start = time.monotonic()
    settlement = await perform(
        fake, delete_calls(2), slow, max_concurrent_calls=1, time_left=0.5, rand=lambda: 0.9
    )
    assert time.monotonic() - start < 0.5
    assert settlement.done == ()
    assert [(f.code, f.attempts) for f in settlement.failures] == [("DeadlineExceeded", 1)] * 2


async def test_calls_in_flight_at_the_deadline_are_cancelled_and_reported() -> None:
    fake = FakeSQS(latency=5.0)
    start = time.monotonic()
    settlement = await perform(fake, delete_calls(15), FAST, max_concurrent_calls=1, time_left=0.1)
    assert time.monotonic() - start < 1.0
    assert settlement.done == ()
    assert [f.attempts for f in settlement.failures] == [1] * 10 + [0] * 5
    assert {f.code for f in settlement.failures} == {"DeadlineExceeded"}
    assert settlement.api_calls == 1  # the call cut off in flight was made: it counts


class MalformedSQS:
    """Answers something that is not an SQS batch response."""

    async def send(
        self, action: Action, queue: QueueRef, entries: list[dict[str, Any]]
    ) -> Mapping[str, Any]:
        return {"Successful": [None]}


async def test_an_unreadable_answer_is_reported_not_raised() -> None:
    settlement = await perform(MalformedSQS(), delete_calls(2), FAST, max_concurrent_calls=2)
    assert settlement.done == ()
    assert [(f.code, f.attempts) for f in settlement.failures] == [("AttributeError", 1)] * 2
