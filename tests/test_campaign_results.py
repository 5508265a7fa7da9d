"""Campaign measurement: statistics against scipy/statsmodels, a hand-made campaign through dbt with
exact numbers, and an end-to-end recovery of known effects from a simulated campaign.

(a) intervals and tests vs scipy / statsmodels on fixed data;
(b) a 20-customer campaign built through dbt (first on a warehouse without activation tables);
(c) ~20k simulated customers (holdout 10%, variants A/B with true lifts 1.2 / 1.5): the measured
    absolute uplifts cover the true ones, no SRM (one fixed seed: with two 95% intervals about one
    seed in ten would miss — the coverage over 100 seeds is tested too); half of one arm dropped →
    SRM flagged;
(d) the bandit moves traffic to the truly best variant, the holdout share never changes (round 2 run);
(e) the holdout is never sent anything.
"""

import json
import math
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pytest
from dagster_duckdb import DuckDBResource
from scipy import stats
from statsmodels.stats import proportion as sm_proportion
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from activations.experiments.assignment import HOLDOUT_ARM, assign
from activations.experiments.results import (
    AllocationRound,
    CampaignNotFound,
    campaign_results,
    intended_arm_counts,
    mean_interval,
    next_allocation,
    report_text,
    results_chart,
    results_markdown,
    results_vega_lite,
    sample_ratio_check,
    wilson_interval,
)
from activations.experiments.statistics import proportion_summary, relative_uplift_delta, welch_difference
from activations.sync.ledger import Ledger
from goldentime.ingest.events import load_events
from goldentime.ingest.landing import landing_files
from goldentime.ingest.orders import load_orders
from goldentime.sample_data.campaigns import campaign_effects, simulate_campaign_responses
from orchestration.defs.activations.campaign_results import (
    SRM_CHECK,
    build_campaign_results_asset,
    campaign_results_assets,
    campaign_results_key,
)
from tests.dbt_helpers import build_warehouse, page, run_dbt, track

UTC = timezone.utc
Z95 = stats.norm.ppf(0.975)
# the campaign models and what they are built from (tests on other marts are left to their own suites)
CAMPAIGN_MODELS = ("--select", "+path:models/marts/campaigns", "--indirect-selection", "cautious")


def rows(con, sql, *params) -> list[dict]:
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r)) for r in cursor.fetchall()]


def copy_warehouse(source: Path, target: Path) -> Path:
    shutil.copy(source, target)
    wal = Path(str(source) + ".wal")
    if wal.exists():
        shutil.copy(wal, Path(str(target) + ".wal"))
    return target


def materialize(asset, database: Path):
    return dg.materialize([asset], resources={"warehouse": DuckDBResource(database=str(database))},
                          raise_on_error=False)


# ================================================================================================
# (a) statistics vs scipy / statsmodels on fixed data


@pytest.mark.parametrize("n, successes", [(4, 1), (20, 0), (205, 10), (8_950, 540), (1_000, 1_000)])
def test_wilson_interval_matches_statsmodels(n, successes):
    interval = wilson_interval(n, successes)
    low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
    assert interval.estimate == successes / n
    assert (interval.ci_low, interval.ci_high) == pytest.approx((low, high), abs=1e-12)


def test_mean_interval_matches_statsmodels_tconfint():
    values = np.array([0, 0, 0, 12_900, 0, 64_500, 0, 0, 29_900, 0, 0, 159_000], dtype=float)
    interval = mean_interval(len(values), values.mean(), values.std(ddof=1))
    low, high = DescrStatsW(values).tconfint_mean(alpha=0.05)
    assert (interval.ci_low, interval.ci_high) == pytest.approx((low, high), rel=1e-12)


