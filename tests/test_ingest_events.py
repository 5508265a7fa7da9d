"""Loading Segment calls: exact counts on hand-made lines, every bad line kept with its reason."""

import gzip
from datetime import date, datetime

import pytest

from goldentime.ingest import loading
from goldentime.ingest.events import QUARANTINE_REASONS, load_events_day
from goldentime.ingest.landing import LandingZoneError, landing_files
from tests.conftest import track

DAY = date(2026, 1, 2)


def load(con, landing, day=DAY):
    return load_events_day(con, day, landing_files(str(landing.root), "events", day))


def rows(con, sql, *params):
    return con.execute(sql, list(params)).fetchall()


# One line per quarantine rule, in rule order.
BAD_LINES = {
    "empty_line": "",
    "invalid_json": '{"type":"track","messageId":"x1"',
    "not_an_object": "[1, 2, 3]",
    "missing_type": {"messageId": "x2", "event": "A", "timestamp": "2026-01-02T00:00:00Z", "userId": "u"},
    "unknown_type": {"type": "trak", "messageId": "x3", "event": "A", "timestamp": "2026-01-02T00:00:00Z", "userId": "u"},
    "missing_message_id": {"type": "track", "event": "A", "timestamp": "2026-01-02T00:00:00Z", "userId": "u"},
    "missing_event_name": {"type": "track", "messageId": "x4", "timestamp": "2026-01-02T00:00:00Z", "userId": "u"},
    "missing_timestamp": {"type": "track", "messageId": "x5", "event": "A", "userId": "u"},
    "invalid_timestamp": {"type": "track", "messageId": "x6", "event": "A", "timestamp": "last tuesday", "userId": "u"},
    "alias_missing_ids": {"type": "alias", "messageId": "x7", "userId": "u", "timestamp": "2026-01-02T00:00:00Z"},
    "no_identity": {"type": "track", "messageId": "x8", "event": "A", "timestamp": "2026-01-02T00:00:00Z"},
    "timestamp_in_future": {"type": "track", "messageId": "x9", "event": "A", "timestamp": "2031-01-02T00:00:00Z", "userId": "u"},
    "timestamp_out_of_range": {"type": "track", "messageId": "x10", "event": "A", "timestamp": "1970-01-01T00:00:00Z", "userId": "u"},
}


def test_every_quarantine_reason_is_recorded_with_line_number_and_raw_text(warehouse, landing):
    good = [track("m1"), track("m2", "Product Added")]
    bad = list(BAD_LINES.values()) + [b'{"type":"track","messageId":"x11","event":"\xff","userId":"u","timestamp":"2026-01-02T00:00:00Z"}']
    landing.events(DAY, "part-1", good + bad)

    day = load(warehouse, landing)

    expected = list(BAD_LINES) + ["invalid_utf8"]
    assert set(expected) == set(QUARANTINE_REASONS)
    assert day.quarantined_by_reason == {reason: 1 for reason in expected}
    quarantined = rows(warehouse, "select line_no, reason from raw.quarantine order by line_no")
    assert quarantined == [(3 + i, reason) for i, reason in enumerate(expected)]
    [(raw_text,)] = rows(warehouse, "select raw_text from raw.quarantine where reason = 'invalid_utf8'")
    assert "\\xff" in raw_text  # shown escaped, not lost
    [(detail,)] = rows(warehouse, "select detail from raw.quarantine where reason = 'unknown_type'")
    assert detail == "type trak"
    assert rows(warehouse, "select message_id from raw.events order by line_no") == [("m1",), ("m2",)]
    [file] = day.files
    assert (file.lines_read, file.loaded, file.duplicates, file.quarantined) == (16, 2, 0, 14)
    assert file.reconciles
    assert rows(warehouse, "select lines_read, loaded, duplicates, quarantined from raw.ingest_log") == [(16, 2, 0, 14)]


def test_reloading_a_day_replaces_it(warehouse, landing):
    landing.events(DAY, "part-1", [track("m1"), track("m1"), track("m2"), "not json"])
    first = load(warehouse, landing)
    for _ in range(3):
        again = load(warehouse, landing)
    assert (again.total("loaded"), again.total("duplicates"), again.total("quarantined")) == (2, 1, 1)
    assert first.total("loaded") == again.total("loaded")
    counts = [rows(warehouse, f"select count(*) from raw.{t}")[0][0] for t in ("events", "quarantine", "duplicates", "ingest_log")]
    assert counts == [2, 1, 1, 1]


