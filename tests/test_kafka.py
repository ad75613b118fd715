"""Kafka (Amazon MSK and self-managed): records, identifiers, ordering, response, models."""

from __future__ import annotations

import base64
import copy
import logging
import time
from typing import Any, cast

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
    InvalidEventError,
    Status,
    async_process_partial_response,
    process_partial_response,
)
from anybatch.records import KafkaEventRecord
from anybatch.testing import fake_lambda_context, kafka_event, kafka_record


def failures(*pairs: tuple[str, int]) -> dict[str, Any]:
    return {
        "batchItemFailures": [
            {"itemIdentifier": {"partition": partition, "offset": offset}}
            for partition, offset in pairs
        ]
    }


def fail_on(*values: str) -> Any:
    def handler(record: KafkaEventRecord) -> None:
        if record.value_as_text() in values:
            raise ValueError(f"bad {record.value_as_text()}")

    return handler


# --- the event and the response ---------------------------------------------------------------


@pytest.mark.parametrize("self_managed", [False, True], ids=["msk", "self-managed"])
def test_failures_are_reported_by_partition_and_offset(self_managed: bool) -> None:
    event = kafka_event(
        ["a", "bad", "c", "bad"], partitions=[0, 0, 1, 1], self_managed=self_managed
    )
    response = process_partial_response(event, fail_on("bad"), BatchProcessor(EventType.Kafka))
    assert response == failures(("orders-0", 101), ("orders-1", 101))


def test_a_batch_that_succeeds_reports_nothing() -> None:
    event = kafka_event(["a", "b"])
    assert process_partial_response(event, fail_on(), BatchProcessor(EventType.Kafka)) == {
        "batchItemFailures": []
    }


@pytest.mark.anyio
async def test_the_awaited_path_reports_the_same_identifiers() -> None:
    event = kafka_event(["bad", "b", "bad"], partitions=[2, 2, 7])

    async def handler(record: KafkaEventRecord) -> None:
        await anyio.lowlevel.checkpoint()
        if record.value_as_text() == "bad":
            raise ValueError("bad")

    response = await async_process_partial_response(
        event, handler, AsyncBatchProcessor(EventType.Kafka)
    )
    assert response == failures(("orders-2", 100), ("orders-7", 100))


def test_records_are_read_in_the_order_lambda_sends_them() -> None:
    event = {
        "eventSource": "aws:kafka",
        "records": {
            "b-1": [kafka_record("b1", topic="b", partition=1, offset=5)],
            "a-0": [
                kafka_record("a0", topic="a", partition=0, offset=7),
                kafka_record("a1", topic="a", partition=0, offset=8),
            ],
        },
    }
    seen: list[str | None] = []
    processor = BatchProcessor(EventType.Kafka)
    process_partial_response(event, lambda r: seen.append(r.value_as_text()), processor)
    assert seen == ["b1", "a0", "a1"]
    assert [o.identifier for o in processor.result] == [
        {"partition": "b-1", "offset": 5},
        {"partition": "a-0", "offset": 7},
        {"partition": "a-0", "offset": 8},
    ]


def test_an_event_without_a_type_is_read_as_kafka() -> None:
    for self_managed in (False, True):
        event = kafka_event(["bad"], self_managed=self_managed)
        processor = BatchProcessor(raise_on_entire_batch_failure=False)
        response = process_partial_response(event, fail_on("bad"), processor)
        assert response == failures(("orders-0", 100))


def test_the_context_manager_takes_the_flattened_records() -> None:
    event = kafka_event(["a", "bad"], partitions=[3, 4])
    records = [r for group in event["records"].values() for r in group]
    processor = BatchProcessor(EventType.Kafka)
    with processor(records, fail_on("bad")):
        processor.process()
    assert processor.response() == failures(("orders-4", 100))
    # A processor without an event type knows Kafka records too.
    anonymous = BatchProcessor()
    with anonymous(records, fail_on("bad")):
        anonymous.process()
    assert anonymous.response() == failures(("orders-4", 100))


def test_every_record_failing_raises_as_for_the_other_sources() -> None:
    event = kafka_event(["bad", "bad"])
    with pytest.raises(BatchProcessingError):
        process_partial_response(event, fail_on("bad"), BatchProcessor(EventType.Kafka))


