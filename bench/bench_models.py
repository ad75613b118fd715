"""``model=``: pydantic record models, anybatch vs Powertools with the equivalent model.

10,000 SQS records whose JSON body is validated into a small model (``body: Json[Order]`` on
each library's own ``SqsRecordModel``), a no-op sync handler, the blocking
``process_partial_response`` with ``BatchProcessor(SQS, model=...)`` on both sides.

(a) The headline ratio (goal <= 1.0x), timed as every benchmark here is (interleaved runs,
    GC paused, best of N).
(b) The model's own share: each library's run with the model minus the same run without one
    (record views / data classes), so the cost of the model path is seen apart from the rest
    of the processor.
(c) The same as (a) with the garbage collector running. anybatch keeps each record's model
    until the next batch (``success_messages``, ``result``) where Powertools drops it after
    the handler, so 10,000 live models make the collector run more: shown, not judged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _common import Row, check_no_failures, fmt_ratio, interleave, main, ratio_row, say
from aws_lambda_powertools.utilities import batch as powertools
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel as PtSqsRecordModel
from pydantic import BaseModel, Json

import anybatch
from anybatch.models import SqsRecordModel
from anybatch.testing import sqs_event

RECORDS = 10_000
ROUNDS = 15
GC_ROUNDS = 7
GOAL = 0.95


class Order(BaseModel):
    """The body of each message."""

    order_id: int
    sku: str
    quantity: int
    price: float


class OrderRecord(SqsRecordModel):
    """anybatch's record model, narrowed to the order body."""

    body: Json[Order]


class PtOrderRecord(PtSqsRecordModel):
    """The equivalent Powertools parser model."""

    body: Json[Order]  # type: ignore[assignment]


def noop(record: Any) -> None:
    """A record handler (Powertools passes it as ``record=``)."""


def cases() -> dict[str, Callable[[], None]]:
    event = sqs_event(
        {"order_id": i, "sku": f"SKU-{i % 97}", "quantity": 1 + i % 5, "price": 9.99}
        for i in range(RECORDS)
    )
    ab_model = anybatch.BatchProcessor(anybatch.EventType.SQS, model=OrderRecord)
    ab_plain = anybatch.BatchProcessor(anybatch.EventType.SQS)
    pt_model = powertools.BatchProcessor(powertools.EventType.SQS, model=PtOrderRecord)
    pt_plain = powertools.BatchProcessor(powertools.EventType.SQS)

    def case(run: Callable[..., Any], processor: Any, what: str) -> Callable[[], None]:
        def sample() -> None:
            check_no_failures(run(event, noop, processor), what)

        return sample

    return {
        "anybatch": case(anybatch.process_partial_response, ab_model, "anybatch"),
        "Powertools": case(powertools.process_partial_response, pt_model, "Powertools"),
        "anybatch-plain": case(anybatch.process_partial_response, ab_plain, "anybatch"),
        "Powertools-plain": case(powertools.process_partial_response, pt_plain, "Powertools"),
    }


def run() -> list[Row]:
    all_cases = cases()
    say(
        f"(a, b) {RECORDS:,} SQS records, body: Json[Order], no-op sync handler, "
        f"BatchProcessor(SQS, model=...); best of {ROUNDS} interleaved runs, GC paused"
    )
    timings = interleave(all_cases, rounds=ROUNDS)
    for name, samples in timings.items():
        say(f"  {name:<17} {samples.describe(RECORDS, 'record')}")
    ab, pt = timings["anybatch"].best, timings["Powertools"].best
    ab_model = ab - timings["anybatch-plain"].best
    pt_model = pt - timings["Powertools-plain"].best
    say(f"  model share: anybatch {ab_model * 1e3:.1f} ms, Powertools {pt_model * 1e3:.1f} ms")

    say()
    say(f"(c) the same with the garbage collector running; best of {GC_ROUNDS}")
    models_only = {name: all_cases[name] for name in ("anybatch", "Powertools")}
    gc_timings = interleave(models_only, rounds=GC_ROUNDS, pause_gc=False)
    for name, samples in gc_timings.items():
        say(f"  {name:<17} {samples.describe(RECORDS, 'record')}")
    ab_gc, pt_gc = gc_timings["anybatch"].best, gc_timings["Powertools"].best
    say(f"  ratio with GC: {fmt_ratio(ab_gc / pt_gc)}")
    return [
        ratio_row("models: 10k SQS, Json body model", ab, pt, goal_max=GOAL),
        ratio_row(
            "models: the model's own share",
            ab_model,
            pt_model,
            goal_max=None,
            note="each library's time with model= minus its time without a model",
        ),
        ratio_row(
            "models: 10k SQS, GC running",
            ab_gc,
            pt_gc,
            goal_max=None,
            note="anybatch keeps the models until the next batch; Powertools drops them",
        ),
    ]


if __name__ == "__main__":
    main("bench_models: model= (pydantic record models)", run)
