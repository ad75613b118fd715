"""Record handlers that count their runs, async or blocking, and how tests run a batch."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import anyio

from anybatch import AsyncBatchProcessor, BatchProcessor, EventType, Status
from anybatch.idempotency import IdempotencyStore, idempotent

Kind = Literal["async", "thread"]

#: Whether make_handler's handlers claim and store a batch's keys at once (``batched=``): the
#: ``batched_writes`` fixture runs a test module both ways.
BATCHED = [False]


class Counter:
    """What the handlers ran: the bodies, in order (thread-safe)."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self._lock = threading.Lock()

    def add(self, body: str) -> None:
        with self._lock:
            self.bodies.append(body)


def make_handler(
    kind: Kind,
    store: IdempotencyStore,
    counter: Counter,
    *,
    fail: Callable[[str], bool] = lambda body: body.startswith("bad"),
    sleep: float = 0.0,
    **options: Any,
) -> Callable[..., Any]:
    """An idempotent handler of *kind* that counts its runs and returns ``{"body": ...}``."""
    options.setdefault("batched", BATCHED[0])
    if kind == "async":

        async def handle_async(record: Any) -> dict[str, str]:
            counter.add(record.body)
            if sleep:
                await anyio.sleep(sleep)
            if fail(record.body):
                raise ValueError(f"cannot handle {record.body}")
            return {"body": record.body}

        return idempotent(store, **options)(handle_async)

    def handle(record: Any) -> dict[str, str]:
        counter.add(record.body)
        if sleep:
            time.sleep(sleep)
        if fail(record.body):
            raise ValueError(f"cannot handle {record.body}")
        return {"body": record.body}

    return idempotent(store, **options)(handle)


def processor(concurrency: int = 10, **options: Any) -> AsyncBatchProcessor[Any]:
    """An async processor (blocking handlers run in its worker threads)."""
    options.setdefault("raise_on_entire_batch_failure", False)
    return AsyncBatchProcessor(EventType.SQS, concurrency=concurrency, **options)


def blocking_processor(concurrency: int = 1) -> BatchProcessor[Any]:
    """A blocking processor (inline at concurrency 1, else threads)."""
    return BatchProcessor(
        EventType.SQS, concurrency=concurrency, raise_on_entire_batch_failure=False
    )


def failures(response: Mapping[str, Any]) -> list[str]:
    """The identifiers a partial batch response reports."""
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def errors(proc: AsyncBatchProcessor[Any] | BatchProcessor[Any]) -> list[str]:
    """Each record's outcome: ``"ok"`` or the name of its exception, in record order."""
    assert proc.result is not None
    return ["ok" if o.status is Status.SUCCESS else type(o.exception).__name__ for o in proc.result]
