"""ML assets: a thin layer over ml/ (features, churn, evaluation, scoring).

    marts/* ──► ml/churn_training_set ──► ml/churn_model ──► ml/churn_evaluation
       │                                        │
       └──────► ml/customer_features ──► ml/customer_scores   (eager: after every dbt build / new model)

Every asset opens the warehouse (DuckDB, one writer), so all are in the `duckdb` pool. Models are
files under ml_settings.models_dir (GOLDENTIME_MODELS); the warehouse gets ml.churn_training_set,
ml.model_evaluations, ml.customer_features and ml.customer_scores.
"""


import dagster as dg
from dagster_duckdb import DuckDBResource

from orchestration.defs.ml.settings import MlSettings

MARTS = {name: dg.AssetKey(["marts", name]) for name in ("dim_customers", "fct_orders", "fct_sessions", "fct_events")}
TRAINING_SET = dg.AssetKey(["ml", "churn_training_set"])
MODEL = dg.AssetKey(["ml", "churn_model"])
EVALUATION = dg.AssetKey(["ml", "churn_evaluation"])
FEATURES = dg.AssetKey(["ml", "customer_features"])
SCORES = dg.AssetKey(["ml", "customer_scores"])

_COMMON = dict(group_name="ml", pool="duckdb")  # DuckDB: one process at a time, readers included


def _md(text: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(text)


@dg.asset(
    key=TRAINING_SET,
    deps=list(MARTS.values()),
    kinds={"duckdb", "polars"},
    description="Labelled point-in-time feature snapshots (ml.churn_training_set): one row per customer per "
    "training cut-off, plus the held-out evaluation cut-off. Label: no purchase in the next horizon.",
    **_COMMON,
)
def churn_training_set(context: dg.AssetExecutionContext, warehouse: DuckDBResource, ml_settings: MlSettings):
    import polars as pl

    from ml.features import data_start, load_inputs, plan_cutoffs, training_set
    from ml.report import table
    from ml.scoring import feature_set_id, write_table

    config = ml_settings.churn_config()
    feature_set = feature_set_id(config.features)
    with warehouse.get_connection() as con:
        inputs = load_inputs(con)
        plan = plan_cutoffs(data_start(inputs), inputs.data_end, horizon_days=config.features.horizon_days,
                            n_train=config.n_train_cutoffs, step_days=config.cutoff_step_days,
                            min_history_days=config.min_history_days)
        frame = training_set(inputs, plan, config.features).with_columns(
            pl.lit(feature_set).alias("feature_set"), pl.lit(data_start(inputs)).alias("data_start")
        )
        write_table(con, frame, "ml.churn_training_set")
    per_cutoff = (
        frame.group_by("role", "cutoff")
        .agg(pl.len().alias("customers"), (pl.col("orders_count") > 0).sum().alias("buyers"),
             pl.col("churned").mean().alias("churn_rate"))
        .sort("cutoff")
    )
    context.log.info(f"cut-offs {plan.to_dict()}; {frame.height} rows")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": frame.height,
        "feature_set": feature_set,
        "cutoffs": dg.MetadataValue.json({"data_start": str(data_start(inputs)), **plan.to_dict()}),
        "horizon_days": config.features.horizon_days,
        "label": config.features.label,
        "snapshots": _md(table(per_cutoff.with_columns(pl.col("cutoff").cast(pl.String)).to_dicts())),
    })


@dg.asset(
    key=MODEL,
    deps=[TRAINING_SET],
    kinds={"scikit-learn"},
    description="Churn classifier (calibrated HistGradientBoosting Pipeline) trained on the training cut-offs; "
    "a new immutable version under GOLDENTIME_MODELS/churn/<version> (model.pkl + metadata.json), LATEST points to it.",
    **_COMMON,
)
def churn_model(context: dg.AssetExecutionContext, warehouse: DuckDBResource, ml_settings: MlSettings):
    from ml.churn import train_model
    from ml.scoring import feature_set_id, read_table

    config = ml_settings.churn_config()
    with warehouse.get_connection() as con:
        frame = read_table(con, "ml.churn_training_set")
    feature_set = feature_set_id(config.features)
    built_with = frame["feature_set"][0] if frame.height else None
    if built_with != feature_set:
        raise dg.Failure(f"ml.churn_training_set was built with feature set {built_with}, the settings now give "
                         f"{feature_set}: materialise ml/churn_training_set first")
    train = frame.filter(frame["role"] == "train")
    plan = {"data_start": str(frame["data_start"][0]),
            "train": sorted({str(d) for d in train["cutoff"].to_list()}),
            "evaluation": str(frame.filter(frame["role"] == "evaluation")["cutoff"][0])}
    _, artifact = train_model(frame, config, plan=plan, feature_set=feature_set, root=ml_settings.root())
    meta = artifact.metadata
    context.log.info(f"trained {artifact.version} on {meta['training_rows']} rows")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(artifact.version),
        metadata={
            "model_version": artifact.version,
            "model_path": dg.MetadataValue.path(str(artifact.model_path)),
            "training_window": dg.MetadataValue.json(meta["training_window"]),
            "cutoffs": dg.MetadataValue.json(meta["cutoffs"]),
            "training_rows": meta["training_rows"],
            "training_churn_rate": meta["training_churn_rate"],
            "features": len(meta["features"]),
            "feature_set": feature_set,
            "libraries": dg.MetadataValue.json(meta["libraries"]),
        },
    )


