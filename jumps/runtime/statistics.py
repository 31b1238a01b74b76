"""Trajectory statistics against the master equation (docs/design.md, "Trajectory statistics").

Three things a statistics study needs from the master equation, for any generator (each
generator supplies its :class:`~jumps.physics.counting.CountingModel`):

- the steady state as an initial state (``[initial_state] kind = "steady_state"``);
- the entropy production of each trajectory, ``sigma = ln p0(n0) - ln p_t(n_t) + sum_a beta_a
  Q_a``, with ``p_t`` the master equation's populations at ``t_final``;
- the exact references of ``jumps exact``: heat cumulants, steady-state currents and entropy
  production rate, the scaled cumulant generating function, waiting-time distributions.

Probabilities of *states*: inside a degenerate level (``b`` eigenstates) a level population
``p_L`` stands for ``p_L / b`` per state, the level's maximally mixed state.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.sparse.linalg import expm_multiply

from .. import generators
from ..errors import ConfigError
from ..generators.base import InitialState
from ..physics import counting

# [counting] s = [...] when the config has none: counting fields in the inverse energy unit.
DEFAULT_S = np.linspace(-1.0, 1.0, 21)
# Off-diagonal elements of a steady state below this (relative) are rounding: a diagonal state.
COHERENCE_TOLERANCE = 1e-12
# Weights of mixture components below this are dropped (rounding of an eigendecomposition).
WEIGHT_TOLERANCE = 1e-14


def steady_start(generator, state: InitialState) -> InitialState:
    """``state`` (kind ``steady_state``) with the generator's unique stationary state filled
    in: eigenstate weights (``populations``), or, with coherences inside degenerate levels, a
    mixture of the eigenvectors of each level's block (``weights``, ``states``)."""
    model = generators.of(generator).counting_model(generator, coherent=False)
    p = counting.steady_state(model)  # ConfigError naming the number when not unique
    if model.kind == "classical":
        return replace(state, populations=_weights(np.real(p)))
    d = generator.dimension
    rho = p.reshape(d, d)
    off = rho - np.diag(np.diag(rho))
    if np.abs(off).max() <= COHERENCE_TOLERANCE * np.abs(rho).max():
        return replace(state, populations=_weights(np.real(np.diag(rho))))
    weights, vectors = np.linalg.eigh(0.5 * (rho + rho.conj().T))
    keep = weights > WEIGHT_TOLERANCE
    states = (generator.eigenvectors @ vectors[:, keep]).T  # rows, user's basis
    return replace(state, weights=weights[keep] / weights[keep].sum(), states=states)


def _weights(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 0.0, None)  # rounding can leave -1e-17
    return p / p.sum()


def model_state(model: counting.CountingModel, generator, state: InitialState) -> np.ndarray:
    """The initial state as a vector of ``model``: eigenstate populations (classical) or
    ``vec(rho0)`` in the eigenbasis (quantum). ``state`` is resolved
    (:func:`jumps.runtime.plan.resolve_start`)."""
    d = generator.dimension
    if state.populations is not None:
        populations = state.populations
    elif state.kind == "eigenstate":
        populations = np.zeros(d)
        populations[state.index] = 1.0
    else:
        populations = None
    if model.kind == "classical":
        if populations is None:
            raise ConfigError("initial_state.kind", "the rate equation needs a start diagonal in "
                                                    "the energy basis")
        return populations
    if populations is not None:
        return np.diag(populations).astype(complex).ravel()
    V = generator.eigenvectors
    weights, states = ((state.weights, state.states) if state.states is not None
                       else (np.ones(1), state.vector[None, :]))
    psi = states @ V.conj()                                   # rows: V^dag psi_k
    psi /= np.linalg.norm(psi, axis=1, keepdims=True)
    return np.einsum("k,ki,kj->ij", weights, psi, psi.conj()).ravel()


def level_populations(model: counting.CountingModel, vector: np.ndarray,
                      level_ptr: np.ndarray) -> np.ndarray:
    """Populations of the levels from a model's state vector."""
    d = model.dimension
    diagonal = np.real(vector if model.kind == "classical" else vector.reshape(d, d).diagonal())
    return np.add.reduceat(diagonal, level_ptr[:-1])


