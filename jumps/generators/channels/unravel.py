"""Unravelling a Davies generator: pack arrays for the kernels, run, and average.

This is the Python layer around :mod:`.kernels`: it packs a
:class:`~.generator.DaviesGenerator` into plain arrays once, keeps running sums in a
:class:`~.kernels.Tally` (memory independent of the number of trajectories, apart from
the per-trajectory heat and jump counts), and turns sums into means with standard errors.
"""

from __future__ import annotations

import numpy as np

from ...core.alias import alias_tables
from ...core.lanes import Initial, segmented_cumsum
from ...core.records import new_log, new_records
from ...core.sums import Accumulator, mean_stderr
from ...errors import ConfigError
from ...physics.matrices import as_array
from ..base import replay_jumps
from . import kernels
from .generator import DaviesGenerator
from .output import flush

# Tally arrays that are sums over trajectories. Integer counts add exactly in any order and
# accumulate in place; float sums are made per chunk and merged with compensation.
INT_FIELDS = ("level_counts", "jump_counts", "trans_counts")
FLOAT_FIELDS = ("pop_sum", "pop_sumsq", "obs_sum", "obs_sumsq", "rho_sum", "rho_sumsq",
                "rhodiag_sum", "rhodiag_sumsq", "occupation_time")
SUM_FIELDS = INT_FIELDS + FLOAT_FIELDS
DENSITY_FIELDS = ("rho_sum", "rho_sumsq", "rhodiag_sum", "rhodiag_sumsq")



# Amplitude-mode states are kept for the matrix products of output.flush: about this many
# complex numbers per kernel call (32 MiB), which sets the trajectories per call, but at least
# min(OUTPUT_ROWS, d) trajectories (a chunk's trajectories, if fewer). Each flush makes
# memory-bound passes over the (T, d, d) sums (~1 ms per output time at d = 256) on top of
# ~2 ms per trajectory of matrix products at T = 101: 81 rows (the 32 MiB at d = 256) spent
# 1.2 ms of fixed cost per trajectory, 256 rows 0.4 ms. With at most d rows the buffer
# (T, rows, d) is never larger than one (T, d, d) sum (or the 32 MiB).
OUTPUT_BUFFER_ELEMENTS = 1 << 21
OUTPUT_ROWS = 256
# A degenerate level's block of H_eff is diagonalised as R diag(lambda) R^-1; eigenvectors this
# ill-conditioned mean a (nearly) defective block, whose evolution R^-1 would amplify rounding
# by as much: refused.
MAX_EIGENVECTOR_CONDITION = 1e8
# Initial amplitudes (eigenbasis) this small are rounding from the basis change: zeroed.
ROUNDING_AMPLITUDE = 1e-14
# An observable whose eigenbasis elements between different levels are all below this times
# its largest element is evaluated within levels (observable_modes).
LEVEL_BLOCK_TOL = 1e-12


def pack_engine(generator: DaviesGenerator) -> kernels.Engine:
    """The kernel's view of a generator (see :class:`.kernels.Engine`)."""
    g = generator
    heff_lambda, right, left = _effective_hamiltonian(g)
    trans = _transition_table(g)
    rate = g.channel_rate[g.entry_channel]
    return kernels.Engine(
        level_ptr=g.level_ptr, level_of=g.level_of, block_ptr=g.block_ptr,
        heff_lambda=heff_lambda, heff_right=right, heff_left=left,
        decay=np.ascontiguousarray(g.decay_blocks),
        level_rate=trans["level_rate"], trans_ptr=trans["ptr"], trans_channel=trans["channel"],
        trans_target=trans["target"], trans_bath=g.channel_bath[trans["channel"]],
        trans_frequency=g.channel_frequency[trans["channel"]], trans_weight=np.column_stack([trans["weight"], g.channel_bath[trans["channel"]]]),
        pair_ptr=trans["pair_ptr"], pairs=trans["pairs"],
        trans_mat_ptr=trans["mat_ptr"], trans_mat=trans["mat"],
        chan_ptr=g.entry_ptr, chan_row=g.entry_row, chan_col=g.entry_col,
        chan_val=np.sqrt(rate) * g.entry_value, chan_bath=g.channel_bath,
        chan_frequency=g.channel_frequency, level_energy=g.level_energies,
    )


