"""``idempotent``: a record handler, async or blocking, made idempotent per record.

The decisions are :func:`~._flow.flow`'s; this module only drives it: the async driver awaits
the store and the handler, the blocking one calls them (a store without blocking calls is
reached on anybatch's loop thread). Both wrap the run in a :class:`~._flow.Flights` entry, so
that two records of one key in one process run the handler once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Literal, NamedTuple, TypeVar, cast

from anybatch._context import ENDS, record_end
from anybatch._handlers import accepts_lambda_context, is_async_callable

from ._flow import RUN, Attempt, Claim, Complete, Flight, Flights, Release, Step, after_wait, flow
from ._keys import hash_value, key_value, payload_of, record_identifier, result_type_of
from ._ledger import (
    NOT_CLAIMED,
    Ledger,
    Ledgers,
    claim_ahead,
    claim_ahead_blocking,
    wait_ready,
    wait_ready_blocking,
)
from ._store import BatchingIdempotencyStore, BlockingIdempotencyStore, IdempotencyStore

__all__ = [
    "DEFAULT_EXPIRES_AFTER",
    "DEFAULT_IN_PROGRESS_TIMEOUT",
    "RECORD_TIMEOUT_MARGIN",
    "idempotent",
    "in_progress_until",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Seconds a COMPLETED result is replayed (the incumbent's default, one hour).
DEFAULT_EXPIRES_AFTER = 3600.0
#: Seconds an IN_PROGRESS mark lasts at most, and without a Lambda context: the longest a
#: Lambda invocation runs.
DEFAULT_IN_PROGRESS_TIMEOUT = 900.0
#: Seconds an IN_PROGRESS mark outlives its record's ``record_timeout``: time for the
#: handler's cancellation to land, and for the clocks of the processes sharing a store to
#: differ a little.
RECORD_TIMEOUT_MARGIN = 1.0

KeySpec = Literal["id", "payload"] | Callable[[Any], object]


class _Settings(NamedTuple):
    """One decorated handler's settings, checked once."""

    store: IdempotencyStore
    key: Callable[[Any], object]
    validate: Callable[[Any], object] | None
    expires_after: float
    in_progress_timeout: float
    prefix: str
    result_type: Any

    def attempt(self, record: object, lambda_context: object) -> Attempt:
        """The run of *record*: its key and payload hash, its mark's length."""
        key = f"{self.prefix}#{hash_value(key_value(self.key, record))}"
        validation = None if self.validate is None else hash_value(self.validate(record))
        return Attempt(
            key,
            validation,
            expires_after=self.expires_after,
            in_progress_ms=self.in_progress_timeout * 1000,
            result_type=self.result_type,
            in_progress_until=in_progress_until(lambda_context),
        )


def in_progress_until(lambda_context: object) -> float | None:
    """When an IN_PROGRESS mark written now expires at the latest, in epoch seconds.

    The earliest of: the invocation's end (*lambda_context*'s remaining time); with a
    context that has ``get_hidden_time_in_millis`` (the SQS worker's), how long the batch's
    messages stay hidden should the worker stop; and, with a ``record_timeout``, the
    record's own end plus :data:`RECORD_TIMEOUT_MARGIN`. ``None`` when none applies.
    """
    now = time.time()
    until: float | None = None
    for name in ("get_remaining_time_in_millis", "get_hidden_time_in_millis"):
        left = getattr(lambda_context, name, None)
        if left is not None:
            ends = now + max(0.0, float(left())) / 1000
            until = ends if until is None else min(until, ends)
    record_ends = record_end()
    if record_ends is not None:
        ends = now + max(0.0, record_ends - time.monotonic()) + RECORD_TIMEOUT_MARGIN
        until = ends if until is None else min(until, ends)
    return until


def _key_function(key: KeySpec) -> Callable[[Any], object]:
    if key == "id":
        return record_identifier
    if key == "payload":
        return payload_of
    if callable(key):
        return key
    raise TypeError(f"key= takes 'id', 'payload' or a function of the record, got {key!r}")


