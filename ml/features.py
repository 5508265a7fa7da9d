"""Point-in-time customer features and churn labels, from the dbt marts (polars).

Everything here is "as of" a cut-off date D (inclusive, UTC dates, like dim_customers' as_of_date):
a feature only sees orders, sessions and events dated on or before D; the label looks at
(D, D + horizon]. dim_customers itself is computed as of its own as-of date (usually today), so its
RFM / lifecycle / engagement columns are NOT used for a training row at an earlier cut-off — they
are recomputed here from fct_orders / fct_sessions / fct_events. From dim_customers only facts
fixed in time are read: first_seen_at (a customer is in the population at D when first seen on or
before D) and signed_up_at (a member at D when signed up on or before D).

Orders, point in time: fct_orders keeps the latest version of each order, so an order refunded
*after* D must still count as a purchase at D. An order counts as a purchase known at date X when
it was placed on or before X and its status is completed; or refunded, the refund arriving after X
(status_landing_date > X); or cancelled after it had first arrived completed (first_landing_date <
status_landing_date), the cancellation arriving after X. Orders exported as cancelled never count.

Label (``label="no_purchase"``, default): 1 = no purchase placed in (D, D + horizon], judged with
what is known at D + horizon. ``label="no_activity"``: 1 = neither a purchase nor a browsing
session in the window (message opens are not activity: they are reactions to our own sends).

Cut-offs (:func:`plan_cutoffs`): the evaluation cut-off is the latest date whose label window is
complete (data end - horizon); training cut-offs go back from (evaluation cut-off - horizon) every
``step_days``, so no training label overlaps the evaluation window; scoring is as of the data end.

Known residual leak: customer ids come from today's identity graph, so a visitor who signs up
after D is already keyed by their user id at D. No feature reads the id; membership at D uses
signed_up_at.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Literal

import numpy as np
import polars as pl

MESSAGE_RESPONSES: dict[str, dict[str, tuple[str, ...]]] = {
    # channel -> kind -> event names (dim_customers' var message_engagement, minus 'sent')
    "email": {"opened": ("Email Opened",), "clicked": ("Email Clicked",)},
    "push": {"opened": ("Push Opened",), "clicked": ("Push Clicked",)},
    "kakao": {"opened": ("Kakao Opened",), "clicked": ("Kakao Clicked",)},
}
CHANNELS = tuple(MESSAGE_RESPONSES)
MESSAGE_EVENTS = tuple(n for kinds in MESSAGE_RESPONSES.values() for names in kinds.values() for n in names)
BROWSE_EVENTS = ("Product Viewed", "Product Added", "Checkout Started", "Products Searched", "Order Completed")

LIFECYCLE_STAGES = ("first_encounter", "onboarding", "activation", "first_purchase", "repeat_loyal", "at_risk", "win_back")
ACQUISITION_CHANNELS = ("direct", "organic_search", "price_comparison", "paid_social", "paid_search", "email",
                        "kakao", "push", "referral", "other_campaign", "none")
CATEGORICAL_FEATURES = ("acquisition_channel", "lifecycle_stage")


@dataclass(frozen=True)
class LifecycleRules:
    """dim_customers' var lifecycle (dbt_project.yml); keep both in step."""

    repeat_min_orders: int = 2
    at_risk_after_days: int = 30
    win_back_after_days: int = 60
    activation_events: tuple[str, ...] = ("Product Added", "Checkout Started")
    activation_min_sessions: int = 3


@dataclass(frozen=True)
class FeatureConfig:
    horizon_days: int = 14
    label: Literal["no_purchase", "no_activity"] = "no_purchase"
    bgnbd: bool = True  # fit BG/NBD (ml.ltv) at each cut-off for p_alive / expected purchases
    min_buyers_for_bgnbd: int = 30
    spend_includes_first_purchase: bool = True  # Gamma-Gamma on every purchase day (False: repeat days only)
    lifecycle: LifecycleRules = field(default_factory=LifecycleRules)


