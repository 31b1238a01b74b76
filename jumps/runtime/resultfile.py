"""The ``results.npz`` format: how arrays are named, and a result directory read and checked.

An observable named ``x`` is stored as ``expect_x`` and its standard error as
``expect_x_stderr``; characters other than letters, digits and ``_`` become ``_`` (``sz:0`` is
stored as ``expect_sz_0``). The CLI (``[run] observables``) and the Python API (``e_ops``,
``observables``) name their arrays by this one rule.

:func:`read_checked` is the one reader of a result directory that checks it (shapes, dtypes,
index ranges, NaN, missing keys, ``run.json``'s types): :func:`jumps.load` and
``analysis.load_result`` both use it (docs/design.md, "Result format").
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .io import META_FILE, RESULTS_FILE, result_base

# results.npz stores observable x as expect_x and its standard error as expect_x_stderr.
STDERR_SUFFIX = "_stderr"


def result_key(name: str) -> str:
    """A result-file-safe name: ``sz:0`` -> ``sz_0``."""
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)


def claim_result_key(name: str, field: str, taken: dict[str, str]) -> str:
    """The key of an observable named ``name`` (:func:`result_key`), recorded in ``taken``
    (key -> name).

    Raises
    ------
    ConfigError
        Naming ``field``: the name is empty, its key reads as another observable's standard
        error, or its key is already taken (the same name twice, or ``sz:0`` beside ``sz_0``).
    """
    key = result_key(name)
    if not name:
        raise ConfigError(field, "is empty")
    if key.endswith(STDERR_SUFFIX):
        raise ConfigError(field, f"is stored as expect_{key}, which reads as the standard error "
                                 f"of {key[:-len(STDERR_SUFFIX)]!r}: rename it")
    if key in taken:
        raise ConfigError(field, "is named twice" if taken[key] == name else
                          f"is stored as expect_{key}, like {taken[key]!r} (':' and other signs "
                          "are stored as '_'): rename one")
    taken[key] = name
    return key


# -- reading a result directory, checked ------------------------------------------------------
# Every problem with a result directory is a ConfigError naming the directory or the file and
# the reason (``jumps.load``, ``python -m analysis``: one line, exit status 2), never a
# KeyError or an IndexError later.

# Keys every result has (trajectories and exact).
COMMON_KEYS = ("times", "energies", "populations", "channel_bath", "channel_frequency",
               "channel_rate")
# Keys only a trajectory result has.
TRAJECTORY_KEYS = ("populations_stderr", "jump_counts", "transition_from", "transition_to",
                   "transition_count", "occupation_time", "heat", "n_jumps")
METHODS = ("trajectories", "exact")

# The shape and dtype kinds of every array a reader uses, in symbols: T times, d states,
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
# run.json keys that readers use, and the JSON types each may have (None: null allowed).
META_TYPES = {"config": (dict, None), "config_path": (str, None), "dimension": (int,),
              "lists_every_channel": (bool,), "energy_unit": (str,), "initial_state": (str,),
              "model": (str, None), "seed": (int, None), "bath_beta": (list,),
              "bath_thermal": (list,), "bath_couplings": (list,), "observables": (list,),
              "t0": (int, float)}
# The items of the list-valued keys.
META_ITEMS = {"bath_beta": (int, float, None), "bath_thermal": (bool, None),
              "bath_couplings": (str,), "observables": (str,)}


def read_checked(directory: str | Path) -> tuple[dict[str, np.ndarray], dict, tuple[str, ...]]:
    """Read and check a result directory (``python -m jumps run`` or ``exact``,
    :meth:`jumps.Result.save`): ``(arrays, meta, derived)``, ``derived`` naming the arrays the
    file lacked and that were derived from the others (levels, bath temperatures).

    The committed pair is read (:func:`jumps.runtime.io.result_base`: one consistent pair even
    while another run commits). Every array is checked (:data:`SHAPES`: shapes, one length per
    symbol; dtypes; index ranges; NaN; keys a result must have) and so are ``run.json``'s
    types (:data:`META_TYPES`) and figures against the arrays.

    Raises
    ------
    ConfigError
        Naming the directory or the file and the reason: missing, not a result, unreadable,
        incomplete or inconsistent.
    """
    path = Path(directory)
    where = str(path)
    if not path.exists():
        raise ConfigError(where, "no such directory")
    if not path.is_dir():
        raise ConfigError(where, "not a directory (give a result directory of python -m jumps)")
    for attempt in range(3):  # the committed directory may be replaced while it is read
        base = result_base(path)
        try:
            meta, arrays = _read_files(path, base)
            break
        except (ConfigError, FileNotFoundError):
            if attempt == 2 or result_base(path) == base:
                raise
    array_file = str(path / RESULTS_FILE)
    missing = [k for k in COMMON_KEYS if k not in arrays]
    if missing:
        raise ConfigError(array_file, f"missing arrays: {', '.join(missing)}")
    _check_arrays(arrays, meta, array_file)
    derived = _derive_missing(arrays, meta)
    _check_arrays(arrays, meta, array_file)  # again, with what was derived
    _check_result(arrays, meta, array_file)
    return arrays, meta, derived


def _read_files(path: Path, base: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """``run.json`` and ``results.npz`` of ``base``, named in errors as files of ``path``."""
    for name in (META_FILE, RESULTS_FILE):
        file = base / name
        if not file.exists():
            raise ConfigError(str(path), f"not a jumps result directory (no {name})")
        if not file.is_file():
            raise ConfigError(str(path / name), "not a file")
    meta = _read_meta(base / META_FILE, str(path / META_FILE))
    try:  # allow_pickle=False: an object array inside the archive is refused, never unpickled
        with np.load(base / RESULTS_FILE, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        reason = _first_line(error)
        if "allow_pickle" in reason:
            reason = "an array holds Python objects (pickled data is never loaded)"
        raise ConfigError(str(path / RESULTS_FILE), f"unreadable: {reason}") from None
    return meta, arrays


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def _read_meta(meta_file: Path, where: str) -> dict:
    """run.json: an object whose 'method' is known and whose keys readers use have their JSON
    types (META_TYPES)."""
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


def _kind_name(kinds: str) -> str:
    return {COMPLEX: "complex or real", REAL: "real", INTEGER: "integer"}[kinds]


def _check_arrays(arrays: dict, meta: dict, where: str) -> None:
    """Every array readers use: its shape (SHAPES: one length per symbol), dtype kind, index
    ranges (INDEX_RANGES) and values (FINITE, NOT_NAN, NON_NEGATIVE, increasing times,
    ascending energies), and run.json's figures against them."""
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
                                     f"{_kind_name(kinds)} numbers")
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
    _check_values(arrays, meta, sizes, where)
    if "dimension" in meta and meta["dimension"] != sizes.get("d"):
        raise ConfigError(where, f"energies has {sizes.get('d')} states, run.json says "
                                 f"dimension {meta['dimension']}")
    for key in ("bath_beta", "bath_thermal", "bath_couplings"):
        if key in meta and "B" in sizes and len(meta[key]) != sizes["B"]:
            raise ConfigError(where, f"{sizes['B']} baths, run.json lists {len(meta[key])} in "
                                     f"'{key}'")
    for name in meta.get("observables", []):
        wanted = [f"expect_{name}"] + ([f"expect_{name}{STDERR_SUFFIX}"]
                                        if meta.get("method") == "trajectories" else [])
        missing = [k for k in wanted if k not in arrays]
        if missing:
            raise ConfigError(where, f"missing {missing[0]} (run.json lists the observable "
                                     f"{name!r})")


