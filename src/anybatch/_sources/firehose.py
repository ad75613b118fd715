"""Amazon Data Firehose data transformation.

Firehose sends ``{"invocationId", "deliveryStreamArn", "region", "records": [...]}`` and expects
every record back, once, in order: ``{"records": [{"recordId", "result", "data", "metadata"?}]}``
with ``result`` one of ``Ok``, ``Dropped`` and ``ProcessingFailed``. The record handler returns
the transformed payload; see :class:`~anybatch.records.FirehoseResult` for what it may return.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from .._exceptions import InvalidEventError, ResponseTooLargeError
from .._outcome import Status
from .._view import Base64Data, DictWrapper, strict_b64decode
from . import EventType
from ._base import check_objects, mapping, records_list

if TYPE_CHECKING:
    from .._outcome import BatchResult

__all__ = [
    "DROP",
    "RESPONSE_LIMIT",
    "FirehoseRecord",
    "FirehoseRecordMetadata",
    "FirehoseResult",
    "FirehoseSource",
    "encode_result",
]


class FirehoseRecordMetadata(DictWrapper):
    """``kinesisRecordMetadata``: where the record came from, for a stream read from Kinesis."""

    __slots__ = ()

    @property
    def shard_id(self) -> str:
        """The Kinesis shard."""
        return str(self._data["shardId"])

    @property
    def partition_key(self) -> str:
        """The record's partition key in the Kinesis stream."""
        return str(self._data["partitionKey"])

    @property
    def approximate_arrival_timestamp(self) -> int:
        """When the record reached the Kinesis stream, in epoch milliseconds."""
        return int(self._data["approximateArrivalTimestamp"])

    @property
    def sequence_number(self) -> str:
        """The record's sequence number in the Kinesis stream."""
        return str(self._data["sequenceNumber"])

    @property
    def subsequence_number(self) -> int:
        """The subsequence number (aggregated records)."""
        return int(self._data["subsequenceNumber"])


class FirehoseRecord(Base64Data):
    """One record of a Firehose data-transformation event.

    The record handler returns the transformed payload (see :class:`FirehoseResult`).
    """

    __slots__ = ()

    @property
    def record_id(self) -> str:
        """The record's id: its answer in the response carries it."""
        return str(self._data["recordId"])

    @property
    def approximate_arrival_timestamp(self) -> int:
        """When Firehose received the record, in epoch milliseconds."""
        return int(self._data["approximateArrivalTimestamp"])

    @property
    def data(self) -> str:
        """The payload, base64-encoded as Firehose sends it."""
        return str(self._data["data"])

    @property
    def kinesis_record_metadata(self) -> FirehoseRecordMetadata | None:
        """Where the record came from, when the delivery stream reads a Kinesis stream."""
        metadata = self._data.get("kinesisRecordMetadata")
        return None if metadata is None else FirehoseRecordMetadata(metadata)


class FirehoseResult:
    """What a Firehose record handler may return besides the payload itself.

    ``FirehoseResult(data, partition_keys={"customer": "42"})`` carries the transformed data
    and the keys of Firehose's dynamic partitioning; :data:`DROP` (``FirehoseResult(
    dropped=True)``) drops the record. ``data`` follows the rules of a plain return: ``None``
    keeps the record unchanged, ``bytes`` and ``str`` (UTF-8) are the new payload, and any
    other value is written as one line of JSON.
    """

    __slots__ = ("data", "dropped", "partition_keys")

    def __init__(
        self,
        data: Any = None,
        partition_keys: Mapping[str, str] | None = None,
        *,
        dropped: bool = False,
    ) -> None:
        self.data = data
        self.partition_keys = partition_keys
        self.dropped = dropped

    def __repr__(self) -> str:
        if self.dropped:
            return "FirehoseResult(dropped=True)"
        return f"FirehoseResult({self.data!r}, partition_keys={self.partition_keys!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FirehoseResult):
            return NotImplemented
        mine = (self.data, self.partition_keys, self.dropped)
        return mine == (other.data, other.partition_keys, other.dropped)

    __hash__ = None  # type: ignore[assignment]


#: Return it from a Firehose record handler to drop the record (``"result": "Dropped"``).
DROP = FirehoseResult(dropped=True)


#: Lambda's limit on a synchronous invocation's response, which Firehose's invocation is.
RESPONSE_LIMIT = 6 * 1024 * 1024
#: What each record's entry adds to the response besides its data (a generous bound).
_ENTRY_OVERHEAD = 160


def encode_result(value: object, original: str) -> tuple[str, str, Mapping[str, str] | None]:
    """``(result, base64 data, partition keys)`` for what a record handler returned.

    ``None`` keeps the record as it came; ``bytes`` and ``str`` (UTF-8) are the new payload;
    any other value is written as one line of JSON (``json.dumps(value)`` and a newline); a
    :class:`FirehoseResult` carries data (by the same rules) and partition keys, or drops the
    record. Raises :class:`TypeError` or :class:`ValueError` for what cannot be encoded.
    """
    keys: Mapping[str, str] | None = None
    if isinstance(value, FirehoseResult):
        if value.dropped:
            return "Dropped", original, None
        keys = value.partition_keys
        if keys is not None:
            keys = _partition_keys(keys)
        value = value.data
    if value is None:
        return "Ok", original, keys
    if isinstance(value, bytes | bytearray | memoryview):
        payload = bytes(cast("bytes", value))
    elif isinstance(value, str):
        payload = value.encode("utf-8")
    else:
        import json

        payload = (json.dumps(value, separators=(",", ":")) + "\n").encode("utf-8")
    return "Ok", base64.b64encode(payload).decode("ascii"), keys


