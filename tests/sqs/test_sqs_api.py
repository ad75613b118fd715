"""The public surface of anybatch.sqs: exports, the optional dependency, arguments, types."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
from typing_extensions import assert_type

import anybatch.sqs
from anybatch import BatchProcessingError, HandlerTypeError, ProcessorStateError
from anybatch.records import SQSRecord
from anybatch.sqs import (
    AsyncPartialSQSProcessor,
    AsyncSqsBatchProcessor,
    PartialSQSProcessor,
    RetryPolicy,
    SQSBatchProcessingError,
    SqsBatchProcessor,
    async_sqs_batch_processor,
    sqs_batch_processor,
)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(anybatch.sqs).items()
        if not name.startswith("_") and not isinstance(value, type(sys)) and name != "annotations"
    }
    assert public == set(anybatch.sqs.__all__)
    for name in anybatch.sqs.__all__:
        value = getattr(anybatch.sqs, name)
        assert getattr(value, "__doc__", None), name
        if isinstance(value, type):
            assert value.__module__ == "anybatch.sqs", name


def test_without_aiobotocore_the_import_says_what_to_install() -> None:
    result = run_python(
        """
        import sys
        sys.modules["aiobotocore"] = None  # as if it were not installed
        from anybatch import MissingDependencyError
        try:
            import anybatch.sqs
        except MissingDependencyError as exc:
            assert isinstance(exc, ImportError)
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'anybatch[sqs]'" in result.stdout


def test_neither_anybatch_nor_anybatch_sqs_imports_botocore() -> None:
    result = run_python(
        """
        import sys
        import anybatch
        assert "aiobotocore" not in sys.modules
        import anybatch.sqs
        assert not {"aiobotocore", "botocore", "aiohttp"} & set(sys.modules), "imported"
        anybatch.sqs.PartialSQSProcessor()  # a processor needs no client until it deletes
        assert "botocore" not in sys.modules
        """
    )
    assert result.returncode == 0, result.stderr


def test_the_error_is_a_batch_processing_error_built_as_the_incumbents() -> None:
    error = SQSBatchProcessingError("Not all records processed successfully.", [])
    assert isinstance(error, BatchProcessingError)
    assert error.failures == ()
    assert error.not_deleted == ()
    assert str(error).startswith("Not all records processed successfully.")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"failed_visibility_timeout": -1}, ValueError),
        ({"failed_visibility_timeout": "30"}, TypeError),
        ({"max_concurrent_calls": 0}, ValueError),
        ({"max_concurrent_calls": 2.5}, TypeError),
        ({"retry": 3}, TypeError),
        ({"concurrency": 0}, ValueError),
    ],
)
def test_settings_that_cannot_work_are_refused_at_construction(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        PartialSQSProcessor(**kwargs)


def test_the_report_exists_only_after_a_batch() -> None:
    with pytest.raises(ProcessorStateError, match="no batch"):
        PartialSQSProcessor().cleanup  # noqa: B018


def test_default_concurrency_follows_the_core_facades() -> None:
    assert PartialSQSProcessor().concurrency == 1
    assert AsyncPartialSQSProcessor().concurrency == 100
    assert SqsBatchProcessor(failed_visibility_timeout=0).concurrency == 1
    assert AsyncSqsBatchProcessor(failed_visibility_timeout=0).concurrency == 100
    assert PartialSQSProcessor(concurrency=None).concurrency is None


def test_the_decorator_takes_a_processor_or_settings_not_both() -> None:
    with pytest.raises(TypeError, match="not both"):
        sqs_batch_processor(
            record_handler=str, processor=PartialSQSProcessor(), suppress_exception=True
        )


def test_each_decorator_refuses_the_other_kind_of_handler() -> None:
    async def async_handler(event: Any, context: Any) -> None: ...

    def sync_handler(event: Any, context: Any) -> None: ...

    with pytest.raises(HandlerTypeError, match="async_batch_processor"):
        sqs_batch_processor(record_handler=str)(async_handler)
    with pytest.raises(HandlerTypeError, match="plain function"):
        async_sqs_batch_processor(record_handler=str)(sync_handler)  # type: ignore[arg-type]


def test_a_batch_where_everything_succeeds_needs_no_client() -> None:
    processor = PartialSQSProcessor(endpoint_url="http://127.0.0.1:9")
    from anybatch.testing import sqs_event

    with processor(sqs_event(["a", "b"])["Records"], str):
        assert [status for status, _, _ in processor.process()] == ["success", "success"]
    assert processor.cleanup == anybatch.sqs.SQSCleanup()
    processor.close()  # nothing to close


def test_processors_hand_the_record_type_to_the_handler() -> None:
    assert_type(PartialSQSProcessor(), PartialSQSProcessor[SQSRecord])
    assert_type(AsyncPartialSQSProcessor(), AsyncPartialSQSProcessor[SQSRecord])
    assert_type(SqsBatchProcessor(failed_visibility_timeout=1), SqsBatchProcessor[SQSRecord])
    assert_type(RetryPolicy().delay(1, 0.5), float)
