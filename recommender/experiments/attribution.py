"""Which answer led to an impression, a click, a purchase or a "not interested": pure rules over rows.

An event is attributed to an answer that showed its item to the customer at most
``window`` seconds before the event (both ends inclusive: ``0 <= event time - served at
<= window``):

- with a ``recommendation_id``, to that answer only: the id must be a logged answer to
  the same customer that listed the item, within the window (else the event is
  unattributed, with the reason; an unknown id is never an error);
- without one, to the latest answer to the same customer that listed the item within
  the window before the event (last touch).

Times are epoch seconds: the answer's as the server logged it, the event's as the
client sent it (the server's clock when it sent none). Outcomes are kept per shown
item, ``(answer, item)``, so a customer who clicks twice counts one click: every rate
below is a proportion of shown items.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..events.records import AnswerRecord, Event
from ..weights import CLICK, IMPRESSION, NOT_INTERESTED

PURCHASE = "purchase"
ATTRIBUTED_TYPES = (IMPRESSION, CLICK, PURCHASE, NOT_INTERESTED)
DEFAULT_WINDOW_SECONDS = 24 * 3600

UNKNOWN_ID = "unknown recommendation_id"
NOT_IN_ANSWER = "item not in that answer"
OUTSIDE_WINDOW = "outside the attribution window"
NO_ANSWER = "no answer showed the item to the customer within the window"
OTHER_CUSTOMER = "that answer was another customer's"


@dataclass
class Outcome:
    """What became of one item shown in one answer."""

    answer: AnswerRecord
    item_id: str
    impression: bool = False
    click: bool = False
    purchases: int = 0  # attributed purchase events
    quantity: float = 0.0  # units bought in them
    not_interested: bool = False

    @property
    def seen(self) -> bool:
        """Shown to the customer: an impression was posted, or the item was clicked."""
        return self.impression or self.click


@dataclass
class Attribution:
    outcomes: dict[tuple[str, str], Outcome] = field(default_factory=dict)  # (recommendation_id, item) -> outcome
    unattributed: Counter = field(default_factory=Counter)  # event type -> events
    reasons: Counter = field(default_factory=Counter)  # why -> events


def attribute(answers: Sequence[AnswerRecord], events: Iterable[Event], window: int = DEFAULT_WINDOW_SECONDS) -> Attribution:
    """Attribute ``events`` (any types; those not in :data:`ATTRIBUTED_TYPES` are ignored) to ``answers``."""
    by_id = {answer.recommendation_id: answer for answer in answers}
    items_of: dict[str, frozenset[str]] = {}
    events = [e for e in events if e.event_type in ATTRIBUTED_TYPES]
    touches = _touch_index(answers, {e.customer_id for e in events if not e.recommendation_id})
    result = Attribution()
    for event in events:
        if event.recommendation_id:
            answer, why = _by_id(event, by_id.get(event.recommendation_id), items_of, window)
        else:
            answer, why = _last_touch(event, touches, window)
        if answer is None:
            result.unattributed[event.event_type] += 1
            result.reasons[why] += 1
            continue
        key = (answer.recommendation_id, event.item_id)
        outcome = result.outcomes.get(key)
        if outcome is None:
            outcome = result.outcomes[key] = Outcome(answer, event.item_id)
        _record(outcome, event)
    return result


def _record(outcome: Outcome, event: Event) -> None:
    kind = event.event_type
    if kind == IMPRESSION:
        outcome.impression = True
    elif kind == CLICK:
        outcome.click = True
    elif kind == PURCHASE:
        outcome.purchases += 1
        outcome.quantity += event.quantity
    else:
        outcome.not_interested = True


def _by_id(event: Event, answer: AnswerRecord | None, items_of: dict, window: int) -> tuple[AnswerRecord | None, str]:
    if answer is None:
        return None, UNKNOWN_ID
    if answer.customer_id is not None and answer.customer_id != event.customer_id:
        return None, OTHER_CUSTOMER  # an id copied or shared: it did not show the item to this customer
    listed = items_of.get(answer.recommendation_id)
    if listed is None:
        listed = items_of[answer.recommendation_id] = frozenset(answer.items)
    if event.item_id not in listed:
        return None, NOT_IN_ANSWER
    if not 0 <= event.timestamp - answer.served_at <= window:
        return None, OUTSIDE_WINDOW
    return answer, ""


def _touch_index(answers: Sequence[AnswerRecord], customers: set[str]) -> dict[tuple[str, str], tuple[list[int], list[AnswerRecord]]]:
    """(customer, item) -> the answers that listed it, by time: only for ``customers``
    (those with events that carry no id), so the index stays small."""
    listed: dict[tuple[str, str], list[AnswerRecord]] = {}
    for answer in answers:
        if answer.customer_id in customers:
            for item in answer.items:
                listed.setdefault((answer.customer_id, item), []).append(answer)
    index = {}
    for key, found in listed.items():
        found.sort(key=lambda a: a.served_at)
        index[key] = ([a.served_at for a in found], found)
    return index


def _last_touch(event: Event, touches: dict, window: int) -> tuple[AnswerRecord | None, str]:
    found = touches.get((event.customer_id, event.item_id))
    if found is None:
        return None, NO_ANSWER
    times, answers = found
    latest = bisect.bisect_right(times, event.timestamp) - 1  # the last answer served at or before the event
    if latest < 0 or event.timestamp - times[latest] > window:
        return None, NO_ANSWER
    return answers[latest], ""
