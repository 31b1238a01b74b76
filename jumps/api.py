"""Python API: the QuTiP-shaped solvers (:func:`jumpsolve`, :func:`exactsolve`,
:func:`load`) and the generator-level calls they are built on (:func:`davies_generator`,
:func:`rates_generator`, :func:`unravel_generator`, :func:`solve_exact`).

Matrices may be numpy arrays or ``qutip.Qobj`` (duck-typed; qutip is imported only to give
``Qobj`` back, :mod:`jumps.qutip_bridge`). Units: hbar = k_B = 1; a Bohr frequency ``w > 0`` is
emission into the bath.
"""

from __future__ import annotations

import secrets
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from . import generators
from .core.memory import gc_paused
from .errors import ConfigError
from .generators.base import DENSITY_MODES, InitialState, NotApplicable
from .generators.channels.generator import DaviesGenerator, build_generator
from .generators.rates.generator import RateGenerator, build_rate_generator
from .physics import exact
from .physics.baths import Bath
from .physics.matrices import as_array, check_hermitian
from .qutip_bridge import (
    Problem,
    callbacks,
    checked_operators,
    density_matrix,
    initial_state,
    operator_matrix,
    problem_of,
    state_arrays,
)
from .result import Result, stored_names
from .result import load as load_result
from .runtime import statistics
from .runtime.config import POPULATION_SUM_TOLERANCE
from .runtime.driver import MIN_TRAJECTORIES_TO_STOP
from .runtime.info import validity_warnings
from .runtime.parallel import Comm
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
    H, operators = checked_operators(hamiltonian, couplings, as_array)
    return build_generator(H, operators, list(baths), degeneracy_tol, drop_tol, lamb_shift)


def rates_generator(hamiltonian: Any, couplings: Sequence[Any], baths: Sequence[Bath],
                    degeneracy_tol: float | None = None, lamb_shift: bool = True) -> RateGenerator:
    """The rates generator (README, "Two generators"): for a non-degenerate spectrum and
    trajectories that start in an eigenstate or the Gibbs state; up to d = 16384.

    Same parameters as :func:`davies_generator`; matrices may be scipy sparse (they stay
    sparse: a 14-spin coupling dense would take 4.3 GB).
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
    diagnostics = _warn_validity(generator)
    plan = Plan.create(generator, state, times, trajectories, seed, operators, density,
                       chunk_size)
    run = _run_chunks(plan, generator)
    arrays, undefined = _trajectory_arrays(generator, plan, run, times, s, record_jumps,
                                           record_trajectories)
    meta = {**_trajectory_meta(generator, plan, run, seed, list(operators), undefined),
            **diagnostics}
    meta["e_ops"] = [{"label": str(name), "key": key, "callable": False}
                     for key, name in zip(names, observables or {})]
    meta["e_ops_kind"] = "dict"
    return Result(arrays, meta)


class _Run:
    """What :func:`_run_chunks` did: the runner, trajectories done, jumps, why it stopped,
    seconds."""

    def __init__(self, runner, done: int, jumps: int, stopped_by: str, seconds: float):
        self.runner, self.done, self.jumps = runner, done, jumps
        self.stopped_by, self.seconds = stopped_by, seconds


def _run_chunks(plan: Plan, generator, progress=None, timeout: float | None = None,
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


def _trajectory_arrays(generator, plan: Plan, run: _Run, times: np.ndarray, s,
                       record_jumps: int, record_trajectories: int) -> tuple[dict, dict]:
    """The result arrays of the first ``run.done`` trajectories (README, "Results"), and
    why any per-trajectory record is not defined."""
    n = run.done
    records = {name: values[:n] for name, values in run.runner.records.items()}
    rows = np.arange(n)
    added, undefined = statistics_records(generator, plan.state, records, times[-1],
                                          DEFAULT_S if s is None else np.asarray(s, float))
    arrays = {"times": times, **generator.summary_arrays(),
              **plan.finalize(generator, run.runner.sums(), n), **records, **added,
              "trajectory_index": rows,
              **recorded_trajectories(plan, run.runner, records, rows, record_jumps,
                                      record_trajectories)}
    return arrays, undefined


def _trajectory_meta(generator, plan: Plan, run: _Run, seed: int, names: list[str],
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

    The initial state is given as in :func:`unravel_generator` (default: the Gibbs state).
    Dense (the Liouvillian, d <= 128) when coherences matter, else the rate equation (to
    d = 4096)."""
    times = np.asarray(times, dtype=float)
    state = resolve_start(generator, _initial_state(generator.dimension, psi0, eigenstate,
                                                    populations, steady_state))
    out, _ = statistics.exact_statistics(generator, state, times,
                                         DEFAULT_S if s is None else np.asarray(s, float))
    return out


