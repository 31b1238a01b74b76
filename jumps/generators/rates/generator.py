"""Large systems: the Davies generator as rates between eigenstates (the *rates* generator).

For a non-degenerate spectrum, a trajectory that starts in an eigenstate (or a Gibbs-sampled
one) stays in eigenstates: every jump operator ``A_a(w)`` maps ``|m>`` to the single ``|n>``
with ``E_m - E_n = w``, so the unravelling is the classical Markov chain with rates

    R_a(m -> n) = gamma_a(E_m - E_n) |<n|A_a|m>|^2            (docs/design.md, "Conventions"),

exactly, whatever the degeneracies of the Bohr frequencies. This module builds what that chain
needs for ``d`` up to 2^14 without ever storing a per-channel list (``n_baths * d^2`` entries:
60 GB at 14 spins):

- one real (or complex) ``eigh`` of H;
- per coupling operator, per block of source states, ``<n|A_a|m>`` for all ``n`` by one
  sparse product ``A_a V_blk`` and one matrix product ``V^dag (A_a V_blk)``: together one
  ``d^3`` product per operator, the BLAS floor;
- per source ``m``: a Walker alias table over the targets ``n`` of the total rate
  ``sum_a R_a(m -> n)`` (O(1) draw of the target), and, when there are several baths, the
  bath split of each pair in two levels. The baths form *sets* of ``set_size`` consecutive
  baths; ``coarse_split`` holds the cumulative fractions of the pair's rate in the sets,
  rounded to 16 bits, and ``fine_split`` the cumulative fractions of each bath within its set,
  rounded to 8 bits. The kernel draws the set, then (with a second uniform) the bath in it.
  Only when a uniform falls within half a quantum of a rounded boundary does it recompute
  exact matrix elements from the eigenvectors: all of them for the set (probability
  ~ n_sets / 65535, cost O(n_baths nnz(A))), those of the set's baths for the bath in it
  (probability ~ set_size / 255, cost O(set_size nnz(A))). So the bath choice is exact, and
  O(1) but for those rare cases. ``set_size = 1`` is a flat 16-bit split (2 (n_baths - 1)
  bytes per pair), ``set_size = n_baths`` a flat 8-bit one (n_baths - 1 bytes); the build
  takes the smallest set size whose tables fit the memory (:func:`choose_set_size`);
- the Lamb shift ``S_a(E_m - E_n)`` from a piecewise-Chebyshev table of the smooth ``S(w)``
  (error below 1e-10 of ``max|S|``): ``H_LS`` is diagonal here, so it changes no population
  and no jump statistics; it is reported.

Memory at d = 16384 with 14 baths: eigenvectors 2 GiB, thresholds 2 GiB, aliases 1 GiB, the
bath split 3.25 GiB (8 bits) to 6.5 GiB (16 bits), 4.25 GiB with sets of 3 (see
:func:`memory_estimate`).
"""

from __future__ import annotations

import os
import time
from collections import namedtuple
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sl
import scipy.sparse as sp

from ...core.alias import alias_rows
from ...core.memory import available_memory
from ...errors import ConfigError
from ...physics.baths import Bath, LambShiftTable, check_bath_values
from ...physics.matrices import is_real, sparse
from ...physics.spectrum import common_beta, default_degeneracy_tol, gibbs_populations
from ..base import NotApplicable
from . import build_kernels as kernels
from .kernels import COARSE_SCALE, FINE_SCALE

# A block of source states holds its (n_baths, b, d) rates as float64 in about this many
# elements (1 GiB), and at least MIN_BLOCK sources (narrower products fall below BLAS-3 speed).
BLOCK_WEIGHT_ELEMENTS = 1 << 27
MIN_BLOCK = 16
# Eigenvector rows are processed in blocks of this many elements (128 MiB of float64), so that
# no d x d temporary is made at d = 16384.
ROW_BLOCK_ELEMENTS = 1 << 24

# Per bath group (baths with equal parameters): a Chebyshev table of gamma(w), evaluated by the
# kernel only for the rare exact bath decisions, and only when there are several groups (with
# one group gamma cancels from the bath choice). Thermal groups tabulate emission on [0, w_max]
# and take absorption from KMS, exp(-beta w) gamma(w).
RateTables = namedtuple("RateTables", [
    "group",            # (n_baths,) int64: bath -> group
    "thermal",          # (G,) bool
    "beta",             # (G,) float (inf allowed)
    "ptr",              # (G+1,) int64: panels of group g
    "low", "high",      # (P,) float: panel edges
    "coefficients",     # (P, DEGREE) float: Chebyshev coefficients
])


