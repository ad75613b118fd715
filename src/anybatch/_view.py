"""What the record views of every source share: a read-only dict view and strict decoding.

A leaf: the sources' modules build their views on these, and nothing here knows a source.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from decimal import Decimal

__all__ = [
    "Base64Data",
    "DictWrapper",
    "StreamRecord",
    "deserialize_dynamodb",
    "strict_b64decode",
]


def strict_b64decode(value: str | bytes) -> bytes:
    """Decode strict base64: any character outside the alphabet, or bad padding, raises.

    Lenient decoding drops what it cannot read (``"$$$$aGk="`` would become ``b"hi"``), so a
    corrupt payload would succeed as another one instead of failing its record.
    """
    import base64  # here: SQS's views never decode base64, and need not pay for its import

    return base64.b64decode(value, validate=True)


class DictWrapper(Mapping[str, Any]):
    """A read-only view of one dict of an event."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DictWrapper):
            return self._data == other._data
        return self._data == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"

    @property
    def raw_event(self) -> Mapping[str, Any]:
        """The wrapped dict, unchanged."""
        return self._data


class Base64Data(DictWrapper):
    """A view whose ``data`` field is a base64 payload (Kinesis, Firehose)."""

    __slots__ = ()

    def data_as_bytes(self) -> bytes:
        """The payload, base64-decoded; raises :class:`binascii.Error` on invalid base64."""
        return strict_b64decode(self._data["data"])

    def data_as_text(self) -> str:
        """The payload decoded as UTF-8 text."""
        return self.data_as_bytes().decode("utf-8")

    def data_as_json(self) -> Any:
        """The payload parsed as JSON."""
        import json

        return json.loads(self.data_as_bytes())


class StreamRecord(DictWrapper):
    """What Kinesis and DynamoDB Streams records have in common."""

    __slots__ = ()

    @property
    def aws_region(self) -> str:
        """The region of the stream."""
        return str(self._data["awsRegion"])

    @property
    def event_id(self) -> str:
        """The record's id in the stream (Kinesis: ``shardId:sequenceNumber``)."""
        return str(self._data["eventID"])

    @property
    def event_name(self) -> str:
        """Kinesis: ``aws:kinesis:record``; DynamoDB: ``INSERT``, ``MODIFY`` or ``REMOVE``."""
        return str(self._data["eventName"])

    @property
    def event_source(self) -> str:
        """``aws:kinesis`` or ``aws:dynamodb``."""
        return str(self._data["eventSource"])

    @property
    def event_source_arn(self) -> str:
        """The ARN of the stream (Kinesis: or of its consumer)."""
        return str(self._data["eventSourceARN"])

    @property
    def event_version(self) -> str:
        """The event format's version."""
        return str(self._data["eventVersion"])


# DynamoDB attribute values are read by the DynamoDB Streams views and by the pydantic models
# (anybatch.models) alike.


def _decimal(text: str) -> Decimal:
    from decimal import Decimal

    return Decimal(text)


def deserialize_dynamodb(value: Mapping[str, Any]) -> Any:
    """Turn one DynamoDB attribute value (``{"S": "x"}``, ``{"N": "1"}``...) into Python.

    ``N`` becomes :class:`~decimal.Decimal` (exact, as DynamoDB numbers are), ``B`` bytes,
    ``SS``/``NS``/``BS`` sets, ``M`` and ``L`` dicts and lists, ``NULL`` ``None``.
    """
    if len(value) != 1:
        raise ValueError(f"a DynamoDB attribute value has exactly one type key, got {value!r}")
    ((tag, raw),) = value.items()
    if tag == "S" or tag == "BOOL":
        return raw
    if tag == "N":
        return _decimal(raw)
    if tag == "NULL":
        return None
    if tag == "M":
        return {k: deserialize_dynamodb(v) for k, v in raw.items()}
    if tag == "L":
        return [deserialize_dynamodb(v) for v in raw]
    if tag == "B":
        return strict_b64decode(raw)
    if tag == "SS":
        return set(raw)
    if tag == "NS":
        return {_decimal(n) for n in raw}
    if tag == "BS":
        return {strict_b64decode(b) for b in raw}
    raise ValueError(f"unknown DynamoDB attribute type {tag!r}")
