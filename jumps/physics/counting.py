"""Full counting statistics of the heat per bath: exact references from the master equation.

Conventions (hbar = k_B = 1; docs/design.md, "Conventions"): a jump ``m -> n`` of bath ``a``
through the Bohr frequency ``w = E_m - E_n`` hands the energy ``w`` to bath ``a`` (``w > 0``
emission, ``w < 0`` absorption, ``w = 0`` pure dephasing), and ``Q_a(t)`` is the sum of ``w``
over the jumps into bath ``a`` up to ``t``. Only jumps with ``w != 0`` are *counted*; dephasing
stays in the generator ``L`` but carries no heat. ``J_a`` holds the jump terms of bath ``a``
with ``w != 0``; tilting bath ``a`` by the counting field ``s`` (inverse energy) multiplies each
entry of ``J_a`` by ``exp(s w)``:

    L_a(s) = L + J_a(s) - J_a(0),     E[exp(s Q_a(t))] = Tr exp(L_a(s) t) p0,

so the scaled cumulant generating function ``theta_a(s) = lim ln E[exp(s Q_a)] / t`` is the
eigenvalue of ``L_a(s)`` with the largest real part, and the cumulants of ``Q_a(t)`` follow
from the derivatives of ``exp(L(s) t) p0`` at ``s = 0`` (:func:`heat_cumulants`).

Two kinds of model (:class:`CountingModel`):

- ``"quantum"``: ``p`` is ``vec(rho)`` in the energy eigenbasis (row-major, ``D = d^2``), ``L``
  the Liouvillian of :func:`jumps.physics.exact.liouvillian`; from a channel generator,
  ``d <= 128`` (:func:`quantum_model`);
- ``"classical"``: ``p`` holds the eigenstate populations (``D = d``), ``L`` the Pauli rate
  matrix; exact for the populations of a non-degenerate spectrum from a diagonal start
  (:func:`classical_model`; a generator's per-bath rates come from its
  :meth:`~jumps.generators.base.Unravelling.counting_model`), up to d = 4096.

Traces: quantum ``Tr rho`` (the diagonal of ``vec(rho)``), classical the sum of ``p``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sl
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import eigs, expm_multiply, spsolve

from ..errors import ConfigError
from ..generators.channels.generator import NULL_TOLERANCE, DaviesGenerator
from .exact import MAX_EXACT_DIMENSION, liouvillian

# Linear algebra on a (sub)matrix is dense up to this size, or when more than DENSE_FILL of it
# is filled (a dense LU of a full 4096 x 4096 rate matrix takes ~1.5 s on one core).
DENSE_LIMIT = 2000
DENSE_FILL = 0.05
# Classical SCGF: all eigenvalues of the dense tilted matrix up to this size, else shift-invert.
CLASSICAL_DENSE_EIGVALS = 256
# States kept in memory at once while propagating (elements; 128 MiB of complex numbers).
MAX_STATE_ELEMENTS = 1 << 23


@dataclass(frozen=True)
class CountingModel:
    """A master equation split by what each jump hands to each bath.

    Attributes
    ----------
    kind : {"quantum", "classical"}
        ``"quantum"``: vectors are ``vec(rho)`` in the energy eigenbasis, row-major
        (``vec(A rho B) = (A kron B^T) vec(rho)``), ``D = d^2``. ``"classical"``: vectors are
        eigenstate populations, ``D = d``.
    dimension : int
        ``d``, the number of eigenstates.
    generator : (D, D) CSR matrix
        The full master-equation generator ``L`` (all jumps, ``w = 0`` included), in the
        model's inverse time unit.
    jumps : tuple of (CSR matrix, ndarray)
        Per bath ``a``: ``(J_a, w_a)``. ``J_a`` (D, D) holds the jump terms of bath ``a`` with
        ``w != 0`` (entries sorted by row then column, no duplicates) and ``w_a`` the Bohr
        frequency (energy handed to the bath) of each stored entry, in the order of
        ``J_a.data``.
    betas : (n_baths,) float
        Inverse temperatures (``inf`` allowed; ``nan`` for a bath that is not thermal).
    """

    kind: str
    dimension: int
    generator: sp.csr_matrix
    jumps: tuple
    betas: np.ndarray

    @property
    def size(self) -> int:
        """``D``, the length of a state vector."""
        return self.generator.shape[0]

    @property
    def n_baths(self) -> int:
        return len(self.jumps)

    @property
    def trace(self) -> np.ndarray:
        """(D,) the trace as a vector: ``Tr p = trace @ p``."""
        if self.kind == "classical":
            return np.ones(self.size)
        out = np.zeros(self.size)
        out[np.arange(self.dimension) * (self.dimension + 1)] = 1.0
        return out

    def weighted(self, bath: int, factor: np.ndarray) -> sp.csr_matrix:
        """``J_a`` with its entries multiplied by ``factor`` (one per entry; a fresh matrix)."""
        J, _ = self.jumps[bath]
        return sp.csr_matrix((J.data * factor, J.indices.copy(), J.indptr.copy()), shape=J.shape)

    def moment(self, bath: int, k: int) -> sp.csr_matrix:
        """``Jk_a``: ``J_a`` with entries times ``w^k`` (``J1_a`` is the heat-current operator)."""
        return self.weighted(bath, self.jumps[bath][1] ** k)

    def tilted(self, bath: int, s: float) -> sp.csr_matrix:
        """``L_a(s) = L + J_a(s) - J_a(0)``: bath ``a`` tilted by the counting field ``s``."""
        return (self.generator + self.weighted(bath, np.expm1(s * self.jumps[bath][1]))).tocsr()

    def total_jumps(self) -> sp.csr_matrix:
        """``J = sum_a J_a``: all counted jumps."""
        zero = sp.csr_matrix(self.generator.shape, dtype=self.generator.dtype)
        return sum((self.weighted(a, 1.0) for a in range(self.n_baths)), zero).tocsr()


# -- building models ---------------------------------------------------------------------------


def quantum_model(generator: DaviesGenerator) -> CountingModel:
    """The counting model of a channel generator (the full Liouvillian, ``D = d^2``).

    Channel ``c = (a, w)`` contributes ``gamma_c A_c kron conj(A_c)`` to ``J_a`` when
    ``w != 0``; every entry carries the channel's frequency (its cluster's midpoint), as the
    trajectories' heat does.

    Parameters
    ----------
    generator : DaviesGenerator
        ``d <= 128``.

    Returns
    -------
    CountingModel
        ``kind = "quantum"``; vectors are ``vec(rho)`` in the eigenbasis.
    """
    g = generator
    d = g.dimension
    if d > MAX_EXACT_DIMENSION:
        raise ConfigError("system", f"the quantum counting model is for d <= "
                                    f"{MAX_EXACT_DIMENSION}, got d = {d}")
    entries = [tuple(np.zeros(0, kind) for kind in (int, int, complex, float, int))]
    for c in np.flatnonzero(g.channel_frequency != 0):
        lo, hi = g.entry_ptr[c], g.entry_ptr[c + 1]
        n, m, v = g.entry_row[lo:hi], g.entry_col[lo:hi], g.entry_value[lo:hi]
        k = v.size**2
        entries.append(((n[:, None] * d + n).ravel(), (m[:, None] * d + m).ravel(),
                        (g.channel_rate[c] * v[:, None] * v.conj()).ravel(),
                        np.full(k, g.channel_frequency[c]), np.full(k, g.channel_bath[c])))
    rows, cols, values, w, bath = (np.concatenate(part) for part in zip(*entries, strict=True))
    jumps = tuple(_jump_matrix(rows[bath == a], cols[bath == a], values[bath == a], w[bath == a],
                               d * d) for a in range(len(g.baths)))
    return CountingModel("quantum", d, liouvillian(g), jumps, betas_of(g.baths))


def classical_model(energies: np.ndarray, rates: list, betas: np.ndarray) -> CountingModel:
    """The counting model of a classical rate equation between eigenstates.

    Parameters
    ----------
    energies : (d,) float
        Eigenvalues ``E_n`` (energy unit).
    rates : list of (d, d) sparse or dense matrices
        One per bath: ``rates[a][n, m] = R_a(m -> n)`` (inverse time unit), the rate of the
        jump ``m -> n`` through bath ``a``, which hands ``E_m - E_n`` to it. Diagonal entries
        (dephasing) cancel from the rate equation and are not counted.
    betas : (n_baths,) float
        Inverse temperatures (``inf`` allowed, ``nan`` for a non-thermal bath).

    Returns
    -------
    CountingModel
        ``kind = "classical"``; ``L = sum_a R_a - diag(column sums)``.
    """
    energies = np.asarray(energies, dtype=float)
    d = energies.size
    total = sp.csr_matrix((d, d))
    jumps = []
    for R in rates:
        R = sp.csr_matrix(R, dtype=float, copy=True)
        R.sum_duplicates()  # canonical: its entries come sorted by (row, column)
        if R.shape != (d, d):
            raise ValueError(f"rate matrix of shape {R.shape}, expected {(d, d)}")
        total = total + R
        coo = R.tocoo()
        w = energies[coo.col] - energies[coo.row]
        keep = (w != 0) & (coo.data != 0)
        jumps.append(_jump_matrix(coo.row[keep], coo.col[keep], coo.data[keep], w[keep], d))
    L = (total - sp.diags(np.asarray(total.sum(axis=0)).ravel())).tocsr()
    L.eliminate_zeros()
    return CountingModel("classical", d, L, tuple(jumps), np.asarray(betas, dtype=float))


def betas_of(baths) -> np.ndarray:
    """Inverse temperatures of ``baths`` (nan for a bath given by its rates)."""
    return np.array([b.beta if b.is_thermal else np.nan for b in baths], dtype=float)


def _jump_matrix(rows, cols, values, w, size) -> tuple[sp.csr_matrix, np.ndarray]:
    """``(J, w)``: CSR sorted by (row, column), duplicates (equal ``w`` only) summed."""
    rows = np.asarray(rows, dtype=np.int64)
    keys = rows * size + np.asarray(cols, dtype=np.int64)
    values = np.asarray(values)
    w = np.asarray(w, dtype=float)
    if np.any(np.diff(keys) <= 0):  # not already sorted and unique (a CSR's entries are)
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        if unique.size < keys.size and np.any(w != w[first][inverse]):
            raise ValueError("one matrix element of a bath's jumps carries two Bohr frequencies")
        data = np.bincount(inverse, values.real, unique.size)
        if np.iscomplexobj(values):
            data = data + 1j * np.bincount(inverse, values.imag, unique.size)
        keys, values, w, rows = unique, data, w[first], unique // size
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=size))])
    J = sp.csr_matrix((values.astype(np.result_type(values, float)),
                       (keys % size).astype(np.int32), indptr), shape=(size, size))
    return J, w


# -- time evolution ----------------------------------------------------------------------------


def populations(model: CountingModel, p0: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The solution ``exp(L t) p0`` of the master equation on a time grid.

    Parameters
    ----------
    model : CountingModel
    p0 : (D,) array, or (d, d) for a quantum model
        Classical: populations; quantum: ``rho0`` in the eigenbasis (or its row-major vec).
    times : (T,) float
        Increasing, from ``t >= 0`` (the model's time unit).

    Returns
    -------
    (T, D) array
        Classical: eigenstate populations; quantum: ``vec(rho(t))`` in the eigenbasis.
    """
    return _evolve(model.generator, _state(model, p0), times, lambda states: states)


