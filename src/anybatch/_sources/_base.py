"""The interface every event source implements, and what the sources share.

A source is one small object that knows everything about one kind of event and nothing about
the engine: where its records are, what identifies each one and what orders them, its record
view and its pydantic envelope, and how outcomes become the response Lambda expects. The
engine, the schedule and the facades only ever call these methods.

Pure functions, no I/O. Everything that can be wrong with an event is found here and raised
as :class:`~anybatch.InvalidEventError` with the index of the record at fault, before any
handler runs: Lambda fails the whole batch on an identifier it rejects, so a record without a
usable identifier must never reach the response.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from .._exceptions import InvalidEventError

if TYPE_CHECKING:
    from .._outcome import BatchResult

__all__ = [
    "RecordT_co",
    "Source",
    "check_objects",
    "freeze",
    "mapping",
    "records_list",
]

RecordT_co = TypeVar("RecordT_co", covariant=True)


def mapping(value: object) -> Mapping[str, Any] | None:
    """*value* as a JSON object, or ``None`` when it is something else."""
    if type(value) is dict or isinstance(value, Mapping):
        return value  # pyright: ignore[reportUnknownVariableType] - no cast(): a call
    return None


def freeze(value: object) -> Hashable:
    """*value* as a dict key: objects and lists become tuples, whatever their order of keys."""
    found = mapping(value)
    if found is not None:
        return tuple(sorted((str(k), freeze(v)) for k, v in found.items()))
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in cast("Sequence[object]", value))
    try:
        hash(value)
    except TypeError:  # a set, or another value that cannot be a dict key
        return repr(value)
    return value


class Source(Generic[RecordT_co]):
    """The interface of an event source: what the engine, the run and the facades call.

    A source knows everything about one kind of event and nothing of the engine: where its
    records are, what identifies and orders each one, its record view and pydantic envelope,
    and how outcomes become its response. Every source is an
    :class:`~anybatch.EventType` (the registry of the sources, which subclasses this);
    subclasses implement :meth:`identifiers` and override what differs from the defaults
    (records in ``event["Records"]``, no ordering, a ``batchItemFailures`` response).
    """

    #: What ``EventType.<name>`` is called, and the event type's ``value`` (as an enum's).
    name: str = ""
    #: The ``eventSource`` values of this source's records (or events).
    event_sources: tuple[str, ...] = ()
    #: Where each record's identifier is, for error messages.
    id_field: str = ""
    #: The record view's class, in ``anybatch.records``.
    view: Callable[[Mapping[str, Any]], RecordT_co]
    #: The pydantic record model in ``anybatch.models`` that a ``model=`` subclasses.
    model_name: str = ""
    #: Top-level fields only this source's records have, and fields they share with others:
    #: how a ``model=`` that subclasses no envelope is recognised as fitting (or not).
    own_fields: frozenset[str] = frozenset()
    shared_fields: frozenset[str] = frozenset()
    #: How to narrow the payload of this source's model (``{name}``: the user's model).
    narrow_hint: str = ""

    @property
    def value(self) -> str:
        """The event type's name, as ``EventType.SQS.value`` was: ``"SQS"``."""
        return self.name

    def __repr__(self) -> str:
        return f"EventType.{self.name}"

    __str__ = __repr__

    # -- where the records are ------------------------------------------------------------

    def records(self, event: object) -> list[Any]:
        """The records of *event*, by default Lambda's ``{"Records": [...]}``.

        Raises :class:`InvalidEventError` for an event of another shape.
        """
        if type(event) is dict:  # the usual event: no checks to explain
            found: dict[str, object] = event  # pyright: ignore[reportUnknownVariableType]
            records = found.get("Records")
            if type(records) is list:
                return records  # pyright: ignore[reportUnknownVariableType] - a list, checked
        return records_list(cast("object", event), "Records", self)  # type: ignore[redundant-cast]

    def claims_event(self, event: Mapping[str, Any]) -> bool:
        """Whether *event* is one of this source's (for processors made without one)."""
        records: object = event.get("Records")
        if isinstance(records, list) and records:
            first = mapping(cast("list[object]", records)[0])
            return first is not None and self.claims_record(first)
        return False

    def claims_record(self, record: Mapping[str, Any]) -> bool:
        """Whether *record* is one of this source's."""
        return (record.get("eventSource") or record.get("EventSource")) in self.event_sources

    # -- what identifies and orders each record -------------------------------------------

    def identifiers(self, records: object) -> Sequence[Any]:
        """Every record's identifier, as the response reports it.

        Raises :class:`InvalidEventError` naming the first record without a usable one.
        """
        raise NotImplementedError

    def ordering_keys(self, records: Sequence[Mapping[str, Any]]) -> list[Hashable | None] | None:
        """Each record's ordering key, or ``None`` when no record has one.

        Records that share a key run one at a time, in order. By default nothing is ordered.
        """
        return None

    def skips_key_on_failure(self, records: Sequence[Mapping[str, Any]]) -> bool:
        """Whether a failure must skip the later records of its key in this batch."""
        return False

    def describe(self, identifier: Any) -> str:
        """*identifier* as a log line shows it."""
        return str(identifier)

    # -- the response ---------------------------------------------------------------------

    #: Whether the response carries what each handler returned (Firehose): the run then
    #: asks :meth:`encode` for every record that succeeded, before any hook or observer
    #: sees the outcomes, and hands the answers to :meth:`response` as ``result.encoded``.
    encodes: ClassVar[bool] = False

    def encode(self, record: Mapping[str, Any], value: Any) -> Any:
        """What the response carries for *record*, whose handler returned *value*.

        Raises an :class:`Exception` when *value* cannot go into the response: the record
        then fails with it, as if its handler had raised. Called only when :attr:`encodes`.
        """
        raise NotImplementedError

    #: Whether :meth:`response` is the source's own (else the partial batch response).
    responds: ClassVar[bool] = False

    def response(self, result: BatchResult[Any]) -> Any:
        """What the Lambda function returns for *result*, when :attr:`responds`.

        By default a partial batch response that lists every record that did not succeed.
        """
        return result.item_failures()

    # -- the trace context a record carries -----------------------------------------------

    def trace_headers(self, record: Mapping[str, Any]) -> Mapping[str, str]:
        """The W3C trace context (``traceparent``, ``tracestate``) *record* carries."""
        return {}

    def xray_header(self, record: Mapping[str, Any]) -> str | None:
        """The X-Ray trace header (``Root=...;Parent=...``) *record* carries."""
        return None


