"""ml.ltv: BG/NBD + Gamma-Gamma against the published CDNOW fits, simulation-based property tests, RFM summaries.

The CDNOW sample is looked up in $GOLDENTIME_CDNOW_SAMPLE, <repo>/../shared/data and <repo>/data; without it the
CDNOW tests are skipped, except under CI (CI=true) where a missing file is a failure.
"""

from __future__ import annotations

import math
import os
import pickle
from datetime import date, datetime

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import integrate, stats
from scipy.special import hyp2f1

from ml import ltv
from ml.ltv import BGNBD, GammaGamma, clv, rfm_calibration_holdout, rfm_summary, simulate_bgnbd, simulate_gamma_gamma

CDNOW = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)


def sig(value: float, digits: int = 3) -> float:
    """value rounded to `digits` significant figures."""
    return float(f"{value:.{digits}g}")


# ------------------------------------------------------------------------------------------------ CDNOW


@pytest.fixture(scope="module")
def cdnow():
    from ml import cdnow

    path = cdnow.find_cdnow_sample()
    if path is None:
        message = "CDNOW_sample.txt not found ($GOLDENTIME_CDNOW_SAMPLE, <repo>/../shared/data, <repo>/data)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " - CI requires it")
        pytest.skip(message)
    summary = cdnow.cdnow_summary(path)
    bg = BGNBD().fit(summary)
    repeat = summary.filter(pl.col("frequency") > 0)
    gg = GammaGamma().fit(repeat["frequency"], repeat["monetary_value"])
    return summary, bg, gg


def test_cdnow_summary_matches_the_paper_setup(cdnow):
    summary, _, _ = cdnow
    assert summary.height == 2357
    assert summary.filter(pl.col("frequency") > 0).height == 946
    assert summary["frequency"].sum() == 2457  # repeat transactions (purchase days) in weeks 1-39
    assert summary["T"].max() == pytest.approx(272 / 7)  # 1997-01-01 .. 1997-09-30
    assert summary["T"].min() == pytest.approx(27.0)  # the last first purchase: 1997-03-25
    assert (summary["duration_holdout"] == 39.0).all()
    assert summary["frequency_holdout"].sum() == 1882


def test_cdnow_bgnbd_reproduces_published_parameters(cdnow):
    _, bg, _ = cdnow
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert sig(bg.params_[name]) == sig(value), (name, bg.params_[name])
    assert bg.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)
    assert sig(bg.log_likelihood_) == sig(-9582.4)


def test_cdnow_gamma_gamma_reproduces_published_parameters(cdnow):
    _, _, gg = cdnow
    assert gg.n_customers_ == 946
    for name, value in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert sig(gg.params_[name]) == sig(value), (name, gg.params_[name])


