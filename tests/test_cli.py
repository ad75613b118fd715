"""The anybatch command line: responses, summaries, and one clear line for every mistake."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import anybatch
from anybatch._cli import main
from anybatch.testing import kinesis_event, sqs_event

HANDLERS = """
import datetime
import sys
from decimal import Decimal

import anyio
from anybatch import (
    AsyncBatchProcessor,
    BatchProcessor,
    EventType,
    async_process_partial_response,
    process_partial_response,
)

processor = BatchProcessor(EventType.SQS)
async_processor = AsyncBatchProcessor(EventType.SQS)


def record_handler(record):
    if record.body == "bad":
        raise ValueError("bad body")


def lambda_handler(event, context):
    assert context.get_remaining_time_in_millis() > 0
    return process_partial_response(event, record_handler, processor, context)


async def async_lambda_handler(event, context):
    await anyio.sleep(0)
    return {"remaining": context.get_remaining_time_in_millis() > 0}


def unawaited(event, context):
    return async_process_partial_response(event, record_handler, async_processor, context)


def not_json(event, context):
    return {"at": datetime.datetime(2026, 12, 1, 10, 0)}


def numbers(event, context):
    return {"count": Decimal("3"), "ratio": Decimal("0.5")}


def raw_bytes(event, context):
    return b"\\x00raw"


def plain(event, context):
    return {"plain": True}


def chatty(event, context):
    print("a line for the logs")
    return {"chatty": True}


KEPT = sys.stdout  # as Powertools' Logger keeps it


def keeps_stdout(event, context):
    KEPT.write("through the stream kept at import\\n")
    return {}


def broken(event, context):
    raise RuntimeError("handler bug")


