"""The QuTiP-shaped solvers: :func:`jumpsolve` (trajectories) and :func:`exactsolve` (the dense
master equation) with ``qutip.brmesolve``'s arguments, both giving the one
:class:`jumps.result.Result` that :func:`jumps.result.load` (``jumps.load``) reads from a result
directory (README, "Coming from QuTiP").

They convert their arguments through :mod:`jumps.qutip_bridge`, build a generator through the
registry and run it with the generator-level pieces of :mod:`jumps.api`. Units: hbar = k_B = 1;
a Bohr frequency ``w > 0`` is emission into the bath.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from . import generators
from .api import davies_generator, run_chunks, trajectory_arrays, trajectory_meta, warn_validity
from .errors import ConfigError
from .generators.base import DENSITY_MODES, InitialState, NotApplicable
from .physics import exact
from .physics.matrices import as_array
from .qutip_bridge import Problem, callbacks, density_matrix, initial_state, problem_of
from .result import Result
from .runtime.parallel import Comm
from .runtime.plan import Plan

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
                     "run.density_matrix": "options['density_matrix']",
                     "run.generator": "options['generator']"}


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
    if isinstance(seeds, np.ndarray) and seeds.ndim == 0:
        seeds = seeds.item()
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
    try:
        candidates = generators.candidates(choice, problem.dimension, guess, density)
    except ConfigError as error:
        raise _as_argument(error) from None
    for unravelling in candidates:
        try:
            generator = unravelling.build(config, Comm())
        except NotApplicable as error:
            refusal = _as_argument(error)
            continue
        state = initial_state(generator, problem.vector, problem.rho)
        refused = unravelling.refusal(state, density)
        if refused is None:
            return generator, state
        refusal = ConfigError(_JUMPSOLVE_FIELDS.get(refused[0], refused[0]), refused[1])
    raise refusal or ConfigError("options['generator']", f"no generator accepts {choice!r}")


def _as_argument(error: ConfigError) -> ConfigError:
    """A refusal naming a config field (``run.generator = 'channels'``) in jumpsolve's terms."""
    reason = error.reason.replace("run.generator = ", "options['generator'] = ")
    return ConfigError(_JUMPSOLVE_FIELDS.get(error.field, error.field), reason)


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
    try:
        tolerance = np.atleast_1d(np.asarray(target_tol, dtype=float))
    except (TypeError, ValueError):
        tolerance = np.array([np.nan])
    if tolerance.ndim == 1 and tolerance.size <= 2:
        tolerance = np.broadcast_to(np.append(tolerance, [0.0] * (2 - tolerance.size)),
                                    (len(keys), 2))
    if tolerance.shape != (len(keys), 2) or not np.all(tolerance >= 0):
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
    for key in ("chunk_size", "record_jumps"):
        value = opts[key]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ConfigError(f"options[{key!r}]", f"must be a non-negative integer, got "
                                                   f"{value!r}")
    density = _density_mode(opts, problem)
    started = time.perf_counter()
    generator, start = _build(problem, opts["generator"], density, opts["lamb_shift"],
                              opts["degeneracy_tol"], opts["drop_tol"])
    build_seconds = time.perf_counter() - started
    diagnostics = warn_validity(generator)
    times = problem.tlist - problem.tlist[0]
    chunk = int(opts["chunk_size"]) or -(-int(ntraj) // API_CHUNKS)
    plan = Plan.create(generator, start, times, int(ntraj), seed, problem.operators, density,
                       chunk)
    converged = None if target_tol is None else _converged(plan, generator, problem,
                                                           target_tol)
    run = run_chunks(plan, generator, _progress_bar(opts["progress_bar"], int(ntraj)),
                      None if timeout is None else float(timeout), converged)
    arrays, undefined = trajectory_arrays(generator, plan, run, times, None,
                                           int(opts["record_jumps"]), 0)
    arrays["times"] = problem.tlist
    if problem.has_callables:
        arrays.update(callbacks(problem, arrays.get("rho")))
    meta = {**trajectory_meta(generator, plan, run, seed, list(problem.operators), undefined),
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
    if wanted and density == "auto":
        return "full"
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
    diagnostics = warn_validity(generator)
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
