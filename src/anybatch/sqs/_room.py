"""The pollers' wait for room under a worker's ``max_in_flight``: :class:`Room`."""

from __future__ import annotations

import asyncio
from collections import deque

from ._plan import MAX_ENTRIES

__all__ = ["Room"]


class Room:
    """When a poller may receive, and the pollers waiting for room, woken as room comes.

    A receive asks for up to :data:`MAX_ENTRIES` messages, and waits for a whole receive's
    room while batches run, so that each call carries as many messages as it can. When a
    batch has run, its room goes to as many waiting pollers as receives fit in it. Woken all
    at once, as they were, the others found no room and waited again: about two task steps
    for nothing each batch.
    """

    __slots__ = ("_full", "_limit", "_waiting")

    def __init__(self, max_in_flight: int) -> None:
        self._limit = max_in_flight
        self._full = min(MAX_ENTRIES, max_in_flight)  # a receive's room
        self._waiting: deque[asyncio.Future[None]] = deque()

    def receive_size(self, in_flight: int) -> int:
        """How many messages a receive may ask for with *in_flight* taken; 0: wait.

        A whole receive's room, or any room there is when nothing is in flight (a receive of
        fewer messages then beats none).
        """
        room = self._limit - in_flight
        if room <= 0 or (room < self._full and in_flight > 0):
            return 0
        return min(self._full, room)

    async def wait(self) -> None:
        """Wait until :meth:`wake` (or :meth:`wake_all`) picks this poller."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        await waiter  # cancelled, the future is too: wake() passes it by

    def wake(self, in_flight: int) -> None:
        """Wake as many waiting pollers as receives fit beside *in_flight*."""
        waiting = self._waiting
        while waiting:
            size = self.receive_size(in_flight)
            if not size:
                return
            waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                in_flight += size  # what the poller woken will take

    def wake_all(self) -> None:
        """Wake every poller waiting (the worker stops)."""
        waiting = self._waiting
        while waiting:
            waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
