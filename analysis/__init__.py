"""analysis: reads jumps result directories and reports (``python -m analysis DIR``).

- :mod:`analysis.load`: a result directory as a checked :class:`~analysis.load.Result`.
- :mod:`analysis.reference`: the generator rebuilt from the config, the exact solution, the
  steady state, the Liouvillian gap, the exact mean heat (the only module running physics).
- :mod:`analysis.averages`: distances to equilibrium, z-scores against the exact solution,
  error-bar honesty, relaxation time.
- :mod:`analysis.balance`: rates between levels, detailed balance, flux balance, Boltzmann test.
- :mod:`analysis.heat`: heat per trajectory and the energy balance.
- :mod:`analysis.report`, :mod:`analysis.text`, :mod:`analysis.plots`: report.json, text, PNGs.

Units: hbar = k_B = 1; a Bohr frequency ``w > 0`` is emission (the system gives ``w`` to the
bath). ``analysis`` imports ``jumps``; ``jumps`` never imports ``analysis``.
"""

from .load import Result, load_result
from .report import Analysis, analyse, write_report
from .text import render as format_text

__all__ = ["Analysis", "Result", "analyse", "format_text", "load_result", "write_report"]
