"""DynamoDB over real HTTP: moto's server on 127.0.0.1, a fresh table per test."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import pytest
import respx
from moto.server import ThreadedMotoServer

from anybatch.idempotency import DynamoDBStore

from ._handlers import BATCHED
from ._wire import Wire

_names = itertools.count()


class Table:
    """A fresh moto table in the incumbent's layout, read through boto3 for the checks."""

    def __init__(self, endpoint: str, *, sort_key: bool = False) -> None:
        self.endpoint = endpoint
        self.client: Any = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        self.name = f"idempotency-{next(_names)}"
        keys = [{"AttributeName": "id", "KeyType": "HASH"}]
        attributes = [{"AttributeName": "id", "AttributeType": "S"}]
        if sort_key:
            keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
            attributes.append({"AttributeName": "sk", "AttributeType": "S"})
        self.client.create_table(
            TableName=self.name,
            KeySchema=keys,
            AttributeDefinitions=attributes,
            BillingMode="PAY_PER_REQUEST",
        )

    def items(self) -> list[dict[str, Any]]:
        """Every item of the table, as DynamoDB returns it."""
        return list(self.client.scan(TableName=self.name, ConsistentRead=True)["Items"])

    def statuses(self) -> list[str]:
        """Every item's status, sorted."""
        return sorted(item["status"]["S"] for item in self.items())

    def store(self, **kwargs: Any) -> DynamoDBStore:
        """An anybatch store on this table."""
        return DynamoDBStore(
            self.name, endpoint_url=self.endpoint, region_name="us-east-1", **kwargs
        )


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of a moto server on a free loopback port, for the whole session."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def table(moto_endpoint: str) -> Table:
    """A fresh table on the moto server."""
    return Table(moto_endpoint)


@pytest.fixture
async def dynamo(table: Table) -> AsyncIterator[DynamoDBStore]:
    """An anybatch store on ``table``, its clients closed after the test (async tests)."""
    store = table.store()
    yield store
    await store.aclose()
    store.close()


@pytest.fixture
def blocking_dynamo(table: Table) -> Iterator[DynamoDBStore]:
    """An anybatch store on ``table``, for blocking tests."""
    store = table.store()
    yield store
    store.close()


@pytest.fixture(params=[False, True], ids=["per-record", "batched"])
def batched_writes(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Runs a test with make_handler's handlers per record, then batched (``batched=True``)."""
    BATCHED[0] = request.param
    try:
        yield request.param
    finally:
        BATCHED[0] = False


@pytest.fixture
def wire(table: Table) -> Iterator[Wire]:
    """The scripted wire to ``table``'s moto server."""
    found = Wire(table.endpoint)
    with respx.mock(using="httpx", assert_all_called=False) as router:
        router.post(f"{table.endpoint}/").mock(side_effect=found)
        yield found
