"""Pydantic models of SQS, Kinesis, DynamoDB Streams, Kafka and Firehose records (optional extra).

Give a processor ``model=`` and its record handler receives a validated model instead of a
record view::

    class Order(BaseModel):
        order_id: int

    class OrderRecord(SqsRecordModel):
        body: Json[Order]          # the body is parsed as JSON, then validated as an Order

    processor = BatchProcessor(EventType.SQS, model=OrderRecord)

    def record_handler(record: OrderRecord) -> None:
        ship(record.body.order_id)

Validation runs inside the record's failure boundary: a record that does not validate (a
"poison pill") fails by itself, reported with the identifier read from the raw record, while
the rest of the batch carries on. Field names are those of the event, as in the incumbent's
parser models (``messageId``, ``kinesis.sequenceNumber``, ``dynamodb.NewImage``...), so its
models and handlers keep working.

Subclasses narrow the payload fields: SQS ``body``; Kinesis ``data`` (in a
:class:`KinesisDataStreamRecordPayload` subclass given as ``kinesis``); DynamoDB ``Keys``,
``NewImage`` and ``OldImage`` (in a :class:`DynamoDBStreamChangedRecordModel` subclass given
as ``dynamodb``). Type checkers see these fields (and ``kinesis``/``dynamodb``) as ``Any`` in
the base models, because a checker refuses a subclass that narrows a ``str`` field to a model;
at runtime the base models validate them as ``str``, ``bytes`` and ``dict``.

Needs pydantic v2: ``pip install 'anybatch[pydantic]'``. Importing this module without it raises
:class:`~anybatch.MissingDependencyError`.
"""

# No ``from __future__ import annotations``: pydantic reads these annotations at runtime.

import base64
import json
import zlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, get_args, get_origin

from ._exceptions import MissingDependencyError, ModelMismatchError
from ._sources import EventType, all_sources, source_of
from ._view import deserialize_dynamodb

try:
    import pydantic
    from pydantic import BaseModel, field_validator
except ImportError as exc:  # not installed, or blocked by a None entry in sys.modules
    raise MissingDependencyError(
        "anybatch.models needs pydantic v2, which is not installed: "
        "pip install 'anybatch[pydantic]'"
    ) from exc

if not pydantic.VERSION.startswith("2."):  # pragma: no cover - pydantic v1 environments only
    raise MissingDependencyError(
        f"anybatch.models needs pydantic v2, found {pydantic.VERSION}: "
        "pip install 'anybatch[pydantic]'"
    )

__all__ = [
    "DynamoDBStreamChangedRecordModel",
    "DynamoDBStreamRecordModel",
    "FirehoseRecordMetadataModel",
    "FirehoseRecordModel",
    "KafkaRecordModel",
    "KafkaRecordSchemaMetadata",
    "KinesisDataStreamRecord",
    "KinesisDataStreamRecordModel",
    "KinesisDataStreamRecordPayload",
    "SqsAttributesModel",
    "SqsMsgAttributeModel",
    "SqsRecordModel",
    "UserIdentity",
    "converter_for",
]

ModelT = TypeVar("ModelT", bound=BaseModel)


def _strict_base64(value: Any) -> Any:
    """Decode the base64 text Lambda delivers; anything else is validated as it is."""
    if isinstance(value, str):
        return base64.b64decode(value, validate=True)
    return value


# --- SQS -------------------------------------------------------------------------------


class SqsAttributesModel(BaseModel):
    """The system attributes of an SQS message (``record.attributes``).

    The timestamps, which SQS sends as epoch milliseconds, are parsed to ``datetime``.
    ``MessageGroupId``, ``MessageDeduplicationId`` and ``SequenceNumber`` are set for FIFO
    queues only.
    """

    ApproximateReceiveCount: str
    ApproximateFirstReceiveTimestamp: datetime
    MessageDeduplicationId: str | None = None
    MessageGroupId: str | None = None
    SenderId: str
    SentTimestamp: datetime
    SequenceNumber: str | None = None
    AWSTraceHeader: str | None = None
    DeadLetterQueueSourceArn: str | None = None


class SqsMsgAttributeModel(BaseModel):
    """One user-defined message attribute (a value of ``record.messageAttributes``).

    ``dataType`` is ``String``, ``Number`` or ``Binary``, with an optional custom suffix;
    ``binaryValue`` is base64-encoded, as SQS sends it.
    """

    stringValue: str | None = None
    binaryValue: str | None = None
    stringListValues: list[str] = []
    binaryListValues: list[str] = []
    dataType: str


