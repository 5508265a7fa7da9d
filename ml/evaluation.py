"""Evaluation of a trained churn model and of the rankings built on it, on the held-out cut-off.

- churn: :func:`ml.churn.evaluate` (model vs recency-only vs BG/NBD P(no purchase));
- LTV ranking: customers who had bought by the cut-off, ranked by BG/NBD x Gamma-Gamma expected
  spend in the next horizon vs by past spend; truth = spend in the horizon. Normalised Gini,
  Spearman, share of next-period spend captured by the top 20 %;
- next-best channel: among customers who responded to a message in the horizon, how often the
  channel they responded to most is the one predicted at the cut-off, vs always the best channel;
- recommendations: among customers who bought in the horizon, the share who bought at least one of
  their top-N recommended products, vs everyone getting the N most popular products.

Everything is point-in-time: features, consents aside (latest known), and interactions up to the cut-off.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from ml import churn, ranking, recommend
from ml.features import CHANNELS, Inputs


def ltv_ranking(evaluation: pl.DataFrame) -> dict[str, dict[str, float]]:
    buyers = evaluation.filter(pl.col("orders_count") > 0)
    actual = buyers["next_period_revenue"].to_numpy().astype(float)
    predicted = (buyers["expected_purchases"] * buyers["expected_order_value"]).fill_nan(None).fill_null(0.0).to_numpy()
    past = buyers["revenue"].to_numpy().astype(float)
    out = {
        "bgnbd_gamma_gamma": ranking.ranking_report(actual, predicted),
        "past_spend": ranking.ranking_report(actual, past),
    }
    for report in out.values():
        report["customers"] = int(len(actual))
        report["customers_spending"] = int((actual > 0).sum())
    return out


def capture_curve(evaluation: pl.DataFrame, fractions=(0.05, 0.1, 0.2, 0.3, 0.5)) -> list[dict[str, float]]:
    """Share of next-period spend captured by the top x % of buyers, per ranking."""
    buyers = evaluation.filter(pl.col("orders_count") > 0)
    actual = buyers["next_period_revenue"].to_numpy().astype(float)
    predicted = (buyers["expected_purchases"] * buyers["expected_order_value"]).fill_nan(None).fill_null(0.0).to_numpy()
    past = buyers["revenue"].to_numpy().astype(float)
    return [{"top": f"{round(f * 100)}%", "bgnbd_gamma_gamma": ranking.top_share(actual, predicted, f),
             "past_spend": ranking.top_share(actual, past, f), "perfect": ranking.top_share(actual, actual, f)}
            for f in fractions]


def next_best_channel(inputs: Inputs, evaluation: pl.DataFrame, consents: pl.DataFrame, horizon_days: int) -> dict:
    cutoff = evaluation["cutoff"][0]
    predicted = recommend.next_best_channel(
        evaluation, consents.filter(pl.col("customer_id").is_in(evaluation["customer_id"].implode()))
    )
    future = recommend.response_counts(inputs.events, cutoff + timedelta(days=1), cutoff + timedelta(days=horizon_days))
    if future.height == 0:
        return {"responders": 0}
    best = np.argmax(future.select([f"{c}_responses" for c in CHANNELS]).to_numpy(), axis=1)
    future = future.with_columns(pl.Series("actual", [CHANNELS[k] for k in best], dtype=pl.String))
    joined = predicted.join(future.select("customer_id", "actual"), on="customer_id")
    shares = {c: float((joined["actual"] == c).mean()) if joined.height else 0.0 for c in CHANNELS}
    constant = max(shares, key=shares.get)
    return {
        "responders": joined.height,
        "accuracy": float((joined["next_best_channel"] == joined["actual"]).mean()) if joined.height else 0.0,
        "best_constant_channel": constant,
        "best_constant_accuracy": shares[constant],
    }


def recommendations(interactions: pl.DataFrame, inputs: Inputs, cutoff, horizon_days: int, n: int = 5,
                    category_weight: float = 2.0) -> dict:
    end = cutoff + timedelta(days=horizon_days)
    past = interactions.filter(pl.col("event_date") <= cutoff)
    future = interactions.filter((pl.col("event_date") > cutoff) & (pl.col("event_date") <= end) & (pl.col("kind") == "purchase"))
    buyers = future["customer_id"].unique().to_numpy()
    if len(buyers) == 0 or past.height == 0:
        return {"buyers": int(len(buyers))}
    similarity = recommend.fit_item_similarity(past)
    recs = recommend.recommend(past, buyers, n=n, model=similarity, category_weight=category_weight)
    top = list(similarity.items[np.lexsort((similarity.items, -similarity.popularity))][:n])
    popular = pl.DataFrame({"customer_id": buyers, "recommended_products": [top] * len(buyers)},
                           schema={"customer_id": pl.String, "recommended_products": pl.List(pl.String)})
    model = recommend.hit_rate(recs, future)
    return {"buyers": model["buyers"], f"hit_rate_at_{n}": model["hit_rate"],
            f"popular_hit_rate_at_{n}": recommend.hit_rate(popular, future)["hit_rate"]}


def evaluate_all(model, training_set: pl.DataFrame, inputs: Inputs, *, consents: pl.DataFrame,
                 interactions: pl.DataFrame, config: churn.ChurnConfig, n_recommendations: int = 5,
                 category_weight: float = 2.0) -> dict:
    train = training_set.filter(pl.col("role") == "train")
    evaluation = training_set.filter(pl.col("role") == "evaluation")
    result = churn.evaluate(model, evaluation, train, config)
    horizon = config.features.horizon_days
    cutoff = evaluation["cutoff"][0]
    return {
        "cutoff": str(cutoff),
        "horizon_days": horizon,
        "churn": result.to_dict(),
        "ltv_ranking": ltv_ranking(evaluation),
        "ltv_capture": capture_curve(evaluation),
        "next_best_channel": next_best_channel(inputs, evaluation, consents, horizon),
        "recommendations": recommendations(interactions, inputs, cutoff, horizon, n_recommendations, category_weight),
    }


def long_rows(model_version: str, report: dict) -> pl.DataFrame:
    """The headline numbers as rows for ml.model_evaluations (task, population, scorer, metric, value)."""
    rows = []
    for population, scorers in report["churn"]["metrics"].items():
        for scorer, metrics in scorers.items():
            rows += [("churn", population, scorer, m, v) for m, v in metrics.items()]
    for scorer, metrics in report["ltv_ranking"].items():
        rows += [("ltv_ranking", "buyers", scorer, m, v) for m, v in metrics.items()]
    nbc = report["next_best_channel"]
    if "accuracy" in nbc:
        rows += [("next_best_channel", "responders", "model", "accuracy", nbc["accuracy"]),
                 ("next_best_channel", "responders", f"always_{nbc['best_constant_channel']}", "accuracy", nbc["best_constant_accuracy"]),
                 ("next_best_channel", "responders", "model", "customers", nbc["responders"])]
    recs = report["recommendations"]
    for key, value in recs.items():
        scorer = "popular" if key.startswith("popular") else "model"
        rows.append(("recommendations", "buyers", scorer, key.removeprefix("popular_"), value))
    return pl.DataFrame(
        [(model_version, report["cutoff"], report["horizon_days"], *r) for r in rows],
        schema={"model_version": pl.String, "evaluation_cutoff": pl.String, "horizon_days": pl.Int32, "task": pl.String,
                "population": pl.String, "scorer": pl.String, "metric": pl.String, "value": pl.Float64},
        orient="row",
    ).with_columns(pl.col("evaluation_cutoff").str.to_date())
