"""Scoring: one row per customer per scoring date, written to ``ml.customer_scores``.

Columns: customer_id, scoring_date, model_version, churn_horizon_days, churn_probability,
churn_risk_band, p_alive, expected_purchases_<horizon>d, predicted_ltv, ltv_horizon_months, ltv_rank,
value_tier, save_priority, save_priority_rank, next_best_channel, recommended_products (VARCHAR[]),
lifecycle_stage, scored_at. Primary key (customer_id, scoring_date); re-scoring a date replaces it.

The features must be the ones the model was trained on: same columns and dtypes
(:func:`ml.artifacts.check_features`) and the same feature definition (``feature_set``: a hash of the
feature list and the FeatureConfig — horizon, label, BG/NBD settings). Anything else is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import polars as pl

from ml import ranking
from ml.artifacts import FeatureMismatchError, ModelArtifact, check_features
from ml.features import FEATURE_COLUMNS, FeatureConfig, Inputs, ltv_at

SCHEMA = "ml"
SCORES_TABLE = f"{SCHEMA}.customer_scores"
FEATURES_TABLE = f"{SCHEMA}.customer_features"


@dataclass(frozen=True)
class ScoringConfig:
    ltv_months: int = 3  # predicted LTV = discounted expected spend over the next N months
    discount_rate: float = 0.01  # per month
    value_tier_cuts: tuple[float, float] = (0.2, 0.5)  # high = top 20 %, middle = next 30 %, low = rest
    risk_thresholds: tuple[float, float] = (0.5, 0.8)  # churn probability: low < 0.5 <= medium < 0.8 <= high
    n_recommendations: int = 5
    category_weight: float = 2.0


def feature_config_from_dict(data: dict) -> FeatureConfig:
    from ml.features import LifecycleRules

    data = dict(data)
    rules = data.pop("lifecycle", None) or {}
    rules = {k: tuple(v) if isinstance(v, list) else v for k, v in rules.items()}
    return FeatureConfig(**data, lifecycle=LifecycleRules(**rules))


def feature_set_id(config: FeatureConfig) -> str:
    """Names the feature definition: the feature columns and every setting that changes their values."""
    payload = json.dumps({"columns": list(FEATURE_COLUMNS), "config": asdict(config)}, sort_keys=True, default=str)
    return "fs-" + hashlib.sha256(payload.encode()).hexdigest()[:12]


def check_feature_set(artifact: ModelArtifact, feature_set: str) -> None:
    trained = artifact.metadata.get("feature_set")
    if trained != feature_set:
        raise FeatureMismatchError(
            f"model {artifact.version} was trained on feature set {trained}, the features offered are {feature_set} "
            "(feature code or FeatureConfig changed): retrain the model"
        )


def score_customers(
    inputs: Inputs,
    features: pl.DataFrame,
    model,
    artifact: ModelArtifact,
    *,
    consents: pl.DataFrame,
    interactions: pl.DataFrame,
    feature_set: str,
    config: ScoringConfig = ScoringConfig(),
    scored_at: datetime | None = None,
) -> pl.DataFrame:
    """Scores for every row of `features` (one per customer, as of inputs.as_of)."""
    from ml import churn, recommend

    if features["customer_id"].n_unique() != features.height:
        raise ValueError("features hold a customer more than once")
    check_feature_set(artifact, feature_set)
    check_features(artifact, features.drop("customer_id"))
    feature_config = feature_config_from_dict(artifact.metadata["feature_config"])
    horizon = feature_config.horizon_days
    scoring_date = inputs.as_of

    probability = churn.predict(model, features)
    ltv = ltv_at(inputs.orders, scoring_date, horizon, ltv_months=config.ltv_months, discount_rate=config.discount_rate,
                 enabled=feature_config.bgnbd, min_buyers=feature_config.min_buyers_for_bgnbd,
                 spend_includes_first_purchase=feature_config.spend_includes_first_purchase)
    frame = features.select("customer_id", "p_alive", "expected_purchases", "lifecycle_stage").with_columns(
        pl.Series("churn_probability", probability, dtype=pl.Float64)
    ).join(ltv.select("customer_id", "predicted_ltv"), on="customer_id", how="left").with_columns(
        pl.col("predicted_ltv").fill_null(0.0)
    )
    predicted_ltv = frame["predicted_ltv"].to_numpy()
    priority = ranking.save_priority(predicted_ltv, probability)
    frame = frame.with_columns(
        pl.Series("churn_risk_band", ranking.churn_risk_bands(probability, config.risk_thresholds).tolist(), dtype=pl.String),
        pl.Series("ltv_rank", ranking.rank_desc(predicted_ltv), dtype=pl.Int64),
        pl.Series("value_tier", ranking.value_tiers(predicted_ltv, config.value_tier_cuts).tolist(), dtype=pl.String),
        pl.Series("save_priority", priority, dtype=pl.Float64),
        pl.Series("save_priority_rank", ranking.rank_desc(priority), dtype=pl.Int64),
    )
    customers = frame["customer_id"]
    channel = recommend.next_best_channel(features, consents.filter(pl.col("customer_id").is_in(customers.implode())))
    known = interactions.filter(pl.col("event_date") <= scoring_date)
    products = recommend.recommend(known, customers.to_numpy(), n=config.n_recommendations,
                                   category_weight=config.category_weight)
    moment = (scored_at or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    out = (
        frame.join(channel, on="customer_id", how="left")
        .join(products, on="customer_id", how="left")
        .with_columns(
            pl.lit(scoring_date, dtype=pl.Date).alias("scoring_date"),
            pl.lit(artifact.version).alias("model_version"),
            pl.lit(horizon, dtype=pl.Int32).alias("churn_horizon_days"),
            pl.lit(config.ltv_months, dtype=pl.Int32).alias("ltv_horizon_months"),
            pl.lit(moment, dtype=pl.Datetime("us")).alias("scored_at"),
        )
        .rename({"expected_purchases": f"expected_purchases_{horizon}d"})
    )
    columns = ["customer_id", "scoring_date", "model_version", "churn_horizon_days", "churn_probability",
               "churn_risk_band", "p_alive", f"expected_purchases_{horizon}d", "predicted_ltv", "ltv_horizon_months",
               "ltv_rank", "value_tier", "save_priority", "save_priority_rank", "next_best_channel",
               "recommended_products", "lifecycle_stage", "scored_at"]
    return out.select(columns).sort("customer_id")


# ---------------------------------------------------------------------------------------- DuckDB

_DUCKDB_TYPES = {
    pl.String: "VARCHAR", pl.Float64: "DOUBLE", pl.Float32: "FLOAT", pl.Int64: "BIGINT", pl.Int32: "INTEGER",
    pl.Int8: "TINYINT", pl.Boolean: "BOOLEAN", pl.Date: "DATE",
}


def _duckdb_type(dtype) -> str:
    if isinstance(dtype, pl.List):
        return _duckdb_type(dtype.inner) + "[]"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMP"
    for key, name in _DUCKDB_TYPES.items():
        if dtype == key:
            return name
    raise TypeError(f"no DuckDB type for {dtype}")


def write_scores(con, scores: pl.DataFrame, *, table: str = SCORES_TABLE) -> int:
    """Replace the scoring date(s) of `scores` in the table (created with a primary key on
    (customer_id, scoring_date) when missing; new columns are added). Returns the rows written."""
    if scores.select(pl.struct("customer_id", "scoring_date").is_duplicated().any()).item():
        raise ValueError("scores hold a customer twice for one scoring date")
    schema = table.split(".")[0]
    columns = ", ".join(f'"{name}" {_duckdb_type(dtype)}' for name, dtype in scores.schema.items())
    con.execute(f"create schema if not exists {schema}")
    con.execute(f"create table if not exists {table} ({columns}, primary key (customer_id, scoring_date))")
    existing = {row[0] for row in con.sql(f"select column_name from (describe {table})").fetchall()}
    for name, dtype in scores.schema.items():
        if name not in existing:
            con.execute(f'alter table {table} add column "{name}" {_duckdb_type(dtype)}')
    dates = scores["scoring_date"].unique().to_list()
    con.register("_scores_to_write", scores.to_arrow())
    try:
        con.execute("begin transaction")
        con.execute(f"delete from {table} where scoring_date in (select unnest(?::date[]))", [dates])
        con.execute(f"insert into {table} by name select * from _scores_to_write")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("_scores_to_write")
    return scores.height


def write_table(con, frame: pl.DataFrame, table: str) -> int:
    """create or replace `table` with the rows of `frame`."""
    con.execute(f"create schema if not exists {table.split('.')[0]}")
    con.register("_frame_to_write", frame.to_arrow())
    try:
        con.execute(f"create or replace table {table} as select * from _frame_to_write")
    finally:
        con.unregister("_frame_to_write")
    return frame.height


def read_table(con, table: str) -> pl.DataFrame:
    return con.sql(f"select * from {table}").pl()
