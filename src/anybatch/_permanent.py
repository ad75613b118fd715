"""Permanent failures: which failures are permanent, and handing them to their target.

A record handler marks its failure permanent by raising :class:`~anybatch.PermanentFailure`
(or one of the processor's ``permanent=`` types). After the engine has run the batch, and
before the run completes it, the permanent failures go to the processor's :class:`Router`:
the ``on_permanent_failure`` hook, or an SQS processor's dead-letter queue. What the router
confirms is routed away (``Status.ROUTED``, not reported); what it refuses, or does not
confirm before the deadline, is reported like any other failure: nothing is dropped.

Routing is I/O, so it runs where the batch is awaited: on the running loop for
``async_process()``, on anybatch's loop for the blocking ``process()``. A router that needs
asyncio (aiobotocore) runs on anybatch's asyncio loop when the batch ran on trio.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ._engine import FAILURE, asyncio_running
from ._exceptions import PermanentFailure
from ._outcome import ROUTED, describe

if TYPE_CHECKING:
    import logging

__all__ = [
    "ROUTER",
    "HookRouter",
    "PermanentItem",
    "Routing",
    "mark_routed",
    "route_awaited",
    "route_blocking",
]


class PermanentItem:
    """A record that failed permanently, as its router gets it."""

    __slots__ = ("error", "index", "raw", "record")

    def __init__(
        self, index: int, record: Any, raw: Mapping[str, Any], error: BaseException
    ) -> None:
        #: The record's index in the batch.
        self.index = index
        #: What the handler received; the record's view when it never got a model.
        self.record = record
        #: The record as the event holds it.
        self.raw = raw
        #: What the handler raised.
        self.error = error

    def __repr__(self) -> str:
        return f"PermanentItem(index={self.index}, error={self.error!r})"


class Routing:
    """What a router did with the permanent failures of one batch."""

    __slots__ = ("detail", "refused", "routed")  # not a NamedTuple: one costs a cold start

    def __init__(
        self, routed: frozenset[int], refused: Mapping[int, str], detail: Any = None
    ) -> None:
        #: The indices of the records the target confirmed.
        self.routed = routed
        #: The indices of the others, with why: they are reported.
        self.refused = refused
        #: What the router reports of its own (an SQS processor's :class:`Settlement`).
        self.detail = detail


if TYPE_CHECKING:  # a Protocol class costs a cold start about 80 µs to make

    class Router(Protocol):
        """Where a processor's permanent failures go."""

        #: Whether :meth:`route` needs an asyncio loop (aiobotocore does).
        needs_asyncio: bool
        #: What the logs call the target.
        target: str

        async def route(self, items: Sequence[PermanentItem], time_left: float | None) -> Routing:
            """Hand *items* to the target within *time_left* seconds (``None``: no limit)."""
            ...

    class PermanentHooks(Protocol):
        """What routing needs of a processor (part of ``_run.Hooks``); the run is ``_run.Run``."""

        logger: logging.Logger | logging.LoggerAdapter[Any] | None
        backend: Literal["asyncio", "trio"]

        #: Exception types besides ``PermanentFailure`` whose failures are permanent.
        permanent: tuple[type[BaseException], ...]
        on_permanent_failure: Callable[[Any, BaseException], Any] | None
        #: A router of the processor's own (the SQS processors' dead-letter queue).
        _router: Router | None


class HookRouter:
    """The router of ``on_permanent_failure``: ``await hook(record, error)`` per record.

    In record order, one at a time (a hook that forwards to an ordered target keeps the
    order). A record counts as routed once its call returns; a call that raises, or that the
    deadline cuts short, leaves its record reported.
    """

    needs_asyncio = False
    target = "on_permanent_failure"

    def __init__(self, hook: Callable[[Any, BaseException], Any]) -> None:
        self.hook = hook

    async def route(self, items: Sequence[PermanentItem], time_left: float | None) -> Routing:
        """Call the hook for each item, in order, until the deadline."""
        import anyio  # only when a batch has permanent failures

        routed: set[int] = set()
        refused: dict[int, str] = {}
        with anyio.move_on_after(math.inf if time_left is None else max(time_left, 0.0)):
            for item in items:
                try:
                    await self.hook(item.record, item.error)
                except Exception as exc:
                    refused[item.index] = f"on_permanent_failure raised {_named(exc)}"
                else:
                    routed.add(item.index)
        for item in items:
            if item.index not in routed and item.index not in refused:
                refused[item.index] = "the invocation's deadline came before it was routed"
        return Routing(frozenset(routed), refused)


