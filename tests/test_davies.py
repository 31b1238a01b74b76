"""The Davies generator: closed-form relaxation of simple systems, Gibbs stationarity, dark
states, steady-state uniqueness, basis independence inside degenerate subspaces, diagnostics.

Conventions under test (docs/design.md, "Conventions"): ``A(w) = sum_{E_m - E_n = w} |n><n|A|m><m|``
lowers the energy by ``w``; ``gamma(w)``, ``w > 0``, is emission.
"""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jumps.generators.channels import generator as davies
from jumps.physics import baths, exact, models, spectrum

SX = np.array([[0, 1], [1, 0]], dtype=complex)
SZ = np.diag([1.0, -1.0]).astype(complex)


def two_level(w0, coupling, bath):
    model = models.build_model("two_level", {"w0": w0})
    return model, davies.build_generator(model.hamiltonian, [coupling], [bath])


def density(vector):
    vector = np.asarray(vector, dtype=complex)
    return np.outer(vector, vector.conj())


# -- two-level system ---------------------------------------------------------------------------

@pytest.mark.parametrize("beta", [0.2, 1.0, 5.0, np.inf])
@pytest.mark.parametrize("kind", ["ohmic", "drude_lorentz"])
def test_two_level_steady_state_polarisation(beta, kind):
    """Steady <sz> = -tanh(beta w0 / 2) (Gibbs state of H = (w0/2) sz; -1 at beta = inf), from
    the steady-state null space and from exact evolution to t = 60 T1.

    Tolerance: 1e-10 (SVD null vector and expm_multiply are good to ~1e-13; at t = 60 T1 the
    transient is e^-60)."""
    bath = (baths.ohmic(0.05, 5.0, beta) if kind == "ohmic"
            else baths.drude_lorentz(0.04, 2.0, beta))
    w0 = 1.3
    model, g = two_level(w0, SX, bath)
    expected = -np.tanh(beta * w0 / 2) if np.isfinite(beta) else -1.0
    states = exact.steady_states(g)
    assert len(states) == 1
    sz = g.to_energy_basis(model.operators["sz"])
    assert np.real(np.trace(sz @ states[0])) == pytest.approx(expected, abs=1e-10)
    t1 = 1.0 / (bath.rates(np.array([w0]))[0] + bath.rates(np.array([-w0]))[0])
    solution = exact.evolve(g, density([1, 0]), np.array([0.0, 60 * t1]))
    assert np.real(solution.expectation(g, model.operators["sz"])[-1]) == pytest.approx(
        expected, abs=1e-10)


def test_two_level_emission_is_downhill():
    """Sign convention: the excited state (sz = +1) first decays at rate a_x^2 gamma(+w0), the
    emission rate, and the ground state is excited at a_x^2 gamma(-w0) = e^{-beta w0} times less
    (docs/design.md, "Conventions": w > 0 is emission). Oracle: the rate matrix equals those rates
    (1e-14)."""
    bath = baths.ohmic(0.05, 5.0, 0.9)
    w0, a_x = 1.3, 0.7
    _, g = two_level(w0, a_x * SX, bath)
    rates = g.rate_matrix().toarray()  # rates[n, m]: m -> n; index 0 = ground
    down, up = bath.rates(np.array([w0, -w0]))
    assert rates[0, 1] == pytest.approx(a_x**2 * down, rel=1e-14)
    assert rates[1, 0] == pytest.approx(a_x**2 * up, rel=1e-14)
    assert rates[1, 0] / rates[0, 1] == pytest.approx(np.exp(-0.9 * w0), rel=1e-14)


