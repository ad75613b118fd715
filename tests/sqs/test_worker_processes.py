"""``anybatch worker`` as real processes on one queue (moto's server): scale-out and signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._moto import MakeQueue, Queue

APP = """
import os
import time

import anyio

from anybatch import AsyncBatchProcessor, EventType

processor = AsyncBatchProcessor(EventType.SQS, concurrency=int(os.environ.get("CONCURRENCY", "20")))
DELAY = float(os.environ.get("DELAY", "0"))
OUT = os.environ["OUT"]


async def record_handler(record):
    with open(os.path.join(OUT, f"started-{os.getpid()}"), "a") as file:
        file.write(record.body + "\\n")
    await anyio.sleep(DELAY)
    with open(os.path.join(OUT, f"handled-{os.getpid()}"), "a") as file:
        file.write(record.body + "\\n")
"""


def start_worker(
    queue: Queue, tmp_path: Path, *options: str, delay: float = 0.0, concurrency: int = 20
) -> subprocess.Popen[str]:
    (tmp_path / "worker_app.py").write_text(APP)
    env = {"DELAY": str(delay), "CONCURRENCY": str(concurrency)}
    return run_worker(
        queue,
        tmp_path,
        "worker_app:record_handler",
        "--processor",
        "worker_app:processor",
        *options,
        env=env,
    )


def run_worker(
    queue: Queue, tmp_path: Path, handler: str, *options: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``anybatch worker QUEUE HANDLER`` on the moto queue, run in *tmp_path*."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "anybatch",
            "worker",
            queue.url,
            handler,
            "--endpoint-url",
            queue.endpoint,
            "--wait-time",
            "1",
            *options,
        ],
        cwd=tmp_path,
        env={**os.environ, "OUT": str(tmp_path), "PYTHONPATH": str(tmp_path), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines(tmp_path: Path, prefix: str) -> list[str]:
    found: list[str] = []
    for path in tmp_path.glob(f"{prefix}-*"):
        found += path.read_text().split()
    return found


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def send_many(queue: Queue, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        queue.client.send_message_batch(
            QueueUrl=queue.url,
            Entries=[
                {"Id": str(i), "MessageBody": body}
                for i, body in enumerate(bodies[start : start + 10])
            ],
        )


def test_three_workers_share_one_queue_and_every_message_is_handled_once(
    make_queue: MakeQueue, tmp_path: Path
) -> None:
    queue = make_queue()
    bodies = [f"m-{i}" for i in range(3000)]
    workers = [
        start_worker(queue, tmp_path, "--max-in-flight", "50", "--visibility-timeout", "120")
        for _ in range(3)
    ]
    # Sent while the workers consume: moto's queue slows down with its depth (a receive at
    # 3,000 messages deep takes a second), so the queue is fed as the workers drain it.
    producer = threading.Thread(target=send_many, args=(queue, bodies))
    producer.start()
    try:
        wait_for(lambda: len(lines(tmp_path, "handled")) >= 3000, 240, "3,000 messages")
        wait_for(lambda: queue.counts() == (0, 0), 30, "the queue to be empty")
    finally:
        producer.join()
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        outputs = [worker.communicate(timeout=60) for worker in workers]
    codes = [worker.returncode for worker in workers]
    assert codes == [0, 0, 0], [err[-2000:] for _, err in outputs]
    handled = lines(tmp_path, "handled")
    assert sorted(handled) == sorted(bodies)  # each once: no duplicate, none missing
    per_worker = [len(path.read_text().split()) for path in tmp_path.glob("handled-*")]
    assert len(per_worker) == 3  # every worker took a share
    assert min(per_worker) > 0
    deleted = 0
    for _, err in outputs:
        summary = [line for line in err.splitlines() if "worker stopped: " in line][-1]
        deleted += int(summary.split("succeeded (")[1].split(" deleted")[0])
    assert deleted == 3000
    assert queue.counts() == (0, 0)


def test_sigterm_during_a_batch_lets_it_finish_and_exits_zero(
    make_queue: MakeQueue, tmp_path: Path
) -> None:
    queue = make_queue()
    queue.send([f"m-{i}" for i in range(5)])
    worker = start_worker(queue, tmp_path, "--drain-timeout", "20", delay=1.0)
    wait_for(lambda: len(lines(tmp_path, "started")) >= 5, 30, "the batch to start")
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert sorted(lines(tmp_path, "handled")) == [f"m-{i}" for i in range(5)]
    assert queue.counts() == (0, 0)
    assert "draining 5 messages in flight" in err


def start_slow_record(queue: Queue, tmp_path: Path, *, drain_timeout: str) -> subprocess.Popen[str]:
    """A worker whose one record (60 s long, 120 s visibility) has started."""
    queue.send(["slow"])
    worker = start_worker(
        queue, tmp_path, "--drain-timeout", drain_timeout, "--visibility-timeout", "120", delay=60
    )
    wait_for(lambda: lines(tmp_path, "started") == ["slow"], 30, "the record to start")
    return worker


def test_sigterm_past_the_drain_timeout_releases_what_did_not_finish(
    make_queue: MakeQueue, tmp_path: Path
) -> None:
    queue = make_queue()
    worker = start_slow_record(queue, tmp_path, drain_timeout="0.5")
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert queue.counts() == (1, 0), err  # released: visible at once for another worker


def test_a_second_signal_stops_at_once_and_leaves_the_message_in_flight(
    make_queue: MakeQueue, tmp_path: Path
) -> None:
    queue = make_queue()
    worker = start_slow_record(queue, tmp_path, drain_timeout="60")
    worker.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    worker.send_signal(signal.SIGINT)
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 128 + signal.SIGINT, err
    assert queue.counts() == (0, 1)  # unacknowledged: visible again when its visibility ends


def test_a_queue_that_does_not_exist_is_one_line_and_exit_status_1(
    make_queue: MakeQueue, tmp_path: Path
) -> None:
    queue = make_queue()
    queue.url = queue.url + "-missing"
    worker = start_worker(queue, tmp_path)
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 1
    assert "the worker stopped" in err
    assert "Traceback" not in err


BLOCKING_APP = """
import os
import time

