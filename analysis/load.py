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

# The shape and dtype kinds of every array the analysis reads, in symbols: T times, d states,
# L levels, C channels, K transitions, B baths, N trajectories, J listed jumps, R recorded
# trajectory tables, S counting fields. A symbol is fixed by the first array that has it (in
# this order), and every later one must agree: arrays of one family have equal lengths.
REAL, INTEGER, COMPLEX = "fiu", "iu", "fciu"
SHAPES = {
    "times": (("T",), REAL), "energies": (("d",), REAL), "level_energies": (("L",), REAL),
    "bath_beta": (("B",), REAL),
    "populations": (("T", "d"), REAL), "populations_stderr": (("T", "d"), REAL),
    "rho": (("T", "d", "d"), COMPLEX), "rho_stderr": (("T", "d", "d"), COMPLEX),
    "rho_diagonal": (("T", "d"), REAL), "rho_diagonal_stderr": (("T", "d"), REAL),
    "channel_bath": (("C",), INTEGER), "channel_frequency": (("C",), REAL),
    "channel_rate": (("C",), REAL), "channel_lamb_shift": (("C",), REAL),
    "jump_counts": (("C",), INTEGER),
    "transition_bath": (("K",), INTEGER), "transition_from": (("K",), INTEGER),
    "transition_to": (("K",), INTEGER), "transition_count": (("K",), INTEGER),
    "occupation_time": (("L",), REAL), "level_rate": (("d",), REAL),
    "level_lamb_shift": (("d",), REAL),
    "heat": (("N", "B"), REAL), "n_jumps": (("N",), INTEGER), "emissions": (("N", "B"), INTEGER),
    "absorptions": (("N", "B"), INTEGER), "dephasings": (("N", "B"), INTEGER),
    "first_jump_time": (("N",), REAL), "initial_level": (("N",), INTEGER),
    "final_level": (("N",), INTEGER), "final_energy": (("N",), REAL),
    "entropy_production": (("N",), REAL), "ift_expected": ((), REAL),
    "trajectory_index": (("N",), INTEGER),
    "jump_trajectory": (("J",), INTEGER), "jump_time": (("J",), REAL),
    "jump_bath": (("J",), INTEGER), "jump_frequency": (("J",), REAL),
    "jump_from": (("J",), INTEGER), "jump_to": (("J",), INTEGER),
    "jump_channel": (("J",), INTEGER),
    "trajectory_level": (("R", "T"), INTEGER), "trajectory_heat": (("R", "T", "B"), REAL),
    "scgf_s": (("S",), REAL), "scgf": (("B", "S"), REAL), "scgf_finite_t": (("B", "S"), REAL),
    "heat_mean": (("T", "B"), REAL), "heat_covariance": (("T", "B", "B"), REAL),
    "heat_third_cumulant": (("T", "B"), REAL), "heat_current": (("B",), REAL),
    "entropy_production_rate": ((), REAL), "entropy_production_mean": (("T",), REAL),
    "first_jump_survival": (("T",), REAL), "first_jump_density": (("T",), REAL),
    "waiting_time_survival": (("T",), REAL), "waiting_time_density": (("T",), REAL),
}
SYMBOLS = {"T": "times", "d": "states", "L": "levels", "C": "channels", "K": "transitions",
           "B": "baths", "N": "trajectories", "J": "listed jumps", "R": "recorded trajectories",
           "S": "counting fields"}
# Index arrays: the range their values must lie in ("-1" allowed where a state spreads over
# several levels), by the symbol of what they index.
INDEX_RANGES = {"channel_bath": ("B", 0), "transition_bath": ("B", 0),
                "transition_from": ("L", 0), "transition_to": ("L", 0),
                "jump_bath": ("B", 0), "jump_channel": ("C", 0), "jump_trajectory": ("N", 0),
                "jump_from": ("L", -1), "jump_to": ("L", -1), "initial_level": ("L", -1),
                "final_level": ("L", -1), "trajectory_level": ("L", -1)}