@dataclass(frozen=True)
class Inputs:
    """What the features read from the marts (see :func:`load_inputs`)."""

    customers: pl.DataFrame  # customer_id, first_seen_date, signed_up_date
    orders: pl.DataFrame  # customer_id, order_id, ordered_at, ordered_date, status, revenue, first/status_landing_date
    sessions: pl.DataFrame  # customer_id, session_date, duration_seconds, page_view_count, is_bounce, channel
    events: pl.DataFrame  # customer_id, event_name, event_date, product_id, category, message_campaign_id
    as_of: date  # dim_customers.as_of_date: the scoring date
    data_end: date  # latest order / event / session date in the data

    def restrict_to(self, last_date: date) -> Inputs:
        """The same inputs as they would have looked on `last_date` (for tests and back-tests)."""
        return replace(
            self,
            customers=self.customers.filter(pl.col("first_seen_date") <= last_date),
            orders=self.orders.filter(pl.col("ordered_date") <= last_date).with_columns(
                # a status that arrived later was unknown then: the order was still completed
                pl.when((pl.col("status_landing_date") > last_date) & _was_purchase_at(last_date))
                .then(pl.lit("completed")).otherwise(pl.col("status")).alias("status")
            ),
            sessions=self.sessions.filter(pl.col("session_date") <= last_date),
            events=self.events.filter(pl.col("event_date") <= last_date),
            as_of=min(self.as_of, last_date),
            data_end=min(self.data_end, last_date),
        )


# ---------------------------------------------------------------------------------------- loading

def load_inputs(con, *, schema: str = "marts") -> Inputs:
    """Read the columns the features need from dim_customers / fct_orders / fct_sessions / fct_events."""

    def frame(sql: str) -> pl.DataFrame:
        return con.sql(sql).pl()

    customers = frame(f"""
        select customer_id,
               cast(first_seen_at as date) as first_seen_date,
               cast(signed_up_at as date) as signed_up_date
        from {schema}.dim_customers""")
    orders = frame(f"""
        select customer_id, order_id, ordered_at, ordered_date, status,
               cast(revenue as double) as revenue, first_landing_date, status_landing_date
        from {schema}.fct_orders where customer_id is not null""")
    sessions = frame(f"""
        select customer_id, session_date, cast(duration_seconds as double) as duration_seconds,
               cast(page_view_count as bigint) as page_view_count, is_bounce, channel, started_at
        from {schema}.fct_sessions""")
    names = ", ".join(f"'{n}'" for n in BROWSE_EVENTS + MESSAGE_EVENTS)
    events = frame(f"""
        select customer_id, event_name, event_date, product_id, category, message_campaign_id
        from {schema}.fct_events where event_name in ({names})""")
    as_of_row = con.sql(f"select max(as_of_date) from {schema}.dim_customers").fetchall()[0]
    ends = [d for d in (
        orders["ordered_date"].max() if orders.height else None,
        sessions["session_date"].max() if sessions.height else None,
        events["event_date"].max() if events.height else None,
    ) if d is not None]
    as_of = as_of_row[0] if as_of_row and as_of_row[0] else (max(ends) if ends else date.today())
    return Inputs(customers=_typed_customers(customers), orders=_typed_orders(orders), sessions=sessions,
                  events=events, as_of=as_of, data_end=max(ends) if ends else as_of)


def _typed_customers(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col("first_seen_date").cast(pl.Date), pl.col("signed_up_date").cast(pl.Date))


def _typed_orders(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col("ordered_date").cast(pl.Date), pl.col("first_landing_date").cast(pl.Date),
                           pl.col("status_landing_date").cast(pl.Date), pl.col("revenue").cast(pl.Float64))


# ---------------------------------------------------------------------------------------- cut-offs

@dataclass(frozen=True)
class CutoffPlan:
    train: tuple[date, ...]  # oldest first
    evaluation: date
    scoring: date

    def to_dict(self) -> dict:
        return {"train": [d.isoformat() for d in self.train], "evaluation": self.evaluation.isoformat(),
                "scoring": self.scoring.isoformat()}