@pytest.mark.parametrize("beta", [0.3, 2.0])
def test_two_level_t1(beta):
    """<sz>(t) = s_eq + (1 - s_eq) exp(-t/T1) from the excited state, with
    T1 = 1/(a_x^2 (gamma(w0) + gamma(-w0))) (Pauli rate equation of the two levels; the a_z sz
    part of the coupling only dephases). Tolerance 1e-11 absolute: expm_multiply ~1e-13."""
    bath = baths.ohmic(0.08, 4.0, beta)
    w0, a_x, a_z = 1.1, 0.8, 0.6
    model, g = two_level(w0, a_x * SX + a_z * SZ, bath)
    gamma1 = a_x**2 * (bath.rates(np.array([w0]))[0] + bath.rates(np.array([-w0]))[0])
    s_eq = -np.tanh(beta * w0 / 2)
    times = np.linspace(0, 3 / gamma1, 31)
    sz = np.real(exact.evolve(g, density([1, 0]), times).expectation(g, model.operators["sz"]))
    np.testing.assert_allclose(sz, s_eq + (1 - s_eq) * np.exp(-gamma1 * times), rtol=0, atol=1e-11)


@pytest.mark.parametrize("a_x, a_z", [(0.8, 0.6), (1.0, 0.0), (0.0, 1.0), (0.3, 1.2)])
@pytest.mark.parametrize("beta", [0.5, 3.0])
def test_two_level_coherence_decay_and_lamb_shift(a_x, a_z, beta):
    """Coupling a_x sx + a_z sz: the coherence <g|rho|e> decays at
    Gamma2 = Gamma1/2 + 2 a_z^2 gamma(0), Gamma1 = a_x^2 (gamma(w0) + gamma(-w0)), and turns at
    the Lamb-shifted gap: E_e - E_g = w0 + a_x^2 (S(w0) - S(-w0)) (H_LS = sum S(w) A^dag A:
    the excited level is shifted by a_x^2 S(w0) + a_z^2 S(0), the ground one by
    a_x^2 S(-w0) + a_z^2 S(0)). Oracle: these closed forms of the generator of docs/design.md,
    "Conventions", complex value compared, tolerance 1e-11 absolute (expm_multiply)."""
    bath = baths.ohmic(0.06, 3.0, beta)
    w0 = 1.0
    _, g = two_level(w0, a_x * SX + a_z * SZ, bath)
    gamma = dict(zip((w0, 0.0, -w0), bath.rates(np.array([w0, 0.0, -w0]))))
    shift = dict(zip((w0, 0.0, -w0), bath.lamb_shift(np.array([w0, 0.0, -w0]))))
    gamma1 = a_x**2 * (gamma[w0] + gamma[-w0])
    gamma2 = gamma1 / 2 + 2 * a_z**2 * gamma[0.0]
    gap = w0 + a_x**2 * (shift[w0] - shift[-w0])
    times = np.linspace(0, 2 / gamma2, 21)
    plus = density(np.array([1, 1]) / np.sqrt(2))
    rho = exact.evolve(g, plus, times).rho_energy  # index 0 = ground, 1 = excited
    # rho_ge(t) = rho_ge(0) exp(-i (E_g - E_e) t - Gamma2 t); |rho_ge(0)| = 1/2 (its phase is
    # that of eigh's eigenvectors)
    assert abs(rho[0, 0, 1]) == pytest.approx(0.5, abs=1e-15)
    expected = rho[0, 0, 1] * np.exp(1j * gap * times - gamma2 * times)
    np.testing.assert_allclose(rho[:, 0, 1], expected, rtol=0, atol=1e-11)
    lamb = np.real(np.diag(g.dense_blocks(g.lamb_shift_blocks)))
    np.testing.assert_allclose(lamb, [a_x**2 * shift[-w0] + a_z**2 * shift[0.0],
                                      a_x**2 * shift[w0] + a_z**2 * shift[0.0]], rtol=1e-13)


def test_lamb_shift_switches():
    """lamb_shift=False on the bath or in build_generator gives H_LS = 0."""
    for bath, switch in ((baths.ohmic(0.06, 3.0, 1.0, lamb_shift=False), True),
                         (baths.ohmic(0.06, 3.0, 1.0), False)):
        model = models.build_model("two_level")
        g = davies.build_generator(model.hamiltonian, [SX + SZ], [bath], lamb_shift=switch)
        assert np.all(g.lamb_shift_blocks == 0)
        assert np.all(g.channel_lamb_shift == 0)


# -- harmonic oscillator ------------------------------------------------------------------------