def test_the_log_names_a_record_by_partition_and_offset(caplog: pytest.LogCaptureFixture) -> None:
    event = kafka_event(["a", "bad"])
    processor = BatchProcessor(EventType.Kafka, logger=logging.getLogger("kafka-test"))
    with caplog.at_level(logging.WARNING, logger="kafka-test"):
        process_partial_response(event, fail_on("bad"), processor)
    assert "orders-0@101 failed: ValueError: bad bad" in caplog.records[0].getMessage()


# --- malformed events --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "a Kafka event must be an object"),
        ({"eventSource": "aws:kafka"}, "has no 'records' object"),
        ({"eventSource": "aws:kafka", "records": []}, "'records' that is not an object"),
        ({"eventSource": "aws:kafka", "records": {"t-0": {}}}, r"records\['t-0'\] must be a list"),
        ({"eventSource": "aws:kafka", "records": {}}, "'records' object is empty"),
        ({"eventSource": "aws:kafka", "records": {"t-0": []}}, "holds only empty groups"),
    ],
)
def test_an_event_of_another_shape_is_refused(event: Any, message: str) -> None:
    with pytest.raises(InvalidEventError, match=message):
        process_partial_response(event, fail_on(), BatchProcessor(EventType.Kafka))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"topic": None}, "record 1 has no 'topic'"),
        ({"topic": ""}, "record 1 has an unusable \\(''\\) 'topic'"),
        ({"partition": True}, "record 1 has an unusable \\(True\\) 'partition'"),
        ({"partition": "0"}, "record 1 has an unusable \\('0'\\) 'partition'"),
        ({"offset": -1}, "record 1 has an unusable \\(-1\\) 'offset'"),
        ({"offset": None}, "record 1 has no 'offset'"),
        ({"topic": ["t"]}, "record 1 has an unusable \\(\\['t'\\]\\) 'topic'"),
        ({"topic": {"name": "t"}}, "record 1 has an unusable \\(\\{'name': 't'\\}\\) 'topic'"),
        ({"partition": [0]}, "record 1 has an unusable \\(\\[0\\]\\) 'partition'"),
        ({"partition": {"id": 0}}, "record 1 has an unusable \\(\\{'id': 0\\}\\) 'partition'"),
    ],
)
def test_a_record_lambda_could_not_identify_is_refused_before_any_handler_runs(
    change: dict[str, Any], message: str
) -> None:
    event = kafka_event(["a", "b"])
    record = event["records"]["orders-0"][1]
    for name, value in change.items():
        if value is None:
            del record[name]
        else:
            record[name] = value
    calls: list[object] = []
    with pytest.raises(InvalidEventError, match=message) as raised:
        process_partial_response(event, calls.append, BatchProcessor(EventType.Kafka))
    assert raised.value.index == 1
    assert calls == []


def test_a_record_that_is_not_an_object_is_refused() -> None:
    event = kafka_event(["a"])
    event["records"]["orders-0"].append("x")
    with pytest.raises(InvalidEventError, match="record 1 must be an object"):
        process_partial_response(event, fail_on(), BatchProcessor(EventType.Kafka))


# --- the record view ---------------------------------------------------------------------------


def test_the_view_reads_and_decodes_every_field() -> None:
    raw = kafka_record(
        {"id": 7},
        topic="payments",
        partition=3,
        offset=42,
        key="customer-1",
        headers={"traceparent": "00-ab", "kind": b"\x00\x01"},
        timestamp=1_700_000_000_123,
    )
    record = KafkaEventRecord(raw)
    assert (record.topic, record.partition, record.offset) == ("payments", 3, 42)
    assert (record.timestamp, record.timestamp_type) == (1_700_000_000_123, "CREATE_TIME")
    assert record.key == base64.b64encode(b"customer-1").decode()
    assert record.key_as_bytes() == record.decoded_key == b"customer-1"
    assert record.key_as_text() == "customer-1"
    assert record.value_as_bytes() == record.decoded_value == b'{"id": 7}'
    assert record.value_as_text() == '{"id": 7}'
    assert record.value_as_json() == record.json_value == {"id": 7}
    assert record.decoded_headers == {"traceparent": b"00-ab", "kind": b"\x00\x01"}
    assert record.get_header_value("KIND", case_sensitive=False) == b"\x00\x01"
    assert record.get_header_value("KIND") is None
    assert record.key_schema_metadata is None
    assert record.raw_event is raw