def test_first_received_wins_within_a_day_and_across_days(warehouse, landing):
    # Same messageId: twice in a.jsonl, once in b.jsonl (read after a), once the next day.
    landing.events(DAY, "a", [track("m1", properties={"copy": 1}), track("m1", properties={"copy": 2})])
    landing.events(DAY, "b", [track("m1", properties={"copy": 3})])
    next_day = date(2026, 1, 3)
    landing.events(next_day, "c", [track("m1", properties={"copy": 4}, ts="2026-01-03T00:00:00Z")])

    load(warehouse, landing)
    later = load(warehouse, landing, next_day)

    assert rows(warehouse, "select properties->>'$.copy' from raw.events") == [("1",)]
    assert later.total("duplicates") == 1 and later.total("loaded") == 0
    kept = rows(warehouse, "select line_no, kept_source_file like '%/a.jsonl', kept_line_no from raw.duplicates order by landing_date, source_file, line_no")
    assert kept == [(2, True, 1), (1, True, 1), (1, True, 1)]
    # Reloading the first day keeps the same winner: the table never holds a messageId twice.
    load(warehouse, landing)
    assert rows(warehouse, "select count(*), count(distinct message_id) from raw.events") == [(1, 1)]


def test_identify_and_alias_go_to_raw_identifies_and_share_the_message_id_space(warehouse, landing):
    landing.events(DAY, "a", [
        {"type": "identify", "messageId": "i1", "userId": "u1", "anonymousId": "anon-1",
         "timestamp": "2026-01-02T01:00:00Z", "traits": {"email": "kim@example.com", "consent_email": True}},
        {"type": "alias", "messageId": "i2", "userId": "u1", "previousId": "anon-1", "timestamp": "2026-01-02T01:00:01Z"},
        track("i1"),  # a track call reusing an identify's messageId is a duplicate
        {"type": "page", "messageId": "p1", "anonymousId": "anon-1", "name": "Home", "timestamp": "2026-01-02T01:00:02Z"},
    ])
    day = load(warehouse, landing)
    assert day.loaded_by_table == {"raw.events": 1, "raw.identifies": 2}
    assert rows(warehouse, "select type, user_id, previous_id, traits->>'$.email' from raw.identifies order by line_no") == [
        ("identify", "u1", None, "kim@example.com"), ("alias", "u1", "anon-1", None)]
    assert rows(warehouse, "select type, page_name from raw.events") == [("page", "Home")]
    assert day.total("duplicates") == 1


def test_times_are_utc_and_corrected_for_client_clock_skew(warehouse, landing):
    landing.events(DAY, "a", [
        track("kst", ts="2026-01-02T09:30:00+09:00"),
        # The device clock is 2 hours fast: sent 5 s after the event by its clock, received 1 s later.
        track("skewed", ts="2026-01-02T12:00:00Z", sentAt="2026-01-02T12:00:05Z", receivedAt="2026-01-02T10:00:06Z"),
        track("no_sent_at", ts="2026-01-02T12:00:00Z", receivedAt="2026-01-02T10:00:06Z"),
    ])
    load(warehouse, landing)
    assert rows(warehouse, "select message_id, event_at from raw.events order by line_no") == [
        ("kst", datetime(2026, 1, 2, 0, 30)),
        ("skewed", datetime(2026, 1, 2, 10, 0, 1)),
        ("no_sent_at", datetime(2026, 1, 2, 12, 0)),
    ]
    [(original,)] = rows(warehouse, "select original_timestamp from raw.events where message_id = 'skewed'")
    assert original == datetime(2026, 1, 2, 12, 0)


def test_late_events_load_with_the_day_they_arrived(warehouse, landing):
    landing.events(DAY, "a", [track("late", ts="2025-12-29T10:00:00Z"), track("on_time")])
    day = load(warehouse, landing)
    assert day.late_rows == 1
    assert rows(warehouse, "select landing_date from raw.events where message_id = 'late'") == [(DAY,)]


def test_gzip_files_load_like_plain_ones(warehouse, landing):
    landing.events(DAY, "a", [track("m1"), track("m2"), "broken"], gzip=True)
    day = load(warehouse, landing)
    assert (day.total("loaded"), day.total("quarantined")) == (2, 1)
    assert day.problems == []