def oscillator(beta, levels=40, w=1.3):
    model = models.build_model("harmonic_oscillator", {"w": w, "levels": levels})
    bath = baths.ohmic(0.01, 5.0, beta)
    return model, bath, davies.build_generator(model.hamiltonian, [model.operator("a + adag")],
                                               [bath])


@pytest.mark.parametrize("beta", [0.4, 0.8, 3.0])
def test_oscillator_thermal_occupation(beta):
    """Steady <n> = 1/(exp(beta w) - 1) (Bose-Einstein). 40 levels: the truncation error is
    ~ 40 exp(-40 beta w) < 1e-7 at beta w = 0.52 and far smaller otherwise; tolerance 1e-6
    relative."""
    w = 1.3
    model, _, g = oscillator(beta, w=w)
    states = exact.steady_states(g)
    assert len(states) == 1
    n = g.to_energy_basis(model.operators["n"])
    occupation = np.real(np.trace(n @ states[0]))
    assert occupation == pytest.approx(1 / np.expm1(beta * w), rel=1e-6)


def test_oscillator_relaxation_rate():
    """d<n>/dt = -(gamma(w) - gamma(-w)) <n> + gamma(-w) for A = a + a^dag (A(w) = a,
    A(-w) = a^dag), so <n>(t) = n_eq + (n0 - n_eq) exp(-(gamma(w) - gamma(-w)) t) from the Fock
    state |3>. Tolerance 1e-9 absolute: 40 levels, the population near the top is < e^-30."""
    beta, w = 0.8, 1.3
    model, bath, g = oscillator(beta, w=w)
    down, up = bath.rates(np.array([w, -w]))
    rate = down - up
    n_eq = 1 / np.expm1(beta * w)
    times = np.linspace(0, 4 / rate, 25)
    fock = np.zeros(40)
    fock[3] = 1
    n_t = np.real(exact.evolve(g, density(fock), times).expectation(g, model.operators["n"]))
    np.testing.assert_allclose(n_t, n_eq + (3 - n_eq) * np.exp(-rate * times), rtol=0, atol=1e-9)
    # The whole ladder is one channel per sign (equal gaps grouped), not one per pair.
    assert sorted(np.round(g.channel_frequency, 12)) == [-w, w]


# -- Gibbs stationarity (property) --------------------------------------------------------------

def thermal_bath(kind, beta):
    if kind == "ohmic":
        return baths.ohmic(0.05, 4.0, beta)
    if kind == "drude_lorentz":
        return baths.drude_lorentz(0.1, 1.5, beta)
    if kind == "tabulated":
        grid = np.linspace(0, 40, 801)
        return baths.tabulated(np.column_stack([grid, 0.03 * grid**3 * np.exp(-grid)]), beta)
    return baths.from_callable(lambda w: 0.02 * w / (1 + w**4), beta, scale=1.0)


def random_hermitian(rng, d, scale=1.0):
    m = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    return scale * (m + m.conj().T) / 2


def random_unitary(rng, d):
    q, r = np.linalg.qr(rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d)))
    return q * (np.diag(r) / np.abs(np.diag(r)))


@st.composite
def thermal_problems(draw):
    """A random H (d = 2..6; sometimes with degenerate, equally spaced levels) and one to three
    random Hermitian couplings to baths of random kinds at one temperature."""
    d = draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    degenerate = draw(st.booleans())
    kinds = draw(st.lists(st.sampled_from(["ohmic", "drude_lorentz", "tabulated", "callable"]),
                          min_size=1, max_size=3))
    beta = draw(st.one_of(st.floats(0.05, 8.0), st.just(np.inf)))
    rng = np.random.default_rng(seed)
    if degenerate:
        U = random_unitary(rng, d)
        H = (U * rng.integers(0, 3, size=d).astype(float)) @ U.conj().T
    else:
        H = random_hermitian(rng, d)
    couplings = [random_hermitian(rng, d, 0.5) for _ in kinds]
    return H, couplings, [thermal_bath(kind, beta) for kind in kinds], beta