def plan_cutoffs(data_start: date, data_end: date, *, horizon_days: int = 14, n_train: int = 3,
                 step_days: int = 7, min_history_days: int = 14, scoring: date | None = None) -> CutoffPlan:
    """Training / evaluation / scoring cut-offs for data covering [data_start, data_end].

    evaluation = data_end - horizon (its label window is the last complete one); training cut-offs
    are evaluation - horizon, then every `step_days` earlier, at most `n_train`, none with less than
    `min_history_days` of history. Raises ValueError when not even one training cut-off fits.
    """
    evaluation = data_end - timedelta(days=horizon_days)
    first_train = evaluation - timedelta(days=horizon_days)
    earliest = data_start + timedelta(days=min_history_days - 1)
    train = [first_train - timedelta(days=step_days * k) for k in range(n_train)]
    train = sorted(d for d in train if d >= earliest)
    if not train:
        raise ValueError(
            f"data from {data_start} to {data_end} is too short for a {horizon_days}-day horizon with "
            f"{min_history_days} days of history: need at least {min_history_days + 2 * horizon_days} days"
        )
    return CutoffPlan(train=tuple(train), evaluation=evaluation, scoring=scoring or data_end)


def data_start(inputs: Inputs) -> date:
    starts = [d for d in (inputs.customers["first_seen_date"].min(),) if d is not None]
    return min(starts) if starts else inputs.data_end


# ---------------------------------------------------------------------------------------- orders

def purchases_known_at(orders: pl.DataFrame, known_at: date) -> pl.DataFrame:
    """Orders that count as purchases as known at `known_at` (placed by then; refunds arriving later ignored)."""
    return orders.filter((pl.col("ordered_date") <= known_at) & _was_purchase_at(known_at))


def _was_purchase_at(known_at: date) -> pl.Expr:
    later = pl.col("status_landing_date") > known_at
    return (
        (pl.col("status") == "completed")
        | ((pl.col("status") == "refunded") & later)
        | ((pl.col("status") == "cancelled") & later & (pl.col("first_landing_date") < pl.col("status_landing_date")))
    ).fill_null(False)


def rfm_at(orders: pl.DataFrame, cutoff: date) -> pl.DataFrame:
    """BG/NBD inputs per buyer known at the cut-off (ml.ltv.rfm_summary, days as the unit, same-day
    purchases merged): frequency, recency, T, monetary_value (mean repeat-day spend, lifetimes'
    convention), plus purchase_days (= frequency + 1) and mean_day_spend (mean over every purchase day,
    the first included)."""
    from ml import ltv

    schema = {"customer_id": pl.String, "frequency": pl.Float64, "recency": pl.Float64, "T": pl.Float64,
              "monetary_value": pl.Float64, "purchase_days": pl.Float64, "mean_day_spend": pl.Float64}
    purchases = purchases_known_at(orders, cutoff)
    if purchases.height == 0:
        return pl.DataFrame(schema=schema)
    summary = ltv.rfm_summary(purchases, customer_col="customer_id", time_col="ordered_date", value_col="revenue",
                              observation_end=cutoff, freq="D")
    totals = purchases.group_by("customer_id").agg(pl.col("revenue").sum().alias("_total"))
    return (
        summary.join(totals, on="customer_id", how="left")
        .with_columns(
            (pl.col("frequency") + 1).alias("purchase_days"),
            (pl.col("_total") / (pl.col("frequency") + 1)).alias("mean_day_spend"),
        )
        .select(list(schema))
        .cast(schema)
        .sort("customer_id")
    )


# ---------------------------------------------------------------------------------------- features

def _window(col: str, cutoff: date, days: int, *, offset: int = 0) -> pl.Expr:
    """col in [cutoff - offset - days + 1, cutoff - offset]."""
    hi = cutoff - timedelta(days=offset)
    return pl.col(col).is_between(hi - timedelta(days=days - 1), hi)


def _days_since(expr: pl.Expr, cutoff: date) -> pl.Expr:
    return (pl.lit(cutoff) - expr).dt.total_days().cast(pl.Float64)