class SqsRecordModel(BaseModel):
    """One message of an SQS event.

    ``messageId`` is the identifier reported when the record fails. Narrow ``body`` in a
    subclass to have it parsed: ``body: Json[Order]`` for a JSON body, or any pydantic type.
    """

    messageId: str
    receiptHandle: str
    if TYPE_CHECKING:
        body: Any  # narrowed by subclasses; a str in this model
    else:
        body: str
    attributes: SqsAttributesModel
    messageAttributes: dict[str, SqsMsgAttributeModel]
    md5OfBody: str
    md5OfMessageAttributes: str | None = None
    eventSource: Literal["aws:sqs"]
    eventSourceARN: str
    awsRegion: str


# --- Kinesis Data Streams --------------------------------------------------------------


class KinesisDataStreamRecordPayload(BaseModel):
    """The ``kinesis`` part of a Kinesis record: the payload and its place in the stream.

    ``data`` arrives base64-encoded and is decoded to ``bytes`` before it is validated, so a
    subclass that narrows it (``data: Json[Event]``) parses the decoded payload.
    ``sequenceNumber`` is the identifier reported when the record fails.
    """

    kinesisSchemaVersion: str
    partitionKey: str
    sequenceNumber: str
    if TYPE_CHECKING:
        data: Any  # narrowed by subclasses; bytes in this model
    else:
        data: bytes
    approximateArrivalTimestamp: float

    @field_validator("data", mode="before")
    @classmethod
    def decode_data(cls, value: Any) -> Any:
        """Decode the base64 text Lambda delivers; anything else is validated as it is."""
        return _strict_base64(value)


class KinesisDataStreamRecordModel(BaseModel):
    """One record of a Kinesis Data Streams event.

    To narrow the payload, subclass :class:`KinesisDataStreamRecordPayload` (``data:
    Json[Event]``) and declare it here: ``kinesis: EventPayload``.
    """

    eventSource: Literal["aws:kinesis"]
    eventVersion: str
    eventID: str
    eventName: Literal["aws:kinesis:record"]
    invokeIdentityArn: str
    awsRegion: str
    eventSourceARN: str
    if TYPE_CHECKING:
        kinesis: Any  # narrowed by subclasses; a KinesisDataStreamRecordPayload in this model
    else:
        kinesis: KinesisDataStreamRecordPayload

    def decompress_zlib_record_data_as_json(self) -> Any:
        """The payload decompressed (zlib or gzip) and parsed as JSON.

        CloudWatch Logs subscriptions deliver their log events to Kinesis this way.
        """
        data = self.kinesis.data
        if not isinstance(data, bytes):
            raise TypeError(
                f"only bytes data can be decompressed, got {type(data).__name__}: "
                "this model's kinesis.data is narrowed to another type"
            )
        return json.loads(zlib.decompress(data, zlib.MAX_WBITS | 32))


#: The incumbent's name for :class:`KinesisDataStreamRecordModel`.
KinesisDataStreamRecord = KinesisDataStreamRecordModel


# --- DynamoDB Streams ------------------------------------------------------------------


class DynamoDBStreamChangedRecordModel(BaseModel):
    """The ``dynamodb`` part of a DynamoDB Streams record: the change itself.

    ``Keys``, ``NewImage`` and ``OldImage`` arrive as DynamoDB attribute values
    (``{"N": "1"}``) and are turned into Python values first (numbers become ``Decimal``,
    binary ``bytes``, sets ``set``; see :func:`anybatch.records.deserialize_dynamodb`), so a
    subclass can narrow them to a model of the item: ``NewImage: Order | None = None``.
    ``SequenceNumber`` is the identifier reported when the record fails.
    """

    ApproximateCreationDateTime: datetime | None = None
    if TYPE_CHECKING:  # narrowed by subclasses; dicts of Python values in this model
        Keys: Any
        NewImage: Any = None
        OldImage: Any = None
    else:
        Keys: dict[str, Any]
        NewImage: dict[str, Any] | None = None
        OldImage: dict[str, Any] | None = None
    SequenceNumber: str
    SizeBytes: int
    StreamViewType: Literal["NEW_AND_OLD_IMAGES", "KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE"]

    @field_validator("Keys", "NewImage", "OldImage", mode="before")
    @classmethod
    def deserialize_item(cls, value: Any) -> Any:
        """Turn a map of DynamoDB attribute values into Python values."""
        if isinstance(value, Mapping):
            item = cast("Mapping[str, Any]", value)
            return {name: deserialize_dynamodb(attribute) for name, attribute in item.items()}
        return value


