"""Heat statistics: the energy each trajectory hands to each bath (``Q_a``, the sum of the Bohr
frequencies of its jumps into bath ``a``; docs/design.md, "Conventions"), its mean and variance with
errors, its histogram, and the energy balance ``sum_a <Q_a> = -(<H>(t_final) - <H>(0))``.
"""

from __future__ import annotations

import math

import numpy as np

from .load import Result
from .stats import moments

# Heat distributions with at most this many distinct values are shown value by value (a
# trajectory's heat is a sum of Bohr frequencies, so it is discrete).
MAX_DISCRETE_VALUES = 60


def histogram(samples: np.ndarray, scale: float) -> dict:
    """Counts per distinct value when the heat takes few values, else on automatic bins.

    ``scale`` sets the rounding that identifies equal values (sums of the same frequencies in
    another order differ by rounding only).
    """
    rounded = _rounded(samples, scale)
    values, counts = np.unique(rounded, return_counts=True)
    if values.size <= MAX_DISCRETE_VALUES:
        return {"kind": "discrete", "values": values, "counts": counts}
    counts, edges = np.histogram(samples, bins="auto")
    return {"kind": "binned", "edges": edges, "counts": counts}


def _rounded(samples: np.ndarray, scale: float) -> np.ndarray:
    decimals = max(0, int(-math.floor(math.log10(1e-9 * max(scale, 1e-300)))))
    return np.round(samples, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0


def heat_statistics(result: Result, energy_change: dict | None,
                    exact_heat: np.ndarray | None) -> dict:
    """Per bath: mean, variance (with standard errors) and histogram of ``Q_a``; the total
    compared with the energy balance and, when known, each bath with the exact mean heat.

    ``energy_change``: ``{"value", "stderr", "source"}`` for ``<H>(t_final) - <H>(0)``
    (stderr 0 for an exact reference). ``exact_heat``: (n_baths,) exact mean heat, or None.
    """
    heat = result["heat"]
    scale = 1.0 + float(np.max(np.abs(result.energies)))
    baths = []
    for a in range(heat.shape[1]):
        row = {"bath": a, "name": result.bath_names[a], **moments(heat[:, a]),
               "min": float(_rounded(heat[:, a], scale).min()),
               "max": float(_rounded(heat[:, a], scale).max()),
               "histogram": histogram(heat[:, a], scale), "exact_mean": None, "z_vs_exact": None}
        if exact_heat is not None:
            row["exact_mean"] = float(exact_heat[a])
            row["z_vs_exact"] = _z(row["mean"] - exact_heat[a], row["stderr"])
        baths.append(row)
    total = moments(heat.sum(axis=1))
    balance = {"total_mean": total["mean"], "total_stderr": total["stderr"], "expected": None,
               "z": None, "source": None}
    if energy_change is not None:
        # The two errors are positively correlated (Q = -dE trajectory by trajectory for
        # eigenstates): adding them is an upper bound on the error of the difference.
        stderr = total["stderr"] + energy_change["stderr"]
        balance.update(expected=-energy_change["value"], source=energy_change["source"],
                       z=_z(total["mean"] + energy_change["value"], stderr))
    return {"baths": baths, "balance": balance,
            "mean": [b["mean"] for b in baths], "stderr": [b["stderr"] for b in baths]}


def _z(difference: float, stderr: float) -> float | None:
    if stderr > 0:
        return float(difference / stderr)
    return 0.0 if abs(difference) < 1e-12 else None


def energy_change_from(result: Result, reference_populations: np.ndarray | None) -> dict | None:
    """``<H>(t_final) - <H>(0)``: exact from the reference populations, else from the run's own
    ``energy`` observable (with its error), else None."""
    energies = result.energies
    if reference_populations is not None:
        energy = reference_populations @ energies
        return {"value": float(energy[-1] - energy[0]), "stderr": 0.0,
                "source": "exact master equation"}
    if result.has("expect_energy") and result.has("expect_energy_stderr"):
        energy, error = result["expect_energy"], result["expect_energy_stderr"]
        return {"value": float(energy[-1] - energy[0]),
                "stderr": float(math.hypot(error[-1], error[0])),
                "source": "the run's own <energy> (no exact reference)"}
    return None
