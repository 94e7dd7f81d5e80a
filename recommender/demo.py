"""A synthetic but realistic store, deterministic by seed.

Customers have latent tastes (a few favourite categories and a preferred price
tier); item popularity follows a power law inside each category; busy customers buy
far more than most (log-normal activity); some purchases are of several units, and
events are spread over one year. The generator is vectorised, so the same code
writes the 150k-purchase demo and the 20M-purchase scale test.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from recommender.files import errors_naming

CATEGORIES = {
    "Books": ["Novel", "Cookbook", "Atlas", "Biography", "Poetry Collection", "Field Guide"],
    "Coffee & Tea": ["Espresso Beans", "Green Tea", "Pour-Over Kettle", "Tea Infuser", "Cold Brew Jar", "Grinder"],
    "Garden": ["Trowel", "Seed Set", "Watering Can", "Pruning Shears", "Planter", "Hose Reel"],
    "Kitchen": ["Chef Knife", "Cast Iron Pan", "Cutting Board", "Mixing Bowl", "Dutch Oven", "Whisk"],
    "Outdoor": ["Tent", "Sleeping Bag", "Headlamp", "Trekking Poles", "Camp Stove", "Water Filter"],
    "Music": ["Vinyl Record", "Guitar Strings", "Ukulele", "Metronome", "Headphones", "Capo"],
    "Toys": ["Puzzle", "Building Blocks", "Board Game", "Plush Bear", "Kite", "Model Train"],
    "Beauty": ["Face Serum", "Lip Balm", "Hand Cream", "Shampoo Bar", "Sunscreen", "Bath Salts"],
    "Pets": ["Dog Leash", "Cat Tree", "Chew Toy", "Pet Bed", "Bird Feeder", "Aquarium Filter"],
    "Stationery": ["Notebook", "Fountain Pen", "Desk Planner", "Washi Tape", "Sketchbook", "Ink Bottle"],
    "Sports": ["Yoga Mat", "Running Socks", "Jump Rope", "Kettlebell", "Water Bottle", "Tennis Balls"],
    "Home": ["Scented Candle", "Throw Blanket", "Picture Frame", "Vase", "Doormat", "Wall Clock"],
}
ADJECTIVES = [
    "Classic", "Crimson", "Nordic", "Rustic", "Golden", "Urban", "Coastal", "Midnight", "Alpine", "Vintage",
    "Modern", "Cozy", "Bright", "Wild", "Silver", "Velvet", "Sunny", "Misty", "Royal", "Humble",
]
TIERS = ("budget", "classic", "premium")
TASTE_CONCENTRATION = 0.15  # Dirichlet prior of each customer's category tastes: most love a few categories
PREFERRED_TIER_CHANCE = 0.7  # a purchase is in the customer's preferred tier, else any tier at random
YEAR_START = np.datetime64("2025-01-01T00:00:00", "s")
SECONDS_PER_YEAR = 365 * 24 * 3600


@dataclass
class LatentTastes:
    """What the generator knows and a model must guess: each customer's taste for each
    category, their preferred price tier and activity, and each item's category, tier and popularity
    weight. ``purchase_probability`` is the chance that a customer's next purchase is a
    given item, exactly as :func:`generate_store` draws purchases: the storefront
    simulator (``make simulate``) makes customers click and buy by it."""

    customer_ids: np.ndarray
    item_ids: np.ndarray
    taste: np.ndarray  # (customers, categories), rows sum to 1
    tier_preference: np.ndarray  # (customers,) index into TIERS
    activity: np.ndarray  # (customers,) how much each customer shops, relative
    item_category: np.ndarray  # (items,)
    item_tier: np.ndarray  # (items,)
    item_weight: np.ndarray  # (items,) popularity inside the item's category

    def purchase_probability(self, customers: np.ndarray, items: np.ndarray) -> np.ndarray:
        """P(next purchase is item i | customer u) for each pair of the broadcast arrays
        ``customers`` and ``items`` (indices): taste for the category, times the chance of
        the item's tier (0.7 for the preferred one plus 0.3 spread over all), times the
        item's share of its (category, tier) pool."""
        customers, items = np.asarray(customers), np.asarray(items)
        category, tier = self.item_category[items], self.item_tier[items]
        tier_chance = PREFERRED_TIER_CHANCE * (tier == self.tier_preference[customers]) + (1 - PREFERRED_TIER_CHANCE) / len(TIERS)
        pool = self._pool_weight()[category * len(TIERS) + tier]
        return self.taste[customers, category] * tier_chance * self.item_weight[items] / pool

    def _pool_weight(self) -> np.ndarray:
        groups = self.item_category * len(TIERS) + self.item_tier
        return np.bincount(groups, weights=self.item_weight, minlength=len(CATEGORIES) * len(TIERS))


@dataclass
class DemoStore:
    purchases: pa.Table  # customer_id, item_id, timestamp, quantity
    catalog: pa.Table  # item_id, name, category, tier, price
    latent: LatentTastes | None = None


