"""Event sources: one module per source, each behind the interface of ``_base.Source``.

``EventType`` is the registry: ``EventType.SQS`` and the others are the sources themselves,
each made (and its module imported) when first used. Adding a source adds a module, its line
in ``SOURCE_MODULES`` and its declaration in :class:`EventType`; nothing else in anybatch names
a source, and no source names another.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from .._exceptions import InvalidEventError
from ._base import RecordT_co, Source, mapping

if TYPE_CHECKING:
    from .dynamodb import DynamoDBSource
    from .firehose import FirehoseSource
    from .kafka import KafkaSource
    from .kinesis import KinesisSource
    from .sqs import SqsSource

__all__ = [
    "SOURCE_MODULES",
    "EventType",
    "all_sources",
    "batch_source",
    "event_source",
    "source_of",
]


_SourceT = TypeVar("_SourceT")

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
        source = getattr(importlib.import_module(f"{__name__}.{module}"), class_name)()
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


class EventType(Source[RecordT_co], metaclass=_EventTypes):
    """An event source, and the namespace of the sources anybatch reads.

    ``EventType.SQS``, ``EventType.KinesisDataStreams``, ``EventType.DynamoDBStreams``,
    ``EventType.Kafka`` and ``EventType.Firehose`` are instances: give one to a processor.
    Each brings its record type (``RecordT_co``) with it, so a processor made with
    ``EventType.Kafka`` hands its handler :class:`~anybatch.records.KafkaEventRecord` s, as a
    type checker sees, without an overload per source. ``EventType.SQS.value`` is ``"SQS"``,
    ``EventType("SQS")`` is ``EventType.SQS`` (an unknown value raises :class:`ValueError`)
    and ``list(EventType)`` lists them, as on the enum of earlier releases.

    Every source subclasses this class; what a source does (where its records are, what
    identifies and orders them, its response) is the interface it inherits from
    ``anybatch._sources._base.Source``.
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


def all_sources() -> list[EventType[Any]]:
    """Every source anybatch reads (importing each one's module)."""
    return list(EventType)


def _names() -> str:
    return ", ".join(f"EventType.{name}" for name in SOURCE_MODULES)


def source_of(event_type: object) -> EventType[Any]:
    """The source *event_type* names: an :class:`EventType`, or its name (``"SQS"``)."""
    try:
        return by_value(event_type)
    except ValueError:
        raise InvalidEventError(
            f"unknown event type {event_type!r}; expected one of {_names()}"
        ) from None


def event_source(event: object) -> EventType[Any]:
    """The source of *event*, for processors made without one: read from the event."""
    found = mapping(event)
    if found is not None:
        for source in all_sources():
            if source.claims_event(found):
                return source
        records = found.get("Records")
        if isinstance(records, list):
            return batch_source(cast("list[Any]", records))  # type: ignore[redundant-cast]
    raise InvalidEventError(
        "the processor has no event type, and the event does not tell it (it is not an "
        f"object with 'Records', 'records' and an 'eventSource'); give the processor one of "
        f"{_names()}"
    )


def batch_source(records: Sequence[Any]) -> EventType[Any]:
    """The source of a batch of records, read from its first record.

    For processors made without an event type of their own.
    """
    if not records:
        return EventType.SQS  # nothing to read: any type reads an empty batch
    first = mapping(records[0])
    if first is not None:
        for source in all_sources():
            if source.claims_record(first):
                return source
    name = None if first is None else first.get("eventSource") or first.get("EventSource")
    what = "has no 'eventSource'" if name is None else f"has the eventSource {name!r}"
    raise InvalidEventError(
        f"the processor has no event type and record 0 {what} to tell it; "
        f"give the processor one of {_names()}",
        index=0,
    )
