"""Legacy SQS mode: deleting 1,000 successes over real HTTP, against moto's server.

A batch of 1,001 received messages (real receipt handles) whose last record fails, so the
1,000 others must be deleted: ``PartialSQSProcessor.process()`` (10 concurrent calls, the
default) against the same deletes made by a sequential boto3 loop (``delete_message_batch``,
10 entries a call, ``Failed`` checked). The ratio is anybatch / boto3 loop. The incumbent's
last legacy implementation (boto3 in a pool of ``ceil(n / 10)`` threads, ``Failed`` unchecked)
is timed for reference.

Every ``DeleteMessageBatch`` call is counted with botocore's event hooks (1,000 deletions must
take exactly 100 calls), and after each case the queue must hold the failed message only.

Two scenarios: moto as it is on loopback (no network latency: every call costs only moto's
CPU, which its one process serializes, so concurrency can only overlap client and server
work), and with 10 ms added to each ``DeleteMessageBatch`` -- a round trip to SQS in the same
region -- where concurrency pays as it does against the real service.

moto runs in a child process (started here on 127.0.0.1, port 0), so that it does not share
the client's GIL. Each case gets a fresh queue, filled outside the timed section; clients are
warm (a warm-up round is not timed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from _common import Row, Samples, fmt_ratio, fmt_time, info_row, main, ratio_row, say

N_SUCCESSES = 1_000
ROUNDS = 3
EXPECTED_CALLS = N_SUCCESSES // 10
LATENCIES = (0.0, 0.010)
#: anybatch / sequential loop, per latency: never slower, even against a local server whose
#: CPU is the bottleneck; at least 3 times faster once calls have a network round trip (where
#: moto's own CPU, ~4 ms a call in one process, is then the floor).
GOALS = {0.0: 1.0, 0.010: 1 / 3}
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's
Records = list[dict[str, Any]]

# The child process: moto's server, and two commands on stdin.
#
# "fill": filling and receiving 1,001 messages over HTTP takes moto minutes (every SendMessage
# and ReceiveMessage rescans the whole queue, several times), so the child does what they do
# without the rescans: it sends each message to the queue while the queue is empty, marks it
# received as ReceiveMessage would (a real receipt handle of moto's), then puts the messages
# back together. Only the setup cuts corners: the deletes under test go through HTTP.
#
# "latency": seconds each DeleteMessageBatch waits before it is handled (a network round trip).
#
# And a fix: moto's Queue.delete_message rebuilds the queue's list without a lock, so
# concurrent deletes can put back messages that were deleted; the child serializes it.
_MOTO = """
import json, logging, sys, threading, time
from moto.server import ThreadedMotoServer
from moto.sqs import models

latency = [0.0]
lock = threading.Lock()
delete_message = models.Queue.delete_message
delete_message_batch = models.SQSBackend.delete_message_batch

def locked_delete_message(self, receipt_handle):
    with lock:
        delete_message(self, receipt_handle)

def slow_delete_message_batch(self, *args, **kwargs):
    time.sleep(latency[0])
    return delete_message_batch(self, *args, **kwargs)

models.Queue.delete_message = locked_delete_message
models.SQSBackend.delete_message_batch = slow_delete_message_batch
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
for line in sys.stdin:  # until the parent closes our stdin
    command, *args = line.split()
    if command == "latency":
        latency[0] = float(args[0])
        print("ok", flush=True)
        continue
    account, region, name, count = args
    backend = models.sqs_backends[account][region]
    queue = backend.get_queue(name)
    messages = []
    for i in range(int(count)):
        message = backend.send_message(name, "bad" if i == int(count) - 1 else f"ok-{i}")
        queue._messages.remove(message)
        message.mark_received(visibility_timeout=600)
        queue.pending_messages.add(message)
        messages.append(message)
    queue._messages = messages
    print(json.dumps([[m.id, m.receipt_handle, m.body] for m in messages]), flush=True)