def idempotent(
    store: IdempotencyStore,
    *,
    key: KeySpec = "id",
    validate: bool | Callable[[Any], object] = False,
    expires_after: float = DEFAULT_EXPIRES_AFTER,
    in_progress_timeout: float = DEFAULT_IN_PROGRESS_TIMEOUT,
    key_prefix: str | None = None,
    result_type: Any = None,
    batched: bool = False,
) -> Callable[[F], F]:
    """Make a record handler idempotent: each key runs once; later deliveries replay its result.

    ``async def`` and plain ``def`` handlers alike, taking the record view or the ``model=``
    instance (and ``lambda_context`` if they name it)::

        @idempotent(DynamoDBStore("IdempotencyTable"))
        async def record_handler(record: SQSRecord) -> dict[str, str]: ...

    Before the handler runs, a conditional write marks the key IN_PROGRESS. A key COMPLETED
    within ``expires_after`` seconds returns its stored result without running the handler;
    a key IN_PROGRESS elsewhere fails the record with :class:`IdempotencyInProgressError`
    (it is retried); a handler that raises releases the key. Two records of one key in one
    process run once: the second waits for the first and gets its result.

    Args:
        store: where the records live (:class:`DynamoDBStore`, :class:`InMemoryStore`).
        key: ``"id"``, the record's identifier (SQS ``messageId``, Kinesis and DynamoDB
            sequence number, Kafka topic, partition and offset); ``"payload"``, its payload
            (SQS body, Kinesis data, DynamoDB new image, Kafka value); or a function of the
            record (or model) whose JSON value is hashed.
        validate: ``True`` to store the payload's hash and refuse a record of the same key
            with another payload (:class:`IdempotencyValidationError`); or a function of the
            record whose value is compared.
        expires_after: seconds a result is replayed (the TTL).
        in_progress_timeout: the longest an IN_PROGRESS mark lasts. With a Lambda context
            the mark expires when the invocation does (its remaining time); in the SQS
            worker, one visibility timeout after the handler starts; with the processor's
            ``record_timeout``, at most a second after the record's own end; never after
            this.
        key_prefix: the keys' prefix, by default
            ``<AWS_LAMBDA_FUNCTION_NAME>.<module>.<qualname>`` as the incumbent's.
        result_type: the type of the result, to rebuild it on replay (a pydantic model,
            ``list[Model]``...); by default a pydantic model named by the handler's return
            annotation, else JSON as stored.
        batched: claim the keys of the whole batch at once, when its first record starts,
            and store the results when the batch ends: on :class:`DynamoDBStore`, one
            ``TransactWriteItems`` per 100 records and one ``BatchWriteItem`` per 25,
            instead of two calls a record. A transaction costs two write units an item,
            so a record costs three instead of two. The store must implement
            :class:`BatchingIdempotencyStore`. Not with a ``record_timeout`` (each mark
            ends with its own record): records then claim their own keys.
    """
    if expires_after <= 0 or in_progress_timeout <= 0:
        raise ValueError("expires_after and in_progress_timeout must be positive seconds")
    if validate is True:
        check: Callable[[Any], object] | None = payload_of
    elif validate is False:
        check = None
    elif callable(validate):
        check = validate
    else:
        raise TypeError(f"validate= takes True, False or a function, got {validate!r}")
    key_function = _key_function(key)
    if batched and not isinstance(store, BatchingIdempotencyStore):
        raise TypeError(
            f"batched=True needs a store with claim_many() and settle_many() "
            f"(a BatchingIdempotencyStore); {store!r} has not"
        )

    def decorate(func: F) -> F:
        prefix = key_prefix or (
            f"{os.getenv('AWS_LAMBDA_FUNCTION_NAME', 'test-func')}."
            f"{func.__module__}.{func.__qualname__}"
        )
        settings = _Settings(
            store,
            key_function,
            check,
            float(expires_after),
            float(in_progress_timeout),
            prefix,
            result_type if result_type is not None else result_type_of(func),
        )
        ledgers = None
        if batched:
            ENDS.use()  # batches now note what their records leave for their end
            ledgers = Ledgers(settings)
        if is_async_callable(func):
            wrapper = _async_wrapper(func, settings, ledgers)
        else:
            wrapper = _blocking_wrapper(func, settings, ledgers)
        for name in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(wrapper, name, getattr(func, name, None))
        return cast("F", wrapper)

    return decorate


def _call(
    func: Callable[..., Any], record: object, lambda_context: object, takes_context: bool
) -> Callable[[], Any]:
    if lambda_context is not None and takes_context:
        return lambda: func(record, lambda_context=lambda_context)
    return lambda: func(record)


