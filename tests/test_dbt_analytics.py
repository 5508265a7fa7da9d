"""The analytics dbt models (funnels, retention, repurchase comparison, behavioural cohorts, paths)
built end to end on a small hand-made event set, with exact expected numbers.

Raw rows are written with the shared helpers of tests/dbt_helpers.py and the real dbt project is
built on them (staging → identity → fct_events → analytics marts) in a temporary DuckDB file. The analytics
definitions are pinned with --vars so that editing the project's example funnels does not change
what is tested here. Most times are UTC 02:00–04:00 (11:00–13:00 in the project time zone,
Asia/Seoul), so calendar days and weeks are the same in both; u1's 20:00 UTC add to cart on Jan 27
is Jan 28 in Seoul.

The latest event (u1, 2026-01-28 03:00 UTC, a Wednesday) is the as-of instant.
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pytest

from tests.dbt_helpers import (DERIVED_TABLES, INCREMENTAL_TABLES, full_refresh_copy, load_raw, order, page, run_dbt,
                               table_differences, track)

# (user, UTC time, event name or page path)
EVENTS = [
    # u1: search → view (+300 s) → add (+300 s); back in weeks 1 and 3; adds to cart 7 h before the as-of instant
    ("u1", "2026-01-05T03:00:00Z", "/search"),
    ("u1", "2026-01-05T03:05:00Z", "Product Viewed"),
    ("u1", "2026-01-05T03:10:00Z", "Product Added"),
    ("u1", "2026-01-13T03:00:00Z", "/"),
    ("u1", "2026-01-27T20:00:00Z", "Product Added"),
    ("u1", "2026-01-28T03:00:00Z", "/"),
    # u2: search → view a day later, never adds; views the promo page 8 days before the as-of instant
    ("u2", "2026-01-05T03:00:00Z", "/search"),
    ("u2", "2026-01-06T03:00:00Z", "Product Viewed"),
    ("u2", "2026-01-20T03:00:00Z", "/promo/signup"),
    # u3: the first search's view comes 1 s after its 7-day window; the second search reaches the
    # add to cart exactly 7 days after it (inside: the window is inclusive)
    ("u3", "2026-01-05T03:00:00Z", "/search"),
    ("u3", "2026-01-12T03:00:01Z", "Product Viewed"),
    ("u3", "2026-01-20T03:00:00Z", "/search"),
    ("u3", "2026-01-20T03:10:00Z", "Product Viewed"),
    ("u3", "2026-01-27T03:00:00Z", "Product Added"),
    # u4: never searches; views the promo page within the last 7 days and does not sign up
    ("u4", "2026-01-14T03:00:00Z", "Product Viewed"),
    ("u4", "2026-01-21T04:00:00Z", "/promo/signup"),
    # u5: an add to cart before the search does not count; search → view (+60 s); promo then sign-up
    ("u5", "2026-01-06T02:00:00Z", "Product Added"),
    ("u5", "2026-01-06T03:00:00Z", "/search"),
    ("u5", "2026-01-06T03:01:00Z", "Product Viewed"),
    ("u5", "2026-01-25T03:00:00Z", "/promo/signup"),
    ("u5", "2026-01-25T03:05:00Z", "Signed Up"),
]

# u1 repurchases within 7 days, u2 buys once, u3 repurchases 7 days 30 minutes later
ORDERS = [
    ("o1", "u1", "2026-01-05T03:15:00Z"),
    ("o2", "u1", "2026-01-08T03:00:00Z"),
    ("o3", "u2", "2026-01-06T03:30:00Z"),
    ("o4", "u3", "2026-01-20T03:30:00Z"),
    ("o5", "u3", "2026-01-27T04:00:00Z"),
]

ANALYTICS_VARS = {
    "funnels": [
        {
            "name": "search_to_cart",
            "conversion_window": {"value": 7, "unit": "day"},
            "steps": [
                {"name": "view_search_results", "event": "Page Viewed",
                 "filters": [{"property": "page_path", "value": "/search"}]},
                {"name": "view_product_detail", "event": "Product Viewed"},
                {"name": "add_to_cart", "event": "Product Added"},
            ],
        }
    ],
    "retention": [
        {"name": "first_seen_weekly", "start_event": "first_seen", "returning_event": "any_event",
         "grain": "week", "periods": 6},
        {"name": "first_seen_weekly_on_or_after", "start_event": "first_seen", "returning_event": "any_event",
         "grain": "week", "periods": 6, "retention_type": "on_or_after"},
    ],
    "repurchase_comparison": {"repurchase_window": {"value": 7, "unit": "day"}, "grain": "week", "periods": 3},
    "behavioural_cohorts": [
        {
            "name": "signup_promo_viewed_not_signed_up",
            "conditions": [
                {"event": "Page Viewed", "filters": [{"property": "page_path", "value": "/promo/signup"}],
                 "in_last": {"value": 7, "unit": "day"}},
                {"event": "Signed Up", "performed": False},
            ],
        },
        {
            "name": "cart_abandoned_24h",
            "conditions": [
                {"event": "Product Added", "in_last": {"value": 24, "unit": "hour"}},
                {"event": "Order Completed", "performed": False, "in_last": {"value": 24, "unit": "hour"}},
            ],
        },
    ],
    "paths": {"steps": 5, "analyses": [{"name": "before_add", "end": "Product Added"}]},
}


def raw_rows():
    """EVENTS and ORDERS as raw.events / raw.orders rows (tests/dbt_helpers.py builders)."""
    events = []
    for n, (user, ts, what) in enumerate(EVENTS):
        at = ts.replace("T", " ").rstrip("Z")
        ids = {"user_id": user, "anonymous_id": f"anon-{user}"}
        if what.startswith("/"):
            events.append(page(f"m{n:03d}", at=at, path=what, **ids))
        else:
            events.append(track(f"m{n:03d}", what, at=at, **ids))
    orders = [order(order_id, user, at=ts.replace("T", " ").rstrip("Z"), revenue=10000)
              for order_id, user, ts in ORDERS]
    return events, orders


ANALYTICS_MODELS = [
    "path:models/marts/analytics",
    "path:models/intermediate/int_funnel_steps_reached.sql",
    "path:models/intermediate/int_retention_periods_returned.sql",
    "path:models/intermediate/int_repurchase_cohorts_assigned.sql",
    "path:models/intermediate/int_path_steps_sequenced.sql",
]


def build_warehouse(path, dbt_vars: dict):
    """Load the raw rows, run the analytics marts and everything upstream, then the analytics models'
    data tests (their unit tests run with `dbt build`); returns a read-only connection."""
    events, orders = raw_rows()
    load_raw(path, events=events, orders=orders)
    run_dbt(path, "run", "--select", "+path:models/marts/analytics", vars=dbt_vars)
    run_dbt(path, "test", "--select", *ANALYTICS_MODELS, "--exclude-resource-type", "unit_test", vars=dbt_vars)
    return duckdb.connect(str(path), read_only=True)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    con = build_warehouse(tmp_path_factory.mktemp("analytics") / "warehouse.duckdb", ANALYTICS_VARS)
    yield con
    con.close()


def rows(con, sql):
    return con.execute(sql).fetchall()


def test_funnel_best_attempt_inclusive_window_and_times(warehouse):
    assert rows(warehouse, """
        select step_number, step_name, customers_entered, customers_converted, customers_dropped_off,
               conversion_rate_from_previous, conversion_rate_from_first,
               median_seconds_to_convert, mean_seconds_to_convert, median_seconds_from_first_step
        from marts.fct_funnel_conversion
        where funnel_name = 'search_to_cart' and breakdown_name = 'overall'
        order by step_number
    """) == [
        (1, "view_search_results", 4, 4, 0, 1.0, 1.0, None, None, 0.0),
        # gaps 300 (u1), 86400 (u2), 600 (u3, second attempt), 60 (u5)
        (2, "view_product_detail", 4, 2, 2, 1.0, 1.0, 450.0, 21840.0, 450.0),
        # u1 300 s; u3 604200 s (the add comes exactly 7 days after its search)
        (3, "add_to_cart", 2, None, 0, 0.5, 0.5, 302250.0, 302250.0, 302700.0),
    ]
    # u3's best attempt is its second search; u4 never searched
    assert rows(warehouse, """
        select customer_id, furthest_step, min(attempt_started_at)
        from intermediate.int_funnel_steps_reached
        group by customer_id, furthest_step order by customer_id
    """) == [
        ("u1", 3, datetime(2026, 1, 5, 3, 0)),
        ("u2", 2, datetime(2026, 1, 5, 3, 0)),
        ("u3", 3, datetime(2026, 1, 20, 3, 0)),
        ("u5", 2, datetime(2026, 1, 6, 3, 0)),
    ]


def test_funnel_breakdowns_partition_the_overall_counts(warehouse):
    by_breakdown = dict(rows(warehouse, """
        select breakdown_name, sum(customers_entered)
        from marts.fct_funnel_conversion
        where funnel_name = 'search_to_cart' and step_number = 1
        group by breakdown_name
    """))
    assert by_breakdown == {"overall": 4, "acquisition_channel": 4, "first_seen_week": 4}
    assert rows(warehouse, """
        select breakdown_value, customers_entered from marts.fct_funnel_conversion
        where funnel_name = 'search_to_cart' and breakdown_name = 'first_seen_week' and step_number = 3
    """) == [("2026-01-05", 2)]


def test_funnel_dropoff_cohort(warehouse):
    assert rows(warehouse, """
        select customer_id, dropped_after_step, dropped_after_step_name, missed_step_name, last_step_at,
               window_ends_at, is_window_elapsed
        from marts.fct_funnel_dropoff_cohorts
        order by customer_id
    """) == [
        ("u2", 2, "view_product_detail", "add_to_cart", datetime(2026, 1, 6, 3, 0), datetime(2026, 1, 12, 3, 0), True),
        ("u5", 2, "view_product_detail", "add_to_cart", datetime(2026, 1, 6, 3, 1), datetime(2026, 1, 13, 3, 0), True),
    ]


def test_retention_matrix_on(warehouse):
    # cohort 2026-01-05: u1, u2, u3, u5; cohort 2026-01-12: u4. As of Wednesday 2026-01-28, the week of
    # 2026-01-26 has started (shown) but not ended (not complete); the week of 2026-02-02 has not started.
    assert rows(warehouse, """
        select cohort_period, period_number, cohort_size, retained_customers, retention_rate, is_period_complete
        from marts.fct_retention_cohorts
        where retention_name = 'first_seen_weekly'
        order by cohort_period, period_number
    """) == [
        (date(2026, 1, 5), 0, 4, 4, 1.0, True),
        (date(2026, 1, 5), 1, 4, 2, 0.5, True),     # u1 (13th), u3 (12th)
        (date(2026, 1, 5), 2, 4, 3, 0.75, True),    # u2, u3 (20th), u5 (Sunday 25th)
        (date(2026, 1, 5), 3, 4, 2, 0.5, False),    # u1, u3
        (date(2026, 1, 12), 0, 1, 1, 1.0, True),
        (date(2026, 1, 12), 1, 1, 1, 1.0, True),    # u4 (21st)
        (date(2026, 1, 12), 2, 1, 0, 0.0, False),
    ]
    # size-weighted averages over the cohorts whose period has ended
    assert rows(warehouse, """
        select period_number, cohorts_included, customers_in_cohorts, retained_customers, retention_rate
        from marts.fct_retention_averages
        where retention_name = 'first_seen_weekly'
        order by period_number
    """) == [(0, 2, 5, 5, 1.0), (1, 2, 5, 3, 0.6), (2, 1, 4, 3, 0.75)]


def test_retention_matrix_on_or_after_counts_only_elapsed_periods(warehouse):
    assert rows(warehouse, """
        select cohort_period, period_number, retained_customers, is_period_complete
        from marts.fct_retention_cohorts
        where retention_name = 'first_seen_weekly_on_or_after'
        order by cohort_period, period_number
    """) == [
        (date(2026, 1, 5), 0, 4, True),
        (date(2026, 1, 5), 1, 4, True),    # everybody came back in week 1 or later
        (date(2026, 1, 5), 2, 4, True),
        (date(2026, 1, 5), 3, None, False),
        (date(2026, 1, 12), 0, 1, True),
        (date(2026, 1, 12), 1, 1, True),
        (date(2026, 1, 12), 2, None, False),
    ]


def test_repurchase_within_7_days_versus_one_time_buyers(warehouse):
    assert rows(warehouse, """
        select customer_id, repurchase_group, purchase_count, seconds_to_second_purchase
        from intermediate.int_repurchase_cohorts_assigned order by customer_id
    """) == [
        ("u1", "repurchased_within_window", 2, 258300),
        ("u2", "one_time_buyer", 1, None),
        ("u3", "repurchased_later", 2, 606600),
    ]
    # 7-day periods from the first purchase; a period counts once it has fully elapsed
    assert rows(warehouse, """
        select repurchase_group, period_number, group_size, eligible_customers, retained_customers, retention_rate
        from marts.fct_repurchase_retention_comparison
        order by repurchase_group, period_number
    """) == [
        ("one_time_buyer", 0, 1, 1, 1, 1.0),
        ("one_time_buyer", 1, 1, 1, 1, 1.0),     # back on day 13
        ("one_time_buyer", 2, 1, 1, 0, 0.0),
        ("one_time_buyer", 3, 1, 0, 0, None),
        ("repurchased_later", 0, 1, 1, 1, 1.0),
        ("repurchased_later", 1, 1, 0, 0, None),
        ("repurchased_later", 2, 1, 0, 0, None),
        ("repurchased_later", 3, 1, 0, 0, None),
        ("repurchased_within_window", 0, 1, 1, 1, 1.0),
        ("repurchased_within_window", 1, 1, 1, 1, 1.0),   # back on day 7.99
        ("repurchased_within_window", 2, 1, 1, 0, 0.0),
        ("repurchased_within_window", 3, 1, 0, 0, None),
    ]


def test_behavioural_cohorts_at_the_as_of_instant(warehouse):
    # promo: u2's view is 8 days old, u5 signed up; cart: u3's add is exactly 24 h old (outside)
    assert rows(warehouse, """
        select snapshot_date, snapshot_at, cohort_name, customer_id, qualifying_events, last_qualifying_event_at
        from marts.fct_behavioural_cohort_members order by cohort_name, customer_id
    """) == [
        (date(2026, 1, 28), datetime(2026, 1, 28, 3, 0), "cart_abandoned_24h", "u1", 1, datetime(2026, 1, 27, 20, 0)),
        (date(2026, 1, 28), datetime(2026, 1, 28, 3, 0), "signup_promo_viewed_not_signed_up", "u4", 1,
         datetime(2026, 1, 21, 4, 0)),
    ]


def test_paths_before_target(warehouse):
    assert rows(warehouse, """
        select path_rank, path, path_length, sessions, customers, share_of_sessions
        from marts.fct_path_sequences where analysis_name = 'before_add' order by path_rank
    """) == [
        (1, "Product Added", 1, 3, 3, 0.75),
        (2, "/search → Product Viewed → Product Added", 3, 1, 1, 0.25),
    ]
    assert rows(warehouse, """
        select from_position, from_step_key, to_position, to_step_key, sessions
        from marts.fct_path_edges where analysis_name = 'before_add' order by edge_rank
    """) == [(-2, "/search", -1, "Product Viewed", 1), (-1, "Product Viewed", 0, "Product Added", 1)]


def test_incremental_builds_match_a_full_refresh(tmp_path, warehouse):
    """Events up to Jan 19 built first, the rest loaded and built incrementally: every incremental model
    equals a full refresh of the same raw rows, and the analytics marts equal the one-step build the
    tests above check. Then the funnel definition changes: the incremental models notice it (their
    definition_hash) and recompute every customer instead of only the changed ones."""
    events, orders = raw_rows()
    split = date(2026, 1, 20)
    path = tmp_path / "incremental.duckdb"
    load_raw(path, events=[e for e in events if e["landing_date"] < split],
             orders=[o for o in orders if o["landing_date"] < split])
    run_dbt(path, "run", "--select", "+path:models/marts/analytics", vars=ANALYTICS_VARS)
    load_raw(path, events=[e for e in events if e["landing_date"] >= split],
             orders=[o for o in orders if o["landing_date"] >= split])
    run_dbt(path, "run", "--select", "+path:models/marts/analytics", vars=ANALYTICS_VARS)

    full = full_refresh_copy(path, tmp_path / "full.duckdb", "--select", "+path:models/marts/analytics",
                             vars=ANALYTICS_VARS)
    analytics = tuple(t for t in INCREMENTAL_TABLES + DERIVED_TABLES if "analytics" in t or "int_" in t)
    assert table_differences(path, full, analytics) == {}
    # the same marts as the one-step build (whose numbers the tests above pin)
    marts = [t for t in DERIVED_TABLES if t.startswith("marts.fct_") and t != "marts.fct_orders"]
    warehouse_file = warehouse.execute("select path from duckdb_databases() where database_name = current_database()").fetchone()[0]
    assert table_differences(path, warehouse_file, marts) == {}

    # a changed funnel definition: rows of the old definition are replaced, for every customer
    one_day = dict(ANALYTICS_VARS, funnels=[dict(ANALYTICS_VARS["funnels"][0], conversion_window={"value": 1, "unit": "day"})])
    run_dbt(path, "run", "--select", "+path:models/marts/analytics", vars=one_day)
    full = full_refresh_copy(path, tmp_path / "full_one_day.duckdb", "--select", "+path:models/marts/analytics",
                             vars=one_day)
    assert table_differences(path, full, analytics) == {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        # u3's add to cart came exactly 7 days after the search: outside a 1-day window now; u2's view
        # exactly one day after the search is still inside (inclusive)
        assert rows(con, """select customer_id, max(furthest_step) from intermediate.int_funnel_steps_reached
                            group by customer_id order by customer_id""") == [("u1", 3), ("u2", 2), ("u3", 2), ("u5", 2)]
        assert rows(con, "select count(distinct definition_hash) from intermediate.int_funnel_steps_reached") == [(1,)]
    finally:
        con.close()
