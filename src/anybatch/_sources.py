"""Event sources: which records an event holds, their identifiers and their ordering keys.

Pure functions, no I/O. Everything that can be wrong with an event is found here and raised as
:class:`~anybatch.InvalidEventError` with the index of the record at fault, before any handler
runs: Lambda fails the whole batch on an empty or null ``itemIdentifier``, so a record without
an identifier must never reach the response.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterable, Mapping, Sequence
from operator import itemgetter, methodcaller
from typing import Any, cast

from ._exceptions import InvalidEventError

__all__ = [
    "EventType",
    "SourceSpec",
    "batch_event_type",
    "check_records",
    "event_records",
    "identifiers",
    "ordering_keys",
    "spec",
]


class EventType(enum.Enum):
    """The event sources anybatch reads."""

    SQS = "SQS"
    KinesisDataStreams = "KinesisDataStreams"
    DynamoDBStreams = "DynamoDBStreams"


class SourceSpec:
    """How to read one event source: where a record's identifier and ordering key live."""

    __slots__ = (
        "_key_getters",
        "event_source",
        "event_type",
        "id_field",
        "id_path",
        "key_field",
        "key_path",
    )

    def __init__(
        self,
        event_type: EventType,
        event_source: str,
        id_path: tuple[str, ...],
        key_field: str,
    ) -> None:
        self.event_type = event_type
        self.event_source = event_source
        self.id_path = id_path
        self.id_field = ".".join(id_path)
        self.key_field = key_field
        self.key_path = tuple(key_field.split("."))
        outer, name = self.key_path
        self._key_getters = (itemgetter(outer), methodcaller("get", name))

    # The fast_* methods read well-formed records in one tight pass and raise KeyError,
    # TypeError or AttributeError on anything else; the callers then take the record-by-record
    # path that explains what is wrong.

    def fast_identifiers(self, records: Sequence[Any]) -> list[Any]:
        """Every record's identifier, for well-formed records (raises on malformed ones)."""
        values: Iterable[Any] = records
        for part in self.id_path:
            values = map(itemgetter(part), values)
        return list(values)

    def fast_keys(self, records: Sequence[Any]) -> list[Any]:
        """Every record's raw ordering key, for well-formed records (raises on others)."""
        outer, name = self.key_path
        if self.event_type is EventType.DynamoDBStreams:
            return [_freeze(record[outer][name]) for record in records]
        get_outer, get_key = self._key_getters
        return list(map(get_key, map(get_outer, records)))

    def identifier(self, record: Mapping[str, Any]) -> Any:
        """Return the raw identifier of *record*, or ``None`` when it has none."""
        value: object = record
        for part in self.id_path:
            mapping = _mapping(value)
            if mapping is None:
                return None
            value = mapping.get(part)
        return value

    def ordering_key(self, record: Mapping[str, Any]) -> Hashable | None:
        """Return the ordering key of *record* (``None``: the record is not ordered)."""
        outer, name = self.key_path
        inner = _mapping(record.get(outer))
        value: object = None if inner is None else inner.get(name)
        if value is None or value == "":
            return self._fifo_queue_key(record)
        # DynamoDB Keys: {"pk": {"S": "a"}, "sk": {"N": "1"}}; the order of names is irrelevant.
        return _freeze(value)

    def skips_key_on_failure(self, records: Sequence[Mapping[str, Any]]) -> bool:
        """Whether a failure must skip the later records of its ordering key in this batch.

        Only for a batch from an SQS FIFO queue: a FIFO message handled after an earlier one
        of its group failed is out of order, and that cannot be undone. Streams and standard
        queues run every record (what the incumbent documents); Lambda resumes a stream from
        the lowest sequence number reported, so a skip is an opt-in there.
        """
        if self.event_type is not EventType.SQS:
            return False
        for record in records:
            arn: object = record.get("eventSourceARN")
            if isinstance(arn, str) and arn.endswith(".fifo"):
                return True
        return False

    def _fifo_queue_key(self, record: Mapping[str, Any]) -> Hashable | None:
        # An SQS record from a FIFO queue without a MessageGroupId (never sent by Lambda, but
        # hand-made events have them): keep the whole queue in order rather than guess.
        if self.event_type is not EventType.SQS:
            return None
        arn = record.get("eventSourceARN")
        if isinstance(arn, str) and arn.endswith(".fifo"):
            return ("queue", arn)
        return None


def _mapping(value: object) -> Mapping[str, Any] | None:
    """*value* as a JSON object, or ``None`` when it is something else."""
    if type(value) is dict or isinstance(value, Mapping):
        return cast("Mapping[str, Any]", value)
    return None