def test_cdnow_holdout_forecast(cdnow):
    """Weeks 40-78: 1,882 actual repeat purchase days; BG/NBD conditional expectations sum to 1,653.4 (lifetimes
    gives the same 1,653.4); per calibration-frequency bucket the forecast rises with frequency like the actuals."""
    summary, bg, _ = cdnow
    x, tx, T = (summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    predicted = bg.conditional_expected_purchases(39.0, x, tx, T)
    assert predicted.sum() == pytest.approx(1653.4, abs=1.0)
    actual = summary["frequency_holdout"].to_numpy()
    buckets = np.minimum(x, 7)
    pred_means = [predicted[buckets == k].mean() for k in range(8)]
    act_means = [actual[buckets == k].mean() for k in range(8)]
    assert np.all(np.diff(pred_means) > 0)
    assert abs(pred_means[0] - act_means[0]) < 0.05  # 0.225 vs 0.237 for the 1,411 one-time buyers
    assert abs(pred_means[7] - act_means[7]) < 0.5  # 6.16 vs 6.36 for 7+


def test_cdnow_calibration_histogram(cdnow):
    """Paper's Figure 2: expected number of customers with k repeat purchases in weeks 1-39 vs actual."""
    summary, bg, _ = cdnow
    T = summary["T"].to_numpy()
    x = summary["frequency"].to_numpy()
    for k, tolerance in ((0, 10), (1, 25), (2, 25), (3, 5)):
        expected = bg.probability_of_n_purchases_up_to_time(T, k).sum()
        assert abs(expected - (x == k).sum()) < tolerance, k


def test_cdnow_monetary_convention_repeat_purchases_only(cdnow):
    """Including the first purchase in the mean does not reproduce p=6.25, q=3.74, gamma=15.44."""
    summary, _, gg = cdnow
    from ml.cdnow import CALIBRATION_END, load_cdnow

    days = (
        load_cdnow()
        .filter(pl.col("date") <= CALIBRATION_END)
        .group_by("customer_id", "date")
        .agg(pl.col("spend").sum())
        .group_by("customer_id")
        .agg(pl.len().alias("n"), pl.col("spend").mean().alias("mean_all"))
        .filter(pl.col("n") > 1)
    )
    other = GammaGamma().fit(days["n"] - 1, days["mean_all"])
    assert sig(other.p_) != sig(gg.p_)


def test_cdnow_clv_is_sensible(cdnow):
    summary, bg, gg = cdnow
    values = gg.clv(bg, summary, horizon=12, discount_rate=0.01, freq="W")
    assert values.shape == (2357,) and np.all(values >= 0)
    # customers who bought more often and more recently are worth more
    x, tx, T, m = (summary[c].to_numpy() for c in ("frequency", "recency", "T", "monetary_value"))
    heavy = (x >= 5) & (T - tx < 4)
    assert values[heavy].mean() > 5 * values[x == 0].mean()


# ------------------------------------------------------------------------------------------------ likelihood


def _rfm(n=5_000, seed=1, **params):
    sim = simulate_bgnbd(n, **(params or CDNOW), T=np.random.default_rng(seed).uniform(10, 39, n), seed=seed)
    return sim["frequency"].to_numpy().astype(float), sim["recency"].to_numpy(), sim["T"].to_numpy()


@pytest.mark.parametrize("weighted", [False, True])
def test_bgnbd_gradient_matches_finite_differences(weighted):
    x, tx, T = _rfm()
    w = np.random.default_rng(2).integers(1, 4, len(x)).astype(float) if weighted else None
    data = ltv._BGData(x, tx, T, w, dedupe=False)
    phi = np.log([0.3, 5.0, 0.7, 2.0])
    _, grad = data.nll(phi)
    h = 1e-6
    numeric = [(data.nll(phi + h * e)[0] - data.nll(phi - h * e)[0]) / (2 * h) for e in np.eye(4)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9)


def test_bgnbd_likelihood_equals_per_customer_formula():
    x, tx, T = _rfm()
    bg = BGNBD.from_params(0.3, 5.0, 0.7, 2.0)
    assert bg.log_likelihood(x, tx, T) == pytest.approx(bg.individual_log_likelihood(x, tx, T).sum(), rel=1e-12)


def test_weights_equal_repeated_rows():
    x, tx, T = _rfm(n=2_000)
    w = np.random.default_rng(3).integers(1, 5, len(x))
    expanded = BGNBD().fit(np.repeat(x, w), np.repeat(tx, w), np.repeat(T, w))
    weighted = BGNBD().fit(x, tx, T, weights=w)
    for k in BGNBD.param_names:
        assert weighted.params_[k] == pytest.approx(expanded.params_[k], rel=1e-5)
    assert weighted.log_likelihood_ == pytest.approx(expanded.log_likelihood_, rel=1e-10)


def test_collapsing_identical_rows_gives_the_same_fit():
    x, tx, T = _rfm(n=30_000)
    T = np.round(T * 7) / 7  # whole days: many identical rows
    tx = np.minimum(np.round(tx * 7) / 7, T)
    collapsed = BGNBD(dedupe=True).fit(x, tx, T)
    plain = BGNBD(dedupe=False).fit(x, tx, T)
    assert collapsed.n_rows_ < plain.n_rows_ / 2
    for k in BGNBD.param_names:
        assert collapsed.params_[k] == pytest.approx(plain.params_[k], rel=1e-5)
    assert collapsed.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-10)