def test_a_record_without_key_or_value_reads_as_none() -> None:
    record = KafkaEventRecord(kafka_record(None))
    assert record.key is None
    assert record.key_as_bytes() is None
    assert record.key_as_text() is None
    assert record.value_as_bytes() is None
    assert record.value_as_text() is None
    assert record.value_as_json() is None


def test_a_corrupt_value_fails_its_record_alone() -> None:
    event = kafka_event(["a", "b"])
    event["records"]["orders-0"][0]["value"] = "$$$$aGk="  # lenient base64 would read b"hi"
    processor = BatchProcessor(EventType.Kafka)
    response = process_partial_response(event, lambda r: r.value_as_bytes(), processor)
    assert response == failures(("orders-0", 100))
    assert processor.result[0].status is Status.FAILED


# --- ordering ----------------------------------------------------------------------------------


class Tracker:
    """Notes when each record's handler starts and ends (by value), and how many overlap."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.starts: list[str] = []
        self.spans: dict[str, tuple[float, float]] = {}
        self.fail = fail or set()

    async def __call__(self, record: KafkaEventRecord) -> None:
        value = record.value_as_text() or ""
        self.starts.append(value)
        began = time.monotonic()
        await anyio.sleep(0.02)
        self.spans[value] = (began, time.monotonic())
        if value in self.fail:
            raise ValueError(value)

    def overlap(self, a: str, b: str) -> bool:
        (a0, a1), (b0, b1) = self.spans[a], self.spans[b]
        return a0 < b1 and b0 < a1


@pytest.mark.anyio
async def test_one_key_in_a_partition_runs_in_order_and_other_keys_alongside() -> None:
    # Partition 0: key k1 twice, key k2, two keyless records; partition 1: key k1.
    event = kafka_event(
        ["k1-a", "k1-b", "k2", "none-a", "none-b", "p1-k1"],
        partitions=[0, 0, 0, 0, 0, 1],
        keys=["k1", "k1", "k2", None, None, "k1"],
    )
    track = Tracker()
    await async_process_partial_response(
        event, track, AsyncBatchProcessor(EventType.Kafka, concurrency=10)
    )
    assert not track.overlap("k1-a", "k1-b")
    assert track.spans["k1-a"][1] <= track.spans["k1-b"][0]
    assert not track.overlap("none-a", "none-b")  # keyless records keep partition order
    assert track.overlap("k1-a", "k2")
    assert track.overlap("k1-a", "none-a")
    assert track.overlap("k1-a", "p1-k1")  # the same key in another partition: not ordered


@pytest.mark.anyio
async def test_in_partition_order_runs_each_partition_one_record_at_a_time() -> None:
    event = kafka_event(
        ["a", "b", "c", "x"], partitions=[0, 0, 0, 1], keys=["k1", "k2", None, "k1"]
    )
    track = Tracker()
    source = EventType.Kafka.in_partition_order()
    await async_process_partial_response(event, track, AsyncBatchProcessor(source, concurrency=10))
    assert track.starts.index("a") < track.starts.index("b") < track.starts.index("c")
    assert not track.overlap("a", "b")
    assert not track.overlap("b", "c")
    assert track.overlap("a", "x")
    assert repr(source) == "EventType.Kafka.in_partition_order()"
    assert source.in_partition_order() is source


@pytest.mark.anyio
async def test_every_record_of_a_key_runs_after_one_fails() -> None:
    event = kafka_event(["a", "b", "c"], keys=["k", "k", "k"])
    track = Tracker(fail={"a"})
    response = await async_process_partial_response(
        event, track, AsyncBatchProcessor(EventType.Kafka, concurrency=4)
    )
    assert track.starts == ["a", "b", "c"]
    assert response == failures(("orders-0", 100))


@pytest.mark.anyio
async def test_skipping_the_rest_of_a_key_is_an_opt_in() -> None:
    event = kafka_event(["a", "b", "c"], keys=["k", "k", "j"])
    track = Tracker(fail={"a"})
    processor = AsyncBatchProcessor(EventType.Kafka, concurrency=4, skip_key_on_failure=True)
    response = await async_process_partial_response(event, track, processor)
    assert sorted(track.starts) == ["a", "c"]
    assert response == failures(("orders-0", 100), ("orders-0", 101))
    assert processor.result[1].status is Status.SKIPPED


# Keys Lambda never sends (it sends a base64 string, or no key): each is read as one key, frozen
# as the other sources' keys are, the same way at every concurrency and on either path.
ODD_KEYS = pytest.mark.parametrize(
    "key",
    [["k"], {"id": "1", "region": "eu"}, [{"id": [1]}], {1, 2}, 7],
    ids=["list", "object", "nested", "set", "int"],
)


def odd_key_event(key: object) -> dict[str, Any]:
    """Records a and b share *key* (an object's names in another order for b); c has its own."""
    event = kafka_event(["a", "b", "c"])
    first, second, third = event["records"]["orders-0"]
    first["key"] = key
    if isinstance(key, dict):
        second["key"] = dict(reversed(list(cast("dict[str, Any]", key).items())))
    else:
        second["key"] = copy.deepcopy(key)
    third["key"] = "other"
    return event


def odd_key_expected(skip: bool) -> dict[str, Any]:
    # a fails; b shares its key, so it is skipped only when asked to be.
    return failures(("orders-0", 100), ("orders-0", 101)) if skip else failures(("orders-0", 100))


@ODD_KEYS
@pytest.mark.parametrize("skip", [False, True], ids=["every-record", "skip-key"])
@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_key_of_another_type_is_one_key_at_every_concurrency(
    key: object, skip: bool, concurrency: int
) -> None:
    seen: list[str | None] = []

    def handler(record: KafkaEventRecord) -> None:
        seen.append(record.value_as_text())
        fail_on("a")(record)

    processor = BatchProcessor(EventType.Kafka, concurrency=concurrency, skip_key_on_failure=skip)
    response = process_partial_response(odd_key_event(key), handler, processor)
    assert response == odd_key_expected(skip)
    assert sorted(map(str, seen)) == (["a", "c"] if skip else ["a", "b", "c"])


@pytest.mark.anyio
@ODD_KEYS
@pytest.mark.parametrize("skip", [False, True], ids=["every-record", "skip-key"])
@pytest.mark.parametrize("concurrency", [1, 4])
async def test_a_key_of_another_type_is_one_key_on_the_awaited_path(
    key: object, skip: bool, concurrency: int
) -> None:
    track = Tracker(fail={"a"})
    processor = AsyncBatchProcessor(
        EventType.Kafka, concurrency=concurrency, skip_key_on_failure=skip
    )
    response = await async_process_partial_response(odd_key_event(key), track, processor)
    assert response == odd_key_expected(skip)
    assert sorted(track.starts) == (["a", "c"] if skip else ["a", "b", "c"])


@pytest.mark.anyio
@ODD_KEYS
async def test_records_that_share_a_key_of_another_type_run_in_order(key: object) -> None:
    track = Tracker()
    await async_process_partial_response(
        odd_key_event(key), track, AsyncBatchProcessor(EventType.Kafka, concurrency=10)
    )
    assert track.spans["a"][1] <= track.spans["b"][0]
    assert track.overlap("a", "c")


# --- deadline ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_at_the_deadline_unfinished_records_are_reported_by_their_identifiers() -> None:
    event = kafka_event([str(i) for i in range(6)], keys=["k"] * 6)

    async def slow(record: KafkaEventRecord) -> None:
        await anyio.sleep(0.1)

    processor = AsyncBatchProcessor(EventType.Kafka, deadline_margin=0.0)
    started = time.monotonic()
    response = await async_process_partial_response(
        event, slow, processor, context=fake_lambda_context(0.25)
    )
    assert time.monotonic() - started < 0.6
    reported = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    assert reported == [{"partition": "orders-0", "offset": 100 + i} for i in range(2, 6)]


# --- properties --------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from([None, "a", "b"]), st.booleans()),
        min_size=1,
        max_size=25,
    ),
    st.sampled_from(["key", "partition"]),
    st.integers(1, 6),
)
def test_the_response_lists_each_failed_record_once_and_keys_keep_their_order(
    spec: list[tuple[int, str | None, bool]], order: str, concurrency: int
) -> None:
    event = kafka_event(
        [f"{i}" for i in range(len(spec))],
        partitions=[p for p, _, _ in spec],
        keys=[k for _, k, _ in spec],
    )
    seen: list[int] = []

    def handler(record: KafkaEventRecord) -> None:
        index = int(record.value_as_text() or "")
        seen.append(index)
        if spec[index][2]:
            raise ValueError(index)

    source = EventType.Kafka if order == "key" else EventType.Kafka.in_partition_order()
    processor = BatchProcessor(source, concurrency=concurrency, raise_on_entire_batch_failure=False)
    response = process_partial_response(event, handler, processor)
    # Lambda's shape exactly: a partition string and an int offset, once per failed record.
    flat = [r for group in event["records"].values() for r in group]
    expected = [
        {"itemIdentifier": {"partition": f"orders-{r['partition']}", "offset": r["offset"]}}
        for r in flat
        if spec[int(base64.b64decode(r["value"]))][2]
    ]
    assert response == {"batchItemFailures": expected}
    assert sorted(seen) == list(range(len(spec)))  # every record ran
    # Records of one lane ran in offset order.
    for index, first in enumerate(flat):
        for later in flat[index + 1 :]:
            same_partition = first["partition"] == later["partition"]
            same_lane = order == "partition" or first.get("key") == later.get("key")
            if same_partition and same_lane:
                a = int(base64.b64decode(first["value"]))
                b = int(base64.b64decode(later["value"]))
                assert seen.index(a) < seen.index(b)


