"""The anybatch command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from anybatch._cli import main
from anybatch.testing import sqs_event

HANDLERS = """
import anyio
from anybatch import BatchProcessor, EventType, process_partial_response

processor = BatchProcessor(EventType.SQS)


def record_handler(record):
    if record.body == "bad":
        raise ValueError("bad body")


def lambda_handler(event, context):
    assert context.get_remaining_time_in_millis() > 0
    return process_partial_response(event, record_handler, processor, context)


async def async_lambda_handler(event, context):
    await anyio.sleep(0)
    return {"remaining": context.get_remaining_time_in_millis() > 0}


def broken(event, context):
    raise RuntimeError("handler bug")
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "cli_app.py").write_text(HANDLERS)
    (tmp_path / "event.json").write_text(json.dumps(sqs_event(["ok", "bad"])))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_run_prints_the_handler_response(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "event.json", "cli_app:lambda_handler"]) == 0
    response = json.loads(capsys.readouterr().out)
    assert response == {
        "batchItemFailures": [{"itemIdentifier": "00000000-0000-4000-8000-000000000001"}]
    }


def test_indent_zero_prints_one_line(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "event.json", "cli_app:lambda_handler", "--indent", "0"]) == 0
    assert capsys.readouterr().out.count("\n") == 1


def test_run_awaits_async_handlers(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "event.json", "cli_app.async_lambda_handler"]) == 0
    assert json.loads(capsys.readouterr().out) == {"remaining": True}


def test_handler_exception_prints_traceback_and_exits_1(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "event.json", "cli_app:broken"]) == 1
    assert "RuntimeError: handler bug" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "missing.json", "cli_app:lambda_handler"], "cannot read missing.json"),
        (["run", "cli_app.py", "cli_app:lambda_handler"], "is not JSON"),
    ],
)
def test_bad_event_files_exit_2(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nomodule_xyz:handler", "cannot import 'nomodule_xyz'"),
        ("cli_app:nothing", "has no 'nothing'"),
        ("cli_app:HANDLERS_MISSING", "has no"),
        ("handler", "module:function"),
    ],
)
def test_bad_handler_specs_say_what_is_wrong(workdir: Path, spec: str, message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        main(["run", "event.json", spec])


def test_python_m_anybatch_runs_the_same_command(workdir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "anybatch", "run", "event.json", "cli_app:lambda_handler"],
        capture_output=True,
        text=True,
        cwd=workdir,
        check=True,
    )
    assert json.loads(done.stdout)["batchItemFailures"][0]["itemIdentifier"].endswith("1")
