"""What anybatch exports is deliberate, and importing it stays cheap."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

import anybatch
import anybatch.observe
import anybatch.records
import anybatch.testing

# Exported names that are values rather than classes or functions.
CONSTANTS = {"__version__", "ExceptionInfo", "DEFAULT_DEADLINE_MARGIN", "DROP"}


@pytest.mark.parametrize("module", [anybatch, anybatch.observe, anybatch.records, anybatch.testing])
def test_all_lists_exactly_the_public_names(module: types.ModuleType) -> None:
    for name in module.__all__:  # first: some names are imported on first use
        assert hasattr(module, name), name
    defined_here = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and isinstance(value, type | types.FunctionType)
        and value.__module__.startswith("anybatch")
    }
    assert set(module.__all__) - CONSTANTS == defined_here


def test_public_classes_report_the_public_module() -> None:
    assert anybatch.BatchProcessor.__module__ == "anybatch"
    assert repr(anybatch.InvalidEventError("x")).startswith("InvalidEventError")


def test_drop_in_names_of_the_incumbent_are_all_there() -> None:
    for name in (
        "EventType",
        "AsyncBatchProcessor",
        "BatchProcessor",
        "SqsFifoPartialProcessor",
        "process_partial_response",
        "async_process_partial_response",
        "batch_processor",
        "async_batch_processor",
        "BasePartialProcessor",
        "BatchProcessingError",
        "SuccessResponse",
        "FailureResponse",
        "ExceptionInfo",
        "UnexpectedBatchTypeError",
    ):
        assert name in anybatch.__all__


HEAVY = ("anyio", "pydantic", "botocore", "aiobotocore", "httpx", "trio", "asyncio", "inspect")


def loaded_after(code: str) -> set[str]:
    # Not measured by coverage, which the tests' own subprocesses otherwise are: coverage
    # imports modules of its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout.split()
    return {name.split(".")[0] for name in out}


def test_importing_anybatch_imports_no_heavy_dependency() -> None:
    loaded = loaded_after(
        "from anybatch import AsyncBatchProcessor, async_process_partial_response"
    )
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_the_inline_blocking_path_never_imports_anyio() -> None:
    loaded = loaded_after(
        "from anybatch import BatchProcessor, EventType, process_partial_response\n"
        "from anybatch.testing import sqs_event\n"
        "process_partial_response(sqs_event(['a']), lambda r: None, BatchProcessor(EventType.SQS))"
    )
    assert "anyio" not in loaded
    assert "pydantic" not in loaded
