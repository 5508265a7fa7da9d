"""ml.features / ml.churn / ml.artifacts / ml.scoring on hand-made and small simulated marts.

No dbt here: the marts tables are written directly (only the columns ml/ reads), and a contract test
checks those columns against the dbt models' YAML, so the two cannot drift apart silently.
`synthetic_marts` is also used by tests/test_ml_dagster.py.
"""

import json
import pickle
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
import yaml

from ml import artifacts, churn, features, scoring
from ml.features import FeatureConfig, Inputs

REPO = Path(__file__).resolve().parent.parent
START = date(2026, 1, 1)
CHANNELS = ("email", "push", "kakao")
MESSAGE_EVENT = {"email": "Email Opened", "push": "Push Opened", "kakao": "Kakao Clicked"}


# ---------------------------------------------------------------------------------------- data

def synthetic_marts(n: int = 400, days: int = 60, seed: int = 0) -> dict[str, pl.DataFrame]:
    """A small shop with churn: members buy as a Poisson process and drop out after a purchase
    (BG/NBD-like); browsing and message responses fade after they drop out. marts-shaped frames."""
    rng = np.random.default_rng(seed)
    t0 = datetime(START.year, START.month, START.day)
    customers, orders, sessions, events = [], [], [], []
    products = [(f"P{k:02d}", ("food", "toys", "pets", "books")[k % 4]) for k in range(20)]
    for i in range(n):
        member = rng.random() < 0.6
        cid = f"m{i:04d}" if member else f"anon:{i:04d}"
        first = int(rng.integers(0, days - 5))
        signed = first + int(rng.integers(0, 3)) if member else None
        fav = CHANNELS[rng.integers(0, 3)]
        consent = {c: bool(member and (c == fav or rng.random() < 0.5)) for c in CHANNELS}
        customers.append({"customer_id": cid, "first_seen_at": t0 + timedelta(days=first, hours=9),
                          "signed_up_at": t0 + timedelta(days=signed, hours=10) if member else None,
                          **{f"consent_{c}": consent[c] if member else None for c in CHANNELS}})
        end_active = days
        channel = ("direct", "paid_social", "organic_search")[i % 3]
        sessions.append((cid, first, channel))
        if member and rng.random() < 0.7:
            rate, drop, nu = rng.gamma(1.5, 0.05), rng.beta(1.0, 2.5), rng.gamma(3.0, 2000.0)
            t = float(signed) + rng.random()
            k = 0
            while t < days:
                k += 1
                status = "refunded" if rng.random() < 0.05 else "completed"
                product, category = products[int(rng.integers(0, 20))]
                oid = f"o{i:04d}-{k}"
                day = int(t)
                orders.append({"customer_id": cid, "order_id": oid, "ordered_at": t0 + timedelta(days=t),
                               "ordered_date": START + timedelta(days=day), "status": status,
                               "revenue": float(round(rng.gamma(6.0, nu), -2) + 900),
                               "first_landing_date": START + timedelta(days=day),
                               "status_landing_date": START + timedelta(days=day + (3 if status == "refunded" else 0))})
                sessions.append((cid, day, "direct"))
                events.append((cid, "Order Completed", day, None, None, None,
                               json.dumps({"order_id": oid, "products": [{"product_id": product, "category": category}]})))
                if rng.random() < drop:
                    end_active = day
                    break
                t += rng.exponential(1 / rate)
        for day in range(first + 1, days):
            active = day <= end_active
            if rng.random() < (0.08 if active else 0.01):
                sessions.append((cid, day, "organic_search"))
                product, category = products[int(rng.integers(0, 20))]
                events.append((cid, "Product Viewed", day, product, category, None, None))
            if member and day >= signed and day % 3 == 0:
                for c in CHANNELS:
                    p = (0.35 if c == fav else 0.05) * (1.0 if active else 0.25)
                    if consent[c] and rng.random() < p:
                        events.append((cid, MESSAGE_EVENT[c], day, None, None, f"cmp_{c}_{day}", None))
    return {
        "dim_customers": pl.DataFrame(customers).with_columns(pl.lit(START + timedelta(days=days - 1)).alias("as_of_date")),
        "fct_orders": pl.DataFrame(orders),
        "fct_sessions": pl.DataFrame(
            [{"customer_id": c, "session_date": START + timedelta(days=d), "started_at": t0 + timedelta(days=d, hours=12, minutes=k % 60),
              "duration_seconds": 60.0 * (1 + k % 7), "page_view_count": 1 + k % 5, "is_bounce": k % 5 == 0, "channel": ch}
             for k, (c, d, ch) in enumerate(sessions)]),
        "fct_events": pl.DataFrame(events, schema=["customer_id", "event_name", "d", "product_id", "category",
                                                   "message_campaign_id", "properties"], orient="row")
        .with_columns((pl.lit(START) + pl.duration(days=pl.col("d"))).alias("event_date")).drop("d"),
    }


