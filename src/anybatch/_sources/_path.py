"""What SQS, Kinesis and DynamoDB Streams share: an identifier and an ordering key at fixed places.

Only the modules of those sources import this one.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from operator import itemgetter, methodcaller
from typing import Any, cast

from .._exceptions import InvalidEventError
from . import EventType
from ._base import RecordT_co, check_objects, freeze, mapping

__all__ = ["PathSource"]


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
                ids = self.fast_identifiers(records)  # pyright: ignore[reportUnknownArgumentType]
                "".join(ids)  # raises TypeError unless every identifier is a string
            except (KeyError, TypeError, AttributeError, IndexError):
                pass
            else:
                if all(ids):  # and none is empty
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
