"""Is a variant really better? Rates with their variance, the difference against the
control with a confidence interval, and how many more impressions a decision needs.

Method (stated in every report, :data:`METHOD`): each variant's rate (clicks per
impression, or purchases per impression) is a ratio of sums over customers, the unit
of assignment. Its variance comes from the delta method over customers (Deng, Knoblich
and Lu, KDD 2018), so a customer who sees many items counts as one correlated unit, not
as many independent trials. The difference of two rates gets a normal (Wald) interval
from the two variances: the unpooled two-proportion z-interval, to which this reduces
exactly when every customer sees one item. With several variants against one control,
each comparison is made at 1 - 0.05 / (variants - 1) (Bonferroni).

The power estimate answers "how many impressions would find a change of the minimum
detectable effect (relative, default 10%) with 80% power?": per variant
``(z[1-alpha/2] + z[power])² (p0(1-p0) + p1(1-p1)) d / (p1 - p0)²`` with p1 = p0 (1 + effect)
and d the observed design effect (the delta-method variance over the binomial one,
at least 1). The interval is for a look at the data decided in advance: looking every
day and stopping at the first significant difference finds more differences than exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

METHOD = (
    "difference of proportions with a normal (Wald) interval; each variant's variance by the delta method over customers "
    "(the unpooled two-proportion z-interval when every customer sees one item); Bonferroni-corrected for several variants"
)
POWER = 0.8
LEADING, NO_DIFFERENCE, NEEDS_MORE = "leading", "no difference yet", "needs more impressions"


@dataclass(frozen=True)
class Rate:
    """successes / trials over ``units`` customers, and the variance of that ratio."""

    successes: int
    trials: int
    units: int
    rate: float | None
    variance: float | None


@dataclass(frozen=True)
class Difference:
    """treatment rate - control rate, with its interval at ``confidence``."""

    estimate: float
    low: float
    high: float
    confidence: float
    p_value: float

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


@dataclass(frozen=True)
class Verdict:
    status: str  # LEADING, NO_DIFFERENCE or NEEDS_MORE
    text: str  # "default leading", "no difference yet", "needs 1200 more impressions"
    variant: str | None = None  # the leader
    impressions_needed: int | None = None


def ratio_rate(successes: np.ndarray, trials: np.ndarray) -> Rate:
    """The rate of per-customer ``successes`` over per-customer ``trials``, with its
    delta-method variance: (1 / (n mean(t)²)) (var(s) - 2 r cov(s, t) + r² var(t)), the
    (co)variances over customers with divisor n."""
    successes, trials = np.asarray(successes, dtype=np.float64), np.asarray(trials, dtype=np.float64)
    units, total = len(trials), float(trials.sum())
    if units == 0 or total == 0:
        return Rate(int(successes.sum()), int(total), units, None, None)
    rate = float(successes.sum()) / total
    mean_trials = total / units
    residual = successes - rate * trials  # var(s - r t) = var(s) - 2 r cov(s, t) + r² var(t)
    variance = float(np.mean((residual - residual.mean()) ** 2)) / (units * mean_trials**2)
    return Rate(int(successes.sum()), int(total), units, rate, variance)


def difference(treatment: Rate, control: Rate, confidence: float = 0.95) -> Difference | None:
    """treatment - control with a two-sided interval; None while either has no trials, or no
    variance (a mean over fewer than two customers)."""
    if treatment.variance is None or control.variance is None:  # a rate without trials has none either
        return None
    estimate = treatment.rate - control.rate
    spread = math.sqrt(treatment.variance + control.variance)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    if spread == 0:
        p_value = 1.0 if estimate == 0 else 0.0
    else:
        p_value = 2 * (1 - NormalDist().cdf(abs(estimate) / spread))
    return Difference(estimate, estimate - z * spread, estimate + z * spread, confidence, p_value)


def design_effect(rate: Rate) -> float:
    """How much the clustering of impressions by customer inflates the variance (at least 1)."""
    if rate.rate is None or rate.rate in (0.0, 1.0) or not rate.variance:
        return 1.0
    return max(1.0, rate.variance / (rate.rate * (1 - rate.rate) / rate.trials))


def trials_needed(baseline: float, relative_effect: float, *, confidence: float = 0.95, power: float = POWER, design: float = 1.0) -> int:
    """Impressions per variant to detect ``baseline`` changing by ``relative_effect`` (0.1 = 10%)."""
    changed = min(baseline * (1 + relative_effect), 1.0)
    gap = changed - baseline
    if gap <= 0 or not 0 < baseline < 1:
        raise ValueError(f"cannot size a test for a rate of {baseline} changing by {relative_effect}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2) + NormalDist().inv_cdf(power)
    return math.ceil(z * z * (baseline * (1 - baseline) + changed * (1 - changed)) * design / (gap * gap))


def comparison_confidence(variants: int, confidence: float = 0.95) -> float:
    """The confidence of each comparison with the control (Bonferroni over variants - 1)."""
    return 1 - (1 - confidence) / max(1, variants - 1)


def verdict(control_name: str, control: Rate, treatments: dict[str, tuple[Rate, Difference | None]], relative_effect: float,
            confidence: float) -> Verdict:
    """``leading`` when a difference is significant (the best variant leads; the control
    when every other is significantly worse), else ``needs N more impressions`` while a
    variant has fewer than the power estimate asks, else ``no difference yet``."""
    better = [(d.estimate, name) for name, (_, d) in treatments.items() if d is not None and d.low > 0]
    if better:
        leader = max(better)[1]
        return Verdict(LEADING, f"{leader} leading", leader)
    if treatments and all(d is not None and d.high < 0 for _, d in treatments.values()):
        return Verdict(LEADING, f"{control_name} leading", control_name)
    rates = [control] + [rate for rate, _ in treatments.values()]
    baseline = control.rate if control.rate else _pooled(rates)
    if baseline is None or not 0 < baseline < 1:
        return Verdict(NEEDS_MORE, "needs more impressions")
    design = max(design_effect(rate) for rate in rates)
    per_variant = trials_needed(baseline, relative_effect, confidence=confidence, design=design)
    missing = sum(max(0, per_variant - rate.trials) for rate in rates)
    if missing > 0:
        return Verdict(NEEDS_MORE, f"needs {missing} more impressions", None, missing)
    return Verdict(NO_DIFFERENCE, NO_DIFFERENCE)


def _pooled(rates: list[Rate]) -> float | None:
    trials = sum(rate.trials for rate in rates)
    return sum(rate.successes for rate in rates) / trials if trials else None
