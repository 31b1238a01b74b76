"""Running sums over trajectories, and means with standard errors.

Every generator's runner keeps its sums here: float sums per chunk merged with Neumaier's
compensated summation (:class:`Accumulator`), integer counts exactly, and sparse counts as
sorted ``(keys, counts)`` pairs. Results then agree to rounding however trajectories were
split over chunks, ranks or resumed attempts (docs/design.md, "Invariants").
"""

from __future__ import annotations

import numba
import numpy as np

# Sparse counts (the rates generator's transitions): sorted unique keys and their counts.
SPARSE_KEYS = ("transition_keys", "transition_counts")


def merge_counts(keys_a, counts_a, keys_b, counts_b) -> tuple[np.ndarray, np.ndarray]:
    """Sparse counts ``(sorted unique keys, counts)``: the sum of two."""
    return sum_counts(np.concatenate([keys_a, keys_b]), np.concatenate([counts_a, counts_b]))


def sum_counts(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sorted unique keys, total count of each)`` of keys that may repeat (integer sums)."""
    keys, counts = np.asarray(keys, dtype=np.int64), np.asarray(counts, dtype=np.int64)
    unique, inverse = np.unique(keys, return_inverse=True)
    total = np.zeros(unique.size, dtype=np.int64)
    np.add.at(total, inverse, counts)
    return unique, total


def mean_stderr(total: np.ndarray, total_sq: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error from the sum and the sum of squares of ``n`` samples.

    ``sum x^2 - (sum x)^2 / n`` carries the rounding noise of the sums, up to about
    ``n * eps * sum x^2`` for ``n`` naive additions; a spread below ``8 n eps sum x^2`` cannot
    be told from zero and is returned as exactly zero (so a quantity that is the same in every
    trajectory, such as the initial state, has zero error however the sums were chunked). This
    only zeroes variances below ~1e-15 n of the mean square: far below any statistical error.
    """
    mean = total / n
    if n < 2:
        return mean, np.full_like(mean, np.inf)
    spread = total_sq - total * total / n
    floor = 8.0 * n * np.finfo(float).eps * np.abs(total_sq)
    variance = np.where(spread > floor, spread, 0.0) / (n - 1)
    return mean, np.sqrt(variance / n)


def compensated_add(total: np.ndarray, compensation: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Neumaier's step: returns ``total + value`` and adds its rounding error to
    ``compensation`` (in place); ``new + compensation`` is the sum to ~1 ulp. Complex arrays
    are compensated per real and imaginary part.

    With contiguous ``total`` and ``compensation`` of one float dtype the sum is made in place
    in one jitted pass (a (101, 256, 256) complex density-matrix sum took 0.5 s through
    numpy's seven temporaries; merging it per chunk cost more than the chunk's trajectories);
    ``total`` itself is then returned (numpy's way otherwise)."""
    if (total.dtype in (np.float64, np.complex128) and compensation.dtype == total.dtype
            and np.shape(value) == total.shape and total.flags.c_contiguous
            and compensation.flags.c_contiguous):
        flat = np.ascontiguousarray(value, dtype=total.dtype).reshape(-1).view(np.float64)
        _neumaier(total.reshape(-1).view(np.float64), compensation.reshape(-1).view(np.float64), flat)
        return total
    new = total + value
    compensation += np.where(np.abs(total) >= np.abs(value), (total - new) + value,
                             (value - new) + total)
    return new


@numba.njit(cache=True, nogil=True)
def _neumaier(total, compensation, value):
    for i in range(total.size):
        t, v = total[i], value[i]
        s = t + v
        if abs(t) >= abs(v):
            compensation[i] += (t - s) + v
        else:
            compensation[i] += (v - s) + t
        total[i] = s


class Accumulator:
    """Running sums of chunk tallies, merged with Neumaier's compensated summation.

    A chunk's own sums depend only on its trajectories (fixed by the plan), so with compensated
    merging the totals agree to rounding (~1e-16 relative) however chunks are spread over ranks
    or resumed runs, instead of an error that grows with the number of trajectories.
    """

    def __init__(self):
        self.total: dict[str, np.ndarray] = {}
        self.compensation: dict[str, np.ndarray] = {}

    def add(self, sums: dict[str, np.ndarray]) -> None:
        if "transition_keys" in sums:
            keys, counts = sums["transition_keys"], sums["transition_counts"]
            if "transition_keys" in self.total:
                keys, counts = merge_counts(self.total["transition_keys"],
                                            self.total["transition_counts"], keys, counts)
            self.total["transition_keys"], self.total["transition_counts"] = keys, counts
            sums = {k: v for k, v in sums.items() if k not in SPARSE_KEYS}
        for name, value in sums.items():
            if name not in self.total:
                self.total[name] = np.array(value, copy=True)
                self.compensation[name] = np.zeros_like(self.total[name])
                continue
            total = self.total[name]
            if not np.issubdtype(total.dtype, np.inexact):
                total += value
                continue
            self.total[name] = compensated_add(total, self.compensation[name], value)

    def sums(self, skip: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """The compensated sums (those named in ``skip`` left out)."""
        return {name: self.total[name] + self.compensation.get(name, 0) for name in self.total
                if name not in skip}
