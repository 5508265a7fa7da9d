"""Campaign results: each variant against the holdout, the sample-ratio check and the next allocation.

Reads the dbt marts ``marts.fct_campaign_arm_results`` (per campaign × arm: exposures — intent to
treat, exposure = assignment — conversions in the attribution window, revenue with its standard
deviation) and ``marts.fct_campaign_allocation_rounds`` (the intended split of every round and its
exposures). Semantics: /work/shared/SEMANTICS.md, "Experiments".

* Per arm: conversion rate with a Wilson 95% interval, revenue per exposed customer with a Student t
  95% interval.
* Each variant vs the holdout (the control): absolute difference with a Welch interval, relative uplift
  with the delta method, for the conversion rate and for revenue per customer; P(variant beats the
  holdout) and P(arm is best) from Beta(1 + conversions, 1 + failures) posterior draws (conversion).
* Sample-ratio mismatch: chi-squared of exposures per arm (holdout included) against the intended
  counts Σ over rounds of round exposures × the arm's share in the round (holdout: holdout_share;
  variant v: (1 − holdout_share) × weight v) — for a fixed split that is simply the split. Flagged at
  p < 0.001: assignment or logging is broken and no effect above can be trusted.
* :func:`next_allocation`: Thompson-sampling weights of the variants (floor, minimum exposures) from
  their exposures and conversions; the holdout share never changes.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats as scipy_stats

from activations.experiments.assignment import HOLDOUT_ARM
from activations.experiments.bandit import DEFAULT_FLOOR, DEFAULT_MIN_EXPOSURES, thompson_weights
from activations.experiments.statistics import (
    DEFAULT_DRAWS,
    SRM_P_VALUE_THRESHOLD,
    Effect,
    SampleRatioCheck,
    bandit_intended_weights,
    probability_best,
    probability_to_beat_control,
    proportion_summary,
    relative_uplift_delta,
    welch_difference,
)
from activations.experiments.statistics import sample_ratio_mismatch as _chi_squared_srm

ARM_RESULTS_TABLE = "marts.fct_campaign_arm_results"
ROUNDS_TABLE = "marts.fct_campaign_allocation_rounds"
CONFIDENCE = 0.95
METRICS = ("conversion_rate", "revenue_per_customer")


class CampaignNotFound(LookupError):
    """The campaign has no rows in marts.fct_campaign_arm_results (not run, or dbt not built since)."""


@dataclass(frozen=True)
class Interval:
    estimate: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class ArmResult:
    arm: str
    exposed: int
    sent: int
    delivered: int
    opened: int
    clicked: int
    converted: int
    conversions: int
    revenue: float
    revenue_stddev: float | None
    conversion_rate: Interval
    revenue_per_customer: Interval
    intended_share: float | None  # share of exposures the allocation intended (SRM expectation)
    observed_share: float
    probability_best: float | None  # P(highest conversion rate among all arms, holdout included)

    @property
    def is_holdout(self) -> bool:
        return self.arm == HOLDOUT_ARM

    def summary(self, metric: str) -> tuple[float, float, float]:
        """(n, mean, sample variance) of the metric over exposed customers."""
        if metric == "conversion_rate":
            return proportion_summary(self.exposed, self.converted)
        if metric == "revenue_per_customer":
            variance = (self.revenue_stddev or 0.0) ** 2
            return (self.exposed, self.revenue_per_customer.estimate, variance)
        raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")


@dataclass(frozen=True)
class Comparison:
    """One variant against the holdout on one metric."""

    arm: str
    metric: str
    absolute: Effect | None  # μ_variant − μ_holdout, Welch interval
    relative: Effect | None  # μ_variant / μ_holdout − 1, delta-method interval (None when μ_holdout = 0)
    probability_to_beat_control: float | None  # conversion only


@dataclass(frozen=True)
class AllocationRound:
    round: int
    mode: str | None
    holdout_share: float | None
    weights: dict[str, float]
    exposed: int
    decided_at: str | None


class NextAllocation(dict):
    """The next round's variant weights (variant → weight, summing to 1: pass it to `assign` as is),
    with the campaign's holdout share, which never changes, as an attribute."""

    def __init__(self, weights: dict[str, float], holdout_share: float, mode: str = "bandit"):
        super().__init__(weights)
        self.holdout_share = holdout_share
        self.mode = mode

    @property
    def weights(self) -> dict[str, float]:
        return dict(self)

    def arm_shares(self) -> dict[str, float]:
        """Share of all eligible customers per arm, holdout included."""
        return {HOLDOUT_ARM: self.holdout_share,
                **{arm: (1 - self.holdout_share) * weight for arm, weight in self.items()}}


