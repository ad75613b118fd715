"""DynamoDB Streams: changes to different items run concurrently, each item's in order.

Records with the same ``Keys`` form one ordered sequence. Run::

    anybatch run examples/events/dynamodb.json examples.dynamodb_handler:lambda_handler

The update of ``user#1`` to an invalid e-mail address fails. This processor opts in to
``skip_key_on_failure=True``: the later update of ``user#1`` is then not applied either
(both are reported, and Lambda retries them in order), while the changes to ``user#2``
and ``user#3`` are. Without the option every record runs, the later update included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from anybatch import (
    AsyncBatchProcessor,
    EventType,
    PartialItemFailureResponse,
    as_lambda_handler,
    async_process_partial_response,
)

if TYPE_CHECKING:
    from anybatch.records import DynamoDBRecord

# A failed change skips its item's later changes in this batch; other items carry on.
processor = AsyncBatchProcessor(
    EventType.DynamoDBStreams,
    concurrency=10,
    skip_key_on_failure=True,
)


async def record_handler(record: DynamoDBRecord) -> str:
    """Mirror one change into a search index; an invalid e-mail address raises."""
    change = record.dynamodb
    keys = change.keys or {}
    if record.event_name == "REMOVE":
        await anyio.sleep(0.01)  # stands for a delete in the index
        return f"removed {keys['pk']}"
    image = change.new_image or {}
    if "@" not in image.get("email", ""):
        raise ValueError(f"{keys['pk']}: invalid e-mail address {image.get('email')!r}")
    await anyio.sleep(0.01)  # stands for an upsert in the index
    return f"indexed {keys['pk']}"


@as_lambda_handler
async def lambda_handler(
    event: dict[str, Any],
    context: Any,
) -> PartialItemFailureResponse:
    """The function's entry point."""
    return await async_process_partial_response(
        event,
        record_handler,
        processor,
        context=context,
    )
