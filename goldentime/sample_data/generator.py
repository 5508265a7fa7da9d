"""Write a seeded sample landing zone: Segment JSONL(.gz) per landing day + orders CSV.

See the package docstring (:mod:`goldentime.sample_data`) for the behaviour model and the
exact shape of what is written. Public entry points: :func:`generate`,
:func:`target_customers_for_events`, :class:`GenerationSummary`, :data:`MALFORMED_KINDS`.
"""

from __future__ import annotations

import gzip as _gzip
import io
import json
import re
import shutil
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from . import encode as X
from .simulate import DEFAULT_PARAMS, EVENT_KINDS, MESSAGE_KINDS, BehaviourParams, simulate

DAY_MS = 86_400_000

#: Kinds of malformed line, in the order used by the summary. Every one of them must end
#: up in quarantine; see the package docstring for what each looks like.
MALFORMED_KINDS: tuple[str, ...] = (
    "truncated_json",       # a valid line cut short -> not parseable JSON
    "json_array",           # a valid object wrapped in [...] -> JSON but not an object
    "missing_type",         # no "type" field
    "unknown_type",         # "type" not one of track/page/identify/alias/screen/group
    "track_without_event",  # type track, no "event"
    "missing_timestamp",    # no "timestamp" field
    "bad_timestamp",        # "timestamp" present but not a parseable ISO-8601 instant
    "future_timestamp",     # timestamp (and skew-corrected time) years in the future
    "no_ids",               # neither userId nor anonymousId
    "invalid_utf8",         # bytes that are not UTF-8 (a CP949-encoded title)
)
MALFORMED_WEIGHTS = np.array([3.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.5, 1.0, 1.0, 0.3])
UNKNOWN_TYPES = ("purchase", "pageview", "click", "transaction", "impression")
BAD_TIMESTAMPS = ("2026-13-45T25:61:00Z", "not-a-timestamp", "", "2026-02-30T10:00:00Z",
                  "31/01/2026 14:03", "yesterday")
FUTURE_YEARS = (4, 8, 12, 20, 40)  # multiples of 4 keep 29 February valid
_BAD_TOKEN = "\u0001GT_NOT_UTF8\u0001"
_BAD_TOKEN_B = _BAD_TOKEN.encode()
_BAD_BYTES = "골든타임 특가".encode("cp949")
try:  # the replacement must really be invalid UTF-8
    _BAD_BYTES.decode("utf-8")
    raise AssertionError("replacement bytes decode as UTF-8")
except UnicodeDecodeError:
    pass
_RE_EVENT = re.compile(r'"event":"[^"]*",')
_RE_TS = re.compile(r'"timestamp":"([^"]*)",')
_RE_USER = re.compile(r'"userId":"[^"]*",')
_RE_ANON = re.compile(r'"anonymousId":"[^"]*",')
_RE_TYPE = re.compile(r'"type":"[a-z]+",')

ORDER_COLUMNS = ["order_id", "user_id", "ordered_at", "status", "currency", "revenue", "item_count"]
ORDER_STATUS = ["completed", "cancelled", "refunded"]


@dataclass
class GenerationSummary:
    """What was written; every count reconciles with the files on disk:
    ``lines_written == events + duplicates_written + malformed_written``."""

    landing_dir: str
    seed: int
    start: str
    days: int
    customers: int  # distinct people simulated (anonymous visitors included)
    members: int  # people who signed up (have a userId)
    buyers: int
    sessions: int
    events: int  # distinct valid calls (unique messageIds), each written once as an original
    events_by_type: dict[str, int]  # track / page / identify / alias
    events_by_name: dict[str, int]  # track event names, plus "page", "identify", "alias"
    orders: int  # completed orders (= Order Completed events = completed CSV rows)
    cancelled_orders: int
    refunded_orders: int  # extra CSV rows with status refunded (same order_id, later day)
    order_rows: int
    revenue: int  # sum of completed orders, KRW
    lines_written: int
    duplicates_written: int
    duplicates_same_file: int
    duplicates_next_file: int
    malformed_written: int
    malformed_by_kind: dict[str, int]
    late_events: int  # events written 1-3 landing days after their timestamp's day
    skewed_events: int  # events from devices with a wrong clock (timestamp and sentAt off)
    events_without_sent_at: int
    files: int
    event_files: int
    order_files: int
    bytes_written: int
    first_landing_day: str
    last_landing_day: str
    seconds: float
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["events_per_second"] = round(self.events_per_second)
        return d