@dataclass(frozen=True)
class CampaignResults:
    campaign: str
    mode: str | None  # fixed | bandit (bandit when any round was), None without allocation rows
    holdout_share: float | None
    goal_event: str
    attribution_days: int
    arms: dict[str, ArmResult]  # holdout first, then the variants
    comparisons: dict[str, dict[str, Comparison]]  # variant → metric → comparison
    srm: SampleRatioCheck | None  # None when the intended split is unknown (see warnings)
    intended_counts: dict[str, float]
    rounds: list[AllocationRound]
    exposed_window_elapsed: int  # customers whose attribution window has ended (outcome final)
    warnings: list[str] = field(default_factory=list)
    confidence: float = CONFIDENCE

    @property
    def variants(self) -> list[str]:
        return [arm for arm in self.arms if arm != HOLDOUT_ARM]

    @property
    def has_holdout(self) -> bool:
        return HOLDOUT_ARM in self.arms

    @property
    def exposed(self) -> int:
        return sum(arm.exposed for arm in self.arms.values())

    @property
    def srm_flagged(self) -> bool:
        return bool(self.srm and self.srm.flagged)

    @property
    def latest_weights(self) -> dict[str, float]:
        with_weights = [r for r in self.rounds if r.weights]
        return dict(with_weights[-1].weights) if with_weights else {}

    def best_arm(self) -> str:
        """The arm with the highest probability to be best (conversion)."""
        return max(self.arms.values(), key=lambda a: (a.probability_best or 0.0, a.conversion_rate.estimate)).arm

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self), default=_json_default))


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)


# ------------------------------------------------------------------------------------------------
# intervals


def wilson_interval(n: int, successes: int, confidence: float = CONFIDENCE) -> Interval:
    """Wilson score interval of a proportion (statsmodels proportion_confint(method='wilson'))."""
    if n <= 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    p = successes / n
    z = scipy_stats.norm.ppf(0.5 + confidence / 2)
    denominator = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(n: int, mean: float, stddev: float | None, confidence: float = CONFIDENCE) -> Interval:
    """Student t interval of a mean: mean ± t(n − 1)·s/√n."""
    if n < 2 or stddev is None or math.isnan(stddev):
        return Interval(mean, float("nan"), float("nan"))
    half = scipy_stats.t.ppf(0.5 + confidence / 2, n - 1) * stddev / math.sqrt(n)
    return Interval(mean, mean - half, mean + half)


# ------------------------------------------------------------------------------------------------
# sample-ratio mismatch


def intended_arm_counts(rounds: list[AllocationRound]) -> dict[str, float]:
    """Σ over rounds of round exposures × the arm's share of that round, holdout included."""
    per_round = []
    for r in rounds:
        holdout = r.holdout_share or 0.0
        shares = {HOLDOUT_ARM: holdout, **{arm: (1 - holdout) * w for arm, w in r.weights.items()}}
        per_round.append((r.exposed, shares))
    return bandit_intended_weights(per_round)


def sample_ratio_check(observed: dict[str, int], intended: dict[str, float],
                       threshold: float = SRM_P_VALUE_THRESHOLD) -> SampleRatioCheck:
    """Chi-squared SRM over every arm that was intended or observed.

    Arms intended at 0 with nobody in them are left out (a campaign without holdout); an arm with
    exposures that the allocation never intended is a mismatch by definition (p = 0).
    """
    arms = sorted(set(observed) | {arm for arm, count in intended.items() if count > 0})
    unexpected = [arm for arm in arms if intended.get(arm, 0) <= 0 and observed.get(arm, 0) > 0]
    if unexpected:
        total = float(sum(observed.values()))
        expected = {arm: float(intended.get(arm, 0.0)) for arm in arms}
        scale = total / sum(expected.values()) if sum(expected.values()) else 0.0
        return SampleRatioCheck(float("inf"), len(arms) - 1, 0.0, True,
                                {arm: value * scale for arm, value in expected.items()})
    if len(arms) < 2:
        return SampleRatioCheck(0.0, 0, 1.0, False, {arm: float(observed.get(arm, 0)) for arm in arms})
    return _chi_squared_srm({arm: observed.get(arm, 0) for arm in arms},
                            {arm: intended[arm] for arm in arms}, threshold)