# -- the QuTiP-shaped solvers -----------------------------------------------------------------

class SecularWarning(UserWarning):
    """The secular approximation behind the Davies equation is questionable for this system:
    the smallest spacing of its Bohr frequencies is not many linewidths (``jumps info``)."""


class WeakCouplingWarning(UserWarning):
    """The weak-coupling (Born-Markov) approximation behind the Davies equation is
    questionable: the largest total rate out of a state is not much smaller than the slowest
    decay rate of a bath correlation function (its cutoff, ``2 pi T``; ``jumps info``)."""


# Options of jumpsolve and their defaults (README, "Coming from QuTiP").
JUMPSOLVE_OPTIONS = {
    "progress_bar": True,       # tqdm.auto (a widget in notebooks); False: none
    "lamb_shift": True,         # QuTiP's brmesolve neglects it
    "store_states": None,       # True: keep the averaged density matrix at every time
    "store_final_state": False,  # True: keep it (at least) at the last time
    "generator": "auto",        # a registered generator's name, or auto
    "record_jumps": 0,          # keep the jumps of the first K trajectories (col_times)
    "density_matrix": None,     # full | diagonal | none | auto (None: from store_*)
    "chunk_size": 0,            # trajectories per chunk (0: ~50 chunks)
    "degeneracy_tol": None,
    "drop_tol": 1e-12,
}
# exactsolve takes these (progress_bar and the storing options are accepted for scripts
# written for brmesolve; the exact solution always keeps the states).
EXACTSOLVE_OPTIONS = {key: JUMPSOLVE_OPTIONS[key] for key in
                      ("progress_bar", "lamb_shift", "store_states", "store_final_state",
                       "degeneracy_tol", "drop_tol")}
# About this many chunks per run: progress, timeout and target_tol act between chunks, and a
# chunk costs ~0.2 ms of Python (runtime.plan).
API_CHUNKS = 50
# A refusal by a generator names a config field; jumpsolve names its own argument.
_JUMPSOLVE_FIELDS = {"initial_state.kind": "state",
                     "run.density_matrix": "options['density_matrix']"}


