"""Customer lifetime value: the BG/NBD purchase model and the Gamma-Gamma spend model.

API (everything importable from ``ml.ltv``; names follow ``lifetimes`` so code written for it reads the same)::

    summary = rfm_summary(transactions, customer_col="customer_id", time_col="date", value_col="amount",
                          observation_end=date(1997, 9, 30), freq="W")
    #   polars frame: <customer_col>, frequency, recency, T, monetary_value   (recency, T in weeks for "W")
    summary = rfm_calibration_holdout(..., calibration_end=..., observation_end=...)
    #   same + frequency_holdout, monetary_holdout, duration_holdout

    bg = BGNBD().fit(summary)                        # or BGNBD().fit(frequency, recency, T, weights=None)
    bg.r_, bg.alpha_, bg.a_, bg.b_                   # fitted parameters; bg.params_ as a dict
    bg.log_likelihood_                               # total log-likelihood at the optimum
    bg.expected_purchases(t)                         # E[X(t)], repeat purchases of a new customer in (0, t]
    bg.p_alive(frequency, recency, T)                # P(still active at T | history)
    bg.conditional_expected_purchases(t, frequency, recency, T)   # E[purchases in (T, T + t] | history]
    bg.conditional_probability_of_no_purchase(t, frequency, recency, T)
    bg.probability_of_n_purchases_up_to_time(t, n)   # P(X(t) = n)

    gg = GammaGamma().fit(frequency, monetary)       # or .fit(summary); rows with frequency 0 are ignored
    gg.p_, gg.q_, gg.gamma_, gg.log_likelihood_
    gg.conditional_expected_average_profit(frequency, monetary)   # alias: gg.expected_spend(frequency, monetary)
    gg.clv(bg, frequency, recency, T, monetary, horizon=12, discount_rate=0.01, freq="W")

    clv(bg, gg, frequency, recency, T, monetary, horizon=12, discount_rate=0.01, freq="W")
    simulate_bgnbd(n, r, alpha, a, b, T, seed=None, holdout=0.0)     # polars frame, for benchmarks and tests
    simulate_gamma_gamma(frequency, p, q, gamma, seed=None)          # mean repeat spend per customer

Prediction methods take plain arrays, polars/pandas Series, or (as the first argument) a frame holding the
columns ``frequency``, ``recency``, ``T`` (and ``monetary_value``); they return numpy arrays.

Units. ``frequency`` = number of *repeat* purchase days (same-day purchases merged; the first purchase is not
counted). ``recency`` = time from the first to the last purchase, ``T`` = time from the first purchase to the end
of observation, both in the summary's unit (``freq="W"``: weeks, fractional, days / 7; ``freq="D"``: days).
Every ``t`` given to a BG/NBD method is in that same unit. For ``clv`` the horizon is in *months* and
``discount_rate`` is *per month* (0.01 = 1 % a month, spend discounted at the end of each month); ``freq`` tells it
the model's time unit (one month = 365.25 / 12 days = 4.348 weeks; lifetimes uses 4.345).

Models. BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while active a customer buys
as a Poisson process with rate lambda ~ Gamma(r, alpha); after every repeat purchase they drop out with probability
p ~ Beta(a, b). Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"; Hardie's 2013 note): a customer's
transaction values are Gamma(p, nu) with nu ~ Gamma(q, gamma), independent of the purchase process; it is fitted
on repeat buyers with monetary = the mean value of their repeat transactions (first purchase excluded).

Numerics. Both models are fitted by maximum likelihood on log-parameters with analytic gradients. Terms that
depend on the frequency only (gammaln / digamma of r + x, b + x, a + b + x) are computed once per distinct
frequency and multiplied by its count; identical (frequency, recency, T) rows are collapsed into weights when
the data has many of them; the two BG/NBD likelihood terms are combined with a stable log-sum-exp. Large data
is first fitted on a subsample, whose finite-difference Hessian then seeds BFGS on the full data: the result is
the full-data optimum (same tolerance), reached in a handful of full passes. Conditional expectations use the
Euler transform of the hypergeometric function, 2F1(r+x, b+x; a+b+x-1; z) (1-z)^(r+x) =
(1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose parameters do not grow with x, so nothing overflows for
heavy buyers; they are evaluated once per distinct (frequency, T) pair.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from contextlib import nullcontext
from datetime import date, datetime
from typing import Any

import numpy as np
import polars as pl
from scipy import optimize, stats
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

__all__ = [
    "BGNBD",
    "GammaGamma",
    "clv",
    "rfm_summary",
    "rfm_calibration_holdout",
    "simulate_bgnbd",
    "simulate_gamma_gamma",
    "ConvergenceError",
    "DAYS_PER_UNIT",
]

DAYS_PER_UNIT = {"D": 1.0, "W": 7.0}
DAYS_PER_MONTH = 365.25 / 12

# Above this many (deduplicated) rows a BG/NBD fit starts from a subsample's optimum and Hessian.
_WARM_START_ROWS = 200_000
_SUBSAMPLE_ROWS = 50_000
# Tolerance on the gradient of the mean negative log-likelihood with respect to the log-parameters.
_GTOL = 1e-9


def _single_threaded_blas():
    """The fit is a few ufunc passes per step; idle BLAS threads spinning between scipy's small LAPACK/BLAS calls
    only steal the second core (measured: up to 2x slower on a busy 2-core machine)."""
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class ConvergenceError(RuntimeError):
    """The optimiser did not reach the maximum-likelihood estimate."""


# --------------------------------------------------------------------------------------------------------------
# input helpers


def _is_frame(obj: Any) -> bool:
    return isinstance(obj, (pl.DataFrame, Mapping)) or (hasattr(obj, "columns") and hasattr(obj, "__getitem__"))


def _array(values: Any, name: str) -> np.ndarray:
    if isinstance(values, pl.Series):
        values = values.to_numpy()
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _columns(first: Any, rest: tuple, names: tuple[str, ...]) -> list[np.ndarray]:
    """(frame) or (array, array, ...) -> list of float arrays named `names`."""
    if _is_frame(first) and all(value is None for value in rest):
        missing = [n for n in names if n not in first.columns] if hasattr(first, "columns") else [n for n in names if n not in first]
        if missing:
            raise KeyError(f"frame is missing column(s) {missing}; expected {list(names)}")
        return [_array(first[n], n) for n in names]
    values = (first, *rest)
    if any(value is None for value in values):
        raise TypeError(f"pass a frame with columns {list(names)} or all of {list(names)} as arrays")
    arrays = [_array(v, n) for v, n in zip(values, names)]
    size = max(len(a) for a in arrays)
    return [np.broadcast_to(a, (size,)) if len(a) == 1 else a for a in arrays]


def _check_rfm(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> None:
    if not (len(frequency) == len(recency) == len(T)):
        raise ValueError("frequency, recency and T must have the same length")
    if len(frequency) == 0:
        raise ValueError("no customers")
    if not (np.isfinite(frequency).all() and np.isfinite(recency).all() and np.isfinite(T).all()):
        raise ValueError("frequency, recency and T must be finite")
    if frequency.min() < 0 or (frequency.astype(np.int64) != frequency).any():
        raise ValueError("frequency must hold non-negative integers (number of repeat purchases)")
    if recency.min() < 0:
        raise ValueError("recency must be >= 0")
    if (recency > T * (1 + 1e-12) + 1e-12).any():
        raise ValueError("recency must be <= T")
    if ((frequency == 0) & (recency != 0)).any():
        raise ValueError("recency must be 0 where frequency is 0")


def _dense_keys(*cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the first row of each distinct row of `cols`, and the inverse (row -> distinct index)."""
    frame = pl.DataFrame({f"c{i}": c for i, c in enumerate(cols)})
    keyed = frame.with_row_index("row").group_by([f"c{i}" for i in range(len(cols))]).agg(pl.col("row"))
    first = keyed["row"].list.first().to_numpy()
    inverse = np.empty(len(frame), dtype=np.int64)
    exploded = keyed.select(pl.int_range(pl.len()).alias("k"), "row").explode("row")
    inverse[exploded["row"].to_numpy()] = exploded["k"].to_numpy()
    return first, inverse