def build_features(inputs: Inputs, cutoff: date, config: FeatureConfig = FeatureConfig()) -> pl.DataFrame:
    """One row per customer first seen on or before `cutoff`: customer_id + the model's features.

    Column order and dtypes are fixed (the model artefact records them); missing values are null
    (e.g. recency of a customer who never bought), which the model handles natively.
    """
    D = cutoff
    population = inputs.customers.filter(pl.col("first_seen_date") <= D).select(
        "customer_id",
        (pl.col("signed_up_date") <= D).fill_null(False).alias("is_member"),
        _days_since(pl.col("first_seen_date"), D).alias("tenure_days"),
        pl.when(pl.col("signed_up_date") <= D).then(_days_since(pl.col("signed_up_date"), D)).alias("days_since_signup"),
    )

    # orders ---------------------------------------------------------------------------------
    orders = inputs.orders.filter(pl.col("ordered_date") <= D)
    bought = purchases_known_at(orders, D)
    order_features = bought.group_by("customer_id").agg(
        pl.len().cast(pl.Float64).alias("orders_count"),
        pl.col("revenue").sum().alias("revenue"),
        pl.col("revenue").mean().alias("average_order_value"),
        _days_since(pl.col("ordered_date").max(), D).alias("days_since_last_order"),
        _days_since(pl.col("ordered_date").min(), D).alias("days_since_first_order"),
        _window("ordered_date", D, 14).sum().cast(pl.Float64).alias("orders_last_14d"),
        _window("ordered_date", D, 30).sum().cast(pl.Float64).alias("orders_last_30d"),
        pl.col("revenue").filter(_window("ordered_date", D, 30)).sum().alias("revenue_last_30d"),
    ).with_columns(
        pl.when(pl.col("orders_count") > 1)
        .then((pl.col("days_since_first_order") - pl.col("days_since_last_order")) / (pl.col("orders_count") - 1))
        .alias("mean_days_between_orders")
    )
    other_orders = orders.group_by("customer_id").agg(
        ((pl.col("status") == "cancelled") & ~_was_purchase_at(D)).sum().cast(pl.Float64).alias("cancelled_orders_count"),
        ((pl.col("status") == "refunded") & (pl.col("status_landing_date") <= D)).sum().cast(pl.Float64)
        .alias("refunded_orders_count"),
    )

    # sessions -------------------------------------------------------------------------------
    sessions = inputs.sessions.filter(pl.col("session_date") <= D)
    session_features = sessions.group_by("customer_id").agg(
        pl.len().cast(pl.Float64).alias("sessions_count"),
        _window("session_date", D, 7).sum().cast(pl.Float64).alias("sessions_last_7d"),
        _window("session_date", D, 14).sum().cast(pl.Float64).alias("sessions_last_14d"),
        _window("session_date", D, 14, offset=14).sum().cast(pl.Float64).alias("sessions_prev_14d"),
        _window("session_date", D, 28).sum().cast(pl.Float64).alias("sessions_last_28d"),
        _days_since(pl.col("session_date").max(), D).alias("days_since_last_session"),
        pl.col("duration_seconds").filter(_window("session_date", D, 28)).mean().alias("avg_session_seconds_28d"),
        pl.col("page_view_count").filter(_window("session_date", D, 28)).sum().cast(pl.Float64).alias("page_views_28d"),
        pl.col("is_bounce").filter(_window("session_date", D, 28)).mean().cast(pl.Float64).alias("bounce_rate_28d"),
    ).with_columns(
        ((pl.col("sessions_last_14d") - pl.col("sessions_prev_14d"))
         / (pl.col("sessions_last_14d") + pl.col("sessions_prev_14d") + 1.0)).alias("session_trend")
    )
    acquisition = (
        sessions.sort("customer_id", "started_at")
        .group_by("customer_id", maintain_order=True)
        .agg(pl.col("channel").first().alias("acquisition_channel"))
    )

    # events: browsing intent and message engagement -----------------------------------------------
    events = inputs.events.filter(pl.col("event_date") <= D)
    is_message = pl.col("event_name").is_in(list(MESSAGE_EVENTS))
    aggregations = [
        (pl.col("event_name").is_in(["Product Viewed"]) & _window("event_date", D, 14)).sum().cast(pl.Float64).alias("product_views_14d"),
        (pl.col("event_name").is_in(["Products Searched"]) & _window("event_date", D, 14)).sum().cast(pl.Float64).alias("searches_14d"),
        (pl.col("event_name").is_in(["Product Added"]) & _window("event_date", D, 14)).sum().cast(pl.Float64).alias("cart_adds_14d"),
        (pl.col("event_name").is_in(["Checkout Started"]) & _window("event_date", D, 14)).sum().cast(pl.Float64).alias("checkouts_14d"),
        (pl.col("event_name").is_in(["Product Added"]) & _window("event_date", D, 7)).sum().cast(pl.Float64).alias("_adds_7d"),
        (pl.col("event_name").is_in(["Order Completed"]) & _window("event_date", D, 7)).sum().cast(pl.Float64).alias("_orders_7d"),
        pl.col("event_name").is_in(list(config.lifecycle.activation_events)).any().alias("_activation_event"),
        is_message.sum().cast(pl.Float64).alias("message_responses_count"),
        _days_since(pl.col("event_date").filter(is_message).max(), D).alias("days_since_last_message_response"),
        pl.col("event_date").max().alias("_last_event_date"),
    ]
    for channel in CHANNELS:
        aggregations.append(messages_responded(channel, _window("event_date", D, 28)).alias(f"{channel}_responses_28d"))
        aggregations.append(messages_responded(channel).alias(f"{channel}_responses"))
    event_features = events.group_by("customer_id").agg(aggregations).with_columns(
        ((pl.col("_adds_7d") > 0) & (pl.col("_orders_7d") == 0)).cast(pl.Float64).alias("cart_abandoned_7d")
    )

    frame = (
        population.join(order_features, on="customer_id", how="left")
        .join(other_orders, on="customer_id", how="left")
        .join(session_features, on="customer_id", how="left")
        .join(acquisition, on="customer_id", how="left")
        .join(event_features, on="customer_id", how="left")
    )
    zero_if_missing = [
        "orders_count", "revenue", "orders_last_14d", "orders_last_30d", "revenue_last_30d",
        "cancelled_orders_count", "refunded_orders_count", "sessions_count", "sessions_last_7d",
        "sessions_last_14d", "sessions_prev_14d", "sessions_last_28d", "session_trend", "page_views_28d",
        "product_views_14d", "searches_14d", "cart_adds_14d", "checkouts_14d", "cart_abandoned_7d",
        "message_responses_count", *[f"{c}_responses_28d" for c in CHANNELS], *[f"{c}_responses" for c in CHANNELS],
    ]
    frame = frame.with_columns(
        *[pl.col(c).fill_null(0.0) for c in zero_if_missing],
        pl.col("acquisition_channel").fill_null("none"),
    )
    frame = frame.with_columns(_lifecycle_stage(frame, D, config.lifecycle).alias("lifecycle_stage"))
    frame = frame.join(bgnbd_features(inputs.orders, D, config), on="customer_id", how="left")
    return _order_columns(frame.sort("customer_id"))