# ------------------------------------------------------------------------------------------------
# reading the marts


def _rows(con, sql: str, params: list) -> list[dict]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _read_rounds(con, campaign: str) -> list[AllocationRound]:
    rows = _rows(con, f"""
        select allocation_round, allocation_mode, holdout_share, variant_weights, exposed, decided_at, has_allocation
        from {ROUNDS_TABLE} where campaign = ? order by allocation_round""", [campaign])
    rounds = []
    for row in rows:
        weights = json.loads(row["variant_weights"]) if row["variant_weights"] else {}
        rounds.append(AllocationRound(
            round=int(row["allocation_round"]), mode=row["allocation_mode"],
            holdout_share=None if row["holdout_share"] is None else float(row["holdout_share"]),
            weights={str(k): float(v) for k, v in weights.items()}, exposed=int(row["exposed"]),
            decided_at=None if row["decided_at"] is None else str(row["decided_at"])))
    return rounds


def _arm_order(names: list[str], rounds: list[AllocationRound]) -> list[str]:
    declared = [arm for r in rounds for arm in r.weights]
    order = {arm: i for i, arm in enumerate(dict.fromkeys(declared))}
    variants = sorted((n for n in names if n != HOLDOUT_ARM), key=lambda a: (order.get(a, len(order)), a))
    return ([HOLDOUT_ARM] if HOLDOUT_ARM in names else []) + variants


