"""Idempotency: the per-record cost of ``anybatch.idempotency`` against Powertools' own.

The same blocking record handler, made idempotent by each library, keyed by the message id:
``@idempotent(store)`` on anybatch's ``BatchProcessor``, Powertools' ``idempotent_function``
(``event_key_jmespath="messageId"``) on its ``BatchProcessor``. Every timed batch has keys never
seen (fresh message ids), so each record takes the full path: claim, run, complete.

(a) In memory, 1,000 records, ``concurrency=1``, a no-op handler: anybatch's ``InMemoryStore``
    against a Powertools persistence layer over a dict (what ``InMemoryStore`` is, written to
    its ``BasePersistenceLayer``). The figure judged is the overhead per record: the time
    with idempotency less the time of the same batch without it, each library's own.
(b) DynamoDB on moto's server (a child process on 127.0.0.1), 100 records, ``concurrency=1``:
    aiobotocore (through anybatch's loop thread) against boto3. Both make the same two calls
    per record, so moto's own CPU dominates both.
(c) DynamoDB, 100 records whose handler waits 10 ms (a downstream call): anybatch at
    ``concurrency=20`` against Powertools' sequential loop, with moto as it is on loopback and
    with 5 ms added to each DynamoDB call (a round trip in one region).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from _common import Row, Samples, fmt_ratio, fmt_time, info_row, interleave, main, ratio_row, say

MEMORY_RECORDS = 1_000
MEMORY_ROUNDS = 11
DYNAMO_RECORDS = 100
DYNAMO_ROUNDS = 3
CONCURRENCY = 20
HANDLER_WAIT = 0.010
LATENCY = 0.005
#: anybatch's overhead per record at most half Powertools'; a 100-record batch at
#: concurrency 20 at least 10 times faster than Powertools' sequential loop.
OVERHEAD_GOAL = 0.5
CONCURRENT_GOAL = 0.1
REGION = "us-east-1"

_MOTO = """
import sys, time, logging
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from moto.server import ThreadedMotoServer
from moto.dynamodb.responses import DynamoHandler

latency = [0.0]
call_action = DynamoHandler.call_action

def slow(self):
    if latency[0]:
        time.sleep(latency[0])  # the network: the GIL is free meanwhile
    return call_action(self)

DynamoHandler.call_action = slow
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
for line in sys.stdin:
    latency[0] = float(line)
    print("ok", flush=True)
server.stop()
"""


class MotoServer:
    """moto's server in a child process (its own GIL); ``latency`` per DynamoDB call."""

    def __init__(self) -> None:
        self.child = subprocess.Popen(
            [sys.executable, "-c", _MOTO], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.child.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.child.stdout.readline())}"

    def set_latency(self, seconds: float) -> None:
        assert self.child.stdin is not None
        assert self.child.stdout is not None
        self.child.stdin.write(f"{seconds}\n")
        self.child.stdin.flush()
        self.child.stdout.readline()

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


def fresh_events(count: int, n: int) -> list[dict[str, Any]]:
    """*n* events of *count* records each, every message id new."""
    from anybatch.testing import sqs_event

    events = []
    for _ in range(n):
        event = sqs_event(f"message {i}" for i in range(count))
        for record in event["Records"]:
            record["messageId"] = str(uuid.uuid4())
        events.append(event)
    return events


def handler(record: Any) -> dict[str, str]:
    """The record handler both libraries make idempotent (Powertools passes ``record=``)."""
    return {"id": record.message_id}


def waiting_handler(record: Any) -> dict[str, str]:
    """The same, waiting 10 ms as for a downstream call."""
    time.sleep(HANDLER_WAIT)
    return {"id": record.message_id}


def powertools_memory_layer() -> Any:
    """Powertools' persistence layer over a dict, as ``InMemoryStore`` is for anybatch."""
    from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyItemAlreadyExistsError,
        IdempotencyItemNotFoundError,
    )

    class MemoryLayer(BasePersistenceLayer):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.items: dict[str, Any] = {}

        def _get_record(self, idempotency_key: str) -> Any:
            try:
                return self.items[idempotency_key]
            except KeyError:
                raise IdempotencyItemNotFoundError from None

        def _put_record(self, data_record: Any) -> None:
            old = self.items.get(data_record.idempotency_key)
            if old is not None and old.status != "EXPIRED":
                raise IdempotencyItemAlreadyExistsError(old_data_record=old)
            self.items[data_record.idempotency_key] = data_record

        def _update_record(self, data_record: Any) -> None:
            self.items[data_record.idempotency_key] = data_record

        def _delete_record(self, data_record: Any) -> None:
            self.items.pop(data_record.idempotency_key, None)

    return MemoryLayer()


