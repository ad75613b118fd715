"""One table, two libraries: what the incumbent's DynamoDB layer writes, anybatch reads, and back.

The incumbent (Powertools' ``idempotent_function`` on a batch record handler, with
``event_key_jmespath="messageId"``, boto3) and anybatch (``@idempotent``, aiobotocore) on the
same moto table: the same keys, the same item formats, each one replays what the other
completed and sees what the other has in progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from anybatch import process_partial_response
from anybatch.idempotency import IN_PROGRESS, DynamoDBStore, idempotent
from anybatch.testing import fake_lambda_context, sqs_event

from ._handlers import blocking_processor, errors, failures

if TYPE_CHECKING:
    from .conftest import Table

powertools_batch = pytest.importorskip("aws_lambda_powertools.utilities.batch")
powertools_idempotency = pytest.importorskip("aws_lambda_powertools.utilities.idempotency")

RUNS: list[str] = []


def charge(record: Any) -> dict[str, Any]:
    """One record handler for both libraries: the key prefix is made from its name."""
    RUNS.append(record.body)
    if record.body.startswith("bad"):
        raise ValueError(record.body)
    return {"charged": record.body, "cents": 125}


@pytest.fixture(autouse=True)
def _runs() -> Iterator[None]:
    RUNS.clear()
    yield
    RUNS.clear()


def incumbent(
    table: Table, *, validation: str = "", context: Any = None
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Process an event with the incumbent's batch utility and idempotency on *table*."""
    layer = powertools_idempotency.DynamoDBPersistenceLayer(
        table_name=table.name,
        boto3_client=boto3.client("dynamodb", endpoint_url=table.endpoint, region_name="us-east-1"),
    )
    config = powertools_idempotency.IdempotencyConfig(
        event_key_jmespath="messageId", payload_validation_jmespath=validation
    )
    handler = powertools_idempotency.idempotent_function(
        charge, data_keyword_argument="record", persistence_store=layer, config=config
    )

    def run(event: dict[str, Any]) -> dict[str, Any]:
        # As its docs say: without a context it warns, and writes no in_progress_expiration.
        config.register_lambda_context(context or fake_lambda_context(timeout=60))
        processor = powertools_batch.BatchProcessor(
            powertools_batch.EventType.SQS, raise_on_entire_batch_failure=False
        )
        return dict(
            powertools_batch.process_partial_response(
                event=event, record_handler=handler, processor=processor, context=context
            )
        )

    return run


@pytest.mark.parametrize("batched", [False, True], ids=["per-record", "batched"])
def test_anybatch_replays_what_the_incumbent_completed(
    table: Table, blocking_dynamo: DynamoDBStore, batched: bool
) -> None:
    event = sqs_event(["a", "bad-b", "c"])
    assert len(incumbent(table)(event)["batchItemFailures"]) == 1
    assert sorted(RUNS) == ["a", "bad-b", "c"]
    RUNS.clear()

    proc = blocking_processor()
    response = process_partial_response(
        event, idempotent(blocking_dynamo, batched=batched)(charge), proc
    )
    assert failures(response) == [event["Records"][1]["messageId"]]
    assert RUNS == ["bad-b"]  # a and c replayed from the incumbent's items
    assert proc.result[0].result == {"charged": "a", "cents": 125}


@pytest.mark.parametrize("batched", [False, True], ids=["per-record", "batched"])
def test_the_incumbent_replays_what_anybatch_completed(
    table: Table, blocking_dynamo: DynamoDBStore, batched: bool
) -> None:
    event = sqs_event(["a", "bad-b", "c"])
    process_partial_response(
        event, idempotent(blocking_dynamo, batched=batched)(charge), blocking_processor()
    )
    assert sorted(RUNS) == ["a", "bad-b", "c"]
    RUNS.clear()
    response = incumbent(table)(event)
    assert len(response["batchItemFailures"]) == 1
    assert RUNS == ["bad-b"]


def test_both_write_the_same_items(table: Table, blocking_dynamo: DynamoDBStore) -> None:
    incumbent(table, validation="body")(sqs_event(["a"]))
    [theirs] = table.items()
    table.client.delete_item(TableName=table.name, Key={"id": theirs["id"]})
    handler = idempotent(blocking_dynamo, validate=True)(charge)
    process_partial_response(sqs_event(["a"]), handler, blocking_processor())
    [ours] = table.items()
    assert ours["id"] == theirs["id"]
    assert ours["data"] == theirs["data"]
    assert ours["validation"] == theirs["validation"]
    assert ours["status"] == theirs["status"] == {"S": "COMPLETED"}
    assert set(ours) == set(theirs)  # in_progress_expiration too: UpdateItem keeps it
    assert abs(int(ours["expiration"]["N"]) - int(theirs["expiration"]["N"])) <= 5


def test_validation_hashes_agree(table: Table, blocking_dynamo: DynamoDBStore) -> None:
    event = sqs_event(["a"])
    incumbent(table, validation="body")(event)
    changed = sqs_event(["another body"])
    changed["Records"][0]["messageId"] = event["Records"][0]["messageId"]
    proc = blocking_processor()
    handler = idempotent(blocking_dynamo, validate=True)(charge)
    process_partial_response(event, handler, proc)
    assert errors(proc) == ["ok"]  # same payload: replayed
    process_partial_response(changed, handler, proc)
    assert errors(proc) == ["IdempotencyValidationError"]
    assert RUNS == ["a"]


def test_each_sees_the_others_run_in_progress(table: Table, blocking_dynamo: DynamoDBStore) -> None:
    event = sqs_event(["a"])
    handler = idempotent(blocking_dynamo)(charge)
    process_partial_response(event, handler, blocking_processor())
    [item] = table.items()
    now = time.time()
    table.client.put_item(
        TableName=table.name,
        Item={
            "id": item["id"],
            "expiration": {"N": str(int(now + 3600))},
            "status": {"S": IN_PROGRESS},
            "in_progress_expiration": {"N": str(int(now * 1000 + 60_000))},
        },
    )
    proc = blocking_processor()
    process_partial_response(event, handler, proc)
    assert errors(proc) == ["IdempotencyInProgressError"]
    response = incumbent(table, context=fake_lambda_context(timeout=5))(event)
    assert len(response["batchItemFailures"]) == 1  # IdempotencyAlreadyInProgressError
    assert RUNS == ["a"]


def test_the_incumbents_in_progress_mark_is_anybatchs(
    table: Table, blocking_dynamo: DynamoDBStore
) -> None:
    layer = powertools_idempotency.DynamoDBPersistenceLayer(
        table_name=table.name,
        boto3_client=boto3.client("dynamodb", endpoint_url=table.endpoint, region_name="us-east-1"),
    )
    layer.configure(
        powertools_idempotency.IdempotencyConfig(event_key_jmespath="messageId"),
        function_name=f"{charge.__module__}.{charge.__qualname__}",
    )
    event = sqs_event(["a"])
    layer.save_inprogress(event["Records"][0], remaining_time_in_millis=60_000)
    [item] = table.items()
    record = blocking_dynamo.record_of(item)
    assert record.status == IN_PROGRESS
    assert record.in_progress_expires_at is not None
    assert record.in_progress_expires_at / 1000 == pytest.approx(time.time() + 60, abs=5)
    proc = blocking_processor()
    process_partial_response(event, idempotent(blocking_dynamo)(charge), proc)
    assert errors(proc) == ["IdempotencyInProgressError"]
    assert RUNS == []
