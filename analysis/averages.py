"""Averages over trajectories: distance to an equilibrium state over time, comparison with the
exact master equation (z-scores, error-bar honesty) and the relaxation time.

Conventions: populations are in the energy eigenbasis; ``rho`` in the user's basis; a z-score
is ``(estimate - exact) / stderr`` with the result's own standard error.
"""

from __future__ import annotations

import math

import numpy as np

from .load import Result
from .reference import Reference
from .stats import GAUSS_WITHIN, within_fractions

# A standard error below this fraction of the family's scale (max(1, max |exact|)) is zero or
# rounding noise: every trajectory gave the same value (t = 0 from a pure state, a coherence
# that vanishes by symmetry, a level no trajectory reached). Such points are set aside.
ROUNDING_FLOOR = 1e-9
# A value resting on fewer trajectories' worth of signal than this is a rare event, not a
# Gaussian comparison (see compare_with_exact).
MIN_CONTRIBUTORS = 10


def gibbs_populations(energies: np.ndarray, beta: float) -> np.ndarray:
    """``exp(-beta E_n) / Z`` for each eigenstate (``beta = inf``: the ground level, evenly)."""
    if math.isinf(beta):
        p = (energies == energies.min()).astype(float)
    else:
        p = np.exp(-beta * (energies - energies.min()))
    return p / p.sum()


def trace_distance(result: Result, state: np.ndarray, eigenvectors: np.ndarray | None,
                   key: str = "rho") -> tuple[np.ndarray, str]:
    """``D(t) = (1/2) ||rho(t) - state||_1`` per time, and how it was computed.

    ``state`` is a density matrix in the energy eigenbasis. With the full ``rho`` and the
    eigenvectors the distance is exact; otherwise it is the distance of the eigenbasis
    populations, ``(1/2) sum_n |p_n - state_nn|``, a lower bound (equal when rho(t) and the
    state are both diagonal in the eigenbasis).
    """
    if result.has(key) and eigenvectors is not None:
        V = eigenvectors
        rho_eig = V.conj().T @ result[key] @ V
        difference = rho_eig - state[None]
        difference = 0.5 * (difference + np.conj(np.swapaxes(difference, 1, 2)))
        values = np.linalg.eigvalsh(difference)
        return 0.5 * np.abs(values).sum(axis=1), "full density matrix"
    populations = result["populations"]
    distance = 0.5 * np.abs(populations - np.real(np.diag(state))[None]).sum(axis=1)
    return distance, "eigenbasis populations (a lower bound on the trace distance)"


def distance_to_reference(result: Result, reference: Reference) -> tuple[np.ndarray, str]:
    """``(1/2) ||rho(t) - rho_exact(t)||_1`` per time (full matrices in the user's basis when
    both are stored, else the eigenbasis populations: a lower bound)."""
    if result.has("rho") and reference.rho is not None:
        difference = result["rho"] - reference.rho
        difference = 0.5 * (difference + np.conj(np.swapaxes(difference, 1, 2)))
        return 0.5 * np.abs(np.linalg.eigvalsh(difference)).sum(axis=1), "full density matrix"
    distance = 0.5 * np.abs(result["populations"] - reference.populations).sum(axis=1)
    return distance, "eigenbasis populations (a lower bound on the trace distance)"


def noise_level(result: Result) -> np.ndarray:
    """(T,) the expected trace distance of pure statistical noise in the populations,
    ``(1/2) sqrt(2/pi) sum_n stderr_n`` (the mean of ``|N(0, s^2)|`` is ``s sqrt(2/pi)``).

    A distance to the exact state below a few times this level cannot be resolved.
    """
    if not result.has("populations_stderr"):
        return np.zeros(result.times.size)
    return 0.5 * math.sqrt(2.0 / math.pi) * result["populations_stderr"].sum(axis=1)