class Libraries:
    """One handler, made idempotent by each library over its store, and how to run a batch."""

    def __init__(self, ab_store: Any, pt_layer: Any, func: Callable[[Any], Any], conc: int) -> None:
        from aws_lambda_powertools.utilities import batch as powertools
        from aws_lambda_powertools.utilities.idempotency import (
            IdempotencyConfig,
            idempotent_function,
        )

        import anybatch
        from anybatch.idempotency import idempotent
        from anybatch.testing import fake_lambda_context

        self.context = fake_lambda_context(timeout=900)
        self.config = IdempotencyConfig(event_key_jmespath="messageId")
        self.ab_handler = idempotent(ab_store)(func)
        self.pt_handler = idempotent_function(
            func, data_keyword_argument="record", persistence_store=pt_layer, config=self.config
        )
        self.func = func
        self.ab = anybatch.BatchProcessor(anybatch.EventType.SQS, concurrency=conc)
        self.pt = powertools.BatchProcessor(powertools.EventType.SQS)
        self.ab_run = anybatch.process_partial_response
        self.pt_run = powertools.process_partial_response

    def anybatch(self, event: dict[str, Any], idempotent: bool = True) -> None:
        handler = self.ab_handler if idempotent else self.func
        response = self.ab_run(event, handler, self.ab, context=self.context)
        assert not response["batchItemFailures"], response

    def powertools(self, event: dict[str, Any], idempotent: bool = True) -> None:
        self.config.register_lambda_context(self.context)
        handler = self.pt_handler if idempotent else self.func
        response = self.pt_run(
            event=event, record_handler=handler, processor=self.pt, context=self.context
        )
        assert not response["batchItemFailures"], response


def timed(cases: dict[str, Callable[[dict[str, Any]], None]], count: int, rounds: int) -> Any:
    """Interleaved timings of *cases*, each run on an event of fresh keys made beforehand."""
    events = {name: iter(fresh_events(count, rounds + 1)) for name in cases}

    def case(name: str) -> Callable[[], None]:
        run, pending = cases[name], events[name]
        return lambda: run(next(pending))

    return interleave({name: case(name) for name in cases}, rounds=rounds, warmup=1)


def memory() -> list[Row]:
    from anybatch.idempotency import InMemoryStore

    libs = Libraries(InMemoryStore(), powertools_memory_layer(), handler, 1)
    say(f"(a) in memory: {MEMORY_RECORDS:,} records, no-op handler, concurrency=1")
    t = timed(
        {
            "anybatch": libs.anybatch,
            "anybatch bare": lambda e: libs.anybatch(e, idempotent=False),
            "Powertools": libs.powertools,
            "Powertools bare": lambda e: libs.powertools(e, idempotent=False),
        },
        MEMORY_RECORDS,
        MEMORY_ROUNDS,
    )
    n = MEMORY_RECORDS
    ab = (t["anybatch"].best - t["anybatch bare"].best) / n
    pt = (t["Powertools"].best - t["Powertools bare"].best) / n
    for name, samples in t.items():
        say(f"  {name:16} {samples.describe(n, 'record')}")
    say(f"  overhead per record: anybatch {fmt_time(ab)}, Powertools {fmt_time(pt)}")
    return [
        ratio_row("idempotency: in memory, overhead/record", ab, pt, goal_max=OVERHEAD_GOAL),
        ratio_row(
            "idempotency: in memory, time/record",
            t["anybatch"].best / n,
            t["Powertools"].best / n,
            goal_max=None,
        ),
    ]


def dynamodb() -> list[Row]:
    import boto3

    from anybatch.idempotency import DynamoDBStore

    rows: list[Row] = []
    fake_credentials()
    with moto_server() as server:
        client = boto3.client("dynamodb", endpoint_url=server.url, region_name=REGION)
        client.create_table(
            TableName="idempotency",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        store = DynamoDBStore("idempotency", endpoint_url=server.url, region_name=REGION)
        layer = DynamoDBPersistenceLayer(table_name="idempotency", boto3_client=client)
        try:
            one = Libraries(store, layer, handler, 1)
            say(f"(b) DynamoDB on moto: {DYNAMO_RECORDS} records, concurrency=1")
            t = timed({"anybatch": one.anybatch, "Powertools": one.powertools}, DYNAMO_RECORDS, 3)
            n = DYNAMO_RECORDS
            for name, samples in t.items():
                say(f"  {name:11} {samples.describe(n, 'record')}")
            rows.append(
                ratio_row(
                    "idempotency: DynamoDB, conc=1, time/record",
                    t["anybatch"].best / n,
                    t["Powertools"].best / n,
                    goal_max=OVERHEAD_GOAL,
                    note="moto's CPU (one process) serves both: two calls a record each, "
                    "about 4 ms a call; (c) is held at that floor, 200 calls",
                )
            )
            many = Libraries(store, layer, waiting_handler, CONCURRENCY)
            for latency in (0.0, LATENCY):
                server.set_latency(latency)
                say(
                    f"(c) DynamoDB on moto (+{fmt_time(latency)} a call): {DYNAMO_RECORDS} "
                    f"records x {fmt_time(HANDLER_WAIT)} handler; anybatch concurrency="
                    f"{CONCURRENCY}, Powertools sequential"
                )
                t = timed(
                    {"anybatch": many.anybatch, "Powertools": many.powertools},
                    DYNAMO_RECORDS,
                    DYNAMO_ROUNDS,
                )
                for name, samples in t.items():
                    say(f"  {name:11} {samples.describe()}")
                ratio = t["anybatch"].best / t["Powertools"].best
                say(f"  anybatch / Powertools: {fmt_ratio(ratio)} ({1 / ratio:.1f}x faster)")
                rows.append(
                    ratio_row(
                        f"idempotency: DynamoDB +{fmt_time(latency)}/call, 100 rec, conc=20",
                        t["anybatch"].best,
                        t["Powertools"].best,
                        goal_max=CONCURRENT_GOAL,
                    )
                )
        finally:
            store.close()
    return rows


def run() -> list[Row]:
    rows = memory()
    rows += dynamodb()
    return rows


__all__ = ["Samples", "info_row", "run"]

if __name__ == "__main__":
    main("idempotency: anybatch.idempotency against Powertools' idempotency", run)