def block_vector(g, rho_energy):
    """The block-diagonal part of an eigenbasis matrix in block_diagonal_superoperator's order."""
    return np.concatenate([rho_energy[lo:hi, lo:hi].ravel()
                           for lo, hi in zip(g.level_ptr[:-1], g.level_ptr[1:])])


@settings(max_examples=40, deadline=None)
@given(thermal_problems())
def test_gibbs_state_is_stationary(problem):
    """exp(-beta H)/Z is a fixed point of the Davies generator for any H, Hermitian couplings
    and thermal baths at one temperature (KMS + secular structure; Davies 1974, Spohn 1978).
    Both the block-diagonal superoperator and the full Liouvillian annihilate it.

    Tolerance: 1e-12 times the largest Liouvillian element (rounding in d <= 6 matrix products;
    a KMS or sign error in one rate leaves a residual of order that rate)."""
    H, couplings, bath_list, beta = problem
    g = davies.build_generator(H, couplings, bath_list)
    assert g.common_beta() == beta
    gibbs = np.diag(g.gibbs_populations()).astype(complex)
    liouvillian = exact.liouvillian(g)
    scale = np.abs(liouvillian.data).max()
    residual = liouvillian @ gibbs.ravel()
    assert np.abs(residual).max() < 1e-12 * scale
    block_residual = davies.block_diagonal_superoperator(g) @ block_vector(g, gibbs)
    assert np.abs(block_residual).max() < 1e-12 * scale
    # The same state in the user's basis: exp(-beta H)/Z (1e-12).
    if np.isfinite(beta):
        evals, evecs = np.linalg.eigh(H)
        weights = np.exp(-beta * (evals - evals.min()))
        reference = (evecs * (weights / weights.sum())) @ evecs.conj().T
        np.testing.assert_allclose(g.gibbs_state(), reference, atol=1e-12)


def test_gibbs_is_not_stationary_for_non_thermal_rates():
    """Negative control for the stationarity test above: with rates that break KMS (a symmetric
    gamma(-w) = gamma(w) table) the Gibbs state at any beta is not stationary (residual > 1e-3)
    and common_beta() is None."""
    rng = np.random.default_rng(5)
    H, A = random_hermitian(rng, 4), random_hermitian(rng, 4)
    table = np.array([[-10.0, 0.2], [0.0, 0.1], [10.0, 0.2]])
    g = davies.build_generator(H, [A], [baths.from_rates(table)])
    assert g.common_beta() is None
    gibbs = np.diag(g.gibbs_populations(beta=1.0)).astype(complex)
    assert np.abs(exact.liouvillian(g) @ gibbs.ravel()).max() > 1e-3


@settings(max_examples=25, deadline=None)
@given(thermal_problems())
def test_detailed_balance_of_rates(problem):
    """Between two eigenstates, Gamma_up / Gamma_down = exp(-beta dE) (docs/design.md,
    "Conventions"), entry by entry of the classical rate matrix. 1e-12 relative (one product per
    rate)."""
    H, couplings, bath_list, beta = problem
    if not np.isfinite(beta):
        return
    g = davies.build_generator(H, couplings, bath_list)
    rates = g.rate_matrix().toarray()  # [n, m]: m -> n
    E = g.energies
    upward = E[:, None] > E[None, :]  # n above m
    forward, backward = rates[upward], rates.T[upward]
    gaps = (E[:, None] - E[None, :])[upward]
    np.testing.assert_allclose(forward, backward * np.exp(-beta * gaps),
                               rtol=1e-12, atol=1e-300)


# -- steady-state structure ---------------------------------------------------------------------

