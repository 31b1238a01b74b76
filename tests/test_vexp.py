"""The vectorising exponentials of jumps.core.vexp against numpy's (the C library's)."""

import numba
import numpy as np
import pytest

from jumps.core.vexp import EXP_MIN, exp_real, phase_factor


@numba.njit(cache=True)
def _exp_all(x, out):
    for i in range(x.size):
        out[i] = exp_real(x[i])


@numba.njit(cache=True, fastmath={"contract"})
def _phase_all(lam, t, out):
    for i in range(lam.size):
        out[i] = phase_factor(lam[i], t[i])


def test_exp_real_within_one_ulp_of_numpy():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(EXP_MIN, 709.0, 200_000), rng.uniform(-1.0, 1.0, 200_000),
                        [0.0, -0.0, 1e-300, -1e-300, 709.0, EXP_MIN, 0.5 * np.log(2.0),
                         -0.5 * np.log(2.0), -1.0, 1.0]])
    out = np.empty_like(x)
    _exp_all(x, out)
    ulps = np.abs(out - np.exp(x)) / np.spacing(np.exp(x))
    assert ulps.max() <= 1.0
    assert out[x == 0.0].tolist() == [1.0, 1.0]


def test_exp_real_is_zero_below_its_range():
    x = np.array([EXP_MIN - 1e-9, -745.0, -1e300, -np.inf])
    out = np.ones_like(x)
    _exp_all(x, out)
    assert out.tolist() == [0.0] * 4


def test_phase_factor_matches_the_complex_exponential():
    """exp(-i lambda t) to a few 1e-16 relative, for phases up to |Re(lambda) t| ~ 1e6 and
    decays down to 1e-250; exactly 1 at t = 0."""
    rng = np.random.default_rng(4)
    n = 400_000
    lam = rng.uniform(-20.0, 20.0, n) - 1j * rng.uniform(0.0, 2.0, n)
    t = np.concatenate([rng.uniform(0.0, 100.0, n // 2), 10.0 ** rng.uniform(-20.0, 4.7, n // 2)])
    out = np.empty(n, dtype=complex)
    _phase_all(lam, t, out)
    exact = np.exp(-1j * lam * t)
    kept = np.abs(exact) > 1e-250
    relative = np.abs(out - exact)[kept] / np.abs(exact)[kept]
    assert relative.max() < 1e-15
    # Quadrant boundaries and t = 0.
    lam1 = np.full(6, 1.0 + 0.0j)
    t1 = np.array([0.0, np.pi / 2, np.pi, 3 * np.pi / 2, 2 * np.pi, 1e5 * np.pi])
    out1 = np.empty(6, dtype=complex)
    _phase_all(lam1, t1, out1)
    assert out1[0] == 1.0
    assert np.all(np.abs(out1 - np.exp(-1j * t1)) <= 1e-15 * np.maximum(1.0, t1))


@pytest.mark.parametrize("scale", [1e3, 1e9, 1e14])
def test_phase_factor_reduction_holds_for_large_phases(scale):
    """The reduction against pi/2 in two doubles: phases up to |x| ~ 1e14 agree with the C
    library's (which reduces exactly) to 2e-16, though x itself carries ulp(x) ~ 0.016."""
    rng = np.random.default_rng(5)
    x = scale * rng.uniform(0.1, 1.0, 20_000)
    out = np.empty(x.size, dtype=complex)
    _phase_all(np.ones(x.size, dtype=complex), x, out)
    assert np.abs(out - np.exp(-1j * x)).max() < 4e-16


def test_exponentials_propagate_nan():
    x = np.array([np.nan])
    out = np.zeros(1)
    _exp_all(x, out)
    assert np.isnan(out[0])
    phase = np.zeros(2, dtype=complex)
    _phase_all(np.array([complex(np.nan, -1.0), complex(1.0, np.nan)]), np.ones(2), phase)
    assert np.isnan(phase[0].real) and np.isnan(phase[1].real)
