"""Reading a result directory (``run.json`` + ``results.npz``) into a checked
:class:`jumps.result.Result`.

Every problem with the input is a :class:`jumps.errors.ConfigError` naming the directory or the
file and the reason; the CLI turns it into one line and exit status 2.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from jumps.errors import ConfigError
from jumps.result import Result
from jumps.runtime.io import META_FILE, RESULTS_FILE

# Keys every result has (trajectories and exact).
COMMON_KEYS = ("times", "energies", "populations", "channel_bath", "channel_frequency",
               "channel_rate")
# Keys only a trajectory result has.
TRAJECTORY_KEYS = ("populations_stderr", "jump_counts", "transition_from", "transition_to",
                   "transition_count", "occupation_time", "heat", "n_jumps")
METHODS = ("trajectories", "exact")


def load_result(path: str | Path) -> Result:
    """Read and check a result directory written by ``python -m jumps run`` or ``exact``.

    Raises
    ------
    ConfigError
        The directory is missing, is not a result, or its files are unreadable or incomplete.
    """
    path = Path(path)
    where = str(path)
    if not path.exists():
        raise ConfigError(where, "no such directory")
    if not path.is_dir():
        raise ConfigError(where, "not a directory (give a result directory of python -m jumps)")
    meta_file, array_file = path / META_FILE, path / RESULTS_FILE
    if not meta_file.is_file() or not array_file.is_file():
        missing = META_FILE if not meta_file.is_file() else RESULTS_FILE
        raise ConfigError(where, f"not a jumps result directory (no {missing})")
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(str(meta_file), f"unreadable JSON: {error}") from None
    if not isinstance(meta, dict) or meta.get("method") not in METHODS:
        raise ConfigError(str(meta_file), f"'method' must be one of {', '.join(METHODS)}")
    try:
        with np.load(array_file, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise ConfigError(str(array_file), f"unreadable: {error}") from None
    missing = [k for k in COMMON_KEYS if k not in arrays]
    if missing:
        raise ConfigError(str(array_file), f"missing arrays: {', '.join(missing)}")
    derived = _derive_missing(arrays, meta)
    result = Result(path=path, arrays=arrays, meta=meta, derived=derived)
    _check(result, array_file)
    return result


def _derive_missing(arrays: dict, meta: dict) -> tuple[str, ...]:
    """Fill arrays a result may lack: levels from the spectrum, unknown bath temperatures."""
    derived = []
    if "level_ptr" not in arrays:
        # Members of a degenerate level carry the level's energy exactly (jumps.generators.channels.generator).
        energies = arrays["energies"]
        breaks = np.flatnonzero(np.diff(energies) != 0) + 1
        arrays["level_ptr"] = np.concatenate([[0], breaks, [energies.size]]).astype(np.int64)
        derived.append("level_ptr")
    if "level_energies" not in arrays:
        arrays["level_energies"] = arrays["energies"][arrays["level_ptr"][:-1]]
        derived.append("level_energies")
    if "bath_beta" not in arrays:
        betas = meta.get("bath_beta")
        if betas is None:
            n_baths = (arrays["heat"].shape[1] if "heat" in arrays
                       else int(arrays["channel_bath"].max()) + 1)
            betas = [np.nan] * n_baths
        arrays["bath_beta"] = np.array([np.nan if b is None else b for b in betas], dtype=float)
        derived.append("bath_beta")
    return tuple(derived)


def _check(result: Result, array_file: Path) -> None:
    missing = [k for k in TRAJECTORY_KEYS if result.is_trajectories and k not in result.arrays]
    if missing:
        raise ConfigError(str(array_file), f"missing arrays: {', '.join(missing)}")
    T, d = result.times.size, result.energies.size
    if result["populations"].shape != (T, d):
        raise ConfigError(str(array_file), f"populations has shape {result['populations'].shape}, "
                                           f"expected {(T, d)}")
    if result.level_ptr[0] != 0 or result.level_ptr[-1] != d or np.any(result.level_sizes < 1):
        raise ConfigError(str(array_file), "level_ptr does not partition the eigen-indices")
    if result.is_trajectories and result.ntraj < 1:
        raise ConfigError(str(array_file), "no trajectories in the result")


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
