"""The floors: what a user could write by hand for the same job, with no library at all.

Each floor takes the same event and calls the same record handler as anybatch and the
incumbent, and returns the same response, a ``batchItemFailures`` list:

* sync: a loop calling the handler in ``try/except``, noting each record that raised;
* async: the same loop in an ``async def``, awaiting each record in turn, run on one event
  loop reused across invocations (as a warm Lambda keeps it);
* Kafka: the same two, over the records of every ``"<topic>-<partition>"``, with Kafka's
  identifier (partition and offset) for a failure.

The Lambda handlers take a context, as Lambda passes one; the floor has no use for it (no
deadline to keep). This module imports nothing but asyncio, so it is also the cold-start
floor: ``bench_floor.py`` imports it in a fresh process, next to the same script importing
anybatch or the incumbent, and runs one batch through ``sqs_async``.
"""

from __future__ import annotations

import asyncio


def sqs_sync(record_handler):
    """The sync floor for SQS (and any ``Records`` event identified by ``messageId``)."""

    def lambda_handler(event, context):
        failures = []
        for record in event["Records"]:
            try:
                record_handler(record)
            except Exception:
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    return lambda_handler


def sqs_async(record_handler, loop=None):
    """The async floor for SQS: one reused loop awaits each record in turn."""
    loop = loop or asyncio.new_event_loop()

    async def batch(event, context):
        failures = []
        for record in event["Records"]:
            try:
                await record_handler(record)
            except Exception:
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    def lambda_handler(event, context):
        return loop.run_until_complete(batch(event, context))

    return lambda_handler


def kafka_sync(record_handler):
    """The sync floor for Kafka: every partition's records in turn."""

    def lambda_handler(event, context):
        failures = []
        for records in event["records"].values():
            for record in records:
                try:
                    record_handler(record)
                except Exception:
                    failures.append(
                        {
                            "itemIdentifier": {
                                "partition": f"{record['topic']}-{record['partition']}",
                                "offset": record["offset"],
                            }
                        }
                    )
        return {"batchItemFailures": failures}

    return lambda_handler


def kafka_async(record_handler, loop=None):
    """The async floor for Kafka: one reused loop awaits each record in turn (so in order)."""
    loop = loop or asyncio.new_event_loop()

    async def batch(event, context):
        failures = []
        for records in event["records"].values():
            for record in records:
                try:
                    await record_handler(record)
                except Exception:
                    failures.append(
                        {
                            "itemIdentifier": {
                                "partition": f"{record['topic']}-{record['partition']}",
                                "offset": record["offset"],
                            }
                        }
                    )
        return {"batchItemFailures": failures}

    def lambda_handler(event, context):
        return loop.run_until_complete(batch(event, context))

    return lambda_handler