def _mostly_duplicates(*cols: np.ndarray, sample: int = 20_000, threshold: float = 0.5) -> bool:
    """Cheap check on an evenly spaced sample: are distinct rows rare enough that collapsing them into weights
    pays? (Continuous times: no; times in whole days: yes.)"""
    n = len(cols[0])
    if n < 1_000:
        return False
    step = max(n // sample, 1)
    taken = pl.DataFrame({f"c{i}": c[::step] for i, c in enumerate(cols)})
    return taken.n_unique() < threshold * taken.height


# --------------------------------------------------------------------------------------------------------------
# BG/NBD


class _BGData:
    """Fit data split into per-frequency tables, zero-frequency rows and repeat-buyer rows, with work buffers."""

    def __init__(self, frequency, recency, T, weights, dedupe="auto"):
        frequency = frequency.astype(np.int64)
        zero = frequency == 0
        # rows with frequency 0 only depend on T; repeat-buyer rows on (x, t_x, T)
        T0, w0 = T[zero], None if weights is None else weights[zero]
        pos = ~zero
        x, tx, Tp, wp = frequency[pos], recency[pos], T[pos], None if weights is None else weights[pos]
        if dedupe is True or (dedupe == "auto" and _mostly_duplicates(T0)):
            T0, w0 = _collapse((T0,), w0)
        if dedupe is True or (dedupe == "auto" and _mostly_duplicates(x, tx, Tp)):
            (x, tx, Tp), wp = _collapse((x, tx, Tp), wp, dtypes=(np.int64, float, float))
        self._set(T0, w0, x, tx, Tp, wp)

    def _set(self, T0, w0, x, tx, Tp, wp):
        self.T0, self.w0 = np.ascontiguousarray(T0, dtype=float), w0
        self.x = np.ascontiguousarray(x, dtype=np.int64)
        self.xf = self.x.astype(float)
        self.tx = np.ascontiguousarray(tx, dtype=float)
        self.T = np.ascontiguousarray(Tp, dtype=float)
        self.w = wp
        # per-frequency table over all rows (x = 0 included): values and weighted counts
        counts_pos = np.bincount(self.x, weights=wp)
        n0 = float(len(self.T0) if w0 is None else np.sum(w0))
        counts = counts_pos.copy() if len(counts_pos) else np.zeros(1)
        counts[0] = n0
        present = np.flatnonzero(counts > 0)
        self.xs = present.astype(float)
        self.nx = counts[present]
        self.N = float(self.nx.sum())
        # repeat-buyer rows: index into the table of positive frequencies
        xs_pos = present[present > 0]
        lookup = np.zeros(max(len(counts), 1), dtype=np.int64)
        lookup[xs_pos] = np.arange(len(xs_pos))
        self.xs_pos = xs_pos.astype(float)
        self.g = lookup[self.x]
        self.sum_w_pos = float(len(self.x) if wp is None else np.sum(wp))
        self.n_rows = len(self.T0) + len(self.x)
        m = len(self.x)
        self._buf = {name: np.empty(m) for name in ("u", "v", "pu", "pv", "rx", "D", "e", "s", "tmp")}
        self._buf0 = {name: np.empty(len(self.T0)) for name in ("u", "p")}

    def subsample(self, rows: int, seed: int = 0) -> "_BGData":
        rng = np.random.default_rng(seed)
        frac = rows / self.n_rows
        keep0 = rng.random(len(self.T0)) < frac
        keep = rng.random(len(self.x)) < frac
        sub = object.__new__(_BGData)
        sub.penalty = self.penalty
        sub._set(
            self.T0[keep0], None if self.w0 is None else self.w0[keep0],
            self.x[keep], self.tx[keep], self.T[keep], None if self.w is None else self.w[keep],
        )
        return sub

    def _wsum(self, values: np.ndarray, zero: bool = False) -> float:
        w = self.w0 if zero else self.w
        return float(values.sum()) if w is None else float(values @ w)

    penalty: tuple[float, float] | None = None  # (coefficient, time scale) of lifetimes' L2 penalty

    def nll(self, phi: np.ndarray, penalized: bool = True) -> tuple[float, np.ndarray]:
        """Mean negative log-likelihood (+ penalty) and its gradient with respect to log(r, alpha, a, b)."""
        value, grad = self._nll(phi)
        if penalized and self.penalty:
            c, scale = self.penalty
            theta = np.exp(phi) * np.array([1.0, scale, 1.0, 1.0])
            value += c * float(theta @ theta)
            grad = grad + 2 * c * theta**2
        return value, grad

    def _nll(self, phi: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(phi)
        xs, nx = self.xs, self.nx
        log_alpha = math.log(alpha)
        # --- terms that depend on the frequency only: one value per distinct x, weighted by its count
        ll = float(nx @ (gammaln(r + xs) + gammaln(b + xs) - gammaln(a + b + xs)))
        ll += self.N * (-gammaln(r) + r * log_alpha + gammaln(a + b) - gammaln(b))
        dig_abx = digamma(a + b + xs)
        d_r = float(nx @ digamma(r + xs)) + self.N * (log_alpha - digamma(r))
        d_alpha = self.N * r / alpha
        dig_ab = digamma(a + b)
        d_a = self.N * dig_ab - float(nx @ dig_abx)
        d_b = float(nx @ (digamma(b + xs) - dig_abx)) + self.N * (dig_ab - digamma(b))
        # --- frequency 0: log L = A1 + A2 - r log(alpha + T)
        if len(self.T0):
            u0, p0 = self._buf0["u"], self._buf0["p"]
            np.add(self.T0, alpha, out=p0)
            np.log(p0, out=u0)
            np.reciprocal(p0, out=p0)
            su0 = self._wsum(u0, zero=True)
            ll -= r * su0
            d_r -= su0
            d_alpha -= r * self._wsum(p0, zero=True)
        # --- repeat buyers: log L = A1 + A2 + logsumexp(A3, A4)
        #     A3 = -(r+x) log(alpha+T),  A4 = log a - log(b+x-1) - (r+x) log(alpha+t_x)
        #     logsumexp = A3 + softplus(D),  D = A4 - A3;  s = sigmoid(D) = share of the A4 term
        if len(self.x):
            B = self._buf
            u, v, pu, pv, rx, D, e, s, tmp = (B[k] for k in ("u", "v", "pu", "pv", "rx", "D", "e", "s", "tmp"))
            np.add(self.T, alpha, out=pu)
            np.log(pu, out=u)
            np.reciprocal(pu, out=pu)
            np.add(self.tx, alpha, out=pv)
            np.log(pv, out=v)
            np.reciprocal(pv, out=pv)
            np.add(self.xf, r, out=rx)
            c = math.log(a) - np.log(b + self.xs_pos - 1.0)
            np.subtract(v, u, out=tmp)  # log(alpha+t_x) - log(alpha+T) <= 0
            np.multiply(rx, tmp, out=D)
            np.subtract(c[self.g], D, out=D)
            # softplus(D) = max(D, 0) + log1p(exp(-|D|)); sigmoid(D) from the same exp:
            # 1/(1+e) where D >= 0, e/(1+e) where D < 0
            neg = D < 0
            np.abs(D, out=e)
            np.negative(e, out=e)
            np.exp(e, out=e)
            np.add(e, 1.0, out=s)
            np.reciprocal(s, out=s)
            np.multiply(e, s, out=s, where=neg)
            np.log1p(e, out=e)
            np.maximum(D, 0.0, out=D)
            np.add(D, e, out=D)  # D now holds softplus(D)
            ll += self._wsum(D) - self._wsum(np.multiply(rx, u, out=tmp))
            # d/dr: -(1-s) u - s v = -(u + s (v-u))
            np.subtract(v, u, out=tmp)
            np.multiply(s, tmp, out=tmp)
            np.add(tmp, u, out=tmp)
            d_r -= self._wsum(tmp)
            # d/dalpha: -(r+x) ((1-s)/(alpha+T) + s/(alpha+t_x)) = -(r+x) (pu + s (pv-pu))
            np.subtract(pv, pu, out=tmp)
            np.multiply(s, tmp, out=tmp)
            np.add(tmp, pu, out=tmp)
            np.multiply(tmp, rx, out=tmp)
            d_alpha -= self._wsum(tmp)
            # d/da: s / a;  d/db: -s / (b+x-1)  (summed per distinct x)
            s_sum = self._wsum(s)
            d_a += s_sum / a
            per_x = np.bincount(self.g, weights=s if self.w is None else s * self.w, minlength=len(self.xs_pos))
            d_b -= float(per_x @ (1.0 / (b + self.xs_pos - 1.0)))
        grad = np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
        return -ll / self.N, -grad / self.N


def _collapse(cols: tuple[np.ndarray, ...], weights, dtypes=None):
    """Collapse identical rows into one row with the summed weight."""
    frame = pl.DataFrame({f"c{i}": c for i, c in enumerate(cols)})
    frame = frame.with_columns(w=pl.lit(1.0) if weights is None else pl.Series(np.asarray(weights, dtype=float)))
    grouped = frame.group_by([f"c{i}" for i in range(len(cols))]).agg(pl.col("w").sum())
    out = tuple(grouped[f"c{i}"].to_numpy() for i in range(len(cols)))
    if dtypes is not None:
        out = tuple(o.astype(d) for o, d in zip(out, dtypes))
    w = grouped["w"].to_numpy()
    return (out if len(cols) > 1 else out[0]), w


def _fd_hessian(fun, phi: np.ndarray, step: float = 1e-4) -> np.ndarray:
    k = len(phi)
    H = np.empty((k, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = step
        H[i] = (fun(phi + e)[1] - fun(phi - e)[1]) / (2 * step)
    return (H + H.T) / 2


def _minimize(fun, x0: np.ndarray, hess_inv0: np.ndarray | None = None, gtol: float = _GTOL):
    if hess_inv0 is not None:
        result = optimize.minimize(
            fun, x0, jac=True, method="BFGS", options={"gtol": gtol, "maxiter": 200, "hess_inv0": hess_inv0}
        )
    else:
        result = optimize.minimize(
            fun, x0, jac=True, method="L-BFGS-B",
            options={"gtol": gtol, "ftol": 1e-15, "maxiter": 2000, "maxcor": 20},
        )
    # L-BFGS-B / BFGS may stop on a line-search failure at the optimum (precision loss); accept that if the
    # gradient is small, otherwise polish with BFGS once more.
    if not result.success and np.max(np.abs(result.jac)) > 1e3 * gtol:
        retry = optimize.minimize(fun, result.x, jac=True, method="BFGS", options={"gtol": gtol, "maxiter": 500})
        if retry.fun <= result.fun:
            retry.nfev += result.nfev
            retry.nit += result.nit
            result = retry
    return result


class BGNBD:
    """BG/NBD purchase model (Fader, Hardie & Lee 2005), fitted by maximum likelihood.

    ``BGNBD().fit(summary)`` with columns ``frequency``, ``recency``, ``T`` (or the three arrays). After fitting:
    ``r_``, ``alpha_``, ``a_``, ``b_``, ``params_`` (dict), ``log_likelihood_`` (total), ``n_customers_``
    (weighted count), ``n_rows_`` (distinct rows the likelihood was evaluated on), ``n_iter_``, ``n_evaluations_``.
    Times (``recency``, ``T``, every ``t``) are in the summary's unit (weeks for ``rfm_summary(freq="W")``).
    """

    param_names = ("r", "alpha", "a", "b")

    def __init__(
        self,
        *,
        penalizer_coef: float = 0.0,
        initial_params: Mapping[str, float] | None = None,
        dedupe: bool | str = "auto",
    ):
        """penalizer_coef: L2 penalty c (r^2 + (alpha s)^2 + a^2 + b^2) added to the mean negative log-likelihood,
        with s = 1 / max(T) - the same as lifetimes' ``penalizer_coef``; keeps tiny samples off the boundary.
        initial_params: start values (dict r, alpha, a, b). dedupe: collapse identical rows into weights
        ("auto": when a sample shows mostly duplicates)."""
        self.penalizer_coef = penalizer_coef
        self.initial_params = initial_params
        self.dedupe = dedupe

    # ---- construction / fitting

    @classmethod
    def from_params(cls, r: float, alpha: float, a: float, b: float) -> "BGNBD":
        """A model with known parameters (no fit), e.g. the published CDNOW values."""
        model = cls()
        model._set_params(np.array([r, alpha, a, b], dtype=float))
        return model

    def _set_params(self, params: np.ndarray) -> None:
        self.r_, self.alpha_, self.a_, self.b_ = (float(p) for p in params)
        self.params_ = dict(zip(self.param_names, (self.r_, self.alpha_, self.a_, self.b_)))

    def fit(self, frequency, recency=None, T=None, *, weights=None) -> "BGNBD":
        """Fit on a frame with columns frequency, recency, T (or on three arrays); ``weights`` counts customers
        per row (for pre-aggregated RFM rows). Returns self."""
        x, tx, T_ = _columns(frequency, (recency, T), ("frequency", "recency", "T"))
        _check_rfm(x, tx, T_)
        if weights is not None:
            weights = _array(weights, "weights")
            if len(weights) != len(x) or (weights < 0).any():
                raise ValueError("weights must be non-negative, one per row")
        data = _BGData(x, tx, T_, weights, dedupe=self.dedupe)
        if data.N <= 0:
            raise ValueError("no customers with positive weight")
        if data.sum_w_pos <= 0:
            raise ValueError("BG/NBD needs repeat purchases: with frequency 0 everywhere the likelihood has no maximum")
        if self.penalizer_coef:
            data.penalty = (float(self.penalizer_coef), 1.0 / float(T_.max()))
        with _single_threaded_blas():
            result = self._optimize(data)
        if not np.all(np.isfinite(result.x)) or np.max(np.abs(result.jac)) > 1e-5:
            raise ConvergenceError(
                f"BG/NBD fit did not converge ({result.message}; gradient {result.jac}): the maximum may lie on the "
                "boundary (too few or degenerate customers); try penalizer_coef=0.001-0.1"
            )
        self._set_params(np.exp(result.x))
        self.log_likelihood_ = float(-data.nll(result.x, penalized=False)[0] * data.N)
        self.n_customers_ = data.N
        self.n_rows_ = data.n_rows
        self.n_iter_ = int(result.nit)
        self.n_evaluations_ = int(result.nfev)
        return self

    def _optimize(self, data: _BGData):
        """Full-data optimum; large data starts from a subsample's optimum and its Hessian."""
        phi0 = self._start(data)
        hess_inv0 = None
        if data.n_rows > _WARM_START_ROWS:
            sub = data.subsample(_SUBSAMPLE_ROWS)
            res = _minimize(sub.nll, phi0)
            H = _fd_hessian(sub.nll, res.x)
            eigen = np.linalg.eigvalsh(H)
            if res.success or np.max(np.abs(res.jac)) < 1e-6:
                phi0 = res.x
                if eigen.min() > 1e-12 * eigen.max():
                    hess_inv0 = np.linalg.inv(H)
                    hess_inv0 = (hess_inv0 + hess_inv0.T) / 2
        return _minimize(data.nll, phi0, hess_inv0=hess_inv0)

    def _start(self, data: _BGData) -> np.ndarray:
        if self.initial_params is not None:
            return np.log([float(self.initial_params[k]) for k in self.param_names])
        mean_T = (float(data.T0 @ (np.ones(len(data.T0)) if data.w0 is None else data.w0)) + data._wsum(data.T)) / data.N
        mean_x = float(data.nx @ data.xs) / data.N
        # r = 1 and a purchase rate of (repeat purchases / age); a = 1, b = 3 (mean drop-out probability 1/4)
        alpha0 = max(mean_T, 1e-6) / max(mean_x, 1e-3)
        return np.log([1.0, alpha0, 1.0, 3.0])

    def log_likelihood(self, frequency, recency=None, T=None, *, weights=None) -> float:
        """Total log-likelihood of data under the fitted parameters."""
        x, tx, T_ = _columns(frequency, (recency, T), ("frequency", "recency", "T"))
        _check_rfm(x, tx, T_)
        data = _BGData(x, tx, T_, None if weights is None else _array(weights, "weights"), dedupe=False)
        return float(-data.nll(np.log(self._params()))[0] * data.N)

    def individual_log_likelihood(self, frequency, recency=None, T=None) -> np.ndarray:
        """Per-customer log-likelihood (plain, row by row; for diagnostics and tests)."""
        x, tx, T_ = _columns(frequency, (recency, T), ("frequency", "recency", "T"))
        r, alpha, a, b = self._params()
        A1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        A2 = betaln(a, b + x) - betaln(a, b)
        A3 = -(r + x) * np.log(alpha + T_)
        A4 = np.where(x > 0, np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + tx), -np.inf)
        return A1 + A2 + np.logaddexp(A3, A4)

    # ---- predictions

    def _params(self) -> np.ndarray:
        try:
            return np.array([self.r_, self.alpha_, self.a_, self.b_])
        except AttributeError:
            raise RuntimeError("BGNBD is not fitted: call fit() or BGNBD.from_params()") from None

    def _a_for_division(self) -> float:
        a = self._params()[2]
        # (a+b+x-1)/(a-1) [1 - ...] has a removable singularity at a = 1
        return a + 1e-7 if abs(a - 1.0) < 1e-7 else a

    def expected_purchases(self, t) -> np.ndarray:
        """E[X(t)]: expected repeat purchases of a newly acquired customer in (0, t] (t in model units)."""
        r, alpha, _, b = self._params()
        a = self._a_for_division()
        t = _array(t, "t")
        z = t / (alpha + t)
        F = hyp2f1(a + b - 1 - r, a - 1, a + b - 1, z)
        return (a + b - 1) / (a - 1) * (1 - np.power(alpha / (alpha + t), a - 1) * F)

    def p_alive(self, frequency, recency=None, T=None) -> np.ndarray:
        """P(customer still active at T | frequency, recency, T); 1 for customers without repeat purchases."""
        x, tx, T_ = _columns(frequency, (recency, T), ("frequency", "recency", "T"))
        return expit(-self._log_odds_dead(x, tx, T_))

    conditional_probability_alive = p_alive  # lifetimes' name

    def conditional_probability_of_no_purchase(self, t, frequency, recency=None, T=None) -> np.ndarray:
        """P(no purchase in (T, T + t] | history) = 1 - P(alive) + P(alive) ((alpha+T)/(alpha+T+t))^(r+x):
        while active, lambda | history ~ Gamma(r + x, alpha + T)."""
        x, tx, T_ = _columns(frequency, (recency, T), ("frequency", "recency", "T"))
        r, alpha, _, _ = self._params()
        p = self.p_alive(x, tx, T_)
        return 1.0 - p + p * np.exp((r + x) * (np.log(alpha + T_) - np.log(alpha + T_ + float(t))))

    def _log_odds_dead(self, x, tx, T_) -> np.ndarray:
        r, alpha, a, b = self._params()
        xm = np.maximum(x, 1.0)
        log_odds = np.log(a) - np.log(b + xm - 1) + (r + x) * (np.log(alpha + T_) - np.log(alpha + tx))
        return np.where(x > 0, log_odds, -np.inf)

    def conditional_expected_purchases(self, t, frequency, recency=None, T=None) -> np.ndarray:
        """E[purchases in (T, T + t] | frequency, recency, T] per customer, t in model units.

        A scalar t gives one value per customer; an array of t gives a (len(t), customers) matrix."""
        x, tx, T_ = _columns(frequency, (recency, T), ("frequency", "recency", "T"))
        if np.ndim(t) == 0:
            return self._conditional_expected_purchases(np.array([float(t)]), x, tx, T_)[0]
        return self._conditional_expected_purchases(_array(t, "t"), x, tx, T_)

    # lifetimes' name
    conditional_expected_number_of_purchases_up_to_time = conditional_expected_purchases
    predict = conditional_expected_purchases

    def _conditional_expected_purchases(self, ts: np.ndarray, x, tx, T_) -> np.ndarray:
        """Matrix (len(ts), n) of conditional expectations; hyp2f1 once per distinct (x, T) and t."""
        r, alpha, _, b = self._params()
        a = self._a_for_division()
        p_alive = expit(-self._log_odds_dead(x, tx, T_))
        n = len(x)
        if n > 5_000 and _mostly_duplicates(x, T_):
            first, inverse = _dense_keys(x, T_)
            xu, Tu = x[first], T_[first]
        else:
            inverse = None
            xu, Tu = x, T_
        out = np.empty((len(ts), n))
        for i, t in enumerate(ts):
            if t < 0:
                raise ValueError("t must be >= 0")
            z = t / (alpha + Tu + t)
            F = hyp2f1(a + b - 1 - r, a - 1, a + b + xu - 1, z)
            with np.errstate(invalid="ignore", over="ignore"):
                bracket = (a + b + xu - 1) / (a - 1) * (1 - np.power((alpha + Tu) / (alpha + Tu + t), a - 1) * F)
            failed = ~np.isfinite(bracket)
            if failed.any():
                bracket[failed] = self._expected_purchases_fixed_dropout(t, xu[failed], Tu[failed])
            out[i] = (bracket if inverse is None else bracket[inverse]) * p_alive
        return out

    def _expected_purchases_fixed_dropout(self, t: float, x: np.ndarray, T_: np.ndarray) -> np.ndarray:
        """E[purchases in t | alive] when the dropout probability barely varies (a and b so large that
        2F1 overflows): with p fixed at a / (a + b) and λ ~ Gamma(r + x, α + T) given the history,
        E[(1 - e^{-λ p t}) / p] = (1 - ((α + T) / (α + T + p t))^(r + x)) / p."""
        r, alpha, a, b = self._params()
        p = a / (a + b)
        return -np.expm1((r + x) * np.log((alpha + T_) / (alpha + T_ + p * t))) / p

    def probability_of_n_purchases_up_to_time(self, t, n) -> np.ndarray:
        """P(X(t) = n) for a newly acquired customer (eq. 8 of the paper); t and n broadcast."""
        r, alpha, a, b = self._params()
        t = np.asarray(t, dtype=float)
        n = np.asarray(n)
        if np.any(n < 0) or np.any(np.mod(n, 1) != 0):
            raise ValueError("n must hold non-negative integers")
        q = alpha / (alpha + t)  # NB success probability: P(Poisson-Gamma count = n) = nbinom.pmf(n, r, q)
        first = np.exp(betaln(a, b + n) - betaln(a, b)) * stats.nbinom.pmf(n, r, q)
        nm = np.maximum(n, 1)
        second = np.exp(betaln(a + 1, b + nm - 1) - betaln(a, b)) * stats.nbinom.sf(nm - 1, r, q)
        return first + np.where(n > 0, second, 0.0)

    def __repr__(self) -> str:
        if not hasattr(self, "r_"):
            return "BGNBD()"
        ll = f", log_likelihood={self.log_likelihood_:.2f}" if hasattr(self, "log_likelihood_") else ""
        return f"BGNBD(r={self.r_:.4g}, alpha={self.alpha_:.4g}, a={self.a_:.4g}, b={self.b_:.4g}{ll})"


# --------------------------------------------------------------------------------------------------------------
# Gamma-Gamma


class _GGData:
    def __init__(self, x: np.ndarray, m: np.ndarray, w: np.ndarray | None):
        xi = x.astype(np.int64)
        self.xs, inv = np.unique(xi, return_inverse=True)
        self.xs = self.xs.astype(float)
        wt = np.ones(len(x)) if w is None else w
        self.nx = np.bincount(inv, weights=wt)
        self.N = float(wt.sum())
        self.xm = x * m
        self.w = wt
        self.wx = wt * x
        logm = np.log(m)
        self.sum_log_m = float(wt @ logm)
        self.sum_x_log_m = float(self.wx @ logm)

    def nll(self, phi: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, g = np.exp(phi)
        xs, nx, N = self.xs, self.nx, self.N
        px = p * xs
        L = np.log(self.xm + g)
        R = 1.0 / (self.xm + g)
        ll = float(nx @ (gammaln(px + q) - gammaln(px) + px * np.log(xs)))
        ll += N * (-gammaln(q) + q * math.log(g)) + p * self.sum_x_log_m - self.sum_log_m
        ll -= p * float(self.wx @ L) + q * float(self.w @ L)
        dig = digamma(px + q)
        d_p = float(nx @ (xs * (dig - digamma(px) + np.log(xs)))) + self.sum_x_log_m - float(self.wx @ L)
        d_q = float(nx @ dig) - N * digamma(q) + N * math.log(g) - float(self.w @ L)
        d_g = N * q / g - p * float(self.wx @ R) - q * float(self.w @ R)
        grad = np.array([d_p * p, d_q * q, d_g * g])
        return -ll / N, -grad / N


class GammaGamma:
    """Gamma-Gamma spend model (Fader, Hardie & Lee 2005; Hardie 2013), fitted by maximum likelihood.

    ``GammaGamma().fit(frequency, monetary)`` (or a frame with ``frequency`` and ``monetary_value``); rows with
    frequency 0 or monetary <= 0 are left out (their mean spend is undefined). ``monetary`` is the customer's
    mean *repeat* transaction value. After fitting: ``p_``, ``q_``, ``gamma_``, ``params_``, ``log_likelihood_``,
    ``n_customers_``. The population mean transaction value is ``p gamma / (q - 1)`` (needs q > 1).
    """

    param_names = ("p", "q", "gamma")

    def __init__(self, *, penalizer_coef: float = 0.0, initial_params: Mapping[str, float] | None = None):
        """penalizer_coef: L2 penalty c (p^2 + q^2 + gamma^2) on the mean negative log-likelihood (as lifetimes)."""
        self.penalizer_coef = penalizer_coef
        self.initial_params = initial_params

    @classmethod
    def from_params(cls, p: float, q: float, gamma: float) -> "GammaGamma":
        model = cls()
        model._set_params(np.array([p, q, gamma], dtype=float))
        return model

    def _set_params(self, params: np.ndarray) -> None:
        self.p_, self.q_, self.gamma_ = (float(v) for v in params)
        self.params_ = dict(zip(self.param_names, (self.p_, self.q_, self.gamma_)))

    def _params(self) -> np.ndarray:
        try:
            return np.array([self.p_, self.q_, self.gamma_])
        except AttributeError:
            raise RuntimeError("GammaGamma is not fitted: call fit() or GammaGamma.from_params()") from None

    def fit(self, frequency, monetary=None, *, weights=None) -> "GammaGamma":
        x, m = _columns(frequency, (monetary,), ("frequency", "monetary_value"))
        if len(x) != len(m):
            raise ValueError("frequency and monetary must have the same length")
        if not (np.isfinite(x).all() and np.isfinite(m).all()):
            raise ValueError("frequency and monetary must be finite")
        keep = (x > 0) & (m > 0)
        w = None if weights is None else _array(weights, "weights")[keep]
        x, m = x[keep], m[keep]
        if len(x) < 3:
            raise ValueError("Gamma-Gamma needs repeat buyers with positive spend (frequency > 0, monetary > 0)")
        data = _GGData(x, m, w)
        if self.initial_params is not None:
            phi0 = np.log([float(self.initial_params[k]) for k in self.param_names])
        else:
            mean_m = float(np.average(m, weights=w))
            phi0 = np.log([1.0, 2.0, mean_m])  # p = 1, q = 2: population mean p gamma / (q - 1) = mean spend
        c = float(self.penalizer_coef)

        def objective(phi):
            value, grad = data.nll(phi)
            if c:
                theta = np.exp(phi)
                value, grad = value + c * float(theta @ theta), grad + 2 * c * theta**2
            return value, grad

        with _single_threaded_blas():
            result = _minimize(objective, phi0)
        # Along the ridge a run-away fit follows (q, gamma -> infinity with their ratio fixed) the
        # likelihood is flat: whether the gradient test passes there depends on the CPU's rounding, so
        # a fit that reached the boundary is reported by the warning below, not as a failure.
        at_boundary = bool(np.all(np.isfinite(result.x)) and np.max(np.abs(result.x)) > 12)
        if not np.all(np.isfinite(result.x)) or (np.max(np.abs(result.jac)) > 1e-5 and not at_boundary):
            raise ConvergenceError(f"Gamma-Gamma fit did not converge ({result.message}); try penalizer_coef > 0")
        self._set_params(np.exp(result.x))
        self.log_likelihood_ = float(-data.nll(result.x)[0] * data.N)
        self.n_customers_ = data.N
        self.n_iter_ = result.nit
        if np.max(np.abs(result.x)) > 12:
            warnings.warn(
                f"Gamma-Gamma parameters ran to the boundary ({self!r}): too few repeat buyers or no spread in "
                "spend; consider penalizer_coef > 0", RuntimeWarning, stacklevel=2,
            )
        if self.q_ <= 1:
            warnings.warn("Gamma-Gamma q <= 1: the population mean spend is infinite", RuntimeWarning, stacklevel=2)
        return self

    def conditional_expected_average_profit(self, frequency=None, monetary=None) -> np.ndarray | float:
        """E[mean transaction value | frequency, monetary]; without arguments the population mean p gamma/(q-1).
        Customers with frequency 0 get the population mean."""
        p, q, g = self._params()
        if frequency is None and monetary is None:
            return p * g / (q - 1)
        x, m = _columns(frequency, (monetary,), ("frequency", "monetary_value"))
        m = np.where(x > 0, m, 0.0)
        return (p * (g + x * m)) / (p * x + q - 1)

    expected_spend = conditional_expected_average_profit

    def clv(self, transaction_model: BGNBD, frequency, recency=None, T=None, monetary=None, **kwargs) -> np.ndarray:
        """Discounted expected spend; see ``ml.ltv.clv`` for the keyword arguments and units."""
        if _is_frame(frequency) and recency is None:
            x, tx, T_, m = _columns(frequency, (None, None, None), ("frequency", "recency", "T", "monetary_value"))
        else:
            x, tx, T_, m = _columns(frequency, (recency, T, monetary), ("frequency", "recency", "T", "monetary_value"))
        return clv(transaction_model, self, x, tx, T_, m, **kwargs)

    def __repr__(self) -> str:
        if not hasattr(self, "p_"):
            return "GammaGamma()"
        return f"GammaGamma(p={self.p_:.4g}, q={self.q_:.4g}, gamma={self.gamma_:.4g})"


def clv(
    transaction_model: BGNBD,
    spend_model: GammaGamma,
    frequency,
    recency=None,
    T=None,
    monetary=None,
    *,
    horizon: int = 12,
    discount_rate: float = 0.01,
    freq: str = "W",
    months_per_period: float = 1.0,
) -> np.ndarray:
    """Customer lifetime value: discounted expected spend over the next ``horizon`` periods.

    A period is ``months_per_period`` months (default one month = 365.25/12 days); ``discount_rate`` is per
    period (0.01 = 1 % a month), applied at the end of each period: sum_k spend x E[purchases in period k] /
    (1 + d)^k. ``freq`` is the time unit of recency/T and of the fitted BG/NBD model ("W" weeks or "D" days).
    Spend per purchase is the Gamma-Gamma conditional expectation (population mean for frequency 0).
    """
    if freq not in DAYS_PER_UNIT:
        raise ValueError(f"freq must be one of {sorted(DAYS_PER_UNIT)}")
    if horizon < 0 or discount_rate <= -1:
        raise ValueError("horizon must be >= 0 and discount_rate > -1")
    x, tx, T_ = _columns(frequency, (recency, T), ("frequency", "recency", "T"))
    if monetary is None and _is_frame(frequency):
        monetary = _array(frequency["monetary_value"], "monetary_value")
    m = _array(monetary, "monetary")
    period = months_per_period * DAYS_PER_MONTH / DAYS_PER_UNIT[freq]
    ts = period * np.arange(0, horizon + 1)
    cumulative = transaction_model._conditional_expected_purchases(ts, x, tx, T_)
    per_period = np.diff(cumulative, axis=0)
    discount = (1.0 + discount_rate) ** -np.arange(1, horizon + 1)
    spend = spend_model.conditional_expected_average_profit(x, m)
    return spend * (discount @ per_period)


# --------------------------------------------------------------------------------------------------------------
# RFM summaries from transactions


def _as_date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    raise TypeError(f"expected a date, datetime or ISO string, got {value!r}")


def _day_expr(frame: pl.DataFrame | pl.LazyFrame, time_col: str) -> pl.Expr:
    dtype = frame.collect_schema()[time_col]
    col = pl.col(time_col)
    if dtype == pl.Date:
        return col
    if isinstance(dtype, pl.Datetime):
        return col.dt.date()
    if dtype == pl.String:
        return col.str.to_date(strict=True)
    raise TypeError(f"{time_col} must be a Date, Datetime or ISO date string column, not {dtype}")


def _merged_days(transactions, customer_col, time_col, value_col) -> pl.LazyFrame:
    """One row per customer and purchase day: same-day purchases merged, their values summed."""
    lazy = transactions.lazy()
    value = pl.col(value_col).cast(pl.Float64) if value_col else pl.lit(0.0)
    return (
        lazy.select(pl.col(customer_col), _day_expr(lazy, time_col).alias("_day"), value.alias("_value"))
        .drop_nulls(["_day"])
        .group_by(customer_col, "_day")
        .agg(pl.col("_value").sum())
    )


def rfm_summary(
    transactions: pl.DataFrame,
    customer_col: str = "customer_id",
    time_col: str = "date",
    value_col: str | None = None,
    observation_end: date | datetime | str | None = None,
    freq: str = "W",
) -> pl.DataFrame:
    """Frequency / recency / T (and monetary_value when ``value_col`` is given) per customer.

    Purchases on the same calendar day are merged (values summed). Transactions after ``observation_end``
    (default: the last transaction day) are ignored. frequency = purchase days - 1; recency = last - first
    purchase day; T = observation_end - first purchase day; both in weeks (days / 7, fractional; not rounded
    to whole weeks as lifetimes does) for ``freq="W"``, in days for ``"D"``. monetary_value = mean value of the
    repeat purchase days (the first day excluded; 0 for customers without repeat purchases), the input the
    Gamma-Gamma model expects. Sorted by customer.
    """
    if freq not in DAYS_PER_UNIT:
        raise ValueError(f"freq must be one of {sorted(DAYS_PER_UNIT)}")
    unit = DAYS_PER_UNIT[freq]
    days = _merged_days(transactions, customer_col, time_col, value_col)
    end = _as_date(observation_end) if observation_end is not None else days.select(pl.col("_day").max()).collect().item()
    if end is None:
        raise ValueError("no transactions")
    days = days.filter(pl.col("_day") <= end)
    per_customer = (
        days.sort(customer_col, "_day")
        .group_by(customer_col)
        .agg(
            pl.col("_day").first().alias("_first"),
            pl.col("_day").last().alias("_last"),
            pl.len().alias("_n"),
            pl.col("_value").sum().alias("_total"),
            pl.col("_value").first().alias("_first_value"),
        )
    )
    frequency = (pl.col("_n") - 1).cast(pl.Int64)
    columns = [
        pl.col(customer_col),
        frequency.alias("frequency"),
        ((pl.col("_last") - pl.col("_first")).dt.total_days() / unit).alias("recency"),
        ((pl.lit(end) - pl.col("_first")).dt.total_days() / unit).alias("T"),
    ]
    if value_col:
        columns.append(
            pl.when(frequency > 0)
            .then((pl.col("_total") - pl.col("_first_value")) / frequency)
            .otherwise(0.0)
            .alias("monetary_value")
        )
    return per_customer.select(columns).sort(customer_col).collect()


def rfm_calibration_holdout(
    transactions: pl.DataFrame,
    customer_col: str = "customer_id",
    time_col: str = "date",
    value_col: str | None = None,
    *,
    calibration_end: date | datetime | str,
    observation_end: date | datetime | str | None = None,
    freq: str = "W",
) -> pl.DataFrame:
    """``rfm_summary`` up to ``calibration_end`` for customers who bought by then, plus their holdout period
    (calibration_end, observation_end]: frequency_holdout (purchase days), monetary_holdout (mean value of those
    days, 0 without purchases) and duration_holdout (same unit as T)."""
    cal_end = _as_date(calibration_end)
    calibration = rfm_summary(transactions, customer_col, time_col, value_col, cal_end, freq)
    days = _merged_days(transactions, customer_col, time_col, value_col)
    end = _as_date(observation_end) if observation_end is not None else days.select(pl.col("_day").max()).collect().item()
    if end < cal_end:
        raise ValueError("observation_end is before calibration_end")
    holdout = (
        days.filter((pl.col("_day") > cal_end) & (pl.col("_day") <= end))
        .group_by(customer_col)
        .agg(pl.len().cast(pl.Int64).alias("frequency_holdout"), pl.col("_value").mean().alias("monetary_holdout"))
        .collect()
    )
    out = calibration.join(holdout, on=customer_col, how="left", maintain_order="left").with_columns(
        pl.col("frequency_holdout").fill_null(0),
        pl.col("monetary_holdout").fill_null(0.0),
        pl.lit((end - cal_end).days / DAYS_PER_UNIT[freq]).alias("duration_holdout"),
    )
    if not value_col:
        out = out.drop("monetary_holdout")
    return out


# --------------------------------------------------------------------------------------------------------------
# simulation


def simulate_bgnbd(
    n: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: float | np.ndarray = 39.0,
    seed: int | None = None,
    holdout: float = 0.0,
) -> pl.DataFrame:
    """Customers drawn from the BG/NBD generative process, vectorised (exact, no time discretisation).

    lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b); purchases form a Poisson process of rate lambda from the
    first purchase at 0; the customer drops out right after each repeat purchase with probability p. Each
    customer is watched for ``T`` (scalar or one per customer) and then ``holdout`` more time units.
    Returns frequency, recency, T (+ frequency_holdout when holdout > 0) and the true lambda, p, alive (at T).
    """
    rng = np.random.default_rng(seed)
    T_arr = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    horizon = T_arr + holdout
    events = rng.poisson(lam * horizon)  # Poisson events in [0, T + holdout] had the customer stayed
    # the customer's last purchase is the J-th repeat purchase, J ~ Geometric(p) on 1, 2, ...
    drop_after = rng.geometric(np.clip(p, 1e-300, 1.0))
    in_calibration = rng.binomial(events, T_arr / horizon) if holdout > 0 else events
    x = np.minimum(in_calibration, drop_after)
    # given k events uniform on [0, T], the x-th is T * Beta(x, k - x + 1)
    has = x > 0
    recency = np.zeros(n)
    recency[has] = T_arr[has] * rng.beta(x[has], in_calibration[has] - x[has] + 1)
    columns: dict[str, Any] = {"frequency": x.astype(np.int64), "recency": recency, "T": T_arr}
    if holdout > 0:
        columns["frequency_holdout"] = (np.minimum(events, drop_after) - x).astype(np.int64)
    columns |= {"lambda": lam, "p": p, "alive": drop_after > in_calibration}
    return pl.DataFrame(columns)


def simulate_gamma_gamma(frequency, p: float, q: float, gamma: float, seed: int | None = None) -> np.ndarray:
    """Mean of ``frequency`` transaction values per customer under Gamma-Gamma (nan where frequency is 0)."""
    rng = np.random.default_rng(seed)
    x = _array(frequency, "frequency")
    nu = rng.gamma(q, 1.0 / gamma, size=len(x))
    pos = x > 0
    out = np.full(len(x), np.nan)
    # the sum of x Gamma(p, nu) values is Gamma(p x, nu)
    out[pos] = rng.gamma(p * x[pos], 1.0 / nu[pos]) / x[pos]
    return out
