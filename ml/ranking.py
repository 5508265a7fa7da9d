"""Ranking metrics, value tiers, churn-risk bands and save priority (numpy only).

Metrics treat ties in the score fairly: customers with the same score are an unordered group,
so a metric is its expectation over random tie-breaking (ranking everybody by a constant gives
Gini 0 and lift 1, never a lucky order). Scores rank descending (higher = ranked first).

- :func:`normalized_gini` — Gini of the Lorenz curve of `actual` ordered by `score`, divided by the
  Gini of the perfect order (Kaggle's normalised Gini; for a 0/1 target it equals 2·AUC − 1).
- :func:`top_share` — share of the total of `actual` captured by the top `fraction` by score.
- :func:`lift_at` — rate of a 0/1 target in the top `fraction` divided by the overall rate.
- :func:`spearman` — Spearman's rank correlation (scipy, average ranks for ties).
"""

from __future__ import annotations

import math

import numpy as np


def _as_arrays(actual, score) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype=float)
    s = np.asarray(score, dtype=float)
    if a.shape != s.shape or a.ndim != 1:
        raise ValueError("actual and score must be 1-d arrays of the same length")
    if np.isnan(s).any():
        raise ValueError("score has NaN values: fill them (e.g. with the lowest rank) first")
    return a, s


