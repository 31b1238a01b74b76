"""Reading a result directory (``run.json`` + ``results.npz``) into a checked
:class:`jumps.result.Result`.

The reading and its checks are jumps' own (:func:`jumps.load`,
:func:`jumps.runtime.resultfile.read_checked`: shapes, dtypes, index ranges, NaN, missing keys,
``run.json``'s types), so the analysis and the Python API accept and refuse the same
directories. Every problem is a :class:`jumps.errors.ConfigError` naming the directory or the
file and the reason; the CLI turns it into one line and exit status 2.
"""

from __future__ import annotations

import numpy as np

from jumps.errors import ConfigError
from jumps.result import Result
from jumps.result import load as load_result

__all__ = ["Result", "check_same_run", "load_result"]


def check_same_run(result: Result, other: Result, field: str = "--exact") -> None:
    """Refuse a reference that is not the same system on the same time grid."""
    where = f"{field} {other.path}"
    if other.times.shape != result.times.shape or not np.allclose(other.times, result.times,
                                                                   rtol=1e-9, atol=1e-12):
        raise ConfigError(where, "its time grid differs from the analysed result's")
    scale = 1.0 + float(np.max(np.abs(result.energies)))
    if other.energies.shape != result.energies.shape or not np.allclose(
            other.energies, result.energies, rtol=0, atol=1e-8 * scale):
        raise ConfigError(where, "its spectrum differs from the analysed result's (another system)")
