"""Shared helpers for the trajectory tests: run trajectories in-process (no files) and compare
their averages with the dense master-equation solution of :mod:`jumps.exact`; and the config
dictionaries the tests write as TOML files (``QUBIT``, ``ohmic_bath``, ``config_toml``).

The comparison rules, used by every statistical test and so stated once, here. A trajectory
average of a quantity whose per-trajectory values span a range ``R`` (1 for populations and
density-matrix elements, the eigenvalue spread for an observable) is compared with the oracle
by its z-score ``(mean - exact) / stderr`` only where the mean is close to Gaussian:

- ``N * stderr >= sqrt(MIN_EVENTS) * R``: the squared deviations of the sample add up to at
  least ``MIN_EVENTS`` full-range deviations. Below that the mean may be a deterministic
  baseline (the no-jump state most trajectories share) plus a few rare trajectories; when the
  sample happens to miss some of them, its own stderr is far too small and the z-score is
  meaningless (seen on the 4-spin chain, top level at t = 12.5: z = -10 at N = 2e4 but
  z = -0.3 at N = 2e5, whose stderr came out 1.8x larger instead of 3x smaller). For a 0/1
  population this is the rule "expected count >= MIN_EVENTS".
- populations also need the *exact* expected counts ``N p`` and ``N (1 - p)`` >= MIN_EVENTS:
  z-scores built from the sample stderr of a count have a heavy lower tail (a low count also
  shrinks its own error bar): for a Poisson count of mean 30, P(z < -4) is 1e-3 instead of
  3e-5; at mean 10 it is 1e-2. (The usual floor is N p >= 10; raising it to 30 reduced the
  excursions seen on the spin chains in a 30-seed calibration.)
- Every point not given a z-score is checked with Bernstein's inequality, which holds for any
  distribution of ``N`` independent values in a range ``R`` with variance at most ``v``
  (``p (1 - p)`` for a population, ``R^2 / 4`` otherwise): ``|mean - exact|`` beyond the bound
  has probability below ``BERNSTEIN_DELTA``. Weak, but valid where the z-score is not.
- At ``t = 0`` every trajectory holds the same initial state: the mean must equal the exact
  value to 1e-10 and the standard error be 0 up to the square root of rounding noise.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from jumps.core.lanes import Initial
from jumps.core.random import seed_key
from jumps.generators.channels import kernels, unravel
from jumps.physics import exact
from jumps.runtime.config import dump_config

# numpy's BLAS is OpenBLAS (its wheels bundle one): jumps/runtime/blas.py can set its threads.
NUMPY_OPENBLAS = "openblas" in str(np.show_config(mode="dicts")["Build Dependencies"]["blas"]).lower()

MIN_EVENTS = 30
BERNSTEIN_DELTA = 1e-6
Z_LIMIT = 4.0


@dataclass
class Unravelled:
    """One in-process run: the generator, the kernel's arrays, the raw tally and the averages."""

    generator: object
    engine: kernels.Engine
    initial: Initial
    tally: kernels.Tally
    out: dict
    ntraj: int
    jumps: int

    @property
    def amplitude_trajectories(self) -> np.ndarray:
        """(T,) number of trajectories not in the eigenstate of a non-degenerate level."""
        return self.ntraj - self.tally.level_counts.sum(axis=0)


def sums_of(tally: kernels.Tally) -> dict[str, np.ndarray]:
    """The tally's running sums, by name (``unravel.SUM_FIELDS``)."""
    return {name: getattr(tally, name) for name in unravel.SUM_FIELDS}


def unravel_in_process(generator, psi0, times, observables: dict, ntraj: int, seed: int,
                       density: str = "full", first: int = 0) -> Unravelled:
    """Run trajectories ``first .. first + ntraj - 1`` in one chunk and finalize the averages.

    ``psi0`` is a state vector in the user's basis, or None for Gibbs-sampled eigenstates.
    """
    engine = unravel.pack_engine(generator)
    initial = unravel.make_initial(generator, psi0)
    tally = unravel.new_tally(generator, engine, np.asarray(times, dtype=float), observables,
                              density, ntraj)
    jumps = unravel.run_kernel(engine, initial, tally, seed_key(seed), first, ntraj)
    out = unravel.finalize(generator, engine, sums_of(tally), ntraj, list(observables),
                           tally.observables)
    return Unravelled(generator, engine, initial, tally, out, ntraj, int(jumps))


