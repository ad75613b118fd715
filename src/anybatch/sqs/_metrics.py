"""``anybatch worker --metrics-port``: the worker's metrics, served for Prometheus.

The records' figures come from :class:`~anybatch.observe.OpenTelemetryMetrics` on the
processor; the worker's own (messages received, deleted, released, receive errors, in flight)
from :func:`observe_worker`. Both go through the global OpenTelemetry meter provider, which
:func:`serve_metrics` sets up with the Prometheus exporter (``anybatch[prometheus]``).

Under a supervisor (``--processes N``), each worker process serves its metrics on a loopback
port of its own, and the supervisor serves them all on the one port, each series labelled
with its ``worker`` (see :class:`ChildrenCollector`).
"""

from __future__ import annotations

# prometheus_client's parser and the exporter's values are typed loosely.
# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false
# pyright: reportUnknownArgumentType=false, reportMissingTypeStubs=false
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from anybatch._exceptions import MissingDependencyError

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

    from ._worker import SQSWorker

__all__ = [
    "ChildrenCollector",
    "check_metrics",
    "observe_worker",
    "serve_collector",
    "serve_metrics",
]

NEEDS = (
    "--metrics-port needs the OpenTelemetry SDK and its Prometheus exporter: "
    "pip install 'anybatch[prometheus]'"
)


def serve_metrics(port: int, host: str = "0.0.0.0") -> tuple[MeterProvider, int]:
    """Serve the global meter provider's metrics on *host*:*port*; the provider and the port.

    Port 0 takes a free port. Raises :class:`~anybatch.MissingDependencyError` without the
    ``prometheus`` extra.
    """
    try:
        from opentelemetry import metrics
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from prometheus_client import start_http_server
    except ImportError:
        raise MissingDependencyError(NEEDS) from None
    provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
    metrics.set_meter_provider(provider)
    server, _ = start_http_server(port, addr=host)
    return provider, int(server.server_port)


def observe_worker(worker: SQSWorker, meter_provider: MeterProvider | None = None) -> None:
    """The worker's own figures, read from its ``stats`` when metrics are collected.

    ``anybatch.worker.messages`` (counter, by ``anybatch.message.outcome``: ``received``,
    ``deleted``, ``not_deleted``, ``failed``, ``released``, ``routed``),
    ``anybatch.worker.receive_errors`` (counter) and ``anybatch.worker.in_flight`` (gauge:
    received and not yet settled).
    """
    from opentelemetry import metrics
    from opentelemetry.metrics import Observation

    meter = metrics.get_meter("anybatch.worker", meter_provider=meter_provider)
    stats = worker.stats

    def messages(options: CallbackOptions) -> Iterable[Observation]:
        for outcome in ("received", "deleted", "not_deleted", "failed", "released", "routed"):
            yield Observation(getattr(stats, outcome), {"anybatch.message.outcome": outcome})

    def receive_errors(options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(stats.receive_errors)

    def in_flight(options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(worker.in_flight)

    meter.create_observable_counter(
        "anybatch.worker.messages", [messages], unit="{message}", description="Messages, by outcome"
    )
    meter.create_observable_counter(
        "anybatch.worker.receive_errors", [receive_errors], description="Receives that failed"
    )
    meter.create_observable_gauge(
        "anybatch.worker.in_flight",
        [in_flight],
        unit="{message}",
        description="Messages received and not yet settled",
    )


class ChildrenCollector:
    """A Prometheus collector: the metrics of each worker process, labelled ``worker``.

    *ports* says, when metrics are collected, which loopback port each worker (by its
    number) serves its own on. A worker that does not answer (starting, restarting) is
    left out of that scrape.
    """

    def __init__(self, ports: Callable[[], dict[int, int]], timeout: float = 2.0) -> None:
        self._ports = ports
        self._timeout = timeout

    def collect(self) -> Iterator[Any]:
        """Every worker's metric families, merged by name, each sample with its ``worker``."""
        from prometheus_client.parser import text_string_to_metric_families

        merged: dict[str, Any] = {}
        for slot, port in sorted(self._ports().items()):
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/metrics", timeout=self._timeout
                ) as answer:
                    text = answer.read().decode()
            except OSError:
                continue
            for family in text_string_to_metric_families(text):
                found = merged.get(family.name)
                if found is None:
                    found = merged[family.name] = family
                    samples = list(family.samples)
                    family.samples = []
                else:
                    samples = list(family.samples)
                for sample in samples:
                    labels = {**sample.labels, "worker": str(slot)}
                    found.samples.append(sample._replace(labels=labels))
        yield from merged.values()


def serve_collector(collector: ChildrenCollector, port: int, host: str = "0.0.0.0") -> int:
    """Serve *collector* alone on *host*:*port* (a registry of its own); the port."""
    try:
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError:
        raise MissingDependencyError(NEEDS) from None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    server, _ = start_http_server(port, addr=host, registry=registry)
    return int(server.server_port)


def check_metrics() -> None:
    """Raise :class:`~anybatch.MissingDependencyError` unless the exporter is installed."""
    import importlib.util

    for name in ("opentelemetry.sdk", "opentelemetry.exporter.prometheus", "prometheus_client"):
        try:
            found = importlib.util.find_spec(name) is not None
        except ImportError:  # its parent package is missing
            found = False
        if not found:
            raise MissingDependencyError(NEEDS)
