"""``idempotent(store, batched=True)``: a batch's keys claimed at once, its results stored at once.

The first record of a batch to reach the handler claims the keys of every record of the batch
it can name (one ``TransactWriteItems`` for up to 100 on DynamoDB); the others wait for that
call, then each takes its own answer instead of claiming. The results are held back and
stored when the batch ends (``BatchWriteItem``, 25 a call), with the release of the keys
claimed for records that never ran (cut off by the deadline, skipped after a failure in
their FIFO group). Two calls a batch instead of two a record; the decisions stay
:func:`~._flow.flow`'s.

A record the batch cannot name ahead keeps the per-record path: with ``model=`` and a
``key=`` other than ``"id"`` (or ``validate=``), a record's model is made only when it
starts; with a ``record_timeout``, a mark must end with its own record.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from anybatch._context import at_batch_end, current_batch, record_end

from ._keys import hash_value, key_value, record_identifier
from ._store import claimable

if TYPE_CHECKING:
    from ._decorator import _Settings  # pyright: ignore[reportPrivateUsage]
    from ._store import StoredRecord

__all__ = ["NOT_CLAIMED", "Ledger", "Ledgers"]

_log = logging.getLogger("anybatch.idempotency")

#: Seconds a mark claimed ahead must have left for its key to be released when its record
#: never ran: one closer to its end expires by itself (and another run could claim the key
#: before the delete landed).
RELEASE_MARGIN = 0.5

#: The longest a blocking record waits for the claims another record makes.
WAIT_READY = 60.0

#: What :meth:`Ledger.take` returns for a key the ledger did not claim.
NOT_CLAIMED: Any = object()


class Ledger:
    """One batch's claims made ahead and results held back, for one decorated handler.

    Safe across threads (blocking handlers in worker threads share it).
    """

    def __init__(self, ledgers: Ledgers, handed: Sequence[Any], blocking: bool) -> None:
        self.ledgers = ledgers
        self.settings = ledgers.settings
        #: Made by blocking handlers: the store is called as they call it, even when the
        #: batch ends on a loop (their worker threads' batch).
        self.blocking = blocking
        self.handed = handed  # the batch's identity while it runs (its id() is the key)
        #: By key, the claim made ahead not yet taken: ``None`` (ours) or what holds it.
        self.claims: dict[str, StoredRecord | None] = {}
        #: By key, the IN_PROGRESS marks the claims made ahead wrote (or tried to).
        self.written: dict[str, StoredRecord] = {}
        #: The keys the claims made ahead took: their marks are this batch's.
        self.owned: set[str] = set()
        #: By key, the COMPLETED records to store when the batch ends.
        self.completed: dict[str, StoredRecord] = {}
        self.ended = False
        self.ready = threading.Event()  # set once the claims are made (or failed)
        #: For async handlers, the same as an event of their loop's (anyio's, made there).
        self.signal: Any = None
        self._lock = threading.Lock()

    def marks(self, ids: Sequence[Any], lambda_context: object, now: float) -> list[StoredRecord]:
        """The IN_PROGRESS marks of every record the batch can name now, one a key."""
        from ._decorator import in_progress_until
        from ._flow import Attempt

        settings, handed = self.settings, self.handed
        by_id = settings.key is record_identifier
        until = in_progress_until(lambda_context)
        seen: set[str] = set()
        marks: list[StoredRecord] = []
        for index, ident in enumerate(ids):
            arg = handed[index]
            try:
                if by_id:
                    value = ident
                elif arg is None:
                    continue  # its model is made when it starts
                else:
                    value = key_value(settings.key, arg)
                if settings.validate is not None and arg is None:
                    continue
                key = f"{settings.prefix}#{hash_value(value)}"
                if key in seen:
                    continue
                validation = (
                    None if settings.validate is None else hash_value(settings.validate(arg))
                )
            except Exception:  # its own run says what is wrong
                continue
            seen.add(key)
            attempt = Attempt(
                key,
                validation,
                expires_after=settings.expires_after,
                in_progress_ms=settings.in_progress_timeout * 1000,
                result_type=settings.result_type,
                in_progress_until=until,
            )
            mark = attempt.in_progress(now)
            if mark.in_progress_expires_at is not None:
                # The mark holds its key while the batch may run its record, even when
                # expires_after is shorter: the TTL never ends it before its own expiry.
                holds = -(-mark.in_progress_expires_at // 1000)  # ceil, in seconds
                mark = mark._replace(expires_at=max(mark.expires_at, holds))
            marks.append(mark)
            self.written[key] = mark
        return marks

    def claimed(self, answer: dict[str, StoredRecord | None]) -> list[str]:
        """Keep the store's answer to the claims made ahead.

        Returns the keys claimed after the batch ended (the call outlived its deadline):
        no record of it will run, and the caller releases them.
        """
        with self._lock:
            if self.ended:
                late = self._releasable(answer)
            else:
                self.claims, late = answer, []
                self.owned = {key for key, holder in answer.items() if holder is None}
        self.ready.set()
        if self.signal is not None:
            self.signal.set()
        return late

    def take(self, key: str, now: float) -> Any:
        """What holds *key* as this process knows it, instead of claiming it now.

        A result of the key held back by a batch of this handler (this one or another
        running now), COMPLETED: the record replays it. Else the claim made ahead, once:
        ``None`` (ours) or the record that held the key. :data:`NOT_CLAIMED` when there is
        none, or when the mark made ahead has expired before its record started (the key
        may be claimed again: the record claims it itself).
        """
        held = self.ledgers.held(key)
        with self._lock:
            found = self.claims.pop(key, NOT_CLAIMED)
        if held is not None:
            if not claimable(held, now):
                return held
            # The result expired (expires_after) before it was stored. While a mark this
            # batch took ahead still holds the key in the store, the record runs again, as
            # it would once a stored result expired; else the store decides.
            if key in self.owned and not claimable(self.written[key], now):
                return None
            return NOT_CLAIMED if found is None else found
        if found is None and claimable(self.written[key], now):
            return NOT_CLAIMED  # the mark made ahead has expired (either of its expiries)
        return found

    def hold(self, record: StoredRecord) -> bool:
        """Hold *record* (COMPLETED) back until the batch ends.

        ``False`` once it has ended (a handler abandoned at the deadline ends late): the
        caller stores it now.
        """
        with self._lock:  # kept under the lock: _close() must see it to drop it
            if self.ended:
                return False
            self.completed[record.key] = record
            self.ledgers.keep(record)
        return True

    def _releasable(self, claims: dict[str, StoredRecord | None]) -> list[str]:
        # The keys of *claims* this batch took, to release: those whose marks have
        # RELEASE_MARGIN seconds left. A mark about to expire may be claimed by another run
        # by the time the delete lands (a batch write cannot be conditional).
        live = time.time() + RELEASE_MARGIN
        return [
            key
            for key, holder in claims.items()
            if holder is None and not claimable(self.written[key], live)
        ]

    def _close(self) -> tuple[list[StoredRecord], list[str]]:
        with self._lock:
            self.ended = True
            completed = list(self.completed.values())
            unused = self._releasable(self.claims)
            self.claims = {}
        return completed, unused

    def write_blocking(
        self, completed: list[StoredRecord], released: list[str], budget: float | None
    ) -> None:
        """Store *completed* and delete *released* (within *budget* s), blocking; log a failure."""
        store: Any = self.settings.store
        try:
            settle = getattr(store, "settle_many_blocking", None)
            if settle is not None:
                settle(completed, released)
            else:
                from anybatch._portal import call_on_loop

                call_on_loop("asyncio", _within, budget, store.settle_many, completed, released)
        except Exception as exc:
            self._failed(completed, released, exc)

    async def write(
        self, completed: list[StoredRecord], released: list[str], budget: float | None
    ) -> None:
        """:meth:`write_blocking` on the running loop."""
        from anyio import fail_after

        store: Any = self.settings.store
        try:
            with fail_after(budget):
                await store.settle_many(completed, released)
        except Exception as exc:  # TimeoutError too: the invocation's time is up
            self._failed(completed, released, exc)

    def _failed(self, completed: list[StoredRecord], unused: list[str], exc: Exception) -> None:
        _log.warning(
            "the results of %d records could not be stored (%r): the records succeeded, and "
            "their keys stay in progress until their marks expire; %d keys claimed for "
            "records that never ran were not released either",
            len(completed),
            exc,
            len(unused),
        )

    def end_blocking(self, budget: float) -> None:
        """Store the results and release the unused claims, blocking, within *budget* s."""
        completed, unused = self._close()
        if not (completed or unused):
            return
        try:
            self.write_blocking(completed, unused, budget)
        finally:
            self.ledgers.drop(completed)

    async def end(self, budget: float) -> None:
        """Store the results and release the unused claims, on the running loop.

        Within *budget* seconds: what is not written by then is logged, as a failed write.
        """
        if self.blocking:
            from anyio import to_thread

            await to_thread.run_sync(self.end_blocking, budget, abandon_on_cancel=True)
            return
        completed, unused = self._close()
        if not (completed or unused):
            return
        try:
            await self.write(completed, unused, budget)
        finally:
            self.ledgers.drop(completed)


async def _within(budget: float | None, settle: Callable[..., Any], *args: Any) -> None:
    import asyncio

    await asyncio.wait_for(settle(*args), budget)


class Ledgers:
    """The ledgers of one decorated handler's batches running now, by batch."""

    def __init__(self, settings: _Settings) -> None:
        self.settings = settings
        self._open: dict[int, Ledger] = {}
        #: By key, the results held back by the ledgers until their batches' writes land.
        self._held: dict[str, StoredRecord] = {}
        #: The claims' own tasks (asyncio), until they end.
        self.claiming: set[Any] = set()
        self._lock = threading.Lock()

    def held(self, key: str) -> StoredRecord | None:
        """The COMPLETED record of *key* a batch of this handler holds back, if any."""
        return self._held.get(key) if self._held else None

    def keep(self, record: StoredRecord) -> None:
        with self._lock:
            self._held[record.key] = record

    def drop(self, records: list[StoredRecord]) -> None:
        """Forget *records*: written now (or failed to be: their keys stay in progress)."""
        with self._lock:
            for record in records:
                if self._held.get(record.key) is record:
                    del self._held[record.key]

    def find(
        self, signal: Callable[[], Any] | None = None
    ) -> tuple[Ledger | None, bool, Sequence[Any]]:
        """The ledger of the record's batch, and whether the record makes its claims.

        ``(None, ...)`` outside a batch, or where marks cannot be made ahead (a
        ``record_timeout``). *signal* makes a new ledger's event for async waiters (on
        their loop).
        """
        here = current_batch()
        if here is None or record_end() is not None:
            return None, False, ()
        handed, ids, _ = here
        with self._lock:
            ledger = self._open.get(id(handed))
            if ledger is not None and ledger.handed is handed and not ledger.ended:
                return ledger, False, ids
            ledger = Ledger(self, handed, signal is None)
            if signal is not None:
                ledger.signal = signal()
            if not at_batch_end(handed, _Closing(self, ledger)):
                return None, False, ()  # its batch has ended: this record runs on alone
            self._open[id(handed)] = ledger
        return ledger, True, ids

    def forget(self, ledger: Ledger) -> None:
        with self._lock:
            if self._open.get(id(ledger.handed)) is ledger:
                del self._open[id(ledger.handed)]


