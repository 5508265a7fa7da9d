"""Campaign results as Dagster assets: one asset per campaign (= audience with an experiment).

    marts/fct_campaign_arm_results, marts/fct_campaign_allocation_rounds ──► campaigns/<campaign>_results

Each materialisation reads the measured arms (dbt marts, built from the assignments, the sync ledger
and the events), compares every variant with the holdout (activations/experiments/results.py) and
publishes the per-arm table, uplifts with 95% intervals, P(best), the sample-ratio check and the next
bandit allocation as metadata. The sample-ratio check is a blocking asset check: on a mismatch
(p < 0.001) it fails and nothing downstream runs — the assignment or the logging is broken and no
effect can be trusted. Reading DuckDB needs the `duckdb` pool like every other warehouse user.

The activations defs import `campaign_results_assets(campaigns)` from here.
"""

import re
from collections.abc import Iterable

import dagster as dg
from dagster_duckdb import DuckDBResource

ARM_RESULTS = dg.AssetKey(["marts", "fct_campaign_arm_results"])
ALLOCATION_ROUNDS = dg.AssetKey(["marts", "fct_campaign_allocation_rounds"])
SRM_CHECK = "sample_ratio_matches_allocation"


class CampaignResultsConfig(dg.Config):
    """Run options of a campaign results asset (launchpad / run config)."""

    floor: float = 0.01  # every variant keeps this share in the next bandit allocation
    min_exposures: int = 100  # no reweighting until every variant has this many exposures
    seed: int = 0  # posterior draws (P(best), P(beat holdout), next allocation) are reproducible


def campaign_asset_name(campaign: str) -> str:
    """`<campaign>_results` with anything but letters, digits and _ replaced (asset key rules)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", campaign) + "_results"


def campaign_results_key(campaign: str) -> dg.AssetKey:
    return dg.AssetKey(["campaigns", campaign_asset_name(campaign)])


def build_campaign_results_asset(campaign: str) -> dg.AssetsDefinition:
    key = campaign_results_key(campaign)

    @dg.asset(
        key=key,
        deps=[ARM_RESULTS, ALLOCATION_ROUNDS],
        group_name="campaigns",
        pool="duckdb",
        kinds={"duckdb"},
        tags={"campaign": re.sub(r"[^A-Za-z0-9_.-]", "_", campaign)[:63]},
        description=f"Results of campaign `{campaign}`: conversion rate and revenue per customer of every arm "
        "(intent to treat), each variant vs the holdout (Welch / delta-method 95% CI, P(beat holdout), "
        "P(best)), the sample-ratio check and the next bandit allocation.",
        check_specs=[dg.AssetCheckSpec(
            SRM_CHECK, asset=key, blocking=True,
            description="Chi-squared of exposures per arm against the intended allocation (Σ over rounds of "
            "round exposures × round weight, holdout included); fails at p < 0.001.")],
    )
    def _results(context: dg.AssetExecutionContext, config: CampaignResultsConfig, warehouse: DuckDBResource):
        from activations.experiments.results import (
            CampaignNotFound,
            campaign_results,
            next_allocation,
            report_text,
            results_chart,
            results_markdown,
            results_vega_lite,
            uplift_rows,
        )

        with warehouse.get_connection() as con:
            try:
                results = campaign_results(con, campaign, seed=config.seed)
            except CampaignNotFound as exc:
                # Not launched yet (nobody assigned): nothing to measure is not a failure of the run.
                context.log.info(str(exc))
                yield dg.MaterializeResult(metadata={"campaign": campaign, "exposed": 0, "status": "no exposures yet"})
                yield dg.AssetCheckResult(check_name=SRM_CHECK, passed=True,
                                          metadata={"reason": "no exposures yet"})
                return
        allocation = next_allocation(results, floor=config.floor, min_exposures=config.min_exposures,
                                     seed=config.seed) if results.variants else None
        context.log.info("\n" + report_text(results, allocation))
        for warning in results.warnings:
            context.log.warning(warning)

        srm = results.srm
        uplift = {
            arm: {
                metric: None if c.absolute is None else {
                    "absolute": c.absolute.estimate, "absolute_ci": [c.absolute.ci_low, c.absolute.ci_high],
                    "relative": None if c.relative is None else c.relative.estimate,
                    "relative_ci": None if c.relative is None else [c.relative.ci_low, c.relative.ci_high],
                    "p_value": c.absolute.p_value,
                    "probability_to_beat_holdout": c.probability_to_beat_control,
                }
                for metric, c in metrics.items()
            }
            for arm, metrics in results.comparisons.items()
        }
        yield dg.MaterializeResult(metadata={
            "campaign": campaign,
            "allocation_mode": results.mode or "unknown",
            "holdout_share": results.holdout_share if results.holdout_share is not None else float("nan"),
            "exposed": results.exposed,
            "exposed_window_elapsed": results.exposed_window_elapsed,
            "goal_event": results.goal_event,
            "attribution_days": results.attribution_days,
            "arms": dg.MetadataValue.md(results_markdown(results)),
            "uplift": dg.MetadataValue.json(uplift),
            "uplift_table": dg.MetadataValue.md(_md_rows(uplift_rows(results))),
            "probability_best": dg.MetadataValue.json(
                {arm: a.probability_best for arm, a in results.arms.items()}),
            "srm_p_value": srm.p_value if srm else float("nan"),
            "srm_flagged": results.srm_flagged,
            "next_allocation": dg.MetadataValue.json(
                {"holdout_share": allocation.holdout_share, "weights": dict(allocation)} if allocation else {}),
            "chart": dg.MetadataValue.md(results_chart(results)),
            "chart_vega_lite": dg.MetadataValue.json(results_vega_lite(results)),
            "warnings": dg.MetadataValue.json(results.warnings),
        })
        yield dg.AssetCheckResult(
            check_name=SRM_CHECK,
            passed=bool(srm is not None and not srm.flagged),
            severity=dg.AssetCheckSeverity.ERROR if (srm is None or srm.flagged) else dg.AssetCheckSeverity.WARN,
            metadata={
                "chi_squared": srm.chi_squared if srm else float("nan"),
                "df": srm.df if srm else 0,
                "p_value": srm.p_value if srm else float("nan"),
                "observed": dg.MetadataValue.json({arm: a.exposed for arm, a in results.arms.items()}),
                "expected": dg.MetadataValue.json(srm.expected_counts if srm else {}),
                "reason": "; ".join(results.warnings) if srm is None else
                ("exposures do not match the intended allocation" if srm.flagged else "ok"),
            },
        )

    return _results


def _md_rows(rows: list[dict[str, str]]) -> str:
    from activations.experiments.results import markdown_table

    return markdown_table(rows)


def campaign_results_assets(campaigns: Iterable[str]) -> list[dg.AssetsDefinition]:
    """One results asset per campaign name (the audiences that run an experiment)."""
    return [build_campaign_results_asset(campaign) for campaign in dict.fromkeys(campaigns)]