def _effective_hamiltonian(g: DaviesGenerator):
    """Eigen-decomposition ``H_eff,B = R diag(lambda) R^-1`` of every level block."""
    heff = g.effective_hamiltonian_blocks()
    sizes = g.level_sizes
    right = np.zeros(g.block_ptr[-1], dtype=complex)
    left = np.zeros_like(right)
    lam = np.zeros(g.dimension, dtype=complex)
    single = np.flatnonzero(sizes == 1)
    lam[g.level_ptr[single]] = heff[g.block_ptr[single]]
    right[g.block_ptr[single]] = 1.0
    left[g.block_ptr[single]] = 1.0
    for level in np.flatnonzero(sizes > 1):
        b, lo, start = sizes[level], g.level_ptr[level], g.block_ptr[level]
        values, vectors = np.linalg.eig(g.block(heff, level))
        condition = np.linalg.cond(vectors)
        if not np.isfinite(condition) or condition > MAX_EIGENVECTOR_CONDITION:
            raise ConfigError("system", f"the effective Hamiltonian of degenerate level {level} is "
                                        "not diagonalisable (defective block); perturb the model")
        lam[lo:lo + b] = values
        right[start:start + b * b] = vectors.ravel()
        left[start:start + b * b] = np.linalg.inv(vectors).ravel()
    return lam, right, left


def _transition_table(g: DaviesGenerator) -> dict[str, np.ndarray]:
    """Transitions out of each level: (channel, target level, sqrt(gamma) A[B', B]).

    Sorted by source level, then target level, then channel. Transitions with one source and
    one target level (one per bath) form a *pair*; each level gets a Walker alias table over
    its pairs for the pure-mode draw (see ``kernels._pure_jump``).
    """
    rate = g.channel_rate
    channel = g.entry_channel
    active = rate[channel] > 0
    row, col, value, channel = g.entry_row[active], g.entry_col[active], g.entry_value[active], channel[active]
    source, target = g.level_of[col], g.level_of[row]
    order = np.lexsort((row, channel, target, source))
    row, col, value, channel = row[order], col[order], value[order], channel[order]
    source, target = source[order], target[order]
    new_group = np.concatenate([[True], (source[1:] != source[:-1]) | (channel[1:] != channel[:-1])])
    starts = np.flatnonzero(new_group)
    group = np.cumsum(new_group) - 1
    n_groups = starts.size
    group_source, group_channel, group_target = source[starts], channel[starts], target[starts]
    sizes = g.level_sizes
    b_source, b_target = sizes[group_source], sizes[group_target]
    mat_ptr = np.concatenate([[0], np.cumsum(b_source * b_target)]).astype(np.int64)
    mat = np.zeros(mat_ptr[-1], dtype=complex)
    scaled = np.sqrt(rate[channel]) * value
    r = row - g.level_ptr[target]
    c = col - g.level_ptr[source]
    mat[mat_ptr[group] + r * b_source[group] + c] = scaled
    weight = np.bincount(group, weights=np.abs(scaled) ** 2, minlength=n_groups)
    ptr = np.searchsorted(group_source, np.arange(g.n_levels + 1)).astype(np.int64)
    new_pair = np.concatenate([[True], (group_source[1:] != group_source[:-1])
                               | (group_target[1:] != group_target[:-1])])
    pair_first = np.concatenate([np.flatnonzero(new_pair), [n_groups]]).astype(np.int64)
    pair_of = np.cumsum(new_pair) - 1
    pair_weight = np.bincount(pair_of, weights=weight, minlength=pair_first.size - 1)
    pair_ptr = np.searchsorted(group_source[pair_first[:-1]], np.arange(g.n_levels + 1)).astype(np.int64)
    pairs = aligned_empty(pair_weight.size, kernels.PAIR)
    pairs["threshold"], pairs["alias"] = alias_tables(pair_weight, pair_ptr)
    pairs["weight"] = pair_weight
    pairs["first"], pairs["end"] = pair_first[:-1], pair_first[1:]
    pairs["target"] = group_target[pair_first[:-1]]
    pairs["frequency"] = g.channel_frequency[group_channel[pair_first[:-1]]]
    pairs["unused"] = 0
    level_rate = np.bincount(group_source, weights=weight, minlength=g.n_levels)
    return {"ptr": ptr, "channel": group_channel.astype(np.int64),
            "target": group_target.astype(np.int64), "weight": weight,
            "pair_ptr": pair_ptr, "pairs": pairs,
            "mat_ptr": mat_ptr, "mat": mat, "level_rate": level_rate}


