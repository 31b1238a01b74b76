"""Python API: build a Davies generator and unravel it without files.

Matrices may be numpy arrays or ``qutip.Qobj`` (duck-typed through ``.full()``; qutip is never
imported). Units: hbar = k_B = 1; a Bohr frequency ``w > 0`` is emission into the bath.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import exact, rate_unravel, unravel
from .baths import Bath
from .davies import DaviesGenerator, build_generator
from .errors import ConfigError
from .io import write_results
from .matrices import as_array, check_hermitian, is_sparse
from .rates import RateGenerator, build_rate_generator


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
    H = check_hermitian(as_array(hamiltonian), "hamiltonian")
    operators = [check_hermitian(as_array(A), f"couplings[{a}]") for a, A in enumerate(couplings)]
    for a, A in enumerate(operators):
        if A.shape != H.shape:
            raise ConfigError(f"couplings[{a}]", f"shape {A.shape} does not match H {H.shape}")
    return build_generator(H, operators, list(baths), degeneracy_tol, drop_tol, lamb_shift)


def rates_generator(hamiltonian: Any, couplings: Sequence[Any], baths: Sequence[Bath],
                    degeneracy_tol: float | None = None, lamb_shift: bool = True) -> RateGenerator:
    """The rates generator (README, "Two generators"): for a non-degenerate spectrum and
    trajectories that start in an eigenstate or the Gibbs state; up to d = 16384.

    Same parameters as :func:`davies_generator`; matrices may be scipy sparse (they stay
    sparse: a 14-spin coupling dense would take 4.3 GB).
    """
    H = check_hermitian(_operator(hamiltonian), "hamiltonian")
    operators = [check_hermitian(_operator(A), f"couplings[{a}]") for a, A in enumerate(couplings)]
    for a, A in enumerate(operators):
        if A.shape != H.shape:
            raise ConfigError(f"couplings[{a}]", f"shape {A.shape} does not match H {H.shape}")
    return build_rate_generator(H, operators, list(baths), degeneracy_tol, lamb_shift)


def _operator(value: Any):
    """A sparse matrix as it is, anything else (array, Qobj) as an array."""
    return value if is_sparse(value) else as_array(value)


@dataclass
class TrajectoryResult:
    """Averages with standard errors and jump statistics of a set of trajectories.

    ``arrays`` holds everything under the result-file names (see README, "Results");
    ``expect[name]`` and ``stderr[name]`` are the observables' means and standard errors.
    """

    arrays: dict[str, np.ndarray]
    observables: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def times(self) -> np.ndarray:
        return self.arrays["times"]

    @property
    def populations(self) -> np.ndarray:
        return self.arrays["populations"]

    @property
    def expect(self) -> dict[str, np.ndarray]:
        return {name: self.arrays[f"expect_{name}"] for name in self.observables}

    @property
    def stderr(self) -> dict[str, np.ndarray]:
        return {name: self.arrays[f"expect_{name}_stderr"] for name in self.observables}

    @property
    def rho(self) -> np.ndarray | None:
        return self.arrays.get("rho")

    def save(self, directory: str | Path, meta: dict | None = None) -> None:
        """Write a result directory (``results.npz``, ``run.json``) for ``python -m analysis``.

        There is no config to rebuild the generator from, so analysis compares with an exact
        solution only when one is given (``--exact``)."""
        write_results(Path(directory), self.arrays, {**self.meta, **(meta or {})})


def unravel_generator(generator: DaviesGenerator | RateGenerator, psi0: Any = None,
                      times: Any = None, trajectories: int = 1000, seed: int = 0,
                      observables: dict[str, Any] | None = None, density: str = "auto",
                      chunk_size: int = 1000, eigenstate: int | None = None) -> TrajectoryResult:
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
    times : (T,) array
        Ascending output times from >= 0; the last one ends the trajectories.
    trajectories, seed : int
        Trajectory ``i`` uses the random stream of ``(seed, i)``.
    observables : dict of name -> Hermitian (d, d) matrix or Qobj
    density : "full" | "diagonal" | "none" | "auto" (full when d <= 64)
    """
    times = np.asarray(times if times is not None else np.linspace(0.0, 10.0, 101), dtype=float)
    if times.ndim != 1 or times.size < 1 or times[0] < 0 or np.any(np.diff(times) <= 0):
        raise ConfigError("times", "must be a 1-d ascending grid starting at t >= 0")
    if trajectories < 1:
        raise ConfigError("trajectories", "must be >= 1")
    if isinstance(generator, RateGenerator):
        return _unravel_rates(generator, psi0, eigenstate, times, trajectories, seed,
                              observables or {}, density, chunk_size)
    if eigenstate is not None:
        psi0 = generator.eigenvectors[:, eigenstate]
    observables = {name: check_hermitian(as_array(o), f"observables.{name}")
                   for name, o in (observables or {}).items()}
    if density == "auto":
        density = "full" if generator.dimension <= 64 else "diagonal"
    engine = unravel.pack_engine(generator)
    initial = unravel.make_initial(generator, psi0)
    template = unravel.new_tally(generator, engine, times, observables, density, 0,
                                 amplitude=unravel.amplitude_possible(engine, initial))
    runner = unravel.ChunkRunner(engine, initial, template, unravel.seed_key(seed), trajectories)
    for first in range(0, trajectories, chunk_size):
        runner.run(first, min(chunk_size, trajectories - first))
    arrays = {"times": times, **generator.summary_arrays(),
              **unravel.finalize(generator, engine, runner.sums(), trajectories, list(observables),
                                 template.observables, density),
              "heat": runner.heat, "n_jumps": runner.n_jumps,
              "trajectory_index": np.arange(trajectories)}
    meta = {"method": "trajectories", "seed": seed, "trajectories": trajectories, "ranks": 1,
            "dimension": generator.dimension, "n_baths": len(generator.baths),
            "bath_beta": [b.beta for b in generator.baths],
            "bath_thermal": [b.is_thermal for b in generator.baths],
            "initial_state": "gibbs" if psi0 is None else "vector",
            "observables": list(observables), "density_matrix": density, "energy_unit": "arbitrary"}
    return TrajectoryResult(arrays, list(observables), meta)


