"""Statistics of the per-trajectory records (README, "Trajectory statistics"): cumulants of the
heat and of the jump counts, Fano factors, the scaled cumulant generating function (SCGF), the
integral and detailed fluctuation theorems, first-jump and between-jump waiting times, and the
steady-state heat currents, each with a standard error and, when an exact value is known, a
z-score ``(estimate - exact) / stderr``.

Conventions (docs/design.md, "Conventions"): hbar = k_B = 1; a jump through Bohr frequency
``w`` hands ``w`` to its bath (``w > 0`` emission, ``w < 0`` absorption, ``w = 0`` dephasing);
``Q_a`` is the sum of ``w`` over a trajectory's jumps into bath ``a``; the entropy production
is ``sigma = ln p0(n0) - ln p_t(n_t) + sum_a beta_a Q_a``. Trajectories are independent and
identically distributed, so every estimate is a sample statistic of i.i.d. values.

Exact values come from a mapping of arrays (a ``jumps exact`` result, or the on-the-fly
reference) with the keys of ``EXACT_KEYS``; each one absent gives ``None`` (never a number
that is not trusted).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import stats
from scipy.interpolate import CubicHermiteSpline, PchipInterpolator
from scipy.special import expit

from .heat import MAX_DISCRETE_VALUES, _rounded
from .load import Result
from .stats import bonferroni_p_value, chi2_p_value, moments

# The new per-trajectory records; a result with none of them has no statistics block.
RECORD_KEYS = ("emissions", "absorptions", "dephasings", "entropy_production",
               "first_jump_time", "initial_level", "final_level", "final_energy")
EXACT_KEYS = ("heat_mean", "heat_covariance", "heat_third_cumulant", "heat_current",
              "entropy_production_rate", "scgf_s", "scgf", "scgf_finite_t",
              "entropy_production_mean",
              "first_jump_survival", "first_jump_density", "waiting_time_survival",
              "waiting_time_density")
# Starts that are stationary: the detailed fluctuation theorem, the heat currents and the
# between-jump (Palm) waiting times apply. A Gibbs start is allowed with one temperature only.
STATIONARY_STARTS = ("steady_state", "gibbs")
JACKKNIFE_GROUPS = 50      # delete-a-group jackknife (third cumulant, covariances, ratios)
MIN_SAMPLES = 10           # fewer samples: no error bar
MIN_EFFECTIVE_SAMPLES = 50  # exponential averages with fewer effective samples are unreliable
MIN_EXPECTED = 5           # detailed FT: counts expected on each side of a tested bin pair
MAX_FT_BINS = 40
MIN_KS_SAMPLES = 5
COARSE_DENSITY_STEP = 0.25  # the exact density changes by more than this (relative to its
                            # maximum) between two output times: the grid is coarse
FINE_POINTS = 4001         # evaluation grid of the interpolated exact CDFs
EXPONENTIAL_NOTE = ("estimates of exp-averages are biased and their error bars dishonest when "
                    "a few trajectories dominate: a point is 'unreliable' when the weights or "
                    f"their squares have fewer than {MIN_EFFECTIVE_SAMPLES} effective samples; "
                    "n_eff only sees the sampled tail, so it cannot flag a tail no "
                    "trajectory reached")


def has_records(result: Result) -> bool:
    """True when the result carries any of the per-trajectory statistics records."""
    return result.is_trajectories and any(result.has(k) for k in RECORD_KEYS)


def z_score(estimate, stderr, exact) -> float | None:
    """``(estimate - exact) / stderr``; None when either is unknown or the error is zero
    (0.0 if the estimate then equals the exact value to rounding)."""
    if estimate is None or exact is None or stderr is None:
        return None
    if not (math.isfinite(estimate) and math.isfinite(exact) and math.isfinite(stderr)):
        return None
    if stderr > 0:
        return float((estimate - exact) / stderr)
    return 0.0 if abs(estimate - exact) <= 1e-12 * (1.0 + abs(exact)) else None


# -- cumulants with errors ------------------------------------------------------------------------

def jackknife(features: np.ndarray, statistic, groups: int = JACKKNIFE_GROUPS
              ) -> tuple[float, float]:
    """A statistic of column sums with its delete-a-group jackknife standard error.

    ``features`` (n, F) holds per-sample values whose sums determine the statistic:
    ``statistic(n, sums)`` with ``sums[..., j]`` the sum of column ``j`` (vectorised over a
    leading axis). The samples are split into ``g = min(groups, n)`` contiguous groups (they
    are i.i.d., so the order does not matter); with ``theta_(k)`` the statistic without group
    ``k``, ``Var = (g - 1)/g sum_k (theta_(k) - mean theta_(.))^2``.
    """
    n = features.shape[0]
    g = min(groups, n)
    starts = (np.arange(g) * n) // g
    part = np.add.reduceat(features, starts, axis=0)
    sizes = np.diff(np.append(starts, n))
    total = part.sum(axis=0)
    value = float(statistic(float(n), total))
    left = statistic((n - sizes).astype(float), total[None, :] - part)
    return value, float(math.sqrt((g - 1) / g * np.sum((left - left.mean()) ** 2)))


def _k3(n, s):
    """Unbiased third cumulant ``n^2 m3 / ((n-1)(n-2))`` from the power sums of centred data."""
    m1 = s[..., 0] / n
    m3 = s[..., 2] / n - 3 * m1 * s[..., 1] / n + 2 * m1**3
    return n * n / ((n - 1) * (n - 2)) * m3


def _covariance(n, s):
    return (s[..., 2] - s[..., 0] * s[..., 1] / n) / (n - 1)


def cumulants(samples: np.ndarray) -> dict:
    """The first three cumulants of i.i.d. samples with standard errors.

    - mean: ``s / sqrt(n)``;
    - variance (unbiased): ``sqrt((m4 - s^4 (n-3)/(n-1)) / n)`` (:func:`analysis.stats.moments`);
    - third cumulant (the k-statistic ``k3``): delete-a-group jackknife, :func:`jackknife`.
    """
    x = np.asarray(samples, dtype=float)
    base = moments(x)
    out = {"n": int(x.size), "mean": base["mean"], "mean_stderr": base["stderr"],
           "variance": base["variance"], "variance_stderr": base["variance_stderr"],
           "third_cumulant": None, "third_cumulant_stderr": None}
    if x.size >= MIN_SAMPLES:
        y = x - base["mean"]
        out["third_cumulant"], out["third_cumulant_stderr"] = jackknife(
            np.stack([y, y * y, y**3], axis=1), _k3)
    return out


def covariance(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
    """Unbiased covariance of paired samples and its jackknife standard error."""
    if x.size < MIN_SAMPLES:
        return None, None
    dx, dy = x - x.mean(), y - y.mean()
    return jackknife(np.stack([dx, dy, dx * dy], axis=1), _covariance)


def variance_to_mean(samples: np.ndarray) -> tuple[float | None, float | None]:
    """``Var(x) / |<x>|`` and its jackknife standard error (None for a mean of zero)."""
    x = np.asarray(samples, dtype=float)
    if x.size < MIN_SAMPLES or x.mean() == 0:
        return None, None
    c = float(x.mean())
    y = x - c

    def ratio(n, s):
        return (s[..., 1] - s[..., 0] ** 2 / n) / (n - 1) / np.abs(c + s[..., 0] / n)

    return jackknife(np.stack([y, y * y], axis=1), ratio)


# -- exponential averages -----------------------------------------------------------------------

def _weights(exponent: np.ndarray) -> tuple[float, np.ndarray, float, float]:
    """``exp(exponent) = exp(top) * w`` with ``max(w) = 1`` (no overflow); the effective
    sample size ``n_eff(w) = (sum w)^2 / sum w^2`` of the weights and of their squares.

    The mean of ``w`` needs ``n_eff(w)`` large; its standard error is the mean of ``w^2``,
    which needs ``n_eff(w^2)`` large too (on Poisson, Gaussian and exponential samples of
    2e3 to 2e5 values, z-scores had a spread of 1.0-1.1 once both were >= 50, and up to 3
    with ``n_eff(w)`` alone >= 50).
    """
    top = float(exponent.max())
    w = np.exp(exponent - top)
    w2 = w * w
    return top, w, float(w.sum()) ** 2 / float(w2.sum()), float(w2.sum()) ** 2 / float(w2 @ w2)


def scgf_estimate(heat: np.ndarray, s: np.ndarray, t: float) -> dict:
    """``theta_hat(s) = (1/t) ln mean_i exp(s Q_i)`` for one bath, per counting field ``s``.

    Error (delta method): with weights ``w_i = exp(s Q_i)`` and ``n_eff = (sum w)^2 / sum
    w^2``, ``stderr = (1/t) sqrt((n/n_eff - 1)/(n - 1))`` (the relative error of the mean
    weight). A point is unreliable when ``n_eff`` of the weights or of their squares is below
    ``MIN_EFFECTIVE_SAMPLES`` (:func:`_weights`; ``EXPONENTIAL_NOTE``). This is the finite-time
    ``(1/t) ln M(s, t)``, not the ``t -> inf`` limit: the two differ by ``O(1/t)``.
    """
    q = np.asarray(heat, dtype=float)
    n = q.size
    keys = ("theta", "stderr", "n_eff", "n_eff_squared", "max_share")
    out = {k: np.full(len(s), np.nan) for k in keys}
    for k, field in enumerate(np.asarray(s, dtype=float)):
        top, w, n_eff, n_eff2 = _weights(field * q)
        total = float(w.sum())
        out["theta"][k] = (top + math.log(total / n)) / t
        out["stderr"][k] = math.sqrt(max(n / n_eff - 1.0, 0.0) / max(n - 1, 1)) / t
        out["n_eff"][k], out["n_eff_squared"][k] = n_eff, n_eff2
        out["max_share"][k] = 1.0 / total
    out["reliable"] = np.minimum(out["n_eff"], out["n_eff_squared"]) >= MIN_EFFECTIVE_SAMPLES
    return out


def integral_fluctuation(sigma: np.ndarray, expected: float = 1.0) -> dict:
    """``<exp(-sigma)>`` over the trajectories with a finite ``sigma``, its standard error
    ``std / sqrt(n)`` and ``z`` against ``expected``: 1 (the integral fluctuation theorem)
    when the initial distribution covers every level, less when it does not (the run's
    ``ift_expected``; NaN: not known, no z).

    The z-score is given only when the weights ``exp(-sigma_i)`` and their squares have at
    least ``MIN_EFFECTIVE_SAMPLES`` effective samples (:func:`_weights`): otherwise the mean
    rests on the few trajectories with the most negative sigma and its error bar is not
    trustworthy.
    """
    sigma = np.asarray(sigma, dtype=float)
    finite = sigma[np.isfinite(sigma)]
    out = {"expected": None if not np.isfinite(expected) else float(expected),
           "n": int(finite.size), "n_undefined": int(sigma.size - finite.size), "mean": None,
           "stderr": None, "z": None, "effective_samples": None,
           "effective_samples_squared": None, "max_weight_share": None, "reliable": False,
           "reason": None}
    if finite.size < MIN_SAMPLES:
        out["reason"] = f"fewer than {MIN_SAMPLES} trajectories with a defined sigma"
        return out
    top, w, n_eff, n_eff2 = _weights(-finite)
    scale = math.exp(min(top, 700.0))
    total = float(w.sum())
    out.update(mean=scale * total / finite.size,
               stderr=scale * float(w.std(ddof=1)) / math.sqrt(finite.size),
               effective_samples=n_eff, effective_samples_squared=n_eff2,
               max_weight_share=1.0 / total)
    out["reliable"] = min(n_eff, n_eff2) >= MIN_EFFECTIVE_SAMPLES
    if out["expected"] is None:
        out["reason"] = ("the initial distribution leaves levels empty and the spectrum is "
                         "degenerate: the expected value (< 1) is not computed; no z")
    elif out["reliable"]:
        out["z"] = z_score(out["mean"], out["stderr"], out["expected"])
    else:
        out["reason"] = (f"n_eff = {n_eff:.3g} (of the squared weights {n_eff2:.3g}) < "
                         f"{MIN_EFFECTIVE_SAMPLES}: a few trajectories dominate <exp(-sigma)>; "
                         "no z")
    return out


# -- detailed fluctuation theorem ---------------------------------------------------------------

def detailed_fluctuation(sigma: np.ndarray) -> dict:
    """Test of ``P(sigma) / P(-sigma) = exp(sigma)`` on the finite, non-zero ``sigma``.

    The theorem is equivalent to: given ``|sigma| = u``, the sign is ``+`` with probability
    ``p(u) = 1/(1 + exp(-u))``. The ``|sigma|`` are grouped in bins (one per distinct value
    when sigma takes at most ``MAX_DISCRETE_VALUES`` values, else equal bins of the
    Freedman-Diaconis width, at most ``MAX_FT_BINS``); each bin is a pair of mirror bins
    ``B`` and ``-B``. Given the magnitudes, the count on the positive side is a sum of
    independent Bernoulli(``p(u_i)``): ``z = (N_+ - sum p) / sqrt(sum p (1 - p))``, exact in
    its mean whatever the bin width (no binning bias). Rule: a pair is tested when at least
    ``MIN_EXPECTED`` counts are expected on each side; ``chi2 = sum z^2`` on one degree of
    freedom per tested pair, and the Bonferroni p-value of the largest ``|z|``. For the plot,
    ``log_ratio = ln(N_+/N_-)`` (Poisson error ``sqrt(1/N_+ + 1/N_-)``) against its
    expectation ``ln(sum p / sum (1 - p))``, about the bin's sigma (the line of slope 1).
    """
    sigma = np.asarray(sigma, dtype=float)
    sigma = sigma[np.isfinite(sigma)]
    u = np.abs(sigma)
    scale = 1.0 + float(u.max(initial=0.0))
    keep = _rounded(u, scale) > 0
    sigma, u = sigma[keep], _rounded(u[keep], scale)
    values = np.unique(u)
    if values.size <= MAX_DISCRETE_VALUES:
        binning = "one bin per value of |sigma| (sigma takes few values)"
        index = np.searchsorted(values, u)
        ranges = [(float(v), float(v)) for v in values]
    else:
        q75, q25 = np.percentile(u, [75, 25])
        width = max(2 * (q75 - q25) / u.size ** (1 / 3), float(u.max()) / MAX_FT_BINS)
        edges = np.arange(0.0, float(u.max()) + width, width)
        binning = f"bins of |sigma| of width {width:.3g}"
        index = np.minimum(np.searchsorted(edges, u, side="right") - 1, edges.size - 2)
        ranges = list(zip(edges[:-1].tolist(), edges[1:].tolist()))
    p = expit(u)
    nbins = len(ranges)
    positive = np.bincount(index, weights=(sigma > 0).astype(float), minlength=nbins)
    negative = np.bincount(index, minlength=nbins) - positive
    expected = np.bincount(index, weights=p, minlength=nbins)
    expected_neg = np.bincount(index, weights=1 - p, minlength=nbins)
    variance = np.bincount(index, weights=p * (1 - p), minlength=nbins)
    bins, z_tested = [], []
    for k, (low, high) in enumerate(ranges):
        if positive[k] + negative[k] == 0:
            continue
        tested = bool(expected[k] >= MIN_EXPECTED and expected_neg[k] >= MIN_EXPECTED)
        both = positive[k] > 0 and negative[k] > 0
        z = float((positive[k] - expected[k]) / math.sqrt(variance[k])) if tested else None
        if tested:
            z_tested.append(z)
        bins.append({"sigma": 0.5 * (low + high), "sigma_range": [low, high],
                     "count_positive": int(positive[k]), "count_negative": int(negative[k]),
                     "expected_positive": float(expected[k]),
                     "expected_negative": float(expected_neg[k]),
                     "log_ratio": math.log(positive[k] / negative[k]) if both else None,
                     "log_ratio_stderr": math.sqrt(1 / positive[k] + 1 / negative[k])
                     if both else None,
                     "expected_log_ratio": math.log(expected[k] / expected_neg[k])
                     if expected_neg[k] > 0 else None,
                     "z": z, "tested": tested})
    z = np.array(z_tested)
    chi2 = float(z @ z) if z.size else None
    max_z = float(np.abs(z).max()) if z.size else None
    return {"binning": binning, "n": int(sigma.size), "bins": bins, "n_tested": int(z.size),
            "rule": f"a bin pair is tested when >= {MIN_EXPECTED} counts are expected on each "
                    "side given the |sigma| in it",
            "chi2": chi2, "dof": int(z.size),
            "p_value": chi2_p_value(chi2, int(z.size)) if z.size else None,
            "max_abs_z": max_z,
            "max_abs_z_p_value": bonferroni_p_value(max_z, int(z.size)) if z.size else None}


# -- waiting times ------------------------------------------------------------------------------

def survival_spline(times: np.ndarray, survival: np.ndarray, density: np.ndarray | None = None):
    """A survival function ``S`` between output times, with its interpolation method.

    With the density (``-dS/dt``) known at the grid points: the cubic Hermite interpolant of
    ``S`` and its derivative (fourth-order accurate); otherwise the monotone PCHIP interpolant.
    """
    if density is not None and density.shape == survival.shape and np.all(np.isfinite(density)):
        return CubicHermiteSpline(times, survival, -density), "cubic Hermite (survival and density)"
    return PchipInterpolator(times, survival), "monotone PCHIP (survival only)"


def _fine_grid(times: np.ndarray) -> np.ndarray:
    return np.unique(np.concatenate([times, np.linspace(times[0], times[-1], FINE_POINTS)]))


def _as_cdf(grid: np.ndarray, values: np.ndarray, density: np.ndarray) -> dict:
    """A non-decreasing CDF from 0 to 1 on ``grid``, and how well the output times resolve the
    exact ``density``: its largest change between consecutive times relative to its maximum
    (above ``COARSE_DENSITY_STEP`` the grid is coarse and the interpolated CDF is suspect)."""
    cdf = np.maximum.accumulate(np.maximum(values - values[0], 0.0))
    cdf = cdf / cdf[-1]  # the callers check that the CDF rises
    step = float(np.max(np.abs(np.diff(density))) / max(float(np.max(np.abs(density))), 1e-300))
    return {"grid": grid, "cdf": cdf, "density_max_step": step,
            "coarse_grid": step > COARSE_DENSITY_STEP}


def _ks(samples: np.ndarray, cdf: dict) -> dict:
    result = stats.kstest(samples, lambda v: np.interp(v, cdf["grid"], cdf["cdf"]))
    counts, edges = np.histogram(samples, bins=min(50, max(5, int(np.sqrt(samples.size)))))
    return {"ks_statistic": float(result.statistic), "p_value": float(result.pvalue),
            "density_max_step": cdf["density_max_step"], "coarse_grid": cdf["coarse_grid"],
            "histogram": {"counts": counts, "edges": edges}}


def first_jump_test(first: np.ndarray, times: np.ndarray, survival: np.ndarray,
                    density: np.ndarray | None = None) -> tuple[dict, np.ndarray | None]:
    """The first-jump times against the exact waiting-time distribution from the initial state.

    Trajectories with ``first = inf`` had no jump by ``t_final`` (censored). Their number is
    binomial with ``p = S(t_final)`` (a z-score); the observed times are tested (Kolmogorov-
    Smirnov) against the conditional CDF ``(1 - S(t)) / (1 - S(t_final))``, ``S`` interpolated
    between output times (:func:`survival_spline`). Returns the test and the exact conditional
    density on the output times (for the plot).
    """
    t_final = float(times[-1])
    observed = first[np.isfinite(first) & (first <= t_final)]
    n, s_end = first.size, float(survival[-1])
    out = {"n_observed": int(observed.size), "n_censored": int(n - observed.size),
           "censored_expected": n * s_end,
           "censored_z": z_score(n - observed.size, math.sqrt(n * s_end * (1 - s_end)), n * s_end),
           "ks_statistic": None, "p_value": None, "reason": None}
    if observed.size < MIN_KS_SAMPLES or 1 - s_end <= 0:
        out["reason"] = (f"fewer than {MIN_KS_SAMPLES} first jumps before t_final"
                         if 1 - s_end > 0 else "the exact first-jump probability is zero")
        return out, None
    spline, method = survival_spline(times, survival, density)
    grid = _fine_grid(times)
    exact_density = (density if density is not None else -spline(times, 1)) / (1.0 - s_end)
    out.update(_ks(observed, _as_cdf(grid, 1.0 - spline(grid), exact_density)),
               interpolation=method)
    return out, exact_density


def jump_intervals(trajectory: np.ndarray, time: np.ndarray, frequency: np.ndarray,
                   tol: float) -> np.ndarray:
    """Intervals between consecutive jumps with ``|w| > tol`` of each recorded trajectory,
    without the time before the first jump and the unfinished interval after the last."""
    keep = np.abs(frequency) > tol
    trajectory, time = trajectory[keep], time[keep]
    order = np.lexsort((time, trajectory))
    trajectory, time = trajectory[order], time[order]
    return np.diff(time)[trajectory[1:] == trajectory[:-1]]


def interval_test(intervals: np.ndarray, times: np.ndarray, survival: np.ndarray,
                  density: np.ndarray | None = None) -> tuple[dict, np.ndarray | None]:
    """Between-jump intervals against the steady-state (Palm) waiting-time distribution
    ``w(tau)``, corrected for the window ``[0, t_final]``.

    In a stationary run, an interval of length ``tau`` is seen whole only if it starts before
    ``t_final - tau``, so the observed intervals have density ``w(tau) (t_final - tau) / Z``;
    its CDF is ``t_final S(0) - (t_final - tau) S(tau) - int_0^tau S`` (up to ``Z``), with the
    Palm survival ``S`` interpolated (:func:`survival_spline`) and integrated exactly. The
    intervals of one trajectory are not independent, so the Kolmogorov-Smirnov p-value is
    approximate. Returns the test and the density of observed intervals on the output times.
    """
    out = {"n_intervals": int(intervals.size), "ks_statistic": None, "p_value": None,
           "note": "intervals of one trajectory are not independent: the p-value is approximate",
           "reason": None}
    if intervals.size < MIN_KS_SAMPLES:
        out["reason"] = f"fewer than {MIN_KS_SAMPLES} complete intervals between jumps"
        return out, None
    spline, method = survival_spline(times, survival, density)
    integral = spline.antiderivative()
    t_final, grid = float(times[-1]), _fine_grid(times)
    unnormalised = (t_final * spline(0.0) - (t_final - grid) * spline(grid)
                    - (integral(grid) - integral(0.0)))
    total = float(unnormalised[-1] - unnormalised[0])
    if not total > 0:
        out["reason"] = "the exact waiting-time distribution has no weight before t_final"
        return out, None
    w = density if density is not None else -spline(times, 1)
    out.update(_ks(intervals, _as_cdf(grid, unnormalised, w)), interpolation=method)
    return out, w * (t_final - times) / total


# -- the statistics block -----------------------------------------------------------------------

def _exact_value(exact: Mapping | None, key: str, n_times: int, final: bool = True):
    """An exact array (its t_final row when ``final``), or None (absent, or another grid)."""
    if exact is None or key not in exact:
        return None
    value = np.asarray(exact[key], dtype=float)
    if final:
        return value[-1] if value.ndim and value.shape[0] == n_times else None
    return value


def trajectory_statistics(result: Result, exact: Mapping | None = None,
                          exact_source: str | None = None,
                          exact_mean_heat: np.ndarray | None = None) -> tuple[dict, dict]:
    """The ``statistics`` block of report.json and the arrays its plots need.

    Parameters
    ----------
    exact : arrays with (some of) ``EXACT_KEYS`` on the result's time grid, or None.
    exact_source : where ``exact`` comes from, for the report.
    exact_mean_heat : (n_baths,) exact ``<Q_a(t_final)>`` used when ``exact`` has no
        ``heat_mean`` (:func:`analysis.reference.exact_mean_heat`).
    """
    t_final = float(result.times[-1])
    stationary = result.initial_state in STATIONARY_STARTS
    block = {"t_final": t_final, "trajectories": result.ntraj,
             "records": [k for k in RECORD_KEYS if result.has(k)],
             "exact_source": exact_source if exact is not None else None,
             "stationary_start": stationary}
    curves: dict = {}
    _heat(result, exact, exact_mean_heat, block)
    _counts(result, block)
    _currents(result, exact, stationary, block)
    curves["scgf_theta"] = _scgf(result, exact, block)
    _entropy(result, exact, stationary, block)
    _first_jump(result, exact, block, curves)
    _between_jumps(result, exact, stationary, block, curves)
    block["first_law"] = first_law(result)
    return block, curves


def _heat(result, exact, exact_mean_heat, block) -> None:
    T = result.times.size
    heat = result["heat"]
    mean = _exact_value(exact, "heat_mean", T)
    source = "heat_mean of the exact reference" if mean is not None else None
    if mean is None and exact_mean_heat is not None:
        mean, source = np.asarray(exact_mean_heat, dtype=float), "exact mean heat of the generator"
    cov = _exact_value(exact, "heat_covariance", T)
    third = _exact_value(exact, "heat_third_cumulant", T)
    rows = []
    for a in range(heat.shape[1]):
        c = cumulants(heat[:, a])
        row = {"bath": a, "name": result.bath_names[a], "n": c["n"]}
        for key, ex in (("mean", mean), ("variance", cov), ("third_cumulant", third)):
            value = None if ex is None else float(ex[a, a] if key == "variance" else ex[a])
            row.update({key: c[key], f"{key}_stderr": c[f"{key}_stderr"], f"{key}_exact": value,
                        f"z_{key}": z_score(c[key], c[f"{key}_stderr"], value)})
        rows.append(row)
    block["heat"], block["heat_exact_mean_source"] = rows, source
    pairs = []
    for a in range(heat.shape[1]):
        for b in range(a + 1, heat.shape[1]):
            value, stderr = covariance(heat[:, a], heat[:, b])
            ex = None if cov is None else float(cov[a, b])
            pairs.append({"baths": [a, b], "covariance": value, "stderr": stderr, "exact": ex,
                          "z": z_score(value, stderr, ex)})
    block["heat_covariance"] = pairs


def _counts(result, block) -> None:
    counts = {"n_jumps": cumulants(result["n_jumps"])}
    for key in ("emissions", "absorptions", "dephasings"):
        if result.has(key):
            counts[key] = [{"bath": a, **cumulants(column)} for a, column in
                           enumerate(np.asarray(result[key]).T)]
    block["jump_counts"] = counts
    fano = []
    heat = result["heat"]
    for a in range(heat.shape[1]):
        row = {"bath": a, "name": result.bath_names[a], "counts": None, "counts_stderr": None,
               "counts_reason": None}
        if result.has("emissions") and result.has("absorptions"):
            total = result["emissions"][:, a] + result["absorptions"][:, a]
            row["counts"], row["counts_stderr"] = variance_to_mean(total)
            if row["counts"] is None:
                row["counts_reason"] = "no jumps into this bath"
        else:
            row["counts_reason"] = "no emissions/absorptions records"
        c = block["heat"][a]  # the cumulants of Q_a (_heat runs first)
        row["heat"], row["heat_stderr"], row["heat_reason"] = None, None, None
        if c["mean_stderr"] is not None and abs(c["mean"]) > 3 * c["mean_stderr"] > 0:
            row["heat"], row["heat_stderr"] = variance_to_mean(heat[:, a])
        else:
            row["heat_reason"] = "<Q> is zero within 3 standard errors: the ratio is meaningless"
        fano.append(row)
    block["fano_factor"] = fano


def _currents(result, exact, stationary, block) -> None:
    block["heat_current"], block["heat_current_reason"] = None, None
    if not stationary:
        block["heat_current_reason"] = (f"the run starts in '{result.initial_state}', not in the "
                                        "steady state: <Q>/t is no steady-state current")
        return
    t = float(result.times[-1])
    ex = _exact_value(exact, "heat_current", 0, final=False)
    rows = []
    for a, h in enumerate(block["heat"]):
        current, stderr = h["mean"] / t, h["mean_stderr"] / t
        # From a stationary start <Q_a(t)> = J_a t exactly: the exact mean heat gives J_a too.
        value = (float(ex[a]) if ex is not None else
                 None if h["mean_exact"] is None else h["mean_exact"] / t)
        rows.append({"bath": a, "current": current, "stderr": stderr, "exact": value,
                     "z": z_score(current, stderr, value)})
    block["heat_current"] = rows


def _scgf(result, exact, block) -> np.ndarray | None:
    grid = result["scgf_s"] if result.has("scgf_s") else _exact_value(exact, "scgf_s", 0, False)
    empty = {"s": None, "t": float(result.times[-1]), "min_effective_samples":
             MIN_EFFECTIVE_SAMPLES, "note": EXPONENTIAL_NOTE, "reason": None}
    if grid is None or np.size(grid) == 0:
        block["scgf"] = {**empty, "reason": "no counting-field grid ([counting] s in the config)"}
        return None
    s, t, heat = np.asarray(grid, dtype=float).ravel(), float(result.times[-1]), result["heat"]
    exact_s = _exact_value(exact, "scgf_s", 0, False)
    limit = _exact_value(exact, "scgf", 0, False)
    finite = _exact_value(exact, "scgf_finite_t", 0, False)
    keys = ("theta", "theta_stderr", "theta_exact", "theta_limit", "z", "effective_samples",
            "effective_samples_squared", "max_weight_share", "reliable", "reasons")
    out = {**empty, "s": s, **{k: [] for k in keys}}
    raw = np.full((heat.shape[1], s.size), np.nan)
    for a in range(heat.shape[1]):
        est = scgf_estimate(heat[:, a], s, t)
        raw[a] = est["theta"]
        ex, lim = (_on_grid(values, exact_s, s, a) for values in (finite, limit))
        ok = est["reliable"]
        out["theta"].append(np.where(ok, est["theta"], np.nan))
        out["theta_stderr"].append(np.where(ok, est["stderr"], np.nan))
        out["theta_exact"].append(ex)
        out["theta_limit"].append(lim)
        out["z"].append([z_score(v, e, x) if r else None
                         for v, e, x, r in zip(est["theta"], est["stderr"], ex, ok)])
        out["effective_samples"].append(est["n_eff"])
        out["effective_samples_squared"].append(est["n_eff_squared"])
        out["max_weight_share"].append(est["max_share"])
        out["reliable"].append(ok)
        out["reasons"].append([None if r else f"unreliable: n_eff = {n:.3g}, of the squared "
                               f"weights {n2:.3g} (< {MIN_EFFECTIVE_SAMPLES}); largest weight "
                               f"{m:.0%} of the sum" for r, n, n2, m in
                               zip(ok, est["n_eff"], est["n_eff_squared"], est["max_share"])])
    out["comparison"] = (f"theta and theta_exact are (1/t) ln <exp(s Q)> at t = {t:.4g} (the "
                         "exact one from the tilted master equation); theta_limit is the "
                         "t -> inf SCGF, which differs by O(1/t)")
    block["scgf"] = out
    return raw


def _on_grid(values, exact_s, s: np.ndarray, bath: int) -> np.ndarray:
    """``values[bath]`` (n_baths, S') of an exact reference at the s values of ``s``."""
    out = np.full(s.size, np.nan)
    if exact_s is not None and values is not None and values.ndim == 2:
        for k, field in enumerate(s):
            match = np.flatnonzero(np.isclose(exact_s.ravel(), field, rtol=0, atol=1e-12))
            if match.size:
                out[k] = values[bath, match[0]]
    return out


def _entropy(result, exact, stationary, block) -> None:
    if not result.has("entropy_production"):
        reason = "no entropy_production record"
        block["integral_fluctuation_theorem"] = {"mean": None, "stderr": None, "z": None,
                                                 "reason": reason}
        block["entropy_production"] = {"mean": None, "stderr": None, "exact": None, "z": None,
                                       "reason": reason}
        block["detailed_fluctuation_theorem"] = {"applies": False, "reason": reason}
        return
    sigma = np.asarray(result["entropy_production"], dtype=float)
    expected = float(result["ift_expected"]) if result.has("ift_expected") else 1.0
    block["integral_fluctuation_theorem"] = integral_fluctuation(sigma, expected)
    finite = sigma[np.isfinite(sigma)]
    m = moments(finite)
    value = _exact_value(exact, "entropy_production_mean", result.times.size)
    source = "entropy_production_mean of the exact reference" if value is not None else None
    rate = _exact_value(exact, "entropy_production_rate", 0, final=False)
    if value is None and stationary and rate is not None:
        value, source = float(rate) * float(result.times[-1]), "steady-state rate x t_final"
    block["entropy_production"] = {
        "n": m["n"], "mean": m["mean"], "stderr": m["stderr"],
        "exact": None if value is None else float(value), "exact_source": source,
        "z": z_score(m["mean"], m["stderr"], None if value is None else float(value)),
        "reason": None if finite.size else "sigma is undefined in every trajectory"}
    if not stationary:
        block["detailed_fluctuation_theorem"] = {
            "applies": False, "reason": f"the run starts in '{result.initial_state}': the "
                                        "detailed theorem needs a steady-state start"}
    else:
        block["detailed_fluctuation_theorem"] = {"applies": True, "reason": None,
                                                 **detailed_fluctuation(sigma)}


def _first_jump(result, exact, block, curves) -> None:
    T = result.times.size
    survival = _exact_value(exact, "first_jump_survival", T, final=False)
    density = _exact_value(exact, "first_jump_density", T, final=False)
    test: dict = {"p_value": None}
    if not result.has("first_jump_time"):
        test["reason"] = "no first_jump_time record"
    elif survival is None or survival.shape != (T,):
        first = result["first_jump_time"]
        observed = first[np.isfinite(first)]
        counts, edges = np.histogram(observed, bins=min(50, max(5, int(np.sqrt(observed.size)))))
        test.update(n_observed=int(observed.size), n_censored=int(first.size - observed.size),
                    histogram={"counts": counts, "edges": edges},
                    reason="no exact first_jump_survival to test against")
    else:
        density = density if density is not None and density.shape == (T,) else None
        test, curves["first_jump_density"] = first_jump_test(
            np.asarray(result["first_jump_time"], dtype=float), result.times, survival, density)
    block["first_jump"] = test
    block["waiting_time_ks_p_value"] = test["p_value"]


def _jump_frequency(result) -> np.ndarray | None:
    """``w`` of every listed jump: stored, or from its channel (channels generator)."""
    if result.has("jump_frequency"):
        return np.asarray(result["jump_frequency"], dtype=float)
    if result.has("jump_channel"):
        return np.asarray(result["channel_frequency"], dtype=float)[result["jump_channel"]]
    return None


def _between_jumps(result, exact, stationary, block, curves) -> None:
    T = result.times.size
    test: dict = {"p_value": None}
    frequency = _jump_frequency(result)
    survival = _exact_value(exact, "waiting_time_survival", T, final=False)
    density = _exact_value(exact, "waiting_time_density", T, final=False)
    if not (result.has("jump_trajectory") and result.has("jump_time")) or frequency is None:
        test["reason"] = "no jump lists ([run] record_jumps = 0)"
    else:
        tol = 1e-9 * (1.0 + float(np.max(np.abs(result.energies))))
        listed = result["jump_trajectory"]
        intervals = jump_intervals(listed, np.asarray(result["jump_time"], dtype=float),
                                   frequency, tol)
        test["trajectories"] = int(np.unique(listed).size)
        if not stationary:
            test.update(n_intervals=int(intervals.size), reason=(
                f"the run starts in '{result.initial_state}': intervals are not Palm-distributed"))
        elif survival is None or survival.shape != (T,):
            test.update(n_intervals=int(intervals.size),
                        reason="no exact waiting_time_survival to test against")
        else:
            density = density if density is not None and density.shape == (T,) else None
            found, curves["interval_density"] = interval_test(intervals, result.times, survival,
                                                              density)
            test.update(found)
        curves["intervals"] = intervals
    block["between_jumps"] = test
    block["waiting_time_between_jumps_ks_p_value"] = test["p_value"]


def first_law(result: Result) -> dict:
    """Trajectory by trajectory, ``sum_a Q_a = E(n0) - final_energy`` where the state starts and
    ends in one level (every jump hands its ``w`` to a bath). Tolerance: ``1e-9 (1 + max|E|)``
    per jump (the channel frequency is its cluster's midpoint) plus rounding."""
    needed = ("initial_level", "final_level", "final_energy")
    if not all(result.has(k) for k in needed):
        return {"checked": 0, "max_abs_violation": None, "violations": None,
                "reason": "no initial_level/final_level/final_energy records"}
    initial, final = result["initial_level"], result["final_level"]
    both = (initial >= 0) & (final >= 0)
    if not both.any():
        return {"checked": 0, "max_abs_violation": None, "violations": None,
                "reason": "no trajectory starts and ends in a single level"}
    scale = 1.0 + float(np.max(np.abs(result.energies)))
    jumps = result["n_jumps"][both] + (result["dephasings"].sum(axis=1)[both]
                                       if result.has("dephasings") else 0)
    violation = np.abs(result["heat"][both].sum(axis=1)
                       - (result.level_energies[initial[both]] - result["final_energy"][both]))
    tolerance = 1e-9 * scale * (1.0 + jumps) + 1e-12 * scale
    return {"checked": int(both.sum()), "max_abs_violation": float(violation.max()),
            "violations": int(np.sum(violation > tolerance)), "reason": None}
