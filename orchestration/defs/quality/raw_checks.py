"""Asset checks for the raw tables: specs declared on the ingest assets, results from GX."""


from datetime import date

import dagster as dg
from dagster_duckdb import DuckDBResource

from goldentime.quality.raw_checks import check_raw_table, raw_tables


def check_specs_for(feed_table: str, asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    spec = raw_tables(date.today())[feed_table]
    return [
        dg.AssetCheckSpec(name=check.name, asset=asset_key, description=check.description, blocking=True)
        for check in spec.checks
    ]


def run_raw_checks(warehouse: DuckDBResource, feed_table: str, asset_key: dg.AssetKey, days: list[date]):

    with warehouse.get_connection() as con:
        outcomes = check_raw_table(con, feed_table, min(days), max(days))
    for outcome in outcomes:
        yield dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=outcome.name,
            passed=outcome.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "evaluated_rows": dg.MetadataValue.int(outcome.evaluated_rows),
                "landing_days": dg.MetadataValue.text(f"{min(days)} … {max(days)}"),
                "failures": dg.MetadataValue.json(outcome.failures),
            },
        )
