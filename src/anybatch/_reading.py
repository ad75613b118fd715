"""How a batch's records are read: their source, their view, and their model if any.

Made once per event type and model, and kept: a warm invocation reads its batch the way the
previous one did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._sources import EventType, source_of
from ._view import reusable

__all__ = ["Reading", "reading_of"]


class Reading:
    """How records of one event type are read: their source, view and handler argument.

    A slotted class, not a ``NamedTuple``: making one of those costs a cold start.
    """

    __slots__ = ("convert", "converts", "reuses", "source", "view")

    def __init__(
        self,
        source: EventType[Any],
        view: Callable[[Mapping[str, Any]], Any],
        convert: Callable[[Mapping[str, Any]], Any],
        converts: bool = False,
        reuses: bool = False,
    ) -> None:
        self.source = source
        self.view = view
        self.convert = convert
        #: Whether a model makes each handler argument (it may refuse a record).
        self.converts = converts
        #: Whether a warm batch may re-use the previous batch's views (``_view.make_views``).
        self.reuses = reuses


#: Each event type's reading, with or without a model.
_READINGS: dict[tuple[EventType[Any], type[Any] | None], Reading] = {}


def reading_of(event_type: object, model: type[Any] | None) -> Reading:
    """The :class:`Reading` of *event_type* with *model*; checks that the model fits."""
    source = source_of(event_type)
    key = (source, model)
    try:
        reading = _READINGS.get(key)
    except TypeError:  # not a class at all: converter_for says what is wrong with it
        reading = None
    if reading is None:
        view = source.view
        convert = view
        if model is not None:
            from .models import converter_for  # imports pydantic: only when a model is used

            convert = converter_for(source, model)
        converts = convert is not view
        reading = Reading(source, view, convert, converts, not converts and reusable(view))
        _READINGS[key] = reading
    return reading