def entropy_production(generator, state: InitialState, records: dict[str, np.ndarray],
                       t_final: float) -> tuple[np.ndarray, float, str | None]:
    """Each trajectory's ``sigma = ln p0(n0) - ln p_t(n_t) + sum_a beta_a Q_a``, the exact
    ``<exp(-sigma)>``, and, when sigma is not defined, the reason (then all NaN). Defined for a
    start diagonal in the energy basis, thermal baths at finite temperatures, and trajectories
    in one level at both ends (NaN for the others).

    ``<exp(-sigma)> = 1`` (the integral fluctuation theorem) needs ``p0 > 0`` on every level.
    Otherwise it is the probability that the reversed process (the same rates, by local
    detailed balance), started from ``p_t``, ends in the support of ``p0``: computed for a
    non-degenerate spectrum, NaN (not tested) else."""
    nan = np.full(records["heat"].shape[0], np.nan)
    betas = np.array([b.beta if b.is_thermal else np.nan for b in generator.baths])
    if not state.is_diagonal:
        return nan, np.nan, "the initial state is not diagonal in the energy basis"
    if not np.all(np.isfinite(betas)):
        return nan, np.nan, "a bath is not thermal or is at zero temperature"
    unravelling = generators.of(generator)
    try:
        model = unravelling.counting_model(generator, coherent=False)
    except ConfigError as error:
        return nan, np.nan, error.reason
    p0 = model_state(model, generator, state)
    level_ptr = generator.level_ptr
    sizes = np.diff(level_ptr)
    initial = level_populations(model, p0, level_ptr) / sizes
    p_t = counting.populations(model, p0, [0.0, t_final])[-1]
    final = level_populations(model, p_t, level_ptr) / sizes
    n0, nt = records["initial_level"], records["final_level"]
    inside = (n0 >= 0) & (nt >= 0)
    sigma = nan.copy()
    with np.errstate(divide="ignore"):
        sigma[inside] = (np.log(initial[n0[inside]]) - np.log(final[nt[inside]])
                         + records["heat"][inside] @ betas)
    support = initial > 0
    expected = 1.0
    if not np.all(support):
        expected = np.nan
        if model.kind == "classical":
            back = counting.populations(model, p_t, [0.0, t_final])[-1]
            expected = float(level_populations(model, back, level_ptr)[support].sum())
    return sigma, expected, None


# The largest |s| w_max accepted in [counting] s: exp(30) ~ 1e13.
MAX_TILT = 30.0
# With no [counting] s and a spectrum so wide that DEFAULT_S would be refused (fmo, in cm^-1),
# the default grid is narrowed to |s| w_max <= DEFAULT_TILT.
DEFAULT_TILT = 10.0


def spectral_width(generator) -> float:
    """``E_max - E_min``: the largest Bohr frequency (0 for an empty spectrum)."""
    energies = np.asarray(generator.energies)
    return float(energies.max() - energies.min()) if energies.size else 0.0


def counting_fields(generator, s_values: np.ndarray | None) -> np.ndarray:
    """The counting fields of a run: ``s_values`` as given, or with none given (``None``)
    :data:`DEFAULT_S`, narrowed to ``|s| (E_max - E_min) <= DEFAULT_TILT`` when the spectrum
    is wider than :data:`MAX_TILT` (the grid [-1, 1] in the inverse energy unit would be
    refused there)."""
    if s_values is not None:
        return np.asarray(s_values, dtype=float)
    width = spectral_width(generator)
    if width * float(np.max(np.abs(DEFAULT_S))) <= MAX_TILT:
        return DEFAULT_S.copy()
    return DEFAULT_S * (DEFAULT_TILT / width)


