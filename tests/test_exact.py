"""The dense reference solver: trace, Hermiticity and positivity of rho(t); agreement with an
independent dense Lindblad construction and with QuTiP's Bloch-Redfield solver.

QuTiP mapping (checked by ``test_qutip_spectrum_sign_convention`` below): in
``qutip.brmesolve(H, rho0, t, a_ops=[[A, S]])`` the spectrum ``S(w)`` is evaluated at
``w = E_initial - E_final`` of a transition, so ``S(w > 0)`` is emission, exactly our
``gamma(w)``; the Bloch-Redfield dissipator is ``S(w) (A rho A^dag - ...)`` with no extra factor
(2 pi or 1/2). Hence ``S = bath.rates``, no sign flip, no scale. QuTiP ignores the principal
value part (no Lamb shift), so the jumps baths are built with ``lamb_shift=False``. Its secular
cutoff keeps tensor terms with ``|w_ab - w_cd| < sec_cutoff * (smallest level spacing)``; with a
tiny ``sec_cutoff`` it keeps exactly the equal-frequency terms of the fully secular Davies
generator.
"""

import itertools

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from jumps.generators.channels import generator as davies
from jumps.physics import baths, exact, models

qutip = pytest.importorskip("qutip")

SX = np.array([[0, 1], [1, 0]], dtype=complex)
SY = np.array([[0, -1j], [1j, 0]])
SZ = np.diag([1.0, -1.0]).astype(complex)
QUTIP_OPTIONS = {"atol": 1e-12, "rtol": 1e-10, "nsteps": 100000}


def random_hermitian(rng, d, scale=1.0):
    m = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    return scale * (m + m.conj().T) / 2


def random_density(rng, d, rank):
    psi = rng.normal(size=(d, rank)) + 1j * rng.normal(size=(d, rank))
    rho = psi @ psi.conj().T
    return rho / np.trace(rho)


@st.composite
def open_systems(draw):
    """Random H (d = 2..6, sometimes degenerate), couplings, baths at *different* temperatures
    or non-thermal rates (trace and positivity must hold for any rates), a random initial state
    of random rank."""
    d = draw(st.integers(2, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        q, _ = np.linalg.qr(rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d)))
        H = (q * rng.integers(0, 3, size=d)) @ q.conj().T
    else:
        H = random_hermitian(rng, d)
    bath_list = []
    for kind in draw(st.lists(st.sampled_from(["ohmic", "drude", "rates"]), min_size=1,
                              max_size=3)):
        beta = draw(st.one_of(st.floats(0.1, 5.0), st.just(np.inf)))
        if kind == "ohmic":
            bath_list.append(baths.ohmic(0.1, 3.0, beta))
        elif kind == "drude":
            bath_list.append(baths.drude_lorentz(0.1, 1.0, beta))
        else:
            table = np.column_stack([np.linspace(-8, 8, 9), rng.uniform(0, 0.3, 9)])
            bath_list.append(baths.from_rates(table))
    couplings = [random_hermitian(rng, d, 0.7) for _ in bath_list]
    rho0 = random_density(rng, d, draw(st.integers(1, d)))
    return H, couplings, bath_list, rho0


@settings(max_examples=30, deadline=None)
@given(open_systems())
def test_trace_hermiticity_positivity(system):
    """rho(t) of a Lindblad equation stays a density matrix: trace 1, Hermitian, eigenvalues
    >= 0 (Lindblad 1976). Tolerances 1e-12: expm_multiply rounding on O(1) entries; a wrong
    anticommutator sign or a missing jump term breaks the trace at O(rate * t)."""
    H, couplings, bath_list, rho0 = system
    g = davies.build_generator(H, couplings, bath_list)
    rho = exact.evolve(g, rho0, np.linspace(0, 15, 16)).rho_user(g)
    np.testing.assert_allclose(np.einsum("tii->t", rho), 1.0, atol=1e-12)
    np.testing.assert_allclose(rho, np.conj(np.transpose(rho, (0, 2, 1))), atol=1e-12)
    assert np.linalg.eigvalsh(rho).min() > -1e-12


