"""Full counting statistics of the heat per bath (jumps.physics.counting).

Sign convention, checked throughout: a jump through ``w = E_m - E_n > 0`` hands ``w`` to its
bath, and tilting bath ``a`` by ``s`` weighs it by ``exp(s w)``, so ``theta_a'(0)`` is the heat
current *into* bath ``a`` and the hot bath's is negative.

Oracles: the two-state Markov chain in closed form (SCGF, currents, first-jump and waiting-time
laws); the moment generating function ``ln Tr expm(L(z) t) p0`` (dense ``scipy.linalg.expm``)
differentiated by Cauchy's integral formula (trapezoid rule on a circle of radius ``r = 0.4``
with 64 nodes: aliasing ``~(r/R)^64`` with ``R >~ 2`` the distance to the nearest zero of the
MGF, rounding ``~eps k! / r^k``, both far below the tolerances); the exchange fluctuation
symmetry; the Gibbs state; the classical (Pauli) model against the quantum one; the channel
generator against the rates generator.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.linalg as sl
import scipy.sparse as sp

import jumps
from jumps import generators
from jumps.errors import ConfigError
from jumps.generators.rates.generator import per_bath_rates
from jumps.physics import counting, models

SX = np.array([[0.0, 1.0], [1.0, 0.0]])
SZ = np.diag([1.0, -1.0])
W0 = 1.0
BETA_HOT, BETA_COLD = 0.5, 2.0
ETA, CUTOFF = 0.05, 5.0


def classical(generator) -> counting.CountingModel:
    """The classical counting model of a generator, through its unravelling."""
    return generators.of(generator).counting_model(generator, coherent=False)


def bath(beta: float):
    return jumps.ohmic(ETA, CUTOFF, beta)


@pytest.fixture(scope="module")
def qubit():
    """Qubit ``H = (w0/2) sz`` coupled through ``sx`` to a hot and a cold Ohmic bath."""
    g = jumps.davies_generator(W0 / 2 * SZ, [SX, SX], [bath(BETA_HOT), bath(BETA_COLD)])
    return g, counting.quantum_model(g), classical(g)


def qubit_rates():
    """(down, up): per bath the emission ``gamma_a(w0)`` and absorption ``gamma_a(-w0)``
    rates (``|<g|sx|e>| = 1``)."""
    baths = (bath(BETA_HOT), bath(BETA_COLD))
    down = np.array([float(b.rates(np.array(W0))) for b in baths])
    up = np.array([float(b.rates(np.array(-W0))) for b in baths])
    return down, up


def two_state_scgf(s: np.ndarray, bath_index: int) -> np.ndarray:
    """Closed form: the largest eigenvalue of ``[[-K_up, k_down(s)], [k_up(s), -K_down]]``."""
    down, up = qubit_rates()
    tilt = np.zeros(2, dtype=complex)
    s = np.asarray(s, dtype=complex)[..., None]
    tilt = np.where(np.arange(2) == bath_index, s, 0)
    k_down = np.sum(down * np.exp(tilt * W0), axis=-1)
    k_up = np.sum(up * np.exp(-tilt * W0), axis=-1)
    K_down, K_up = down.sum(), up.sum()
    return (-(K_down + K_up) + np.sqrt((K_down - K_up) ** 2 + 4 * k_down * k_up)) / 2


def cauchy_derivatives(f, orders=(1, 2, 3), radius=0.4, nodes=64) -> np.ndarray:
    """``f^(k)(0)`` of a function analytic on the disc ``|z| <= radius``: Cauchy's integral
    formula by the trapezoid rule (spectrally accurate)."""
    phi = 2 * np.pi * np.arange(nodes) / nodes
    values = np.array([f(radius * np.exp(1j * p)) for p in phi])
    out = []
    for k in orders:
        coefficient = np.mean(values * np.exp(-1j * k * phi)) / radius**k
        out.append(np.real(coefficient) * float(np.prod(np.arange(1, k + 1))))
    return np.array(out)


def log_mgf(model, p0, t, direction):
    """``z -> ln Tr expm(L(z u) t) p0`` with dense ``expm`` (``u`` = direction over baths),
    the log continued along the Cauchy circle (unwrapped phase is not needed: the argument
    of the MGF stays far below pi on the circles used)."""
    L = model.generator.toarray()
    trace = model.trace

    def f(z):
        M = L.astype(complex)
        for a, (J, w) in enumerate(model.jumps):
            if direction[a]:
                tilt = sp.csr_matrix((J.data * np.expm1(z * direction[a] * w), J.indices,
                                      J.indptr), shape=J.shape)
                M = M + tilt.toarray()
        return np.log(trace @ (sl.expm(M * t) @ p0))
    return f


def mgf_cumulants(model, p0, t):
    """(mean, covariance, third) of the heat at one time from the MGF by Cauchy's formula;
    the cross covariance from the direction ``e_a + e_b``."""
    n = model.n_baths
    single = [cauchy_derivatives(log_mgf(model, p0, t, np.eye(n)[a])) for a in range(n)]
    mean = np.array([d[0] for d in single])
    third = np.array([d[2] for d in single])
    covariance = np.diag([d[1] for d in single])
    for a in range(n):
        for b in range(a + 1, n):
            both = cauchy_derivatives(log_mgf(model, p0, t, np.eye(n)[a] + np.eye(n)[b]),
                                      orders=(2,))[0]
            covariance[a, b] = covariance[b, a] = (both - covariance[a, a]
                                                   - covariance[b, b]) / 2
    return mean, covariance, third


def diagonal_state(model, populations):
    """A diagonal start as the model's vector (quantum: vec of diag(populations))."""
    p = np.asarray(populations, dtype=float)
    return p if model.kind == "classical" else np.diag(p).ravel()