def messages_responded(channel: str, within: pl.Expr | None = None) -> pl.Expr:
    """Aggregation: messages of `channel` the customer responded to (opened or clicked) = distinct
    campaign ids of their response events (an open and a click of one email count once); response
    events without a campaign id count one each."""
    names = [n for group in MESSAGE_RESPONSES[channel].values() for n in group]
    mask = pl.col("event_name").is_in(names)
    if within is not None:
        mask = mask & within
    campaign = pl.col("message_campaign_id")
    return (campaign.filter(mask & campaign.is_not_null()).n_unique() + (mask & campaign.is_null()).sum()).cast(pl.Float64)


def _lifecycle_stage(frame: pl.DataFrame, cutoff: date, rules: LifecycleRules) -> pl.Expr:
    """dim_customers' lifecycle rules (first match wins) evaluated at the cut-off."""
    last_seen = pl.min_horizontal(
        pl.col("days_since_last_order"), pl.col("days_since_last_session"),
        _days_since(pl.col("_last_event_date"), cutoff), pl.col("days_since_signup"), pl.col("tenure_days"),
    )
    ordered = pl.col("orders_count") > 0
    activated = pl.col("_activation_event").fill_null(False) | (pl.col("sessions_count") >= rules.activation_min_sessions)
    return (
        pl.when(ordered & (pl.col("days_since_last_order") > rules.win_back_after_days)).then(pl.lit("win_back"))
        .when(ordered & (pl.col("days_since_last_order") > rules.at_risk_after_days)).then(pl.lit("at_risk"))
        .when(pl.col("orders_count") >= rules.repeat_min_orders).then(pl.lit("repeat_loyal"))
        .when(ordered).then(pl.lit("first_purchase"))
        .when(~pl.col("is_member")).then(pl.lit("first_encounter"))
        .when(last_seen > rules.win_back_after_days).then(pl.lit("win_back"))
        .when(activated).then(pl.lit("activation"))
        .otherwise(pl.lit("onboarding"))
    )


