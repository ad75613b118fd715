"""One long-lived event loop per backend, in a daemon thread, for the blocking facade.

Blocking calls that need async work (async record handlers, worker threads with deadlines) hand
it to this loop through an anyio blocking portal and wait. The loop lives as long as the
process, so loop-bound resources that async handlers keep between warm invocations (an
``asyncio.Lock``, an aiobotocore client and its connection pool) stay usable; a fresh loop per
call would break them. Because the loop runs in its own thread, blocking calls also work from
code that already runs an event loop in the calling thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._exceptions import HandlerTypeError

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

__all__ = ["call_on_loop", "is_loop_thread"]

T = TypeVar("T")


class _LoopThread:
    """A daemon thread that runs one event loop with a blocking portal until the process ends."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.portal: BlockingPortal | None = None
        self.thread: threading.Thread | None = None
        self.pid = os.getpid()
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> BlockingPortal:
        self.thread = threading.Thread(
            target=self._run, name=f"anybatch-{self.backend}-loop", daemon=True
        )
        self.thread.start()
        self._ready.wait()
        if self.portal is None:
            assert self._error is not None
            raise self._error
        return self.portal

    def _run(self) -> None:
        import anyio

        try:
            anyio.run(self._main, backend=self.backend)
        except BaseException as exc:  # surfaced to the thread that waits in start()
            self._error = exc
        finally:
            self.portal = None
            self._ready.set()

    async def _main(self) -> None:
        from anyio.from_thread import BlockingPortal

        async with BlockingPortal() as portal:
            self.portal = portal
            self._ready.set()
            await portal.sleep_until_stopped()


_loops: dict[str, _LoopThread] = {}
_lock = threading.Lock()


def _portal(backend: str) -> BlockingPortal:
    with _lock:
        loop = _loops.get(backend)
        if loop is None or loop.portal is None or loop.pid != os.getpid():
            loop = _LoopThread(backend)
            _loops[backend] = loop
            return loop.start()
        return loop.portal


def is_loop_thread() -> bool:
    """Whether the calling thread is one of anybatch's loop threads."""
    current = threading.current_thread()
    return any(loop.thread is current for loop in _loops.values())


def call_on_loop(backend: str, func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``await func(*args)`` on the long-lived loop of *backend* and return its result."""
    if is_loop_thread():
        raise HandlerTypeError(
            "a blocking anybatch call was made from inside an async record handler or "
            "lambda handler that anybatch runs; await the async form instead "
            "(await processor.async_process(), await async_process_partial_response(...))"
        )
    return _portal(backend).call(func, *args)
