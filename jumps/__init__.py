"""jumps: quantum-jump trajectories of the Davies master equation.

Units: hbar = k_B = 1. A Bohr frequency ``w > 0`` is emission into the bath (the system loses
``w``), ``w < 0`` absorption, ``w = 0`` pure dephasing. See README.md.

Quick use::

    gen = jumps.davies_generator(H, couplings=[A], baths=[jumps.ohmic(0.02, 5.0, beta=1.0)])
    result = jumps.unravel_generator(gen, psi0, times, trajectories=1000, observables={"sz": sz})
"""

__version__ = "0.1.0"

from .api import (
           TrajectoryResult,
           davies_generator,
           rates_generator,
           solve_exact,
           unravel_generator,
)
from .baths import drude_lorentz, from_callable, from_rates, ohmic, tabulated
from .errors import ConfigError

__all__ = ["ConfigError", "TrajectoryResult", "davies_generator", "drude_lorentz",
           "from_callable", "from_rates", "ohmic", "rates_generator", "solve_exact", "tabulated",
           "unravel_generator"]
