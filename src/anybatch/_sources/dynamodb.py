"""DynamoDB Streams: identified by sequence number, ordered by the item's primary key."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from ..records import DynamoDBRecord
from ._base import freeze
from ._path import PathSource

__all__ = ["DynamoDBSource"]


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
