"""Python API, generator level: build a generator (:func:`davies_generator`,
:func:`rates_generator`), unravel it in this process (:func:`unravel_generator`), its exact
solution and statistics (:func:`solve_exact`, :func:`exact_statistics`), and the warnings on
its approximations (:class:`SecularWarning`, :class:`WeakCouplingWarning`). The QuTiP-shaped
solvers built on these are in :mod:`jumps.solvers`.

Matrices may be numpy arrays or ``qutip.Qobj`` (duck-typed; qutip is imported only to give
``Qobj`` back, :mod:`jumps.qutip_bridge`). Units: hbar = k_B = 1; a Bohr frequency ``w > 0`` is
emission into the bath.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import generators
from .core.memory import gc_paused
from .errors import ConfigError
from .generators.base import InitialState
from .generators.channels.generator import DaviesGenerator, build_generator
from .generators.rates.generator import RateGenerator, build_rate_generator
from .physics import exact
from .physics.baths import Bath
from .physics.matrices import as_array, check_hermitian
from .qutip_bridge import checked_operators, density_matrix, operator_matrix, state_arrays
from .result import Result, stored_names
from .runtime import statistics
from .runtime.config import POPULATION_SUM_TOLERANCE
from .runtime.driver import MIN_TRAJECTORIES_TO_STOP
from .runtime.info import validity_warnings
from .runtime.plan import Plan, recorded_trajectories, resolve_start
from .runtime.statistics import counting_fields, statistics_records


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

    Returns
    -------
    DaviesGenerator
        Energies, eigenvectors, levels and every channel ``(a, w)`` with its rate and Lamb
        shift (docs/design.md, "The channels generator").

    Examples
    --------
    >>> import numpy as np, jumps
    >>> sz, sx = np.diag([1.0, -1.0]), np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> gen = jumps.davies_generator(0.5 * sz, [sx], [jumps.ohmic(0.01, 5.0, temperature=1.0)])
    >>> gen.dimension, gen.channel_frequency.tolist()  # w > 0: emission
    (2, [-1.0, 1.0])
    >>> bool(np.isclose(gen.channel_rate[0], np.exp(-1.0) * gen.channel_rate[1]))  # KMS
    True
    """
    H, operators = checked_operators(hamiltonian, couplings, as_array)
    return build_generator(H, operators, list(baths), degeneracy_tol, drop_tol, lamb_shift)


def rates_generator(hamiltonian: Any, couplings: Sequence[Any], baths: Sequence[Bath],
                    degeneracy_tol: float | None = None, lamb_shift: bool = True) -> RateGenerator:
    """The rates generator (README, "Two generators"): for a non-degenerate spectrum and
    trajectories that start in an eigenstate or the Gibbs state; up to d = 16384.

    Parameters
    ----------
    hamiltonian, couplings, baths, degeneracy_tol, lamb_shift
        As for :func:`davies_generator`; matrices may be scipy sparse (they stay sparse: a
        14-spin coupling dense would take 4.3 GB).

    Returns
    -------
    RateGenerator
        Energies, eigenvectors and, per eigenstate, the total rate out of it and a Walker
        alias table over its targets (docs/design.md, "The rates generator").

    Raises
    ------
    ConfigError
        A degenerate spectrum (then use :func:`davies_generator`).

    Examples
    --------
    >>> import numpy as np, jumps
    >>> H = np.diag([0.0, 1.0, 2.5])
    >>> A = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    >>> gen = jumps.rates_generator(H, [A], [jumps.ohmic(0.01, 5.0, temperature=1.0)])
    >>> gen.dimension, np.round(gen.level_rate, 4).tolist()  # total rate out of each state
    (3, [0.0299, 0.1014, 0.0899])
    """
    H, operators = checked_operators(hamiltonian, couplings, operator_matrix)
    return build_rate_generator(H, operators, list(baths), degeneracy_tol, lamb_shift)


# The config fields of the generators' refusals, as the parameters of unravel_generator.
_API_FIELDS = {"initial_state.kind": "psi0", "run.density_matrix": "density"}


