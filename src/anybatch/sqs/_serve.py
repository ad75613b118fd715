"""One worker process of ``anybatch worker``: its log, its signals, its exit.

:func:`serve` runs an :class:`~._worker.SQSWorker` on asyncio until a stop signal, and turns
how it ended into the command's exit status; :func:`log_to_stderr` sets up its log lines.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._errors import SQSWorkerError

if TYPE_CHECKING:
    from ._worker import SQSWorker

__all__ = ["HandlerFramesFormatter", "log_to_stderr", "serve"]

#: Frames of these packages are the machinery's, not the handler's.
_HIDDEN = tuple(
    str(Path(path).resolve()) + os.sep
    for path in (
        Path(__file__).parents[1],  # anybatch
        Path(str(__import__("anyio").__file__)).parent,
    )
)


class HandlerFramesFormatter(logging.Formatter):
    """A formatter whose tracebacks hold the handler's own frames, not anybatch's or anyio's.

    A failure raised by anybatch itself (no frame of the handler's) gets no traceback: the
    log line already says its type and message.
    """

    def formatException(
        self,
        ei: tuple[type[BaseException], BaseException, TracebackType | None]
        | tuple[None, None, None],
    ) -> str:
        """The exception with the handler's frames only."""
        exc = ei[1]
        if exc is None:
            return super().formatException(ei)
        te = traceback.TracebackException.from_exception(exc)
        frames = [f for f in te.stack if not str(Path(f.filename).resolve()).startswith(_HIDDEN)]
        if not frames and te.__cause__ is None and te.__context__ is None:
            return ""
        te.stack = traceback.StackSummary.from_list(frames)
        return "".join(te.format()).rstrip("\n")


def log_to_stderr(prefix: str = "anybatch worker") -> None:
    """Log the worker's lines (``anybatch.worker``, INFO) to stderr, after *prefix*."""
    root = logging.getLogger()
    if not root.handlers:  # as logging.basicConfig: a module that set up logging keeps it
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(HandlerFramesFormatter(f"{prefix}: %(message)s"))
        root.addHandler(handler)
    logging.getLogger("anybatch.worker").setLevel(logging.INFO)


def serve(
    worker: SQSWorker,
    *,
    signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT),
    report: Callable[[str, object], None] | None = None,
    watch_parent: bool = False,
) -> int:
    """Run *worker* until a stop signal; the exit status.

    0 after a stop signal and its drain; 1 when the worker failed (SQS refuses the queue);
    128 + N when a second signal N stopped it at once. *report* is told
    ``("fatal", message)`` when SQS refused the queue, then ``("stats", WorkerStats)``. With
    *watch_parent*, the worker stops (draining) when the process that started it is gone: a
    supervisor's child does not outlive it.
    """
    received = [0]

    async def run() -> Any:
        loop = asyncio.get_running_loop()

        def on_signal(number: int) -> None:
            received[0] = number if not received[0] else -number
            worker.stop(now=received[0] < 0)

        for number in signals:
            loop.add_signal_handler(number, on_signal, number)
        if not watch_parent:
            return await worker.run()
        parent = os.getppid()

        async def watch() -> None:
            while os.getppid() == parent:  # noqa: ASYNC110 - no event says a parent died
                await asyncio.sleep(1.0)
            logging.getLogger("anybatch.worker").warning("the supervisor is gone: stopping")
            worker.stop()

        watcher = asyncio.ensure_future(watch())
        try:
            return await worker.run()
        finally:
            watcher.cancel()

    threads = set(threading.enumerate())  # the module's own, if it started any, are its own
    try:
        asyncio.run(run())  # its summary is the worker's last log line
    except Exception as exc:
        line = f"{type(exc).__name__}: {exc}"
        print(f"anybatch: the worker stopped: {line}", file=sys.stderr)
        code = 1
        if report is not None and isinstance(exc, SQSWorkerError):
            report("fatal", line)
    else:
        # 128 + N: stopped at once by a second signal N.
        code = 128 - received[0] if received[0] < 0 else 0
    if report is not None:
        report("stats", worker.stats)
    exit_if_handlers_linger(code, threads)
    return code


def exit_if_handlers_linger(code: int, threads: set[threading.Thread]) -> None:
    """End the process now if threads started while the worker ran are still running.

    Those run sync handlers that the drain (or a second signal) gave up on: their messages
    were released for another worker, or are left to their visibility timeout, so nothing
    they do can still be settled. But they are anyio's worker threads, which are not daemon
    threads, and the interpreter waits for every such thread before it exits: a handler
    blocked for minutes would keep the process alive past the platform's grace period (and
    SIGKILL), while another worker already runs its message. Making handlers run in daemon
    threads instead would need a thread pool of the worker's own, and would still miss a
    thread a handler starts itself; leaving with ``os._exit`` covers every thread, whatever
    it is doing. It skips ``atexit`` hooks, so output and logs are flushed first, and it is
    used only when some thread is still alive: idle worker threads, which end as soon as
    the event loop has closed, get a second to do so.
    """
    deadline = time.monotonic() + 1.0
    for thread in threading.enumerate():
        if thread not in threads and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    alive = [t for t in threading.enumerate() if t not in threads and not t.daemon]
    if not alive:
        return
    logging.getLogger("anybatch.worker").warning(
        "%d threads (handlers the stop gave up on) still running: exiting without waiting for them",
        len(alive),
    )
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
