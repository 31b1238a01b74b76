"""Random streams: xoshiro256** seeded per trajectory by splitmix64 from ``(key, trajectory)``.

A trajectory's stream is a pure function of the run's key (from the user's seed) and the
trajectory's global index, so results do not depend on how trajectories are split over chunks,
lanes or ranks (docs/design.md, "Invariants").
"""

from __future__ import annotations

import numba
import numpy as np

_U53 = 1.0 / 9007199254740992.0  # 2^-53: a 53-bit integer to a double in [0, 1)


def seed_key(seed: int) -> np.ndarray:
    """Two uint64 words of the kernels' key, from ``np.random.SeedSequence(seed)``."""
    return np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64)


@numba.njit(cache=True, nogil=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@numba.njit(cache=True, nogil=True)
def _splitmix64(x):
    x = x + np.uint64(0x9E3779B97F4A7C15)
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x, z ^ (z >> np.uint64(31))


@numba.njit(cache=True, nogil=True)
def seed_trajectory(key, trajectory, state):
    """Fill ``state`` (4 uint64) with the xoshiro256** state of one trajectory.

    ``key`` is 2 uint64 derived from the user's seed; the state is a pure function of
    ``(key, trajectory)``.
    """
    x = key[0] ^ (np.uint64(trajectory) * np.uint64(0xD1B54A32D192ED03))
    x, first = _splitmix64(x)
    x = first ^ key[1]
    for i in range(4):
        x, state[i] = _splitmix64(x)


@numba.njit(cache=True, nogil=True)
def uniform(state):
    """A uniform double in [0, 1) from xoshiro256** (advances ``state``)."""
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return float(result >> np.uint64(11)) * _U53
