"""The interface between a generator and the rest of the engine.

A *generator* is a frozen dataclass of arrays that defines a Davies master equation (the
channel generator, the rates generator). Everything the driver, the Python API, ``info`` and
the build need to know about one is behind an :class:`Unravelling`: a small object with a few
well-named methods (in the spirit of QuTiP 5's ``MultiTrajSolver``), registered by name in
:mod:`jumps.generators`. Code outside a generator's own subpackage never branches on which
generator it holds; it asks the registry for the unravelling and calls it.

What an unravelling answers (docs/design.md, "Adding a generator"):

- the run options it accepts: :meth:`Unravelling.refusal` (initial-state kinds and density
  modes), :meth:`Unravelling.stored_density` and, for ``generator = "auto"``,
  :meth:`Unravelling.auto_priority`;
- its build: :meth:`Unravelling.cost` (memory and time before building),
  :meth:`Unravelling.build`, and :meth:`Unravelling.to_arrays` / :meth:`Unravelling.from_arrays`
  for the on-disk cache, whose key covers :meth:`Unravelling.code_files`;
- its run: :meth:`Unravelling.pack` (the kernel's arrays, once), :meth:`Unravelling.runner`
  (chunks of trajectories, their sums, per-trajectory records and jump lists),
  :meth:`Unravelling.warm_up`, :meth:`Unravelling.finalize` (sums to result arrays),
  :meth:`Unravelling.observable_moments` (for ``--target-stderr``);
- its reports: :meth:`Unravelling.diagnostics` and :meth:`Unravelling.describe` (for ``info``
  and ``run.json``).

Which bath each jump's heat goes to is the kernel's business (it adds the jump's Bohr frequency
to the trajectory's ``heat`` row of that bath); a jump list names the bath, or the channel whose
bath is ``channel_bath``.

The kernels themselves stay monomorphic: each generator has its own Numba kernel, sharing the
pieces in :mod:`jumps.core`.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from ..errors import ConfigError

INITIAL_KINDS = ("eigenstate", "basis", "product", "gibbs", "vector", "populations",
                 "steady_state")
# Initial states that are one eigenstate, or eigenstates (levels) drawn with given weights:
# diagonal in the energy eigenbasis (the others are pure states given as a vector in the
# user's basis).
DIAGONAL_KINDS = ("eigenstate", "gibbs", "populations", "steady_state")
DENSITY_MODES = ("full", "diagonal", "none", "auto")
# ``density_matrix = "auto"`` stores the full density matrix up to this dimension (a (T, d, d)
# complex array and its errors: 2 MB per output time at d = 64), the diagonal above.
AUTO_FULL_DIMENSION = 64


@dataclass(frozen=True)
class InitialState:
    """The initial state of a run, before a generator turns it into kernel input.

    Attributes
    ----------
    kind : str
        One of :data:`INITIAL_KINDS`.
    vector : (d,) complex or None
        The pure state in the user's basis (``basis``, ``product``, ``vector``); normalised
        by the generator.
    index : int or None
        The eigen-index of ``eigenstate`` (ascending energies), or the basis index of ``basis``.
    level_populations : (L,) float or None
        ``populations``: the weight of each level, ascending energies (as given).
    populations : (d,) float or None
        The weight of each eigenstate, once resolved for a generator
        (:func:`jumps.runtime.plan.resolve_start`): ``gibbs``, ``populations`` (a level's
        weight spread evenly over its eigenstates) and ``steady_state``.
    weights, states : (K,) float and (K, d) complex, or None
        A mixture of pure states (user's basis) drawn with ``weights``: a steady state with
        coherences inside degenerate levels.
    """

    kind: str
    vector: np.ndarray | None = None
    index: int | None = None
    level_populations: np.ndarray | None = None
    populations: np.ndarray | None = None
    weights: np.ndarray | None = None
    states: np.ndarray | None = None

    @property
    def is_diagonal(self) -> bool:
        """One eigenstate, or eigenstates sampled with weights (no coherences between them)."""
        return self.kind in DIAGONAL_KINDS


class NotApplicable(ConfigError):
    """A generator cannot represent this system (found while building: the rates generator and
    a degenerate spectrum). A typed outcome: ``generator = "auto"`` then takes the next one."""


@dataclass(frozen=True)
class Cost:
    """What building a generator will take, estimated before building.

    ``peak_bytes`` while building, ``kept_bytes`` afterwards, ``seconds`` of build time."""

    peak_bytes: float
    kept_bytes: float
    seconds: float


@dataclass(frozen=True)
class Diagnostics:
    """Checks of a generator's assumptions, for ``info`` and ``run.json``.

    Attributes
    ----------
    record : dict
        What ``run.json`` stores (``generator``, ``secular_margin``, ``steady_state_dimension``
        and the generator's own spacing and rate keys).
    spacing, rate : (label, value)
        The smallest frequency spacing that the secular approximation must resolve, and the
        largest rate; their ratio is the secular margin (want >> 1).
    margin_label : str
    steady_states : int or None
        Number of steady states (None: not decided).
    undecided, why_many : str
        What ``info`` says when the number is not decided, and when it is above one.
    notes : list of str
        Further ``info`` lines.
    """

    record: dict
    spacing: tuple[str, float]
    rate: tuple[str, float]
    margin_label: str
    steady_states: int | None
    undecided: str
    why_many: str
    notes: list[str] = field(default_factory=list)

    @property
    def secular_margin(self) -> float:
        return self.spacing[1] / self.rate[1] if self.rate[1] > 0 else np.inf


class ChunkRunner(Protocol):
    """Runs chunks of a plan's trajectories and keeps their sums (what every rank holds).

    ``records`` are the per-trajectory arrays, of length ``ntraj`` (rows of trajectories not
    run here are zero): ``heat`` (ntraj, n_baths) and ``n_jumps`` (ntraj,)."""

    records: dict[str, np.ndarray]

    def run(self, first: int, count: int) -> int:
        """Run trajectories ``first .. first+count-1``; returns their number of jumps."""

    def sums(self, transitions: bool = True) -> dict[str, np.ndarray]:
        """The running sums (dense arrays add over ranks; the sparse transition counts
        merge). ``transitions=False`` is what the early stop reads after every chunk: the
        transition counts and the density-matrix sums may be left out."""

    def jump_list(self, trajectories: int) -> dict[str, np.ndarray]:
        """The jumps of trajectories ``0 .. trajectories-1``, replayed from their streams:
        ``jump_trajectory``, ``jump_time`` and the generator's own keys (the bath the jump's
        heat went to, or the channel it went through)."""


class Unravelling(ABC):
    """How one kind of generator is built, run and reported (see the module docstring).

    Subclasses set :attr:`name` (the ``run.generator`` value), :attr:`generator_type` (the
    dataclass :meth:`build` returns) and implement the abstract methods.
    """

    name: ClassVar[str]
    generator_type: ClassVar[type]
    # Whether a result's channel arrays list every channel of the generator (rather than only
    # the channels that jumped); stored in run.json for the analysis' consistency checks.
    lists_every_channel: ClassVar[bool] = True
    # Bytes a chunk's buffers take per jump of its trajectories (jumps.runtime.budget): 0 when
    # the kernel keeps no per-jump buffer.
    chunk_bytes_per_jump: ClassVar[float] = 0.0

    # -- options ---------------------------------------------------------------------------

    def refusal(self, state: InitialState, density: str) -> tuple[str, str] | None:
        """``(field, reason)`` when this generator cannot run ``state`` with
        ``density_matrix = density``, None when it can. The default accepts everything."""
        return None

    def check(self, state: InitialState, density: str) -> None:
        """:meth:`refusal` as a ConfigError."""
        refused = self.refusal(state, density)
        if refused is not None:
            raise ConfigError(*refused)

    def stored_density(self, density: str, dimension: int) -> str:
        """``full``, ``diagonal`` or ``none``: what the run stores for ``density``
        (``auto``: full up to :data:`AUTO_FULL_DIMENSION`, the diagonal above)."""
        if density == "auto":
            return "full" if dimension <= AUTO_FULL_DIMENSION else "diagonal"
        return density

    def auto_priority(self, dimension: int, state: InitialState, density: str) -> int | None:
        """Preference for ``generator = "auto"`` (the highest wins), None to be passed over."""
        return 0 if self.refusal(state, density) is None else None

    # -- build -----------------------------------------------------------------------------

    @abstractmethod
    def cost(self, config, floor_seconds: float, complex_values: bool) -> Cost:
        """Memory and build time for ``config`` (``floor_seconds``: one ``eigh`` and one
        ``d^3`` product per coupling at this machine's measured BLAS speed)."""

    def memory_hint(self, config) -> str:
        """A hint appended to the refusal of a build that does not fit in memory."""
        return ""

    @abstractmethod
    def build(self, config, comm):
        """The generator of ``config`` (on rank 0; None elsewhere). Call on every rank of
        ``comm``. Raises :class:`NotApplicable` when this generator cannot represent the
        system."""

    @abstractmethod
    def to_arrays(self, generator) -> tuple[dict[str, np.ndarray], dict]:
        """The generator as arrays and JSON metadata (for the on-disk cache)."""

    @abstractmethod
    def from_arrays(self, arrays: dict[str, np.ndarray], meta: dict, baths: tuple):
        """Inverse of :meth:`to_arrays` (``baths``: the config's, not stored)."""

    def check_arrays(self, arrays: dict[str, np.ndarray], meta: dict, n_baths: int) -> None:
        """Raise :class:`DamagedArrays` unless ``arrays`` and ``meta`` (read back from the
        on-disk cache, their checksums already verified) are consistent: shapes, and every
        index the kernel follows within range, so that damaged arrays can never reach the
        kernel. The default checks nothing (use the helpers :func:`require_shape`,
        :func:`require_index` and :func:`require_pointer`)."""

    def code_files(self) -> list[Path]:
        """The source files whose code shapes a built generator (its cache key hashes them):
        the generator's own subpackage. :mod:`jumps.runtime.build` adds the shared ones."""
        return sorted(Path(__import__(type(self).__module__, fromlist=["_"]).__file__)
                      .parent.glob("*.py"))

    # -- run -------------------------------------------------------------------------------

    @abstractmethod
    def pack(self, generator, state: InitialState, times: np.ndarray,
             observables: dict[str, Any], density: str):
        """The kernel's input, once per run: a namedtuple of arrays, or of namedtuples of
        arrays (MPI shares it field by field). ``density`` is already resolved."""

    @abstractmethod
    def runner(self, plan) -> ChunkRunner:
        """A chunk runner for ``plan`` (a :class:`jumps.runtime.plan.Plan`)."""

    @abstractmethod
    def warm_up(self, plan) -> None:
        """Compile the kernel, or load it from Numba's cache, with a chunk of no trajectories."""

    @abstractmethod
    def finalize(self, generator, plan, sums: dict[str, np.ndarray],
                 n: int) -> dict[str, np.ndarray]:
        """Result arrays (means with standard errors, counts) from the sums of ``n``
        trajectories."""

    @abstractmethod
    def observable_moments(self, plan, sums: dict[str, np.ndarray]):
        """``(sum, sum of squares)`` over trajectories of the first observable per output
        time, from running sums; None without observables."""

    def run_summary(self, sums: dict[str, np.ndarray]) -> dict:
        """Figures for ``run.json`` from the merged sums (none by default)."""
        return {}

    def adopt_shared(self, generator, plan):
        """The generator with its large arrays replaced by the plan's shared copies (on
        rank 0 under MPI, so that it holds one copy); by default the generator unchanged."""
        return generator

    @abstractmethod
    def counting_model(self, generator, coherent: bool):
        """The master equation split by bath for exact counting statistics
        (:class:`jumps.physics.counting.CountingModel`): the classical rate equation when it is
        exact (a non-degenerate spectrum, ``coherent`` False: a start diagonal in the energy
        basis), else the full Liouvillian. Raises ConfigError when neither can be had."""

    # -- reports ---------------------------------------------------------------------------

    @abstractmethod
    def diagnostics(self, generator) -> Diagnostics:
        """Secular margin and steady states."""

    @abstractmethod
    def describe(self, generator) -> tuple[str, list[str]]:
        """For ``info``: the dimension line's text, and the lines on the spectrum and the
        transitions (between the header and the diagnostics)."""

    def max_escape_rate(self, generator) -> float | None:
        """The largest total jump rate out of any state (``max <psi|K|psi>``, ``K`` the decay
        operator; dephasing jumps included): times ``t_final`` an upper bound of the expected
        jumps of a trajectory (:mod:`jumps.runtime.budget`). None: not known (the run-size
        check then cannot bound the jumps)."""
        return None


class DamagedArrays(ValueError):
    """Arrays read back from the cache are not a consistent generator (see
    :meth:`Unravelling.check_arrays`); ``str()`` names the file and the problem."""


def require_shape(arrays: dict[str, np.ndarray], name: str, shape: tuple,
                  kinds: str | None = None) -> np.ndarray:
    """``arrays[name]``, refused unless present with ``shape`` (and a dtype kind in ``kinds``:
    ``"i"`` signed integer, ``"u"`` unsigned, ``"f"`` float, ``"c"`` complex, ``"b"`` bool)."""
    if name not in arrays:
        raise DamagedArrays(f"{name}.npy: missing")
    array = arrays[name]
    if tuple(array.shape) != tuple(int(n) for n in shape):
        raise DamagedArrays(f"{name}.npy: shape {tuple(array.shape)}, expected {tuple(shape)}")
    if kinds is not None and array.dtype.kind not in kinds:
        raise DamagedArrays(f"{name}.npy: dtype {array.dtype}, expected kind {kinds!r}")
    return array


def require_length(arrays: dict[str, np.ndarray], name: str, kinds: str | None = None) -> int:
    """The length of ``arrays[name]``, refused unless present and one-dimensional (with a dtype
    kind in ``kinds``)."""
    if name not in arrays:
        raise DamagedArrays(f"{name}.npy: missing")
    if arrays[name].ndim != 1:
        raise DamagedArrays(f"{name}.npy: shape {arrays[name].shape}, expected one dimension")
    return require_shape(arrays, name, arrays[name].shape, kinds).size


def require_index(arrays: dict[str, np.ndarray], name: str, high: int, low: int = 0) -> None:
    """Every value of ``arrays[name]`` (integers) in ``[low, high)``."""
    array = arrays[name]
    if array.size and (int(array.min()) < low or int(array.max()) >= high):
        raise DamagedArrays(f"{name}.npy: values in [{int(array.min())}, {int(array.max())}], "
                            f"outside [{low}, {high})")


def require_pointer(arrays: dict[str, np.ndarray], name: str, size: int, end: int,
                    strict: bool = False) -> np.ndarray:
    """``arrays[name]``: ``size`` integers from 0 to ``end``, non-decreasing (``strict``:
    increasing), as CSR row pointers and level boundaries are."""
    pointer = require_shape(arrays, name, (size,), "iu")
    steps = np.diff(pointer)
    if size == 0 or pointer[0] != 0 or pointer[-1] != end or np.any(steps < 0) or (
            strict and np.any(steps == 0)):
        raise DamagedArrays(f"{name}.npy: not {'increasing' if strict else 'non-decreasing'} "
                            f"from 0 to {end}")
    return pointer


def file_digest(paths: list[Path]) -> str:
    """A short hash of the contents of ``paths`` (in the given order)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def table_rows(items: list[str], limit: int = 12) -> list[str]:
    """The rows of a long ``info`` table: the first and last ``limit / 2``, and a count."""
    if len(items) <= limit:
        return items
    half = limit // 2
    return items[:half] + [f"  ... ({len(items) - limit} more)"] + items[-half:]


# Jump-log entries a replayed trajectory starts with (doubled while a trajectory overflows it).
JUMP_LOG_CAPACITY = 4096


def replay_jumps(replay, trajectories: int) -> dict[str, np.ndarray]:
    """The jumps of trajectories ``0 .. trajectories-1``: ``jump_trajectory``, ``jump_time``,
    ``jump_code`` (the generator's code of the jump), ``jump_from`` and ``jump_to`` (levels;
    -1 where the state spreads over several).

    ``replay(index, capacity)`` runs trajectory ``index`` alone from its own stream (so exactly
    as in the main run) with a jump log of ``capacity`` entries
    (:func:`jumps.core.records.new_log`), and returns the log. A trajectory that overflowed it
    is run again with a log twice its number of jumps."""
    capacity = JUMP_LOG_CAPACITY
    parts = []
    for index in range(trajectories):
        while True:
            log = replay(index, capacity)
            n = int(log["log_count"][0])
            if n <= capacity:
                break
            capacity = 2 * n
        parts.append((np.full(n, index, dtype=np.int64), log["log_time"][:n],
                      log["log_code"][:n], log["log_levels"][:n]))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return {"jump_trajectory": empty, "jump_time": np.zeros(0), "jump_code": empty,
                "jump_from": empty, "jump_to": empty}
    trajectory, time, code, levels = (np.concatenate(p) for p in zip(*parts))
    return {"jump_trajectory": trajectory, "jump_time": time, "jump_code": code,
            "jump_from": levels[:, 0], "jump_to": levels[:, 1]}