def bernstein_bound(variance, n: int, value_range: float = 1.0,
                    delta: float = BERNSTEIN_DELTA) -> np.ndarray:
    """Deviation ``eps`` with ``P(|mean - E| >= eps) <= delta`` for the mean of ``n``
    independent values in an interval of length ``value_range`` with variance at most
    ``variance``: Bernstein's inequality ``2 exp(-n eps^2 / (2 v + 2 R eps / 3))`` solved for
    ``eps``."""
    log_term = np.log(2.0 / delta)
    b = 2.0 * value_range * log_term / 3.0
    return (b + np.sqrt(b * b + 8.0 * n * log_term * np.asarray(variance))) / (2.0 * n)


@dataclass
class Comparison:
    """z-scores of trajectory averages against an oracle, by quantity, plus hard failures."""

    ntraj: int
    z: dict[str, np.ndarray] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    skipped: int = 0  # points checked by the Bernstein bound only

    def all_z(self) -> np.ndarray:
        return np.concatenate(list(self.z.values())) if self.z else np.zeros(0)

    @property
    def max_abs_z(self) -> float:
        z = self.all_z()
        return float(np.max(np.abs(z))) if z.size else 0.0

    def worst(self) -> str:
        """The quantity with the largest |z| (for assertion messages)."""
        sizes = {k: v for k, v in self.z.items() if v.size}
        if not sizes:
            return "no points compared"
        name = max(sizes, key=lambda k: np.max(np.abs(sizes[k])))
        return f"{name}: max|z| = {np.max(np.abs(sizes[name])):.2f} over {sizes[name].size} points"

    def add(self, name: str, mean, stderr, target, value_range: float, at_zero,
            population: bool = False) -> None:
        """Compare ``mean +- stderr`` with ``target`` (arrays of one shape, ``at_zero`` marks
        the t = 0 entries) under the rules of the module docstring."""
        mean, stderr, target = np.broadcast_arrays(np.asarray(mean, dtype=float),
                                                   np.asarray(stderr, dtype=float),
                                                   np.asarray(target, dtype=float))
        at_zero = np.broadcast_to(at_zero, mean.shape)
        n = self.ntraj
        deterministic = at_zero
        # Identical trajectories: the error bar is exactly 0 (mean_stderr zeroes spreads
        # below the rounding floor of the sums).
        bad = deterministic & ((np.abs(mean - target) > 1e-10 * (1 + np.abs(target)))
                               | (stderr != 0))
        if np.any(bad):
            i = tuple(np.argwhere(bad)[0])
            self.failures.append(f"{name}{i} at t = 0: {mean[i]:.12g} +- {stderr[i]:.3g}, exact "
                                 f"{target[i]:.12g} (identical trajectories)")
        resolved = ~deterministic & (n * stderr >= np.sqrt(MIN_EVENTS) * value_range)
        if population:
            p = np.clip(target, 0.0, 1.0)
            resolved &= (n * p >= MIN_EVENTS) & (n * (1 - p) >= MIN_EVENTS)
            variance = p * (1 - p)
        else:
            variance = np.full(mean.shape, value_range**2 / 4)
        unresolved = ~resolved & ~deterministic
        bound = bernstein_bound(variance, n, value_range)
        bad = unresolved & (np.abs(mean - target) > bound)
        if np.any(bad):
            i = tuple(np.argwhere(bad)[0])
            self.failures.append(f"{name}{i}: {mean[i]:.4g} vs exact {target[i]:.4g}, beyond "
                                 f"the Bernstein bound {bound[i]:.3g}")
        self.skipped += int(np.sum(unresolved))
        self.z[name] = ((mean - target)[resolved] / stderr[resolved]).ravel()


def observable_range(operator: np.ndarray) -> float:
    """Spread of a Hermitian operator's eigenvalues: the range of its per-trajectory values."""
    values = np.linalg.eigvalsh(0.5 * (operator + operator.conj().T))
    return float(values[-1] - values[0])


