"""The channel generator: every channel ``(bath, Bohr frequency)`` with its sparse jump operator.

- :mod:`.generator`: the :class:`~.generator.DaviesGenerator` and its build (physics).
- :mod:`.kernels`: the Numba trajectory kernel (pure and amplitude modes).
- :mod:`.unravel`: packing for the kernel, the chunk runner, averages.
- :mod:`.unravelling`: :class:`Channels`, the generator behind the common interface.
"""

from .unravelling import Channels

__all__ = ["Channels"]
