"""The per-trajectory records every trajectory kernel writes, and the jump log.

Both generators' tallies carry these arrays under these names (row ``i`` of a chunk's tally is
trajectory ``first + i``); the runners gather them into ``(ntraj, ...)`` arrays that travel
through checkpoints, MPI reductions and the result file unchanged. The fill value marks a row
no kernel has written (and, for ``first_jump_time``, a trajectory without a jump).
"""

from __future__ import annotations

import numpy as np

# name -> (one column per bath?, dtype, fill)
RECORD_FIELDS = {
    "heat": (True, np.float64, 0.0),             # energy given to each bath
    "n_jumps": (False, np.int64, 0),             # jumps with w != 0
    "emissions": (True, np.int64, 0),            # jumps with w > 0, per bath
    "absorptions": (True, np.int64, 0),          # jumps with w < 0, per bath
    "dephasings": (True, np.int64, 0),           # jumps with w = 0, per bath
    "first_jump_time": (False, np.float64, np.inf),  # the first jump with w != 0
    "initial_level": (False, np.int64, -1),      # level at t = 0 (-1: spread over several)
    "final_level": (False, np.int64, -1),        # level at t_final (-1: spread over several)
    "final_energy": (False, np.float64, np.nan),  # <H> at t_final
}


def new_records(count: int, n_baths: int) -> dict[str, np.ndarray]:
    """Records of ``count`` trajectories, filled with each field's fill value."""
    return {name: np.full((count, n_baths) if per_bath else count, fill, dtype=dtype)
            for name, (per_bath, dtype, fill) in RECORD_FIELDS.items()}


def new_log(capacity: int) -> dict[str, np.ndarray]:
    """A jump log of ``capacity`` entries (0: none kept): times, the generator's code of each
    jump, source and target levels, and the number of jumps seen."""
    return {"log_time": np.zeros(capacity), "log_code": np.zeros(capacity, dtype=np.int64),
            "log_levels": np.zeros((capacity, 2), dtype=np.int64),
            "log_count": np.zeros(1, dtype=np.int64)}


def trajectory_tables(jumps: dict[str, np.ndarray], initial_level: np.ndarray,
                      times: np.ndarray, n_baths: int, count: int) -> dict[str, np.ndarray]:
    """The level and the heat per bath of trajectories ``0 .. count-1`` at every output time,
    from their jump list (every jump, in time order per trajectory) and initial levels.

    The state at output time ``t`` is the one after every jump at times ``<= t`` (as the
    kernels count it), so ``trajectory_level[i, k]`` is the target level of the last such jump
    (-1: spread over several levels), and ``trajectory_heat[i, k, a]`` sums ``w`` over those
    jumps into bath ``a``."""
    level = np.empty((count, times.size), dtype=np.int64)
    heat = np.zeros((count, times.size, n_baths))
    owner = jumps["jump_trajectory"]
    for i in range(count):
        mine = owner == i
        jump_time, target = jumps["jump_time"][mine], jumps["jump_to"][mine]
        done = np.searchsorted(jump_time, times, side="right")   # jumps at times <= t_k
        level[i] = np.where(done > 0, target[np.maximum(done - 1, 0)] if target.size else -1,
                            initial_level[i])
        steps = np.zeros((jump_time.size + 1, n_baths))
        np.add.at(steps[1:], (np.arange(jump_time.size), jumps["jump_bath"][mine]),
                  jumps["jump_frequency"][mine])
        heat[i] = np.cumsum(steps, axis=0)[done]
    return {"trajectory_level": level, "trajectory_heat": heat}
