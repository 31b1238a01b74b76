"""What a trajectory run will take before it starts: memory, jumps and time.

Two checks, both refusing with a ConfigError (one line naming the field, with the estimate):

- :func:`check_config_memory`, from the config alone (:func:`jumps.runtime.config.parse_config`
  calls it, so nothing is built for a run that cannot fit): the per-trajectory records, the
  trajectory tables and the running sums of the ``(T, d)`` and ``(T, d, d)`` averages.
- :func:`check_run_size`, once the generator is built (the driver calls it before the plan):
  the same with the density mode this generator stores, plus what depends on the number of
  jumps; and the number of jumps itself. A trajectory makes at most ``r t_final`` jumps on
  average, ``r`` the largest total jump rate out of any state
  (:meth:`~jumps.generators.base.Unravelling.max_escape_rate`): an upper bound. Over
  :data:`MAX_JUMPS_PER_TRAJECTORY` the run is refused unless ``[run] allow_long = true``.

The memory model (bytes; ``N`` trajectories, ``T`` output times, ``d`` states, ``B`` baths):

- records: ``N`` rows of :data:`jumps.core.records.RECORD_FIELDS` (8 bytes per value, ``B``
  values for the per-bath ones) plus ``trajectory_index`` and ``entropy_production``, held
  :data:`RECORD_COPIES` times on rank 0 (the runner's rows, the finished rows of the result,
  the file being written), plus the runner's copy of every other rank on rank 0's node;
- sums: per averaged ``(T, d)`` quantity (``populations``; ``rho_diagonal`` in ``diagonal``
  mode) and per observable ``(T,)``, :data:`SUM_ARRAYS` float arrays (the chunk's sum and sum of
  squares, the running total and its compensation of each, the mean and error written);
  ``full`` mode adds :data:`FULL_ARRAYS_RANK0` complex ``(T, d, d)`` arrays (measured peak),
  :data:`FULL_ARRAYS_OTHER_RANK` more per other rank on the node, and per rank the
  ``(T, rows, d)`` buffer of states added to them by matrix products
  (:func:`~jumps.generators.channels.unravel.call_rows`);
- trajectory tables: ``K T (1 + B)`` values for ``record_trajectories = K``;
- jump lists (after the build): :data:`JUMP_BYTES` per jump of the replayed trajectories
  (``max(record_jumps, record_trajectories)``), and the generator's per-chunk jump buffer
  (:attr:`~jumps.generators.base.Unravelling.chunk_bytes_per_jump` per jump of a chunk).

Run time: :data:`JUMPS_PER_SECOND` is a rough figure of one core in pure mode (measured 5 to
8 M jumps/s for chains of 256 to 16384 levels; amplitude mode is slower); nothing is measured here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import generators
from ..core.memory import available_memory
from ..core.records import RECORD_FIELDS
from ..errors import ConfigError
from ..generators.channels.unravel import call_rows
from .npyfile import gib
from .plan import default_chunk_size

if TYPE_CHECKING:  # config imports this module
    from .config import RunConfig

MAX_JUMPS_PER_TRAJECTORY = 1e9
JUMPS_PER_SECOND = 5e6
# The sums, records and tables may take this fraction of the available memory.
MEMORY_FRACTION = 0.9
RECORD_COPIES = 3
EXTRA_RECORD_BYTES = 16  # trajectory_index and entropy_production, added with the result
SUM_ARRAYS = 8
# The full density matrix's complex (T, d, d) arrays at the peak, measured (max RSS, TFIM
# N = 8, T = 51 to 301): 12.8 on rank 0 of a serial run (the chunk's sums, the running totals
# and compensations, the finished means, errors and their temporaries, the file being written),
# ~6.5 on another rank of the node (its sums and totals, the reduction). SUM_ARRAYS (8) had
# let a run of 1.5x the available memory start.
FULL_ARRAYS_RANK0 = 13
FULL_ARRAYS_OTHER_RANK = 7
# A listed jump: trajectory, time, bath or channel, frequency, from, to (8 bytes each), and
# the replay's log of it.
JUMP_BYTES = 2 * 6 * 8


@dataclass(frozen=True)
class RunEstimate:
    """What a run will take: memory by part, and (after the build) jumps and time."""

    parts: dict[str, tuple[float, str, str]]  # name -> (bytes, the field that sets it, how)
    available_bytes: float
    trajectories: int
    t_final: float
    max_rate: float | None = None          # largest total jump rate out of any state
    jumps_per_trajectory: float | None = None  # max_rate * t_final: an upper bound
    notes: list[str] = field(default_factory=list)

    @property
    def memory_bytes(self) -> float:
        return float(sum(part[0] for part in self.parts.values()))

    @property
    def fits(self) -> bool:
        return self.memory_bytes < MEMORY_FRACTION * self.available_bytes

    @property
    def total_jumps(self) -> float | None:
        if self.jumps_per_trajectory is None:
            return None
        return self.jumps_per_trajectory * self.trajectories

    @property
    def seconds(self) -> float | None:
        """Run time on one core at :data:`JUMPS_PER_SECOND` (an upper estimate with the jumps')."""
        total = self.total_jumps
        return None if total is None else total / JUMPS_PER_SECOND

    def memory_text(self) -> str:
        largest = sorted(self.parts.items(), key=lambda item: -item[1][0])[:2]
        detail = ", ".join(f"{name} {gib(size)} ({how})" for name, (size, _, how) in largest
                           if size > 0)
        return f"~{gib(self.memory_bytes)}: {detail}; {gib(self.available_bytes)} available"

    def jumps_text(self) -> str:
        if self.jumps_per_trajectory is None:
            return "not known for this generator"
        return (f"{_at_most(self.jumps_per_trajectory)} per trajectory (largest total jump "
                f"rate out of a state {self.max_rate:.4g} x t_final {self.t_final:.4g}: an "
                f"upper bound), {_at_most(self.total_jumps)} for {self.trajectories} "
                f"trajectories")

    def time_text(self) -> str:
        seconds = self.seconds
        if seconds is None:
            return "not known"
        return (f"{_at_most(seconds, _duration)} on one core (at ~{JUMPS_PER_SECOND:.0e} "
                "jumps/s, a rough pure-mode figure; divide by the number of ranks)")

    def lines(self) -> list[str]:
        """For ``info``."""
        return [f"run memory       {self.memory_text()}",
                f"expected jumps   {self.jumps_text()}",
                f"run time         {self.time_text()}", *self.notes]


def _count(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "> 1e308"


def _at_most(value: float, text=_count) -> str:
    return f"<= {text(value)}" if math.isfinite(value) else "unbounded (float overflow)"


def _duration(seconds: float) -> str:
    for unit, size in (("years", 3.15e7), ("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= 2 * size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.2g} s"


def _stored_density(config: RunConfig, kinds) -> str:
    """The density mode the run stores: the largest of what the candidates would store."""
    d = config.model.dimension
    stored = {generators.get(kind).stored_density(config.density_matrix, d) for kind in kinds}
    return next(mode for mode in ("full", "diagonal", "none") if mode in stored or mode == "none")


def _parts(config: RunConfig, density: str, jumps_per_trajectory: float | None,
           chunk_bytes_per_jump: float, ranks_on_node: int = 1) -> dict[str, tuple[float, str, str]]:
    d, T, N, B = config.model.dimension, config.n_times, config.trajectories, len(config.baths)
    per_record = sum(8 * (B if per_bath else 1) for per_bath, _, _ in RECORD_FIELDS.values())
    per_record += EXTRA_RECORD_BYTES
    averaged = 1 + (density == "diagonal")
    sums = SUM_ARRAYS * 8.0 * T * (averaged * d + len(config.observables))
    sums_how = f"{SUM_ARRAYS} arrays of ({T}, {d}) per average"
    if density == "full":
        rows = min(call_rows(T, d), N)  # the states kept for the products, per kernel call
        arrays = FULL_ARRAYS_RANK0 + FULL_ARRAYS_OTHER_RANK * (ranks_on_node - 1)
        sums += arrays * 16.0 * T * d * d + ranks_on_node * 16.0 * T * rows * d
        sums_how = (f"{arrays} complex arrays of ({T}, {d}, {d}) on the node and a ({T}, {rows}, "
                    f"{d}) state buffer per rank")
    tables = min(config.record_trajectories, N)
    copies = RECORD_COPIES + ranks_on_node - 1  # every rank's runner holds all N rows
    parts = {
        "records": (float(copies) * N * per_record, "run.trajectories",
                    f"{N} trajectories x {per_record} bytes x {copies}"),
        "sums": (sums, "run.n_times", sums_how),
        "trajectory tables": (8.0 * tables * T * (1 + B), "run.record_trajectories",
                              f"{tables} x {T} x {1 + B} values"),
    }
    if jumps_per_trajectory is not None:
        listed = min(max(config.record_jumps, config.record_trajectories), N)
        name = ("run.record_jumps" if config.record_jumps >= config.record_trajectories
                else "run.record_trajectories")
        jumps = _count(jumps_per_trajectory)
        how = f"{listed} trajectories x {jumps} jumps x {JUMP_BYTES} bytes"
        parts["jump lists"] = (listed * jumps_per_trajectory * JUMP_BYTES if listed else 0.0,
                               name, how)
        chunk = min(config.chunk_size or default_chunk_size(N), N)
        how = f"{chunk} trajectories x {jumps} jumps x {chunk_bytes_per_jump:g} bytes"
        parts["chunk jump buffer"] = (chunk * jumps_per_trajectory * chunk_bytes_per_jump
                                      if chunk_bytes_per_jump else 0.0, "run.chunk_size", how)
    return parts


def _refuse_if_too_big(estimate: RunEstimate) -> None:
    if estimate.fits:
        return
    field_name = max(estimate.parts.values(), key=lambda part: part[0])[1]
    hints = {"run.trajectories": "fewer trajectories",
             "run.n_times": "fewer output times or density_matrix = 'none'",
             "run.record_trajectories": "fewer recorded trajectories",
             "run.record_jumps": "fewer recorded trajectories or a shorter t_final",
             "run.chunk_size": "a smaller chunk_size or a shorter t_final"}
    raise ConfigError(field_name, f"the run needs {estimate.memory_text()} (use "
                                  f"{hints.get(field_name, 'a smaller run')})")


def config_estimate(config: RunConfig) -> RunEstimate:
    """The memory of a run from its config alone (before the generator is built): the density
    mode is the largest any candidate generator would store, and the jumps are not known."""
    kinds = [u.name for u in generators.candidates(config.generator, config.model.dimension,
                                                   config.initial_state, config.density_matrix)]
    density = _stored_density(config, kinds)
    return RunEstimate(_parts(config, density, None, 0.0), available_memory(),
                       config.trajectories, config.t_final)


def check_config_memory(config: RunConfig) -> RunEstimate:
    """:func:`config_estimate`, or a ConfigError naming the field that makes the run too big
    for the available memory."""
    estimate = config_estimate(config)
    _refuse_if_too_big(estimate)
    return estimate


def run_estimate(config: RunConfig, generator, ranks_on_node: int = 1) -> RunEstimate:
    """Memory, jumps and time of the config's run with this generator (no refusal), with
    ``ranks_on_node`` ranks sharing rank 0's node (each holds the records of all trajectories)."""
    unravelling = generators.of(generator)
    density = unravelling.stored_density(config.density_matrix, generator.dimension)
    rate = unravelling.max_escape_rate(generator)
    jumps = None if rate is None else rate * config.t_final
    notes = []
    if rate is None:
        notes.append(f"                 (the {unravelling.name} generator gives no bound of its "
                     "jump rates: jumps, time and jump lists not estimated)")
    return RunEstimate(_parts(config, density, jumps, unravelling.chunk_bytes_per_jump,
                              ranks_on_node), available_memory(), config.trajectories,
                       config.t_final, rate, jumps, notes)


def check_run_size(config: RunConfig, generator, ranks_on_node: int = 1) -> RunEstimate:
    """:func:`run_estimate`, or a ConfigError: when no bath can make a jump in this system,
    when over :data:`MAX_JUMPS_PER_TRAJECTORY` jumps per trajectory are expected (unless
    ``config.allow_long``), or when the run does not fit in the available memory.

    The driver calls it on rank 0 after the build, before the plan (trajectories, sums and
    records are allocated by the plan's runner), with the number of ranks on rank 0's node."""
    estimate = run_estimate(config, generator, ranks_on_node)
    if estimate.max_rate == 0:
        raise ConfigError("baths", "no jump is possible: every rate is zero at this system's "
                                   "Bohr frequencies (trajectories would only evolve "
                                   "unitarily; python -m jumps exact solves that)")
    jumps = estimate.jumps_per_trajectory
    if jumps is not None and not jumps <= MAX_JUMPS_PER_TRAJECTORY and not config.allow_long:
        raise ConfigError("run.t_final", f"up to {_count(jumps)} jumps per trajectory "
                                         f"(largest total jump rate out of a state "
                                         f"{estimate.max_rate:.4g} x t_final "
                                         f"{config.t_final:.4g}, an upper bound), over "
                                         f"{MAX_JUMPS_PER_TRAJECTORY:.0e}; run time "
                                         f"{estimate.time_text()}; set [run] allow_long = true "
                                         "to run it anyway")
    _refuse_if_too_big(estimate)
    return estimate
