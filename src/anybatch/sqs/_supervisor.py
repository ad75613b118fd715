"""``anybatch worker --processes N``: N worker processes under one supervisor.

One worker process runs one event loop on one core; the supervisor starts N of them with
:mod:`multiprocessing` (the ``spawn`` method: nothing of the supervisor's state is copied)
and looks after them:

* SIGTERM and SIGINT are forwarded to every worker (as SIGTERM: a worker ignores the SIGINT a
  terminal sends its whole process group, which would otherwise count twice), and each
  drains; a second signal is forwarded too, and stops them at once;
* a worker that dies while no stop was asked (killed, out of memory, crashed) is started again
  after a delay that doubles with each death in a row (0.5 s, 1 s, 2 s... at most 30 s); one
  that dies again and again, each time within ``stable`` seconds of its start, is a crash
  loop: the supervisor stops every worker and exits 1, saying so;
* a worker that SQS refuses the queue to (it does not exist, access is denied) stops the
  supervisor too: another start would fail the same way;
* the exit status is 0 only when every worker drained after the stop signal; the summary
  line adds up the workers' figures.

Each worker tells the supervisor how it ended through a pipe of its own: its figures
(:class:`~._stats.WorkerStats`), SQS's refusal, and the loopback port it serves its
metrics on (``--metrics-port``).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from ._stats import WorkerStats

__all__ = ["Supervisor"]

logger = logging.getLogger("anybatch.worker")


def _died(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


@dataclass
class _Slot:
    """One worker's place: its current process, and how its past ones ended."""

    number: int
    process: Any = None  # multiprocessing's SpawnProcess
    conn: Connection | None = None
    started: float = 0.0
    deaths: int = 0  # in a row, each within `stable` seconds of its start
    restart_at: float | None = None
    metrics_port: int | None = None
    code: int | None = None  # how the last process ended, once the stop was asked
    stats: list[WorkerStats] = field(default_factory=list[WorkerStats])


