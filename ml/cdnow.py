"""The CDNOW sample (2,357 customers, Jan 1997 - Jun 1998): loader and the published-results check.

    find_cdnow_sample() -> Path | None        # $GOLDENTIME_CDNOW_SAMPLE, <repo>/../shared/data, <repo>/data
    load_cdnow(path=None) -> polars frame     # customer_id, date, cds, spend   (one row per transaction)
    cdnow_summary(path=None) -> polars frame  # calibration (weeks 1-39) + holdout (weeks 40-78), weeks as unit
    validation_report(path=None) -> dict      # fitted BG/NBD + Gamma-Gamma vs published, holdout forecast

    python -m ml.cdnow                        # prints the report

File format (Hardie's CDNOW_sample.txt): whitespace separated customer id, id in the 1/10th sample, yyyymmdd,
CDs bought, dollar value. Published anchors: BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy
way", 39-week calibration ending 1997-09-30, same-day purchases merged, T from each customer's first purchase)
and Gamma-Gamma on the 946 repeat buyers (Fader, Hardie & Lee 2005, "RFM and CLV"; mean repeat-transaction value).
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ml.ltv import BGNBD, GammaGamma, rfm_calibration_holdout

CALIBRATION_START = date(1997, 1, 1)
CALIBRATION_END = date(1997, 9, 30)
OBSERVATION_END = date(1998, 6, 30)
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "log_likelihood": -9582.4}
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}
N_CUSTOMERS = 2357
N_REPEAT_BUYERS = 946
FILE_NAME = "CDNOW_sample.txt"

_REPO = Path(__file__).resolve().parents[1]


def find_cdnow_sample() -> Path | None:
    """The sample file: $GOLDENTIME_CDNOW_SAMPLE (file or folder), else <repo>/../shared/data, <repo>/data."""
    candidates = []
    env = os.environ.get("GOLDENTIME_CDNOW_SAMPLE")
    if env:
        p = Path(env)
        candidates.append(p / FILE_NAME if p.is_dir() else p)
    candidates += [_REPO.parent / "shared" / "data" / FILE_NAME, _REPO / "data" / FILE_NAME]
    for path in candidates:
        if path.is_file():
            return path
    return None


def load_cdnow(path: str | Path | None = None) -> pl.DataFrame:
    """Transactions: customer_id (str, zero-padded as in the file), date, cds, spend."""
    path = Path(path) if path is not None else find_cdnow_sample()
    if path is None or not path.is_file():
        raise FileNotFoundError(f"{FILE_NAME} not found (set GOLDENTIME_CDNOW_SAMPLE or put it in ../shared/data)")
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if any(len(row) != 5 for row in rows):
        raise ValueError(f"{path}: expected 5 whitespace-separated columns per line")
    customer, _, day, cds, spend = zip(*rows)
    return pl.DataFrame(
        {
            "customer_id": list(customer),
            "date": pl.Series(day).str.to_date("%Y%m%d"),
            "cds": pl.Series(cds).cast(pl.Int64),
            "spend": pl.Series(spend).cast(pl.Float64),
        }
    )


def cdnow_summary(path: str | Path | None = None) -> pl.DataFrame:
    """Calibration to 1997-09-30 and holdout to 1998-06-30, weeks as unit, same-day purchases merged."""
    return rfm_calibration_holdout(
        load_cdnow(path), "customer_id", "date", "spend",
        calibration_end=CALIBRATION_END, observation_end=OBSERVATION_END, freq="W",
    )


def validation_report(path: str | Path | None = None) -> dict[str, Any]:
    """Fit both models on the calibration period and compare with the paper and with the holdout."""
    summary = cdnow_summary(path)
    bg = BGNBD().fit(summary)
    repeat = summary.filter(pl.col("frequency") > 0)
    gg = GammaGamma().fit(repeat["frequency"], repeat["monetary_value"])

    x = summary["frequency"].to_numpy()
    tx = summary["recency"].to_numpy()
    T = summary["T"].to_numpy()
    actual = summary["frequency_holdout"].to_numpy()
    duration = float(summary["duration_holdout"][0])
    conditional = bg.conditional_expected_purchases(duration, x, tx, T)
    # the aggregate (unconditional) forecast: each customer's expected purchases between age T and T + 39 weeks
    unconditional = bg.expected_purchases(T + duration) - bg.expected_purchases(T)

    bucket = np.minimum(x, 7)
    by_frequency = []
    for k in range(8):
        sel = bucket == k
        by_frequency.append(
            {
                "frequency": f"{k}+" if k == 7 else str(k),
                "customers": int(sel.sum()),
                "actual_mean": float(actual[sel].mean()),
                "predicted_mean": float(conditional[sel].mean()),
            }
        )
    # calibration fit (paper's Figure 2): customers with k repeat purchases in weeks 1-39, predicted vs actual
    histogram = []
    for k in range(8):
        if k < 7:
            expected = float(bg.probability_of_n_purchases_up_to_time(T, k).sum())
        else:
            expected = float(N_CUSTOMERS - sum(h["predicted"] for h in histogram))
        histogram.append({"frequency": f"{k}+" if k == 7 else str(k), "actual": int((bucket == k).sum()), "predicted": expected})
    return {
        "customers": summary.height,
        "repeat_buyers": repeat.height,
        "bgnbd": {**bg.params_, "log_likelihood": bg.log_likelihood_},
        "gamma_gamma": {**gg.params_, "log_likelihood": gg.log_likelihood_, "customers": int(gg.n_customers_)},
        "published_bgnbd": PUBLISHED_BGNBD,
        "published_gamma_gamma": PUBLISHED_GAMMA_GAMMA,
        "holdout_weeks": duration,
        "holdout_actual": int(actual.sum()),
        "holdout_predicted_conditional": float(conditional.sum()),
        "holdout_predicted_unconditional": float(unconditional.sum()),
        "holdout_by_frequency": by_frequency,
        "calibration_histogram": histogram,
        "mean_p_alive": float(bg.p_alive(x, tx, T).mean()),
        "population_mean_spend": float(gg.conditional_expected_average_profit()),
    }


def _print_report(report: dict[str, Any]) -> None:
    bg, pub = report["bgnbd"], report["published_bgnbd"]
    print(f"CDNOW sample: {report['customers']:,} customers, {report['repeat_buyers']} repeat buyers in weeks 1-39")
    print("BG/NBD        fitted      published")
    for k in ("r", "alpha", "a", "b", "log_likelihood"):
        print(f"  {k:<14}{bg[k]:>10.4f}  {pub[k]:>10}")
    gg, pub = report["gamma_gamma"], report["published_gamma_gamma"]
    print(f"Gamma-Gamma   fitted      published   ({gg['customers']} repeat buyers, log-likelihood {gg['log_likelihood']:.2f})")
    for k in ("p", "q", "gamma"):
        print(f"  {k:<14}{gg[k]:>10.4f}  {pub[k]:>10}")
    print(f"Holdout ({report['holdout_weeks']:.0f} weeks, weeks 40-78): actual repeat transactions {report['holdout_actual']:,}; "
          f"predicted {report['holdout_predicted_conditional']:,.1f} (sum of conditional expectations), "
          f"{report['holdout_predicted_unconditional']:,.1f} (unconditional, by customer age)")
    print("  calibration frequency  customers  actual mean  predicted mean")
    for row in report["holdout_by_frequency"]:
        print(f"  {row['frequency']:>21}  {row['customers']:>9}  {row['actual_mean']:>11.3f}  {row['predicted_mean']:>14.3f}")
    print("Calibration histogram (customers by repeat purchases in weeks 1-39)")
    print("  frequency  actual  predicted")
    for row in report["calibration_histogram"]:
        print(f"  {row['frequency']:>9}  {row['actual']:>6}  {row['predicted']:>9.1f}")


if __name__ == "__main__":
    _print_report(validation_report())