@dg.asset(
    key=EVALUATION,
    deps=[MODEL, TRAINING_SET, MARTS["dim_customers"], MARTS["fct_events"]],
    kinds={"duckdb", "scikit-learn"},
    description="The latest churn model and the rankings on the held-out evaluation cut-off, side by side with "
    "baselines (recency only; BG/NBD P(no purchase); past spend; always the best channel; most popular products). "
    "Rows in ml.model_evaluations; the figures also go into the model's metadata.json.",
    check_specs=[dg.AssetCheckSpec("model_not_worse_than_baselines", asset=EVALUATION, blocking=False,
                                   description="Buyers: churn-model ROC AUC at least the best baseline's − 0.01.")],
    **_COMMON,
)
def churn_evaluation(context: dg.AssetExecutionContext, warehouse: DuckDBResource, ml_settings: MlSettings):
    import polars as pl

    from ml import artifacts, report
    from ml.evaluation import evaluate_all, long_rows
    from ml.features import load_inputs
    from ml.recommend import load_consents, load_interactions
    from ml.scoring import read_table

    config = ml_settings.churn_config()
    model, artifact = artifacts.load_model("churn", root=ml_settings.root())
    with warehouse.get_connection() as con:
        frame = read_table(con, "ml.churn_training_set")
        inputs = load_inputs(con)
        consents, interactions = load_consents(con), load_interactions(con)
        evaluation_cutoff = str(frame.filter(pl.col("role") == "evaluation")["cutoff"][0])
        trained_on = artifact.metadata["cutoffs"]
        if evaluation_cutoff != trained_on["evaluation"] or frame["feature_set"][0] != artifact.metadata["feature_set"]:
            raise dg.Failure(f"ml.churn_training_set (evaluation cut-off {evaluation_cutoff}) is not the one model "
                             f"{artifact.version} was trained with ({trained_on['evaluation']}): retrain first")
        result = evaluate_all(model, frame, inputs, consents=consents, interactions=interactions, config=config,
                              n_recommendations=ml_settings.n_recommendations)
        rows = long_rows(artifact.version, result)
        con.execute("create schema if not exists ml")
        con.execute("""create table if not exists ml.model_evaluations (model_version varchar, evaluation_cutoff date,
                       horizon_days integer, task varchar, population varchar, scorer varchar, metric varchar,
                       value double, evaluated_at timestamp default current_timestamp)""")
        con.register("_evaluation_rows", rows.to_arrow())
        con.execute("delete from ml.model_evaluations where model_version = ?", [artifact.version])
        con.execute("insert into ml.model_evaluations by name select * from _evaluation_rows")
        con.unregister("_evaluation_rows")
    buyers = result["churn"]["metrics"]["buyers"]
    artifacts.update_metadata(artifact, evaluation={
        "cutoff": result["cutoff"], "horizon_days": result["horizon_days"],
        "churn": result["churn"]["metrics"], "ltv_ranking": result["ltv_ranking"],
        "next_best_channel": result["next_best_channel"], "recommendations": result["recommendations"],
    })
    best_baseline = max(buyers["recency_only"]["roc_auc"], buyers["bgnbd_no_purchase"]["roc_auc"])
    yield dg.MaterializeResult(metadata={
        "model_version": artifact.version,
        "evaluation_cutoff": result["cutoff"],
        "buyers_roc_auc": buyers["model"]["roc_auc"],
        "buyers_top_decile_lift": buyers["model"]["top_decile_lift"],
        "buyers_brier": buyers["model"]["brier"],
        "baseline_recency_roc_auc": buyers["recency_only"]["roc_auc"],
        "baseline_bgnbd_roc_auc": buyers["bgnbd_no_purchase"]["roc_auc"],
        "ltv_normalized_gini": result["ltv_ranking"]["bgnbd_gamma_gamma"]["normalized_gini"],
        "ltv_baseline_past_spend_gini": result["ltv_ranking"]["past_spend"]["normalized_gini"],
        "metrics": _md(report.churn_metrics_markdown(result)),
        "lift_chart": _md(report.lift_chart_markdown(result)),
        "calibration_plot": _md(report.calibration_markdown(result)),
        "ranking": _md(report.ranking_markdown(result)),
        "lift_chart_vega_lite": dg.MetadataValue.json(report.vega_lift(result)),
        "calibration_vega_lite": dg.MetadataValue.json(report.vega_calibration(result)),
        "dagster/row_count": rows.height,
    })
    yield dg.AssetCheckResult(
        check_name="model_not_worse_than_baselines",
        passed=bool(buyers["model"]["roc_auc"] >= best_baseline - 0.01),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"model_roc_auc": buyers["model"]["roc_auc"], "best_baseline_roc_auc": best_baseline},
    )


