"""Views of the events an SQS message can carry in its body: S3 notifications, SNS messages.

``SQSRecord.decoded_nested_s3_event`` and ``SQSRecord.decoded_nested_sns_event`` return these.
They live apart from the SQS source so that reading an SQS batch never imports them: only a
handler that decodes a nested event pays for this module. Names and results follow the
incumbent's data classes (``S3Event``, ``SNSMessage``...), so handlers written for them keep
working; like them, nothing here checks that a body really is such an event.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .._view import DictWrapper

__all__ = [
    "S3Bucket",
    "S3Event",
    "S3EventRecord",
    "S3EventRecordGlacierEventData",
    "S3EventRecordGlacierRestoreEventData",
    "S3EventRecordIntelligentTieringEventData",
    "S3Identity",
    "S3Message",
    "S3Object",
    "S3RequestParameters",
    "SNSMessage",
    "SNSMessageAttribute",
]


def _unquote_plus(key: str) -> str:
    from urllib.parse import unquote_plus  # here: only object_key needs it

    return unquote_plus(key)


# --- Amazon S3 event notifications -------------------------------------------------------


class S3Identity(DictWrapper):
    """Who made the request (``userIdentity``) or owns the bucket (``ownerIdentity``)."""

    __slots__ = ()

    @property
    def principal_id(self) -> str:
        """The principal's id."""
        return str(self._data["principalId"])


class S3RequestParameters(DictWrapper):
    """The ``requestParameters`` of an S3 event record."""

    __slots__ = ()

    @property
    def source_ip_address(self) -> str:
        """The IP address the request came from."""
        return str(self._data["sourceIPAddress"])


class S3Bucket(DictWrapper):
    """The bucket of an S3 event record."""

    __slots__ = ()

    @property
    def name(self) -> str:
        """The bucket's name."""
        return str(self._data["name"])

    @property
    def owner_identity(self) -> S3Identity:
        """The bucket's owner."""
        return S3Identity(self._data["ownerIdentity"])

    @property
    def arn(self) -> str:
        """The bucket's ARN."""
        return str(self._data["arn"])


class S3Object(DictWrapper):
    """The object of an S3 event record."""

    __slots__ = ()

    @property
    def key(self) -> str:
        """The object's key, URL-encoded as S3 sends it (``S3Event.object_key`` decodes it)."""
        return str(self._data["key"])

    @property
    def size(self) -> int:
        """The object's size in bytes (a deletion event has none: ``KeyError``)."""
        return int(self._data["size"])

    @property
    def etag(self) -> str:
        """The object's ETag; ``""`` for a deletion, which has none."""
        return str(self._data.get("eTag") or "")

    @property
    def version_id(self) -> str | None:
        """The object's version, in a bucket with versioning enabled; otherwise ``None``."""
        return self._data.get("versionId")

    @property
    def sequencer(self) -> str:
        """Orders the events of one key (PUTs and DELETEs): compare them as hex strings."""
        return str(self._data["sequencer"])


class S3Message(DictWrapper):
    """The ``s3`` part of an S3 event record: the bucket and the object."""

    __slots__ = ()

    @property
    def s3_schema_version(self) -> str:
        """The version of the ``s3`` part's format."""
        return str(self._data["s3SchemaVersion"])

    @property
    def configuration_id(self) -> str:
        """The id of the bucket's notification configuration that sent the event."""
        return str(self._data["configurationId"])

    @property
    def bucket(self) -> S3Bucket:
        """The bucket."""
        return S3Bucket(self._data["bucket"])

    @property
    def get_object(self) -> S3Object:
        """The object (under ``object``, or ``get_object`` in Intelligent-Tiering events)."""
        return S3Object(self._data.get("get_object") or self._data["object"])


class S3EventRecordGlacierRestoreEventData(DictWrapper):
    """The ``restoreEventData`` of an ``s3:ObjectRestore:Completed`` event."""

    __slots__ = ()

    @property
    def lifecycle_restoration_expiry_time(self) -> str:
        """When the restored copy expires."""
        return str(self._data["lifecycleRestorationExpiryTime"])

    @property
    def lifecycle_restore_storage_class(self) -> str:
        """The storage class the object was restored from."""
        return str(self._data["lifecycleRestoreStorageClass"])


class S3EventRecordGlacierEventData(DictWrapper):
    """The ``glacierEventData`` of an ``s3:ObjectRestore:Completed`` event."""

    __slots__ = ()

    @property
    def restore_event_data(self) -> S3EventRecordGlacierRestoreEventData:
        """What the restore request asked for."""
        return S3EventRecordGlacierRestoreEventData(self._data["restoreEventData"])


class S3EventRecordIntelligentTieringEventData(DictWrapper):
    """The ``intelligentTieringEventData`` of an Intelligent-Tiering event."""

    __slots__ = ()

    @property
    def destination_access_tier(self) -> str:
        """The object's new access tier."""
        return str(self._data["destinationAccessTier"])


