r"""Per-record timeouts and the invocation deadline: a partial response, not a timeout.

Each job sleeps for the seconds in its body. Run it as a 2-second invocation::

    anybatch run --timeout 2 examples/events/deadline.json \
        examples.deadline_handler:lambda_handler

With ``deadline_margin=0.5`` the batch must be done 1.5 s after it starts. Two workers:

* jobs 0 and 2 (0.05 s) succeed;
* jobs 1 and 3 (60 s) are cancelled by ``record_timeout=1.0``: status ``timed_out``;
* jobs 4 and 5 (60 s) start next and are cancelled at the deadline: status ``deadline``;
* jobs 6 and 7 never start, both workers being busy until the deadline: ``deadline``.

The function returns after about 1.5 s, reporting jobs 1 and 3-7, instead of being
killed at 2 s (which would retry the whole batch, successes included). ``logger`` gets a
summary line for the batch and a warning for each reported record.
"""

from __future__ import annotations

import logging
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
    from anybatch.records import SQSRecord

logger = logging.getLogger(__name__)

processor = AsyncBatchProcessor(
    EventType.SQS,
    concurrency=2,
    record_timeout=1.0,  # seconds one record may take
    deadline_margin=0.5,  # seconds kept free before the Lambda timeout
    logger=logger,  # a summary line per batch, and the first 10 reported records
)


async def record_handler(record: SQSRecord) -> str:
    """Run one job; it takes the number of seconds its body says."""
    job = record.json_body
    await anyio.sleep(job["seconds"])  # stands for a call that may hang
    return str(job["job"])


@as_lambda_handler
async def lambda_handler(
    event: dict[str, Any],
    context: Any,
) -> PartialItemFailureResponse:
    """The deadline comes from ``context.get_remaining_time_in_millis()``."""
    return await async_process_partial_response(
        event,
        record_handler,
        processor,
        context=context,
    )
