"""Simulated responses to a campaign, written to the landing zone like any other Segment feed.

:func:`simulate_campaign_responses` reads a campaign's assignments (``activations.assignments``) and
acknowledged sends (``activations.sync_log``: sync_name = campaign, key = customer_id, status ok) from
DuckDB and writes what the customers do afterwards, with known true rates per arm::

    events/date=YYYY-MM-DD/campaign-<campaign>-YYYY-MM-DD.jsonl.gz   (one file per landing day)
    orders/date=YYYY-MM-DD/campaign-<campaign>-YYYY-MM-DD.csv

The files follow the landing-zone contract (docs/landing_zone.md) and land in the UTC day of their
``receivedAt`` (events) or ``ordered_at`` (orders), so the ingest loader picks them up with the day's
other files. Encoding reuses the generator's helpers (deterministic UUID-shaped messageIds, polars
JSON encoding, ISO-8601 timestamps, the shop's catalogue).

The response model, per assigned customer (``effects[arm]`` = {"open", "click", "convert",
"revenue_mean"}, plus optional "deliver")
----------------------------------------------------------------------------------------------
* **Messages** (sent customers only, i.e. never the holdout): ``<Channel> Delivered`` with probability
  ``deliver`` (default 0.98) a few seconds after the send, ``<Channel> Opened`` with probability
  ``open`` *of delivered* (median 2 hours later), ``<Channel> Clicked`` with probability ``click`` *of
  opened* (median 40 s after the open). Properties: campaign_id = campaign_name = the campaign,
  channel, variant = the arm. userId only, no context (a cloud source, like the generator's).
* **Conversions**: every assigned customer converts (one ``Order Completed`` inside the attribution
  window, properties order_id, revenue, currency, products) with probability ``convert`` of their
  arm — the holdout's rate is the baseline, a variant's is baseline × its true lift (see
  :func:`campaign_effects`). A variant customer who was never sent (compliance, failed send) converts
  at the holdout's rate: the message cannot work on them. Clickers convert more often than non-clickers
  (``click_conversion_multiplier``) while the arm's overall rate stays ``convert``; a clicker's order
  comes minutes after the click, others at a random time in the window (earlier more likely).
* **Revenue**: a target ~ Gamma(shape 2, mean ``revenue_mean``), then a product of the generator's
  catalogue priced at or below it and the quantity bringing price × quantity closest to it, so the
  order's revenue ≈ the target (its mean ≈ ``revenue_mean``). Each order also gets a ``completed`` row
  in the orders CSV.

Every draw is a hash of (seed, campaign, customer id, purpose): a customer's outcome does not depend on
who else is in the campaign nor on the landing day asked for, so ``day=`` can write one landing day at a
time (a daily simulation) and adding round-2 customers never changes round 1. The same arguments give
the same bytes.
"""

from __future__ import annotations

import gzip as _gzip
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats as scipy_stats

from . import catalog as C
from .encode import KST_MS, _splitmix, ts_expr, uuids

HOLDOUT_ARM = "holdout"
DAY_MS = 86_400_000
DEFAULT_ATTRIBUTION_DAYS = 7
DEFAULT_DELIVERY_RATE = 0.98
DEFAULT_CLICK_CONVERSION_MULTIPLIER = 4.0
DEFAULT_CATALOG_SEED = 42  # the generator's default seed: same product ids as the sample shop
SALT_CAMPAIGN = 11  # messageId space of campaign responses (the generator uses 1-3)
CHANNEL_EVENTS = {
    "email": ("Email Delivered", "Email Opened", "Email Clicked"),
    "push": ("Push Delivered", "Push Opened", "Push Clicked"),
    "kakao": ("Kakao Delivered", "Kakao Opened", "Kakao Clicked"),
}
ORDER_COLUMNS = ["order_id", "user_id", "ordered_at", "status", "currency", "revenue", "item_count"]

# purposes of the per-customer draws
(_U_DELIVER, _U_OPEN, _U_CLICK, _U_CONVERT, _U_DELIVER_DELAY, _U_OPEN_DELAY, _U_CLICK_DELAY,
 _U_ORDER_DELAY, _U_ORDER_TIME, _U_REVENUE, _U_PRODUCT, _U_RECEIVED, _U_ORDER_ID) = range(1, 14)
_ID_DELIVERED, _ID_OPENED, _ID_CLICKED, _ID_ORDER = 1, 2, 3, 4


