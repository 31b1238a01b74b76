"""Python API: build a Davies generator and unravel it without files.

Matrices may be numpy arrays or ``qutip.Qobj`` (duck-typed through ``.full()``; qutip is never
imported). Units: hbar = k_B = 1; a Bohr frequency ``w > 0`` is emission into the bath.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import generators
from .errors import ConfigError
from .generators.base import InitialState
from .generators.channels.generator import DaviesGenerator, build_generator
from .generators.rates.generator import RateGenerator, build_rate_generator
from .physics import exact
from .physics.baths import Bath
from .physics.matrices import as_array, check_hermitian, is_sparse
from .result import Result
from .runtime import statistics
from .runtime.plan import Plan, recorded_trajectories, resolve_start
from .runtime.statistics import DEFAULT_S, statistics_records


def davies_generator(hamiltonian: Any, couplings: Sequence[Any], baths: Sequence[Bath],
                     degeneracy_tol: float | None = None, drop_tol: float = 1e-12,
                     lamb_shift: bool = True) -> DaviesGenerator:
    """The Davies generator of ``H`` coupled through ``couplings[a]`` to ``baths[a]``.

    Parameters
    ----------
    hamiltonian : (d, d) array or Qobj
        Hermitian system Hamiltonian (the "user basis" of every result).
    couplings : sequence of (d, d) arrays or Qobj
        Hermitian coupling operators, one per independent bath.
    baths : sequence of Bath
        From :func:`jumps.ohmic`, :func:`jumps.drude_lorentz`, :func:`jumps.tabulated`,
        :func:`jumps.from_callable` or :func:`jumps.from_rates`.
    degeneracy_tol : float, optional
        Eigenvalues and Bohr frequencies closer than this are equal (default
        ``1e-9 (1 + max|E|)``).
    drop_tol : float
        Eigenbasis matrix elements below ``drop_tol * max|A|`` are dropped.
    lamb_shift : bool
        Include the Lamb-shift Hamiltonian.
    """
    H, operators = _checked(hamiltonian, couplings, as_array)
    return build_generator(H, operators, list(baths), degeneracy_tol, drop_tol, lamb_shift)


def rates_generator(hamiltonian: Any, couplings: Sequence[Any], baths: Sequence[Bath],
                    degeneracy_tol: float | None = None, lamb_shift: bool = True) -> RateGenerator:
    """The rates generator (README, "Two generators"): for a non-degenerate spectrum and
    trajectories that start in an eigenstate or the Gibbs state; up to d = 16384.

    Same parameters as :func:`davies_generator`; matrices may be scipy sparse (they stay
    sparse: a 14-spin coupling dense would take 4.3 GB).
    """
    H, operators = _checked(hamiltonian, couplings, _operator)
    return build_rate_generator(H, operators, list(baths), degeneracy_tol, lamb_shift)


# The config fields of the generators' refusals, as the parameters of unravel_generator.
_API_FIELDS = {"initial_state.kind": "psi0", "run.density_matrix": "density"}


def _operator(value: Any):
    """A sparse matrix as it is, anything else (array, Qobj) as an array."""
    return value if is_sparse(value) else as_array(value)


def _checked(hamiltonian: Any, couplings: Sequence[Any], convert) -> tuple[Any, list]:
    """H and the couplings through ``convert``, each checked Hermitian and of H's shape."""
    H = check_hermitian(convert(hamiltonian), "hamiltonian")
    operators = [check_hermitian(convert(A), f"couplings[{a}]") for a, A in enumerate(couplings)]
    for a, A in enumerate(operators):
        if A.shape != H.shape:
            raise ConfigError(f"couplings[{a}]", f"shape {A.shape} does not match H {H.shape}")
    return H, operators


