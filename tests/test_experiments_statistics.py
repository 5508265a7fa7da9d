import numpy as np
import pytest
from scipy import stats

from activations.experiments.statistics import (
    bandit_intended_weights,
    cuped_adjust,
    cuped_theta,
    probability_best,
    probability_to_beat_control,
    proportion_summary,
    relative_uplift_delta,
    sample_ratio_mismatch,
    welch_difference,
)

CONTROL = np.array([12.0, 15.5, 9.0, 22.1, 14.3, 11.8, 17.6, 13.2, 10.4, 19.9, 16.0, 8.7])
TREATMENT = np.array([18.2, 14.9, 25.3, 21.0, 16.7, 30.2, 19.5, 22.8, 17.1, 27.4])


def _summary(values):
    return (len(values), values.mean(), values.var(ddof=1))


def test_welch_matches_scipy_ttest_ind():
    effect = welch_difference(_summary(CONTROL), _summary(TREATMENT))
    reference = stats.ttest_ind(TREATMENT, CONTROL, equal_var=False)
    assert effect.estimate == pytest.approx(TREATMENT.mean() - CONTROL.mean())
    assert effect.estimate / effect.std_error == pytest.approx(reference.statistic)
    assert effect.df == pytest.approx(reference.df)
    assert effect.p_value == pytest.approx(reference.pvalue)
    interval = reference.confidence_interval(0.95)
    assert (effect.ci_low, effect.ci_high) == pytest.approx((interval.low, interval.high))


def test_welch_on_proportion_summaries_equals_welch_on_raw_rows():
    control_rows = np.r_[np.ones(30), np.zeros(170)]
    treatment_rows = np.r_[np.ones(45), np.zeros(155)]
    effect = welch_difference(proportion_summary(200, 30), proportion_summary(200, 45))
    reference = stats.ttest_ind(treatment_rows, control_rows, equal_var=False)
    assert effect.estimate == pytest.approx(0.075)
    assert effect.p_value == pytest.approx(reference.pvalue)
    interval = reference.confidence_interval(0.95)
    assert (effect.ci_low, effect.ci_high) == pytest.approx((interval.low, interval.high))


def test_relative_uplift_delta_method_hand_computation():
    control = (1000, 10.0, 25.0)
    treatment = (1200, 11.0, 36.0)
    # Var = σc²·μt²/(μc⁴·nc) + σt²/(μc²·nt) = 25·121/(10000·1000) + 36/(100·1200)
    #     = 0.0003025 + 0.0003 = 0.0006025
    effect = relative_uplift_delta(control, treatment)
    std_error = 0.0006025**0.5
    assert effect.estimate == pytest.approx(0.1)
    assert effect.std_error == pytest.approx(std_error)
    assert effect.ci_low == pytest.approx(0.1 - 1.959963984540054 * std_error)
    assert effect.ci_high == pytest.approx(0.1 + 1.959963984540054 * std_error)


def test_srm_matches_scipy_chisquare_and_flags():
    observed = {"holdout": 520, "control": 4800, "email": 4680}
    weights = {"holdout": 0.05, "control": 0.475, "email": 0.475}
    check = sample_ratio_mismatch(observed, weights)
    reference = stats.chisquare([520, 4800, 4680], [500, 4750, 4750])
    assert check.chi_squared == pytest.approx(reference.statistic)
    assert check.p_value == pytest.approx(reference.pvalue)
    assert check.df == 2
    assert not check.flagged

    broken = sample_ratio_mismatch({"control": 5300, "email": 4700}, {"control": 0.5, "email": 0.5})
    assert broken.p_value == pytest.approx(stats.chisquare([5300, 4700]).pvalue)
    assert broken.flagged


def test_bandit_intended_weights_sum_round_exposures_times_weights():
    rounds = [(1000, {"a": 0.5, "b": 0.5}), (2000, {"a": 0.2, "b": 0.8})]
    assert bandit_intended_weights(rounds) == pytest.approx({"a": 900.0, "b": 2100.0})
    check = sample_ratio_mismatch({"a": 900, "b": 2100}, bandit_intended_weights(rounds))
    assert check.chi_squared == pytest.approx(0.0)


def test_probabilities_from_posteriors_are_seeded_and_sensible():
    beat = probability_to_beat_control((1000, 100), (1000, 150), seed=11)
    assert beat == probability_to_beat_control((1000, 100), (1000, 150), seed=11)
    assert beat > 0.99
    assert probability_to_beat_control((1000, 100), (1000, 100), seed=11) == pytest.approx(0.5, abs=0.03)

    best = probability_best({"a": (1000, 100), "b": (1000, 150), "c": (1000, 90)}, seed=5)
    assert sum(best.values()) == pytest.approx(1.0)
    assert max(best, key=best.get) == "b"


def test_cuped_reduces_variance_and_keeps_the_mean():
    rng = np.random.default_rng(42)
    pre = rng.normal(100, 20, size=5000)
    post = 0.8 * pre + rng.normal(0, 8, size=5000)
    adjusted = cuped_adjust(post, pre)
    assert cuped_theta(post, pre) == pytest.approx(np.cov(post, pre)[0, 1] / np.var(pre, ddof=1))
    assert adjusted.mean() == pytest.approx(post.mean())
    assert adjusted.var() < 0.3 * post.var()
