"""The SQS decisions without I/O: what is deleted or hidden, in which calls, what is retried."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anybatch.sqs import RetryPolicy, SQSActionFailure
from anybatch.sqs._plan import (
    MAX_VISIBILITY_TIMEOUT,
    CallState,
    Entry,
    Problem,
    QueueRef,
    call_problem,
    check_visibility_timeout,
    cleanup,
    entry_problem,
    is_fifo_batch,
    parse_queue_arn,
    plan,
    queue_url,
    read_response,
    visibility_timeout_for,
)
from anybatch.testing import sqs_event, sqs_record

ARN_A = "arn:aws:sqs:us-east-1:123456789012:queue-a"
ARN_B = "arn:aws:sqs:eu-west-1:210987654321:queue-b"


def records(n: int, arns: list[str] | None = None) -> list[dict[str, Any]]:
    return [sqs_record(str(i), index=i, queue_arn=(arns[i] if arns else ARN_A)) for i in range(n)]


def ids_of(state_entries: Any) -> list[str]:
    return [entry["Id"] for entry in state_entries]


# --- queues ----------------------------------------------------------------------------------


def test_queue_arn_gives_region_account_and_name() -> None:
    assert parse_queue_arn(ARN_B) == QueueRef("eu-west-1", "210987654321", "queue-b")
    assert parse_queue_arn("arn:aws-cn:sqs:cn-north-1:1:q.fifo").fifo


@pytest.mark.parametrize(
    "arn",
    [
        None,
        "",
        "queue-a",
        "arn:aws:sns:us-east-1:1:topic",
        "arn:aws:sqs:us-east-1::q",
        "arn:aws:sqs:r:1:q:x",
    ],
)
def test_anything_but_a_queue_arn_is_refused(arn: object) -> None:
    with pytest.raises(ValueError, match="not the ARN of an SQS queue"):
        parse_queue_arn(arn)


def test_queue_url_is_built_on_the_resolved_endpoint() -> None:
    queue = QueueRef("eu-west-1", "210987654321", "queue-b")
    assert (
        queue_url("https://sqs.eu-west-1.amazonaws.com", queue)
        == "https://sqs.eu-west-1.amazonaws.com/210987654321/queue-b"
    )
    assert (
        queue_url("http://127.0.0.1:5000/", queue) == "http://127.0.0.1:5000/210987654321/queue-b"
    )


def test_a_batch_is_fifo_by_its_arn_or_its_message_groups() -> None:
    assert not is_fifo_batch(sqs_event(["a", "b"])["Records"])
    assert is_fifo_batch(sqs_event(["a"], fifo=True)["Records"])
    fifo_arn = [sqs_record("a", queue_arn="arn:aws:sqs:us-east-1:1:q.fifo")]
    fifo_arn[0]["attributes"].pop("MessageGroupId", None)
    assert is_fifo_batch(fifo_arn)
    grouped = [sqs_record("a", group_id="g")]  # a group id on a non-.fifo ARN still counts
    assert is_fifo_batch(grouped)


# --- what is done after a batch ----------------------------------------------------------------


def test_nothing_is_deleted_when_every_record_succeeded() -> None:
    result = plan(records(3), [True] * 3, delete_successes=True, visibility=None)
    assert result.calls == ()
    assert result.rejected == ()


def test_successes_are_deleted_when_some_record_failed_and_failures_never_are() -> None:
    result = plan(records(4), [True, False, True, False], delete_successes=True, visibility=None)
    (call,) = result.calls
    assert call.action == "delete"
    assert call.queue == parse_queue_arn(ARN_A)
    assert [entry.record_index for entry in call.entries] == [0, 2]


def test_partial_response_mode_deletes_nothing() -> None:
    result = plan(records(2), [True, False], delete_successes=False, visibility=None)
    assert result.calls == ()


def test_failed_records_get_their_visibility_changed_when_asked() -> None:
    result = plan(records(3), [True, False, False], delete_successes=False, visibility=30)
    (call,) = result.calls
    assert call.action == "change_visibility"
    assert [entry.request() for entry in call.entries] == [
        {"Id": "1", "ReceiptHandle": records(3)[1]["receiptHandle"], "VisibilityTimeout": 30},
        {"Id": "2", "ReceiptHandle": records(3)[2]["receiptHandle"], "VisibilityTimeout": 30},
    ]


def test_calls_hold_at_most_ten_entries_of_one_queue() -> None:
    arns = [ARN_A if i % 3 else ARN_B for i in range(25)]
    result = plan(
        records(25, arns), [i != 7 for i in range(25)], delete_successes=True, visibility=None
    )
    assert [(call.queue.name, len(call.entries)) for call in result.calls] == [
        ("queue-b", 9),
        ("queue-a", 10),
        ("queue-a", 5),
    ]
    for call in result.calls:
        assert {entry.queue_arn for entry in call.entries} == {
            f"arn:aws:sqs:{call.queue.region}:{call.queue.account}:{call.queue.name}"
        }


def test_records_that_cannot_be_acted_on_are_rejected_with_a_reason() -> None:
    batch = records(3)
    del batch[0]["receiptHandle"]
    batch[1]["eventSourceARN"] = "not-an-arn"
    result = plan(batch, [True, True, False], delete_successes=True, visibility=None)
    assert result.calls == ()
    assert [(r.record_index, r.code, r.attempts) for r in result.rejected] == [
        (0, "InvalidRecord", 0),
        (1, "InvalidRecord", 0),
    ]
    assert "no receiptHandle" in result.rejected[0].reason
    assert "not the ARN of an SQS queue" in result.rejected[1].reason


@given(
    st.lists(st.tuples(st.booleans(), st.sampled_from([ARN_A, ARN_B])), max_size=60),
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 100)),
)
def test_planned_calls_respect_every_rule(
    outcome_arns: list[tuple[bool, str]], legacy: bool, visibility: int | None
) -> None:
    succeeded = [ok for ok, _ in outcome_arns]
    batch = records(len(outcome_arns), [arn for _, arn in outcome_arns])
    result = plan(batch, succeeded, delete_successes=legacy, visibility=visibility)
    deleted = [e.record_index for c in result.calls if c.action == "delete" for e in c.entries]
    hidden = [
        e.record_index for c in result.calls if c.action == "change_visibility" for e in c.entries
    ]
    failed = [i for i, ok in enumerate(succeeded) if not ok]
    expected_deleted = [i for i, ok in enumerate(succeeded) if ok] if legacy and failed else []
    assert sorted(deleted) == expected_deleted  # every success, only successes, only if needed
    assert sorted(hidden) == (failed if visibility is not None else [])
    for call in result.calls:
        requests = [entry.request() for entry in call.entries]
        assert 1 <= len(requests) <= 10
        assert len({r["Id"] for r in requests}) == len(requests)
        assert {e.queue_arn for e in call.entries} == {
            batch[e.record_index]["eventSourceARN"] for e in call.entries
        }
        assert len({e.queue_arn for e in call.entries}) == 1


# --- visibility --------------------------------------------------------------------------------


def test_visibility_is_whole_seconds_within_sqs_limits() -> None:
    record = sqs_record("a", receive_count=3)
    assert visibility_timeout_for(12.2, record) == 13
    assert visibility_timeout_for(lambda n: 10 * 2**n, record) == 80
    assert visibility_timeout_for(lambda n: 10.0**9, record) == MAX_VISIBILITY_TIMEOUT
    assert visibility_timeout_for(lambda n: -5, record) == 0


def test_a_record_without_a_receive_count_counts_as_first_delivery() -> None:
    record = sqs_record("a")
    del record["attributes"]["ApproximateReceiveCount"]
    seen: list[int] = []

    def backoff(receive_count: int) -> int:
        seen.append(receive_count)
        return 0

    visibility_timeout_for(backoff, record)
    assert seen == [1]


@pytest.mark.parametrize(
    "attributes", [None, {"ApproximateReceiveCount": "many"}, {"ApproximateReceiveCount": 0}]
)
def test_an_unreadable_receive_count_counts_as_first_delivery(attributes: object) -> None:
    record = sqs_record("a")
    record["attributes"] = attributes
    assert visibility_timeout_for(lambda n: 10 * n, record) == 10


def test_a_visibility_function_that_returns_nan_is_refused() -> None:
    with pytest.raises(ValueError, match="returned nan"):
        visibility_timeout_for(lambda n: float("nan"), sqs_record("a"))


@pytest.mark.parametrize("value", [-1, MAX_VISIBILITY_TIMEOUT + 1])
def test_a_visibility_outside_sqs_limits_is_refused(value: int) -> None:
    with pytest.raises(ValueError, match="between 0 and 43200"):
        check_visibility_timeout(value)


@pytest.mark.parametrize("value", ["30", True, float("nan")])
def test_a_visibility_that_is_no_number_is_refused(value: object) -> None:
    with pytest.raises(TypeError, match="failed_visibility_timeout"):
        check_visibility_timeout(value)


# --- what failed, and what is retried ------------------------------------------------------------


@pytest.mark.parametrize(
    ("failed", "retryable"),
    [
        ({"Id": "0", "SenderFault": True, "Code": "ReceiptHandleIsInvalid", "Message": "m"}, False),
        ({"Id": "0", "SenderFault": True, "Code": "InvalidParameterValue", "Message": "m"}, False),
        ({"Id": "0", "SenderFault": False, "Code": "InternalError", "Message": "m"}, True),
        ({"Id": "0", "SenderFault": False, "Code": "SomethingNew", "Message": "m"}, True),
        ({"Id": "0", "SenderFault": True, "Code": "RequestThrottled", "Message": "m"}, True),
    ],
)
def test_a_failed_entry_is_retried_when_it_is_not_the_senders_fault(
    failed: dict[str, Any], retryable: bool
) -> None:
    problem = entry_problem(failed)
    assert problem == Problem(failed["Code"], "m", retryable)


@pytest.mark.parametrize(
    ("code", "status", "connection", "retryable"),
    [
        ("ThrottlingException", 400, False, True),
        ("RequestThrottled", 403, False, True),
        ("InternalFailure", 500, False, True),
        ("Whatever", 503, False, True),
        ("TooManyRequests", 429, False, True),
        ("AWS.SimpleQueueService.InternalError", 400, False, True),
        ("EndpointConnectionError", None, True, True),
        ("AccessDenied", 403, False, False),
        ("AWS.SimpleQueueService.NonExistentQueue", 400, False, False),
        ("NoCredentialsError", None, False, False),
    ],
)
def test_a_failed_call_is_retried_only_when_it_is_transient(
    code: str, status: int | None, connection: bool, retryable: bool
) -> None:
    assert call_problem(code, "m", status=status, connection=connection).retryable is retryable


def entries(n: int) -> tuple[Entry, ...]:
    return tuple(Entry(i, "delete", f"m{i}", f"h{i}", ARN_A) for i in range(n))


def test_an_entry_missing_from_the_response_is_not_taken_as_done() -> None:
    done, problems = read_response(entries(3), {"Successful": [{"Id": "0"}], "Failed": []})
    assert [e.record_index for e in done] == [0]
    assert [(e.record_index, p.code, p.retryable) for e, p in problems] == [
        (1, "MissingFromResponse", True),
        (2, "MissingFromResponse", True),
    ]


def call_state(n: int, attempts: int = 3) -> CallState:
    from anybatch.sqs._plan import Call

    return CallState(Call("delete", parse_queue_arn(ARN_A), entries(n)), RetryPolicy(attempts))


def test_only_the_entries_that_failed_transiently_are_sent_again() -> None:
    state = call_state(3)
    assert ids_of(state.request()) == ["0", "1", "2"]
    state.received(
        {
            "Successful": [{"Id": "0"}],
            "Failed": [
                {"Id": "1", "SenderFault": False, "Code": "InternalError", "Message": "m"},
                {"Id": "2", "SenderFault": True, "Code": "ReceiptHandleIsInvalid", "Message": "m"},
            ],
        }
    )
    assert state.retry_delay(0.0) == 0.0
    assert ids_of(state.request()) == ["1"]
    state.received({"Successful": [{"Id": "1"}]})
    assert state.retry_delay(0.5) is None
    assert [e.record_index for e in state.done] == [0, 1]
    assert [(f.record_index, f.code, f.attempts) for f in state.failures] == [
        (2, "ReceiptHandleIsInvalid", 1)
    ]


def test_entries_fail_for_good_after_the_last_attempt() -> None:
    state = call_state(2, attempts=2)
    throttled = Problem("ThrottlingException", "slow down", True)
    state.request()
    state.failed(throttled)
    assert state.retry_delay(0.0) is not None
    state.request()
    state.failed(throttled)
    assert state.retry_delay(0.0) is None
    assert state.done == []
    assert [(f.code, f.attempts) for f in state.failures] == [("ThrottlingException", 2)] * 2


def test_a_final_call_error_is_not_retried() -> None:
    state = call_state(2)
    state.request()
    state.failed(Problem("AccessDenied", "no", False))
    assert state.retry_delay(0.0) is None
    assert [f.attempts for f in state.failures] == [1, 1]


def test_giving_up_fails_what_is_pending_only() -> None:
    state = call_state(2)
    state.request()
    state.received(
        {
            "Successful": [{"Id": "0"}],
            "Failed": [{"Id": "1", "SenderFault": False, "Code": "InternalError", "Message": "m"}],
        }
    )
    state.give_up(Problem("DeadlineExceeded", "late", False))
    assert [e.record_index for e in state.done] == [0]
    assert [(f.record_index, f.code) for f in state.failures] == [(1, "DeadlineExceeded")]
    assert state.retry_delay(0.0) is None


# --- backoff -------------------------------------------------------------------------------------


@given(st.integers(1, 40), st.floats(0, 1, exclude_max=True))
def test_backoff_is_jittered_exponential_and_capped(attempt: int, rand: float) -> None:
    policy = RetryPolicy(attempts=5, base_delay=0.1, max_delay=3.0)
    delay = policy.delay(attempt, rand)
    assert 0 <= delay <= min(3.0, 0.1 * 2 ** (attempt - 1))
    assert policy.delay(attempt, 0.0) == 0.0


def test_backoff_doubles_until_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=0.5)
    almost_one = 0.999999
    assert [round(policy.delay(n, almost_one), 3) for n in (1, 2, 3, 4, 5)] == [
        0.1,
        0.2,
        0.4,
        0.5,
        0.5,
    ]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"attempts": 0}, ValueError),
        ({"attempts": 2.0}, TypeError),
        ({"attempts": True}, TypeError),
        ({"base_delay": -1.0}, ValueError),
        ({"base_delay": 3.0, "max_delay": 1.0}, ValueError),
    ],
)
def test_a_retry_policy_that_cannot_work_is_refused(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        RetryPolicy(**kwargs)


# --- the report ----------------------------------------------------------------------------------


def test_cleanup_sorts_by_action_and_record_order() -> None:
    done = [Entry(3, "delete", "m3", "h", ARN_A), Entry(1, "delete", "m1", "h", ARN_A)]
    done.append(Entry(2, "change_visibility", "m2", "h", ARN_A, 5))
    failures = [
        SQSActionFailure("delete", 4, "m4", ARN_A, "h", "X", "x", 1),
        SQSActionFailure("change_visibility", 0, "m0", ARN_A, "h", "Y", "y", 2),
    ]
    report = cleanup(done, failures, 7)
    assert report.deleted == ("m1", "m3")
    assert [f.message_id for f in report.not_deleted] == ["m4"]
    assert report.visibility_changed == ("m2",)
    assert [f.message_id for f in report.visibility_not_changed] == ["m0"]
    assert report.api_calls == 7
