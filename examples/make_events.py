"""Build the sample events of the examples with ``anybatch.testing`` and save them as JSON.

Every file in ``examples/events/`` comes from here, so the events have the exact shape Lambda
delivers and deterministic identifiers (the tests assert them). Regenerate them with::

    python -m examples.make_events

``tests/test_examples.py`` checks that the saved files match what this module builds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from anybatch.testing import dynamodb_event, firehose_event, kafka_event, kinesis_event, sqs_event

EVENTS_DIR = Path(__file__).parent / "events"


ORDER_STEPS: list[dict[str, Any]] = [
    {"order": "order-a", "step": "created"},
    {"order": "order-b", "step": "created"},
    {"order": "order-a", "step": "paid", "card": "declined"},
    {"order": "order-c", "step": "created"},
    {"order": "order-a", "step": "shipped"},
    {"order": "order-b", "step": "paid", "card": "accepted"},
    {"order": "order-c", "step": "paid", "card": "declined"},
    {"order": "order-b", "step": "shipped"},
    {"order": "order-c", "step": "shipped"},
]

READINGS: list[dict[str, Any]] = [
    {"device": "sensor-1", "celsius": 21.5},
    {"device": "sensor-2", "celsius": 21.0},
    {"device": "sensor-1", "celsius": None},
    {"device": "sensor-3", "celsius": 19.0},
    {"device": "sensor-1", "celsius": 22.0},
    {"device": "sensor-2", "celsius": 23.0},
    {"device": "sensor-3", "celsius": 1000.0},
]


PAYMENTS: list[dict[str, Any]] = [
    {"id": "pay-1", "customer": "cust-a", "amount": 30},
    {"id": "pay-2", "customer": "cust-b", "amount": 12},
    {"id": "pay-3", "customer": "cust-a", "amount": 0},
    {"id": "pay-4", "customer": "cust-c", "amount": 7},
    {"id": "pay-5", "customer": "cust-a", "amount": 5},
    {"id": "pay-6", "customer": "cust-c", "amount": -2},
]
#: A customer's payments go to one partition, as the producer's key partitioner does.
PAYMENT_PARTITIONS = {"cust-a": 0, "cust-b": 1, "cust-c": 1}

CLICKS: list[Any] = [
    {"page": "/Home", "country": "PT", "at": "2026-12-01T10:00:00Z", "agent": "browser"},
    {"page": "/Cart", "country": "FR", "at": "2026-12-01T10:00:01Z", "agent": "bot"},
    "not json",
    {"page": "/Checkout", "country": "PT", "at": "2026-12-01T10:00:03Z", "agent": "browser"},
]


def _kafka_payments() -> dict[str, Any]:
    event = kafka_event(
        PAYMENTS,
        topic="payments",
        partitions=[PAYMENT_PARTITIONS[p["customer"]] for p in PAYMENTS],
        keys=[p["customer"] for p in PAYMENTS],
    )
    for group in event["records"].values():
        for record in group:
            record["headers"] = [{"source": list(b"checkout")}]
    return event


def build_events() -> dict[str, dict[str, Any]]:
    """Every sample event, by file name."""
    return {
        # sqs_handler.py: orders; quantities 0 and -1 fail.
        "sqs.json": sqs_event(
            {"id": f"order-{i}", "quantity": quantity}
            for i, quantity in enumerate([2, 1, 0, 5, -1, 3])
        ),
        # classic_handler.py and custom_hooks.py: invoices; a negative amount and a body
        # that is not JSON (a "poison pill") fail.
        "classic.json": sqs_event(
            [
                {"invoice": "inv-100", "amount": 120},
                {"invoice": "inv-101", "amount": -5},
                "not json",
                {"invoice": "inv-103", "amount": 40},
                {"invoice": "inv-104", "amount": 0},
            ]
        ),
        # fifo_handler.py: order steps, one message group per order; two payments are declined.
        "fifo.json": sqs_event(ORDER_STEPS, group_ids=[step["order"] for step in ORDER_STEPS]),
        # kinesis_handler.py: temperature readings, partition key = device; a missing and an
        # impossible reading fail.
        "kinesis.json": kinesis_event(READINGS, partition_keys=[r["device"] for r in READINGS]),
        # kafka_handler.py: payments keyed by customer; two have a bad amount.
        "kafka.json": _kafka_payments(),
        # firehose_transform.py: clicks; one from a bot (dropped), one not JSON (failed).
        "firehose.json": firehose_event(CLICKS),
        # dynamodb_handler.py: a users table; one update stores an invalid e-mail address.
        "dynamodb.json": dynamodb_event(
            [
                {
                    "keys": {"pk": "user#1"},
                    "new_image": {"pk": "user#1", "email": "ana@example.com"},
                },
                {
                    "keys": {"pk": "user#2"},
                    "new_image": {"pk": "user#2", "email": "bo@example.com"},
                },
                {
                    "keys": {"pk": "user#1"},
                    "old_image": {"pk": "user#1", "email": "ana@example.com"},
                    "new_image": {"pk": "user#1", "email": "not-an-address"},
                },
                {
                    "keys": {"pk": "user#2"},
                    "old_image": {"pk": "user#2", "email": "bo@example.com"},
                },
                {
                    "keys": {"pk": "user#1"},
                    "old_image": {"pk": "user#1", "email": "not-an-address"},
                    "new_image": {"pk": "user#1", "email": "ana@example.org"},
                },
                {
                    "keys": {"pk": "user#3"},
                    "new_image": {"pk": "user#3", "email": "cy@example.com"},
                },
            ]
        ),
        # deadline_handler.py: jobs that take the given number of seconds.
        "deadline.json": sqs_event(
            {"job": f"job-{i}", "seconds": seconds}
            for i, seconds in enumerate([0.05, 60, 0.05, 60, 60, 60, 0.05, 0.05])
        ),
    }


def main() -> None:
    """Write every event to ``examples/events/<name>``."""
    EVENTS_DIR.mkdir(exist_ok=True)
    for name, event in build_events().items():
        (EVENTS_DIR / name).write_text(json.dumps(event, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {EVENTS_DIR / name}")


if __name__ == "__main__":
    main()