def _named(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {describe(exc)}"


#: The router of whoever runs the processors in this context (the SQS worker's dead-letter
#: queue), before the processor's own: the processor itself is left as it was.
ROUTER: ContextVar[Router | None] = ContextVar("anybatch_router", default=None)


def _router(processor: PermanentHooks) -> Router | None:
    router: Router | None = ROUTER.get() or processor._router  # pyright: ignore[reportPrivateUsage]
    if router is not None:
        return router
    hook = processor.on_permanent_failure
    return None if hook is None else HookRouter(hook)


def _pending(processor: PermanentHooks, run: Any) -> tuple[Router | None, list[PermanentItem]]:
    """The processor's router and the run's permanent failures (none without a router)."""
    kinds = run.schedule.kinds
    if FAILURE not in kinds:  # the usual batch: one C-speed scan
        return None, []
    router = _router(processor)
    if router is None:
        return None, []
    types: tuple[type[BaseException], ...] = (PermanentFailure, *processor.permanent)
    values, args, records, view = run.schedule.values, run.args, run.records, run.reading.view
    items: list[PermanentItem] = []
    for index, kind in enumerate(kinds):
        error = values[index]
        if kind == FAILURE and isinstance(error, types):
            record = args[index]
            if record is None:  # its model refused it, or a custom processor's record
                record = view(records[index])
            items.append(PermanentItem(index, record, records[index], error))
    return router, items


async def route_awaited(processor: PermanentHooks, run: Any) -> None:
    """Route the run's permanent failures on the running loop (``async_process()``)."""
    router, items = _pending(processor, run)
    if router is None or not items:
        return
    time_left = run.remaining()
    try:
        if router.needs_asyncio and not asyncio_running():
            from anyio import to_thread

            from ._portal import call_on_loop

            routing: Routing = await to_thread.run_sync(
                call_on_loop, "asyncio", router.route, items, time_left
            )
        else:
            routing = await router.route(items, time_left)
    except Exception as exc:  # a router's own fault: report every record, lose none
        routing = Routing(frozenset(), dict.fromkeys((i.index for i in items), _named(exc)))
    _keep(processor, run, router, items, routing)


def route_blocking(processor: PermanentHooks, run: Any) -> None:
    """Route the run's permanent failures from blocking code, on anybatch's loop."""
    router, items = _pending(processor, run)
    if router is None or not items:
        return
    from ._portal import call_on_loop, run_blocking

    time_left = run.remaining()
    try:
        if router.needs_asyncio:  # the loop an SQS processor's clients live on
            routing = call_on_loop("asyncio", router.route, items, time_left)
        else:
            routing = run_blocking(processor.backend, router.route, items, time_left)
    except Exception as exc:  # a router's own fault: report every record, lose none
        routing = Routing(frozenset(), dict.fromkeys((i.index for i in items), _named(exc)))
    _keep(processor, run, router, items, routing)


def _keep(
    processor: PermanentHooks,
    run: Any,
    router: Router,
    items: list[PermanentItem],
    routing: Routing,
) -> None:
    """Keep what the router did for :func:`mark_routed`; log what it refused."""
    asked = {item.index for item in items}
    routing = Routing(routing.routed & asked, routing.refused, routing.detail)  # only asked
    run.routing = routing
    logger = processor.logger
    if logger is None or not routing.refused:
        return
    name = run.reading.source.describe
    for item in items:
        why = routing.refused.get(item.index)
        if why is None or item.index in routing.routed:
            continue
        logger.warning(
            "record %s failed permanently but could not be routed to %s: %s; it is reported "
            "for retry",
            name(run.ids[item.index]),
            router.target,
            why,
            extra={"item_identifier": run.ids[item.index], "anybatch_status": "failed"},
        )


def mark_routed(
    processor: PermanentHooks, run: Any, kinds: list[int], values: list[Any]
) -> frozenset[int]:
    """Give the routed records their outcome; return the indices of permanent failures."""
    routing = run.routing
    if routing is not None:
        for index in routing.routed:
            kinds[index] = ROUTED
    if FAILURE not in kinds and routing is None:
        return frozenset()
    types: tuple[type[BaseException], ...] = (PermanentFailure, *processor.permanent)
    return frozenset(
        index
        for index, kind in enumerate(kinds)
        if kind in (FAILURE, ROUTED) and isinstance(values[index], types)
    )
