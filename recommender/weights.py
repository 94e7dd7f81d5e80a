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

With returns allowed (``--returns net``) a negative quantity is a return: its weight is
negative, and :func:`net_returns` takes it off the customer's purchases of the item.
What the summed history then means (recency, repeated purchases) is
:class:`HistoryWeighting`, applied once, where the interaction matrix is built.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

PURCHASE, IMPRESSION, CLICK, NOT_INTERESTED = "purchase", "impression", "click", "not_interested"
#: Types that can never weigh more than 0 in training.
NOT_POSITIVE = (IMPRESSION, NOT_INTERESTED)
#: Types every event store accepts whatever the weight table says: the feedback on answers.
FEEDBACK_TYPES = (IMPRESSION, CLICK, NOT_INTERESTED)
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {PURCHASE: 1.0, "cart": 0.5, "view": 0.1, CLICK: 0.1, IMPRESSION: 0.0, NOT_INTERESTED: 0.0}


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


def weigh_events(event_types, quantities: np.ndarray | None, weights: Mapping[str, float], *, returns: bool = False) -> np.ndarray:
    """Each event's weight (float64), for parallel columns of types (a numpy or Arrow array;
    None: every event a purchase) and quantities (None: 1 each). With ``returns``, a
    negative quantity gives a negative weight (a return) instead of 0."""
    if event_types is None:  # a file without types: every event is a purchase
        weight = np.full(len(quantities), max(float(weights.get("purchase", 0.0)), 0.0))
    else:
        kinds, codes = _kinds_and_codes(event_types)
        per_kind = np.array([max(float(weights.get(kind, 0.0)), 0.0) if kind is not None else 0.0 for kind in kinds] + [0.0])
        weight = per_kind[codes]  # code len(kinds): a missing type
    if quantities is not None:
        weight = weight * np.asarray(quantities, dtype=np.float64)
    counted = (weight != 0) if returns else (weight > 0)
    return np.where(np.isfinite(weight) & counted, weight, 0.0)


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


def spark_weigh_events(event_type, quantity, weights: Mapping[str, float], *, returns: bool = False):
    """The same rule as a Spark column expression (columns, or None where the file has none).
    Null where the type is unknown or the quantity is not a positive number (with
    ``returns``: not a non-zero number): the job counts those rows as bad; a type
    weighted 0 or less gives 0, which adds nothing."""
    from pyspark.sql import functions as F

    known = {kind: max(float(value), 0.0) for kind, value in weights.items()}
    if event_type is None:
        weight = F.lit(known.get("purchase", 0.0))
    else:
        mapping = F.create_map(*[x for kind, value in known.items() for x in (F.lit(kind), F.lit(value))])
        weight = mapping[F.coalesce(event_type.cast("string"), F.lit("purchase"))]
    if quantity is not None:
        parsed = F.trim(quantity.cast("string")).try_cast("double")  # text that is no number: null, not a failed job
        weight = weight * F.when((parsed != 0) if returns else (parsed > 0), parsed)
    return weight


