"""Idempotency: the per-record cost of ``anybatch.idempotency`` against Powertools' own.

The same blocking record handler, made idempotent by each library, keyed by the message id:
``@idempotent(store)`` on anybatch's ``BatchProcessor``, Powertools' ``idempotent_function``
(``event_key_jmespath="messageId"``) on its ``BatchProcessor``. Every timed batch has keys never
seen (fresh message ids), so each record takes the full path: claim, run, complete.

(a) In memory, 1,000 records, ``concurrency=1``, a no-op handler: anybatch's ``InMemoryStore``
    against a Powertools persistence layer over a dict (what ``InMemoryStore`` is, written to
    its ``BasePersistenceLayer``). The figure judged is the overhead per record: the time
    with idempotency less the time of the same batch without it, each library's own.
(b) DynamoDB on a local endpoint, 100 records, ``concurrency=1``: aiobotocore (through
    anybatch's loop thread) against boto3, each making a conditional ``PutItem`` and an
    ``UpdateItem`` a record; anybatch with ``batched=True``, which claims the batch's keys
    in one ``TransactWriteItems`` and stores the results in ``BatchWriteItem`` s of 25; beside
    them the floors, the same two calls a record written by hand with boto3 and with
    aiobotocore. The same with 5 ms added to each call, 20 records.
(c) DynamoDB, 100 records whose handler waits 10 ms (a downstream call): anybatch at
    ``concurrency=20``, per record and batched, against Powertools' sequential loop, on
    loopback and with 5 ms added to each call (a round trip in one region); the floor:
    aiobotocore by hand, 20 at a time.
(d) For information, (b) on moto's server, 20 records: moto spends milliseconds of CPU a call.

The local endpoint is a small DynamoDB server in a child process (JSON 1.0 protocol over
HTTP/1.1 on asyncio, so calls waiting out the added latency overlap as on a network): a table
in memory answering ``CreateTable``, ``PutItem``, ``UpdateItem``, ``DeleteItem``, ``GetItem``,
``TransactWriteItems`` (puts, with cancellation reasons) and ``BatchWriteItem``,
with condition expressions (``attribute_exists``, ``attribute_not_exists``, comparisons,
``AND``/``OR``/``NOT``, parentheses), ``SET`` update expressions, and a
``ConditionalCheckFailedException`` carrying the item under ``ReturnValuesOnConditionCheckFailure``.
Its own CPU a call is reported: it is not what the figures measure. Both libraries are first
checked against it on a repeated batch (the handler runs once a key; the second batch is replayed
from the stored results).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, contextmanager
from typing import Any

from _common import Row, Samples, fmt_ratio, fmt_time, info_row, interleave, main, ratio_row, say

MEMORY_RECORDS = 1_000
MEMORY_ROUNDS = 11
DYNAMO_RECORDS = 100
DYNAMO_ROUNDS = 2
SLOW_RECORDS = 20  # at concurrency 1 with the added latency, and on moto: 20 records tell
CONCURRENCY = 20
HANDLER_WAIT = 0.010
LATENCY = 0.005
#: anybatch's overhead per record at most half Powertools'; a 100-record batch at
#: concurrency 20 at least 10 times faster than Powertools' sequential loop.
OVERHEAD_GOAL = 0.5
CONCURRENT_GOAL = 0.1
REGION = "us-east-1"
TABLE = "idempotency"
#: The incumbent's condition for a new IN_PROGRESS mark, as the hand-written floor writes it.
CONDITION = (
    "attribute_not_exists(#id) OR #expiry < :now OR "
    "(#status = :inprogress AND attribute_exists(#in_progress_expiry) AND "
    "#in_progress_expiry < :now_in_millis)"
)

_ENDPOINT = r"""
import asyncio, json, re, sys, threading, time
from decimal import Decimal

tables = {}  # table name -> (key attribute names, {key: item})
latency = [0.0]
counts = {"calls": 0, "failed": 0}


class Failure(Exception):
    def __init__(self, code, message, **extra):
        super().__init__(message)
        self.answer = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}
        self.answer.update(extra)


def invalid(message):
    return Failure("ValidationException", message)


# -- expressions: the subset the two idempotency layers write --------------------------
TOKEN = re.compile(r"\s*(<>|<=|>=|[=<>(),]|[#:]?[A-Za-z0-9_.]+)")


