"""Vectorised behavioural simulation: people → sessions → events (numpy arrays only).

No JSON here; :mod:`goldentime.sample_data.encode` turns the arrays into Segment lines.
The model and its parameters are described in the package docstring
(:mod:`goldentime.sample_data`); the knobs live in :class:`BehaviourParams`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import numpy as np

from . import catalog as C

DAY = 86_400.0
HOUR = 3_600.0
MIN_SESSION_GAP = 40 * 60.0  # seconds of silence between two sessions of one person (> 30 min)
EV_CHUNK = 1 << 20  # events per chunk of the event-level stages (keeps temporaries small)

# session kinds
S_FIRST, S_BROWSE, S_RESEARCH, S_PURCHASE, S_MESSAGE = range(5)

# event kinds (the order is the order of EVENT_KINDS below)
(K_PAGE, K_IDENTIFY, K_ALIAS, K_SIGNED_UP, K_SEARCH, K_PV, K_ADD, K_CHECKOUT, K_ORDER,
 K_EMAIL_OPENED, K_EMAIL_CLICKED, K_PUSH_OPENED, K_KAKAO_CLICKED) = range(13)
# (Segment type, track event name or None)
EVENT_KINDS: list[tuple[str, str | None]] = [
    ("page", None), ("identify", None), ("alias", None), ("track", "Signed Up"),
    ("track", "Products Searched"), ("track", "Product Viewed"), ("track", "Product Added"),
    ("track", "Checkout Started"), ("track", "Order Completed"), ("track", "Email Opened"),
    ("track", "Email Clicked"), ("track", "Push Opened"), ("track", "Kakao Clicked"),
]
MESSAGE_KINDS = (K_EMAIL_OPENED, K_EMAIL_CLICKED, K_PUSH_OPENED, K_KAKAO_CLICKED)

# landing-page kinds
L_HOME, L_CATEGORY, L_PRODUCT, L_PROMO = range(4)


@dataclass(frozen=True)
class BehaviourParams:
    """Knobs of the behavioural model. Per-acquisition-group tuples are indexed
    (direct, organic_search, price_comparison, paid_social, referral); per-session-group tuples
    by ``catalog.GROUP_NAMES`` (those five + email, kakao, push)."""

    # acquisition
    acq_share: tuple = (0.18, 0.30, 0.12, 0.28, 0.12)
    visit_rate: tuple = (0.14, 0.10, 0.07, 0.08, 0.09)  # sessions/day while interested (gamma mean)
    visit_rate_shape: float = 0.8
    interest_days: tuple = (30.0, 21.0, 10.0, 8.0, 14.0)  # mean interested period (exponential)
    lapsed_visit_factor: float = 0.1  # visit rate after the interest period / churn
    p_signup: tuple = (0.50, 0.38, 0.45, 0.15, 0.30)
    signup_session_p: float = 0.55  # signup happens in session k ~ Geometric(p)
    p_buy: tuple = (0.80, 0.72, 0.88, 0.55, 0.70)  # share of members who buy
    p_first_purchase_at_signup: float = 0.45
    first_purchase_delay_days: float = 6.0  # else: exponential delay after signup
    # BG/NBD (rates per day): lambda ~ Gamma(r, alpha), dropout p ~ Beta(a, b)
    bgnbd_r: float = 0.4
    bgnbd_alpha: float = 8.7
    lambda_mult: tuple = (1.25, 1.0, 0.75, 0.8, 1.0)
    dropout_ab: tuple = ((1.0, 4.0), (1.2, 3.5), (2.0, 2.5), (1.5, 2.5), (1.2, 3.5))
    # Gamma-Gamma spend (KRW): order value ~ Gamma(p, nu), nu ~ Gamma(q, gamma)
    gg_p: float = 6.25
    gg_q: float = 1.8
    gg_gamma: float = 7_700.0
    spend_mult: tuple = (1.10, 1.0, 0.72, 0.92, 1.0, 1.05, 1.05, 1.0)  # by purchase-session group
    research_sessions_mean: float = 0.8  # browse sessions in the days before each purchase
    # which channel a returning visit / a purchase visit comes through (acq groups 0..4)
    return_mix: tuple = (0.36, 0.26, 0.05, 0.13, 0.05)
    purchase_mix: tuple = (0.36, 0.20, 0.12, 0.05, 0.04)
    own_channel_weight: float = 0.15
    message_purchase_p: float = 0.22  # purchase visit driven by the favourite CRM channel
    # funnel depth of non-purchase sessions, by session group
    p_bounce: tuple = (0.30, 0.35, 0.15, 0.62, 0.45, 0.35, 0.35, 0.40)
    p_search: tuple = (0.35, 0.25, 0.05, 0.10, 0.15, 0.20, 0.20, 0.15)
    extra_views: tuple = (1.5, 1.2, 0.6, 0.8, 1.0, 1.3, 1.3, 1.0)
    p_add: tuple = (0.18, 0.15, 0.30, 0.07, 0.12, 0.20, 0.22, 0.18)
    p_checkout: tuple = (0.35, 0.30, 0.45, 0.25, 0.30, 0.35, 0.35, 0.35)
    p_promo_visit: tuple = (0.06, 0.08, 0.04, 0.25, 0.08, 0.0, 0.0, 0.0)
    landing: tuple = ((0.75, 0.12, 0.13, 0.0), (0.15, 0.35, 0.50, 0.0), (0.0, 0.0, 1.0, 0.0),
                      (0.0, 0.25, 0.45, 0.30), (0.20, 0.20, 0.60, 0.0), (0.25, 0.40, 0.35, 0.0),
                      (0.20, 0.40, 0.40, 0.0), (0.35, 0.35, 0.30, 0.0))
    research_bounce: float = 0.10
    research_add: float = 0.45
    research_checkout: float = 0.40
    favourite_category_p: float = 0.65
    # CRM messages: base response probability by channel (email open, push open, kakao click)
    msg_base: tuple = (0.05, 0.03, 0.03)
    msg_favourite_mult: float = 7.0
    msg_churned_mult: float = 0.25
    email_click_p: float = 0.25
    email_click_p_favourite: float = 0.45
    msg_session_p: float = 0.7  # a click (or push open) leads to a visit
    msg_delay_median_min: tuple = (90.0, 25.0, 35.0)
    favourite_channel_p: tuple = (0.35, 0.25, 0.40)  # email, push, kakao
    # identity and traits
    consent_p: tuple = (0.62, 0.45, 0.50, 0.66, 0.22)  # email, sms, push, kakao, night
    trait_change_p: float = 0.18
    second_device_p: float = 0.25
    second_device_session_p: float = 0.45
    # devices and clocks
    device_type_p: tuple = (0.30, 0.63, 0.07)  # desktop, mobile, tablet
    kst_offset_format_p: float = 0.30  # devices writing '+09:00' timestamps instead of 'Z'
    skewed_device_p: float = 0.02
    no_sent_at_device_p: float = 0.03
    # orders
    refund_p: float = 0.04
    cancel_p: float = 0.15  # identified abandoned checkouts that leave a cancelled order


DEFAULT_PARAMS = BehaviourParams()


@dataclass
class Simulation:
    start: date
    days: int
    t0_ms: int
    customers: int
    members: int
    buyers: int
    sessions: int
    ev: dict[str, np.ndarray]  # event columns, in generation order
    landing_order: np.ndarray  # permutation: landing (receivedAt) order -> row of ev
    landing_day: np.ndarray  # landing day index of each event, in landing order
    orders: dict[str, np.ndarray]  # one row per order (completed + cancelled)
    order_items: dict[str, np.ndarray]  # flat items of completed orders
    refunds: dict[str, np.ndarray]
    people: dict[str, np.ndarray]
    msg_campaigns: dict[str, list]
    utm_campaigns: list[tuple[str, str, str]]  # (source, medium, name), codes 0..n-1
    catalog: C.Catalog
    seed: int
    stats: dict[str, int] = field(default_factory=dict)

    def rows(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Event columns of landing-order rows lo..hi."""
        idx = self.landing_order[lo:hi]
        return {k: v[idx] for k, v in self.ev.items()}

    def sorted_col(self, key: str) -> np.ndarray:
        """One event column in landing order."""
        return self.ev[key][self.landing_order]