def write_marts(con, frames: dict[str, pl.DataFrame]) -> None:
    con.execute("create schema if not exists marts")
    for name, frame in frames.items():
        con.register("_f", frame.to_arrow())
        con.execute(f"create or replace table marts.{name} as select * from _f")
        con.unregister("_f")
    con.execute("alter table marts.fct_orders alter revenue type decimal(18, 2)")


@pytest.fixture(scope="module")
def marts():
    return synthetic_marts()


@pytest.fixture(scope="module")
def inputs(marts) -> Inputs:
    con = duckdb.connect()
    write_marts(con, marts)
    loaded = features.load_inputs(con)
    con.close()
    return loaded


def hand_inputs() -> Inputs:
    """One member and one late visitor, dated around a cut-off of 2026-01-20."""
    d = lambda day: date(2026, 1, day)  # noqa: E731
    ts = lambda day, hour=12: datetime(2026, 1, day, hour)  # noqa: E731
    customers = pl.DataFrame({"customer_id": ["m1", "v1"], "first_seen_date": [d(1), d(21)], "signed_up_date": [d(2), None]})
    orders = pl.DataFrame({
        "customer_id": ["m1"] * 5, "order_id": ["o1", "o2", "o3", "o4", "o5"],
        "ordered_at": [ts(5), ts(10), ts(12), ts(25), ts(8)], "ordered_date": [d(5), d(10), d(12), d(25), d(8)],
        "status": ["completed", "refunded", "cancelled", "completed", "cancelled"],
        "revenue": [10000.0, 20000.0, 7000.0, 5000.0, 3000.0],
        "first_landing_date": [d(5), d(10), d(12), d(25), d(8)],
        "status_landing_date": [d(5), d(25), d(12), d(25), d(22)],  # o2's refund arrives on the 25th
    })  # o3 was exported cancelled; o5 arrived completed and was cancelled on the 22nd
    sessions = pl.DataFrame({
        "customer_id": ["m1", "m1", "m1", "v1"], "session_date": [d(1), d(19), d(22), d(21)],
        "started_at": [ts(1), ts(19), ts(22), ts(21)], "duration_seconds": [60.0, 120.0, 30.0, 10.0],
        "page_view_count": [3, 5, 1, 1], "is_bounce": [False, False, True, True],
        "channel": ["paid_social", "email", "direct", "direct"],
    })
    events = pl.DataFrame({
        "customer_id": ["m1", "m1", "m1", "m1", "m1"],
        "event_name": ["Email Opened", "Email Clicked", "Product Added", "Push Opened", "Product Viewed"],
        "event_date": [d(15), d(15), d(19), d(21), d(19)],
        "product_id": [None, None, "P1", None, "P1"], "category": [None, None, "food", None, "food"],
        "message_campaign_id": ["cmp1", "cmp1", None, "cmp2", None],
    })
    return Inputs(customers=customers, orders=orders, sessions=sessions, events=events, as_of=d(31), data_end=d(31))


