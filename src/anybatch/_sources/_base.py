"""The interface every event source implements, and what the sources share.

A source is one small object that knows everything about one kind of event and nothing about
the engine: where its records are, what identifies each one and what orders them, its record
view and its pydantic envelope, and how outcomes become the response Lambda expects. The
engine, the schedule and the facades only ever call these methods.

Pure functions, no I/O. Everything that can be wrong with an event is found here and raised
as :class:`~anybatch.InvalidEventError` with the index of the record at fault, before any
handler runs: Lambda fails the whole batch on an identifier it rejects, so a record without a
usable identifier must never reach the response.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from operator import itemgetter, methodcaller
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from .._exceptions import InvalidEventError

if TYPE_CHECKING:
    from .._outcome import BatchResult
    from .dynamodb import DynamoDBSource
    from .firehose import FirehoseSource
    from .kafka import KafkaSource
    from .kinesis import KinesisSource
    from .sqs import SqsSource

__all__ = ["SOURCE_MODULES", "EventType", "PathSource", "by_value", "freeze", "mapping"]

RecordT_co = TypeVar("RecordT_co", covariant=True)
_SourceT = TypeVar("_SourceT")


def mapping(value: object) -> Mapping[str, Any] | None:
    """*value* as a JSON object, or ``None`` when it is something else."""
    if type(value) is dict or isinstance(value, Mapping):
        return cast("Mapping[str, Any]", value)
    return None


def freeze(value: object) -> Hashable:
    """*value* as a dict key: objects and lists become tuples, whatever their order of keys."""
    found = mapping(value)
    if found is not None:
        return tuple(sorted((str(k), freeze(v)) for k, v in found.items()))
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in cast("Sequence[object]", value))
    try:
        hash(value)
    except TypeError:  # a set, or another value that cannot be a dict key
        return repr(value)
    return value


#: Each source's module and class: a source's module is imported when it is first used, so
#: that a function reading SQS pays no import time for Kafka or Firehose.
SOURCE_MODULES = {
    "SQS": ("sqs", "SqsSource"),
    "KinesisDataStreams": ("kinesis", "KinesisSource"),
    "DynamoDBStreams": ("dynamodb", "DynamoDBSource"),
    "Kafka": ("kafka", "KafkaSource"),
    "Firehose": ("firehose", "FirehoseSource"),
}


class _EventTypes(type):
    """Makes ``EventType.<name>`` on first use; calls and iterates as the enum it replaces did."""

    def __call__(cls: type[_SourceT], *args: Any, **kwargs: Any) -> _SourceT:
        # EventType("SQS") looks a source up by its value, as the enum's call did; a source's
        # own class is made as any class is.
        if cls is EventType:
            if len(args) != 1 or kwargs:
                raise TypeError(
                    "EventType() takes one value, the name of a source: EventType('SQS')"
                )
            return cast("_SourceT", by_value(args[0]))
        return cast("_SourceT", type.__call__(cls, *args, **kwargs))

    def __getattr__(cls, name: str) -> Any:
        found = SOURCE_MODULES.get(name)
        if found is None or cls is not EventType:
            raise AttributeError(f"type object {cls.__name__!r} has no attribute {name!r}")
        import importlib

        module, class_name = found
        source = getattr(importlib.import_module(f"{__package__}.{module}"), class_name)()
        setattr(cls, name, source)
        return source

    def __iter__(cls) -> Iterator[EventType[Any]]:
        return iter([getattr(cls, name) for name in SOURCE_MODULES])

    def __len__(cls) -> int:
        return len(SOURCE_MODULES)


def by_value(value: object, /) -> EventType[Any]:
    """The source whose value is *value* (``"SQS"``), importing only that source's module."""
    if isinstance(value, EventType):
        return value  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, str) and value in SOURCE_MODULES:
        source: EventType[Any] = getattr(EventType, value)
        return source
    expected = ", ".join(map(repr, SOURCE_MODULES))
    raise ValueError(f"{value!r} is not a valid EventType; expected one of {expected}")


