"""The aiobotocore adapter of :class:`~._deleter.SQSBatchApi`: one SQS client per region.

Clients are made on first use (a batch where every record succeeded never needs one, nor
imports aiobotocore), then kept for the warm invocations that follow, on the event loop that
made them: an aiohttp connection pool belongs to one loop. Closing them is ``aclose()``.
"""

from __future__ import annotations

# aiobotocore and botocore ship no type information: this module is where their values meet
# typed code (through the _SQSClient protocol), so pyright's "unknown type" checks stop here.
# pyright: reportMissingTypeStubs=false, reportUnknownMemberType=false
# pyright: reportUnknownVariableType=false, reportUnknownArgumentType=false
import asyncio
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import TYPE_CHECKING, Any, Protocol, cast

from anybatch._botocore import remember_user_agent
from anybatch._exceptions import ProcessorStateError

from ._deleter import SQSCallError
from ._plan import Action, Problem, QueueRef, call_problem, queue_url

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from aiobotocore.session import AioSession
    from botocore.config import Config

__all__ = ["AioSQS", "from_boto3_session"]


def from_boto3_session(boto3_session: Any) -> tuple[AioSession, dict[str, str | None]]:
    """An aiobotocore session that reads what a boto3 ``Session`` was given.

    Its profile and region carry over. Credentials given to the boto3 session explicitly
    (keys, token) are passed to every client; credentials it found itself (environment,
    profile, container or instance role) are found again by aiobotocore's own chain, which
    refreshes them, as a boto3 client would.
    """
    from aiobotocore.session import AioSession

    botocore_session = getattr(boto3_session, "_session", None)
    get_credentials = getattr(boto3_session, "get_credentials", None)
    if botocore_session is None or get_credentials is None:
        raise TypeError(f"boto3_session must be a boto3.session.Session, got {boto3_session!r}")
    profile = cast("str | None", botocore_session.get_config_variable("profile"))
    session = AioSession(profile=profile)
    region = cast("str | None", boto3_session.region_name)
    if region:
        session.set_config_variable("region", region)
    credentials = get_credentials()
    if credentials is None or getattr(credentials, "method", None) != "explicit":
        return session, {}
    frozen = credentials.get_frozen_credentials()
    return session, {
        "aws_access_key_id": frozen.access_key,
        "aws_secret_access_key": frozen.secret_key,
        "aws_session_token": frozen.token,
    }


class _Meta(Protocol):
    @property
    def endpoint_url(self) -> str: ...


class _SQSClient(Protocol):
    """The part of an aiobotocore SQS client used here."""

    @property
    def meta(self) -> _Meta: ...

    async def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]: ...

    async def change_message_visibility_batch(self, **kwargs: Any) -> dict[str, Any]: ...

    async def receive_message(self, **kwargs: Any) -> dict[str, Any]: ...

    async def get_queue_attributes(self, **kwargs: Any) -> dict[str, Any]: ...

    async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]: ...