def aligned_empty(size: int, dtype: np.dtype, alignment: int = 64) -> np.ndarray:
    """An uninitialised array whose data start on an ``alignment``-byte boundary (so that each
    64-byte record lies in one cache line)."""
    dtype = np.dtype(dtype)
    raw = np.empty(size * dtype.itemsize + alignment, dtype=np.uint8)
    offset = -raw.ctypes.data % alignment
    return raw[offset:offset + size * dtype.itemsize].view(dtype)


def make_initial(generator: DaviesGenerator, psi0: np.ndarray | None) -> Initial:
    """Initial state: a pure state (user's basis) or, with ``psi0=None``, Gibbs-sampled
    eigenstates (at the baths' common temperature)."""
    if psi0 is None:
        return sampled_eigenstates(generator.gibbs_populations())
    return mixture(generator, np.ones(1), as_array(psi0).reshape(1, -1))


def sampled_eigenstates(populations: np.ndarray) -> Initial:
    """Eigenstates drawn with ``populations`` (one per eigen-index)."""
    d = populations.size
    return Initial(psi=np.zeros((0, d), dtype=complex),
                   cumulative=segmented_cumsum(populations, np.array([0, d])),
                   eigenstate=np.arange(d), vector=np.full(d, -1))


def mixture(generator: DaviesGenerator, weights: np.ndarray, states: np.ndarray) -> Initial:
    """Pure states ``states[k]`` (user's basis, rows) drawn with ``weights``; a state that is
    one eigenstate (to rounding) becomes that eigenstate."""
    d = generator.dimension
    states = np.asarray(states, dtype=complex)
    if states.shape[1] != d:
        raise ConfigError("initial_state", f"state has {states.shape[1]} components, the "
                                           f"system {d}")
    psi = states @ generator.eigenvectors.conj()            # rows: V^dag psi_k
    psi /= np.linalg.norm(psi, axis=1, keepdims=True)
    # Amplitudes at rounding level would put the state in amplitude mode for nothing.
    psi[np.abs(psi) < ROUNDING_AMPLITUDE] = 0.0
    psi /= np.linalg.norm(psi, axis=1, keepdims=True)
    single = np.count_nonzero(psi, axis=1) == 1
    eigenstate = np.where(single, np.argmax(psi != 0, axis=1), -1)
    vector = np.full(weights.size, -1)
    vector[~single] = np.arange(np.count_nonzero(~single))
    return Initial(psi=psi[~single], cumulative=np.cumsum(weights, dtype=float),
                   eigenstate=eigenstate.astype(np.int64), vector=vector.astype(np.int64))


def new_tally(generator: DaviesGenerator, engine: kernels.Engine, times: np.ndarray,
              observables: dict[str, np.ndarray], density: str, count: int,
              n_baths: int | None = None, amplitude: bool = True) -> kernels.Tally:
    """Zeroed running sums; per-trajectory arrays sized for ``count`` trajectories
    (``amplitude``: see :func:`empty_tally`)."""
    observables_eig = in_eigenbasis(generator, observables)
    return empty_tally(engine, np.ascontiguousarray(times, dtype=float), observables_eig,
                       np.ascontiguousarray(generator.eigenvectors), density, count,
                       len(generator.baths) if n_baths is None else n_baths, amplitude,
                       observable_modes(observables, observables_eig, generator.level_of))


def in_eigenbasis(generator: DaviesGenerator, observables: dict) -> np.ndarray:
    """(nobs, d, d) complex: the observables (user's basis, dense or sparse) in the eigenbasis."""
    d = generator.dimension
    return np.array([generator.to_energy_basis(as_array(o).astype(complex))
                     for o in observables.values()], dtype=complex).reshape(len(observables), d, d)