# -- the qubit: closed forms ---------------------------------------------------------------------


def test_qubit_scgf_matches_the_two_state_closed_form(qubit):
    """Oracle: the closed-form largest eigenvalue of the tilted 2x2 rate matrix, tilting one
    bath at a time, for both models; 1e-10 (eigenvalues of 2x2 or 4x4 matrices: rounding)."""
    _, quantum, classical = qubit
    s = np.linspace(-2.0, 3.5, 12)
    expected = np.real(np.array([two_state_scgf(s, a) for a in range(2)]))
    for model in (quantum, classical):
        np.testing.assert_allclose(counting.scgf(model, s), expected, rtol=1e-10, atol=1e-12)


def test_exchange_fluctuation_symmetry(qubit):
    """Oracle: the exchange fluctuation theorem. The heat handed to the hot bath ``Q_h`` (and
    ``Q_c ~ -Q_h`` up to the bounded system energy) has entropy production
    ``sigma = beta_h Q_h + beta_c Q_c = -(beta_c - beta_h) Q_h``; ``P(sigma)/P(-sigma) =
    exp(sigma)`` gives ``theta_h(s) = theta_h(beta_c - beta_h - s)`` and
    ``theta_c(s) = theta_c(beta_h - beta_c - s)``. Exact for any two-bath system whose baths
    obey KMS; 1e-10 (eigenvalue rounding)."""
    _, quantum, classical = qubit
    s = np.linspace(-1.0, 2.5, 8)
    for model in (quantum, classical):
        hot = counting.scgf(model, s)[0]
        mirrored = counting.scgf(model, BETA_COLD - BETA_HOT - s)[0]
        np.testing.assert_allclose(hot, mirrored, rtol=1e-10, atol=1e-12)
        cold = counting.scgf(model, s)[1]
        mirrored = counting.scgf(model, BETA_HOT - BETA_COLD - s)[1]
        np.testing.assert_allclose(cold, mirrored, rtol=1e-10, atol=1e-12)
        assert counting.scgf(model, [0.3])[0, 0] < 0 < counting.scgf(model, [-0.3])[0, 0]


