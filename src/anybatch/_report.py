"""The log of reported records: one summary line per batch, then a line per reported record.

Records routed away (failed permanently, handed to their target) are counted apart: they are
not reported, and their lines say so.

A 10,000-record batch cut by its deadline must not write 10,000 tracebacks: the summary counts
every record by status and names the first few reported ones; at most ``log_records`` of them
get a line of their own, with the traceback. Record bodies are never logged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

from ._outcome import ROUTED, Status, describe, status_of

if TYPE_CHECKING:
    import logging

__all__ = ["log_reported"]

#: How many reported records the batch's summary log line names.
SUMMARY_FIRST = 3


def log_reported(
    logger: logging.Logger | logging.LoggerAdapter[Any] | None,
    log_records: int,
    ids: Sequence[Any],
    name: Callable[[Any], str],
    kinds: list[int],
    errors: dict[int, BaseException],
) -> None:
    """Log the records of a batch that are reported, with *name* naming an identifier."""
    if logger is None or not errors:
        return
    counts = {status.value: 0 for status in Status}
    for code in set(kinds):
        counts[status_of(code).value] += kinds.count(code)
    shown = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
    routed = counts[Status.ROUTED.value]
    reported = {i: exc for i, exc in errors.items() if kinds[i] != ROUTED} if routed else errors
    first = [
        f"{name(ids[index])} {status_of(kinds[index]).value}: {type(exc).__name__}: {describe(exc)}"
        for index, exc in islice(reported.items(), SUMMARY_FIRST)
    ]
    more = len(reported) - len(first)
    logger.warning(
        "batch of %d records: %s; %d reported for retry: %s%s%s",
        len(kinds),
        shown,
        len(reported),
        "; ".join(first),
        f"; and {more} more" if more > 0 else "",
        f"; {routed} failed permanently and routed away, not retried" if routed else "",
        extra={"anybatch_counts": {k: v for k, v in counts.items() if v}},
    )
    for index, exc in islice(errors.items(), log_records):
        status = status_of(kinds[index]).value
        logger.warning(
            "record %s %s; it is reported for retry: %s: %s"
            if kinds[index] != ROUTED
            else "record %s %s: it failed permanently and is not retried: %s: %s",
            name(ids[index]),
            status,
            type(exc).__name__,
            describe(exc),
            exc_info=(type(exc), exc, exc.__traceback__),
            extra={"item_identifier": ids[index], "anybatch_status": status},
        )
