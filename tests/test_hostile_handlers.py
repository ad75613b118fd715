"""Hostile record handlers: every record ends in one honest outcome and nothing is left behind.

Each test here is the regression test of one defect: a `BaseException` on the loop thread, a
process that would not exit, a stray cancellation taken for the deadline, an abandoned
thread keeping its slot, a Mock taken for a coroutine function, work that never ran counted
as a success, an unprintable exception, an empty response inside the block, and lenient
base64.
"""

from __future__ import annotations

import asyncio
import binascii
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any
from unittest import mock

import anyio
import pytest

from anybatch import (
    AsyncBatchProcessor,
    BatchProcessingError,
    BatchProcessor,
    EventType,
    FailureResponse,
    HandlerTypeError,
    Status,
    as_lambda_handler,
    async_process_partial_response,
    process_partial_response,
)
from anybatch.records import KinesisStreamRecord, SQSRecord
from anybatch.testing import kinesis_event, kinesis_record, sqs_event

BACKENDS = ["asyncio", "trio"]
ROOT = Path(__file__).resolve().parents[1]


class Boom(BaseException):
    """A custom BaseException: never a record failure."""


def failures(response: Any) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def ids(event: dict[str, Any]) -> list[str]:
    return [record["messageId"] for record in event["Records"]]