def test_welch_on_conversion_counts_matches_statsmodels_compare_means_and_wald():
    control_n, control_x, treatment_n, treatment_x = 2_013, 101, 8_950, 540
    control = np.r_[np.ones(control_x), np.zeros(control_n - control_x)]
    treatment = np.r_[np.ones(treatment_x), np.zeros(treatment_n - treatment_x)]
    effect = welch_difference(proportion_summary(control_n, control_x), proportion_summary(treatment_n, treatment_x))
    compare = CompareMeans(DescrStatsW(treatment), DescrStatsW(control))
    low, high = compare.tconfint_diff(alpha=0.05, usevar="unequal")
    statistic, p_value, df = compare.ttest_ind(usevar="unequal")
    assert (effect.ci_low, effect.ci_high) == pytest.approx((low, high), rel=1e-9)
    assert effect.p_value == pytest.approx(p_value, rel=1e-9)
    assert effect.df == pytest.approx(df, rel=1e-9)
    assert effect.estimate / effect.std_error == pytest.approx(statistic, rel=1e-9)
    scipy_result = stats.ttest_ind(treatment, control, equal_var=False)
    assert effect.p_value == pytest.approx(scipy_result.pvalue, rel=1e-9)
    # at this size Welch on 0/1 rows and the Wald interval of two proportions agree closely
    wald_low, wald_high = confint_proportions_2indep(treatment_x, treatment_n, control_x, control_n,
                                                     method="wald", compare="diff")
    assert (effect.ci_low, effect.ci_high) == pytest.approx((wald_low, wald_high), abs=2e-5)
    wald = sm_proportion.test_proportions_2indep(treatment_x, treatment_n, control_x, control_n, method="wald")
    assert effect.p_value == pytest.approx(wald.pvalue, abs=5e-4)


def test_relative_uplift_delta_method_width_matches_the_katz_log_interval():
    # Delta-method SE of the ratio R = p_t/p_c is R·SE(log R); statsmodels' 'log' (Katz) interval is
    # exp(log R ± z·SE(log R)), so its width in log space gives the same SE (up to n/(n − 1)).
    control_n, control_x, treatment_n, treatment_x = 2_013, 101, 8_950, 540
    effect = relative_uplift_delta(proportion_summary(control_n, control_x),
                                   proportion_summary(treatment_n, treatment_x))
    low, high = confint_proportions_2indep(treatment_x, treatment_n, control_x, control_n,
                                           method="log", compare="ratio")
    ratio = (treatment_x / treatment_n) / (control_x / control_n)
    log_se = (math.log(high) - math.log(low)) / (2 * Z95)
    assert effect.estimate == pytest.approx(ratio - 1)
    assert effect.std_error == pytest.approx(ratio * log_se, rel=2e-3)


