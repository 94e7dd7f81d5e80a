"""Which variant a customer sees: a salted hash of their id into [0, 1), cut by the shares.

As in GrowthBook and Unleash, nothing is stored: the same customer, experiment salt
and shares give the same variant in every worker, after every restart and on every
machine (the hash is BLAKE2b, never Python's per-process ``hash``). A different salt
reshuffles everyone independently of other experiments. Changing the shares moves
only the customers whose bucket crosses a new boundary.
"""

from __future__ import annotations

import hashlib
from itertools import accumulate

from .config import Experiment, Variant

_SCALE = float(1 << 64)


def bucket(salt: str, customer_id: str) -> float:
    """The customer's place in [0, 1) for this salt: the first 8 bytes of
    BLAKE2b(salt, U+001F, id) as a fraction of 2**64."""
    digest = hashlib.blake2b(f"{salt}\x1f{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def assign(experiment: Experiment, customer_id: str) -> Variant:
    """The variant ``customer_id`` belongs to: the first whose cumulative share exceeds
    their bucket (rounding can leave the last boundary at 0.9999...: the last variant
    then takes the remainder)."""
    place = bucket(experiment.salt, customer_id)
    for variant, upper in zip(experiment.variants, accumulate(v.share for v in experiment.variants)):
        if place < upper:
            return variant
    return experiment.variants[-1]