def bohr_channels(H, A, tol=1e-8):
    """Independent construction of A(w) = sum_{E_l - E_k = w} P_k A P_l from eigenprojectors,
    in the user's basis (plain loops over level pairs; rounding-level degeneracies grouped)."""
    energies, vectors = np.linalg.eigh(H)
    levels = []
    for e, v in zip(energies, vectors.T):
        if levels and abs(e - levels[-1][0]) < tol:
            levels[-1][1].append(v)
        else:
            levels.append([e, [v]])
    projectors = [(e, np.array(vs).T @ np.array(vs).conj()) for e, vs in levels]
    channels = {}
    for (e_k, p_k), (e_l, p_l) in itertools.product(projectors, projectors):
        piece = p_k @ A @ p_l
        if np.abs(piece).max() < 1e-12:
            continue
        key = next((w for w in channels if abs(w - (e_l - e_k)) < tol), e_l - e_k)
        channels[key] = channels.get(key, 0) + piece
    return channels


def reference_liouvillian(H, couplings, bath_list):
    """Dense Davies generator in the user's basis, column-major vec (vec(A X B) =
    (B^T kron A) vec X), from the formulas of docs/design.md, "Conventions":
    H_LS = sum S(w) A(w)^dag A(w), jump terms gamma(w) (A X A^dag - {A^dag A, X}/2)."""
    d = H.shape[0]
    eye = np.eye(d)
    effective = H.astype(complex)
    jumps = np.zeros((d * d, d * d), dtype=complex)
    for A, bath in zip(couplings, bath_list):
        for w, Aw in bohr_channels(H, A).items():
            gamma = bath.rates(np.array([w]))[0]
            shift = bath.lamb_shift(np.array([w]))[0] if bath.lamb_shift_enabled else 0.0
            AdA = Aw.conj().T @ Aw
            effective = effective + shift * AdA - 0.5j * gamma * AdA
            jumps += gamma * np.kron(Aw.conj(), Aw)
    return -1j * np.kron(eye, effective) + 1j * np.kron(effective.conj(), eye) + jumps


@pytest.mark.parametrize("seed, degenerate", [(1, False), (2, False), (3, True), (4, True)])
def test_evolution_matches_dense_reference(seed, degenerate):
    """exact.evolve (sparse eigenbasis Liouvillian, expm_multiply) against scipy.linalg.expm of
    the Liouvillian built independently above in the user's basis, Lamb shift on, two baths at
    different temperatures. Tolerance 1e-10: both are accurate to ~1e-13 on O(1) entries."""
    rng = np.random.default_rng(seed)
    d = 5
    if degenerate:
        q, _ = np.linalg.qr(rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d)))
        H = (q * np.array([0.0, 1.0, 1.0, 2.5, 2.5])) @ q.conj().T
    else:
        H = random_hermitian(rng, d)
    couplings = [random_hermitian(rng, d, 0.6), random_hermitian(rng, d, 0.4)]
    bath_list = [baths.ohmic(0.05, 4.0, 0.7), baths.drude_lorentz(0.08, 1.5, 2.0)]
    rho0 = random_density(rng, d, 2)
    times = np.linspace(0, 12, 5)
    g = davies.build_generator(H, couplings, bath_list)
    rho = exact.evolve(g, rho0, times).rho_user(g)
    L = reference_liouvillian(H, couplings, bath_list)
    for k, t in enumerate(times):
        expected = (scipy.linalg.expm(L * t) @ rho0.ravel(order="F")).reshape(d, d, order="F")
        np.testing.assert_allclose(rho[k], expected, atol=1e-10)


def test_evolve_on_non_uniform_grids():
    """Any increasing grid: the states at the times of a non-uniform grid (irregular, two
    uniform runs, a late start, one time) equal those of a uniform grid through the same times
    (1e-12: both are expm_multiply to ~1e-13 on O(1) entries); the irregular one also equals
    scipy's dense expm of the independently built Liouvillian."""
    rng = np.random.default_rng(7)
    d = 4
    H = random_hermitian(rng, d)
    couplings = [random_hermitian(rng, d, 0.5)]
    bath_list = [baths.ohmic(0.05, 4.0, 0.7)]
    rho0 = random_density(rng, d, 2)
    g = davies.build_generator(H, couplings, bath_list)
    uniform = np.linspace(0.0, 12.0, 49)  # step 0.25
    reference = exact.evolve(g, rho0, uniform).rho_user(g)
    grids = {"irregular": [0, 3, 7, 8, 19, 20, 48], "two runs": [0, 1, 2, 3, 4, 8, 12, 16, 20],
             "late start": [5, 6, 9, 40], "one time": [30]}
    for name, indices in grids.items():
        rho = exact.evolve(g, rho0, uniform[indices]).rho_user(g)
        np.testing.assert_allclose(rho, reference[indices], atol=1e-12, err_msg=name)
    L = reference_liouvillian(H, couplings, bath_list)
    for t, rho in zip(uniform[grids["irregular"]], exact.evolve(g, rho0,
                                                                uniform[grids["irregular"]])
                      .rho_user(g)):
        expected = (scipy.linalg.expm(L * t) @ rho0.ravel(order="F")).reshape(d, d, order="F")
        np.testing.assert_allclose(rho, expected, atol=1e-10)