def records_list(event: object, key: str, source: Source[Any]) -> list[Any]:
    """``event[key]``, checking that the event is an object with that list."""
    found = mapping(event)
    if found is None:
        raise InvalidEventError(
            f"the event must be an object with a {key!r} list, got {type(event).__name__}"
        )
    if key not in found:
        keys = ", ".join(repr(k) for k in list(found)[:5]) or "none"
        raise InvalidEventError(
            f"the event has no {key!r} list (its keys: {keys}); is this an event of {source}?"
        )
    records = found[key]
    if not isinstance(records, list):
        raise InvalidEventError(f"the event's {key!r} must be a list, got {type(records).__name__}")
    return records  # pyright: ignore[reportUnknownVariableType] - a list, checked above


def check_objects(records: object) -> Sequence[Mapping[str, Any]]:
    """*records*, checked to be a list of objects; raises naming the first that is not."""
    if not isinstance(records, Sequence) or isinstance(records, str | bytes):
        raise InvalidEventError(f"records must be a list, got {type(records).__name__}")
    for index, item in enumerate(cast("Sequence[object]", records)):
        if mapping(item) is None:
            raise InvalidEventError(
                f"record {index} must be an object, got {type(item).__name__}", index=index
            )
    return cast("Sequence[Mapping[str, Any]]", records)