class Supervisor:
    """Run *processes* workers, each ``target(number, conn, *args)`` in a process of its own.

    *target* runs one worker until its stop signal and returns its exit status (see
    :func:`~._serve.serve`); through *conn* it sends ``("stats", WorkerStats)`` when it
    ends, ``("fatal", message)`` when SQS refused the queue, ``("metrics", port)`` when it
    serves its metrics. *health_file*: touched every *health_interval* seconds while every
    worker touches its own (``<health_file>.<number>``) and removed at the end.
    """

    def __init__(
        self,
        target: Callable[..., int],
        args: tuple[Any, ...],
        processes: int,
        *,
        restart_delay: float = 0.5,
        max_restart_delay: float = 30.0,
        crash_loop: int = 4,
        stable: float = 30.0,
        health_file: str | os.PathLike[str] | None = None,
        health_interval: float = 5.0,
    ) -> None:
        if processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        self.target = target
        self.args = args
        self.restart_delay = restart_delay
        self.max_restart_delay = max_restart_delay
        self.crash_loop = crash_loop
        self.stable = stable
        self.health = None if health_file is None else Path(health_file)
        self.health_interval = health_interval
        self.slots = [_Slot(number) for number in range(1, processes + 1)]
        self.stats = WorkerStats()
        self.restarts = 0
        self._context = multiprocessing.get_context("spawn")
        self._signals: list[int] = []
        self._stopping = False
        self._failure: str | None = None  # why the supervisor stops the workers itself

    @property
    def failure(self) -> str | None:
        """Why the supervisor stopped the workers itself (a crash loop, SQS's refusal)."""
        return self._failure

    # -- what the metrics server asks -------------------------------------------------------

    def metrics_ports(self) -> dict[int, int]:
        """The loopback port each running worker serves its metrics on, by its number."""
        return {s.number: s.metrics_port for s in self.slots if s.metrics_port is not None}

    def health_path(self, number: int) -> str | None:
        """The health file of worker *number*, or ``None`` without one."""
        return None if self.health is None else f"{self.health}.{number}"

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> int:
        """Start the workers, look after them until they have all ended; the exit status."""
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        previous_fd = signal.set_wakeup_fd(wake_w.fileno())
        handlers = {
            number: signal.signal(number, self._on_signal)
            for number in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for slot in self.slots:
                self._start(slot)
            self._loop(wake_r)
        finally:
            for number, handler in handlers.items():
                signal.signal(number, handler)
            signal.set_wakeup_fd(previous_fd)
            wake_r.close()
            wake_w.close()
            if self.health is not None:
                self.health.unlink(missing_ok=True)
        return self._summary()

    def _on_signal(self, number: int, frame: object) -> None:
        self._signals.append(number)

    def _loop(self, wake: socket.socket) -> None:
        handled = 0
        next_health = time.monotonic()
        while any(s.process is not None or s.restart_at is not None for s in self.slots):
            now = time.monotonic()
            if self.health is not None and now >= next_health:
                self._check_health(now)
                next_health = now + self.health_interval
            timeouts = [next_health - now] if self.health is not None else [5.0]
            timeouts += [s.restart_at - now for s in self.slots if s.restart_at is not None]
            waits: list[Any] = [wake]
            for slot in self.slots:
                if slot.process is not None:
                    waits.append(slot.process.sentinel)
                if slot.conn is not None:
                    waits.append(slot.conn)
            ready = wait(waits, timeout=max(0.0, min(timeouts)))
            if wake in ready:
                with contextlib.suppress(BlockingIOError):
                    wake.recv(64)
            while handled < len(self._signals):
                self._forward(self._signals[handled], first=handled == 0)
                handled += 1
            for slot in self.slots:
                self._read(slot)
                if slot.process is not None and not slot.process.is_alive():
                    self._ended(slot)
                if slot.restart_at is not None and time.monotonic() >= slot.restart_at:
                    slot.restart_at = None
                    self._start(slot)

    def _start(self, slot: _Slot) -> None:
        ours, theirs = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=self.target,
            args=(slot.number, theirs, *self.args),
            name=f"anybatch-worker-{slot.number}",
        )
        process.start()
        theirs.close()
        slot.process, slot.conn, slot.started = process, ours, time.monotonic()
        slot.metrics_port = None
        logger.info("worker %d started: pid %d", slot.number, process.pid)

    def _read(self, slot: _Slot) -> None:
        conn = slot.conn
        try:
            while conn is not None and conn.poll():
                kind, value = conn.recv()
                if kind == "stats":
                    slot.stats.append(value)
                elif kind == "metrics":
                    slot.metrics_port = value
                elif kind == "fatal" and self._failure is None:
                    self._failure = f"worker {slot.number}: {value}"
        except (EOFError, OSError):
            if conn is not None:
                conn.close()
            slot.conn = None

    def _ended(self, slot: _Slot) -> None:
        process = slot.process
        process.join()
        self._read(slot)
        if slot.conn is not None:
            slot.conn.close()
        code = process.exitcode
        slot.process, slot.conn, slot.metrics_port = None, None, None
        if self._stopping:
            slot.code = code
            return
        if self._failure is not None:  # SQS refused the queue: another start fails the same
            slot.code = code
            self._stop_all(f"stopping every worker ({self._failure})")
            return
        ran = time.monotonic() - slot.started
        slot.deaths = slot.deaths + 1 if ran < self.stable else 1
        if slot.deaths >= self.crash_loop:
            slot.code = code
            self._failure = (
                f"worker {slot.number} died {slot.deaths} times in a row, each within "
                f"{self.stable:g} s of its start (last: {_died(code)}): a crash loop"
            )
            self._stop_all(f"stopping every worker: {self._failure}")
            return
        delay = min(self.max_restart_delay, self.restart_delay * 2 ** (slot.deaths - 1))
        self.restarts += 1
        slot.restart_at = time.monotonic() + delay
        logger.warning(
            "worker %d (pid %d) died (%s): starting it again in %g s",
            slot.number,
            process.pid,
            _died(code),
            delay,
        )

    def _forward(self, number: int, *, first: bool) -> None:
        if first:
            running = sum(1 for s in self.slots if s.process is not None)
            self._stop_all(f"stopping: each of {running} workers drains")
            return
        logger.info("stopping now")
        self._kill(signal.SIGTERM)  # a worker's second signal: it stops at once

    def _stop_all(self, line: str) -> None:
        if self._stopping:
            return
        self._stopping = True
        logger.log(logging.ERROR if self._failure else logging.INFO, "%s", line)
        for slot in self.slots:
            slot.restart_at = None
        self._kill(signal.SIGTERM)

    def _kill(self, number: int) -> None:
        for slot in self.slots:
            if slot.process is not None and slot.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.process.pid, number)

    def _check_health(self, now: float) -> None:
        """Touch the health file when every worker touched its own lately (or is starting)."""
        assert self.health is not None
        oldest = time.time() - 3 * self.health_interval
        for slot in self.slots:
            if slot.process is None or now - slot.started < 60.0:
                continue  # restarting, or starting: imports may take a while
            try:
                fresh = Path(f"{self.health}.{slot.number}").stat().st_mtime >= oldest
            except OSError:
                fresh = False
            if not fresh:
                return
        if not self._stopping:
            self.health.touch()

    def _summary(self) -> int:
        for slot in self.slots:
            for stats in slot.stats:
                self.stats.add(stats)
        restarts = f" ({self.restarts} restarted)" if self.restarts else ""
        logger.info("%d workers stopped%s: %s", len(self.slots), restarts, self.stats.summary())
        if self._failure is not None:
            return 1
        codes = [slot.code for slot in self.slots]
        if self._signals and len(self._signals) > 1:
            return 128 + self._signals[1]
        return 0 if all(code == 0 for code in codes) else 1
