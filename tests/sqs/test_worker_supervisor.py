"""``anybatch worker`` as real processes: --processes under a supervisor, the failure lines on
stderr, the endpoint from the queue URL, and the metrics served for Prometheus."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .test_worker_processes import lines, send_many, start_worker, wait_for

if TYPE_CHECKING:
    from ._moto import MakeQueue, Queue


class Stderr:
    """A process's stderr, read line by line as it comes (for what it says while running)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stderr is not None
        stream = process.stderr
        self.thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self.thread.start()

    def text(self) -> str:
        return "".join(self.lines)

    def matching(self, pattern: str) -> list[re.Match[str]]:
        return [m for m in (re.search(pattern, line) for line in list(self.lines)) if m]

    def wait(self, process: subprocess.Popen[str], timeout: float = 60) -> str:
        process.wait(timeout=timeout)
        self.thread.join(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        return self.text()


def supervised(queue: Queue, tmp_path: Path, *options: str, delay: float = 0.0) -> Any:
    worker = start_worker(queue, tmp_path, "--processes", "2", *options, delay=delay)
    return worker, Stderr(worker)


def command(
    tmp_path: Path, queue: Queue, handler: str, *options: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``anybatch worker QUEUE_URL HANDLER OPTIONS`` in *tmp_path*, its stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "anybatch", "worker", queue.url, handler, *options],
        cwd=tmp_path,
        env={**(os.environ if env is None else env), "PYTHONPATH": str(tmp_path)},
        stderr=subprocess.PIPE,
        text=True,
    )


def total(err: str) -> str:
    (line,) = [line for line in err.splitlines() if "workers stopped" in line]
    return line


def test_two_processes_share_a_queue_and_every_message_is_handled_and_deleted_once(
    make_queue: MakeQueue, tmp_path: Path
) -> None:
    queue = make_queue()
    bodies = [f"m-{i}" for i in range(200)]
    worker, stderr = supervised(queue, tmp_path, "--max-in-flight", "20")
    try:
        wait_for(lambda: len(stderr.matching("worker started on")) == 2, 60, "two workers")
        send_many(queue, bodies)
        wait_for(lambda: len(lines(tmp_path, "handled")) >= 200, 60, "200 messages")
        wait_for(lambda: queue.counts() == (0, 0), 30, "the queue to be empty")
    finally:
        worker.send_signal(signal.SIGTERM)
        err = stderr.wait(worker)
    assert worker.returncode == 0, err[-3000:]
    assert sorted(lines(tmp_path, "handled")) == sorted(bodies)  # once each
    assert len(stderr.matching(r"^anybatch worker [12]: worker stopped: ")) == 2
    assert "200 received" in total(err)
    assert "200 succeeded (200 deleted, 0 not)" in total(err)


def test_sigterm_lets_every_process_drain_its_messages(
    make_queue: MakeQueue, tmp_path: Path
) -> None:
    queue = make_queue()
    worker, stderr = supervised(queue, tmp_path, "--drain-timeout", "20", delay=1.0)
    try:
        wait_for(lambda: len(stderr.matching("worker started on")) == 2, 60, "two workers")
        queue.send([f"m-{i}" for i in range(30)])
        wait_for(lambda: len(lines(tmp_path, "started")) >= 30, 30, "the messages to start")
    finally:
        worker.send_signal(signal.SIGTERM)
        err = stderr.wait(worker)
    assert worker.returncode == 0, err[-3000:]
    assert sorted(lines(tmp_path, "handled")) == sorted(lines(tmp_path, "started"))
    assert "stopping: each of 2 workers drains" in err
    assert len(stderr.matching(r"^anybatch worker [12]: worker stopped: ")) == 2
    assert "30 succeeded (30 deleted, 0 not)" in total(err)
    assert queue.counts() == (0, 0)


def test_a_killed_process_is_started_again(make_queue: MakeQueue, tmp_path: Path) -> None:
    # A short visibility timeout: a long poll the killed process left waiting on the server
    # may take the next message, which then comes back in seconds, not SQS's default 30.
    queue = make_queue(visibility_timeout=3)
    worker, stderr = supervised(queue, tmp_path)
    try:
        wait_for(lambda: len(stderr.matching("worker started on")) == 2, 60, "two workers")
        (first,) = stderr.matching(r"worker 1 started: pid (\d+)")
        os.kill(int(first.group(1)), signal.SIGKILL)
        wait_for(lambda: len(stderr.matching("worker 1 started: pid")) == 2, 60, "a new worker 1")
        wait_for(lambda: len(stderr.matching("worker started on")) == 3, 60, "it to poll")
        queue.send(["after"])
        wait_for(lambda: lines(tmp_path, "handled") == ["after"], 60, "a message after it")
    finally:
        worker.send_signal(signal.SIGTERM)
        err = stderr.wait(worker)
    assert worker.returncode == 0, err[-3000:]
    assert (
        f"anybatch worker: worker 1 (pid {first.group(1)}) died (killed by SIGKILL): starting "
        "it again in 0.5 s\n" in err
    )
    assert "2 workers stopped (1 restarted): 1 received" in total(err)


CRASHING_APP = """
import multiprocessing
import os

if multiprocessing.parent_process() is not None:  # in each worker process, not the command
    os._exit(3)


async def record_handler(record):
    pass
"""


