"""A ``failed_visibility_timeout`` policy: :class:`ExponentialBackoff`."""

from __future__ import annotations

import random
from collections.abc import Callable

from ._plan import MAX_VISIBILITY_TIMEOUT

__all__ = ["ExponentialBackoff"]


class ExponentialBackoff:
    """A visibility timeout that grows with each receive of a failed message.

    ``ExponentialBackoff(base=2, cap=900)`` hides a message ``base * 2 ** (receives - 1)``
    seconds after its first, second, third... failure, at most *cap* seconds, with jitter:
    a random time between half of that and all of it, so that messages that failed together
    do not come back together. Give it to ``failed_visibility_timeout=`` of an
    :class:`SQSWorker` or of the SQS processors.
    """

    def __init__(
        self,
        base: float = 2.0,
        cap: float = 900.0,
        *,
        jitter: bool = True,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < base <= cap <= MAX_VISIBILITY_TIMEOUT:
            raise ValueError(
                f"ExponentialBackoff needs 0 < base <= cap <= {MAX_VISIBILITY_TIMEOUT}, "
                f"got base={base!r}, cap={cap!r}"
            )
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self._rand = rand

    def __call__(self, receive_count: int) -> float:
        exponent = min(max(receive_count, 1) - 1, 30)
        seconds = min(self.cap, self.base * 2.0**exponent)
        if self.jitter:
            seconds = seconds / 2 + self._rand() * seconds / 2
        return seconds

    def __repr__(self) -> str:
        return f"ExponentialBackoff(base={self.base!r}, cap={self.cap!r}, jitter={self.jitter!r})"


def parse_failed_visibility(text: str | None) -> ExponentialBackoff | float | None:
    """``--failed-visibility-timeout``: seconds, or ``exponential[:BASE[:CAP]]``.

    Raises ``ValueError`` saying what the option takes.
    """
    if text is None:
        return None
    if text.startswith("exponential"):
        try:
            numbers = [float(part) for part in text.split(":")[1:]]
        except ValueError:
            raise ValueError(
                f"--failed-visibility-timeout exponential[:BASE[:CAP]] takes seconds, got {text!r}"
            ) from None
        return ExponentialBackoff(*numbers)
    try:
        return float(text)
    except ValueError:
        raise ValueError(
            f"--failed-visibility-timeout takes seconds or exponential[:BASE[:CAP]], got {text!r}"
        ) from None
