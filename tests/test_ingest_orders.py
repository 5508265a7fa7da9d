"""Loading the orders export: typed rows, bad rows quarantined with reasons, wrong headers named."""

from datetime import date, datetime
from decimal import Decimal

from goldentime.ingest.landing import landing_files
from goldentime.ingest.orders import load_orders_day

DAY = date(2026, 1, 2)
HEADER = "order_id,user_id,ordered_at,status,currency,revenue,item_count\n"


def load(con, landing, day=DAY):
    return load_orders_day(con, day, landing_files(str(landing.root), "orders", day))


def test_orders_are_typed_and_bad_rows_quarantined(warehouse, landing):
    landing.orders(DAY, "orders", HEADER + "\n".join([
        "o1,u1,2026-01-02T10:00:00+09:00,completed,KRW,39000.50,2",
        "o1,u1,2026-01-02T10:00:00+09:00,completed,KRW,39000.50,2",
        "o2,u2,2026-01-02T03:00:00Z,Refunded,krw,12000,1",
        "o3,u1,2026-01-02T03:00:00Z,shipped,KRW,1000,1",
        "o4,u1,soon,completed,KRW,1000,1",
        "o5,u1,2026-01-02T03:00:00Z,completed,KRW,-3,1",
        "o6,u1,2026-01-02T03:00:00Z,completed,KRW,abc,1",
        "o7,u1,2026-01-02T03:00:00Z,completed,KRW,10,many",
        "o8,u1,2026-01-02T03:00:00Z,completed,KRW",
        ",u1,2026-01-02T03:00:00Z,completed,KRW,10,1",
        "o9,,2026-01-02T03:00:00Z,completed,KRW,10,1",
        '"o10","u3","2026-01-02T03:00:00Z","completed","KRW","1,000.00","1"',
    ]) + "\n")

    day = load(warehouse, landing)

    assert warehouse.execute("select order_id, user_id, ordered_at, status, currency, revenue, item_count from raw.orders order by line_no").fetchall() == [
        ("o1", "u1", datetime(2026, 1, 2, 1, 0), "completed", "KRW", Decimal("39000.50"), 2),
        ("o2", "u2", datetime(2026, 1, 2, 3, 0), "refunded", "KRW", Decimal("12000.00"), 1),
    ]
    assert warehouse.execute("select line_no, reason from raw.quarantine order by line_no").fetchall() == [
        (5, "unknown_status"), (6, "invalid_ordered_at"), (7, "invalid_revenue"), (8, "invalid_revenue"),
        (9, "invalid_item_count"), (10, "wrong_column_count"), (11, "missing_order_id"), (12, "missing_user_id"),
        (13, "invalid_revenue"),
    ]
    [file] = day.files
    assert (file.lines_read, file.loaded, file.duplicates, file.quarantined) == (12, 2, 1, 9)


def test_a_header_without_required_columns_quarantines_the_file_and_names_them(warehouse, landing):
    landing.orders(DAY, "orders", "id,customer,amount\n1,u1,100\n2,u2,200\n")
    day = load(warehouse, landing)
    assert day.total("quarantined") == 2 and day.total("loaded") == 0
    assert any("lacks required column(s) order_id, user_id, ordered_at, status, revenue" in p for p in day.problems)
    assert {r for (r,) in warehouse.execute("select reason from raw.quarantine").fetchall()} == {"wrong_schema"}


def test_column_order_does_not_matter_and_reloads_replace(warehouse, landing):
    landing.orders(DAY, "orders", "revenue,order_id,status,ordered_at,user_id\n100,o1,completed,2026-01-02T00:00:00Z,u1\n")
    for _ in range(2):
        day = load(warehouse, landing)
    assert day.total("loaded") == 1
    assert warehouse.execute("select order_id, revenue, currency from raw.orders").fetchall() == [("o1", Decimal("100.00"), None)]


def test_an_order_seen_on_an_earlier_day_is_a_duplicate(warehouse, landing):
    landing.orders(DAY, "a", HEADER + "o1,u1,2026-01-02T00:00:00Z,completed,KRW,10,1\n")
    landing.orders(date(2026, 1, 3), "a", HEADER + "o1,u1,2026-01-02T00:00:00Z,completed,KRW,10,1\n")
    load(warehouse, landing)
    later = load(warehouse, landing, date(2026, 1, 3))
    assert (later.total("loaded"), later.total("duplicates")) == (0, 1)


def test_a_status_change_is_a_new_version_not_a_duplicate(warehouse, landing):
    landing.orders(DAY, "a", HEADER + "o1,u1,2026-01-02T00:00:00Z,completed,KRW,10,1\n")
    landing.orders(date(2026, 1, 9), "a", HEADER + "o1,u1,2026-01-02T00:00:00Z,refunded,KRW,10,1\n"
                   "o1,u1,2026-01-02T00:00:00Z,refunded,KRW,10,1\n")
    load(warehouse, landing)
    later = load(warehouse, landing, date(2026, 1, 9))
    assert (later.total("loaded"), later.total("duplicates")) == (1, 1)
    assert warehouse.execute("select status, landing_date from raw.orders order by landing_date").fetchall() == [
        ("completed", DAY), ("refunded", date(2026, 1, 9))]
    assert warehouse.execute("select duplicate_key, kept_line_no from raw.duplicates").fetchall() == [("o1:refunded", 2)]  # line 1 is the header


def test_an_empty_orders_file_is_reported(warehouse, landing):
    landing.orders(DAY, "orders", "")
    day = load(warehouse, landing)
    assert day.total("lines_read") == 0
    assert any("empty file" in p for p in day.problems)
