"""The channel generator behind the :class:`~jumps.generators.base.Unravelling` interface."""

from __future__ import annotations

from collections import namedtuple
from dataclasses import fields

import numpy as np

from ...errors import ConfigError
from ...physics import counting
from ...physics.exact import MAX_EXACT_DIMENSION
from ..base import DIAGONAL_KINDS, Cost, Diagnostics, InitialState, Unravelling, table_rows
from .generator import (
    DaviesGenerator,
    build_generator,
    check_cached_arrays,
    diagnostics,
    max_escape_rate,
)
from .unravel import (
    ChunkRunner,
    amplitude_possible,
    empty_tally,
    finalize,
    in_eigenbasis,
    mixture,
    observable_modes,
    pack_engine,
    run_kernel,
    sampled_eigenstates,
)

# Bytes per stored eigenbasis entry of the channel generator and its kernel tables, measured
# on the 10-spin chain (10.5e6 entries; row, column, value, channel, transition table, pairs).
BYTES_PER_ENTRY = 150
# The estimate's allowance for the build beyond its BLAS floor (channel grouping, sorting,
# kernel tables), in seconds per stored entry, and for the sort's temporaries at the peak.
SECONDS_PER_ENTRY = 2.3e-6
PEAK_OVER_KEPT = 1.3

ChannelsInput = namedtuple("ChannelsInput", [
    "engine",           # Engine
    "initial",          # Initial
    "observables",      # (nobs, d, d) complex: the observables in the eigenbasis
    "eigenvectors",     # (d, d) complex: columns are the eigenstates in the user's basis
    "user_diagonal",    # (nobs, d) float: observables' diagonals in the user's basis
    "observable_mode",  # (nobs,) int64: kernels.DENSE, USER_DIAGONAL or LEVEL_BLOCKS
])