def unravel_generator(generator: DaviesGenerator | RateGenerator, psi0: Any = None,
                      times: Any = None, trajectories: int = 1000, seed: int = 0,
                      observables: dict[str, Any] | None = None, density: str = "auto",
                      chunk_size: int = 1000, eigenstate: int | None = None,
                      record_jumps: int = 0, record_trajectories: int = 0,
                      populations: Any = None, steady_state: bool = False,
                      s: Any = None) -> Result:
    """Run quantum-jump trajectories of ``generator`` (serially, in this process).

    The generator-level call; :func:`jumpsolve` is the QuTiP-shaped one.

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
        Stored as ``expect_<name>`` with the CLI's naming (``sz:0`` as ``expect_sz_0``).
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

    Warns
    -----
    SecularWarning
        When the secular margin (Bohr-frequency spacing / largest rate) is 10 or less.
    WeakCouplingWarning
        When the weak-coupling ratio (largest total rate out of a state / slowest decay rate
        of a bath correlation function, min(cutoff, 2 pi T)) is above 0.1.

    Examples
    --------
    >>> import numpy as np, jumps
    >>> sz, sx = np.diag([1.0, -1.0]), np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> gen = jumps.davies_generator(0.5 * sz, [sx], [jumps.ohmic(0.01, 5.0, temperature=1.0)])
    >>> result = jumps.unravel_generator(gen, eigenstate=-1, times=np.linspace(0, 4, 5),
    ...                                  trajectories=200, seed=1, observables={"sz": sz})
    >>> result.ntraj, float(result.expect["sz"][0]), float(result.stderr["sz"][0])
    (200, 1.0, 0.0)
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
    names = stored_names(list(observables or {}), "observables")
    operators = {key: check_hermitian(operator_matrix(o), f"observables.{name}")
                 for key, (name, o) in zip(names, (observables or {}).items())}
    diagnostics = warn_validity(generator)
    plan = Plan.create(generator, state, times, trajectories, seed, operators, density,
                       chunk_size)
    run = run_chunks(plan, generator)
    arrays, undefined = trajectory_arrays(generator, plan, run, times, s, record_jumps,
                                           record_trajectories)
    meta = {**trajectory_meta(generator, plan, run, seed, list(operators), undefined),
            **diagnostics}
    meta["e_ops"] = [{"label": str(name), "key": key, "callable": False}
                     for key, name in zip(names, observables or {})]
    meta["e_ops_kind"] = "dict"
    return Result(arrays, meta)


class _Run:
    """What :func:`run_chunks` did: the runner, trajectories done, jumps, why it stopped,
    seconds."""

    def __init__(self, runner, done: int, jumps: int, stopped_by: str, seconds: float):
        self.runner, self.done, self.jumps = runner, done, jumps
        self.stopped_by, self.seconds = stopped_by, seconds


def run_chunks(plan: Plan, generator, progress=None, timeout: float | None = None,
                converged=None) -> _Run:
    """Run the plan's chunks in order, so that the trajectories done are always ``0 .. n-1``
    whatever stops the run: all of them, ``timeout`` seconds (checked between chunks), or
    ``converged(sums, n)`` once :data:`MIN_TRAJECTORIES_TO_STOP` are done."""
    runner = plan.runner()
    start = time.perf_counter()
    done = jumps = 0
    stopped_by = "ntraj"
    for chunk in range(plan.n_chunks):
        first, count = plan.chunk_range(chunk)
        with gc_paused():
            jumps += runner.run(first, count)
        done += count
        if progress is not None:
            progress.update(count)
        if done == plan.ntraj:
            break
        if timeout is not None and time.perf_counter() - start >= timeout:
            stopped_by = "timeout"
            break
        if (converged is not None and done >= MIN_TRAJECTORIES_TO_STOP
                and converged(runner.sums(), done)):
            stopped_by = "target_tol"
            break
    if progress is not None:
        progress.close()
    return _Run(runner, done, jumps, stopped_by, time.perf_counter() - start)


def trajectory_arrays(generator, plan: Plan, run: _Run, times: np.ndarray, s,
                       record_jumps: int, record_trajectories: int) -> tuple[dict, dict]:
    """The result arrays of the first ``run.done`` trajectories (README, "Results"), and
    why any per-trajectory record is not defined."""
    n = run.done
    records = {name: values[:n] for name, values in run.runner.records.items()}
    rows = np.arange(n)
    added, undefined = statistics_records(generator, plan.state, records, times[-1],
                                          counting_fields(generator, s))
    arrays = {"times": times, **generator.summary_arrays(),
              **plan.finalize(generator, run.runner.sums(), n), **records, **added,
              "trajectory_index": rows,
              **recorded_trajectories(plan, run.runner, records, rows, record_jumps,
                                      record_trajectories)}
    return arrays, undefined


def trajectory_meta(generator, plan: Plan, run: _Run, seed: int, names: list[str],
                     undefined: dict) -> dict:
    """``run.json`` of an in-process run."""
    return {"method": "trajectories", "generator": plan.kind, "seed": seed,
            "trajectories": run.done, "trajectories_requested": plan.ntraj, "ranks": 1,
            "dimension": generator.dimension, "n_baths": len(generator.baths),
            "bath_beta": [b.beta for b in generator.baths],
            "bath_thermal": [b.is_thermal for b in generator.baths],
            "initial_state": plan.state.kind, "observables": names,
            "density_matrix": plan.density, "energy_unit": "arbitrary",
            "lists_every_channel": plan.unravelling.lists_every_channel,
            "undefined_records": undefined, "t_final": float(plan.times[-1]),
            "total_jumps": int(run.jumps), "run_seconds": run.seconds,
            "stopped_by": run.stopped_by}


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
        if abs(values.sum() - 1.0) > POPULATION_SUM_TOLERANCE:  # as the config does
            raise ConfigError("populations", f"must add up to 1, they add up to "
                                             f"{values.sum():.10g}")
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

    Dense (the Liouvillian, d <= 128) when coherences matter, else the rate equation (to
    d = 4096).

    Parameters
    ----------
    generator : from :func:`davies_generator` or :func:`rates_generator`
    times : (T,) array
        Ascending times from 0.
    psi0, eigenstate, populations, steady_state
        The initial state, as in :func:`unravel_generator` (default: the Gibbs state).
    s : (S,) array, optional
        Counting fields of the SCGF (default: 21 in [-1, 1]).

    Returns
    -------
    dict of str to ndarray
        The arrays named above (those defined for this start), as ``results.npz`` stores
        them.

    Examples
    --------
    >>> import numpy as np, jumps
    >>> sz, sx = np.diag([1.0, -1.0]), np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> gen = jumps.davies_generator(0.5 * sz, [sx], [jumps.ohmic(0.01, 5.0, temperature=1.0)])
    >>> stats = jumps.exact_statistics(gen, np.linspace(0, 4, 5), eigenstate=-1)
    >>> np.round(stats["heat_mean"][:, 0], 4).tolist()  # heat handed to the bath
    [0.0, 0.077, 0.1459, 0.2076, 0.2627]
    """
    times = np.asarray(times, dtype=float)
    state = resolve_start(generator, _initial_state(generator.dimension, psi0, eigenstate,
                                                    populations, steady_state))
    out, _ = statistics.exact_statistics(generator, state, times,
                                         counting_fields(generator, s))
    return out


