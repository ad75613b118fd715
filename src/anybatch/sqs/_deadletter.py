"""The SQS processors' dead-letter queue: where a permanent failure goes, and how it is sent.

The decisions are plain functions: which queue a source queue's permanent failures go to (a
URL or ARN given, or the source queue's own ``RedrivePolicy``), and each message's
``SendMessageBatch`` entry (its body and message attributes, the failure's type and message
as two more attributes, a FIFO target's group and deduplication ids). :class:`DeadLetterRouter`
drives them: it reads the redrive policies it needs (``GetQueueAttributes``, kept for a few
minutes), then sends through ``_deleter.perform`` with the processor's retry policy, call
concurrency and deadline. A message SQS did not confirm stays reported: nothing is lost.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeAlias, cast
from urllib.parse import urlsplit

from anybatch._outcome import describe
from anybatch._permanent import PermanentItem, Routing

from ._deleter import Settlement, SQSCallError, perform
from ._plan import MAX_ENTRIES, Call, Entry, Problem, QueueRef, failure, parse_queue_arn

if TYPE_CHECKING:
    from ._client import AioSQS
    from ._plan import RetryPolicy, SQSActionFailure

__all__ = [
    "ERROR_MESSAGE",
    "ERROR_TYPE",
    "DeadLetterQueue",
    "DeadLetterRouter",
    "check_dead_letter_queue",
    "redrive_target",
    "send_entry",
]

#: ``dead_letter_queue=``: ``True`` for the source queue's own (its ``RedrivePolicy``), or
#: the URL or ARN of a queue.
DeadLetterQueue: TypeAlias = bool | str

#: The message attributes that say why a message was dead-lettered.
ERROR_TYPE: Final = "anybatch.error_type"
ERROR_MESSAGE: Final = "anybatch.error_message"
#: SQS takes at most 10 message attributes a message.
MAX_ATTRIBUTES: Final = 10
#: The failure's message is cut to this many characters (attributes count toward the size).
MAX_ERROR_MESSAGE: Final = 1024
#: Seconds a queue's redrive policy is trusted before it is read again.
REDRIVE_TTL: Final = 300.0

_URL_REGION = (
    re.compile(r"^sqs\.([a-z0-9-]+)\.amazonaws\.com"),
    re.compile(r"^([a-z0-9-]+)\.queue\.amazonaws\.com"),
)


def check_dead_letter_queue(value: object) -> QueueRef | bool:
    """Read ``dead_letter_queue``: ``False``/``None`` (none), ``True``, a queue URL or ARN."""
    if value is None or value is False:
        return False
    if value is True:
        return True
    if not isinstance(value, str):
        raise TypeError(
            "dead_letter_queue must be True (the queue's own, from its RedrivePolicy), a "
            f"queue URL or ARN, or None; got {value!r}"
        )
    if value.startswith("arn:"):
        return parse_queue_arn(value)
    parts = urlsplit(value)
    path = [part for part in parts.path.split("/") if part]
    if parts.scheme not in ("http", "https") or not parts.netloc or len(path) != 2:
        raise ValueError(
            "dead_letter_queue must be a queue URL (https://sqs.<region>.amazonaws.com/"
            f"<account>/<name>) or ARN, got {value!r}"
        )
    region = ""
    for pattern in _URL_REGION:
        found = pattern.match(parts.netloc)
        if found:
            region = found.group(1)
    return QueueRef(region, path[0], path[1], url=value)


def redrive_target(attributes: Mapping[str, str]) -> QueueRef | None:
    """The dead-letter queue a queue's ``RedrivePolicy`` attribute names, if it has one."""
    policy = attributes.get("RedrivePolicy")
    if not policy:
        return None
    try:
        arn = json.loads(policy).get("deadLetterTargetArn")
        return parse_queue_arn(arn)
    except (ValueError, AttributeError):
        return None


class _BadAttribute(ValueError):
    """A message attribute ``SendMessageBatch`` cannot take (said of the record)."""