class Channels(Unravelling):
    """Every channel ``(bath, w)`` with its sparse jump operator (docs/design.md, "The channels
    generator"): any spectrum, any initial state, coherences; up to d ~ 2048."""

    name = "channels"
    generator_type = DaviesGenerator

    # -- build -----------------------------------------------------------------------------

    def cost(self, config, floor_seconds: float, complex_values: bool) -> Cost:
        d = config.model.dimension
        entries = len(config.baths) * d * d
        kept = entries * BYTES_PER_ENTRY + 3 * 16 * d * d  # + eigenvectors and two work copies
        return Cost(PEAK_OVER_KEPT * kept, kept, floor_seconds + SECONDS_PER_ENTRY * entries + 0.5)

    def memory_hint(self, config) -> str:
        if config.initial_state.kind in DIAGONAL_KINDS:
            return ""
        return " (the rates generator needs less: start in an eigenstate or the Gibbs state)"

    def build(self, config, comm):
        if comm.rank != 0:
            return None
        return build_generator(config.model.hamiltonian, config.couplings, config.baths,
                               degeneracy_tol=config.degeneracy_tol, drop_tol=config.drop_tol,
                               lamb_shift=config.lamb_shift)

    def to_arrays(self, generator: DaviesGenerator) -> tuple[dict[str, np.ndarray], dict]:
        arrays, meta = {}, {}
        for item in fields(generator):
            value = getattr(generator, item.name)
            if isinstance(value, np.ndarray):
                arrays[item.name] = value
            elif item.name != "baths":
                meta[item.name] = value
        return arrays, meta

    def from_arrays(self, arrays: dict[str, np.ndarray], meta: dict,
                    baths: tuple) -> DaviesGenerator:
        names = {f.name for f in fields(DaviesGenerator)}
        values = {k: v for k, v in arrays.items() if k in names}
        values.update({k: v for k, v in meta.items() if k in names})
        return DaviesGenerator(**values, baths=baths)

    def check_arrays(self, arrays: dict[str, np.ndarray], meta: dict, n_baths: int) -> None:
        check_cached_arrays(arrays, meta, n_baths)

    def max_escape_rate(self, generator: DaviesGenerator) -> float:
        return max_escape_rate(generator)

    # -- run -------------------------------------------------------------------------------

    def pack(self, generator: DaviesGenerator, state: InitialState, times: np.ndarray,
             observables: dict, density: str) -> ChannelsInput:
        g = generator
        if state.populations is not None:
            initial = sampled_eigenstates(state.populations)
        elif state.states is not None:
            initial = mixture(g, state.weights, state.states)
        else:
            vector = g.eigenvectors[:, state.index] if state.kind == "eigenstate" else state.vector
            initial = mixture(g, np.ones(1), vector[None, :])
        observables_eig = in_eigenbasis(g, observables)
        diagonals, modes = observable_modes(observables, observables_eig, g.level_of)
        return ChannelsInput(engine=pack_engine(g), initial=initial,
                             observables=observables_eig,
                             eigenvectors=np.ascontiguousarray(g.eigenvectors),
                             user_diagonal=diagonals.reshape(len(observables), g.dimension),
                             observable_mode=modes)

    def _template(self, plan):
        arrays = plan.arrays
        return empty_tally(arrays.engine, plan.times, arrays.observables, arrays.eigenvectors,
                           plan.density, 0, plan.n_baths,
                           amplitude_possible(arrays.engine, arrays.initial),
                           (arrays.user_diagonal, arrays.observable_mode))

    def runner(self, plan) -> ChunkRunner:
        return ChunkRunner(plan.arrays.engine, plan.arrays.initial, self._template(plan),
                           plan.key, plan.ntraj)

    def warm_up(self, plan) -> None:
        run_kernel(plan.arrays.engine, plan.arrays.initial, self._template(plan), plan.key,
                   0, 0)

    def finalize(self, generator: DaviesGenerator, plan, sums: dict[str, np.ndarray],
                 n: int) -> dict[str, np.ndarray]:
        return finalize(generator, plan.arrays.engine, sums, n, plan.names,
                        plan.arrays.observables, plan.density)

    def observable_moments(self, plan, sums: dict[str, np.ndarray]):
        """Trajectories in the eigenstate of a non-degenerate level were only counted (they
        contribute that eigenstate's diagonal element); the others were summed."""
        if not plan.names:
            return None
        level_ptr = plan.arrays.engine.level_ptr
        single = np.flatnonzero(np.diff(level_ptr) == 1)
        diagonal = np.real(plan.arrays.observables[0].diagonal()[level_ptr[single]])
        counts = sums["level_counts"][single].T.astype(float)
        total, total_sq = counts @ diagonal, counts @ diagonal**2
        if sums["obs_sum"].size:
            total, total_sq = total + sums["obs_sum"][:, 0], total_sq + sums["obs_sumsq"][:, 0]
        return total, total_sq

    def counting_model(self, generator: DaviesGenerator, coherent: bool):
        if not coherent and np.all(generator.level_sizes == 1):
            return counting.classical_model(generator.energies, generator.per_bath_rates(),
                                            counting.betas_of(generator.baths))
        if generator.dimension > MAX_EXACT_DIMENSION:
            why = "coherences" if coherent else "degenerate levels"
            raise ConfigError("system", f"exact counting statistics with {why} need the full "
                                        f"Liouvillian: d <= {MAX_EXACT_DIMENSION}, this system "
                                        f"has d = {generator.dimension}")
        return counting.quantum_model(generator)

    # -- reports ---------------------------------------------------------------------------

    def diagnostics(self, generator: DaviesGenerator) -> Diagnostics:
        g = generator
        diag = diagnostics(g)
        record = {"generator": self.name, "min_frequency_spacing": diag.min_frequency_spacing,
                  "max_rate": diag.max_rate, "secular_margin": diag.secular_margin,
                  "steady_state_dimension": diag.steady_state_dimension}
        notes = []
        if np.any(g.dropped_weight > 0):
            notes.append(f"  dropped matrix-element weight          {g.dropped_weight.max():.3e} "
                         f"(elements < {g.drop_tol:g} x max)")
        return Diagnostics(record, ("smallest spacing of Bohr frequencies",
                                    diag.min_frequency_spacing),
                           ("largest rate", diag.max_rate), "secular margin (spacing / rate)",
                           diag.steady_state_dimension, "not decided (degenerate and large)",
                           "conserved quantity or dark states", notes)

    def describe(self, generator: DaviesGenerator) -> tuple[str, list[str]]:
        g = generator
        dimension = (f"{g.dimension}  ({g.n_levels} levels, largest degeneracy "
                     f"{g.level_sizes.max()})")
        gibbs = g.gibbs_populations() if g.common_beta() is not None else None
        header = "  level   energy          degeneracy" + ("   Gibbs population" if gibbs is not None else "")
        lines = ["", "spectrum (levels)", header]
        items = []
        for k in range(g.n_levels):
            lo, hi = g.level_ptr[k], g.level_ptr[k + 1]
            row = f"  {k:>5}   {g.energies[lo]:>+14.8g}  {hi - lo:>10}"
            if gibbs is not None:
                row += f"   {gibbs[lo:hi].sum():.6e}"
            items.append(row)
        lines += table_rows(items)
        lines.append("")
        frequencies = np.unique(g.channel_frequency)
        lines.append(f"Bohr frequencies {frequencies.size} distinct; channels (bath, w) "
                     f"{g.n_channels}; non-zero matrix elements {g.entry_row.size}")
        lines.append("  bath   w (emission > 0)    gamma(w)          S(w)              elements")
        order = np.lexsort((-g.channel_rate, g.channel_bath))
        lines += table_rows([
            f"  {g.channel_bath[c]:>4}   {g.channel_frequency[c]:>+15.8g}   "
            f"{g.channel_rate[c]:>15.8e}   {g.channel_lamb_shift[c]:>+15.8e}   "
            f"{g.entry_ptr[c + 1] - g.entry_ptr[c]:>8}" for c in order])
        return dimension, lines
