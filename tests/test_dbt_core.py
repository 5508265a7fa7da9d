"""The dbt core (identity, sessions, customer 360) built end to end on a small hand-made shop.

Seven customers, 27 events, 5 orders (6 order versions), January 2026 (UTC; as-of date = the latest event date, Jan 31):
- Alice: two anonymous visits on dev-a1 (Jan 3 from a paid Instagram ad, Jan 5 from Naver search),
  signs up and orders on Jan 5, orders again on Jan 20 after a Kakao click, withdraws email consent
  on Jan 25, has an order cancelled on Jan 26; one of her Jan 5 events arrives late (landing Jan 28).
- Bob and Carol share dev-shared: Bob identifies first (Jan 10), Carol later (Jan 12); anonymous
  events on the device after Carol's login still go to Bob (first link wins). Bob's Jan 10 23:50 →
  Jan 11 00:15 visit crosses UTC midnight and is one session; 00:50 (35 min later) starts another.
- Dave: an anonymous visitor from an Instagram ad. Frank: ordered in November, gone since.
- Gina: anonymous at 23:50 Seoul time, signs up after midnight (UTC Jan 31). Hank: anonymous on Jan 8,
  identifies on Jan 27 (his Jan 8 visit moves to him).
"""

import hashlib
from datetime import date, datetime
from decimal import Decimal

import pytest

from tests.dbt_helpers import (DbtFailed, alias, build_warehouse, full_refresh_copy, identify, load_raw, order, page,
                               run_dbt, table_differences, track)

CORE = "+path:models/marts/core"
NAVER = "https://search.naver.com/search.naver?query=knit"
INSTAGRAM = "https://l.instagram.com/"
AD = {"source": "instagram", "medium": "paid_social", "name": "winter_sale"}

EVENTS = [
    # Alice on dev-a1
    page("a1", at="2026-01-03 11:00:00", anonymous_id="dev-a1", path="/product/P1", utm=AD, referrer=INSTAGRAM),
    track("a2", "Product Viewed", at="2026-01-03 11:00:30", anonymous_id="dev-a1", path="/product/P1", utm=AD,
          properties={"product_id": "P1", "category": "fashion"}),
    page("a3", at="2026-01-05 10:00:00", anonymous_id="dev-a1", path="/", referrer=NAVER),
    track("a4", "Product Viewed", at="2026-01-05 10:05:00", anonymous_id="dev-a1",
          properties={"product_id": "P1", "category": "fashion"}),
    track("a5", "Signed Up", at="2026-01-05 10:10:02", user_id="u_alice", anonymous_id="dev-a1"),
    track("a6", "Product Added", at="2026-01-05 10:12:00", user_id="u_alice", anonymous_id="dev-a1",
          properties={"product_id": "P2", "category": "fashion"}),
    track("a7", "Checkout Started", at="2026-01-05 10:15:00", user_id="u_alice", anonymous_id="dev-a1"),
    track("a8", "Order Completed", at="2026-01-05 10:16:00", user_id="u_alice", anonymous_id="dev-a1",
          properties={"order_id": "o-1", "revenue": 50000}),
    track("a9", "Kakao Clicked", at="2026-01-20 19:59:00", user_id="u_alice", properties={"campaign_id": "cmp_kakao_1"}),
    page("a10", at="2026-01-20 20:00:00", user_id="u_alice", anonymous_id="dev-a1", path="/promo",
         utm={"source": "kakao", "medium": "message", "name": "cmp_kakao_1"}),
    track("a11", "Order Completed", at="2026-01-20 20:10:00", user_id="u_alice", anonymous_id="dev-a1",
          properties={"order_id": "o-2", "revenue": 30000}),
    track("a12", "Product Viewed", at="2026-01-05 10:30:00", anonymous_id="dev-a1", landing_date="2026-01-28",
          properties={"product_id": "P1", "category": "fashion"}),  # late: arrives 23 days later
    # Bob, then Carol, on dev-shared
    page("b1", at="2026-01-10 08:55:00", anonymous_id="dev-shared", path="/"),
    page("b2", at="2026-01-10 23:50:00", user_id="u_bob", anonymous_id="dev-shared", path="/category/food"),
    track("b3", "Product Viewed", at="2026-01-11 00:15:00", user_id="u_bob", anonymous_id="dev-shared",
          properties={"product_id": "P3", "category": "food"}),
    page("b4", at="2026-01-11 00:50:00", user_id="u_bob", anonymous_id="dev-shared", path="/cart"),
    page("c1", at="2026-01-12 09:01:00", user_id="u_carol", anonymous_id="dev-shared", path="/"),
    page("b5", at="2026-01-13 12:00:00", anonymous_id="dev-shared", path="/"),
    track("b6", "Product Viewed", at="2026-01-13 12:10:00", anonymous_id="dev-shared",
          properties={"product_id": "P4", "category": "food"}),
    track("c2", "Email Opened", at="2026-01-14 08:00:00", user_id="u_carol", properties={"campaign_id": "cmp_email_1"}),
    # Dave, anonymous
    page("d1", at="2026-01-15 13:00:00", anonymous_id="dev-d", path="/promo/signup", referrer=INSTAGRAM,
         utm={"source": "instagram", "medium": "paid_social", "name": "signup_coupon"}),
    page("d2", at="2026-01-15 13:02:00", anonymous_id="dev-d", path="/signup"),
    # Gina in Seoul: 23:50 and 00:10 local time
    page("g1", at="2026-01-30T23:50:00+09:00", anonymous_id="dev-g", path="/", tz="Asia/Seoul"),
    track("g2", "Product Viewed", at="2026-01-31T00:10:00+09:00", anonymous_id="dev-g", tz="Asia/Seoul",
          properties={"product_id": "P5", "category": "beauty"}),
    track("g3", "Product Added", at="2026-01-31 01:05:00", user_id="u_gina", anonymous_id="dev-g", tz="Asia/Seoul",
          properties={"product_id": "P5", "category": "beauty"}),
    # Hank: anonymous on Jan 8, identified on Jan 27
    page("h1", at="2026-01-08 15:00:00", anonymous_id="dev-h", path="/", referrer="https://blog.naver.com/PostView.naver"),
    page("h2", at="2026-01-27 10:01:00", user_id="u_hank", anonymous_id="dev-h", path="/"),
]