def test_subsample_warm_start_reaches_the_full_data_optimum(monkeypatch):
    x, tx, T = _rfm(n=60_000, seed=4)
    direct = BGNBD().fit(x, tx, T)
    monkeypatch.setattr(ltv, "_WARM_START_ROWS", 10_000)
    monkeypatch.setattr(ltv, "_SUBSAMPLE_ROWS", 5_000)
    warm = BGNBD().fit(x, tx, T)
    for k in BGNBD.param_names:
        assert warm.params_[k] == pytest.approx(direct.params_[k], rel=1e-5)


@pytest.mark.parametrize("start", [dict(r=0.05, alpha=100.0, a=5.0, b=0.5), dict(r=5.0, alpha=0.1, a=0.2, b=20.0)])
def test_bgnbd_fit_does_not_depend_on_the_start(start):
    x, tx, T = _rfm(n=20_000, seed=5)
    default = BGNBD().fit(x, tx, T)
    other = BGNBD(initial_params=start).fit(x, tx, T)
    for k in BGNBD.param_names:
        assert other.params_[k] == pytest.approx(default.params_[k], rel=1e-4)


# ------------------------------------------------------------------------------------------------ recovery


@pytest.mark.parametrize(
    "params",
    [CDNOW, dict(r=1.5, alpha=20.0, a=2.5, b=8.0), dict(r=0.5, alpha=2.0, a=0.4, b=6.0)],
    ids=["cdnow", "a>1", "low-churn"],
)
def test_bgnbd_recovers_simulated_parameters(params):
    n = 200_000
    sim = simulate_bgnbd(n, **params, T=np.random.default_rng(0).uniform(20, 52, n), seed=11)
    bg = BGNBD().fit(sim)
    for k, true in params.items():
        assert bg.params_[k] == pytest.approx(true, rel=0.06), (k, bg.params_)
    # the fitted optimum is at least as likely as the truth
    assert bg.log_likelihood_ >= BGNBD.from_params(**params).log_likelihood(sim) - 1e-6


def test_gamma_gamma_recovers_simulated_parameters():
    rng = np.random.default_rng(1)
    x = rng.integers(1, 15, 40_000).astype(float)
    m = simulate_gamma_gamma(x, p=6.25, q=3.74, gamma=15.44, seed=2)
    gg = GammaGamma().fit(x, m)
    assert gg.p_ == pytest.approx(6.25, rel=0.05)
    assert gg.q_ == pytest.approx(3.74, rel=0.08)
    assert gg.gamma_ == pytest.approx(15.44, rel=0.12)


def test_gamma_gamma_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.integers(1, 15, 2_000).astype(float)
    m = simulate_gamma_gamma(x, p=6.25, q=3.74, gamma=15.44, seed=2)
    data = ltv._GGData(x, m, None)
    phi = np.log([4.0, 3.0, 10.0])
    _, grad = data.nll(phi)
    h = 1e-6
    numeric = [(data.nll(phi + h * e)[0] - data.nll(phi - h * e)[0]) / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9)


# ------------------------------------------------------------------------------------------------ predictions


@pytest.fixture
def bg():
    return BGNBD.from_params(**CDNOW)


def test_p_alive_is_one_without_repeat_purchases(bg):
    T = np.array([0.0, 1.0, 39.0, 500.0])
    np.testing.assert_array_equal(bg.p_alive(np.zeros(4), np.zeros(4), T), 1.0)


def test_p_alive_falls_with_time_since_last_purchase(bg):
    T = np.linspace(5, 100, 50)
    p = bg.p_alive(np.full(50, 3.0), np.full(50, 5.0), T)
    assert np.all((p > 0) & (p <= 1)) and np.all(np.diff(p) < 0)
    tx = np.linspace(0.1, 39, 50)
    p = bg.p_alive(np.full(50, 3.0), tx, np.full(50, 39.0))
    assert np.all(np.diff(p) > 0)
    # extreme inputs stay finite
    assert np.isfinite(bg.p_alive(np.array([5000.0]), np.array([1.0]), np.array([1e4]))).all()


