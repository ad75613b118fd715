"""Lambda entry points: the ``process_partial_response`` functions and the decorators."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from ._exceptions import HandlerTypeError
from ._handlers import is_async_callable
from ._invocation import Invocation

if TYPE_CHECKING:
    from ._outcome import PartialItemFailureResponse
    from ._processor import BasePartialProcessor

__all__ = [
    "as_lambda_handler",
    "async_batch_processor",
    "async_process_partial_response",
    "batch_processor",
    "process_partial_response",
]

RecordT = TypeVar("RecordT")
RecordT_contra = TypeVar("RecordT_contra", contravariant=True)
R = TypeVar("R")


class ContextRecordHandler(Protocol[RecordT_contra]):
    """A record handler that also takes the Lambda context: ``(record, lambda_context=...)``."""

    def __call__(self, record: RecordT_contra, /, *, lambda_context: Any) -> object: ...


def process_partial_response(
    event: Any,
    record_handler: Callable[[RecordT], object] | ContextRecordHandler[RecordT],
    processor: BasePartialProcessor[RecordT],
    context: Any = None,
) -> PartialItemFailureResponse:
    """Process every record of *event* and return the partial batch response. Blocks.

    *record_handler* may be sync or async. Raises :class:`~anybatch.BatchProcessingError`
    when every record failed (unless the processor has
    ``raise_on_entire_batch_failure=False``), and :class:`~anybatch.InvalidEventError` for
    an event that cannot be read.
    """
    with Invocation(processor, event, record_handler, context) as invocation:
        invocation.process()
        return invocation.response()


async def async_process_partial_response(
    event: Any,
    record_handler: Callable[[RecordT], object] | ContextRecordHandler[RecordT],
    processor: BasePartialProcessor[RecordT],
    context: Any = None,
) -> PartialItemFailureResponse:
    """Process every record of *event* on the running event loop; return the response.

    The awaitable twin of :func:`process_partial_response`.
    """
    with Invocation(processor, event, record_handler, context) as invocation:
        await invocation.async_process()
        return invocation.response()


def batch_processor(
    *,
    record_handler: Callable[[RecordT], object] | ContextRecordHandler[RecordT],
    processor: BasePartialProcessor[RecordT],
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Decorate a ``def lambda_handler(event, context)``: the batch is processed first.

    Inside the handler, ``processor.response()`` is the partial batch response to return.
    """

    def decorator(handler: Callable[..., R]) -> Callable[..., R]:
        if is_async_callable(handler):
            raise HandlerTypeError(
                f"batch_processor decorates a plain 'def' lambda handler, but {handler!r} is "
                "'async def': use @async_batch_processor, and as_lambda_handler() to give it "
                "to the Lambda runtime"
            )

        @functools.wraps(handler)
        def wrapper(event: Any, context: Any, *args: Any, **kwargs: Any) -> R:
            with Invocation(processor, event, record_handler, context) as invocation:
                invocation.process()
                # Still bound: processor.response() inside the handler is this batch's.
                return handler(event, context, *args, **kwargs)

        return wrapper

    return decorator


def async_batch_processor(
    *,
    record_handler: Callable[[RecordT], object] | ContextRecordHandler[RecordT],
    processor: BasePartialProcessor[RecordT],
) -> Callable[[Callable[..., Awaitable[R]]], Callable[..., Awaitable[R]]]:
    """Decorate an ``async def lambda_handler(event, context)``; it stays awaitable.

    The batch is processed (awaited) first; inside the handler ``processor.response()`` is
    the partial batch response. Give the result to the Lambda runtime, which calls a plain
    function, through :func:`as_lambda_handler`.
    """

    def decorator(handler: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
        if not is_async_callable(handler):
            raise HandlerTypeError(
                f"async_batch_processor decorates an 'async def' lambda handler, but "
                f"{handler!r} is a plain function: use @batch_processor for it"
            )

        @functools.wraps(handler)
        async def wrapper(event: Any, context: Any, *args: Any, **kwargs: Any) -> R:
            with Invocation(processor, event, record_handler, context) as invocation:
                await invocation.async_process()
                # Still bound: processor.response() inside the handler is this batch's.
                return await handler(event, context, *args, **kwargs)

        return wrapper

    return decorator


def as_lambda_handler(
    handler: Callable[[Any, Any], Awaitable[R]],
    *,
    backend: Literal["asyncio", "trio"] = "asyncio",
) -> Callable[[Any, Any], R]:
    """Turn an ``async def lambda_handler(event, context)`` into the plain function Lambda calls.

    Each invocation runs on one event loop that lives as long as the execution environment,
    so what the handler keeps between warm invocations (clients, connection pools, locks)
    stays bound to a live loop; ``asyncio.run`` per invocation would close it every time::

        @as_lambda_handler
        @async_batch_processor(record_handler=record_handler, processor=processor)
        async def lambda_handler(event, context):
            return processor.response()

    *handler* may be any callable whose result is awaitable: an ``async def``, or a plain
    function that wraps one (``__wrapped__``), as Powertools' ``@logger.inject_lambda_context``
    and ``@metrics.log_metrics`` do around an ``async def``. A result that is not awaitable
    raises :class:`~anybatch.HandlerTypeError` when the handler is called.
    """
    if not (is_async_callable(handler) or _wraps_async(handler)):
        raise HandlerTypeError(
            f"as_lambda_handler takes an 'async def' lambda handler, got {handler!r}; "
            "a plain function can be given to Lambda as it is"
        )

    @functools.wraps(handler)
    def lambda_handler(event: Any, context: Any) -> R:
        from ._portal import run_blocking

        result: R = run_blocking(backend, _awaited, handler, event, context)
        return result

    return lambda_handler


def _wraps_async(handler: object) -> bool:
    """Whether a plain function wraps an ``async def`` (a decorator's ``__wrapped__``)."""
    wrapped = getattr(handler, "__wrapped__", None)
    while wrapped is not None:
        if is_async_callable(wrapped):
            return True
        wrapped = getattr(wrapped, "__wrapped__", None)
    return False


async def _awaited(handler: Callable[[Any, Any], Awaitable[R]], event: Any, context: Any) -> R:
    """``await handler(event, context)``, with a clear error when the result is no awaitable."""
    result = handler(event, context)
    if not hasattr(result, "__await__"):
        raise HandlerTypeError(
            f"as_lambda_handler's handler {handler!r} returned {type(result).__name__}, not "
            "an awaitable: give it an 'async def' lambda handler (or a decorator around one)"
        )
    return await result
