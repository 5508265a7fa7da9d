"""Audience syncs as Dagster assets: one asset per audience in audiences/*.yml (a thin layer over
activations/).

    marts/dim_customers, marts/<source model>, ml/customer_scores ──► activations/<audience>

Each run evaluates the audience, applies priorities and the sending law, records experiment
assignments and syncs the difference to the audience's destination; the counts, a sample of the
failures and the duration are the materialisation's metadata. The ledger lives in the warehouse,
so the syncs share the `duckdb` pool with every other writer.
"""

import time

import dagster as dg
from dagster_duckdb import DuckDBResource

from activations.audiences.compiler import COHORTS, DROPOFFS
from activations.audiences.spec import AudienceSpec, load_config, load_specs
from goldentime import settings
from orchestration.defs.activations.campaign_results import campaign_results_assets, campaign_results_key

SCORES = dg.AssetKey(["ml", "customer_scores"])
CUSTOMERS = dg.AssetKey(["marts", "dim_customers"])


class AudienceSyncConfig(dg.Config):
    dry_run: bool = False  # write the exact payloads to data/dry_runs/<audience>.jsonl, send nothing
    as_of: str = ""  # ISO instant to evaluate at (default: GOLDENTIME_AS_OF, else now)


def audience_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["activations", name])


def _upstream(spec: AudienceSpec) -> list[dg.AssetKey]:
    keys = [CUSTOMERS, SCORES]
    if spec.source.kind == "cohort":
        keys.append(dg.AssetKey(COHORTS.split(".")))
    elif spec.source.kind == "funnel_dropoff":
        keys.append(dg.AssetKey(DROPOFFS.split(".")))
    elif spec.source.kind == "model":
        keys.append(dg.AssetKey(spec.source.name.split(".")))
    return keys


def _table(rows: list[dict]) -> str:
    if not rows:
        return "_none_"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def build_audience_asset(spec: AudienceSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=audience_key(spec.name),
        deps=_upstream(spec),
        group_name="activations",
        pool="duckdb",
        kinds={"duckdb", spec.destination if spec.destination.isidentifier() else "python"},
        owners=[f"team:{spec.owner}"] if spec.owner and spec.owner.replace("-", "_").isidentifier() else None,
        description=" ".join(spec.description.split())
        + f"\n\nChannel {spec.channel} → destination `{spec.destination}`, mode {spec.mode}, "
        f"priority {spec.priority} in group {spec.priority_group}; holdout {spec.experiment.holdout:.0%}. "
        f"Spec: audiences/{spec.name}.yml",
        tags={"channel": spec.channel},
    )
    def _sync(context: dg.AssetExecutionContext, config: AudienceSyncConfig, warehouse: DuckDBResource):
        from datetime import datetime, timezone

        from activations.audiences.run import activate

        started = time.perf_counter()
        specs = load_specs(settings.audiences_dir())
        audience_config = load_config(settings.audiences_dir())
        as_of = settings.activation_as_of()
        if config.as_of:
            as_of = datetime.fromisoformat(config.as_of)
            as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=timezone.utc)
        settings.data_dir().mkdir(parents=True, exist_ok=True)
        with warehouse.get_connection() as con:
            run = activate(con, specs[spec.name], specs, audience_config, settings.data_dir(), as_of,
                           dry_run=config.dry_run, choose_weights=_bandit_weights)
        summary = run.summary()
        sync = run.sync
        context.log.info(
            f"{spec.name}: {summary['added']} added, {summary['changed']} changed, {summary['removed']} removed, "
            f"{summary['rejected']} rejected, {summary['suppressed']} held by the law, {summary['deferred']} deferred")
        failures = [{"customer": key, "reason": message} for key, message in (sync.rejected_rows if sync else [])[:10]]
        return dg.MaterializeResult(metadata={
            "as_of": summary["as_of"],
            "dry_run": config.dry_run,
            "qualified": summary["qualified"],
            "after_priorities": summary["after_priorities"],
            "lost_to_higher_priority": dg.MetadataValue.json(summary["lost_to_higher_priority"]),
            "kept_out_by_the_law": dg.MetadataValue.json(summary["ineligible"]),
            "arms": dg.MetadataValue.md(_table([{"arm": a, "customers": n} for a, n in sorted(summary["arms"].items())])),
            "weights": dg.MetadataValue.json(summary["weights"]),
            "rows_added": summary["added"],
            "rows_changed": summary["changed"],
            "rows_removed": summary["removed"],
            "rows_failed": summary["rejected"],
            "rows_suppressed": summary["suppressed"],
            "rows_deferred": summary["deferred"],
            "held_reasons": dg.MetadataValue.json(summary["held_reasons"]),
            "failure_sample": dg.MetadataValue.md(_table(failures)),
            "requests": sync.requests if sync else 0,
            "sync_run_id": sync.run_id if sync else "",
            "dry_run_payloads": summary["dry_run_path"] or "",
            "duration_s": round(time.perf_counter() - started, 3),
        })

    return _sync