def test_collective_qubits_singlet_is_dark():
    """Two identical qubits coupled collectively through Sx: the singlet (|ud> - |du>)/sqrt(2) has
    <singlet|Sx = 0 and no jump reaches it, so it stays populated forever and the steady states form
    a 2-dimensional space (docs/design.md, "Conventions": the partial secular treatment must group
    both pairs of one gap into one operator). Tolerance 1e-12 (exact arithmetic up to rounding)."""
    model = models.build_model("collective_qubits", {"n": 2, "w0": 1.0})
    g = davies.build_generator(model.hamiltonian, [model.operator("Sx")],
                               [baths.ohmic(0.05, 5.0, 1.0)])
    assert davies.diagnostics(g).steady_state_dimension == 2
    assert len(exact.steady_states(g)) == 2
    singlet = np.array([0, 1, -1, 0]) / np.sqrt(2)
    rho = exact.evolve(g, density(singlet), np.linspace(0, 200, 5)).rho_user(g)
    np.testing.assert_allclose(np.einsum("i,tij,j->t", singlet, rho, singlet), 1.0, atol=1e-12)
    # The triplet relaxes to its own Gibbs state, leaving the singlet empty.
    triplet = np.array([0, 1, 1, 0]) / np.sqrt(2)
    rho = exact.evolve(g, density(triplet), np.array([0.0, 400.0])).rho_user(g)[-1]
    assert abs(singlet @ rho @ singlet) < 1e-12


def test_independent_qubits_have_unique_steady_state():
    """Contrast: the same two qubits with independent baths on sx:0 and sx:1 have one steady
    state, the Gibbs state (1e-10)."""
    model = models.build_model("collective_qubits", {"n": 2, "w0": 1.0})
    bath = baths.ohmic(0.05, 5.0, 1.0)
    couplings = [model.operators["sx:0"], model.operators["sx:1"]]
    g = davies.build_generator(model.hamiltonian, couplings, [bath, bath])
    assert davies.diagnostics(g).steady_state_dimension == 1
    (state,) = exact.steady_states(g)
    np.testing.assert_allclose(state, np.diag(g.gibbs_populations()), atol=1e-10)


def test_tfim_unique_steady_state_is_gibbs():
    """TFIM, 4 spins, hz != 0 (non-integrable, no degeneracies), an independent Ohmic bath on
    sx of every site: the jump graph is connected, so the steady state is unique and equal to
    the Gibbs state (docs/design.md, "Conventions"). Tolerance 1e-9: SVD null vector of a 16x16
    rate problem whose smallest non-zero singular value is ~1e-3."""
    model = models.build_model("tfim_chain", {"n": 4, "J": 1.0, "h": 1.1, "hz": 0.3})
    bath = baths.ohmic(0.02, 5.0, 1.3)
    couplings = [model.operators[f"sx:{j}"] for j in range(4)]
    g = davies.build_generator(model.hamiltonian, couplings, [bath] * 4)
    assert np.all(g.level_sizes == 1)
    assert davies.diagnostics(g).steady_state_dimension == 1
    (state,) = exact.steady_states(g)
    np.testing.assert_allclose(state, np.diag(g.gibbs_populations()), atol=1e-9)
    final = exact.evolve(g, density(np.eye(16)[0]), np.array([0.0, 2000.0])).rho_energy[-1]
    np.testing.assert_allclose(final, np.diag(g.gibbs_populations()), atol=1e-9)


def test_disconnected_jump_graph_reports_several_steady_states():
    """A coupling that commutes with H (sz:0 on the Ising chain with h = 0) only dephases. In each
    level, D(X)_ij = gamma(0) (a_i a_j - 1) X_ij with a = +-1 the sz:0 values, so X is stationary
    iff it only joins states with equal a: the count is sum over levels of n_+^2 + n_-^2 (here 8 of
    the 12 block-diagonal dimensions; docs/design.md, "Conventions": report several steady states,
    never hide them). Oracle: that count from the diagonal H and sz:0 directly."""
    model = models.build_model("tfim_chain", {"n": 3, "J": 1.0, "h": 0.0, "hz": 0.37})
    sz0 = np.real(np.diag(model.operators["sz:0"]))
    energies = np.real(np.diag(model.hamiltonian))
    expected = 0
    for level in np.unique(np.round(energies, 9)):
        members = np.isclose(energies, level)
        expected += np.sum(sz0[members] > 0) ** 2 + np.sum(sz0[members] < 0) ** 2
    g = davies.build_generator(model.hamiltonian, [model.operators["sz:0"]],
                               [baths.ohmic(0.05, 5.0, 1.0)])
    assert g.level_sizes.max() > 1 and expected < np.sum(g.level_sizes**2)
    assert davies.diagnostics(g).steady_state_dimension == expected
    assert len(exact.steady_states(g)) == expected