@dataclass
class CampaignSimulation:
    """What :func:`simulate_campaign_responses` wrote, and the truth it was drawn from."""

    campaign: str
    seed: int
    channel: str
    attribution_days: int
    effects: dict[str, dict[str, float]]
    assigned: dict[str, int]  # customers per arm
    sent: dict[str, int]  # customers with an acknowledged send, per arm
    converted: dict[str, int]  # simulated converters per arm (all landing days)
    revenue: dict[str, float]  # simulated revenue per arm (all landing days)
    events_by_name: dict[str, int]  # lines written (the days written only)
    orders_written: int
    files: list[str] = field(default_factory=list)

    def true_conversion_rate(self, arm: str) -> float:
        """The arm's intent-to-treat conversion rate implied by the effects and who was sent: a
        variant's unsent customers convert at the holdout's rate."""
        rate = self.effects[arm]["convert"]
        if arm == HOLDOUT_ARM or HOLDOUT_ARM not in self.effects or not self.assigned.get(arm):
            return rate
        sent_share = self.sent.get(arm, 0) / self.assigned[arm]
        return sent_share * rate + (1 - sent_share) * self.effects[HOLDOUT_ARM]["convert"]

    def true_uplift(self, arm: str) -> float:
        """True absolute conversion uplift of `arm` over the holdout (intent to treat)."""
        return self.true_conversion_rate(arm) - self.true_conversion_rate(HOLDOUT_ARM)

    def true_relative_uplift(self, arm: str) -> float:
        return self.true_conversion_rate(arm) / self.true_conversion_rate(HOLDOUT_ARM) - 1

    def true_best_arm(self) -> str:
        variants = [arm for arm in self.effects if arm != HOLDOUT_ARM]
        return max(variants, key=self.true_conversion_rate)


def campaign_effects(
    baseline_convert: float,
    lifts: dict[str, float],
    *,
    open_rate: float | dict[str, float] = 0.25,
    click_rate: float | dict[str, float] = 0.2,
    revenue_mean: float = 60_000.0,
) -> dict[str, dict[str, float]]:
    """Effects for :func:`simulate_campaign_responses`: the holdout converts at `baseline_convert`,
    each variant at baseline × lift (lifts = {variant: 1.2} is a +20% relative uplift)."""
    def per_arm(value, arm):
        return value[arm] if isinstance(value, dict) else value

    effects = {HOLDOUT_ARM: {"convert": baseline_convert, "revenue_mean": revenue_mean}}
    for arm, lift in lifts.items():
        effects[arm] = {"open": per_arm(open_rate, arm), "click": per_arm(click_rate, arm),
                        "convert": baseline_convert * lift, "revenue_mean": revenue_mean}
    return effects


def _customer_keys(seed: int, campaign: str, customer_ids: list[str]) -> np.ndarray:
    prefix = f"{seed}\x1f{campaign}\x1f".encode()
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(prefix + c.encode(), digest_size=8).digest(), "little")
         for c in customer_ids),
        dtype=np.uint64, count=len(customer_ids))


