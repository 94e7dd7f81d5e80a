"""How much one event says about a customer's taste: the interaction weight, written once.

    weight(event) = event_weights[event_type] x quantity

and a customer's weight for an item is the sum over their events on it (see
:mod:`recommender.interactions`). A type without a weight, or with a weight of 0 or
less, adds nothing.

Besides what customers do (purchase, cart, view), the API takes what they were shown
and how they answered it: ``impression`` (an item of an answer was shown), ``click``
and ``not_interested``. An impression says nothing about taste, and "not interested"
says the opposite of a purchase, so neither may ever count as a positive signal:
:func:`check_event_weights` refuses a positive weight for them. (No algorithm learns
from negative weights; "not interested" is honoured by serving instead, which leaves
the item out of that customer's answers for good, see :mod:`recommender.events`.) The rule is applied to plain values (an event posted to the API),
to arrays (purchase files, the event store) and to Spark columns; the three
functions below are the only places that multiply, and a test keeps them equal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

IMPRESSION, CLICK, NOT_INTERESTED = "impression", "click", "not_interested"
#: Types that can never weigh more than 0 in training.
NOT_POSITIVE = (IMPRESSION, NOT_INTERESTED)
#: Types every event store accepts whatever the weight table says: the feedback on answers.
FEEDBACK_TYPES = (IMPRESSION, CLICK, NOT_INTERESTED)
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {"purchase": 1.0, "cart": 0.5, "view": 0.1, CLICK: 0.1, IMPRESSION: 0.0, NOT_INTERESTED: 0.0}


def check_event_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """The table as floats; ValueError naming the type when one weight is not a finite
    number, or when impression or not_interested is given a positive weight."""
    checked = {}
    for kind, value in weights.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"the weight of {kind!r} must be a number, not {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"the weight of {kind!r} must be a finite number, not {value!r}")
        if kind in NOT_POSITIVE and number > 0:
            raise ValueError(f"{kind!r} is not a sign of interest: its weight must be 0 or less, not {number:g}")
        checked[str(kind)] = number
    return checked


def accepted_event_types(weights: Mapping[str, float]) -> list[str]:
    """The event types a store takes: those of the weight table plus the feedback types."""
    return sorted(set(weights) | set(FEEDBACK_TYPES))


def weigh_event(event_type: str, quantity: float, weights: Mapping[str, float]) -> float:
    """One event's weight; 0 for a type without a positive weight or a non-finite product."""
    weight = float(weights.get(event_type, 0.0)) * float(quantity)
    return weight if weight > 0 and math.isfinite(weight) else 0.0


def weigh_events(event_types, quantities: np.ndarray | None, weights: Mapping[str, float]) -> np.ndarray:
    """Each event's weight (float64), for parallel columns of types (a numpy or Arrow array;
    None: every event a purchase) and quantities (None: 1 each)."""
    if event_types is None:  # a file without types: every event is a purchase
        weight = np.full(len(quantities), max(float(weights.get("purchase", 0.0)), 0.0))
    else:
        kinds, codes = _kinds_and_codes(event_types)
        per_kind = np.array([max(float(weights.get(kind, 0.0)), 0.0) if kind is not None else 0.0 for kind in kinds] + [0.0])
        weight = per_kind[codes]  # code len(kinds): a missing type
    if quantities is not None:
        weight = weight * np.asarray(quantities, dtype=np.float64)
    return np.where(np.isfinite(weight) & (weight > 0), weight, 0.0)


def _kinds_and_codes(event_types) -> tuple[list, np.ndarray]:
    """The distinct types and each event's position among them (len(kinds) for a null)."""
    if isinstance(event_types, np.ndarray):
        kinds, codes = np.unique(event_types.astype(str), return_inverse=True)
        return kinds.tolist(), codes.reshape(-1)
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(event_types)
    encoded = encoded.combine_chunks() if hasattr(encoded, "combine_chunks") else encoded
    kinds = encoded.dictionary.to_pylist()
    codes = encoded.indices.fill_null(len(kinds)).to_numpy(zero_copy_only=False).astype(np.int64)
    return kinds, codes


def spark_weigh_events(event_type, quantity, weights: Mapping[str, float]):
    """The same rule as a Spark column expression (columns, or None where the file has none).
    Null where the type is unknown or the quantity is not a positive number: the job
    counts those rows as bad; a type weighted 0 or less gives 0, which adds nothing."""
    from pyspark.sql import functions as F

    known = {kind: max(float(value), 0.0) for kind, value in weights.items()}
    if event_type is None:
        weight = F.lit(known.get("purchase", 0.0))
    else:
        mapping = F.create_map(*[x for kind, value in known.items() for x in (F.lit(kind), F.lit(value))])
        weight = mapping[F.coalesce(event_type.cast("string"), F.lit("purchase"))]
    if quantity is not None:
        parsed = F.trim(quantity.cast("string")).try_cast("double")  # text that is no number: null, not a failed job
        weight = weight * F.when(parsed > 0, parsed)
    return weight
