"""Columnar → text: Segment JSON lines, ids, timestamps, traits and order ids, all with polars.

Each landing day is encoded as one polars frame; each event kind gets its own JSON shape
(``properties`` only hold that event's fields), so no per-event Python runs here.
Top-level fields that do not apply are *absent* (never ``null``): ``userId`` on anonymous
calls, ``anonymousId`` on server-side message events, ``sentAt`` where the client sent none,
``context`` on message events, ``context.campaign`` outside UTM landings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from . import catalog as C
from .simulate import (EVENT_KINDS, K_ADD, K_ALIAS, K_CHECKOUT, K_EMAIL_CLICKED, K_EMAIL_OPENED,
                       K_IDENTIFY, K_KAKAO_CLICKED, K_ORDER, K_PAGE, K_PUSH_OPENED, K_PV, K_SEARCH,
                       K_SIGNED_UP, Simulation)

# salts of the id spaces
SALT_MESSAGE, SALT_MALFORMED, SALT_ANON = 1, 2, 3
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
TS_Z = "%Y-%m-%dT%H:%M:%S%.3fZ"
TS_KST = "%Y-%m-%dT%H:%M:%S%.3f+09:00"
KST_MS = 9 * 3_600_000
_HEX2 = np.array([[ord(c) for c in f"{i:02x}"] for i in range(256)], np.uint8)  # "00".."ff"


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _GOLD
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def fixed_width_strings(chars: np.ndarray) -> pl.Series:
    """(n, w) uint8 matrix of ASCII → a polars String series, without Python objects."""
    n, w = chars.shape
    offsets = (np.arange(n + 1, dtype=np.int64) * w).astype(np.int32 if n * w < 2**31 else np.int64)
    buf = pa.py_buffer(np.ascontiguousarray(chars).tobytes())
    typ = pa.string() if offsets.dtype == np.int32 else pa.large_string()
    arr = pa.Array.from_buffers(typ, n, [None, pa.py_buffer(offsets.tobytes()), buf])
    return pl.Series(arr)


def uuids(seed: int, salt: int, idx: np.ndarray) -> pl.Series:
    """Deterministic UUID-v4-shaped strings: a hash of (seed, salt, idx)."""
    idx = np.asarray(idx).astype(np.uint64)
    base = _splitmix(np.uint64(seed & 0xFFFFFFFF) * np.uint64(1_000_003) + np.uint64(salt))
    a = _splitmix(idx ^ base)
    b = _splitmix(a ^ np.uint64(0xD1B54A32D192ED03))
    raw = np.stack([a, b], axis=1).astype(">u8").view(np.uint8).reshape(-1, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hx = _HEX2[raw].reshape(len(raw), 32)
    out = np.full((len(raw), 36), ord("-"), np.uint8)
    out[:, 0:8], out[:, 9:13], out[:, 14:18] = hx[:, 0:8], hx[:, 8:12], hx[:, 12:16]
    out[:, 19:23], out[:, 24:36] = hx[:, 16:20], hx[:, 20:32]
    return fixed_width_strings(out)


def ts_expr(col: str, kst: pl.Expr | bool = False) -> pl.Expr:
    """Epoch-ms column → ISO-8601 text, UTC 'Z' or Korean '+09:00' per row."""
    dt = pl.from_epoch(pl.col(col), time_unit="ms")
    z = dt.dt.strftime(TS_Z)
    if kst is False:
        return z
    k = pl.from_epoch(pl.col(col) + KST_MS, time_unit="ms").dt.strftime(TS_KST)
    return pl.when(kst).then(k).otherwise(z)


def _s(values) -> pl.Series:
    return pl.Series(values, dtype=pl.String)


@dataclass
class Lookups:
    user_id: pl.Series  # per person
    anonymous_id: pl.Series  # per device (2 per person)
    traits: pl.DataFrame  # 2N rows: version 0 then version 1
    order_id: pl.Series  # per order
    product_id: pl.Series
    product_name: pl.Series
    product_category: pl.Series
    product_price: np.ndarray
    query: pl.Series
    page_path: pl.Series
    page_url: pl.Series
    page_title: pl.Series
    page_name: pl.Series
    url_table: pl.Series
    utm_source: pl.Series
    utm_medium: pl.Series
    utm_name: pl.Series
    tz_name: pl.Series
    device_type: pl.Series
    msg_id: pl.Series
    msg_name: pl.Series
    msg_channel: pl.Series
    signup_method: pl.Series


def build_lookups(sim: Simulation) -> Lookups:
    cat = sim.catalog
    pe = sim.people
    N = sim.customers
    user_id = pl.Series(pe["user_num"]).cast(pl.String).str.zfill(8)
    user_id = ("mbr_" + user_id).alias("userId") if len(user_id) else _s([])
    o = sim.orders
    order_id = pl.DataFrame({"ms": o["ordered_ms"] + KST_MS, "seq": o["seq"]}).select(
        pl.concat_str([pl.lit("GT"), pl.from_epoch("ms", time_unit="ms").dt.strftime("%y%m%d"),
                       pl.lit("-"), pl.col("seq").cast(pl.String).str.zfill(7)])).to_series()
    utm = sim.utm_campaigns or [("", "", "")]
    return Lookups(
        user_id=user_id, anonymous_id=uuids(sim.seed, SALT_ANON, np.arange(2 * N)),
        traits=_traits(sim), order_id=order_id,
        product_id=_s(cat.product_id), product_name=_s(cat.product_name),
        product_category=_s([C.CATEGORIES[c][0] for c in cat.product_category]),
        product_price=cat.product_price, query=_s(cat.query_text),
        page_path=_s(cat.page_path), page_url=_s(cat.page_url), page_title=_s(cat.page_title),
        page_name=_s(cat.page_name), url_table=_s(cat.url_table),
        utm_source=_s([u[0] for u in utm]), utm_medium=_s([u[1] for u in utm]),
        utm_name=_s([u[2] for u in utm]), tz_name=_s([z[0] for z in C.TIMEZONES]),
        device_type=_s(C.DEVICE_TYPES), msg_id=_s(sim.msg_campaigns["id"] or [""]),
        msg_name=_s(sim.msg_campaigns["name"] or [""]),
        msg_channel=_s(sim.msg_campaigns["channel"] or [""]),
        signup_method=_s(C.SIGNUP_METHODS),
    )


def _traits(sim: Simulation) -> pl.DataFrame:
    """Identify traits of every person in two versions (rows v*N + person)."""
    pe = sim.people
    N = sim.customers
    sur_k = _s([s[0] for s in C.SURNAMES])
    sur_r = _s([s[1] for s in C.SURNAMES])
    giv_k = _s([g[0] for g in C.GIVEN_NAMES])
    giv_r = _s([g[1] for g in C.GIVEN_NAMES])
    dom = _s([d[0] for d in C.EMAIL_DOMAINS])
    frames = []
    for v in (0, 1):
        df = pl.DataFrame({
            "sk": sur_k[pe["surname"]], "sr": sur_r[pe["surname"]],
            "gk": giv_k[pe["given"]], "gr": giv_r[pe["given"]],
            "dom": dom[pe["email_domain"][v]], "style": pe["email_style"][v],
            "num": pe["email_num"][v], "messy": pe["email_messy"] & (v == 0),
            "ph": pe["phone_num"][v], "pf": pe["phone_fmt"][v],
            "tz": pe["tz"].astype(np.int64), "signup_ms": pe["signup_ms"],
            **{f"consent_{c}": pe["consent"][v][:, i]
               for i, c in enumerate(("email", "sms", "push", "kakao", "night"))},
        })
        num = pl.col("num").cast(pl.String)
        local = (pl.when(pl.col("style") == 0).then(pl.concat_str([pl.col("gr"), pl.lit("."), pl.col("sr"), num]))
                 .when(pl.col("style") == 1).then(pl.concat_str([pl.col("sr"), pl.col("gr"), num]))
                 .otherwise(pl.concat_str([pl.col("gr"), pl.lit("_"), num])))
        email = pl.concat_str([local, pl.lit("@"), pl.col("dom")])
        email = pl.when(pl.col("messy")).then(
            pl.when(pl.col("num") % 2 == 0).then(email.str.to_titlecase())
            .otherwise(pl.concat_str([pl.lit(" "), email.str.to_uppercase()]))).otherwise(email)
        a = (pl.col("ph") // 10_000).cast(pl.String).str.zfill(4)
        b = (pl.col("ph") % 10_000).cast(pl.String).str.zfill(4)
        phone = (pl.when(pl.col("pf") == 0).then(pl.concat_str([pl.lit("010-"), a, pl.lit("-"), b]))
                 .when(pl.col("pf") == 1).then(pl.concat_str([pl.lit("010"), a, b]))
                 .when(pl.col("pf") == 2).then(pl.concat_str([pl.lit("+82 10-"), a, pl.lit("-"), b]))
                 .when(pl.col("pf") == 3).then(pl.concat_str([pl.lit("+8210"), a, b]))
                 .otherwise(pl.concat_str([pl.lit("010 "), a, pl.lit(" "), b])))
        tzs = _s([z[0] for z in C.TIMEZONES])
        frames.append(df.select(
            email.alias("email"), phone.alias("phone"),
            pl.concat_str([pl.col("sk"), pl.col("gk")]).alias("name"),
            pl.lit(tzs).gather(pl.col("tz")).alias("timezone"),
            *[pl.col(f"consent_{c}") for c in ("email", "sms", "push", "kakao", "night")],
            pl.from_epoch(pl.col("signup_ms") + KST_MS, time_unit="ms")
            .dt.strftime("%Y-%m-%dT%H:%M:%S+09:00").alias("created_at"),
        ))
    return pl.concat(frames)


_MESSAGE = (K_EMAIL_OPENED, K_EMAIL_CLICKED, K_PUSH_OPENED, K_KAKAO_CLICKED)


def encode_events(sim: Simulation, lk: Lookups, lo: int, hi: int) -> tuple[pl.Series, np.ndarray]:
    """JSON lines of events lo..hi (landing order): ``(lines, pos)`` where ``lines[i]`` is the
    line of event ``lo + pos[i]`` (rows come grouped by shape, not in event order).

    Rows are split by (event kind, has userId, has sentAt, has UTM campaign) so that every
    sub-frame has one JSON shape without nulls; the sub-frames are encoded in parallel."""
    ev = sim.rows(lo, hi)
    n = hi - lo
    if n == 0:
        return pl.Series("line", [], pl.String), np.zeros(0, np.int64)
    kind = ev["kind"]
    has_sent = ev["sent_ms"] >= 0
    has_c = ev["campaign"] >= 0
    page = np.maximum(ev["page"], 0)
    cc = np.maximum(ev["campaign"], 0)
    url = lk.page_url[page]
    if has_c.any():
        url = pl.DataFrame({"u": url, "s": lk.utm_source[cc], "m": lk.utm_medium[cc], "n": lk.utm_name[cc],
                            "c": has_c}).select(
            pl.when("c").then(pl.concat_str([
                pl.col("u"), pl.lit("?utm_source="), pl.col("s"), pl.lit("&utm_medium="), pl.col("m"),
                pl.lit("&utm_campaign="), pl.col("n")])).otherwise(pl.col("u"))).to_series()
    # context columns exist on every row; message rows never encode them
    base = pl.DataFrame({
        "messageId": uuids(sim.seed, SALT_MESSAGE, np.arange(lo, hi)),
        "userId": lk.user_id[ev["person"]],
        "anonymousId": lk.anonymous_id[np.maximum(ev["device"], 0)],
        "ts": ev["ts_ms"], "sent": ev["sent_ms"], "recv": ev["recv_ms"], "kst": ev["kst"],
        "source": lk.utm_source[cc], "medium": lk.utm_medium[cc], "name": lk.utm_name[cc],
        "path": lk.page_path[page], "url": url,
        "referrer": lk.url_table[np.maximum(ev["ref"], 0)], "title": lk.page_title[page],
        "type": lk.device_type[np.maximum(ev["dev_type"], 0).astype(np.int64)],
        "timezone": lk.tz_name[ev["tz"].astype(np.int64)],
    }).select(
        "messageId", "userId", "anonymousId",
        ts_expr("ts", pl.col("kst")).alias("timestamp"),
        ts_expr("sent", pl.col("kst")).alias("sentAt"),
        ts_expr("recv").alias("receivedAt"),
        pl.struct("source", "medium", "name").alias("campaign"),
        pl.struct("path", "url", "referrer", "title").alias("page"),
        pl.struct("type").alias("device"),
        pl.lit("ko-KR").alias("locale"),
        "timezone",
    ).select(
        "messageId", "userId", "anonymousId", "timestamp", "sentAt", "receivedAt",
        pl.struct("page", "device", "locale", "timezone").alias("c0"),
        pl.struct("campaign", "page", "device", "locale", "timezone").alias("c1"),
    )
    shape = (ev["ident"].astype(np.int64) * 4 + has_sent * 2 + has_c) if n else np.zeros(0, np.int64)
    frames = []
    perm = []
    for k, (typ, name) in enumerate(EVENT_KINDS):
        idx = np.flatnonzero(kind == k)
        if len(idx) == 0:
            continue
        body = _body(k, sim, lk, ev, idx)
        sk = shape[idx]
        for v in np.unique(sk):
            ident, sent, camp = bool(v & 4), bool(v & 2), bool(v & 1)
            cols = [pl.col("messageId"), pl.lit(typ).alias("type")]
            if typ == "track":
                cols.append(pl.lit(name).alias("event"))
            elif typ == "page":
                cols.append(pl.col("name"))
            elif typ == "alias":
                cols.append(pl.col("anonymousId").alias("previousId"))
            if ident:
                cols.append(pl.col("userId"))
            if k not in _MESSAGE:
                cols.append(pl.col("anonymousId"))
            if body is not None:
                cols.append(pl.col(body.name))
            if k not in _MESSAGE:
                cols.append(pl.col("c1" if camp else "c0").alias("context"))
            cols.append(pl.col("timestamp"))
            if sent:
                cols.append(pl.col("sentAt"))
            cols.append(pl.col("receivedAt"))
            sel = np.flatnonzero(sk == v)
            need = ["messageId", "timestamp", "receivedAt"]
            need += (["userId"] if ident else []) + (["sentAt"] if sent else [])
            need += [] if k in _MESSAGE else ["anonymousId", "c1" if camp else "c0"]
            sub = base.select(need)[idx[sel]]
            if typ == "page":
                sub = sub.with_columns(lk.page_name[ev["page"][idx[sel]]].alias("name"))
            if body is not None:
                sub = sub.with_columns(body.gather(sel) if len(sel) < len(sk) else body)
            perm.append(idx[sel])
            frames.append(sub.lazy().select(pl.struct(*cols).struct.json_encode().alias("line")))
    out = pl.concat([f.to_series() for f in pl.collect_all(frames)], rechunk=True)
    return out, np.concatenate(perm)


def _pa_int64(a: np.ndarray) -> pa.Array:
    """numpy → arrow int64 without pa.array (which imports pandas)."""
    a = np.ascontiguousarray(a, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(a), [None, pa.py_buffer(a.tobytes())])


def _props(cols: dict, order: list[str], name: str = "properties") -> pl.Series:
    df = pl.DataFrame(cols)
    if "currency" in order:
        df = df.with_columns(pl.lit(C.CURRENCY).alias("currency"))
    return df.select(pl.struct(order).alias(name)).to_series()


def _body(k: int, sim: Simulation, lk: Lookups, ev: dict, idx: np.ndarray) -> pl.Series | None:
    """The ``properties`` (or ``traits``) struct of one event kind, as a named Series."""
    if k == K_PAGE or k == K_ALIAS:
        return None
    if k == K_IDENTIFY:
        rows = ev["person"][idx] + sim.customers * ev["traits_v1"][idx].astype(np.int64)
        return lk.traits[rows].to_struct("traits")
    if k in (K_PV, K_ADD):
        p = ev["product"][idx]
        cols = {"product_id": lk.product_id[p], "name": lk.product_name[p],
                "category": lk.product_category[p], "price": lk.product_price[p]}
        order = ["product_id", "name", "category", "price"]
        if k == K_ADD:
            cols["quantity"] = ev["qty"][idx]
            order.append("quantity")
        return _props(cols, order + ["currency"])
    if k == K_SEARCH:
        return _props({"query": lk.query[ev["query"][idx]]}, ["query"])
    if k == K_CHECKOUT:
        return _props({"value": ev["cart_value"][idx], "item_count": ev["cart_qty"][idx]},
                      ["value", "currency", "item_count"])
    if k == K_SIGNED_UP:
        pe = sim.people
        return _props({"method": lk.signup_method[pe["signup_method"][ev["person"][idx]]],
                       "promo": ev["signup_promo"][idx]}, ["method", "promo"])
    if k == K_ORDER:
        o = ev["order"][idx]
        items = sim.order_items
        starts = np.searchsorted(items["order"], o)
        cnt = np.searchsorted(items["order"], o, side="right") - starts
        flat = np.repeat(starts - np.r_[0, np.cumsum(cnt)[:-1]], cnt) + np.arange(cnt.sum())
        prod = items["product"][flat]
        products = pa.StructArray.from_arrays(
            [lk.product_id[prod].to_arrow(), lk.product_name[prod].to_arrow(),
             lk.product_category[prod].to_arrow(), _pa_int64(items["price"][flat]),
             _pa_int64(items["qty"][flat])],
            names=["product_id", "name", "category", "price", "quantity"])
        lists = pa.LargeListArray.from_arrays(_pa_int64(np.r_[0, np.cumsum(cnt)]), products)
        return _props({"order_id": lk.order_id[o], "revenue": sim.orders["revenue"][o],
                       "products": pl.Series(lists)},
                      ["order_id", "revenue", "currency", "products"])
    # CRM message events
    c = ev["msg_campaign"][idx]
    return _props({"campaign_id": lk.msg_id[c], "campaign_name": lk.msg_name[c],
                   "channel": lk.msg_channel[c]}, ["campaign_id", "campaign_name", "channel"])