def tokens_of(text):
    text, found, at = text.strip(), [], 0
    while at < len(text):
        match = TOKEN.match(text, at)
        if match is None:
            raise invalid(f"cannot read the expression at {text[at:]!r}")
        found.append(match.group(1))
        at = match.end()
    return found


def typed(value):
    (kind, raw), = value.items()
    return kind, Decimal(raw) if kind == "N" else raw


COMPARE = {
    "=": lambda a, b: a == b, "<>": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


class Condition:
    # A condition expression compiled to a function of (item, names, values).

    def __init__(self, text):
        self.tokens, self.at = tokens_of(text), 0
        self.test = self.either()
        if self.at != len(self.tokens):
            raise invalid(f"unexpected {self.tokens[self.at]!r}")

    def peek(self):
        return self.tokens[self.at].upper() if self.at < len(self.tokens) else ""

    def take(self, expected=None):
        if self.at == len(self.tokens) or (expected and self.peek() != expected):
            raise invalid(f"expected {expected or 'more'} in the expression")
        self.at += 1
        return self.tokens[self.at - 1]

    def either(self):
        test = self.both()
        while self.peek() == "OR":
            self.take()
            test = (lambda a, b: lambda c: a(c) or b(c))(test, self.both())
        return test

    def both(self):
        test = self.single()
        while self.peek() == "AND":
            self.take()
            test = (lambda a, b: lambda c: a(c) and b(c))(test, self.single())
        return test

    def single(self):
        word = self.peek()
        if word == "(":
            self.take()
            test = self.either()
            self.take(")")
            return test
        if word == "NOT":
            self.take()
            inner = self.single()
            return lambda c: not inner(c)
        if word in ("ATTRIBUTE_EXISTS", "ATTRIBUTE_NOT_EXISTS"):
            self.take()
            self.take("(")
            path = self.operand()
            self.take(")")
            exists = word == "ATTRIBUTE_EXISTS"
            return lambda c: (path(c) is not None) == exists
        left, op, right = self.operand(), self.take(), self.operand()
        if op not in COMPARE:
            raise invalid(f"unknown comparison {op!r}")
        compare = COMPARE[op]

        def test(c):
            a, b = left(c), right(c)
            if a is None or b is None:
                return False
            (ka, va), (kb, vb) = typed(a), typed(b)
            return ka == kb and compare(va, vb)

        return test

    def operand(self):
        token = self.take()
        if token.startswith(":"):
            return lambda c: value_of(c[2], token)
        if token.startswith("#"):
            return lambda c: c[0].get(name_of(c[1], token))
        return lambda c: c[0].get(token)


def value_of(values, token):
    try:
        return values[token]
    except KeyError:
        raise invalid(f"no value for {token}") from None


def name_of(names, token):
    if not token.startswith("#"):
        return token
    try:
        return names[token]
    except KeyError:
        raise invalid(f"no name for {token}") from None


def assignments_of(text):
    # ``SET a = :x, #b = :y``: the (name, value) pairs; nothing else is needed here.
    tokens = tokens_of(text)
    if not tokens or tokens[0].upper() != "SET":
        raise invalid("only SET update expressions are served")
    pairs, at = [], 1
    while True:
        if len(tokens) < at + 3 or tokens[at + 1] != "=" or not tokens[at + 2].startswith(":"):
            raise invalid(f"cannot read the update expression {text!r}")
        pairs.append((tokens[at], tokens[at + 2]))
        at += 3
        if at == len(tokens):
            return pairs
        if tokens[at] != ",":
            raise invalid(f"cannot read the update expression {text!r}")
        at += 1


conditions, updates = {}, {}  # compiled once per text


# -- the actions -------------------------------------------------------------------------
def table_of(body):
    try:
        return tables[body["TableName"]]
    except KeyError:
        raise Failure("ResourceNotFoundException", "Requested resource not found") from None


def key_of(names, attributes):
    try:
        return tuple(typed(attributes[name]) for name in names)
    except (KeyError, ValueError):
        raise invalid("the key does not match the table's key schema") from None


def check(body, old):
    text = body.get("ConditionExpression")
    if text is None:
        return
    condition = conditions.get(text) or conditions.setdefault(text, Condition(text))
    context = (old or {}, body.get("ExpressionAttributeNames", {}),
               body.get("ExpressionAttributeValues", {}))
    if not condition.test(context):
        counts["failed"] += 1
        extra = {}
        if old is not None and body.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD":
            extra["Item"] = old
        raise Failure("ConditionalCheckFailedException", "The conditional request failed", **extra)


def create_table(body):
    schema = sorted(body["KeySchema"], key=lambda part: part["KeyType"] != "HASH")
    tables[body["TableName"]] = ([part["AttributeName"] for part in schema], {})
    return {"TableDescription": {"TableName": body["TableName"], "TableStatus": "ACTIVE",
                                 "KeySchema": body["KeySchema"]}}


def put_item(body):
    names, items = table_of(body)
    key = key_of(names, body["Item"])
    check(body, items.get(key))
    items[key] = body["Item"]
    return {}


def update_item(body):
    names, items = table_of(body)
    key = key_of(names, body["Key"])
    old = items.get(key)
    check(body, old)
    text = body["UpdateExpression"]
    pairs = updates.get(text) or updates.setdefault(text, assignments_of(text))
    new = dict(old or body["Key"])
    for path, value in pairs:
        new[name_of(body.get("ExpressionAttributeNames", {}), path)] = value_of(
            body.get("ExpressionAttributeValues", {}), value)
    items[key] = new
    return {}


def delete_item(body):
    names, items = table_of(body)
    key = key_of(names, body["Key"])
    check(body, items.get(key))
    items.pop(key, None)
    return {}


def get_item(body):
    names, items = table_of(body)
    item = items.get(key_of(names, body["Key"]))
    return {} if item is None else {"Item": item}


def transact_write_items(body):
    # Puts only (what a batched claim sends): all written, or none and a reason for each.
    puts = [entry["Put"] for entry in body["TransactItems"]]
    reasons, failed = [], False
    for put in puts:
        names, items = table_of(put)
        old = items.get(key_of(names, put["Item"]))
        try:
            check(put, old)
            reasons.append({"Code": "None"})
        except Failure:
            failed = True
            reason = {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}
            if old is not None and put.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD":
                reason["Item"] = old
            reasons.append(reason)
    if failed:
        raise Failure("TransactionCanceledException", "Transaction cancelled",
                      CancellationReasons=reasons)
    for put in puts:
        names, items = table_of(put)
        items[key_of(names, put["Item"])] = put["Item"]
    return {}


def batch_write_item(body):
    for name, requests in body["RequestItems"].items():
        names, items = table_of({"TableName": name})
        for request in requests:
            if "PutRequest" in request:
                item = request["PutRequest"]["Item"]
                items[key_of(names, item)] = item
            else:
                items.pop(key_of(names, request["DeleteRequest"]["Key"]), None)
    return {"UnprocessedItems": {}}


ACTIONS = {"CreateTable": create_table, "PutItem": put_item, "UpdateItem": update_item,
           "DeleteItem": delete_item, "GetItem": get_item,
           "TransactWriteItems": transact_write_items, "BatchWriteItem": batch_write_item}


def answer_to(target, body):
    action = ACTIONS.get(target.rpartition(".")[2])
    if action is None:
        return 400, {"__type": "com.amazonaws.dynamodb.v20120810#UnknownOperationException"}
    try:
        return 200, action(json.loads(body or b"{}"))
    except Failure as failure:
        return 400, failure.answer


connections = set()


# -- HTTP/1.1 with keep-alive, on asyncio: calls waiting out their latency overlap --------
async def serve(reader, writer):
    connections.add(writer)
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length, target = 0, ""
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"x-amz-target":
                    target = value.strip().decode()
            body = await reader.readexactly(length)
            counts["calls"] += 1
            if latency[0]:
                await asyncio.sleep(latency[0])
            status, answer = answer_to(target, body)
            data = json.dumps(answer).encode()
            writer.write(
                b"HTTP/1.1 %d %s\r\nContent-Type: application/x-amz-json-1.0\r\n"
                b"Content-Length: %d\r\n\r\n%s"
                % (status, b"OK" if status == 200 else b"Bad Request", len(data), data)
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the client closed its connection
    finally:
        connections.discard(writer)
        writer.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    loop, stop = asyncio.get_running_loop(), asyncio.Event()

    def control():  # one command a line on stdin, one JSON answer a line; EOF stops
        for line in sys.stdin:
            command, *args = line.split()
            if command == "latency":
                latency[0] = float(args[0])
            items = sum(len(table[1]) for table in tables.values())
            print(json.dumps({**counts, "items": items, "cpu": time.process_time()}), flush=True)
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=control, daemon=True).start()
    await stop.wait()
    server.close()
    for writer in list(connections):  # clients keep theirs open: each handler sees its end
        writer.close()
    await asyncio.sleep(0.05)


asyncio.run(main())
"""


class Endpoint:
    """The local DynamoDB endpoint in a child process (its own GIL)."""

    def __init__(self) -> None:
        self.child = subprocess.Popen(
            [sys.executable, "-c", _ENDPOINT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.child.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.child.stdout.readline())}"

    def ask(self, command: str = "status") -> dict[str, Any]:
        """``status`` or ``latency SECONDS``: the calls served, conditions failed, its CPU."""
        assert self.child.stdin is not None
        assert self.child.stdout is not None
        self.child.stdin.write(command + "\n")
        self.child.stdin.flush()
        answer: dict[str, Any] = json.loads(self.child.stdout.readline())
        return answer

    def stop(self) -> None:
        assert self.child.stdin is not None
        self.child.stdin.close()
        self.child.wait(timeout=10)


_MOTO = """
import sys, logging
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from moto.server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


class MotoServer:
    """moto's server in a child process, for information."""

    def __init__(self) -> None:
        self.child = subprocess.Popen(
            [sys.executable, "-c", _MOTO], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.child.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.child.stdout.readline())}"

    def stop(self) -> None:
        assert self.child.stdin is not None
        self.child.stdin.close()
        self.child.wait(timeout=10)


