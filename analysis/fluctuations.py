"""The exchange fluctuation symmetry of the heat between two thermal baths.

Convention (README, "Trajectory statistics"; docs/design.md, "Conventions"): hbar = k_B = 1; a
jump through Bohr frequency ``w`` hands ``w`` to its bath; ``Q_a`` is the heat *given to* bath
``a``; ``theta_a(s) = lim (1/t) ln E[exp(s Q_a(t))]``. With exactly two thermal baths at
finite, different temperatures, the **hot** bath is the one with the smaller ``beta``, and

    theta_hot(s) = theta_hot(delta_beta - s),     delta_beta = beta_cold - beta_hot > 0

(symmetric about ``delta_beta / 2``; for the cold bath ``theta_cold(s) = theta_cold(-delta_beta
- s)``). Why: the rates obey ``gamma_a(-w) = exp(-beta_a w) gamma_a(w)``, so time reversal gives
``theta(s_hot, s_cold) = theta(-beta_hot - s_hot, -beta_cold - s_cold)`` for the joint SCGF,
and ``Q_hot + Q_cold = E(0) - E(t)`` is bounded, so the joint SCGF depends on ``s_hot - s_cold``
only (``L(s_h, s_c)`` is similar to ``L(s_h - s_c, 0)`` through ``exp(s_c H)``). The heat
flows out of the hot bath: ``theta_hot'(0) = <Q_hot>/t < 0``. The sign was checked on the
exact SCGF (``scgf`` of :func:`jumps.exact_statistics`) of a qubit between T = 2 and T = 0.5
and of a 4-spin Ising chain: symmetric to ~1e-16 about ``+delta_beta/2``, not about
``-delta_beta/2`` (``tests/test_fluctuations.py``).

Two checks (:func:`exchange_fluctuation_symmetry`):

- exact: the largest ``|theta_hot(s) - theta_hot(delta_beta - s)|`` of the exact SCGF over the
  grid points whose partner is on the grid (~1e-10 or below when the convention holds);
- trajectories: at each pair ``s < s'' = delta_beta - s`` of the result's ``scgf_s`` where both
  finite-time estimates ``(1/t) ln mean exp(s Q_hot)`` are reliable (the rule of
  :func:`analysis.statistics.scgf_estimate`), their difference with a delta-method error that
  keeps the correlation of the two (same trajectories), and ``z = difference / stderr``.

The symmetry is a ``t -> inf`` statement. At finite ``t`` the estimates carry ``O(1/t)``
boundary terms (the initial and final states) that differ between ``s`` and ``s'``: for the
qubit of ``mpi_runs/heat_qubit.toml`` at ``t = 40`` they are ~30 standard errors of 2e5
trajectories. So, when the generator is at hand (a rebuilt config), each pair also gets the
exact finite-time difference ``(1/t) ln[M(s, t) / M(s', t)]``, ``M(s, t) = E[exp(s Q_hot(t))]``
from the tilted master equation and the run's initial state, and ``z_finite_t`` against it:
that z is the calibrated test of the trajectories, ``z`` the (biased) test of the limit.
Both share a small positive skew (mean ~0.2 on synthetic Skellam heat, spread ~1): the error
comes from the same weights as the difference. A pair is "reliable" by the sampled weights
only, which cannot see a tail no trajectory reached (``analysis.statistics.EXPONENTIAL_NOTE``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy.sparse.linalg import expm_multiply

from jumps import generators
from jumps.errors import ConfigError
from jumps.runtime.plan import resolve_start
from jumps.runtime.statistics import model_state

from .load import Result
from .statistics import scgf_estimate

# Two counting fields are the same point of the grid within this.
GRID_TOLERANCE = 1e-9
CONVENTION = ("Q_a = heat given to bath a (a jump through w hands w to its bath); hot = the "
              "bath with the smaller beta; theta_hot(s) = theta_hot(delta_beta - s), "
              "delta_beta = beta_cold - beta_hot > 0 (symmetric about delta_beta/2)")
FINITE_T_NOTE = ("the symmetry holds as t -> inf; the finite-t estimates carry O(1/t) boundary "
                 "terms, so z (against 0) tests the limit and is biased, z_finite_t (against the "
                 "exact finite-t difference of the master equation) tests the trajectories")


def hot_and_cold(betas) -> tuple[int | None, int | None, float | None, str | None]:
    """``(hot, cold, delta_beta, reason)``: the two baths and ``beta_cold - beta_hot``, or
    ``reason`` (the others None) when there are not exactly two thermal baths at finite,
    different temperatures."""
    betas = np.asarray(betas, dtype=float).ravel()
    if betas.size != 2:
        return None, None, None, f"needs exactly two baths, the result has {betas.size}"
    if np.any(np.isnan(betas)):
        return None, None, None, "a bath is given by its rates (no temperature)"
    if np.any(~np.isfinite(betas)) or np.any(betas <= 0):
        return None, None, None, "a bath is at zero (or infinite) temperature"
    if betas[0] == betas[1]:
        return None, None, None, "the two baths have the same temperature (no heat current)"
    hot = int(np.argmin(betas))
    return hot, 1 - hot, float(betas[1 - hot] - betas[hot]), None


def partners(s: np.ndarray, delta_beta: float) -> np.ndarray:
    """For each ``s_k`` the index of ``delta_beta - s_k`` on the grid ``s`` (-1: not on it)."""
    s = np.asarray(s, dtype=float).ravel()
    out = np.full(s.size, -1)
    for k, field in enumerate(s):
        match = np.flatnonzero(np.abs(s - (delta_beta - field)) <= GRID_TOLERANCE
                               * (1.0 + abs(field)))
        if match.size:
            out[k] = match[0]
    return out


def exact_difference(s: np.ndarray, theta: np.ndarray, delta_beta: float) -> tuple[float | None,
                                                                                   int]:
    """Largest ``|theta(s) - theta(delta_beta - s)|`` over the grid points whose partner is on
    the grid, and the number of such points (None, 0 when there is none)."""
    index = partners(s, delta_beta)
    has = index >= 0
    if not has.any():
        return None, 0
    theta = np.asarray(theta, dtype=float).ravel()
    return float(np.max(np.abs(theta[has] - theta[index[has]]))), int(has.sum())


def pair_difference(heat: np.ndarray, s: float, partner: float, t: float) -> tuple[float, float]:
    """``(1/t) [ln mean exp(s Q) - ln mean exp(s' Q)]`` and its delta-method standard error
    ``std(u) / (t sqrt(n))``, ``u_i = w_i/mean(w) - w'_i/mean(w')`` (``w = exp(s Q)``): the
    two means come from the same trajectories, so their errors are correlated (strongly, for
    nearby fields) and do not add in quadrature."""
    q = np.asarray(heat, dtype=float)
    a, b = s * q, partner * q
    wa, wb = np.exp(a - a.max()), np.exp(b - b.max())
    difference = (a.max() - b.max() + math.log(wa.mean() / wb.mean())) / t
    u = wa / wa.mean() - wb / wb.mean()
    return float(difference), float(u.std(ddof=1) / math.sqrt(q.size) / t)


def finite_time_theta(generator, initial_state, bath: int, s_values, t: float) -> np.ndarray:
    """Exact ``(1/t) ln E[exp(s Q_bath(t))]`` from ``initial_state`` (a config's
    :class:`~jumps.runtime.config.InitialState`), by propagating the tilted master equation
    ``L_bath(s)`` (:mod:`jumps.physics.counting`); NaN where it is not positive and finite.
    Raises :class:`~jumps.errors.ConfigError` when the counting model cannot be built."""
    state = resolve_start(generator, initial_state)
    model = generators.of(generator).counting_model(generator, coherent=not state.is_diagonal)
    p0 = model_state(model, generator, state)
    p0 = p0 / (model.trace @ p0)
    out = np.full(np.size(s_values), np.nan)
    for k, field in enumerate(np.atleast_1d(np.asarray(s_values, dtype=float))):
        value = float(np.real(model.trace @ expm_multiply(model.tilted(bath, field) * t, p0)))
        if value > 0 and math.isfinite(value):
            out[k] = math.log(value) / t
    return out


def exchange_fluctuation_symmetry(result: Result, exact: Mapping | None = None,
                                  generator=None, initial_state=None) -> tuple[dict, dict]:
    """The ``exchange_fluctuation_symmetry`` entry of the statistics block, and plot curves.

    Parameters
    ----------
    result : a trajectory result with ``heat`` (N, 2) and ``scgf_s``.
    exact : arrays with ``scgf_s`` and ``scgf`` (n_baths, S), the ``t -> inf`` SCGF, or None.
    generator, initial_state : the run's generator and initial state (a rebuilt config), for
        the exact finite-time differences; None: those are left out.

    Returns
    -------
    entry : dict
        ``hot_bath``, ``cold_bath``, ``delta_beta``, ``convention``, ``exact_max_abs_difference``
        (None without an exact SCGF), ``exact_points``, ``pairs`` (each ``s``, ``s_partner``,
        ``theta``, ``theta_partner``, ``difference``, ``stderr``, ``z``,
        ``difference_exact_finite_t``, ``z_finite_t``), ``unpaired_reliable`` (reliable points
        whose partner is unreliable), ``max_abs_z``, ``max_abs_z_finite_t``, ``note``, and
        ``reason`` (None when the check applies, else why not; the rest then None or empty).
    curves : dict
        For the plot: ``s``, ``theta``, ``theta_stderr`` (NaN where unreliable),
        ``partner`` (index of ``delta_beta - s`` or -1), ``theta_exact``, ``theta_finite_t``.
    """
    hot, cold, delta_beta, reason = hot_and_cold(result.bath_beta)
    entry = {"hot_bath": hot, "cold_bath": cold, "delta_beta": delta_beta,
             "convention": CONVENTION, "exact_max_abs_difference": None, "exact_points": 0,
             "pairs": [], "unpaired_reliable": [], "max_abs_z": None, "max_abs_z_finite_t": None,
             "t": float(result.times[-1]), "note": FINITE_T_NOTE, "finite_t_reason": None,
             "reason": reason}
    if reason is not None:
        return entry, {}
    if exact is not None and "scgf" in exact and "scgf_s" in exact:
        theta = np.asarray(exact["scgf"], dtype=float)
        if theta.ndim == 2 and theta.shape[0] == 2:
            entry["exact_max_abs_difference"], entry["exact_points"] = exact_difference(
                exact["scgf_s"], theta[hot], delta_beta)
    if not (result.has("heat") and result.has("scgf_s")) or np.size(result["scgf_s"]) == 0:
        entry["reason"] = "no per-trajectory heat or no counting-field grid ([counting] s)"
        return entry, {}
    s = np.asarray(result["scgf_s"], dtype=float).ravel()
    t, q = float(result.times[-1]), np.asarray(result["heat"], dtype=float)[:, hot]
    est = scgf_estimate(q, s, t)
    index = partners(s, delta_beta)
    finite_t = _finite_time(generator, initial_state, hot, s, index, est["reliable"], t, entry)
    for k in np.flatnonzero((index >= 0) & est["reliable"]):
        j = index[k]
        if not est["reliable"][j]:
            entry["unpaired_reliable"].append(float(s[k]))
        if s[k] >= s[j] or not est["reliable"][j]:
            continue
        difference, stderr = pair_difference(q, float(s[k]), float(s[j]), t)
        expected = float(finite_t[k] - finite_t[j]) if finite_t is not None else None
        entry["pairs"].append({
            "s": float(s[k]), "s_partner": float(s[j]), "theta": float(est["theta"][k]),
            "theta_partner": float(est["theta"][j]), "difference": difference,
            "stderr": stderr, "z": _z(difference, stderr, 0.0),
            "difference_exact_finite_t": expected,
            "z_finite_t": None if expected is None else _z(difference, stderr, expected)})
    for key in ("z", "z_finite_t"):
        values = [abs(p[key]) for p in entry["pairs"] if p[key] is not None]
        entry["max_abs_" + key] = max(values) if values else None
    exact_theta = np.full(s.size, np.nan)
    if exact is not None and "scgf" in exact and "scgf_s" in exact:
        grid = np.asarray(exact["scgf_s"], dtype=float).ravel()
        for k, field in enumerate(s):
            match = np.flatnonzero(np.abs(grid - field) <= GRID_TOLERANCE * (1.0 + abs(field)))
            if match.size:
                exact_theta[k] = np.asarray(exact["scgf"], dtype=float)[hot, match[0]]
    curves = {"s": s, "theta": np.where(est["reliable"], est["theta"], np.nan),
              "theta_stderr": np.where(est["reliable"], est["stderr"], np.nan),
              "partner": index, "theta_exact": exact_theta,
              "theta_finite_t": finite_t if finite_t is not None else np.full(s.size, np.nan)}
    return entry, curves


def _finite_time(generator, initial_state, hot, s, index, reliable, t, entry):
    """The exact finite-t ``(1/t) ln M(s, t)`` at every grid point with a partner (NaN
    elsewhere), or None (the reason in ``entry["finite_t_reason"]``)."""
    if generator is None or initial_state is None:
        entry["finite_t_reason"] = "no generator (the config was not rebuilt)"
        return None
    wanted = index >= 0
    out = np.full(s.size, np.nan)
    try:
        out[wanted] = finite_time_theta(generator, initial_state, hot, s[wanted], t)
    except ConfigError as error:
        entry["finite_t_reason"] = f"no exact finite-t values: {error.reason}"
        return None
    return out


def _z(value: float, stderr: float, expected: float) -> float | None:
    if not (math.isfinite(value) and math.isfinite(expected)) or not stderr > 0:
        return None
    return float((value - expected) / stderr)


# -- text and plot (hooked into analysis.text and analysis.plots) --------------------------------

def render(entry: dict | None) -> list[str]:
    """Lines of the text report (under "Trajectory statistics")."""
    from .text import num, pm, table

    if not entry:
        return []
    if entry["hot_bath"] is None:
        return [f"  exchange fluctuation symmetry: not checked: {entry['reason']}"]
    lines = [(f"  exchange fluctuation symmetry theta_hot(s) = theta_hot(delta_beta - s): hot "
              f"= bath {entry['hot_bath']}, cold = bath {entry['cold_bath']}, delta_beta = "
              f"beta_cold - beta_hot = {num(entry['delta_beta'])} (Q = heat given to the bath)")]
    if entry["exact_max_abs_difference"] is not None:
        lines.append(f"    exact SCGF: max |theta(s) - theta(delta_beta - s)| = "
                     f"{num(entry['exact_max_abs_difference'], 2)} over {entry['exact_points']} "
                     "grid points with their partner on the grid")
    else:
        lines.append("    exact SCGF: none (no scgf in the exact reference, or no partner on "
                     "its grid)")
    if entry["reason"] is not None:
        return lines + [f"    trajectories: not checked: {entry['reason']}"]
    if not entry["pairs"]:
        return lines + ["    trajectories: no pair (s, delta_beta - s) with both points reliable"]
    rows = [[num(p["s"]), num(p["s_partner"]), pm(p["difference"], p["stderr"]),
             num(p["z"], 3), num(p["difference_exact_finite_t"]), num(p["z_finite_t"], 2)]
            for p in entry["pairs"]]
    lines += table(["s", "s'", "theta(s) - theta(s') at t", "z (vs 0)", "exact at t",
                    "z_finite_t"], rows, "rrlrrr", indent="      ")
    if entry["finite_t_reason"]:
        lines.append(f"    ({entry['finite_t_reason']})")
    lines.append(f"    ({entry['note']})")
    return lines


def plot(plt, analysis):
    """``exchange_symmetry.png``: theta_hot(s) (reliable estimates with 1-sigma bars, the exact
    ``t -> inf`` curve, the exact finite-t curve) and the mirrored theta_hot(delta_beta - s)."""
    from .plots import _title, unit_labels

    block = analysis.report.get("statistics") or {}
    entry = block.get("exchange_fluctuation_symmetry")
    curves = (analysis.curves.get("statistics") or {}).get("exchange_symmetry") or {}
    if not entry or entry["hot_bath"] is None or not curves:
        return None
    s, partner = curves["s"], curves["partner"]
    has = partner >= 0

    def mirrored(values):
        out = np.full(s.size, np.nan)
        out[has] = values[partner[has]]
        return out

    figure, axes = plt.subplots(figsize=(6.8, 4.8))
    db = entry["delta_beta"]
    axes.errorbar(s, curves["theta"], yerr=curves["theta_stderr"], fmt="o", ms=4, capsize=2,
                  color="C0", label=f"θ_hot(s): (1/t) ln⟨exp(sQ_hot)⟩, t = {entry['t']:.3g}")
    axes.errorbar(s, mirrored(curves["theta"]), yerr=mirrored(curves["theta_stderr"]), fmt="s",
                  ms=6, mfc="none", capsize=2, color="C1", label="θ_hot(Δβ − s), same estimates")
    if np.any(np.isfinite(curves["theta_finite_t"])):
        axes.plot(s, curves["theta_finite_t"], ":", color="C0", lw=1,
                  label="exact (1/t) ln M(s, t) (finite t)")
        axes.plot(s, mirrored(curves["theta_finite_t"]), ":", color="C1", lw=1,
                  label="exact (1/t) ln M(Δβ − s, t)")
    if np.any(np.isfinite(curves["theta_exact"])):
        axes.plot(s, curves["theta_exact"], "-", color="k", lw=1, label="exact θ_hot(s), t → ∞")
        axes.plot(s, mirrored(curves["theta_exact"]), "--", color="gray", lw=1.5,
                  label="exact θ_hot(Δβ − s), t → ∞")
    axes.axvline(db / 2, color="gray", lw=0.6, ls="-.")
    energy_label, _ = unit_labels(analysis.result.energy_unit)
    axes.set_xlabel(f"counting field s  [1/({energy_label})]")
    axes.set_ylabel("θ  [rate]")
    axes.set_title(f"Exchange symmetry: hot = bath {entry['hot_bath']}, Δβ = {db:.4g} "
                   f"(mirror axis s = Δβ/2)\n{_title(analysis)}", fontsize=9)
    axes.legend(fontsize=7)
    return figure
