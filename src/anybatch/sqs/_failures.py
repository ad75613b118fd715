"""Why a worker's messages failed: the log of a batch's reported records, as on Lambda.

A worker whose processor has a ``logger`` logs through it, in the run, exactly as on Lambda.
Without one, the worker logs the same lines through its own logger (``anybatch.worker``): a
summary line per batch, then one line per reported message (at most the processor's
``log_records``) with its message id, status and exception, its traceback attached. Bodies
are never logged. A batch whose every message failed the same way gets one line instead, with
a hint when the record handler looks like a Lambda handler (a mistake easy to make: the
worker runs the *record* handler).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from anybatch._engine import CANCELLED, FAILURE, SKIPPED_STOP, SUCCESS, TIMEOUT
from anybatch._outcome import ROUTED, Status, describe
from anybatch._report import log_reported

if TYPE_CHECKING:
    from anybatch._outcome import BatchResult

__all__ = ["log_failures", "looks_like_lambda_handler"]

#: An outcome code per status: what ``log_reported`` reads a status from.
_CODES = {
    Status.SUCCESS: SUCCESS,
    Status.FAILED: FAILURE,
    Status.TIMED_OUT: TIMEOUT,
    Status.DEADLINE: CANCELLED,
    Status.SKIPPED: SKIPPED_STOP,
    Status.ROUTED: ROUTED,
}

#: How many message ids the one line of a batch that failed the same way names.
_FIRST = 3


def looks_like_lambda_handler(handler: Callable[..., Any]) -> bool:
    """Whether *handler* takes ``(event, context)``: two positional parameters and no more."""
    try:
        parameters = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return len(positional) == 2 and not any(p.kind is p.VAR_POSITIONAL for p in parameters)


def log_failures(
    result: BatchResult[Any],
    logger: logging.Logger,
    log_records: int,
    *,
    lambda_handler: bool = False,
) -> None:
    """Log the reported messages of *result* (nothing when every one succeeded).

    *lambda_handler* says that the record handler looks like a Lambda handler: the hint for a
    batch whose every message failed the same way.
    """
    counts = result.counts()
    if counts[Status.SUCCESS] == len(result):
        return
    failed = result.failed
    if not failed:  # every record that did not succeed was routed away: nothing reported
        return
    first = failed[0].exception
    same = (
        len(failed) == len(result) > 1
        and first is not None
        and all(
            outcome.status is failed[0].status
            and type(outcome.exception) is type(first)
            and describe(outcome.exception) == describe(first)
            for outcome in failed
        )
    )
    if not same or first is None:
        errors: dict[int, BaseException] = {
            o.index: o.exception for o in failed if o.exception is not None
        }
        kinds = [_CODES[outcome.status] for outcome in result]
        log_reported(logger, log_records, result.identifiers, str, kinds, errors)
        return
    ids = [str(outcome.identifier) for outcome in failed[:_FIRST]]
    more = len(failed) - len(ids)
    hint = (
        "; the record handler takes (event, context): it looks like a Lambda handler, but the "
        "worker calls the handler of one record (give that function, like "
        "module:record_handler)"
        if lambda_handler
        else ""
    )
    logger.warning(
        "batch of %d messages: every one %s the same way: %s: %s (%s%s)%s",
        len(result),
        failed[0].status.value,
        type(first).__name__,
        describe(first),
        ", ".join(ids),
        f" and {more} more" if more > 0 else "",
        hint,
        exc_info=(type(first), first, first.__traceback__),
        extra={"anybatch_status": failed[0].status.value},
    )