IDENTIFIES = [
    identify("i-a1", at="2026-01-05 10:10:00", user_id="u_alice", anonymous_id="dev-a1", traits={
        "email": " Alice@Example.COM ", "phone": "010-1234-5678", "name": "Alice Kim", "timezone": "Asia/Seoul",
        "consent_email": True, "consent_sms": False, "consent_push": True, "consent_kakao": True,
        "consent_night": False, "created_at": "2026-01-05T19:10:00+09:00"}),
    alias("al-a1", at="2026-01-05 10:10:01", user_id="u_alice", previous_id="dev-a1"),
    identify("i-a2", at="2026-01-25 09:00:00", user_id="u_alice", anonymous_id="dev-a1", traits={"consent_email": False}),
    identify("i-b1", at="2026-01-10 09:00:00", user_id="u_bob", anonymous_id="dev-shared",
             traits={"email": "bob@example.com", "consent_email": True}),
    identify("i-c1", at="2026-01-12 09:00:00", user_id="u_carol", anonymous_id="dev-shared",
             traits={"email": "carol@example.com", "consent_email": True}),
    identify("i-f1", at="2025-11-20 10:00:00", user_id="u_frank", traits={"email": "frank@example.com"}),
    identify("i-g1", at="2026-01-31 01:00:00", user_id="u_gina", anonymous_id="dev-g", traits={"email": "gina@example.com"}),
    identify("i-h1", at="2026-01-27 10:00:00", user_id="u_hank", anonymous_id="dev-h", traits={"email": "hank@example.com"}),
]

ORDERS = [
    order("o-1", "u_alice", at="2026-01-05 10:16:00", revenue=50000),
    order("o-2", "u_alice", at="2026-01-20 20:10:00", revenue=30000),
    order("o-3", "u_alice", at="2026-01-26 12:00:00", revenue=10000, status="cancelled"),
    order("o-4", "u_bob", at="2026-01-11 00:20:00", revenue=120000),
    order("o-5", "u_frank", at="2025-11-20 10:30:00", revenue=45000),
    # the same order again five days later, refunded: a new version of o-5 (raw.orders keeps both)
    order("o-5", "u_frank", at="2025-11-20 10:30:00", revenue=45000, status="refunded", landing_date="2025-11-25"),
]


