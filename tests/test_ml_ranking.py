"""ml.ranking: metrics on fixed arrays checked against hand computations, scipy and scikit-learn;
value tiers, risk bands, save priority; next-best channel and product recommendations (ml.recommend)."""

from datetime import date

import numpy as np
import polars as pl
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from ml import ranking, recommend

ACTUAL = np.array([5.0, 0.0, 3.0, 1.0])


def test_normalized_gini_matches_a_hand_computation():
    # ordered by the score: 0, 3, 1, 5 -> cumulative shares 0/9, 3/9, 4/9, 9/9 -> sum 16/9
    # gini = 16/9/4 - (4+1)/(2*4) = -13/72; the perfect order 5, 3, 1, 0 gives 31/9/4 - 5/8 = 17/72
    score = np.array([0.1, 0.9, 0.5, 0.4])
    assert ranking.gini(ACTUAL, score) == pytest.approx(-13 / 72)
    assert ranking.gini(ACTUAL, ACTUAL) == pytest.approx(17 / 72)
    assert ranking.normalized_gini(ACTUAL, score) == pytest.approx(-13 / 17)
    assert ranking.normalized_gini(ACTUAL, np.array([0.9, 0.1, 0.5, 0.4])) == pytest.approx(1.0)


def test_normalized_gini_of_a_binary_target_is_2auc_minus_1_even_with_ties():
    rng = np.random.default_rng(7)
    y = (rng.random(500) < 0.3).astype(int)
    score = np.round(rng.random(500) + 0.4 * y, 1)  # heavy ties
    assert ranking.normalized_gini(y, score) == pytest.approx(2 * roc_auc_score(y, score) - 1, abs=1e-12)


def test_ties_are_averaged_so_a_constant_score_is_random():
    constant = np.ones(4)
    assert ranking.normalized_gini(ACTUAL, constant) == pytest.approx(0.0)
    assert ranking.top_share(ACTUAL, constant, 0.25) == pytest.approx(0.25)
    assert ranking.lift_at(np.array([1, 0, 0, 0]), constant, 0.25) == pytest.approx(1.0)
    # a tie at the boundary: the top customer is one of {4, 0} -> expected 2 of 8
    assert ranking.top_share([4, 0, 2, 2], [1, 1, 0, 0], 0.25) == pytest.approx(0.25)


def test_top_share_and_lift_by_hand():
    actual = [10, 0, 5, 5, 0]
    score = [5, 4, 3, 2, 1]
    assert ranking.top_share(actual, score, 0.2) == pytest.approx(0.5)  # top 1 holds 10 of 20
    assert ranking.top_share(actual, score, 0.4) == pytest.approx(0.5)
    assert ranking.top_share(actual, score, 0.6) == pytest.approx(0.75)
    y = [1, 1, 0, 0, 1, 0, 0, 0, 0, 0]  # rate 0.3
    order = list(range(10, 0, -1))
    assert ranking.lift_at(y, order, 0.1) == pytest.approx(1 / 0.3)
    assert ranking.lift_at(y, order, 0.2) == pytest.approx(1 / 0.3)
    assert ranking.lift_at(y, order, 0.5) == pytest.approx((3 / 5) / 0.3)
    assert ranking.top_k(10, 0.1) == 1 and ranking.top_k(7, 0.2) == 2 and ranking.top_k(3, 0.01) == 1


def test_spearman_matches_scipy_and_the_rank_formula():
    actual, score = [1, 2, 3, 4, 5], [5, 6, 7, 8, 7]
    # ranks of score with ties averaged: 1, 2, 3.5, 5, 3.5 -> Pearson with 1..5
    r_score = np.array([1, 2, 3.5, 5, 3.5])
    hand = np.corrcoef(np.arange(1, 6), r_score)[0, 1]
    assert ranking.spearman(actual, score) == pytest.approx(hand)
    assert ranking.spearman(actual, score) == pytest.approx(spearmanr(actual, score).statistic)
    assert hand == pytest.approx(0.8207826816681233)


def test_ranking_report_keys():
    assert set(ranking.ranking_report(ACTUAL, ACTUAL)) == {"normalized_gini", "spearman", "top_20pct_share"}


def test_lift_and_calibration_tables():
    y = np.array([1, 1, 1, 0, 1, 0, 0, 1, 0, 0])
    score = np.arange(10, 0, -1) / 10  # 1.0, 0.9, ... 0.1
    rows = ranking.lift_table(y, score, groups=5)
    assert [r["customers"] for r in rows] == [2] * 5
    assert [r["rate"] for r in rows] == [1.0, 0.5, 0.5, 0.5, 0.0]
    assert rows[0]["lift"] == pytest.approx(2.0)
    assert [round(r["cumulative_capture"], 2) for r in rows] == [0.4, 0.6, 0.8, 1.0, 1.0]
    calibration = ranking.calibration_table([1, 0, 1, 1], [0.05, 0.15, 0.95, 1.0], bins=10)
    assert calibration[0] == {"bin": "0.0-0.1", "customers": 1, "mean_predicted": 0.05, "observed_rate": 1.0}
    assert calibration[9]["customers"] == 2 and calibration[9]["observed_rate"] == 1.0
    assert calibration[5]["customers"] == 0 and calibration[5]["mean_predicted"] is None
    # ECE: (1 * |1 - .05| + 1 * |0 - .15| + 2 * |1 - .975|) / 4
    assert ranking.expected_calibration_error([1, 0, 1, 1], [0.05, 0.15, 0.95, 1.0]) == pytest.approx((0.95 + 0.15 + 0.05) / 4)


