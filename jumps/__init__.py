"""jumps: quantum-jump trajectories of the Davies master equation.

Units: hbar = k_B = 1. A Bohr frequency ``w > 0`` is emission into the bath (the system loses
``w``), ``w < 0`` absorption, ``w = 0`` pure dephasing. See DESIGN.md / README.md.
"""

__version__ = "0.1.0"
