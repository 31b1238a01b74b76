"""Reading a result directory (``run.json`` + ``results.npz``) into a checked :class:`Result`.

Every problem with the input is a :class:`jumps.errors.ConfigError` naming the directory or the
file and the reason; the CLI turns it into one line and exit status 2.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jumps.errors import ConfigError
from jumps.io import META_FILE, RESULTS_FILE

# Keys every result has (trajectories and exact).
COMMON_KEYS = ("times", "energies", "populations", "channel_bath", "channel_frequency",
               "channel_rate")
# Keys only a trajectory result has.
TRAJECTORY_KEYS = ("populations_stderr", "jump_counts", "transition_from", "transition_to",
                   "transition_count", "occupation_time", "heat", "n_jumps")
METHODS = ("trajectories", "exact")


@dataclass(frozen=True)
class Result:
    """One result directory, as arrays and metadata.

    Attributes
    ----------
    path : Path
        The directory.
    arrays : dict of str to ndarray
        ``results.npz`` (see DESIGN.md section 5 and ``jumps.run``).
    meta : dict
        ``run.json``.
    derived : tuple of str
        Arrays the file lacked and that were derived here (results saved by the Python API
        carry no ``level_ptr``, ``level_energies`` or ``bath_beta``).
    """

    path: Path
    arrays: dict
    meta: dict
    derived: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def has(self, key: str) -> bool:
        return key in self.arrays

    @property
    def method(self) -> str:
        return self.meta["method"]

    @property
    def is_trajectories(self) -> bool:
        return self.method == "trajectories"

    @property
    def times(self) -> np.ndarray:
        return self.arrays["times"]

    @property
    def energies(self) -> np.ndarray:
        """Eigenvalues, ascending (degenerate members share their level's energy)."""
        return self.arrays["energies"]

    @property
    def level_ptr(self) -> np.ndarray:
        return self.arrays["level_ptr"]

    @property
    def level_energies(self) -> np.ndarray:
        return self.arrays["level_energies"]

    @property
    def level_sizes(self) -> np.ndarray:
        return np.diff(self.level_ptr)

    @property
    def n_levels(self) -> int:
        return self.level_ptr.size - 1

    @property
    def dimension(self) -> int:
        return self.energies.size

    @property
    def n_baths(self) -> int:
        return self.arrays["bath_beta"].size

    @property
    def bath_beta(self) -> np.ndarray:
        """Inverse temperature per bath (nan for a bath given by its rates)."""
        return self.arrays["bath_beta"]

    @property
    def bath_thermal(self) -> list[bool | None]:
        """Per bath: True if thermal (KMS by construction), False if given by its rates,
        None if the result does not say (no temperature stored)."""
        thermal = self.meta.get("bath_thermal")
        if thermal is not None and len(thermal) == self.n_baths:
            return [bool(t) for t in thermal]
        return [None if np.isnan(b) else True for b in self.bath_beta]

    @property
    def bath_names(self) -> list[str]:
        names = self.meta.get("bath_couplings")
        if names is None or len(names) != self.n_baths:
            return [f"bath {a}" for a in range(self.n_baths)]
        return [str(n) for n in names]

    @property
    def ntraj(self) -> int:
        return int(self.arrays["heat"].shape[0]) if self.is_trajectories else 0

    @property
    def energy_unit(self) -> str:
        return str(self.meta.get("energy_unit", "arbitrary"))

    @property
    def initial_state(self) -> str:
        return str(self.meta.get("initial_state", "unknown"))

    @property
    def observable_names(self) -> list[str]:
        """Observables stored as ``expect_<name>``, in file order."""
        return [k[len("expect_"):] for k in self.arrays
                if k.startswith("expect_") and not k.endswith("_stderr")]

    def level_populations(self, key: str = "populations") -> np.ndarray:
        """(T, L) populations of the levels (degenerate eigen-populations summed)."""
        return np.add.reduceat(self.arrays[key], self.level_ptr[:-1], axis=1)

    def level_populations_stderr(self) -> np.ndarray:
        """(T, L) an upper bound on the standard error of each level population.

        The file keeps the error of each eigen-population only; the error of a sum is at most
        the sum of the errors (exact for one-member levels).
        """
        return np.add.reduceat(self.arrays["populations_stderr"], self.level_ptr[:-1], axis=1)


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
        # Members of a degenerate level carry the level's energy exactly (jumps.davies).
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