def test_value_tiers_rank_only_positive_ltv_and_keep_ties_together():
    ltv = [100, 90, 80, 70, 60, 50, 40, 30, 20, 10, 0, np.nan]
    tiers = ranking.value_tiers(ltv, (0.2, 0.5)).tolist()
    assert tiers == ["high"] * 2 + ["middle"] * 3 + ["low"] * 7
    tied = ranking.value_tiers([5, 5, 5, 1, 1], (0.2, 0.5)).tolist()
    assert tied == ["high", "high", "high", "low", "low"]  # ties share the best rank
    assert ranking.rank_desc([3, 5, 5, 1, np.nan]).tolist() == [3, 1, 1, 4, 5]


def test_risk_bands_and_save_priority():
    assert ranking.churn_risk_bands([0.1, 0.5, 0.79, 0.8, 1.0]).tolist() == ["low", "medium", "medium", "high", "high"]
    assert ranking.save_priority([1000, np.nan, 50], [0.5, 0.9, 1.0]).tolist() == [500.0, 0.0, 50.0]


def test_metrics_refuse_missing_scores():
    with pytest.raises(ValueError, match="NaN"):
        ranking.normalized_gini([1, 2], [np.nan, 1])


# ---------------------------------------------------------------------------------------- ml.recommend

def _interactions(rows):
    return pl.DataFrame(rows, schema=["customer_id", "product_id", "category", "event_date", "kind"], orient="row")


D = date(2026, 2, 1)
INTERACTIONS = _interactions([
    ("c1", "A", "food", D, "purchase"), ("c1", "B", "food", D, "purchase"),
    ("c2", "A", "food", D, "purchase"), ("c2", "B", "food", D, "purchase"),
    ("c3", "A", "food", D, "purchase"), ("c3", "C", "toys", D, "view"),
    ("c4", "C", "toys", D, "view"), ("c4", "D", "toys", D, "add"),
    ("c5", "D", "toys", D, "purchase"),
])


def test_item_similarity_is_cosine_over_customers():
    sim = recommend.fit_item_similarity(INTERACTIONS)
    assert sim.items.tolist() == ["A", "B", "C", "D"]
    # A: c1 c2 c3, B: c1 c2 -> 2 / sqrt(3 * 2); C: c3 c4, D: c4 c5 -> 1 / 2; A-C: c3 -> 1 / sqrt(3 * 2)
    assert sim.similarity[0, 1] == pytest.approx(2 / np.sqrt(6))
    assert sim.similarity[2, 3] == pytest.approx(0.5)
    assert sim.similarity[0, 2] == pytest.approx(1 / np.sqrt(6))
    assert np.diag(sim.similarity).tolist() == [0, 0, 0, 0]
    # weighted popularity: A 3 purchases = 9, B 6, C 2 views = 2, D add 2 + purchase 3 = 5
    assert sim.popularity.tolist() == [9.0, 6.0, 2.0, 5.0]


def test_recommendations_exclude_purchases_and_fall_back_to_popular_items():
    recs = recommend.recommend(INTERACTIONS, ["c3", "c1", "new"], n=3, category_weight=0.0)
    by_customer = dict(recs.iter_rows())
    assert by_customer["c3"][0] == "B"  # bought with A by c1 and c2
    assert "A" not in by_customer["c3"]  # already bought
    assert by_customer["c1"] == ["C", "D"]  # C co-occurs with A; D from the popularity fallback; nothing else left
    assert by_customer["new"] == ["A", "B", "D"]  # nothing known: the most popular
    assert recs.height == 3 and recs.schema["recommended_products"] == pl.List(pl.String)


def test_hit_rate_counts_buyers_who_bought_a_recommended_item():
    recs = pl.DataFrame({"customer_id": ["c1", "c2"], "recommended_products": [["X", "Y"], ["Z"]]})
    future = pl.DataFrame({"customer_id": ["c1", "c2", "c3"], "product_id": ["Y", "Q", "X"]})
    assert recommend.hit_rate(recs, future) == {"buyers": 3, "hit_rate": pytest.approx(1 / 3)}


def test_next_best_channel_prefers_the_consented_channel_the_customer_responds_to():
    responses = pl.DataFrame({
        "customer_id": ["a", "b", "c", "d"],
        "email_responses": [0.0, 5.0, 0.0, 0.0], "push_responses": [3.0, 0.0, 0.0, 0.0], "kakao_responses": [1.0, 0.0, 0.0, 9.0],
    })
    consents = pl.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e"],
        "consent_email": [True, True, True, False, False], "consent_push": [True, True, False, False, False],
        "consent_kakao": [True, True, True, False, False],
    })
    priors = {"email": 0.5, "push": 0.2, "kakao": 0.4}
    out = dict(recommend.next_best_channel(responses, consents, priors).iter_rows())
    assert out == {"a": "push", "b": "email", "c": "email", "d": None, "e": None}
    # priors: mean responses per consented customer (a, b, c consented to email: 0, 5, 0)
    assert recommend.channel_priors(responses, consents)["email"] == pytest.approx(5 / 3)
