"""A function for the runtime tests: it reports its process, its loop and its deadline."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from anybatch import (
    AsyncBatchProcessor,
    EventType,
    as_lambda_handler,
    async_process_partial_response,
)

if TYPE_CHECKING:
    from anybatch.records import SQSRecord

processor = AsyncBatchProcessor(EventType.SQS)
lock: asyncio.Lock | None = None  # a loop-bound resource kept between warm invocations


async def record_handler(record: SQSRecord) -> None:
    global lock
    if lock is None:
        lock = asyncio.Lock()
    async with lock:  # works only on the loop that made it: the same one, every invocation
        await asyncio.sleep(
            float(record.body.removeprefix("sleep ")) if "sleep" in record.body else 0
        )
    if record.body == "bad":
        raise ValueError("bad record")


@as_lambda_handler
async def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response = await async_process_partial_response(event, record_handler, processor, context)
    return {
        "response": response,
        "pid": os.getpid(),
        "loop": id(asyncio.get_running_loop()),
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
    }