# -- validity warnings ------------------------------------------------------------------------

class SecularWarning(UserWarning):
    """The secular approximation behind the Davies equation is questionable for this system:
    the smallest spacing of its Bohr frequencies is not many linewidths (``jumps info``).

    Raised by :func:`jumps.jumpsolve`, :func:`jumps.exactsolve` and
    :func:`jumps.unravel_generator` when the secular margin (smallest spacing of distinct
    Bohr frequencies / largest rate) is 10 or less; ``python -m jumps run`` prints the same
    text (docs/design.md, "Conventions", validity checks).

    Examples
    --------
    >>> import warnings, numpy as np, jumps
    >>> H = np.diag([0.0, 1.0, 2.001])  # Bohr frequencies 1 and 1.001: 1e-3 apart
    >>> A = np.ones((3, 3)) - np.eye(3)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = jumps.exactsolve(H, [0, 0, 1], [0.0, 1.0],
    ...                          [(A, jumps.ohmic(0.01, 5.0, temperature=1.0))])
    >>> caught[0].category.__name__, str(caught[0].message)
    ('SecularWarning', 'secular margin 0.0103 (smallest spacing of Bohr frequencies 0.001 / ...')
    """


class WeakCouplingWarning(UserWarning):
    """The weak-coupling (Born-Markov) approximation behind the Davies equation is
    questionable: the largest total rate out of a state is not much smaller than the slowest
    decay rate of a bath correlation function (its cutoff, ``2 pi T``; ``jumps info``).

    Raised by :func:`jumps.jumpsolve`, :func:`jumps.exactsolve` and
    :func:`jumps.unravel_generator` when that ratio is above 0.1; ``python -m jumps run``
    prints the same text (docs/design.md, "Conventions", validity checks).

    Examples
    --------
    >>> import warnings, numpy as np, jumps
    >>> sz, sx = np.diag([1.0, -1.0]), np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> cold = jumps.ohmic(0.02, 5.0, temperature=0.05)  # 2 pi T = 0.31, rate 0.10
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = jumps.exactsolve(0.5 * sz, [1, 0], [0.0, 1.0], [(sx, cold)])
    >>> caught[0].category.__name__, str(caught[0].message)
    ('WeakCouplingWarning', 'weak-coupling ratio 0.327 (largest total rate out of a ...')
    """


