"""One rule tells a batch from a FIFO queue, for the processors and the legacy mode alike."""

from __future__ import annotations

from typing import Any

import pytest

from anybatch import EventType
from anybatch._sources.sqs import has_message_groups, is_fifo_batch
from anybatch.sqs import _plan
from anybatch.testing import sqs_event, sqs_record


def fair_queue() -> list[dict[str, Any]]:
    # A standard queue whose messages carry groups.
    return [sqs_record("a", group_id="g"), sqs_record("b", group_id="g", index=1)]


def fifo_without_groups() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = sqs_event(["a", "b"], fifo=True)["Records"]
    for record in records:
        record["attributes"].pop("MessageGroupId", None)
    return records


@pytest.mark.parametrize(
    ("records", "fifo"),
    [
        (sqs_event(["a", "b"])["Records"], False),
        (sqs_event(["a", "b"], fifo=True)["Records"], True),
        (fifo_without_groups(), True),
        (fair_queue(), False),
    ],
    ids=["standard", "fifo", "fifo-arn-only", "fair-queue"],
)
def test_a_batch_is_fifo_by_its_queue_for_every_processor(
    records: list[dict[str, Any]], fifo: bool
) -> None:
    assert is_fifo_batch(records) is fifo
    # The processors skip the rest of a failed group only in a FIFO batch...
    assert EventType.SQS.skips_key_on_failure(records) is fifo
    # ...and the legacy mode reads the same rule, and keeps a fair queue's groups in order
    # too (its deletes stop at the first failure).
    assert _plan.is_fifo_batch(records) is (fifo or has_message_groups(records))