@dataclass(frozen=True)
class RateGenerator:
    """The rates generator of a non-degenerate system (see the module docstring).

    Attributes
    ----------
    energies : (d,) float
        Eigenvalues, ascending (all distinct within ``degeneracy_tol``).
    vectors : (d, d) float or complex
        Row ``m`` is eigenvector ``m`` in the user's basis (``V.T``, C-contiguous).
    level_rate : (d,) float
        Total jump rate out of each eigenstate, ``sum_{a,n} R_a(m -> n)``.
    threshold : (d*d,) float, alias : (d*d,) int32
        Row ``m`` (entries ``m*d .. m*d+d-1``): Walker alias table over targets ``n`` of
        ``sum_a R_a(m -> n)``; ``alias`` holds target indices.
    coarse_split : (d*d*(n_sets-1),) uint16
        For pair ``(m, n)`` (entries ``(m*d+n)*(n_sets-1) + g``): the cumulative fraction of
        the pair's rate in bath sets ``0..g``, times 65535, rounded.
    fine_split : (d*d*(n_baths-n_sets),) uint8
        For pair ``(m, n)`` (entries ``(m*d+n)*(n_baths-n_sets) + g*(set_size-1) + j``): the
        fraction of the rate of set ``g`` in its baths ``0..j``, times 255, rounded.
    set_size : int
        Baths per set (the last set may be smaller); ``n_sets = ceil(n_baths / set_size)``.
    lamb_shift : (d,) float
        Diagonal of ``H_LS`` in the eigenbasis (0 when switched off).
    couplings : tuple of CSR matrices
        The coupling operators in the user's basis (for the exact bath decisions).
    rate_tables : RateTables
    baths : tuple of Bath
    degeneracy_tol : float
    min_level_spacing : float
    components : int or None
        Number of classes of eigenstates connected by non-zero rates: the number of steady
        states (1: unique, the Gibbs state). None when not decided (a bath that is not
        thermal at finite temperature: the jump graph is then directed).
    timings : dict
        Seconds spent in ``eigh``, the matrix products (the BLAS floor) and the rest.
    """

    energies: np.ndarray
    vectors: np.ndarray
    level_rate: np.ndarray
    threshold: np.ndarray
    alias: np.ndarray
    coarse_split: np.ndarray
    fine_split: np.ndarray
    set_size: int
    lamb_shift: np.ndarray
    couplings: tuple
    rate_tables: RateTables
    baths: tuple[Bath, ...] = field(default_factory=tuple)
    degeneracy_tol: float = 0.0
    drop_tol: float = 0.0
    min_level_spacing: float = np.inf
    components: int | None = None
    timings: dict = field(default_factory=dict)

    @property
    def dimension(self) -> int:
        return self.energies.size

    @property
    def level_ptr(self) -> np.ndarray:
        """Levels are eigenstates here (a non-degenerate spectrum)."""
        return np.arange(self.dimension + 1)

    @property
    def n_baths(self) -> int:
        return len(self.baths)

    @property
    def n_sets(self) -> int:
        return n_sets(self.n_baths, self.set_size)

    def common_beta(self) -> float | None:
        return common_beta(self.baths)

    def gibbs_populations(self, beta: float | None = None) -> np.ndarray:
        """Gibbs populations of the eigenstates (at the baths' common beta)."""
        return gibbs_populations(self.energies, self.common_beta() if beta is None else beta)

    def total_rates(self, sources: np.ndarray) -> np.ndarray:
        """``sum_a R_a(m -> n)`` for the listed sources ``m`` (rows) and all ``n``, recovered
        from the alias tables (to rounding): for tests and small-system checks."""
        d = self.dimension
        out = np.zeros((len(sources), d))
        for i, m in enumerate(sources):
            row = slice(m * d, (m + 1) * d)
            keep = self.threshold[row]
            out[i] = keep / d
            np.add.at(out[i], self.alias[row], (1.0 - keep) / d)
            out[i] *= self.level_rate[m]
        return out

    def diagonal_of(self, operator) -> np.ndarray:
        """``<m|O|m>`` for every eigenstate, for an operator in the user's basis (sparse or
        dense), in blocks of rows (no d x d temporary)."""
        operator = sparse(operator)
        d = self.dimension
        out = np.empty(d)
        step = max(1, ROW_BLOCK_ELEMENTS // d)
        for lo in range(0, d, step):
            rows = self.vectors[lo:lo + step]
            out[lo:lo + step] = np.real(np.einsum("md,md->m", rows.conj(),
                                                  np.asarray(operator @ rows.T).T))
        return out

    def user_basis_populations(self, populations: np.ndarray, power: int = 1) -> np.ndarray:
        """``sum_m populations[t, m] |<i|m>|^(2 power)`` (T, d): the diagonal of the density
        matrix in the user's basis of a state diagonal in the eigenbasis (``power = 2``: the
        second moment over eigenstates, for standard errors), in blocks of eigenstates."""
        d = self.dimension
        out = np.zeros((populations.shape[0], d))
        step = max(1, ROW_BLOCK_ELEMENTS // d)
        for lo in range(0, d, step):
            weight = np.abs(self.vectors[lo:lo + step]) ** (2 * power)   # (b, d): |<i|m>|^2p
            out += populations[:, lo:lo + step] @ weight
        return out

    def summary_arrays(self) -> dict[str, np.ndarray]:
        """The arrays every result file carries about its generator (see README, Results)."""
        return {"energies": self.energies, "level_energies": self.energies,
                "level_ptr": self.level_ptr,
                "level_rate": self.level_rate, "level_lamb_shift": self.lamb_shift,
                "bath_beta": np.array([b.beta for b in self.baths])}


# -- sizes ------------------------------------------------------------------------------------




def n_sets(n_baths: int, set_size: int) -> int:
    return -(-n_baths // set_size)


def split_bytes(n_baths: int, d: int, set_size: int) -> int:
    """Bytes of the two-level bath split: 2 per set boundary, 1 per bath boundary in a set."""
    sets = n_sets(n_baths, set_size)
    return d * d * (2 * (sets - 1) + (n_baths - sets))


def choose_set_size(n_baths: int, d: int, complex_vectors: bool = False, n_groups: int = 1,
                    memory: float | None = None) -> int:
    """The smallest set size (the fewest exact bath decisions, the cheapest ones) whose split
    fits a quarter of ``memory`` (default: the memory available now) and whose build peak
    (:func:`memory_estimate`) fits half of it; ``n_baths`` (flat 8 bits) when none does."""
    memory = available_memory() if memory is None else memory
    for size in range(1, max(n_baths, 1) + 1):
        peak = memory_estimate(d, n_baths, complex_vectors, size, n_groups)["peak"]
        if split_bytes(n_baths, d, size) <= memory / 4 and peak <= memory / 2:
            return size
    return max(n_baths, 1)


def memory_estimate(d: int, n_baths: int, complex_vectors: bool = False,
                    set_size: int | None = None, n_groups: int = 1) -> dict[str, float]:
    """Bytes the rates generator needs: what it keeps, and the peak while building (``n_groups``
    bath groups each hold a block of rates and of Lamb shifts)."""
    if set_size is None:
        set_size = choose_set_size(n_baths, d, complex_vectors, n_groups)
    vector = d * d * (16 if complex_vectors else 8)
    kept = {"eigenvectors": vector, "thresholds": 8 * d * d, "aliases": 4 * d * d,
            "bath split": split_bytes(n_baths, d, set_size)}
    block = _block_size(d, n_baths)
    temporaries = n_baths * block * d * 8 + 6 * d * block * 16 + 2 * n_groups * block * d * 8
    total = sum(kept.values())
    return {**kept, "kept": total, "peak": max(total + temporaries, 2 * vector + 26 * 8 * d)}


def _block_size(d: int, n_baths: int) -> int:
    """Source states per block: the per-block weights (n_baths, b, d) stay near 1 GiB (wide
    blocks keep the products at BLAS-3 speed). ``JUMPS_BUILD_BLOCK`` sets it (tests use small
    blocks to deal several to each rank)."""
    if os.environ.get("JUMPS_BUILD_BLOCK"):
        return int(min(d, max(1, int(os.environ["JUMPS_BUILD_BLOCK"]))))
    return int(min(d, max(MIN_BLOCK, BLOCK_WEIGHT_ELEMENTS // max(1, n_baths * d))))


# -- the build --------------------------------------------------------------------------------


def build_rate_generator(hamiltonian, couplings: list, baths: list[Bath],
                         degeneracy_tol: float | None = None, lamb_shift: bool = True,
                         set_size: int | None = None, comm=None,
                         drop_tol: float = 1e-12) -> RateGenerator | None:
    """Build the rates generator of ``H`` coupled through ``couplings[a]`` to ``baths[a]``.

    Parameters
    ----------
    hamiltonian : (d, d) array or sparse matrix
        Hermitian system Hamiltonian in the user's basis (hbar = 1).
    couplings : list of (d, d) arrays or sparse matrices
        Hermitian coupling operators, one per bath.
    baths : list of Bath
    degeneracy_tol : float, optional
        Eigenvalues closer than this are degenerate: refused here (use the channel generator).
        Default ``1e-9 (1 + max|E|)``.
    lamb_shift : bool
        Compute the (diagonal) Lamb shift.
    drop_tol : float
        Eigenbasis matrix elements ``|<n|A_a|m>|`` below ``drop_tol`` times the largest
        absolute row sum of ``A_a`` (a bound on every element) are rounding of the basis change
        and are zero: they would otherwise join symmetry sectors that no rate connects (a
        second steady state counted as one).
    set_size : int, optional
        Baths per set of the bath split (1: flat 16 bits, ``len(baths)``: flat 8 bits);
        default by memory (:func:`choose_set_size`).
    comm : jumps.runtime.parallel.Comm, optional
        With several ranks (call on all of them): rank 0 diagonalises H, the eigenvectors go
        to every rank (one shared copy per node), the blocks of source states are dealt out
        round-robin, and rank 0 gathers the rows. Returns the generator on rank 0, None on
        the others.
    """
    if len(couplings) != len(baths):
        raise ConfigError("baths", f"{len(couplings)} coupling operators for {len(baths)} baths")
    parallel = comm is not None and comm.is_parallel
    rank, size = (comm.rank, comm.size) if parallel else (0, 1)
    timings = {"eigh": 0.0, "products": 0.0, "rest": 0.0}
    start = time.perf_counter()
    real = is_real(hamiltonian) and all(is_real(A) for A in couplings)
    energies = vectors = None
    if rank == 0:
        energies, vectors = _eigenbasis(hamiltonian, real)
    if parallel:
        comm.barrier()  # the others sleep through the eigh
        shared = comm.share({"energies": energies, "vectors": vectors} if rank == 0 else None)
        energies, vectors = shared["energies"], shared["vectors"]
    timings["eigh"] = time.perf_counter() - start
    d = energies.size
    tol = default_degeneracy_tol(energies) if degeneracy_tol is None else float(degeneracy_tol)
    spacing = float(np.min(np.diff(energies))) if d > 1 else np.inf
    if spacing <= tol:  # the same shared energies on every rank: all raise together
        raise NotApplicable("system", f"degenerate levels (spacing {spacing:.3g} <= degeneracy_tol "
                                    f"{tol:.3g}): the rates generator needs a non-degenerate "
                                    "spectrum; use run.generator = 'channels'")
    operators = [sparse(A) for A in couplings]
    if real:
        operators = [sp.csr_matrix(A.real) for A in operators]
    if any(A.nnz == 0 for A in operators):
        bad = next(a for a, A in enumerate(operators) if A.nnz == 0)
        raise ConfigError(f"baths[{bad}].coupling", "the coupling operator is zero")
    cuts = element_cuts(operators, drop_tol)
    n_baths = len(baths)
    groups = _groups(baths)
    if set_size is None:  # the eigenvectors are held already: count them as available
        set_size = choose_set_size(n_baths, d, np.iscomplexobj(vectors), int(groups.max()) + 1,
                                   available_memory() + vectors.nbytes)
        if parallel:  # the memory each rank sees differs: rank 0's choice holds for all
            set_size = comm.bcast(set_size)
    set_size = int(set_size)
    if not 1 <= set_size <= n_baths:
        raise ValueError(f"set_size must be in 1..{n_baths}, got {set_size!r}")
    # Tables span the Bohr frequencies [-width, width] (at least [-1, 1]: d = 1 has only w = 0).
    width = max(float(energies[-1] - energies[0]), 1.0)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow: refused here
        probe = np.linspace(-width, width, 9)
        for bath in baths:  # before the tables, whose fit would not converge on inf or NaN
            shifts = bath.lamb_shift(probe) if lamb_shift and bath.lamb_shift_enabled else probe
            check_bath_values(bath.rates(probe), shifts)
        shift_tables = _lamb_shift_tables(baths, groups, width) if lamb_shift else None
    block = _block_size(d, n_baths)
    blocks = [(lo, min(d, lo + block)) for lo in range(0, d, block)]
    mine = blocks[rank::size]
    # Rank 0 holds all rows; another rank only its own, packed one block after the other.
    rows = d if rank == 0 else sum(hi - lo for lo, hi in mine)
    out = _allocate(rows, d, n_baths, set_size)
    parent = np.arange(d)
    row = 0
    failure = None
    try:
        for lo, hi in mine:
            first = lo if rank == 0 else row
            timings["products"] += _block(energies, vectors, operators, cuts, baths, groups,
                                          shift_tables, lo, hi, out, first, set_size, parent)
            row += hi - lo
    except ConfigError as error:  # bad rates in this rank's blocks: every rank must know
        failure = (error.field, error.reason)
    if parallel:
        failures = [f for f in comm.allgather(failure) if f is not None]
        failure = failures[0] if failures else None
    if failure is not None:
        raise ConfigError(*failure)
    if parallel:
        parent = _gather_rows(comm, blocks, out, parent)
    timings["rest"] = time.perf_counter() - start - timings["eigh"] - timings["products"]
    if rank != 0:
        return None
    thermal = all(b.is_thermal and np.isfinite(b.beta) for b in baths)
    components = int(np.unique(_find_all(parent)).size) if thermal else None
    return RateGenerator(
        energies=energies, vectors=vectors, level_rate=out["level_rate"],
        threshold=out["threshold"], alias=out["alias"], coarse_split=out["coarse_split"],
        fine_split=out["fine_split"], set_size=set_size, lamb_shift=out["lamb_shift"],
        couplings=tuple(sp.csr_matrix(A) for A in operators),
        rate_tables=_rate_tables(baths, groups, width), baths=tuple(baths),
        degeneracy_tol=tol, drop_tol=drop_tol, min_level_spacing=spacing, components=components,
        timings={**timings, "ranks": size})


def _eigenbasis(hamiltonian, real: bool) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors as rows (C-contiguous), by LAPACK's dsyevr/zheevr."""
    H = _dense_hamiltonian(hamiltonian, real)
    energies, V = sl.eigh(H, driver="evr", overwrite_a=True, check_finite=False)
    del H
    vectors = V.T  # F-ordered V: its transpose has the eigenvectors as contiguous rows
    return energies, vectors if vectors.flags.c_contiguous else np.ascontiguousarray(vectors)


def _gather_rows(comm, blocks, out, parent) -> np.ndarray:
    """Rank 0 receives every other rank's rows into its full arrays, and joins their
    connectivity into its union-find forest (returned; meaningful on rank 0)."""
    rank, size = comm.rank, comm.size
    rows = out["level_rate"].size               # d on rank 0, its own rows elsewhere
    tables = {name: out[name].reshape(rows, -1) if rows else out[name] for name in
              ("threshold", "alias", "coarse_split", "fine_split", "level_rate", "lamb_shift")}
    for owner in range(1, size):
        packed = 0
        for lo, hi in blocks[owner::size]:
            for table in tables.values():
                if rank == owner:
                    comm.send_array(table[packed:packed + hi - lo], 0)
                elif rank == 0:
                    comm.receive_array(table[lo:hi], owner)
            packed += hi - lo
        if rank == owner:
            comm.send_array(_find_all(parent), 0)
        elif rank == 0:
            labels = np.empty_like(parent)
            comm.receive_array(labels, owner)
            kernels.union_labels(parent, labels)
    return parent


def _dense_hamiltonian(hamiltonian, real: bool) -> np.ndarray:
    """H as the dense matrix LAPACK needs, real when it is real (never a complex copy of a
    real 14-spin Hamiltonian: that alone would be 4 GiB)."""
    if sp.issparse(hamiltonian):
        return (hamiltonian.real if real else hamiltonian.astype(complex)).toarray()
    H = np.asarray(hamiltonian)
    return np.ascontiguousarray(H.real if real else H.astype(complex))


def _allocate(rows: int, d: int, n_baths: int, set_size: int) -> dict[str, np.ndarray]:
    """Output arrays for ``rows`` source states (flat, row-major: row r, target n)."""
    sets = n_sets(n_baths, set_size)
    return {"threshold": np.empty(rows * d), "alias": np.empty(rows * d, dtype=np.int32),
            "coarse_split": np.empty(rows * d * (sets - 1), dtype=np.uint16),
            "fine_split": np.empty(rows * d * (n_baths - sets), dtype=np.uint8),
            "level_rate": np.zeros(rows), "lamb_shift": np.zeros(rows)}


def _groups(baths: list[Bath]) -> np.ndarray:
    """Group index of each bath: equal keys (equal parameters) share rates and Lamb shifts."""
    keys: dict[tuple, int] = {}
    return np.array([keys.setdefault(b.key, len(keys)) for b in baths], dtype=np.int64)


def _lamb_shift_tables(baths, groups, width) -> dict[int, object]:
    """Per group, S(w) on [-width, width]: a Chebyshev table (``None`` if the shift is off)."""
    tables: dict[int, object] = {}
    for a, bath in enumerate(baths):
        g = int(groups[a])
        if g not in tables:
            tables[g] = (LambShiftTable(bath._lamb_shift_direct, -width, width)
                         if bath.lamb_shift_enabled and width > 0 else None)
    return tables


def _block(energies, vectors, operators, cuts, baths, groups, shift_tables, lo, hi, out, first,
           set_size, parent) -> float:
    """Rates, bath split, alias tables and Lamb shift of source states ``lo:hi``, into rows
    ``first:first + hi - lo`` of ``out`` (matrix elements of ``operators[a]`` below
    ``cuts[a]`` zero).

    Returns the seconds spent in the matrix products."""
    d = energies.size
    b = hi - lo
    rows = slice(first, first + b)
    n_baths = len(operators)
    gaps = energies[lo:hi, None] - energies[None, :]          # (b, d): w = E_m - E_n
    rates, shifts = {}, {}
    for a, bath in enumerate(baths):
        g = int(groups[a])
        if g not in rates:
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is refused below
                rates[g] = bath.rates(gaps)
            table = shift_tables.get(g) if shift_tables is not None else None
            if table is not None:
                values = table(gaps.ravel()).reshape(b, d)
                values[np.arange(b), np.arange(lo, hi)] = bath._lamb_shift_direct(np.zeros(1))[0]
                shifts[g] = values
    weights = np.empty((n_baths, b, d))
    no_shift = np.zeros((0, 0))
    seconds = 0.0
    for a, A in enumerate(operators):
        tick = time.perf_counter()
        elements = _matrix_elements(vectors, A, lo, hi)        # (b, d): <n|A|m>
        seconds += time.perf_counter() - tick
        elements[np.abs(elements) < cuts[a]] = 0.0
        g = int(groups[a])
        kernels.rate_weights(elements, rates[g], shifts.get(g, no_shift), weights[a],
                             out["lamb_shift"][rows])
    if any(not np.all(np.isfinite(r)) or np.any(r < 0) for r in rates.values()):
        raise ConfigError("baths", "a bath gives negative or non-finite rates at the Bohr frequencies")
    if not np.all(np.isfinite(out["lamb_shift"][rows])):
        raise ConfigError("baths", "a bath's Lamb shift is not finite at the Bohr frequencies "
                                   "(overflow: is the coupling strength absurd?)")
    total = np.empty((b, d))
    sets = n_sets(n_baths, set_size)
    height = out["level_rate"].size  # rows held (reshape cannot infer them from empty splits)
    kernels.rate_split(weights, set_size, COARSE_SCALE, FINE_SCALE, total,
                       out["level_rate"][rows],
                       out["coarse_split"].reshape(height, d, sets - 1)[rows],
                       out["fine_split"].reshape(height, d, n_baths - sets)[rows])
    alias_rows(total, out["threshold"].reshape(-1, d)[rows],
               out["alias"].reshape(-1, d)[rows])
    _join(parent, total, lo)
    return seconds


def _matrix_elements(vectors, A, lo, hi) -> np.ndarray:
    """``|<n|A|m>|``-correct matrix elements for sources ``m`` in ``lo:hi`` (rows) and all
    targets ``n`` (columns), C-ordered: the rows ``A |m>`` (:func:`.build_kernels.apply_rows`)
    and one BLAS-3 product ``(A V_blk)^dag V`` (complex case: the conjugates ``<m|A|n>``, which
    have the same magnitude, so that no conjugated copy of the eigenvectors is made)."""
    complex_ = np.iscomplexobj(vectors) or np.iscomplexobj(A.data)
    applied = np.empty((hi - lo, vectors.shape[1]), dtype=complex if complex_ else float)
    data = A.data.astype(applied.dtype, copy=False)
    source = vectors if vectors.dtype == applied.dtype else vectors[lo:hi].astype(applied.dtype)
    kernels.apply_rows(A.indptr.astype(np.int64, copy=False),
                       A.indices.astype(np.int64, copy=False), data, source,
                       lo if source is vectors else 0, applied, complex_)
    return applied @ vectors.T                                # (b, d)


def element_cuts(operators: list, drop_tol: float) -> list[float]:
    """Per coupling, the eigenbasis matrix elements below which are zero: ``drop_tol`` times
    its largest absolute row sum (a bound on every ``|<n|A|m>|``)."""
    return [drop_tol * float(abs(A).sum(axis=1).max()) for A in operators]


def _join(parent: np.ndarray, total: np.ndarray, lo: int) -> None:
    """Union the eigenstates joined by a non-zero rate (``total`` rows are sources lo..)."""
    kernels.union_rows(parent, total, lo)


def _find_all(parent: np.ndarray) -> np.ndarray:
    return kernels.union_roots(parent)


def _rate_tables(baths: list[Bath], groups: np.ndarray, width: float) -> RateTables:
    """Chebyshev tables of each group's ``gamma(w)`` (empty when there is one group)."""
    n_groups = int(groups.max()) + 1
    thermal = np.zeros(n_groups, dtype=bool)
    beta = np.zeros(n_groups)
    low, high, coefficients, ptr = [], [], [], [0]
    for g in range(n_groups):
        bath = baths[int(np.flatnonzero(groups == g)[0])]
        thermal[g], beta[g] = bath.is_thermal, bath.beta if bath.is_thermal else 0.0
        panels = 0
        if n_groups > 1 and width > 0:
            table = LambShiftTable(bath.rates, 0.0 if bath.is_thermal else -width, width,
                                   relative=True)
            low.append(table.edges[:-1])
            high.append(table.edges[1:])
            coefficients.append(table.coefficients)
            panels = len(table.coefficients)
        ptr.append(ptr[-1] + panels)
    degree = LambShiftTable.DEGREE
    return RateTables(
        group=groups, thermal=thermal, beta=beta, ptr=np.array(ptr, dtype=np.int64),
        low=np.concatenate(low) if low else np.zeros(0),
        high=np.concatenate(high) if high else np.zeros(0),
        coefficients=np.concatenate(coefficients) if coefficients else np.zeros((0, degree)))


def per_bath_rates(generator: RateGenerator) -> list[sp.csr_matrix]:
    """The classical rate matrix of each bath, recomputed from the eigenvectors.

    ``R_a[n, m] = gamma_a(E_m - E_n) |<n|A_a|m>|^2`` is the rate of the jump ``m -> n`` through
    bath ``a`` (``E_m - E_n > 0``: emission into the bath; the diagonal ``m -> m`` holds the
    pure-dephasing rate ``gamma_a(0) |<m|A_a|m>|^2``). The generator itself keeps only the
    total rates and the rounded bath split, so the matrix elements are formed again, in blocks
    of source states (one ``d^3`` product per coupling, as in the build).

    Parameters
    ----------
    generator : RateGenerator

    Returns
    -------
    list of (d, d) CSR matrices, one per bath
        Rates in the model's inverse time unit; exact zeros dropped. Each is assembled dense
        first: ``8 d^2`` bytes per bath (128 MiB at d = 4096), meant for d <= 4096.
    """
    energies, vectors = generator.energies, generator.vectors
    d = energies.size
    step = _block_size(d, generator.n_baths)
    out = []
    cuts = element_cuts(generator.couplings, generator.drop_tol)
    for bath, A, cut in zip(generator.baths, generator.couplings, cuts, strict=True):
        rates = np.zeros((d, d))
        for lo in range(0, d, step):
            hi = min(d, lo + step)
            elements = _matrix_elements(vectors, A, lo, hi)          # (b, d): <n|A|m>
            elements[np.abs(elements) < cut] = 0.0                   # as the build
            gaps = energies[lo:hi, None] - energies[None, :]        # w = E_m - E_n
            rates[:, lo:hi] = (bath.rates(gaps) * np.abs(elements) ** 2).T
        matrix = sp.csr_matrix(rates)
        matrix.eliminate_zeros()
        out.append(matrix)
    return out
