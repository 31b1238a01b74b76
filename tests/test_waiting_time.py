"""The waiting-time root search (``evolution.waiting_time``) inside a bracket of output times.

The norm of a state on two levels with decay rates K1, K2 is ``w1 exp(-K1 t) + w2 exp(-K2 t)``:
the root of ``norm = r`` is checked against scipy's ``brentq`` at 1e-13, through the
non-degenerate path (two 1x1 levels: real exponentials) and the degenerate one (one 2x2 level:
evolve and block_norm), from exact bracket-end norms and from ones off by rounding (the
caller's norms come from another computation of the same state).
"""

import numpy as np
import pytest
from scipy.optimize import brentq

from jumps.generators.channels.evolution import waiting_time

K = np.array([0.3, 1.7])
WEIGHTS = np.array([0.35, 0.65])
ENERGY = 0.8


def norm(t):
    return float(np.sum(WEIGHTS * np.exp(-K * t)))


def arrays(degenerate: bool):
    """(level_ptr, block_ptr, lam, right, decay_blocks, levels, n_levels, coeff)."""
    lam = ENERGY - 0.5j * K
    coeff = np.sqrt(WEIGHTS) * np.exp(1j * np.array([0.4, -1.1]))
    if degenerate:  # one level of two states; R = 1, K diagonal
        return (np.array([0, 2]), np.array([0]), lam, np.eye(2, dtype=complex).ravel(),
                np.diag(K).astype(complex).ravel(), np.array([0, 0]), 1, coeff)
    return (np.array([0, 1, 2]), np.array([0, 1]), lam, np.ones(2, dtype=complex),
            K.astype(complex), np.array([0, 1]), 2, coeff)


@pytest.mark.parametrize("degenerate", [False, True])
@pytest.mark.parametrize("target", [0.9, 0.5, 0.2013, 0.05])
@pytest.mark.parametrize("ends", ["exact", "rounded", "none"])
def test_the_root_in_the_bracket_matches_brentq(degenerate, target, ends):
    root = brentq(lambda t: norm(t) - target, 0.0, 100.0, xtol=1e-15, rtol=1e-15)
    dt = 0.5
    lo = np.floor(root / dt) * dt
    hi = lo + dt
    norm_lo, norm_hi = norm(lo), norm(hi)
    if ends == "rounded":  # the caller's norms one rounding off, across the target
        norm_lo, norm_hi = target * (1 - 1e-16), target * (1 - 2e-16)
    elif ends == "none":  # no usable ends: the search starts at the bracket's left end
        norm_lo, norm_hi = 1.0, 0.0
    *args, = arrays(degenerate)
    work = np.zeros(2, dtype=complex)
    scratch = np.zeros((3, 2))
    tau = waiting_time(*args, target, lo, hi, norm_lo, norm_hi, work, scratch)
    assert lo <= tau <= hi
    assert tau == pytest.approx(root, rel=1e-13, abs=0)


def test_a_root_at_the_bracket_end():
    """The target is the norm at the right end exactly (a Newton step lands on the end)."""
    lo, hi = 1.0, 1.5
    target = norm(hi)
    args = arrays(False)
    tau = waiting_time(*args, target, lo, hi, norm(lo), target, np.zeros(2, dtype=complex),
                       np.zeros((3, 2)))
    assert tau == pytest.approx(hi, rel=1e-13, abs=0)