def compare_with_exact(run: Unravelled, psi0: np.ndarray, observables: dict,
                       solution: exact.ExactSolution | None = None) -> Comparison:
    """z-scores of populations, observables and the stored density matrix against the exact
    master equation from ``|psi0><psi0|`` on the run's time grid (rules in the module doc)."""
    g = run.generator
    times = run.tally.times
    if solution is None:
        psi0 = np.asarray(psi0, dtype=complex)
        psi0 = psi0 / np.linalg.norm(psi0)
        solution = exact.evolve(g, np.outer(psi0, psi0.conj()), times)
    at_zero = (times == 0.0)[:, None]
    result = Comparison(run.ntraj)
    result.add("populations", run.out["populations"], run.out["populations_stderr"],
               solution.populations, 1.0, at_zero, population=True)
    for name, operator in observables.items():
        target = np.real(solution.expectation(g, operator))
        result.add(f"expect_{name}", run.out[f"expect_{name}"], run.out[f"expect_{name}_stderr"],
                   target, observable_range(operator), at_zero[:, 0])
    if "rho" in run.out:
        rho = solution.rho_user(g)
        mean, err = run.out["rho"], run.out["rho_stderr"]
        diagonal = np.eye(g.dimension, dtype=bool)
        off = ~diagonal
        result.add("rho_diagonal", mean.real[:, diagonal], err.real[:, diagonal],
                   rho.real[:, diagonal], 1.0, at_zero, population=True)
        result.add("rho_offdiagonal_real", mean.real[:, off], err.real[:, off], rho.real[:, off],
                   1.0, at_zero)
        result.add("rho_offdiagonal_imag", mean.imag[:, off], err.imag[:, off], rho.imag[:, off],
                   1.0, at_zero)
    return result


def first_jump_records(generator, psi0, times, seed: int, ntraj: int):
    """Run trajectories one at a time (count = 1): per trajectory the occupation time of each
    level (for a state inside one level this is the time spent there), jumps, heat, and the
    final-time tally rows. Returns a dict of stacked arrays."""
    engine = unravel.pack_engine(generator)
    initial = unravel.make_initial(generator, psi0)
    template = unravel.new_tally(generator, engine, np.asarray(times, dtype=float), {}, "none", 1)
    key = seed_key(seed)
    occupation = np.zeros((ntraj, generator.n_levels))
    last_levels = np.zeros((ntraj, generator.n_levels), dtype=np.int64)
    last_populations = np.zeros((ntraj, generator.dimension))
    heat = np.zeros((ntraj, len(generator.baths)))
    n_jumps = np.zeros(ntraj, dtype=np.int64)
    for i in range(ntraj):
        tally = unravel.fresh_tally(template, 1)
        unravel.run_kernel(engine, initial, tally, key, i, 1)
        occupation[i] = tally.occupation_time
        last_levels[i] = tally.level_counts[:, -1]
        last_populations[i] = tally.pop_sum[-1]
        heat[i] = tally.heat[0]
        n_jumps[i] = tally.n_jumps[0]
    return {"occupation_time": occupation, "last_level_counts": last_levels,
            "last_populations": last_populations, "heat": heat, "n_jumps": n_jumps}


# -- the tiny cases checked against plain Python (NUMBA_DISABLE_JIT=1) --------------------------

def tiny_cases():
    """Small runs through every kernel path: (name, generator, psi0 or None, times, observables,
    density). Built from the public model and bath constructors only."""
    from jumps.generators.channels import generator as davies
    from jumps.physics import baths, models

    bath = baths.ohmic(0.05, 5.0, 1.0)
    cases = []
    qubit = models.two_level({"w0": 1.0})
    g = davies.build_generator(qubit.hamiltonian, [qubit.operator("0.8*sx + 0.6*sz")], [bath])
    cases.append(("two_level_superposition", g, np.array([0.6, 0.8j]), np.linspace(0, 8, 9),
                  {"sx": qubit.operators["sx"]}, "full"))
    cases.append(("two_level_gibbs", g, None, np.linspace(0, 8, 9),
                  {"sz": qubit.operators["sz"]}, "diagonal"))
    pair = models.collective_qubits({"n": 2})
    g = davies.build_generator(pair.hamiltonian, [pair.operator("Sx")], [bath])
    up, down = np.array([1, 0]), np.array([0, 1])
    singlet = (np.kron(up, down) - np.kron(down, up)) / np.sqrt(2)
    cases.append(("collective_singlet_triplet", g, (singlet + np.kron(up, up)) / np.sqrt(2),
                  np.linspace(0, 8, 9), {"Sz": pair.operators["Sz"]}, "full"))
    chain = models.tfim_chain({"n": 3, "h": 1.1})
    g = davies.build_generator(chain.hamiltonian, [chain.operators[f"sx:{j}"] for j in range(3)],
                               [bath] * 3)
    psi = np.zeros(8, dtype=complex)
    psi[0] = 1.0
    cases.append(("tfim3_all_up", g, psi, np.linspace(0, 6, 7), {"sz0": chain.operators["sz:0"]},
                  "full"))
    return cases


TINY_TRAJECTORIES = 12
TINY_SEED = 20240611