NO_BGNBD = FeatureConfig(bgnbd=False, horizon_days=7)


# ---------------------------------------------------------------------------------------- features

def test_features_at_a_cutoff_see_only_what_was_known_then():
    row = features.build_features(hand_inputs(), date(2026, 1, 20), NO_BGNBD).row(0, named=True)
    assert row["customer_id"] == "m1"
    # o1, o5 (cancelled only on the 22nd) and o2 (refunded only on the 25th); o3 cancelled; o4 later
    assert (row["orders_count"], row["revenue"], row["average_order_value"]) == (3.0, 33000.0, 11000.0)
    assert (row["days_since_last_order"], row["days_since_first_order"], row["mean_days_between_orders"]) == (10.0, 15.0, 2.5)
    assert (row["cancelled_orders_count"], row["refunded_orders_count"]) == (1.0, 0.0)
    assert (row["sessions_count"], row["sessions_last_7d"], row["days_since_last_session"]) == (2.0, 1.0, 1.0)
    assert row["acquisition_channel"] == "paid_social"  # the first session's channel
    assert (row["email_responses"], row["push_responses"], row["message_responses_count"]) == (1.0, 0.0, 2.0)
    assert (row["cart_adds_14d"], row["cart_abandoned_7d"], row["product_views_14d"]) == (1.0, 1.0, 1.0)
    assert (row["is_member"], row["tenure_days"], row["days_since_signup"]) == (True, 19.0, 18.0)
    assert row["lifecycle_stage"] == "repeat_loyal"
    assert row["p_alive"] is None  # BG/NBD off


def test_a_refund_counts_from_the_day_it_arrives():
    row = features.build_features(hand_inputs(), date(2026, 1, 26), NO_BGNBD).row(0, named=True)
    assert (row["orders_count"], row["revenue"], row["refunded_orders_count"]) == (2.0, 15000.0, 1.0)  # o1 + o4
    assert features.build_features(hand_inputs().restrict_to(date(2026, 1, 20)), date(2026, 1, 20), NO_BGNBD).equals(
        features.build_features(hand_inputs(), date(2026, 1, 20), NO_BGNBD))


def test_rows_dated_after_the_cutoff_change_nothing(inputs):
    cutoff = date(2026, 2, 1)
    config = FeatureConfig()
    full = features.build_features(inputs, cutoff, config)
    known_then = features.build_features(inputs.restrict_to(cutoff), cutoff, config)
    assert full.equals(known_then)
    assert full["p_alive"].null_count() < full.height  # BG/NBD was fitted
    assert full["customer_id"].is_unique().all()


def test_labels_look_only_at_the_window():
    labels = features.build_labels(hand_inputs(), date(2026, 1, 20), FeatureConfig(horizon_days=7)).row(0, named=True)
    assert labels == {"customer_id": "m1", "churned": 0, "next_period_revenue": 5000.0}  # o4 on the 25th
    short = features.build_labels(hand_inputs(), date(2026, 1, 20), FeatureConfig(horizon_days=3))
    assert short["churned"].to_list() == [1]  # nothing bought 21-23 January
    activity = features.build_labels(hand_inputs(), date(2026, 1, 20), FeatureConfig(horizon_days=3, label="no_activity"))
    assert activity["churned"].to_list() == [0]  # but a visit on the 22nd
    with pytest.raises(ValueError, match="ends after the data"):
        features.build_labels(hand_inputs(), date(2026, 1, 28), FeatureConfig(horizon_days=7))