def test_a_crash_loop_stops_the_supervisor_with_exit_status_1(
    make_queue: MakeQueue, tmp_path: Path
) -> None:
    queue = make_queue()
    (tmp_path / "crashing_app.py").write_text(CRASHING_APP)
    worker = command(tmp_path, queue, "crashing_app:record_handler", "--processes", "2")
    _, err = worker.communicate(timeout=90)
    assert worker.returncode == 1, err
    last = err.splitlines()[-1]
    assert re.fullmatch(
        r"anybatch: worker [12] died 4 times in a row, each within 30 s of its start \(last: "
        r"exit status 3\): a crash loop",
        last,
    ), err


FAILING_APP = """
async def record_handler(record):
    if "bad" in record.body:
        check(record.body)


def check(body):
    raise ValueError("order has no quantity")
"""


def test_a_failed_message_is_one_line_and_the_handler_s_own_frames_never_its_body(
    make_queue: MakeQueue, tmp_path: Path
) -> None:
    queue = make_queue()
    (tmp_path / "failing_app.py").write_text(FAILING_APP)
    queue.send(["card-6011-bad"])
    # No --endpoint-url, no AWS_ENDPOINT_URL_SQS: the queue URL's host is the endpoint.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    worker = command(tmp_path, queue, "failing_app:record_handler", "--wait-time", "1", env=env)
    stderr = Stderr(worker)
    try:
        wait_for(lambda: stderr.matching("reported for retry: ValueError"), 60, "the failure")
    finally:
        worker.send_signal(signal.SIGTERM)
        err = stderr.wait(worker)
    assert worker.returncode == 0, err
    (message_id,) = [m.group(1) for m in stderr.matching(r"^anybatch worker: record (\S+) ")]
    app = tmp_path / "failing_app.py"
    start = err.index("anybatch worker: batch of 1 records")
    # Python 3.13 marks the failing expression with a line of carets; earlier ones may not.
    shown = [line for line in err[start:].splitlines() if line.strip(" ~^")]
    assert shown[:8] == [
        f"anybatch worker: batch of 1 records: 1 failed; 1 reported for retry: {message_id} "
        "failed: ValueError: order has no quantity",
        f"anybatch worker: record {message_id} failed; it is reported for retry: ValueError: "
        "order has no quantity",
        "Traceback (most recent call last):",
        f'  File "{app}", line 4, in record_handler',
        "    check(record.body)",
        f'  File "{app}", line 8, in check',
        '    raise ValueError("order has no quantity")',
        "ValueError: order has no quantity",
    ], err
    assert err.splitlines()[-1] == (
        "anybatch worker: worker stopped: 1 received in 1 batches: 0 succeeded (0 deleted, 0 "
        "not), 1 failed, 0 released; 0 visibility changes, 0 extensions, 0 receive errors"
    )
    assert "card-6011" not in err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return str(answer.read().decode())


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample *name* whose labels include *labels*."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_the_metrics_are_served_for_prometheus(make_queue: MakeQueue, tmp_path: Path) -> None:
    queue = make_queue()
    port = free_port()
    worker = start_worker(queue, tmp_path, "--metrics-port", str(port))
    stderr = Stderr(worker)
    deleted = {"anybatch_message_outcome": "deleted"}
    try:
        wait_for(lambda: stderr.matching("worker started on"), 60, "the worker")
        queue.send([f"m-{i}" for i in range(5)])
        wait_for(lambda: len(lines(tmp_path, "handled")) == 5, 30, "5 messages")
        wait_for(
            lambda: sample(scrape(port), "anybatch_worker_messages_total", **deleted) == 5,
            30,
            "the deletes to be counted",
        )
        text = scrape(port)
    finally:
        worker.send_signal(signal.SIGTERM)
        err = stderr.wait(worker)
    assert worker.returncode == 0, err
    # The user's --processor has no OpenTelemetryMetrics: only the worker's own figures.
    assert "has no OpenTelemetryMetrics observer" in err
    received = {"anybatch_message_outcome": "received"}
    assert sample(text, "anybatch_worker_messages_total", **received) == 5
    assert sample(text, "anybatch_worker_in_flight") == 0


def test_two_processes_serve_their_metrics_on_one_port_each_series_by_worker(
    make_queue: MakeQueue, tmp_path: Path
) -> None:
    queue = make_queue()
    port = free_port()
    (tmp_path / "plain_app.py").write_text("async def record_handler(record):\n    pass\n")
    options = ("--processes", "2", "--wait-time", "1", "--metrics-port", str(port))
    worker = command(tmp_path, queue, "plain_app:record_handler", *options)
    stderr = Stderr(worker)
    success = {"anybatch_record_status": "success"}
    try:
        wait_for(lambda: len(stderr.matching("worker started on")) == 2, 60, "two workers")
        queue.send([f"m-{i}" for i in range(12)])

        def succeeded() -> float:
            text = scrape(port)
            return sum(
                sample(text, "anybatch_records_total", worker=w, **success) or 0 for w in ("1", "2")
            )

        wait_for(lambda: succeeded() == 12, 30, "12 records counted")
        text = scrape(port)
    finally:
        worker.send_signal(signal.SIGTERM)
        err = stderr.wait(worker)
    assert worker.returncode == 0, err
    assert text.count("# TYPE anybatch_records_total counter") == 1  # one family, merged
    assert sample(text, "anybatch_worker_in_flight", worker="1") == 0
    assert sample(text, "anybatch_worker_in_flight", worker="2") == 0