def unravel_generator(generator: DaviesGenerator | RateGenerator, psi0: Any = None,
                      times: Any = None, trajectories: int = 1000, seed: int = 0,
                      observables: dict[str, Any] | None = None, density: str = "auto",
                      chunk_size: int = 1000, eigenstate: int | None = None,
                      record_jumps: int = 0, record_trajectories: int = 0,
                      populations: Any = None, steady_state: bool = False,
                      s: Any = None) -> Result:
    """Run quantum-jump trajectories of ``generator`` (serially, in this process).

    Parameters
    ----------
    generator : from :func:`davies_generator` or :func:`rates_generator`
    psi0 : vector or Qobj, optional
        Initial pure state in the user's basis (normalised here). None (and no
        ``eigenstate``): eigenstates sampled from the Gibbs state at the baths' common
        temperature. The rates generator takes only eigenstates: use ``eigenstate``.
    eigenstate : int, optional
        Start in this eigenstate (ascending energies; -1 the highest) instead of ``psi0``.
    populations : (L,) array, optional
        Start diagonal in the energy basis: each trajectory draws its level with these weights
        (one per level, ascending energies, adding up to one).
    steady_state : bool
        Start in the generator's stationary state (each trajectory draws from it).
    times : (T,) array
        Ascending output times from >= 0; the last one ends the trajectories.
    trajectories, seed : int
        Trajectory ``i`` uses the random stream of ``(seed, i)``.
    observables : dict of name -> Hermitian (d, d) matrix, sparse matrix or Qobj
    density : "full" | "diagonal" | "none" | "auto" (full when d <= 64)
    record_jumps : int
        Keep every jump of the first ``record_jumps`` trajectories (``jump_time``,
        ``jump_bath``, ``jump_frequency``, ``jump_from``, ``jump_to``, ...: README, "Results").
    record_trajectories : int
        Keep the level and the heat per bath at every output time of the first
        ``record_trajectories`` trajectories (``trajectory_level``, ``trajectory_heat``).
    s : (S,) array, optional
        Counting fields of the study (stored as ``scgf_s``; default: 21 in [-1, 1]).

    Returns
    -------
    Result
        The arrays of a result directory (README, "Results"); ``result.expect[name]`` and
        ``result.stderr[name]`` are an observable's means and standard errors.
    """
    times = np.asarray(times if times is not None else np.linspace(0.0, 10.0, 101), dtype=float)
    if times.ndim != 1 or times.size < 1 or times[0] < 0 or np.any(np.diff(times) <= 0):
        raise ConfigError("times", "must be a 1-d ascending grid starting at t >= 0")
    if trajectories < 1:
        raise ConfigError("trajectories", "must be >= 1")
    d = generator.dimension
    state = _initial_state(d, psi0, eigenstate, populations, steady_state)
    refused = generators.of(generator).refusal(state, density)
    if refused is not None:  # named by this function's parameters, not the config's fields
        raise ConfigError(_API_FIELDS.get(refused[0], refused[0]), refused[1])
    operators = {name: check_hermitian(_operator(o), f"observables.{name}")
                 for name, o in (observables or {}).items()}
    plan = Plan.create(generator, state, times, trajectories, seed, operators, density,
                       chunk_size)
    runner = plan.runner()
    for chunk in range(plan.n_chunks):
        runner.run(*plan.chunk_range(chunk))
    rows = np.arange(trajectories)
    added, undefined = statistics_records(generator, plan.state, runner.records, times[-1],
                                          DEFAULT_S if s is None else np.asarray(s, float))
    arrays = {"times": times, **generator.summary_arrays(),
              **plan.finalize(generator, runner.sums(), trajectories), **runner.records,
              **added, "trajectory_index": rows,
              **recorded_trajectories(plan, runner, runner.records, rows, record_jumps,
                                      record_trajectories)}
    meta = {"method": "trajectories", "generator": plan.kind, "seed": seed,
            "trajectories": trajectories, "ranks": 1, "dimension": d,
            "n_baths": len(generator.baths), "bath_beta": [b.beta for b in generator.baths],
            "bath_thermal": [b.is_thermal for b in generator.baths],
            "initial_state": state.kind, "observables": list(operators),
            "density_matrix": plan.density, "energy_unit": "arbitrary",
            "lists_every_channel": plan.unravelling.lists_every_channel,
            "undefined_records": undefined, "t_final": float(times[-1])}
    return Result(arrays, meta)


def _initial_state(d: int, psi0, eigenstate, populations, steady_state: bool) -> InitialState:
    """The API's initial-state arguments as an InitialState (at most one may be given; none:
    the Gibbs state)."""
    given = [name for name, value in (("psi0", psi0), ("eigenstate", eigenstate),
                                      ("populations", populations))
             if value is not None] + (["steady_state"] if steady_state else [])
    if len(given) > 1:
        raise ConfigError(given[1], f"give one initial state, not {' and '.join(given)}")
    if eigenstate is not None:
        return InitialState("eigenstate", index=eigenstate % d)
    if psi0 is not None:
        return InitialState("vector", vector=as_array(psi0))
    if populations is not None:
        values = np.asarray(populations, dtype=float).ravel()
        if np.any(values < 0) or not np.all(np.isfinite(values)) or values.sum() <= 0:
            raise ConfigError("populations", "must be non-negative and finite, not all zero")
        return InitialState("populations", level_populations=values / values.sum())
    return InitialState("steady_state" if steady_state else "gibbs")


def exact_statistics(generator: DaviesGenerator | RateGenerator, times: Any, psi0: Any = None,
                     eigenstate: int | None = None, populations: Any = None,
                     steady_state: bool = False, s: Any = None) -> dict[str, np.ndarray]:
    """Exact references of trajectory statistics from the master equation (README,
    "Trajectory statistics"): ``heat_mean`` (T, n_baths), ``heat_covariance``,
    ``heat_third_cumulant``, ``first_jump_survival`` and ``first_jump_density`` (T,) for the
    initial state; ``heat_current``, ``entropy_production_rate``, ``scgf`` (n_baths, S) at
    ``scgf_s``, ``waiting_time_survival`` and ``waiting_time_density`` in the steady state
    (when it is unique); ``entropy_production_mean`` (T,) for a diagonal start.

    The initial state is given as in :func:`unravel_generator` (default: the Gibbs state).
    Dense (the Liouvillian, d <= 128) when coherences matter, else the rate equation (to
    d = 4096)."""
    times = np.asarray(times, dtype=float)
    state = resolve_start(generator, _initial_state(generator.dimension, psi0, eigenstate,
                                                    populations, steady_state))
    out, _ = statistics.exact_statistics(generator, state, times,
                                         DEFAULT_S if s is None else np.asarray(s, float))
    return out


def solve_exact(generator: DaviesGenerator, rho0: Any, times: Any) -> exact.ExactSolution:
    """The master equation's ``rho(t)`` on a uniform grid (see :mod:`jumps.physics.exact`)."""
    return exact.evolve(generator, as_array(rho0), np.asarray(times, dtype=float))