def _options(options: dict | None, defaults: dict, caller: str) -> dict:
    """``options`` over ``defaults``; a key not among them is refused."""
    given = dict(options or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError(f"options[{unknown[0]!r}]",
                          f"is not an option of {caller} ({', '.join(defaults)})")
    return {**defaults, **given}


def _seed(seeds: Any) -> int:
    """One seed: given, or drawn from the operating system's entropy (and then recorded)."""
    if seeds is None:
        return secrets.randbits(63)
    if isinstance(seeds, (list, tuple, np.ndarray)):
        if len(seeds) != 1:
            raise ConfigError("seeds", "give one seed: trajectory i draws from the stream of "
                                       "(seed, i), so one seed fixes every trajectory")
        seeds = seeds[0]
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 0:
        raise ConfigError("seeds", f"must be a non-negative integer, got {seeds!r}")
    return int(seeds)


@dataclass
class _ApiModel:
    """The part of a config's model that a generator's build reads."""

    stored_hamiltonian: Any

    @cached_property
    def hamiltonian(self) -> np.ndarray:
        return as_array(self.stored_hamiltonian)


@dataclass
class _ApiConfig:
    """What :meth:`Unravelling.build` reads of a config, for a build from Python."""

    model: _ApiModel
    couplings: list
    baths: list
    degeneracy_tol: float | None
    drop_tol: float
    lamb_shift: bool


def _build(problem: Problem, choice: str, density: str, lamb_shift: bool,
           degeneracy_tol: float | None, drop_tol: float):
    """The generator (through the registry: ``choice`` a name or ``auto``) and the initial
    state in its eigenbasis. Under ``auto`` a generator that cannot represent the system
    (:class:`NotApplicable`) or run the state passes to the next."""
    config = _ApiConfig(_ApiModel(problem.hamiltonian), problem.couplings, problem.baths,
                        degeneracy_tol, drop_tol, bool(lamb_shift))
    # Before the eigenbasis is known: a density matrix may be diagonal in it, a ket is taken
    # as a superposition (an eigenstate ket is found below, and runs in pure mode anyway).
    guess = InitialState("populations" if problem.rho is not None else "vector")
    refusal: ConfigError | None = None
    for unravelling in generators.candidates(choice, problem.dimension, guess, density):
        try:
            generator = unravelling.build(config, Comm())
        except NotApplicable as error:
            refusal = error
            continue
        state = initial_state(generator, problem.vector, problem.rho)
        refused = unravelling.refusal(state, density)
        if refused is None:
            return generator, state
        refusal = ConfigError(_JUMPSOLVE_FIELDS.get(refused[0], refused[0]), refused[1])
    raise refusal or ConfigError("options['generator']", f"no generator accepts {choice!r}")


def _warn_validity(generator) -> dict:
    """Warn (:class:`SecularWarning`, :class:`WeakCouplingWarning`) when the secular margin or
    the weak-coupling ratio is questionable, as ``jumps info`` flags them; returns the figures
    for the result's ``run.json``."""
    record, found = validity_warnings(generator)
    for kind, message in found:
        category = SecularWarning if kind == "secular" else WeakCouplingWarning
        warnings.warn(message, category, stacklevel=3)
    return {key: (None if isinstance(value, float) and not np.isfinite(value) else value)
            for key, value in record.items()}


def _progress_bar(option: Any, total: int):
    """A tqdm.auto bar (a notebook widget, a text bar elsewhere), or None when switched off."""
    if option in (False, None, "", "none"):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="traj", desc="jumpsolve")


def _converged(plan: Plan, generator, problem: Problem, target_tol: Any):
    """``converged(sums, n)`` for ``target_tol``: every e_op's standard error below
    ``atol + rtol |mean|`` at every time (QuTiP's meaning: an absolute tolerance, an
    ``(atol, rtol)`` pair, or one pair per e_op)."""
    keys = list(problem.operators)
    if not keys:
        raise ConfigError("target_tol", "needs operators in e_ops (the tolerance is on their "
                                        "standard errors)")
    tolerance = np.atleast_1d(np.asarray(target_tol, dtype=float))
    if tolerance.ndim == 1 and tolerance.size <= 2:
        tolerance = np.broadcast_to(np.append(tolerance, [0.0] * (2 - tolerance.size)),
                                    (len(keys), 2))
    if tolerance.shape != (len(keys), 2) or np.any(tolerance < 0):
        raise ConfigError("target_tol", "must be atol, (atol, rtol) or one (atol, rtol) per "
                                        "operator in e_ops, all >= 0")

    def converged(sums: dict, n: int) -> bool:
        out = plan.finalize(generator, sums, n)
        return all(np.all(out[f"expect_{key}_stderr"]
                          <= atol + rtol * np.abs(out[f"expect_{key}"]))
                   for key, (atol, rtol) in zip(keys, tolerance))

    return converged