def test_rfm_merges_same_day_purchases():
    orders = pl.DataFrame({
        "customer_id": ["a", "a", "a", "b"], "order_id": ["1", "2", "3", "4"],
        "ordered_at": [datetime(2026, 1, d) for d in (1, 1, 11, 5)],
        "ordered_date": [date(2026, 1, d) for d in (1, 1, 11, 5)],
        "status": ["completed"] * 4, "revenue": [100.0, 50.0, 30.0, 80.0],
        "first_landing_date": [date(2026, 1, d) for d in (1, 1, 11, 5)],
        "status_landing_date": [date(2026, 1, d) for d in (1, 1, 11, 5)],
    })
    rfm = features.rfm_at(orders, date(2026, 1, 21)).to_dicts()
    assert rfm == [
        {"customer_id": "a", "frequency": 1.0, "recency": 10.0, "T": 20.0, "monetary_value": 30.0,
         "purchase_days": 2.0, "mean_day_spend": 90.0},
        {"customer_id": "b", "frequency": 0.0, "recency": 0.0, "T": 16.0, "monetary_value": 0.0,
         "purchase_days": 1.0, "mean_day_spend": 80.0},
    ]


def test_bgnbd_probability_of_no_purchase():
    from ml.ltv import BGNBD

    bg = BGNBD.from_params(r=0.5, alpha=10.0, a=0.8, b=2.5)
    # a customer who just bought: cannot have dropped out yet -> P(no purchase in t) = (alpha / (alpha + t))^r
    assert features.prob_no_purchase(bg, 14, np.array([0.0]), np.array([0.0]), np.array([0.0]))[0] == pytest.approx(
        (10 / 24) ** 0.5)
    assert features.prob_no_purchase(bg, 14, np.array([0.0]), np.array([0.0]), np.array([0.0]))[0] == pytest.approx(
        float(bg.probability_of_n_purchases_up_to_time(14, 0)))
    x, tx, T = np.array([3.0]), np.array([5.0]), np.array([40.0])
    p_alive = bg.p_alive(x, tx, T)[0]
    expected = (1 - p_alive) + p_alive * ((10 + 40) / (10 + 40 + 14)) ** (0.5 + 3)
    assert features.prob_no_purchase(bg, 14, x, tx, T)[0] == pytest.approx(expected)


def test_cutoff_plan_for_60_days_of_data():
    plan = features.plan_cutoffs(date(2026, 1, 1), date(2026, 3, 1), horizon_days=14, n_train=8, step_days=7,
                                 min_history_days=14)
    assert plan.evaluation == date(2026, 2, 15)
    assert plan.train == (date(2026, 1, 18), date(2026, 1, 25), date(2026, 2, 1))  # 2026-01-11 has < 14 days
    assert max(plan.train) + timedelta(days=14) <= plan.evaluation  # no training label inside the evaluation window
    assert plan.scoring == date(2026, 3, 1)
    with pytest.raises(ValueError, match="too short"):
        features.plan_cutoffs(date(2026, 1, 1), date(2026, 1, 30), horizon_days=14)


def test_loaded_columns_exist_in_the_dbt_marts_with_these_types():
    """The columns ml/ reads must exist in the dbt models' contracts (and the test tables mirror them)."""
    read = {
        "dim_customers": {"customer_id": "varchar", "first_seen_at": "timestamp", "signed_up_at": "timestamp",
                          "as_of_date": "date", "consent_email": "boolean", "consent_push": "boolean", "consent_kakao": "boolean"},
        "fct_orders": {"customer_id": "varchar", "order_id": "varchar", "ordered_at": "timestamp", "ordered_date": "date",
                       "status": "varchar", "revenue": "decimal(18,2)", "first_landing_date": "date",
                       "status_landing_date": "date"},
        "fct_sessions": {"customer_id": "varchar", "session_date": "date", "duration_seconds": "bigint",
                         "page_view_count": "bigint", "is_bounce": "boolean", "channel": "varchar", "started_at": "timestamp"},
        "fct_events": {"customer_id": "varchar", "event_name": "varchar", "event_date": "date", "product_id": "varchar",
                       "category": "varchar", "message_campaign_id": "varchar", "properties": "varchar"},
    }
    for model, columns in read.items():
        spec = yaml.safe_load((REPO / "dbt_project/models/marts/core" / f"{model}.yml").read_text())
        [entry] = [m for m in spec["models"] if m["name"] == model]
        types = {c["name"]: c.get("data_type") for c in entry["columns"]}
        for column, data_type in columns.items():
            assert types.get(column) == data_type, f"{model}.{column}"


