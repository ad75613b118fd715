"""Per-invocation state, and the one path every entry point and the worker take.

A processor is made once and reused across warm invocations, and a module-level processor may
serve several invocations at once (threads or tasks, as on Lambda Managed Instances). So what
one batch holds lives in a :class:`_Batch`: the processor's own for the context-manager
protocol, or a fresh one that an :class:`Invocation` binds in a :class:`~contextvars.ContextVar`
when the processor's own is taken. Everything the processor reads or writes during an
invocation, its hooks included, is then that invocation's.

:class:`Invocation` is the single path: read the event's records, bind, open the batch
(``processor(records, handler, lambda_context=context).__enter__()``), process it, end it
(``_clean``, the entire-batch check), and unbind. ``process_partial_response``, its awaitable
twin, both decorators and the SQS worker go through it.
"""

from __future__ import annotations

import _thread
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, Protocol

from ._engine import SUCCESS

if TYPE_CHECKING:
    from types import TracebackType

    from ._exceptions import ExceptionInfo
    from ._outcome import BatchResult, PartialItemFailureResponse


if TYPE_CHECKING:  # a Protocol class costs a cold start about 80 µs to make

    class ProcessorLike(Protocol):
        """What an invocation needs of a processor (``anybatch.BasePartialProcessor`` has it)."""

        __dict__: dict[str, Any]

        def _records_of(self, event: object) -> list[Any]: ...
        def _set_batch(
            self,
            batch: _Batch,
            records: Sequence[Mapping[str, Any]],
            handler: Callable[..., Any],
            lambda_context: Any,
        ) -> None: ...
        def _begin(self, batch: _Batch) -> None: ...
        def _prepare(self) -> None: ...
        def _end(self, batch: _Batch, ok: bool) -> None: ...
        def _response_of(self, batch: _Batch) -> PartialItemFailureResponse: ...
        def process(self) -> Any: ...
        async def async_process(self) -> Any: ...


__all__ = ["RESULTS", "Invocation", "batch_of", "observing_results", "state"]


class _Batch:
    """The state of one batch: what the processor was called with, and how it went.

    A processor keeps one for the context-manager protocol, and the entry points
    (``process_partial_response`` and the rest) bind a fresh one for each invocation in a
    :class:`~contextvars.ContextVar`, so that invocations running at once in threads or tasks
    never share one.
    """

    __slots__ = (
        "batch_response",
        "busy",
        "claimed",
        "collect",
        "exceptions",
        "extras",
        "fail_messages",
        "handler",
        "kind",
        "lambda_context",
        "records",
        "result",
        "run",
        "success_messages",
    )

    def __init__(self) -> None:
        self.records: Sequence[Mapping[str, Any]] = ()
        self.handler: Callable[..., Any] | None = None
        #: How to call the handler (``anybatch._handlers.HandlerKind``), read when it is set.
        self.kind: Any = None
        self.lambda_context: Any = None
        self.success_messages: list[Any] = []
        self.fail_messages: list[Any] = []
        self.exceptions: list[ExceptionInfo] = []
        self.batch_response: PartialItemFailureResponse = {"batchItemFailures": []}
        self.run: Any = None  # the batch's Run (anybatch._run), once processing starts
        self.result: BatchResult[Any] | None = None
        #: Inside the processor's ``with`` block.
        self.busy = False
        #: Taken by an entry point's invocation (from before its ``with`` block to after).
        self.claimed = False
        #: Whether process() builds the list it returns; the entry points that only need the
        #: response turn it off for their batch (10,000 tuples nobody reads cost about 1 ms).
        self.collect = True
        #: What subclasses keep per batch (the SQS processors' calls and their report).
        self.extras: dict[str, Any] = {}


#: The batch states the invocations bound in this context: (processor, its state, outer).
_Bound = tuple["ProcessorLike", _Batch, Any]
_BOUND: ContextVar[_Bound | None] = ContextVar("anybatch_batches", default=None)
#: How many invocations run on a state of their own (bound in _BOUND) right now.
_bound_anywhere = 0
_CLAIM = _thread.allocate_lock()  # makes "is the processor's own state free? take it" one step

#: Told every batch's result in this context (``anybatch run`` counts outcomes with it).
RESULTS: ContextVar[Callable[[BatchResult[Any]], None] | None] = ContextVar(
    "anybatch_results", default=None
)


def own_batch(processor: ProcessorLike) -> _Batch:
    """The processor's own batch state (the context-manager protocol's), made on first use."""
    shared: _Batch | None = processor.__dict__.get("_shared")
    if shared is None:
        shared = processor.__dict__["_shared"] = _Batch()
    return shared


def batch_of(processor: ProcessorLike) -> _Batch:
    """The batch state of the current invocation: bound by an invocation, else the own one."""
    if _bound_anywhere:  # only while some invocation runs on a state of its own
        bound = _BOUND.get()
        while bound is not None:
            if bound[0] is processor:
                return bound[1]
            bound = bound[2]
    try:
        shared: _Batch = processor.__dict__["_shared"]
    except KeyError:
        return own_batch(processor)
    return shared