class EventType(Generic[RecordT_co], metaclass=_EventTypes):
    """An event source, and the namespace of the sources anybatch reads.

    ``EventType.SQS``, ``EventType.KinesisDataStreams``, ``EventType.DynamoDBStreams``,
    ``EventType.Kafka`` and ``EventType.Firehose`` are instances: give one to a processor.
    Each brings its record type (``RecordT_co``) with it, so a processor made with
    ``EventType.Kafka`` hands its handler :class:`~anybatch.records.KafkaEventRecord` s, as a
    type checker sees, without an overload per source. ``EventType.SQS.value`` is ``"SQS"``,
    ``EventType("SQS")`` is ``EventType.SQS`` (an unknown value raises :class:`ValueError`)
    and ``list(EventType)`` lists them, as on the enum of earlier releases.

    A source knows everything about one kind of event and nothing of the engine: where its
    records are, what identifies and orders each one, its record view and pydantic envelope,
    and how outcomes become its response. Subclasses implement :meth:`identifiers` and
    override what differs from the defaults (records in ``event["Records"]``, no ordering, a
    ``batchItemFailures`` response).
    """

    SQS: ClassVar[SqsSource]
    KinesisDataStreams: ClassVar[KinesisSource]
    DynamoDBStreams: ClassVar[DynamoDBSource]
    Kafka: ClassVar[KafkaSource]
    Firehose: ClassVar[FirehoseSource]

    if TYPE_CHECKING:
        # What type checkers see of EventType("SQS"), which _EventTypes.__call__ answers: a
        # source picked at run time, so its record type is Any. Sources take no arguments
        # (or those of their own __init__).
        def __init__(self: EventType[Any], value: str | EventType[Any] = ..., /) -> None: ...

    #: What ``EventType.<name>`` is called, and the event type's ``value`` (as an enum's).
    name: str = ""
    #: The ``eventSource`` values of this source's records (or events).
    event_sources: tuple[str, ...] = ()
    #: Where each record's identifier is, for error messages.
    id_field: str = ""
    #: The record view's class, in ``anybatch.records``.
    view: Callable[[Mapping[str, Any]], RecordT_co]
    #: The pydantic record model in ``anybatch.models`` that a ``model=`` subclasses.
    model_name: str = ""
    #: Top-level fields only this source's records have, and fields they share with others:
    #: how a ``model=`` that subclasses no envelope is recognised as fitting (or not).
    own_fields: frozenset[str] = frozenset()
    shared_fields: frozenset[str] = frozenset()
    #: How to narrow the payload of this source's model (``{name}``: the user's model).
    narrow_hint: str = ""

    @property
    def value(self) -> str:
        """The event type's name, as ``EventType.SQS.value`` was: ``"SQS"``."""
        return self.name

    def __repr__(self) -> str:
        return f"EventType.{self.name}"

    __str__ = __repr__

    # -- where the records are ------------------------------------------------------------

    def records(self, event: object) -> list[Any]:
        """The records of *event*, by default Lambda's ``{"Records": [...]}``.

        Raises :class:`InvalidEventError` for an event of another shape.
        """
        return records_list(event, "Records", self)

    def claims_event(self, event: Mapping[str, Any]) -> bool:
        """Whether *event* is one of this source's (for processors made without one)."""
        records: object = event.get("Records")
        if isinstance(records, list) and records:
            first = mapping(cast("list[object]", records)[0])
            return first is not None and self.claims_record(first)
        return False

    def claims_record(self, record: Mapping[str, Any]) -> bool:
        """Whether *record* is one of this source's."""
        return (record.get("eventSource") or record.get("EventSource")) in self.event_sources

    # -- what identifies and orders each record -------------------------------------------

    def identifiers(self, records: object) -> Sequence[Any]:
        """Every record's identifier, as the response reports it.

        Raises :class:`InvalidEventError` naming the first record without a usable one.
        """
        raise NotImplementedError

    def ordering_keys(self, records: Sequence[Mapping[str, Any]]) -> list[Hashable | None] | None:
        """Each record's ordering key, or ``None`` when no record has one.

        Records that share a key run one at a time, in order. By default nothing is ordered.
        """
        return None

    def skips_key_on_failure(self, records: Sequence[Mapping[str, Any]]) -> bool:
        """Whether a failure must skip the later records of its key in this batch."""
        return False

    def describe(self, identifier: Any) -> str:
        """*identifier* as a log line shows it."""
        return str(identifier)

    # -- the response ---------------------------------------------------------------------

    def settle(
        self, records: Sequence[Mapping[str, Any]], kinds: list[int], values: list[Any]
    ) -> Any:
        """Called once every record has its outcome, before any hook or observer sees it.

        A source whose response carries what the handlers returned reads (and checks) it
        here: it may turn a success into a failure (``kinds[i]``, ``values[i]``) when the
        returned value cannot go into the response. What it returns is ``result.settled``.
        By default nothing (and the processor does not call it).
        """
        return None

    def response(self, result: BatchResult[Any]) -> Any:
        """What the Lambda function returns for *result*.

        By default a partial batch response that lists every record that did not succeed.
        """
        return result.item_failures()

    # -- the trace context a record carries -----------------------------------------------

    def trace_headers(self, record: Mapping[str, Any]) -> Mapping[str, str]:
        """The W3C trace context (``traceparent``, ``tracestate``) *record* carries."""
        return {}

    def xray_header(self, record: Mapping[str, Any]) -> str | None:
        """The X-Ray trace header (``Root=...;Parent=...``) *record* carries."""
        return None


