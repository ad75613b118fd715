"""What a record's idempotency key is, and how results become JSON and come back.

Keys are the incumbent's: ``<prefix>#<md5 of the value as sorted JSON>``, the prefix being
``<AWS_LAMBDA_FUNCTION_NAME or "test-func">.<module>.<qualname>`` of the handler. A record's
default value is its identifier, read by its event source as the response reports it (SQS
``messageId``, Kinesis ``sequenceNumber``, DynamoDB ``SequenceNumber``, Kafka topic,
partition and offset), from a record view, a raw record or a pydantic model alike.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sized
from typing import Any, cast

from anybatch._sources import batch_source

from ._errors import IdempotencyKeyError, IdempotencyResultError

__all__ = [
    "decode_result",
    "encode_result",
    "hash_value",
    "payload_of",
    "record_identifier",
    "result_type_of",
]


def hash_value(value: object) -> str:
    """The md5 hex digest of *value* as sorted JSON: the incumbent's ``_generate_hash``."""
    if type(value) is str:  # the common key, an identifier: what json.dumps makes of it
        text = _encode_str(value)
    else:
        text = json.dumps(value, sort_keys=True, default=_key_default)
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


_encode_str: Callable[[str], str] = json.encoder.encode_basestring_ascii


def _key_default(value: object) -> Any:
    dump = getattr(value, "model_dump", None)  # a pydantic model (anybatch's models too)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, DictLike):
        return dict(value)
    return str(value)  # Decimal, datetime, UUID...: their text, as the incumbent's encoder


class DictLike(Mapping[str, Any]):
    """A pydantic model read as the raw record it was made from (for the sources to read)."""

    __slots__ = ("_fields", "_model")

    def __init__(self, model: Any) -> None:
        self._model: Any = model
        model_class: Any = model.__class__
        self._fields: Mapping[str, Any] = model_class.model_fields

    def __getitem__(self, key: str) -> Any:
        fields = self._fields
        name = key
        if key not in fields:
            for field, info in fields.items():
                if getattr(info, "alias", None) == key:
                    name = field
                    break
            else:
                raise KeyError(key)
        value: Any = getattr(self._model, name)
        kind: Any = value.__class__
        return DictLike(value) if hasattr(kind, "model_fields") else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


def _raw(record: object) -> Mapping[str, Any]:
    raw = getattr(record, "raw_event", None)  # a record view
    if isinstance(raw, Mapping):
        return cast("Mapping[str, Any]", raw)
    if isinstance(record, Mapping):
        return cast("Mapping[str, Any]", record)
    if hasattr(type(record), "model_fields"):  # a pydantic model (model=)
        return DictLike(record)
    raise IdempotencyKeyError(
        f"cannot read an identifier from a {type(record).__name__}: give idempotent() a "
        "key= function of the record"
    )


#: Each record view's source: a view class belongs to one source.
_VIEW_SOURCES: dict[type[Any], Any] = {}


def record_identifier(record: object) -> object:
    """The identifier the record's event source reports it by (what ``key="id"`` hashes)."""
    raw = _raw(record)
    try:
        kind = type(record)
        source = _VIEW_SOURCES.get(kind)
        if source is None:
            source = batch_source([raw])
            if raw is not record and not isinstance(raw, DictLike):  # a view, not a model
                _VIEW_SOURCES[kind] = source
        return source.identifiers([raw])[0]
    except Exception as exc:  # InvalidEventError, or a model that lacks the field
        raise IdempotencyKeyError(
            f"the record has no identifier to make an idempotency key from ({exc}); give "
            "idempotent() a key= function of the record"
        ) from exc


#: Where each source's payload is, tried in order: SQS's body, Kinesis's data, DynamoDB's new
#: image (or its keys, for a REMOVE), Kafka's value, Firehose's data.
_PAYLOADS: tuple[tuple[str, ...], ...] = (
    ("body",),
    ("kinesis", "data"),
    ("dynamodb", "NewImage"),
    ("dynamodb", "Keys"),
    ("value",),
    ("data",),
)


def payload_of(record: object) -> object:
    """The record's payload, without what changes between deliveries (its ids, its receipt).

    SQS ``body``, Kinesis ``kinesis.data``, DynamoDB ``dynamodb.NewImage`` (``Keys`` for a
    REMOVE), Kafka ``value``, Firehose ``data``; a model's parsed payload as its JSON.
    """
    raw = _raw(record)
    for path in _PAYLOADS:
        value: Any = raw
        for part in path:
            if not isinstance(value, Mapping):
                value = None
                break
            value = cast("Mapping[str, Any]", value).get(part)
        if value is not None:
            return value
    raise IdempotencyKeyError(
        "the record has no payload to hash (body, kinesis.data, dynamodb.NewImage, value or "
        "data); give idempotent() a key= (or validate=) function of the record"
    )


def _empty(value: object) -> bool:
    return isinstance(value, list | tuple | dict) and len(cast("Sized", value)) == 0


def key_value(key: Callable[[Any], object], record: object) -> object:
    """``key(record)``, checked to be a usable key (not ``None`` and not empty)."""
    try:
        value: object = key(record)
    except IdempotencyKeyError:
        raise
    except Exception as exc:
        raise IdempotencyKeyError(f"the key function raised {exc!r}") from exc
    if value is None or value == "" or _empty(value):
        raise IdempotencyKeyError(
            f"the key function returned {value!r}: no idempotency key for this record"
        )
    return value


def result_type_of(func: Callable[..., Any]) -> Any:
    """The pydantic model class *func*'s return annotation names, or ``None``."""
    annotation: object = getattr(func, "__annotations__", {}).get("return")
    if isinstance(annotation, str):
        import typing

        try:
            annotation = typing.get_type_hints(func).get("return")
        except Exception:  # an annotation that names what is imported only for type checkers
            return None
    if isinstance(annotation, type) and hasattr(annotation, "model_validate"):
        return annotation
    return None


def encode_result(value: object, result_type: Any = None) -> str:
    """*value* as the JSON string stored in ``data``; raises :class:`IdempotencyResultError`."""
    try:
        if result_type is not None and not hasattr(result_type, "model_validate"):
            from pydantic import TypeAdapter  # list[Model], a dataclass...

            value = TypeAdapter(result_type).dump_python(value, mode="json")
        elif hasattr(type(value), "model_dump"):
            value = cast("Any", value).model_dump(mode="json")
        return json.dumps(value, sort_keys=True)
    except Exception as exc:  # TypeError, ValueError (a circular value), pydantic's errors
        raise IdempotencyResultError(
            f"the handler's result cannot be stored as JSON ({exc}); return a JSON value or "
            "a pydantic model. Nothing was stored: the record fails and its key is released"
        ) from exc


def decode_result(data: str | None, result_type: Any = None) -> Any:
    """The result stored as *data*, as the handler returned it (a model when it was one)."""
    if data is None:
        return None
    try:
        value = json.loads(data)
        if result_type is None:
            return value
        if isinstance(result_type, type) and hasattr(result_type, "model_validate"):
            return cast("Any", result_type).model_validate(value)
        from pydantic import TypeAdapter

        return TypeAdapter(result_type).validate_python(value)
    except Exception as exc:
        raise IdempotencyResultError(
            f"the stored result cannot be read back ({exc}): {data[:200]!r}"
        ) from exc
