"""Apache Kafka, from Amazon MSK or a self-managed cluster.

Lambda sends ``{"eventSource": "aws:kafka" | "SelfManagedKafka", "records": {"<topic>-<partition>":
[...], ...}}``; each record is identified by its partition and offset, and a failure is reported
as ``{"itemIdentifier": {"partition": "<topic>-<partition>", "offset": N}}``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, Literal, cast, overload

from .._exceptions import InvalidEventError
from .._options import is_int
from .._view import DictWrapper, strict_b64decode
from . import EventType
from ._base import freeze, mapping

__all__ = ["KafkaEventRecord", "KafkaSource"]


class KafkaEventRecord(DictWrapper):
    """One record of a Kafka event (Amazon MSK or self-managed Kafka).

    ``key`` and ``value`` are base64 as Lambda sends them; the ``*_as_*`` methods decode them
    (strict base64: a corrupt payload raises :class:`binascii.Error`, which fails the record).
    A record without a key (or a tombstone, without a value) gives ``None``.
    """

    # The decoded headers, with the dict they were read from; emptied when the view is
    # re-pointed at another record (see anybatch._view.make_views), which decodes its own.
    __slots__ = ("_headers",)
    _repointable = True

    @staticmethod
    def _repoint(views: Sequence[Any], records: Sequence[Mapping[str, Any]]) -> None:
        for view, record in zip(views, records, strict=False):
            view._data = record
            view._headers = None

    @property
    def topic(self) -> str:
        """The topic the record was read from."""
        return str(self._data["topic"])

    @property
    def partition(self) -> int:
        """The partition of the topic."""
        return int(self._data["partition"])

    @property
    def offset(self) -> int:
        """The record's offset in its partition."""
        return int(self._data["offset"])

    @property
    def timestamp(self) -> int:
        """The record's timestamp, in epoch milliseconds."""
        return int(self._data["timestamp"])

    @property
    def timestamp_type(self) -> str:
        """``CREATE_TIME`` or ``LOG_APPEND_TIME``."""
        return str(self._data["timestampType"])

    @property
    def key(self) -> str | None:
        """The key, base64-encoded; ``None`` for a record without one."""
        return self._data.get("key")

    @property
    def value(self) -> str | None:
        """The value, base64-encoded; ``None`` for a tombstone."""
        return self._data.get("value")

    @property
    def headers(self) -> list[dict[str, list[int]]]:
        """The headers as Lambda sends them: a list of ``{name: [byte, ...]}`` objects."""
        return self._data.get("headers") or []

    @property
    def key_schema_metadata(self) -> Mapping[str, Any] | None:
        """The schema registry's metadata of the key (``dataFormat``, ``schemaId``), if any."""
        return self._data.get("keySchemaMetadata")

    @property
    def value_schema_metadata(self) -> Mapping[str, Any] | None:
        """The schema registry's metadata of the value (``dataFormat``, ``schemaId``), if any."""
        return self._data.get("valueSchemaMetadata")

    def key_as_bytes(self) -> bytes | None:
        """The key, base64-decoded."""
        key = self._data.get("key")
        return None if key is None else strict_b64decode(key)

    def key_as_text(self) -> str | None:
        """The key decoded as UTF-8 text."""
        key = self.key_as_bytes()
        return None if key is None else key.decode("utf-8")

    def value_as_bytes(self) -> bytes | None:
        """The value, base64-decoded."""
        value = self._data.get("value")
        return None if value is None else strict_b64decode(value)

    def value_as_text(self) -> str | None:
        """The value decoded as UTF-8 text."""
        value = self.value_as_bytes()
        return None if value is None else value.decode("utf-8")

    def value_as_json(self) -> Any:
        """The value parsed as JSON (``None`` for a tombstone)."""
        value = self.value_as_bytes()
        if value is None:
            return None
        import json

        return json.loads(value.decode("utf-8"))  # JSON is UTF-8; str skips a detection step

    @property
    def decoded_headers(self) -> dict[str, bytes]:
        """The headers, name to bytes (a name sent twice keeps its last value)."""
        data = self._data
        cached: tuple[Mapping[str, Any], dict[str, bytes]] | None = getattr(self, "_headers", None)
        if cached is not None and cached[0] is data:
            return cached[1]
        headers = {name: bytes(value) for chunk in self.headers for name, value in chunk.items()}
        self._headers: tuple[Mapping[str, Any], dict[str, bytes]] | None = (data, headers)
        return headers

    def get_header_value(
        self, name: str, default: bytes | None = None, *, case_sensitive: bool = True
    ) -> bytes | None:
        """One header's value, by name (``case_sensitive=False`` ignores the letters' case)."""
        headers = self.decoded_headers
        if case_sensitive:
            return headers.get(name, default)
        wanted = name.lower()
        for key, value in headers.items():
            if key.lower() == wanted:
                return value
        return default

    # The incumbent's names.

    @property
    def decoded_key(self) -> bytes | None:
        """The key, base64-decoded (the incumbent's name for :meth:`key_as_bytes`)."""
        return self.key_as_bytes()

    @property
    def decoded_value(self) -> bytes | None:
        """The value, base64-decoded (the incumbent's name for :meth:`value_as_bytes`)."""
        return self.value_as_bytes()

    @property
    def json_value(self) -> Any:
        """The value parsed as JSON (the incumbent's name for :meth:`value_as_json`)."""
        return self.value_as_json()


