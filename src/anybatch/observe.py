"""Observers: see what every batch did, with one argument, ``observers=[...]``.

An observer is any object with one or more of these methods; the processor calls those it has::

    def batch_started(self, batch: BatchStarted) -> None: ...     # before any record runs
    def record_finished(self, outcome: RecordOutcome) -> None: ... # once per record, in order
    def batch_finished(self, result: BatchResult) -> None: ...     # once the batch has outcomes

An observer may also say what it needs of each record's time, as an attribute ``timing``:
``"spans"`` (the default: each record's duration and end, what a span needs), ``"durations"``
(the handler's seconds only) or ``"none"`` (no clock read per record). Each record's time costs
one clock read, so a processor takes no more than its observers need.

``record_finished`` and ``batch_finished`` are called once every record has its outcome, so an
observer never slows a record down, whatever the execution path (inline, threads, awaited, either
backend). ``outcome.duration`` is the handler's time in seconds; ``result.durations``,
``result.duration`` and ``result.time_left`` describe the batch. An observer that raises is logged
(logger ``anybatch.observe``) and ignored: it never fails a record or the batch.

Three observers come with anybatch: :class:`EmfMetrics` (CloudWatch metrics, no dependency),
:class:`OpenTelemetryMetrics` and :class:`OpenTelemetryTracing` (``pip install 'anybatch[otel]'``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TextIO, cast

from ._events import BatchStarted
from ._outcome import Status as _Status

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Link, TracerProvider

    from ._outcome import BatchResult, RecordOutcome
    from ._sources import EventType

__all__ = [
    "BatchStarted",
    "EmfMetrics",
    "Observer",
    "OpenTelemetryMetrics",
    "OpenTelemetryTracing",
]


class Observer(Protocol):
    """What an observer may implement: any of the three methods (all are optional)."""

    def batch_started(self, batch: BatchStarted) -> None:
        """The batch is about to run."""

    def record_finished(self, outcome: RecordOutcome[Any]) -> None:
        """One record's outcome, with ``outcome.duration``."""

    def batch_finished(self, result: BatchResult[Any]) -> None:
        """Every record's outcome, and the batch's ``duration`` and ``time_left``."""


_COUNT_METRICS = {
    _Status.SUCCESS: "RecordsSucceeded",
    _Status.FAILED: "RecordsFailed",
    _Status.TIMED_OUT: "RecordsTimedOut",
    _Status.DEADLINE: "RecordsDeadline",
    _Status.SKIPPED: "RecordsSkipped",
}
#: CloudWatch allows 30 dimensions per dimension set.
_MAX_DIMENSIONS = 30
#: The metrics' names: each is a top-level name of the document, as the dimensions are.
_METRIC_NAMES = frozenset(
    {
        *_COUNT_METRICS.values(),
        "HandlerDurationP50",
        "HandlerDurationP99",
        "HandlerDurationMax",
        "BatchDuration",
        "TimeLeft",
        "RecordsRouted",
        "RecordsPermanent",
    }
)


