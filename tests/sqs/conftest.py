"""SQS over real HTTP: moto's server on 127.0.0.1, real queues, real receipt handles.

aiobotocore runs on asyncio only, so async SQS tests run on asyncio (a test that means trio
says so with its own ``anyio_backend`` parameter).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from ._moto import MakeQueue, Queue


@pytest.fixture
def anyio_backend() -> str:
    """aiobotocore needs asyncio."""
    return "asyncio"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of a moto server on a free loopback port, for the whole session."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def make_queue(moto_endpoint: str) -> MakeQueue:
    """``make_queue(fifo=False, region="us-east-1")``: a fresh queue on the moto server."""

    def make(*, fifo: bool = False, region: str = "us-east-1") -> Queue:
        return Queue(moto_endpoint, fifo=fifo, region=region)

    return make
