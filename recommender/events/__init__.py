"""The event store: events, the answer log and the erasure list, behind one class.

- :mod:`.records`: the plain values the store takes and returns;
- :mod:`.store`: :class:`EventStore`, every read and write serving and tools make;
- :mod:`.index`: which customers have anything stored, known without a query;
- :mod:`.answer_log`: answer ids, and the buffer that logs answers in batches;
- :mod:`.training_data`: what training reads (events, the erasure list);
- :mod:`.sqlite`: the SQLite file underneath (schema, migrations, connections).

SQL lives in this package only.
"""

from .answer_log import AnswerIds, AnswerLog
from .records import NO_FEEDBACK, AnswerRecord, CustomerFeedback, Erasure, Event, customer_key
from .store import EventStore, EventStoreUnavailable
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
    "customer_key",
    "erased_in",
    "forget_erased_customers",
    "merge_stored_events",
    "read_erasures",
    "read_events",
]