def amplitude_possible(engine: kernels.Engine, initial: Initial) -> bool:
    """Can a trajectory ever leave pure mode? Not if every level is non-degenerate and every
    initial component is one eigenstate."""
    return bool(np.any(np.diff(engine.level_ptr) > 1) or np.any(initial.eigenstate < 0))


def empty_tally(engine: kernels.Engine, times: np.ndarray, observables_eig: np.ndarray,
                eigenvectors: np.ndarray, density: str, count: int, n_baths: int,
                amplitude: bool = True, modes: tuple | None = None) -> kernels.Tally:
    """A zeroed Tally from the engine and the read-only arrays (no generator needed: this is
    what ranks other than 0 use, with those arrays in shared memory).

    ``amplitude=False`` (see :func:`amplitude_possible`) gives the amplitude-mode sums zero
    size: they would never be written, and a pure-mode run then costs no (T, d) arrays per chunk.
    ``modes``: ``(diagonals (nobs, d), modes (nobs,))`` of :func:`observable_modes` (default:
    every observable DENSE).
    """
    d, L = engine.level_of.size, engine.level_ptr.size - 1
    T, n_obs = times.size, observables_eig.shape[0]
    diagonals, flags = modes or (np.zeros((n_obs, d)), np.full(n_obs, kernels.DENSE))
    basis = np.ascontiguousarray(eigenvectors.T)
    full = density == "full"
    diagonal = density == "diagonal"
    if not amplitude:
        T = 0
    return kernels.Tally(
        times=times,
        level_counts=np.zeros((L, times.size), dtype=np.int64),
        pop_sum=np.zeros((T, d)), pop_sumsq=np.zeros((T, d)),
        observables=observables_eig, user_diagonal=diagonals, observable_mode=flags,
        obs_sum=np.zeros((T, n_obs)), obs_sumsq=np.zeros((T, n_obs)),
        basis=basis, real_basis=real_part(basis),
        rho_sum=np.zeros((T, d, d) if full else (0, 0, 0), dtype=complex),
        rho_sumsq=np.zeros((T, d, d) if full else (0, 0, 0), dtype=complex),
        rhodiag_sum=np.zeros((T, d) if diagonal else (0, 0)),
        rhodiag_sumsq=np.zeros((T, d) if diagonal else (0, 0)),
        jump_counts=np.zeros(engine.chan_ptr.size - 1, dtype=np.int64),
        trans_counts=np.zeros(engine.trans_channel.size, dtype=np.int64),
        occupation_time=np.zeros(L), **output_buffer(T if full else 0, count, d),
        **new_records(count, n_baths), **new_log(0),
    )


def real_part(matrix: np.ndarray) -> np.ndarray:
    """A complex matrix's real part when it has no imaginary part (real eigenvectors: the
    output's basis change takes two real matrix products), else an empty (0, 0) array."""
    if np.any(matrix.imag):
        return np.zeros((0, 0))
    return np.ascontiguousarray(matrix.real)


def output_buffer(T: int, count: int, d: int) -> dict[str, np.ndarray]:
    """Room for the amplitude-mode states of ``count`` trajectories at the ``T`` output times
    (``T = 0``: none; only the full density matrix needs them): one row per trajectory and
    output time at most (np.empty: pages that are never written cost no memory)."""
    return {"buffer": np.empty((T, count, d), dtype=complex),
            "fill": np.zeros(T, dtype=np.int64)}