def campaign_results(con, campaign: str, *, confidence: float = CONFIDENCE, draws: int = DEFAULT_DRAWS,
                     seed: int | None = 0) -> CampaignResults:
    """Results of one campaign from the marts (build dbt first). Raises CampaignNotFound."""
    rows = _rows(con, f"select * from {ARM_RESULTS_TABLE} where campaign = ?", [campaign])
    if not rows:
        raise CampaignNotFound(f"campaign {campaign!r} has no rows in {ARM_RESULTS_TABLE}: has it been "
                               "assigned, and has dbt been built since?")
    by_arm = {row["arm"]: row for row in rows}
    rounds = _read_rounds(con, campaign)
    order = _arm_order(list(by_arm), rounds)
    warnings: list[str] = []

    # --- sample ratio
    missing = [r.round for r in rounds if r.holdout_share is None]
    observed = {arm: int(by_arm[arm]["exposed"]) for arm in order}
    srm, intended = None, {}
    if not rounds:
        warnings.append("no allocation rounds recorded: the intended split is unknown, SRM not checked")
    elif missing:
        warnings.append(f"round(s) {missing} have assignments but no allocation row: SRM not checked")
    else:
        intended = intended_arm_counts(rounds)
        srm = sample_ratio_check(observed, intended)
    modes = {r.mode for r in rounds if r.mode}
    mode = "bandit" if "bandit" in modes else ("fixed" if modes else None)
    holdout_shares = {r.holdout_share for r in rounds if r.holdout_share is not None}
    if len(holdout_shares) > 1:
        warnings.append(f"the holdout share changed between rounds ({sorted(holdout_shares)}); it must not")
    holdout_share = next(iter(sorted(holdout_shares))) if holdout_shares else None
    if by_arm.get(HOLDOUT_ARM, {}).get("sent"):
        warnings.append(f"{by_arm[HOLDOUT_ARM]['sent']} holdout customers were sent the message: the holdout is contaminated")

    # --- Bayesian
    counts = {arm: (observed[arm], int(by_arm[arm]["converted"])) for arm in order}
    p_best = probability_best(counts, draws=draws, seed=seed) if len(order) > 1 else {order[0]: 1.0}

    total = sum(observed.values())
    intended_total = sum(intended.values())
    arms: dict[str, ArmResult] = {}
    for arm in order:
        row = by_arm[arm]
        n = int(row["exposed"])
        stddev = None if row["revenue_stddev"] is None else float(row["revenue_stddev"])
        arms[arm] = ArmResult(
            arm=arm, exposed=n, sent=int(row["sent"] or 0), delivered=int(row["delivered"] or 0),
            opened=int(row["opened"] or 0), clicked=int(row["clicked"] or 0), converted=int(row["converted"]),
            conversions=int(row["conversions"] or 0), revenue=float(row["revenue"] or 0), revenue_stddev=stddev,
            conversion_rate=wilson_interval(n, int(row["converted"]), confidence),
            revenue_per_customer=mean_interval(n, float(row["revenue_per_customer"] or 0.0), stddev, confidence),
            intended_share=(intended.get(arm, 0.0) / intended_total) if intended_total else None,
            observed_share=n / total if total else float("nan"),
            probability_best=p_best.get(arm),
        )

    # --- variants vs holdout
    comparisons: dict[str, dict[str, Comparison]] = {}
    control = arms.get(HOLDOUT_ARM)
    if control is None:
        warnings.append("no holdout arm: uplifts cannot be measured")
    else:
        for arm in order:
            if arm == HOLDOUT_ARM:
                continue
            variant = arms[arm]
            comparisons[arm] = {}
            for metric in METRICS:
                absolute = relative = beat = None
                if control.exposed >= 2 and variant.exposed >= 2:
                    c, t = control.summary(metric), variant.summary(metric)
                    absolute = welch_difference(c, t, confidence)
                    relative = relative_uplift_delta(c, t, confidence) if c[1] > 0 else None
                if metric == "conversion_rate":
                    beat = probability_to_beat_control(counts[HOLDOUT_ARM], counts[arm], draws=draws, seed=seed)
                comparisons[arm][metric] = Comparison(arm, metric, absolute, relative, beat)

    first = rows[0]
    return CampaignResults(
        campaign=campaign, mode=mode, holdout_share=holdout_share, goal_event=str(first["goal_event"]),
        attribution_days=int(first["attribution_days"]), arms=arms, comparisons=comparisons, srm=srm,
        intended_counts=intended, rounds=rounds,
        exposed_window_elapsed=sum(int(row["exposed_window_elapsed"] or 0) for row in rows),
        warnings=warnings, confidence=confidence,
    )


# ------------------------------------------------------------------------------------------------
# bandit


def next_allocation(results: CampaignResults, floor: float = DEFAULT_FLOOR,
                    min_exposures: int = DEFAULT_MIN_EXPOSURES, seed: int | None = None) -> NextAllocation:
    """The next round's split: Thompson-sampling weights of the variants on their exposures and
    conversions (equal until every variant has `min_exposures`; every variant keeps `floor`); the
    holdout share stays what it was. Check `results.srm_flagged` first: a broken assignment must not
    steer traffic."""
    variants = results.variants
    if not variants:
        raise ValueError(f"campaign {results.campaign!r} has no variant")
    # a variant of the allocation nobody was assigned to yet still gets its (equal, floored) share
    declared = [arm for arm in results.latest_weights if arm not in variants]
    stats = {arm: (results.arms[arm].exposed, results.arms[arm].converted) for arm in variants}
    stats.update({arm: (0, 0) for arm in declared})
    weights = thompson_weights(stats, floor=floor, min_exposures=min_exposures, seed=seed)
    holdout_share = results.holdout_share if results.holdout_share is not None else 0.0
    return NextAllocation(weights, holdout_share)


# ------------------------------------------------------------------------------------------------
# presentation


def _pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.{digits}f}%"


def _pp(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:+.2f}pp"


def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def _signed(value: float | None, digits: int = 0) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:+,.{digits}f}"


def _rate_ci(interval: Interval) -> str:
    return f"{_pct(interval.estimate)} [{_pct(interval.ci_low)}, {_pct(interval.ci_high)}]"


def _money_ci(interval: Interval) -> str:
    return f"{_num(interval.estimate)} [{_num(interval.ci_low)}, {_num(interval.ci_high)}]"