def compare_with_exact(result: Result, reference: Reference,
                       observable_scales: dict | None = None) -> dict:
    """z-scores of every stored average against the exact solution.

    Families: eigenbasis ``populations``; each observable ``<name>``; ``rho`` (real parts on
    and above the diagonal, imaginary parts above it: the rest is fixed by Hermiticity) or
    ``rho_diagonal``. Two kinds of points are no Gaussian comparison and are set aside (their
    number and largest deviation are reported):

    - *same value*: zero or rounding-level standard error (every trajectory gave the same value:
      t = 0 from a pure state, a coherence that vanishes by symmetry, a level none reached);
    - *rare*: a standard error below ``sqrt(10) S / ntraj``, with ``S`` the largest value one
      trajectory can contribute (1 for density-matrix elements, the operator norm for an
      observable, from ``observable_scales``). The value then rests on fewer than about ten
      trajectories' worth of signal (a level few trajectories reach, a coherence only rare
      trajectories keep) and the sample standard error is not a Gaussian error bar.
    """
    families = {"populations": (result["populations"], result["populations_stderr"],
                                reference.populations, 1.0)}
    for name in result.observable_names:
        if name in reference.expectations and result.has(f"expect_{name}_stderr"):
            families[f"<{name}>"] = (result[f"expect_{name}"], result[f"expect_{name}_stderr"],
                                     reference.expectations[name],
                                     (observable_scales or {}).get(name))
    if result.has("rho") and reference.rho is not None:
        upper = np.triu_indices(result.dimension)
        strict = np.triu_indices(result.dimension, 1)
        rho, err, exact_rho = result["rho"], result["rho_stderr"], reference.rho
        families["rho (real part)"] = (rho.real[:, upper[0], upper[1]],
                                       err.real[:, upper[0], upper[1]],
                                       exact_rho.real[:, upper[0], upper[1]], 1.0)
        families["rho (imaginary part)"] = (rho.imag[:, strict[0], strict[1]],
                                            err.imag[:, strict[0], strict[1]],
                                            exact_rho.imag[:, strict[0], strict[1]], 1.0)
    elif result.has("rho_diagonal") and reference.rho_diagonal is not None:
        families["rho_diagonal"] = (result["rho_diagonal"], result["rho_diagonal_stderr"],
                                    reference.rho_diagonal, 1.0)
    rows, pooled = [], []
    worst = {"max_abs_z": None}
    for name, (estimate, stderr, exact_value, bound) in families.items():
        resolution = None if bound is None else math.sqrt(MIN_CONTRIBUTORS) * bound / result.ntraj
        row, z = _family(name, estimate, stderr, exact_value, result.times, resolution)
        rows.append(row)
        pooled.append(z)
        if row["max_abs_z"] is not None and (worst["max_abs_z"] is None
                                             or row["max_abs_z"] > worst["max_abs_z"]):
            worst = row
    z_all = np.concatenate(pooled) if pooled else np.zeros(0)
    rare_z = [r["rare_max_abs_z"] for r in rows if r["rare_max_abs_z"] is not None]
    return {
        "source": reference.source,
        "n_points": int(z_all.size),
        **within_fractions(z_all),
        "gaussian": {f"within_{k}_sigma": v for k, v in GAUSS_WITHIN.items()},
        "max_abs_z": worst["max_abs_z"],
        "max_abs_z_at": None if worst["max_abs_z"] is None else
        {"quantity": worst["quantity"], "time": worst["max_abs_z_time"]},
        "same_value_points": sum(r["same_value_points"] for r in rows),
        "same_value_max_difference": max(r["same_value_max_difference"] for r in rows),
        "rare_points": sum(r["rare_points"] for r in rows),
        "rare_max_abs_z": max(rare_z, default=None),
        "families": rows,
    }


