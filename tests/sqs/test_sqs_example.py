"""examples/sqs_legacy.py, run as Lambda would run it, against queues on the moto server."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

from anybatch.sqs import SQSBatchProcessingError
from anybatch.testing import fake_lambda_context

if TYPE_CHECKING:
    from ._moto import MakeQueue

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sqs_legacy.py"


@pytest.fixture
def example(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """A fresh import of the example, whose client finds moto through botocore's settings."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_endpoint)
    spec = importlib.util.spec_from_file_location("sqs_legacy_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    module.processor.close()


def orders(*quantities: int) -> list[str]:
    return [json.dumps({"id": f"order-{i}", "quantity": q}) for i, q in enumerate(quantities)]


def test_the_example_leaves_only_the_failed_order_in_the_queue(
    example: ModuleType, make_queue: MakeQueue
) -> None:
    queue = make_queue()
    event = queue.event(orders(2, 0, 5, 1))
    with pytest.raises(SQSBatchProcessingError) as caught:
        example.lambda_handler(event, fake_lambda_context())
    failed = event["Records"][1]
    assert [o.identifier for o in caught.value.failures] == [failed["messageId"]]
    assert example.processor.cleanup.visibility_changed == (failed["messageId"],)
    assert queue.counts() == (0, 1)  # deleted: the three others; hidden: the failed one
    assert queue.bodies_left(event["Records"]) == [failed["body"]]


def test_the_example_returns_when_every_order_succeeds(
    example: ModuleType, make_queue: MakeQueue
) -> None:
    queue = make_queue()
    event = queue.event(orders(1, 2))
    assert example.lambda_handler(event, fake_lambda_context()) == {"processed": 2}
    assert example.processor.cleanup.api_calls == 0  # Lambda deletes the batch itself
    assert queue.counts() == (0, 2)


def test_the_backoff_doubles_from_ten_seconds_up_to_fifteen_minutes(example: ModuleType) -> None:
    assert [example.backoff(n) for n in (1, 2, 3, 7, 8, 50)] == [10, 20, 40, 640, 900, 900]
