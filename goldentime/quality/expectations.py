"""Great Expectations 1.x suites, run on a pandas frame in an ephemeral context.

dagster-ge only supports GX < 1.0, so the Dagster layer calls `validate()` itself and turns each
named check into an asset check result. Each check is a small group of expectations: one check
fails when any of its expectations fails, and says which and with what sample of bad values.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

# GX sends usage statistics to a remote service unless told not to; this platform never phones home.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    expectations: Callable[[Any], list]  # gx.expectations module -> expectation objects


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    evaluated_rows: int
    failures: list[dict[str, Any]] = field(default_factory=list)


def validate(frame: pd.DataFrame, checks: list[Check], suite_name: str) -> list[CheckOutcome]:
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas(f"{suite_name}_source")
        .add_dataframe_asset(f"{suite_name}_frame")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    outcomes = []
    for check in checks:
        suite = gx.ExpectationSuite(name=f"{suite_name}.{check.name}")
        for expectation in check.expectations(gx.expectations):
            suite.add_expectation(expectation)
        result = batch.validate(suite)
        failures = [
            {
                "expectation": r.expectation_config.type,
                "column": r.expectation_config.kwargs.get("column"),
                "unexpected_count": r.result.get("unexpected_count"),
                "sample": [str(v) for v in (r.result.get("partial_unexpected_list") or [])[:5]],
            }
            for r in result.results
            if not r.success
        ]
        outcomes.append(CheckOutcome(check.name, result.success, len(frame), failures))
    return outcomes