def test_p_alive_matches_simulated_share_still_active(bg):
    sim = simulate_bgnbd(300_000, **CDNOW, T=39.0, seed=3)
    p = bg.p_alive(sim)
    alive = sim["alive"].to_numpy()
    for k in (1, 2, 3):
        sel = sim["frequency"].to_numpy() == k
        se = math.sqrt(0.25 / sel.sum())
        assert abs(p[sel].mean() - alive[sel].mean()) < 4 * se


def test_expected_purchases_monotone_in_t_and_zero_at_zero(bg):
    t = np.linspace(0, 500, 200)
    e = bg.expected_purchases(t)
    assert e[0] == 0.0 and np.all(np.diff(e) > 0)
    x, tx, T = np.array([0.0, 1, 4, 30]), np.array([0.0, 10, 30, 38]), np.full(4, 39.0)
    cond = bg.conditional_expected_purchases(t, x, tx, T)
    assert cond.shape == (200, 4)
    np.testing.assert_array_equal(cond[0], 0.0)
    assert np.all(np.diff(cond, axis=0) > 0)


def test_expected_purchases_match_simulation(bg):
    for t in (5.0, 39.0, 150.0):
        sim = simulate_bgnbd(300_000, **CDNOW, T=t, seed=int(t))
        freq = sim["frequency"].to_numpy()
        assert abs(bg.expected_purchases(t)[0] - freq.mean()) < 4 * freq.std() / math.sqrt(len(freq))


def test_conditional_expectation_matches_simulated_holdout(bg):
    n = 400_000
    sim = simulate_bgnbd(n, **CDNOW, T=np.random.default_rng(7).uniform(20, 39, n), seed=8, holdout=39.0)
    predicted = bg.conditional_expected_purchases(39.0, sim)
    actual = sim["frequency_holdout"].to_numpy()
    buckets = np.minimum(sim["frequency"].to_numpy(), 7)
    for k in range(8):
        sel = buckets == k
        se = actual[sel].std() / math.sqrt(sel.sum())
        assert abs(predicted[sel].mean() - actual[sel].mean()) < 4 * se, k


def test_conditional_expectation_euler_form_equals_textbook_form(bg):
    r, alpha, a, b = CDNOW.values()
    x = np.array([0.0, 1, 2, 5, 10, 20, 40])
    tx = np.where(x > 0, 20.0, 0.0)
    T = np.full(len(x), 30.0)
    for t in (1.0, 10.0, 39.0, 200.0):
        z = t / (alpha + T + t)
        textbook = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z))
        np.testing.assert_allclose(bg.conditional_expected_purchases(t, x, tx, T), textbook * bg.p_alive(x, tx, T), rtol=1e-9)


def _by_quadrature(t, x, tx, T, r, alpha, a, b):
    """Independent route: given alive, lambda ~ Gamma(r+x, alpha+T) and p ~ Beta(a, b+x) a posteriori, and
    E[purchases in t | lambda, p] = (1 - exp(-lambda p t)) / p; integrate lambda analytically and p numerically
    (over the posterior's quantiles u, p = F^-1(u), where the integrand is bounded and smooth)."""

    def f(u):
        p = stats.beta.ppf(u, a, b + x)
        if p == 0:
            return (r + x) * t / (alpha + T)
        return -np.expm1(-(r + x) * np.log1p(p * t / (alpha + T))) / p

    value, _ = integrate.quad(f, 0, 1, epsabs=0, epsrel=1e-10, limit=500)
    p_alive = 1.0 if x == 0 else 1 / (1 + a / (b + x - 1) * np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + tx))))
    return p_alive * value


@pytest.mark.parametrize("params", [CDNOW, dict(r=1.5, alpha=20.0, a=2.5, b=8.0)], ids=["a<1", "a>1"])
def test_conditional_expectation_matches_quadrature(params):
    bg = BGNBD.from_params(**params)
    for x, tx, T in ((0, 0.0, 39.0), (1, 5.0, 39.0), (7, 38.0, 39.0), (60, 30.0, 39.0), (2000, 38.99, 39.0)):
        for t in (1.0, 39.0, 300.0):
            ours = bg.conditional_expected_purchases(t, [x], [tx], [T])[0]
            assert ours == pytest.approx(_by_quadrature(t, x, tx, T, **params), rel=1e-7), (x, t)


