"""Effect statistics for experiments: Welch and delta-method intervals, Bayesian win probabilities,
sample-ratio mismatch and CUPED variance reduction.

Summaries are (n, mean, var) with `var` the sample variance (ddof = 1), so metrics of any kind
(conversion, revenue) go through the same functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

SRM_P_VALUE_THRESHOLD = 0.001
DEFAULT_DRAWS = 10_000

Summary = tuple[float, float, float]  # (n, mean, sample variance)


@dataclass(frozen=True)
class Effect:
    estimate: float
    ci_low: float
    ci_high: float
    std_error: float
    p_value: float
    df: float | None = None  # degrees of freedom when the interval uses Student's t


@dataclass(frozen=True)
class SampleRatioCheck:
    chi_squared: float
    df: int
    p_value: float
    flagged: bool
    expected_counts: dict[str, float]


def proportion_summary(n: int, conversions: int) -> Summary:
    """(n, rate, variance) of a 0/1 metric.

    The variance is the sample variance of the 0/1 values, p(1 − p)·n/(n − 1), so Welch on these
    summaries gives the same answer as Welch on the raw 0/1 rows.
    """
    if n < 2 or not 0 <= conversions <= n:
        raise ValueError("need n ≥ 2 and 0 ≤ conversions ≤ n")
    rate = conversions / n
    return (n, rate, rate * (1 - rate) * n / (n - 1))


def welch_difference(control: Summary, treatment: Summary, confidence: float = 0.95) -> Effect:
    """Absolute difference μt − μc with a Welch interval (Welch–Satterthwaite degrees of freedom)."""
    n_c, mean_c, var_c = control
    n_t, mean_t, var_t = treatment
    if n_c < 2 or n_t < 2:
        raise ValueError("each arm needs at least 2 observations")
    share_c, share_t = var_c / n_c, var_t / n_t
    std_error = float(np.sqrt(share_c + share_t))
    difference = mean_t - mean_c
    if std_error == 0:
        return Effect(difference, difference, difference, 0.0, float("nan"), None)
    df = (share_c + share_t) ** 2 / (share_c**2 / (n_c - 1) + share_t**2 / (n_t - 1))
    quantile = scipy_stats.t.ppf(0.5 + confidence / 2, df)
    p_value = 2 * scipy_stats.t.sf(abs(difference / std_error), df)
    return Effect(
        difference,
        difference - quantile * std_error,
        difference + quantile * std_error,
        std_error,
        float(p_value),
        float(df),
    )


def relative_uplift_delta(control: Summary, treatment: Summary, confidence: float = 0.95) -> Effect:
    """Relative uplift μt/μc − 1 with a delta-method normal interval.

    Var = σc²·μt²/(μc⁴·nc) + σt²/(μc²·nt): the first-order variance of the ratio of two independent
    means, which is what a relative effect needs (Welch on the difference does not carry over).
    """
    n_c, mean_c, var_c = control
    n_t, mean_t, var_t = treatment
    if mean_c == 0:
        raise ValueError("relative uplift is undefined when the control mean is 0")
    uplift = mean_t / mean_c - 1
    variance = var_c * mean_t**2 / (mean_c**4 * n_c) + var_t / (mean_c**2 * n_t)
    std_error = float(np.sqrt(variance))
    if std_error == 0:
        return Effect(uplift, uplift, uplift, 0.0, float("nan"))
    z = scipy_stats.norm.ppf(0.5 + confidence / 2)
    p_value = 2 * scipy_stats.norm.sf(abs(uplift / std_error))
    return Effect(uplift, uplift - z * std_error, uplift + z * std_error, std_error, float(p_value))


def _posterior_draws(
    arms: Mapping[str, tuple[int, int]], draws: int, seed: int | None
) -> tuple[list[str], np.ndarray]:
    names = list(arms)
    exposures = np.array([arms[name][0] for name in names], dtype=np.int64)
    conversions = np.array([arms[name][1] for name in names], dtype=np.int64)
    if (conversions < 0).any() or (conversions > exposures).any():
        raise ValueError("conversions must be between 0 and exposures for every arm")
    rng = np.random.default_rng(seed)
    samples = rng.beta(1 + conversions, 1 + exposures - conversions, size=(draws, len(names)))
    return names, samples


def probability_to_beat_control(
    control: tuple[int, int],
    treatment: tuple[int, int],
    draws: int = DEFAULT_DRAWS,
    seed: int | None = None,
) -> float:
    """P(rate_t > rate_c) from Beta(1 + conversions, 1 + failures) posteriors; args are (n, conversions)."""
    _, samples = _posterior_draws({"control": control, "treatment": treatment}, draws, seed)
    return float((samples[:, 1] > samples[:, 0]).mean())


def probability_best(
    arms: Mapping[str, tuple[int, int]], draws: int = DEFAULT_DRAWS, seed: int | None = None
) -> dict[str, float]:
    """P(arm has the highest rate) for each arm → (n, conversions), from Beta posterior draws."""
    names, samples = _posterior_draws(arms, draws, seed)
    wins = np.bincount(samples.argmax(axis=1), minlength=len(names))
    return {name: float(count / draws) for name, count in zip(names, wins)}


def sample_ratio_mismatch(
    observed_counts: Mapping[str, float],
    intended_weights: Mapping[str, float],
    threshold: float = SRM_P_VALUE_THRESHOLD,
) -> SampleRatioCheck:
    """Chi-squared goodness of fit of exposures per arm against the intended split, df = arms − 1.

    Weights are normalised, so for a bandit pass `bandit_intended_weights(rounds)` (exposure-weighted
    round weights) or any proportional quantities. Flagged when p < threshold (0.001): a mismatch
    means assignment or logging is broken and the effect estimates cannot be trusted.
    """
    arms = list(intended_weights)
    if set(observed_counts) != set(arms) or len(arms) < 2:
        raise ValueError("observed counts and intended weights must cover the same ≥ 2 arms")
    observed = np.array([observed_counts[arm] for arm in arms], dtype=np.float64)
    weights = np.array([intended_weights[arm] for arm in arms], dtype=np.float64)
    if (weights <= 0).any():
        raise ValueError("intended weights must be positive")
    expected = observed.sum() * weights / weights.sum()
    chi_squared = float(((observed - expected) ** 2 / expected).sum())
    df = len(arms) - 1
    p_value = float(scipy_stats.chi2.sf(chi_squared, df))
    return SampleRatioCheck(
        chi_squared, df, p_value, p_value < threshold, dict(zip(arms, expected.tolist()))
    )


def bandit_intended_weights(rounds: Sequence[tuple[float, Mapping[str, float]]]) -> dict[str, float]:
    """Intended split of a bandit over its life: Σ over rounds of round exposures × round weight."""
    totals: dict[str, float] = {}
    for exposures, weights in rounds:
        for arm, weight in weights.items():
            totals[arm] = totals.get(arm, 0.0) + exposures * weight
    return totals


def cuped_theta(y: np.ndarray, x: np.ndarray) -> float:
    """θ = Cov(Y, X)/Var(X) over all arms pooled, so the adjustment is the same in every arm."""
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    variance_x = np.var(x, ddof=1)
    if variance_x == 0:
        return 0.0
    return float(np.cov(y, x, ddof=1)[0, 1] / variance_x)


def cuped_adjust(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Y − θ(X − mean X) with X the pre-period value of the same metric.

    Pass the pooled rows of all arms: a per-arm θ would bias the comparison. Centring on the pooled
    mean keeps each arm's mean unbiased while the variance shrinks by a factor 1 − ρ².
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if y.shape != x.shape:
        raise ValueError("y and x must have the same shape")
    return y - cuped_theta(y, x) * (x - x.mean())