def records_list(event: object, key: str, source: EventType[Any]) -> list[Any]:
    """``event[key]``, checking that the event is an object with that list."""
    found = mapping(event)
    if found is None:
        raise InvalidEventError(
            f"the event must be an object with a {key!r} list, got {type(event).__name__}"
        )
    if key not in found:
        keys = ", ".join(repr(k) for k in list(found)[:5]) or "none"
        raise InvalidEventError(
            f"the event has no {key!r} list (its keys: {keys}); is this an event of {source}?"
        )
    records = found[key]
    if not isinstance(records, list):
        raise InvalidEventError(f"the event's {key!r} must be a list, got {type(records).__name__}")
    return cast("list[Any]", records)  # type: ignore[redundant-cast]


class PathSource(EventType[RecordT_co]):
    """A source whose identifier and ordering key are at fixed places in each record.

    The identifier is a string at a path; the ordering key is a field of one of the record's
    objects (SQS, Kinesis, DynamoDB).
    """

    #: The path of the identifier (``("kinesis", "sequenceNumber")``).
    id_path: tuple[str, ...] = ()
    #: The object and the field of the ordering key (``("kinesis", "partitionKey")``).
    key_path: tuple[str, str] = ("", "")

    # The fast_* methods read well-formed records in one tight pass and raise KeyError,
    # TypeError or AttributeError on anything else; the callers then take the record-by-record
    # path that explains what is wrong.

    def fast_identifiers(self, records: Sequence[Any]) -> list[Any]:
        """Every record's identifier, for well-formed records (raises on malformed ones)."""
        values: Iterable[Any] = records
        for part in self.id_path:
            values = map(itemgetter(part), values)
        return list(values)

    def identifier(self, record: Mapping[str, Any]) -> Any:
        """The raw identifier of *record*, or ``None`` when it has none."""
        value: object = record
        for part in self.id_path:
            found = mapping(value)
            if found is None:
                return None
            value = found.get(part)
        return value

    def identifiers(self, records: object) -> list[Any]:
        # One C-level pass over a well-formed batch; the record-by-record check runs only to
        # find what is wrong.
        if type(records) is list:
            try:
                ids = self.fast_identifiers(cast("list[Any]", records))  # type: ignore[redundant-cast]
            except (KeyError, TypeError, AttributeError, IndexError):
                pass
            else:
                if set(map(type, ids)) <= {str} and "" not in ids:
                    return ids
        checked = check_objects(cast("object", records))  # type: ignore[redundant-cast]
        ident = self.identifier
        for index, record in enumerate(checked):
            value = ident(record)
            if not isinstance(value, str) or not value:
                raise InvalidEventError(self.missing_identifier(record, index, value), index=index)
        return [ident(record) for record in checked]

    def missing_identifier(self, record: Mapping[str, Any], index: int, value: object) -> str:
        """What is wrong with record *index*, whose identifier is *value*."""
        what = "has no" if value is None else f"has an unusable ({value!r})"
        message = f"record {index} {what} {self.id_field!r}, the identifier of {self}"
        event_source = record.get("eventSource") or record.get("EventSource")
        if isinstance(event_source, str) and event_source not in self.event_sources:
            message += (
                f"; its eventSource is {event_source!r}: is the processor's event type right?"
            )
        return message

    def raw_keys(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Every record's raw ordering key, for well-formed records (raises on others)."""
        outer, name = self.key_path
        return list(map(methodcaller("get", name), map(itemgetter(outer), records)))

    def ordering_key(self, record: Mapping[str, Any]) -> Hashable | None:
        """The ordering key of one record (``None``: the record is not ordered)."""
        outer, name = self.key_path
        inner = mapping(record.get(outer))
        value: object = None if inner is None else inner.get(name)
        if value is None or value == "":
            return None
        return freeze(value)

    def ordered_without_keys(self, records: Sequence[Mapping[str, Any]]) -> bool:
        """Whether a batch in which no record has a key may still be ordered.

        Such a batch is ordered by :meth:`ordering_key`'s fallback. By default it is not.
        """
        return False

    def ordering_keys(self, records: Sequence[Mapping[str, Any]]) -> list[Hashable | None] | None:
        try:
            keys = self.raw_keys(records)
        except (KeyError, TypeError, AttributeError):
            keys = None
        if keys is not None:
            if keys.count(None) == len(keys):
                if not self.ordered_without_keys(records):
                    return None
            elif set(map(type, keys)) <= {str, type(None)} and "" not in keys:
                return keys
        key = self.ordering_key
        slow = [key(record) for record in records]
        return None if slow.count(None) == len(slow) else slow


def check_objects(records: object) -> Sequence[Mapping[str, Any]]:
    """*records*, checked to be a list of objects; raises naming the first that is not."""
    if not isinstance(records, Sequence) or isinstance(records, str | bytes):
        raise InvalidEventError(f"records must be a list, got {type(records).__name__}")
    for index, item in enumerate(cast("Sequence[object]", records)):
        if mapping(item) is None:
            raise InvalidEventError(
                f"record {index} must be an object, got {type(item).__name__}", index=index
            )
    return cast("Sequence[Mapping[str, Any]]", records)