def _uniform(keys: np.ndarray, purpose: int) -> np.ndarray:
    """A uniform in (0, 1) per customer for this purpose."""
    mixed = _splitmix(keys ^ _splitmix(np.full(len(keys), purpose, dtype=np.uint64)))
    return ((mixed >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def _lognormal_ms(u: np.ndarray, median_ms: float, sigma: float) -> np.ndarray:
    return np.exp(np.log(median_ms) + sigma * scipy_stats.norm.ppf(u))


def _slug(campaign: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", campaign).strip("_") or "campaign"


def _load_campaign(con, campaign: str) -> pl.DataFrame:
    result = con.execute(
        """
        select a.customer_id, a.arm, epoch_ms(a.assigned_at) as assigned_ms, epoch_ms(s.sent_at) as sent_ms
        from activations.assignments as a
        left join (
            select key, min(logged_at) as sent_at
            from activations.sync_log
            where sync_name = $campaign and status = 'ok' and operation <> 'remove'
            group by key
        ) as s on s.key = a.customer_id
        where a.campaign = $campaign
        order by a.customer_id
        """,
        {"campaign": campaign},
    ).fetchall()
    return pl.DataFrame(result, schema={"customer_id": pl.String, "arm": pl.String, "assigned_ms": pl.Int64,
                                        "sent_ms": pl.Int64}, orient="row")


def simulate_campaign_responses(
    con,
    campaign: str,
    landing_dir: str | Path,
    effects: dict[str, dict[str, float]],
    day: date | None = None,
    seed: int = 0,
    *,
    channel: str = "email",
    attribution_days: int = DEFAULT_ATTRIBUTION_DAYS,
    click_conversion_multiplier: float = DEFAULT_CLICK_CONVERSION_MULTIPLIER,
    catalog_seed: int = DEFAULT_CATALOG_SEED,
    write_orders: bool = True,
    gzip: bool = True,
    write: bool = True,
) -> CampaignSimulation:
    """Write the campaign's simulated responses (module docstring) and return what was written.

    `day`: write only that landing day's files (None: every day). Arms missing from `effects` are an
    error; a variant's missing "open"/"click" mean no opens/clicks. `write=False` draws the outcomes
    and returns the counts without encoding or writing anything (fast: for many seeds).
    """
    if channel not in CHANNEL_EVENTS:
        raise ValueError(f"channel must be one of {sorted(CHANNEL_EVENTS)}, got {channel!r}")
    frame = _load_campaign(con, campaign)
    if frame.is_empty():
        raise ValueError(f"campaign {campaign!r} has no assignments in activations.assignments")
    arms = frame["arm"].to_numpy().astype(str)
    missing = sorted(set(arms) - set(effects))
    if missing:
        raise ValueError(f"no effects given for arm(s) {missing} of campaign {campaign!r}")
    baseline = effects.get(HOLDOUT_ARM, {}).get("convert")

    customer_ids = frame["customer_id"].to_list()
    keys = _customer_keys(seed, campaign, customer_ids)
    n = len(customer_ids)

    def rate(name: str, default: float = 0.0) -> np.ndarray:
        return np.array([float(effects[arm].get(name, default)) for arm in arms])

    assigned_ms = frame["assigned_ms"].to_numpy().astype(np.int64)
    sent_ms_raw = frame["sent_ms"].to_numpy()
    is_sent = ~np.isnan(sent_ms_raw.astype(np.float64))
    sent_ms = np.where(is_sent, np.nan_to_num(sent_ms_raw.astype(np.float64)), 0).astype(np.int64)

    # ---- messages: delivered → opened (of delivered) → clicked (of opened)
    delivered = is_sent & (_uniform(keys, _U_DELIVER) < rate("deliver", DEFAULT_DELIVERY_RATE))
    opened = delivered & (_uniform(keys, _U_OPEN) < rate("open"))
    clicked = opened & (_uniform(keys, _U_CLICK) < rate("click"))
    delivered_ms = sent_ms + _lognormal_ms(_uniform(keys, _U_DELIVER_DELAY), 4_000, 0.8).astype(np.int64)
    opened_ms = delivered_ms + _lognormal_ms(_uniform(keys, _U_OPEN_DELAY), 2 * 3_600_000, 1.3).astype(np.int64)
    clicked_ms = opened_ms + _lognormal_ms(_uniform(keys, _U_CLICK_DELAY), 40_000, 1.0).astype(np.int64)

    # ---- conversions: the arm's rate overall; clickers k times likelier, non-clickers adjusted
    convert = rate("convert")
    if baseline is not None:
        convert = np.where(is_sent | (arms == HOLDOUT_ARM), convert, baseline)
    click_share = np.where(is_sent, rate("deliver", DEFAULT_DELIVERY_RATE) * rate("open") * rate("click"), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_clicker = np.minimum.reduce([np.ones(n), click_conversion_multiplier * convert,
                                       np.where(click_share > 0, convert / np.maximum(click_share, 1e-12), 1.0)])
        p_other = np.where(click_share < 1, (convert - click_share * p_clicker) / (1 - click_share), 0.0)
    p_customer = np.where(clicked, p_clicker, np.clip(p_other, 0.0, 1.0))
    converted = _uniform(keys, _U_CONVERT) < p_customer

    window_ms = attribution_days * DAY_MS
    window_end = assigned_ms + window_ms
    after_click = clicked_ms + _lognormal_ms(_uniform(keys, _U_ORDER_DELAY), 15 * 60_000, 1.0).astype(np.int64)
    # earlier in the window is likelier: t = window × u²
    anytime = assigned_ms + (window_ms * _uniform(keys, _U_ORDER_TIME) ** 2).astype(np.int64)
    ordered_ms = np.where(clicked & (after_click < window_end), after_click, anytime)
    # whole seconds (the orders CSV has no milliseconds), rounded up so never before the exposure
    ordered_ms = -(-np.clip(ordered_ms, assigned_ms, window_end - 1_000) // 1000) * 1000

    # ---- revenue: catalogue product and quantity closest to a Gamma(2) target
    catalog = C.build_catalog(np.random.default_rng(np.random.SeedSequence(catalog_seed).spawn(11)[0]))
    revenue_mean = rate("revenue_mean", 60_000.0)
    target = scipy_stats.gamma.ppf(_uniform(keys, _U_REVENUE), 2.0, scale=np.maximum(revenue_mean, 1.0) / 2.0)
    affordable = np.maximum(np.searchsorted(catalog.sorted_prices, target, side="right"), 1)
    pick = np.minimum((_uniform(keys, _U_PRODUCT) * affordable).astype(np.int64), affordable - 1)
    product = catalog.price_order[pick]
    price = catalog.product_price[product]
    quantity = np.clip(np.rint(target / price), 1, 20).astype(np.int64)
    order_revenue = price * quantity

    # ---- the truth, per arm (all days)
    arm_names = list(dict.fromkeys(list(effects) + sorted(set(arms))))
    summary = {
        "assigned": {a: int((arms == a).sum()) for a in arm_names},
        "sent": {a: int((is_sent & (arms == a)).sum()) for a in arm_names},
        "converted": {a: int((converted & (arms == a)).sum()) for a in arm_names},
        "revenue": {a: float(order_revenue[converted & (arms == a)].sum()) for a in arm_names},
    }

    if not write:
        return CampaignSimulation(
            campaign=campaign, seed=seed, channel=channel, attribution_days=attribution_days,
            effects={arm: dict(values) for arm, values in effects.items()},
            assigned=summary["assigned"], sent=summary["sent"], converted=summary["converted"],
            revenue=summary["revenue"], events_by_name={}, orders_written=0, files=[],
        )

    # ---- encode
    delivered_name, opened_name, clicked_name = CHANNEL_EVENTS[channel]
    base = pl.DataFrame({"userId": pl.Series(customer_ids, dtype=pl.String), "variant": pl.Series(arms.tolist(), dtype=pl.String),
                         "key": keys})
    received_jitter = (20 + _uniform(keys, _U_RECEIVED) * 580).astype(np.int64)
    message_parts = []
    for id_purpose, name, mask, at in ((_ID_DELIVERED, delivered_name, delivered, delivered_ms),
                                       (_ID_OPENED, opened_name, opened, opened_ms),
                                       (_ID_CLICKED, clicked_name, clicked, clicked_ms)):
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            continue
        message_parts.append(base.select(pl.all().gather(idx)).with_columns(
            uuids(seed, SALT_CAMPAIGN, keys[idx] ^ np.uint64(id_purpose)).alias("messageId"),
            pl.lit(name).alias("event"),
            pl.Series("ts", at[idx]),
            pl.Series("recv", at[idx] + received_jitter[idx]),
        ))
    lines = []
    if message_parts:
        messages = pl.concat(message_parts).with_columns(
            pl.lit(campaign).alias("campaign_id"), pl.lit(campaign).alias("campaign_name"),
            pl.lit(channel).alias("channel"))
        lines.append(messages.select(
            "recv", "event",
            pl.struct(
                "messageId", pl.lit("track").alias("type"), "event", "userId",
                pl.struct("campaign_id", "campaign_name", "channel", "variant").alias("properties"),
                ts_expr("ts").alias("timestamp"), ts_expr("recv").alias("receivedAt"),
            ).struct.json_encode().alias("line")))

    idx = np.flatnonzero(converted)
    order_ids = _order_ids(keys[idx], ordered_ms[idx])
    orders = pl.DataFrame({
        "userId": pl.Series([customer_ids[i] for i in idx], dtype=pl.String),
        "order_id": pl.Series(order_ids, dtype=pl.String),
        "ts": ordered_ms[idx],
        "recv": ordered_ms[idx] + received_jitter[idx],
        "revenue": order_revenue[idx],
        "quantity": quantity[idx],
        "product_id": pl.Series([catalog.product_id[p] for p in product[idx]], dtype=pl.String),
        "name": pl.Series([catalog.product_name[p] for p in product[idx]], dtype=pl.String),
        "category": pl.Series([C.CATEGORIES[catalog.product_category[p]][0] for p in product[idx]], dtype=pl.String),
        "price": price[idx],
        "key": keys[idx],
    })
    if orders.height:
        lines.append(orders.select(
            "recv", pl.lit("Order Completed").alias("event"),
            pl.struct(
                uuids(seed, SALT_CAMPAIGN, keys[idx] ^ np.uint64(_ID_ORDER)).alias("messageId"),
                pl.lit("track").alias("type"), pl.lit("Order Completed").alias("event"), "userId",
                pl.struct(
                    "order_id", "revenue", pl.lit(C.CURRENCY).alias("currency"),
                    pl.concat_list(pl.struct("product_id", "name", "category", "price", "quantity")).alias("products"),
                ).alias("properties"),
                ts_expr("ts").alias("timestamp"), ts_expr("recv").alias("receivedAt"),
            ).struct.json_encode().alias("line")))

    landing = Path(landing_dir)
    slug = _slug(campaign)
    files: list[str] = []
    events_by_name: dict[str, int] = {}
    all_lines = pl.concat(lines) if lines else pl.DataFrame({"recv": [], "event": [], "line": []},
                                                            schema={"recv": pl.Int64, "event": pl.String, "line": pl.String})
    all_lines = all_lines.with_columns(
        pl.from_epoch("recv", time_unit="ms").dt.date().alias("landing_day")).sort("recv", "line")
    for (landing_day,), part in all_lines.group_by("landing_day", maintain_order=True):
        if day is not None and landing_day != day:
            continue
        folder = landing / "events" / f"date={landing_day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"campaign-{slug}-{landing_day.isoformat()}.jsonl{'.gz' if gzip else ''}"
        payload = ("\n".join(part["line"].to_list()) + "\n").encode()
        path.write_bytes(_gzip.compress(payload, compresslevel=6, mtime=0) if gzip else payload)
        files.append(str(path))
        for name, count in part.group_by("event").len().iter_rows():
            events_by_name[name] = events_by_name.get(name, 0) + count

    orders_written = 0
    if write_orders and orders.height:
        csv = orders.with_columns(
            pl.from_epoch("ts", time_unit="ms").dt.date().alias("landing_day"),
            pl.from_epoch(pl.col("ts") + KST_MS, time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S+09:00").alias("ordered_at"),
        ).sort("ts", "order_id")
        for (landing_day,), part in csv.group_by("landing_day", maintain_order=True):
            if day is not None and landing_day != day:
                continue
            folder = landing / "orders" / f"date={landing_day.isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            part.select(
                "order_id", pl.col("userId").alias("user_id"), "ordered_at", pl.lit("completed").alias("status"),
                pl.lit(C.CURRENCY).alias("currency"), "revenue", pl.col("quantity").alias("item_count"),
            ).write_csv(buf)
            path = folder / f"campaign-{slug}-{landing_day.isoformat()}.csv"
            path.write_bytes(buf.getvalue())
            files.append(str(path))
            orders_written += part.height

    return CampaignSimulation(
        campaign=campaign, seed=seed, channel=channel, attribution_days=attribution_days,
        effects={arm: dict(values) for arm, values in effects.items()},
        assigned=summary["assigned"], sent=summary["sent"], converted=summary["converted"],
        revenue=summary["revenue"], events_by_name=events_by_name, orders_written=orders_written,
        files=sorted(files),
    )


def _order_ids(keys: np.ndarray, ordered_ms: np.ndarray) -> list[str]:
    """'GC' + the order's Korean date (yymmdd) + '-' + 10 hex digits of the customer's hash."""
    mixed = _splitmix(keys ^ np.uint64(0xC0FFEE ^ _U_ORDER_ID))
    days = [datetime.fromtimestamp((ms + KST_MS) / 1000, tz=timezone.utc).strftime("%y%m%d") for ms in ordered_ms.tolist()]
    return [f"GC{d}-{int(m) >> 24:010X}" for d, m in zip(days, mixed.tolist())]


__all__ = ["simulate_campaign_responses", "campaign_effects", "CampaignSimulation", "CHANNEL_EVENTS",
           "HOLDOUT_ARM"]
