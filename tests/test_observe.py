"""Observers: the hooks, CloudWatch EMF metrics and OpenTelemetry traces."""

from __future__ import annotations

import io
import json
import logging
import time
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.lowlevel
import pytest

from anybatch import (
    AsyncBatchProcessor,
    BatchProcessor,
    EventType,
    Status,
    async_process_partial_response,
    process_partial_response,
)
from anybatch.observe import BatchStarted, EmfMetrics, OpenTelemetryTracing
from anybatch.testing import fake_lambda_context, kinesis_event, sqs_event, sqs_record

if TYPE_CHECKING:
    from anybatch.records import SQSRecord


class Recorder:
    """Notes every call it gets."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def batch_started(self, batch: BatchStarted) -> None:
        self.calls.append(("started", batch))

    def record_finished(self, outcome: Any) -> None:
        self.calls.append(("record", outcome))

    def batch_finished(self, result: Any) -> None:
        self.calls.append(("finished", result))


def fail_bad(record: SQSRecord) -> None:
    time.sleep(0.001)
    if record.body == "bad":
        raise ValueError("bad record")


async def async_fail_bad(record: SQSRecord) -> None:
    await anyio.sleep(0.001)
    if record.body == "bad":
        raise ValueError("bad record")


def check_calls(recorder: Recorder, bodies: list[str]) -> None:
    kinds = [name for name, _ in recorder.calls]
    assert kinds == ["started", *["record"] * len(bodies), "finished"]
    started: BatchStarted = recorder.calls[0][1]
    assert (started.event_type, started.size) == ("SQS", len(bodies))
    outcomes = [arg for name, arg in recorder.calls if name == "record"]
    assert [o.index for o in outcomes] == list(range(len(bodies)))
    for outcome, body in zip(outcomes, bodies, strict=True):
        assert outcome.status is (Status.FAILED if body == "bad" else Status.SUCCESS)
        assert outcome.duration is not None
        assert 0.0005 < outcome.duration < 5
    result = recorder.calls[-1][1]
    assert result.duration >= max(o.duration for o in outcomes)
    assert len(result.durations) == len(bodies)


@pytest.mark.parametrize(
    ("handler", "options"),
    [
        (fail_bad, {}),  # inline
        (fail_bad, {"concurrency": 3}),  # threads on the main-thread loop
        (fail_bad, {"record_timeout": 5.0, "backend": "trio"}),  # threads on the loop thread
        (async_fail_bad, {}),  # the main-thread loop
        (async_fail_bad, {"backend": "trio"}),  # the trio loop thread
    ],
)
def test_every_blocking_path_tells_the_observers(handler: Any, options: dict[str, Any]) -> None:
    recorder = Recorder()
    processor = BatchProcessor(EventType.SQS, observers=[recorder], **options)
    bodies = ["ok", "bad", "ok"]
    process_partial_response(sqs_event(bodies), handler, processor)
    check_calls(recorder, bodies)


@pytest.mark.anyio
@pytest.mark.parametrize("handler", [async_fail_bad, fail_bad])
async def test_the_awaited_path_tells_the_observers(handler: Any) -> None:
    recorder = Recorder()
    processor = AsyncBatchProcessor(EventType.SQS, observers=[recorder], concurrency=2)
    bodies = ["bad", "ok", "ok", "ok"]
    await async_process_partial_response(sqs_event(bodies), handler, processor)
    check_calls(recorder, bodies)


def test_records_that_never_ran_have_no_duration_and_the_batch_its_time_left() -> None:
    recorder = Recorder()
    processor = BatchProcessor(EventType.SQS, observers=[recorder], deadline_margin=0.0)

    def slow(record: SQSRecord) -> None:
        time.sleep(0.05)

    process_partial_response(
        sqs_event([str(i) for i in range(20)]), slow, processor, fake_lambda_context(0.12)
    )
    outcomes = [arg for name, arg in recorder.calls if name == "record"]
    ran = [o for o in outcomes if o.status is Status.SUCCESS]
    unstarted = [o for o in outcomes if o.status is Status.DEADLINE]
    assert ran
    assert unstarted
    assert all(o.duration is not None for o in ran)
    assert all(o.duration is None for o in unstarted)
    result = recorder.calls[-1][1]
    assert result.time_left is not None
    assert result.time_left < 0.12


def test_an_observer_that_raises_is_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def record_finished(self, outcome: Any) -> None:
            raise RuntimeError("observer bug")

    recorder = Recorder()
    processor = BatchProcessor(EventType.SQS, observers=[Broken(), recorder])
    event = sqs_event(["ok", "bad"])
    with caplog.at_level(logging.WARNING, logger="anybatch.observe"):
        response = process_partial_response(event, fail_bad, processor)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert len([r for r in caplog.records if "observer" in r.getMessage()]) == 2
    assert [name for name, _ in recorder.calls].count("record") == 2  # the others still hear


def test_observers_implement_only_what_they_need() -> None:
    class OnlyFinished:
        def __init__(self) -> None:
            self.results: list[Any] = []

        def batch_finished(self, result: Any) -> None:
            self.results.append(result)

    only = OnlyFinished()
    processor = BatchProcessor(EventType.SQS, observers=[only, object()])
    process_partial_response(sqs_event(["ok"]), fail_bad, processor)
    assert len(only.results) == 1
    assert processor.result[0].duration is not None


def test_without_observers_no_time_is_taken() -> None:
    processor = BatchProcessor(EventType.SQS)
    process_partial_response(sqs_event(["ok"]), fail_bad, processor)
    assert processor.result[0].duration is None
    assert processor.result.durations is None


# --- EMF ---------------------------------------------------------------------------------

EMF_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def check_emf(document: dict[str, Any]) -> None:
    """The rules of the CloudWatch Embedded Metric Format specification."""
    aws = document["_aws"]
    assert isinstance(aws["Timestamp"], int)
    assert aws["Timestamp"] > 1_600_000_000_000
    (directive,) = aws["CloudWatchMetrics"]
    assert isinstance(directive["Namespace"], str)
    assert 1 <= len(directive["Namespace"]) <= 1024
    for dimension_set in directive["Dimensions"]:
        assert 1 <= len(dimension_set) <= 30
        for name in dimension_set:
            assert isinstance(document[name], str), name  # a dimension is a string member
    assert 1 <= len(directive["Metrics"]) <= 100
    for metric in directive["Metrics"]:
        assert set(metric) <= {"Name", "Unit", "StorageResolution"}
        assert metric["Unit"] in EMF_UNITS
        value = document[metric["Name"]]  # a metric is a number member
        assert isinstance(value, int | float)
        assert not isinstance(value, bool)


def test_emf_writes_one_line_per_batch_that_follows_the_specification() -> None:
    stream = io.StringIO()
    metrics = EmfMetrics(namespace="orders", dimensions={"Service": "billing"}, stream=stream)
    processor = BatchProcessor(EventType.SQS, observers=[metrics], concurrency=2)
    bodies = ["ok", "bad", "ok", "ok"]
    process_partial_response(sqs_event(bodies), fail_bad, processor, fake_lambda_context(30))
    (line,) = stream.getvalue().splitlines()
    document = json.loads(line)
    check_emf(document)
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "orders"
    assert directive["Dimensions"] == [["EventSource", "Service"]]
    assert (document["EventSource"], document["Service"]) == ("SQS", "billing")
    assert document["RecordsSucceeded"] == 3
    assert document["RecordsFailed"] == 1
    assert document["RecordsTimedOut"] == document["RecordsDeadline"] == 0
    assert document["RecordsSkipped"] == 0
    assert 1 <= document["HandlerDurationP50"] <= document["HandlerDurationP99"]
    assert document["HandlerDurationP99"] <= document["HandlerDurationMax"] < 5000
    assert document["BatchDuration"] >= document["HandlerDurationMax"]
    assert 25_000 < document["TimeLeft"] < 30_000
    names = [m["Name"] for m in directive["Metrics"]]
    assert names == [
        "RecordsSucceeded",
        "RecordsFailed",
        "RecordsTimedOut",
        "RecordsDeadline",
        "RecordsSkipped",
        "HandlerDurationP50",
        "HandlerDurationP99",
        "HandlerDurationMax",
        "BatchDuration",
        "TimeLeft",
    ]


def test_emf_goes_to_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    processor = BatchProcessor(EventType.SQS, observers=[EmfMetrics("orders")])
    process_partial_response(sqs_event(["ok"]), fail_bad, processor)
    document = json.loads(capsys.readouterr().out)
    check_emf(document)
    assert "TimeLeft" not in document  # no Lambda context, no deadline


def test_emf_percentiles_of_a_large_batch() -> None:
    stream = io.StringIO()
    processor = AsyncBatchProcessor(
        EventType.SQS, observers=[EmfMetrics("big", stream=stream)], concurrency=None
    )

    async def main() -> None:
        async def handler(record: SQSRecord) -> None:
            await anyio.lowlevel.checkpoint()

        await async_process_partial_response(
            sqs_event([str(i) for i in range(5000)]), handler, processor
        )

    anyio.run(main)
    document = json.loads(stream.getvalue())
    check_emf(document)
    assert document["RecordsSucceeded"] == 5000
    assert document["HandlerDurationP50"] <= document["HandlerDurationMax"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"namespace": ""}, "namespace must be a non-empty string"),
        ({"namespace": "n", "dimensions": {"Service": 3}}, "dimensions must map names"),
        ({"namespace": "n", "dimensions": {"EventSource": "x"}}, "'EventSource' is set"),
        ({"namespace": "n", "dimensions": {"_aws": "x"}}, "'_aws' is the name of the EMF"),
        ({"namespace": "n", "dimensions": {"RecordsFailed": "x"}}, "name of an EmfMetrics metric"),
        ({"namespace": "n", "dimensions": {f"d{i}": "v" for i in range(30)}}, "at most 30"),
    ],
)
def test_emf_refuses_what_cloudwatch_would(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EmfMetrics(**kwargs)


def test_emf_refuses_a_dimension_named_like_any_name_of_its_document() -> None:
    # Every top-level name of a full document (a Lambda context adds TimeLeft): a dimension of
    # that name would overwrite the metadata, or turn a dimension's value into a number.
    stream = io.StringIO()
    processor = BatchProcessor(EventType.SQS, observers=[EmfMetrics("orders", stream=stream)])
    process_partial_response(sqs_event(["ok"]), fail_bad, processor, fake_lambda_context(30))
    document = json.loads(stream.getvalue())
    metrics = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert set(document) == {"_aws", "EventSource", *metrics}
    for name in document:
        with pytest.raises(ValueError, match=repr(name)):
            EmfMetrics("orders", {name: "x"})


# --- OpenTelemetry -----------------------------------------------------------------------


@pytest.fixture
def exporter() -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return provider, spans


W3C_TRACE = "0af7651916cd43dd8448eb211c80319c"
W3C_PARENT = "b7ad6b7169203331"
XRAY_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
XRAY_PARENT = "53995c3f42cd8ad8"


def traced_event() -> dict[str, Any]:
    first = sqs_record("ok", index=0)
    first["messageAttributes"]["traceparent"] = {
        "stringValue": f"00-{W3C_TRACE}-{W3C_PARENT}-01",
        "dataType": "String",
    }
    second = sqs_record("bad", index=1)
    second["attributes"]["AWSTraceHeader"] = f"Root={XRAY_ROOT};Parent={XRAY_PARENT};Sampled=1"
    third = sqs_record("ok", index=2)
    return {"Records": [first, second, third]}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_span_per_batch_and_per_record_linked_to_the_records_traces(
    exporter: Any, backend: Any
) -> None:
    provider, spans = exporter
    processor = BatchProcessor(
        EventType.SQS, observers=[OpenTelemetryTracing(provider)], backend=backend
    )
    event = traced_event()
    process_partial_response(event, async_fail_bad, processor)
    finished = spans.get_finished_spans()
    (batch,) = [s for s in finished if s.name == "anybatch SQS batch"]
    records = sorted(
        (s for s in finished if s.name == "anybatch SQS record"), key=lambda s: s.start_time
    )
    assert len(records) == 3
    assert batch.attributes["anybatch.batch.size"] == 3
    assert batch.attributes["anybatch.batch.failed"] == 1
    for span, raw in zip(records, event["Records"], strict=True):
        assert span.parent is not None
        assert span.parent.span_id == batch.context.span_id
        assert span.context.trace_id == batch.context.trace_id
        assert span.attributes["anybatch.record.identifier"] == raw["messageId"]
        assert span.attributes["anybatch.event_source"] == "SQS"
        assert batch.start_time <= span.start_time <= span.end_time <= batch.end_time
    ok, bad, plain = records
    assert ok.attributes["anybatch.record.status"] == "success"
    assert bad.attributes["anybatch.record.status"] == "failed"
    assert bad.status.status_code.name == "ERROR"
    assert bad.events[0].name == "exception"
    assert bad.events[0].attributes["exception.type"] == "ValueError"
    (w3c,) = ok.links
    assert format(w3c.context.trace_id, "032x") == W3C_TRACE
    assert format(w3c.context.span_id, "016x") == W3C_PARENT
    (xray,) = bad.links
    assert format(xray.context.trace_id, "032x") == XRAY_ROOT[2:].replace("-", "")
    assert format(xray.context.span_id, "016x") == XRAY_PARENT
    assert xray.context.trace_flags.sampled
    assert plain.links == ()


def test_kafka_record_spans_link_to_the_traceparent_header_and_models_keep_their_links(
    exporter: Any,
) -> None:
    from anybatch.models import KafkaRecordModel
    from anybatch.testing import kafka_event

    provider, spans = exporter
    event = kafka_event(["traced", "plain"])
    traceparent = f"00-{W3C_TRACE}-{W3C_PARENT}-01"
    event["records"]["orders-0"][0]["headers"] = [{"traceparent": list(traceparent.encode())}]
    for model in (None, KafkaRecordModel):
        spans.clear()
        processor: BatchProcessor[Any] = BatchProcessor(
            EventType.Kafka, model=model, observers=[OpenTelemetryTracing(provider)]
        )
        process_partial_response(event, lambda record: None, processor)
        records = sorted(
            (s for s in spans.get_finished_spans() if s.name == "anybatch Kafka record"),
            key=lambda s: s.start_time,
        )
        traced, plain = records
        (link,) = traced.links
        assert format(link.context.trace_id, "032x") == W3C_TRACE
        assert plain.links == ()
        assert traced.attributes["anybatch.record.identifier"] == "orders-0@100"


def test_tracing_without_opentelemetry_says_what_to_install(monkeypatch: Any) -> None:
    import sys

    from anybatch import MissingDependencyError

    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'anybatch\[otel\]'"):
        OpenTelemetryTracing()


@pytest.mark.anyio
@pytest.mark.parametrize("with_context", [False, True], ids=["no-deadline", "deadline"])
async def test_each_record_is_timed_on_its_own_with_or_without_a_deadline(
    with_context: bool,
) -> None:
    # Two keys, two records each, two workers: each record's time is its own handler's, not
    # that of the record its worker ran before, with or without a deadline (whose clock read
    # the timings share on asyncio).
    recorder = Recorder()
    processor = AsyncBatchProcessor(
        EventType.KinesisDataStreams, observers=[recorder], concurrency=2
    )

    async def handler(record: Any) -> None:
        await anyio.sleep(0.03 if record.kinesis.data_as_text() == "slow" else 0.001)

    event = kinesis_event(["slow", "fast", "slow", "fast"], partition_keys=["a", "a", "b", "b"])
    context = fake_lambda_context(60.0) if with_context else None
    await async_process_partial_response(event, handler, processor, context=context)
    outcomes = [arg for name, arg in recorder.calls if name == "record"]
    slow, fast = outcomes[0::2], outcomes[1::2]
    assert all(0.025 < o.duration < 1 for o in slow)
    # The fast record of each key ran after the slow one, on the same worker.
    assert all(o.duration < 0.02 for o in fast), [o.duration for o in fast]
    result = recorder.calls[-1][1]
    assert result.duration >= 0.025
    assert all(end is not None for end in result.ends)


@pytest.mark.parametrize(
    ("timing", "durations", "ends"),
    [("spans", True, True), ("durations", True, False), ("none", False, False)],
)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_an_observer_gets_the_timing_it_asks_for(
    timing: str, durations: bool, ends: bool, backend: Literal["asyncio", "trio"]
) -> None:
    class Timed:
        def __init__(self) -> None:
            self.timing = timing
            self.results: list[Any] = []

        def batch_finished(self, result: Any) -> None:
            self.results.append(result)

    runs: list[tuple[Any, dict[str, Any]]] = [(fail_bad, {}), (async_fail_bad, {"concurrency": 2})]
    for handler, options in runs:
        observer = Timed()
        processor = BatchProcessor(EventType.SQS, observers=[observer], backend=backend, **options)
        process_partial_response(
            sqs_event(["ok", "bad"]), handler, processor, fake_lambda_context()
        )
        result = observer.results[0]
        assert (result.durations is not None) is durations
        assert (result.ends is not None) is ends
        assert all((o.duration is not None) is durations for o in result)
        assert result.duration > 0  # the batch's own time is always known


def test_emf_and_tracing_ask_for_what_they_use() -> None:
    assert EmfMetrics("ns").timing == "durations"
    assert OpenTelemetryTracing.timing == "spans"


def test_an_observer_with_an_unknown_timing_is_refused() -> None:
    class Odd:
        timing = "sometimes"

        def batch_finished(self, result: Any) -> None: ...

    with pytest.raises(ValueError, match=r"timing='sometimes'.*'spans', 'durations', 'none'"):
        BatchProcessor(EventType.SQS, observers=[Odd()])