# ---------------------------------------------------------------------------------------
# helpers

def _group_starts(keys: np.ndarray) -> np.ndarray:
    """Index of the first row of each run of equal keys (keys sorted)."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])


def _rank_in_group(keys: np.ndarray) -> np.ndarray:
    """0-based position of each row inside its run of equal (sorted) keys."""
    n = len(keys)
    starts = _group_starts(keys)
    lengths = np.diff(np.r_[starts, n])
    return np.arange(n) - np.repeat(starts, lengths)


def _choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (n, k) probability matrix."""
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random(len(probs))[:, None]
    return np.minimum((u > cdf).sum(axis=1), probs.shape[1] - 1)


def _tod(rng: np.random.Generator, n: int) -> np.ndarray:
    p = C.HOUR_WEIGHTS / C.HOUR_WEIGHTS.sum()
    return (rng.choice(24, n, p=p) + rng.random(n)) * HOUR


def _diurnal_day_times(rng, days_idx, tzoff):
    """Seconds since window start for local day ``days_idx`` at a sampled time of day."""
    return days_idx * DAY - tzoff + _tod(rng, len(days_idx))


def _rediurnal(rng, t, tzoff, lo, hi):
    """Keep each time's local day but resample the time of day (fallback: keep t)."""
    d = np.floor((t + tzoff) / DAY)
    new = d * DAY - tzoff + _tod(rng, len(t))
    ok = (new >= lo) & (new < hi)
    return np.where(ok, new, t)


