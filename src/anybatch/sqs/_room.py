"""The pollers' wait for room under a worker's ``max_in_flight``: :class:`Room`."""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Room"]


class Room:
    """The pollers waiting for room, woken as many as the room has receives for.

    When a batch has run, its room goes to as many waiting pollers as whole receives fit in
    it (each takes up to *full* messages). Woken all at once, as they were, the others
    found no room and waited again: about two task steps for nothing each batch.
    """

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def wait(self) -> None:
        """Wait until :meth:`wake` (or :meth:`wake_all`) picks this poller."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        await waiter  # cancelled, the future is too: wake() passes it by

    def wake(self, room: int, in_flight: int, full: int) -> None:
        """Wake pollers while *room* has a receive for each.

        A receive takes *full* messages; or any room there is when nothing is in flight (a
        receive of fewer messages then beats none).
        """
        waiting = self._waiting
        while waiting and room > 0 and (room >= full or in_flight <= 0):
            waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                taken = min(full, room)
                room -= taken
                in_flight += taken

    def wake_all(self) -> None:
        """Wake every poller waiting (the worker stops)."""
        waiting = self._waiting
        while waiting:
            waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
