"""The rates generator behind the :class:`~jumps.generators.base.Unravelling` interface."""

from __future__ import annotations

from collections import namedtuple
from dataclasses import fields, replace

import numpy as np
import scipy.sparse as sp

from ...errors import ConfigError
from ...physics import counting
from ...physics.baths import LambShiftTable
from ..base import (
    Cost,
    DamagedArrays,
    Diagnostics,
    InitialState,
    Unravelling,
    require_index,
    require_length,
    require_pointer,
    require_shape,
    table_rows,
)
from . import kernels
from .generator import (
    RateGenerator,
    RateTables,
    build_rate_generator,
    memory_estimate,
    per_bath_rates,
)
from .unravel import (
    RateChunkRunner,
    finalize_rates,
    make_rate_initial,
    new_rate_tally,
    pack_rate_engine,
)

# Exact counting statistics recompute every bath's d x d rates (dense while assembled).
MAX_COUNTING_DIMENSION = 4096

# ``generator = "auto"`` takes the rates generator from this dimension on (for the runs it
# accepts): below it the channel generator is built in well under a second and can do more.
AUTO_DIMENSION = 256

RatesInput = namedtuple("RatesInput", [
    "engine",           # RateEngine
    "initial",          # Initial
    "observables",      # (nobs, d) float: <m|O|m> of each observable
])


