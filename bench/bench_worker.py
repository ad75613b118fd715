"""The SQS worker: messages per second, a 10 ms handler at concurrency 100.

Against the ideal (100 records at a time, each 10 ms: 10,000 messages per second) and against
the plain boto3 loop a team writes first (receive 10, handle them one after another, delete
them in one ``DeleteMessageBatch``), side by side, over real HTTP.

The queue is a small SQS endpoint in a child process (the JSON protocol: ``ReceiveMessage``,
``DeleteMessageBatch``, ``ChangeMessageVisibilityBatch``, ``GetQueueAttributes``), served
by the standard library's threading HTTP server: moto's SQS rescans the whole queue on every
call (a second per receive at 3,000 messages deep), which would measure moto, not the worker.
Messages are served once each, and deleted ones are counted, so both consumers are checked
to have deleted every message.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
from typing import Any

from _common import Row, info_row, main, say

N_WORKER = 3_000
N_LOOP = 300  # the loop handles 10 messages in 100 ms: a rate needs no more
CONCURRENCY = 100
HANDLER_SECONDS = 0.010
IDEAL_RATE = CONCURRENCY / HANDLER_SECONDS
#: The worker against the loop a team writes first: at least ten times its rate.
GOAL_SPEEDUP = 10.0

_SERVER = r"""
import hashlib, json, sys, threading
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

lock = threading.Lock()
queue = []      # bodies not yet received
deleted = [0]
ARN = "arn:aws:sqs:us-east-1:123456789012:bench"

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms ACK wait

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        action = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
        if action == "ReceiveMessage":
            with lock:
                count = body.get("MaxNumberOfMessages", 1)
                taken, queue[:count] = queue[:count], []
            answer = {"Messages": [
                {"MessageId": f"m-{b}", "ReceiptHandle": f"rh-{b}", "Body": b,
                 "MD5OfBody": hashlib.md5(b.encode()).hexdigest(),
                 "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"}}
                for b in taken]} if taken else {}
        elif action in ("DeleteMessageBatch", "ChangeMessageVisibilityBatch"):
            entries = body["Entries"]
            if action == "DeleteMessageBatch":
                with lock:
                    deleted[0] += len(entries)
            answer = {"Successful": [{"Id": e["Id"]} for e in entries], "Failed": []}
        elif action == "GetQueueAttributes":
            answer = {"Attributes": {"QueueArn": ARN, "VisibilityTimeout": "30"}}
        else:
            answer = {}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_address[1], flush=True)
for line in sys.stdin:
    command, *args = line.split()
    if command == "fill":
        with lock:
            queue[:] = [f"{args[0]}-{i}" for i in range(int(args[1]))]
            deleted[0] = 0
    print(json.dumps({"left": len(queue), "deleted": deleted[0]}), flush=True)
