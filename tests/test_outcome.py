"""Typed outcomes: what a user reads from processor.result."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from anybatch import BatchProcessor, EventType, RecordOutcome, Status, process_partial_response
from anybatch.testing import sqs_event

if TYPE_CHECKING:
    from anybatch.records import SQSRecord


def run(bodies: list[str]) -> BatchProcessor[SQSRecord]:
    def handler(record: SQSRecord) -> int:
        if record.body == "bad":
            raise ValueError("bad record")
        return len(record.body)

    processor = BatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False)
    process_partial_response(sqs_event(bodies), handler, processor)
    return processor


def test_result_lists_succeeded_and_failed_records() -> None:
    result = run(["ok", "bad", "fine"]).result
    assert repr(result) == "BatchResult(succeeded=2, failed=1)"
    assert [o.index for o in result.succeeded] == [0, 2]
    assert [o.index for o in result.failed] == [1]
    assert not result.all_failed
    assert len(result[1:]) == 2
    assert [o.result for o in result[::2]] == [2, 4]


def test_all_failed_and_empty_batches() -> None:
    assert run(["bad", "bad"]).result.all_failed
    assert not run([]).result.all_failed


def test_outcome_exposes_exc_info_of_its_failure() -> None:
    ok, failed = run(["ok", "bad"]).result
    assert ok.exc_info == (None, None, None)
    exc_type, exc, tb = failed.exc_info
    assert exc_type is ValueError
    assert str(exc) == "bad record"
    assert tb is not None


def test_outcome_repr_says_status_and_detail() -> None:
    ok, failed = run(["ok", "bad"]).result
    assert repr(ok) == (
        "RecordOutcome(index=0, identifier='00000000-0000-4000-8000-000000000000', "
        "status=success, result=2)"
    )
    assert "status=failed, exception=ValueError('bad record')" in repr(failed)


def test_outcomes_are_immutable_and_compare_by_value() -> None:
    outcome = run(["ok"]).result[0]
    with pytest.raises(AttributeError, match="immutable"):
        outcome.status = Status.FAILED
    same = RecordOutcome(0, outcome.identifier, Status.SUCCESS, outcome.record, 2)
    assert same == outcome
    assert same != RecordOutcome(0, outcome.identifier, Status.SUCCESS, outcome.record, 3)
    assert (same == "other") is False


def test_result_before_any_batch_says_so() -> None:
    from anybatch import ProcessorStateError

    with pytest.raises(ProcessorStateError, match="no batch"):
        _ = BatchProcessor(EventType.SQS).result
