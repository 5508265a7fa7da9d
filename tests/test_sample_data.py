"""Properties of the sample-data generator (goldentime.sample_data), on small landing zones."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from goldentime.sample_data import (MALFORMED_KINDS, GenerationSummary, generate,
                                    target_customers_for_events)
from goldentime.sample_data.simulate import simulate

SEGMENT_TYPES = {"track", "page", "identify", "alias", "screen", "group"}
FUNNEL = ["page", "Product Viewed", "Product Added", "Checkout Started", "Order Completed"]
MESSAGE_EVENTS = {"Email Opened", "Email Clicked", "Push Opened", "Kakao Clicked"}
KW = dict(customers=2_500, start=date(2026, 1, 1), days=45, seed=7, malformed_rate=0.004,
          duplicate_rate=0.02, late_rate=0.01)


def _ts(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def classify(raw: bytes) -> tuple[str, dict | None]:
    """What an ingest has to decide for one line: 'ok' or the malformed kind."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8", None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return "truncated_json", None
    if not isinstance(obj, dict):
        return "json_array", None
    if "type" not in obj:
        return "missing_type", obj
    if obj["type"] not in SEGMENT_TYPES:
        return "unknown_type", obj
    if obj["type"] == "track" and not obj.get("event"):
        return "track_without_event", obj
    if "timestamp" not in obj:
        return "missing_timestamp", obj
    ts = _ts(obj["timestamp"])
    if ts is None:
        return "bad_timestamp", obj
    received = _ts(obj["receivedAt"])
    sent = _ts(obj.get("sentAt"))
    corrected = received - (sent - ts) if sent else ts
    if corrected > received + timedelta(days=365):
        return "future_timestamp", obj
    if not obj.get("userId") and not obj.get("anonymousId"):
        return "no_ids", obj
    obj["_t"] = corrected
    return "ok", obj


def read_zone(root: Path) -> dict:
    """Parse a landing zone the way an ingest would (first received wins)."""
    files = sorted((root / "events").glob("date=*/*.jsonl*"))
    lines, kinds, valid, dups, next_file_dups = 0, Counter(), {}, Counter(), 0
    raw_by_id: dict[str, bytes] = {}
    landing_day: dict[str, date] = {}
    for f in files:
        day = date.fromisoformat(f.parent.name.removeprefix("date="))
        data = gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
        assert data.endswith(b"\n")
        for raw in data.split(b"\n")[:-1]:
            lines += 1
            kind, obj = classify(raw)
            kinds[kind] += 1
            if kind != "ok":
                continue
            mid = obj["messageId"]
            if mid in valid:
                dups[mid] += 1
                assert raw == raw_by_id[mid], "a duplicate must be an exact copy"
                assert landing_day[mid] <= day
                next_file_dups += day > landing_day[mid]
                continue
            valid[mid] = obj
            raw_by_id[mid] = raw
            landing_day[mid] = day
    orders = []
    for f in sorted((root / "orders").glob("date=*/*.csv")):
        day = date.fromisoformat(f.parent.name.removeprefix("date="))
        text = f.read_text(encoding="utf-8")
        assert text.split("\n", 1)[0] == "order_id,user_id,ordered_at,status,currency,revenue,item_count"
        rows = list(csv.DictReader(text.splitlines()))
        for r in rows:
            r["_day"] = day
            orders.append(r)
    return {"files": files, "lines": lines, "kinds": kinds, "events": valid, "dups": dups,
            "next_file_dups": next_file_dups,
            "landing_day": landing_day, "orders": orders}


@pytest.fixture(scope="module")
def zone(tmp_path_factory) -> tuple[GenerationSummary, dict, Path]:
    root = tmp_path_factory.mktemp("landing")
    summary = generate(root, **KW)
    return summary, read_zone(root), root


def person_ids(events: dict) -> dict[str, str]:
    """anonymousId -> userId, from identify/alias and any call carrying both."""
    link = {}
    for e in events.values():
        if e.get("userId") and e.get("anonymousId"):
            link[e["anonymousId"]] = e["userId"]
    return link


def who(e: dict, link: dict[str, str]) -> str:
    return e.get("userId") or link.get(e.get("anonymousId"), e.get("anonymousId"))


def name(e: dict) -> str:
    return e["event"] if e["type"] == "track" else e["type"]


# ---------------------------------------------------------------------------------------------

