"""Every processor takes every processor knob, declared in one place and checked in one place."""

from __future__ import annotations

import logging
from typing import Any, get_type_hints

import pytest

from anybatch import (
    AsyncBatchProcessor,
    AsyncSqsFifoPartialProcessor,
    BatchProcessor,
    EventType,
    SqsFifoPartialProcessor,
)
from anybatch._options import POLICY_OPTIONS, ProcessorOptions, RunOptions
from anybatch.sqs import (
    AsyncPartialSQSProcessor,
    AsyncSqsBatchProcessor,
    PartialSQSProcessor,
    SqsBatchProcessor,
)
from anybatch.testing import sqs_event


async def route_away(record: object, error: BaseException) -> None:
    """An ``on_permanent_failure`` hook."""


#: A value for each knob that differs from its default.
VALUES: dict[str, Any] = {
    "concurrency": 7,
    "record_timeout": 2.5,
    "deadline_margin": 0.25,
    "backend": "trio",
    "log_records": 3,
    "observers": [],
    "stop_on_failure": True,
    "skip_key_on_failure": True,
    "ordered": False,
    "permanent": (ValueError,),
    "on_permanent_failure": route_away,
}


def make(cls: type[Any], **options: Any) -> Any:
    if cls in (BatchProcessor, AsyncBatchProcessor):
        return cls(EventType.SQS, **options)
    if cls in (SqsBatchProcessor, AsyncSqsBatchProcessor):
        return cls(failed_visibility_timeout=5, **options)
    return cls(**options)


ALL_KNOBS: list[type[Any]] = [BatchProcessor, AsyncBatchProcessor, PartialSQSProcessor]
ALL_KNOBS += [AsyncPartialSQSProcessor, SqsBatchProcessor, AsyncSqsBatchProcessor]
FIFO: list[type[Any]] = [SqsFifoPartialProcessor, AsyncSqsFifoPartialProcessor]


def test_the_values_cover_every_knob() -> None:
    assert set(VALUES) == set(get_type_hints(ProcessorOptions))
    assert set(get_type_hints(ProcessorOptions)) - set(get_type_hints(RunOptions)) == set(
        POLICY_OPTIONS
    )


@pytest.mark.parametrize("knob", VALUES)
@pytest.mark.parametrize("cls", ALL_KNOBS)
def test_every_processor_takes_every_knob(cls: type[Any], knob: str) -> None:
    processor = make(cls, **{knob: VALUES[knob]})
    expected = tuple(VALUES[knob]) if knob == "observers" else VALUES[knob]
    assert getattr(processor, knob) == expected


@pytest.mark.parametrize("knob", list(get_type_hints(RunOptions)))
@pytest.mark.parametrize("cls", FIFO)
def test_the_fifo_processors_take_every_run_knob(cls: type[Any], knob: str) -> None:
    processor = make(cls, **{knob: VALUES[knob]})
    expected = tuple(VALUES[knob]) if knob == "observers" else VALUES[knob]
    assert getattr(processor, knob) == expected


@pytest.mark.parametrize("knob", POLICY_OPTIONS)
@pytest.mark.parametrize("cls", FIFO)
def test_the_fifo_processors_take_their_policy_from_skip_group_on_error(
    cls: type[Any], knob: str
) -> None:
    with pytest.raises(TypeError, match=f"takes no {knob}: .* skip_group_on_error"):
        make(cls, **{knob: VALUES[knob]})


@pytest.mark.parametrize("cls", ALL_KNOBS + FIFO)
def test_a_misspelt_knob_is_named_with_the_knobs_there_are(cls: type[Any]) -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'concurency'.*concurrency"):
        make(cls, concurency=3)


@pytest.mark.parametrize(
    ("knob", "value", "error"),
    [
        ("concurrency", 0, ValueError),
        ("concurrency", True, TypeError),
        ("record_timeout", 0, ValueError),
        ("record_timeout", "1", TypeError),
        ("deadline_margin", -1, ValueError),
        ("deadline_margin", float("nan"), ValueError),
        ("backend", "curio", ValueError),
        ("log_records", -1, ValueError),
        ("log_records", True, ValueError),
        ("observers", "emf", TypeError),
        ("stop_on_failure", 1, TypeError),
        ("skip_key_on_failure", "yes", TypeError),
        ("ordered", None, TypeError),
    ],
)
@pytest.mark.parametrize("cls", ALL_KNOBS)
def test_every_processor_checks_its_knobs_alike(
    cls: type[Any], knob: str, value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match=knob):
        make(cls, **{knob: value})


def test_log_records_reaches_the_sqs_processors_log(caplog: pytest.LogCaptureFixture) -> None:
    # The knob the SQS processors used to lack: it bounds the per-record lines in the log.
    logger = logging.getLogger("test_knobs")
    processor = BatchProcessor(EventType.SQS, logger=logger, log_records=1)
    # ...and the SQS processors hand it to the same code.
    assert SqsBatchProcessor(failed_visibility_timeout=1, log_records=1).log_records == 1

    def record_handler(record: Any) -> None:
        if record.body != "ok":
            raise ValueError(record.body)

    records = sqs_event(["ok", "b", "c"])["Records"]
    with caplog.at_level(logging.WARNING, logger="test_knobs"), processor(records, record_handler):
        processor.process()
    per_record = [r for r in caplog.records if r.getMessage().startswith("record ")]
    assert len(per_record) == 1
