"""The shared core of the trajectory kernels, and the statistics every generator uses.

Numba pieces that both generators' kernels call (each generator keeps its own monomorphic
kernel; they share these functions, never a polymorphic kernel):

- :mod:`jumps.core.random`: xoshiro256** streams, one per ``(seed, trajectory)``;
- :mod:`jumps.core.alias`: Walker alias tables (Vose's construction);
- :mod:`jumps.core.chebyshev`: piecewise-Chebyshev tables (rates, Lamb shifts);
- :mod:`jumps.core.lanes`: the interleaved-lane hand-out of trajectories, the initial-state
  draw, and the exponential wait in one eigenstate;

and in plain Python :mod:`jumps.core.sums`: compensated running sums, sparse counts, and
means with standard errors. Nothing here imports the rest of the package.
"""
