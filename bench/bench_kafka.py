"""Kafka: 10,000 records, against Powertools' ``EventType.Kafka``, side by side.

Both read the same MSK event: 10,000 records in 10 partitions of one topic, each with a key
(100 keys) and a JSON value. The headline rows time a no-op handler, as the engine benchmark
does: what each library costs per record. The info rows time a handler that decodes each value
(base64, then JSON), the first thing a real Kafka handler does, and which costs the same in
both. Two shapes, each timed as one call through the documented entry point:

* blocking: ``process_partial_response(event, handler, BatchProcessor(EventType.Kafka))`` with a
  sync handler, for both;
* async: an ``async def`` handler; anybatch ``await async_process_partial_response(...)`` inside
  ``asyncio.run``, Powertools' blocking ``async_process_partial_response`` (its own
  ``asyncio.run`` and a task per record).

anybatch keeps each key's records in order within its partition (Kafka's promise); Powertools
runs them in a row (sync) or all at once (async).
"""

from __future__ import annotations

import asyncio
from typing import Any

from _common import Row, fmt_ratio, info_row, interleave, main, ratio_row, say
from aws_lambda_powertools.utilities import batch as powertools

import anybatch
from anybatch.testing import kafka_event

N_RECORDS = 10_000
PARTITIONS = 10
KEYS = 100
ROUNDS = 15
#: The async path is where Powertools pays a task per record; its sync path is a bare loop,
#: which anybatch's inline driver matches (as for SQS, bench_sync.py): parity is the goal there.
GOAL = {"sync": 1.0, "async": 0.5}


def noop(record: Any) -> None:
    """A record handler (Powertools passes it as ``record=``)."""


async def async_noop(record: Any) -> None:
    """An async record handler."""


def decoding(record: Any) -> None:
    """Decode the value: anybatch's ``value_as_json()``, Powertools' ``json_value``."""
    if hasattr(record, "value_as_json"):
        record.value_as_json()
    else:
        record.json_value  # noqa: B018 - Powertools' decoded, parsed value


async def async_decoding(record: Any) -> None:
    decoding(record)


def check(response: dict[str, Any], who: str) -> None:
    if response["batchItemFailures"]:
        raise AssertionError(f"{who} reported failures: {response['batchItemFailures'][:3]}")


def run() -> list[Row]:
    event = kafka_event(
        ({"n": i} for i in range(N_RECORDS)),
        topic="payments",
        partitions=lambda i: i % PARTITIONS,
        keys=lambda i: f"key-{i % KEYS}",
    )
    ab_sync = anybatch.BatchProcessor(anybatch.EventType.Kafka)
    pt_sync = powertools.BatchProcessor(powertools.EventType.Kafka)
    ab_async = anybatch.AsyncBatchProcessor(anybatch.EventType.Kafka)
    pt_async = powertools.AsyncBatchProcessor(powertools.EventType.Kafka)

    def cases(sync_handler: Any, async_handler: Any) -> dict[str, Any]:
        def anybatch_sync() -> None:
            check(anybatch.process_partial_response(event, sync_handler, ab_sync), "anybatch")

        def powertools_sync() -> None:
            response = powertools.process_partial_response(event, sync_handler, pt_sync)
            check(response, "Powertools")

        def anybatch_async() -> None:
            response = asyncio.run(
                anybatch.async_process_partial_response(event, async_handler, ab_async)
            )
            check(response, "anybatch")

        def powertools_async() -> None:
            response = powertools.async_process_partial_response(event, async_handler, pt_async)
            check(response, "Powertools")

        return {
            "anybatch sync": anybatch_sync,
            "Powertools sync": powertools_sync,
            "anybatch async": anybatch_async,
            "Powertools async": powertools_async,
        }

    rows: list[Row] = []
    for what, handlers, goals in (
        ("no-op", (noop, async_noop), GOAL),
        ("decoding", (decoding, async_decoding), None),
    ):
        say(
            f"{N_RECORDS:,} Kafka records ({PARTITIONS} partitions, {KEYS} keys), {what} "
            f"handler; best of {ROUNDS} interleaved runs"
        )
        timings = interleave(cases(*handlers), rounds=ROUNDS)
        for name, samples in timings.items():
            say(f"  {name:<17} {samples.describe(N_RECORDS, 'record')}")
        for shape, note in (
            ("sync", "process_partial_response + BatchProcessor(EventType.Kafka), both"),
            (
                "async",
                "Powertools' blocking async_process_partial_response (its own asyncio.run) vs "
                "asyncio.run(anybatch's awaitable)",
            ),
        ):
            name = f"kafka: 10k records, {what} {shape}"
            ab, pt = timings[f"anybatch {shape}"].best, timings[f"Powertools {shape}"].best
            if goals is None:
                rows.append(info_row(name, ab, pt, fmt_ratio(ab / pt), note=note))
            else:
                rows.append(ratio_row(name, ab, pt, goal_max=goals[shape], note=note))
    return rows


if __name__ == "__main__":
    main("Kafka", run)