def generate_store(customers: int = 5000, items: int = 2000, purchases: int = 150_000, seed: int = 42) -> DemoStore:
    """Build the store in memory; ``seed`` fixes every random choice."""
    if min(customers, items, purchases) < 1:
        raise ValueError("customers, items and purchases must each be at least 1")
    rng = np.random.default_rng(seed)
    categories = list(CATEGORIES)
    n_categories = len(categories)

    item_category = np.sort(rng.integers(0, n_categories, size=items))
    item_tier = rng.choice(len(TIERS), size=items, p=[0.4, 0.4, 0.2])
    # Power-law popularity inside each category (rank^-1.1 over a random order).
    item_weight = np.empty(items)
    for c in range(n_categories):
        members = np.flatnonzero(item_category == c)
        ranks = rng.permutation(len(members)) + 1
        item_weight[members] = ranks ** -1.1

    taste = rng.dirichlet(np.full(n_categories, TASTE_CONCENTRATION), size=customers)
    tier_preference = rng.integers(0, len(TIERS), size=customers)
    activity = rng.lognormal(mean=0.0, sigma=1.0, size=customers)

    buyer = rng.choice(customers, size=purchases, p=activity / activity.sum())
    # Everyone in the store bought at least once.
    buyer[: min(customers, purchases)] = rng.permutation(customers)[: min(customers, purchases)]
    category = _sample_rows(np.cumsum(taste, axis=1), buyer, rng)
    wants_tier = np.where(rng.random(purchases) < PREFERRED_TIER_CHANCE, tier_preference[buyer], rng.integers(0, len(TIERS), purchases))
    item = _sample_items(item_category, item_tier, item_weight, category, wants_tier, rng)

    quantity = rng.choice([1, 2, 3], size=purchases, p=[0.85, 0.11, 0.04])
    moments = YEAR_START + rng.integers(0, SECONDS_PER_YEAR, size=purchases).astype("timedelta64[s]")
    order = np.argsort(moments, kind="stable")

    width = len(str(customers))
    customer_ids = np.char.zfill(np.arange(1, customers + 1).astype(str), width + 1)  # leading zeros stay: ids are strings
    item_ids = np.char.add("SKU-", np.char.zfill(np.arange(1, items + 1).astype(str), len(str(items)) + 1))
    purchases_table = pa.table(
        {
            "customer_id": customer_ids[buyer[order]],
            "item_id": item_ids[item[order]],
            "timestamp": np.datetime_as_string(moments[order], unit="s", timezone="UTC"),
            "quantity": quantity[order].astype(np.int64),
        }
    )
    nouns = np.array([noun for name in categories for noun in CATEGORIES[name]])
    noun_offset = np.array([sum(len(CATEGORIES[n]) for n in categories[:c]) for c in range(n_categories)])
    noun = noun_offset[item_category] + rng.integers(0, 6, size=items)
    names = _unique(np.char.add(np.char.add(np.array(ADJECTIVES)[rng.integers(0, len(ADJECTIVES), items)], " "), nouns[noun]))
    base_price = np.array([9.0, 24.0, 79.0])[item_tier] * rng.uniform(0.6, 1.6, size=items)
    catalog_table = pa.table(
        {
            "item_id": item_ids,
            "name": names,
            "category": np.array(categories)[item_category],
            "tier": np.array(TIERS)[item_tier],
            "price": np.round(base_price, 2),
        }
    )
    latent = LatentTastes(customer_ids, item_ids, taste, tier_preference, activity, item_category, item_tier, item_weight)
    return DemoStore(purchases_table, catalog_table, latent)


def _unique(names: np.ndarray) -> np.ndarray:
    """Each name once: a repeated name gets " No. 2", " No. 3", ... in order of item id, so a
    merchandiser (and "often bought with ...") can tell two items apart by name."""
    order = np.argsort(names, kind="stable")
    ordered = names[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    occurrence = np.arange(len(names)) - np.repeat(starts, np.diff(np.r_[starts, len(names)]))
    suffix = np.where(occurrence > 0, np.char.add(" No. ", (occurrence + 1).astype(str)), "")
    unique = names.astype(object)
    unique[order] = np.char.add(ordered, suffix)
    return unique.astype(str)


def _sample_rows(cumulative: np.ndarray, rows: np.ndarray, rng: np.random.Generator, chunk: int = 1_000_000) -> np.ndarray:
    """For each entry of ``rows``, draw a column from that row's cumulative distribution."""
    drawn = np.empty(len(rows), dtype=np.int64)
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        u = rng.random(len(part))[:, None] * cumulative[part, -1:]
        drawn[start : start + chunk] = np.minimum((cumulative[part] < u).sum(axis=1), cumulative.shape[1] - 1)
    return drawn


def _sample_items(item_category, item_tier, item_weight, category, tier, rng) -> np.ndarray:
    """Draw an item of the wanted category (and tier, where the category has one) by popularity."""
    drawn = np.empty(len(category), dtype=np.int64)
    groups = item_category * len(TIERS) + item_tier
    wanted = category * len(TIERS) + tier
    for c in np.unique(category):
        in_category = np.flatnonzero(item_category == c)
        if len(in_category) == 0:
            in_category = np.arange(len(item_category))  # tiny stores: any item will do
        for t in range(len(TIERS)):
            rows = np.flatnonzero(wanted == c * len(TIERS) + t)
            if len(rows) == 0:
                continue
            pool = np.flatnonzero(groups == c * len(TIERS) + t)
            pool = pool if len(pool) else in_category
            cumulative = np.cumsum(item_weight[pool])
            picks = np.searchsorted(cumulative, rng.random(len(rows)) * cumulative[-1], side="right")
            drawn[rows] = pool[np.minimum(picks, len(pool) - 1)]
    return drawn


def write_store(store: DemoStore, out_dir, file_format: str = "csv") -> dict[str, Path]:
    """Write ``purchases`` and ``catalog`` files into ``out_dir`` (each written then renamed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, table in (("purchases", store.purchases), ("catalog", store.catalog)):
        path = out_dir / f"{name}.{file_format}"
        temporary = out_dir / f".{name}.{file_format}.tmp-{os.getpid()}"
        try:
            with errors_naming(path, temporary):
                if file_format == "parquet":
                    pq.write_table(table, temporary)
                elif file_format == "csv":
                    pa_csv.write_csv(table, temporary)
                else:
                    raise ValueError(f"format must be csv or parquet, not {file_format!r}")
                os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        paths[name] = path
    return paths