@pytest.mark.parametrize("times", [[0.0, 2.0, 1.0], [0.0, 1.0, 1.0], [-1.0, 1.0], [],
                                   [[0.0, 1.0]], [0.0, np.nan]])
def test_evolve_refuses_a_grid_that_does_not_increase(times):
    model = models.build_model("two_level")
    g = davies.build_generator(model.hamiltonian, [SX], [baths.ohmic(0.05, 3.0, 1.0)])
    with pytest.raises(ValueError, match="increasing time grid"):
        exact.evolve(g, np.diag([1.0, 0.0]), np.array(times))


# -- QuTiP's Bloch-Redfield solver as a peer ---------------------------------------------------

def spectrum_of(bath):
    """QuTiP spectrum S(w) = our gamma(w) (see module docstring). One-argument function: QuTiP
    treats a callable with the single parameter ``w`` as a spectrum."""
    def spectrum(w):
        return float(bath.rates(np.array([w]))[0])
    return spectrum


def test_qutip_spectrum_sign_convention():
    """The experiment behind the mapping: with S(w) = c for w > 0 and 0 otherwise, QuTiP decays
    the excited state of (w0/2) sz (coupling sx) to the ground state at rate c, and never
    excites it: positive w is emission, and the rate is S itself. 1e-8 (ODE tolerance)."""
    c, w0 = 0.1, 1.0
    times = np.linspace(0, 10, 6)
    result = qutip.brmesolve(qutip.Qobj(0.5 * w0 * SZ), qutip.basis(2, 0), times,
                             a_ops=[[qutip.sigmax(), lambda w: c * (w > 0)]],
                             e_ops=[qutip.sigmaz()], options=QUTIP_OPTIONS)
    np.testing.assert_allclose(result.expect[0], 2 * np.exp(-c * times) - 1, atol=1e-8)
    ground = qutip.brmesolve(qutip.Qobj(0.5 * w0 * SZ), qutip.basis(2, 1), times,
                             a_ops=[[qutip.sigmax(), lambda w: c * (w > 0)]],
                             e_ops=[qutip.sigmaz()], options=QUTIP_OPTIONS)
    np.testing.assert_allclose(ground.expect[0], -1.0, atol=1e-8)


def qutip_expectations(H, couplings, bath_list, rho0, times, observables, sec_cutoff):
    a_ops = [[qutip.Qobj(A), spectrum_of(bath)] for A, bath in zip(couplings, bath_list)]
    result = qutip.brmesolve(qutip.Qobj(H), qutip.Qobj(rho0), times, a_ops=a_ops,
                             sec_cutoff=sec_cutoff, e_ops=[qutip.Qobj(o) for o in observables],
                             options=QUTIP_OPTIONS)
    return np.real(np.array(result.expect))


def jumps_expectations(g, rho0, times, observables):
    solution = exact.evolve(g, rho0, times)
    return np.real(np.array([solution.expectation(g, o) for o in observables]))


def test_two_level_agrees_with_qutip_brmesolve():
    """Two-level system, coupling 0.8 sx + 0.6 sz (relaxation and pure dephasing), Ohmic bath
    at beta = 1, Lamb shift off, from a state with coherence; <sx>, <sy>, <sz> against
    qutip.brmesolve (secular). Tolerance 1e-8: QuTiP's ODE runs at atol 1e-12 / rtol 1e-10
    (measured agreement ~1e-10); the Lamb shift, left on, changes <sx> by > 1e-3, so the
    comparison resolves it."""
    model = models.build_model("two_level", {"w0": 1.0})
    A = model.operator("0.8*sx + 0.6*sz")
    bath = baths.ohmic(0.05, 5.0, 1.0, lamb_shift=False)
    rho0 = np.array([[0.5, -0.5j], [0.5j, 0.5]])
    times = np.linspace(0, 40, 41)
    observables = [SX, SY, SZ]
    g = davies.build_generator(model.hamiltonian, [A], [bath])
    ours = jumps_expectations(g, rho0, times, observables)
    theirs = qutip_expectations(model.hamiltonian, [A], [bath], rho0, times, observables, 1e-6)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)
    with_shift = davies.build_generator(model.hamiltonian, [A], [baths.ohmic(0.05, 5.0, 1.0)])
    assert np.abs(jumps_expectations(with_shift, rho0, times, observables) - theirs).max() > 1e-3


