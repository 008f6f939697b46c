"""Durable state of live runs: the order journal (:mod:`tradeloop.persistence.journal`)."""

from tradeloop.persistence.journal import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    DuplicateIntentError,
    JournalError,
    JournalEvent,
    JournalFormatError,
    JournalOrder,
    OrderJournal,
    UnknownOrderError,
    iso_utc,
)

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "DuplicateIntentError",
    "JournalError",
    "JournalEvent",
    "JournalFormatError",
    "JournalOrder",
    "OrderJournal",
    "UnknownOrderError",
    "iso_utc",
]