BGNBD_COLUMNS = ("bgnbd_frequency", "bgnbd_recency", "bgnbd_T", "p_alive", "expected_purchases", "prob_no_purchase",
                 "expected_order_value")


def bgnbd_features(orders: pl.DataFrame, cutoff: date, config: FeatureConfig = FeatureConfig()) -> pl.DataFrame:
    """BG/NBD features per buyer (see :func:`ltv_at`); all null when BG/NBD is off or cannot be fitted."""
    return ltv_at(orders, cutoff, config.horizon_days, enabled=config.bgnbd, min_buyers=config.min_buyers_for_bgnbd,
                  spend_includes_first_purchase=config.spend_includes_first_purchase)


def ltv_at(orders: pl.DataFrame, cutoff: date, horizon_days: int, *, ltv_months: int | None = None,
           discount_rate: float = 0.01, enabled: bool = True, min_buyers: int = 30,
           spend_includes_first_purchase: bool = True) -> pl.DataFrame:
    """BG/NBD + Gamma-Gamma (ml.ltv) fitted on the buyers known at the cut-off, one row per buyer:
    bgnbd_frequency / _recency / _T (days), p_alive, expected_purchases and prob_no_purchase in the next
    `horizon_days`, expected_order_value (Gamma-Gamma), and with `ltv_months` predicted_ltv = expected
    spend over that many months, discounted by `discount_rate` a month (ml.ltv.clv's definition).

    spend_includes_first_purchase: fit Gamma-Gamma on every purchase day (True) or, as lifetimes does, on
    repeat purchases only (False; one-time buyers then all get the population mean). Values are null when
    there are fewer than `min_buyers` buyers or the BG/NBD fit fails."""
    rfm = rfm_at(orders, cutoff)
    names = list(BGNBD_COLUMNS) + (["predicted_ltv"] if ltv_months is not None else [])
    empty = rfm.select("customer_id").with_columns(*[pl.lit(None, dtype=pl.Float64).alias(c) for c in names])
    if not enabled or rfm.height < min_buyers:
        return empty
    models = fit_ltv_models(rfm, spend_includes_first_purchase=spend_includes_first_purchase)
    if models is None:
        return empty
    with np.errstate(all="ignore"):  # degenerate fits (a, b -> infinity) give NaN: those values become null
        values = ltv_predictions(models, rfm, horizon_days, ltv_months, discount_rate)
    return rfm.select("customer_id").with_columns(
        **{k: pl.Series(np.where(np.isfinite(values[k]), values[k], np.nan), dtype=pl.Float64, nan_to_null=True) for k in names}
    )


@dataclass
class LtvModels:
    bgnbd: object
    gamma_gamma: object | None
    spend_includes_first_purchase: bool = True


def _spend_inputs(rfm: pl.DataFrame, include_first: bool) -> tuple[np.ndarray, np.ndarray]:
    if include_first:
        return rfm["purchase_days"].to_numpy().astype(float), rfm["mean_day_spend"].to_numpy().astype(float)
    return rfm["frequency"].to_numpy().astype(float), rfm["monetary_value"].to_numpy().astype(float)


def fit_ltv_models(rfm: pl.DataFrame, *, spend_includes_first_purchase: bool = True) -> LtvModels | None:
    """BG/NBD on every buyer and Gamma-Gamma (ml.ltv); None when the BG/NBD fit fails."""
    from ml import ltv

    try:
        bgnbd = ltv.BGNBD().fit(rfm.select("frequency", "recency", "T"))
    except Exception:  # noqa: BLE001 - a degenerate cut-off (few buyers) must not break feature building
        return None
    n, m = _spend_inputs(rfm, spend_includes_first_purchase)
    usable = (n > 0) & (m > 0)
    gamma_gamma = None
    if usable.sum() >= 10:
        try:
            gamma_gamma = ltv.GammaGamma().fit(n[usable], m[usable])
        except Exception:  # noqa: BLE001
            gamma_gamma = None
    return LtvModels(bgnbd=bgnbd, gamma_gamma=gamma_gamma, spend_includes_first_purchase=spend_includes_first_purchase)


