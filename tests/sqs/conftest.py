"""SQS over real HTTP: moto's server on 127.0.0.1, real queues, real receipt handles.

aiobotocore runs on asyncio only, so async SQS tests run on asyncio (a test that means trio
says so with its own ``anyio_backend`` parameter).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from ._fake_sqs import FakeQueue, serve
from ._moto import MakeQueue, Queue


@pytest.fixture
def anyio_backend() -> str:
    """aiobotocore needs asyncio."""
    return "asyncio"


def _serialize_moto_sqs() -> None:
    """Make moto's SQS backend safe for concurrent requests, as SQS is.

    moto's server answers each request in a thread of its own, and its SQS backend takes no
    lock: two receives at once can hand out the same message (real SQS never does while it is
    in flight). Each call that reads or changes messages holds one lock; a long poll waits
    outside it, retrying a receive that does not wait.
    """
    import threading
    import time

    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend, "_anybatch_serialized", False):
        return
    lock = threading.RLock()

    def locked(method: Any) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(self, *args, **kwargs)

        return call

    for name in (
        "send_message",
        "send_message_batch",
        "delete_message",
        "delete_message_batch",
        "change_message_visibility",
        "change_message_visibility_batch",
        "purge_queue",
    ):
        setattr(SQSBackend, name, locked(getattr(SQSBackend, name)))
    receive = SQSBackend.receive_message

    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> Any:
        end = time.monotonic() + wait_seconds_timeout
        while True:
            with lock:
                found = receive(
                    self, queue_name, count, 0, visibility_timeout, message_attribute_names
                )
            if found or time.monotonic() >= end:
                return found
            time.sleep(0.02)

    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]
    SQSBackend._anybatch_serialized = True  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of a moto server on a free loopback port, for the whole session."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    _serialize_moto_sqs()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def make_queue(moto_endpoint: str) -> MakeQueue:
    """``make_queue(fifo=False, region="us-east-1", visibility_timeout=None)``: a fresh queue
    on the moto server (``visibility_timeout``: the queue's own, SQS's 30 s by default)."""

    def make(
        *, fifo: bool = False, region: str = "us-east-1", visibility_timeout: int | None = None
    ) -> Queue:
        return Queue(moto_endpoint, fifo=fifo, region=region, visibility_timeout=visibility_timeout)

    return make


@pytest.fixture
def sqs() -> Iterator[FakeQueue]:
    """An SQS queue in memory at ``_fake_sqs.ENDPOINT``, through respx (no network)."""
    yield from serve(FakeQueue())
