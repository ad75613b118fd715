"""The DynamoDB store, through aiobotocore, on the incumbent's table layout.

A table made for Powertools' ``DynamoDBPersistenceLayer`` works unchanged: the same attribute
names by default (``id``, ``expiration`` as the TTL attribute, ``in_progress_expiration``,
``status``, ``data``, ``validation``), the same formats (seconds for ``expiration``,
milliseconds for ``in_progress_expiration``, the result as a JSON string), the same
conditional write, and an optional sort key with a static partition key.

aiobotocore is imported on the first call. It runs on asyncio only: on trio, and from blocking
handlers, the calls are made on anybatch's asyncio loop thread. Clients are made per event
loop (an aiohttp pool belongs to one loop) and kept for the warm invocations that follow.
"""

from __future__ import annotations

# aiobotocore and botocore ship no type information: their values meet typed code here.
# pyright: reportMissingTypeStubs=false, reportUnknownMemberType=false
# pyright: reportUnknownVariableType=false, reportUnknownArgumentType=false
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar, cast

from anybatch._botocore import remember_user_agent
from anybatch._exceptions import MissingDependencyError

from ._store import IN_PROGRESS, StoredRecord

if TYPE_CHECKING:
    import asyncio

    from aiobotocore.session import AioSession
    from botocore.config import Config

__all__ = ["DynamoDBStore"]

T = TypeVar("T")

#: The incumbent's condition for a new IN_PROGRESS mark (``_put_record``).
CONDITION = (
    "attribute_not_exists(#id) OR #expiry < :now OR "
    "(#status = :inprogress AND attribute_exists(#in_progress_expiry) AND "
    "#in_progress_expiry < :now_in_millis)"
)

#: The most items one ``TransactWriteItems`` takes, and one ``BatchWriteItem``.
TRANSACTION_ITEMS = 100
BATCH_WRITE_ITEMS = 25


def _on_asyncio() -> bool:
    import asyncio  # here: importing the store costs no asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # trio: aiobotocore needs asyncio
        return False
    return True


class _Client:
    """One aiobotocore DynamoDB client, and what closes it."""

    __slots__ = ("client", "stack")

    def __init__(self, client: Any, stack: AsyncExitStack) -> None:
        self.client = client
        self.stack = stack