def _attributes(record: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The message's attributes as ``SendMessageBatch`` takes them (Lambda's are camelCase)."""
    found: object = record.get("messageAttributes")
    if not isinstance(found, Mapping):
        return {}
    attributes: dict[str, dict[str, Any]] = {}
    for name, value in cast("Mapping[str, Any]", found).items():
        if not isinstance(value, Mapping):
            continue
        value = cast("Mapping[str, Any]", value)
        data_type = str(value.get("dataType") or value.get("DataType") or "String")
        if data_type.startswith("Binary"):
            binary = value.get("binaryValue", value.get("BinaryValue"))
            if isinstance(binary, str):  # Lambda hands binary values base64-encoded
                try:
                    binary = base64.b64decode(binary, validate=True)
                except binascii.Error:
                    binary = binary.encode()
            elif not isinstance(binary, (bytes, bytearray)):
                raise _BadAttribute(
                    f"its message attribute {name!r} is {data_type} with no binary value "
                    f"(got {type(binary).__name__})"
                )
            attributes[name] = {"DataType": data_type, "BinaryValue": binary}
        else:
            text = value.get("stringValue", value.get("StringValue"))
            attributes[name] = {"DataType": data_type, "StringValue": str(text)}
    return attributes


def _failure_attributes(error: BaseException) -> dict[str, dict[str, str]]:
    kind = type(error)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    found = {ERROR_TYPE: {"DataType": "String", "StringValue": name}}
    message = describe(error)[:MAX_ERROR_MESSAGE]
    if message:  # SQS refuses an empty string value
        found[ERROR_MESSAGE] = {"DataType": "String", "StringValue": message}
    return found


def send_entry(
    index: int, record: Mapping[str, Any], error: BaseException, target: QueueRef
) -> Entry | Problem:
    """The ``SendMessageBatch`` entry of a record that failed permanently with *error*.

    The body and the message attributes as they came, and the failure's type and message as
    two more attributes (as many as fit SQS's 10: the message's own come first). A FIFO
    target gets the message's group id (its message id when it has none) and its message id
    as deduplication id, so that a send retried within five minutes is not sent twice.
    """
    body = record.get("body")
    message_id = str(record.get("messageId", ""))
    if not isinstance(body, str):
        return Problem("InvalidRecord", f"record {index} has no body to send", False)
    try:
        attributes = _attributes(record)
    except _BadAttribute as exc:
        return Problem("InvalidRecord", f"record {index}: {exc}", False)
    for name, value in _failure_attributes(error).items():
        if len(attributes) < MAX_ATTRIBUTES and name not in attributes:
            attributes[name] = value
    message: dict[str, Any] = {"MessageBody": body}
    if attributes:
        message["MessageAttributes"] = attributes
    if target.fifo:
        system: object = record.get("attributes")
        group: object = None
        if isinstance(system, Mapping):
            group = cast("Mapping[str, object]", system).get("MessageGroupId")
        message["MessageGroupId"] = str(group or message_id)
        message["MessageDeduplicationId"] = message_id[:128]
    where = target.url or target.arn
    handle = str(record.get("receiptHandle") or "")
    return Entry(index, "send", message_id, handle, where, None, message)


class DeadLetterRouter:
    """Send an SQS batch's permanent failures to a dead-letter queue (a ``Router``).

    *target* is a queue, or ``True`` for each source queue's own (its ``RedrivePolicy``).
    """

    needs_asyncio = True
    target = "the dead-letter queue"

    def __init__(
        self,
        api: AioSQS,
        target: QueueRef | bool,
        retry: RetryPolicy,
        max_concurrent_calls: int,
    ) -> None:
        self._api = api
        self._target = target
        self._retry = retry
        self._max_calls = max_concurrent_calls
        #: Each source queue's dead-letter queue, and when it was read (time.monotonic).
        self._redrive: dict[QueueRef, tuple[QueueRef, float]] = {}

    async def _target_of(self, source: QueueRef) -> QueueRef | Problem:
        target = self._target
        if isinstance(target, QueueRef):
            return target if target.region else target._replace(region=source.region)
        known = self._redrive.get(source)
        if known is not None and time.monotonic() - known[1] < REDRIVE_TTL:
            return known[0]
        try:
            attributes = await self._api.attributes_of(source, ["RedrivePolicy"])
        except SQSCallError as exc:  # not kept: the next batch asks again
            return exc.problem
        found = redrive_target(attributes)
        if found is None:
            return Problem(
                "NoRedrivePolicy",
                f"the queue {source.arn} has no RedrivePolicy naming a dead-letter queue; "
                "give dead_letter_queue= a queue URL, or set the queue's redrive policy",
                False,
            )
        self._redrive[source] = (found, time.monotonic())
        return found

    async def route(self, items: Sequence[PermanentItem], time_left: float | None) -> Routing:
        """Send *items* to their dead-letter queues; what SQS confirmed is routed."""
        started = time.monotonic()
        rejected: list[SQSActionFailure] = []
        by_target: dict[QueueRef, list[Entry]] = {}
        targets: dict[str, QueueRef | Problem] = {}
        for item in items:
            raw = item.raw
            arn = str(raw.get("eventSourceARN") or "")
            unsent = Entry(item.index, "send", str(raw.get("messageId", "")), "", arn)
            target = targets.get(arn)
            if target is None:
                try:
                    target = await self._target_of(parse_queue_arn(arn))
                except ValueError as exc:
                    target = Problem("InvalidRecord", f"record {item.index}: {exc}", False)
                targets[arn] = target
            if isinstance(target, Problem):
                rejected.append(failure(unsent, target, 0))
                continue
            entry = send_entry(item.index, raw, item.error, target)
            if isinstance(entry, Problem):
                rejected.append(failure(unsent, entry, 0))
                continue
            by_target.setdefault(target, []).append(entry)
        calls = [
            Call("send", queue, tuple(entries[start : start + MAX_ENTRIES]))
            for queue, entries in by_target.items()
            for start in range(0, len(entries), MAX_ENTRIES)
        ]
        left = None if time_left is None else time_left - (time.monotonic() - started)
        settlement = Settlement((), (), 0)
        if calls:
            settlement = await perform(
                self._api, calls, self._retry, max_concurrent_calls=self._max_calls, time_left=left
            )
        failures = [*rejected, *settlement.failures]
        report = Settlement(settlement.done, tuple(failures), settlement.api_calls)
        return Routing(
            frozenset(entry.record_index for entry in settlement.done),
            {f.record_index: f"{f.code}: {f.reason}" for f in failures},
            report,
        )