def _freeze(value: object) -> Hashable:
    mapping = _mapping(value)
    if mapping is not None:
        return tuple(sorted((str(k), _freeze(v)) for k, v in mapping.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in cast("Sequence[object]", value))
    try:
        hash(value)
    except TypeError:  # a set, or another value that cannot be a dict key
        return repr(value)
    return value


_SPECS: dict[EventType, SourceSpec] = {
    EventType.SQS: SourceSpec(
        EventType.SQS, "aws:sqs", ("messageId",), "attributes.MessageGroupId"
    ),
    EventType.KinesisDataStreams: SourceSpec(
        EventType.KinesisDataStreams,
        "aws:kinesis",
        ("kinesis", "sequenceNumber"),
        "kinesis.partitionKey",
    ),
    EventType.DynamoDBStreams: SourceSpec(
        EventType.DynamoDBStreams, "aws:dynamodb", ("dynamodb", "SequenceNumber"), "dynamodb.Keys"
    ),
}


def spec(event_type: object) -> SourceSpec:
    """Return the :class:`SourceSpec` of *event_type*, or raise for an unknown one."""
    if isinstance(event_type, EventType):
        return _SPECS[event_type]
    if isinstance(event_type, str):
        for known in EventType:
            if event_type in (known.value, known.name):
                return _SPECS[known]
    names = ", ".join(f"EventType.{e.name}" for e in EventType)
    raise InvalidEventError(f"unknown event type {event_type!r}; expected one of {names}")


def batch_event_type(records: Sequence[Any]) -> EventType:
    """The event type a batch names in its records' ``eventSource``.

    For processors made without an event type of their own.
    """
    if not records:
        return EventType.SQS  # nothing to read: any type reads an empty batch
    first = _mapping(records[0])
    name = None if first is None else first.get("eventSource") or first.get("EventSource")
    for known in EventType:
        if _SPECS[known].event_source == name:
            return known
    names = ", ".join(f"EventType.{e.name}" for e in EventType)
    what = "has no 'eventSource'" if name is None else f"has the eventSource {name!r}"
    raise InvalidEventError(
        f"the processor has no event type and record 0 {what} to tell it; "
        f"give the processor one of {names}",
        index=0,
    )


def event_records(event: object) -> list[Any]:
    """Return ``event["Records"]``, checking that the event has that shape."""
    mapping = _mapping(event)
    if mapping is None:
        raise InvalidEventError(
            f"the event must be an object with a 'Records' list, got {type(event).__name__}"
        )
    if "Records" not in mapping:
        keys = ", ".join(repr(k) for k in list(mapping)[:5]) or "none"
        raise InvalidEventError(
            f"the event has no 'Records' list (its keys: {keys}); "
            "is this an SQS, Kinesis or DynamoDB Streams event?"
        )
    records = mapping["Records"]
    if not isinstance(records, list):
        raise InvalidEventError(
            f"the event's 'Records' must be a list, got {type(records).__name__}"
        )
    return records  # pyright: ignore[reportUnknownVariableType]


def identifiers(records: object, source: SourceSpec) -> list[str]:
    """Return every record's identifier, checking that each record is an object that has one.

    Raises :class:`InvalidEventError` naming the first bad record. Costs one C-level pass over
    a well-formed batch; the record-by-record check runs only to find what is wrong.
    """
    if type(records) is list:
        try:
            ids = source.fast_identifiers(cast("list[Any]", records))  # type: ignore[redundant-cast]
        except (KeyError, TypeError, AttributeError, IndexError):
            pass
        else:
            if set(map(type, ids)) <= {str} and "" not in ids:
                return ids
    checked = check_records(cast("object", records), source)  # type: ignore[redundant-cast]
    return [source.identifier(record) for record in checked]


def check_records(records: object, source: SourceSpec) -> Sequence[Mapping[str, Any]]:
    """Check that every record is an object with a usable identifier.

    Returns *records* unchanged; raises :class:`InvalidEventError` naming the first bad record.
    """
    if not isinstance(records, Sequence) or isinstance(records, str | bytes):
        raise InvalidEventError(f"records must be a list, got {type(records).__name__}")
    ident = source.identifier
    for index, item in enumerate(cast("Sequence[object]", records)):
        record = _mapping(item)
        if record is None:
            raise InvalidEventError(
                f"record {index} must be an object, got {type(item).__name__}", index=index
            )
        value = ident(record)
        if not isinstance(value, str) or not value:
            raise InvalidEventError(_missing_identifier(record, index, source, value), index=index)
    return cast("Sequence[Mapping[str, Any]]", records)


def _missing_identifier(
    record: Mapping[str, Any], index: int, source: SourceSpec, value: object
) -> str:
    what = "has no" if value is None else f"has an unusable ({value!r})"
    message = f"record {index} {what} {source.id_field!r}, the identifier of {source.event_type}"
    event_source = record.get("eventSource") or record.get("EventSource")
    if isinstance(event_source, str) and event_source != source.event_source:
        message += f"; its eventSource is {event_source!r}: is the processor's event type right?"
    return message


def ordering_keys(
    records: Sequence[Mapping[str, Any]], source: SourceSpec
) -> list[Hashable | None] | None:
    """Return each record's ordering key, or ``None`` when no record has one."""
    try:
        keys = source.fast_keys(records)
    except (KeyError, TypeError, AttributeError):
        keys = None
    if keys is not None and source.event_type is EventType.DynamoDBStreams:
        return keys  # every record has its item's keys
    if keys is not None and keys.count(None) == len(keys):
        if source.event_type is not EventType.SQS:
            return None
        # No MessageGroupId anywhere: ordered only if a queue is FIFO (hand-made events).
        try:
            arns: set[object] = set(map(itemgetter("eventSourceARN"), records))
        except KeyError:
            arns = {record.get("eventSourceARN") for record in records}
        for arn in arns:
            if isinstance(arn, str) and arn.endswith(".fifo"):
                break
        else:
            return None
    elif keys is not None and set(map(type, keys)) <= {str, type(None)} and "" not in keys:
        return keys
    key = source.ordering_key
    slow = [key(record) for record in records]
    return None if slow.count(None) == len(slow) else slow