def bind(processor: ProcessorLike) -> tuple[Token[_Bound | None] | None, _Batch]:
    """Take batch state for an invocation.

    The processor's own state when it is free (the usual case: one invocation at a time);
    otherwise, when another invocation holds it, a fresh state bound to this context.
    """
    shared = processor.__dict__.get("_shared") or own_batch(processor)
    with _CLAIM:
        if not (shared.claimed or shared.busy):
            shared.claimed = True
            return None, shared
    global _bound_anywhere
    batch = _Batch()
    batch.claimed = True
    with _CLAIM:
        _bound_anywhere += 1
    return _BOUND.set((processor, batch, _BOUND.get())), batch


def unbind(token: Token[_Bound | None] | None, batch: _Batch) -> None:
    """End what :func:`bind` began."""
    global _bound_anywhere
    batch.claimed = False
    if token is not None:
        _BOUND.reset(token)
        with _CLAIM:
            _bound_anywhere -= 1


def state(name: str, doc: str | None) -> Any:
    """A processor attribute that lives in the batch state of the current invocation."""

    def get(self: ProcessorLike) -> Any:
        return getattr(batch_of(self), name)

    def set_(self: ProcessorLike, value: Any) -> None:
        setattr(batch_of(self), name, value)

    return property(get, set_, doc=doc)


class observing_results:
    """Tell *observer* the result of every batch processed in this context, while inside.

    A class, not a ``contextlib`` generator: importing :mod:`contextlib` costs a cold start.
    """

    __slots__ = ("_observer", "_token")

    def __init__(self, observer: Callable[[BatchResult[Any]], None]) -> None:
        self._observer = observer
        self._token: Token[Any] | None = None

    def __enter__(self) -> None:
        self._token = RESULTS.set(self._observer)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            RESULTS.reset(self._token)


class Invocation:
    """One invocation of *processor* on *event*: the path every entry point takes.

    ::

        with Invocation(processor, event, record_handler, context) as invocation:
            invocation.process()           # or: await invocation.async_process()
            ...                            # still bound: processor.response() is this batch's
        return invocation.response()

    Entering reads the records (an unreadable event raises before anything is bound), binds
    the batch state and opens the batch; processing ends it (``_clean``, the entire-batch
    check); leaving unbinds.
    """

    __slots__ = ("_context", "_event", "_handler", "_token", "batch", "processor")

    def __init__(
        self,
        processor: ProcessorLike,
        event: Any,
        handler: Callable[..., Any],
        context: Any = None,
    ) -> None:
        self.processor = processor
        self._event = event
        self._handler = handler
        self._context = context
        self._token: Token[_Bound | None] | None = None
        self.batch: _Batch | None = None

    def __enter__(self) -> Invocation:
        processor = self.processor
        records = processor._records_of(self._event)  # pyright: ignore[reportPrivateUsage]
        self._token, batch = bind(processor)
        try:
            processor._set_batch(batch, records, self._handler, self._context)  # pyright: ignore[reportPrivateUsage]
            processor._begin(batch)  # pyright: ignore[reportPrivateUsage]
            batch.collect = False  # the response only: process() builds no list
            processor._prepare()  # pyright: ignore[reportPrivateUsage]
        except BaseException:
            unbind(self._token, batch)
            raise
        self.batch = batch
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        batch = self.batch
        if batch is not None:
            batch.busy = False  # a block left before processing ended leaves nothing open
            unbind(self._token, batch)

    def process(self) -> None:
        """Process the batch, blocking, and end it."""
        processor, batch = self.processor, self.batch
        assert batch is not None, "an Invocation is used inside its 'with' block"
        try:
            processor.process()
        except BaseException:
            processor._end(batch, ok=False)  # pyright: ignore[reportPrivateUsage]
            raise
        processor._end(batch, ok=True)  # pyright: ignore[reportPrivateUsage]

    async def async_process(self) -> None:
        """Process the batch on the running loop, and end it."""
        processor, batch = self.processor, self.batch
        assert batch is not None, "an Invocation is used inside its 'with' block"
        try:
            await processor.async_process()
        except BaseException:
            processor._end(batch, ok=False)  # pyright: ignore[reportPrivateUsage]
            raise
        processor._end(batch, ok=True)  # pyright: ignore[reportPrivateUsage]

    @property
    def result(self) -> BatchResult[Any] | None:
        """Every record's outcome, once the batch has run (even if ending it raised)."""
        return None if self.batch is None else self.batch.result

    def succeeded(self) -> list[int]:
        """The indices of the records that have succeeded so far.

        After processing, the successes of the result; while processing, or after it was
        cancelled (a worker's drain ran out), those whose handler had returned by then.
        """
        batch = self.batch
        if batch is None:
            return []
        if batch.result is not None:
            return [outcome.index for outcome in batch.result if outcome.ok]
        run = batch.run
        if run is None:
            return []
        kinds: list[int] = run.schedule.kinds
        return [index for index, kind in enumerate(kinds) if kind == SUCCESS]

    def response(self) -> PartialItemFailureResponse:
        """``processor.response()``: read from the batch unless a subclass overrides it."""
        batch = self.batch
        if batch is None:
            raise RuntimeError("an Invocation is used inside its 'with' block")
        return self.processor._response_of(batch)  # pyright: ignore[reportPrivateUsage]