def test_same_seed_same_bytes(tmp_path, zone):
    summary, _, root = zone
    again = generate(tmp_path / "again", **KW)
    first = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    second = {p.relative_to(tmp_path / "again"): p.read_bytes()
              for p in (tmp_path / "again").rglob("*") if p.is_file()}
    assert first.keys() == second.keys()
    assert all(first[k] == second[k] for k in first)
    assert again.events == summary.events
    other = generate(tmp_path / "other", **{**KW, "seed": KW["seed"] + 1, "days": 10})
    a = gzip.decompress(sorted((root / "events").glob("*/*.gz"))[3].read_bytes())
    b = gzip.decompress(sorted((tmp_path / "other" / "events").glob("*/*.gz"))[3].read_bytes())
    assert a != b and other.events > 0


def test_counts_reconcile_with_disk(zone):
    s, z, _ = zone
    assert z["lines"] == s.lines_written == s.events + s.duplicates_written + s.malformed_written
    assert len(z["events"]) == s.events
    assert sum(z["dups"].values()) == s.duplicates_written
    assert s.duplicates_written == s.duplicates_same_file + s.duplicates_next_file
    assert z["next_file_dups"] == s.duplicates_next_file > 0 and s.duplicates_same_file > 0
    assert s.event_files == len(z["files"])
    assert s.files == s.event_files + s.order_files
    assert sum(s.events_by_type.values()) == s.events == sum(s.events_by_name.values())
    got = Counter(name(e) for e in z["events"].values())
    for k, v in s.events_by_name.items():
        assert got[k] == v, k


def test_malformed_lines_by_kind(zone):
    s, z, _ = zone
    found = {k: z["kinds"].get(k, 0) for k in MALFORMED_KINDS}
    assert found == s.malformed_by_kind
    assert all(v > 0 for v in found.values())  # every kind is represented at this rate
    assert sum(found.values()) == s.malformed_written
    assert z["kinds"]["ok"] == s.events + s.duplicates_written


def test_valid_lines_follow_the_segment_spec(zone):
    s, z, _ = zone
    formats = Counter()
    for e in z["events"].values():
        assert len(e["messageId"]) == 36
        assert e["type"] in {"track", "page", "identify", "alias"}
        assert _ts(e["receivedAt"]).utcoffset() == timedelta(0)
        formats["Z" if e["timestamp"].endswith("Z") else e["timestamp"][-6:]] += 1
        assert None not in e.values(), "fields that do not apply are absent, not null"
        if e["type"] == "alias":
            assert e["previousId"] and e["userId"]
        if e["type"] == "identify":
            t = e["traits"]
            assert set(t) == {"email", "phone", "name", "timezone", "consent_email", "consent_sms",
                              "consent_push", "consent_kakao", "consent_night", "created_at"}
        if e["type"] == "page":
            assert e["name"] and e["context"]["page"]["path"].startswith("/")
        if name(e) in MESSAGE_EVENTS:
            assert set(e["properties"]) == {"campaign_id", "campaign_name", "channel"}
            assert e["userId"] and "anonymousId" not in e and "sentAt" not in e
        else:
            ctx = e["context"]
            assert ctx["device"]["type"] in {"desktop", "mobile", "tablet"}
            assert set(ctx["page"]) == {"path", "url", "referrer", "title"}
            assert e["anonymousId"]
        if "campaign" in e.get("context", {}):
            assert set(e["context"]["campaign"]) == {"source", "medium", "name"}
    assert set(formats) == {"Z", "+09:00"}  # both timestamp styles occur
    assert sum(1 for e in z["events"].values() if "sentAt" in e) > 0.85 * s.events


def test_clock_skew_is_recoverable_and_late_events_land_later(zone):
    s, z, _ = zone
    skewed, late = 0, 0
    for mid, e in z["events"].items():
        ts, t = _ts(e["timestamp"]), e["_t"]
        if abs((ts - t).total_seconds()) > 60:
            skewed += 1
        lag = (z["landing_day"][mid] - t.astimezone(timezone.utc).date()).days
        assert 0 <= lag <= 3
        if lag >= 1:
            late += 1
        if "sentAt" in e and lag == 0:
            # corrected time = true time + network delay: the client's send delay (< 1 min)
            # separates it from receivedAt, however wrong the device clock is
            assert 0 <= (_ts(e["receivedAt"]) - t).total_seconds() < 61
    assert skewed == s.skewed_events > 0
    assert s.late_events > 0
    assert s.late_events <= late <= s.late_events + 0.001 * s.events