@contextmanager
def serving(server: Callable[[], Endpoint | MotoServer]) -> Iterator[Any]:
    """A server started, and stopped whatever happens."""
    running = server()
    try:
        yield running
    finally:
        running.stop()


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
        self.ab_batched_handler = idempotent(ab_store, batched=True)(func)
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

    def batched(self, event: dict[str, Any]) -> None:
        """anybatch with ``batched=True``: the batch's keys claimed at once, stored at once."""
        response = self.ab_run(event, self.ab_batched_handler, self.ab, context=self.context)
        assert not response["batchItemFailures"], response

    def powertools(self, event: dict[str, Any], idempotent: bool = True) -> None:
        self.config.register_lambda_context(self.context)
        handler = self.pt_handler if idempotent else self.func
        response = self.pt_run(
            event=event, record_handler=handler, processor=self.pt, context=self.context
        )
        assert not response["batchItemFailures"], response


def timed(
    cases: dict[str, Callable[[dict[str, Any]], None]],
    count: int,
    rounds: int,
    warm: int = 0,
    cpu: dict[str, float] | None = None,
) -> Any:
    """Interleaved timings of *cases*, each run on an event of fresh keys made beforehand.

    Each case is warmed first on a batch of *warm* records (by default a timed batch's size).
    *cpu*, when given, gets each case's least CPU time (this process's, all threads) a batch.
    """
    warm = warm or count
    events = {name: iter(fresh_events(count, rounds)) for name in cases}
    for run in cases.values():
        run(fresh_events(warm, 1)[0])
    spent: dict[str, list[float]] = {name: [] for name in cases}

    def case(name: str) -> Callable[[], None]:
        run, pending, used = cases[name], events[name], spent[name]

        def once() -> None:
            event, before = next(pending), time.process_time()
            run(event)
            used.append(time.process_time() - before)

        return once

    samples = interleave({name: case(name) for name in cases}, rounds=rounds, warmup=0)
    if cpu is not None:
        cpu.update({name: min(used) for name, used in spent.items()})
    return samples