def target_customers_for_events(n_events: int, *, start: date = date(2026, 1, 1), days: int = 90,
                                seed: int = 42, params: BehaviourParams = DEFAULT_PARAMS,
                                pilot_customers: int = 20_000) -> int:
    """How many simulated people give roughly ``n_events`` events (±5%) for this window.

    Runs a small pilot simulation (no files) and scales its events-per-person ratio."""
    pilot = simulate(pilot_customers, start, days, seed, 0.0, params)
    per_customer = len(pilot.ev["kind"]) / pilot_customers
    return max(1, int(round(n_events / per_customer)))


def _day_str(start: date, d: int) -> str:
    return (start + timedelta(days=int(d))).isoformat()


def _clean(landing: Path) -> None:
    for feed, patterns in (("events", ("events-*.jsonl", "events-*.jsonl.gz")), ("orders", ("orders-*.csv",))):
        root = landing / feed
        if not root.is_dir():
            continue
        for d in root.glob("date=*"):
            if not d.is_dir():
                continue
            for pat in patterns:
                for f in d.glob(pat):
                    f.unlink()
            if not any(d.iterdir()):
                shutil.rmtree(d)


def _malformed_line(kind: str, line: str, new_id: str, u: float, is_track: bool) -> str:
    """Turn one valid line (with a fresh messageId) into a malformed line of ``kind``."""
    line = line[:14] + new_id + line[50:]  # '{"messageId":"' + 36-char id
    if kind == "truncated_json":
        cut = 20 + int(u * (len(line) - 40))
        return line[:cut]
    if kind == "json_array":
        return "[" + line + "]"
    if kind == "missing_type":
        return _RE_TYPE.sub("", line, count=1)
    if kind == "unknown_type":
        return _RE_TYPE.sub(f'"type":"{UNKNOWN_TYPES[int(u * len(UNKNOWN_TYPES))]}",', line, count=1)
    if kind == "track_without_event":
        assert is_track
        return _RE_EVENT.sub("", line, count=1)
    if kind == "missing_timestamp":
        return _RE_TS.sub("", line, count=1)
    if kind == "bad_timestamp":
        bad = BAD_TIMESTAMPS[int(u * len(BAD_TIMESTAMPS))]
        return _RE_TS.sub(f'"timestamp":"{bad}",', line, count=1)
    if kind == "future_timestamp":
        k = FUTURE_YEARS[int(u * len(FUTURE_YEARS))]
        return _RE_TS.sub(lambda m: f'"timestamp":"{int(m.group(1)[:4]) + k}{m.group(1)[4:]}",', line, count=1)
    if kind == "no_ids":
        return _RE_ANON.sub("", _RE_USER.sub("", line, count=1), count=1)
    if kind == "invalid_utf8":
        return line.replace('"title":"', '"title":"' + _BAD_TOKEN, 1)
    raise ValueError(kind)