class UserIdentity(BaseModel):
    """Who made a change that was not a request: DynamoDB itself, deleting an expired item."""

    type: Literal["Service"]
    principalId: Literal["dynamodb.amazonaws.com"]


class DynamoDBStreamRecordModel(BaseModel):
    """One record of a DynamoDB Streams event.

    To narrow the item, subclass :class:`DynamoDBStreamChangedRecordModel` and declare it
    here: ``dynamodb: OrderChange``.
    """

    eventID: str
    eventName: Literal["INSERT", "MODIFY", "REMOVE"]
    eventVersion: float
    eventSource: Literal["aws:dynamodb"]
    awsRegion: str
    eventSourceARN: str
    if TYPE_CHECKING:
        dynamodb: Any  # narrowed by subclasses; a DynamoDBStreamChangedRecordModel here
    else:
        dynamodb: DynamoDBStreamChangedRecordModel
    userIdentity: UserIdentity | None = None


# --- Kafka -----------------------------------------------------------------------------


class KafkaRecordSchemaMetadata(BaseModel):
    """What the schema registry says of a record's key or value."""

    dataFormat: str
    schemaId: str


class KafkaRecordModel(BaseModel):
    """One record of a Kafka event (Amazon MSK or self-managed Kafka).

    ``key`` and ``value`` arrive base64-encoded and are decoded to ``bytes`` before they are
    validated, so a subclass that narrows ``value`` (``value: Json[Event]``) parses the
    decoded payload. ``headers`` are decoded from Lambda's lists of bytes. The record is
    reported by its ``topic``, ``partition`` and ``offset``.
    """

    topic: str
    partition: int
    offset: int
    timestamp: datetime
    timestampType: str
    key: bytes | None = None
    if TYPE_CHECKING:
        value: Any  # narrowed by subclasses; bytes (or None, for a tombstone) in this model
    else:
        value: bytes | None = None
    headers: list[dict[str, bytes]] = []
    keySchemaMetadata: KafkaRecordSchemaMetadata | None = None
    valueSchemaMetadata: KafkaRecordSchemaMetadata | None = None

    @field_validator("key", "value", mode="before")
    @classmethod
    def decode_base64(cls, value: Any) -> Any:
        """Decode the base64 text Lambda delivers; anything else is validated as it is."""
        return _strict_base64(value)

    @field_validator("headers", mode="before")
    @classmethod
    def decode_headers(cls, value: Any) -> Any:
        """Lambda sends each header's value as a list of byte values."""
        if not isinstance(value, list):
            return value
        decoded: list[Any] = []
        for chunk in cast("list[Any]", value):  # type: ignore[redundant-cast]
            if isinstance(chunk, dict):
                items = cast("dict[str, Any]", chunk).items()
                chunk = {
                    k: bytes(cast("list[int]", v)) if isinstance(v, list) else v for k, v in items
                }
            decoded.append(chunk)
        return decoded

    @property
    def decoded_headers(self) -> dict[str, bytes]:
        """The headers, name to bytes (a name sent twice keeps its last value)."""
        return {name: value for chunk in self.headers for name, value in chunk.items()}


# --- Firehose --------------------------------------------------------------------------


class FirehoseRecordMetadataModel(BaseModel):
    """``kinesisRecordMetadata``, for a delivery stream that reads a Kinesis stream."""

    shardId: str
    partitionKey: str
    approximateArrivalTimestamp: int
    sequenceNumber: str
    subsequenceNumber: int


class FirehoseRecordModel(BaseModel):
    """One record of a Firehose data-transformation event.

    ``data`` arrives base64-encoded and is decoded to ``bytes`` before it is validated, so a
    subclass that narrows it (``data: Json[Event]``) parses the decoded payload. The record
    handler returns the transformed payload, as with :class:`~anybatch.records.FirehoseRecord`.
    """

    recordId: str
    approximateArrivalTimestamp: int
    if TYPE_CHECKING:
        data: Any  # narrowed by subclasses; bytes in this model
    else:
        data: bytes
    kinesisRecordMetadata: FirehoseRecordMetadataModel | None = None

    @field_validator("data", mode="before")
    @classmethod
    def decode_data(cls, value: Any) -> Any:
        """Decode the base64 text Firehose delivers; anything else is validated as it is."""
        return _strict_base64(value)


