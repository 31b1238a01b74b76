"""The analysis of one result directory as a JSON-ready dict (``report.json``).

:func:`analyse` composes the pieces (:mod:`.averages`, :mod:`.balance`, :mod:`.heat`, with the
exact side from :mod:`.reference`); :func:`write_report` writes it; :mod:`.text` renders it and
:mod:`.plots` draws it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jumps.errors import ConfigError
from jumps.physics.matrices import operator_norm
from jumps.runtime.info import SECULAR_MARGIN_OK, weak_coupling_warning
from jumps.runtime.io import write_json

from . import averages, balance, fluctuations, heat, reference, statistics
from .load import Result, load_result
from .stats import json_safe

REPORT_FILE = "report.json"
# Without a Gibbs start the stationary window begins this many relaxation times in.
STATIONARY_AFTER_TAUS = 5.0


@dataclass
class Analysis:
    """Everything the report and the plots need.

    ``report`` is JSON-ready; ``curves`` holds arrays for the plots (times, distances, the
    exact solution) that the report lists only in part.
    """

    result: Result
    report: dict
    reference: reference.Reference | None = None
    curves: dict = field(default_factory=dict)


def check_beta(beta: float | None) -> float | None:
    """A declared inverse temperature from the command line: positive (``inf`` allowed)."""
    if beta is None:
        return None
    if math.isnan(beta) or beta <= 0:
        raise ConfigError("--beta", f"must be a positive inverse temperature, got {beta!r}")
    return float(beta)


def analyse(result: Result, exact_dir: str | Path | None = None, beta: float | None = None,
            alpha: float = 0.01, solve_exact: bool = True,
            trajectory_statistics: bool | None = None) -> Analysis:
    """Analyse a result: distances to Gibbs and to the exact solution over time, relaxation
    time, z-scores against the exact solution, detailed balance, flux balance, Boltzmann test
    and heat (the last five for trajectory results only).

    Parameters
    ----------
    exact_dir : a ``python -m jumps exact`` result on the same grid, or None (then the master
        equation is solved here when the config can be rebuilt and d is small, unless
        ``solve_exact`` is False).
    beta : declared inverse temperature for the Gibbs state and the detailed-balance test;
        replaces the baths' own (needed for a bath given by its rates).
    alpha : significance level of the pass/fail verdicts.
    trajectory_statistics : the ``statistics`` block (:mod:`.statistics`): None makes it when
        the result carries the per-trajectory records, True requires them (a
        :class:`ConfigError` otherwise), False skips it.
    """
    beta = check_beta(beta)
    if not 0 < alpha < 1:
        raise ConfigError("--alpha", f"must be in (0, 1), got {alpha!r}")
    if trajectory_statistics and not statistics.has_records(result):
        raise ConfigError("--statistics", f"{result.path} has no per-trajectory statistics "
                          f"records ({', '.join(statistics.RECORD_KEYS[:5])}, ...)")
    notes: list[str] = []
    margin = result.meta.get("secular_margin")
    if isinstance(margin, (int, float)) and margin <= SECULAR_MARGIN_OK:
        notes.append(f"WARNING: secular margin {margin:.3g} (Bohr-frequency spacing / largest "
                     f"rate, flagged below {SECULAR_MARGIN_OK:g}): the secular approximation "
                     "behind the Davies equation is questionable for this system")
    weak_coupling = weak_coupling_warning(result.meta)
    if weak_coupling:
        notes.append(f"WARNING: {weak_coupling}")
    if result.derived:
        notes.append("derived from the spectrum (absent from the file): "
                     + ", ".join(result.derived))
    system = _attempt(lambda: reference.rebuild(result), notes, "generator")
    ref = None
    if exact_dir is not None:
        ref = reference.from_directory(result, exact_dir)
    elif solve_exact and system is not None and result.is_trajectories:
        ref = _attempt(lambda: reference.on_the_fly(result, system), notes, "exact solution")
    gibbs_beta, gibbs_source = _gibbs_beta(result, beta)
    report = {"result": _summary(result), "notes": notes, "times": result.times,
              "alpha": alpha, "gibbs_beta": gibbs_beta, "gibbs_beta_source": gibbs_source}
    curves = {"times": result.times}
    _distances(result, system, gibbs_beta, report, curves, notes)
    report["exact_trace_distance"] = None
    if ref is not None:
        curves["reference_populations"] = ref.populations
        distance, method = averages.distance_to_reference(result, ref)
        report["exact_trace_distance"] = distance
        report["exact_trace_distance_method"] = method
    if result.is_trajectories:
        _stochastic(result, system, ref, beta, alpha, gibbs_beta, report, notes)
    report["statistics"] = None
    if trajectory_statistics is not False and statistics.has_records(result):
        _statistics(result, ref, exact_dir, report, curves, system)
    return Analysis(result=result, report=json_safe(report), reference=ref, curves=curves)


def _attempt(action, notes: list[str], what: str):
    try:
        return action()
    except reference.Unavailable as reason:
        notes.append(f"no {what}: {reason}")
        return None


def _gibbs_beta(result: Result, beta: float | None) -> tuple[float | None, str]:
    if beta is not None:
        return beta, "--beta"
    betas = result.bath_beta
    if any(t is False for t in result.bath_thermal):
        return None, "a bath is given by its rates (no temperature): pass --beta"
    if np.any(np.isnan(betas)):
        return None, "the result stores no bath temperature: pass --beta"
    if np.unique(betas).size > 1:
        return None, "the baths have different temperatures: no Gibbs state"
    return float(betas[0]), "the baths"


def _summary(result: Result) -> dict:
    meta = result.meta
    return {"path": str(result.path), "method": result.method, "model": meta.get("model"),
            "dimension": result.dimension, "n_levels": result.n_levels,
            "trajectories": result.ntraj if result.is_trajectories else None,
            "seed": meta.get("seed"), "initial_state": result.initial_state,
            "energy_unit": result.energy_unit, "t_final": float(result.times[-1]),
            "n_times": int(result.times.size),
            "baths": [{"index": a, "name": result.bath_names[a], "beta": result.bath_beta[a],
                       "thermal": result.bath_thermal[a]} for a in range(result.n_baths)]}


def _distances(result: Result, system, gibbs_beta, report: dict, curves: dict,
               notes: list[str]) -> None:
    """Trace distance to Gibbs over time, and the relaxation time (fit and generator gap)."""
    vectors = system.generator.eigenvectors if system is not None else None
    noise = averages.noise_level(result)
    curves["noise_level"] = noise
    report["noise_level"] = noise
    report["gibbs_trace_distance"] = None
    if gibbs_beta is not None:
        state = np.diag(averages.gibbs_populations(result.energies, gibbs_beta))
        distance, method = averages.trace_distance(result, state, vectors)
        report["gibbs_trace_distance"] = distance
        report["gibbs_trace_distance_method"] = method
        curves["gibbs_trace_distance"] = distance
    # The relaxation is measured towards the true steady state of the dynamics (Gibbs for
    # thermal baths; another state for non-thermal rates, or a --beta that is not the baths').
    target, target_name = None, None
    if system is not None:
        target = _attempt(lambda: reference.steady_state(system.generator), notes, "steady state")
        target_name = "steady state of the generator"
    if target is None and gibbs_beta is not None and gibbs_beta == _gibbs_beta(result, None)[0]:
        target = np.diag(averages.gibbs_populations(result.energies, gibbs_beta))
        target_name = "Gibbs state"
    relaxation = {"reference_state": target_name, "tau": None, "reason": "no reference state"}
    if target is not None:
        distance, method = averages.trace_distance(result, target, vectors)
        relaxation = {"reference_state": target_name, "distance_method": method,
                      **averages.relaxation_time(result.times, distance, noise)}
        curves["relaxation_distance"] = distance
    relaxation["tau_generator"] = None
    if system is not None:
        rate = _attempt(lambda: reference.slowest_relaxation_rate(system.generator), notes,
                        "Liouvillian gap")
        relaxation["tau_generator"] = 1.0 / rate if rate else None
    report["relaxation"] = relaxation
    curves["relaxation"] = relaxation


def _stochastic(result, system, ref, beta, alpha, gibbs_beta, report: dict,
                notes: list[str]) -> None:
    """Exact comparison, detailed balance, flux balance, Boltzmann test and heat."""
    scales = None
    if system is not None:
        # The most one trajectory can contribute to <O>: the operator norm.
        scales = {name: operator_norm(op) for name, op in system.config.observables.items()}
    comparison = averages.compare_with_exact(result, ref, scales) if ref is not None else None
    report["comparison"] = comparison
    report["max_z_vs_exact"] = comparison["max_abs_z"] if comparison else None
    sigmas = ("within_1_sigma", "within_2_sigma", "within_3_sigma")
    report["honesty"] = {k: comparison[k] for k in sigmas} if comparison else None
    db = balance.detailed_balance(result, beta, alpha)
    report["detailed_balance"] = db.pop("entries")
    report["detailed_balance_p_value"] = db["p_value"]
    report["detailed_balance_test"] = db
    report["flux_balance"] = balance.flux_balance(result)
    start, reason = _stationary_window(result, report["relaxation"])
    report["boltzmann"] = balance.boltzmann_test(result, gibbs_beta, start, reason)
    exact_heat = None
    if system is not None:
        exact_heat = _attempt(lambda: reference.exact_mean_heat(system, float(result.times[-1])),
                              notes, "exact heat per bath")
    change = heat.energy_change_from(result, ref.populations if ref is not None else None)
    statistics = heat.heat_statistics(result, change, exact_heat)
    report["heat"] = statistics
    report["heat_mean"] = statistics["mean"]
    report["heat_stderr"] = statistics["stderr"]


def _statistics(result: Result, ref, exact_dir, report: dict, curves: dict,
                system=None) -> None:
    """The ``statistics`` block, with the exact keys of a ``--exact`` directory or of the
    on-the-fly reference (its ``arrays`` mapping, when it has one); the exchange fluctuation
    symmetry (:mod:`.fluctuations`) uses the rebuilt ``system`` for its finite-t values."""
    exact, source = None, None
    if exact_dir is not None:
        other = load_result(exact_dir)
        exact, source = other.arrays, f"exact result {other.path}"
    elif ref is not None and isinstance(getattr(ref, "arrays", None), dict):
        exact, source = ref.arrays, ref.source
    if exact is not None and not any(k in exact for k in statistics.EXACT_KEYS):
        exact = None
    means = [b["exact_mean"] for b in report["heat"]["baths"]]
    exact_heat = None if any(m is None for m in means) else np.array(means)
    block, extra = statistics.trajectory_statistics(result, exact, source, exact_heat)
    block["exchange_fluctuation_symmetry"], extra["exchange_symmetry"] = \
        fluctuations.exchange_fluctuation_symmetry(
            result, exact, getattr(system, "generator", None),
            getattr(getattr(system, "config", None), "initial_state", None))
    report["statistics"] = block
    curves["statistics"] = extra


def _stationary_window(result: Result, relaxation: dict) -> tuple[float | None, str]:
    if result.initial_state == "gibbs":
        return 0.0, "the run starts in the Gibbs state: the whole run is stationary"
    # The slower of the fitted and the generator's relaxation times: the window must be late
    # enough for the slowest mode.
    taus = [t for t in (relaxation.get("tau"), relaxation.get("tau_generator")) if t is not None]
    tau = max(taus, default=None)
    if tau is None:
        return None, "no relaxation time, so no stationary window"
    start = STATIONARY_AFTER_TAUS * tau
    if start >= result.times[-1]:
        return None, (f"{STATIONARY_AFTER_TAUS:g} relaxation times ({start:.4g}) exceed the run "
                      f"({result.times[-1]:.4g}): run longer")
    return start, f"after {STATIONARY_AFTER_TAUS:g} relaxation times (tau = {tau:.4g})"


def write_report(analysis: Analysis, directory: Path) -> Path:
    """Write ``report.json`` into ``directory`` (atomically); returns its path.

    The atomic write goes through a private temporary file (mode 0600); the report then gets
    the permissions the user's umask gives any new file, like the PNGs beside it.
    """
    path = Path(directory) / REPORT_FILE
    write_json(path, analysis.report)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
    return path

