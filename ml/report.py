"""Markdown (tables and text charts) and Vega-Lite specs for judging a model in the Dagster UI.

Dagster renders Markdown metadata but strips ``data:`` image URLs, so charts are drawn with text
(bars of █) inside code blocks; the same numbers go out as Vega-Lite JSON specs for any notebook or
https://vega.github.io/editor.
"""

from __future__ import annotations

import math

SCORER_NAMES = {
    "model": "churn model (calibrated HGB)",
    "recency_only": "recency only",
    "bgnbd_no_purchase": "BG/NBD P(no purchase)",
}


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(rows: list[dict], columns: list[str] | None = None, digits: int = 3) -> str:
    if not rows:
        return "_no rows_"
    columns = columns or list(rows[0])
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_fmt(r.get(c), digits) for c in columns) + " |" for r in rows]
    return "\n".join(out)


def bar(value: float, scale: float, width: int = 30) -> str:
    filled = 0 if scale <= 0 or value is None else max(0, min(width, round(width * value / scale)))
    return "█" * filled + "·" * (width - filled)


def churn_metrics_markdown(report: dict) -> str:
    churn = report["churn"]
    parts = [f"Held-out cut-off **{churn['cutoff']}**, label: no purchase in the next **{churn['horizon_days']} days**."]
    for population, scorers in churn["metrics"].items():
        rows = [{"scorer": SCORER_NAMES.get(s, s), **m} for s, m in scorers.items()]
        parts.append(f"\n**{population}** ({rows[0]['customers']:,} customers, churn rate {rows[0]['base_rate']:.1%})\n")
        parts.append(table(rows, ["scorer", "roc_auc", "top_decile_lift", "brier", "log_loss", "ece", "mean_predicted"], 4))
    return "\n".join(parts)


def lift_chart_markdown(report: dict) -> str:
    lift = report["churn"]["lift"]
    best = max((r["lift"] for rows in lift.values() for r in rows), default=1.0)
    lines = ["Churn rate per score decile, buyers at the cut-off (decile 1 = highest predicted risk); lift = decile rate / overall rate.", "```"]
    for scorer, rows in lift.items():
        lines.append(SCORER_NAMES.get(scorer, scorer))
        for r in rows:
            lines.append(f"  d{r['decile']:<2} {bar(r['lift'], best)} {r['lift']:.2f}  ({r['rate']:.1%}, {r['customers']} customers)")
    lines.append("```")
    return "\n".join(lines)


def calibration_markdown(report: dict) -> str:
    lines = ["Reliability: mean predicted probability vs observed churn rate per probability bin, buyers at the cut-off. "
             "`o` observed, `p` predicted on a 0–1 axis (perfect calibration: they coincide).", "```"]
    for scorer, rows in report["churn"]["calibration"].items():
        lines.append(SCORER_NAMES.get(scorer, scorer))
        for r in rows:
            if not r["customers"]:
                continue
            axis = [" "] * 41
            axis[round(40 * r["mean_predicted"])] = "p"
            position = round(40 * r["observed_rate"])
            axis[position] = "*" if axis[position] == "p" else "o"
            lines.append(f"  {r['bin']}  |{''.join(axis)}|  predicted {r['mean_predicted']:.3f}  observed {r['observed_rate']:.3f}  n={r['customers']}")
    lines.append("```")
    return "\n".join(lines)