def _percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of an ascending list."""
    rank = max(0, min(len(ordered) - 1, int(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


class EmfMetrics:
    """Write one CloudWatch Embedded Metric Format line per batch (to stdout by default).

    On Lambda, CloudWatch Logs turns the line into metrics in *namespace*: the records by
    status (``RecordsSucceeded``, ``RecordsFailed``, ``RecordsTimedOut``, ``RecordsDeadline``,
    ``RecordsSkipped``; ``RecordsRouted`` and ``RecordsPermanent`` too for a batch with
    permanent failures: routed away, and routed or reported), the handler's time
    (``HandlerDurationP50``, ``HandlerDurationP99``, ``HandlerDurationMax``),
    ``BatchDuration``, and ``TimeLeft`` before the deadline (with a Lambda context), all in
    milliseconds. Dimensions: ``EventSource`` (the event type) and
    *dimensions*, whose names must not be ``EventSource``, ``_aws`` or a metric's (each is a
    top-level name of the document). No dependency: EMF is a JSON document.

    For batches of more than 1,000 records, p50 and p99 are those of every tenth record; the
    maximum is exact.
    """

    #: Each record's handler time, but not when it ended (no spans are drawn).
    timing = "durations"

    def __init__(
        self,
        namespace: str,
        dimensions: Mapping[str, str] | None = None,
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(cast("object", namespace), str) or not namespace:
            raise ValueError(f"namespace must be a non-empty string, got {namespace!r}")
        extra = dict(dimensions or {})
        for name, value in cast("dict[object, object]", extra).items():
            if not isinstance(name, str) or not isinstance(value, str) or not name or not value:
                raise ValueError(f"dimensions must map names to strings, got {name!r}: {value!r}")
        if "EventSource" in extra:
            raise ValueError("the dimension 'EventSource' is set by EmfMetrics itself")
        # A dimension is a top-level name of the document, as the metadata and the metrics
        # are: one of theirs would overwrite it, or be overwritten.
        if "_aws" in extra:
            raise ValueError("the dimension '_aws' is the name of the EMF document's metadata")
        for name in extra:
            if name in _METRIC_NAMES:
                raise ValueError(f"the dimension {name!r} has the name of an EmfMetrics metric")
        if len(extra) + 1 > _MAX_DIMENSIONS:
            raise ValueError(f"CloudWatch allows at most {_MAX_DIMENSIONS} dimensions")
        self.namespace = namespace
        self.dimensions = extra
        self._stream = stream
        self._clock = clock

    def document(self, result: BatchResult[Any]) -> dict[str, Any]:
        """The EMF document of one batch."""
        counts = result.counts()
        metrics: list[dict[str, str]] = []
        values: dict[str, float] = {}
        for status, name in _COUNT_METRICS.items():
            metrics.append({"Name": name, "Unit": "Count"})
            values[name] = counts[status]
        permanent = len(result.permanent_indices)
        if permanent:  # only batches that have any: the usual document stays as it was
            for name, count in (
                ("RecordsRouted", counts[_Status.ROUTED]),
                ("RecordsPermanent", permanent),
            ):
                metrics.append({"Name": name, "Unit": "Count"})
                values[name] = count
        timed: Any = result.durations or []
        # Records that never ran, or were cut short, have no duration.
        untimed = counts[_Status.DEADLINE] + counts[_Status.SKIPPED]
        durations: list[float] = timed if not untimed else [d for d in timed if d is not None]
        if durations:
            # Percentiles of every tenth record past 1,000 records (a sort of 10,000 floats
            # would cost a tenth of the batch); the maximum is always exact.
            ordered = sorted(durations if len(durations) <= 1000 else durations[::10])
            ms = {
                "HandlerDurationP50": _percentile(ordered, 0.50) * 1000,
                "HandlerDurationP99": _percentile(ordered, 0.99) * 1000,
                "HandlerDurationMax": max(durations) * 1000,
            }
            for name, value in ms.items():
                metrics.append({"Name": name, "Unit": "Milliseconds"})
                values[name] = round(value, 3)
        metrics.append({"Name": "BatchDuration", "Unit": "Milliseconds"})
        values["BatchDuration"] = round(result.duration * 1000, 3)
        if result.time_left is not None:
            metrics.append({"Name": "TimeLeft", "Unit": "Milliseconds"})
            values["TimeLeft"] = round(result.time_left * 1000, 3)
        names = ["EventSource", *self.dimensions]
        return {
            "_aws": {
                "Timestamp": int(self._clock() * 1000),
                "CloudWatchMetrics": [
                    {"Namespace": self.namespace, "Dimensions": [names], "Metrics": metrics}
                ],
            },
            "EventSource": result.event_type,
            **self.dimensions,
            **values,
        }

    def batch_finished(self, result: BatchResult[Any]) -> None:
        """Write the batch's EMF line."""
        stream = self._stream or sys.stdout
        stream.write(json.dumps(self.document(result), separators=(",", ":")) + "\n")
        stream.flush()