def test_conditional_expectation_heavy_buyers_do_not_overflow(bg):
    # the textbook form overflows 2F1 here; the Euler form stays finite
    x, tx, T = np.array([500.0, 2000.0, 1e5]), np.array([38.9, 38.99, 39.0]), np.array([39.0, 39.0, 39.0])
    e = bg.conditional_expected_purchases(39.0, x, tx, T)
    assert np.all(np.isfinite(e)) and np.all(e > 0) and np.all(np.diff(e) > 0)


def test_new_customer_conditional_equals_unconditional(bg):
    t = np.array([1.0, 10.0, 100.0])
    np.testing.assert_allclose(bg.conditional_expected_purchases(t, np.zeros(1), np.zeros(1), np.zeros(1))[:, 0], bg.expected_purchases(t), rtol=1e-12)


def test_probability_of_n_purchases_is_a_distribution_with_the_right_mean(bg):
    n = np.arange(0, 5000)
    for t in (1.0, 39.0, 200.0):
        p = bg.probability_of_n_purchases_up_to_time(t, n)
        assert p.sum() == pytest.approx(1.0, abs=1e-9)
        assert (n * p).sum() == pytest.approx(bg.expected_purchases(t)[0], rel=1e-6)


def test_probability_of_no_purchase(bg):
    x, tx, T = np.array([0.0, 3.0, 3.0]), np.array([0.0, 38.0, 2.0]), np.full(3, 39.0)
    p0 = bg.conditional_probability_of_no_purchase(0.0, x, tx, T)
    np.testing.assert_allclose(p0, 1.0)
    p = bg.conditional_probability_of_no_purchase(20.0, x, tx, T)
    assert np.all((p > 0) & (p < 1))
    assert p[2] > p[1]  # the lapsed buyer is more likely to buy nothing


def test_predictions_accept_frames_and_series(bg):
    sim = simulate_bgnbd(1_000, **CDNOW, seed=1)
    a = bg.p_alive(sim)
    b = bg.p_alive(sim["frequency"], sim["recency"], sim["T"])
    c = bg.p_alive(sim.to_pandas())
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    fitted = BGNBD().fit(sim.to_pandas())
    assert fitted.r_ > 0


def test_fit_validates_inputs():
    with pytest.raises(ValueError, match="recency must be <= T"):
        BGNBD().fit([1, 2], [5.0, 1.0], [4.0, 4.0])
    with pytest.raises(ValueError, match="non-negative integers"):
        BGNBD().fit([1.5, 2], [1.0, 1.0], [4.0, 4.0])
    with pytest.raises(ValueError, match="recency must be 0 where frequency is 0"):
        BGNBD().fit([0, 2], [1.0, 1.0], [4.0, 4.0])
    with pytest.raises(KeyError):
        BGNBD().fit(pl.DataFrame({"frequency": [1]}))
    with pytest.raises(RuntimeError, match="not fitted"):
        BGNBD().p_alive([1], [1.0], [2.0])


def test_models_pickle(bg):
    clone = pickle.loads(pickle.dumps(BGNBD().fit(*_rfm(n=2_000))))
    assert clone.r_ > 0 and clone.p_alive([1], [1.0], [2.0]).shape == (1,)


# ------------------------------------------------------------------------------------------------ spend, CLV


def test_gamma_gamma_conditional_spend_shrinks_towards_the_population_mean():
    gg = GammaGamma.from_params(6.25, 3.74, 15.44)
    population = gg.conditional_expected_average_profit()
    assert population == pytest.approx(6.25 * 15.44 / 2.74)
    x = np.array([0.0, 1.0, 5.0, 50.0])
    m = np.array([0.0, 100.0, 100.0, 100.0])
    e = gg.expected_spend(x, m)
    assert e[0] == pytest.approx(population)
    assert population < e[1] < e[2] < e[3] < 100.0
    assert e[3] == pytest.approx(100.0, rel=0.02)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # tiny samples: boundary / q < 1 warnings
