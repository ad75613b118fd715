"""Firehose data transformation: every record answered once, in order, with its data."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anybatch import (
    AsyncBatchProcessor,
    BatchProcessingError,
    BatchProcessor,
    EventType,
    FailureResponse,
    InvalidEventError,
    ResponseTooLargeError,
    Status,
    async_process_partial_response,
    process_partial_response,
)
from anybatch.records import DROP, FirehoseRecord, FirehoseResult
from anybatch.testing import fake_lambda_context, firehose_event, firehose_record


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def ids(event: dict[str, Any]) -> list[str]:
    return [r["recordId"] for r in event["records"]]


def transform(record: FirehoseRecord) -> object:
    """Each payload says what the handler returns."""
    order = record.data_as_json()
    what = order["return"]
    if what == "raise":
        raise ValueError("cannot transform")
    if what == "drop":
        return DROP
    if what == "bytes":
        return b"\x00raw"
    if what == "text":
        return "text ✓"
    if what == "none":
        return None
    if what == "keys":
        return FirehoseResult({"id": order["id"]}, partition_keys={"customer": "c-1"})
    if what == "unencodable":
        return {1, 2}  # a set is not JSON
    return {"id": order["id"], "ok": True}


def test_the_response_answers_every_record_in_order_exact_to_the_field() -> None:
    payloads = [
        {"id": 0, "return": "json"},
        {"id": 1, "return": "drop"},
        {"id": 2, "return": "raise"},
        {"id": 3, "return": "bytes"},
        {"id": 4, "return": "text"},
        {"id": 5, "return": "none"},
        {"id": 6, "return": "keys"},
    ]
    event = firehose_event(payloads)
    original = [r["data"] for r in event["records"]]
    response: Any = process_partial_response(event, transform, BatchProcessor(EventType.Firehose))
    rid = ids(event)
    assert response == {
        "records": [
            {"recordId": rid[0], "result": "Ok", "data": b64('{"id":0,"ok":true}\n')},
            {"recordId": rid[1], "result": "Dropped", "data": original[1]},
            {"recordId": rid[2], "result": "ProcessingFailed", "data": original[2]},
            {"recordId": rid[3], "result": "Ok", "data": b64(b"\x00raw")},
            {"recordId": rid[4], "result": "Ok", "data": b64("text ✓")},
            {"recordId": rid[5], "result": "Ok", "data": original[5]},
            {
                "recordId": rid[6],
                "result": "Ok",
                "data": b64('{"id":6}\n'),
                "metadata": {"partitionKeys": {"customer": "c-1"}},
            },
        ]
    }


@pytest.mark.anyio
async def test_async_handlers_on_either_backend_answer_the_same() -> None:
    event = firehose_event([{"id": i, "return": "raise" if i == 1 else "json"} for i in range(3)])

    async def handler(record: FirehoseRecord) -> object:
        await anyio.lowlevel.checkpoint()
        return transform(record)

    response: Any = await async_process_partial_response(
        event, handler, AsyncBatchProcessor(EventType.Firehose)
    )
    assert [r["result"] for r in response["records"]] == ["Ok", "ProcessingFailed", "Ok"]
    assert [r["recordId"] for r in response["records"]] == ids(event)


def test_a_value_that_cannot_be_encoded_fails_its_record_alone() -> None:
    event = firehose_event([{"id": 0, "return": "unencodable"}, {"id": 1, "return": "json"}])
    reported: list[BaseException] = []

    class Watching(BatchProcessor[FirehoseRecord]):
        def failure_handler(self, record: Any, exception: Any) -> FailureResponse:
            reported.append(exception[1])
            return super().failure_handler(record, exception)

    processor = Watching(EventType.Firehose)
    response: Any = process_partial_response(event, transform, processor)
    assert [r["result"] for r in response["records"]] == ["ProcessingFailed", "Ok"]
    assert processor.result[0].status is Status.FAILED
    assert isinstance(reported[0], TypeError)


@pytest.mark.parametrize(
    "keys", [{"customer": 1}, {"": "x"}, ["customer"]], ids=["int value", "empty name", "list"]
)
def test_partition_keys_that_firehose_would_refuse_fail_the_record(keys: Any) -> None:
    event = firehose_event([{"id": 0}])

    def handler(record: FirehoseRecord) -> object:
        return FirehoseResult(b"x", partition_keys=keys)

    processor = BatchProcessor(EventType.Firehose, raise_on_entire_batch_failure=False)
    response: Any = process_partial_response(event, handler, processor)
    assert response["records"][0]["result"] == "ProcessingFailed"
    assert "metadata" not in response["records"][0]


def test_every_record_failing_raises_unless_asked_not_to() -> None:
    event = firehose_event([{"id": 0, "return": "raise"}, {"id": 1, "return": "raise"}])
    with pytest.raises(BatchProcessingError):
        process_partial_response(event, transform, BatchProcessor(EventType.Firehose))
    processor = BatchProcessor(EventType.Firehose, raise_on_entire_batch_failure=False)
    response: Any = process_partial_response(event, transform, processor)
    assert [r["result"] for r in response["records"]] == ["ProcessingFailed"] * 2


@pytest.mark.anyio
async def test_at_the_deadline_unfinished_records_are_processing_failed_in_time() -> None:
    event = firehose_event([{"id": i} for i in range(8)])

    async def slow(record: FirehoseRecord) -> bytes:
        if record.data_as_json()["id"] >= 2:
            await anyio.sleep(5)
        return b"done"

    processor = AsyncBatchProcessor(EventType.Firehose, deadline_margin=0.0, concurrency=4)
    started = time.monotonic()
    response: Any = await async_process_partial_response(
        event, slow, processor, context=fake_lambda_context(0.2)
    )
    assert time.monotonic() - started < 1.0
    assert [r["result"] for r in response["records"]] == ["Ok"] * 2 + ["ProcessingFailed"] * 6
    assert [r["recordId"] for r in response["records"]] == ids(event)
    assert all(r["data"] == b64(b"done") for r in response["records"][:2])


def test_a_response_over_lambdas_limit_is_refused_with_its_size() -> None:
    event = firehose_event([{"id": i} for i in range(4)])

    def inflate(record: FirehoseRecord) -> bytes:
        return b"x" * 2_000_000  # 4 x 2.7 MB of base64: over 6 MB

    with pytest.raises(
        ResponseTooLargeError, match=r"would be 10,66\d,\d+ bytes, over .*6,291,456"
    ):
        process_partial_response(event, inflate, BatchProcessor(EventType.Firehose))


def test_a_response_just_under_the_limit_is_returned() -> None:
    event = firehose_event([{"id": 0}])

    def big(record: FirehoseRecord) -> bytes:
        return b"x" * 4_500_000  # 6,000,000 bytes of base64

    response: Any = process_partial_response(event, big, BatchProcessor(EventType.Firehose))
    assert len(json.dumps(response)) < 6 * 1024 * 1024


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("records"), "the event has no 'records' list"),
        (lambda e: e.update(records={}), "the event's 'records' must be a list"),
        (lambda e: e["records"][1].pop("recordId"), "record 1 has no 'recordId'"),
        (lambda e: e["records"][1].update(recordId=""), "record 1 has an unusable"),
        (lambda e: e["records"][1].update(data=None), r"record 1 \(.*\) has no base64 'data'"),
        (
            lambda e: e["records"][1].update(recordId=e["records"][0]["recordId"]),
            "record 1 repeats the recordId",
        ),
        (lambda e: e["records"].append(7), "record 2 must be an object"),
    ],
)
def test_a_malformed_event_is_refused_before_any_handler_runs(change: Any, message: str) -> None:
    event = firehose_event([{"id": 0}, {"id": 1}])
    change(event)
    calls: list[object] = []
    with pytest.raises(InvalidEventError, match=message):
        process_partial_response(event, calls.append, BatchProcessor(EventType.Firehose))
    assert calls == []


@pytest.mark.parametrize(
    "data",
    ["%%% not base64 %%%", "$$$$aGk=", "aGk", "aGk=aGk=", "aGk===", "aGk\n", "é"],
    ids=[
        "text",
        "junk-then-base64",
        "no-padding",
        "inner-padding",
        "extra-padding",
        "newline",
        "non-ascii",
    ],
)
def test_data_that_is_not_strict_base64_is_refused_naming_the_record(data: str) -> None:
    # Answered "Ok" as it came, it would make Firehose reject the whole response.
    event = firehose_event([{"id": 0}, {"id": 1}])
    event["records"][1]["data"] = data
    calls: list[object] = []
    with pytest.raises(InvalidEventError, match=r"record 1 \(.*\) has a 'data' that is not base64"):
        process_partial_response(event, calls.append, BatchProcessor(EventType.Firehose))
    assert calls == []


@pytest.mark.anyio
async def test_data_that_is_not_base64_is_refused_on_the_awaited_path_too() -> None:
    event = firehose_event([{"id": 0}, {"id": 1}])
    event["records"][0]["data"] = "%%% not base64 %%%"

    async def handler(record: FirehoseRecord) -> None:
        await anyio.lowlevel.checkpoint()

    with pytest.raises(InvalidEventError, match="record 0") as raised:
        await async_process_partial_response(
            event, handler, AsyncBatchProcessor(EventType.Firehose)
        )
    assert raised.value.index == 0


@pytest.mark.parametrize(
    "data", ["", "aA==", "aGk=", "aGVsbG8h"], ids=["empty", "==", "=", "unpadded"]
)
def test_strict_base64_data_of_any_padding_is_kept_as_it_came(data: str) -> None:
    event = firehose_event([{"id": 0}])
    event["records"][0]["data"] = data
    response: Any = process_partial_response(
        event, lambda r: None, BatchProcessor(EventType.Firehose)
    )
    assert response["records"][0]["data"] == data


def test_an_event_without_a_type_is_read_as_firehose() -> None:
    event = firehose_event([{"id": 0, "return": "drop"}])
    response: Any = process_partial_response(event, transform, BatchProcessor())
    assert response["records"][0]["result"] == "Dropped"


def test_the_view_reads_every_field() -> None:
    raw = firehose_record({"a": 1}, index=3, kinesis_metadata=True)
    record = FirehoseRecord(raw)
    assert record.record_id == raw["recordId"]
    assert record.approximate_arrival_timestamp == raw["approximateArrivalTimestamp"]
    assert record.data == raw["data"]
    assert record.data_as_bytes() == b'{"a": 1}'
    assert record.data_as_text() == '{"a": 1}'
    assert record.data_as_json() == {"a": 1}
    metadata = record.kinesis_record_metadata
    assert metadata is not None
    assert metadata.shard_id == "shardId-000000000000"
    assert metadata.partition_key == "partition-3"
    assert metadata.sequence_number.startswith("4959")
    assert metadata.subsequence_number == 0
    assert metadata.approximate_arrival_timestamp == raw["approximateArrivalTimestamp"]
    assert FirehoseRecord(firehose_record("x")).kinesis_record_metadata is None


def test_a_model_reads_the_decoded_data_and_a_poison_record_fails_alone() -> None:
    from pydantic import BaseModel, Json

    from anybatch.models import FirehoseRecordModel

    class Click(BaseModel):
        page: str

    class ClickRecord(FirehoseRecordModel):
        data: Json[Click]

    event = firehose_event([{"page": "home"}, "not json", {"page": "cart"}], kinesis_metadata=True)

    def handler(record: ClickRecord) -> object:
        return {"page": record.data.page.upper()}

    response: Any = process_partial_response(
        event, handler, BatchProcessor(EventType.Firehose, model=ClickRecord)
    )
    assert [r["result"] for r in response["records"]] == ["Ok", "ProcessingFailed", "Ok"]
    assert base64.b64decode(response["records"][2]["data"]) == b'{"page":"CART"}\n'


def test_the_base_model_keeps_the_data_as_bytes() -> None:
    from anybatch.models import FirehoseRecordModel

    model = FirehoseRecordModel.model_validate(firehose_record(b"\x01\x02", kinesis_metadata=True))
    assert model.data == b"\x01\x02"
    assert model.kinesisRecordMetadata is not None
    assert model.kinesisRecordMetadata.shardId == "shardId-000000000000"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(["json", "drop", "raise", "bytes", "none", "keys"]), max_size=30),
    st.integers(1, 8),
)
def test_each_record_is_answered_once_in_input_order(returns: list[str], concurrency: int) -> None:
    event = firehose_event([{"id": i, "return": what} for i, what in enumerate(returns)])
    processor = BatchProcessor(
        EventType.Firehose, concurrency=concurrency, raise_on_entire_batch_failure=False
    )
    response: Any = process_partial_response(event, transform, processor)
    answers = response["records"]
    assert [a["recordId"] for a in answers] == ids(event)
    expected = {"drop": "Dropped", "raise": "ProcessingFailed"}
    assert [a["result"] for a in answers] == [expected.get(w, "Ok") for w in returns]
    for answer in answers:
        base64.b64decode(answer["data"], validate=True)  # always valid base64
        assert set(answer) <= {"recordId", "result", "data", "metadata"}