def test_qubit_heat_currents_and_entropy_production(qubit):
    """Oracle: the two-state chain, ``p_e = K_up / (K_up + K_down)``,
    ``J_a = w0 (G_down_a p_e - G_up_a p_g)``; heat flows from hot to cold
    (``J_h < 0 < J_c``, ``J_h + J_c = 0``) and ``sigma = sum beta_a J_a > 0``. 1e-12
    relative (a 2x2 or 4x4 linear solve)."""
    _, quantum, classical = qubit
    down, up = qubit_rates()
    p_e = up.sum() / (up.sum() + down.sum())
    expected = W0 * (down * p_e - up * (1 - p_e))
    for model in (quantum, classical):
        currents = counting.heat_currents(model)
        np.testing.assert_allclose(currents, expected, rtol=1e-12)
        assert currents[0] < 0 < currents[1]
        sigma = counting.entropy_production_rate(model)
        np.testing.assert_allclose(sigma, BETA_HOT * expected[0] + BETA_COLD * expected[1],
                                   rtol=1e-12)
        assert sigma > 0


def test_entropy_production_is_undefined_without_a_finite_temperature():
    """Oracle: the definition. A zero-temperature bath (beta = inf) that receives heat, or a
    non-thermal bath (beta = nan), makes ``sum_a beta_a J_a`` undefined: nan; the currents
    themselves stay finite and conserve energy (1e-12 of |J|)."""
    noise = jumps.from_rates(np.array([[-2.0, 0.1], [2.0, 0.3]]), lamb_shift=False)
    for other in (bath(np.inf), noise):
        g = jumps.davies_generator(W0 / 2 * SZ, [SX, SX], [bath(BETA_HOT), other])
        model = classical(g)
        currents = counting.heat_currents(model)
        assert np.all(np.isfinite(currents)) and currents[1] != 0
        assert abs(currents.sum()) < 1e-12 * np.abs(currents).max()
        assert np.isnan(counting.entropy_production_rate(model))


def test_steady_state_is_gibbs_at_one_temperature():
    """Oracle: the Gibbs state ``exp(-beta E)/Z`` when both baths share beta = 0.8 (qubit) and
    for the 4-level chain with one bath; quantum coherences exactly zero. 1e-12 (linear
    solve)."""
    g = jumps.davies_generator(W0 / 2 * SZ, [SX, SX], [bath(0.8), bath(0.8)])
    chain = models.tfim_chain({"n": 2, "h": 1.05, "hz": 0.5})
    g4 = jumps.davies_generator(chain.hamiltonian, [chain.operator("sx:0")], [bath(0.8)])
    for generator in (g, g4):
        gibbs = generator.gibbs_populations(0.8)
        for model in (counting.quantum_model(generator), classical(generator)):
            np.testing.assert_allclose(counting.steady_state(model),
                                       diagonal_state(model, gibbs), rtol=1e-12, atol=1e-14)


def test_first_jump_from_an_eigenstate(qubit):
    """Oracle: from an eigenstate the first jump comes at the escape rate, ``S(t) =
    exp(-K t)`` and ``f(t) = K exp(-K t)`` (``K_up`` from the ground state, ``K_down`` from the
    excited one); non-uniform grid (the interval-by-interval path). 1e-12 (expm_multiply)."""
    _, quantum, classical = qubit
    down, up = qubit_rates()
    times = np.array([0.0, 0.1, 0.7, 2.0, 2.5, 9.0])
    for model in (quantum, classical):
        for populations, K in (([1.0, 0.0], up.sum()), ([0.0, 1.0], down.sum())):
            survival, density = counting.first_jump(model, diagonal_state(model, populations),
                                                    times)
            np.testing.assert_allclose(survival, np.exp(-K * times), rtol=1e-12)
            np.testing.assert_allclose(density, K * np.exp(-K * times), rtol=1e-12)