@pytest.mark.parametrize("beta, expected", [(1.0, 2), (np.inf, 2), (1.0, 1)])
def test_steady_state_count_without_degeneracies(beta, expected):
    """Non-degenerate spectrum (the Pauli-graph path of steady_state_dimension): the count is
    the number of closed classes of the jump graph. H = diag(0, 1, 2.3, 3.7); a coupling that
    only joins levels {0,1} and {2,3} leaves two closed classes at any temperature (at
    beta = inf the classes are {0} and {2}); adding a 1-2 element joins them. Checked against
    the SVD null space of exact.steady_states (an independent path)."""
    H = np.diag([0.0, 1.0, 2.3, 3.7])
    A = np.zeros((4, 4))
    A[0, 1] = A[1, 0] = A[2, 3] = A[3, 2] = 1.0
    if expected == 1:
        A[1, 2] = A[2, 1] = 0.5
    g = davies.build_generator(H, [A], [baths.ohmic(0.05, 5.0, beta)])
    assert np.all(g.level_sizes == 1)
    assert davies.diagnostics(g).steady_state_dimension == expected
    assert len(exact.steady_states(g)) == expected


# -- basis independence inside degenerate subspaces ---------------------------------------------

DEGENERATE_CASES = [
    # collective qubits: levels of size 1, 3, 3, 1 and a dark subspace
    ("collective_qubits", {"n": 3, "w0": 1.0}, ["Sx"]),
    # SU(2)-symmetric Heisenberg chain: multiplets; one local bath and a second one
    ("xxz_chain", {"n": 3, "J": 1.0, "delta": 1.0}, ["sx:0", "0.5*sz:1 + 0.3*sx:2"]),
    # free qubits: highly degenerate, equally spaced levels
    ("tfim_chain", {"n": 3, "J": 0.0, "h": 0.0, "hz": 0.5}, ["sx:0 + sy:1", "sz:2"]),
]


def rotated_eigh(rng, original):
    """numpy.linalg.eigh, then a random unitary inside every degenerate eigenspace."""
    def eigh(matrix, *args, **kwargs):
        energies, vectors = original(matrix, *args, **kwargs)
        vectors = vectors.astype(complex)
        tol = spectrum.default_degeneracy_tol(energies)
        level_ptr, _ = spectrum.group_levels(energies, tol)
        for lo, hi in itertools.pairwise(level_ptr):
            vectors[:, lo:hi] = vectors[:, lo:hi] @ random_unitary(rng, hi - lo)
        return energies, vectors
    return eigh