def check_counting_fields(generator, s_values: np.ndarray) -> None:
    """Refuse counting fields ``s`` with ``|s| (E_max - E_min) > MAX_TILT``: the weights
    ``exp(-s Q)`` of one jump then span more than 1e13, so the trajectory estimate of
    ``<exp(-s Q)>`` rests on trajectories rarer than that, and the tilted generator is too stiff
    for the exact reference (it ran for hours)."""
    width = spectral_width(generator)
    largest = float(np.max(np.abs(s_values), initial=0.0))
    if largest * width > MAX_TILT:
        raise ConfigError("counting.s", f"|s| = {largest:g} times the largest Bohr frequency "
                                        f"{width:.4g} is {largest * width:.3g} > {MAX_TILT:g}: "
                                        f"use |s| <= {MAX_TILT / width:.3g} (exp(s w) would "
                                        "span more than 1e13)")


def exact_statistics(generator, state: InitialState, times: np.ndarray,
                     s_values: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The exact references of a statistics study (README, "Trajectory statistics"), and the
    reasons for those that could not be had (a steady state that is not unique, say)."""
    check_counting_fields(generator, s_values)
    model = generators.of(generator).counting_model(generator, coherent=not state.is_diagonal)
    p0 = model_state(model, generator, state)
    mean, covariance, third = counting.heat_cumulants(model, p0, times)
    survival, density = counting.first_jump(model, p0, times)
    out = {"heat_mean": mean, "heat_covariance": covariance, "heat_third_cumulant": third,
           "first_jump_survival": survival, "first_jump_density": density,
           "scgf_s": np.asarray(s_values, dtype=float)}
    out["scgf_finite_t"] = finite_time_scgf(model, p0, float(times[-1]), out["scgf_s"])
    notes = {}
    betas = counting.betas_of(generator.baths)
    if state.is_diagonal and np.all(np.isfinite(betas)):
        out["entropy_production_mean"] = _mean_entropy_production(model, generator, p0, times,
                                                                  mean, betas)
    try:
        out.update(heat_current=counting.heat_currents(model),
                   entropy_production_rate=np.array(counting.entropy_production_rate(model)),
                   scgf=counting.scgf(model, out["scgf_s"]))
        out["waiting_time_survival"], out["waiting_time_density"] = counting.waiting_time(
            model, times)
    except ConfigError as error:
        notes["steady_state"] = error.reason
    return out, notes


def finite_time_scgf(model: counting.CountingModel, p0: np.ndarray, t: float,
                     s_values: np.ndarray) -> np.ndarray:
    """``(1/t) ln E[exp(s Q_a(t))] = (1/t) ln Tr exp(L_a(s) t) p0`` (n_baths, S): what the
    trajectory estimate of the SCGF at ``t`` estimates (the ``t -> inf`` limit differs by
    ``O(1/t)``)."""
    out = np.full((model.n_baths, np.size(s_values)), np.nan)
    if t <= 0:
        return out
    for a in range(model.n_baths):
        for k, s in enumerate(s_values):
            evolved = expm_multiply(model.tilted(a, float(s)) * t, p0)
            out[a, k] = np.log(np.real(model.trace @ evolved)) / t
    return out


def _mean_entropy_production(model, generator, p0, times, heat_mean, betas) -> np.ndarray:
    """``<sigma(t)> = H(p_t) - H(p_0) + sum_a beta_a <Q_a(t)>``, Shannon entropies of the
    probabilities of states."""
    level_ptr = generator.level_ptr
    sizes = np.diff(level_ptr)
    evolved = counting.populations(model, p0, times)

    def shannon(vector):
        p = np.clip(level_populations(model, vector, level_ptr), 0.0, None)
        inside = p > 0
        return -np.sum(p[inside] * np.log(p[inside] / sizes[inside]))

    entropies = np.array([shannon(v) for v in evolved])
    return entropies - shannon(p0) + heat_mean @ betas


def statistics_records(generator, state: InitialState, records: dict[str, np.ndarray],
                       t_final: float, s_values: np.ndarray) -> tuple[dict, dict[str, str]]:
    """The records a result file adds to the kernels' (``entropy_production`` (N,) and the
    counting fields ``scgf_s`` (S,) of the study), and why any is not defined."""
    sigma, expected, why = entropy_production(generator, state, records, t_final)
    return ({"entropy_production": sigma, "ift_expected": np.array(expected),
             "scgf_s": np.asarray(s_values, dtype=float)},
            {"entropy_production": why} if why else {})