OUT = os.environ["OUT"]


def record_handler(record):
    with open(os.path.join(OUT, f"started-{os.getpid()}"), "a") as file:
        file.write(record.body + "\\n")
    time.sleep(60)  # blocked, far past the drain
"""


def test_a_sync_handler_blocked_past_the_drain_does_not_keep_the_process_alive(
    make_queue: MakeQueue, tmp_path: Path
) -> None:
    queue = make_queue()
    queue.send(["a", "b", "c"])
    (tmp_path / "blocking_app.py").write_text(BLOCKING_APP)
    worker = run_worker(
        queue,
        tmp_path,
        "blocking_app:record_handler",
        "--drain-timeout",
        "1",
        "--visibility-timeout",
        "120",
    )
    try:
        wait_for(lambda: len(lines(tmp_path, "started")) == 3, 30, "the records to start")
        worker.send_signal(signal.SIGTERM)
        # Bound: max(wait time, drain timeout) = 1 s, and time to exit; the handlers sleep 60 s.
        _, err = worker.communicate(timeout=15)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, err
    assert "3 released" in err  # the last log line is written out before the process ends
    assert "still running: exiting without waiting for them" in err
    assert queue.counts() == (3, 0), err  # released at once for another worker


PERMANENT_APP = """
from anybatch import PermanentFailure


async def record_handler(record):
    if record.body.startswith("bad"):
        raise PermanentFailure(f"{record.body} is not an order")
"""


def test_dead_letter_queue_own_sends_a_permanent_failure_there_and_deletes_it(
    make_queue: MakeQueue, tmp_path: Path
) -> None:
    import json

    queue, dlq = make_queue(), make_queue()
    policy = {"deadLetterTargetArn": dlq.arn, "maxReceiveCount": "5"}
    queue.client.set_queue_attributes(
        QueueUrl=queue.url, Attributes={"RedrivePolicy": json.dumps(policy)}
    )
    queue.send(["ok-1", "bad-1", "ok-2"])
    (tmp_path / "permanent_app.py").write_text(PERMANENT_APP)
    worker = run_worker(
        queue, tmp_path, "permanent_app:record_handler", "--dead-letter-queue", "own"
    )
    try:
        wait_for(lambda: dlq.counts()[0] == 1 and queue.counts() == (0, 0), 30, "the DLQ send")
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "1 failed permanently and routed away" in err
    answer = dlq.client.receive_message(QueueUrl=dlq.url, MessageAttributeNames=["All"])
    (message,) = answer["Messages"]
    assert message["Body"] == "bad-1"
    assert message["MessageAttributes"]["anybatch.error_message"]["StringValue"] == (
        "bad-1 is not an order"
    )


def test_a_dead_letter_queue_that_is_no_queue_is_an_option_error(
    make_queue: MakeQueue, tmp_path: Path
) -> None:
    queue = make_queue()
    (tmp_path / "permanent_app.py").write_text(PERMANENT_APP)
    worker = run_worker(
        queue, tmp_path, "permanent_app:record_handler", "--dead-letter-queue", "dlq"
    )
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 2
    assert "--dead-letter-queue: dead_letter_queue must be a queue URL" in err
    assert "Traceback" not in err


PROCESSOR_WITH_A_TARGET = """
from anybatch import AsyncBatchProcessor, EventType


async def to_s3(record, error):
    pass


processor = AsyncBatchProcessor(EventType.SQS, on_permanent_failure=to_s3)
"""


def test_a_dead_letter_queue_beside_a_processor_with_a_target_is_an_option_error(
    make_queue: MakeQueue, tmp_path: Path
) -> None:
    queue = make_queue()
    (tmp_path / "permanent_app.py").write_text(PERMANENT_APP + PROCESSOR_WITH_A_TARGET)
    worker = run_worker(
        queue,
        tmp_path,
        "permanent_app:record_handler",
        "--processor",
        "permanent_app:processor",
        "--dead-letter-queue",
        "own",
    )
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 2
    assert "--dead-letter-queue: the processor has a target of its own already" in err
    assert "Traceback" not in err