def test_gamma_gamma_ignores_rows_without_repeat_spend():
    x = np.array([0.0, 2, 3, 1, 4, 2, 0])
    m = np.array([0.0, 10, 12, 30, 9, 15, 0])
    gg = GammaGamma().fit(x, m)
    assert gg.n_customers_ == 5


def test_clv_discounting_and_units(bg):
    gg = GammaGamma.from_params(6.25, 3.74, 15.44)
    x, tx, T, m = np.array([0.0, 2, 6]), np.array([0.0, 30, 38]), np.full(3, 39.0), np.array([0.0, 20, 40])
    month = 365.25 / 12 / 7
    undiscounted = clv(bg, gg, x, tx, T, m, horizon=12, discount_rate=0.0)
    expected = gg.expected_spend(x, m) * bg.conditional_expected_purchases(12 * month, x, tx, T)
    np.testing.assert_allclose(undiscounted, expected, rtol=1e-10)
    discounted = clv(bg, gg, x, tx, T, m, horizon=12, discount_rate=0.01)
    assert np.all(discounted < undiscounted) and np.all(discounted > undiscounted / 1.01**12)
    np.testing.assert_array_equal(clv(bg, gg, x, tx, T, m, horizon=0), 0.0)
    # the same customers in days with alpha in days: the same CLV
    bg_days = BGNBD.from_params(CDNOW["r"], CDNOW["alpha"] * 7, CDNOW["a"], CDNOW["b"])
    in_days = clv(bg_days, gg, x, tx * 7, T * 7, m, horizon=12, discount_rate=0.01, freq="D")
    np.testing.assert_allclose(in_days, discounted, rtol=1e-10)
    # frame input through the Gamma-Gamma method
    frame = pl.DataFrame({"frequency": x, "recency": tx, "T": T, "monetary_value": m})
    np.testing.assert_allclose(gg.clv(bg, frame, horizon=12, discount_rate=0.01), discounted)


# ------------------------------------------------------------------------------------------------ RFM summaries


@pytest.fixture
def transactions():
    return pl.DataFrame(
        {
            "customer": ["a", "a", "a", "a", "b", "c", "c"],
            "ts": [
                datetime(2024, 1, 1, 9), datetime(2024, 1, 1, 18),  # same day: merged, values summed
                datetime(2024, 1, 8, 12), datetime(2024, 1, 22, 12),
                datetime(2024, 1, 15, 10),
                datetime(2024, 1, 3, 10), datetime(2024, 2, 20, 10),  # after the observation end
            ],
            "amount": [10.0, 5.0, 20.0, 40.0, 7.0, 3.0, 99.0],
        }
    )


def test_rfm_summary_weeks(transactions):
    s = rfm_summary(transactions, "customer", "ts", "amount", observation_end=date(2024, 1, 29), freq="W")
    rows = {r["customer"]: r for r in s.iter_rows(named=True)}
    assert rows["a"] == {"customer": "a", "frequency": 2, "recency": 3.0, "T": 4.0, "monetary_value": 30.0}
    assert rows["b"] == {"customer": "b", "frequency": 0, "recency": 0.0, "T": 2.0, "monetary_value": 0.0}
    assert rows["c"]["frequency"] == 0 and rows["c"]["T"] == pytest.approx(26 / 7)


def test_rfm_summary_days_dates_and_strings(transactions):
    as_dates = transactions.with_columns(pl.col("ts").dt.date())
    as_strings = transactions.with_columns(pl.col("ts").dt.strftime("%Y-%m-%d"))
    expected = rfm_summary(transactions, "customer", "ts", "amount", observation_end="2024-01-29", freq="D")
    assert expected.filter(pl.col("customer") == "a")["recency"].item() == 21.0
    for frame in (as_dates, as_strings):
        assert rfm_summary(frame, "customer", "ts", "amount", observation_end=date(2024, 1, 29), freq="D").equals(expected)
    # default observation end: the last transaction day; no value column: no monetary_value
    s = rfm_summary(transactions, "customer", "ts")
    assert "monetary_value" not in s.columns
    assert s.filter(pl.col("customer") == "c")["recency"].item() == pytest.approx(48 / 7)


