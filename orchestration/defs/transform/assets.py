"""dbt models as Dagster assets, dbt tests as asset checks.

- Every model is an asset keyed <schema>/<model> (staging/…, intermediate/…, marts/…), grouped by
  layer; dbt sources map to the ingest assets raw/events, raw/identifies, raw/orders through
  `meta.dagster.asset_key` in models/staging/__sources.yml, so the models depend on ingestion.
- Every dbt data test is an asset check on the model it tests (dagster-dbt's default); unit tests
  run inside `dbt build` and fail the step when they fail.
- The dbt step writes the DuckDB warehouse, so it is in the `duckdb` concurrency pool (limit 1).
"""


import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.defs.transform.project import dbt_executable, dbt_project

project = dbt_project()


class GoldenTimeDbtTranslator(DagsterDbtTranslator):
    """Models keyed by warehouse location (<schema>/<name>, like raw/events); groups by layer."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props.get("resource_type") in ("model", "seed", "snapshot"):
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props.get("resource_type") == "model":
            return dbt_resource_props["schema"]
        return super().get_group_name(dbt_resource_props)


class DbtBuildConfig(dg.Config):
    """Run options of the dbt step (launchpad / run config)."""

    full_refresh: bool = False
    as_of_date: str | None = None  # 'YYYY-MM-DD' for dim_customers; default: latest data date
    # dbt unit tests check SQL logic on fixed rows, not data: they run in `make test` / CI, and in a
    # scheduled build only when asked (they cost about a third of a build's thread time).
    run_unit_tests: bool = False


def dbt_build_args(config: DbtBuildConfig) -> list[str]:
    args = ["build"]
    if not config.run_unit_tests:
        args += ["--exclude-resource-type", "unit_test"]
    if config.full_refresh:
        args.append("--full-refresh")
    if config.as_of_date:
        args += ["--vars", json.dumps({"as_of_date": config.as_of_date})]
    return args


@dbt_assets(
    manifest=project.manifest_path,
    project=project,
    dagster_dbt_translator=GoldenTimeDbtTranslator(),
    name="dbt_models",
    pool="duckdb",  # DuckDB has one writer: every warehouse writer shares this pool (limit 1)
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig):
    """`dbt build` of the selected models: models, their tests (asset checks) and unit tests."""
    yield from dbt.cli(dbt_build_args(config), context=context).stream()


transform_job = dg.define_asset_job(
    "transform_job",
    selection=dg.AssetSelection.assets(dbt_models),
    description="dbt build of every model (staging → intermediate → marts) with its tests.",
)


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(
        project_dir=project, profiles_dir=str(project.profiles_dir), dbt_executable=dbt_executable()
    )