def _tie_averaged(actual: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`actual` ordered by descending score, each tied group replaced by its mean; and the sorted scores."""
    order = np.argsort(-score, kind="stable")
    a, s = actual[order], score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    sizes = np.diff(np.r_[starts, len(s)])
    means = np.add.reduceat(a, starts) / sizes if len(a) else a
    return np.repeat(means, sizes), s


def gini(actual, score) -> float:
    """Unnormalised Gini (Kaggle): mean of the cumulative share of `actual` ordered by score, minus (n+1)/2n."""
    a, s = _as_arrays(actual, score)
    n = len(a)
    total = a.sum()
    if n == 0 or total == 0:
        return 0.0
    ordered, _ = _tie_averaged(a, s)
    return float(np.cumsum(ordered).sum() / total / n - (n + 1) / (2 * n))


def normalized_gini(actual, score) -> float:
    """gini(actual, score) / gini(actual, actual): 1 = perfect order, 0 = random, < 0 = worse than random."""
    best = gini(actual, actual)
    return float(gini(actual, score) / best) if best else 0.0


def top_sum(values, score, k: float) -> float:
    """Expected sum of `values` over the top k by score (ties broken at random; k may be fractional)."""
    v, s = _as_arrays(values, score)
    if k <= 0 or len(v) == 0:
        return 0.0
    ordered, _ = _tie_averaged(v, s)
    k = min(float(k), len(v))
    whole = int(math.floor(k))
    extra = ordered[whole] * (k - whole) if whole < len(v) else 0.0
    return float(ordered[:whole].sum() + extra)


def top_k(n: int, fraction: float) -> int:
    """How many customers 'the top fraction' of n is: ceil(fraction * n), at least 1."""
    return max(1, int(math.ceil(fraction * n - 1e-9)))


def top_share(actual, score, fraction: float = 0.2) -> float:
    """Share of sum(actual) held by the top `fraction` of customers by score."""
    a, _ = _as_arrays(actual, score)
    total = a.sum()
    return float(top_sum(a, score, top_k(len(a), fraction)) / total) if total else 0.0


def lift_at(y, score, fraction: float = 0.1) -> float:
    """Rate of the 0/1 target y in the top `fraction` by score / overall rate (top-decile lift at 0.1)."""
    a, _ = _as_arrays(y, score)
    rate = a.mean() if len(a) else 0.0
    if rate == 0:
        return 0.0
    k = top_k(len(a), fraction)
    return float(top_sum(a, score, k) / k / rate)


def spearman(actual, score) -> float:
    from scipy.stats import spearmanr

    a, s = _as_arrays(actual, score)
    if len(a) < 2 or np.all(a == a[0]) or np.all(s == s[0]):
        return 0.0
    return float(spearmanr(a, s).statistic)


def ranking_report(actual, score, fraction: float = 0.2) -> dict[str, float]:
    """normalized_gini, spearman and top_<fraction>_share of one ranking."""
    return {
        "normalized_gini": normalized_gini(actual, score),
        "spearman": spearman(actual, score),
        f"top_{round(fraction * 100)}pct_share": top_share(actual, score, fraction),
    }


# ---------------------------------------------------------------------------------------- tables

def lift_table(y, score, groups: int = 10) -> list[dict[str, float]]:
    """Per score decile (1 = highest scores): customers, positives, rate, lift, cumulative capture.
    Decile boundaries are by position after a stable sort on the score (descending)."""
    a, s = _as_arrays(y, score)
    n, total = len(a), a.sum()
    ordered, _ = _tie_averaged(a, s)
    edges = np.linspace(0, n, groups + 1)
    rate = total / n if n else 0.0
    rows, captured = [], 0.0
    for g in range(groups):
        lo, hi = int(round(edges[g])), int(round(edges[g + 1]))
        part = ordered[lo:hi]
        captured += part.sum()
        group_rate = part.mean() if len(part) else 0.0
        rows.append({
            "decile": g + 1, "customers": hi - lo, "positives": float(part.sum()),
            "rate": float(group_rate), "lift": float(group_rate / rate) if rate else 0.0,
            "cumulative_capture": float(captured / total) if total else 0.0,
        })
    return rows


def calibration_table(y, probability, bins: int = 10) -> list[dict[str, float]]:
    """Equal-width probability bins [0, 0.1), …, [0.9, 1]: customers, mean predicted, observed rate."""
    a, p = _as_arrays(y, probability)
    index = np.minimum((p * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        mask = index == b
        rows.append({
            "bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}",
            "customers": int(mask.sum()),
            "mean_predicted": float(p[mask].mean()) if mask.any() else None,
            "observed_rate": float(a[mask].mean()) if mask.any() else None,
        })
    return rows


def expected_calibration_error(y, probability, bins: int = 10) -> float:
    """Customer-weighted mean |observed − predicted| over the calibration bins."""
    rows = calibration_table(y, probability, bins)
    n = sum(r["customers"] for r in rows)
    return float(sum(r["customers"] * abs(r["observed_rate"] - r["mean_predicted"]) for r in rows if r["customers"]) / n) if n else 0.0


# ---------------------------------------------------------------------------------------- tiers

VALUE_TIERS = ("high", "middle", "low")
RISK_BANDS = ("low", "medium", "high")


def rank_desc(values) -> np.ndarray:
    """1 = highest value; ties share the best (minimum) rank, like SQL rank()."""
    from scipy.stats import rankdata

    v = np.asarray(values, dtype=float)
    v = np.where(np.isnan(v), -np.inf, v)
    return rankdata(-v, method="min").astype(np.int64)


def value_tiers(ltv, cuts: tuple[float, float] = (0.2, 0.5)) -> np.ndarray:
    """'high' for the top cuts[0] of the customers with a positive predicted LTV, 'middle' down to
    cuts[1], 'low' for the rest — and for everyone with no (zero or missing) predicted LTV, who would
    otherwise fill the tiers with ties. A customer's position is their rank among the positive LTVs
    (ties share the best rank), so equal LTVs share a tier."""
    v = np.nan_to_num(np.asarray(ltv, dtype=float), nan=0.0)
    positive = v > 0
    tier = np.full(len(v), "low", dtype=object)
    if positive.any():
        position = (rank_desc(v[positive]) - 1) / positive.sum()
        tier[positive] = np.where(position < cuts[0], "high", np.where(position < cuts[1], "middle", "low"))
    return tier


def churn_risk_bands(probability, thresholds: tuple[float, float] = (0.5, 0.8)) -> np.ndarray:
    """'low' below thresholds[0], 'medium' below thresholds[1], else 'high'."""
    p = np.asarray(probability, dtype=float)
    return np.where(p < thresholds[0], "low", np.where(p < thresholds[1], "medium", "high")).astype(object)


def save_priority(predicted_ltv, churn_probability) -> np.ndarray:
    """Expected value at risk: predicted LTV x churn probability (0 without an LTV)."""
    return np.nan_to_num(np.asarray(predicted_ltv, dtype=float), nan=0.0) * np.asarray(churn_probability, dtype=float)
