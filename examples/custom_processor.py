"""Build your own processor: keep the results of the records that succeeded, store them.

The extension point Powertools documents, unchanged: subclass ``BasePartialProcessor``
and implement ``_prepare()`` (before the batch), ``_process_record(record)`` (each
record) and ``_clean()`` (after the batch). anybatch drives ``_process_record`` with the
processor's concurrency, ordering and deadline rules, and builds the partial batch
response itself. Run::

    anybatch run examples/events/classic.json examples.custom_processor:lambda_handler

Here the results go to a SQLite table (``RESULTS_DB``, an in-memory database by
default), in one transaction per batch. The invoice with a negative amount and the body
that is not JSON fail and are reported.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import sqlite3
import sys
from typing import TYPE_CHECKING, Any, ClassVar

from anybatch import (
    BasePartialProcessor,
    FailureResponse,
    SuccessResponse,
    process_partial_response,
)

if TYPE_CHECKING:
    from anybatch import PartialItemFailureResponse

logger = logging.getLogger(__name__)

Record = dict[str, Any]


class MyPartialProcessor(BasePartialProcessor[Record]):
    """Process each record and store the results of those that succeeded in a table."""

    DEFAULT_RESPONSE: ClassVar[PartialItemFailureResponse] = {"batchItemFailures": []}

    def __init__(self, database: str) -> None:
        self.database = database
        default = self.DEFAULT_RESPONSE
        self.batch_response: PartialItemFailureResponse = copy.deepcopy(default)
        self.results: list[Any] = []
        super().__init__()  # no event type: it comes from the batch

    def _prepare(self) -> None:
        # Called once, before processing: open the table, forget the previous results.
        self.connection = sqlite3.connect(self.database)
        self.connection.execute("CREATE TABLE IF NOT EXISTS results (result TEXT)")
        self.results.clear()
        self.success_messages.clear()

    def response(self) -> PartialItemFailureResponse:
        """The partial batch response (anybatch builds it from the outcomes)."""
        return self.batch_response

    def _clean(self) -> None:
        # Called once, after every record: write the successes in one transaction.
        with self.connection:
            self.connection.executemany(
                "INSERT INTO results VALUES (?)",
                [(json.dumps(result),) for result in self.results],
            )
        self.connection.close()

    def _process_record(self, record: Record) -> SuccessResponse | FailureResponse:
        # How one record is processed; self.handler is the record handler.
        try:
            result = self.handler(record)
            return self.success_handler(record, result)
        except Exception as exc:
            logger.error("record %s failed: %s", record.get("messageId"), exc)
            return self.failure_handler(record, sys.exc_info())

    def success_handler(self, record: Record, result: Any) -> SuccessResponse:
        """Keep the result of each record that succeeded, for _clean."""
        self.success_messages.append(record)
        self.results.append(result)
        return SuccessResponse("success", result, record)

    async def _async_process_record(
        self,
        record: Record,
    ) -> SuccessResponse | FailureResponse:
        raise NotImplementedError()


processor = MyPartialProcessor(os.environ.get("RESULTS_DB", ":memory:"))


def record_handler(record: Record) -> dict[str, Any]:
    """Read one invoice from the raw record (a dict, as Powertools gives it).

    A body that is not JSON, or a negative amount, raises.
    """
    invoice = json.loads(record["body"])
    if invoice["amount"] < 0:
        raise ValueError(f"{invoice['invoice']}: negative amount {invoice['amount']}")
    return {"invoice": invoice["invoice"], "cents": round(invoice["amount"] * 100)}


def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    """The function's entry point."""
    return process_partial_response(event, record_handler, processor, context)
