"""The rates generator: a non-degenerate system's Davies generator as rates between eigenstates.

- :mod:`.generator`: the :class:`~.generator.RateGenerator` and its blocked build (physics).
- :mod:`.build_kernels`: the build's Numba kernels.
- :mod:`.kernels`: the Numba trajectory kernel (alias tables, two-level bath split).
- :mod:`.unravel`: packing for the kernel, the chunk runner, sparse counts, averages.
- :mod:`.unravelling`: :class:`Rates`, the generator behind the common interface.
"""

from .unravelling import Rates

__all__ = ["Rates"]