def _family(name: str, estimate, stderr, exact_value, times,
            resolution: float | None) -> tuple[dict, np.ndarray]:
    estimate = np.asarray(estimate, dtype=float).reshape(times.size, -1)
    stderr = np.asarray(stderr, dtype=float).reshape(times.size, -1)
    exact_value = np.asarray(exact_value, dtype=float).reshape(times.size, -1)
    difference = estimate - exact_value
    scale = max(1.0, float(np.max(np.abs(exact_value)))) if exact_value.size else 1.0
    same = stderr <= ROUNDING_FLOOR * scale
    rare = ~same & (stderr < resolution) if resolution is not None else np.zeros_like(same)
    usable = ~same & ~rare
    z = np.where(same, 0.0, difference / np.where(same, 1.0, stderr))
    row = {"quantity": name, "n_points": int(usable.sum()), **within_fractions(z[usable]),
           "max_abs_z": None, "max_abs_z_time": None,
           "same_value_points": int(same.sum()),
           "same_value_max_difference": float(np.abs(difference[same]).max(initial=0.0)),
           "rare_points": int(rare.sum()),
           "rare_max_abs_z": float(np.abs(z[rare]).max()) if rare.any() else None}
    if usable.any():
        flat = int(np.argmax(np.where(usable, np.abs(z), -1.0)))
        row["max_abs_z"] = float(np.abs(z).flat[flat])
        row["max_abs_z_time"] = float(times[flat // z.shape[1]])
    return row, z[usable]


def relaxation_time(times: np.ndarray, distance: np.ndarray, noise: np.ndarray,
                    min_points: int = 4) -> dict:
    """Relaxation time from ``D(t) ~ A exp(-t / tau)``: a least-squares line through
    ``ln D(t)``.

    Window: from the first time ``D`` has fallen by a factor e from its largest value (earlier
    times carry faster modes) until ``D`` first drops below three times the noise level (later
    points are noise). Each point is weighted by ``(D / sigma_D)^2`` with
    ``sigma_D = noise + 1e-3 D`` (the error of ``ln D``). Returns ``tau`` (None when the
    distance never rises clearly above the noise or the window is too short) and the window.
    """
    out = {"tau": None, "tau_stderr": None, "window": None, "n_points": 0, "reason": ""}
    peak = int(np.argmax(distance))
    # An exact solution has no statistical noise but rounding: about 1e-10 of the peak.
    noise = np.maximum(noise, 1e-10 * distance[peak])
    if distance[peak] <= 5 * max(float(noise[peak]), 1e-12):
        out["reason"] = "the state stays within the noise of the reference (already relaxed)"
        return out
    start = peak + int(np.argmax(distance[peak:] <= distance[peak] / math.e))
    if distance[start] > distance[peak] / math.e:
        out["reason"] = "the distance never falls by a factor e: run longer"
        return out
    resolved = distance[start:] > 3 * noise[start:]
    stop = start + (int(np.argmin(resolved)) if not resolved.all() else resolved.size)
    if stop - start < min_points:
        start = peak
        stop = peak + (int(np.argmin(distance[peak:] > 3 * noise[peak:]))
                       if np.any(distance[peak:] <= 3 * noise[peak:]) else distance.size - peak)
    if stop - start < min_points:
        out["reason"] = "fewer than 4 time points between the decay and the noise floor"
        return out
    t = times[start:stop]
    y = np.log(distance[start:stop])
    sigma = (noise[start:stop] + 1e-3 * distance[start:stop]) / distance[start:stop]
    weight = 1.0 / sigma**2
    design = np.stack([np.ones_like(t), t], axis=1)
    normal = design.T @ (weight[:, None] * design)
    intercept, slope = np.linalg.solve(normal, design.T @ (weight * y))
    residual = y - intercept - slope * t
    dof = t.size - 2
    scale = max(float(weight @ residual**2) / dof, 1.0) if dof > 0 else 1.0
    slope_stderr = math.sqrt(scale * np.linalg.inv(normal)[1, 1])
    if slope >= 0:
        out["reason"] = "the distance does not decrease in the fit window"
        return out
    out.update(tau=-1.0 / slope, tau_stderr=slope_stderr / slope**2,
               window=[float(t[0]), float(t[-1])], n_points=int(t.size))
    return out
