"""Audiences: specs, compilation to parameterised SQL, golden time, ranking, priorities, the sending
law inside the sync engine, holdouts recorded before sending, payloads, preview, Dagster asset.

The warehouse here is hand-made (marts.dim_customers, ml.customer_scores, cohort members with just
the columns audiences read), so every count below is exact and known in advance.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
import yaml

from activations.audiences.evaluate import evaluate, overlaps
from activations.audiences.exposures import render_exposures
from activations.audiences.messages import MessageError, PayloadBuilder
from activations.audiences.run import activate
from activations.audiences.spec import AudienceSpecError, load_config, load_specs, parse_spec
from activations.destinations import OutboxDestination
from activations.sync.ledger import SCHEMA

ROOT = Path(__file__).resolve().parents[1]
# 12:00 UTC = 21:00 in Seoul: night time for Korean customers, day time in London.
AS_OF = datetime(2026, 3, 1, 3, 0, tzinfo=timezone.utc)  # 12:00 KST
CONFIG = {
    "sender": {"name": "골든타임샵", "contact": "1588-0000", "opt_out": "080-000-0000"},
    "unsubscribe": {"base_url": "https://shop.example/unsubscribe", "secret_env": "TEST_UNSUB_SECRET"},
    "frequency_caps": [{"channel": "sms", "max_sends": 2, "period": "7d"}],
    "destinations": {"local": {}},
}
ENV = {"TEST_UNSUB_SECRET": "s3cret"}


def customer(i, **overrides):
    row = {
        "customer_id": f"c{i:02d}", "is_member": True, "name": f"고객{i}", "email": f"c{i}@example.com",
        "phone": f"010-0000-{i:04d}", "timezone": "Asia/Seoul", "consent_email": True, "consent_sms": True,
        "consent_push": False, "consent_kakao": False, "consent_night": False,
        "traits_updated_at": datetime(2026, 1, 1), "orders_count": i % 3, "revenue": 10_000.0 * i,
        "first_order_at": None, "last_order_at": None, "signed_up_at": datetime(2026, 2, 1),
        "lifecycle_stage": "onboarding", "sessions_count": i, "favourite_category": "fashion",
    }
    row.update(overrides)
    return row


def build_warehouse(con, customers, scores=None, cohort=None):
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute("CREATE SCHEMA IF NOT EXISTS ml")
    con.execute("""CREATE OR REPLACE TABLE marts.dim_customers (customer_id VARCHAR, is_member BOOLEAN, name VARCHAR,
        email VARCHAR, phone VARCHAR, timezone VARCHAR, consent_email BOOLEAN, consent_sms BOOLEAN,
        consent_push BOOLEAN, consent_kakao BOOLEAN, consent_night BOOLEAN, traits_updated_at TIMESTAMP,
        orders_count INTEGER, revenue DOUBLE, first_order_at TIMESTAMP, last_order_at TIMESTAMP,
        signed_up_at TIMESTAMP, lifecycle_stage VARCHAR, sessions_count INTEGER, favourite_category VARCHAR)""")
    columns = ["customer_id", "is_member", "name", "email", "phone", "timezone", "consent_email", "consent_sms",
               "consent_push", "consent_kakao", "consent_night", "traits_updated_at", "orders_count", "revenue",
               "first_order_at", "last_order_at", "signed_up_at", "lifecycle_stage", "sessions_count",
               "favourite_category"]
    con.executemany(f"INSERT INTO marts.dim_customers VALUES ({', '.join('?' for _ in columns)})",
                    [[c[k] for k in columns] for c in customers])
    con.execute("""CREATE OR REPLACE TABLE ml.customer_scores (customer_id VARCHAR, scoring_date DATE,
        predicted_ltv DOUBLE, save_priority DOUBLE, value_tier VARCHAR, recommended_products VARCHAR[])""")
    for customer_id, ltv in (scores or {}).items():
        # An older scoring date with other numbers: only the latest may count.
        con.execute("INSERT INTO ml.customer_scores VALUES (?, DATE '2026-02-01', 1, 1, 'low', [])", [customer_id])
        con.execute("INSERT INTO ml.customer_scores VALUES (?, DATE '2026-02-28', ?, ?, ?, ['P1', 'P2'])",
                    [customer_id, ltv, ltv / 2, "high" if ltv >= 800 else "low"])
    con.execute("""CREATE OR REPLACE TABLE marts.fct_behavioural_cohort_members (snapshot_date DATE,
        cohort_name VARCHAR, customer_id VARCHAR, last_qualifying_event_at TIMESTAMP)""")
    for customer_id, at in (cohort or {}).items():
        con.execute("INSERT INTO marts.fct_behavioural_cohort_members VALUES (DATE '2026-02-28', 'carts', ?, ?)",
                    [customer_id, at])
        # An older snapshot must be ignored.
        con.execute("INSERT INTO marts.fct_behavioural_cohort_members VALUES (DATE '2026-02-20', 'carts', 'c99', ?)",
                    [at])


def spec(**overrides):
    raw = {
        "name": "test_audience", "description": "A test audience.", "source": {"customers": True},
        "channel": "email", "destination": "email", "advertising": True,
        "fields": {"email": "email"},
        "message": {"subject": "{{ name }}님 안녕하세요", "body_text": "쿠폰을 드려요"},
    }
    raw.update(overrides)
    return parse_spec(raw, f"{raw['name']}.yml")


@pytest.fixture
def con():
    connection = duckdb.connect()
    build_warehouse(connection, [customer(i) for i in range(1, 11)],
                    scores={f"c{i:02d}": 100.0 * i for i in range(1, 11)})
    yield connection
    connection.close()


def members(con, *specs_, as_of=AS_OF):
    specs = {s.name: s for s in specs_}
    return {name: ev.members["customer_id"].to_list() for name, ev in evaluate(con, specs, as_of).items()}


# --- specs -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, message", [
    ({"advertising": "yes"}, "'advertising' must be true or false"),
    ({"channel": "fax"}, "channel 'fax' is not one of"),
    ({"filters": [{"field": "x", "op": "like", "value": 1}]}, "op 'like' is not one of"),
    ({"experiment": {"variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.4}]}}, "must sum to 1"),
    ({"experiment": {"holdout": 1.0}}, "holdout must be in [0, 1)"),
    ({"experiment": {"variants": [{"name": "holdout"}]}}, "not 'holdout'"),
    ({"channel": "kakao", "destination": "kakao"}, "Alimtalk carries information only"),
    ({"golden_time": {"delay": "soon"}}, "is not a duration"),
    ({"source": {"cohort": "a", "customers": True}}, "exactly one of"),
])
def test_bad_specs_name_the_file_and_the_field(overrides, message):
    with pytest.raises(AudienceSpecError) as info:
        spec(**overrides)
    assert message in str(info.value)
    assert str(info.value).startswith("test_audience.yml")


def test_shipped_audiences_load_and_exposures_are_up_to_date():
    specs = load_specs(ROOT / "audiences")
    assert {"cart_abandonment", "onboarding_nudge", "repurchase_7d", "winback_high_ltv", "vip_top20",
            "signup_promo_visitors"} <= set(specs)
    config = load_config(ROOT / "audiences")
    for s in specs.values():
        assert s.destination in config["destinations"]["local"], s.name
        assert s.destination in config["destinations"]["production"], s.name
    exposures = (ROOT / "dbt_project" / "models" / "exposures.yml").read_text(encoding="utf-8")
    assert exposures == render_exposures(specs), "run `goldentime audiences exposures`"
    assert len(yaml.safe_load(exposures)["exposures"]) == len(specs)


# --- compilation -----------------------------------------------------------------------------------

def test_filter_values_are_bound_parameters_not_sql(con):
    hostile = spec(filters=[{"field": "name", "op": "=", "value": "x' OR 1=1 --"}])
    assert members(con, hostile)["test_audience"] == []
    with pytest.raises(AudienceSpecError, match="filter field 'name; drop table x' is not a column"):
        members(con, spec(filters=[{"field": "name; drop table x", "op": "=", "value": 1}]))
    with pytest.raises(AudienceSpecError, match="must be schema.model"):
        spec(source={"model": "marts.x; drop"})


def test_filters_ranking_limit_and_top_percent(con):
    s = spec(filters=[{"field": "orders_count", "op": ">=", "value": 1},
                      {"field": "lifecycle_stage", "op": "in", "value": ["onboarding", "x"]}],
             ranking={"by": "predicted_ltv", "order": "desc"})
    # orders_count = i % 3 >= 1: everyone but c03, c06, c09; ranked by the LATEST score (100 * i).
    assert members(con, s)["test_audience"] == ["c10", "c08", "c07", "c05", "c04", "c02", "c01"]
    top = spec(filters=[{"field": "orders_count", "op": ">=", "value": 1}],
               ranking={"by": "predicted_ltv", "top_percent": 20})
    assert members(con, top)["test_audience"] == ["c10", "c08"]  # ceil(7 * 20%) = 2
    limited = spec(ranking={"by": "predicted_ltv", "order": "asc", "limit": 3})
    assert members(con, limited)["test_audience"] == ["c01", "c02", "c03"]


def test_within_last_and_before_last(con):
    con.execute("UPDATE marts.dim_customers SET signed_up_at = TIMESTAMP '2026-02-27 03:00:00' WHERE customer_id = 'c01'")
    con.execute("UPDATE marts.dim_customers SET signed_up_at = TIMESTAMP '2026-02-27 03:00:01' WHERE customer_id = 'c02'")
    recent = spec(filters=[{"field": "signed_up_at", "op": "within_last", "value": "2d"}])
    assert members(con, recent)["test_audience"] == ["c02"]  # (as_of - 2d, as_of]: exactly 2 days ago is out
    old = spec(filters=[{"field": "signed_up_at", "op": "before_last", "value": "2d"}])
    assert "c01" in members(con, old)["test_audience"] and "c02" not in members(con, old)["test_audience"]


def test_golden_time_delay_and_expiry_on_a_cohort(con):
    build_warehouse(con, [customer(i) for i in range(1, 6)], cohort={
        "c01": AS_OF.replace(tzinfo=None) - timedelta(minutes=30),  # too early: golden time is 1 hour
        "c02": AS_OF.replace(tzinfo=None) - timedelta(hours=1),  # exactly on time
        "c03": AS_OF.replace(tzinfo=None) - timedelta(hours=5),
        "c04": AS_OF.replace(tzinfo=None) - timedelta(hours=24),  # expired (window is (as_of - 24h, ...])
    })
    s = spec(source={"cohort": "carts"}, golden_time={"after": "triggered_at", "delay": "1h", "expires": "24h"})
    assert sorted(members(con, s)["test_audience"]) == ["c02", "c03"]


# --- priorities ------------------------------------------------------------------------------------

def test_priority_sends_a_customer_only_to_the_best_audience_of_a_group(con):
    high = spec(name="high", priority={"rank": 1}, filters=[{"field": "orders_count", "op": "=", "value": 1}])
    low = spec(name="low", priority={"rank": 2}, filters=[{"field": "orders_count", "op": ">=", "value": 1}])
    other_group = spec(name="sms_one", channel="sms", destination="sms", fields={"phone": "phone"},
                       message={"text": "hi"}, filters=[{"field": "orders_count", "op": "=", "value": 1}])
    specs = {s.name: s for s in (high, low, other_group)}
    result = evaluate(con, specs, AS_OF)
    ones = ["c01", "c04", "c07", "c10"]  # i % 3 == 1
    twos = ["c02", "c05", "c08"]
    assert sorted(result["high"].members["customer_id"].to_list()) == ones
    assert sorted(result["low"].members["customer_id"].to_list()) == twos
    assert result["low"].lost_to == {"high": 4}
    assert sorted(result["sms_one"].members["customer_id"].to_list()) == ones  # another channel: unaffected
    assert overlaps(result)[("high", "low")] == 4
    # Equal rank: the alphabetically first audience wins, whatever the file order.
    a = spec(name="a_first", filters=[{"field": "orders_count", "op": "=", "value": 1}])
    b = spec(name="b_second", filters=[{"field": "orders_count", "op": "=", "value": 1}])
    assert evaluate(con, {"b_second": b, "a_first": a}, AS_OF)["b_second"].members.height == 0


# --- the sending law inside the engine -------------------------------------------------------------

def run(con, s, tmp_path, as_of=AS_OF, **kwargs):
    box = OutboxDestination(str(tmp_path / f"{s.channel}.jsonl"), batch_size=3)
    result = activate(con, s, {s.name: s}, CONFIG, tmp_path, as_of, destination=box, environ=ENV,
                      sleep=lambda _: None, **kwargs)
    return result, box


def log(con, sync_name):
    return con.execute(f"SELECT key, status, message FROM {SCHEMA}.sync_log WHERE sync_name = ? ORDER BY key",
                       [sync_name]).fetchall()


def test_consent_and_suppression_keep_customers_out_before_assignment(con, tmp_path):
    con.execute("UPDATE marts.dim_customers SET consent_email = false WHERE customer_id IN ('c01', 'c02')")
    con.execute("UPDATE marts.dim_customers SET traits_updated_at = TIMESTAMP '2023-01-01' WHERE customer_id = 'c03'")
    from activations.unsubscribe import record_suppression

    record_suppression(con, "c04", "email", "unsubscribe")
    record_suppression(con, "c05", "all", "complaint")
    result, box = run(con, spec(), tmp_path)
    assert result.ineligible == {"no advertising consent for email": 2, "re-confirmation due": 1, "suppressed": 2}
    assert sorted(d["key"] for d in box.delivered()) == ["c06", "c07", "c08", "c09", "c10"]
    assigned = {r[0] for r in con.execute(f"SELECT customer_id FROM {SCHEMA}.assignments").fetchall()}
    assert assigned == {"c06", "c07", "c08", "c09", "c10"}
    assert con.execute(f"SELECT sync_name, destination, added FROM {SCHEMA}.sync_runs").fetchall() == [
        ("test_audience", "outbox", 5)]


def test_night_time_defers_to_0800_local_then_a_later_run_sends(con, tmp_path):
    # c01 lives in Seoul without night consent; c02 has night consent; c03 lives in London (day time).
    con.execute("DELETE FROM marts.dim_customers WHERE customer_id > 'c03'")
    con.execute("UPDATE marts.dim_customers SET consent_night = true WHERE customer_id = 'c02'")
    con.execute("UPDATE marts.dim_customers SET timezone = 'Europe/London' WHERE customer_id = 'c03'")
    night = datetime(2026, 3, 1, 13, 30, tzinfo=timezone.utc)  # 22:30 KST, 13:30 London
    result, box = run(con, spec(), tmp_path, as_of=night)
    assert result.sync.deferred == 1 and result.sync.added == 2
    assert [d["key"] for d in box.delivered()] == ["c02", "c03"]
    assert log(con, "test_audience")[0][:2] == ("c01", "deferred")
    assert "held until 2026-03-01T23:00:00+00:00" in log(con, "test_audience")[0][2]  # 08:00 KST next day
    morning = datetime(2026, 3, 1, 23, 0, tzinfo=timezone.utc)  # 08:00 KST
    result, box = run(con, spec(), tmp_path, as_of=morning)
    assert result.sync.added == 1 and [d["key"] for d in box.delivered()] == ["c02", "c03", "c01"]


def test_frequency_cap_counts_sends_of_every_audience_on_the_channel(con, tmp_path):
    con.execute("DELETE FROM marts.dim_customers WHERE customer_id > 'c02'")
    sms = dict(channel="sms", destination="sms", fields={"phone": "phone"}, message={"text": "세일"})
    first, second, third = (spec(name=n, **sms) for n in ("first_sms", "second_sms", "third_sms"))
    run(con, first, tmp_path)
    run(con, second, tmp_path, as_of=AS_OF + timedelta(days=1))
    result, box = run(con, third, tmp_path, as_of=AS_OF + timedelta(days=2))
    assert result.sync.suppressed == 2 and result.sync.added == 0
    assert all(status == "suppressed" and message.startswith("frequency cap: 2 of 2 sms sends")
               for _, status, message in log(con, "third_sms"))
    # Seven days after the first send it no longer counts.
    result, _ = run(con, third, tmp_path, as_of=AS_OF + timedelta(days=7))
    assert result.sync.added == 2


def test_holdout_is_recorded_before_sending_and_never_messaged(con, tmp_path):
    build_warehouse(con, [customer(i) for i in range(1, 101)])
    s = spec(experiment={"holdout": 0.3, "variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}]})

    class Exploding(OutboxDestination):
        def send(self, rows):
            raise KeyboardInterrupt  # killed on the first batch

    with pytest.raises(KeyboardInterrupt):
        activate(con, s, {s.name: s}, CONFIG, tmp_path, AS_OF, destination=Exploding(str(tmp_path / "x.jsonl")),
                 environ=ENV)
    arms = dict(con.execute(f"SELECT customer_id, arm FROM {SCHEMA}.assignments").fetchall())
    assert len(arms) == 100  # recorded before anything was sent
    result, box = run(con, s, tmp_path)
    holdout = {c for c, arm in arms.items() if arm == "holdout"}
    assert 15 <= len(holdout) <= 45 and result.arms["holdout"] == len(holdout)
    delivered = {d["key"] for d in box.delivered()}
    assert delivered == set(arms) - holdout and not delivered & holdout
    assert {d["payload"]["variant"] for d in box.delivered()} == {"a", "b"}
    assert all(d["payload"]["variant"] == arms[d["key"]] for d in box.delivered())


def test_assignments_are_sticky_when_weights_change(con, tmp_path):
    build_warehouse(con, [customer(i) for i in range(1, 41)])
    s = spec(experiment={"holdout": 0.1, "variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}]})
    run(con, s, tmp_path)
    before = dict(con.execute(f"SELECT customer_id, arm FROM {SCHEMA}.assignments").fetchall())
    build_warehouse(con, [customer(i) for i in range(1, 61)])
    reweighted = spec(experiment={"holdout": 0.1, "allocation": "bandit",
                                  "variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}]})
    run(con, reweighted, tmp_path, choose_weights=lambda con, s: {"a": 0.9, "b": 0.1})
    after = dict(con.execute(f"SELECT customer_id, arm FROM {SCHEMA}.assignments").fetchall())
    assert all(after[c] == arm for c, arm in before.items())
    rounds = con.execute(f"SELECT round, weights FROM {SCHEMA}.allocation_rounds ORDER BY round").fetchall()
    assert [(r, json.loads(w)) for r, w in rounds] == [(1, {"a": 0.5, "b": 0.5}), (2, {"a": 0.9, "b": 0.1})]
    new = [c for c in after if c not in before]
    assert len(new) == 20
    assert con.execute(f"SELECT count(*) FROM {SCHEMA}.assignments WHERE round = 2").fetchall()[0][0] == 20
    with pytest.raises(ValueError, match="holdout share changed"):
        build_warehouse(con, [customer(i) for i in range(1, 71)])
        run(con, spec(experiment={"holdout": 0.2}), tmp_path)


# --- payloads --------------------------------------------------------------------------------------

def test_advertising_payload_is_marked_and_personalised():
    s = spec()
    payload = PayloadBuilder(s, CONFIG, ENV).build(customer(7), s.experiment.variants[0])
    assert payload["subject"] == "(광고) 고객7님 안녕하세요"
    assert payload["body_text"].startswith("(광고) 골든타임샵\n쿠폰을 드려요")
    assert payload["unsubscribe_url"].startswith("https://shop.example/unsubscribe?")
    assert "무료수신거부 " + payload["unsubscribe_url"] in payload["body_text"]
    assert payload["campaign_id"] == "test_audience" and payload["is_advertising"] is True


def test_template_typos_fail_loudly():
    s = spec(message={"subject": "{{ nmae }}님", "body_text": "x"})
    with pytest.raises(MessageError, match="'nmae' is undefined"):
        PayloadBuilder(s, CONFIG, ENV).build(customer(1), s.experiment.variants[0])
    with pytest.raises(MessageError, match="TEST_UNSUB_SECRET"):
        PayloadBuilder(spec(), CONFIG, {}).build(customer(1), spec().experiment.variants[0])


def test_dry_run_writes_exact_payloads_and_sends_nothing(con, tmp_path):
    box = OutboxDestination(str(tmp_path / "email.jsonl"))
    s = spec()
    result = activate(con, s, {s.name: s}, CONFIG, tmp_path, AS_OF, destination=box, environ=ENV, dry_run=True)
    lines = [json.loads(line) for line in Path(result.sync.dry_run_path).read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 10 and result.sync.added == 10 and box.received() == []
    assert lines[0]["payload"]["subject"].startswith("(광고)")
    assert con.execute(f"SELECT count(*) FROM {SCHEMA}.assignments").fetchall()[0][0] == 0


# --- preview and Dagster ---------------------------------------------------------------------------

@pytest.fixture
def project(tmp_path, monkeypatch):
    """A warehouse file, an audiences folder with two overlapping email audiences, and the env."""
    path = tmp_path / "warehouse.duckdb"
    connection = duckdb.connect(str(path))
    build_warehouse(connection, [customer(i) for i in range(1, 11)], scores={f"c{i:02d}": 100.0 * i for i in range(1, 11)})
    connection.close()
    folder = tmp_path / "audiences"
    folder.mkdir()
    config = dict(CONFIG, destinations={"local": {"email": {"type": "outbox", "path": "outbox/email.jsonl"}}})
    (folder / "_config.yml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    base = {"description": "d", "source": {"customers": True}, "channel": "email", "destination": "email",
            "advertising": True, "fields": {"email": "email"},
            "message": {"subject": "{{ name }}님", "body_text": "본문"}, "ranking": {"by": "predicted_ltv"}}
    (folder / "buyers.yml").write_text(yaml.safe_dump(dict(base, name="buyers", priority={"rank": 1}, filters=[
        {"field": "orders_count", "op": ">=", "value": 1}]), allow_unicode=True), encoding="utf-8")
    (folder / "everyone.yml").write_text(yaml.safe_dump(dict(base, name="everyone", priority={"rank": 2},
                                                             experiment={"holdout": 0.2})), encoding="utf-8")
    monkeypatch.setenv("GOLDENTIME_DUCKDB", str(path))
    monkeypatch.setenv("GOLDENTIME_AUDIENCES", str(folder))
    monkeypatch.setenv("GOLDENTIME_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GOLDENTIME_AS_OF", AS_OF.isoformat())
    monkeypatch.setenv("TEST_UNSUB_SECRET", "s3cret")
    return tmp_path


def test_preview_shows_size_overlap_rows_and_message_without_sending(project):
    from typer.testing import CliRunner

    from goldentime.cli import app

    result = CliRunner().invoke(app, ["audiences", "preview", "everyone", "--rows", "2"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "qualified 10; after priorities 3 (lost to buyers 7)" in out
    assert "with email consent 3" in out
    assert "overlap before priorities: buyers 7" in out
    assert "c09 | 900.0" in out and "c9***@example.com" in out and "c9@example.com" not in out, out
    assert "subject: (광고) 고객9님" in out
    assert not (project / "data" / "outbox").exists()  # nothing sent
    missing = CliRunner().invoke(app, ["audiences", "preview", "nobody"])
    assert missing.exit_code == 1 and "no audience 'nobody'; have: buyers, everyone" in missing.output


def test_dagster_asset_per_audience_syncs_and_reports(project):
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from orchestration.defs.activations.assets import build_activation_defs, build_audience_asset

    defs = build_activation_defs()
    assert {s.name for s in defs.schedules or []} == set()  # these specs have no schedule
    specs = load_specs(project / "audiences")
    assets = [build_audience_asset(specs[n]) for n in ("buyers", "everyone")]
    resources = {"warehouse": DuckDBResource(database=str(project / "warehouse.duckdb"))}
    result = dg.materialize(assets, resources=resources)
    assert result.success
    meta = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert meta["buyers"]["rows_added"].value == 7 and meta["buyers"]["after_priorities"].value == 7
    assert meta["everyone"]["after_priorities"].value == 3
    everyone_sent = meta["everyone"]["rows_added"].value
    assert 0 < everyone_sent <= 3
    delivered = OutboxDestination(str(project / "data" / "outbox" / "email.jsonl")).delivered()
    assert len(delivered) == 7 + everyone_sent
    again = dg.materialize(assets, resources=resources)
    meta = {e.asset_key.path[-1]: e.materialization.metadata for e in again.get_asset_materialization_events()}
    assert meta["buyers"]["rows_added"].value == 0 and meta["everyone"]["rows_added"].value == 0
    assert len(OutboxDestination(str(project / "data" / "outbox" / "email.jsonl")).delivered()) == 7 + everyone_sent


def test_a_variant_can_go_out_on_another_channel(con, tmp_path):
    con.execute("UPDATE marts.dim_customers SET consent_sms = false WHERE customer_id IN ('c01', 'c02', 'c03')")
    s = spec(experiment={"holdout": 0.0, "variants": [
        {"name": "mail", "weight": 0.5},
        {"name": "text", "weight": 0.5, "channel": "sms", "destination": "sms", "fields": {"phone": "phone"},
         "message": {"text": "{{ name }}님 세일"}}]})
    email_box = OutboxDestination(str(tmp_path / "email.jsonl"))
    sms_box = OutboxDestination(str(tmp_path / "sms.jsonl"))
    result = activate(con, s, {s.name: s}, CONFIG, tmp_path, AS_OF, destination={"email": email_box, "sms": sms_box},
                      environ=ENV)
    arms = dict(con.execute(f"SELECT customer_id, arm FROM {SCHEMA}.assignments").fetchall())
    texted = {c for c, arm in arms.items() if arm == "text"}
    assert texted and texted != set(arms)
    assert {d["key"] for d in email_box.delivered()} == set(arms) - texted
    no_sms_consent = texted & {"c01", "c02", "c03"}
    assert {d["key"] for d in sms_box.delivered()} == texted - no_sms_consent  # the sms law holds for them
    assert all(d["payload"]["text"].startswith("(광고)") and "phone" in d["payload"] for d in sms_box.delivered())
    assert set(result.syncs) == {"test_audience", "test_audience@sms"}
    assert result.summary()["suppressed"] == len(no_sms_consent)
    with pytest.raises(AudienceSpecError, match="needs its destination, fields and message"):
        spec(experiment={"variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5, "channel": "sms"}]})


def test_a_variant_with_a_longer_golden_time_waits_for_it(con, tmp_path):
    con.execute("UPDATE marts.dim_customers SET signed_up_at = TIMESTAMP '2026-02-28 03:00:00'")  # 1 day before
    s = spec(golden_time={"after": "signed_up_at", "delay": "1h", "expires": "7d"},
             experiment={"variants": [{"name": "soon", "weight": 0.5}, {"name": "later", "weight": 0.5, "delay": "3d"}]})
    result, box = run(con, s, tmp_path)
    arms = dict(con.execute(f"SELECT customer_id, arm FROM {SCHEMA}.assignments").fetchall())
    later = {c for c, arm in arms.items() if arm == "later"}
    assert later and result.waiting == len(later)
    assert {d["key"] for d in box.delivered()} == set(arms) - later
    # Three days after the sign-up the second variant goes out too; nobody gets two messages.
    result, box = run(con, s, tmp_path, as_of=AS_OF + timedelta(days=2))
    assert result.waiting == 0 and sorted(d["key"] for d in box.delivered()) == sorted(arms)