# --- models ------------------------------------------------------------------------------------


def test_a_model_reads_the_decoded_value_and_a_poison_record_fails_alone() -> None:
    from pydantic import BaseModel, Json

    from anybatch.models import KafkaRecordModel

    class Order(BaseModel):
        order_id: int

    class OrderRecord(KafkaRecordModel):
        value: Json[Order]

    event = kafka_event([{"order_id": 1}, "not json", {"order_id": 3}], keys=["k", None, "k"])
    event["records"]["orders-0"][0]["headers"] = [{"source": list(b"web")}]
    seen: list[OrderRecord] = []
    processor = BatchProcessor(EventType.Kafka, model=OrderRecord)
    response = process_partial_response(event, seen.append, processor)
    assert response == failures(("orders-0", 101))
    assert [r.value.order_id for r in seen] == [1, 3]
    assert seen[0].key == b"k"
    assert seen[0].headers == [{"source": b"web"}]
    assert seen[0].decoded_headers == {"source": b"web"}
    assert seen[0].timestamp.year == 2023
    assert processor.result[1].status is Status.FAILED


def test_the_base_model_keeps_the_value_as_bytes_and_refuses_lenient_base64() -> None:
    from anybatch.models import KafkaRecordModel

    good = KafkaRecordModel.model_validate(kafka_record("hi", key=None))
    assert (good.value, good.key) == (b"hi", None)
    tombstone = KafkaRecordModel.model_validate(kafka_record(None))
    assert tombstone.value is None
    bad = kafka_record("hi")
    bad["value"] = "$$$$aGk="
    event = {
        "eventSource": "aws:kafka",
        "records": {"orders-0": [bad, kafka_record("ok", offset=1)]},
    }
    processor = BatchProcessor(EventType.Kafka, model=KafkaRecordModel)
    assert process_partial_response(event, lambda r: None, processor) == failures(("orders-0", 0))


def test_a_model_of_another_source_is_refused_for_kafka() -> None:
    from anybatch import ModelMismatchError
    from anybatch.models import KafkaRecordModel, SqsRecordModel

    with pytest.raises(ModelMismatchError, match=r"SqsRecordModel, for EventType\.SQS records"):
        BatchProcessor(EventType.Kafka, model=SqsRecordModel)
    with pytest.raises(ModelMismatchError, match=r"KafkaRecordModel, for EventType\.Kafka records"):
        BatchProcessor(EventType.SQS, model=KafkaRecordModel)
