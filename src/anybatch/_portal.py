"""Long-lived event loops for the blocking facade.

Blocking calls that need async work (async record handlers, worker threads with deadlines) run
it on a loop that lives as long as the process, so loop-bound resources that async handlers
keep between warm invocations (an ``asyncio.Lock``, an aiobotocore client and its connection
pool) stay usable; a fresh loop per call would break them.

* :func:`run_blocking`, for the processors: on the main thread with no loop running (where
  the Lambda runtime calls handlers), an asyncio loop owned by the main thread, entered with
  ``run_until_complete``: no thread hop per invocation. Anywhere else, :func:`call_on_loop`.
* :func:`call_on_loop`: one loop per backend in a daemon thread, reached through an anyio
  blocking portal. It works from any thread, also from one that already runs an event loop,
  and is the one loop of the process for what must always meet the same loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._exceptions import HandlerTypeError

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

__all__ = [
    "call_on_loop",
    "is_loop_thread",
    "main_loop",
    "new_event_loop",
    "run_blocking",
    "use_uvloop",
    "uses_uvloop",
]

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
            options = {"use_uvloop": True} if self.backend == "asyncio" and uses_uvloop() else {}
            anyio.run(self._main, backend=self.backend, backend_options=options)
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


_UVLOOP_ENV = "ANYBATCH_EVENT_LOOP"
_uvloop: bool | None = None  # None: as the environment says


def use_uvloop(enabled: bool = True) -> None:
    """Run the event loops anybatch makes from now on on uvloop (``anybatch[uvloop]`` extra).

    Those are the loop of ``as_lambda_handler`` and of the blocking entry points (on the main
    thread), and the loop thread (elsewhere). Loops made already keep running as they are, so
    call it at import time, before the first invocation. Setting the environment variable
    ``ANYBATCH_EVENT_LOOP=uvloop`` does the same without code. Loops you run yourself
    (``asyncio.run``, ``uvloop.run``) are yours to choose.
    """
    global _uvloop
    if enabled:
        _import_uvloop()
    _uvloop = enabled


def uses_uvloop() -> bool:
    """Whether the loops anybatch makes run on uvloop."""
    if _uvloop is not None:
        return _uvloop
    value = os.environ.get(_UVLOOP_ENV, "asyncio").strip().lower()
    if value in ("", "asyncio"):
        return False
    if value != "uvloop":
        raise ValueError(f"{_UVLOOP_ENV} must be 'asyncio' or 'uvloop', got {value!r}")
    return True


def _import_uvloop() -> Any:
    try:
        import uvloop
    except ImportError:
        from ._exceptions import MissingDependencyError

        raise MissingDependencyError(
            "uvloop is not installed: pip install 'anybatch[uvloop]'"
        ) from None
    return uvloop


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new asyncio event loop, on uvloop when :func:`uses_uvloop`."""
    if uses_uvloop():
        loop: asyncio.AbstractEventLoop = _import_uvloop().new_event_loop()
        return loop
    return asyncio.new_event_loop()


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


_NESTED = (
    "a blocking anybatch call was made from inside an async record handler or lambda "
    "handler that anybatch runs; await the async form instead "
    "(await processor.async_process(), await async_process_partial_response(...))"
)


class _Raised:
    """A :class:`BaseException` that ``func`` raised, carried out of the loop's task."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


async def _captured(func: Callable[..., Awaitable[T]], *args: Any) -> T | _Raised:
    """``await func(*args)``, with whatever it raises returned instead of raised.

    A long-lived loop must outlive what its calls raise: a ``KeyboardInterrupt``, a
    ``SystemExit`` or a custom :class:`BaseException` raised out of a task kills an asyncio
    loop (the task re-raises them through the loop) and a trio portal's nursery, and the next
    invocation would find a dead loop. The caller's thread raises it instead.
    """
    try:
        return await func(*args)
    except BaseException as exc:
        return _Raised(exc)


def _unwrap_result(value: T | _Raised) -> T:
    if isinstance(value, _Raised):
        raise value.exc
    return value


def call_on_loop(backend: str, func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``await func(*args)`` on the long-lived loop thread of *backend*; return the result."""
    if is_loop_thread() or _running_main_loop():
        raise HandlerTypeError(_NESTED)
    result: T | _Raised = _portal(backend).call(_captured, func, *args)
    return _unwrap_result(result)


_main_loop: asyncio.AbstractEventLoop | None = None
_main_pid = 0


def main_loop() -> asyncio.AbstractEventLoop | None:
    """The main thread's long-lived loop, once :func:`run_blocking` has made it."""
    return _main_loop


def _running_main_loop() -> bool:
    try:
        return asyncio.get_running_loop() is _main_loop
    except RuntimeError:
        return False


def run_blocking(backend: str, func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``await func(*args)`` on a long-lived loop of *backend*, the cheapest one that fits."""
    global _main_loop, _main_pid  # one per process, as the portals are
    if (
        backend != "asyncio"
        or threading.current_thread() is not threading.main_thread()
        or _loop_running_here()
    ):
        return call_on_loop(backend, func, *args)
    loop = _main_loop
    if loop is None or loop.is_closed() or _main_pid != os.getpid():  # a forked child: anew
        loop = _main_loop = new_event_loop()
        _main_pid = os.getpid()
    task = loop.create_task(_captured(func, *args))
    try:
        result = loop.run_until_complete(task)
    except BaseException:
        # Only a signal (Ctrl-C) raises out of the loop itself: what func raises comes back as
        # a result. Cancel the call and let it unwind, so that the engine stops its workers
        # and the root task's end tells anyio's worker threads to exit; otherwise the
        # interpreter would wait for those non-daemon threads forever.
        _unwind(loop, task)
        raise
    return _unwrap_result(result)


def _unwind(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
    if loop.is_running() or task.done():
        return
    task.cancel()
    with contextlib.suppress(BaseException):  # a second signal while unwinding: give up
        loop.run_until_complete(task)


def _loop_running_here() -> bool:
    """Whether this thread runs an event loop (asyncio, or trio if it is imported)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        trio = sys.modules.get("trio")
        if trio is None:
            return False
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            return False
        return True
    if _running_main_loop():
        raise HandlerTypeError(_NESTED)
    return True


@atexit.register
def _close_main_loop() -> None:
    loop = _main_loop
    if loop is not None and not loop.is_closed() and not loop.is_running():
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