def session_id(customer: str, device: str, started: str) -> str:
    return hashlib.md5(f"{customer}|{device}|{started}".encode()).hexdigest()


def rows(con, sql, *params):
    return con.execute(sql, list(params)).fetchall()


def one(con, sql, *params) -> dict:
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    found = cursor.fetchall()
    assert len(found) == 1, found
    return dict(zip(names, found[0]))


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    con = build_warehouse(tmp_path_factory.mktemp("dbt_core") / "warehouse.duckdb",
                          events=EVENTS, identifies=IDENTIFIES, orders=ORDERS, select=CORE)
    yield con
    con.close()


def test_identity_graph_first_link_wins_on_a_shared_device(wh):
    assert rows(wh, """select anonymous_id, customer_id, link_source, linked_user_count, is_conflicted
                       from intermediate.int_identity_graph order by anonymous_id""") == [
        ("dev-a1", "u_alice", "identify", 1, False),
        ("dev-d", "anon:dev-d", None, 0, False),
        ("dev-g", "u_gina", "identify", 1, False),
        ("dev-h", "u_hank", "identify", 1, False),
        ("dev-shared", "u_bob", "identify", 2, True),
    ]
    # every event has a customer; anonymous events follow the graph, identified ones keep their user id
    assert rows(wh, "select count(*), count(customer_id) from marts.fct_events") == [(27, 27)]
    by_event = dict(rows(wh, "select event_id, customer_id from marts.fct_events"))
    assert [by_event[e] for e in ("a1", "a4", "a12", "b1", "b5", "b6", "c1", "c2", "d1", "g1", "h1")] == [
        "u_alice", "u_alice", "u_alice", "u_bob", "u_bob", "u_bob", "u_carol", "u_carol", "anon:dev-d",
        "u_gina", "u_hank"]


def test_sessions_cross_midnight_and_split_after_30_minutes(wh):
    bob = rows(wh, """select event_id, session_id, session_event_number from marts.fct_events
                      where customer_id = 'u_bob' order by event_at""")
    assert bob == [
        ("b1", session_id("u_bob", "dev-shared", "2026-01-10 08:55:00"), 1),
        ("b2", session_id("u_bob", "dev-shared", "2026-01-10 23:50:00"), 1),
        ("b3", session_id("u_bob", "dev-shared", "2026-01-10 23:50:00"), 2),  # 00:15 next day, same session
        ("b4", session_id("u_bob", "dev-shared", "2026-01-11 00:50:00"), 1),  # 35 minutes later: new session
        ("b5", session_id("u_bob", "dev-shared", "2026-01-13 12:00:00"), 1),
        ("b6", session_id("u_bob", "dev-shared", "2026-01-13 12:00:00"), 2),
    ]
    assert rows(wh, "select count(*) from marts.fct_sessions") == [(13,)]
    # message events belong to no session
    assert rows(wh, "select event_id from marts.fct_events where session_id is null order by event_id") == [("a9",), ("c2",)]


def test_session_attributes_and_local_dates(wh):
    gina = one(wh, """select started_at, started_at_local, session_date, session_local_date, timezone,
                             duration_seconds, event_count, page_view_count, channel, landing_page_path
                      from marts.fct_sessions where customer_id = 'u_gina' and customer_session_number = 1""")
    assert gina == {
        "started_at": datetime(2026, 1, 30, 14, 50), "started_at_local": datetime(2026, 1, 30, 23, 50),
        "session_date": date(2026, 1, 30), "session_local_date": date(2026, 1, 30), "timezone": "Asia/Seoul",
        "duration_seconds": 1200, "event_count": 2, "page_view_count": 1, "channel": "direct",
        "landing_page_path": "/",
    }
    alice = rows(wh, """select customer_session_number, channel, utm_campaign, event_count, order_count, revenue,
                               duration_seconds from marts.fct_sessions where customer_id = 'u_alice' order by 1""")
    assert alice == [
        (1, "paid_social", "winter_sale", 2, 0, Decimal("0.00"), 30),
        (2, "organic_search", None, 7, 1, Decimal("50000.00"), 1800),  # 10:00 → 10:30 (the late event)
        (3, "kakao", "cmp_kakao_1", 2, 1, Decimal("30000.00"), 600),
    ]


