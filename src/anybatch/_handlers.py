"""What anybatch reads of a record handler before calling it, and refuses of what it returns.

Decided once per handler (warm invocations pass the same one), with no import of inspect on
the common path: whether it is ``async def``, whether it takes ``lambda_context``, whether it
is a generator function (whose call runs none of its body), and, after a batch, whether its
results are awaitables that nobody awaited.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import CodeType
from typing import Any

from ._exceptions import HandlerTypeError

__all__ = [
    "HandlerKind",
    "as_called",
    "accepts_lambda_context",
    "handler_kind",
    "is_async_callable",
    "refuse_awaitables",
    "refuse_generator_function",
    "takes_record",
]

_CO_GENERATOR = 0x20
_CO_COROUTINE = 0x80
_CO_ASYNC_GENERATOR = 0x200
_UNSET: Any = object()


def _unwrap(func: object, *, wrapped: bool) -> object:
    while True:
        if isinstance(func, functools.partial):
            partial: functools.partial[object] = func  # pyright: ignore[reportUnknownVariableType]
            func = partial.func
        elif wrapped and hasattr(func, "__wrapped__"):
            func = getattr(func, "__wrapped__")  # noqa: B009 - not every callable has it
        else:
            return func


def is_async_callable(func: object) -> bool:
    """Whether calling *func* returns an awaitable by declaration (``async def``)."""
    # Not through __wrapped__: a sync wrapper of an async function is sync (as inspect sees it).
    target = _unwrap(func, wrapped=False)
    code = getattr(getattr(target, "__func__", target), "__code__", None)
    if code is None:  # an object with an async __call__
        owner: type[object] = type(target)
        call: object = getattr(owner, "__call__", None)  # noqa: B004 - the method, not callable()
        code = getattr(call, "__code__", None)
    flags = getattr(code, "co_flags", 0)  # AsyncMock's stand-in code says CO_COROUTINE too
    if isinstance(flags, int) and flags & _CO_COROUTINE:
        return True
    # inspect.markcoroutinefunction (3.12+) sets this attribute to inspect's own marker. Compare
    # with that marker, as inspect does: a Mock answers every attribute with a new Mock.
    marker = getattr(target, "_is_coroutine_marker", None)
    if marker is None:
        return False
    import inspect

    return marker is getattr(inspect, "_is_coroutine_mark", _UNSET)


def refuse_generator_function(func: object) -> None:
    """Refuse a record handler whose call only makes a generator: its body would never run."""
    target = _unwrap(func, wrapped=False)
    code = getattr(getattr(target, "__func__", target), "__code__", None)
    flags = code.co_flags if type(code) is CodeType else 0
    if flags & (_CO_GENERATOR | _CO_ASYNC_GENERATOR):
        kind = "an async generator" if flags & _CO_ASYNC_GENERATOR else "a generator"
        raise HandlerTypeError(
            f"the record handler {func!r} is {kind} function: calling it runs none of its "
            "body, so every record would count as a success; 'return' a result instead of "
            "'yield'ing it"
        )


class HandlerKind:
    """How anybatch calls a record handler, decided once per handler.

    A slotted class, not a ``NamedTuple``: making one of those costs a cold start.
    """

    __slots__ = ("by_keyword", "is_async", "takes_context")

    def __init__(self, is_async: bool, takes_context: bool, by_keyword: bool) -> None:
        #: ``async def`` (its call returns an awaitable to await).
        self.is_async = is_async
        #: It declares ``lambda_context``: it gets ``lambda_context=context``.
        self.takes_context = takes_context
        #: A decorated handler whose function names its parameter ``record``: it gets the
        #: record by keyword, ``handler(record=...)``, as the incumbent calls it (its
        #: ``@idempotent_function(data_keyword_argument="record")`` needs that).
        self.by_keyword = by_keyword


def handler_kind(func: object) -> HandlerKind:
    """How to call *func*; refuses a generator function (its call would run nothing)."""
    refuse_generator_function(func)
    return HandlerKind(is_async_callable(func), accepts_lambda_context(func), takes_record(func))


def takes_record(func: object) -> bool:
    """Whether *func* wraps (``__wrapped__``) a function whose first parameter is ``record``.

    A plain function is called positionally: for it the two calls are the same, and the
    positional one is cheaper.
    """
    target = _unwrap(func, wrapped=True)
    if target is _unwrap(func, wrapped=False):
        return False
    code = getattr(getattr(target, "__func__", target), "__code__", None)
    if type(code) is not CodeType or not code.co_argcount:
        return False
    first = 1 if hasattr(target, "__func__") else 0  # a bound method's self
    names = code.co_varnames[: code.co_argcount]
    return len(names) > first and names[first] == "record"


def accepts_lambda_context(func: object) -> bool:
    """Whether *func* declares a ``lambda_context`` parameter."""
    target = _unwrap(func, wrapped=True)  # through decorators, as inspect.signature does
    code = getattr(getattr(target, "__func__", target), "__code__", None)
    if type(code) is CodeType:  # not a Mock's stand-in (AsyncMock fakes its class)
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        return "lambda_context" in names
    import inspect

    try:
        return "lambda_context" in inspect.signature(func).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def refuse_awaitables(values: list[Any], handler: object, is_async: bool) -> None:
    """Fail the batch if the handler's results are awaitables: they would count as successes.

    A plain ``def`` that returns a coroutine, or an ``async def`` that returns one without
    awaiting it (``return store(record)``), did none of its work. Checked once the batch has
    run, outside every record's failure boundary, so it fails the batch, not each record.
    """
    if values.count(None) == len(values):  # handlers that return nothing: identity checks
        return
    from ._engine._threads import ThreadAwaitable  # a sync handler's result, from its thread

    types = set(map(type, values))
    if ThreadAwaitable not in types and not any(hasattr(kind, "__await__") for kind in types):
        return
    for value in values:
        if isinstance(value, ThreadAwaitable):
            value = value.awaitable
        close = getattr(value, "close", None) if hasattr(value, "__await__") else None
        if close is not None:
            close()  # no "coroutine was never awaited" warning on top of the error
    if is_async:
        raise HandlerTypeError(
            f"the record handler {handler!r} returned an awaitable without awaiting it, so "
            "its work never ran; await it: 'return await ...'"
        )
    raise HandlerTypeError(
        f"the record handler {handler!r} returned an awaitable although it is not declared "
        "'async def'; declare it 'async def' so that anybatch awaits it"
    )


def as_called(handler: Callable[..., Any], kind: HandlerKind, context: Any) -> Callable[[Any], Any]:
    """*handler* as the incumbent calls it: ``record=`` by keyword, ``lambda_context=``."""
    with_context = context is not None and kind.takes_context
    if kind.by_keyword:
        if with_context:
            return lambda record: handler(record=record, lambda_context=context)
        return lambda record: handler(record=record)
    if with_context:
        return functools.partial(handler, lambda_context=context)
    return handler