def _check_values(arrays: dict, meta: dict, sizes: dict, where: str) -> None:
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
    if times is not None:
        # The CLI's grid starts at 0; the API's is the user's tlist, starting at run.json's t0.
        start = meta.get("t0", 0.0)
        if times.size < 1 or np.any(np.diff(times) <= 0):
            raise ConfigError(where, "times must increase strictly")
        if times[0] < 0 and times[0] != start:
            raise ConfigError(where, f"times must increase strictly from t >= 0 (or from "
                                     f"run.json's t0), got {times[0]:.6g}")
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
        # Members of a degenerate level carry the level's energy exactly (the channel
        # generator gives them their level's mean).
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


def _check_result(arrays: dict, meta: dict, where: str) -> None:
    """What holds the result together: the keys of its method, populations (T, d), levels
    that partition the eigen-indices, at least one trajectory."""
    trajectories = meta.get("method", "trajectories") == "trajectories"
    missing = [k for k in TRAJECTORY_KEYS if trajectories and k not in arrays]
    if missing:
        raise ConfigError(where, f"missing arrays: {', '.join(missing)}")
    T, d = arrays["times"].size, arrays["energies"].size
    if arrays["populations"].shape != (T, d):
        raise ConfigError(where, f"populations has shape {arrays['populations'].shape}, "
                                 f"expected {(T, d)}")
    level_ptr = arrays["level_ptr"]
    if level_ptr.size < 2 or level_ptr[0] != 0 or level_ptr[-1] != d or np.any(np.diff(level_ptr) < 1):
        raise ConfigError(where, "level_ptr does not partition the eigen-indices")
    if trajectories and arrays["heat"].shape[0] < 1:
        raise ConfigError(where, "no trajectories in the result")