class AioSQS:
    """Send SQS batch calls through aiobotocore, with a client per region.

    *session*, *config* and *endpoint_url* are given to ``create_client`` as they are; what
    they leave out comes from botocore's own configuration (``AWS_ENDPOINT_URL_SQS``,
    credentials chain, profile). The region is the queue's, from its ARN. Retries are
    anybatch's (``RetryPolicy``), so unless *config* sets ``retries`` the clients make one
    attempt per call; ``max_pool_connections`` defaults to the number of concurrent calls;
    and unless it sets ``parameter_validation``, botocore does not validate the requests
    before sending them (anybatch builds them, and SQS validates them).
    """

    def __init__(
        self,
        *,
        session: AioSession | None = None,
        boto3_session: Any = None,
        config: Config | None = None,
        endpoint_url: str | None = None,
        max_pool_connections: int = 10,
    ) -> None:
        self._credentials: dict[str, str | None] = {}
        if boto3_session is not None:
            if session is not None:
                raise TypeError("give session= (aiobotocore) or boto3_session=, not both")
            session, self._credentials = from_boto3_session(boto3_session)
        self._session = session
        self._config = config
        self._endpoint_url = endpoint_url
        self._max_pool_connections = max_pool_connections
        self._clients: dict[str | None, _SQSClient] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stack = AsyncExitStack()
        self._lock: asyncio.Lock | None = None

    @property
    def has_clients(self) -> bool:
        """Whether a client is open (and needs :meth:`aclose`)."""
        return bool(self._clients)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the open clients belong to."""
        return self._loop

    def check_loop(self) -> None:
        """Raise :class:`ProcessorStateError` if open clients belong to another event loop."""
        loop = self._loop
        if not self._clients or loop is None or loop is asyncio.get_running_loop():
            return
        state = "closed" if loop.is_closed() else "not closed"
        raise ProcessorStateError(
            f"this processor's SQS clients belong to another event loop ({state}): a "
            "processor's clients live on one loop. Run every invocation on one loop "
            "(anybatch.as_lambda_handler), or `await processor.aclose()` before a loop ends"
        )

    async def send(
        self, action: Action, queue: QueueRef, entries: list[dict[str, Any]]
    ) -> Mapping[str, Any]:
        """Make one ``DeleteMessageBatch``, ``ChangeMessageVisibilityBatch`` or send call."""

        async def call(client: _SQSClient) -> Mapping[str, Any]:
            url = queue_url(client.meta.endpoint_url, queue)
            if action == "send":
                return await client.send_message_batch(QueueUrl=url, Entries=entries)
            if action == "delete":
                return await client.delete_message_batch(QueueUrl=url, Entries=entries)
            return await client.change_message_visibility_batch(QueueUrl=url, Entries=entries)

        return await self._call(queue.region, call)

    async def receive(
        self,
        url: str,
        region: str | None,
        *,
        max_messages: int,
        wait_time: float,
        visibility_timeout: int,
    ) -> list[dict[str, Any]]:
        """One ``ReceiveMessage`` long poll: the messages, with every attribute."""

        async def call(client: _SQSClient) -> Mapping[str, Any]:
            return await client.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=int(wait_time),
                VisibilityTimeout=visibility_timeout,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )

        answer = await self._call(region, call)
        return list(answer.get("Messages") or [])

    async def queue_attributes(
        self, url: str, region: str | None, names: list[str]
    ) -> dict[str, str]:
        """``GetQueueAttributes`` of the queue at *url*."""

        async def call(client: _SQSClient) -> Mapping[str, Any]:
            return await client.get_queue_attributes(QueueUrl=url, AttributeNames=names)

        answer = await self._call(region, call)
        return dict(answer.get("Attributes") or {})

    async def attributes_of(self, queue: QueueRef, names: list[str]) -> dict[str, str]:
        """``GetQueueAttributes`` of *queue*, at the endpoint of its region's client."""

        async def call(client: _SQSClient) -> Mapping[str, Any]:
            url = queue_url(client.meta.endpoint_url, queue)
            return await client.get_queue_attributes(QueueUrl=url, AttributeNames=names)

        answer = await self._call(queue.region, call)
        return dict(answer.get("Attributes") or {})

    async def _call(
        self, region: str | None, call: Callable[[_SQSClient], Awaitable[Mapping[str, Any]]]
    ) -> Mapping[str, Any]:
        """Make *call* with the region's client; botocore's errors become :class:`SQSCallError`."""
        try:
            return await call(await self._client(region))
        except Exception as exc:
            problem = _problem_of(exc)
            if problem is None:
                raise
            raise SQSCallError(problem) from exc

    async def _client(self, region: str | None) -> _SQSClient:
        self.check_loop()
        client = self._clients.get(region)
        if client is not None:
            return client
        running = asyncio.get_running_loop()
        if self._lock is None or self._loop is not running:  # no client yet on this loop
            self._loop = running
            self._lock = asyncio.Lock()
        async with self._lock:
            client = self._clients.get(region)
            if client is None:
                client = await self._stack.enter_async_context(self._create(region))
                remember_user_agent(client)
                self._clients[region] = client
        return client

    def _create(self, region: str | None) -> AbstractAsyncContextManager[_SQSClient]:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        if self._session is None:
            self._session = get_session()
        # Retries are the adapter's own (per entry). botocore's client-side validation checks
        # types the adapter's requests have by construction (every value is its own or
        # checked where it came in, and SQS checks them all again), at about 4% of a busy
        # worker's instructions (bench/worker_instructions.py); a config can turn it on.
        config = AioConfig(
            retries={"total_max_attempts": 1},
            max_pool_connections=self._max_pool_connections,
            parameter_validation=False,
        )
        if self._config is not None:
            config = config.merge(self._config)
        return cast(
            "AbstractAsyncContextManager[_SQSClient]",
            self._session.create_client(
                "sqs",
                region_name=region,
                endpoint_url=self._endpoint_url,
                config=config,
                **self._credentials,
            ),
        )

    async def aclose(self) -> None:
        """Close every client. The next call makes new ones (on the loop it runs on)."""
        loop = self._loop
        if not self._clients or loop is None:
            return
        if loop is not asyncio.get_running_loop() and not loop.is_closed():
            raise ProcessorStateError(
                "this processor's SQS clients live on another running event loop: close "
                "them there (`await processor.aclose()` for the clients async_process() "
                "made, `processor.close()` for those process() made)"
            )
        stack = self._stack
        self._clients = {}
        self._loop = None
        self._lock = None
        self._stack = AsyncExitStack()
        if not loop.is_closed():  # a closed loop's connections are gone with it
            await stack.aclose()


def _problem_of(exc: Exception) -> Problem | None:
    """What a botocore error says went wrong; ``None`` for any other exception.

    Imported here, on the error path: a call that succeeds (nearly every one) pays nothing
    for botocore's exception classes.
    """
    from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(exc, ClientError):
        error = cast("dict[str, Any]", exc.response.get("Error") or {})
        status = cast("int | None", exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
        code = str(error.get("Code") or "Unknown")
        return call_problem(code, str(error.get("Message") or exc), status=status, connection=False)
    if isinstance(exc, HTTPClientError | BotoConnectionError):
        return call_problem(type(exc).__name__, str(exc), status=None, connection=True)
    if isinstance(exc, BotoCoreError):  # no credentials, invalid parameters...: final
        return Problem(type(exc).__name__, str(exc), False)
    return None