# Arrays that are never NaN (or infinite, for the first group) in a result jumps writes.
FINITE = ("times", "energies", "level_energies", "populations", "channel_frequency",
          "channel_rate", "occupation_time", "heat", "jump_time", "jump_frequency",
          "trajectory_heat", "scgf_s")
NOT_NAN = ("populations_stderr", "first_jump_time", "expect_*")
NON_NEGATIVE = ("channel_rate", "jump_counts", "transition_count", "occupation_time", "n_jumps",
                "emissions", "absorptions", "dephasings", "first_jump_time")
# run.json keys the analysis reads, and the JSON types each may have (None: null allowed).
META_TYPES = {"config": (dict, None), "config_path": (str, None), "dimension": (int,),
              "lists_every_channel": (bool,), "energy_unit": (str,), "initial_state": (str,),
              "model": (str, None), "seed": (int, None), "bath_beta": (list,),
              "bath_thermal": (list,), "bath_couplings": (list,), "observables": (list,)}
# The items of the list-valued keys.
META_ITEMS = {"bath_beta": (int, float, None), "bath_thermal": (bool, None),
              "bath_couplings": (str,), "observables": (str,)}


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
    for name, file in ((META_FILE, meta_file), (RESULTS_FILE, array_file)):
        if not file.exists():
            raise ConfigError(where, f"not a jumps result directory (no {name})")
        if not file.is_file():
            raise ConfigError(str(file), "not a file")
    meta = _read_meta(meta_file)
    try:  # allow_pickle=False: an object array inside the archive is refused, never unpickled
        with np.load(array_file, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        reason = _first_line(error)
        if "allow_pickle" in reason:
            reason = "an array holds Python objects (pickled data is never loaded)"
        raise ConfigError(str(array_file), f"unreadable: {reason}") from None
    missing = [k for k in COMMON_KEYS if k not in arrays]
    if missing:
        raise ConfigError(str(array_file), f"missing arrays: {', '.join(missing)}")
    _check_arrays(arrays, meta, array_file)
    derived = _derive_missing(arrays, meta)
    _check_arrays(arrays, meta, array_file)  # again, with what was derived
    result = Result(path=path, arrays=arrays, meta=meta, derived=derived)
    _check(result, array_file)
    return result


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def _read_meta(meta_file: Path) -> dict:
    """run.json: an object whose 'method' is known and whose keys the analysis reads have
    their JSON types (META_TYPES)."""
    where = str(meta_file)
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(where, f"unreadable JSON: {_first_line(error)}") from None
    if not isinstance(meta, dict):
        raise ConfigError(where, f"must be a JSON object, got {type(meta).__name__}")
    if meta.get("method") not in METHODS:
        raise ConfigError(where, f"'method' must be one of {', '.join(METHODS)}, got "
                                 f"{meta.get('method')!r}")
    for key, types in META_TYPES.items():
        if key in meta and not _is(meta[key], types):
            raise ConfigError(where, f"'{key}' must be {_names(types)}, got {meta[key]!r:.60}")
        if key in META_ITEMS and key in meta:
            bad = [item for item in meta[key] if not _is(item, META_ITEMS[key])]
            if bad:
                raise ConfigError(where, f"'{key}' must list {_names(META_ITEMS[key])}, got "
                                         f"{bad[0]!r:.60}")
    return meta


def _is(value, types: tuple) -> bool:
    """JSON type test: a bool is not an int, null is None."""
    if value is None:
        return None in types
    if isinstance(value, bool):
        return bool in types
    return any(t is not None and isinstance(value, t) for t in types)


def _names(types: tuple) -> str:
    names = {dict: "an object", str: "a string", int: "an integer", float: "a number",
             bool: "true or false", list: "a list", None: "null"}
    return " or ".join(names[t] for t in types)


def _check_arrays(arrays: dict, meta: dict, array_file: Path) -> None:
    """Every array the analysis reads: its shape (SHAPES: one length per symbol), dtype kind,
    index ranges (INDEX_RANGES) and values (FINITE, NOT_NAN, NON_NEGATIVE, ascending times and
    energies, level_ptr a partition), and run.json's figures against them."""
    where = str(array_file)
    sizes = {}
    if "level_ptr" in arrays:
        if arrays["level_ptr"].ndim != 1 or arrays["level_ptr"].dtype.kind not in INTEGER:
            raise ConfigError(where, f"level_ptr must be a list of integers, got "
                                     f"{arrays['level_ptr'].dtype} {arrays['level_ptr'].shape}")
        sizes["L"] = arrays["level_ptr"].size - 1
    observables = [k for k in arrays if k.startswith("expect_")]
    for key, (shape, kinds) in [*SHAPES.items(), *((k, (("T",), REAL)) for k in observables)]:
        if key not in arrays:
            continue
        array = arrays[key]
        if array.dtype.kind not in kinds:
            raise ConfigError(where, f"{key} has dtype {array.dtype}, expected "
                                     f"{'complex or real' if kinds == COMPLEX else 'real' if kinds == REAL else 'integer'} numbers")
        if array.ndim == len(shape):
            for symbol, length in zip(shape, array.shape):
                sizes.setdefault(symbol, length)
        names = ", ".join(SYMBOLS[symbol] for symbol in shape) or "a scalar"
        if array.ndim != len(shape):
            raise ConfigError(where, f"{key} has shape {array.shape}, expected {len(shape)} "
                                     f"dimension(s) ({names})")
        expected = tuple(sizes[symbol] for symbol in shape)
        if array.shape != expected:
            raise ConfigError(where, f"{key} has shape {array.shape}, expected {expected} "
                                     f"({names})")
    _check_values(arrays, sizes, where)
    if "dimension" in meta and meta["dimension"] != sizes.get("d"):
        raise ConfigError(where, f"energies has {sizes.get('d')} states, run.json says "
                                 f"dimension {meta['dimension']}")
    for key in ("bath_beta", "bath_thermal", "bath_couplings"):
        if key in meta and "B" in sizes and len(meta[key]) != sizes["B"]:
            raise ConfigError(where, f"{sizes['B']} baths, run.json lists {len(meta[key])} in "
                                     f"'{key}'")
    for name in meta.get("observables", []):
        wanted = [f"expect_{name}"] + ([f"expect_{name}_stderr"]
                                        if meta.get("method") == "trajectories" else [])
        missing = [k for k in wanted if k not in arrays]
        if missing:
            raise ConfigError(where, f"missing {missing[0]} (run.json lists the observable "
                                     f"{name!r})")


def _check_values(arrays: dict, sizes: dict, where: str) -> None:
    def matching(patterns):
        for pattern in patterns:
            if pattern.endswith("*"):
                yield from (k for k in arrays if k.startswith(pattern[:-1]))
            elif pattern in arrays:
                yield pattern

    for key in matching(FINITE):
        if not np.all(np.isfinite(arrays[key])):
            raise ConfigError(where, f"{key} contains NaN or inf")
    for key in matching(NOT_NAN):
        if np.any(np.isnan(arrays[key])):
            raise ConfigError(where, f"{key} contains NaN")
    for key in matching(NON_NEGATIVE):
        if np.any(arrays[key] < 0):
            raise ConfigError(where, f"{key} has negative values")
    times = arrays.get("times")
    if times is not None and (times.size < 1 or times[0] < 0 or np.any(np.diff(times) <= 0)):
        raise ConfigError(where, "times must increase strictly from t >= 0")
    energies = arrays.get("energies")
    if energies is not None and np.any(np.diff(energies) < 0):
        raise ConfigError(where, "energies must be ascending")
    for key, (symbol, low) in INDEX_RANGES.items():
        values = arrays.get(key)
        if values is None or not values.size or symbol not in sizes:
            continue
        if values.min() < low or values.max() >= sizes[symbol]:
            raise ConfigError(where, f"{key} has values in [{values.min()}, {values.max()}], "
                                     f"outside [{low}, {sizes[symbol] - 1}] (the "
                                     f"{SYMBOLS[symbol]})")


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
                       else int(arrays["channel_bath"].max(initial=-1)) + 1)
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