KafkaOrder = Literal["key", "partition"]


def _count(value: object) -> bool:
    """Whether *value* is an int >= 0 (not a bool): what a partition and an offset are."""
    return is_int(value) and value >= 0


_TOPIC, _PARTITION, _OFFSET = itemgetter("topic"), itemgetter("partition"), itemgetter("offset")


class KafkaIdentifiers(Sequence[Any]):
    """Each record's ``{"partition": "<topic>-<partition>", "offset": N}``, made when read."""

    __slots__ = ("_names", "_offsets")

    def __init__(self, names: list[str], offsets: list[int]) -> None:
        self._names = names
        self._offsets = offsets

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return {"partition": self._names[index], "offset": self._offsets[index]}

    def __len__(self) -> int:
        return len(self._offsets)

    def __iter__(self) -> Iterator[Any]:
        for name, offset in zip(self._names, self._offsets, strict=True):
            yield {"partition": name, "offset": offset}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return list(self) == list(cast("Sequence[object]", other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"KafkaIdentifiers({list(self)!r})"


class KafkaSource(EventType[KafkaEventRecord]):
    """Kafka topics: records are handled in the order Lambda sends them.

    Ordering (``order="key"``, the default): records with the same key in one partition run
    one at a time, in offset order, and keyless records of a partition run in offset order
    too; records of different keys run side by side, which is the order Kafka applications
    rely on (a producer's partitioner keeps one key in one partition). ``order="partition"``
    (``EventType.Kafka.in_partition_order()``) runs each partition strictly one record at a
    time. Every record runs, even after others fail.
    """

    name = "Kafka"
    event_sources = ("aws:kafka", "SelfManagedKafka")
    id_field = "topic, partition and offset"
    view = KafkaEventRecord
    model_name = "KafkaRecordModel"
    own_fields = frozenset({"topic", "partition", "offset", "timestampType", "headers"})
    shared_fields = frozenset({"timestamp", "key", "value"})
    narrow_hint = (
        "subclass anybatch.models.KafkaRecordModel and narrow its value (value: Json[{name}])"
    )

    def __init__(self, order: KafkaOrder = "key") -> None:
        if order not in ("key", "partition"):
            raise ValueError(f"order must be 'key' or 'partition', got {order!r}")
        self.order: KafkaOrder = order

    def in_partition_order(self) -> KafkaSource:
        """The Kafka source that runs every partition strictly one record at a time."""
        return _BY_PARTITION

    def __repr__(self) -> str:
        if self.order == "partition":
            return "EventType.Kafka.in_partition_order()"
        return "EventType.Kafka"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KafkaSource) and other.order == self.order

    def __hash__(self) -> int:
        return hash((KafkaSource, self.order))

    # -- where the records are ------------------------------------------------------------

    def records(self, event: object) -> list[Any]:
        found = mapping(event)
        if found is None:
            raise InvalidEventError(
                "a Kafka event must be an object with a 'records' object, "
                f"got {type(event).__name__}"
            )
        groups = found.get("records")
        if mapping(groups) is None:
            keys = ", ".join(repr(k) for k in list(found)[:5]) or "none"
            what = (
                "has no 'records' object"
                if groups is None
                else "has a 'records' that is not an object"
            )
            raise InvalidEventError(f"the event {what} (its keys: {keys}); is this a Kafka event?")
        records: list[Any] = []
        for name, group in cast("Mapping[str, Any]", groups).items():
            if not isinstance(group, list):
                raise InvalidEventError(
                    f"the event's records[{name!r}] must be a list of records, "
                    f"got {type(group).__name__}"
                )
            records += cast("list[Any]", group)  # type: ignore[redundant-cast]
        if not records:
            # Lambda never invokes a function without records: the event is not one of its.
            what = "is empty" if not groups else "holds only empty groups"
            raise InvalidEventError(
                f"the event's 'records' object {what}; Lambda never sends a Kafka event without "
                "records"
            )
        return records

    def claims_event(self, event: Mapping[str, Any]) -> bool:
        return event.get("eventSource") in self.event_sources

    def claims_record(self, record: Mapping[str, Any]) -> bool:
        return "topic" in record and "partition" in record and "offset" in record

    # -- what identifies and orders each record -------------------------------------------

    def identifiers(self, records: object) -> Sequence[Any]:
        if type(records) is list:
            rows = cast("list[Any]", records)  # type: ignore[redundant-cast]
            try:
                topics = list(map(_TOPIC, rows))
                partitions = list(map(_PARTITION, rows))
                offsets: list[Any] = list(map(_OFFSET, rows))
            except (KeyError, TypeError):
                pass
            else:
                # One C-level pass per field; the identifiers are made when read (usually
                # only those of the records reported).
                names = self._names(topics, partitions)
                counts = set(map(type, offsets)) <= {int} and min(offsets, default=0) >= 0
                if names is not None and counts:
                    pairs = zip(topics, partitions, strict=True)
                    return KafkaIdentifiers(list(map(names.__getitem__, pairs)), offsets)
        return self._check(cast("object", records))  # type: ignore[redundant-cast]

    @staticmethod
    def _names(topics: list[Any], partitions: list[Any]) -> dict[tuple[Any, Any], str] | None:
        """``"<topic>-<partition>"`` of each pair, or ``None`` when one is unusable."""
        names: dict[tuple[Any, Any], str] = {}
        try:
            pairs = set(zip(topics, partitions, strict=True))
        except TypeError:  # a list or an object for a topic or a partition
            return None
        for topic, partition in pairs:
            if not isinstance(topic, str) or not topic or not _count(partition):
                return None
            names[topic, partition] = f"{topic}-{partition}"
        return names

    def _check(self, records: object) -> list[Any]:
        """The identifiers, record by record: says which record is at fault, and why."""
        if not isinstance(records, Sequence) or isinstance(records, str | bytes):
            raise InvalidEventError(f"records must be a list, got {type(records).__name__}")
        ids: list[Any] = []
        for index, item in enumerate(cast("Sequence[object]", records)):
            record = mapping(item)
            if record is None:
                raise InvalidEventError(
                    f"record {index} must be an object, got {type(item).__name__}", index=index
                )
            topic, partition, offset = (record.get(f) for f in ("topic", "partition", "offset"))
            if not isinstance(topic, str) or not topic:
                raise InvalidEventError(self._bad(index, "topic", topic), index=index)
            if not _count(partition):
                raise InvalidEventError(self._bad(index, "partition", partition), index=index)
            if not _count(offset):
                raise InvalidEventError(self._bad(index, "offset", offset), index=index)
            ids.append({"partition": f"{topic}-{partition}", "offset": offset})
        return ids

    def _bad(self, index: int, field: str, value: object) -> str:
        what = "has no" if value is None else f"has an unusable ({value!r})"
        kind = "a non-empty string" if field == "topic" else "an integer >= 0"
        return (
            f"record {index} {what} {field!r}, part of the identifier of {self} records "
            f"(it must be {kind})"
        )

    def ordering_keys(self, records: Sequence[Mapping[str, Any]]) -> list[Hashable | None] | None:
        # The topic and the partition are checked by identifiers(), which runs first.
        if self.order == "partition":
            return [(r.get("topic"), r.get("partition")) for r in records]
        keys: list[Hashable | None] = [
            (r.get("topic"), r.get("partition"), r.get("key")) for r in records
        ]
        try:
            hash(tuple(keys))
        except TypeError:
            # Lambda sends a base64 string or no key; a list or an object is frozen, as the
            # other sources' keys are, so that every concurrency reads it the same way.
            return [(r.get("topic"), r.get("partition"), freeze(r.get("key"))) for r in records]
        return keys

    def describe(self, identifier: Any) -> str:
        found = mapping(identifier)
        if found is None:
            return str(identifier)
        return f"{found.get('partition')}@{found.get('offset')}"

    # -- the trace context a record carries -----------------------------------------------

    def trace_headers(self, record: Mapping[str, Any]) -> Mapping[str, str]:
        headers = record.get("headers")
        if not isinstance(headers, list):
            return {}
        carrier: dict[str, str] = {}
        for chunk in cast("list[object]", headers):
            found = mapping(chunk)
            if found is None:
                continue
            for name, value in found.items():
                if name in ("traceparent", "tracestate") and isinstance(value, list):
                    try:
                        carrier[name] = bytes(cast("list[int]", value)).decode("ascii")
                    except (ValueError, TypeError, UnicodeDecodeError):
                        continue
        return carrier


_BY_PARTITION = KafkaSource("partition")