def _effect_text(effect: Effect | None, kind: str) -> str:
    if effect is None:
        return "–"
    fmt = {"pp": _pp, "pct": lambda v: "–" if v is None or math.isnan(v) else f"{100 * v:+.1f}%",
           "money": _signed}[kind]
    return f"{fmt(effect.estimate)} [{fmt(effect.ci_low)}, {fmt(effect.ci_high)}]"


def arm_rows(results: CampaignResults) -> list[dict[str, str]]:
    """One display row per arm (the per-arm table of the report and of the Dagster metadata)."""
    rows = []
    for arm in results.arms.values():
        rows.append({
            "arm": arm.arm,
            "exposed": _num(arm.exposed),
            "share (intended)": f"{_pct(arm.observed_share, 1)} ({_pct(arm.intended_share, 1)})",
            "sent": _num(arm.sent),
            "opened": _num(arm.opened),
            "clicked": _num(arm.clicked),
            "converted": _num(arm.converted),
            "conversion rate [95% CI]": _rate_ci(arm.conversion_rate),
            "revenue / customer [95% CI]": _money_ci(arm.revenue_per_customer),
            "P(best)": _pct(arm.probability_best, 1),
        })
    return rows


def uplift_rows(results: CampaignResults) -> list[dict[str, str]]:
    rows = []
    for arm, metrics in results.comparisons.items():
        conversion, revenue = metrics["conversion_rate"], metrics["revenue_per_customer"]
        rows.append({
            "variant": arm,
            "conversion uplift [95% CI]": _effect_text(conversion.absolute, "pp"),
            "relative [95% CI]": _effect_text(conversion.relative, "pct"),
            "P(beat holdout)": _pct(conversion.probability_to_beat_control, 1),
            "revenue / customer uplift [95% CI]": _effect_text(revenue.absolute, "money"),
            "relative revenue [95% CI]": _effect_text(revenue.relative, "pct"),
        })
    return rows


def _text_table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "(no rows)"
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    line = "  ".join(c.ljust(widths[c]) if i == 0 else c.rjust(widths[c]) for i, c in enumerate(columns))
    out = [line, "-" * len(line)]
    for r in rows:
        out.append("  ".join(r[c].ljust(widths[c]) if i == 0 else r[c].rjust(widths[c]) for i, c in enumerate(columns)))
    return "\n".join(out)