class S3EventRecord(DictWrapper):
    """One record of an S3 event notification."""

    __slots__ = ()

    @property
    def event_version(self) -> str:
        """The format's version, ``<major>.<minor>``."""
        return str(self._data["eventVersion"])

    @property
    def event_source(self) -> str:
        """Always ``aws:s3``."""
        return str(self._data["eventSource"])

    @property
    def aws_region(self) -> str:
        """The bucket's region."""
        return str(self._data["awsRegion"])

    @property
    def event_time(self) -> str:
        """When S3 finished processing the request, in ISO 8601."""
        return str(self._data["eventTime"])

    @property
    def event_name(self) -> str:
        """What happened: ``ObjectCreated:Put``, ``ObjectRemoved:Delete``..."""
        return str(self._data["eventName"])

    @property
    def user_identity(self) -> S3Identity:
        """Who made the request."""
        return S3Identity(self._data["userIdentity"])

    @property
    def request_parameters(self) -> S3RequestParameters:
        """Where the request came from."""
        return S3RequestParameters(self._data["requestParameters"])

    @property
    def response_elements(self) -> dict[str, str]:
        """S3's request ids (``x-amz-request-id``, ``x-amz-id-2``), for AWS Support."""
        return dict(self._data["responseElements"])

    @property
    def s3(self) -> S3Message:
        """The bucket and the object."""
        return S3Message(self._data["s3"])

    @property
    def glacier_event_data(self) -> S3EventRecordGlacierEventData | None:
        """``s3:ObjectRestore:Completed`` events only; otherwise ``None``."""
        item = self._data.get("glacierEventData")
        return None if item is None else S3EventRecordGlacierEventData(item)

    @property
    def intelligent_tiering_event_data(self) -> S3EventRecordIntelligentTieringEventData | None:
        """Intelligent-Tiering events only; otherwise ``None``."""
        item = self._data.get("intelligentTieringEventData")
        return None if item is None else S3EventRecordIntelligentTieringEventData(item)


class S3Event(DictWrapper):
    """An S3 event notification: ``{"Records": [...]}``."""

    __slots__ = ()

    @property
    def records(self) -> Iterator[S3EventRecord]:
        """Each record of the notification, as a view."""
        for record in self._data["Records"]:
            yield S3EventRecord(record)

    @property
    def record(self) -> S3EventRecord:
        """The first record (S3 sends one a notification)."""
        return next(self.records)

    @property
    def bucket_name(self) -> str:
        """The first record's bucket."""
        return str(self._data["Records"][0]["s3"]["bucket"]["name"])

    @property
    def object_key(self) -> str:
        """The first record's object key, URL-decoded (``+`` is a space)."""
        s3: Any = self._data["Records"][0]["s3"]
        return _unquote_plus(str((s3.get("get_object") or s3["object"])["key"]))


# --- Amazon SNS messages -----------------------------------------------------------------


class SNSMessageAttribute(DictWrapper):
    """One message attribute of an SNS message."""

    __slots__ = ()

    @property
    def get_type(self) -> str:
        """``String``, ``String.Array``, ``Number`` or ``Binary``."""
        return str(self._data["Type"])

    @property
    def value(self) -> str:
        """The attribute's value."""
        return str(self._data["Value"])


class SNSMessage(DictWrapper):
    """An SNS message, as SNS delivers it to a subscribed queue (without raw delivery).

    SNS spells two keys differently for a queue (``SigningCertURL``, ``UnsubscribeURL``) and
    for a Lambda function (``SigningCertUrl``, ``UnsubscribeUrl``); these views read either.
    """

    __slots__ = ()

    @property
    def signature_version(self) -> str:
        """The version of the SNS signature."""
        return str(self._data["SignatureVersion"])

    @property
    def timestamp(self) -> str:
        """When the message was published, in ISO 8601 (GMT)."""
        return str(self._data["Timestamp"])

    @property
    def signature(self) -> str:
        """The base64 signature of the message."""
        return str(self._data["Signature"])

    @property
    def signing_cert_url(self) -> str:
        """The URL of the certificate that signed the message."""
        return str(self._either("SigningCertUrl", "SigningCertURL"))

    @property
    def message_id(self) -> str:
        """The message's id, the same on every delivery of it."""
        return str(self._data["MessageId"])

    @property
    def message(self) -> str:
        """The message published (often JSON: parse it yourself)."""
        return str(self._data["Message"])

    @property
    def message_attributes(self) -> dict[str, SNSMessageAttribute]:
        """The message attributes, by name; empty when the message has none."""
        attributes: Mapping[str, Any] = self._data.get("MessageAttributes") or {}
        return {name: SNSMessageAttribute(value) for name, value in attributes.items()}

    @property
    def get_type(self) -> str:
        """``Notification`` (or ``SubscriptionConfirmation``...)."""
        return str(self._data["Type"])

    @property
    def unsubscribe_url(self) -> str:
        """The URL that unsubscribes the endpoint from the topic."""
        return str(self._either("UnsubscribeUrl", "UnsubscribeURL"))

    @property
    def topic_arn(self) -> str:
        """The ARN of the topic."""
        return str(self._data["TopicArn"])

    @property
    def subject(self) -> str | None:
        """The subject given at publication, if any."""
        return self._data.get("Subject")

    def _either(self, key: str, other: str) -> Any:
        return self._data[key] if key in self._data else self._data[other]
