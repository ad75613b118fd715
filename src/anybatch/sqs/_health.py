"""A worker's health file: touched by its event loop while it runs, removed when it stops.

An orchestrator's liveness probe checks the file's age (``find FILE -mmin -1``, or
``test $(($(date +%s) - $(stat -c %Y FILE))) -lt 60``). The file is touched from the event
loop itself, so a loop blocked by a handler (a sync call inside an async handler, a busy
loop) stops touching it, and the probe sees it grow old.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio

__all__ = ["HealthFile"]


class HealthFile:
    """The file at *path*, touched every *interval* seconds while :meth:`keep_fresh` runs."""

    def __init__(self, path: str | os.PathLike[str], interval: float) -> None:
        self.path = Path(path)
        self.interval = interval

    def touch(self) -> None:
        """Create the file, or set its modification time to now."""
        self.path.touch()

    async def keep_fresh(self) -> None:
        """Touch the file now and every *interval* seconds, until cancelled."""
        while True:
            self.touch()
            await anyio.sleep(self.interval)

    def remove(self) -> None:
        """Remove the file (a file already gone is fine)."""
        self.path.unlink(missing_ok=True)
