"""A stdlib logging filter that stamps each line with the record being handled.

A module of its own: :mod:`logging` costs a cold start about 10 ms, and only a function that
uses the filter pays it (``anybatch.RecordIdFilter`` is imported on first use).
"""

from __future__ import annotations

import logging
from typing import Any

from ._context import current_record_id

__all__ = ["RecordIdFilter"]


class RecordIdFilter(logging.Filter):
    """A :class:`logging.Filter` that stamps each log line with the current record's id.

    Every line emitted while a record is handled gets ``record_id`` (the attribute name is
    yours to choose) set to the record's identifier, and lines emitted elsewhere get
    *default*. Add it to a handler or a logger::

        logging.getLogger().handlers[0].addFilter(anybatch.RecordIdFilter())

    It works with the standard library, with Powertools' ``Logger`` (``logger.addFilter``;
    its JSON carries the attribute), and with structlog through its standard-library
    integration (``structlog.stdlib.ExtraAdder``), or with :func:`add_record_id` as a
    structlog processor.
    """

    def __init__(self, attribute: str = "record_id", default: Any = None) -> None:
        super().__init__()
        self.attribute = attribute
        self.default = default

    def filter(self, record: logging.LogRecord) -> bool:
        """Stamp *record*; never drops a line."""
        identifier = current_record_id()
        setattr(record, self.attribute, self.default if identifier is None else identifier)
        return True
