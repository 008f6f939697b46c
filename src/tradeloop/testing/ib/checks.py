"""ib_async drops a message it cannot decode and only logs it (``Decoder.interpret``): a wrong
field count shows up as a missing event, not a failure. :class:`DecoderErrors` collects those
log records so that a test can fail on them."""

from __future__ import annotations

import logging
from types import TracebackType

__all__ = ["DecoderErrors"]

_LOGGER = "ib_async.Decoder"


class DecoderErrors(logging.Handler):
    """``with DecoderErrors() as errors: ...; assert not errors.records``."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage()[:500])

    def __enter__(self) -> DecoderErrors:
        logging.getLogger(_LOGGER).addHandler(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        logging.getLogger(_LOGGER).removeHandler(self)