def test_orders_match_order_completed(zone):
    s, z, _ = zone
    link = person_ids(z["events"])
    completed = {e["properties"]["order_id"]: e for e in z["events"].values() if name(e) == "Order Completed"}
    rows = z["orders"]
    by_status = Counter(r["status"] for r in rows)
    assert by_status["completed"] == s.orders == len(completed)
    assert by_status["cancelled"] == s.cancelled_orders > 0
    assert by_status["refunded"] == s.refunded_orders > 0
    assert len(rows) == s.order_rows
    first_seen = {}
    for r in rows:
        assert r["currency"] == "KRW"
        assert _ts(r["ordered_at"]) is not None and r["ordered_at"].endswith("+09:00")
        if r["status"] == "completed":
            e = completed[r["order_id"]]
            p = e["properties"]
            assert int(r["revenue"]) == p["revenue"] == sum(i["price"] * i["quantity"] for i in p["products"])
            assert int(r["item_count"]) == sum(i["quantity"] for i in p["products"])
            assert r["user_id"] == e["userId"] == who(e, link)
            assert abs((_ts(r["ordered_at"]) - e["_t"]).total_seconds()) < 3
            assert r["_day"] == _ts(r["ordered_at"]).astimezone(timezone.utc).date()
            first_seen[r["order_id"]] = r["_day"]
        else:
            assert r["order_id"] not in completed or r["status"] == "refunded"
    for r in rows:
        if r["status"] == "refunded":
            assert r["_day"] > first_seen[r["order_id"]]
    assert sum(int(r["revenue"]) for r in rows if r["status"] == "completed") == s.revenue


def test_funnel_drops_off_monotonically(zone):
    _, z, _ = zone
    link = person_ids(z["events"])
    reached = {step: set() for step in FUNNEL}
    for e in z["events"].values():
        if name(e) in reached:
            reached[name(e)].add(who(e, link))
    sizes = [len(reached[s]) for s in FUNNEL]
    assert all(a > b for a, b in zip(sizes, sizes[1:])), sizes
    abandoned = reached["Product Added"] - reached["Order Completed"]
    assert len(abandoned) > 0.3 * len(reached["Product Added"])  # cart abandonment is common


def test_identity_stitching_shapes(zone):
    s, z, _ = zone
    ev = z["events"].values()
    aliases = [e for e in ev if e["type"] == "alias"]
    signed_up = {e["userId"] for e in ev if name(e) == "Signed Up"}
    assert len(aliases) == len(signed_up) == s.members
    assert all(e["previousId"] == e["anonymousId"] for e in aliases)
    devices = defaultdict(set)
    for e in ev:
        if e.get("userId") and e.get("anonymousId"):
            devices[e["userId"]].add(e["anonymousId"])
    assert any(len(d) >= 2 for d in devices.values())  # second devices, identified later
    anon_only = {e["anonymousId"] for e in ev if "userId" not in e and "anonymousId" in e}
    never = anon_only - set(person_ids(z["events"]))
    assert len(never) > 0.5 * s.customers  # most visitors never identify
    # some members change traits later: latest identify differs from the first
    idents = defaultdict(list)
    for e in ev:
        if e["type"] == "identify":
            idents[e["userId"]].append((e["_t"], e["traits"]))
    changed = [u for u, v in idents.items() if len({json.dumps(t, sort_keys=True) for _, t in v}) > 1]
    assert changed
    # promo page visitors who did not sign up exist (a cohort the marketers ask for)
    link = person_ids(z["events"])
    promo = {who(e, link) for e in ev if e.get("context", {}).get("page", {}).get("path") == "/promo/signup"}
    assert promo - signed_up and promo & signed_up


def test_channels_differ_in_conversion_and_value(zone):
    s, z, _ = zone
    link = person_ids(z["events"])
    web = sorted((e for e in z["events"].values() if "context" in e), key=lambda e: (who(e, link), e["_t"]))
    sessions, cur, last_p, last_t = [], None, None, None
    for e in web:
        p = who(e, link)
        if p != last_p or (e["_t"] - last_t) > timedelta(minutes=30):
            camp = e["context"].get("campaign", {})
            cur = {"medium": camp.get("medium"), "orders": 0, "revenue": 0}
            sessions.append(cur)
        if name(e) == "Order Completed":
            cur["orders"] += 1
            cur["revenue"] += e["properties"]["revenue"]
        last_p, last_t = p, e["_t"]
    assert len(sessions) == s.sessions  # 30-minute sessionisation recovers the simulated visits
    stats = {}
    for m in ("price_comparison", "paid_social"):
        ss = [x for x in sessions if x["medium"] == m]
        conv = sum(x["orders"] > 0 for x in ss) / len(ss)
        aov = sum(x["revenue"] for x in ss) / max(1, sum(x["orders"] for x in ss))
        stats[m] = (len(ss), conv, aov)
    assert stats["price_comparison"][1] > 2 * stats["paid_social"][1]  # converts better
    assert stats["price_comparison"][2] < stats["paid_social"][2]  # but spends less
    assert stats["paid_social"][0] > stats["price_comparison"][0]  # paid social: many visits