class _Closing:
    """What the batch does when it ends: its ledger's writes, and the ledger forgotten."""

    __slots__ = ("ledger", "ledgers")

    def __init__(self, ledgers: Ledgers, ledger: Ledger) -> None:
        self.ledgers, self.ledger = ledgers, ledger

    def end_blocking(self, budget: float) -> None:
        self.ledgers.forget(self.ledger)
        self.ledger.end_blocking(budget)

    async def end(self, budget: float) -> None:
        self.ledgers.forget(self.ledger)
        await self.ledger.end(budget)


def claim_ahead_blocking(ledger: Ledger, ids: Sequence[Any], lambda_context: object) -> None:
    """Make the batch's claims (the record that made the ledger), blocking."""
    answer: dict[str, StoredRecord | None] = {}
    store: Any = ledger.settings.store
    try:
        now = time.time()
        marks = ledger.marks(ids, lambda_context, now)
        if len(marks) > 1:
            claim = getattr(store, "claim_many_blocking", None)
            if claim is not None:
                answer = claim(marks, now)
            else:
                from anybatch._portal import call_on_loop

                answer = call_on_loop("asyncio", store.claim_many, marks, now)
    except Exception as exc:  # each record claims its own key
        _log.debug("claiming the batch's idempotency keys at once failed: %r", exc)
    finally:
        late = ledger.claimed(answer)
    if late:  # claimed after the batch ended: released now, as long as it takes
        ledger.write_blocking([], late, None)