def test_tfim_chain_agrees_with_qutip_brmesolve():
    """4-spin TFIM (J = 1, h = 1.1, hz = 0.3: no degeneracies), an independent Ohmic bath on sx
    of every site, Lamb shift off, from |uuuu>: <sz:0>, <sx:1>, <sz:1 sz:2>, <H> against
    qutip.brmesolve. The secular cutoff is set so that QuTiP keeps only equal Bohr frequencies:
    its absolute cutoff (sec_cutoff * smallest level spacing) is 1e-3 of the smallest non-zero
    spacing between Bohr frequencies (~2e-4 here) and far above rounding. Tolerance 1e-8 (ODE
    tolerances, as in the two-level test; measured ~3e-11)."""
    model = models.build_model("tfim_chain", {"n": 4, "J": 1.0, "h": 1.1, "hz": 0.3})
    couplings = [model.operators[f"sx:{j}"] for j in range(4)]
    bath_list = [baths.ohmic(0.02, 5.0, 1.3, lamb_shift=False) for _ in range(4)]
    g = davies.build_generator(model.hamiltonian, couplings, bath_list)
    assert np.all(g.level_sizes == 1)
    E = g.energies
    bohr = np.unique(np.round((E[:, None] - E[None, :]).ravel(), 11))
    bohr_spacing = np.diff(bohr).min()
    level_spacing = np.diff(E).min()
    sec_cutoff = 1e-3 * bohr_spacing / level_spacing
    assert 1e-12 < sec_cutoff * level_spacing < bohr_spacing
    rho0 = np.zeros((16, 16))
    rho0[0, 0] = 1.0
    times = np.linspace(0, 30, 31)
    ops = model.operators
    observables = [ops["sz:0"], ops["sx:1"], ops["sz:1"] @ ops["sz:2"], model.hamiltonian]
    ours = jumps_expectations(g, rho0, times, observables)
    theirs = qutip_expectations(model.hamiltonian, couplings, bath_list, rho0, times,
                                observables, sec_cutoff)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)


@pytest.mark.parametrize("model_name, params, coupling, count", [
    ("collective_qubits", {"n": 2, "w0": 1.0}, "Sx", 2),
    ("tfim_chain", {"n": 3, "J": 1.0, "h": 0.0, "hz": 0.37}, "sz:0", 8),
    ("tfim_chain", {"n": 3, "J": 1.0, "h": 0.7, "hz": 0.37}, "sx:0", 1),
])
def test_steady_states_are_hermitian_stationary_and_independent(model_name, params, coupling,
                                                                 count):
    """exact.steady_states returns `count` linearly independent Hermitian matrices, each
    annihilated by the Liouvillian, with unit trace where the trace is not 0 (its docstring).
    Regression: with a degenerate steady space the SVD null vectors were arbitrary complex
    mixtures, not Hermitian (errors ~0.1). Tolerance 1e-12 relative to the Liouvillian scale."""
    model = models.build_model(model_name, params)
    g = davies.build_generator(model.hamiltonian, [model.operator(coupling)],
                               [baths.ohmic(0.05, 5.0, 1.0)])
    states = exact.steady_states(g)
    assert len(states) == count
    L = exact.liouvillian(g)
    scale = np.abs(L.data).max()
    for rho in states:
        np.testing.assert_allclose(rho, rho.conj().T, atol=1e-12)
        assert np.abs(L @ rho.ravel()).max() < 1e-12 * scale
        trace = np.trace(rho)
        assert abs(trace - 1) < 1e-12 or abs(trace) < 1e-12
    assert np.linalg.matrix_rank(np.array([rho.ravel() for rho in states]), tol=1e-8) == count