def heat_cumulants(model: CountingModel, p0: np.ndarray,
                   times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first three cumulants of the heat ``Q_a(t)`` handed to each bath from ``p0``.

    With ``rho(s) = exp(L(s) t) p0`` (``s`` a vector over baths), ``Tr rho(s)`` is the moment
    generating function ``E[exp(s . Q)]``. Its derivatives at ``s = 0`` solve one augmented
    linear ODE (``Jk_a`` = ``J_a`` with entries times ``w^k``)::

        d rho_a/dt   = L rho_a   + J1_a rho
        d rho_ab/dt  = L rho_ab  + J1_a rho_b + J1_b rho_a + delta_ab J2_a rho
        d rho_aaa/dt = L rho_aaa + 3 J1_a rho_aa + 3 J2_a rho_a + J3_a rho

    propagated by ``expm_multiply``; their traces are the raw moments.

    Parameters
    ----------
    model : CountingModel
    p0 : (D,) array, or (d, d) for a quantum model
        Initial state (normalised here by its trace).
    times : (T,) float
        Increasing, from ``t >= 0``.

    Returns
    -------
    mean : (T, n_baths) float
        ``<Q_a(t)>`` (energy unit).
    covariance : (T, n_baths, n_baths) float
        ``<Q_a Q_b> - <Q_a><Q_b>``.
    third : (T, n_baths) float
        Third cumulant ``<(Q_a - <Q_a>)^3>``.
    """
    state = _state(model, p0)
    state = state / (model.trace @ state)
    n = model.n_baths
    pairs = [(a, b) for a in range(n) for b in range(a, n)]
    matrix = _cumulant_generator(model, pairs)
    x0 = np.zeros(matrix.shape[0], dtype=state.dtype)
    x0[:state.size] = state
    moments = _evolve(matrix, x0, times, lambda states: np.real(
        states.reshape(states.shape[0], -1, model.size) @ model.trace))
    mean = moments[:, 1:1 + n]
    second = np.zeros((moments.shape[0], n, n))
    for k, (a, b) in enumerate(pairs):
        second[:, a, b] = second[:, b, a] = moments[:, 1 + n + k]
    covariance = second - mean[:, :, None] * mean[:, None, :]
    raw3 = moments[:, 1 + n + len(pairs):]
    diagonal = second[:, np.arange(n), np.arange(n)]
    third = raw3 - 3 * diagonal * mean + 2 * mean**3
    return mean, covariance, third


def _cumulant_generator(model: CountingModel, pairs: list) -> sp.csr_matrix:
    """The block matrix of the augmented ODE of :func:`heat_cumulants`.

    Block order: ``rho``, ``rho_a`` (a = 0..n-1), ``rho_ab`` (``pairs``), ``rho_aaa``."""
    n = model.n_baths
    first = 1
    second = {pair: 1 + n + k for k, pair in enumerate(pairs)}
    third = 1 + n + len(pairs)
    blocks: list[list] = [[None] * (third + n) for _ in range(third + n)]
    for i in range(third + n):
        blocks[i][i] = model.generator
    J = [[None] + [model.moment(a, k) for k in (1, 2, 3)] for a in range(n)]
    for a in range(n):
        blocks[first + a][0] = J[a][1]
    for (a, b), row in second.items():
        blocks[row][first + b] = J[a][1]
        blocks[row][first + a] = J[b][1] if a != b else 2 * J[a][1]
        if a == b:
            blocks[row][0] = J[a][2]
    for a in range(n):
        row = third + a
        blocks[row][second[(a, a)]] = 3 * J[a][1]
        blocks[row][first + a] = 3 * J[a][2]
        blocks[row][0] = J[a][3]
    return sp.bmat(blocks, format="csr", dtype=model.generator.dtype)


def _state(model: CountingModel, p0) -> np.ndarray:
    """A state as a (D,) vector (a quantum (d, d) matrix is vectorised row-major)."""
    p = np.asarray(p0)
    p = p.ravel() if p.ndim == 2 else p
    if p.shape != (model.size,):
        raise ValueError(f"initial state of shape {np.shape(p0)}, expected ({model.size},)")
    return p.astype(np.result_type(p, model.generator.dtype, float))


def _evolve(matrix, x0: np.ndarray, times, observe) -> np.ndarray:
    """``observe(exp(matrix t) x0)`` at every time, in chunks of states that fit in memory.

    ``observe`` maps (k, D) states to (k, ...) results. A uniform chunk is one
    ``expm_multiply`` call with ``start``/``stop``; otherwise one call per interval."""
    times = np.atleast_1d(np.asarray(times, dtype=float))
    if times.ndim != 1 or times[0] < 0 or np.any(np.diff(times) <= 0):
        raise ValueError("times must be an increasing 1-d grid from t >= 0")
    chunk = max(2, MAX_STATE_ELEMENTS // x0.size)
    out, x, now = [], x0, 0.0
    for lo in range(0, times.size, chunk):
        offsets = times[lo:lo + chunk] - now
        steps = np.diff(offsets)
        if steps.size > 1 and np.allclose(steps, steps[0], rtol=1e-9, atol=0):
            states = expm_multiply(matrix, x, start=offsets[0], stop=offsets[-1],
                                   num=offsets.size, endpoint=True)
        else:
            states = np.empty((offsets.size, x.size), dtype=np.result_type(x, matrix.dtype))
            previous = 0.0
            for k, t in enumerate(offsets):
                x = expm_multiply(matrix * (t - previous), x) if t > previous else x
                states[k], previous = x, t
        out.append(observe(states))
        x, now = states[-1], times[min(lo + chunk, times.size) - 1]
    return np.concatenate(out)


# -- the steady state --------------------------------------------------------------------------


def steady_state(model: CountingModel) -> np.ndarray:
    """The unique steady state ``L p = 0``, ``Tr p = 1``.

    Classical: the number of steady states is the number of closed classes of the jump graph
    (exact, structural); the null vector comes from one linear solve with one equation replaced
    by the normalisation (dense LU when the rate matrix is dense: seconds at d = 4096).
    Quantum: ``L`` splits into sectors (weakly connected components of its pattern); the null
    space of each is counted (singular values below ``NULL_TOLERANCE * max|L|``, dense up to
    ``DENSE_LIMIT``, shift-invert Arnoldi beyond) and the state solved in the sector of the
    populations.

    Returns
    -------
    (D,) array
        Classical: real populations summing to 1. Quantum: ``vec(rho)`` of a Hermitian
        unit-trace ``rho`` in the eigenbasis.

    Raises
    ------
    ConfigError
        ``("initial_state.kind", "not unique: K steady states")`` when ``K != 1``.
    """
    if model.kind == "classical":
        _require_unique(_closed_classes(model.generator))
        p = np.real(_normalised_null_vector(model.generator, model.trace, 0))
        return p / p.sum()
    labels, sector = _sectors(model)
    scale = float(np.max(np.abs(model.generator.data), initial=0.0))
    _require_unique(_quantum_null_dimension(model.generator, labels, NULL_TOLERANCE * scale))
    L = model.generator[sector][:, sector]
    trace = model.trace[sector]
    x = np.zeros(model.size, dtype=complex)
    x[sector] = _normalised_null_vector(L, trace, int(np.flatnonzero(trace)[0]))
    d = model.dimension
    rho = x.reshape(d, d)
    rho = (rho + rho.conj().T) / 2
    return (rho / np.trace(rho).real).ravel()


def _require_unique(count: int) -> None:
    if count != 1:
        raise ConfigError("initial_state.kind", f"not unique: {count} steady states")


def _closed_classes(L: sp.csr_matrix) -> int:
    """Number of closed communicating classes of a rate matrix (edge ``m -> n`` where
    ``L[n, m] != 0``, ``n != m``): each holds exactly one steady state."""
    coo = L.tocoo()
    edge = (coo.row != coo.col) & (coo.data != 0)
    source, target = coo.col[edge], coo.row[edge]
    graph = sp.csr_matrix((np.ones(source.size), (source, target)), shape=L.shape)
    count, label = connected_components(graph, directed=True, connection="strong")
    leaving = label[source] != label[target]
    return count - np.unique(label[source[leaving]]).size


def _sectors(model: CountingModel) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the weakly connected components of ``L`` and every ``J_a`` (the sectors
    that ``L_a(s)`` leaves invariant for every ``s``), and the indices of the sectors that
    hold a diagonal element (the block-diagonal operators, sorted)."""
    pattern = abs(model.generator)
    for J, _ in model.jumps:
        pattern = pattern + abs(J)
    _, labels = connected_components(pattern, directed=True, connection="weak")
    diagonal = np.unique(labels[np.flatnonzero(model.trace)])
    return labels, np.flatnonzero(np.isin(labels, diagonal))


def _quantum_null_dimension(L: sp.csr_matrix, labels: np.ndarray, tol: float) -> int:
    """The dimension of the null space of ``L``, summed over its sectors: singular values below
    ``tol`` (dense, up to ``DENSE_LIMIT``), else eigenvalues within ``tol`` of 0 among the 8
    nearest (shift-invert Arnoldi)."""
    sizes = np.bincount(labels)
    single = np.flatnonzero(sizes[labels] == 1)
    count = int(np.sum(np.abs(L.diagonal()[single]) < tol))
    order = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    for label in np.flatnonzero(sizes > 1):
        index = order[bounds[label]:bounds[label + 1]]
        A = L[index][:, index]
        values = (np.linalg.svd(A.toarray(), compute_uv=False) if index.size <= DENSE_LIMIT
                  else eigs(A.tocsc(), k=8, sigma=-tol, which="LM", return_eigenvectors=False))
        count += int(np.sum(np.abs(values) < tol))
    return count


def _normalised_null_vector(A, trace: np.ndarray, row: int) -> np.ndarray:
    """Solve ``A x = 0``, ``trace @ x = 1`` by replacing equation ``row`` of ``A x = 0`` with
    the normalisation (non-singular when the null space is one-dimensional and ``trace`` is a
    left null vector with ``trace[row] != 0``)."""
    rhs = np.eye(1, A.shape[0], row).ravel()
    if _dense(A):
        M = A.toarray()
        M[row] = trace
        return sl.solve(M, rhs, check_finite=False)
    coo = A.tocoo()
    keep = coo.row != row
    nonzero = np.flatnonzero(trace)
    M = sp.csc_matrix((np.concatenate([coo.data[keep], trace[nonzero]]),
                       (np.concatenate([coo.row[keep], np.full(nonzero.size, row)]),
                        np.concatenate([coo.col[keep], nonzero]))), shape=A.shape)
    return spsolve(M, rhs)


def _dense(A) -> bool:
    return A.shape[0] <= DENSE_LIMIT or A.nnz > DENSE_FILL * A.shape[0] ** 2


# -- currents and large deviations -------------------------------------------------------------


def heat_currents(model: CountingModel) -> np.ndarray:
    """Steady-state heat current into each bath, ``J_a = Tr(J1_a rho_ss)``.

    Returns
    -------
    (n_baths,) float
        Energy per unit time handed to each bath (positive: the bath is heated).
    """
    rho = steady_state(model)
    return np.array([np.real(model.trace @ (model.moment(a, 1) @ rho))
                     for a in range(model.n_baths)])


def entropy_production_rate(model: CountingModel) -> float:
    """Steady-state entropy production rate ``sum_a beta_a J_a`` (per unit time, k_B = 1).

    ``nan`` when a bath is not thermal (``beta = nan``) or is at zero temperature
    (``beta = inf``) with a non-zero current; a bath with no current contributes 0.
    """
    currents = heat_currents(model)
    flowing = currents != 0
    if np.any(np.isnan(model.betas) | (np.isinf(model.betas) & flowing)):
        return float("nan")
    return float(np.sum(model.betas[flowing] * currents[flowing]))


def scgf(model: CountingModel, s_values, baths=None) -> np.ndarray:
    """Scaled cumulant generating function of each bath's heat.

    ``theta_a(s) = lim_t ln E[exp(s Q_a(t))] / t``: the eigenvalue of ``L_a(s)`` (bath ``a``
    tilted alone) with the largest real part, taken afresh for every ``s``. Quantum: it lies
    in the sector of the block-diagonal operators (the Perron eigenvector of the completely
    positive ``exp(L_a(s) t)`` is a positive matrix): dense up to ``DENSE_LIMIT``, else
    Arnoldi (``which="LR"``) on the balanced sector. Classical: dense up to
    ``CLASSICAL_DENSE_EIGVALS`` states; beyond, the Perron root of ``L_a(s)`` (non-negative
    off-diagonal entries) is the eigenvalue nearest to any real shift above its largest column
    sum. As ``w = E_m - E_n``, ``L_a(s)`` is similar (through ``diag(exp(-alpha E))``) to ``L``
    with every bath tilted by ``-alpha`` more; ``alpha`` minimises that bound (and the bad
    conditioning of a strongly tilted matrix) and shift-invert Arnoldi just above it follows.

    Parameters
    ----------
    model : CountingModel
    s_values : (S,) float
        Counting fields (inverse energy unit).
    baths : sequence of int, optional
        The baths to tilt (default all).

    Returns
    -------
    (n_baths, S) float
        ``theta_a(s)`` (inverse time unit); ``theta_a(0) = 0``.
    """
    s_values = np.atleast_1d(np.asarray(s_values, dtype=float))
    baths = range(model.n_baths) if baths is None else list(baths)
    sector = _sectors(model)[1] if model.kind == "quantum" else slice(None)
    large = model.kind == "classical" and model.size > CLASSICAL_DENSE_EIGVALS
    sample = _column_sample(model) if large else None
    out = np.empty((len(baths), s_values.size))
    for i, a in enumerate(baths):
        for k, s in enumerate(s_values):
            out[i, k] = (_perron_root(model, sample, a, s) if large
                         else _leading_eigenvalue(model.tilted(a, s)[sector][:, sector]))
    return out


def _leading_eigenvalue(M: sp.csr_matrix) -> float:
    """Largest real part of the spectrum: dense (LAPACK balances the matrix), or Arnoldi on
    the matrix balanced by :func:`_balanced` (a strongly tilted matrix is far from normal)."""
    if M.shape[0] <= DENSE_LIMIT:
        return float(np.max(sl.eigvals(M.toarray(), check_finite=False).real))
    values = eigs(_balanced(M), k=min(6, M.shape[0] - 2), which="LR", tol=1e-14,
                  return_eigenvectors=False)
    return float(np.max(values.real))


def _balanced(M: sp.csr_matrix, sweeps: int = 40) -> sp.csr_matrix:
    """``D M D^-1`` with ``D`` diagonal equalising each row's and column's off-diagonal
    1-norms (Osborne's balancing, all indices at once): the same eigenvalues."""
    coo = M.tocoo()
    off = coo.row != coo.col
    row, col, size = coo.row[off], coo.col[off], np.abs(coo.data[off])
    scale = np.ones(M.shape[0])
    for _ in range(sweeps):
        value = size * scale[row] / scale[col]
        out, into = np.bincount(row, value, scale.size), np.bincount(col, value, scale.size)
        scale *= np.sqrt(np.where((out > 0) & (into > 0), into / np.maximum(out, 1e-300), 1.0))
    return (sp.diags(scale) @ M @ sp.diags(1 / scale)).tocsr()


def _perron_root(model: CountingModel, sample: tuple, bath: int, s: float) -> float:
    """The Perron root of the classical ``L_a(s)``, by shift-invert on a similar matrix."""
    def tilts(alpha):
        out = np.full(model.n_baths, -alpha)
        out[bath] += s
        return out
    alpha = minimize_scalar(lambda x: _column_bound(sample, tilts(x)),
                            bracket=(s / 2, s / 2 + 0.1), options={"xtol": 1e-3}).x
    M = _tilted_all(model, tilts(alpha))
    bound = float(np.max(M.sum(axis=0)))
    shift = bound + 1e-3 * max(float(np.max(np.abs(M.diagonal()))), 1e-300)
    value = eigs(M, k=1, sigma=shift, which="LM", tol=1e-14, return_eigenvectors=False)
    return float(value[0].real)


def _tilted_all(model: CountingModel, tilts: np.ndarray):
    """``L`` with bath ``b`` tilted by ``tilts[b]``: an ndarray when ``L`` is dense-ish, else
    CSC."""
    dense = _dense(model.generator)
    out = model.generator.toarray() if dense else model.generator
    for b, t in enumerate(tilts):
        change = model.weighted(b, np.expm1(t * model.jumps[b][1]))
        out = out + (change.toarray() if dense else change)
    return out if dense else out.tocsc()


def _column_sample(model: CountingModel, columns: int = 128) -> tuple:
    """Every k-th column of the classical generator, split as ``L0`` column sums plus each
    bath's entries ``(position, value, w)``: the column-sum bound for cheap minimisation."""
    size = model.size
    picked = np.arange(0, size, max(1, size // columns))
    position = np.full(size, -1)
    position[picked] = np.arange(picked.size)
    base = np.asarray(model.generator.sum(axis=0)).ravel()
    entries = []
    for J, w in model.jumps:
        base = base - np.bincount(J.indices, J.data, size)
        keep = position[J.indices] >= 0
        entries.append((position[J.indices[keep]], J.data[keep], w[keep]))
    return base[picked], entries


def _column_bound(sample: tuple, tilts: np.ndarray) -> float:
    """Largest sampled column sum of ``L`` with bath ``b`` tilted by ``tilts[b]``."""
    base, entries = sample
    total = base.copy()
    for (position, value, w), t in zip(entries, tilts, strict=True):
        with np.errstate(over="ignore"):
            total += np.bincount(position, value * np.exp(t * w), base.size)
    return float(np.max(total))


# -- waiting times -----------------------------------------------------------------------------


def first_jump(model: CountingModel, p0: np.ndarray,
               times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distribution of the time of the first counted jump (``w != 0``) from ``p0``.

    Parameters
    ----------
    model : CountingModel
    p0 : (D,) array, or (d, d) for a quantum model
        Initial state (normalised here).
    times : (T,) float
        Increasing, from ``t >= 0``.

    Returns
    -------
    survival : (T,) float
        ``S(t) = Tr exp(L0 t) p0`` (``L0 = L - J``): no counted jump up to ``t``.
    density : (T,) float
        ``f(t) = Tr J exp(L0 t) p0 = -dS/dt`` (inverse time unit).
    """
    state = _state(model, p0)
    return _no_jump_statistics(model, state / (model.trace @ state), times)


def waiting_time(model: CountingModel, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distribution of the time between consecutive counted jumps in the steady state.

    The state just after a jump, averaged over the steady-state jumps (the Palm distribution),
    is ``J rho_ss / Tr J rho_ss``; then ``w(tau) = Tr J exp(L0 tau) J rho_ss / Tr J rho_ss``.

    Returns
    -------
    survival : (T,) float
        Probability that the next counted jump comes after ``tau``.
    density : (T,) float
        ``w(tau)``, normalised to 1 over ``tau >= 0`` (inverse time unit).
    """
    after = model.total_jumps() @ steady_state(model)
    flux = np.real(model.trace @ after)
    if not flux > 0:
        raise ConfigError("baths", "no counted jumps in the steady state")
    return _no_jump_statistics(model, after / flux, times)


def _no_jump_statistics(model: CountingModel, state: np.ndarray,
                        times) -> tuple[np.ndarray, np.ndarray]:
    """``Tr exp(L0 t) state`` and ``Tr J exp(L0 t) state`` on the grid."""
    J = model.total_jumps()
    weights = np.stack([model.trace, J.T @ model.trace], axis=1)
    state = state.astype(np.result_type(state, J.dtype))
    out = _evolve((model.generator - J).tocsr(), state, times,
                  lambda states: np.real(states @ weights))
    return out[:, 0], out[:, 1]
