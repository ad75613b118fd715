"""What each record's own copy of the context costs, per record.

    python bench/bench_context.py

Since each record runs in its own copy of the invocation's context, the engine pays, per
record: on the inline path a comparison of the batch's copy with the caller's context and the
current-record note (the copy is entered once a batch); on the async path a context copy and
entry, plus the
handler's first step taken by hand (and a small awaitable when it waits); in worker threads
a copy and the current-record note. Measured here piece by piece against the bare call the
engine made before, best of interleaved rounds; the goal is under 1 µs a record.
"""

from __future__ import annotations

import timeit
from typing import Any

from anybatch._context import in_own_context
from anybatch._engine import SUCCESS, Schedule, run_each_inline

N = 200_000
#: Records of the inline batch: its one entry into a copy is shared by all of them.
INLINE_RECORDS = 100
ROUNDS = 7


def handler(record: Any) -> Any:
    return None


async def async_handler(record: Any) -> None:
    return None


def best(stmt: Any) -> float:
    return min(timeit.repeat(stmt, number=N, repeat=ROUNDS)) / N


def main() -> None:
    inputs = list(range(100))
    ids = [str(i) for i in inputs]
    threaded = in_own_context(handler, inputs, inputs, ids, False)
    awaited = in_own_context(async_handler, inputs, inputs, ids, True)

    def bare_async() -> Any:
        coroutine = async_handler(inputs[5])
        try:
            coroutine.send(None)  # what 'await handler(record)' does for one that never waits
        except StopIteration as done:
            return done.value
        return None

    def inline_batch() -> None:
        run_each_inline(Schedule(INLINE_RECORDS), handler, inputs)

    def bare_batch() -> None:  # the inline loop as it was before records had their own copy
        kinds, values = Schedule(INLINE_RECORDS).claim_all()
        for index, record in enumerate(inputs):
            values[index] = handler(record)
            kinds[index] = SUCCESS

    batches = N // INLINE_RECORDS
    rows = [
        (
            f"inline: a batch of {INLINE_RECORDS}, per record",
            min(timeit.repeat(inline_batch, number=batches, repeat=ROUNDS)) / N,
            min(timeit.repeat(bare_batch, number=batches, repeat=ROUNDS)) / N,
        ),
        (
            "worker thread: own context and current record",
            best(lambda: threaded(5)),
            best(lambda: handler(inputs[5])),
        ),
        ("async, never waits: first step by hand", best(lambda: awaited(5)), best(bare_async)),
    ]
    print(f"{'path':50} {'with':>9} {'bare':>9} {'per record':>11}")
    for name, with_, bare in rows:
        print(
            f"{name:50} {with_ * 1e9:7.0f} ns {bare * 1e9:7.0f} ns {(with_ - bare) * 1e9:8.0f} ns"
        )


if __name__ == "__main__":
    main()
