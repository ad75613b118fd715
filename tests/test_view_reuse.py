"""A warm processor re-uses the views of its previous batch that nothing holds any more.

What users rely on: a record view a handler kept (in a list, a closure, an exception), a kept
result, or ``success_messages`` still shows its own record after later invocations; and a
re-used view answers for its new record in everything, its cached JSON body included.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

import anybatch
from anybatch.testing import kafka_event, kafka_record, sqs_event

if TYPE_CHECKING:
    from anybatch.records import KafkaEventRecord, SQSRecord


@pytest.fixture(autouse=True)
def reuse_small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # Batches of any size re-use views here, so that small batches show the rules.
    monkeypatch.setattr(anybatch._view, "REUSE_FROM", 1)


def _event(prefix: str, n: int) -> dict[str, Any]:
    return sqs_event(json.dumps({"n": f"{prefix}{i}"}) for i in range(n))


def _bodies(views: list[SQSRecord]) -> list[str]:
    return [view.body for view in views]


def test_views_a_handler_kept_still_show_their_records() -> None:
    processor = anybatch.BatchProcessor(anybatch.EventType.SQS)
    kept: list[SQSRecord] = []
    seen: list[Any] = []

    def keep_every_other(record: SQSRecord) -> None:
        seen.append(record.json_body["n"])
        if int(record.json_body["n"][1:]) % 2 == 0:
            kept.append(record)

    anybatch.process_partial_response(_event("a", 6), keep_every_other, processor)
    first = [(view.message_id, view.body) for view in kept]
    for prefix in "bcd":
        anybatch.process_partial_response(_event(prefix, 6), keep_every_other, processor)
    assert [(view.message_id, view.body) for view in kept[:3]] == first
    assert [view.json_body["n"] for view in kept] == [
        f"{prefix}{i}" for prefix in "abcd" for i in (0, 2, 4)
    ]
    assert seen == [f"{prefix}{i}" for prefix in "abcd" for i in range(6)]


def test_a_reused_view_parses_its_own_body() -> None:
    processor = anybatch.BatchProcessor(anybatch.EventType.SQS)
    parsed: list[Any] = []
    ids: list[int] = []

    def handler(record: SQSRecord) -> None:
        parsed.append(record.json_body["n"])  # cached on the view: per record, not per view
        parsed.append(record.json_body["n"])
        ids.append(id(record))

    anybatch.process_partial_response(_event("a", 3), handler, processor)
    anybatch.process_partial_response(_event("b", 3), handler, processor)
    assert parsed == ["a0", "a0", "a1", "a1", "a2", "a2", "b0", "b0", "b1", "b1", "b2", "b2"]
    assert ids[:3] == ids[3:], "the second batch re-used the first batch's views"


def test_a_kept_result_and_its_success_messages_keep_their_records() -> None:
    processor = anybatch.BatchProcessor(anybatch.EventType.SQS)
    with processor(_event("a", 3)["Records"], lambda record: None):
        processor.process()
    result, successes = processor.result, processor.success_messages
    anybatch.process_partial_response(_event("b", 4), lambda record: None, processor)
    assert [outcome.record.json_body["n"] for outcome in result] == ["a0", "a1", "a2"]
    assert [view.json_body["n"] for view in successes] == ["a0", "a1", "a2"]


def test_a_failed_records_view_stays_with_its_exception() -> None:
    processor = anybatch.BatchProcessor(anybatch.EventType.SQS, raise_on_entire_batch_failure=False)

    def fail(record: SQSRecord) -> None:
        raise ValueError(record)

    response = anybatch.process_partial_response(_event("a", 2), fail, processor)
    assert len(response["batchItemFailures"]) == 2
    errors = [outcome.exception for outcome in processor.result]
    anybatch.process_partial_response(_event("b", 2), lambda record: None, processor)
    assert [error.args[0].json_body["n"] for error in errors if error] == ["a0", "a1"]


@pytest.mark.parametrize("sizes", [(3, 5), (5, 3), (4, 4, 1, 6)])
def test_batches_of_other_sizes(sizes: tuple[int, ...]) -> None:
    processor = anybatch.BatchProcessor(anybatch.EventType.SQS)
    got: list[str] = []
    for round_, n in enumerate(sizes):
        got.clear()
        anybatch.process_partial_response(
            _event(f"r{round_}-", n), lambda record: got.append(record.json_body["n"]), processor
        )
        assert got == [f"r{round_}-{i}" for i in range(n)]


@pytest.mark.anyio
async def test_async_batches_reuse_and_keep_alike() -> None:
    processor = anybatch.AsyncBatchProcessor(anybatch.EventType.SQS, concurrency=3)
    kept: list[SQSRecord] = []
    got: list[str] = []

    async def handler(record: SQSRecord) -> None:
        got.append(record.json_body["n"])
        if record.json_body["n"].endswith("1"):
            kept.append(record)

    for prefix in "abc":
        await anybatch.async_process_partial_response(_event(prefix, 4), handler, processor)
    assert sorted(got) == sorted(f"{p}{i}" for p in "abc" for i in range(4))
    assert [view.json_body["n"] for view in kept] == ["a1", "b1", "c1"]


def test_kafka_views_decode_their_own_headers() -> None:
    processor = anybatch.BatchProcessor(anybatch.EventType.Kafka)
    seen: list[tuple[bytes | None, bytes | None]] = []

    def handler(record: KafkaEventRecord) -> None:
        seen.append((record.get_header_value("id"), record.get_header_value("id")))

    for round_ in range(3):
        event = kafka_event([])
        event["records"] = {
            "orders-0": [
                kafka_record(f"v{i}", offset=i, headers={"id": f"{round_}-{i}"}) for i in range(3)
            ]
        }
        anybatch.process_partial_response(event, handler, processor)
    assert seen == [(f"{r}-{i}".encode(),) * 2 for r in range(3) for i in range(3)]


def test_a_record_changed_in_place_between_batches_is_read_afresh() -> None:
    # The same event dict, its records changed in place: a re-used view must not answer
    # from what it cached of the previous batch.
    processor = anybatch.BatchProcessor(anybatch.EventType.SQS)
    event = _event("a", 2)
    got: list[Any] = []
    anybatch.process_partial_response(event, lambda r: got.append(r.json_body["n"]), processor)
    for record in event["Records"]:
        record["body"] = json.dumps({"n": "changed"})
    anybatch.process_partial_response(event, lambda r: got.append(r.json_body["n"]), processor)
    assert got == ["a0", "a1", "changed", "changed"]


def test_a_kafka_record_changed_in_place_between_batches_decodes_its_new_headers() -> None:
    processor = anybatch.BatchProcessor(anybatch.EventType.Kafka)
    event = kafka_event([])
    event["records"] = {"orders-0": [kafka_record("v", headers={"id": "first"})]}
    seen: list[bytes | None] = []
    anybatch.process_partial_response(
        event, lambda r: seen.append(r.get_header_value("id")), processor
    )
    event["records"]["orders-0"][0]["headers"] = [{"id": list(b"second")}]
    anybatch.process_partial_response(
        event, lambda r: seen.append(r.get_header_value("id")), processor
    )
    assert seen == [b"first", b"second"]


@pytest.mark.parametrize("size", [19, 20])
def test_only_batches_of_twenty_records_or_more_reuse_views(
    size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Re-use costs a small batch more than it saves (measured: see anybatch._view).
    monkeypatch.setattr(anybatch._view, "REUSE_FROM", 20)
    made: list[str] = []
    make = anybatch._view.DictWrapper.__init__

    def counted(view: Any, data: Any) -> None:
        made.append(type(view).__name__)
        make(view, data)

    monkeypatch.setattr(anybatch._view.DictWrapper, "__init__", counted)
    processor = anybatch.BatchProcessor(anybatch.EventType.SQS)
    bodies: list[str] = []

    def handler(record: SQSRecord) -> None:
        bodies.append(record.json_body["n"])

    anybatch.process_partial_response(_event("a", size), handler, processor)
    assert made.count("SQSRecord") == size
    made.clear()
    anybatch.process_partial_response(_event("b", size), handler, processor)
    assert made.count("SQSRecord") == (0 if size >= 20 else size)
    assert bodies == [f"{prefix}{i}" for prefix in "ab" for i in range(size)]