def test_members_have_a_favourite_message_channel(zone):
    _, z, _ = zone
    per = defaultdict(Counter)
    for e in z["events"].values():
        if name(e) in MESSAGE_EVENTS:
            per[e["userId"]][e["properties"]["channel"]] += 1
    shares = [max(c.values()) / sum(c.values()) for c in per.values() if sum(c.values()) >= 4]
    assert len(shares) > 20
    assert np.mean(shares) > 0.7


def test_traits_are_realistic(zone):
    _, z, _ = zone
    latest = {}
    for e in sorted((e for e in z["events"].values() if e["type"] == "identify"), key=lambda e: e["_t"]):
        latest[e["userId"]] = e["traits"]
    t = list(latest.values())
    for c in ("email", "sms", "push", "kakao"):
        assert 0.3 < np.mean([x[f"consent_{c}"] for x in t]) < 0.8
    assert np.mean([x["consent_night"] for x in t]) < min(np.mean([x[f"consent_{c}"] for x in t])
                                                          for c in ("email", "sms", "push", "kakao"))
    phone_shapes = Counter("".join("9" if ch.isdigit() else ch for ch in x["phone"]) for x in t)
    assert len(phone_shapes) >= 4
    digits = [x["phone"].replace(" ", "").replace("-", "").replace("+82", "0") for x in t]
    assert all(len(d) == 11 and d.startswith("010") and d[3] in "23456789" for d in digits)
    assert 0.85 < np.mean([x["timezone"] == "Asia/Seoul" for x in t]) < 1
    assert len({x["email"].strip().lower() for x in t}) == len(t)
    assert all("@" in x["email"] and len(x["name"]) >= 2 for x in t)


def test_time_of_day_follows_korean_peaks(zone):
    _, z, _ = zone
    kst = timezone(timedelta(hours=9))
    hours = Counter(e["_t"].astimezone(kst).hour for e in z["events"].values() if "context" in e)
    evening = sum(hours[h] for h in range(19, 24))
    night = sum(hours[h] for h in range(2, 7))
    assert evening > 3 * night


def test_revenue_is_concentrated_and_purchases_decay():
    """Top 20% of buyers bring most of the revenue; BG/NBD gives one-timers and repeaters."""
    for seed in (1, 2):
        sim = simulate(20_000, date(2026, 1, 1), 90, seed)
        o = sim.orders
        done = o["status"] == 0
        rev = np.bincount(o["person"][done], weights=o["revenue"][done])
        rev = np.sort(rev[rev > 0])[::-1]
        assert rev[: len(rev) // 5].sum() / rev.sum() > 0.6
        n_orders = np.bincount(o["person"][done])
        n_orders = n_orders[n_orders > 0]
        assert 0.3 < np.mean(n_orders == 1) < 0.9
        assert np.mean(n_orders >= 4) > 0.03
        # repurchase within 7 days happens
        t = o["ordered_ms"][done]
        p = o["person"][done]
        order = np.lexsort((t, p))
        t, p = t[order], p[order]
        gap = np.diff(t)[p[1:] == p[:-1]]
        assert np.mean(gap <= 7 * 86_400_000) > 0.1


def test_gzip_false_writes_the_same_lines(tmp_path, zone):
    s, _, root = zone
    plain = generate(tmp_path / "plain", **{**KW, "gzip": False})
    assert plain.lines_written == s.lines_written
    for f in sorted((root / "events").glob("*/*.jsonl.gz"))[:5]:
        twin = tmp_path / "plain" / "events" / f.parent.name / f.name.removesuffix(".gz")
        assert gzip.decompress(f.read_bytes()) == twin.read_bytes()


def test_target_customers_for_events(tmp_path):
    n = target_customers_for_events(40_000, days=30, seed=3)
    s = generate(tmp_path, customers=n, days=30, seed=3, malformed_rate=0, duplicate_rate=0)
    assert abs(s.events - 40_000) < 0.15 * 40_000
    assert s.lines_written == s.events
    s2 = generate(tmp_path, events=40_000, days=30, seed=3, malformed_rate=0, duplicate_rate=0)
    assert s2.events == s.events  # the same sizing, and clean=True replaced the files
    assert sum(1 for _ in (tmp_path / "events").glob("*/*.gz")) == s2.event_files