server.stop()
"""


class MotoServer:
    """moto's server in a child process, and its commands."""

    def __init__(self) -> None:
        self.child = subprocess.Popen(
            [sys.executable, "-c", _MOTO], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.url = f"http://127.0.0.1:{int(self._ask(None))}"

    def _ask(self, command: str | None) -> str:
        assert self.child.stdin is not None
        assert self.child.stdout is not None
        if command is not None:
            self.child.stdin.write(command + "\n")
            self.child.stdin.flush()
        line = self.child.stdout.readline()
        if not line:
            sys.exit("the moto server process died")
        return line

    def fill(self, name: str, count: int) -> list[list[str]]:
        """Send *count* messages (the last one's body is "bad") and receive them all."""
        received: list[list[str]] = json.loads(self._ask(f"fill {ACCOUNT} {REGION} {name} {count}"))
        return received

    def set_latency(self, seconds: float) -> None:
        self._ask(f"latency {seconds}")

    def stop(self) -> None:
        assert self.child.stdin is not None
        self.child.stdin.close()
        self.child.wait(timeout=10)


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    try:
        yield server
    finally:
        server.stop()


def fake_credentials() -> None:
    """Never a real account: moto accepts any key."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION=REGION,
    )
    os.environ.pop("AWS_PROFILE", None)


class Queues:
    """A fresh queue per case: 1,001 received messages, as the records of a Lambda batch."""

    def __init__(self, client: Any, server: MotoServer) -> None:
        self.client = client
        self.server = server
        self.count = 0

    def batch(self) -> tuple[str, Records]:
        from anybatch.testing import sqs_record

        self.count += 1
        name = f"bench-{self.count}"
        url: str = self.client.create_queue(QueueName=name)["QueueUrl"]
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        records = [
            sqs_record(body, index=i, message_id=message_id, receipt_handle=handle, queue_arn=arn)
            for i, (message_id, handle, body) in enumerate(self.server.fill(name, N_SUCCESSES + 1))
        ]
        return url, records

    def check_only_the_failure_is_left(self, url: str, case: str) -> None:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.client.get_queue_attributes(QueueUrl=url, AttributeNames=names)
        left = tuple(int(attributes["Attributes"][name]) for name in names)
        if left != (0, 1):
            sys.exit(f"{case}: the queue holds {left} messages after the deletes, not just 1")
        self.client.delete_queue(QueueUrl=url)


def handler(record: Any) -> None:
    if record["body"] == "bad":
        raise ValueError("the one failure that makes the others be deleted")


def entry_chunks(records: Records) -> list[list[dict[str, str]]]:
    entries = [
        {"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
        for i, r in enumerate(records)
        if r["body"] != "bad"
    ]
    return [entries[i : i + 10] for i in range(0, len(entries), 10)]


def run() -> list[Row]:
    fake_credentials()
    import boto3
    from aiobotocore.session import get_session
    from botocore.config import Config

    from anybatch.sqs import PartialSQSProcessor

    calls = {"anybatch": 0, "boto3": 0}

    def counter(name: str) -> Callable[..., None]:
        def count(**_: Any) -> None:
            calls[name] += 1

        return count

    session = get_session()
    session.register("before-call.sqs.DeleteMessageBatch", counter("anybatch"))
    rows: list[Row] = []
    with moto_server() as server:
        say(f"moto server (child process) at {server.url}")
        processor = PartialSQSProcessor(
            session=session, endpoint_url=server.url, suppress_exception=True
        )
        client = boto3.client("sqs", endpoint_url=server.url, region_name=REGION)
        client.meta.events.register("before-call.sqs.DeleteMessageBatch", counter("boto3"))
        pool_client = boto3.client(
            "sqs",
            endpoint_url=server.url,
            region_name=REGION,
            config=Config(max_pool_connections=EXPECTED_CALLS),
        )
        queues = Queues(client, server)

        def with_anybatch(url: str, records: Records) -> None:
            with processor(records, handler):
                processor.process()
            report = processor.cleanup
            if len(report.deleted) != N_SUCCESSES or report.not_deleted:
                sys.exit(f"anybatch: deleted {len(report.deleted)}, {report.not_deleted[:3]}")

        def delete(sqs: Any, url: str, chunk: list[dict[str, str]]) -> None:
            answer = sqs.delete_message_batch(QueueUrl=url, Entries=chunk)
            if answer.get("Failed"):
                sys.exit(f"boto3: SQS did not delete {answer['Failed']}")

        def with_boto3_loop(url: str, records: Records) -> None:
            for chunk in entry_chunks(records):
                delete(client, url, chunk)

        def with_boto3_threads(url: str, records: Records) -> None:
            chunks = entry_chunks(records)
            with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
                for future in [pool.submit(delete, pool_client, url, c) for c in chunks]:
                    future.result()

        cases: dict[str, Callable[[str, Records], None]] = {
            "anybatch": with_anybatch,
            "boto3 loop": with_boto3_loop,
            "boto3 thread pool": with_boto3_threads,
        }
        try:
            for latency in LATENCIES:
                server.set_latency(latency)
                rows += scenario(latency, cases, queues, calls)
        finally:
            processor.close()
    return rows


def scenario(
    latency: float,
    cases: dict[str, Callable[[str, Records], None]],
    queues: Queues,
    calls: dict[str, int],
) -> list[Row]:
    """Time every case ROUNDS times, interleaved (the order rotates each round)."""
    names = list(cases)
    timings: dict[str, list[float]] = {name: [] for name in names}
    counted: dict[str, list[int]] = {"anybatch": [], "boto3 loop": []}
    for round_number in range(ROUNDS + 1):  # round 0 is a warm-up, not timed
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            url, records = queues.batch()
            before = dict(calls)
            start = time.perf_counter()
            cases[name](url, records)
            elapsed = time.perf_counter() - start
            queues.check_only_the_failure_is_left(url, name)
            if round_number:
                timings[name].append(elapsed)
                if name in counted:
                    key = "anybatch" if name == "anybatch" else "boto3"
                    counted[name].append(calls[key] - before[key])
    samples = {name: Samples(name, tuple(values)) for name, values in timings.items()}
    anybatch, loop, threads = (samples[name] for name in names)
    label = f"{latency * 1000:g} ms latency"
    say(f"-- {label}")
    for name, sample in samples.items():
        say(f"  {name:18} {sample.describe()}")
    say(f"  DeleteMessageBatch calls: anybatch {counted['anybatch']}, loop {counted['boto3 loop']}")
    say(
        f"  anybatch / boto3 loop: best {anybatch.best / loop.best:.3f}, "
        f"median {anybatch.median / loop.median:.3f}"
    )
    return [
        ratio_row(
            f"delete 1,000, {label}",
            anybatch.best,
            loop.best,
            goal_max=GOALS[latency],
            note="here the 'Powertools' column is a sequential boto3 delete_message_batch loop",
        ),
        info_row(
            f"  boto3 thread pool, {label}",
            threads.best,
            loop.best,
            measured=fmt_ratio(threads.best / loop.best),
            note="the incumbent's v1 way: ceil(n / 10) threads, Failed entries unchecked",
        ),
        Row(
            f"  API calls, {label}",
            None,
            None,
            measured=",".join(str(n) for n in sorted(set(counted["anybatch"]))),
            goal=f"= {EXPECTED_CALLS}",
            ok=set(counted["anybatch"]) == {EXPECTED_CALLS},
        ),
        info_row(
            f"  per deletion, {label}",
            anybatch.best / N_SUCCESSES,
            None,
            fmt_time(anybatch.best / N_SUCCESSES),
        ),
    ]


if __name__ == "__main__":
    main("Legacy SQS: delete 1,000 successes (moto server)", run)