def generate(landing_dir: str | Path, *, customers: int = 20_000, start: date = date(2026, 1, 1),
             days: int = 90, seed: int = 42, gzip: bool = True, malformed_rate: float = 0.0005,
             duplicate_rate: float = 0.01, late_rate: float = 0.005, events: int | None = None,
             compresslevel: int = 1, clean: bool = True, workers: int = 2,
             params: BehaviourParams = DEFAULT_PARAMS) -> GenerationSummary:
    """Simulate the shop and write the landing zone under ``landing_dir``.

    ``events``: ask for roughly this many valid events instead of ``customers``.
    ``clean``: first delete files this generator writes (``events-*.jsonl[.gz]``,
    ``orders-*.csv`` in ``date=*`` folders) so an earlier, longer run leaves nothing behind.
    The output bytes depend only on the arguments (not on ``workers``)."""
    t_start = time.perf_counter()
    landing = Path(landing_dir)
    if events is None and customers < 1:
        raise ValueError("customers must be >= 1")
    if events is not None:
        customers = target_customers_for_events(events, start=start, days=days, seed=seed, params=params)
    sim = simulate(customers, start, days, seed, late_rate, params)
    lk = X.build_lookups(sim)
    E = len(sim.landing_order)
    ld = sim.landing_day
    recv = sim.sorted_col("recv_ms") - sim.t0_ms
    kind_sorted = sim.sorted_col("kind")
    last_day = int(ld.max()) if E else days - 1
    n_days = last_day + 1
    bounds = np.searchsorted(ld, np.arange(n_days + 1))

    # ---------------------------------------------------------------- the mess, planned up front
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x6D657373]))
    dup = rng.random(E) < duplicate_rate
    nxt = dup & (rng.random(E) < 0.3) & (ld < last_day)
    dup_day = ld + nxt
    day_start = dup_day * DAY_MS
    dup_key = np.where(nxt, day_start + rng.integers(0, 600_000, E),
                       np.minimum(recv + rng.integers(1, 120_000, E), day_start + DAY_MS - 1))
    n_mal = int(round(E * malformed_rate)) if E else 0
    nk = len(MALFORMED_KINDS)
    if n_mal >= nk:
        counts = 1 + rng.multinomial(n_mal - nk, MALFORMED_WEIGHTS / MALFORMED_WEIGHTS.sum())
    else:
        counts = rng.multinomial(n_mal, MALFORMED_WEIGHTS / MALFORMED_WEIGHTS.sum())
    mal_kind = np.repeat(np.arange(nk), counts)
    is_track = np.isin(kind_sorted, [k for k, (t, _) in enumerate(EVENT_KINDS) if t == "track"])
    pools = {"any": np.arange(E), "track": np.flatnonzero(is_track),
             "web": np.flatnonzero(~np.isin(kind_sorted, MESSAGE_KINDS))}
    mal_tmpl = np.full(len(mal_kind), -1, np.int64)
    for ki, kname in enumerate(MALFORMED_KINDS):
        m = np.flatnonzero(mal_kind == ki)
        tp = pools["track" if kname == "track_without_event" else "web" if kname == "invalid_utf8" else "any"]
        if len(tp):
            mal_tmpl[m] = tp[rng.integers(0, len(tp), len(m))]
    keep = mal_tmpl >= 0  # (a tiny run may have no template for some kind)
    mal_kind, mal_tmpl = mal_kind[keep], mal_tmpl[keep]
    o = np.argsort(mal_tmpl, kind="stable")
    mal_kind, mal_tmpl = mal_kind[o], mal_tmpl[o]
    mal_u = rng.random(len(mal_kind))
    mal_day = ld[mal_tmpl] if E else np.zeros(0, np.int64)
    mal_key = np.minimum(recv[mal_tmpl] + rng.integers(1, 5_000, len(mal_kind)), (mal_day + 1) * DAY_MS - 1) \
        if E else np.zeros(0, np.int64)
    mal_ids = X.uuids(seed, X.SALT_MALFORMED, np.arange(len(mal_kind)))

    # ---------------------------------------------------------------- write
    if clean:
        _clean(landing)
    ext = ".jsonl.gz" if gzip else ".jsonl"
    writer = ThreadPoolExecutor(max_workers=max(1, workers))
    pending: list[Future] = []
    written = {"bytes": 0, "event_files": 0, "order_files": 0, "order_bytes": 0}
    lines_total = 0
    carry: pl.Series | None = None
    carry_key = np.zeros(0, np.int64)

    def _write(path: Path, lines: pl.Series, bad_utf8: bool) -> int:
        buf = io.BytesIO()
        frame = lines.to_frame("line")
        if gzip and not bad_utf8:  # polars' deflate: ~3x faster than zlib level 1, ~20% larger
            frame.write_csv(buf, include_header=False, quote_style="never", compression="gzip",
                            compression_level=compresslevel)
            data = buf.getvalue()
        else:
            frame.write_csv(buf, include_header=False, quote_style="never")
            data = buf.getvalue()
            if bad_utf8:
                data = data.replace(_BAD_TOKEN_B, _BAD_BYTES)
            if gzip:
                data = _gzip.compress(data, compresslevel=compresslevel, mtime=0)
        path.write_bytes(data)
        return len(data)

    # encode in chunks of whole landing days (amortises per-call overhead); the next chunk is
    # encoded in a background thread while this one is assembled, written and gzipped
    chunk_target = int(np.clip(E // 8, 200_000, 500_000)) if E else 1
    chunks = []
    d = 0
    while d < n_days:
        d_end = d + 1
        while d_end < n_days and bounds[d_end + 1] - bounds[d] <= chunk_target:
            d_end += 1
        chunks.append((d, d_end))
        d = d_end
    encoder = ThreadPoolExecutor(max_workers=1)

    def _encode(c):
        lo, hi = int(bounds[c[0]]), int(bounds[c[1]])
        lines, perm = X.encode_events(sim, lk, lo, hi)
        row_of = np.empty(len(perm), np.int64)
        row_of[perm] = np.arange(len(perm))
        return lo, lines, row_of

    nxt_chunk = encoder.submit(_encode, chunks[0]) if chunks else None
    for ci, (d, d_end) in enumerate(chunks):
        c_lo, chunk, row_of = nxt_chunk.result()
        nxt_chunk = encoder.submit(_encode, chunks[ci + 1]) if ci + 1 < len(chunks) else None
        for dd in range(d, d_end):
            a, b = int(bounds[dd]), int(bounds[dd + 1])
            carry, carry_key, n_lines, out, bad_utf8 = _assemble_day(
                dd, a, b, c_lo, chunk, row_of, recv, dup, nxt, dup_key, carry, carry_key,
                mal_day, mal_tmpl, mal_kind, mal_u, mal_key, mal_ids, is_track)
            lines_total += n_lines
            if n_lines == 0:
                continue
            ds = _day_str(start, dd)
            folder = landing / "events" / f"date={ds}"
            folder.mkdir(parents=True, exist_ok=True)
            pending.append(writer.submit(_write, folder / f"events-{ds}{ext}", out, bad_utf8))
            written["event_files"] += 1
            while len(pending) > 2 * max(1, workers):
                written["bytes"] += pending.pop(0).result()
        del chunk, row_of
    encoder.shutdown()

    # ---------------------------------------------------------------- orders CSV
    od = _orders_frame(sim, lk)
    order_days = set(range(min(days, n_days))) | set(od["day"].unique().to_list())
    for d in sorted(order_days):
        part = od.filter(pl.col("day") == d).sort(["kind_rank", "ordered_ms", "order_id"])
        ds = _day_str(start, d)
        folder = landing / "orders" / f"date={ds}"
        folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        part.select(ORDER_COLUMNS).write_csv(buf)
        path = folder / f"orders-{ds}.csv"
        path.write_bytes(buf.getvalue())
        written["order_bytes"] += len(buf.getvalue())
        written["order_files"] += 1
    for f in pending:
        written["bytes"] += f.result()
    writer.shutdown()

    kinds = sim.ev["kind"]
    by_type: Counter = Counter()
    by_name: dict[str, int] = {}
    counts_k = np.bincount(kinds, minlength=len(EVENT_KINDS))
    for k, (typ, name) in enumerate(EVENT_KINDS):
        by_type[typ] += int(counts_k[k])
        by_name[name or typ] = int(counts_k[k])
    n_dup = int(dup.sum())
    status = sim.orders["status"]
    return GenerationSummary(
        landing_dir=str(landing), seed=seed, start=start.isoformat(), days=days,
        customers=sim.customers, members=sim.members, buyers=sim.buyers, sessions=sim.sessions,
        events=E, events_by_type=dict(by_type), events_by_name=by_name,
        orders=int((status == 0).sum()), cancelled_orders=int((status == 1).sum()),
        refunded_orders=len(sim.refunds["order"]), order_rows=od.height,
        revenue=int(sim.orders["revenue"][status == 0].sum()),
        lines_written=lines_total, duplicates_written=n_dup,
        duplicates_same_file=n_dup - int(nxt.sum()), duplicates_next_file=int(nxt.sum()),
        malformed_written=len(mal_kind),
        malformed_by_kind={k: int(c) for k, c in zip(MALFORMED_KINDS, np.bincount(mal_kind, minlength=nk))},
        late_events=sim.stats["late_events"], skewed_events=sim.stats["skewed_events"],
        events_without_sent_at=sim.stats["events_without_sent_at"],
        files=written["event_files"] + written["order_files"], event_files=written["event_files"],
        order_files=written["order_files"], bytes_written=written["bytes"] + written["order_bytes"],
        first_landing_day=_day_str(start, 0), last_landing_day=_day_str(start, max(n_days - 1, max(order_days, default=0))),
        seconds=round(time.perf_counter() - t_start, 3),
        extra={"event_bytes": written["bytes"], "order_bytes": written["order_bytes"],
               "message_events": int(np.isin(kinds, MESSAGE_KINDS).sum()),
               "second_device_members": sim.stats["second_device_members"],
               "trait_changes": sim.stats["trait_changes"]},
    )


def _assemble_day(d, a, b, c_lo, chunk, row_of, recv, dup, nxt, dup_key, carry, carry_key,
                  mal_day, mal_tmpl, mal_kind, mal_u, mal_key, mal_ids, is_track):
    """One landing day's file content: its events in arrival order, with duplicates (same-day
    ones and those carried over from the previous day) and malformed lines slotted in.
    Works on row numbers; the strings are gathered once, in final order."""
    ev_rows = row_of[a - c_lo:b - c_lo]
    same = np.flatnonzero(dup[a:b] & ~nxt[a:b])
    nx = np.flatnonzero(nxt[a:b])
    new_carry = chunk.gather(ev_rows[nx]) if len(nx) else None
    new_carry_key = dup_key[a + nx]
    extras = []
    n_chunk = len(chunk)
    rows = [ev_rows, ev_rows[same]]
    keys = [recv[a:b], dup_key[a + same]]
    tbs = [np.zeros(b - a, np.int8), np.ones(len(same), np.int8)]
    if carry is not None and len(carry):
        rows.append(n_chunk + np.arange(len(carry)))
        keys.append(carry_key)
        tbs.append(np.ones(len(carry), np.int8))
        extras.append(carry)
    mi = np.flatnonzero(mal_day == d)
    has_bad_utf8 = False
    if len(mi):
        tmpl = chunk.gather(row_of[mal_tmpl[mi] - c_lo]).to_list()
        ids = mal_ids.gather(mi).to_list()
        bad = [_malformed_line(MALFORMED_KINDS[mal_kind[i]], t, nid, float(mal_u[i]), bool(is_track[mal_tmpl[i]]))
               for i, t, nid in zip(mi, tmpl, ids)]
        has_bad_utf8 = bool((mal_kind[mi] == MALFORMED_KINDS.index("invalid_utf8")).any())
        rows.append(n_chunk + sum(len(e) for e in extras) + np.arange(len(bad)))
        keys.append(mal_key[mi])
        tbs.append(np.full(len(bad), 2, np.int8))
        extras.append(pl.Series("line", bad, pl.String))
    rows_a = np.concatenate(rows)
    if len(rows_a) == 0:
        return new_carry, new_carry_key, 0, None, False
    order = np.lexsort((np.arange(len(rows_a)), np.concatenate(tbs), np.concatenate(keys)))
    src = pl.concat([chunk, *[e.alias(chunk.name) for e in extras]], rechunk=False) if extras else chunk
    out = src.gather(rows_a[order])
    return new_carry, new_carry_key, len(rows_a), out, has_bad_utf8


def _orders_frame(sim, lk: X.Lookups) -> pl.DataFrame:
    o = sim.orders
    n = len(o["seq"])
    base = pl.DataFrame({
        "order_id": lk.order_id, "user_id": lk.user_id[o["person"]] if n else pl.Series([], dtype=pl.String),
        "ordered_ms": o["ordered_ms"], "status_i": o["status"].astype(np.int64),
        "revenue": o["revenue"], "item_count": o["item_count"],
    }).with_columns(((pl.col("ordered_ms") - sim.t0_ms) // DAY_MS).alias("day"), pl.lit(0).alias("kind_rank"))
    ref = sim.refunds
    refunds = base[ref["order"]].with_columns(
        pl.Series("day", ref["day"]), pl.lit(2, pl.Int64).alias("status_i"), pl.lit(1).alias("kind_rank"))
    allo = pl.concat([base, refunds.select(base.columns)])
    return allo.with_columns(
        pl.from_epoch(pl.col("ordered_ms") + X.KST_MS, time_unit="ms")
        .dt.strftime("%Y-%m-%dT%H:%M:%S+09:00").alias("ordered_at"),
        pl.lit(pl.Series(ORDER_STATUS)).gather(pl.col("status_i")).alias("status"),
        pl.lit("KRW").alias("currency"),
    )


def summary_json(summary: GenerationSummary) -> str:
    return json.dumps(summary.to_dict(), ensure_ascii=False, indent=2)
