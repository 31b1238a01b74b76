"""Small statistics used by the analysis: Poisson intervals, moments with errors, z-score
summaries, and conversion of results to JSON-safe values."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

# Gaussian probabilities of |z| < 1, 2, 3.
GAUSS_WITHIN = {k: float(math.erf(k / math.sqrt(2.0))) for k in (1, 2, 3)}


def poisson_interval(count: int | np.ndarray,
                     confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) two-sided confidence interval for the mean of a Poisson count.

    ``[chi2.ppf(a/2, 2N)/2, chi2.ppf(1-a/2, 2N+2)/2]`` with ``a = 1 - confidence``; the lower
    end is 0 for ``N = 0``. Divide by the exposure (time) to get a rate interval.
    """
    count = np.asarray(count, dtype=float)
    alpha = 1.0 - confidence
    lower = np.where(count > 0, stats.chi2.ppf(alpha / 2, 2 * np.maximum(count, 1)) / 2, 0.0)
    upper = stats.chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2
    return lower, upper


def moments(samples: np.ndarray) -> dict[str, float]:
    """Mean and variance of i.i.d. samples with their standard errors.

    ``stderr(variance) = sqrt((m4 - s^4 (n-3)/(n-1)) / n)`` (the large-sample variance of the
    unbiased sample variance; m4 is the fourth central moment).
    """
    x = np.asarray(samples, dtype=float)
    n = x.size
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return {"n": n, "mean": mean, "stderr": math.nan, "variance": math.nan,
                "variance_stderr": math.nan}
    centred = x - mean
    variance = float(centred @ centred / (n - 1))
    m4 = float(np.mean(centred**4))
    var_of_var = max(m4 - variance**2 * (n - 3) / (n - 1), 0.0) / n
    return {"n": n, "mean": mean, "stderr": math.sqrt(variance / n), "variance": variance,
            "variance_stderr": math.sqrt(var_of_var)}


def within_fractions(z: np.ndarray) -> dict[str, float | None]:
    """Fractions of ``|z| < 1, 2, 3``: about 0.683, 0.954, 0.997 when error bars are honest."""
    z = np.abs(np.asarray(z, dtype=float))
    if z.size == 0:
        return {f"within_{k}_sigma": None for k in (1, 2, 3)}
    return {f"within_{k}_sigma": float(np.mean(z < k)) for k in (1, 2, 3)}


def chi2_p_value(chi2: float, dof: int) -> float | None:
    """Upper-tail probability of a chi-square statistic (None without degrees of freedom)."""
    if dof < 1:
        return None
    if not math.isfinite(chi2):
        return 0.0
    return float(stats.chi2.sf(chi2, dof))


def bonferroni_p_value(max_abs_z: float, n_tests: int) -> float | None:
    """``min(1, n * P(|Z| > max|z|))``: a valid (conservative) p-value for the largest of
    ``n`` Gaussian z-scores, whatever their correlation."""
    if n_tests < 1:
        return None
    return float(min(1.0, n_tests * 2.0 * stats.norm.sf(abs(max_abs_z))))


def json_safe(value: Any) -> Any:
    """Nested dicts/lists/arrays/numpy scalars as plain JSON values; nan and inf become None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value
