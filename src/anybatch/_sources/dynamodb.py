"""DynamoDB Streams: identified by sequence number, ordered by the item's primary key."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from .._view import DictWrapper, StreamRecord, deserialize_dynamodb
from ._base import freeze
from ._path import PathSource

__all__ = ["DynamoDBRecord", "DynamoDBSource", "DynamoDBStreamRecord"]


def _image(data: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    image = data.get(name)
    if image is None:
        return None
    return {k: deserialize_dynamodb(v) for k, v in image.items()}


class DynamoDBStreamRecord(DictWrapper):
    """The ``dynamodb`` part of a DynamoDB Streams record."""

    __slots__ = ()

    @property
    def approximate_creation_date_time(self) -> float:
        """When the change was made, in epoch seconds."""
        return float(self._data["ApproximateCreationDateTime"])

    @property
    def keys(self) -> dict[str, Any] | None:  # type: ignore[override]
        """The item's primary key, as Python values."""
        return _image(self._data, "Keys")

    @property
    def new_image(self) -> dict[str, Any] | None:
        """The item after the change (``NEW_IMAGE`` / ``NEW_AND_OLD_IMAGES`` streams)."""
        return _image(self._data, "NewImage")

    @property
    def old_image(self) -> dict[str, Any] | None:
        """The item before the change (``OLD_IMAGE`` / ``NEW_AND_OLD_IMAGES`` streams)."""
        return _image(self._data, "OldImage")

    @property
    def sequence_number(self) -> str:
        """The sequence number: the ``itemIdentifier`` reported when the record fails."""
        return str(self._data["SequenceNumber"])

    @property
    def size_bytes(self) -> int:
        """The size of the stream record."""
        return int(self._data["SizeBytes"])

    @property
    def stream_view_type(self) -> str:
        """``KEYS_ONLY``, ``NEW_IMAGE``, ``OLD_IMAGE`` or ``NEW_AND_OLD_IMAGES``."""
        return str(self._data["StreamViewType"])


class DynamoDBRecord(StreamRecord):
    """One record of a DynamoDB Streams event."""

    __slots__ = ()

    @property
    def user_identity(self) -> Mapping[str, Any] | None:
        """For a TTL deletion: who made it (``dynamodb.amazonaws.com``)."""
        return self._data.get("userIdentity")

    @property
    def dynamodb(self) -> DynamoDBStreamRecord:
        """The change itself: keys, images, sequence number."""
        return DynamoDBStreamRecord(self._data["dynamodb"])


class DynamoDBSource(PathSource[DynamoDBRecord]):
    """DynamoDB Streams: the changes of one item (its ``Keys``) run in order."""

    name = "DynamoDBStreams"
    event_sources = ("aws:dynamodb",)
    id_field = "dynamodb.SequenceNumber"
    id_path = ("dynamodb", "SequenceNumber")
    key_path = ("dynamodb", "Keys")
    view = DynamoDBRecord
    model_name = "DynamoDBStreamRecordModel"
    own_fields = frozenset({"dynamodb", "userIdentity"})
    shared_fields = frozenset(
        {"eventSource", "eventSourceARN", "awsRegion", "eventID", "eventName", "eventVersion"}
    )
    narrow_hint = (
        "subclass anybatch.models.DynamoDBStreamChangedRecordModel with NewImage: {name} | None "
        "= None, and anybatch.models.DynamoDBStreamRecordModel with dynamodb: that change"
    )

    def ordering_keys(self, records: Sequence[Mapping[str, Any]]) -> list[Hashable | None] | None:
        # {"pk": {"S": "a"}, "sk": {"N": "1"}}: every record has its item's keys, and the
        # order of their names is irrelevant.
        try:
            return [freeze(record["dynamodb"]["Keys"]) for record in records]
        except (KeyError, TypeError, AttributeError):
            return super().ordering_keys(records)