def _bandit_weights(con, spec: AudienceSpec):
    """Thompson-sampling weights from the measured campaign results; None (keep the last round's
    weights) before there are any, and when the sample-ratio check says the assignment is broken:
    a broken experiment must not steer traffic."""
    import duckdb

    from activations.experiments.results import CampaignNotFound, campaign_results, next_allocation

    try:
        results = campaign_results(con, spec.name, seed=0)
    except (CampaignNotFound, duckdb.CatalogException):  # not measured yet / campaign marts not built
        return None
    if results.srm_flagged or not results.variants:
        return None
    return dict(next_allocation(results, floor=spec.experiment.floor, min_exposures=spec.experiment.min_exposures,
                                seed=0))


def is_experiment(spec: AudienceSpec) -> bool:
    return spec.experiment.holdout > 0 or len(spec.experiment.variants) > 1


def build_activation_defs() -> dg.Definitions:
    specs = load_specs(settings.audiences_dir())
    assets = [build_audience_asset(spec) for spec in specs.values()]
    keys = [audience_key(name) for name in specs]
    activations_job = dg.define_asset_job(
        "activations_job", selection=dg.AssetSelection.assets(*keys),
        description="Sync every audience (audiences/*.yml) to its destination.",
        executor_def=dg.in_process_executor)
    schedules = []
    for spec in specs.values():
        if not spec.schedule:
            continue
        job = dg.define_asset_job(f"sync_{spec.name}", selection=dg.AssetSelection.assets(audience_key(spec.name)),
                                  executor_def=dg.in_process_executor)
        schedules.append(dg.ScheduleDefinition(
            name=f"sync_{spec.name}_schedule", job=job, cron_schedule=spec.schedule,
            execution_timezone="Asia/Seoul", default_status=dg.DefaultScheduleStatus.STOPPED,
            description=f"Sync audience {spec.name} ({spec.schedule}, Asia/Seoul)."))
    campaigns = [spec.name for spec in specs.values() if is_experiment(spec)]
    results = campaign_results_assets(campaigns)
    # Measuring needs the campaign marts and the models they read (fct_events …), not a full build.
    measured = dg.AssetSelection.assets(*(campaign_results_key(c) for c in campaigns))
    campaign_measurement_job = dg.define_asset_job(
        "campaign_measurement_job",
        # The dbt data tests stay with transform_job: they also check models this fast path leaves as
        # they were (fct_events' sessions are only rebuilt there), so running them here would fail.
        selection=((measured.upstream() - dg.AssetSelection.key_prefixes("raw", "ledger")).without_checks()
                   | measured),
        description="Rebuild the campaign marts (and the dbt models they read) and every campaign's results; "
        "the dbt data tests run with the next transform_job.",
        executor_def=dg.in_process_executor)
    return dg.Definitions(assets=[*assets, *results], jobs=[activations_job, campaign_measurement_job],
                          schedules=schedules)