def _async_wrapper(
    func: Callable[..., Awaitable[Any]], settings: _Settings, ledgers: Ledgers | None
) -> Any:
    flights = Flights()
    store = settings.store
    takes = accepts_lambda_context(func)  # read once, not a record

    async def drive(
        steps: Generator[Step, Any, Any], call: Callable[[], Any], ledger: Ledger | None
    ) -> Any:
        sent: Any = None
        error: Exception | None = None
        while True:
            try:
                step = steps.send(sent) if error is None else steps.throw(error)
            except StopIteration as stop:
                return stop.value
            sent = error = None
            try:
                if step is RUN:
                    sent = await call()
                elif isinstance(step, Claim):
                    held = NOT_CLAIMED if ledger is None else ledger.take(step.record.key, step.now)
                    if held is NOT_CLAIMED:
                        sent = await store.claim(step.record, step.now)
                    else:
                        sent = held
                elif isinstance(step, Complete):
                    if ledger is None or not ledger.hold(step.record):
                        await store.complete(step.record)
                elif isinstance(step, Release):
                    await store.release(step.key)
            except Exception as exc:
                error = exc

    async def idempotent_handler(record: Any, lambda_context: Any = None) -> Any:
        attempt = settings.attempt(record, lambda_context)
        ledger = None
        if ledgers is not None:
            ledger, mine, ids = ledgers.find(_async_event)
            if mine:
                await claim_ahead(ledger, ids, lambda_context)  # type: ignore[arg-type]
            elif ledger is not None:
                await wait_ready(ledger)
        while True:
            flight, mine = flights.board(attempt, time.time())
            if mine:
                break
            await _wait_async(flight)
            done, value = after_wait(flight, attempt)
            if done:
                return value
        ok = False
        try:
            value = await drive(
                flow(attempt, time.time), _call(func, record, lambda_context, takes), ledger
            )
            ok = True
            return value
        finally:
            flights.land(attempt.key, flight, ok, attempt.data)

    return idempotent_handler


def _async_event() -> Any:
    from anyio import Event

    return Event()


async def _wait_async(flight: Flight) -> None:
    # Rare (two records of one key at once): a thread waits, on asyncio and trio alike.
    from anyio import CapacityLimiter, to_thread

    done = flight.done
    assert done is not None
    timeout = max(0.0, flight.ends - time.time())
    await to_thread.run_sync(done.wait, timeout, abandon_on_cancel=True, limiter=CapacityLimiter(1))


def _blocking_wrapper(
    func: Callable[..., Any], settings: _Settings, ledgers: Ledgers | None
) -> Any:
    flights = Flights()
    store = settings.store
    takes = accepts_lambda_context(func)  # read once, not a record
    if isinstance(store, BlockingIdempotencyStore):
        claim = store.claim_blocking
        complete = store.complete_blocking
        release = store.release_blocking
    else:
        from anybatch._portal import call_on_loop

        # aiobotocore (and so DynamoDBStore) needs asyncio: anybatch's asyncio loop thread.
        def claim(record: Any, now: float) -> Any:
            return call_on_loop("asyncio", store.claim, record, now)

        def complete(record: Any) -> None:
            call_on_loop("asyncio", store.complete, record)

        def release(key: str) -> None:
            call_on_loop("asyncio", store.release, key)

    def drive(
        steps: Generator[Step, Any, Any], call: Callable[[], Any], ledger: Ledger | None
    ) -> Any:
        sent: Any = None
        error: Exception | None = None
        while True:
            try:
                step = steps.send(sent) if error is None else steps.throw(error)
            except StopIteration as stop:
                return stop.value
            sent = error = None
            try:
                if step is RUN:
                    sent = call()
                elif isinstance(step, Claim):
                    held = NOT_CLAIMED if ledger is None else ledger.take(step.record.key, step.now)
                    sent = claim(step.record, step.now) if held is NOT_CLAIMED else held
                elif isinstance(step, Complete):
                    if ledger is None or not ledger.hold(step.record):
                        complete(step.record)
                elif isinstance(step, Release):
                    release(step.key)
            except Exception as exc:
                error = exc

    def idempotent_handler(record: Any, lambda_context: Any = None) -> Any:
        attempt = settings.attempt(record, lambda_context)
        ledger = None
        if ledgers is not None:
            ledger, mine, ids = ledgers.find()
            if mine:
                claim_ahead_blocking(ledger, ids, lambda_context)  # type: ignore[arg-type]
            elif ledger is not None:
                wait_ready_blocking(ledger)
        while True:
            flight, mine = flights.board(attempt, time.time())
            if mine:
                break
            done = flight.done
            assert done is not None
            done.wait(max(0.0, flight.ends - time.time()))
            finished, value = after_wait(flight, attempt)
            if finished:
                return value
        ok = False
        try:
            value = drive(
                flow(attempt, time.time), _call(func, record, lambda_context, takes), ledger
            )
            ok = True
            return value
        finally:
            flights.land(attempt.key, flight, ok, attempt.data)

    return idempotent_handler