def test_truncated_gzip_keeps_the_readable_lines_and_says_so(warehouse, landing):
    lines = [track(f"m{i}", properties={"pad": "x" * 200}) for i in range(2000)]
    path = landing.events(DAY, "a", lines, gzip=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])

    day = load(warehouse, landing)

    [file] = day.files
    assert any("truncated gzip" in p for p in file.problems), file.problems
    assert 0 < file.loaded < 2000
    assert file.reconciles
    # The cut line, if any, is quarantined rather than dropped.
    assert file.lines_read == file.loaded + file.quarantined
    assert "a.jsonl.gz" in day.problems[0]


def test_a_gz_file_that_is_not_gzip_is_reported(warehouse, landing):
    path = landing.folder("events", DAY) / "a.jsonl.gz"
    path.write_bytes(b'{"type":"track"}\n')
    day = load(warehouse, landing)
    assert any("corrupt gzip" in p for p in day.problems)
    assert day.total("lines_read") == 0


def test_empty_file_is_reported_and_loads_nothing(warehouse, landing):
    (landing.folder("events", DAY) / "empty.jsonl").write_bytes(b"")
    day = load(warehouse, landing)
    assert day.problems == [f"{day.files[0].source_file}: empty file: no lines to load"]
    assert rows(warehouse, "select lines_read, loaded from raw.ingest_log") == [(0, 0)]


def test_a_file_with_the_wrong_schema_is_quarantined_whole_and_named(warehouse, landing):
    (landing.folder("events", DAY) / "orders.csv").write_text("order_id,revenue\no1,100\no2,200\n")
    day = load(warehouse, landing)
    assert day.total("quarantined") == 3 and day.total("loaded") == 0
    assert any("unexpected file name 'orders.csv'" in p for p in day.problems)
    assert any("none of the 3 lines could be loaded (most common reason: invalid_json)" in p for p in day.problems)


def test_missing_landing_zone_is_a_clear_error(tmp_path):
    with pytest.raises(LandingZoneError, match="does-not-exist.*does not exist"):
        landing_files(str(tmp_path / "does-not-exist"), "events")


def test_a_failure_mid_load_leaves_the_warehouse_as_it_was(warehouse, landing, monkeypatch):
    landing.events(DAY, "a", [track("m1"), track("m2")])
    load(warehouse, landing)
    landing.events(DAY, "a", [track("m3")])

    def broken(*args):
        raise loading.ReconciliationError("simulated")

    monkeypatch.setattr("goldentime.ingest.loading.reconcile_and_log", broken)
    with pytest.raises(loading.ReconciliationError):
        load(warehouse, landing)
    assert rows(warehouse, "select message_id from raw.events order by 1") == [("m1",), ("m2",)]
    assert rows(warehouse, "select count(*) from raw.ingest_log") == [(1,)]


def test_counts_that_do_not_reconcile_are_refused():
    file = loading.FileLoad(source_file="f", file_bytes=1, landing_date=DAY, lines_read=3, loaded=1, quarantined=1)
    with pytest.raises(loading.ReconciliationError, match="read 3 != loaded 1"):
        loading.reconcile_and_log(None, "events", [file], "r", loading.utc_now())


def test_gzip_member_concatenation_is_read_whole(warehouse, landing):
    path = landing.folder("events", DAY) / "multi.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"type":"track","messageId":"a","event":"E","userId":"u","timestamp":"2026-01-02T00:00:00Z"}\n')
                     + gzip.compress(b'{"type":"track","messageId":"b","event":"E","userId":"u","timestamp":"2026-01-02T00:00:00Z"}\n'))
    day = load(warehouse, landing)
    assert day.total("loaded") == 2 and day.problems == []


def test_any_fsspec_url_works_as_landing_zone(warehouse):
    import fsspec

    fs = fsspec.filesystem("memory")
    root = "memory://landing-test"
    fs.pipe(f"{root}/events/date=2026-01-02/a.jsonl", b'{"type":"track","messageId":"m1","event":"E","userId":"u","timestamp":"2026-01-02T00:00:00Z"}\n')
    fs.pipe(f"{root}/events/date=2026-01-02/b.jsonl.gz", gzip.compress(b'{"type":"page","messageId":"m2","userId":"u","timestamp":"2026-01-02T00:00:00Z"}\n'))
    try:
        files = landing_files(root, "events")
        assert [f.name for f in files] == ["a.jsonl", "b.jsonl.gz"]
        day = load_events_day(warehouse, DAY, files)
        assert day.total("loaded") == 2
    finally:
        fs.rm(root, recursive=True)