def call_rows(T: int, d: int) -> int:
    """Trajectories per kernel call with the full density matrix: enough for an output buffer
    of OUTPUT_BUFFER_ELEMENTS complex numbers, and at least ``min(OUTPUT_ROWS, d)``."""
    return max(min(OUTPUT_ROWS, d), OUTPUT_BUFFER_ELEMENTS // max(1, T * d), 1)


def run_kernel(engine, initial, tally: kernels.Tally, key, first: int, count: int,
               lanes: int = kernels.LANES) -> int:
    """:func:`kernels.run_chunk`, then the amplitude-mode states it kept added to the sums
    (:func:`jumps.generators.channels.output.flush`); returns the number of jumps."""
    jumps = kernels.run_chunk(engine, initial, tally, key, first, count, lanes)
    flush(tally)
    return int(jumps)


def _complex(real: np.ndarray, imag: np.ndarray) -> np.ndarray:
    """``real + 1j imag`` part by part (``1j * inf`` would be ``nan + inf j``: one
    trajectory's error, inf, must stay ``inf + inf j``)."""
    out = np.empty(real.shape, dtype=complex)
    out.real, out.imag = real, imag
    return out


def observable_modes(observables: dict, observables_eig: np.ndarray,
                     level_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(diagonals (nobs, d), modes (nobs,) int64)``: how the amplitude path evaluates each
    observable (``kernels.DENSE``, ``USER_DIAGONAL``, ``LEVEL_BLOCKS``) and its diagonal in the
    user's basis.

    - LEVEL_BLOCKS: the eigenbasis matrix has no element between different levels above
      ``LEVEL_BLOCK_TOL`` times its largest (the energy, any conserved quantity: what is left is
      the rounding of the basis change). Those elements are left out: the expectation changes by
      at most ``d LEVEL_BLOCK_TOL max|O|``, far below any trajectory average's standard error.
    - USER_DIAGONAL: every off-diagonal element in the user's basis exactly zero (``Mz``): the
      kernel uses the user's-basis populations.
    - DENSE otherwise."""
    n = len(observables)
    d = observables_eig.shape[1] if observables_eig.ndim == 3 else 0
    diagonals, modes = np.zeros((n, d)), np.full(n, kernels.DENSE, dtype=np.int64)
    across = level_of[:, None] != level_of[None, :]
    for o, operator in enumerate(observables.values()):
        dense = as_array(operator)
        diagonal = np.diag(dense)
        diagonals[o] = np.real(diagonal)
        eig = np.abs(observables_eig[o])
        if not np.any(eig[across] > LEVEL_BLOCK_TOL * eig.max(initial=0.0)):
            modes[o] = kernels.LEVEL_BLOCKS
        elif not np.any(dense - np.diag(diagonal)):
            modes[o] = kernels.USER_DIAGONAL
    return diagonals, modes


def fresh_tally(template: kernels.Tally, count: int,
                counters: dict[str, np.ndarray] | None = None,
                sums: dict[str, np.ndarray] | None = None,
                buffer: dict[str, np.ndarray] | None = None) -> kernels.Tally:
    """A Tally for ``count`` trajectories sharing ``template``'s read-only arrays: the float
    sums are ``sums`` (added to in place) or zeros, the integer counters ``counters`` (likewise)
    or zeros, the output buffer ``buffer`` (at least ``count`` rows; emptied) or a new one."""
    sums = sums or zero_sums(template)
    counters = counters or {name: np.zeros_like(getattr(template, name)) for name in INT_FIELDS}
    if buffer is None:
        buffer = output_buffer(template.buffer.shape[0], count, template.buffer.shape[2])
    else:
        buffer["fill"][:] = 0  # whole rows: a slice would be another array type for Numba
    return template._replace(**sums, **counters, **buffer,
                             **new_records(count, template.heat.shape[1]))


def zero_sums(template: kernels.Tally) -> dict[str, np.ndarray]:
    """Zeroed float sums shaped like ``template``'s."""
    return {name: np.zeros_like(getattr(template, name)) for name in FLOAT_FIELDS}



def _full_size(sums: dict[str, np.ndarray], n_obs: int, d: int, density: str | None) -> dict:
    """Sums with zero-size amplitude-mode arrays (a pure-mode run) replaced by zeros."""
    T = sums["level_counts"].shape[1]
    if sums["pop_sum"].size or not T:
        return sums
    shapes = {"pop_sum": (T, d), "pop_sumsq": (T, d), "obs_sum": (T, n_obs), "obs_sumsq": (T, n_obs),
              "rho_sum": (T, d, d) if density == "full" else (0, 0, 0),
              "rho_sumsq": (T, d, d) if density == "full" else (0, 0, 0),
              "rhodiag_sum": (T, d) if density == "diagonal" else (0, 0),
              "rhodiag_sumsq": (T, d) if density == "diagonal" else (0, 0)}
    dtypes = {"rho_sum": complex, "rho_sumsq": complex}
    return {**sums, **{k: np.zeros(shape, dtype=dtypes.get(k, float)) for k, shape in shapes.items()}}


def finalize(generator: DaviesGenerator, engine: kernels.Engine, sums: dict[str, np.ndarray],
             n: int, observable_names: list[str], observables_eig: np.ndarray,
             density: str | None = None) -> dict[str, np.ndarray]:
    """Means and standard errors from the running sums of ``n`` trajectories.

    Trajectories in the eigenstate of a non-degenerate level were only counted; their
    contributions to every average (and its second moment) are added here.
    """
    g = generator
    sums = _full_size(sums, observables_eig.shape[0], g.dimension, density)
    counts = sums["level_counts"].T.astype(float)                  # (T, L)
    single = np.flatnonzero(g.level_sizes == 1)
    index = g.level_ptr[single]                                      # eigen-index of each
    pure = counts[:, single]                                         # (T, Ls)
    out: dict[str, np.ndarray] = {}
    pop, pop_sq = sums["pop_sum"].copy(), sums["pop_sumsq"].copy()
    pop[:, index] += pure
    pop_sq[:, index] += pure
    out["populations"], out["populations_stderr"] = mean_stderr(pop, pop_sq, n)
    for o, name in enumerate(observable_names):
        diagonal = np.real(observables_eig[o].diagonal()[index])
        total = sums["obs_sum"][:, o] + pure @ diagonal
        total_sq = sums["obs_sumsq"][:, o] + pure @ diagonal**2
        out[f"expect_{name}"], out[f"expect_{name}_stderr"] = mean_stderr(total, total_sq, n)
    vectors = g.eigenvectors[:, index]                               # (d, Ls)
    if sums["rho_sum"].size:
        # Trajectories counted in eigenstate l add |v_l><v_l| (and its squares): one matrix
        # product (T, Ls) x (Ls, d^2) each; np.einsum did it in loops, a quarter of a d = 256
        # full-density run.
        T, d = pure.shape[0], vectors.shape[0]
        outer = (vectors.T[:, :, None] * vectors.conj().T[:, None, :]).reshape(-1, d * d)
        total = sums["rho_sum"] + (pure @ outer).reshape(T, d, d)
        sq_re = sums["rho_sumsq"].real + (pure @ outer.real**2).reshape(T, d, d)
        sq_im = sums["rho_sumsq"].imag + (pure @ outer.imag**2).reshape(T, d, d)
        mean_re, err_re = mean_stderr(total.real, sq_re, n)
        mean_im, err_im = mean_stderr(total.imag, sq_im, n)
        out["rho"], out["rho_stderr"] = _complex(mean_re, mean_im), _complex(err_re, err_im)
    if sums["rhodiag_sum"].size:
        weights = np.abs(vectors) ** 2                               # (d, Ls)
        total = sums["rhodiag_sum"] + pure @ weights.T
        total_sq = sums["rhodiag_sumsq"] + pure @ (weights**2).T
        out["rho_diagonal"], out["rho_diagonal_stderr"] = mean_stderr(total, total_sq, n)
    out.update(transition_arrays(engine, sums["trans_counts"]))
    out["jump_counts"] = jump_counts(engine, sums)
    out["occupation_time"] = sums["occupation_time"]
    return out


def jump_counts(engine: kernels.Engine, sums: dict[str, np.ndarray]) -> np.ndarray:
    """Jumps per channel: those counted per channel (states over several levels) plus those
    counted per transition-table entry (states in one level)."""
    through_table = np.bincount(engine.trans_channel, weights=sums["trans_counts"],
                                minlength=sums["jump_counts"].size)
    return sums["jump_counts"] + np.rint(through_table).astype(np.int64)


def transition_arrays(engine: kernels.Engine, trans_counts: np.ndarray) -> dict[str, np.ndarray]:
    """Sparse level-to-level jump counts ``transition_from -> transition_to`` per bath
    (``transition_bath``): baths at different temperatures are tested separately."""
    levels = engine.level_ptr.size - 1
    source = np.repeat(np.arange(levels), np.diff(engine.trans_ptr))
    taken = trans_counts > 0
    bath = engine.chan_bath[engine.trans_channel[taken]]
    key = (bath * levels + source[taken]) * levels + engine.trans_target[taken]
    keys, inverse = np.unique(key, return_inverse=True)
    count = np.bincount(inverse, weights=trans_counts[taken], minlength=keys.size)
    return {"transition_bath": keys // (levels * levels),
            "transition_from": (keys // levels) % levels,
            "transition_to": keys % levels,
            "transition_count": np.rint(count).astype(np.int64)}


class ChunkRunner:
    """Runs chunks of trajectories and keeps their sums and per-trajectory records.

    Parameters
    ----------
    engine, initial : kernel inputs (see :func:`pack_engine`, :func:`make_initial`)
    template : Tally
        From :func:`new_tally`; its read-only arrays (times, observables, eigenvectors) are shared.
    key : (2,) uint64
        From :func:`seed_key`.
    ntraj : int
        Total number of trajectories (sizes the per-trajectory arrays).
    """

    def __init__(self, engine: kernels.Engine, initial: Initial, template: kernels.Tally,
                 key: np.ndarray, ntraj: int):
        self.engine, self.initial, self.template, self.key = engine, initial, template, key
        self.counters = {name: np.zeros_like(getattr(template, name)) for name in INT_FIELDS}
        self.accumulator = Accumulator()
        self.records = new_records(ntraj, template.heat.shape[1])
        self.buffer: dict[str, np.ndarray] | None = None

    def run(self, first: int, count: int) -> int:
        """Run trajectories ``first .. first+count-1``; returns their number of jumps. With
        amplitude mode possible, in calls of at most :func:`call_rows` trajectories (their
        output buffer stays small)."""
        T, d = self.template.buffer.shape[0], self.template.buffer.shape[2]
        step = max(call_rows(T, d) if T else count, 1)
        if T and self.buffer is None:  # one buffer for every call (its pages stay mapped)
            self.buffer = output_buffer(T, step, d)
        sums = zero_sums(self.template)  # the chunk's sums: every call adds to them
        jumps = 0
        for start in range(first, first + count, step):
            n = min(step, first + count - start)
            tally = fresh_tally(self.template, n, self.counters, sums, self.buffer)
            jumps += run_kernel(self.engine, self.initial, tally, self.key, start, n)
            for name, values in self.records.items():
                values[start:start + n] = getattr(tally, name)
        self.accumulator.add(sums)
        return jumps

    def jump_list(self, trajectories: int) -> dict[str, np.ndarray]:
        """Every jump of trajectories ``0..K-1``, replayed from their own streams
        (:func:`jumps.generators.base.replay_jumps`): trajectory, time, channel, its bath and
        Bohr frequency, source and target levels."""
        def replay(index: int, capacity: int) -> dict[str, np.ndarray]:
            tally = fresh_tally(self.template, 1)._replace(**new_log(capacity))
            run_kernel(self.engine, self.initial, tally, self.key, index, 1)
            return tally._asdict()

        jumps = replay_jumps(replay, trajectories)
        channel = jumps.pop("jump_code")
        return {**jumps, "jump_channel": channel, "jump_bath": self.engine.chan_bath[channel],
                "jump_frequency": self.engine.chan_frequency[channel]}

    def sums(self, transitions: bool = True) -> dict[str, np.ndarray]:
        """The running sums (zeros before the first chunk); ``transitions=False`` (the early
        stop, after every chunk) leaves out the density-matrix sums: (T, d, d) arrays whose
        copy cost more than the chunk at d = 256."""
        skip = () if transitions else DENSITY_FIELDS
        floats = self.accumulator.sums(skip) if self.accumulator.total else {
            name: np.zeros_like(getattr(self.template, name)) for name in FLOAT_FIELDS
            if name not in skip}
        return {**self.counters, **floats}