def ltv_predictions(models: LtvModels, rfm: pl.DataFrame, horizon_days: int, ltv_months: int | None = None,
                    discount_rate: float = 0.01) -> dict[str, np.ndarray]:
    x, tx, T = (rfm[c].to_numpy().astype(float) for c in ("frequency", "recency", "T"))
    bg = models.bgnbd
    p_alive = np.asarray(bg.p_alive(x, tx, T), dtype=float)
    expected = np.asarray(bg.conditional_expected_purchases(horizon_days, x, tx, T), dtype=float)
    value = expected_order_value(models, rfm)
    out = {
        "bgnbd_frequency": x, "bgnbd_recency": tx, "bgnbd_T": T,
        "p_alive": p_alive, "expected_purchases": expected,
        "prob_no_purchase": prob_no_purchase(bg, horizon_days, x, tx, T, p_alive, expected),
        "expected_order_value": value,
    }
    if ltv_months is not None:
        out["predicted_ltv"] = value * discounted_expected_purchases(bg, x, tx, T, ltv_months, discount_rate)
    return out


DAYS_PER_MONTH = 365.25 / 12


def discounted_expected_purchases(bgnbd, x, tx, T, months: int, discount_rate: float = 0.01) -> np.ndarray:
    """sum over months k = 1..months of E[purchases in month k] / (1 + discount_rate)^k (days as the unit),
    the purchase part of ml.ltv.clv."""
    cumulative = np.vstack([np.zeros(len(x))] + [
        np.asarray(bgnbd.conditional_expected_purchases(k * DAYS_PER_MONTH, x, tx, T), dtype=float)
        for k in range(1, months + 1)
    ])
    discount = (1.0 + discount_rate) ** -np.arange(1, months + 1)
    return discount @ np.diff(cumulative, axis=0)


def expected_order_value(models: LtvModels, rfm: pl.DataFrame) -> np.ndarray:
    """Gamma-Gamma E[spend per purchase day | history]; without a Gamma-Gamma fit, the buyer's own mean."""
    n, m = _spend_inputs(rfm, models.spend_includes_first_purchase)
    if models.gamma_gamma is not None:
        return np.asarray(models.gamma_gamma.conditional_expected_average_profit(n, m), dtype=float)
    return np.where(m > 0, m, np.nan)


def prob_no_purchase(bgnbd, t: float, x, tx, T, p_alive=None, expected=None) -> np.ndarray:
    """P(no purchase in (T, T + t]) under BG/NBD: (1 - P(alive)) + P(alive) * E[exp(-lambda t) | alive, data]
    with lambda | alive, data ~ Gamma(r + x, alpha + T). Uses the model's own method when it has one."""
    for method in ("conditional_probability_of_no_purchase", "probability_of_no_purchase"):
        if hasattr(bgnbd, method):
            return np.asarray(getattr(bgnbd, method)(t, x, tx, T), dtype=float)
    p_alive = np.asarray(bgnbd.p_alive(x, tx, T) if p_alive is None else p_alive, dtype=float)
    params = _bgnbd_params(bgnbd)
    if params is not None:
        r, alpha = params
        survive = ((alpha + T) / (alpha + T + t)) ** (r + x)
        return (1.0 - p_alive) + p_alive * survive
    expected = np.asarray(bgnbd.conditional_expected_purchases(t, x, tx, T) if expected is None else expected, dtype=float)
    return np.exp(-expected)  # Poisson approximation


def _bgnbd_params(bgnbd) -> tuple[float, float] | None:
    for r_name, a_name in (("r_", "alpha_"), ("r", "alpha")):
        r, alpha = getattr(bgnbd, r_name, None), getattr(bgnbd, a_name, None)
        if isinstance(r, (int, float, np.floating)) and isinstance(alpha, (int, float, np.floating)):
            return float(r), float(alpha)
    params = getattr(bgnbd, "params_", None)
    if isinstance(params, dict) and "r" in params and "alpha" in params:
        return float(params["r"]), float(params["alpha"])
    return None


