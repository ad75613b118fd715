"""Every example runs on its event file and reports exactly the records it should.

Each example is run in-process through the ``anybatch run`` entry point (``anybatch._cli.main``)
and as a real subprocess of the ``anybatch`` console script, as a user runs it. The expected
identifiers are spelled out: a change of behaviour, an example or an event file fails here.
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from anybatch import Status
from anybatch._cli import main

ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = ROOT / "examples" / "events"


class Case(NamedTuple):
    event: str
    handler: str
    #: The identifiers reported, or the whole response when it is not batchItemFailures.
    expected: list[Any] | dict[str, Any]
    options: tuple[str, ...] = ()


def _firehose_answers() -> dict[str, Any]:
    """What firehose_transform.py answers for examples/events/firehose.json."""
    import base64

    records = json.loads((EVENTS_DIR / "firehose.json").read_text())["records"]
    ids = [r["recordId"] for r in records]

    def ok(line: str) -> dict[str, Any]:
        return {"result": "Ok", "data": base64.b64encode(line.encode()).decode()}

    pt = {"metadata": {"partitionKeys": {"country": "PT"}}}
    answers = [
        {**ok('{"page":"/home","country":"PT","at":"2026-12-01T10:00:00Z"}\n'), **pt},
        {"result": "Dropped", "data": records[1]["data"]},
        {"result": "ProcessingFailed", "data": records[2]["data"]},
        {**ok('{"page":"/checkout","country":"PT","at":"2026-12-01T10:00:03Z"}\n'), **pt},
    ]
    return {"records": [{"recordId": i, **a} for i, a in zip(ids, answers, strict=True)]}


CASES = {
    "sqs": Case(
        "sqs.json",
        "examples.sqs_handler:lambda_handler",
        ["00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000004"],
    ),
    "worker-on-lambda": Case(
        "sqs.json",
        "examples.worker_handler:lambda_handler",
        ["00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000004"],
    ),
    "models": Case(
        "sqs.json",
        "examples.models_order:lambda_handler",
        ["00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000004"],
    ),
    "powertools-parser": Case(
        "sqs.json",
        "examples.powertools_parser:lambda_handler",
        ["00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000004"],
    ),
    "powertools-observability": Case(
        "sqs.json",
        "examples.powertools_observability:lambda_handler",
        ["00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000004"],
    ),
    "powertools-observability-async": Case(
        "sqs.json",
        "examples.powertools_observability:async_lambda_handler",
        ["00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000004"],
    ),
    "classic-decorator": Case(
        "classic.json",
        "examples.classic_handler:lambda_handler",
        ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"],
    ),
    "classic-threads": Case(
        "classic.json",
        "examples.classic_handler:threaded_lambda_handler",
        ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"],
    ),
    "classic-context-manager": Case(
        "classic.json",
        "examples.classic_handler:context_manager_handler",
        ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"],
    ),
    "fifo-skip-group": Case(
        "fifo.json",
        "examples.fifo_handler:lambda_handler",
        [
            "00000000-0000-4000-8000-000000000002",
            "00000000-0000-4000-8000-000000000004",
            "00000000-0000-4000-8000-000000000006",
            "00000000-0000-4000-8000-000000000008",
        ],
    ),
    "fifo-async": Case(
        "fifo.json",
        "examples.fifo_handler:async_lambda_handler",
        [
            "00000000-0000-4000-8000-000000000002",
            "00000000-0000-4000-8000-000000000004",
            "00000000-0000-4000-8000-000000000006",
            "00000000-0000-4000-8000-000000000008",
        ],
    ),
    "fifo-strict": Case(
        "fifo.json",
        "examples.fifo_handler:strict_lambda_handler",
        [
            "00000000-0000-4000-8000-000000000002",
            "00000000-0000-4000-8000-000000000003",
            "00000000-0000-4000-8000-000000000004",
            "00000000-0000-4000-8000-000000000005",
            "00000000-0000-4000-8000-000000000006",
            "00000000-0000-4000-8000-000000000007",
            "00000000-0000-4000-8000-000000000008",
        ],
    ),
    "kinesis": Case(
        "kinesis.json",
        "examples.kinesis_handler:lambda_handler",
        [
            "49590000000000000000000000000000000000000000000000000002",
            "49590000000000000000000000000000000000000000000000000006",
        ],
    ),
    "kafka": Case(
        "kafka.json",
        "examples.kafka_handler:lambda_handler",
        [{"partition": "payments-0", "offset": 101}, {"partition": "payments-1", "offset": 102}],
    ),
    "firehose": Case(
        "firehose.json", "examples.firehose_transform:lambda_handler", _firehose_answers()
    ),
    "dynamodb": Case(
        "dynamodb.json",
        "examples.dynamodb_handler:lambda_handler",
        ["100000000000000000002", "100000000000000000004"],
    ),
    "deadline": Case(
        "deadline.json",
        "examples.deadline_handler:lambda_handler",
        [
            "00000000-0000-4000-8000-000000000001",
            "00000000-0000-4000-8000-000000000003",
            "00000000-0000-4000-8000-000000000004",
            "00000000-0000-4000-8000-000000000005",
            "00000000-0000-4000-8000-000000000006",
            "00000000-0000-4000-8000-000000000007",
        ],
        ("--timeout", "2"),
    ),
    "custom-hooks": Case(
        "classic.json",
        "examples.custom_hooks:lambda_handler",
        ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"],
    ),
    "permanent": Case(
        "kinesis.json",
        "examples.permanent_handler:lambda_handler",
        ["49590000000000000000000000000000000000000000000000000006"],
    ),
    "idempotent": Case(
        "sqs.json",
        "examples.idempotent_handler:lambda_handler",
        ["00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000004"],
    ),
    "custom-processor": Case(
        "classic.json",
        "examples.custom_processor:lambda_handler",
        ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"],
    ),
}


def _response(expected: list[Any] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(expected, dict):
        return expected
    return {"batchItemFailures": [{"itemIdentifier": ident} for ident in expected]}


def _argv(case: Case) -> list[str]:
    return ["run", *case.options, str(Path("examples", "events", case.event)), case.handler]


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the repository root, as the examples' docstrings do."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", [str(ROOT), *sys.path])
    return ROOT


def _run_in_process(case: Case, capsys: pytest.CaptureFixture[str]) -> tuple[Any, str]:
    code = main(_argv(case))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out), captured.err


@pytest.mark.usefixtures("in_repo")
@pytest.mark.parametrize("name", list(CASES))
def test_example_reports_exactly_its_failures(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CASES[name]
    response, _ = _run_in_process(case, capsys)
    assert response == _response(case.expected)


@pytest.mark.usefixtures("in_repo")
@pytest.mark.parametrize("name", ["sqs", "classic-decorator", "fifo-async", "custom-hooks"])
def test_warm_invocation_gives_the_same_response(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The module (and its processor) stays imported, as in a warm execution environment.
    case = CASES[name]
    first, _ = _run_in_process(case, capsys)
    second, _ = _run_in_process(case, capsys)
    assert first == second == _response(case.expected)


def _console_script() -> str:
    script = shutil.which("anybatch", path=str(Path(sys.executable).parent))
    assert script is not None, "the anybatch console script is not installed next to python"
    return script


@pytest.mark.parametrize("name", list(CASES))
def test_example_runs_under_the_console_script(name: str) -> None:
    case = CASES[name]
    proc = subprocess.run(
        [_console_script(), *_argv(case)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == _response(case.expected)


def test_example_runs_under_python_dash_m() -> None:
    case = CASES["sqs"]
    proc = subprocess.run(
        [sys.executable, "-m", "anybatch", *_argv(case)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == _response(case.expected)


@pytest.mark.usefixtures("in_repo")
def test_custom_hooks_count_successes_and_failures(capsys: pytest.CaptureFixture[str]) -> None:
    _, err = _run_in_process(CASES["custom-hooks"], capsys)
    emf = json.loads(next(line for line in err.splitlines() if line.startswith("{")))
    assert emf["BatchRecordSuccesses"] == 3
    assert emf["BatchRecordFailures"] == 2
    definition = emf["_aws"]["CloudWatchMetrics"][0]
    assert definition["Namespace"] == "anybatch-examples"
    assert [m["Name"] for m in definition["Metrics"]] == [
        "BatchRecordFailures",
        "BatchRecordSuccesses",
    ]


@pytest.mark.parametrize("name", ["powertools-observability", "powertools-observability-async"])
def test_powertools_logger_and_metrics_see_each_record(name: str) -> None:
    # A process of its own, as on Lambda: Powertools' Logger and Metrics are process-wide.
    proc = subprocess.run(
        [_console_script(), *_argv(CASES[name])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    logged = [line for line in lines if line.get("message") == "order reserved"]
    sqs = json.loads((EVENTS_DIR / "sqs.json").read_text())["Records"]
    reserved = {r["messageId"]: json.loads(r["body"])["id"] for r in sqs}
    for failed in CASES[name].expected:
        del reserved[failed]
    # Each line carries its own record's keys, and inject_lambda_context's.
    assert {line["message_id"]: line["order_id"] for line in logged} == reserved
    assert len(logged) == len(reserved)
    assert {line["function_name"] for line in logged} == {"anybatch-function"}
    (emf,) = [line for line in lines if "_aws" in line]
    assert emf["OrdersReserved"] == [1.0] * len(reserved)
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "anybatch-examples"


@pytest.mark.usefixtures("in_repo")
def test_deadline_example_returns_before_the_lambda_timeout(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="examples.deadline_handler")
    started = time.monotonic()
    response, _ = _run_in_process(CASES["deadline"], capsys)
    elapsed = time.monotonic() - started
    assert response == _response(CASES["deadline"].expected)
    # --timeout 2 with deadline_margin=0.5: done after about 1.5 s, well before 2 s.
    assert 1.4 <= elapsed < 2.0

    processor = importlib.import_module("examples.deadline_handler").processor
    statuses = [outcome.status for outcome in processor.result]
    assert statuses[:4] == [Status.SUCCESS, Status.TIMED_OUT, Status.SUCCESS, Status.TIMED_OUT]
    # Jobs 4 and 5 are cancelled at the deadline, 6 and 7 never start: both are DEADLINE.
    assert statuses[4:] == [Status.DEADLINE] * 4

    warnings = [
        r
        for r in caplog.records
        if r.name == "examples.deadline_handler" and hasattr(r, "item_identifier")
    ]
    assert [getattr(r, "item_identifier", None) for r in warnings] == CASES["deadline"].expected
    assert [getattr(r, "anybatch_status", None) for r in warnings] == [
        "timed_out",
        "timed_out",
        "deadline",
        "deadline",
        "deadline",
        "deadline",
    ]


@pytest.mark.usefixtures("in_repo")
def test_event_files_are_the_builders_output() -> None:
    make_events = importlib.import_module("examples.make_events")
    built: dict[str, Any] = make_events.build_events()
    assert sorted(p.name for p in EVENTS_DIR.glob("*.json")) == sorted(built)
    for name, event in built.items():
        saved = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
        assert saved == event, f"examples/events/{name} is stale: python -m examples.make_events"


# Exercised elsewhere: sqs_legacy deletes from a real queue, so tests/sqs runs it on moto.
ELSEWHERE = {"make_events", "sqs_legacy"}


def test_every_example_module_is_exercised() -> None:
    modules = {p.stem for p in (ROOT / "examples").glob("*.py")} - ELSEWHERE
    exercised = {case.handler.split(":")[0].removeprefix("examples.") for case in CASES.values()}
    assert modules == exercised
