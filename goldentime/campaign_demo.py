"""The demo's campaign: several daily sends of an A/B/N audience with a holdout, simulated responses
with known true effects, measurement by dbt, and the bandit moving traffic between sends.

Every step is what production does, through Dagster: the audience asset sends (recording arms
first), the simulated customers' events land in the landing zone and are ingested like any other
day, ``campaign_measurement_job`` rebuilds the campaign marts and results, and the next send takes
the Thompson-sampling weights from those results.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone
from typing import Callable
from zoneinfo import ZoneInfo

import duckdb

from goldentime import settings

CAMPAIGN = "spring_sale"
# True effects of the simulation: the holdout converts at 8% within 7 days; the variants multiply it.
BASELINE_CONVERSION = 0.08
TRUE_LIFTS = {"discount": 1.25, "free_shipping": 1.0, "bestseller": 1.75}
OPEN_RATES = {"discount": 0.30, "free_shipping": 0.25, "bestseller": 0.35}
SEND_LOCAL_TIME = time(10, 0)  # 10:00 in Seoul: day time, so the night-time rule defers nothing
ATTRIBUTION_DAYS = 7


def send_times(data_now: datetime, count: int) -> list[datetime]:
    """10:00 Seoul time on each of the `count` days after the shop's last event, in UTC."""
    seoul = ZoneInfo("Asia/Seoul")
    first_day = data_now.astimezone(seoul).date() + timedelta(days=1)
    return [datetime.combine(first_day + timedelta(days=k), SEND_LOCAL_TIME, seoul).astimezone(timezone.utc)
            for k in range(count)]


def _first_send() -> datetime | None:
    con = duckdb.connect(settings.warehouse_path(), read_only=True)
    try:
        return con.execute("select min(assigned_at) from activations.assignments where campaign = ?",
                           [CAMPAIGN]).fetchall()[0][0]
    finally:
        con.close()


def _send_summary(send_at: datetime) -> str:
    """The weights of the send at `send_at` and the customers it assigned, per arm."""
    con = duckdb.connect(settings.warehouse_path(), read_only=True)
    try:
        arms = con.execute("select arm, count(*) from activations.assignments where campaign = ? and assigned_at = ? "
                           "group by arm order by arm", [CAMPAIGN, send_at]).fetchall()
        weights = con.execute(
            "select weights from activations.allocation_rounds where campaign = ? and round = (select max(round) "
            "from activations.assignments where campaign = ? and assigned_at = ?)",
            [CAMPAIGN, CAMPAIGN, send_at]).fetchall()
    finally:
        con.close()
    shares = json.loads(weights[0][0]) if weights else {}
    return (f"weights {', '.join(f'{arm} {share:.0%}' for arm, share in shares.items()) or '-'}; newly assigned: "
            + (", ".join(f"{arm} {n}" for arm, n in arms) or "nobody (everyone eligible is in already)"))


def run_demo_campaign(dagster: Callable[..., None], env: dict, data_now: datetime, ingest_selection: str,
                      echo: Callable[[str], None], rounds: int = 3, seed: int = 42) -> None:
    """`rounds` sends in all: the first went out with the other audiences (activations_job), the
    others on the following days, each after measuring what happened since the previous one."""
    from activations.experiments.results import campaign_results, next_allocation, report_text
    from goldentime.sample_data.campaigns import campaign_effects, simulate_campaign_responses

    effects = campaign_effects(BASELINE_CONVERSION, TRUE_LIFTS, open_rate=OPEN_RATES, click_rate=0.3)
    landing = settings.landing_url()
    first_send = _first_send()
    if first_send is None:
        echo(f"campaign {CAMPAIGN}: nobody assigned by the first sync; skipped")
        return
    echo(f"\nCampaign {CAMPAIGN}: {rounds} daily sends (A/B/N + 10% holdout, bandit); true 7-day conversion: "
         f"holdout {BASELINE_CONVERSION:.0%}, " + ", ".join(
             f"{arm} {BASELINE_CONVERSION * lift:.0%}" for arm, lift in TRUE_LIFTS.items()))
    echo(f"  send 1 at {first_send:%Y-%m-%d %H:%M} UTC (with the other audiences): {_send_summary(first_send)}")
    measured_until = first_send.date() - timedelta(days=1)

    def catch_up(until) -> None:
        """Simulate the customers' responses landing up to `until`, ingest those days, measure."""
        nonlocal measured_until
        days = [measured_until + timedelta(days=k) for k in range(1, (until - measured_until).days + 1)]
        if not days:
            return
        con = duckdb.connect(settings.warehouse_path(), read_only=True)
        try:
            for day in days:
                simulate_campaign_responses(con, CAMPAIGN, landing, effects, day=day, seed=seed)
        finally:
            con.close()
        dagster(["asset", "materialize", "--select", ingest_selection, "--partition-range",
                 f"{days[0].isoformat()}...{days[-1].isoformat()}"], env, log_name="demo-campaign-ingest",
                what=f"ingestion of {days[0]}…{days[-1]}")
        dagster(["job", "execute", "-j", "campaign_measurement_job"], env, log_name="demo-campaign-measure",
                what="campaign measurement")
        measured_until = until

    for number, send_at in enumerate(send_times(first_send, rounds - 1), start=2):
        catch_up(send_at.date() - timedelta(days=1))
        env[settings.AS_OF_ENV] = send_at.isoformat()
        dagster(["asset", "materialize", "--select", f"activations/{CAMPAIGN}"], env,
                log_name=f"demo-campaign-send-{number}", what=f"send {number} of {CAMPAIGN}")
        echo(f"  send {number} at {send_at:%Y-%m-%d %H:%M} UTC: {_send_summary(send_at)}")

    # Let every attribution window close, then the final measurement.
    catch_up(measured_until + timedelta(days=ATTRIBUTION_DAYS + 2))
    con = duckdb.connect(settings.warehouse_path(), read_only=True)
    try:
        results = campaign_results(con, CAMPAIGN, seed=seed)
    finally:
        con.close()
    echo("")
    echo(report_text(results, next_allocation(results, floor=0.05, min_exposures=100, seed=seed)))