def jumpsolve(H: Any, state: Any, tlist: Any, a_ops: Sequence, e_ops: Any = None,
              ntraj: int = 1000, *, seeds: Any = None, target_tol: Any = None,
              timeout: float | None = None, options: dict | None = None) -> Result:
    """Quantum-jump trajectories of the Davies master equation, shaped like QuTiP's
    ``brmesolve``: swap ``brmesolve`` for ``jumpsolve`` and add ``ntraj``.

    Units: hbar = k_B = 1. A Bohr frequency ``w > 0`` is emission into the bath; QuTiP's
    power spectrum ``S(w)`` is jumps' rate ``gamma(w)`` (README, "Coming from QuTiP").

    Parameters
    ----------
    H : (d, d) Qobj or array
        Hermitian, time-independent Hamiltonian.
    state : Qobj or array
        Initial ket, or density matrix. A density matrix diagonal in the energy basis is
        sampled by its level populations; any other by its eigen-decomposition (each
        trajectory draws an eigenvector with its eigenvalue's probability).
    tlist : (T,) array
        Increasing output times (any spacing); ``tlist[0]`` is the initial time.
    a_ops : list of (A, bath)
        Hermitian coupling operators ``A`` and their baths: a jumps bath
        (:func:`jumps.ohmic`, ...), a QuTiP ``BosonicEnvironment`` (its ``power_spectrum`` is
        the rate, as in ``brmesolve``) or a callable ``S(w)`` in QuTiP's convention (no KMS
        imposed; give ``lamb_shift: False`` unless it decays at large ``|w|``).
    e_ops : operator, callable, list or dict, optional
        Hermitian operators (Qobj or arrays) averaged over trajectories with standard errors; a
        callable ``f(t, state)`` is evaluated on the averaged density matrix (the mean of ``f``
        only when ``f`` is linear) and has no standard error.
    ntraj : int
        Number of trajectories (fewer when ``target_tol`` or ``timeout`` stop the run).
    seeds : int, optional
        Trajectory ``i`` draws from the stream of ``(seed, i)``. None: a random seed, recorded
        in ``result.seeds``.
    target_tol : float, (atol, rtol) or list of them, optional
        Stop once every e_op's standard error is below ``atol + rtol |mean|`` at every time
        (checked between chunks, after at least 100 trajectories).
    timeout : float, optional
        Stop starting trajectories after this many seconds.
    options : dict, optional
        ``progress_bar`` (True: tqdm.auto; False), ``lamb_shift`` (True; QuTiP neglects it),
        ``store_states``, ``store_final_state`` (keep the averaged density matrices: a full
        density matrix is then accumulated), ``generator`` (``"auto"``, ``"channels"``,
        ``"rates"``), ``record_jumps`` (K: ``col_times``/``col_which`` of the first K
        trajectories), ``density_matrix`` (``"full"``, ``"diagonal"``, ``"none"``,
        ``"auto"``), ``chunk_size``, ``degeneracy_tol``, ``drop_tol``.

    Returns
    -------
    Result
        ``times`` (= tlist), ``expect`` (list, or dict for a dict ``e_ops``), ``e_data``,
        ``stderr``, ``std_expect``, ``states``/``final_state`` (``Qobj`` when ``H`` is one),
        ``seeds``, ``ntraj``, ``stats``, ``col_times``, ``col_which``; ``+`` merges runs.

    Warns
    -----
    SecularWarning
        When the secular margin (Bohr-frequency spacing / largest rate) is 10 or less.
    WeakCouplingWarning
        When the weak-coupling ratio (largest total rate out of a state / slowest decay rate
        of a bath correlation function, min(cutoff, 2 pi T)) is above 0.1.

    Examples
    --------
    >>> import numpy as np, qutip, jumps
    >>> env = qutip.DrudeLorentzEnvironment(T=0.5, lam=0.01, gamma=2.0)
    >>> result = jumps.jumpsolve(0.5 * qutip.sigmaz(), qutip.basis(2, 0), np.linspace(0, 5, 6),
    ...                          [(qutip.sigmax(), env)], e_ops=[qutip.sigmaz()], ntraj=200,
    ...                          seeds=1, options={"progress_bar": False})
    >>> len(result.expect[0]), result.ntraj, result.seeds
    (6, 200, [1])
    """
    opts = _options(options, JUMPSOLVE_OPTIONS, "jumpsolve")
    problem = problem_of(H, state, tlist, a_ops, e_ops)
    if isinstance(ntraj, bool) or not isinstance(ntraj, (int, np.integer)) or ntraj < 1:
        raise ConfigError("ntraj", f"must be a positive integer, got {ntraj!r}")
    if timeout is not None and not float(timeout) > 0:
        raise ConfigError("timeout", f"must be positive seconds, got {timeout!r}")
    seed = _seed(seeds)
    density = _density_mode(opts, problem)
    started = time.perf_counter()
    generator, start = _build(problem, opts["generator"], density, opts["lamb_shift"],
                              opts["degeneracy_tol"], opts["drop_tol"])
    build_seconds = time.perf_counter() - started
    diagnostics = _warn_validity(generator)
    times = problem.tlist - problem.tlist[0]
    chunk = int(opts["chunk_size"]) or -(-int(ntraj) // API_CHUNKS)
    plan = Plan.create(generator, start, times, int(ntraj), seed, problem.operators, density,
                       chunk)
    converged = None if target_tol is None else _converged(plan, generator, problem,
                                                           target_tol)
    run = _run_chunks(plan, generator, _progress_bar(opts["progress_bar"], int(ntraj)),
                      None if timeout is None else float(timeout), converged)
    arrays, undefined = _trajectory_arrays(generator, plan, run, times, None,
                                           int(opts["record_jumps"]), 0)
    arrays["times"] = problem.tlist
    if problem.has_callables:
        arrays.update(callbacks(problem, arrays.get("rho")))
    meta = {**_trajectory_meta(generator, plan, run, seed, list(problem.operators), undefined),
            **_solver_meta(problem, diagnostics, opts["lamb_shift"]),
            "build_seconds": build_seconds, "record_jumps": int(opts["record_jumps"]),
            "problem": problem.digest(plan.density, opts["lamb_shift"], generator.dimension)}
    return Result(arrays, meta)


def _density_mode(opts: dict, problem: Problem) -> str:
    """What of the density matrix a run keeps: ``density_matrix`` as given, else ``full``
    when states are asked for (or a callable e_op needs them), else ``auto``."""
    wanted = bool(opts["store_states"] or opts["store_final_state"] or problem.has_callables)
    density = opts["density_matrix"]
    if density is None:
        return "full" if wanted else "auto"
    if density not in DENSITY_MODES:
        raise ConfigError("options['density_matrix']",
                          f"must be one of {', '.join(DENSITY_MODES)}, got {density!r}")
    if wanted and density != "full":
        raise ConfigError("options['density_matrix']",
                          f"is {density!r}, but states are asked for (store_states, "
                          "store_final_state or a callable e_op): use 'full'")
    return density


def _solver_meta(problem: Problem, diagnostics: dict, lamb_shift: bool) -> dict:
    """``run.json`` keys of a jumpsolve or exactsolve result."""
    return {**diagnostics, "e_ops": problem.e_ops_record(), "e_ops_kind": problem.e_ops_kind,
            "dims": problem.dims, "t0": float(problem.tlist[0]), "lamb_shift": bool(lamb_shift),
            "bath_kinds": [b.kind for b in problem.baths]}


def exactsolve(H: Any, state: Any, tlist: Any, a_ops: Sequence, e_ops: Any = None, *,
               options: dict | None = None) -> Result:
    """The dense Davies master equation, with :func:`jumpsolve`'s arguments (without
    ``ntraj``, ``seeds``, ``target_tol``, ``timeout``) and the same :class:`Result`.

    ``rho(t)`` is propagated by ``expm_multiply`` on the sparse ``d^2 x d^2`` Liouvillian in
    the eigenbasis (~1e-13; d <= 128), on any increasing ``tlist``.

    Parameters
    ----------
    H, state, tlist, a_ops, e_ops
        As for :func:`jumpsolve`.
    options : dict, optional
        ``lamb_shift`` (True), ``degeneracy_tol``, ``drop_tol``; ``progress_bar``,
        ``store_states`` and ``store_final_state`` are accepted (the states are always kept).

    Returns
    -------
    Result
        ``method = "exact"``: ``expect``, ``e_data``, ``states``, ``final_state``; ``stderr``
        is zero.

    Examples
    --------
    >>> import numpy as np, qutip, jumps
    >>> env = qutip.OhmicEnvironment(T=0.5, alpha=0.05, wc=5.0, s=1)
    >>> exact = jumps.exactsolve(0.5 * qutip.sigmaz(), qutip.basis(2, 0), [0.0, 1.0, 4.0],
    ...                          [(qutip.sigmax(), env)], e_ops={"sz": qutip.sigmaz()},
    ...                          options={"lamb_shift": False})
    >>> round(float(exact.expect["sz"][0]), 12), exact.final_state.dims
    (1.0, [[2], [2]])
    """
    opts = _options(options, EXACTSOLVE_OPTIONS, "exactsolve")
    problem = problem_of(H, state, tlist, a_ops, e_ops)
    if problem.dimension > exact.MAX_EXACT_DIMENSION:
        raise ConfigError("H", f"the exact solver is for d <= {exact.MAX_EXACT_DIMENSION}, "
                               f"this system has d = {problem.dimension} (use jumpsolve)")
    generator = davies_generator(problem.hamiltonian, problem.couplings, problem.baths,
                                 opts["degeneracy_tol"], opts["drop_tol"], opts["lamb_shift"])
    diagnostics = _warn_validity(generator)
    vector = problem.vector
    rho0 = (np.outer(vector, vector.conj()) / np.vdot(vector, vector).real
            if vector is not None else density_matrix(problem.rho))
    solution = exact.evolve(generator, rho0, problem.tlist - problem.tlist[0])
    rho = solution.rho_user(generator)
    arrays = {"times": problem.tlist, **generator.summary_arrays(),
              "populations": solution.populations, "rho": rho}
    for key, operator in problem.operators.items():
        arrays[f"expect_{key}"] = np.real(solution.expectation(generator, as_array(operator)))
    arrays.update(callbacks(problem, rho))
    meta = {"method": "exact", "generator": "channels", "dimension": generator.dimension,
            "n_baths": len(generator.baths), "bath_beta": [b.beta for b in generator.baths],
            "bath_thermal": [b.is_thermal for b in generator.baths],
            "initial_state": "vector" if vector is not None else "density_matrix",
            "observables": list(problem.operators), "energy_unit": "arbitrary",
            "lists_every_channel": True, "t_final": float(problem.tlist[-1] - problem.tlist[0]),
            **_solver_meta(problem, diagnostics, opts["lamb_shift"])}
    return Result(arrays, meta)


def load(directory: str | Path) -> Result:
    """Read a result directory (``python -m jumps run`` or ``exact``, :meth:`Result.save`)
    into the :class:`Result` that :func:`jumpsolve` returns (see :func:`jumps.result.load`).

    Examples
    --------
    >>> import jumps
    >>> jumps.load("no/such/dir")
    Traceback (most recent call last):
    ...
    jumps.errors.ConfigError: no/such/dir: no such directory
    """
    return load_result(directory)


def solve_exact(generator: DaviesGenerator, rho0: Any, times: Any) -> exact.ExactSolution:
    """The master equation's ``rho(t)`` from ``rho0`` (a density matrix or a ket, array or
    Qobj, user's basis) at ``times`` (increasing, from >= 0; any spacing): see
    :mod:`jumps.physics.exact`. Needs the channel generator (:func:`davies_generator`)."""
    if not hasattr(generator, "lindblad_operators"):  # the rates generator keeps no coherences
        raise ConfigError("generator", "the exact solver needs the channel generator: build "
                                       "it with jumps.davies_generator")
    vector, rho = state_arrays(rho0, generator.dimension, "rho0")
    rho = np.outer(vector, vector.conj()) if vector is not None else rho
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.size < 1 or times[0] < 0 or np.any(np.diff(times) <= 0):
        raise ConfigError("times", "must be a 1-d increasing grid from t >= 0")
    return exact.evolve(generator, density_matrix(rho), times)
