"""BG/NBD fit time on simulated customers against named baselines, measured in the same run.

    python benchmarks/ltv.py [--customers 1000000] [--repeats 5] [--days] [--skip-lifetimes] [--skip-naive]

Customers are drawn from the BG/NBD generative process itself (``ml.ltv.simulate_bgnbd``) with the published
CDNOW parameters (r=0.243, alpha=4.414, a=0.793, b=2.426), acquired uniformly over 12 weeks and observed to
week 39 (T uniform in [27, 39] weeks, continuous times: no two customers share a row, the worst case for
collapsing identical rows). ``--days`` rounds recency and T to whole days first, as summaries built from dated
transactions are, so identical rows collapse into weights.

Contenders, each fitting (frequency, recency, T) arrays already in memory:
  * goldentime ``ml.ltv.BGNBD().fit`` - shared special functions per frequency, analytic gradient, subsample
    warm start, then BFGS on all customers;
  * baseline ``lifetimes`` 0.11 ``BetaGeoFitter().fit`` (autograd gradient + BFGS, plus its Hessian for standard
    errors, as its fit always does) - installed ad hoc, never a run-time dependency;
  * baseline "naive scipy": the per-customer log-likelihood (gammaln/betaln per row, log-sum-exp) minimised
    with scipy L-BFGS-B and finite-difference gradients, the straightforward implementation.
Each is timed ``--repeats`` times (best and median reported; the machine has 2 cores shared with other jobs).
Parameters and the log-likelihood of every fit are printed so "same parameters" can be checked.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from scipy import optimize
from scipy.special import betaln, gammaln

from ml.ltv import BGNBD, simulate_bgnbd

TRUE = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def naive_scipy_fit(x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> dict[str, float]:
    """Straightforward BG/NBD MLE: every special function evaluated per customer, numerical gradient."""

    def nll(phi):
        r, alpha, a, b = np.exp(phi)
        A1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        A2 = betaln(a, b + x) - betaln(a, b)
        A3 = -(r + x) * np.log(alpha + T)
        A4 = np.where(x > 0, np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + tx), -np.inf)
        return -np.mean(A1 + A2 + np.logaddexp(A3, A4))

    x0 = np.log([1.0, T.mean() / max(x.mean(), 1e-3), 1.0, 3.0])
    res = optimize.minimize(nll, x0, method="L-BFGS-B", options={"ftol": 1e-12, "gtol": 1e-8, "maxiter": 2000})
    return dict(zip(("r", "alpha", "a", "b"), np.exp(res.x)))


def lifetimes_fit(x, tx, T) -> dict[str, float]:
    from lifetimes import BetaGeoFitter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BetaGeoFitter().fit(x, tx, T)
    return {k: float(v) for k, v in model.params_.items()}


def goldentime_fit(x, tx, T) -> dict[str, float]:
    return BGNBD().fit(x, tx, T).params_


def _time(fn, args, repeats: int):
    times, params = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        params = fn(*args)
        times.append(time.perf_counter() - started)
    return times, params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-repeats", type=int, default=3)
    parser.add_argument("--days", action="store_true", help="round recency and T to whole days")
    parser.add_argument("--skip-lifetimes", action="store_true")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    n = args.customers
    rng = np.random.default_rng(args.seed + 1)
    started = time.perf_counter()
    sim = simulate_bgnbd(n, **TRUE, T=rng.uniform(27.0, 39.0, n), seed=args.seed)
    x = sim["frequency"].to_numpy().astype(float)
    tx = sim["recency"].to_numpy()
    T = sim["T"].to_numpy()
    if args.days:
        T = np.round(T * 7) / 7
        tx = np.minimum(np.round(tx * 7) / 7, T)
    print(f"simulated {n:,} customers in {time.perf_counter() - started:.2f}s "
          f"({(x > 0).mean():.1%} repeat buyers, max frequency {int(x.max())}, "
          f"{'times in whole days' if args.days else 'continuous times'})")

    contenders = [("goldentime ml.ltv.BGNBD", goldentime_fit, args.repeats)]
    unavailable = []
    if not args.skip_lifetimes:
        try:
            import lifetimes  # noqa: F401

            contenders.append(("baseline: lifetimes BetaGeoFitter", lifetimes_fit, args.baseline_repeats))
        except Exception as exc:  # not installed, or broken on this numpy/pandas
            unavailable.append(f"baseline lifetimes unavailable: {type(exc).__name__}: {exc}")
    if not args.skip_naive:
        contenders.append(("baseline: naive per-customer scipy", naive_scipy_fit, args.baseline_repeats))

    results = {}
    for name, fn, repeats in contenders:
        try:
            times, params = _time(fn, (x, tx, T), repeats)
        except Exception as exc:
            unavailable.append(f"{name} failed: {type(exc).__name__}: {exc}")
            continue
        results[name] = (times, params)
        print(f"  {name}: " + ", ".join(f"{t:.2f}s" for t in times), flush=True)

    ours = results["goldentime ml.ltv.BGNBD"]
    ours_best, ours_median = min(ours[0]), statistics.median(ours[0])
    print()
    print(f"BG/NBD fit, {n:,} simulated customers")
    print(f"{'contender':<38}{'best s':>8}{'median s':>10}{'speed-up (best)':>17}{'speed-up (median)':>19}")
    for name, (times, _) in results.items():
        best, median = min(times), statistics.median(times)
        print(f"{name:<38}{best:>8.2f}{median:>10.2f}{best / ours_best:>16.1f}x{median / ours_median:>18.1f}x")
    for line in unavailable:
        print(line)
    print()
    print(f"{'parameters':<38}{'r':>9}{'alpha':>9}{'a':>9}{'b':>9}{'log-likelihood':>17}{'max rel. diff':>15}")
    print(f"{'true (simulation)':<38}" + "".join(f"{TRUE[k]:>9.4f}" for k in TRUE))
    for name, (_, params) in results.items():
        model = BGNBD.from_params(**params)
        ll = model.log_likelihood(x, tx, T)
        diff = max(abs(params[k] / ours[1][k] - 1) for k in TRUE)
        print(f"{name:<38}" + "".join(f"{params[k]:>9.4f}" for k in TRUE) + f"{ll:>17.2f}{diff:>15.1e}")


if __name__ == "__main__":
    main()