# --- fitting a model to an event type ----------------------------------------------------


def _envelope(source: EventType[Any]) -> type[BaseModel]:
    """The record model of *source* (``SqsRecordModel``...), which a ``model=`` subclasses."""
    return cast("type[BaseModel]", globals()[source.model_name])


def _field_names(model: type[BaseModel]) -> set[str]:
    """The keys *model* reads from a record: its fields' names and string aliases."""
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(name)
        for alias in (info.alias, info.validation_alias):
            if isinstance(alias, str):
                names.add(alias)
    return names


def _mismatch(
    model: type[BaseModel], source: EventType[Any], why: str, how: str | None = None
) -> ModelMismatchError:
    if how is None:
        how = f"a model for {source} records subclasses anybatch.models.{source.model_name}"
    return ModelMismatchError(f"model {model.__name__} does not fit {source}: {why}; {how}")


def _check_model(event_type: EventType[Any] | str, model: object) -> type[BaseModel]:
    """Check that *model* can describe records of *event_type*; return it.

    Accepted: a subclass of the event type's record model, and any other pydantic model
    whose fields are those of such records (the incumbent's parser models, for example).
    Raises :class:`~anybatch.ModelMismatchError` naming the model and the event type for
    anything else: not a pydantic model class, a model of another event type's records, or
    a model of the payload given in place of the record's.
    """
    source = source_of(event_type)
    if not isinstance(model, type) or not issubclass(model, BaseModel):
        raise ModelMismatchError(
            f"model= takes a pydantic model class for {source} records (a subclass of "
            f"anybatch.models.{source.model_name}), got {model!r}"
        )
    for other in all_sources():
        base_model = _envelope(other)
        if issubclass(model, base_model):
            if other.name != source.name:
                raise _mismatch(
                    model, source, f"it is a {base_model.__name__}, for {other} records"
                )
            return model

    names = _field_names(model)
    if not names & source.own_fields:
        for other in all_sources():
            found = sorted(names & other.own_fields)
            if other.name != source.name and found:
                raise _mismatch(
                    model, source, f"its fields ({', '.join(found)}) are those of {other} records"
                )
        if not names & source.shared_fields:
            how = source.narrow_hint.format(name=model.__name__)
            raise _mismatch(
                model,
                source,
                "it has none of the fields of its records",
                f"if it describes the payload, {how}",
            )

    field = model.model_fields.get("eventSource")
    if field is not None and get_origin(field.annotation) is Literal:
        allowed = get_args(field.annotation)
        if not set(source.event_sources) & set(allowed):
            raise _mismatch(
                model,
                source,
                f"its eventSource must be {' or '.join(map(repr, allowed))}, "
                f"and {source} records have {' or '.join(map(repr, source.event_sources))}",
            )
    return model


#: ``BaseModel.model_validate``'s function: a model that overrides it is called through it.
_MODEL_VALIDATE = vars(BaseModel)["model_validate"].__func__


def converter_for(
    event_type: EventType[Any] | str, model: type[ModelT]
) -> Callable[[Mapping[str, Any]], ModelT]:
    """Return the function that turns one raw record of *event_type* into a *model*.

    Checks first that the model fits the event type (see ``_check_model``); the
    processors call this when they are built, so a wrong ``model=`` fails at once rather
    than on every record. The returned function raises :class:`pydantic.ValidationError`
    for a record that does not validate.
    """
    checked = _check_model(event_type, model)
    if not checked.__pydantic_complete__:  # e.g. forward references defined after the model
        checked.model_rebuild()
    if getattr(checked.model_validate, "__func__", None) is not _MODEL_VALIDATE:
        return cast("Callable[[Mapping[str, Any]], ModelT]", checked.model_validate)
    # The model's core validator, called directly: what model_validate does by default, minus
    # a Python-level call and its keyword arguments on every record.
    return cast(
        "Callable[[Mapping[str, Any]], ModelT]", checked.__pydantic_validator__.validate_python
    )