@dg.asset(
    key=FEATURES,
    deps=list(MARTS.values()),
    kinds={"duckdb", "polars"},
    automation_condition=dg.AutomationCondition.eager(),
    description="Model features of every customer in marts.dim_customers as of its as-of date "
    "(ml.customer_features, with as_of_date and feature_set). Rebuilt after every dbt build.",
    **_COMMON,
)
def customer_features(context: dg.AssetExecutionContext, warehouse: DuckDBResource, ml_settings: MlSettings):
    import polars as pl

    from ml.features import build_features, load_inputs
    from ml.scoring import FEATURES_TABLE, feature_set_id, write_table

    config = ml_settings.churn_config().features
    with warehouse.get_connection() as con:
        inputs = load_inputs(con)
        frame = build_features(inputs, inputs.as_of, config).with_columns(
            pl.lit(inputs.as_of).alias("as_of_date"), pl.lit(feature_set_id(config)).alias("feature_set")
        )
        write_table(con, frame, FEATURES_TABLE)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": frame.height,
        "as_of_date": str(inputs.as_of),
        "feature_set": feature_set_id(config),
        "buyers": int((frame["orders_count"] > 0).sum()),
        "members": int(frame["is_member"].sum()),
    })


class ScoringRunConfig(dg.Config):
    """Score with a named model version instead of LATEST (e.g. to roll back)."""

    model_version: str | None = None


@dg.asset(
    key=SCORES,
    deps=[FEATURES, MODEL, MARTS["dim_customers"], MARTS["fct_orders"], MARTS["fct_events"]],
    kinds={"duckdb", "scikit-learn"},
    automation_condition=dg.AutomationCondition.eager(),
    description="ml.customer_scores: one row per customer per scoring date — churn probability and risk band, "
    "P(alive), expected purchases, predicted LTV, LTV rank, value tier, save priority, next-best channel and "
    "recommended products — naming the model version used. Re-scoring a date replaces it.",
    **_COMMON,
)
def customer_scores(context: dg.AssetExecutionContext, config: ScoringRunConfig, warehouse: DuckDBResource,
                    ml_settings: MlSettings):
    from ml import artifacts
    from ml.features import load_inputs
    from ml.recommend import load_consents, load_interactions
    from ml.report import scores_summary_markdown
    from ml.scoring import FEATURES_TABLE, SCORES_TABLE, read_table, score_customers, write_scores

    model, artifact = artifacts.load_model("churn", config.model_version, root=ml_settings.root())
    with warehouse.get_connection() as con:
        inputs = load_inputs(con)
        stored = read_table(con, FEATURES_TABLE)
        if stored.height and stored["as_of_date"][0] != inputs.as_of:
            raise dg.Failure(f"{FEATURES_TABLE} is as of {stored['as_of_date'][0]}, dim_customers as of {inputs.as_of}: "
                             "materialise ml/customer_features first")
        feature_set = stored["feature_set"][0] if stored.height else ""
        scores = score_customers(
            inputs, stored.drop("as_of_date", "feature_set"), model, artifact,
            consents=load_consents(con), interactions=load_interactions(con), feature_set=feature_set,
            config=ml_settings.scoring_config(),
        )
        customers = con.sql("select count(*) from marts.dim_customers").fetchall()[0][0]
        written = write_scores(con, scores, table=SCORES_TABLE)
    if written != customers:
        raise dg.Failure(f"scored {written} customers, dim_customers has {customers}")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": written,
        "scoring_date": str(inputs.as_of),
        "model_version": artifact.version,
        "mean_churn_probability": float(scores["churn_probability"].mean()),
        "predicted_ltv_total": float(scores["predicted_ltv"].sum()),
        "summary": _md(scores_summary_markdown(scores)),
        "columns": dg.MetadataValue.json({k: str(v) for k, v in scores.schema.items()}),
    })


ML_ASSETS = [churn_training_set, churn_model, churn_evaluation, customer_features, customer_scores]

ml_job = dg.define_asset_job(
    "ml_job", selection=dg.AssetSelection.assets(*ML_ASSETS), executor_def=dg.in_process_executor,
    description="Train, evaluate and score: every ML asset (what `make demo` runs after the dbt build).",
)
ml_training_job = dg.define_asset_job(
    "ml_training_job", selection=dg.AssetSelection.assets(churn_training_set, churn_model, churn_evaluation),
    executor_def=dg.in_process_executor, description="Rebuild the training set, train a new churn model version, evaluate it.",
)
ml_scoring_job = dg.define_asset_job(
    "ml_scoring_job", selection=dg.AssetSelection.assets(customer_features, customer_scores),
    executor_def=dg.in_process_executor, description="Score every customer with the LATEST model.",
)

ml_training_schedule = dg.ScheduleDefinition(
    name="ml_training_schedule", job=ml_training_job, cron_schedule="0 3 * * 1", execution_timezone="Asia/Seoul",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Weekly retraining (Mondays 03:00 KST); the new model then triggers re-scoring (eager).",
)

ml_automation_sensor = dg.AutomationConditionSensorDefinition(
    "ml_scoring_automation", target=dg.AssetSelection.assets(customer_features, customer_scores),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-scores after every dbt build of the marts and after every new model (eager conditions).",
)
