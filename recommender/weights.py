"""How much one event says about a customer's taste: the interaction weight, written once.

    weight(event) = event_weights[event_type] x quantity

and a customer's weight for an item is the sum over their events on it (see
:mod:`recommender.interactions`). A type without a weight, or with a weight of 0 or
less, adds nothing. The rule is applied to plain values (an event posted to the API),
to arrays (purchase files, the event store) and to Spark columns; the three
functions below are the only places that multiply, and a test keeps them equal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

DEFAULT_EVENT_WEIGHTS: dict[str, float] = {"purchase": 1.0, "cart": 0.5, "view": 0.1}


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