def tiny_case_arrays() -> dict[str, np.ndarray]:
    """Every tally array of every tiny case, flattened into one dict (``case/field``); not the
    read-only inputs, nor the output buffer (scratch: its rows are summed and reused)."""
    arrays = {}
    for name, g, psi0, times, observables, density in tiny_cases():
        run = unravel_in_process(g, psi0, times, observables, TINY_TRAJECTORIES, TINY_SEED,
                                 density=density)
        for field_name in run.tally._fields:
            if field_name in ("times", "observables", "eigenvectors", "buffer"):
                continue
            arrays[f"{name}/{field_name}"] = np.asarray(getattr(run.tally, field_name))
        arrays[f"{name}/jumps"] = np.array(run.jumps)
    arrays.update(tiny_rates_arrays())
    return arrays


def tiny_rates_arrays() -> dict[str, np.ndarray]:
    """The rates generator's kernel on a 3-spin chain with two bath groups (so that the
    Chebyshev rate tables run), 3 lanes, with the flat 8-bit bath split (many exact bath
    decisions) and with sets of 2 baths (the 16-bit set split and the per-set 8-bit one)."""
    from jumps.generators.base import InitialState
    from jumps.generators.rates import generator as rates
    from jumps.generators.rates import kernels as rate_kernels
    from jumps.generators.rates import unravel as ru
    from jumps.physics import baths, models

    chain = models.tfim_chain({"n": 3, "h": 1.05, "hz": 0.5})
    bath_list = [baths.ohmic(0.05, 5.0, 1.0)] * 2 + [baths.drude_lorentz(0.05, 2.0, 0.7)]
    out = {}
    for set_size in (3, 2):
        g = rates.build_rate_generator(chain.sparse_hamiltonian,
                                       [chain.sparse_operator(f"sx:{j}") for j in range(3)],
                                       bath_list, set_size=set_size)
        tally = ru.new_rate_tally(g.dimension, np.linspace(0, 10, 6), 3, 200, 100000)
        initial = ru.make_rate_initial(g, InitialState("eigenstate", index=-1))
        jumps = rate_kernels.run_rate_chunk(ru.pack_rate_engine(g), initial, tally,
                                            seed_key(TINY_SEED), 0, 200, 3)
        tally = tally._replace(taken=tally.taken[:tally.n_taken[0]])  # the rest is unwritten
        name = f"rates{set_size}"
        out.update({f"{name}/{field}": np.asarray(getattr(tally, field))
                    for field in tally._fields if field != "times"})
        out[f"{name}/jumps"] = np.array(jumps)
    return out


if __name__ == "__main__":  # used by the NUMBA_DISABLE_JIT=1 subprocess
    import sys

    np.savez(sys.argv[1], **tiny_case_arrays())


# -- configs the tests write as TOML files -------------------------------------------------------

OHMIC = {"spectral_density": "ohmic", "eta": 0.05, "cutoff": 5.0, "temperature": 1.0}


def ohmic_bath(coupling, **changes) -> dict:
    """A ``[[baths]]`` entry: ``coupling`` (an operator expression or an inline matrix) to the
    Ohmic bath ``OHMIC`` with ``changes``; a change to None removes the key
    (``temperature=None, beta=2.0``)."""
    entry = {"coupling": coupling, **OHMIC, **changes}
    return {key: value for key, value in entry.items() if value is not None}


QUBIT = {
    "system": {"model": "two_level", "params": {"w0": 1.0}},
    "baths": [ohmic_bath("0.8*sx + 0.6*sz")],
    "initial_state": {"kind": "product", "state": "+"},
}
"""A qubit coupled through ``0.8 sx + 0.6 sz`` (transitions and dephasing), started in |+>; no
``[run]`` section (each test gives its own)."""


def changed_config(base: dict, **sections: dict) -> dict:
    """A copy of the config dictionary ``base`` with some sections changed: each keyword names
    a section and gives the keys to set in it (``baths``: in every entry), adding the section
    if ``base`` has none; a value None removes the key."""
    raw = copy.deepcopy(base)
    for name, changes in sections.items():
        tables = raw["baths"] if name == "baths" else [raw.setdefault(name, {})]
        for table in tables:
            table.update(copy.deepcopy(changes))
            for key in [k for k, v in changes.items() if v is None]:
                del table[key]
    return raw


def config_toml(base: dict, **sections: dict) -> str:
    """TOML text of ``changed_config(base, **sections)``."""
    return dump_config(changed_config(base, **sections))