def _pick_sub(rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
    """Sub-channel (index into catalog.SUBCHANNELS) for each channel group."""
    out = np.zeros(len(groups), dtype=np.int8)
    for g in range(len(C.GROUP_NAMES)):
        m = np.flatnonzero(groups == g)
        if len(m) == 0:
            continue
        subs = [i for i, s in enumerate(C.SUBCHANNELS) if s[0] == g]
        w = np.array([C.SUBCHANNELS[i][4] for i in subs], dtype=float)
        out[m] = np.array(subs, dtype=np.int8)[rng.choice(len(subs), len(m), p=w / w.sum())]
    return out


def _phone(i: np.ndarray, offset: int) -> np.ndarray:
    """Distinct 8-digit numbers 2000_0000..9999_9999 for distinct i < 8e7 (7919 is coprime)."""
    return (i.astype(np.int64) * 7_919 + offset) % (8 * 10**7) + 2 * 10**7


def _sample_in_category(rng, cat: C.Catalog, cats: np.ndarray) -> np.ndarray:
    """A product of each given category, by within-category popularity."""
    key = cats.astype(np.float64) + rng.random(len(cats))
    idx = np.searchsorted(cat.category_cdf, key, side="right")
    return np.minimum(idx, len(cat.product_id) - 1)


# ---------------------------------------------------------------------------------------

def simulate(customers: int, start: date, days: int, seed: int, late_rate: float = 0.005,
             params: BehaviourParams = DEFAULT_PARAMS) -> Simulation:
    P = params
    ss = np.random.SeedSequence(seed)
    (r_cat, r_people, r_sess, r_buy, r_msg, r_dev, r_content, r_time, r_clock, r_orders,
     r_traits) = [np.random.default_rng(s) for s in ss.spawn(11)]
    cat = C.build_catalog(r_cat)
    N = int(customers)
    H = days * DAY
    t0 = datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
    t0_ms = int(t0.timestamp() * 1000)
    weekday0 = start.weekday()

    # ------------------------------------------------------------------ people
    rng = r_people
    acq = rng.choice(5, N, p=np.array(P.acq_share) / sum(P.acq_share)).astype(np.int8)
    tz_p = np.array([z[2] for z in C.TIMEZONES])
    tz = rng.choice(len(C.TIMEZONES), N, p=tz_p / tz_p.sum()).astype(np.int8)
    tzoff = np.array([z[1] for z in C.TIMEZONES], dtype=np.float64)[tz]
    cat_w = np.array([c[3] for c in C.CATEGORIES])
    cat_w = cat_w / cat_w.sum()
    fav_cat = rng.choice(C.N_CATEGORIES, N, p=cat_w).astype(np.int16)
    day_w = C.WEEKDAY_WEIGHTS[(weekday0 + np.arange(days)) % 7]
    fv_day = rng.choice(days, N, p=day_w / day_w.sum())
    fv = _diurnal_day_times(rng, fv_day, tzoff)
    fv = np.where((fv < 0) | (fv >= H), (fv_day + rng.random(N)) * DAY, fv)
    fv = np.clip(fv, 0.0, H - 1.0)
    rate = rng.gamma(P.visit_rate_shape, np.array(P.visit_rate)[acq] / P.visit_rate_shape)
    interest_end = np.minimum(fv + rng.exponential(np.array(P.interest_days)[acq]) * DAY, H)
    is_member = rng.random(N) < np.array(P.p_signup)[acq]
    signup_k = rng.geometric(P.signup_session_p, N)
    fav_msg = rng.choice(3, N, p=np.array(P.favourite_channel_p)).astype(np.int8)
    engagement = rng.gamma(2.0, 0.5, N)

    # ------------------------------------------------------------------ base sessions
    rng = r_sess
    n1 = rng.poisson(rate * (interest_end - fv) / DAY)
    n2 = rng.poisson(rate * P.lapsed_visit_factor * (H - interest_end) / DAY)
    p1 = np.repeat(np.arange(N), n1)
    p2 = np.repeat(np.arange(N), n2)
    tb1 = fv[p1] + rng.random(len(p1)) * (interest_end[p1] - fv[p1])
    tb2 = interest_end[p2] + rng.random(len(p2)) * (H - interest_end[p2])
    pb = np.r_[p1, p2]
    tb = np.r_[tb1, tb2]
    tb = _rediurnal(rng, tb, tzoff[pb], fv[pb] + 1800.0, H)
    tb = np.maximum(tb, fv[pb] + 1800.0)
    base_person = np.r_[np.arange(N), pb]
    base_t = np.r_[fv, tb]
    base_kind = np.r_[np.full(N, S_FIRST, np.int8), np.full(len(pb), S_BROWSE, np.int8)]
    o = np.lexsort((base_t, base_person))
    base_person, base_t, base_kind = base_person[o], base_t[o], base_kind[o]
    base_start = np.searchsorted(base_person, np.arange(N))
    n_base = 1 + n1 + n2
    srank = np.minimum(signup_k, n_base) - 1
    signup_sess = base_start + srank
    signup_t = np.where(is_member, base_t[signup_sess], np.inf)
    base_signup = np.zeros(len(base_t), dtype=bool)
    base_signup[signup_sess[is_member]] = True

    # ------------------------------------------------------------------ purchases (BG/NBD)
    rng = r_buy
    is_buyer = is_member & (rng.random(N) < np.array(P.p_buy)[acq])
    at_signup = rng.random(N) < P.p_first_purchase_at_signup
    fp = np.where(at_signup, signup_t,
                  signup_t + 2 * HOUR + rng.exponential(P.first_purchase_delay_days, N) * DAY)
    fp = np.where(at_signup, fp, _rediurnal(rng, np.where(np.isfinite(fp), fp, 0.0), tzoff,
                                            np.where(np.isfinite(signup_t), signup_t, 0) + HOUR, H))
    is_buyer &= fp < H
    at_signup &= is_buyer
    lam = np.minimum(rng.gamma(P.bgnbd_r, 1.0 / P.bgnbd_alpha, N) * np.array(P.lambda_mult)[acq], 1.0)
    ab = np.array(P.dropout_ab)[acq]
    p_drop = rng.beta(ab[:, 0], ab[:, 1])
    max_repeat = rng.geometric(np.clip(p_drop, 1e-6, 1.0)) - 1
    span = np.where(is_buyer, H - fp, 0.0)
    n_arr = np.where(is_buyer, rng.poisson(lam * span / DAY), 0)
    n_rep = np.minimum(n_arr, max_repeat)
    nu = rng.gamma(P.gg_q, 1.0 / P.gg_gamma, N)
    # repeat purchase times: first n_rep of n_arr uniform arrivals on (fp, H)
    rp = np.repeat(np.arange(N), n_arr)
    u = rng.random(len(rp))
    o = np.lexsort((u, rp))
    rp, u = rp[o], u[o]
    keep = _rank_in_group(rp) < n_rep[rp]
    rp, u = rp[keep], u[keep]
    rt = fp[rp] + u * (H - fp[rp])
    rt = _rediurnal(rng, rt, tzoff[rp], fp[rp] + HOUR, H)
    dropped = is_buyer & (n_arr > max_repeat)
    last_purchase = fp.copy()
    if len(rp):
        np.maximum.at(last_purchase, rp, rt)
    churn_t = np.where(is_buyer, np.where(dropped, last_purchase, np.inf),
                       np.where(interest_end < H, interest_end, np.inf))
    # purchase sessions that are not the signup session
    nf = is_buyer & ~at_signup
    pur_person = np.r_[np.flatnonzero(nf), rp]
    pur_t = np.r_[fp[nf], rt]
    # research visits in the days before each purchase
    all_pur_person = np.r_[np.flatnonzero(at_signup), pur_person]
    all_pur_t = np.r_[signup_t[at_signup], pur_t]
    nr = rng.poisson(P.research_sessions_mean, len(pur_person))
    res_person = np.repeat(pur_person, nr)
    res_t = np.repeat(pur_t, nr) - (1800.0 + rng.exponential(1.2 * DAY, len(res_person)))
    ok = res_t > fv[res_person] + 1800.0
    res_person, res_t = res_person[ok], res_t[ok]

    # ------------------------------------------------------------------ traits & consent
    rng = r_traits
    consent0 = rng.random((N, 5)) < np.array(P.consent_p)
    consent1 = consent0.copy()
    change_t = np.full(N, np.inf)
    chg = is_member & (rng.random(N) < P.trait_change_p) & (signup_t + DAY < H)
    change_t[chg] = signup_t[chg] + DAY + rng.random(chg.sum()) * (H - signup_t[chg] - DAY)
    # change kinds: 0 withdraw a consent, 1 grant night consent, 2 new phone, 3 new email
    change_kind = np.full(N, -1, np.int8)
    change_kind[chg] = rng.choice(4, chg.sum(), p=[0.6, 0.15, 0.15, 0.10])
    wd = np.flatnonzero(change_kind == 0)
    wd_col = rng.choice(5, len(wd), p=[0.35, 0.2, 0.15, 0.2, 0.1])
    consent1[wd, wd_col] = False
    consent0[wd, wd_col] = True  # withdrawal of something given at signup
    gr = np.flatnonzero(change_kind == 1)
    consent0[gr, 4] = False
    consent1[gr, 4] = True
    has_dev2 = is_member & (rng.random(N) < P.second_device_p)
    t2 = np.where(has_dev2, signup_t + rng.random(N) * (H - np.where(is_member, signup_t, 0)), np.inf)

    # ------------------------------------------------------------------ CRM campaigns
    rng = r_msg
    mc_t, mc_chan, mc_id, mc_name, mc_night = [], [], [], [], []
    for d in range(days):
        local = date.fromordinal(start.toordinal() + d)
        for wday, hh, mm, ch, name, night in C.CAMPAIGN_CALENDAR:
            if local.weekday() != wday:
                continue
            mc_t.append(d * DAY - 9 * HOUR + hh * HOUR + mm * 60.0)
            mc_chan.append(ch)
            mc_id.append(f"cmp_{local:%Y%m%d}_{C.MSG_CHANNELS[ch]}")
            mc_name.append(f"{name} {local.month}/{local.day}")
            mc_night.append(night)
    mc_t_a = np.array(mc_t)
    mc_chan_a = np.array(mc_chan, dtype=np.int8)
    consent_col = np.array([0, 2, 3])  # email, push, kakao columns of the consent matrix
    members = np.flatnonzero(is_member)
    resp = {k: [] for k in ("person", "camp", "t", "click", "click_t", "follow")}
    for ci in range(len(mc_t)):
        ts, ch = mc_t_a[ci], mc_chan_a[ci]
        if ts < 0 or ts >= H:
            continue
        m = members[signup_t[members] + DAY < ts]
        if len(m) == 0:
            continue
        v1 = ts > change_t[m]
        cons = np.where(v1, consent1[m, consent_col[ch]], consent0[m, consent_col[ch]])
        if mc_night[ci]:
            cons &= np.where(v1, consent1[m, 4], consent0[m, 4])
        m = m[cons]
        fav = fav_msg[m] == ch
        p = P.msg_base[ch] * np.where(fav, P.msg_favourite_mult, 1.0) * engagement[m]
        p *= np.where(ts < churn_t[m], 1.0, P.msg_churned_mult)
        hit = rng.random(len(m)) < np.minimum(p, 0.95)
        m, fav = m[hit], fav[hit]
        n = len(m)
        if n == 0:
            continue
        t_resp = ts + np.minimum(rng.lognormal(np.log(P.msg_delay_median_min[ch] * 60.0), 1.2, n),
                                 3 * DAY)
        if ch == 0:
            click = rng.random(n) < np.where(fav, P.email_click_p_favourite, P.email_click_p)
            click_t = t_resp + np.minimum(rng.lognormal(np.log(40.0), 1.0, n), 3600.0)
        else:
            click = np.zeros(n, dtype=bool)
            click_t = t_resp.copy()
        lead = (click if ch == 0 else np.ones(n, bool)) & (rng.random(n) < P.msg_session_p)
        resp["person"].append(m)
        resp["camp"].append(np.full(n, ci, np.int32))
        resp["t"].append(t_resp)
        resp["click"].append(click)
        resp["click_t"].append(click_t)
        resp["follow"].append(lead)
    resp = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in resp.items()}
    r_person = resp["person"].astype(np.int64)
    r_camp = resp["camp"].astype(np.int32)
    r_t, r_click_t = resp["t"].astype(float), resp["click_t"].astype(float)
    r_click, r_follow = resp["click"].astype(bool), resp["follow"].astype(bool)
    keep = r_t < H
    r_person, r_camp, r_t, r_click_t = r_person[keep], r_camp[keep], r_t[keep], r_click_t[keep]
    r_click, r_follow = r_click[keep], r_follow[keep]

    # ------------------------------------------------------------------ channel of each session
    rng = r_sess
    own = np.eye(5)[acq] * P.own_channel_weight

    def mix_group(persons, base_mix, bonus_price=False):
        probs = np.tile(np.array(base_mix, dtype=float), (len(persons), 1)) + own[persons]
        if bonus_price:
            probs[:, 2] += 0.25 * (acq[persons] == 2)
        return _choice_rows(rng, probs).astype(np.int8)

    base_group = np.where(base_kind == S_FIRST, acq[base_person], mix_group(base_person, P.return_mix))
    res_group = mix_group(res_person, P.return_mix)
    pur_group = mix_group(pur_person, P.purchase_mix, bonus_price=True)
    base_sub = _pick_sub(rng, base_group)
    res_sub = _pick_sub(rng, res_group)
    pur_sub = _pick_sub(rng, pur_group)
    # purchase visits through the favourite CRM channel (with a click on the latest campaign)
    pur_msg_camp = np.full(len(pur_person), -1, np.int32)
    cand = rng.random(len(pur_person)) < P.message_purchase_p
    fch = fav_msg[pur_person]
    v1 = pur_t > change_t[pur_person]
    cons = np.where(v1, consent1[pur_person, consent_col[fch]], consent0[pur_person, consent_col[fch]])
    cand &= cons
    for ch in range(3):
        idx = np.flatnonzero(cand & (fch == ch))
        camps = np.flatnonzero(mc_chan_a == ch)
        if len(idx) == 0 or len(camps) == 0:
            continue
        j = np.searchsorted(mc_t_a[camps], pur_t[idx] - 600.0) - 1
        ok = j >= 0
        idx, j = idx[ok], j[ok]
        cj = camps[j]
        ok = (mc_t_a[cj] > signup_t[pur_person[idx]] + DAY) & (pur_t[idx] - mc_t_a[cj] < 4 * DAY)
        idx, cj = idx[ok], cj[ok]
        pur_msg_camp[idx] = cj
        pur_sub[idx] = C.MSG_SUB[ch]
    # message-driven visits
    fl = np.flatnonzero(r_follow)
    msg_person = r_person[fl]
    msg_t = np.where(r_click[fl] | (mc_chan_a[r_camp[fl]] != 0), r_click_t[fl], r_t[fl])
    msg_t = msg_t + 3.0 + rng.random(len(fl)) * 22.0
    msg_sub = np.array(C.MSG_SUB, dtype=np.int8)[mc_chan_a[r_camp[fl]]]

    # ------------------------------------------------------------------ all sessions
    s_person = np.r_[base_person, pur_person, res_person, msg_person].astype(np.int64)
    s_t = np.r_[base_t, pur_t, res_t, msg_t]
    s_kind = np.r_[base_kind, np.full(len(pur_person), S_PURCHASE, np.int8),
                   np.full(len(res_person), S_RESEARCH, np.int8),
                   np.full(len(msg_person), S_MESSAGE, np.int8)]
    s_sub = np.r_[base_sub, pur_sub, res_sub, msg_sub].astype(np.int8)
    s_signup = np.r_[base_signup, np.zeros(len(s_t) - len(base_t), bool)]
    s_purchase = np.r_[base_signup & at_signup[base_person], np.ones(len(pur_person), bool),
                       np.zeros(len(res_person) + len(msg_person), bool)]
    s_msgcamp = np.r_[np.full(len(base_t), -1, np.int32), pur_msg_camp,
                      np.full(len(res_person), -1, np.int32), r_camp[fl]]
    # responses that lead to a visit point at their session (position before sorting)
    r_session = np.full(len(r_person), -1, np.int64)
    r_session[fl] = len(base_t) + len(pur_person) + len(res_person) + np.arange(len(fl))
    # purchase visits through a CRM channel get a synthetic response (click) too
    pm = np.flatnonzero(pur_msg_camp >= 0)
    r_person = np.r_[r_person, pur_person[pm]]
    r_camp = np.r_[r_camp, pur_msg_camp[pm]]
    r_t = np.r_[r_t, pur_t[pm]]
    r_click_t = np.r_[r_click_t, pur_t[pm]]
    r_click = np.r_[r_click, np.ones(len(pm), bool)]
    r_follow = np.r_[r_follow, np.ones(len(pm), bool)]
    r_session = np.r_[r_session, len(base_t) + pm]

    o = np.lexsort((s_t, s_person))
    inv = np.empty_like(o)
    inv[o] = np.arange(len(o))
    r_session = np.where(r_session >= 0, inv[np.maximum(r_session, 0)], -1)
    s_person, s_t, s_kind, s_sub = s_person[o], s_t[o], s_kind[o], s_sub[o]
    s_signup, s_purchase, s_msgcamp = s_signup[o], s_purchase[o], s_msgcamp[o]
    S = len(s_t)
    s_group = C.SUB_GROUP[s_sub]

    # ------------------------------------------------------------------ devices & identity
    rng = r_dev
    s_dev = (has_dev2[s_person] & (s_t > t2[s_person]) & ~s_signup
             & (rng.random(S) < P.second_device_session_p)).astype(np.int8)
    s_full = np.zeros(S, dtype=bool)
    s_login = np.zeros(S, dtype=bool)
    d0 = s_dev == 0
    s_full[d0] = is_member[s_person[d0]] & (s_t[d0] > signup_t[s_person[d0]])
    i1 = np.flatnonzero(s_dev == 1)
    if len(i1):
        p1_ = s_person[i1]
        rk = _rank_in_group(p1_)
        starts = _group_starts(p1_)
        first_pur = np.minimum.reduceat(np.where(s_purchase[i1], rk, 1 << 30), starts)
        L = np.minimum(1, first_pur)
        Lr = np.repeat(L, np.diff(np.r_[starts, len(i1)]))
        s_full[i1] = rk > Lr
        s_login[i1] = rk == Lr
    cand = np.flatnonzero(s_full & (s_t > change_t[s_person]))
    s_reid = np.zeros(S, dtype=bool)
    if len(cand):
        _, first = np.unique(s_person[cand], return_index=True)
        s_reid[cand[first]] = True
    s_ident = s_full | s_signup | s_login  # member known at some point of the session

    # ------------------------------------------------------------------ session content
    rng = r_content
    g = s_group
    is_pur = s_purchase
    is_res = s_kind == S_RESEARCH
    # landing page kind
    lp_kind = _choice_rows(rng, np.array(P.landing)[g]).astype(np.int8)
    lp_kind[(lp_kind == L_PROMO) & s_full] = L_CATEGORY
    # focus category
    rnd_cat = rng.choice(C.N_CATEGORIES, S, p=cat_w).astype(np.int16)
    focus = np.where(rng.random(S) < P.favourite_category_p, fav_cat[s_person], rnd_cat)
    # funnel depth for non-purchase sessions
    bounce = rng.random(S) < np.where(is_res, P.research_bounce, np.array(P.p_bounce)[g])
    lpp = lp_kind == L_PRODUCT
    n_pv = np.where(bounce, lpp.astype(np.int64), 1 + rng.poisson(np.array(P.extra_views)[g] * (1 + is_res)))
    add = (n_pv > 0) & ~bounce & (rng.random(S) < np.where(is_res, P.research_add, np.array(P.p_add)[g]))
    n_add = add * (1 + (rng.random(S) < 0.25))
    co = add & (rng.random(S) < np.where(is_res, P.research_checkout, np.array(P.p_checkout)[g]))
    n_search = (~bounce & (rng.random(S) < np.array(P.p_search)[g])) * (1 + (rng.random(S) < 0.2))
    # purchase sessions: cart = order lines chosen to match a Gamma-Gamma spend target
    k_items = rng.choice([1, 2, 3], S, p=[0.6, 0.28, 0.12])
    pur_idx = np.flatnonzero(is_pur)
    target = np.zeros(S)
    target[pur_idx] = (rng.gamma(P.gg_p, 1.0 / nu[s_person[pur_idx]])
                       * np.array(P.spend_mult)[g[pur_idx]])
    n_add = np.where(is_pur, k_items, n_add)
    co = co | is_pur
    n_pv = np.where(is_pur, k_items + rng.poisson(0.8, S), np.maximum(n_pv, n_add))
    n_search = np.where(is_pur, (rng.random(S) < np.array(P.p_search)[g]).astype(np.int64), n_search)
    # cart items (flat)
    item_off = np.r_[0, np.cumsum(n_add)]
    I = int(item_off[-1])
    it_sess = np.repeat(np.arange(S), n_add)
    it_j = np.arange(I) - item_off[it_sess]
    it_pur = is_pur[it_sess]
    it_prod = _sample_in_category(rng, cat, focus[it_sess])
    it_qty = np.where(rng.random(I) < 0.1, 2, 1)
    # purchase lines by price
    pi = np.flatnonzero(it_pur)
    item_target = target[it_sess[pi]] / k_items[it_sess[pi]] * rng.lognormal(0.0, 0.35, len(pi))
    pos = np.searchsorted(cat.sorted_prices, item_target) + rng.integers(-2, 3, len(pi))
    pos = np.clip(pos, 0, len(cat.sorted_prices) - 1)
    it_prod[pi] = cat.price_order[pos]
    price = cat.product_price[it_prod[pi]]
    it_qty[pi] = np.clip(np.rint(item_target / price), 1, 5)
    it_price = cat.product_price[it_prod]
    first_item = np.where(n_add > 0, it_prod[np.minimum(item_off[:-1], max(I - 1, 0))], -1) if I else np.full(S, -1)
    focus = np.where(is_pur & (first_item >= 0), cat.product_category[np.maximum(first_item, 0)], focus)
    cart_value = np.bincount(it_sess, weights=it_price * it_qty, minlength=S).astype(np.int64)
    cart_qty = np.bincount(it_sess, weights=it_qty, minlength=S).astype(np.int64)
    # viewed products (flat): extras from the focus category, then the cart items
    view_off = np.r_[0, np.cumsum(n_pv)]
    V = int(view_off[-1])
    vw_sess = np.repeat(np.arange(S), n_pv)
    vw_j = np.arange(V) - view_off[vw_sess]
    n_extra = n_pv - n_add
    vw_is_item = vw_j >= n_extra[vw_sess]
    vw_prod = _sample_in_category(rng, cat, focus[vw_sess])
    ii = np.flatnonzero(vw_is_item)
    vw_prod[ii] = it_prod[item_off[vw_sess[ii]] + vw_j[ii] - n_extra[vw_sess[ii]]]
    # landing page key
    landing_key = np.select(
        [lp_kind == L_HOME, lp_kind == L_CATEGORY, lp_kind == L_PRODUCT],
        [np.full(S, C.P_HOME), cat.p_category0 + focus,
         cat.p_product0 + vw_prod[np.minimum(view_off[:-1], max(V - 1, 0))] if V else np.zeros(S)],
        cat.p_promo_signup).astype(np.int64)
    # signup / promo pages
    anon_visit = ~s_full & ~s_signup & ~s_login
    promo_visit = (anon_visit & (rng.random(S) < np.array(P.p_promo_visit)[g])
                   & (lp_kind != L_PROMO))
    signup_via_promo = s_signup & ((lp_kind == L_PROMO) | (rng.random(S) < 0.7))
    promo_page = (promo_visit | s_signup) & ~(s_signup & (lp_kind == L_PROMO))
    promo_key = np.where(s_signup & ~signup_via_promo, cat.p_signup, cat.p_promo_signup)
    b2 = s_login | s_reid
    # UTM campaign of the session
    utm: list[tuple[str, str, str]] = []
    utm_index: dict[tuple[str, str, str], int] = {}

    def utm_code(src, med, name):
        key = (src, med, name)
        if key not in utm_index:
            utm_index[key] = len(utm)
            utm.append(key)
        return utm_index[key]

    s_camp = np.full(S, -1, np.int32)
    for sub, (grp, src, med, _ref, _w) in enumerate(C.SUBCHANNELS):
        if src is None:
            continue
        m = np.flatnonzero(s_sub == sub)
        if len(m) == 0:
            continue
        if grp in (C.G_EMAIL, C.G_KAKAO, C.G_PUSH):
            mcs = s_msgcamp[m]
            codes = np.array([utm_code(src, med, mc_id[c]) if c >= 0 else -1 for c in range(len(mc_id))]
                             + [-1], dtype=np.int32)
            s_camp[m] = codes[np.where(mcs >= 0, mcs, len(mc_id))]
        else:
            names = C.UTM_CAMPAIGN_NAMES[src]
            codes = np.array([utm_code(src, med, nm) for nm in names], dtype=np.int32)
            s_camp[m] = codes[rng.integers(0, len(names), len(m))]

    # ------------------------------------------------------------------ expand to events
    # Every session becomes a fixed sequence of blocks; events are generated in chunks of
    # whole sessions so that temporaries stay small (no page-fault storm at 10M events).
    sizes = np.stack([np.ones(S, np.int64), promo_page + 3 * s_signup, b2.astype(np.int64),
                      2 * n_search, 2 * n_pv - lpp, n_add + (n_add > 0), 2 * co,
                      2 * is_pur], axis=1).astype(np.int64)
    cum_ext = np.hstack([np.zeros((S, 1), np.int64), np.cumsum(sizes, axis=1)])
    n_ev = cum_ext[:, -1]
    E = int(n_ev.sum())
    s_first = np.r_[0, np.cumsum(n_ev)[:-1]].astype(np.int64)
    from_pos = np.where(s_full, 0, np.where(s_signup, cum_ext[:, 1] + promo_page,
                                            np.where(s_login, cum_ext[:, 2], 1 << 30)))
    ref_landing = cat.ref_external0 + s_sub.astype(np.int64)
    sess_order = np.full(S, -1, np.int64)
    sess_order[pur_idx] = np.arange(len(pur_idx))
    med = np.array([0.0, 25, 0.6, 9, 45, 0.25, 12, 30, 1.5, 18, 75, 20])
    sig = np.array([0.0, 0.9, 0.4, 0.6, 0.5, 0.3, 0.6, 0.8, 0.4, 0.6, 0.5, 0.8])
    cuts = np.unique(np.r_[0, np.searchsorted(s_first, np.arange(EV_CHUNK, E, EV_CHUNK)), S])
    parts: dict[str, list] = {k: [] for k in ("kind", "page", "ref", "campaign", "product", "qty",
                                                "query", "ident", "off", "signup_ident")}
    dur = np.zeros(S)
    for s0, s1 in zip(cuts[:-1], cuts[1:]):
        e0 = int(s_first[s0])
        ne = n_ev[s0:s1]
        En = int(ne.sum())
        es = np.repeat(np.arange(s0, s1), ne)
        first_l = s_first[s0:s1] - e0  # local index of each session's first event
        pos = np.arange(En) - first_l[es - s0]
        ce = cum_ext[es]
        blk = np.zeros(En, np.int8)
        for k in range(1, 8):
            blk += pos >= ce[:, k]
        sub_ = pos - ce[np.arange(En), blk]
        kind = np.full(En, K_PAGE, np.int8)
        gapc = np.zeros(En, np.int8)
        page_key = np.full(En, -1, np.int64)
        product = np.full(En, -1, np.int32)
        qty = np.zeros(En, np.int16)
        query = np.full(En, -1, np.int32)
        # block 0: landing page
        b = blk == 0
        page_key[b] = landing_key[es[b]]
        # block 1: promo/signup page, identify, alias, signed up
        b = np.flatnonzero(blk == 1)
        sp = sub_[b] - promo_page[es[b]]
        kind[b] = np.select([sp < 0, sp == 0, sp == 1], [K_PAGE, K_IDENTIFY, K_ALIAS], K_SIGNED_UP)
        gapc[b] = np.select([sp < 0, sp == 0], [11, 4], 5)
        page_key[b[sp < 0]] = promo_key[es[b[sp < 0]]]
        signup_ident = b[sp == 0] + e0
        # block 2: login / re-identify
        b = blk == 2
        kind[b] = K_IDENTIFY
        gapc[b] = 6
        # block 3: search track + search results page
        b = np.flatnonzero(blk == 3)
        fc = focus[es[b]]
        q = cat.cat_first_query[fc] + r_content.integers(0, 1 << 30, len(b)) % cat.cat_n_queries[fc]
        odd = (sub_[b] % 2) == 1
        q[odd] = q[np.maximum(np.flatnonzero(odd) - 1, 0)]  # the page shows the query just typed
        query[b] = q
        kind[b] = np.where(odd, K_PAGE, K_SEARCH)
        gapc[b] = np.where(odd, 2, 3)
        page_key[b[odd]] = cat.p_search0 + q[odd]
        # block 4: product page + Product Viewed
        b = np.flatnonzero(blk == 4)
        s2 = sub_[b] + lpp[es[b]]
        prod = vw_prod[view_off[es[b]] + s2 // 2]
        ev_page = (s2 % 2) == 0
        product[b] = prod
        kind[b] = np.where(ev_page, K_PAGE, K_PV)
        gapc[b] = np.where(ev_page, 1, 2)
        page_key[b[ev_page]] = cat.p_product0 + prod[ev_page]
        # block 5: Product Added x n, cart page
        b = np.flatnonzero(blk == 5)
        isadd = sub_[b] < n_add[es[b]]
        ba = b[isadd]
        it = item_off[es[ba]] + sub_[ba]
        product[ba] = it_prod[it]
        qty[ba] = it_qty[it]
        kind[ba] = K_ADD
        gapc[ba] = 7
        gapc[b[~isadd]] = 8
        page_key[b[~isadd]] = cat.p_cart
        # block 6: checkout page + Checkout Started
        b = np.flatnonzero(blk == 6)
        first = sub_[b] == 0
        page_key[b[first]] = cat.p_checkout
        gapc[b[first]] = 9
        kind[b[~first]] = K_CHECKOUT
        gapc[b[~first]] = 2
        # block 7: Order Completed + order complete page
        b = np.flatnonzero(blk == 7)
        first = sub_[b] == 0
        kind[b[first]] = K_ORDER
        gapc[b[first]] = 10
        page_key[b[~first]] = cat.p_order_complete
        gapc[b[~first]] = 2
        # current page (forward fill inside the session) and its referrer
        last_page = np.maximum.accumulate(np.where(kind == K_PAGE, np.arange(En), 0))
        prev_page = np.r_[0, last_page[:-1]]
        ref_of_page = np.where(pos == 0, ref_landing[es], page_key[prev_page])
        on_landing = last_page == first_l[es - s0]
        # time offsets inside sessions
        gap = np.minimum(med[gapc] * np.exp(sig[gapc] * r_time.standard_normal(En)), 900.0)
        gap[first_l] = 0.0
        cs = np.cumsum(gap)
        off = cs - cs[first_l][es - s0]
        dur[s0:s1] = off[np.r_[first_l[1:], En] - 1]
        parts["kind"].append(kind)
        parts["page"].append(page_key[last_page].astype(np.int32))
        parts["ref"].append(ref_of_page[last_page].astype(np.int32))
        parts["campaign"].append(np.where(on_landing, s_camp[es], -1).astype(np.int32))
        parts["product"].append(product)
        parts["qty"].append(qty)
        parts["query"].append(query)
        parts["ident"].append(pos >= from_pos[es])
        parts["off"].append(off)
        parts["signup_ident"].append(signup_ident)
    web = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in parts.items()}
    del parts
    es = np.repeat(np.arange(S, dtype=np.int32), n_ev)
    # keep sessions of one person apart (order is preserved)
    rng = r_time
    start_t = s_t.copy()
    end_t = start_t + dur
    jitter = rng.random(S) * 1800.0
    same = s_person[1:] == s_person[:-1]
    for _ in range(10_000):
        bad = np.flatnonzero(same & (start_t[1:] < end_t[:-1] + MIN_SESSION_GAP)) + 1
        if len(bad) == 0:
            break
        start_t[bad] = end_t[bad - 1] + MIN_SESSION_GAP + jitter[bad]
        end_t[bad] = start_t[bad] + dur[bad]
    # account creation time = the signup identify call
    si = web["signup_ident"].astype(np.int64)
    created_t = np.zeros(N)
    created_t[s_person[es[si]]] = start_t[es[si]] + web["off"][si]

    # ------------------------------------------------------------------ message events
    rng = r_msg
    rn = len(r_person)
    ch_r = mc_chan_a[r_camp] if rn else np.zeros(0, np.int8)
    has_s = r_session >= 0
    lead_click = np.where(has_s, start_t[np.maximum(r_session, 0)] - (3.0 + rng.random(rn) * 22.0),
                          r_click_t)
    open_t = np.where(has_s & (ch_r == 0) & r_click,
                      lead_click - np.minimum(rng.lognormal(np.log(40.0), 1.0, rn), 3600.0),
                      np.where(has_s, lead_click, r_t))
    # email: opened always, clicked if click; push: opened; kakao: clicked
    m_person = np.r_[r_person, r_person[(ch_r == 0) & r_click]]
    m_t = np.r_[open_t, lead_click[(ch_r == 0) & r_click]]
    m_kind = np.r_[np.select([ch_r == 0, ch_r == 1], [K_EMAIL_OPENED, K_PUSH_OPENED], K_KAKAO_CLICKED),
                   np.full(int(((ch_r == 0) & r_click).sum()), K_EMAIL_CLICKED)].astype(np.int8)
    m_camp = np.r_[r_camp, r_camp[(ch_r == 0) & r_click]]
    M = len(m_person)

    # ------------------------------------------------------------------ devices and clocks
    rng = r_clock
    nd = 2 * N
    dt0 = rng.choice(3, N, p=np.array(P.device_type_p))
    dt1 = np.where(dt0 == 0, 1, np.where(rng.random(N) < 0.7, 0, 2))
    dev_type = np.empty(nd, np.int8)
    dev_type[0::2], dev_type[1::2] = dt0, dt1
    dev_tz = np.repeat(tz, 2)
    dev_kst = (dev_tz == 0) & (rng.random(nd) < P.kst_offset_format_p)
    dev_nosent = rng.random(nd) < P.no_sent_at_device_p
    dev_skewed = ~dev_nosent & (rng.random(nd) < P.skewed_device_p)
    mag = np.select([rng.random(nd) < 0.5, rng.random(nd) < 0.8],
                    [rng.uniform(2, 59, nd) * 60, rng.uniform(1, 12, nd) * HOUR],
                    rng.uniform(20, 30, nd) * HOUR)
    dev_skew = np.where(dev_skewed, np.where(rng.random(nd) < 0.5, -1, 1) * np.rint(mag), 0.0)
    change_ms = t0_ms + np.rint(np.where(np.isfinite(change_t), change_t, 1e12) * 1000.0).astype(np.int64)

    def ms(x):
        return t0_ms + np.rint(x * 1000.0).astype(np.int64)

    n_all = E + M
    ev = {
        "kind": np.empty(n_all, np.int8), "person": np.empty(n_all, np.int32),
        "device": np.empty(n_all, np.int32), "ident": np.empty(n_all, bool),
        "true_ms": np.empty(n_all, np.int64), "ts_ms": np.empty(n_all, np.int64),
        "sent_ms": np.empty(n_all, np.int64), "recv_ms": np.empty(n_all, np.int64),
        "kst": np.empty(n_all, bool), "page": np.empty(n_all, np.int32),
        "ref": np.empty(n_all, np.int32), "campaign": np.empty(n_all, np.int32),
        "dev_type": np.empty(n_all, np.int8), "tz": np.empty(n_all, np.int8),
        "product": np.empty(n_all, np.int32), "qty": np.empty(n_all, np.int16),
        "query": np.empty(n_all, np.int32), "order": np.empty(n_all, np.int32),
        "session": np.empty(n_all, np.int32), "msg_campaign": np.empty(n_all, np.int32),
        "late": np.empty(n_all, bool), "skewed": np.empty(n_all, bool),
        "traits_v1": np.empty(n_all, bool), "cart_value": np.empty(n_all, np.int64),
        "cart_qty": np.empty(n_all, np.int32), "signup_promo": np.empty(n_all, bool),
    }
    for k in ("kind", "page", "ref", "campaign", "product", "qty", "query", "ident"):
        ev[k][:E] = web[k]
    for e0 in range(0, E, EV_CHUNK):
        e1 = min(E, e0 + EV_CHUNK)
        sl = slice(e0, e1)
        n = e1 - e0
        s = es[sl]
        p = s_person[s]
        dev = p * 2 + s_dev[s]
        true_t = start_t[s] + web["off"][sl]
        dtype_e = dev_type[dev]
        send = np.where(dtype_e == 1, np.minimum(rng.lognormal(np.log(1.5), 1.0, n), 60.0),
                        np.minimum(rng.lognormal(np.log(0.25), 0.6, n), 10.0))
        net = rng.uniform(0.02, 0.6, n)
        has_sent = ~dev_nosent[dev]
        late = has_sent & (rng.random(n) < late_rate)
        lag_days = rng.integers(1, 4, n)
        late_recv = (np.floor(true_t / DAY) + lag_days) * DAY + rng.random(n) * (DAY - 1.0)
        recv = np.where(late, late_recv, true_t + send + net)
        skew = np.where(has_sent, dev_skew[dev], 0.0)
        kind = web["kind"][sl]
        ev["person"][sl] = p
        ev["device"][sl] = dev
        t_ms = ms(true_t)
        ev["true_ms"][sl] = t_ms
        ev["ts_ms"][sl] = ms(true_t + skew)
        ev["sent_ms"][sl] = np.where(has_sent, ms(recv - net + skew), -1)
        ev["recv_ms"][sl] = ms(recv)
        ev["kst"][sl] = dev_kst[dev]
        ev["dev_type"][sl] = dtype_e
        ev["tz"][sl] = tz[p]
        ev["order"][sl] = np.where(kind == K_ORDER, sess_order[s], -1)
        ev["session"][sl] = s
        ev["msg_campaign"][sl] = -1
        ev["late"][sl] = late
        ev["skewed"][sl] = skew != 0
        ev["traits_v1"][sl] = t_ms > change_ms[p]
        ev["cart_value"][sl] = np.where(kind == K_CHECKOUT, cart_value[s], 0)
        ev["cart_qty"][sl] = np.where(kind == K_CHECKOUT, cart_qty[s], 0)
        ev["signup_promo"][sl] = signup_via_promo[s]
    # message events (cloud source: no sentAt, no anonymousId, no context)
    m = slice(E, n_all)
    m_ms = ms(m_t)
    for k, v in (("kind", m_kind), ("person", m_person), ("device", -1), ("ident", True),
                 ("true_ms", m_ms), ("ts_ms", m_ms), ("sent_ms", -1),
                 ("recv_ms", ms(m_t + rng.uniform(0.5, 20.0, M))), ("kst", False), ("page", -1),
                 ("ref", -1), ("campaign", -1), ("dev_type", -1), ("tz", tz[m_person]),
                 ("product", -1), ("qty", 0), ("query", -1), ("order", -1), ("session", -1),
                 ("msg_campaign", m_camp), ("late", False), ("skewed", False),
                 ("traits_v1", False), ("cart_value", 0), ("cart_qty", 0), ("signup_promo", False)):
        ev[k][m] = v
    landing_order = np.argsort(ev["recv_ms"], kind="stable")  # landing day is monotone in recv_ms
    landing_day = (ev["recv_ms"][landing_order] - t0_ms) // 86_400_000

    # ------------------------------------------------------------------ orders
    rng = r_orders
    kind = web["kind"]
    oe = np.flatnonzero(kind == K_ORDER)
    o_sess = es[oe]
    n_completed = len(pur_idx)
    comp_t = np.zeros(n_completed)
    comp_t[sess_order[o_sess]] = start_t[o_sess] + web["off"][oe]
    ce = np.flatnonzero((kind == K_CHECKOUT) & web["ident"] & ~is_pur[es])
    ce = ce[rng.random(len(ce)) < P.cancel_p]
    canc_t = start_t[es[ce]] + web["off"][ce] + rng.uniform(30.0, 300.0, len(ce))
    o_t = np.r_[comp_t, canc_t]
    o_status = np.r_[np.zeros(n_completed, np.int8), np.full(len(ce), 1, np.int8)]  # 0 completed, 1 cancelled
    o_person = np.r_[s_person[pur_idx], s_person[es[ce]]]
    o_revenue = np.r_[cart_value[pur_idx], cart_value[es[ce]]]
    o_items = np.r_[cart_qty[pur_idx], cart_qty[es[ce]]]
    o_ms = t0_ms + np.floor(o_t * 1000.0).astype(np.int64)
    o_ms -= o_ms % 1000  # the shop's export has second precision
    seq = np.empty(len(o_t), np.int64)
    seq[np.lexsort((np.arange(len(o_t)), o_ms))] = np.arange(1, len(o_t) + 1)
    orders = {"ordered_ms": o_ms, "status": o_status, "person": o_person, "revenue": o_revenue,
              "item_count": o_items, "seq": seq}
    ip = np.flatnonzero(it_pur)
    order_items = {"order": sess_order[it_sess[ip]], "product": it_prod[ip], "qty": it_qty[ip],
                   "price": it_price[ip]}
    ref = np.flatnonzero(rng.random(n_completed) < P.refund_p)
    ref_day = np.floor(comp_t[ref] / DAY).astype(np.int64) + rng.integers(1, 15, len(ref))
    ok = ref_day < days
    refunds = {"order": ref[ok], "day": ref_day[ok]}

    # ------------------------------------------------------------------ identity traits
    rng = r_traits
    sw = np.array([s[2] for s in C.SURNAMES])
    surname = rng.choice(len(C.SURNAMES), N, p=sw / sw.sum())
    given = rng.integers(0, len(C.GIVEN_NAMES), N)
    dw = np.array([d[1] for d in C.EMAIL_DOMAINS])
    dom0 = rng.choice(len(dw), N, p=dw / dw.sum())
    dom1 = rng.choice(len(dw), N, p=dw / dw.sum())
    style0 = rng.integers(0, 3, N)
    style1 = rng.integers(0, 3, N)
    perm = rng.permutation(N) + 11
    mult = 48_271
    off_u = int(rng.integers(0, 10**8))
    off_p = int(rng.integers(0, 10**8))
    people = {
        "is_member": is_member, "is_buyer": is_buyer, "acq": acq, "tz": tz,
        "surname": surname, "given": given,
        "email_domain": np.stack([dom0, np.where(change_kind == 3, dom1, dom0)]),
        "email_style": np.stack([style0, np.where(change_kind == 3, style1, style0)]),
        "email_num": np.stack([perm, np.where(change_kind == 3, perm + N, perm)]),
        "email_messy": rng.random(N) < 0.05,
        # 010-XXXX-YYYY with XXXX in 2000..9999, unique per person (and per changed number)
        "phone_num": np.stack([_phone(np.arange(N), off_p),
                               np.where(change_kind == 2, _phone(np.arange(N) + N, off_p),
                                        _phone(np.arange(N), off_p))]),
        "phone_fmt": np.stack([rng.choice(5, N, p=[0.5, 0.25, 0.1, 0.08, 0.07])] * 2),
        "consent": np.stack([consent0, consent1]),
        "signup_ms": np.where(is_member, t0_ms + np.floor(created_t * 1000), 0).astype(np.int64),
        "user_num": (np.arange(N, dtype=np.int64) * mult + off_u) % 10**8,
        "signup_method": rng.choice(len(C.SIGNUP_METHODS), N, p=C.SIGNUP_METHOD_P),
        "change_kind": change_kind,
        "fav_msg": fav_msg, "fav_cat": fav_cat,
    }
    pf = people["phone_fmt"]
    pf[1] = np.where(change_kind == 2, rng.choice(5, N, p=[0.5, 0.25, 0.1, 0.08, 0.07]), pf[0])

    stats = {
        "sessions": S,
        "web_events": E,
        "message_events": M,
        "late_events": int(ev["late"].sum()),
        "skewed_events": int(ev["skewed"].sum()),
        "events_without_sent_at": int((ev["sent_ms"] < 0).sum()),
        "second_device_members": int((has_dev2 & is_member).sum()),
        "trait_changes": int((change_kind >= 0).sum()),
    }
    return Simulation(
        start=start, days=days, t0_ms=t0_ms, customers=N, members=int(is_member.sum()),
        buyers=int(is_buyer.sum()), sessions=S, ev=ev, landing_order=landing_order,
        landing_day=landing_day, orders=orders, order_items=order_items,
        refunds=refunds, people=people,
        msg_campaigns={"id": mc_id, "name": mc_name, "channel": [C.MSG_CHANNELS[c] for c in mc_chan]},
        utm_campaigns=utm, catalog=cat, seed=seed, stats=stats,
    )