FEATURE_COLUMNS: tuple[str, ...] = (
    "is_member", "tenure_days", "days_since_signup", "acquisition_channel", "lifecycle_stage",
    "orders_count", "revenue", "average_order_value", "days_since_last_order", "days_since_first_order",
    "mean_days_between_orders", "orders_last_14d", "orders_last_30d", "revenue_last_30d",
    "cancelled_orders_count", "refunded_orders_count",
    "sessions_count", "sessions_last_7d", "sessions_last_14d", "sessions_prev_14d", "sessions_last_28d",
    "session_trend", "days_since_last_session", "avg_session_seconds_28d", "page_views_28d", "bounce_rate_28d",
    "product_views_14d", "searches_14d", "cart_adds_14d", "checkouts_14d", "cart_abandoned_7d",
    "message_responses_count", "days_since_last_message_response",
    *[f"{c}_responses_28d" for c in CHANNELS], *[f"{c}_responses" for c in CHANNELS],
    *BGNBD_COLUMNS,
)


def _order_columns(frame: pl.DataFrame) -> pl.DataFrame:
    numeric = [c for c in FEATURE_COLUMNS if c not in CATEGORICAL_FEATURES and c != "is_member"]
    return frame.select(
        "customer_id",
        *[pl.col(c).cast(pl.Float64) if c in numeric else pl.col(c) for c in FEATURE_COLUMNS],
    ).with_columns(
        pl.col("is_member").cast(pl.Boolean),
        pl.col("acquisition_channel").cast(pl.String),
        pl.col("lifecycle_stage").cast(pl.String),
    )


# ---------------------------------------------------------------------------------------- labels

def build_labels(inputs: Inputs, cutoff: date, config: FeatureConfig = FeatureConfig()) -> pl.DataFrame:
    """customer_id, churned (1 = no purchase / no activity in (cutoff, cutoff + horizon]),
    next_period_revenue (spend in that window) for every customer first seen by the cut-off.

    Raises ValueError when the window is not complete in the data (cutoff + horizon > data end)."""
    end = cutoff + timedelta(days=config.horizon_days)
    if end > inputs.data_end:
        raise ValueError(f"label window {cutoff} + {config.horizon_days} days ends after the data ({inputs.data_end})")
    population = inputs.customers.filter(pl.col("first_seen_date") <= cutoff).select("customer_id")
    window = purchases_known_at(inputs.orders, end).filter(pl.col("ordered_date") > cutoff)
    bought = window.group_by("customer_id").agg(
        pl.len().alias("_purchases"), pl.col("revenue").sum().alias("next_period_revenue")
    )
    frame = population.join(bought, on="customer_id", how="left").with_columns(
        pl.col("_purchases").fill_null(0), pl.col("next_period_revenue").fill_null(0.0)
    )
    active = pl.col("_purchases") > 0
    if config.label == "no_activity":
        visited = inputs.sessions.filter(pl.col("session_date").is_between(cutoff + timedelta(days=1), end))
        frame = frame.join(visited.select("customer_id").unique().with_columns(pl.lit(True).alias("_visited")),
                           on="customer_id", how="left")
        active = active | pl.col("_visited").fill_null(False)
    elif config.label != "no_purchase":
        raise ValueError(f"unknown label {config.label!r} (no_purchase | no_activity)")
    return frame.select("customer_id", (~active).cast(pl.Int8).alias("churned"), "next_period_revenue").sort("customer_id")


def snapshot(inputs: Inputs, cutoff: date, config: FeatureConfig = FeatureConfig(), *, labelled: bool = True) -> pl.DataFrame:
    """Features (+ labels) at one cut-off, with a `cutoff` column."""
    features = build_features(inputs, cutoff, config)
    if labelled:
        features = features.join(build_labels(inputs, cutoff, config), on="customer_id", how="left")
    return features.with_columns(pl.lit(cutoff).alias("cutoff"))


def training_set(inputs: Inputs, plan: CutoffPlan, config: FeatureConfig = FeatureConfig()) -> pl.DataFrame:
    """Labelled snapshots at every training cut-off and at the evaluation cut-off, with a `role` column."""
    frames = [snapshot(inputs, d, config).with_columns(pl.lit("train").alias("role")) for d in plan.train]
    frames.append(snapshot(inputs, plan.evaluation, config).with_columns(pl.lit("evaluation").alias("role")))
    return pl.concat(frames, how="vertical")


def feature_names() -> list[str]:
    return list(FEATURE_COLUMNS)