def test_orders_are_numbered_and_attributed_to_their_session(wh):
    assert rows(wh, """select order_id, customer_id, status, order_number, is_first_order, channel
                       from marts.fct_orders order by order_id""") == [
        ("o-1", "u_alice", "completed", 1, True, "organic_search"),
        ("o-2", "u_alice", "completed", 2, False, "kakao"),
        ("o-3", "u_alice", "cancelled", None, False, None),
        ("o-4", "u_bob", "completed", 1, True, None),  # no Order Completed event: no session
        ("o-5", "u_frank", "refunded", None, False, None),  # the refund supersedes the completed version
    ]


def test_customer_360_of_alice(wh):
    alice = one(wh, "select * from marts.dim_customers where customer_id = 'u_alice'")
    expected = {
        "is_member": True, "user_id": "u_alice", "anonymous_id": None, "devices_count": 1,
        "email": "Alice@Example.COM", "email_normalized": "alice@example.com", "phone": "010-1234-5678",
        "phone_e164": "+821012345678", "name": "Alice Kim", "timezone": "Asia/Seoul",
        "consent_email": False,  # withdrawn on Jan 25 by a call that carries only that trait
        "consent_sms": False, "consent_push": True, "consent_kakao": True, "consent_night": False,
        "account_created_at": datetime(2026, 1, 5, 10, 10), "traits_updated_at": datetime(2026, 1, 25, 9),
        "signed_up_at": datetime(2026, 1, 5, 10, 10),
        "first_seen_at": datetime(2026, 1, 3, 11), "last_seen_at": datetime(2026, 1, 26, 12),
        "days_since_last_seen": 5,
        "first_touch_channel": "paid_social", "first_touch_utm_source": "instagram",
        "first_touch_utm_campaign": "winter_sale", "first_landing_page_path": "/product/P1",
        "last_touch_channel": "organic_search", "last_touch_utm_source": None, "last_touch_utm_campaign": None,
        "sessions_count": 3, "events_count": 12, "page_views_count": 3,
        "orders_count": 2, "cancelled_orders_count": 1, "refunded_orders_count": 0,
        "revenue": Decimal("80000.00"), "average_order_value": Decimal("40000.00"),
        "first_order_at": datetime(2026, 1, 5, 10, 16), "last_order_at": datetime(2026, 1, 20, 20, 10),
        "days_since_last_order": 11, "recency_days": 11, "frequency": 2, "monetary": Decimal("80000.00"),
        "r_score": 5, "f_score": 2, "m_score": 2, "rfm_score": 522, "favourite_category": "fashion",
        "email_sent_count": None, "email_opened_count": 0, "email_clicked_count": None,
        "push_sent_count": None, "push_opened_count": None, "push_clicked_count": None,
        "kakao_sent_count": None, "kakao_opened_count": None, "kakao_clicked_count": 1,
        "is_activated": True, "lifecycle_stage": "repeat_loyal", "as_of_date": date(2026, 1, 31),
    }
    assert {k: alice[k] for k in expected} == expected


def test_customer_360_of_the_others(wh):
    got = rows(wh, """select customer_id, is_member, sessions_count, events_count, orders_count, revenue,
                             rfm_score, first_touch_channel, last_touch_channel, email_opened_count,
                             days_since_last_seen, lifecycle_stage
                      from marts.dim_customers order by customer_id""")
    assert got == [
        ("anon:dev-d", False, 1, 2, 0, Decimal("0.00"), None, "paid_social", "paid_social", 0, 16, "first_encounter"),
        ("u_alice", True, 3, 12, 2, Decimal("80000.00"), 522, "paid_social", "organic_search", 0, 5, "repeat_loyal"),
        ("u_bob", True, 4, 6, 1, Decimal("120000.00"), 413, "direct", "direct", 0, 18, "first_purchase"),
        ("u_carol", True, 1, 2, 0, Decimal("0.00"), None, "direct", "direct", 1, 17, "onboarding"),
        ("u_frank", True, 0, 0, 0, Decimal("0.00"), None, None, None, 0, 72, "win_back"),
        ("u_gina", True, 2, 3, 0, Decimal("0.00"), None, "direct", "direct", 0, 0, "activation"),
        ("u_hank", True, 2, 2, 0, Decimal("0.00"), None, "referral", "referral", 0, 4, "onboarding"),
    ]
    # Frank's only completed order was refunded later: no revenue, and he is lapsed since his last visit
    frank = one(wh, "select refunded_orders_count, days_since_last_order, favourite_category from marts.dim_customers where customer_id = 'u_frank'")
    assert frank == {"refunded_orders_count": 1, "days_since_last_order": None, "favourite_category": None}