#: Histogram buckets: seconds (1 ms to 15 minutes, Lambda's longest), and records per batch.
_SECONDS_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
    900,
)
_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class OpenTelemetryMetrics:
    """The figures of :class:`EmfMetrics`, through OpenTelemetry metrics (``anybatch[otel]``).

    Four instruments, each with the attribute ``anybatch.event_source`` (the event type):

    * ``anybatch.records`` (counter, ``{record}``): the records, by ``anybatch.record.status``
      (``success``, ``failed``, ``timed_out``, ``deadline``, ``skipped``);
    * ``anybatch.batch.size`` (histogram, ``{record}``): the records per batch;
    * ``anybatch.record.duration`` (histogram, seconds): each handler's time, for the records
      that ran to an end, with their ``anybatch.record.status``;
    * ``anybatch.batch.duration`` (histogram, seconds): each batch's time.

    *meter_provider* defaults to the global one: on Lambda, ADOT's; in a worker, one with a
    Prometheus or OTLP reader (``anybatch worker --metrics-port`` sets one up). *attributes*
    are added to every measurement (``{"queue": "orders"}``).
    """

    #: Each record's handler time, but not when it ended (no spans are drawn).
    timing = "durations"

    def __init__(
        self,
        meter_provider: MeterProvider | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        try:
            from opentelemetry import metrics
        except ImportError:
            from ._exceptions import MissingDependencyError

            raise MissingDependencyError(
                "OpenTelemetryMetrics needs opentelemetry-api: pip install 'anybatch[otel]'"
            ) from None
        extra = dict(attributes or {})
        for name, value in cast("dict[object, object]", extra).items():
            if not isinstance(name, str) or not isinstance(value, str) or not name:
                raise ValueError(f"attributes must map names to strings, got {name!r}: {value!r}")
        self.attributes = extra
        meter = metrics.get_meter("anybatch", meter_provider=meter_provider)
        self._records = meter.create_counter(
            "anybatch.records", unit="{record}", description="Records processed, by status"
        )

        def histogram(name: str, unit: str, description: str, buckets: Sequence[float]) -> Any:
            try:  # bucket advice: opentelemetry-api 1.23 and later
                return meter.create_histogram(
                    name, unit, description, explicit_bucket_boundaries_advisory=buckets
                )
            except TypeError:  # pragma: no cover - an older API
                return meter.create_histogram(name, unit, description)

        self._batch_size = histogram(
            "anybatch.batch.size", "{record}", "Records per batch", _SIZE_BUCKETS
        )
        self._record_duration = histogram(
            "anybatch.record.duration", "s", "Each record handler's time", _SECONDS_BUCKETS
        )
        self._batch_duration = histogram(
            "anybatch.batch.duration", "s", "Each batch's time", _SECONDS_BUCKETS
        )
        # The attribute sets, made once: one per event source and status.
        self._sets: dict[tuple[str, _Status | None], dict[str, str]] = {}

    def _attributes(self, event_type: str, status: _Status | None) -> dict[str, str]:
        key = (event_type, status)
        found = self._sets.get(key)
        if found is None:
            found = {"anybatch.event_source": event_type, **self.attributes}
            if status is not None:
                found["anybatch.record.status"] = status.value
            self._sets[key] = found
        return found

    def batch_finished(self, result: BatchResult[Any]) -> None:
        """Record the batch's figures."""
        source = result.event_type
        for status, count in result.counts().items():
            if count:
                self._records.add(count, self._attributes(source, status))
        batch = self._attributes(source, None)
        self._batch_size.record(len(result), batch)
        self._batch_duration.record(result.duration, batch)
        durations = result.durations
        if not durations:
            return
        record = self._record_duration.record
        if len(result) == result.counts()[_Status.SUCCESS]:
            succeeded = self._attributes(source, _Status.SUCCESS)
            for duration in durations:
                if duration is not None:
                    record(duration, succeeded)
            return
        for outcome in result:
            if outcome.duration is not None:
                record(outcome.duration, self._attributes(source, outcome.status))


class OpenTelemetryTracing:
    """A span per batch, and one per record, through OpenTelemetry (``anybatch[otel]``).

    The batch span (``anybatch <event type> batch``) holds a child span per record that ran
    (``anybatch <event type> record``), timed as the handler ran, with its status, identifier
    and event source as attributes and its exception recorded. Each record span links to the
    trace context the record carries: a W3C ``traceparent`` message attribute, or SQS's
    ``AWSTraceHeader`` (X-Ray) system attribute. *tracer_provider* defaults to the global one.
    """

    #: Each record's duration and end: the record spans' times.
    timing = "spans"

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        try:
            from opentelemetry import trace
        except ImportError:
            from ._exceptions import MissingDependencyError

            raise MissingDependencyError(
                "OpenTelemetryTracing needs opentelemetry-api: pip install 'anybatch[otel]'"
            ) from None
        self._trace = trace
        self._tracer = trace.get_tracer("anybatch", tracer_provider=tracer_provider)

    def batch_finished(self, result: BatchResult[Any]) -> None:
        """Record the batch's spans, timed as the batch and its records ran."""
        trace = self._trace
        ns = 1_000_000_000
        start_ns = int(result.started_at * ns)
        end_ns = start_ns + int(result.duration * ns)
        # Map the drivers' monotonic clock onto the wall clock of the batch's start.
        offset = result.started_at - result.started
        counts = result.counts()
        batch_span = self._tracer.start_span(
            f"anybatch {result.event_type} batch",
            start_time=start_ns,
            attributes={
                "anybatch.event_source": result.event_type,
                "anybatch.batch.size": len(result),
                **{f"anybatch.batch.{s.value}": n for s, n in counts.items() if n},
            },
        )
        parent = trace.set_span_in_context(batch_span)
        ends = result.ends or ()
        source, raw = result.source, result.raw_records
        describe = str if source is None else source.describe
        for outcome in result:
            ended = ends[outcome.index] if outcome.index < len(ends) else None
            if outcome.duration is None or ended is None:
                continue  # never ran, or cut short: counted on the batch span
            span = self._tracer.start_span(
                f"anybatch {result.event_type} record",
                context=parent,
                start_time=int((ended - outcome.duration + offset) * ns),
                links=_links(source, raw[outcome.index] if raw is not None else None),
                attributes={
                    "anybatch.event_source": result.event_type,
                    "anybatch.record.identifier": describe(outcome.identifier),
                    "anybatch.record.status": outcome.status.value,
                },
            )
            if outcome.exception is not None:
                span.record_exception(outcome.exception)
                span.set_status(trace.Status(trace.StatusCode.ERROR, outcome.status.value))
            span.end(end_time=int((ended + offset) * ns))
        if counts[_Status.SUCCESS] != len(result):
            batch_span.set_status(trace.Status(trace.StatusCode.ERROR, "records reported"))
        batch_span.end(end_time=end_ns)


def _links(source: EventType[Any] | None, raw: object) -> list[Link]:
    """The trace context a record carries, as span links (W3C first, then X-Ray)."""
    from opentelemetry.trace import Link, SpanContext, TraceFlags

    if source is None or not isinstance(raw, Mapping):
        return []
    record = cast("Mapping[str, Any]", raw)
    carrier = source.trace_headers(record)
    if "traceparent" in carrier:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        context = TraceContextTextMapPropagator().extract(dict(carrier))
        span_context = trace.get_current_span(context).get_span_context()
        if span_context.is_valid:
            return [Link(span_context)]
    header = source.xray_header(record)
    if header is not None:
        fields = dict(p.split("=", 1) for p in header.split(";") if "=" in p)
        root, parent = fields.get("Root", ""), fields.get("Parent", "")
        parts = root.split("-")
        if len(parts) == 3 and len(parts[1] + parts[2]) == 32 and len(parent) == 16:
            try:
                trace_id, span_id = int(parts[1] + parts[2], 16), int(parent, 16)
            except ValueError:
                return []
            flags = TraceFlags(TraceFlags.SAMPLED if fields.get("Sampled") == "1" else 0)
            span_context = SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags)
            return [Link(span_context)]
    return []