class DynamoDBStore:
    """Idempotency records in a DynamoDB table, as the incumbent keeps them.

    The table needs a string partition key named ``key_attr`` (``id``), or, with
    ``sort_key_attr``, a partition key holding ``static_pk_value`` (by default
    ``idempotency#<AWS_LAMBDA_FUNCTION_NAME>``) and a string sort key; turn on TTL on
    ``expiry_attr``. The attribute names are the incumbent's defaults.

    ``session`` (an aiobotocore ``AioSession``), ``config`` (a botocore ``Config``, merged
    over the defaults: standard retries, 3 attempts), ``endpoint_url`` and ``region_name`` go
    to ``create_client``. Close the clients with :meth:`aclose` (async) or :meth:`close`.
    """

    def __init__(
        self,
        table_name: str,
        *,
        key_attr: str = "id",
        sort_key_attr: str | None = None,
        static_pk_value: str | None = None,
        expiry_attr: str = "expiration",
        in_progress_expiry_attr: str = "in_progress_expiration",
        status_attr: str = "status",
        data_attr: str = "data",
        validation_key_attr: str = "validation",
        endpoint_url: str | None = None,
        region_name: str | None = None,
        session: AioSession | None = None,
        config: Config | None = None,
    ) -> None:
        if sort_key_attr == key_attr:
            raise ValueError(f"key_attr and sort_key_attr cannot both be {key_attr!r}")
        self.table_name = table_name
        self.key_attr = key_attr
        self.sort_key_attr = sort_key_attr
        self.static_pk_value = static_pk_value or (
            f"idempotency#{os.getenv('AWS_LAMBDA_FUNCTION_NAME', '')}"
        )
        self.expiry_attr = expiry_attr
        self.in_progress_expiry_attr = in_progress_expiry_attr
        self.status_attr = status_attr
        self.data_attr = data_attr
        self.validation_key_attr = validation_key_attr
        self._endpoint_url = endpoint_url
        self._region_name = region_name
        self._session = session
        self._config = config
        self._clients: dict[asyncio.AbstractEventLoop, _Client] = {}
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"DynamoDBStore({self.table_name!r})"

    # -- the items ------------------------------------------------------------------------

    def key_of(self, key: str) -> dict[str, Any]:
        """The item key of *key*: ``{"id": {"S": key}}``, or the static partition and *key*."""
        if self.sort_key_attr:
            return {
                self.key_attr: {"S": self.static_pk_value},
                self.sort_key_attr: {"S": key},
            }
        return {self.key_attr: {"S": key}}

    def item_of(self, record: StoredRecord) -> dict[str, Any]:
        """*record* as a DynamoDB item, in the incumbent's format."""
        item = {
            **self.key_of(record.key),
            self.expiry_attr: {"N": str(record.expires_at)},
            self.status_attr: {"S": record.status},
        }
        if record.in_progress_expires_at is not None:
            item[self.in_progress_expiry_attr] = {"N": str(record.in_progress_expires_at)}
        if record.data is not None:
            item[self.data_attr] = {"S": record.data}
        if record.validation:
            item[self.validation_key_attr] = {"S": record.validation}
        return item

    def record_of(self, item: Mapping[str, Any]) -> StoredRecord:
        """The :class:`StoredRecord` a DynamoDB item holds (anybatch's or the incumbent's)."""

        def text(name: str) -> str | None:
            value = cast("Mapping[str, Any] | None", item.get(name))
            return None if value is None else cast("str | None", value.get("S"))

        def number(name: str) -> int | None:
            value = cast("Mapping[str, Any] | None", item.get(name))
            found = None if value is None else value.get("N")
            return None if found is None else int(Decimal(str(found)))

        key = text(self.sort_key_attr or self.key_attr) or ""
        return StoredRecord(
            key,
            text(self.status_attr) or "",
            number(self.expiry_attr) or 0,
            number(self.in_progress_expiry_attr),
            text(self.data_attr),
            text(self.validation_key_attr) or None,
        )

    # -- the three calls ------------------------------------------------------------------

    async def claim(self, record: StoredRecord, now: float) -> StoredRecord | None:
        """The incumbent's conditional ``PutItem``; the item that holds the key when it fails."""
        return await self._call(self._claim, record, now)

    async def complete(self, record: StoredRecord) -> None:
        """``UpdateItem`` the key to COMPLETED with its result, as the incumbent does."""
        await self._call(self._complete, record)

    async def release(self, key: str) -> None:
        """``DeleteItem`` the key."""
        await self._call(self._release, key)

    async def _claim(self, record: StoredRecord, now: float) -> StoredRecord | None:
        from botocore.exceptions import ClientError

        client = await self._client()
        for _ in range(3):
            try:
                await client.put_item(**self._put_of(record, now))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                item = cast("Mapping[str, Any] | None", exc.response.get("Item"))
                if item is None:  # an endpoint that does not return it: read it
                    answer = await client.get_item(
                        TableName=self.table_name,
                        Key=self.key_of(record.key),
                        ConsistentRead=True,
                    )
                    item = cast("Mapping[str, Any] | None", answer.get("Item"))
                if item is not None:
                    return self.record_of(item)
                continue  # deleted since: claim again
            return None
        raise RuntimeError(f"the item of {record.key!r} keeps changing under the claim")

    async def _complete(self, record: StoredRecord) -> None:
        client = await self._client()
        expression = "SET #response_data = :response_data, #expiry = :expiry, #status = :status"
        names = {
            "#expiry": self.expiry_attr,
            "#response_data": self.data_attr,
            "#status": self.status_attr,
        }
        values: dict[str, Any] = {
            ":expiry": {"N": str(record.expires_at)},
            ":response_data": {"S": record.data or "null"},
            ":status": {"S": record.status},
        }
        if record.validation:
            expression += ", #validation_key = :validation_key"
            names["#validation_key"] = self.validation_key_attr
            values[":validation_key"] = {"S": record.validation}
        await client.update_item(
            TableName=self.table_name,
            Key=self.key_of(record.key),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    async def _release(self, key: str) -> None:
        client = await self._client()
        await client.delete_item(TableName=self.table_name, Key=self.key_of(key))

    # -- many keys a call (idempotent(..., batched=True)) ----------------------------------

    async def claim_many(
        self, records: Sequence[StoredRecord], now: float
    ) -> dict[str, StoredRecord | None]:
        """The claims of *records* in ``TransactWriteItems`` of up to 100 conditional puts.

        A transaction writes all its marks or none. One that a held key cancels tells which
        key and what holds it (its cancellation reasons, with the item): the others are
        tried again without it. A key left out of the answer (a failed call, a conflict) is
        claimed on its own when its record runs. A transaction costs two write units an item.
        """
        return await self._call(self._claim_many, records, now)

    async def settle_many(self, completed: Sequence[StoredRecord], released: Sequence[str]) -> None:
        """``BatchWriteItem``: each COMPLETED record put whole, each released key deleted.

        25 a call; what DynamoDB leaves unprocessed is sent again, three times at most.
        """
        # Abandoned, not waited for, when cancelled (its budget is spent): on trio and from
        # blocking handlers the call runs on anybatch's asyncio loop thread.
        await self._call(self._settle_many, completed, released, abandon=True)

    def _put_of(self, record: StoredRecord, now: float) -> dict[str, Any]:
        return {
            "TableName": self.table_name,
            "Item": self.item_of(record),
            "ConditionExpression": CONDITION,
            "ExpressionAttributeNames": {
                "#id": self.key_attr,
                "#expiry": self.expiry_attr,
                "#in_progress_expiry": self.in_progress_expiry_attr,
                "#status": self.status_attr,
            },
            "ExpressionAttributeValues": {
                ":now": {"N": str(int(now))},
                ":now_in_millis": {"N": str(int(now * 1000))},
                ":inprogress": {"S": IN_PROGRESS},
            },
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    async def _claim_many(
        self, records: Sequence[StoredRecord], now: float
    ) -> dict[str, StoredRecord | None]:
        from botocore.exceptions import BotoCoreError, ClientError

        client = await self._client()
        found: dict[str, StoredRecord | None] = {}
        for start in range(0, len(records), TRANSACTION_ITEMS):
            chunk = list(records[start : start + TRANSACTION_ITEMS])
            for _ in range(3):  # each round leaves out at least one held key
                if not chunk:
                    break
                try:
                    await client.transact_write_items(
                        TransactItems=[{"Put": self._put_of(record, now)} for record in chunk]
                    )
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                        return found  # throttled, failing: the rest are claimed one by one
                    reasons = cast(
                        "list[Mapping[str, Any]]", exc.response.get("CancellationReasons") or []
                    )
                    if len(reasons) != len(chunk):
                        return found
                    again: list[StoredRecord] = []
                    for record, reason in zip(chunk, reasons, strict=True):
                        code = reason.get("Code")
                        item = cast("Mapping[str, Any] | None", reason.get("Item"))
                        if code == "ConditionalCheckFailed" and item is not None:
                            found[record.key] = self.record_of(item)
                        elif code in (None, "", "None"):  # not written: another item failed
                            again.append(record)
                        # else (a conflict with another transaction...): claimed on its own
                    chunk = again
                except BotoCoreError:
                    return found  # the connection failed: the rest are claimed one by one
                else:
                    found.update(dict.fromkeys([record.key for record in chunk]))
                    break
        return found

    async def _settle_many(
        self, completed: Sequence[StoredRecord], released: Sequence[str]
    ) -> None:
        import asyncio

        client = await self._client()
        requests: list[dict[str, Any]] = [
            {"PutRequest": {"Item": self.item_of(record)}} for record in completed
        ]
        requests += [{"DeleteRequest": {"Key": self.key_of(key)}} for key in released]

        async def write(pending: list[dict[str, Any]]) -> int:
            # The count of writes that did not land; what is left unprocessed goes again.
            for attempt in range(4):
                if attempt:
                    await asyncio.sleep(0.05 * 2**attempt)
                answer = await client.batch_write_item(RequestItems={self.table_name: pending})
                unprocessed = cast("dict[str, Any]", answer.get("UnprocessedItems") or {})
                pending = cast("list[dict[str, Any]]", unprocessed.get(self.table_name) or [])
                if not pending:
                    return 0
            return len(pending)

        chunks = [
            requests[start : start + BATCH_WRITE_ITEMS]
            for start in range(0, len(requests), BATCH_WRITE_ITEMS)
        ]
        # At once: a chunk that fails does not hold back or stop the others.
        outcomes = await asyncio.gather(*map(write, chunks), return_exceptions=True)
        failed, first = 0, None
        for chunk, outcome in zip(chunks, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failed, first = failed + len(chunk), first or outcome
            else:
                failed += outcome
        if failed:
            raise RuntimeError(
                f"{failed} of the batch's {len(requests)} idempotency writes failed"
                + ("" if first is None else f" ({first!r})")
            ) from first

    # -- the clients ----------------------------------------------------------------------

    async def _call(
        self, method: Callable[..., Awaitable[T]], *args: Any, abandon: bool = False
    ) -> T:
        if _on_asyncio():
            return await method(*args)
        from anyio import to_thread

        from anybatch._portal import call_on_loop

        return await to_thread.run_sync(
            call_on_loop, "asyncio", method, *args, abandon_on_cancel=abandon
        )

    async def _client(self) -> Any:
        import asyncio

        loop = asyncio.get_running_loop()
        found = self._clients.get(loop)
        if found is not None:
            return found.client
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            found = self._clients.get(loop)
            if found is None:
                for old in [old for old in self._clients if old.is_closed()]:
                    del self._clients[old]  # its connections went with it
                    self._locks.pop(old, None)
                stack = AsyncExitStack()
                client = await stack.enter_async_context(self._create())
                remember_user_agent(client)
                found = self._clients[loop] = _Client(client, stack)
        return found.client

    def _create(self) -> Any:
        try:
            from aiobotocore.config import AioConfig
            from aiobotocore.session import get_session
        except ImportError:
            raise MissingDependencyError(
                "DynamoDBStore needs aiobotocore, which is not installed: "
                "pip install 'anybatch[idempotency]'"
            ) from None
        if self._session is None:
            self._session = get_session()
        config = AioConfig(retries={"mode": "standard", "total_max_attempts": 3})
        if self._config is not None:
            config = config.merge(self._config)
        return self._session.create_client(
            "dynamodb",
            region_name=self._region_name,
            endpoint_url=self._endpoint_url,
            config=config,
        )

    async def aclose(self) -> None:
        """Close the client of the running event loop (the next call makes a new one)."""
        if not _on_asyncio():
            from anyio import to_thread

            from anybatch._portal import call_on_loop

            await to_thread.run_sync(call_on_loop, "asyncio", self.aclose)
            return
        import asyncio

        found = self._clients.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found.stack.aclose()

    def close(self) -> None:
        """Close the client blocking handlers used (on anybatch's loop thread). Blocks."""
        from anybatch._portal import call_on_loop

        call_on_loop("asyncio", self.aclose)