def in_thread(func: Any) -> Any:
    """Run *func()* in a plain thread (not the main one) and return or raise what it did."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    if "error" in box:
        raise box["error"]
    return box["value"]


# -- 1. a BaseException must not kill the long-lived loop --------------------------------------


@pytest.mark.parametrize("exc_type", [Boom, KeyboardInterrupt])
@pytest.mark.parametrize("backend", BACKENDS)
def test_base_exception_on_the_loop_thread_leaves_a_working_loop(
    backend: Any, exc_type: type[BaseException]
) -> None:
    raised = threading.Event()

    async def handler(record: SQSRecord) -> str:
        await anyio.lowlevel.checkpoint()
        if record.body == "bad" and not raised.is_set():
            raised.set()
            raise exc_type()
        return record.body

    processor = BatchProcessor(EventType.SQS, backend=backend)

    def invoke(bodies: list[str]) -> Any:
        return process_partial_response(sqs_event(bodies), handler, processor)

    # Off the main thread, asyncio work runs on the loop thread too (trio always does).
    with pytest.raises(exc_type):
        in_thread(lambda: invoke(["ok", "bad", "ok"]))
    for _ in range(3):
        assert in_thread(lambda: invoke(["a", "b"])) == {"batchItemFailures": []}
    assert invoke(["c"]) == {"batchItemFailures": []}


@pytest.mark.parametrize("backend", BACKENDS)
def test_base_exception_out_of_as_lambda_handler_leaves_a_working_loop(backend: Any) -> None:
    calls = 0

    async def lambda_handler(event: Any, context: Any) -> int:
        nonlocal calls
        calls += 1
        await anyio.lowlevel.checkpoint()
        if calls == 1:
            raise Boom()
        return calls

    handler = as_lambda_handler(lambda_handler, backend=backend)
    with pytest.raises(Boom):
        in_thread(lambda: handler({}, None))
    assert in_thread(lambda: handler({}, None)) == 2
    assert handler({}, None) == 3


def test_base_exception_on_the_main_thread_loop_leaves_a_working_loop() -> None:
    async def handler(record: SQSRecord) -> None:
        await anyio.lowlevel.checkpoint()
        if record.body == "bad":
            raise Boom()

    processor = BatchProcessor(EventType.SQS)
    with pytest.raises(Boom):
        process_partial_response(sqs_event(["bad"]), handler, processor)
    assert process_partial_response(sqs_event(["ok"]), handler, processor) == {
        "batchItemFailures": []
    }


# -- 2. SystemExit / KeyboardInterrupt in threads: the process exits ---------------------------


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(body))
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("options", ["concurrency=4", "record_timeout=5"])
def test_sys_exit_in_a_threaded_sync_handler_exits_the_process(
    tmp_path: Path, options: str, backend: Any
) -> None:
    script = _script(
        tmp_path,
        f"""
        import sys
        from anybatch import BatchProcessor, EventType, process_partial_response
        from anybatch.testing import sqs_event

        def handler(record):
            sys.exit(7)

        processor = BatchProcessor(EventType.SQS, {options}, backend={backend!r})
        process_partial_response(sqs_event(["a", "b", "c"]), handler, processor)
        print("not reached")
        """,
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=_env()
    )
    assert done.returncode == 7, done.stderr
    assert "not reached" not in done.stdout


def test_system_exit_leaves_no_worker_thread_behind() -> None:
    before = set(threading.enumerate())

    def handler(record: SQSRecord) -> None:
        time.sleep(0.01)
        sys.exit(3)

    processor = BatchProcessor(EventType.SQS, concurrency=4)
    with pytest.raises(SystemExit) as caught:
        process_partial_response(sqs_event(["a", "b", "c", "d"]), handler, processor)
    assert caught.value.code == 3
    deadline = time.monotonic() + 10
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(threading.enumerate()) - before == set()
    # And the processor still works.
    assert process_partial_response(sqs_event(["x"]), lambda r: None, processor) == {
        "batchItemFailures": []
    }


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_anybatch_run_with_threaded_handlers_exits(tmp_path: Path) -> None:
    (tmp_path / "slow_app.py").write_text(
        textwrap.dedent(
            """
            import sys
            import time
            from anybatch import BatchProcessor, EventType, process_partial_response

            processor = BatchProcessor(EventType.SQS, concurrency=4)

            def record_handler(record):
                if record.body == "0":
                    print("started", file=sys.stderr, flush=True)
                time.sleep(0.2)

            def lambda_handler(event, context):
                return process_partial_response(event, record_handler, processor, context)
            """
        )
    )
    import json

    (tmp_path / "event.json").write_text(json.dumps(sqs_event([str(i) for i in range(200)])))
    child = subprocess.Popen(
        [sys.executable, "-m", "anybatch", "run", "event.json", "slow_app:lambda_handler"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stderr is not None
        assert child.stderr.readline().strip() == "started"
        time.sleep(0.3)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=20)
    finally:
        child.kill()
        child.wait()
    # Python ends a process that a KeyboardInterrupt stopped by SIGINT itself.
    assert child.returncode in (-signal.SIGINT, 130), err
    assert "KeyboardInterrupt" in err
    assert out == ""


# -- 3. a stray CancelledError is that record's failure, not the deadline ----------------------


async def _stray_cancel(record: SQSRecord) -> str:
    if record.body == "stray":
        task = asyncio.ensure_future(asyncio.sleep(9))
        task.cancel()
        await task
    await asyncio.sleep(0)
    return record.body


@pytest.mark.parametrize("options", [{}, {"record_timeout": 5.0}, {"concurrency": 1}])
def test_stray_cancelled_error_fails_only_its_record(options: dict[str, Any]) -> None:
    event = sqs_event(["a", "stray", "b", "c"])
    processor = AsyncBatchProcessor(EventType.SQS, **options)

    async def main() -> Any:
        return await async_process_partial_response(event, _stray_cancel, processor)

    assert failures(asyncio.run(main())) == [ids(event)[1]]
    statuses = [outcome.status for outcome in processor.result]
    assert statuses == [Status.SUCCESS, Status.FAILED, Status.SUCCESS, Status.SUCCESS]
    assert isinstance(processor.result[1].exception, asyncio.CancelledError)


def test_stray_cancelled_error_through_the_blocking_facade() -> None:
    event = sqs_event(["stray", "a", "b"])
    processor = BatchProcessor(EventType.SQS)
    assert failures(process_partial_response(event, _stray_cancel, processor)) == [ids(event)[0]]
    assert [o.status for o in processor.result] == [Status.FAILED, Status.SUCCESS, Status.SUCCESS]


def test_a_real_outer_cancellation_still_propagates() -> None:
    started = asyncio.Event()

    async def handler(record: SQSRecord) -> None:
        started.set()
        await asyncio.sleep(9)

    processor = AsyncBatchProcessor(EventType.SQS)

    async def main() -> None:
        task = asyncio.ensure_future(
            async_process_partial_response(sqs_event(["a", "b"]), handler, processor)
        )
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


# -- 4. an abandoned thread gives its slot back at once ---------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_abandoned_worker_thread_frees_its_slot(backend: Any) -> None:
    release = threading.Event()
    ran: list[str] = []

    def handler(record: SQSRecord) -> str:
        ran.append(record.body)
        if record.body == "hang":
            release.wait(10)
        return record.body

    processor = BatchProcessor(
        EventType.SQS,
        concurrency=1,
        record_timeout=0.2,
        backend=backend,
    )
    event = sqs_event(["hang", "a", "b"])
    try:
        response = process_partial_response(event, handler, processor)
    finally:
        release.set()
    assert failures(response) == [ids(event)[0]]
    assert ran == ["hang", "a", "b"]
    assert [o.status for o in processor.result] == [
        Status.TIMED_OUT,
        Status.SUCCESS,
        Status.SUCCESS,
    ]


# -- 5. a Mock is a plain callable -------------------------------------------------------------


@pytest.mark.parametrize("mock_type", [mock.Mock, mock.MagicMock])
@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_mock_handler_is_called_as_a_plain_function(
    mock_type: type[mock.Mock], concurrency: int
) -> None:
    handler = mock_type(return_value="done")
    processor = BatchProcessor(EventType.SQS, concurrency=concurrency)
    event = sqs_event(["a", "b"])
    assert process_partial_response(event, handler, processor) == {"batchItemFailures": []}
    assert handler.call_count == 2
    assert [o.result for o in processor.result] == ["done", "done"]


@pytest.mark.anyio
async def test_an_async_mock_handler_is_awaited() -> None:
    handler = mock.AsyncMock(return_value="done")
    processor = AsyncBatchProcessor(EventType.SQS)
    response = await async_process_partial_response(sqs_event(["a"]), handler, processor)
    assert response == {"batchItemFailures": []}
    handler.assert_awaited_once()
    assert processor.result[0].result == "done"


# -- 6. work that never ran is not a success ---------------------------------------------------


async def _store(record: SQSRecord) -> None:
    await anyio.lowlevel.checkpoint()


async def _returns_a_coroutine(record: SQSRecord) -> Any:
    return _store(record)  # forgot the await


async def _async_generator(record: SQSRecord) -> Any:
    yield record


def _generator(record: SQSRecord) -> Any:
    yield record


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_async_handler_returning_a_coroutine_fails_the_batch(backend: Any) -> None:
    processor = BatchProcessor(EventType.SQS, backend=backend)
    with pytest.raises(HandlerTypeError, match="without awaiting it"):
        process_partial_response(sqs_event(["a", "b"]), _returns_a_coroutine, processor)


@pytest.mark.anyio
async def test_an_async_handler_returning_a_coroutine_fails_the_awaited_batch() -> None:
    processor = AsyncBatchProcessor(EventType.SQS)
    with pytest.raises(HandlerTypeError, match="return await"):
        await async_process_partial_response(sqs_event(["a"]), _returns_a_coroutine, processor)


@pytest.mark.parametrize(
    ("handler", "kind"),
    [(_async_generator, "an async generator"), (_generator, "a generator")],
)
@pytest.mark.parametrize("processor_type", [BatchProcessor, AsyncBatchProcessor])
def test_generator_functions_are_refused(
    handler: Any, kind: str, processor_type: type[BatchProcessor[Any]]
) -> None:
    processor = processor_type(EventType.SQS)
    with pytest.raises(HandlerTypeError, match=f"is {kind} function"):
        process_partial_response(sqs_event(["a"]), handler, processor)


# -- 7. an exception whose __str__ raises fails only its record --------------------------------


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("is_async", [False, True])
def test_an_unprintable_exception_fails_only_its_record(backend: Any, is_async: bool) -> None:
    def sync_handler(record: SQSRecord) -> None:
        if record.body == "bad":
            raise Unprintable()

    async def async_handler(record: SQSRecord) -> None:
        sync_handler(record)

    import logging

    logger = logging.getLogger("anybatch.tests.unprintable")
    processor = BatchProcessor(
        EventType.SQS,
        logger=logger,
        backend=backend,
    )
    event = sqs_event(["ok", "bad"])
    with processor(event["Records"], async_handler if is_async else sync_handler):
        processed = processor.process()
    assert failures(processor.response()) == [ids(event)[1]]
    failed = processed[1]
    assert isinstance(failed, FailureResponse)
    assert failed.result.endswith(":<Unprintable: str() failed>")


def test_an_unprintable_exception_in_an_entire_batch_failure_still_reports() -> None:
    def handler(record: SQSRecord) -> None:
        raise Unprintable()

    processor = BatchProcessor(EventType.SQS)
    with pytest.raises(BatchProcessingError) as caught:
        process_partial_response(sqs_event(["a"]), handler, processor)
    assert "Unprintable" in str(caught.value)
    assert len(processor.response()["batchItemFailures"]) == 1


# -- 8. response() reflects the batch once process() has returned ------------------------------


def _fail_b(record: SQSRecord) -> None:
    if record.body == "b":
        raise ValueError("b")


@pytest.mark.parametrize("backend", BACKENDS)
def test_response_inside_the_block_reports_the_failures(backend: Any) -> None:
    processor = BatchProcessor(EventType.SQS, concurrency=2, backend=backend)
    event = sqs_event(["a", "b"])

    def lambda_handler() -> Any:
        with processor(event["Records"], _fail_b):
            processor.process()
            return processor.response()

    assert failures(lambda_handler()) == [ids(event)[1]]


def test_response_after_a_block_that_raised_reports_the_failures() -> None:
    processor = BatchProcessor(EventType.SQS)
    event = sqs_event(["a", "b"])

    def lambda_handler() -> None:
        with processor(event["Records"], _fail_b):
            processor.process()
            raise KeyError("the user's own code failed after process()")

    with pytest.raises(KeyError):
        lambda_handler()
    assert failures(processor.response()) == [ids(event)[1]]


@pytest.mark.anyio
async def test_response_inside_the_block_after_async_process() -> None:
    processor = AsyncBatchProcessor(EventType.SQS)
    event = sqs_event(["a", "b"])
    with processor(event["Records"], _fail_b):
        await processor.async_process()
        response = processor.response()
    assert failures(response) == [ids(event)[1]]


# -- 9. Kinesis data is strict base64 ----------------------------------------------------------


@pytest.mark.parametrize("data", ["$$$$aGk=", "aGk=garbage!", "aGk", "aGk=\n="])
def test_kinesis_data_with_invalid_base64_raises(data: str) -> None:
    raw = kinesis_record("hi", index=0)
    raw["kinesis"]["data"] = data
    record = KinesisStreamRecord(raw).kinesis
    with pytest.raises(binascii.Error):
        record.data_as_bytes()
    with pytest.raises(binascii.Error):
        record.data_as_text()
    with pytest.raises(binascii.Error):
        record.data_as_json()


def test_a_kinesis_record_with_corrupt_data_fails_alone() -> None:
    event = kinesis_event(["hi", "there"])
    event["Records"][0]["kinesis"]["data"] = "$$$$aGk="
    processor = BatchProcessor(EventType.KinesisDataStreams)
    response = process_partial_response(event, lambda r: r.kinesis.data_as_text(), processor)
    assert failures(response) == [event["Records"][0]["kinesis"]["sequenceNumber"]]
    assert processor.result[1].result == "there"