# ---------------------------------------------------------------------------------------- model

FAST = churn.ChurnConfig(max_iter=60, learning_rate=0.1, min_samples_leaf=20, calibration_folds=3)


@pytest.fixture(scope="module")
def trained(inputs):
    plan = features.plan_cutoffs(features.data_start(inputs), inputs.data_end, horizon_days=14, n_train=3, step_days=7)
    frame = features.training_set(inputs, plan, FAST.features)
    train = frame.filter(pl.col("role") == "train")
    return plan, frame, churn.fit(train, FAST)


def test_training_uses_only_training_cutoffs_and_beats_chance(trained):
    plan, frame, model = trained
    assert sorted(frame.filter(pl.col("role") == "train")["cutoff"].unique().to_list()) == list(plan.train)
    evaluation = frame.filter(pl.col("role") == "evaluation")
    result = churn.evaluate(model, evaluation, frame.filter(pl.col("role") == "train"), FAST)
    assert set(result.metrics["all"]) == {"model", "recency_only", "bgnbd_no_purchase"}
    everyone = result.metrics["all"]["model"]
    assert everyone["customers"] == evaluation.height
    assert everyone["roc_auc"] > 0.75
    assert abs(everyone["mean_predicted"] - everyone["base_rate"]) < 0.06  # calibrated
    probabilities = churn.predict(model, evaluation)
    assert ((probabilities > 0) & (probabilities < 1)).all()
    assert len(result.lift["model"]) == 10 and len(result.calibration["model"]) == 10


def test_recency_baseline_is_monotone_in_recency():
    frame = pl.DataFrame({"days_since_last_order": [1.0, 2, 5, 10, 20, 30, None, None],
                          "churned": [0, 0, 1, 0, 1, 1, 1, 1]})
    baseline = churn.RecencyBaseline().fit(frame)
    p = baseline.predict(frame)
    assert np.all(np.diff(p[:6]) > 0)
    assert p[6] == p[7] == 1.0  # non-buyers: their training churn rate


def test_bgnbd_baseline_gives_non_buyers_certain_churn():
    frame = pl.DataFrame({"prob_no_purchase": [0.3, None, float("nan")]})
    assert churn.bgnbd_no_purchase(frame).tolist() == [0.3, 1.0, 1.0]


# ---------------------------------------------------------------------------------------- artefacts + scoring