NOT_CALLABLE = 3
"""

ID1 = "00000000-0000-4000-8000-000000000001"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "cli_app.py").write_text(HANDLERS)
    (tmp_path / "event.json").write_text(json.dumps(sqs_event(["ok", "bad"])))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("cli_app", "syntax_app", "raising_app", "chatty_app"):
        sys.modules.pop(name, None)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["run", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def timeless(text: str) -> str:
    return re.sub(r"\(\d+\.\d ms\)", "(T ms)", text)


def test_run_prints_the_response_and_a_summary_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "event.json", "cli_app:lambda_handler")
    assert code == 0
    assert json.loads(out) == {"batchItemFailures": [{"itemIdentifier": ID1}]}
    assert timeless(err) == "anybatch: 2 records: 1 succeeded, 1 failed (T ms)\n"


def test_quiet_leaves_only_the_response(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "event.json", "cli_app:lambda_handler", "--quiet", "--indent", "0")
    assert code == 0
    assert out == json.dumps({"batchItemFailures": [{"itemIdentifier": ID1}]}) + "\n"
    assert err == ""


def test_what_the_handler_prints_goes_to_stderr_as_to_lambdas_logs(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "chatty_app.py").write_text('print("imported")\n' + HANDLERS)
    code, out, err = run(capsys, "event.json", "chatty_app:chatty", "--indent", "0", "-q")
    assert (code, out, err) == (0, '{"chatty": true}\n', "imported\na line for the logs\n")


def test_a_stream_kept_at_import_follows_stderr_on_later_runs(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "event.json", "cli_app:keeps_stdout", "-q")
    assert (code, out, err) == (0, "{}\n", "through the stream kept at import\n")
    with contextlib.redirect_stderr(io.StringIO()) as elsewhere:  # the module stays imported
        assert main(["run", "event.json", "cli_app:keeps_stdout", "-q"]) == 0
    assert elsewhere.getvalue() == "through the stream kept at import\n"
    assert capsys.readouterr() == ("{}\n", "")


def test_a_handler_that_processes_no_batch_says_so(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "event.json", "cli_app:plain")
    assert (code, json.loads(out)) == (0, {"plain": True})
    assert timeless(err) == "anybatch: the handler returned without processing a batch (T ms)\n"


MARSHAL = "anybatch: on Lambda this fails: Runtime.MarshalError: Unable to marshal response: "


def test_an_async_def_handler_fails_as_on_lambda_and_says_to_decorate_it(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "event.json", "cli_app.async_lambda_handler")
    assert (code, out) == (1, "")
    assert err == (
        f"{MARSHAL}Object of type coroutine is not JSON serializable; Lambda never awaits a "
        "handler: decorate cli_app.async_lambda_handler with @as_lambda_handler\n"
    )


def test_a_handler_returning_an_unawaited_coroutine_fails_and_says_to_await_it(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "event.json", "cli_app:unawaited")
    assert (code, out) == (1, "")
    assert err == (
        f"{MARSHAL}Object of type coroutine is not JSON serializable; Lambda does not await "
        "what cli_app:unawaited returns: make it an async def that awaits it, decorated with "
        "@as_lambda_handler, or call the blocking process_partial_response\n"
    )


def test_a_result_json_cannot_hold_fails_as_on_lambda(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "event.json", "cli_app:not_json")
    assert (code, out) == (1, "")
    assert err == (
        f"{MARSHAL}Object of type datetime is not JSON serializable; return only JSON values: "
        "dict, list, str, int, float, bool, None\n"
    )


def test_decimals_print_as_numbers_as_lambda_sends_them(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "event.json", "cli_app:numbers", "--indent", "0")
    assert (code, out) == (0, '{"count": 3, "ratio": 0.5}\n')


def test_bytes_print_as_they_are_as_lambda_sends_them(workdir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "anybatch", "run", "-q", "event.json", "cli_app:raw_bytes"],
        capture_output=True,
        cwd=workdir,
        check=True,
    )
    assert (done.stdout, done.stderr) == (b"\x00raw\n", b"")


def test_a_handler_exception_shows_the_users_traceback_and_exits_1(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "event.json", "cli_app:broken")
    assert (code, out) == (1, "")
    assert err.startswith("Traceback (most recent call last):\n")
    assert err.endswith('raise RuntimeError("handler bug")\nRuntimeError: handler bug\n')
    assert "anybatch" not in err.replace("cli_app", "")  # no frame of anybatch's own


def test_the_wrong_event_type_is_one_line_and_exits_1(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "kinesis.json").write_text(json.dumps(kinesis_event(["x"])))
    code, out, err = run(capsys, "kinesis.json", "cli_app:lambda_handler")
    assert (code, out) == (1, "")
    assert err == (
        "anybatch: record 0 has no 'messageId', the identifier of EventType.SQS; its "
        "eventSource is 'aws:kinesis': is the processor's event type right?\n"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty.json is empty: an event is a JSON object, like examples/events/sqs.json"),
        ("  \n", "empty.json is empty: an event is a JSON object, like examples/events/sqs.json"),
        ("[1, 2]", "the event in empty.json must be a JSON object with a 'Records' list, got list"),
        ('"text"', "the event in empty.json must be a JSON object with a 'Records' list, got str"),
        (
            "{nope",
            "empty.json is not JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
    ],
)
def test_an_empty_or_non_object_event_is_a_usage_error(
    workdir: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    (workdir / "empty.json").write_text(content)
    assert run(capsys, "empty.json", "cli_app:lambda_handler") == (2, "", f"anybatch: {message}\n")


def test_a_missing_event_file_is_a_usage_error(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "missing.json", "cli_app:lambda_handler") == (
        2,
        "",
        "anybatch: cannot read missing.json: No such file or directory\n",
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "examples/sqs_handler.py",
            "HANDLER is module:function, not a file path: use examples.sqs_handler:lambda_handler",
        ),
        ("cli_app.py:plain", "HANDLER is module:function, not a file path: use cli_app:plain"),
        (
            "handler",
            "HANDLER must look like module:function (like "
            "examples.sqs_handler:lambda_handler), got 'handler'",
        ),
        (
            "cli_app:nothing",
            "module 'cli_app' has no 'nothing'; it has async_lambda_handler, "
            "lambda_handler, record_handler",
        ),
        ("cli_app:NOT_CALLABLE", "cli_app:NOT_CALLABLE is not a function (it is a int)"),
        (
            "cli_app:record_handler",
            "cli_app:record_handler takes one argument: it looks like a "
            "record handler; give the Lambda handler, which takes (event, context), like "
            "cli_app:lambda_handler",
        ),
    ],
)
def test_a_wrong_handler_name_is_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str], spec: str, message: str
) -> None:
    assert run(capsys, "event.json", spec) == (2, "", f"anybatch: {message}\n")


def test_a_module_not_importable_from_here_says_so(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "event.json", "nomodule_xyz:handler") == (
        2,
        "",
        f"anybatch: cannot import 'nomodule_xyz' from the current directory ({workdir}): run "
        "anybatch from the directory that holds the module (the task root), or add it to "
        "PYTHONPATH\n",
    )


def test_a_syntax_error_in_the_module_shows_the_users_traceback(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "syntax_app.py").write_text("x = (\n")
    code, out, err = run(capsys, "event.json", "syntax_app:handler")
    assert (code, out) == (1, "")
    assert err.startswith(f'  File "{workdir / "syntax_app.py"}", line 1\n    x = (\n')
    assert err.endswith("SyntaxError: '(' was never closed\n")
    assert "importlib" not in err
    assert "anybatch" not in err


def test_an_exception_while_importing_shows_the_users_traceback(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "raising_app.py").write_text('import json\nraise KeyError("at import")\n')
    code, out, err = run(capsys, "event.json", "raising_app:handler")
    assert (code, out) == (1, "")
    assert err == (
        "Traceback (most recent call last):\n"
        f'  File "{workdir / "raising_app.py"}", line 2, in <module>\n'
        '    raise KeyError("at import")\n'
        "KeyError: 'at import'\n"
    )


@pytest.mark.parametrize("timeout", ["0", "-1", "soon"])
def test_a_timeout_that_is_not_positive_is_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str], timeout: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["run", "event.json", "cli_app:lambda_handler", "--timeout", timeout])
    assert caught.value.code == 2
    out, err = capsys.readouterr()
    expected = (
        f"must be a number of seconds, got {timeout!r}"
        if timeout == "soon"
        else f"must be > 0 seconds, got {timeout}"
    )
    assert (out, err) == (
        "",
        f"anybatch: argument --timeout: {expected} (see: anybatch run --help)\n",
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out == f"anybatch {anybatch.__version__}\n"


def test_help_lists_every_option_and_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for option in (
        "EVENT",
        "HANDLER",
        "--timeout",
        "--function-name",
        "--indent",
        "--quiet",
    ):
        assert re.search(rf"^  {re.escape(option)}\b", text, re.MULTILINE), option
    assert "anybatch run examples/events/sqs.json examples.sqs_handler:lambda_handler" in text
    assert "exit status: 0 the response was printed, 1 the handler raised or returned" in text
    assert "--backend" not in text  # as on Lambda, nothing is awaited


def test_no_command_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    assert capsys.readouterr().err == (
        "anybatch: the following arguments are required: COMMAND (see: anybatch --help)\n"
    )


def test_python_m_anybatch_runs_the_same_command(workdir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "anybatch", "run", "event.json", "cli_app:lambda_handler"],
        capture_output=True,
        text=True,
        cwd=workdir,
        check=True,
    )
    assert json.loads(done.stdout)["batchItemFailures"][0]["itemIdentifier"] == ID1


URL = "https://sqs.us-east-1.amazonaws.com/123456789012/orders"


@pytest.mark.usefixtures("workdir")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cli_app:nope"], "module 'cli_app' has no 'nope'"),
        (["cli_app.py:record_handler"], "a record handler is module:name, not a file path"),
        (["cli_app:processor"], "cli_app:processor is a processor, not a record handler"),
        (
            ["cli_app:record_handler", "--processor", "cli_app:record_handler"],
            "--processor cli_app:record_handler is not a processor",
        ),
        (
            ["cli_app:record_handler", "--processor", "cli_app:processor", "--concurrency", "5"],
            "give --processor, or --concurrency / --record-timeout, not both",
        ),
        (
            ["cli_app:record_handler", "--failed-visibility-timeout", "soon"],
            "takes seconds or exponential",
        ),
        (["cli_app:record_handler", "--wait-time", "30"], "wait_time must be between 0 and 20"),
    ],
)
def test_a_wrong_worker_invocation_is_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["worker", URL, *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_the_worker_options_make_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    from anybatch.sqs import ExponentialBackoff
    from anybatch.sqs._backoff import parse_failed_visibility as _backoff

    assert _backoff(None) is None
    assert _backoff("45") == 45.0
    backoff = _backoff("exponential:3:60")
    assert isinstance(backoff, ExponentialBackoff)
    assert (backoff.base, backoff.cap) == (3.0, 60.0)
    assert isinstance(_backoff("exponential"), ExponentialBackoff)
