"""uvloop for the loops anybatch makes: ANYBATCH_EVENT_LOOP=uvloop or anybatch.use_uvloop()."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("uvloop")

SCRIPT = """
import asyncio, threading
import anybatch
from anybatch import AsyncBatchProcessor, BatchProcessor, EventType
from anybatch.testing import sqs_event
{setup}
seen = []

async def record_handler(record):
    seen.append(type(asyncio.get_running_loop()).__module__)

processor = AsyncBatchProcessor(EventType.SQS)

@anybatch.as_lambda_handler
async def lambda_handler(event, context):
    return await anybatch.async_process_partial_response(event, record_handler, processor)

lambda_handler(sqs_event(["a"]), None)  # the main thread's loop
blocking = BatchProcessor(EventType.SQS)
thread = threading.Thread(  # elsewhere: the loop thread
    target=anybatch.process_partial_response, args=(sqs_event(["b"]), record_handler, blocking)
)
thread.start()
thread.join()
print(" ".join(seen))
"""


def run(setup: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ)
    environ.pop("ANYBATCH_EVENT_LOOP", None)
    environ.update(env)
    environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), environ.get("PYTHONPATH", "")])
    code = SCRIPT.format(setup=textwrap.dedent(setup))
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=60
    )


def test_loops_are_asyncio_by_default() -> None:
    done = run()
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["asyncio.unix_events", "asyncio.unix_events"]


def test_the_environment_variable_puts_anybatchs_loops_on_uvloop() -> None:
    done = run(ANYBATCH_EVENT_LOOP="uvloop")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["uvloop", "uvloop"]


def test_use_uvloop_puts_anybatchs_loops_on_uvloop() -> None:
    done = run("anybatch.use_uvloop()")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["uvloop", "uvloop"]


def test_an_unknown_event_loop_name_is_refused() -> None:
    done = run(ANYBATCH_EVENT_LOOP="tokio")
    assert done.returncode != 0
    assert "ANYBATCH_EVENT_LOOP must be 'asyncio' or 'uvloop', got 'tokio'" in done.stderr


def test_use_uvloop_without_uvloop_says_what_to_install() -> None:
    done = run("import sys; sys.modules['uvloop'] = None; anybatch.use_uvloop()")
    assert done.returncode != 0
    assert "pip install 'anybatch[uvloop]'" in done.stderr
