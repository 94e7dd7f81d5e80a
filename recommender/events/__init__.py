"""The event store: events, the answer log and the erasure list, behind one interface.

- :mod:`.records`: the plain values the store takes and returns;
- :mod:`.base`: :class:`EventStore`, every read and write serving and tools make, and
  :func:`open_event_store`, which picks the backend from a path or URL;
- :mod:`.store`: the SQLite backend (the embedded default, one host);
- :mod:`.postgres`: the PostgreSQL backend (several API hosts share one database);
- :mod:`.index`: which customers have anything stored, known without a query;
- :mod:`.answer_log`: answer ids, and the buffer that logs answers in batches;
- :mod:`.training_data`: what training reads (events, the erasure list);
- :mod:`.sqlite`: the SQLite file underneath (schema, migrations, connections).

``EventStore(location)`` and ``open_event_store(location)`` open the same thing.

SQL lives in this package only.
"""

from .answer_log import AnswerIds, AnswerLog
from .base import (
    EventStore,
    EventStoreUnavailable,
    IdempotencyKeyReused,
    backend_of,
    not_an_event_store,
    open_event_store,
    redacted,
    store_missing,
)
from .postgres import PostgresEventStore
from .records import NO_FEEDBACK, AnswerRecord, CustomerFeedback, Erasure, Event, customer_key
from .store import SQLiteEventStore
from .training_data import erased_in, forget_erased_customers, merge_stored_events, read_erasures, read_events

__all__ = [
    "NO_FEEDBACK",
    "AnswerIds",
    "AnswerLog",
    "AnswerRecord",
    "CustomerFeedback",
    "Erasure",
    "Event",
    "EventStore",
    "EventStoreUnavailable",
    "IdempotencyKeyReused",
    "PostgresEventStore",
    "SQLiteEventStore",
    "backend_of",
    "customer_key",
    "erased_in",
    "forget_erased_customers",
    "merge_stored_events",
    "not_an_event_store",
    "open_event_store",
    "read_erasures",
    "read_events",
    "redacted",
    "store_missing",
]