class Rates(Unravelling):
    """Trajectories between the eigenstates of a non-degenerate spectrum (docs/design.md,
    "The rates generator"): a classical Markov chain, up to d = 16384."""

    name = "rates"
    generator_type = RateGenerator
    lists_every_channel = False  # channels are listed only where jumps occurred
    # The transition keys of a chunk (int64) go to a buffer sized for twice the most jumps
    # per trajectory seen (unravel.RateChunkRunner).
    chunk_bytes_per_jump = 16.0

    def refusal(self, state: InitialState, density: str) -> tuple[str, str] | None:
        if not state.is_diagonal:
            reason = ("the rates generator runs trajectories between eigenstates: start in an "
                      f"eigenstate or the Gibbs state, not {state.kind!r} (or set "
                      "run.generator = 'channels')")
            return "initial_state.kind", reason
        if density == "full":
            return "run.density_matrix", ("the rates generator has no coherences to store: use "
                                          "'diagonal' or 'none'")
        return None

    def stored_density(self, density: str, dimension: int) -> str:
        return "diagonal" if density == "auto" else density

    def auto_priority(self, dimension: int, state: InitialState, density: str) -> int | None:
        if dimension >= AUTO_DIMENSION and self.refusal(state, density) is None:
            return 1
        return None

    # -- build -----------------------------------------------------------------------------

    def cost(self, config, floor_seconds: float, complex_values: bool) -> Cost:
        n_groups = len({b.key for b in config.baths})
        memory = memory_estimate(config.model.dimension, len(config.baths), complex_values,
                                 n_groups=n_groups)
        # The work beyond the BLAS floor (alias tables, bath split, Lamb shift) is taken as a
        # quarter of it, plus half a second of set-up.
        return Cost(memory["peak"], memory["kept"], 1.25 * floor_seconds + 0.5)

    def build(self, config, comm):
        return build_rate_generator(
            config.model.stored_hamiltonian, config.couplings, config.baths,
            degeneracy_tol=config.degeneracy_tol, lamb_shift=config.lamb_shift,
            comm=comm if comm.is_parallel else None, drop_tol=config.drop_tol)

    def to_arrays(self, generator: RateGenerator) -> tuple[dict[str, np.ndarray], dict]:
        arrays: dict[str, np.ndarray] = {}
        meta: dict = {}
        for item in fields(generator):
            value = getattr(generator, item.name)
            if isinstance(value, np.ndarray):
                arrays[item.name] = value
            elif item.name == "couplings":
                for a, A in enumerate(value):
                    arrays[f"coupling{a}_indptr"] = A.indptr
                    arrays[f"coupling{a}_indices"] = A.indices
                    arrays[f"coupling{a}_data"] = A.data
                meta["n_couplings"] = len(value)
            elif item.name == "rate_tables":
                arrays.update({f"rate_{k}": v for k, v in value._asdict().items()})
            elif item.name != "baths":
                meta[item.name] = value
        return arrays, meta

    def from_arrays(self, arrays: dict[str, np.ndarray], meta: dict, baths: tuple) -> RateGenerator:
        d = arrays["energies"].shape[0]
        couplings = tuple(sp.csr_matrix((arrays[f"coupling{a}_data"],
                                         arrays[f"coupling{a}_indices"],
                                         arrays[f"coupling{a}_indptr"]), shape=(d, d))
                          for a in range(meta["n_couplings"]))
        tables = RateTables(**{k: arrays[f"rate_{k}"] for k in RateTables._fields})
        names = {f.name for f in fields(RateGenerator)}
        values = {k: v for k, v in arrays.items() if k in names}
        values.update({k: v for k, v in meta.items() if k in names})
        return RateGenerator(**values, couplings=couplings, rate_tables=tables, baths=baths)

    def check_arrays(self, arrays: dict[str, np.ndarray], meta: dict, n_baths: int) -> None:
        """Shapes, and the indices the kernel follows: alias targets, the couplings' CSR rows
        and columns, the bath groups and the panels of the rate tables."""
        d = require_length(arrays, "energies", "f")
        require_shape(arrays, "vectors", (d, d), "fc")
        for name in ("level_rate", "lamb_shift"):
            require_shape(arrays, name, (d,), "f")
        if not np.all(np.isfinite(arrays["level_rate"])) or np.any(arrays["level_rate"] < 0):
            raise DamagedArrays("level_rate.npy: rates must be finite and >= 0")
        threshold = require_shape(arrays, "threshold", (d * d,), "f")
        if threshold.size and not (0.0 <= threshold.min() and threshold.max() <= 1.0):
            raise DamagedArrays("threshold.npy: alias thresholds outside [0, 1]")
        require_shape(arrays, "alias", (d * d,), "i")
        require_index(arrays, "alias", d)
        set_size = meta.get("set_size")
        if isinstance(set_size, bool) or not isinstance(set_size, int) or set_size < 1:
            raise DamagedArrays(f"meta.json: set_size {set_size!r} is not a positive integer")
        sets = -(-n_baths // set_size)
        require_shape(arrays, "coarse_split", (d * d * (sets - 1),), "u")
        require_shape(arrays, "fine_split", (d * d * (n_baths - sets),), "u")
        if meta.get("n_couplings") != n_baths:
            raise DamagedArrays(f"meta.json: {meta.get('n_couplings')!r} couplings, the config "
                                f"has {n_baths} baths")
        for a in range(n_baths):
            nnz = require_length(arrays, f"coupling{a}_indices", "i")
            require_pointer(arrays, f"coupling{a}_indptr", d + 1, nnz)
            require_index(arrays, f"coupling{a}_indices", d)
            require_shape(arrays, f"coupling{a}_data", (nnz,), "fc")
        groups = require_length(arrays, "rate_thermal", "b")
        require_shape(arrays, "rate_group", (n_baths,), "i")
        require_index(arrays, "rate_group", groups)
        require_shape(arrays, "rate_beta", (groups,), "f")
        panels = require_length(arrays, "rate_low", "f")
        require_pointer(arrays, "rate_ptr", groups + 1, panels)
        require_shape(arrays, "rate_high", (panels,), "f")
        require_shape(arrays, "rate_coefficients", (panels, LambShiftTable.DEGREE), "f")

    # -- run -------------------------------------------------------------------------------

    def pack(self, generator: RateGenerator, state: InitialState, times: np.ndarray,
             observables: dict, density: str) -> RatesInput:
        d = generator.dimension
        diagonals = np.array([generator.diagonal_of(o) for o in observables.values()])
        return RatesInput(engine=pack_rate_engine(generator),
                          initial=make_rate_initial(generator, state),
                          observables=diagonals.reshape(len(observables), d))

    def runner(self, plan) -> RateChunkRunner:
        return RateChunkRunner(plan.arrays.engine, plan.arrays.initial, plan.times, plan.key,
                               plan.ntraj)

    def warm_up(self, plan) -> None:
        engine = plan.arrays.engine
        tally = new_rate_tally(engine.energies.size, plan.times, plan.n_baths, 0, 1)
        kernels.run_rate_chunk(engine, plan.arrays.initial, tally, plan.key, 0, 0)

    def finalize(self, generator: RateGenerator, plan, sums: dict[str, np.ndarray],
                 n: int) -> dict[str, np.ndarray]:
        return finalize_rates(generator, sums, n, plan.names, plan.arrays.observables,
                              plan.density)

    def observable_moments(self, plan, sums: dict[str, np.ndarray]):
        if not plan.names:
            return None
        counts = sums["level_counts"].T.astype(float)
        diagonal = plan.arrays.observables[0]
        return counts @ diagonal, counts @ diagonal**2

    def run_summary(self, sums: dict[str, np.ndarray]) -> dict:
        return {"exact_bath_decisions": int(sums["exact_decisions"][0])}

    def adopt_shared(self, generator: RateGenerator, plan) -> RateGenerator:
        e = plan.arrays.engine  # at 14 spins the arrays are 8 GiB: keep only the shared copy
        return replace(generator, energies=e.energies, vectors=e.vectors,
                       level_rate=e.level_rate, threshold=e.threshold, alias=e.alias,
                       coarse_split=e.coarse_split, fine_split=e.fine_split)

    def counting_model(self, generator: RateGenerator, coherent: bool):
        if coherent:
            raise ConfigError("initial_state.kind", "the rates generator has no coherences: "
                                                    "start diagonal in the energy basis")
        if generator.dimension > MAX_COUNTING_DIMENSION:
            raise ConfigError("system", f"exact counting statistics recompute the rates of "
                                        f"every bath: d <= {MAX_COUNTING_DIMENSION}, this "
                                        f"system has d = {generator.dimension}")
        return counting.classical_model(generator.energies, per_bath_rates(generator),
                                        counting.betas_of(generator.baths))

    # -- reports ---------------------------------------------------------------------------

    def diagnostics(self, generator: RateGenerator) -> Diagnostics:
        """The smallest *level* spacing stands in for the smallest Bohr-frequency spacing
        (which would need all d^2 gaps sorted)."""
        g = generator
        largest = float(np.max(g.level_rate)) if g.dimension else 0.0
        margin = g.min_level_spacing / largest if largest > 0 else np.inf
        record = {"generator": self.name, "min_level_spacing": g.min_level_spacing,
                  "max_level_rate": largest, "secular_margin": margin,
                  "steady_state_dimension": g.components}
        return Diagnostics(record, ("smallest level spacing", g.min_level_spacing),
                           ("largest total rate out of a level", largest), "level spacing / rate",
                           g.components, "not decided (directed jump graph)",
                           "classes of eigenstates not connected by any rate")

    def max_escape_rate(self, generator: RateGenerator) -> float:
        """The largest ``level_rate``: a trajectory is always in an eigenstate."""
        return float(np.max(generator.level_rate)) if generator.dimension else 0.0

    def describe(self, generator: RateGenerator) -> tuple[str, list[str]]:
        g = generator
        dimension = (f"{g.dimension}  (non-degenerate: smallest level spacing "
                     f"{g.min_level_spacing:.3g})")
        gibbs = g.gibbs_populations() if g.common_beta() is not None else None
        lines = ["", "spectrum (eigenstates)",
                 "  level   energy           total rate out    Lamb shift" +
                 ("       Gibbs population" if gibbs is not None else "")]
        items = []
        for m in range(g.dimension):
            row = (f"  {m:>5}   {g.energies[m]:>+14.8g}   {g.level_rate[m]:>15.8e}   "
                   f"{g.lamb_shift[m]:>+12.5e}")
            if gibbs is not None:
                row += f"   {gibbs[m]:.6e}"
            items.append(row)
        lines += table_rows(items)
        lines += ["", (f"transitions      {g.n_baths} x {g.dimension}^2 (bath, from, to), as alias "
                       f"tables; bath split {_split_text(g)}")]
        return dimension, lines


def _split_text(g: RateGenerator) -> str:
    if g.n_baths == 1:
        return "(none: one bath)"
    if g.set_size == 1:
        return "in 16 bits"
    if g.set_size >= g.n_baths:
        return "in 8 bits"
    return (f"in {g.n_sets} sets of {g.set_size} baths (16 bits per set, 8 bits per bath "
            "in a set)")