def test_artefact_round_trip_and_tamper_checks(trained, tmp_path):
    _, frame, model = trained
    fset = scoring.feature_set_id(FAST.features)
    _, artifact = churn.train_model(frame, FAST, plan={"data_start": "2026-01-01"}, feature_set=fset, root=tmp_path)
    assert artifacts.latest_version("churn", root=tmp_path) == artifact.version
    meta = json.loads((artifact.path / "metadata.json").read_text())
    assert meta["feature_set"] == fset and meta["features"][0] == {"name": "is_member", "dtype": "Boolean"}
    assert {"scikit-learn", "numpy", "polars", "python"} <= set(meta["libraries"])
    assert meta["training_window"]["data_from"] == "2026-01-01"
    loaded, again = artifacts.load_model("churn", root=tmp_path)
    evaluation = frame.filter(pl.col("role") == "evaluation")
    assert np.allclose(churn.predict(loaded, evaluation), churn.predict(
        pickle.loads(artifact.model_path.read_bytes()), evaluation))

    meta["libraries"]["scikit-learn"] = "0.1.0"
    (artifact.path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(artifacts.ArtifactError, match="scikit-learn 0.1.0"):
        artifacts.load_model("churn", root=tmp_path)
    artifact.model_path.write_bytes(artifact.model_path.read_bytes() + b"x")
    with pytest.raises(artifacts.ArtifactError, match="sha256"):
        artifacts.load_model("churn", root=tmp_path, allow_version_skew=True)


def test_features_that_do_not_match_the_model_are_refused(trained, tmp_path):
    _, frame, model = trained
    artifact = artifacts.save_model(model, name="churn", features=artifacts.feature_schema(churn.feature_frame(frame)),
                                    metadata={}, root=tmp_path)
    offered = churn.feature_frame(frame)
    artifacts.check_features(artifact, offered)  # the same: accepted
    for bad, why in (
        (offered.drop("sessions_count"), "missing"),
        (offered.with_columns(pl.lit(1.0).alias("new_feature")), "unexpected"),
        (offered.with_columns(pl.col("orders_count").cast(pl.Int64)), "dtype changed"),
        (offered.select(list(reversed(offered.columns))), "column order"),
    ):
        with pytest.raises(artifacts.FeatureMismatchError, match=why):
            artifacts.check_features(artifact, bad)


@pytest.fixture(scope="module")
def scored(trained, inputs, marts, tmp_path_factory):
    _, frame, _ = trained
    root = tmp_path_factory.mktemp("models")
    fset = scoring.feature_set_id(FAST.features)
    model, artifact = churn.train_model(frame, FAST, plan={"data_start": "2026-01-01"}, feature_set=fset, root=root)
    con = duckdb.connect()
    write_marts(con, marts)
    from ml.recommend import load_consents, load_interactions

    consents, interactions = load_consents(con), load_interactions(con)
    feats = features.build_features(inputs, inputs.as_of, FAST.features)
    scores = scoring.score_customers(inputs, feats, model, artifact, consents=consents, interactions=interactions,
                                     feature_set=fset)
    return {"con": con, "scores": scores, "model": model, "artifact": artifact, "features": feats,
            "consents": consents, "interactions": interactions, "feature_set": fset}


def test_every_customer_is_scored_exactly_once_per_date(scored, marts):
    con, scores = scored["con"], scored["scores"]
    assert scores.height == marts["dim_customers"].height
    assert scores["customer_id"].is_unique().all()
    assert scoring.write_scores(con, scores) == scores.height
    scoring.write_scores(con, scores)  # again: replaces the date
    later = scores.with_columns((pl.col("scoring_date") + pl.duration(days=1)).alias("scoring_date"))
    scoring.write_scores(con, later)
    counts = con.sql("select scoring_date, count(*), count(distinct customer_id) from ml.customer_scores group by 1 order by 1").fetchall()
    n = scores.height
    assert counts == [(date(2026, 3, 1), n, n), (date(2026, 3, 2), n, n)]
    with pytest.raises(ValueError, match="twice"):
        scoring.write_scores(con, pl.concat([scores, scores.head(1)]))


def test_score_columns_and_values(scored):
    scores, artifact = scored["scores"], scored["artifact"]
    assert scores.columns == [
        "customer_id", "scoring_date", "model_version", "churn_horizon_days", "churn_probability", "churn_risk_band",
        "p_alive", "expected_purchases_14d", "predicted_ltv", "ltv_horizon_months", "ltv_rank", "value_tier",
        "save_priority", "save_priority_rank", "next_best_channel", "recommended_products", "lifecycle_stage", "scored_at"]
    assert set(scores["model_version"]) == {artifact.version}
    assert scores["churn_probability"].is_between(0, 1).all()
    buyers = scores.filter(pl.col("p_alive").is_not_null())
    assert buyers.height > 0 and (buyers["predicted_ltv"] > 0).all()
    assert (scores.filter(pl.col("p_alive").is_null())["predicted_ltv"] == 0).all()
    assert np.allclose(scores["save_priority"], scores["predicted_ltv"] * scores["churn_probability"])
    assert scores.filter(pl.col("value_tier") == "high")["predicted_ltv"].min() >= scores.filter(
        pl.col("value_tier") == "middle")["predicted_ltv"].max()
    assert set(scores["churn_risk_band"]) <= {"low", "medium", "high"}
    assert (scores["recommended_products"].list.len() == 5).all()
    anonymous = scores.filter(pl.col("customer_id").str.starts_with("anon:"))
    assert anonymous["next_best_channel"].null_count() == anonymous.height  # no consent, no channel


def test_scoring_refuses_another_feature_set(scored, inputs):
    other = scoring.feature_set_id(replace(FAST.features, horizon_days=21))
    with pytest.raises(artifacts.FeatureMismatchError, match="retrain"):
        scoring.score_customers(inputs, scored["features"], scored["model"], scored["artifact"],
                                consents=scored["consents"], interactions=scored["interactions"], feature_set=other)
    with pytest.raises(artifacts.FeatureMismatchError, match="missing"):
        scoring.score_customers(inputs, scored["features"].drop("revenue"), scored["model"], scored["artifact"],
                                consents=scored["consents"], interactions=scored["interactions"],
                                feature_set=scored["feature_set"])


# ---------------------------------------------------------------------------------------- on the real dbt marts

@pytest.fixture(scope="module")
def dbt_marts(tmp_path_factory):
    """test_dbt_core's hand-made shop, built with the real dbt project (core marts only)."""
    from tests.dbt_helpers import build_warehouse
    from tests.test_dbt_core import CORE, EVENTS, IDENTIFIES, ORDERS

    con = build_warehouse(tmp_path_factory.mktemp("ml_dbt") / "warehouse.duckdb",
                          events=EVENTS, identifies=IDENTIFIES, orders=ORDERS, select=CORE)
    yield con
    con.close()


def test_features_at_the_as_of_date_agree_with_dim_customers(dbt_marts):
    loaded = features.load_inputs(dbt_marts)
    assert loaded.as_of == date(2026, 1, 31)
    mine = features.build_features(loaded, loaded.as_of, FeatureConfig(bgnbd=False))
    dbt = dbt_marts.sql("""select customer_id, is_member, orders_count, revenue, sessions_count, days_since_last_order,
                                  coalesce(first_touch_channel, 'none') as first_touch_channel, lifecycle_stage,
                                  email_opened_count, kakao_clicked_count
                           from marts.dim_customers""").pl()
    joined = mine.join(dbt, on="customer_id", suffix="_dbt", how="full", coalesce=True)
    assert joined.height == dbt.height == mine.height  # the same customers
    for ours, theirs in (("is_member", "is_member_dbt"), ("orders_count", "orders_count_dbt"), ("revenue", "revenue_dbt"),
                         ("sessions_count", "sessions_count_dbt"), ("days_since_last_order", "days_since_last_order_dbt"),
                         ("acquisition_channel", "first_touch_channel"), ("lifecycle_stage", "lifecycle_stage_dbt"),
                         ("email_responses", "email_opened_count"), ("kakao_responses", "kakao_clicked_count")):
        a = joined[ours].cast(pl.String).to_list()
        b = joined[theirs].cast(pl.Float64).cast(pl.String).to_list() if joined[ours].dtype == pl.Float64 else joined[theirs].cast(pl.String).to_list()
        if ours in ("email_responses", "kakao_responses"):
            b = [v or "0.0" for v in b]
        assert a == b, ours
    # Frank's order was refunded on 2025-11-25: a purchase before that day, not after
    frank = lambda d: features.build_features(loaded, d, FeatureConfig(bgnbd=False)).filter(  # noqa: E731
        pl.col("customer_id") == "u_frank")["orders_count"].item()
    assert (frank(date(2025, 11, 24)), frank(date(2025, 11, 25))) == (1.0, 0.0)