def net_returns(bought: np.ndarray, returned: np.ndarray, decayed: np.ndarray | None = None) -> np.ndarray:
    """A customer's weight for an item once returns are taken off, per (customer, item) cell.

    ``bought`` and ``returned`` are the summed weights of the cell's purchases and of its
    returns (positive numbers); ``decayed`` the purchases' sum after recency decay (None:
    no decay). The returns cancel that share of the purchases, never more than all of them:

        weight = decayed x max(0, 1 - returned / bought)      (= max(0, bought - returned) undecayed)

    so a customer who bought 10 and sent 2 back keeps 8/10 of their purchase weight however
    old it is, and returns of items bought before the data began leave nothing.
    """
    bought = np.asarray(bought, dtype=np.float64)
    decayed = bought if decayed is None else np.asarray(decayed, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        kept = np.where(bought > 0, np.clip(1.0 - np.asarray(returned, dtype=np.float64) / bought, 0.0, 1.0), 0.0)
    return decayed * kept


REPEATS = ("count", "log", "once")
SECONDS_PER_DAY = 86_400
# The oldest event still weighs 2**-100 (float32 keeps it): it fades, but stays "bought".
MOST_HALVINGS = -100.0


@dataclass(frozen=True)
class HistoryWeighting:
    """What a customer's history says, store by store: how recency and repeated purchases count.

    Applied where the customer x item matrix is built (:meth:`recommender.interactions.Interactions.from_log`),
    so every algorithm trains on the same weights and an automatic choice compares like with like:

    1. recency: with ``half_life_days`` h, an event's weight is multiplied by ``0.5 ** (age / h)``,
       its age in days measured from the newest event of the training data (the newest
       event weighs in full, one h older half; never below 2**-100, so an old purchase
       still counts as bought and is not recommended again). ``None``: no decay.
    2. returns are netted out per customer and item (:func:`net_returns`).
    3. repeats: the customer's summed weight ``s`` for the item becomes
       ``"count"``: ``s`` (three purchases weigh 3; the default),
       ``"log"``: ``log2(1 + s)`` (one purchase still 1, three 2, fifteen 4: bulk buys compressed),
       ``"once"``: ``min(s, 1)`` (buying again adds nothing; a view still weighs 0.1).

    Serving folds a customer's new events into the stored (already weighted) history with
    :meth:`fold_in`: a new event is "now", so it counts in full while training events keep
    their decayed weights; the repeats rule is applied to the total exactly as in training.
    """

    half_life_days: float | None = None
    repeats: str = "count"

    def __post_init__(self):
        if self.half_life_days is not None and not (math.isfinite(self.half_life_days) and self.half_life_days > 0):
            raise ValueError(f"half_life_days must be a positive number of days or None, not {self.half_life_days!r}")
        if self.repeats not in REPEATS:
            raise ValueError(f"repeats must be one of {', '.join(REPEATS)}, not {self.repeats!r}")

    @property
    def is_plain(self) -> bool:
        """True when the matrix holds summed event weights, as before weighting existed."""
        return self.half_life_days is None and self.repeats == "count"

    def decay(self, timestamps: np.ndarray | None) -> np.ndarray | None:
        """Each event's recency factor (newest 1), or None without a half-life."""
        if self.half_life_days is None:
            return None
        if timestamps is None:
            raise ValueError("a half-life needs event times: the purchase data has no timestamp column")
        timestamps = np.asarray(timestamps, dtype=np.int64)
        if len(timestamps) == 0:
            return np.ones(0)
        age_days = (timestamps.max() - timestamps).astype(np.float64) / SECONDS_PER_DAY
        return np.exp2(np.maximum(-age_days / self.half_life_days, MOST_HALVINGS))

    def repeated(self, summed: np.ndarray) -> np.ndarray:
        """The repeats rule on summed (netted, decayed) weights of customer-item cells."""
        summed = np.asarray(summed, dtype=np.float64)
        if self.repeats == "log":
            # log1p: log2(1 + w) of a faded purchase (w down to 2**-100) would round 1 + w to 1,
            # and the cell to 0: no longer "bought".
            return np.log1p(summed) / math.log(2.0)
        if self.repeats == "once":
            return np.minimum(summed, 1.0)
        return summed

    def fold_in(self, stored: np.ndarray, added: np.ndarray) -> np.ndarray:
        """Cells of a stored history (after :meth:`repeated`; 0 where absent) plus new events'
        summed weights, as if the events had been in the training data at full weight."""
        stored, added = np.asarray(stored, dtype=np.float64), np.asarray(added, dtype=np.float64)
        if self.repeats == "log":
            # log2(1 + s + a), s recovered from log2(1 + s); expm1 and log1p keep a faded s above 0
            return np.log1p(np.expm1(stored * math.log(2.0)) + added) / math.log(2.0)
        if self.repeats == "once":
            return np.minimum(stored + added, 1.0)  # exact: a capped cell stays capped
        return stored + added

    def to_dict(self) -> dict:
        return {"half_life_days": self.half_life_days, "repeats": self.repeats}

    def record(self, newest_event: int | None) -> dict:
        """:meth:`to_dict` with the newest training event (epoch seconds; None: no times), as a
        model's manifest keeps it: recency is measured from it, so the weights can be explained."""
        from .timestamps import iso_time

        return {**self.to_dict(), "newest_event": None if newest_event is None else iso_time(int(newest_event))}

    @classmethod
    def from_dict(cls, values: Mapping | None) -> HistoryWeighting:
        """From :meth:`to_dict`'s shape (a model manifest); None or {} is the plain weighting."""
        values = values or {}
        return cls(values.get("half_life_days"), values.get("repeats", "count"))

    def describe(self) -> str:
        recency = "no recency decay" if self.half_life_days is None else f"half-life {self.half_life_days:g} days"
        return f"{recency}, repeats {self.repeats}"