def test_rfm_summary_feeds_the_models(transactions):
    s = rfm_summary(transactions, "customer", "ts", "amount", observation_end=date(2024, 1, 29))
    bg = BGNBD.from_params(**CDNOW)
    assert bg.p_alive(s).shape == (3,)


def test_rfm_calibration_holdout(transactions):
    s = rfm_calibration_holdout(
        transactions, "customer", "ts", "amount", calibration_end=date(2024, 1, 10), observation_end=date(2024, 2, 28)
    )
    rows = {r["customer"]: r for r in s.iter_rows(named=True)}
    assert set(rows) == {"a", "c"}  # b's first purchase is after the calibration end
    assert rows["a"]["frequency"] == 1 and rows["a"]["monetary_value"] == 20.0
    assert rows["a"]["frequency_holdout"] == 1 and rows["a"]["monetary_holdout"] == 40.0
    assert rows["c"]["frequency_holdout"] == 1 and rows["c"]["monetary_holdout"] == 99.0
    assert rows["a"]["duration_holdout"] == pytest.approx(49 / 7)


def test_simulation_is_consistent():
    sim = simulate_bgnbd(50_000, **CDNOW, T=np.linspace(1, 50, 50_000), seed=1, holdout=10.0)
    x, tx, T = (sim[c].to_numpy() for c in ("frequency", "recency", "T"))
    assert np.all(tx[x == 0] == 0) and np.all(tx <= T) and np.all(tx[x > 0] > 0)
    assert (sim["frequency_holdout"] >= 0).all()
    # nobody who dropped out in the calibration period buys in the holdout
    assert (sim.filter(~pl.col("alive"))["frequency_holdout"] == 0).all()
    same = simulate_bgnbd(100, **CDNOW, seed=5)
    assert same.equals(simulate_bgnbd(100, **CDNOW, seed=5))
    assert isinstance(pd.DataFrame(same.to_pandas()), pd.DataFrame)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # tiny samples: boundary / q < 1 warnings
def test_penalizer_keeps_tiny_samples_finite():
    sim = simulate_bgnbd(50, **CDNOW, T=39.0, seed=2)
    plain = BGNBD().fit(sim)
    penalized = BGNBD(penalizer_coef=0.01).fit(sim)
    assert penalized.a_ < plain.a_ and penalized.b_ < plain.b_  # shrunk towards 0
    assert penalized.log_likelihood_ <= plain.log_likelihood_
    with pytest.raises(ValueError, match="needs repeat purchases"):
        BGNBD().fit(np.zeros(10), np.zeros(10), np.full(10, 5.0))
    x = np.random.default_rng(1).integers(1, 6, 30).astype(float)
    m = simulate_gamma_gamma(x, 6.25, 3.74, 15.44, seed=3)
    with pytest.warns(RuntimeWarning, match="boundary"):
        GammaGamma().fit(x, m)
    gg = GammaGamma(penalizer_coef=0.01).fit(x, m)
    assert all(0.01 < v < 100 for v in gg.params_.values())


def test_conditional_expectation_stays_finite_when_dropout_barely_varies():
    # A small-sample fit can push a and b to ~1e5-1e6, where 2F1 overflows: the fixed-dropout limit
    # takes over, and it meets the exact formula where both can be computed.
    x, tx, T = np.array([0, 1, 3, 10.0]), np.array([0, 5, 20, 30.0]), np.full(4, 40.0)
    huge = BGNBD.from_params(r=0.5, alpha=3.0, a=5.7e5, b=1.7e6).conditional_expected_purchases(10, x, tx, T)
    assert np.all(np.isfinite(huge)) and np.all(huge > 0)
    large = BGNBD.from_params(r=0.5, alpha=3.0, a=2000.0, b=6000.0)
    exact = large.conditional_expected_purchases(10, x, tx, T)
    limit = large._expected_purchases_fixed_dropout(10, x, T) * large.p_alive(x, tx, T)
    np.testing.assert_allclose(exact, limit, rtol=1e-3)