@pytest.mark.parametrize("name, params, coupling_names", DEGENERATE_CASES)
def test_results_independent_of_degenerate_eigenbasis(monkeypatch, name, params, coupling_names):
    """rho(t) in the user's basis, the channel rates and the steady-state count do not depend on
    which orthonormal basis eigh returns inside a degenerate eigenspace: the jump operators
    A(w) = sum P_n A P_m are basis-free (partial secular treatment). Oracle: the same build with
    the eigenvectors rotated by random unitaries inside each level. Tolerance 1e-11 (rounding in
    d <= 8 products; splitting one channel pair by pair makes differences of order 1)."""
    model = models.build_model(name, params)
    couplings = [model.operator(c) for c in coupling_names]
    bath_list = [baths.ohmic(0.05, 4.0, 0.7), baths.drude_lorentz(0.05, 2.0, 0.7)][:len(couplings)]
    rng = np.random.default_rng(11)
    rho0 = density(rng.normal(size=model.dimension) + 1j * rng.normal(size=model.dimension))
    rho0 /= np.trace(rho0)
    times = np.linspace(0, 30, 7)

    reference = davies.build_generator(model.hamiltonian, couplings, bath_list)
    assert reference.level_sizes.max() > 1
    monkeypatch.setattr(np.linalg, "eigh", rotated_eigh(rng, np.linalg.eigh))
    rotated = davies.build_generator(model.hamiltonian, couplings, bath_list)
    monkeypatch.undo()
    assert not np.allclose(np.abs(rotated.eigenvectors), np.abs(reference.eigenvectors))

    rho_reference = exact.evolve(reference, rho0, times).rho_user(reference)
    rho_rotated = exact.evolve(rotated, rho0, times).rho_user(rotated)
    np.testing.assert_allclose(rho_rotated, rho_reference, atol=1e-11)
    V = reference.eigenvectors
    decay_user = V @ reference.dense_blocks(reference.decay_blocks) @ V.conj().T
    for g in (reference, rotated):
        lindblads = g.lindblad_operators("user")
        np.testing.assert_allclose(sum(L.conj().T @ L for L in lindblads), decay_user, atol=1e-11)
    assert (davies.diagnostics(rotated).steady_state_dimension
            == davies.diagnostics(reference).steady_state_dimension)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_covariance_under_change_of_basis(seed):
    """Building from (U H U^dag, U A U^dag, U rho0 U^dag) gives U rho(t) U^dag for any unitary
    U (the generator is defined by operators, not matrices). Here H has degenerate levels, so
    eigh picks unrelated bases inside them. Tolerance 1e-11 (rounding)."""
    rng = np.random.default_rng(seed)
    model = models.build_model("xxz_chain", {"n": 3, "J": 1.0, "delta": 1.0, "hz": 0.0})
    A = [model.operator("sx:0"), model.operator("sz:1 + 0.4*sy:2")]
    bath_list = [baths.ohmic(0.05, 4.0, 0.5), baths.ohmic(0.03, 2.0, 0.5)]
    U = random_unitary(rng, 8)
    rho0 = density(rng.normal(size=8))
    rho0 /= np.trace(rho0)
    times = np.linspace(0, 25, 6)
    g = davies.build_generator(model.hamiltonian, A, bath_list)
    g_rotated = davies.build_generator(U @ model.hamiltonian @ U.conj().T,
                                       [U @ a @ U.conj().T for a in A], bath_list)
    rho = exact.evolve(g, rho0, times).rho_user(g)
    rho_rotated = exact.evolve(g_rotated, U @ rho0 @ U.conj().T, times).rho_user(g_rotated)
    np.testing.assert_allclose(rho_rotated, U @ rho @ U.conj().T, atol=1e-11)


# -- diagnostics and frequency clustering -------------------------------------------------------

def test_secular_margin_reported():
    """secular_margin = (smallest spacing of distinct Bohr frequencies with a non-zero rate) /
    (largest channel rate). Two-level with a_x sx + a_z sz: frequencies {-w0, 0, w0}, spacing
    w0; with a_x sx only: {-w0, w0}, spacing 2 w0. Exact arithmetic on the same rates (1e-15)."""
    bath = baths.ohmic(0.05, 5.0, 0.5)
    w0 = 1.5
    rates = bath.rates(np.array([-w0, 0.0, w0]))
    _, g = two_level(w0, 0.8 * SX + 0.6 * SZ, bath)
    diag = davies.diagnostics(g)
    assert diag.min_frequency_spacing == pytest.approx(w0, rel=1e-15)
    assert diag.max_rate == pytest.approx(rates.max(), rel=1e-15)
    assert diag.secular_margin == pytest.approx(w0 / rates.max(), rel=1e-15)
    _, g = two_level(w0, SX, bath)
    diag = davies.diagnostics(g)
    assert diag.min_frequency_spacing == pytest.approx(2 * w0, rel=1e-15)
    assert diag.secular_margin == pytest.approx(2 * w0 / max(rates[0], rates[2]), rel=1e-15)


