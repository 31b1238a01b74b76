"""The Numba kernels on their own: the random-number generator, exact waiting times, energy
bookkeeping of single trajectories, and the jitted code against plain Python.

Oracles: the published xoshiro256** / splitmix64 reference algorithms (re-implemented here in
plain Python integers), the exponential law of a Markov jump process, the no-jump norm
``||psi(t)||^2`` in closed form, energy conservation between system and baths, and the same
kernels executed by the Python interpreter (``NUMBA_DISABLE_JIT=1``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import helpers
import numpy as np
import pytest
from scipy import stats

from jumps.core import random as streams
from jumps.core.lanes import segmented_cumsum
from jumps.core.random import seed_key
from jumps.generators.channels import generator as davies
from jumps.physics import baths, models

REPO = Path(__file__).resolve().parents[1]
MASK = (1 << 64) - 1
UP, DOWN = np.array([1.0, 0.0]), np.array([0.0, 1.0])
SINGLET = (np.kron(UP, DOWN) - np.kron(DOWN, UP)) / np.sqrt(2)
TRIPLET_ZERO = (np.kron(UP, DOWN) + np.kron(DOWN, UP)) / np.sqrt(2)


# -- plain-Python reference RNG ------------------------------------------------------------------

def ref_splitmix64(x: int) -> tuple[int, int]:
    """splitmix64 (Steele, Lea & Flood 2014; Vigna's reference C): (new state, output)."""
    x = (x + 0x9E3779B97F4A7C15) & MASK
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return x, z ^ (z >> 31)


def ref_rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & MASK


def ref_xoshiro_next(s: list[int]) -> int:
    """xoshiro256** 1.0 (Blackman & Vigna 2018, reference C): advances ``s``, returns 64 bits."""
    result = (ref_rotl((s[1] * 5) & MASK, 7) * 9) & MASK
    t = (s[1] << 17) & MASK
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = ref_rotl(s[3], 45)
    return result


def ref_seed_trajectory(key: tuple[int, int], trajectory: int) -> list[int]:
    """The per-trajectory seeding of ``streams.seed_trajectory``, in plain integers."""
    x = key[0] ^ ((trajectory * 0xD1B54A32D192ED03) & MASK)
    x, first = ref_splitmix64(x)
    x = first ^ key[1]
    state = []
    for _ in range(4):
        x, value = ref_splitmix64(x)
        state.append(value)
    return state


def ref_uniform(s: list[int]) -> float:
    """The top 53 bits of the next output, times 2^-53 (exact in binary64)."""
    return (ref_xoshiro_next(s) >> 11) * 2.0**-53


def test_reference_rng_matches_published_vectors():
    """Oracle: the published outputs of the reference C code. splitmix64 from state 0 gives
    0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f; xoshiro256** from state
    {1, 2, 3, 4} gives 11520, 0, 1509978240, 1215971899390074240. Exact integers."""
    x, outputs = 0, []
    for _ in range(3):
        x, value = ref_splitmix64(x)
        outputs.append(value)
    assert outputs == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    s = [1, 2, 3, 4]
    assert [ref_xoshiro_next(s) for _ in range(4)] == [11520, 0, 1509978240, 1215971899390074240]


def test_jitted_splitmix64_matches_reference():
    """Oracle: the plain-Python splitmix64. Bit for bit, including the carried state."""
    x = 0x0123456789ABCDEF
    for _ in range(50):
        jit_state, jit_value = streams._splitmix64(np.uint64(x))
        x_ref, value = ref_splitmix64(x)
        assert (int(jit_state), int(jit_value)) == (x_ref, value)
        x = value


@pytest.mark.parametrize("seed", [0, 7, 2**40 + 3])
def test_jitted_stream_matches_reference_bit_for_bit(seed):
    """Oracle: the plain-Python xoshiro256** seeded by the plain-Python per-trajectory seeding.
    The jitted state after seeding and after every draw, and every uniform double, must be
    identical (doubles compared with ==: the conversion is exact)."""
    key = seed_key(seed)
    for trajectory in (0, 1, 2, 12345, 2**31 + 17):
        state = np.empty(4, dtype=np.uint64)
        streams.seed_trajectory(key, trajectory, state)
        ref = ref_seed_trajectory((int(key[0]), int(key[1])), trajectory)
        assert [int(v) for v in state] == ref
        for _ in range(200):
            assert streams.uniform(state) == ref_uniform(ref)
        assert [int(v) for v in state] == ref


def test_seed_trajectory_is_a_pure_function_of_key_and_index():
    """A trajectory's stream depends only on (key, index): the same pair gives the same state
    whatever was seeded before; changing either gives a different state. Exact comparisons."""
    key = seed_key(11)
    first = np.empty(4, dtype=np.uint64)
    streams.seed_trajectory(key, 5, first)
    scratch = np.empty(4, dtype=np.uint64)
    for other in (0, 6, 99):
        streams.seed_trajectory(key, other, scratch)
        streams.uniform(scratch)
    again = np.empty(4, dtype=np.uint64)
    streams.seed_trajectory(key.copy(), 5, again)
    assert np.array_equal(first, again)
    neighbour = np.empty(4, dtype=np.uint64)
    streams.seed_trajectory(key, 6, neighbour)
    assert not np.array_equal(first, neighbour)
    streams.seed_trajectory(seed_key(12), 5, neighbour)
    assert not np.array_equal(first, neighbour)
    assert np.array_equal(seed_key(11), key)


def test_uniform_moments():
    """Oracle: U[0, 1) has mean 1/2 and variance 1/12; the sample variance of n draws has
    standard error sqrt((mu4 - sigma^4) / n) with mu4 = 1/80. Tolerance 4 standard errors
    (fixed seed); all draws in [0, 1)."""
    state = np.empty(4, dtype=np.uint64)
    streams.seed_trajectory(seed_key(3), 0, state)
    n = 200_000
    draws = np.array([streams.uniform(state) for _ in range(n)])
    assert draws.min() >= 0.0 and draws.max() < 1.0
    assert abs(draws.mean() - 0.5) < 4 * np.sqrt(1 / 12 / n)
    assert abs(draws.var(ddof=1) - 1 / 12) < 4 * np.sqrt((1 / 80 - 1 / 144) / n)


def test_first_draws_of_consecutive_trajectories_are_independent_uniforms():
    """Streams of neighbouring trajectory indices must not be correlated (they are seeded from
    consecutive integers). Oracle: U[0, 1) for the first draw of 20000 consecutive trajectories
    (Kolmogorov-Smirnov, p > 1e-3) and zero lag-1 correlation between neighbours (4 standard
    errors, 1/sqrt(n))."""
    key = seed_key(5)
    n = 20_000
    state = np.empty(4, dtype=np.uint64)
    first = np.empty(n)
    for i in range(n):
        streams.seed_trajectory(key, i, state)
        first[i] = streams.uniform(state)
    assert stats.kstest(first, "uniform").pvalue > 1e-3
    assert abs(np.corrcoef(first[:-1], first[1:])[0, 1]) < 4 / np.sqrt(n)


def test_segmented_cumsum():
    """Cumulative sums restart at each segment: compared with numpy.cumsum per segment."""
    values = np.array([1.0, 2.0, 3.0, 10.0, 1e-20, 5.0])
    ptr = np.array([0, 3, 3, 5, 6])
    expected = np.concatenate([np.cumsum(values[0:3]), np.cumsum(values[3:5]), values[5:]])
    assert np.array_equal(segmented_cumsum(values, ptr), expected)


# -- waiting times -------------------------------------------------------------------------------

def _qubit_generator(beta: float, eta: float = 0.05):
    qubit = models.two_level({"w0": 1.0})
    bath = baths.ohmic(eta, 5.0, beta)
    return davies.build_generator(qubit.hamiltonian, [qubit.operators["sx"]], [bath]), bath


def _pair_generator(beta: float):
    pair = models.collective_qubits({"n": 2})
    bath = baths.ohmic(0.05, 5.0, beta)
    return davies.build_generator(pair.hamiltonian, [pair.operator("Sx")], [bath]), bath


def _assert_one_exponential_jump(g, psi0, level: int, rate: float, seed: int) -> None:
    """2000 trajectories from ``psi0`` up to ``t = 40 / rate`` (censoring probability
    exp(-40)): each jumps exactly once, after a time in ``level`` that is exponential with
    ``rate``: Kolmogorov-Smirnov p > 1e-3 and the mean within 4 standard errors
    (1 / (rate sqrt(N)))."""
    ntraj = 2000
    times = np.array([0.0, 40.0 / rate])
    records = helpers.first_jump_records(g, psi0, times, seed=seed, ntraj=ntraj)
    assert np.all(records["n_jumps"] == 1)
    waits = records["occupation_time"][:, level]
    assert stats.kstest(waits, "expon", args=(0, 1 / rate)).pvalue > 1e-3
    assert abs(waits.mean() - 1 / rate) < 4 / (rate * np.sqrt(ntraj))


def test_first_jump_time_from_excited_state_is_exponential():
    """A qubit in its excited eigenstate (pure-mode fast path) coupled through sx to a T = 0
    Ohmic bath: the first jump (emission) comes after an exponential time of rate
    gamma(w0) = bath.rates(w0), and the ground state then never jumps. Oracle: that exponential
    law; the occupation time of the excited level in a one-trajectory run is exactly the first
    jump time. Tolerances: Kolmogorov-Smirnov p > 1e-3 and the mean within 4 standard errors
    (1 / (gamma sqrt(N))), fixed seed."""
    g, bath = _qubit_generator(np.inf)
    rate = float(bath.rates(np.array([1.0]))[0])
    excited = g.level_of[np.argmax(g.energies)]
    _assert_one_exponential_jump(g, UP, excited, rate, seed=101)


def test_first_jump_time_inside_degenerate_level_is_exponential():
    """Two qubits coupled collectively through Sx to a T = 0 bath, started in the triplet
    |T0> = (|ud> + |du>)/sqrt(2), which lies in the degenerate E = 0 level with the singlet:
    amplitude mode, waiting time from the Newton/bisection root of ||psi(t)||^2 = r. Oracle:
    the decay operator on that level is K = gamma(w0) |<dd|Sx|T0>|^2 |T0><T0| = (gamma/2)
    |T0><T0|, so the first jump is exponential with rate gamma(w0)/2 and lands in |dd>, which
    never jumps. Tolerances: Kolmogorov-Smirnov p > 1e-3, mean within 4 standard errors."""
    g, bath = _pair_generator(np.inf)
    rate = 0.5 * float(bath.rates(np.array([1.0]))[0])
    level = int(np.flatnonzero(g.level_sizes == 2)[0])
    _assert_one_exponential_jump(g, TRIPLET_ZERO, level, rate, seed=102)


def test_first_jump_time_of_partly_dark_state():
    """Same pair, started in 0.6 |S> + 0.8 |T0>: the singlet never decays, so the no-jump norm
    is 0.36 + 0.64 exp(-gamma t / 2) and a trajectory jumps before t_f with probability
    0.64 (1 - exp(-gamma t_f / 2)); given that it jumps, the time follows the truncated
    exponential. Oracle: those closed forms. Tolerances: the jump fraction within 4 binomial
    standard errors; Kolmogorov-Smirnov p > 1e-3 on the conditional times."""
    g, bath = _pair_generator(np.inf)
    rate = 0.5 * float(bath.rates(np.array([1.0]))[0])
    level = int(np.flatnonzero(g.level_sizes == 2)[0])
    ntraj = 3000
    t_final = 3.0 / rate
    records = helpers.first_jump_records(g, 0.6 * SINGLET + 0.8 * TRIPLET_ZERO,
                                         np.array([0.0, t_final]), seed=103, ntraj=ntraj)
    jumped = records["n_jumps"] > 0
    assert np.all(records["n_jumps"] <= 1)
    p = 0.64 * (1 - np.exp(-rate * t_final))
    assert abs(jumped.mean() - p) < 4 * np.sqrt(p * (1 - p) / ntraj)
    waits = records["occupation_time"][jumped, level]
    np.testing.assert_allclose(records["occupation_time"][~jumped, level], t_final, rtol=1e-12)
    truncated = stats.truncexpon(b=rate * t_final, scale=1 / rate)
    assert stats.kstest(waits, truncated.cdf).pvalue > 1e-3


@pytest.mark.parametrize("psi0", [UP, np.array([0.6, 0.8])], ids=["excited", "superposition"])
def test_no_jump_probability_at_finite_temperature(psi0):
    """A qubit coupled through sx to an Ohmic bath at beta = 1: the probability of no jump
    before tau is the no-jump norm |a_e|^2 exp(-gamma(w0) tau) + |a_g|^2 exp(-gamma(-w0) tau),
    with gamma(-w0) = exp(-beta w0) gamma(w0) (KMS). The excited state takes the pure-mode
    path, the superposition the amplitude path (Newton on two decaying exponentials). Oracle:
    that closed form. Tolerance: 4 binomial standard errors, fixed seed."""
    g, bath = _qubit_generator(1.0)
    gamma_down, gamma_up = bath.rates(np.array([1.0, -1.0]))
    tau = 1.0 / gamma_down
    ntraj = 4000
    run = helpers.unravel_in_process(g, psi0, np.array([0.0, tau]), {}, ntraj, seed=104,
                                     density="none")
    a_excited, a_ground = abs(psi0[0]) ** 2, abs(psi0[1]) ** 2
    survival = a_excited * np.exp(-gamma_down * tau) + a_ground * np.exp(-gamma_up * tau)
    observed = np.mean(run.tally.n_jumps == 0)
    assert abs(observed - survival) < 4 * np.sqrt(survival * (1 - survival) / ntraj)


@pytest.mark.parametrize("case", ["pure", "degenerate", "partly_dark"])
def test_first_waiting_time_solves_the_norm_equation(case):
    """The first waiting time solves ||psi_nojump(t)||^2 = 1 - u, with u the first uniform draw
    of the trajectory's stream (the convention of both the pure-mode formula -log(1-u)/rate
    and the amplitude-mode root finder). Oracle: the closed-form no-jump norm inverted
    analytically, with u from the plain-Python reference RNG. Tolerance 1e-9 relative: the
    root finder stops at 1e-14 relative steps; the norm is smooth and monotone."""
    if case == "pure":
        g, bath = _qubit_generator(np.inf)
        rate = float(bath.rates(np.array([1.0]))[0])
        psi0, level = UP, g.level_of[np.argmax(g.energies)]
        dark, bright = 0.0, 1.0
    else:
        g, bath = _pair_generator(np.inf)
        rate = 0.5 * float(bath.rates(np.array([1.0]))[0])
        level = int(np.flatnonzero(g.level_sizes == 2)[0])
        psi0 = TRIPLET_ZERO if case == "degenerate" else 0.6 * SINGLET + 0.8 * TRIPLET_ZERO
        dark, bright = (0.0, 1.0) if case == "degenerate" else (0.36, 0.64)
    t_final = 50.0 / rate
    seed, ntraj = 105, 200
    records = helpers.first_jump_records(g, psi0, np.array([0.0, t_final]), seed, ntraj)
    key = seed_key(seed)
    checked = 0
    for i in range(ntraj):
        u = ref_uniform(ref_seed_trajectory((int(key[0]), int(key[1])), i))
        target = 1.0 - u
        if target <= dark:
            assert records["n_jumps"][i] == 0
            continue
        expected = -np.log((target - dark) / bright) / rate
        assert records["occupation_time"][i, level] == pytest.approx(expected, rel=1e-9)
        checked += 1
    assert checked > ntraj // 2


# -- energy bookkeeping --------------------------------------------------------------------------

def _energy_cases():
    hot, cold = baths.ohmic(0.05, 5.0, 0.5), baths.ohmic(0.05, 5.0, 2.0)
    cases = {}
    for hz in (0.0, 0.3):
        chain = models.tfim_chain({"n": 4, "h": 1.1, "hz": hz})
        g = davies.build_generator(chain.hamiltonian,
                                   [chain.operators[f"sx:{j}"] for j in range(4)],
                                   [hot, cold, hot, cold])
        cases[f"tfim4_hz{hz}"] = (g, g.eigenvectors[:, -1], 30.0)
    oscillator = models.harmonic_oscillator({"levels": 10})
    g = davies.build_generator(oscillator.hamiltonian, [oscillator.operator("x"), oscillator.operator("n")],
                               [hot, cold])
    cases["oscillator_n5"] = (g, g.eigenvectors[:, 5], 30.0)
    pair = models.collective_qubits({"n": 2})
    g = davies.build_generator(pair.hamiltonian, [pair.operator("Sx"), pair.operator("sx:0")],
                               [hot, cold])
    cases["pair_up_up"] = (g, np.kron(UP, UP).astype(complex), 30.0)
    return cases


@pytest.mark.parametrize("name", list(_energy_cases()))
def test_energy_change_equals_minus_total_heat(name):
    """Energy bookkeeping per trajectory, started in an energy eigenstate: every jump moves the
    system between eigenspaces and hands the Bohr frequency to one bath, so
    E_final - E_initial = -sum_a Q_a. Cases: a 4-spin TFIM chain (hz = 0: degenerate Bohr
    frequencies; hz = 0.3) with sites on a hot and a cold bath (pure-mode path), an oscillator
    (equally spaced) with two baths, and two qubits whose |dd>, |uu> states jump into the
    degenerate {S, T0} level (amplitude mode inside one level). The final energy is read from a
    one-trajectory run: its level count, or its populations, at the last time. Oracle: energy
    conservation. Tolerance: n_jumps * degeneracy_tol (channel frequencies are cluster
    midpoints of gaps equal within that tolerance) plus rounding."""
    g, psi0, t_final = _energy_cases()[name]
    records = helpers.first_jump_records(g, psi0, np.linspace(0.0, t_final, 3), seed=106,
                                         ntraj=150)
    weights = records["last_populations"]
    counts = records["last_level_counts"]
    assert np.allclose(counts.sum(axis=1) + weights.sum(axis=1), 1.0, atol=1e-12)
    # The final state lies inside a single level, so its energy is that level's energy.
    levels_held = (counts > 0) | (np.add.reduceat(weights, g.level_ptr[:-1], axis=1) > 1e-12)
    assert np.all(levels_held.sum(axis=1) == 1)
    final_energy = counts @ g.level_energies + weights @ g.energies
    initial_energy = np.abs(g.eigenvectors.conj().T @ psi0) ** 2 @ g.energies
    total_heat = records["heat"].sum(axis=1)
    n_jumps = records["n_jumps"]
    assert n_jumps.mean() > 5, "the case must exercise many jumps"
    scale = 1.0 + np.abs(g.energies).max()
    tolerance = n_jumps * (g.degeneracy_tol + 1e-13 * scale) + 1e-12 * scale
    assert np.all(np.abs(final_energy - initial_energy + total_heat) <= tolerance)


# -- the kernels as plain Python -----------------------------------------------------------------

def test_kernels_agree_with_plain_python(tmp_path):
    """Oracle: the same kernels run by the Python interpreter (NUMBA_DISABLE_JIT=1, in a
    subprocess) on tiny cases through every path: pure mode, amplitude mode across levels,
    a degenerate level, Gibbs sampling, full and diagonal density matrices. Integer tallies
    (jump counts, transitions, level counts, per-trajectory jumps) must be identical; floating
    sums agree to 1e-12 (numpy's and LLVM's exp/log may differ in the last bit)."""
    path = tmp_path / "plain.npz"
    environment = {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONPATH": str(REPO)}
    completed = subprocess.run(
        [sys.executable, "-W", "ignore::RuntimeWarning", str(REPO / "tests" / "helpers.py"), str(path)],
        env=environment, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr
    jitted = helpers.tiny_case_arrays()
    with np.load(path) as data:
        plain = {k: data[k] for k in data.files}
    assert set(plain) == set(jitted)
    for name, value in jitted.items():
        if np.issubdtype(value.dtype, np.integer):
            assert np.array_equal(plain[name], value), name
        else:
            np.testing.assert_allclose(plain[name], value, rtol=1e-12, atol=1e-12, err_msg=name)
    assert sum(int(v) for k, v in jitted.items() if k.endswith("/jumps")) > 50