def test_as_of_date_var_rewinds_the_customer_360(tmp_path):
    """Same data as of Jan 12: Dave and Gina are not there yet; Alice and Bob have one order each.
    Identity is resolved with everything known: Hank's Jan 8 visit is already his. Frank is 53 days
    from his (refunded) order: not yet win-back."""
    import duckdb

    path = tmp_path / "as_of.duckdb"
    load_raw(path, events=EVENTS, identifies=IDENTIFIES, orders=ORDERS)
    run_dbt(path, "run", "--select", CORE, vars={"as_of_date": "2026-01-12"})
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert rows(con, """select customer_id, orders_count, sessions_count, days_since_last_seen, lifecycle_stage,
                                   as_of_date from marts.dim_customers order by 1""") == [
            ("u_alice", 1, 2, 7, "first_purchase", date(2026, 1, 12)),
            ("u_bob", 1, 3, 1, "first_purchase", date(2026, 1, 12)),
            ("u_carol", 0, 1, 0, "onboarding", date(2026, 1, 12)),
            ("u_frank", 0, 0, 53, "onboarding", date(2026, 1, 12)),
            ("u_hank", 0, 1, 4, "onboarding", date(2026, 1, 12)),
        ]
    finally:
        con.close()


def test_incremental_runs_match_a_full_rebuild(tmp_path):
    """Day 1..20 built, then the rest arrives (a late event, a re-identified visitor, new days, a refund):
    every incremental model — and everything built from them — equals a full refresh of the same raw
    rows, and old history was not rewritten."""
    import duckdb

    split = date(2026, 1, 20)

    def part(rows_, first):
        return [r for r in rows_ if (r["landing_date"] <= split) == first]

    path = tmp_path / "incremental.duckdb"
    load_raw(path, events=part(EVENTS, True), identifies=part(IDENTIFIES, True), orders=part(ORDERS, True))
    run_dbt(path, "run")  # every model (tests and unit tests already ran in the `wh` fixture)
    con = duckdb.connect(str(path), read_only=True)
    assert rows(con, "select customer_id from marts.fct_events where event_id = 'h1'") == [("anon:dev-h",)]
    assert rows(con, "select count(*) from intermediate.int_customer_facts where customer_id = 'anon:dev-h'") == [(1,)]
    first_batch = rows(con, "select max(processed_at) from marts.fct_events")[0][0]
    con.close()

    load_raw(path, events=part(EVENTS, False), identifies=part(IDENTIFIES, False), orders=part(ORDERS, False))
    run_dbt(path, "run")
    full = full_refresh_copy(path, tmp_path / "full.duckdb")

    assert table_differences(path, full) == {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert rows(con, "select customer_id, session_id from marts.fct_events where event_id = 'h1'") == [
            ("u_hank", session_id("u_hank", "dev-h", "2026-01-08 15:00:00"))]
        # Hank's visitor key is gone everywhere (tombstoned), not only from the facts
        for table in ("intermediate.int_customer_facts", "marts.dim_customers", "intermediate.int_path_steps_sequenced"):
            assert rows(con, f"select count(*) from {table} where customer_id = 'anon:dev-h'") == [(0,)], table
        # the incremental run rewrote only what the new days touch: Bob's and Dave's events are as stored
        kept = dict(rows(con, "select event_id, processed_at = ? from marts.fct_events", first_batch))
        assert kept["b1"] and kept["d1"] and not kept["h1"] and not kept["a12"]
    finally:
        con.close()


def test_null_keys_fail_the_model_level_not_null_test_and_the_mart_constraints(tmp_path):
    """not_null_columns fails with one row per column holding NULLs, counting the NULL cells (a blank
    user id is NULL in staging); the contracted marts refuse NULLs through their NOT NULL constraints."""
    import duckdb

    path = tmp_path / "nulls.duckdb"
    load_raw(path, orders=[
        order("o-ok", "u1", at="2026-01-05 10:00", revenue=1000),
        dict(order("o-no-user", "u2", at="2026-01-06 10:00", revenue=2000), user_id=None),
        dict(order("o-blank-user", "u3", at="2026-01-07 10:00", revenue=3000), user_id="  "),
    ])
    run_dbt(path, "run", "--select", "stg_shop__orders")
    with pytest.raises(DbtFailed) as failed:
        run_dbt(path, "test", "--select", "stg_shop__orders", "--store-failures")
    output = str(failed.value)
    assert "Failure in test not_null_columns_stg_shop__orders" in output and "Got 2 results" in output

    con = duckdb.connect(str(path), read_only=True)
    try:
        audit = con.execute("select table_schema, table_name from information_schema.tables "
                            "where table_name like 'not_null_columns%'").fetchall()
        assert len(audit) == 1
        schema, table = audit[0]
        assert con.execute(f'select column_name, null_rows from "{schema}"."{table}"').fetchall() == [("user_id", 2)]
    finally:
        con.close()

    # fct_orders (contract: customer_id not null) refuses these orders; the 7 models upstream of it build
    with pytest.raises(DbtFailed) as failed:
        run_dbt(path, "run", "--select", "+fct_orders")
    assert "NOT NULL constraint failed: fct_orders__dbt_tmp.customer_id" in str(failed.value)
    assert "PASS=7 WARN=0 ERROR=1" in str(failed.value)


def test_dagster_materializes_the_dbt_assets_and_runs_their_checks(tmp_path, monkeypatch):
    """The dbt models are Dagster assets downstream of raw/*, in the duckdb pool, with dbt tests as checks."""
    import dagster as dg

    path = tmp_path / "dagster.duckdb"
    load_raw(path, events=EVENTS, identifies=IDENTIFIES, orders=ORDERS)
    monkeypatch.setenv("GOLDENTIME_DUCKDB", str(path))
    from orchestration.defs.transform import defs
    from orchestration.defs.transform.assets import dbt_models, dbt_resource

    graph = defs.resolve_asset_graph()
    dim = dg.AssetKey(["marts", "dim_customers"])
    assert graph.get(dim).pools == {"duckdb"}
    assert {k.to_user_string() for k in graph.get(dg.AssetKey(["staging", "stg_segment__events"])).parent_keys} == {"raw/events"}
    assert {k.to_user_string() for k in graph.get(dg.AssetKey(["staging", "stg_segment__identifies"])).parent_keys} == {"raw/identifies"}
    assert {k.to_user_string() for k in graph.get(dg.AssetKey(["staging", "stg_shop__orders"])).parent_keys} == {"raw/orders"}
    checks = {c.to_user_string() for c in graph.asset_check_keys}
    assert "marts/dim_customers:unique_dim_customers_customer_id" in checks
    assert any(c.startswith("intermediate/int_customer_facts:not_null_columns_") for c in checks)

    core = dg.AssetSelection.assets(dim, dg.AssetKey(["marts", "fct_sessions"])).upstream() - dg.AssetSelection.key_prefixes("raw")
    result = dg.materialize([dbt_models], selection=core, resources={"dbt": dbt_resource()}, raise_on_error=False)
    assert result.success
    materialized = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
    assert {"marts/dim_customers", "marts/fct_events", "marts/fct_sessions", "marts/fct_orders",
            "intermediate/int_identity_graph"} <= materialized
    # every check of every materialised model ran, and passed
    evaluations = result.get_asset_check_evaluations()
    expected = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys
                if k.asset_key.to_user_string() in materialized}
    assert {(e.asset_key.to_user_string(), e.check_name) for e in evaluations} == expected
    assert len(evaluations) > 30 and all(e.passed for e in evaluations)