def markdown_table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "_no rows_"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(r[c].replace("|", "\\|") for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def srm_text(results: CampaignResults) -> str:
    if results.srm is None:
        return "Sample ratio: not checked (" + "; ".join(w for w in results.warnings if "SRM" in w) + ")"
    srm = results.srm
    verdict = ("MISMATCH — assignment or logging is broken, do not trust the effects" if srm.flagged
               else "OK")
    return (f"Sample ratio: χ² = {srm.chi_squared:.2f}, df = {srm.df}, p = {srm.p_value:.4g} "
            f"(flagged below {SRM_P_VALUE_THRESHOLD}) — {verdict}")


def headline(results: CampaignResults) -> str:
    holdout = "no holdout" if results.holdout_share is None else f"holdout {_pct(results.holdout_share, 1)}"
    return (f"Campaign {results.campaign} — {results.mode or 'unknown'} allocation, {holdout}, "
            f"{_num(results.exposed)} exposed ({_num(results.exposed_window_elapsed)} with a closed window); "
            f"goal '{results.goal_event}' within {results.attribution_days} days of exposure")


def report_text(results: CampaignResults, allocation: NextAllocation | None = None) -> str:
    """The terminal report (`goldentime campaigns report NAME`)."""
    parts = [headline(results), "", _text_table(arm_rows(results))]
    if results.comparisons:
        parts += ["", "Each variant vs the holdout (intent to treat; Welch / delta-method 95% CI):", "",
                  _text_table(uplift_rows(results))]
    parts += ["", srm_text(results)]
    if allocation is not None:
        weights = ", ".join(f"{arm} {_pct(w, 1)}" for arm, w in allocation.items())
        parts.append(f"Next allocation ({allocation.mode}): holdout {_pct(allocation.holdout_share, 1)} (fixed); "
                     f"variants {weights}")
    parts += [f"Warning: {w}" for w in results.warnings]
    return "\n".join(parts)


def results_markdown(results: CampaignResults) -> str:
    """Per-arm and uplift tables as Markdown (Dagster metadata)."""
    parts = [f"**{headline(results)}**", "", markdown_table(arm_rows(results))]
    if results.comparisons:
        parts += ["", markdown_table(uplift_rows(results))]
    parts += ["", srm_text(results)]
    return "\n".join(parts)


def results_chart(results: CampaignResults, width: int = 40) -> str:
    """Markdown bars of the conversion rate per arm with its 95% interval, and the uplift of each
    variant vs the holdout (▕ marks zero)."""
    arms = list(results.arms.values())
    top = max([a.conversion_rate.ci_high for a in arms if not math.isnan(a.conversion_rate.ci_high)] or [0.0])
    lines = ["**Conversion rate by arm** (bar = estimate, [95% CI])", "", "```"]
    label = max(len(a.arm) for a in arms)
    for a in arms:
        filled = 0 if top <= 0 else int(round(width * a.conversion_rate.estimate / top))
        lines.append(f"{a.arm.ljust(label)} {'█' * filled}{' ' * (width - filled)} {_rate_ci(a.conversion_rate)}")
    lines.append("```")
    effects = [(arm, m["conversion_rate"].absolute) for arm, m in results.comparisons.items()
               if m["conversion_rate"].absolute is not None]
    if effects:
        reach = max(max(abs(e.ci_low), abs(e.ci_high)) for _, e in effects) or 1.0
        half = width // 2
        lines += ["", "**Uplift vs holdout** (percentage points, [95% CI])", "", "```"]
        for arm, e in effects:
            cells = [" "] * (2 * half + 1)
            lo = half + int(round(half * e.ci_low / reach))
            hi = half + int(round(half * e.ci_high / reach))
            for i in range(max(0, lo), min(2 * half, hi) + 1):
                cells[i] = "─"
            cells[half] = "▕"
            point = half + int(round(half * e.estimate / reach))
            cells[min(max(point, 0), 2 * half)] = "●"
            lines.append(f"{arm.ljust(label)} {''.join(cells)} {_effect_text(e, 'pp')}")
        lines.append("```")
    return "\n".join(lines)


def results_vega_lite(results: CampaignResults) -> dict:
    """Vega-Lite spec: conversion rate per arm with its 95% interval (point + error bar)."""
    values = [{"arm": a.arm, "rate": a.conversion_rate.estimate, "low": a.conversion_rate.ci_low,
               "high": a.conversion_rate.ci_high, "exposed": a.exposed, "p_best": a.probability_best,
               "holdout": a.is_holdout} for a in results.arms.values()]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": f"{results.campaign}: conversion rate by arm (95% CI)",
        "data": {"values": values},
        "encoding": {"y": {"field": "arm", "type": "nominal", "sort": None, "title": None}},
        "layer": [
            {"mark": {"type": "rule"},
             "encoding": {"x": {"field": "low", "type": "quantitative", "axis": {"format": "%"},
                                "title": "conversion rate"},
                          "x2": {"field": "high"}}},
            {"mark": {"type": "point", "filled": True, "size": 80},
             "encoding": {"x": {"field": "rate", "type": "quantitative"},
                          "color": {"field": "holdout", "type": "nominal", "legend": None},
                          "tooltip": [{"field": "arm"}, {"field": "rate", "format": ".2%"},
                                      {"field": "low", "format": ".2%"}, {"field": "high", "format": ".2%"},
                                      {"field": "exposed"}, {"field": "p_best", "format": ".1%"}]}},
        ],
    }


__all__ = [
    "AllocationRound", "NextAllocation", "ArmResult", "CampaignNotFound", "CampaignResults", "Comparison",
    "Interval", "arm_rows", "campaign_results", "intended_arm_counts", "markdown_table", "mean_interval",
    "next_allocation", "report_text", "results_chart", "results_markdown", "results_vega_lite",
    "sample_ratio_check", "uplift_rows", "wilson_interval",
]