def warn_validity(generator) -> dict:
    """Warn (:class:`SecularWarning`, :class:`WeakCouplingWarning`) when the secular margin or
    the weak-coupling ratio is questionable, as ``jumps info`` flags them; returns the figures
    for the result's ``run.json``."""
    record, found = validity_warnings(generator)
    for kind, message in found:
        category = SecularWarning if kind == "secular" else WeakCouplingWarning
        warnings.warn(message, category, stacklevel=3)
    return {key: (None if isinstance(value, float) and not np.isfinite(value) else value)
            for key, value in record.items()}


def solve_exact(generator: DaviesGenerator, rho0: Any, times: Any) -> exact.ExactSolution:
    """The master equation's ``rho(t)``: see :mod:`jumps.physics.exact` (d <= 128).

    Parameters
    ----------
    generator : DaviesGenerator
        From :func:`davies_generator` (the rates generator keeps no coherences).
    rho0 : (d, d) or (d,) array or Qobj
        The density matrix, or a ket, at ``t = 0`` in the user's basis.
    times : (T,) array
        Increasing times from ``>= 0``, any spacing.

    Returns
    -------
    ExactSolution
        ``populations`` (T, d) in the energy basis, ``rho_user(generator)`` (T, d, d),
        ``expectation(generator, operator)`` (T,).

    Examples
    --------
    >>> import numpy as np, jumps
    >>> sz, sx = np.diag([1.0, -1.0]), np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> gen = jumps.davies_generator(0.5 * sz, [sx], [jumps.ohmic(0.01, 5.0, temperature=1.0)])
    >>> solution = jumps.solve_exact(gen, np.diag([1.0, 0.0]), [0.0, 1.0, 3.0])
    >>> np.round(solution.populations, 4).tolist()  # ground, excited (ascending energies)
    [[0.0, 1.0], [0.077, 0.923], [0.2076, 0.7924]]
    """
    if not hasattr(generator, "lindblad_operators"):  # the rates generator keeps no coherences
        raise ConfigError("generator", "the exact solver needs the channel generator: build "
                                       "it with jumps.davies_generator")
    vector, rho = state_arrays(rho0, generator.dimension, "rho0")
    rho = np.outer(vector, vector.conj()) if vector is not None else rho
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.size < 1 or times[0] < 0 or np.any(np.diff(times) <= 0):
        raise ConfigError("times", "must be a 1-d increasing grid from t >= 0")
    return exact.evolve(generator, density_matrix(rho), times)
