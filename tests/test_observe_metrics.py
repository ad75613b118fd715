"""OpenTelemetryMetrics: the figures of EmfMetrics through OpenTelemetry, read by the SDK."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest

from anybatch import BatchProcessor, EventType, process_partial_response
from anybatch.observe import OpenTelemetryMetrics
from anybatch.testing import sqs_event

if TYPE_CHECKING:
    from anybatch.records import SQSRecord


@pytest.fixture
def reader() -> Any:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    return InMemoryMetricReader()


def points(reader: Any) -> dict[str, list[Any]]:
    """Every data point the reader collected, by instrument name."""
    found: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


async def handler(record: SQSRecord) -> None:
    await anyio.sleep(0.001)
    if record.body.startswith("bad"):
        raise ValueError("bad")


def metered(reader: Any, **attributes: str) -> BatchProcessor[Any]:
    from opentelemetry.sdk.metrics import MeterProvider

    provider = MeterProvider(metric_readers=[reader])
    observer = OpenTelemetryMetrics(provider, attributes or None)
    return BatchProcessor(EventType.SQS, observers=[observer], concurrency=4)


def test_records_are_counted_by_status_and_batches_by_size(reader: Any) -> None:
    processor = metered(reader)
    process_partial_response(sqs_event(["ok", "bad", "ok", "ok"]), handler, processor)
    process_partial_response(sqs_event(["ok", "ok"]), handler, processor)
    found = points(reader)
    counts = {p.attributes["anybatch.record.status"]: p.value for p in found["anybatch.records"]}
    assert counts == {"success": 5, "failed": 1}
    assert {p.attributes["anybatch.event_source"] for p in found["anybatch.records"]} == {"SQS"}
    (size,) = found["anybatch.batch.size"]
    assert (size.count, size.sum, size.min, size.max) == (2, 6, 2, 4)


def test_each_record_and_batch_duration_is_recorded_in_seconds(reader: Any) -> None:
    processor = metered(reader)
    process_partial_response(sqs_event(["ok", "bad", "ok"]), handler, processor)
    found = points(reader)
    by_status = {
        p.attributes["anybatch.record.status"]: p for p in found["anybatch.record.duration"]
    }
    assert (by_status["success"].count, by_status["failed"].count) == (2, 1)
    assert 0.001 <= by_status["success"].min < 5
    (batch,) = found["anybatch.batch.duration"]
    assert batch.count == 1
    assert batch.sum >= by_status["failed"].max
    # Buckets in seconds (1 ms and up), not the SDK's default ones in milliseconds.
    assert batch.explicit_bounds[:3] == (0.001, 0.0025, 0.005)


def test_attributes_are_added_to_every_measurement(reader: Any) -> None:
    processor = metered(reader, queue="orders")
    process_partial_response(sqs_event(["ok"]), handler, processor)
    for name, found in points(reader).items():
        assert all(p.attributes["queue"] == "orders" for p in found), name


def test_attributes_must_map_names_to_strings() -> None:
    with pytest.raises(ValueError, match="attributes must map names to strings"):
        OpenTelemetryMetrics(attributes={"queue": 1})  # type: ignore[dict-item]


def test_it_asks_for_each_handler_s_duration_and_not_its_end() -> None:
    assert OpenTelemetryMetrics.timing == "durations"