class Floor:
    """The same two calls a record written by hand: boto3 in a loop, aiobotocore on a loop.

    A conditional ``PutItem`` of the IN_PROGRESS mark (the incumbent's condition), the handler,
    an ``UpdateItem`` to COMPLETED with its result as JSON: what both libraries send, without
    key hashing, records or error handling (the keys are fresh). The aiobotocore client lives
    on an asyncio loop in its own thread, as anybatch's does; at concurrency above 1, a fixed
    pool of that many workers takes the records, each blocking handler run in a thread.
    """

    def __init__(self, url: str, boto3_client: Any) -> None:
        from aiobotocore.session import get_session

        self.boto3 = boto3_client
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.threads = ThreadPoolExecutor(CONCURRENCY)
        self.stack = AsyncExitStack()
        client = get_session().create_client("dynamodb", endpoint_url=url, region_name=REGION)
        self.aio = self._on_loop(self.stack.enter_async_context(client))

    def _on_loop(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    @staticmethod
    def put(key: str) -> dict[str, Any]:
        now = time.time()
        return {
            "TableName": TABLE,
            "Item": {
                "id": {"S": key},
                "expiration": {"N": str(int(now) + 3600)},
                "in_progress_expiration": {"N": str(int(now * 1000) + 900_000)},
                "status": {"S": "INPROGRESS"},
            },
            "ConditionExpression": CONDITION,
            "ExpressionAttributeNames": {
                "#id": "id",
                "#expiry": "expiration",
                "#in_progress_expiry": "in_progress_expiration",
                "#status": "status",
            },
            "ExpressionAttributeValues": {
                ":now": {"N": str(int(now))},
                ":now_in_millis": {"N": str(int(now * 1000))},
                ":inprogress": {"S": "INPROGRESS"},
            },
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    @staticmethod
    def update(key: str, result: Any) -> dict[str, Any]:
        return {
            "TableName": TABLE,
            "Key": {"id": {"S": key}},
            "UpdateExpression": "SET #response_data = :response_data, #expiry = :expiry, "
            "#status = :status",
            "ExpressionAttributeNames": {
                "#response_data": "data",
                "#expiry": "expiration",
                "#status": "status",
            },
            "ExpressionAttributeValues": {
                ":response_data": {"S": json.dumps(result)},
                ":expiry": {"N": str(int(time.time()) + 3600)},
                ":status": {"S": "COMPLETED"},
            },
        }

    def boto3_loop(self, event: dict[str, Any], wait: float = 0.0) -> None:
        for record in event["Records"]:
            key = record["messageId"]
            self.boto3.put_item(**self.put(key))
            if wait:
                time.sleep(wait)
            self.boto3.update_item(**self.update(key, {"id": key}))

    def aiobotocore(self, event: dict[str, Any], concurrency: int = 1, wait: float = 0.0) -> None:
        self._on_loop(self._aio_batch(event["Records"], concurrency, wait))

    async def _aio_batch(
        self, records: list[dict[str, Any]], concurrency: int, wait: float
    ) -> None:
        pending = iter(records)  # shared by the workers: each takes the next record

        async def worker() -> None:
            for record in pending:
                key = record["messageId"]
                await self.aio.put_item(**self.put(key))
                if wait:
                    await self.loop.run_in_executor(self.threads, time.sleep, wait)
                await self.aio.update_item(**self.update(key, {"id": key}))

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    def close(self) -> None:
        self._on_loop(self.stack.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
        self.threads.shutdown()


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


def create_table(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def check_replays(store: Any, layer: Any) -> None:
    """Each library, twice on one batch: the handler runs once a key, then replays."""
    ran: list[str] = []

    def counting(record: Any) -> dict[str, str]:
        ran.append(record.message_id)
        return {"id": record.message_id}

    libs = Libraries(store, layer, counting, 1)
    for name in ("anybatch", "batched", "Powertools"):
        event = fresh_events(3, 1)[0]
        ran.clear()
        for _ in range(2):
            getattr(libs, name.lower())(event)
        if sorted(ran) != sorted(r["messageId"] for r in event["Records"]):
            sys.exit(
                f"{name} on the local endpoint: the handler ran for {ran}; the bench is broken"
            )


def per_record(
    libs: Libraries, floor: Floor, endpoint: Endpoint, count: int, what: str
) -> tuple[dict[str, Samples], float, dict[str, float]]:
    """(b): the five at concurrency 1; the endpoint's CPU a call, each case's CPU a record."""
    cases: dict[str, Callable[[dict[str, Any]], None]] = {
        "anybatch": libs.anybatch,
        "anybatch batched": libs.batched,
        "Powertools": libs.powertools,
        "boto3 floor": floor.boto3_loop,
        "aiobotocore floor": floor.aiobotocore,
    }
    say(f"(b) DynamoDB, local endpoint{what}: {count} records, concurrency=1")
    before, used = endpoint.ask(), dict[str, float]()
    t = timed(cases, count, DYNAMO_ROUNDS, warm=min(count, 10), cpu=used)
    after = endpoint.ask()
    for name, samples in t.items():
        say(
            f"  {name:17} {samples.describe(count, 'record')}  "
            f"CPU {fmt_time(used[name] / count)}/record"
        )
    cpu = (after["cpu"] - before["cpu"]) / (after["calls"] - before["calls"])
    pt = t["Powertools"].best
    say(
        f"  anybatch / Powertools: {fmt_ratio(t['anybatch'].best / pt)} per record, "
        f"{fmt_ratio(t['anybatch batched'].best / pt)} batched; "
        f"the endpoint's CPU: {fmt_time(cpu)} a call"
    )
    if after["failed"] != before["failed"]:
        sys.exit("a claim of a fresh key failed: the bench is broken")
    return t, cpu, {name: spent / count for name, spent in used.items()}


def dynamodb() -> list[Row]:
    import boto3
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from anybatch.idempotency import DynamoDBStore

    fake_credentials()
    rows: list[Row] = []
    with serving(Endpoint) as endpoint:
        client = boto3.client("dynamodb", endpoint_url=endpoint.url, region_name=REGION)
        create_table(client)
        store = DynamoDBStore(TABLE, endpoint_url=endpoint.url, region_name=REGION)
        layer = DynamoDBPersistenceLayer(table_name=TABLE, boto3_client=client)
        floor = Floor(endpoint.url, client)
        try:
            check_replays(store, layer)
            one = Libraries(store, layer, handler, 1)
            n = DYNAMO_RECORDS
            t, cpu, used = per_record(one, floor, endpoint, n, "")
            ab, pt = t["anybatch"].best / n, t["Powertools"].best / n
            batched = t["anybatch batched"].best / n
            aio, b3 = t["aiobotocore floor"].best / n, t["boto3 floor"].best / n
            rows += [
                ratio_row(
                    "idempotency: DynamoDB, conc=1, time/record (batched=True)",
                    batched,
                    pt,
                    goal_max=OVERHEAD_GOAL,
                    note="anybatch claims the batch's keys in one TransactWriteItems and stores "
                    "the results in one BatchWriteItem a 25 records: two calls a batch where "
                    "Powertools makes two a record. This process's CPU a record: "
                    f"{fmt_time(used['anybatch batched'])}",
                ),
                ratio_row(
                    "idempotency: DynamoDB, conc=1, time/record (per record)",
                    ab,
                    pt,
                    goal_max=None,
                    note=f"a local endpoint in a child process, {fmt_time(cpu)} of its CPU a "
                    "call; two calls a record in both. By hand, the same two calls take "
                    f"{fmt_time(b3)} a record with boto3, {fmt_time(aio)} with aiobotocore. "
                    f"This process's CPU a record: anybatch {fmt_time(used['anybatch'])}, "
                    f"Powertools {fmt_time(used['Powertools'])}, by hand "
                    f"{fmt_time(used['boto3 floor'])} (boto3), "
                    f"{fmt_time(used['aiobotocore floor'])} (aiobotocore)",
                ),
                info_row(
                    "idempotency: DynamoDB, conc=1, per record vs aiobotocore by hand",
                    ab,
                    aio,
                    fmt_ratio(ab / aio),
                    note="the Powertools column holds the floor: the conditional put and the "
                    "update written by hand with aiobotocore, on its own loop thread",
                ),
                info_row(
                    "idempotency: DynamoDB, conc=1, boto3 by hand vs Powertools",
                    b3,
                    pt,
                    fmt_ratio(b3 / pt),
                    note="the anybatch column holds the two calls by hand with boto3: the "
                    "least any library on botocore spends a record at concurrency 1 when it "
                    "makes two calls a record",
                ),
            ]
            endpoint.ask(f"latency {LATENCY}")
            t, _, _ = per_record(
                one, floor, endpoint, SLOW_RECORDS, f" +{fmt_time(LATENCY)} a call"
            )
            for name, what in (("anybatch batched", "batched=True"), ("anybatch", "per record")):
                rows.append(
                    ratio_row(
                        f"idempotency: DynamoDB +{fmt_time(LATENCY)}/call, conc=1, "
                        f"time/record ({what})",
                        t[name].best / SLOW_RECORDS,
                        t["Powertools"].best / SLOW_RECORDS,
                        goal_max=None,
                    )
                )
            many = Libraries(store, layer, waiting_handler, CONCURRENCY)
            for latency in (0.0, LATENCY):
                endpoint.ask(f"latency {latency}")
                rows += concurrent(many, floor, endpoint, latency)
        finally:
            floor.close()
            store.close()
    return rows


def concurrent(libs: Libraries, floor: Floor, endpoint: Endpoint, latency: float) -> list[Row]:
    """(c): a 100-record batch at concurrency 20 against Powertools' sequential loop."""
    added = f"+{fmt_time(latency)}/call" if latency else "loopback"
    say(
        f"(c) DynamoDB, local endpoint ({added}): {DYNAMO_RECORDS} records x "
        f"{fmt_time(HANDLER_WAIT)} handler; anybatch concurrency={CONCURRENCY}, "
        "Powertools sequential"
    )
    before, used = endpoint.ask(), dict[str, float]()
    t = timed(
        {
            "anybatch": libs.anybatch,
            "anybatch batched": libs.batched,
            "Powertools": libs.powertools,
            "aiobotocore floor": lambda e: floor.aiobotocore(e, CONCURRENCY, HANDLER_WAIT),
        },
        DYNAMO_RECORDS,
        DYNAMO_ROUNDS,
        warm=CONCURRENCY,
        cpu=used,
    )
    if endpoint.ask()["failed"] != before["failed"]:
        sys.exit("a claim of a fresh key failed: the bench is broken")
    for name, samples in t.items():
        say(f"  {name:17} {samples.describe()}  CPU {fmt_time(used[name] / DYNAMO_RECORDS)}/record")
    ab, pt, aio = (t[name].best for name in ("anybatch", "Powertools", "aiobotocore floor"))
    batched = t["anybatch batched"].best
    say(
        f"  anybatch / Powertools: {fmt_ratio(ab / pt)} ({pt / ab:.1f}x faster) per record, "
        f"{fmt_ratio(batched / pt)} ({pt / batched:.1f}x faster) batched"
    )
    label = f"DynamoDB {added}, 100 rec, conc=20"
    return [
        ratio_row(f"idempotency: {label} (batched=True)", batched, pt, goal_max=CONCURRENT_GOAL),
        ratio_row(f"idempotency: {label} (per record)", ab, pt, goal_max=None),
        info_row(
            f"idempotency: {label}, vs aiobotocore by hand",
            ab,
            aio,
            fmt_ratio(ab / aio),
            note="the Powertools column holds the floor: the same two calls a record by hand "
            f"with aiobotocore, {CONCURRENCY} workers, the handler in threads",
        ),
    ]


def moto() -> list[Row]:
    """(d), for information: moto's server is the floor there, milliseconds of CPU a call."""
    import boto3
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from anybatch.idempotency import DynamoDBStore

    with serving(MotoServer) as server:
        client = boto3.client("dynamodb", endpoint_url=server.url, region_name=REGION)
        create_table(client)
        store = DynamoDBStore(TABLE, endpoint_url=server.url, region_name=REGION)
        layer = DynamoDBPersistenceLayer(table_name=TABLE, boto3_client=client)
        try:
            libs = Libraries(store, layer, handler, 1)
            n = SLOW_RECORDS
            say(f"(d) DynamoDB on moto's server: {n} records, concurrency=1")
            t = timed({"anybatch": libs.anybatch, "Powertools": libs.powertools}, n, 2, warm=5)
            for name, samples in t.items():
                say(f"  {name:11} {samples.describe(n, 'record')}")
        finally:
            store.close()
    return [
        ratio_row(
            "idempotency: DynamoDB on moto, conc=1, time/record",
            t["anybatch"].best / n,
            t["Powertools"].best / n,
            goal_max=None,
            note="moto's server spends milliseconds of CPU a call, the same for both",
        )
    ]


def run() -> list[Row]:
    rows = memory()
    rows += dynamodb()
    rows += moto()
    return rows


__all__ = ["Samples", "info_row", "run"]

if __name__ == "__main__":
    main("idempotency: anybatch.idempotency against Powertools' idempotency", run)