def test_qubit_waiting_time_closed_form(qubit):
    """Oracle: in the steady state the jump fluxes into ``e`` and ``g`` are equal
    (``K_up p_g = K_down p_e``), so the time between jumps is the equal mixture
    ``(K_down e^{-K_down t} + K_up e^{-K_up t}) / 2``; 1e-12 (expm_multiply). Also the
    density integrates to 1: trapezoid on [0, 40] plus the survival at 40, within the
    leading Euler-Maclaurin error ``h^2/12 |f'(0) - f'(40)|`` (f' from the closed form)."""
    _, quantum, classical = qubit
    down, up = qubit_rates()
    K_d, K_u = down.sum(), up.sum()
    times = np.linspace(0.0, 40.0, 1001)
    expected = (K_d * np.exp(-K_d * times) + K_u * np.exp(-K_u * times)) / 2
    for model in (quantum, classical):
        survival, density = counting.waiting_time(model, times)
        np.testing.assert_allclose(density, expected, rtol=1e-12)
        np.testing.assert_allclose(survival, (np.exp(-K_d * times) + np.exp(-K_u * times)) / 2,
                                   rtol=1e-12)
        h = times[1] - times[0]
        slope = lambda t: -(K_d**2 * np.exp(-K_d * t) + K_u**2 * np.exp(-K_u * t)) / 2
        bound = h**2 / 12 * abs(slope(0.0) - slope(times[-1]))
        assert abs(np.trapezoid(density, times) + survival[-1] - 1) < 1.01 * bound


# -- cumulants ------------------------------------------------------------------------------------