def _unravel_rates(generator: RateGenerator, psi0, eigenstate, times, trajectories, seed,
                   observables, density, chunk_size) -> TrajectoryResult:
    if psi0 is not None:
        raise ConfigError("psi0", "the rates generator starts in an eigenstate (eigenstate=...) "
                                  "or the Gibbs state (neither given)")
    kind = "gibbs" if eigenstate is None else "eigenstate"
    initial = rate_unravel.make_rate_initial(generator, kind, eigenstate)
    operators = {name: check_hermitian(_operator(o), f"observables.{name}")
                 for name, o in observables.items()}
    diagonals = np.array([generator.diagonal_of(o) for o in operators.values()]).reshape(
        len(operators), generator.dimension)
    if density == "full":
        raise ConfigError("density", "the rates generator has no coherences: 'diagonal' or 'none'")
    density = "diagonal" if density == "auto" else density
    runner = rate_unravel.RateChunkRunner(rate_unravel.pack_rate_engine(generator), initial,
                                          times, unravel.seed_key(seed), trajectories)
    for first in range(0, trajectories, chunk_size):
        runner.run(first, min(chunk_size, trajectories - first))
    arrays = {"times": times, **generator.summary_arrays(),
              **rate_unravel.finalize_rates(generator, runner.sums(), trajectories,
                                            list(operators), diagonals, density),
              "heat": runner.heat, "n_jumps": runner.n_jumps,
              "trajectory_index": np.arange(trajectories)}
    meta = {"method": "trajectories", "generator": "rates", "seed": seed,
            "trajectories": trajectories, "ranks": 1, "dimension": generator.dimension,
            "n_baths": generator.n_baths, "bath_beta": [b.beta for b in generator.baths],
            "bath_thermal": [b.is_thermal for b in generator.baths], "initial_state": kind,
            "observables": list(operators), "density_matrix": density,
            "energy_unit": "arbitrary"}
    return TrajectoryResult(arrays, list(operators), meta)


def solve_exact(generator: DaviesGenerator, rho0: Any, times: Any) -> exact.ExactSolution:
    """The master equation's ``rho(t)`` on a uniform grid (see :mod:`jumps.exact`)."""
    return exact.evolve(generator, as_array(rho0), np.asarray(times, dtype=float))