def test_welch_on_revenue_aggregates_matches_scipy_on_the_rows():
    control = np.array([0, 0, 35_000, 0, 0, 0, 12_000, 0, 0, 0], dtype=float)
    treatment = np.array([0, 49_000, 0, 0, 21_000, 0, 0, 77_000, 0, 0, 0, 8_000], dtype=float)
    summary = lambda v: (len(v), v.mean(), v.std(ddof=1) ** 2)  # noqa: E731 — what the mart gives
    effect = welch_difference(summary(control), summary(treatment))
    reference = stats.ttest_ind(treatment, control, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert (effect.ci_low, effect.ci_high) == pytest.approx((interval.low, interval.high), rel=1e-9)
    assert effect.p_value == pytest.approx(reference.pvalue, rel=1e-9)


def test_srm_over_bandit_rounds_matches_scipy_chisquare():
    rounds = [AllocationRound(1, "fixed", 0.1, {"A": 0.5, "B": 0.5}, 10_000, None),
              AllocationRound(2, "bandit", 0.1, {"A": 0.2, "B": 0.8}, 5_000, None)]
    intended = intended_arm_counts(rounds)
    assert intended == pytest.approx({HOLDOUT_ARM: 1_500, "A": 4_500 + 900, "B": 4_500 + 3_600})
    observed = {HOLDOUT_ARM: 1_530, "A": 5_350, "B": 8_120}
    check = sample_ratio_check(observed, intended)
    reference = stats.chisquare([1_530, 5_350, 8_120], [1_500, 5_400, 8_100])
    assert check.chi_squared == pytest.approx(reference.statistic)
    assert check.p_value == pytest.approx(reference.pvalue)
    assert check.df == 2 and not check.flagged
    broken = sample_ratio_check({HOLDOUT_ARM: 1_530, "A": 2_700, "B": 8_120}, intended)
    reference = stats.chisquare([1_530, 2_700, 8_120], np.array([1_500, 5_400, 8_100]) * 12_350 / 15_000)
    assert broken.p_value == pytest.approx(reference.pvalue) and broken.flagged
    # an arm the allocation never intended is a mismatch by definition
    assert sample_ratio_check({HOLDOUT_ARM: 10, "A": 50, "C": 1}, {HOLDOUT_ARM: 10, "A": 50}).flagged
    # no holdout intended and none observed: checked on the variants only
    assert sample_ratio_check({"A": 50, "B": 52}, {HOLDOUT_ARM: 0.0, "A": 51, "B": 51}).df == 1


# ================================================================================================
# (b) a hand-made campaign through dbt: exact numbers

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TINY = "tiny_promo"
TINY_ARMS = {HOLDOUT_ARM: ["h1", "h2", "h3", "h4"], "A": [f"a{i}" for i in range(1, 9)],
             "B": [f"b{i}" for i in range(1, 9)]}


def _message(mid, event, customer, at, campaign=TINY):
    return track(mid, event, at=at, user_id=customer, properties={"campaign_id": campaign, "campaign_name": campaign})


def _order(mid, customer, at, revenue):
    return track(mid, "Order Completed", at=at, user_id=customer, properties={"order_id": f"o-{mid}", "revenue": revenue})


TINY_EVENTS = [
    _order("h1o", "h1", "2026-03-04 10:00:00", 10_000),
    _order("h2o", "h2", "2026-03-02 08:00:00", 7_000),  # before the exposure
    _message("a1m1", "Email Opened", "a1", "2026-03-02 10:00:00"),
    _message("a1m2", "Email Clicked", "a1", "2026-03-02 10:01:00"),
    _order("a1o", "a1", "2026-03-02 10:30:00", 20_000),
    _message("a2m1", "Email Opened", "a2", "2026-03-02 12:00:00"),
    _order("a2o", "a2", "2026-03-09 09:00:00", 30_000),  # exactly at the window end: counts
    _message("a3m1", "Email Opened", "a3", "2026-03-03 08:00:00"),
    _order("a4o", "a4", "2026-03-09 09:00:01", 9_000),  # one second after the window
    _message("a5m1", "Email Delivered", "a5", "2026-03-02 09:05:10"),
    _message("b1m1", "Email Clicked", "b1", "2026-03-02 11:00:00"),  # a click without a tracked open
    _order("b1o1", "b1", "2026-03-02 11:20:00", 15_000),
    _order("b1o2", "b1", "2026-03-05 12:00:00", 5_000),
    _order("b2o", "b2", "2026-03-06 12:00:00", 40_000),
    _message("b3m1", "Email Opened", "b3", "2026-03-02 13:00:00"),
    _message("b4m1", "Email Opened", "b4", "2026-03-02 13:00:00", campaign="another_campaign"),
    _order("b5o", "b5", "2026-03-07 12:00:00", 25_000),
    page("z1", at="2026-03-12 12:00:00", anonymous_id="dev-z", path="/"),  # data runs past every window
]
TINY_REVENUE = {  # per customer, in the window
    HOLDOUT_ARM: [10_000, 0, 0, 0],
    "A": [20_000, 30_000, 0, 0, 0, 0, 0, 0],
    "B": [20_000, 40_000, 0, 0, 25_000, 0, 0, 0],
}


def write_tiny_campaign(path: Path) -> None:
    con = duckdb.connect(str(path))
    Ledger(con)
    for arm, customers in TINY_ARMS.items():
        for customer in customers:
            con.execute("insert into activations.assignments (campaign, customer_id, arm, round, assigned_at) "
                        "values (?, ?, ?, 1, ?)", [TINY, customer, arm, T0])
            if arm == HOLDOUT_ARM:
                continue
            status = "rejected" if customer == "b8" else "ok"
            con.execute("insert into activations.sync_log (run_id, sync_name, key, operation, status, message, "
                        "attempt, logged_at, channel) values ('run-1', ?, ?, 'add', ?, '', 1, ?, 'email')",
                        [TINY, customer, status, T0 + timedelta(minutes=5)])
    con.execute("insert into activations.allocation_rounds (campaign, round, decided_at, mode, holdout_share, weights) "
                "values (?, 1, ?, 'fixed', 0.2, ?)", [TINY, T0 - timedelta(minutes=1), json.dumps({"A": 0.5, "B": 0.5})])
    con.close()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("campaign_tiny") / "warehouse.duckdb"
    # 1. a fresh warehouse: no campaign has ever run, the activations tables do not exist
    con = build_warehouse(path, events=TINY_EVENTS, args=CAMPAIGN_MODELS)
    fresh = {table: con.execute(f"select count(*) from {table}").fetchone()[0]
             for table in ("staging.stg_activations__assignments", "staging.stg_activations__sync_log",
                           "staging.stg_activations__allocation_rounds", "marts.fct_campaign_arm_results",
                           "marts.fct_campaign_funnel", "marts.fct_campaign_opened_not_clicked",
                           "marts.fct_campaign_allocation_rounds")}
    con.close()
    # 2. the campaign runs (assignments, sends, allocation), the next build measures it
    write_tiny_campaign(path)
    run_dbt(path, "build", *CAMPAIGN_MODELS)
    con = duckdb.connect(str(path), read_only=True)
    yield {"con": con, "path": path, "fresh": fresh}
    con.close()


def test_a_fresh_warehouse_builds_empty_campaign_models(tiny):
    assert tiny["fresh"] == dict.fromkeys(tiny["fresh"], 0)
    with pytest.raises(CampaignNotFound):
        campaign_results(tiny["con"], "never_ran")


def test_tiny_campaign_arm_results_exact(tiny):
    got = {r["arm"]: r for r in rows(tiny["con"], "select * from marts.fct_campaign_arm_results where campaign = ?", TINY)}
    expected = {
        HOLDOUT_ARM: dict(exposed=4, sent=0, delivered=0, opened=0, clicked=0, converted=1, conversions=1, revenue=10_000),
        "A": dict(exposed=8, sent=8, delivered=1, opened=3, clicked=1, converted=2, conversions=2, revenue=50_000),
        "B": dict(exposed=8, sent=7, delivered=0, opened=1, clicked=1, converted=3, conversions=4, revenue=85_000),
    }
    assert set(got) == set(expected)
    for arm, values in expected.items():
        row = got[arm]
        assert {k: (float(row[k]) if k == "revenue" else row[k]) for k in values} == values, arm
        revenue = np.array(TINY_REVENUE[arm], dtype=float)
        assert row["conversion_rate"] == pytest.approx(values["converted"] / values["exposed"])
        assert row["revenue_per_customer"] == pytest.approx(revenue.mean())
        assert row["revenue_stddev"] == pytest.approx(revenue.std(ddof=1))
        assert row["revenue_sum_squares"] == pytest.approx((revenue**2).sum())
        assert row["exposed_window_elapsed"] == values["exposed"]
        assert (row["goal_event"], row["attribution_days"], row["is_holdout"]) == ("Order Completed", 7, arm == HOLDOUT_ARM)


def test_tiny_campaign_funnel_and_follow_up_cohort(tiny):
    funnel = rows(tiny["con"], "select arm, step_name, customers, is_step_tracked from marts.fct_campaign_funnel "
                  "where campaign = ? order by arm, step_number", TINY)
    by_arm = {}
    for r in funnel:
        by_arm.setdefault(r["arm"], []).append(r["customers"])
    # A: a5's delivery receipt, a1-a3 opens (delivery implied), a1 clicks and orders after the click
    # B: b8's send was rejected; b1 clicked without a tracked open; b1 ordered after the click
    assert by_arm == {"A": [8, 4, 3, 1, 1], "B": [7, 2, 2, 1, 1], HOLDOUT_ARM: [0, 0, 0, 0, 0]}
    assert all(r["is_step_tracked"] for r in funnel)
    cohort = rows(tiny["con"], "select customer_id, arm, opened_at, is_converted from marts.fct_campaign_opened_not_clicked "
                  "where campaign = ? order by customer_id", TINY)
    assert [(r["customer_id"], r["arm"], r["opened_at"], r["is_converted"]) for r in cohort] == [
        ("a2", "A", datetime(2026, 3, 2, 12), True),
        ("a3", "A", datetime(2026, 3, 3, 8), False),
        ("b3", "B", datetime(2026, 3, 2, 13), False),
    ]


def test_tiny_campaign_results_statistics(tiny):
    results = campaign_results(tiny["con"], TINY)
    assert list(results.arms) == [HOLDOUT_ARM, "A", "B"]
    assert (results.mode, results.holdout_share, results.exposed) == ("fixed", 0.2, 20)
    # intended 20 × (0.2, 0.4, 0.4) = (4, 8, 8): exactly what was observed
    assert results.intended_counts == pytest.approx({HOLDOUT_ARM: 4, "A": 8, "B": 8})
    assert results.srm.chi_squared == pytest.approx(0) and results.srm.p_value == pytest.approx(1)
    assert not results.srm_flagged and results.warnings == []
    for arm, arm_result in results.arms.items():
        low, high = proportion_confint(arm_result.converted, arm_result.exposed, method="wilson")
        assert (arm_result.conversion_rate.ci_low, arm_result.conversion_rate.ci_high) == pytest.approx((low, high))
        revenue = np.array(TINY_REVENUE[arm], dtype=float)
        low, high = DescrStatsW(revenue).tconfint_mean()
        assert arm_result.revenue_per_customer.estimate == pytest.approx(revenue.mean())
        assert (arm_result.revenue_per_customer.ci_low, arm_result.revenue_per_customer.ci_high) == pytest.approx((low, high))
    control_conv = np.array([1, 0, 0, 0], dtype=float)
    for arm, converters in (("A", 2), ("B", 3)):
        conv = np.r_[np.ones(converters), np.zeros(8 - converters)]
        comparison = results.comparisons[arm]["conversion_rate"]
        low, high = CompareMeans(DescrStatsW(conv), DescrStatsW(control_conv)).tconfint_diff(usevar="unequal")
        assert comparison.absolute.estimate == pytest.approx(converters / 8 - 0.25)
        assert (comparison.absolute.ci_low, comparison.absolute.ci_high) == pytest.approx((low, high))
        assert comparison.relative.estimate == pytest.approx((converters / 8) / 0.25 - 1)
        revenue = np.array(TINY_REVENUE[arm], dtype=float)
        control = np.array(TINY_REVENUE[HOLDOUT_ARM], dtype=float)
        reference = stats.ttest_ind(revenue, control, equal_var=False).confidence_interval(0.95)
        money = results.comparisons[arm]["revenue_per_customer"]
        assert money.absolute.estimate == pytest.approx(revenue.mean() - control.mean())
        assert (money.absolute.ci_low, money.absolute.ci_high) == pytest.approx((reference.low, reference.high))
        # delta method: Var = σc²·μt²/(μc⁴·nc) + σt²/(μc²·nt)
        variance = (control.var(ddof=1) * revenue.mean() ** 2 / (control.mean() ** 4 * 4)
                    + revenue.var(ddof=1) / (control.mean() ** 2 * 8))
        assert money.relative.std_error == pytest.approx(math.sqrt(variance))
        assert 0 <= comparison.probability_to_beat_control <= 1
    assert sum(a.probability_best for a in results.arms.values()) == pytest.approx(1)
    text = report_text(results, next_allocation(results, seed=1))
    for needle in ("tiny_promo", "holdout", "25.00%", "Sample ratio", "Next allocation", "holdout 20.0% (fixed)"):
        assert needle in text
    assert "█" in results_chart(results) and "| arm |" in results_markdown(results)
    spec = results_vega_lite(results)
    assert spec["$schema"].endswith("v5.json") and len(spec["data"]["values"]) == 3


def test_tiny_campaign_dagster_asset(tiny, tmp_path):
    asset = build_campaign_results_asset(TINY)
    assert asset.key == campaign_results_key(TINY) == dg.AssetKey(["campaigns", "tiny_promo_results"])
    spec = next(iter(asset.specs))
    assert spec.group_name == "campaigns"
    assert {d.asset_key for d in spec.deps} >= {dg.AssetKey(["marts", "fct_campaign_arm_results"])}
    assert asset.op.pool == "duckdb"
    path = copy_warehouse(tiny["path"], tmp_path / "warehouse.duckdb")  # the fixture holds a read-only connection
    result = materialize(asset, path)
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["srm_flagged"].value is False
    assert metadata["next_allocation"].value["holdout_share"] == 0.2
    assert "| arm |" in metadata["arms"].value and "█" in metadata["chart"].value
    assert set(metadata["probability_best"].value) == {HOLDOUT_ARM, "A", "B"}
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == SRM_CHECK and check.passed
    assert [a.key for a in campaign_results_assets(["x-1", "x-1", "y"])] == [
        dg.AssetKey(["campaigns", "x_1_results"]), dg.AssetKey(["campaigns", "y_results"])]
    # A campaign nobody was assigned to yet is "no exposures yet", not a failed run.
    missing = materialize(build_campaign_results_asset("never_ran"), path)
    assert missing.success
    [event] = missing.get_asset_materialization_events()
    assert event.materialization.metadata["status"].value == "no exposures yet"


# ================================================================================================
# (c)-(e) a simulated campaign of ~20k customers, end to end

CAMPAIGN = "spring_sale"
CUSTOMERS = 20_000
HOLDOUT_SHARE = 0.10
EFFECTS = campaign_effects(0.05, {"A": 1.2, "B": 1.5}, open_rate={"A": 0.3, "B": 0.25}, click_rate=0.2,
                           revenue_mean=60_000)
SEED = 7


def run_round(path: Path, landing: Path, round_number: int, customers: list[str], weights: dict[str, float],
              mode: str, start: datetime) -> None:
    """Assign (sticky), record the round and the sends of the variants, as the sync side does."""
    con = duckdb.connect(str(path))
    Ledger(con)
    known = dict(con.execute("select customer_id, arm from activations.assignments where campaign = ?",
                             [CAMPAIGN]).fetchall())
    new = [c for c in customers if c not in known]
    arms = assign(CAMPAIGN, new, weights, HOLDOUT_SHARE, sticky_arms=known)
    times = [start + timedelta(seconds=i % 3_600) for i in range(len(new))]
    con.execute("insert into activations.allocation_rounds (campaign, round, decided_at, mode, holdout_share, weights) "
                "values (?, ?, ?, ?, ?, ?)", [CAMPAIGN, round_number, start - timedelta(minutes=1), mode,
                                              HOLDOUT_SHARE, json.dumps(weights)])
    con.executemany("insert into activations.assignments (campaign, customer_id, arm, round, assigned_at) "
                    "values (?, ?, ?, ?, ?)", [[CAMPAIGN, c, str(a), round_number, t] for c, a, t in zip(new, arms, times)])
    con.executemany("insert into activations.sync_log (run_id, sync_name, key, operation, status, message, attempt, "
                    "logged_at, channel) values (?, ?, ?, 'add', 'ok', '', 1, ?, 'email')",
                    [[f"run-{round_number}", CAMPAIGN, c, t + timedelta(minutes=5)]
                     for c, a, t in zip(new, arms, times) if a != HOLDOUT_ARM])
    con.close()


def simulate_and_load(path: Path, landing: Path):
    con = duckdb.connect(str(path))
    simulation = simulate_campaign_responses(con, CAMPAIGN, landing, EFFECTS, seed=SEED)
    load_events(con, landing_files(str(landing), "events"))
    load_orders(con, landing_files(str(landing), "orders"))
    con.close()
    return simulation


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    root = tmp_path_factory.mktemp("campaign_e2e")
    path, landing = root / "warehouse.duckdb", root / "landing"
    customers = [f"mbr_{i:08d}" for i in range(CUSTOMERS)]
    run_round(path, landing, 1, customers, {"A": 0.5, "B": 0.5}, "fixed", T0)
    simulation = simulate_and_load(path, landing)
    run_dbt(path, "build", *CAMPAIGN_MODELS)
    con = duckdb.connect(str(path), read_only=True)
    results = campaign_results(con, CAMPAIGN, seed=SEED)
    print("\n" + report_text(results, next_allocation(results, seed=SEED)))
    yield {"con": con, "path": path, "landing": landing, "root": root, "simulation": simulation, "results": results}
    con.close()


def test_simulation_is_measured_exactly(campaign):
    simulation, results = campaign["simulation"], campaign["results"]
    assert simulation.assigned == {arm: results.arms[arm].exposed for arm in simulation.assigned}
    assert sum(simulation.assigned.values()) == CUSTOMERS
    # every simulated conversion falls in its window, so the marts count exactly what was simulated
    assert {arm: results.arms[arm].converted for arm in simulation.converted} == simulation.converted
    assert {arm: results.arms[arm].revenue for arm in simulation.revenue} == pytest.approx(simulation.revenue)
    assert simulation.orders_written == sum(simulation.converted.values())
    assert campaign["con"].execute("select count(*) from raw.quarantine").fetchone() == (0,)
    # revenue per converter ≈ revenue_mean (catalogue prices × quantities around a Gamma target)
    per_order = sum(simulation.revenue.values()) / sum(simulation.converted.values())
    assert per_order == pytest.approx(60_000, rel=0.1)


def test_measured_uplift_covers_the_true_uplift(campaign):
    simulation, results = campaign["simulation"], campaign["results"]
    for arm in ("A", "B"):
        effect = results.comparisons[arm]["conversion_rate"].absolute
        truth = simulation.true_uplift(arm)
        assert effect.ci_low <= truth <= effect.ci_high, (arm, truth, effect)
        relative = results.comparisons[arm]["conversion_rate"].relative
        assert relative.ci_low <= simulation.true_relative_uplift(arm) <= relative.ci_high
    assert simulation.true_uplift("A") == pytest.approx(0.01) and simulation.true_uplift("B") == pytest.approx(0.025)
    assert results.comparisons["B"]["conversion_rate"].probability_to_beat_control > 0.95
    assert results.best_arm() == simulation.true_best_arm() == "B"
    assert not results.srm_flagged and results.srm.p_value > 0.001
    assert results.arms[HOLDOUT_ARM].observed_share == pytest.approx(HOLDOUT_SHARE, abs=0.01)
    funnel = {r["step_name"]: r["rate_from_previous_step"] for r in rows(
        campaign["con"], "select * from marts.fct_campaign_funnel where campaign = ? and arm = 'A'", CAMPAIGN)}
    assert funnel["opened"] == pytest.approx(0.3, abs=0.02) and funnel["clicked"] == pytest.approx(0.2, abs=0.03)


def test_uplift_intervals_cover_the_truth_95_percent_of_the_time(campaign):
    # The same 20k assignments, 100 other seeds (outcomes drawn, nothing written): the Welch intervals
    # of the two variants must cover the true uplift about 95% of the time — the single seed above is
    # one draw of this.
    covered, total = 0, 0
    for seed in range(100):
        simulation = simulate_campaign_responses(campaign["con"], CAMPAIGN, campaign["root"] / "unused", EFFECTS,
                                                 seed=1_000 + seed, write=False)
        control = proportion_summary(simulation.assigned[HOLDOUT_ARM], simulation.converted[HOLDOUT_ARM])
        for arm in ("A", "B"):
            effect = welch_difference(control, proportion_summary(simulation.assigned[arm], simulation.converted[arm]))
            covered += effect.ci_low <= simulation.true_uplift(arm) <= effect.ci_high
            total += 1
    assert not (campaign["root"] / "unused").exists()
    assert 0.91 <= covered / total <= 0.99, covered


def test_a_broken_assignment_is_flagged(campaign, tmp_path):
    path = copy_warehouse(campaign["path"], tmp_path / "broken.duckdb")
    con = duckdb.connect(str(path))
    con.execute("""delete from activations.assignments where campaign = ? and arm = 'A'
                   and customer_id in (select customer_id from activations.assignments
                                       where campaign = ? and arm = 'A' order by customer_id limit 4500)""",
                [CAMPAIGN, CAMPAIGN])
    con.close()
    run_dbt(path, "build", "--select", "path:models/staging/activations+")
    con = duckdb.connect(str(path), read_only=True)
    results = campaign_results(con, CAMPAIGN, seed=SEED)
    con.close()
    assert results.srm_flagged and results.srm.p_value < 1e-6
    assert "MISMATCH" in report_text(results)
    result = materialize(build_campaign_results_asset(CAMPAIGN), path)
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == SRM_CHECK and not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR


def test_next_allocation_moves_traffic_to_the_best_variant(campaign):
    results = campaign["results"]
    allocation = next_allocation(results, floor=0.01, min_exposures=100, seed=SEED)
    assert set(allocation) == {"A", "B"} and sum(allocation.values()) == pytest.approx(1)
    assert allocation["B"] > 0.9 and allocation["A"] >= 0.01
    assert allocation.holdout_share == HOLDOUT_SHARE
    assert allocation.arm_shares()[HOLDOUT_ARM] == HOLDOUT_SHARE
    # until every variant has min_exposures the split stays equal
    assert next_allocation(results, min_exposures=50_000, seed=SEED) == {"A": 0.5, "B": 0.5}


def test_a_bandit_round_keeps_the_holdout_share_and_passes_srm(campaign, tmp_path):
    path = copy_warehouse(campaign["path"], tmp_path / "bandit.duckdb")
    landing = tmp_path / "landing"
    shutil.copytree(campaign["landing"], landing)
    weights = dict(next_allocation(campaign["results"], seed=SEED))
    round_two = [f"mbr_{i:08d}" for i in range(CUSTOMERS - 2_000, CUSTOMERS + 6_000)]  # 2,000 already assigned
    run_round(path, landing, 2, round_two, weights, "bandit", T0 + timedelta(days=1))
    simulation = simulate_and_load(path, landing)
    # the new events fall on landing days older than the incremental lookback: rebuild fct_events
    run_dbt(path, "build", "--full-refresh", *CAMPAIGN_MODELS)
    con = duckdb.connect(str(path), read_only=True)
    results = campaign_results(con, CAMPAIGN, seed=SEED)
    round_arms = dict(con.execute("select arm, count(*) from activations.assignments where campaign = ? and round = 2 "
                                  "group by arm", [CAMPAIGN]).fetchall())
    con.close()
    assert sum(round_arms.values()) == 6_000  # sticky: the 2,000 known customers kept their round-1 arm
    assert round_arms[HOLDOUT_ARM] / 6_000 == pytest.approx(HOLDOUT_SHARE, abs=0.015)
    assert round_arms["B"] > 10 * round_arms["A"]
    assert results.mode == "bandit" and results.holdout_share == HOLDOUT_SHARE
    expected = {HOLDOUT_ARM: 2_600, "A": 9_000 + 5_400 * weights["A"], "B": 9_000 + 5_400 * weights["B"]}
    assert results.intended_counts == pytest.approx(expected)
    assert not results.srm_flagged, results.srm
    # a check that ignored the rounds (the first split for everybody) would cry wolf
    naive = sample_ratio_check({a: r.exposed for a, r in results.arms.items()},
                               {HOLDOUT_ARM: 0.1, "A": 0.45, "B": 0.45})
    assert naive.flagged
    assert results.arms[HOLDOUT_ARM].converted == simulation.converted[HOLDOUT_ARM]


def test_the_holdout_is_never_sent_anything(campaign):
    con, simulation = campaign["con"], campaign["simulation"]
    assert con.execute("""select count(*) from activations.sync_log as s
                          join activations.assignments as a on a.campaign = s.sync_name and a.customer_id = s.key
                          where a.campaign = ? and a.arm = 'holdout'""", [CAMPAIGN]).fetchone() == (0,)
    assert simulation.sent[HOLDOUT_ARM] == 0
    assert con.execute("""select count(*) from marts.fct_events as e
                          join activations.assignments as a on a.customer_id = e.customer_id
                          where a.campaign = ? and a.arm = 'holdout' and e.message_campaign_id = ?""",
                       [CAMPAIGN, CAMPAIGN]).fetchone() == (0,)
    assert campaign["results"].arms[HOLDOUT_ARM].sent == 0
    assert campaign["results"].arms[HOLDOUT_ARM].converted > 0  # …but it converts, at the baseline rate


def test_simulation_is_deterministic_and_day_by_day(campaign, tmp_path):
    con = campaign["con"]
    first = simulate_campaign_responses(con, CAMPAIGN, tmp_path / "one", EFFECTS, seed=SEED)
    again = simulate_campaign_responses(con, CAMPAIGN, tmp_path / "two", EFFECTS, seed=SEED)
    files = lambda root: {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}  # noqa: E731
    assert files(tmp_path / "one") == files(tmp_path / "two")
    assert first.converted == again.converted
    day = datetime(2026, 3, 3).date()
    single = simulate_campaign_responses(con, CAMPAIGN, tmp_path / "day", EFFECTS, day=day, seed=SEED)
    assert files(tmp_path / "day") == {k: v for k, v in files(tmp_path / "one").items() if f"date={day}" in str(k)}
    assert single.converted == first.converted  # the truth does not depend on the day written
    other = simulate_campaign_responses(con, CAMPAIGN, tmp_path / "other", EFFECTS, seed=SEED + 1)
    assert other.converted != first.converted
    with pytest.raises(ValueError, match="no effects"):
        simulate_campaign_responses(con, CAMPAIGN, tmp_path / "x", {"A": EFFECTS["A"]}, seed=SEED)


def test_the_audience_asset_takes_bandit_weights_from_results_unless_srm_fails(campaign, tmp_path):
    from activations.audiences.spec import parse_spec
    from orchestration.defs.activations.assets import _bandit_weights

    spec = parse_spec({
        "name": CAMPAIGN, "description": "d", "source": {"customers": True}, "channel": "email",
        "destination": "email", "advertising": False, "fields": {"email": "email"},
        "experiment": {"holdout": HOLDOUT_SHARE, "allocation": "bandit", "floor": 0.02,
                       "variants": [{"name": "A", "weight": 0.5}, {"name": "B", "weight": 0.5}]}})
    weights = _bandit_weights(campaign["con"], spec)
    assert set(weights) == {"A", "B"} and sum(weights.values()) == pytest.approx(1)
    assert weights["B"] > 0.9 and weights["A"] >= 0.02
    assert _bandit_weights(duckdb.connect(), spec) is None  # no campaign marts yet: keep the last weights
    path = copy_warehouse(campaign["path"], tmp_path / "broken.duckdb")
    con = duckdb.connect(str(path))
    con.execute("delete from activations.assignments where campaign = ? and arm = 'B' and customer_id like '%1'",
                [CAMPAIGN])
    con.close()
    run_dbt(path, "build", "--select", "path:models/staging/activations+")
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert _bandit_weights(con, spec) is None  # a sample-ratio mismatch must not steer traffic
    finally:
        con.close()