async def claim_ahead(ledger: Ledger, ids: Sequence[Any], lambda_context: object) -> None:
    """Make the batch's claims (the record that made the ledger), on the running loop.

    On asyncio the call runs in a task of its own, which outlives the record's cancellation
    (the deadline) without holding the batch back: a transaction that committed is
    answered, and its keys released if the batch ended meanwhile. On trio a cancelled call
    leaves the keys it may have claimed to expire with their marks (the invocation's end).
    """
    from anybatch._engine import asyncio_running

    store: Any = ledger.settings.store
    marks: list[StoredRecord] = []
    now = time.time()
    try:
        marks = ledger.marks(ids, lambda_context, now)
    except Exception as exc:  # each record claims its own key
        _log.debug("claiming the batch's idempotency keys at once failed: %r", exc)
    if len(marks) < 2:
        ledger.claimed({})
        return
    if asyncio_running():
        import asyncio

        task = asyncio.ensure_future(_claim_and_keep(ledger, store, marks, now))
        ledger.ledgers.claiming.add(task)  # held until it ends: the loop holds tasks weakly
        task.add_done_callback(ledger.ledgers.claiming.discard)
        await asyncio.shield(task)
        return
    await _claim_and_keep(ledger, store, marks, now)


async def _claim_and_keep(
    ledger: Ledger, store: Any, marks: list[StoredRecord], now: float
) -> None:
    answer: dict[str, StoredRecord | None] = {}
    try:
        answer = await store.claim_many(marks, now)
    except Exception as exc:  # each record claims its own key
        _log.debug("claiming the batch's idempotency keys at once failed: %r", exc)
    finally:
        late = ledger.claimed(answer)
    if late:  # claimed after the batch ended: released now, as long as it takes
        await ledger.write([], late, None)


async def wait_ready(ledger: Ledger) -> None:
    """Wait for the claims another record of the batch is making."""
    if not ledger.ready.is_set():
        await ledger.signal.wait()


def wait_ready_blocking(ledger: Ledger) -> None:
    """Wait for the claims another record of the batch is making, in this thread.

    Past :data:`WAIT_READY` seconds (a store that does not answer) the record claims its own
    key: a claim made ahead that lands later makes it fail as in progress, never run twice.
    """
    ledger.ready.wait(WAIT_READY)
