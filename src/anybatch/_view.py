"""What the record views of every source share: a read-only dict view and strict decoding.

A leaf: the sources' modules build their views on these, and nothing here knows a source.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from decimal import Decimal

__all__ = [
    "Base64Data",
    "DictWrapper",
    "StreamRecord",
    "deserialize_dynamodb",
    "make_views",
    "reusable",
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
    #: Whether a view of this class may be re-pointed at another record although it has slots
    #: of its own: they hold caches, which its :meth:`_repoint` empties.
    _repointable: ClassVar[bool] = False

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    @staticmethod
    def _repoint(views: Sequence[Any], records: Sequence[Mapping[str, Any]]) -> None:
        """Point each of *views* at the record of the same index (see :func:`make_views`)."""
        for view, record in zip(views, records, strict=False):
            view._data = record

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


# -- the views of a warm batch -----------------------------------------------------------
#
# A view costs more to make and free (about 2,000 instructions: a class call that enters
# Python for __init__, a GC-tracked object) than a no-op handler costs to run. So a processor
# keeps the views of its previous batch, and the next batch re-points those that nothing else
# holds any more at its own records. "Nothing else": the spare list's own reference is the
# object's only one (sys.getrefcount), so a view that a handler kept, that a kept result or
# success_messages lists, or that an abandoned handler still runs with, is never reused.
#
# Re-use has a cost of its own per batch (the spare list kept, each view's count read): in
# wall time it pays from about 20 records on, and a 10-record batch ran 7% slower with it
# (interleaved rounds on the warm path). So only batches of REUSE_FROM records or more keep
# their views, or re-use them.

#: The smallest batch whose views are kept for the next, and that re-uses the previous one's.
REUSE_FROM = 20
_getrefcount: Callable[[Any], int] | None = getattr(sys, "getrefcount", None)
#: What getrefcount says of an object that only a list holds, called through map().
_ALONE = -1 if _getrefcount is None else next(map(_getrefcount, [object()]))
#: Free-threaded builds count references their own way: no reuse there.
_COUNTS = _getrefcount is not None and getattr(sys, "_is_gil_enabled", lambda: True)()


def reusable(view: Callable[[Mapping[str, Any]], Any]) -> bool:
    """Whether views of class *view* hold nothing but their dict, so may be re-pointed."""
    return (
        _COUNTS
        and isinstance(view, type)
        and issubclass(view, DictWrapper)
        and view.__init__ is DictWrapper.__init__
        # No slot of its own, or only caches that check which dict they were made from.
        and (view.__basicsize__ == DictWrapper.__basicsize__ or _repointable(view))
        and view.__dictoffset__ == 0
        and view.__weakrefoffset__ == 0
    )


def _repointable(view: type[DictWrapper]) -> bool:
    return view._repointable  # pyright: ignore[reportPrivateUsage]


def make_views(
    view: Callable[[Mapping[str, Any]], Any],
    records: Sequence[Mapping[str, Any]],
    spare: list[Any] | None,
) -> list[Any]:
    """A *view* of each of *records*, re-using the views of *spare* that nothing else holds.

    *spare* holds views of class *view* (see :func:`reusable`) and is consumed. A batch of
    fewer than :data:`REUSE_FROM` records makes its own: re-use would cost it more.
    """
    if not spare or len(records) < REUSE_FROM:
        return list(map(view, records))
    n = len(records)
    if len(spare) > n:
        del spare[n:]
    assert _getrefcount is not None  # reusable() said so
    counts = list(map(_getrefcount, spare))
    free = counts.count(_ALONE)
    if not free:  # the previous batch is still held (by a kept result, say)
        return list(map(view, records))
    repoint: Callable[[Sequence[Any], Sequence[Mapping[str, Any]]], None]
    repoint = view._repoint  # type: ignore[attr-defined]  # pyright: ignore[reportFunctionMemberAccess]
    if free == len(counts):  # the usual warm batch: every one is free
        repoint(spare, records)  # spare is no longer than records
    else:
        for index, count in enumerate(counts):
            if count == _ALONE:
                repoint((spare[index],), (records[index],))
            else:
                spare[index] = view(records[index])  # still held elsewhere: a new one
    if len(spare) < n:
        spare.extend(map(view, records[len(spare) :]))
    return spare


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