def test_cumulants_match_the_moment_generating_function(qubit):
    """Oracle: the derivatives at ``s = 0`` of ``ln Tr expm(L(s) t) p0`` (dense expm, Cauchy's
    formula), both baths and their covariance, from the excited state (both models) and from
    a coherent superposition (quantum); 1e-10 relative to each cumulant's size (expm and
    expm_multiply rounding, ~1e-13)."""
    _, quantum, classical = qubit
    times = np.array([0.5, 2.0, 5.0])
    plus = np.full((2, 2), 0.5).ravel()
    for model, p0 in ((quantum, diagonal_state(quantum, [0, 1])),
                      (classical, diagonal_state(classical, [0, 1])), (quantum, plus)):
        mean, covariance, third = counting.heat_cumulants(model, p0, times)
        for k, t in enumerate(times):
            m, c, t3 = mgf_cumulants(model, p0, t)
            np.testing.assert_allclose(mean[k], m, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(covariance[k], c, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(third[k], t3, rtol=1e-10, atol=1e-12)


def test_steady_state_cumulants_grow_with_the_scgf_derivatives(qubit):
    """Oracle: from the steady state ``<Q_a(t)> = J_a t`` exactly, and every cumulant grows as
    ``theta_a^(k)(0) t + c_k + O(exp(-(K_up + K_down) t))``: the slope between t = 40 and 60
    (corrections ~1e-24) against the closed-form SCGF differentiated by Cauchy's formula.
    1e-9 relative (cumulants ~10 accumulated over 60 time units: expm_multiply rounding)."""
    _, quantum, classical = qubit
    times = np.array([40.0, 60.0])
    for model in (quantum, classical):
        mean, covariance, third = counting.heat_cumulants(model, counting.steady_state(model),
                                                          times)
        np.testing.assert_allclose(mean, np.outer(times, counting.heat_currents(model)),
                                   rtol=1e-10)
        for a in range(2):
            derivatives = cauchy_derivatives(lambda z, a=a: two_state_scgf(z, a))
            slopes = [(mean[1, a] - mean[0, a]) / 20,
                      (covariance[1, a, a] - covariance[0, a, a]) / 20,
                      (third[1, a] - third[0, a]) / 20]
            np.testing.assert_allclose(slopes, derivatives, rtol=1e-9)


def test_uniform_and_nonuniform_grids_agree(qubit):
    """Oracle: the same times on a uniform grid (one expm_multiply with start/stop) and split
    into intervals; ``populations`` from a coherent start against ``jumps.solve_exact``.
    1e-12 (expm_multiply)."""
    g, quantum, _ = qubit
    uniform = np.linspace(0.2, 4.2, 11)
    rho0 = np.full((2, 2), 0.5)
    p0 = g.to_energy_basis(rho0).ravel()
    states = counting.populations(quantum, p0, uniform)
    np.testing.assert_allclose(counting.populations(quantum, p0, uniform[[0, 3, 4, 10]]),
                               states[[0, 3, 4, 10]], rtol=1e-12, atol=1e-14)
    exact = jumps.solve_exact(g, rho0, uniform - 0.2)
    later = counting.populations(quantum, exact.rho_energy[0].ravel(), uniform - 0.2)
    np.testing.assert_allclose(later, exact.rho_energy.reshape(11, 4), rtol=1e-12, atol=1e-14)
    m1 = counting.heat_cumulants(quantum, p0, uniform)
    m2 = counting.heat_cumulants(quantum, p0, uniform[[1, 2, 7]])
    for full, part in zip(m1, m2, strict=True):
        np.testing.assert_allclose(part, full[[1, 2, 7]], rtol=1e-11, atol=1e-13)


# -- a 4-level chain ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain4():
    """Two-spin TFIM (h = 1.05, hz = 0.5: non-degenerate), sx:0 to the hot bath, sx:1 to the
    cold one; its eigenstates have <m|sx|m> != 0, so the baths also dephase (w = 0, not
    counted)."""
    model = models.tfim_chain({"n": 2, "h": 1.05, "hz": 0.5})
    g = jumps.davies_generator(model.hamiltonian, [model.operator("sx:0"), model.operator("sx:1")],
                               [bath(BETA_HOT), bath(BETA_COLD)])
    assert np.all(g.level_sizes == 1) and np.any(g.channel_frequency == 0)
    return g, counting.quantum_model(g), classical(g)


def test_four_levels_quantum_matches_classical(chain4):
    """Oracle: for a non-degenerate spectrum from a diagonal start the populations and every
    counted jump follow the Pauli rate equation exactly: the quantum model (d^2 = 16) against
    the classical one (d = 4) for the SCGF, cumulants, steady state, currents and
    waiting-time laws. 1e-9 (the quantum side's frequencies are cluster midpoints, equal to
    the gaps here to rounding)."""
    _, quantum, classical = chain4
    s = np.array([-1.0, -0.2, 0.0, 0.4, 1.3])
    np.testing.assert_allclose(counting.scgf(quantum, s), counting.scgf(classical, s),
                               rtol=1e-9, atol=1e-12)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    times = np.linspace(0.0, 6.0, 7)
    for q, c in zip(counting.heat_cumulants(quantum, diagonal_state(quantum, p), times),
                    counting.heat_cumulants(classical, p, times), strict=True):
        np.testing.assert_allclose(q, c, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(counting.steady_state(quantum),
                               diagonal_state(quantum, counting.steady_state(classical)),
                               rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(counting.heat_currents(quantum), counting.heat_currents(classical),
                               rtol=1e-9)
    for q, c in zip(counting.waiting_time(quantum, times), counting.waiting_time(classical, times),
                    strict=True):
        np.testing.assert_allclose(q, c, rtol=1e-9)
    for q, c in zip(counting.first_jump(quantum, diagonal_state(quantum, p), times),
                    counting.first_jump(classical, p, times), strict=True):
        np.testing.assert_allclose(q, c, rtol=1e-9)


def test_four_levels_cumulants_and_symmetry(chain4):
    """Oracles: the MGF by Cauchy's formula (1e-10, as for the qubit); the exchange
    fluctuation symmetry ``theta_h(s) = theta_h(beta_c - beta_h - s)``, which holds for the
    heat of one bath here because there are exactly two baths, each obeying KMS (it fails for
    the heat of one of three baths, and for finite-time cumulants); 1e-10. The dephasing
    (w = 0) is not counted: the first-jump rate from an eigenstate is the off-diagonal escape
    rate only (1e-12). Energy conservation: ``J_h + J_c = 0`` (1e-12 of |J|)."""
    g, quantum, classical = chain4
    R = g.rate_matrix().toarray()
    dephased = int(np.argmax(np.diag(R)))   # the eigenstate the baths dephase most
    assert R[dephased, dephased] > 0
    p0 = diagonal_state(quantum, np.eye(4)[dephased])
    mean, covariance, third = counting.heat_cumulants(quantum, p0, [1.5])
    m, c, t3 = mgf_cumulants(quantum, p0, 1.5)
    np.testing.assert_allclose(mean[0], m, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(covariance[0], c, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(third[0], t3, rtol=1e-10, atol=1e-12)
    s = np.linspace(-0.5, 2.0, 6)
    for model in (quantum, classical):
        np.testing.assert_allclose(counting.scgf(model, s)[0],
                                   counting.scgf(model, BETA_COLD - BETA_HOT - s)[0],
                                   rtol=1e-10, atol=1e-12)
        currents = counting.heat_currents(model)
        assert abs(currents.sum()) < 1e-12 * np.abs(currents).max()
    escape = R.sum(axis=0) - np.diag(R)
    times = np.array([0.0, 0.5, 3.0])
    survival, _ = counting.first_jump(quantum, p0, times)
    np.testing.assert_allclose(survival, np.exp(-escape[dephased] * times), rtol=1e-12)


def test_non_unique_steady_states_are_refused():
    """Oracle: known steady-state dimensions. Two identical qubits coupled collectively through
    ``Sx`` keep the singlet dark (2 steady states, quantum model: a degenerate spectrum gets no
    classical model); a coupling that commutes with H (``sz`` on a qubit) leaves each
    eigenstate stationary (2, both models)."""
    collective = models.collective_qubits({"n": 2})
    g = jumps.davies_generator(collective.hamiltonian, [collective.operator("Sx")], [bath(1.0)])
    with pytest.raises(ConfigError) as error:
        counting.steady_state(counting.quantum_model(g))
    assert (error.value.field, error.value.reason) == ("initial_state.kind",
                                                       "not unique: 2 steady states")
    assert classical(g).kind == "quantum"  # no rate equation is exact for degenerate levels
    g = jumps.davies_generator(W0 / 2 * SZ, [SZ], [bath(1.0)])
    for model in (counting.quantum_model(g), classical(g)):
        with pytest.raises(ConfigError, match="not unique: 2 steady states"):
            counting.heat_currents(model)


# -- the rates generator ------------------------------------------------------------------------


def test_per_bath_rates_match_the_channel_generator():
    """Oracle: the channel generator's per-entry rates ``gamma_a(w) |<n|A_a|m>|^2`` of the same
    5-spin chain (d = 32), summed per bath: the rates generator's recomputed rates agree to
    1e-12 of the largest rate (two independent eigh; the channel generator drops elements
    below 1e-12 max|A|, i.e. rates below 1e-24), and so do the two classical models."""
    model = models.tfim_chain({"n": 5, "h": 1.05, "hz": 0.5})
    couplings = [model.sparse_operator("sx:0"), model.sparse_operator("sx:4")]
    baths = [bath(BETA_HOT), bath(BETA_COLD)]
    channels = jumps.davies_generator(model.hamiltonian, [A.toarray() for A in couplings], baths)
    fast = jumps.rates_generator(model.sparse_hamiltonian, couplings, baths)
    reference = classical(channels)
    recomputed = per_bath_rates(fast)
    d = 32
    for a in range(2):
        mask = channels.channel_bath[channels.entry_channel] == a
        expected = sp.csr_matrix((channels.entry_rate[mask], (channels.entry_row[mask],
                                                              channels.entry_col[mask])),
                                 shape=(d, d)).toarray()
        np.testing.assert_allclose(recomputed[a].toarray(), expected, rtol=0,
                                   atol=1e-12 * expected.max())
    model_fast = classical(fast)
    scale = np.abs(reference.generator).max()
    np.testing.assert_allclose(model_fast.generator.toarray(), reference.generator.toarray(),
                               rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(counting.heat_currents(model_fast),
                               counting.heat_currents(reference), rtol=1e-9)


def test_large_system_paths_match_the_dense_ones(monkeypatch):
    """Oracle: the dense paths. On the 5-spin chain (d = 32, D = 1024), the same quantities
    with the size limits lowered so that the large-system code runs: the classical Perron
    root (column-sum bound minimised over the similarity, shift-invert Arnoldi with a sparse
    LU), sparse steady-state solves, and the quantum null-space count and SCGF by Arnoldi.
    1e-10 relative (Arnoldi to 1e-14, LU solves)."""
    chain = models.tfim_chain({"n": 5, "h": 1.05, "hz": 0.5})
    g = jumps.davies_generator(chain.hamiltonian, [chain.operator("sx:0"),
                                                   chain.operator("sx:4")],
                               [bath(BETA_HOT), bath(BETA_COLD)])
    s = np.array([-0.8, 0.0, 0.4, BETA_COLD - BETA_HOT - 0.4, 2.5])

    def quantities(model):
        return (counting.steady_state(model), counting.heat_currents(model),
                counting.scgf(model, s))
    models_ = (classical(g), counting.quantum_model(g))
    dense = [quantities(model) for model in models_]
    monkeypatch.setattr(counting, "CLASSICAL_DENSE_EIGVALS", 0)
    monkeypatch.setattr(counting, "DENSE_LIMIT", 20)
    monkeypatch.setattr(counting, "DENSE_FILL", 2.0)
    for model, reference in zip(models_, dense, strict=True):
        for value, expected in zip(quantities(model), reference, strict=True):
            np.testing.assert_allclose(value, expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(dense[0][2][0, 2], dense[0][2][0, 3], rtol=1e-10)


@pytest.mark.slow
def test_twelve_spins():
    """d = 4096 (12-spin chain from jumps.rates_generator, sx on the two ends to a hot and a
    cold bath; every rate matrix is full). Oracles: the steady state solves ``L p = 0``
    (residual below 1e-12 of ``max|L|``), is a probability vector, and is unique (the rates
    generator's own union-find count); energy conservation ``J_h + J_c = 0`` (1e-9 of |J|)
    with heat flowing hot -> cold; ``theta_h(0) = 0`` (1e-10 of ``max|L|``) and the exchange
    symmetry ``theta_h(0.4) = theta_h(beta_c - beta_h - 0.4)`` (1e-9 relative: shift-invert
    Arnoldi to 1e-14 on two different, similarity-balanced tilted matrices)."""
    start = time.perf_counter()
    model = models.tfim_chain({"n": 12, "h": 1.05, "hz": 0.5})
    couplings = [model.sparse_operator("sx:0"), model.sparse_operator("sx:11")]
    fast = jumps.rates_generator(model.sparse_hamiltonian, couplings,
                                 [bath(BETA_HOT), bath(BETA_COLD)], lamb_shift=False)
    assert fast.components == 1
    built = time.perf_counter()
    counted = classical(fast)
    modelled = time.perf_counter()
    p = counting.steady_state(counted)
    scale = np.abs(counted.generator.data).max()
    assert np.abs(counted.generator @ p).max() < 1e-12 * scale
    assert p.min() > -1e-14 and abs(p.sum() - 1) < 1e-12
    currents = counting.heat_currents(counted)
    assert currents[0] < 0 < currents[1]
    assert abs(currents.sum()) < 1e-9 * np.abs(currents).max()
    s = 0.4
    theta = counting.scgf(counted, [0.0, s, BETA_COLD - BETA_HOT - s], baths=[0])[0]
    assert abs(theta[0]) < 1e-10 * scale
    np.testing.assert_allclose(theta[1], theta[2], rtol=1e-9)
    done = time.perf_counter()
    print(f"d = 4096: generator {built - start:.1f} s, model {modelled - built:.1f} s, "
          f"steady state + currents + 3 SCGF values {done - modelled:.1f} s")
