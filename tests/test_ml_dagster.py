"""The ML assets in Dagster: the asset graph, a real materialisation of every ML asset on small
simulated marts, re-scoring, refusal of mismatched features, and the eager trigger after dbt."""

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from orchestration.defs import ml as ml_defs
from orchestration.defs.ml.assets import EVALUATION, FEATURES, MARTS, ML_ASSETS, MODEL, SCORES, TRAINING_SET
from orchestration.defs.ml.settings import MlSettings
from tests.test_ml_churn import synthetic_marts, write_marts

ML_KEYS = {"ml/churn_training_set", "ml/churn_model", "ml/churn_evaluation", "ml/customer_features", "ml/customer_scores"}


def _all_defs() -> dg.Definitions:
    from orchestration.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    return defs if ML_KEYS <= keys else dg.Definitions.merge(defs, ml_defs.defs)


def test_graph_pools_jobs_schedule_and_automation():
    defs = _all_defs()
    graph = defs.resolve_asset_graph()
    for key in ML_KEYS:
        node = graph.get(dg.AssetKey.from_user_string(key))
        assert node.pools == {"duckdb"}, key  # every ML asset opens the warehouse
        assert node.group_name == "ml"
    parents = lambda key: {p.to_user_string() for p in graph.get(key).parent_keys}  # noqa: E731
    assert parents(TRAINING_SET) == {"marts/dim_customers", "marts/fct_orders", "marts/fct_sessions", "marts/fct_events"}
    assert {"ml/customer_features", "ml/churn_model", "marts/dim_customers"} <= parents(SCORES)
    assert all(graph.has(key) for key in MARTS.values())  # the dbt marts exist under these keys
    assert graph.get(SCORES).automation_condition is not None and graph.get(FEATURES).automation_condition is not None
    assert graph.get(MODEL).automation_condition is None  # training is scheduled, not eager
    assert defs.resolve_schedule_def("ml_training_schedule").cron_schedule == "0 3 * * 1"
    assert defs.resolve_schedule_def("ml_training_schedule").job_name == "ml_training_job"
    job = defs.resolve_job_def("ml_job")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == ML_KEYS
    assert defs.resolve_sensor_def("ml_scoring_automation")


@pytest.fixture(scope="module")
def materialised(tmp_path_factory):
    root = tmp_path_factory.mktemp("ml")
    database = root / "warehouse.duckdb"
    marts = synthetic_marts(n=300, seed=1)
    con = duckdb.connect(str(database))
    write_marts(con, marts)
    con.close()
    resources = {"warehouse": DuckDBResource(database=str(database)),
                 "ml_settings": MlSettings(models_dir=str(root / "models"))}
    result = dg.materialize(ML_ASSETS, resources=resources)
    return {"result": result, "database": database, "resources": resources, "marts": marts, "root": root}


def _metadata(result, key):
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return event.materialization.metadata


def test_materialising_every_ml_asset_scores_every_customer_once(materialised):
    result = materialised["result"]
    assert result.success
    version = _metadata(result, MODEL)["model_version"].value
    assert (materialised["root"] / "models" / "churn" / "LATEST").read_text().strip() == version
    con = duckdb.connect(str(materialised["database"]), read_only=True)
    try:
        customers = con.sql("select count(*) from marts.dim_customers").fetchall()[0][0]
        rows, distinct, versions = con.sql(
            "select count(*), count(distinct customer_id), list(distinct model_version) from ml.customer_scores").fetchall()[0]
        evaluations = con.execute("select count(*) from ml.model_evaluations where model_version = ?", [version]).fetchall()[0][0]
    finally:
        con.close()
    assert rows == distinct == customers == materialised["marts"]["dim_customers"].height
    assert versions == [version]
    assert evaluations > 20
    assert _metadata(result, SCORES)["model_version"].value == version


def test_evaluation_metadata_lets_an_engineer_judge_the_model(materialised):
    meta = _metadata(materialised["result"], EVALUATION)
    for name in ("metrics", "lift_chart", "calibration_plot", "ranking"):
        assert isinstance(meta[name], dg.MarkdownMetadataValue)
    assert "recency only" in meta["metrics"].value and "BG/NBD" in meta["metrics"].value
    assert "d10" in meta["lift_chart"].value
    assert 0.5 < meta["buyers_roc_auc"].value <= 1.0
    assert meta["lift_chart_vega_lite"].value["mark"] == "bar"
    [check] = materialised["result"].get_asset_check_evaluations()
    assert check.check_name == "model_not_worse_than_baselines"


def test_rescoring_the_same_date_replaces_it(materialised):
    result = dg.materialize([ML_ASSETS[-1]], resources=materialised["resources"],
                            selection=dg.AssetSelection.assets(SCORES))
    assert result.success
    con = duckdb.connect(str(materialised["database"]), read_only=True)
    try:
        rows, distinct, dates = con.sql(
            "select count(*), count(distinct customer_id), count(distinct scoring_date) from ml.customer_scores").fetchall()[0]
    finally:
        con.close()
    assert rows == distinct and dates == 1


def test_scoring_refuses_features_built_with_other_settings(materialised, tmp_path):
    resources = dict(materialised["resources"])
    resources["ml_settings"] = MlSettings(models_dir=str(materialised["root"] / "models"), horizon_days=21)
    features_asset, scores_asset = ML_ASSETS[3], ML_ASSETS[4]
    result = dg.materialize([features_asset, scores_asset], resources=resources, raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "retrain" in str(failure.event_specific_data.error)
    # put the matching features back for the other tests
    assert dg.materialize([features_asset], resources=materialised["resources"]).success


def test_scores_are_requested_after_a_dbt_build_once_a_model_exists():
    marts = [dg.AssetSpec(key) for key in MARTS.values()]
    defs = dg.Definitions(assets=[*marts, *ML_ASSETS], resources={
        "warehouse": DuckDBResource(database=":memory:"), "ml_settings": MlSettings()})
    instance = dg.DagsterInstance.ephemeral()
    selection = dg.AssetSelection.assets(FEATURES, SCORES)

    def dbt_build():
        for key in MARTS.values():
            instance.report_runless_asset_event(dg.AssetMaterialization(key))

    start = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection)
    assert start.total_requested == 0  # nothing there yet
    dbt_build()  # the marts exist, no model yet: features yes, scores no
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection, cursor=start.cursor)
    assert (first.get_num_requested(FEATURES), first.get_num_requested(SCORES)) == (1, 0)
    for key in (FEATURES, MODEL):  # the features ran, a model was trained: scoring follows
        instance.report_runless_asset_event(dg.AssetMaterialization(key))
    second = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection, cursor=first.cursor)
    assert (second.get_num_requested(FEATURES), second.get_num_requested(SCORES)) == (0, 1)
    instance.report_runless_asset_event(dg.AssetMaterialization(SCORES))
    third = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection, cursor=second.cursor)
    assert third.total_requested == 0  # nothing new
    dbt_build()  # the next dbt build: features and scores again
    fourth = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection, cursor=third.cursor)
    assert (fourth.get_num_requested(FEATURES), fourth.get_num_requested(SCORES)) == (1, 1)