def ranking_markdown(report: dict) -> str:
    ltv = report["ltv_ranking"]
    rows = [{"ranking": name, **values} for name, values in ltv.items()]
    first = rows[0]
    parts = [f"Customers who had bought by the cut-off ({first['customers']:,}; {first['customers_spending']:,} spent in the next "
             f"{report['horizon_days']} days), ranked by BG/NBD × Gamma-Gamma expected spend vs by past spend.\n",
             table(rows, ["ranking", "normalized_gini", "spearman", "top_20pct_share"], 4),
             "\nShare of next-period spend captured by the top x % of customers:\n", "```"]
    for r in report["ltv_capture"]:
        parts.append(f"  top {r['top']:>4}  model {bar(r['bgnbd_gamma_gamma'], 1.0, 25)} {r['bgnbd_gamma_gamma']:.1%}   "
                     f"past spend {bar(r['past_spend'], 1.0, 25)} {r['past_spend']:.1%}   perfect {r['perfect']:.1%}")
    parts.append("```")
    nbc, recs = report["next_best_channel"], report["recommendations"]
    if "accuracy" in nbc:
        parts.append(f"\n**Next-best channel**: {nbc['accuracy']:.1%} of {nbc['responders']:,} customers who responded to a message in the "
                     f"horizon responded most on the predicted channel (always '{nbc['best_constant_channel']}': {nbc['best_constant_accuracy']:.1%}).")
    hit = [k for k in recs if k.startswith("hit_rate")]
    if hit:
        key = hit[0]
        parts.append(f"\n**Recommendations**: {recs[key]:.1%} of {recs['buyers']:,} buyers in the horizon bought one of their "
                     f"recommended products (everyone gets the most popular: {recs['popular_' + key]:.1%}).")
    return "\n".join(parts)


def vega_lift(report: dict) -> dict:
    values = [{"scorer": SCORER_NAMES.get(s, s), "decile": r["decile"], "lift": r["lift"]}
              for s, rows in report["churn"]["lift"].items() for r in rows]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Churn lift by score decile (buyers)",
        "data": {"values": values},
        "mark": "bar",
        "encoding": {"x": {"field": "decile", "type": "ordinal"}, "xOffset": {"field": "scorer"},
                     "y": {"field": "lift", "type": "quantitative"}, "color": {"field": "scorer"}},
    }


def vega_calibration(report: dict) -> dict:
    values = [{"scorer": SCORER_NAMES.get(s, s), "predicted": r["mean_predicted"], "observed": r["observed_rate"], "n": r["customers"]}
              for s, rows in report["churn"]["calibration"].items() for r in rows if r["customers"]]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Calibration (buyers)",
        "data": {"values": values},
        "layer": [
            {"mark": {"type": "rule", "strokeDash": [4, 4], "color": "grey"},
             "data": {"values": [{"a": 0, "b": 0, "c": 1, "d": 1}]},
             "encoding": {"x": {"field": "a", "type": "quantitative"}, "y": {"field": "b", "type": "quantitative"},
                          "x2": {"field": "c"}, "y2": {"field": "d"}}},
            {"mark": {"type": "line", "point": True},
             "encoding": {"x": {"field": "predicted", "type": "quantitative", "scale": {"domain": [0, 1]}},
                          "y": {"field": "observed", "type": "quantitative", "scale": {"domain": [0, 1]}},
                          "color": {"field": "scorer"}, "size": {"field": "n", "type": "quantitative"}}},
        ],
    }


def scores_summary_markdown(scores) -> str:
    """Counts per value tier x churn-risk band and next-best channel (no personal data)."""
    import polars as pl

    grid = scores.group_by("value_tier", "churn_risk_band").len().pivot(on="churn_risk_band", index="value_tier", values="len").fill_null(0)
    rows = []
    for tier in ("high", "middle", "low"):
        row = grid.filter(pl.col("value_tier") == tier)
        rows.append({"value tier": tier, **{band: int(row[band][0]) if band in row.columns and row.height else 0
                                             for band in ("low", "medium", "high")}})
    channels = scores.group_by("next_best_channel").len().sort("len", descending=True)
    lines = ["Customers by value tier (rows) and churn-risk band (columns):\n",
             table(rows, ["value tier", "low", "medium", "high"]),
             "\nNext-best channel: " + ", ".join(f"{c or 'none (no consent)'} {n:,}" for c, n in channels.iter_rows())]
    return "\n".join(lines)
