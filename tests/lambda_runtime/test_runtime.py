"""Handlers under the real Lambda runtime interface client, against a loopback Runtime API.

``python -m awslambdaric module.handler`` runs as a subprocess, as in AWS's Python base
images; the Runtime API it talks to is served by ``tests/runtime_api.py`` on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anybatch.testing import sqs_event

from ._api import ROOT, Runtime, RuntimeAPI

pytest.importorskip("awslambdaric")

APPS = Path(__file__).resolve().parent / "apps"
EVENTS = ROOT / "examples" / "events"


@pytest.fixture
def api() -> Iterator[RuntimeAPI]:
    server = RuntimeAPI()
    yield server
    server.close()


@pytest.fixture
def runtimes() -> Iterator[list[Runtime]]:
    started: list[Runtime] = []
    yield started
    for runtime in started:
        runtime.stop()


def failures(response: Any) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def ids(event: dict[str, Any], *indices: int) -> list[str]:
    return [event["Records"][i]["messageId"] for i in indices]


def test_warm_invocations_share_one_process_and_one_loop(
    api: RuntimeAPI, runtimes: list[Runtime]
) -> None:
    runtimes.append(Runtime(api, "loops_app.lambda_handler", cwd=APPS))
    seen: list[tuple[int, int]] = []
    for _ in range(4):
        event = sqs_event(["ok", "bad", "sleep 0.01"])
        outcome = api.invoke(event)
        assert outcome.kind == "response", outcome.body
        assert failures(outcome.body["response"]) == ids(event, 1)
        assert outcome.body["request_id"] == outcome.request_id
        seen.append((outcome.body["pid"], outcome.body["loop"]))
    assert len(set(seen)) == 1  # one process, one long-lived loop: the asyncio.Lock still works


def test_the_sqs_example_answers_as_anybatch_run_does(
    api: RuntimeAPI, runtimes: list[Runtime]
) -> None:
    runtimes.append(Runtime(api, "examples.sqs_handler.lambda_handler"))
    event = json.loads((EVENTS / "sqs.json").read_text())
    for _ in range(2):  # cold, then warm
        outcome = api.invoke(event)
        assert outcome.kind == "response", outcome.body
        assert failures(outcome.body) == ids(event, 2, 4)


def test_the_deadline_comes_from_the_real_lambda_context(
    api: RuntimeAPI, runtimes: list[Runtime]
) -> None:
    runtimes.append(Runtime(api, "examples.deadline_handler.lambda_handler"))
    event = json.loads((EVENTS / "deadline.json").read_text())
    outcome = api.invoke(event, timeout=2.5)
    assert outcome.kind == "response", outcome.body
    # deadline_margin=0.5: the answer comes before the 2.5 s deadline, reporting the jobs
    # that timed out, were cancelled at the deadline, or never started.
    assert outcome.elapsed < 2.5
    assert failures(outcome.body) == ids(event, 1, 3, 4, 5, 6, 7)


def test_a_handler_error_becomes_a_function_error(api: RuntimeAPI, runtimes: list[Runtime]) -> None:
    runtimes.append(Runtime(api, "examples.sqs_handler.lambda_handler"))
    every_record_fails = sqs_event([{"id": i, "quantity": 0} for i in range(3)])
    outcome = api.invoke(every_record_fails)
    assert outcome.kind == "error"
    assert outcome.body["errorType"] == "BatchProcessingError"
    assert "All records failed processing" in outcome.body["errorMessage"]
    # The process lives on: the next invocation is answered.
    assert api.invoke(sqs_event([{"id": 9, "quantity": 1}])).body == {"batchItemFailures": []}


def test_managed_instances_fork_workers_with_loops_of_their_own(
    api: RuntimeAPI, runtimes: list[Runtime]
) -> None:
    runtimes.append(
        Runtime(api, "loops_app.lambda_handler", cwd=APPS, AWS_LAMBDA_MAX_CONCURRENCY="2")
    )
    events = [sqs_event(["sleep 0.3", "bad"]) for _ in range(6)]
    requests = [api.submit(event) for event in events]
    outcomes = [api.wait(request, within=60) for request in requests]
    for event, outcome in zip(events, outcomes, strict=True):
        assert outcome.kind == "response", outcome.body
        assert failures(outcome.body["response"]) == ids(event, 1)
    pids = {outcome.body["pid"] for outcome in outcomes}
    assert len(pids) == 2  # both forked workers served invocations, at the same time
    loops: dict[int, set[int]] = {}
    for outcome in outcomes:
        loops.setdefault(outcome.body["pid"], set()).add(outcome.body["loop"])
    assert all(len(each) == 1 for each in loops.values())  # one long-lived loop per worker