"""


class Endpoint:
    """The SQS endpoint in a child process."""

    def __init__(self) -> None:
        self.child = subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.child.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.child.stdout.readline())}"
        self.queue_url = f"{self.url}/123456789012/bench"

    def ask(self, command: str) -> dict[str, int]:
        import json

        assert self.child.stdin is not None
        assert self.child.stdout is not None
        self.child.stdin.write(command + "\n")
        self.child.stdin.flush()
        answer: dict[str, int] = json.loads(self.child.stdout.readline())
        return answer

    def close(self) -> None:
        assert self.child.stdin is not None
        self.child.stdin.close()
        self.child.wait(timeout=10)


async def anybatch_worker(endpoint: Endpoint, count: int) -> float:
    import anyio

    from anybatch import AsyncBatchProcessor, EventType
    from anybatch.sqs import SQSWorker

    done = [0]

    async def handler(record: Any) -> None:
        await anyio.sleep(HANDLER_SECONDS)
        done[0] += 1

    worker = SQSWorker(
        endpoint.queue_url,
        handler,
        AsyncBatchProcessor(EventType.SQS, concurrency=CONCURRENCY),
        max_in_flight=CONCURRENCY,
        wait_time=0,
        endpoint_url=endpoint.url,
        region="us-east-1",
    )
    started = time.perf_counter()
    async with anyio.create_task_group() as group:

        async def stop_when_done() -> None:
            while endpoint_deleted(endpoint) < count:  # noqa: ASYNC110
                await anyio.sleep(0.02)
            worker.stop()

        group.start_soon(stop_when_done)
        await worker.run()
    return time.perf_counter() - started


def endpoint_deleted(endpoint: Endpoint) -> int:
    return endpoint.ask("status")["deleted"]


def boto3_loop(endpoint: Endpoint, count: int) -> float:
    """The loop a team writes first: receive 10, handle each, delete them together."""
    import boto3

    client = boto3.client("sqs", endpoint_url=endpoint.url, region_name="us-east-1")
    handled = 0
    started = time.perf_counter()
    while handled < count:
        messages = client.receive_message(
            QueueUrl=endpoint.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        for _message in messages:
            time.sleep(HANDLER_SECONDS)
        if messages:
            client.delete_message_batch(
                QueueUrl=endpoint.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        handled += len(messages)
    return time.perf_counter() - started


def run() -> list[Row]:
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    endpoint = Endpoint()
    try:
        say(
            f"{N_WORKER:,} messages, a {HANDLER_SECONDS * 1000:g} ms async handler, "
            f"concurrency={CONCURRENCY}: ideal {IDEAL_RATE:,.0f} messages/s"
        )
        best = None
        cpu = math.inf
        for _ in range(3):
            endpoint.ask(f"fill w {N_WORKER}")
            before = time.process_time()
            seconds = asyncio.run(anybatch_worker(endpoint, N_WORKER))
            cpu = min(cpu, time.process_time() - before)
            status = endpoint.ask("status")
            if status["deleted"] != N_WORKER or status["left"]:
                sys.exit(f"the worker left {status}")
            best = seconds if best is None else min(best, seconds)
        assert best is not None
        worker_rate = N_WORKER / best
        say(f"  SQSWorker  {worker_rate:,.0f} messages/s ({best:.2f} s)")
        endpoint.ask(f"fill l {N_LOOP}")
        loop_seconds = boto3_loop(endpoint, N_LOOP)
        status = endpoint.ask("status")
        if status["deleted"] != N_LOOP:
            sys.exit(f"the boto3 loop left {status}")
        loop_rate = N_LOOP / loop_seconds
        say(f"  boto3 loop {loop_rate:,.0f} messages/s ({loop_seconds:.2f} s for {N_LOOP})")
    finally:
        endpoint.close()
    efficiency = 100 * worker_rate / IDEAL_RATE
    speedup = worker_rate / loop_rate
    say(f"  the worker's process used {cpu:.2f} s of CPU for {N_WORKER:,} messages")
    return [
        Row(
            f"worker: {CONCURRENCY} x 10 ms handler vs boto3 loop",
            1 / worker_rate,
            1 / loop_rate,
            measured=f"{speedup:.1f}x the rate",
            goal=f"≥ {GOAL_SPEEDUP:g}x",
            ok=speedup >= GOAL_SPEEDUP,
            note=f"SQSWorker {worker_rate:,.0f} messages/s, the plain boto3 receive/handle/delete "
            f"loop {loop_rate:,.0f}/s (columns: seconds per message)",
        ),
        info_row(
            "worker: against the ideal",
            1 / worker_rate,
            1 / IDEAL_RATE,
            f"{efficiency:.0f}% of it",
            note=f"ideal {IDEAL_RATE:,.0f} messages/s (100 handlers of 10 ms at once); one "
            f"process is CPU-bound here: {1000 * cpu / N_WORKER:.2f} ms of CPU per message, "
            "mostly aiobotocore's per call (a receive and a delete per 10 messages); more "
            "processes scale out",
        ),
    ]


if __name__ == "__main__":
    main("SQS worker: messages per second", run)
