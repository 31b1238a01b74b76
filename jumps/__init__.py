"""jumps: quantum-jump trajectories of the Davies master equation.

Units: hbar = k_B = 1. A Bohr frequency ``w > 0`` is emission into the bath (the system loses
``w``), ``w < 0`` absorption, ``w = 0`` pure dephasing. See README.md and docs/design.md.

Quick use (QuTiP-shaped: README, "Coming from QuTiP")::

    result = jumps.jumpsolve(H, psi0, tlist, a_ops=[(A, jumps.ohmic(0.02, 5.0, beta=1.0))],
                             e_ops=[sz], ntraj=1000)
    result.expect[0], result.stderr[0], result.final_state

or generator-level::

    gen = jumps.davies_generator(H, couplings=[A], baths=[jumps.ohmic(0.02, 5.0, beta=1.0)])
    result = jumps.unravel_generator(gen, psi0, times, trajectories=1000, observables={"sz": sz})
"""

__version__ = "0.1.0"

import os as _os

# Numba's OpenMP threads otherwise spin for a while after each parallel loop, and on a small
# machine they starve the BLAS threads of the next matrix product (and vice versa): a build that
# alternates the two ran a 65k-element loop in 3.5 ms instead of 0.05 ms. Sleeping threads cost
# ~50 us to wake. Set before numba's OpenMP runtime starts; a user's own value wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Before any kernel is decorated: cached kernels are invalidated by a change to any module of
# the package, not only their own (jumps/kernel_cache.py).
from .kernel_cache import install as _install_kernel_cache

_install_kernel_cache()

from .api import (
    SecularWarning,
    WeakCouplingWarning,
    davies_generator,
    exact_statistics,
    rates_generator,
    solve_exact,
    unravel_generator,
)
from .errors import ConfigError
from .physics.baths import drude_lorentz, from_callable, from_rates, ohmic, tabulated
from .result import Result, load
from .solvers import exactsolve, jumpsolve

__all__ = ["ConfigError", "Result", "SecularWarning", "WeakCouplingWarning", "davies_generator",
           "drude_lorentz", "exact_statistics", "exactsolve", "from_callable", "from_rates",
           "jumpsolve", "load", "ohmic", "rates_generator", "solve_exact", "tabulated",
           "unravel_generator"]