def _partition_keys(keys: object) -> Mapping[str, str]:
    found = mapping(keys)
    if found is None:
        raise TypeError(f"partition_keys must map names to strings, got {type(keys).__name__}")
    for name, value in cast("Mapping[object, object]", found).items():
        if not isinstance(name, str) or not isinstance(value, str) or not name:
            raise TypeError(f"partition_keys must map names to strings, got {name!r}: {value!r}")
    return found


class FirehoseSource(EventType[FirehoseRecord]):
    """Firehose data transformation: the response lists every record, in input order."""

    name = "Firehose"
    event_sources = ("aws:firehose",)
    id_field = "recordId"
    view = FirehoseRecord
    model_name = "FirehoseRecordModel"
    own_fields = frozenset({"recordId", "kinesisRecordMetadata"})
    shared_fields = frozenset({"data", "approximateArrivalTimestamp"})
    narrow_hint = (
        "subclass anybatch.models.FirehoseRecordModel and narrow its data (data: Json[{name}])"
    )

    def records(self, event: object) -> list[Any]:
        return records_list(event, "records", self)

    def claims_event(self, event: Mapping[str, Any]) -> bool:
        return "deliveryStreamArn" in event and "invocationId" in event

    def claims_record(self, record: Mapping[str, Any]) -> bool:
        return "recordId" in record and "data" in record

    def identifiers(self, records: object) -> list[Any]:
        checked = check_objects(records)
        ids: list[Any] = []
        for index, record in enumerate(checked):
            ident = record.get("recordId")
            if not isinstance(ident, str) or not ident:
                what = "has no" if ident is None else f"has an unusable ({ident!r})"
                raise InvalidEventError(
                    f"record {index} {what} 'recordId', the identifier of {self} records",
                    index=index,
                )
            data = record.get("data")
            if not isinstance(data, str):
                raise InvalidEventError(
                    f"record {index} ({ident}) has no base64 'data' string", index=index
                )
            try:
                # Strict, as the views read it: a record answered "Ok" with its data as it
                # came must carry base64, or Firehose rejects the whole response.
                strict_b64decode(data)
            except ValueError as exc:  # binascii.Error, or a character outside ASCII
                raise InvalidEventError(
                    f"record {index} ({ident}) has a 'data' that is not base64 ({exc})",
                    index=index,
                ) from exc
            ids.append(ident)
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            for index, ident in enumerate(ids):
                if ident in seen:
                    raise InvalidEventError(
                        f"record {index} repeats the recordId {ident!r}: Firehose needs each "
                        "record answered once",
                        index=index,
                    )
                seen.add(ident)
        return ids

    encodes = True
    responds = True

    def encode(
        self, record: Mapping[str, Any], value: Any
    ) -> tuple[str, str, Mapping[str, str] | None]:
        """The answer for a record whose handler returned *value*: result, data, keys.

        A value that cannot be encoded raises (``TypeError``, ``ValueError``): the record
        then fails (``ProcessingFailed``), as if the handler had raised.
        """
        return encode_result(value, cast("str", record["data"]))

    def response(self, result: BatchResult[Any]) -> dict[str, Any]:
        encoded = result.encoded
        raw = result.raw_records
        answers: list[dict[str, Any]] = []
        size = 16
        for index, ident in enumerate(result.identifiers):
            entry = None if encoded is None else encoded[index]
            if entry is None:  # the record did not succeed: its data goes back as it came
                original = "" if raw is None else cast("str", raw[index]["data"])
                # A permanent failure its hook took (on_permanent_failure returned) is handled:
                # Firehose drops it instead of retrying it or sending it to its error output.
                routed = result[index].status is Status.ROUTED
                entry = ("Dropped" if routed else "ProcessingFailed", original, None)
            outcome, data, keys = entry
            answer: dict[str, Any] = {"recordId": ident, "result": outcome, "data": data}
            if keys is not None:
                answer["metadata"] = {"partitionKeys": dict(keys)}
                # JSON escapes make a character at most six: an upper bound, refined below.
                size += sum(6 * (len(k) + len(v)) + 6 for k, v in keys.items()) + 32
            size += 6 * len(ident) + len(data) + _ENTRY_OVERHEAD
            answers.append(answer)
        if size > RESPONSE_LIMIT:
            import json

            exact = len(json.dumps({"records": answers}))
            if exact > RESPONSE_LIMIT:
                raise ResponseTooLargeError(
                    f"the Firehose response would be {exact:,} bytes, over Lambda's "
                    f"{RESPONSE_LIMIT:,}-byte limit for a synchronous response; return smaller "
                    "records, or lower the delivery stream's Lambda buffer size (BufferSizeInMBs)"
                )
        return {"records": answers}
