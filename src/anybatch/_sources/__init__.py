"""Event sources: one module per source, each behind the interface of :class:`EventType`.

``EventType.SQS`` and the others are the sources themselves, each made (and its module
imported) when first used. Adding a source adds a module, its line in ``SOURCE_MODULES`` and
its declaration in :class:`EventType`; nothing else in anybatch names a source.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from .._exceptions import InvalidEventError
from ._base import SOURCE_MODULES, EventType, by_value, mapping

__all__ = [
    "EventType",
    "all_sources",
    "batch_source",
    "event_source",
    "source_of",
]


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