def test_dropped_weight_reported():
    """Eigenbasis elements below drop_tol * max|A| are dropped and their share of sum |A_nm|^2
    is reported per bath: 2 (1e-14)^2 / (2 + 2 (1e-14)^2) = 1e-28 (1e-6 relative); with
    drop_tol = 0 nothing is dropped and the w = 3 channel exists."""
    H = np.diag([0.0, 1.0, 3.0])
    A = np.array([[0, 1, 1e-14], [1, 0, 0], [1e-14, 0, 0]], dtype=float)
    bath = baths.ohmic(0.05, 5.0, 1.0)
    g = davies.build_generator(H, [A, A], [bath, bath], drop_tol=1e-12)
    np.testing.assert_allclose(g.dropped_weight, [1e-28, 1e-28], rtol=1e-6)
    assert not np.any(np.isclose(np.abs(g.channel_frequency), 3.0))
    g = davies.build_generator(H, [A], [bath], drop_tol=0.0)
    assert g.dropped_weight[0] == 0.0
    assert np.any(np.isclose(g.channel_frequency, 3.0))


def test_info_reports_margin_and_dropped_weight():
    """``jumps info`` text carries the secular margin and the dropped weight (1e-28 for the
    matrix of test_dropped_weight_reported), formatted from the generator's own numbers."""
    from jumps.runtime.build import build
    from jumps.runtime.config import parse_config
    from jumps.runtime.info import info_text

    raw = {"system": {"hamiltonian": [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]]},
           "baths": [{"coupling": [[0.0, 1.0, 1e-14], [1.0, 0.0, 0.0], [1e-14, 0.0, 0.0]],
                      "spectral_density": "ohmic", "eta": 0.05, "cutoff": 5.0, "beta": 1.0}]}
    config = parse_config(raw)
    g, built = build(config)
    text = info_text(config, g, built)
    margin = davies.diagnostics(g).secular_margin
    def line(label):
        return next(row for row in text.splitlines() if label in row)

    assert f"{margin:.6g}" in line("secular margin")
    assert "1.000e-28" in line("dropped matrix-element weight")


def test_zero_coupling_is_config_error():
    """A zero coupling operator is refused with a ConfigError naming it (regression: an
    IndexError from an empty frequency clustering, i.e. exit status 1 and a traceback)."""
    from jumps.errors import ConfigError

    bath = baths.ohmic(0.05, 5.0, 1.0)
    with pytest.raises(ConfigError) as error:
        davies.build_generator(np.diag([0.0, 1.0]), [SX, np.zeros((2, 2))], [bath, bath])
    assert error.value.field == "baths[1].coupling"


def test_cluster_frequencies_groups_within_tolerance():
    """Gaps closer than tol share a cluster, gaps farther apart do not; the cluster holding 0
    has frequency exactly 0, the others the midpoint of their extremes (davies docstring)."""
    tol = 1e-9
    gaps = np.array([1.0 + 4e-10, 0.0, 2.0, -3e-10, 1.0, 2.0 + 3e-9, 5e-10, -1.0, -1.0 - 4e-10])
    cluster, frequency = spectrum.cluster_frequencies(gaps, tol)
    groups = [[1, 3, 6], [0, 4], [2], [5], [7, 8]]
    for group in groups:
        assert len(set(cluster[group])) == 1
    assert len({cluster[group[0]] for group in groups}) == len(groups)
    assert frequency.size == len(groups)
    assert frequency[cluster[1]] == 0.0
    assert frequency[cluster[0]] == pytest.approx(1.0 + 2e-10, abs=1e-15)
    assert frequency[cluster[7]] == pytest.approx(-1.0 - 2e-10, abs=1e-15)
    assert frequency[cluster[2]] == 2.0 and frequency[cluster[5]] == 2.0 + 3e-9


def test_bohr_frequencies_are_antisymmetric():
    """For Hermitian couplings every channel (a, w) has a partner (a, -w) with exactly the
    negated frequency, so KMS pairs rates exactly (random 5-level H, two baths)."""
    rng = np.random.default_rng(3)
    H = random_hermitian(rng, 5)
    g = davies.build_generator(H, [random_hermitian(rng, 5), random_hermitian(rng, 5)],
                               [baths.ohmic(0.05, 4.0, 1.0), baths.ohmic(0.02, 4.0, 1.0)])
    pairs = set(zip(g.channel_bath.tolist(), g.channel_frequency.tolist()))
    assert all((a, -w) in pairs for a, w in pairs)
