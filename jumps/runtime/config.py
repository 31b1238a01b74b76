"""Run configuration: the TOML file (README, "Configuration"), validated into plain objects.

Every problem is a :class:`ConfigError` naming the field (``baths[1].temperature``) and the
reason; nothing here runs physics beyond building matrices.
"""

from __future__ import annotations

import math
import numbers
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .. import generators
from ..errors import ConfigError
from ..generators.base import DENSITY_MODES, INITIAL_KINDS, InitialState
from ..physics import baths as baths_module
from ..physics.baths import Bath
from ..physics.models import Model, build_model, check_hermitian, explicit, product_state
from . import npyfile
from .budget import check_config_memory
from .resultfile import claim_result_key

SECTIONS = {"system", "baths", "initial_state", "run", "counting"}
COUNTING_KEYS = {"s"}
SYSTEM_KEYS = {"model", "params", "hamiltonian", "operators", "degeneracy_tol", "drop_tol"}
BATH_KEYS = {"coupling", "spectral_density", "eta", "cutoff", "reorganization", "table",
             "temperature", "beta", "lamb_shift"}
INITIAL_KEYS = {"kind", "index", "state", "vector", "populations"}
# The keys each spectral density and each initial-state kind reads: any other key of the entry
# would be silently ignored, so it is refused.
COMMON_BATH_KEYS = {"coupling", "spectral_density", "lamb_shift"}
THERMAL_KEYS = {"temperature", "beta"}
SPECTRAL_DENSITY_KEYS = {"ohmic": {"eta", "cutoff"} | THERMAL_KEYS,
                         "drude_lorentz": {"reorganization", "cutoff"} | THERMAL_KEYS,
                         "tabulated": {"table"} | THERMAL_KEYS,
                         "rates": {"table"}}
INITIAL_KIND_KEYS = {"eigenstate": {"index"}, "basis": {"index"}, "product": {"state"},
                     "gibbs": set(), "vector": {"vector"}, "populations": {"populations"},
                     "steady_state": set()}
# A matrix from a file becomes complex (16 bytes per element) and is copied a few times on the
# way (Hermitian part, sparse form): a file is refused when 4 complex copies would not fit in
# half of the available memory (jumps.runtime.npyfile.check_fits), before it is read.
ARRAY_BYTES_PER_ELEMENT = 4 * 16
# Bounds of the tolerances (see _tolerances).
MAX_RELATIVE_DEGENERACY_TOL = 1e-3
MAX_DROP_TOL = 1e-3
# Level populations must add up to one within this (a typo, not rounding, beyond it).
POPULATION_SUM_TOLERANCE = 1e-6
RUN_KEYS = {"t_final", "n_times", "trajectories", "seed", "observables", "density_matrix",
            "lamb_shift", "chunk_size", "checkpoint_seconds", "record_jumps",
            "record_trajectories", "generator", "cache", "allow_long"}


@dataclass(frozen=True)
class RunConfig:
    """A validated run: the system, its baths, the initial state and the run settings."""

    model: Model
    couplings: list  # (d, d) ndarray or scipy sparse, Hermitian
    coupling_names: list[str]
    baths: list[Bath]
    initial_state: InitialState
    t_final: float
    n_times: int
    trajectories: int
    seed: int
    observables: dict  # name -> (d, d) ndarray or scipy sparse, Hermitian
    density_matrix: str
    lamb_shift: bool = True
    degeneracy_tol: float | None = None
    drop_tol: float = 1e-12
    chunk_size: int = 0
    checkpoint_seconds: float = 10.0
    record_jumps: int = 0
    record_trajectories: int = 0
    counting_s: np.ndarray | None = None  # None: statistics.counting_fields' default
    generator: str = "auto"
    cache: bool = True
    allow_long: bool = False  # run even when over budget.MAX_JUMPS_PER_TRAJECTORY jumps are expected
    source: str = ""
    raw: dict = field(default_factory=dict)

    @property
    def times(self) -> np.ndarray:
        return np.linspace(0.0, self.t_final, self.n_times)



def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read and validate a TOML config. ``overrides`` replaces ``[run]`` keys (CLI flags)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), "config file not found")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), f"malformed TOML: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "not a text file") from None
    raw.setdefault("run", {})
    for key, value in (overrides or {}).items():
        if value is not None:
            raw["run"][key] = value
    return parse_config(raw, base=path.parent, source=str(path))


def parse_config(raw: dict, base: Path = Path("."), source: str = "") -> RunConfig:
    """Validate a config dictionary (as loaded from TOML); paths are relative to ``base``."""
    _unknown(raw, SECTIONS, "")
    model = _system(_table(raw, "system"), base)
    bath_list = raw.get("baths")
    if not isinstance(bath_list, list) or not bath_list:
        raise ConfigError("baths", "need at least one [[baths]] entry")
    run = _table(raw, "run", required=False)
    _unknown(run, RUN_KEYS, "run")
    lamb_shift = _bool(run, "lamb_shift", True, "run")
    couplings, names, bath_objects = [], [], []
    for i, entry in enumerate(bath_list):
        where = f"baths[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(where, "must be a table")
        _unknown(entry, BATH_KEYS, where)
        for name, operator in _couplings(entry, model, base, where):
            couplings.append(operator)
            names.append(name)
            bath_objects.append(_bath(entry, base, where, lamb_shift))
    initial = _initial_state(_table(raw, "initial_state", required=False), model, base)
    if initial.kind == "gibbs" and (len({b.beta for b in bath_objects}) != 1
                                    or not all(b.is_thermal for b in bath_objects)):
        raise ConfigError("initial_state.kind", "gibbs needs all baths thermal and at one "
                                                "temperature (for baths at several temperatures "
                                                "start in kind = 'steady_state')")
    t_final = _number(run, "t_final", 10.0, "run", positive=True)
    n_times = _integer(run, "n_times", 101, "run", low=2)
    trajectories = _integer(run, "trajectories", 1000, "run", low=1)
    seed = _integer(run, "seed", 0, "run", low=0)
    density = run.get("density_matrix", "auto")
    if density not in DENSITY_MODES:
        raise ConfigError("run.density_matrix", f"must be one of {', '.join(DENSITY_MODES)}, got {density!r}")
    generator = run.get("generator", "auto")
    if generator != "auto":  # a named generator must exist and accept the run
        if not isinstance(generator, str):
            raise ConfigError("run.generator", f"must be a generator's name, got {generator!r}")
        generators.get(generator).check(initial, density)
    system = raw["system"]
    degeneracy_tol, drop_tol = _tolerances(system, model)
    config = RunConfig(
        model=model, couplings=couplings, coupling_names=names, baths=bath_objects,
        initial_state=initial, t_final=t_final, n_times=n_times, trajectories=trajectories,
        seed=seed, observables=_observables(run.get("observables", ["energy"]), model, base),
        density_matrix=density, lamb_shift=lamb_shift, degeneracy_tol=degeneracy_tol,
        drop_tol=drop_tol,
        chunk_size=_integer(run, "chunk_size", 0, "run", low=0),
        checkpoint_seconds=_number(run, "checkpoint_seconds", 10.0, "run", positive=True),
        record_jumps=_integer(run, "record_jumps", 0, "run", low=0),
        record_trajectories=_integer(run, "record_trajectories", 0, "run", low=0),
        counting_s=_counting_fields(_table(raw, "counting", required=False), base),
        generator=generator, cache=_bool(run, "cache", True, "run"),
        allow_long=_bool(run, "allow_long", False, "run"), source=source, raw=raw,
    )
    check_config_memory(config)  # records and sums that cannot fit: refused before any build
    return config


def dump_config(raw: dict) -> str:
    """TOML text of a config dictionary (the inverse of tomllib.loads for the values a config
    holds: tables, arrays of tables such as [[baths]], strings, numbers, booleans, lists,
    inline tables).

    Parameters
    ----------
    raw : dict
        A config as :func:`tomllib.loads` returns it: section name -> table, or -> list of
        tables (``[[baths]]``). Values are str, bool, int, float (``inf`` and ``nan``
        included), lists and dicts, nested freely; nested dicts are written as inline tables.

    Returns
    -------
    str
        TOML text that ``tomllib.loads`` reads back as ``raw``, types included (an int stays
        an int, ``300`` not ``300.0``): top-level plain values first, then one ``[section]``
        or ``[[section]]`` header per table, in the order of ``raw``.

    Raises
    ------
    TypeError
        For a value TOML cannot hold (None) or that a config never holds (dates, bytes, ...),
        and for a key that is not a string.
    """
    def tables(value) -> bool:
        return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)

    lines = [f"{_toml_key(key)} = {_toml_value(value)}" for key, value in raw.items()
             if not isinstance(value, dict) and not tables(value)]
    if lines:
        lines.append("")
    for key, body in raw.items():
        if isinstance(body, dict) or tables(body):
            for entry in (body if isinstance(body, list) else [body]):
                header = f"[[{_toml_key(key)}]]" if isinstance(body, list) else f"[{_toml_key(key)}]"
                lines.append(header)
                lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in entry.items()]
                lines.append("")
    return "\n".join(lines)


def _toml_key(key) -> str:
    if not isinstance(key, str):
        raise TypeError(f"config keys must be strings, got {key!r}")
    bare = key and all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in key)
    return key if bare else _toml_string(key)


def _toml_string(text: str) -> str:
    """A TOML basic string: backslash, quote and control characters escaped."""
    escapes = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
               "\r": "\\r"}
    out = []
    for ch in text:
        if ch in escapes:
            out.append(escapes[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, dict):
        items = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return f"{{ {items} }}" if items else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"a config holds no {type(value).__name__} value: {value!r}")


# -- helpers -----------------------------------------------------------------------------------

def _table(raw: dict, key: str, required: bool = True) -> dict:
    value = raw.get(key)
    if value is None:
        if required:
            raise ConfigError(key, f"missing [{key}] section")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(key, "must be a table")
    return value


def _unknown(table: dict, allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            prefix = f"{where}." if where else ""
            raise ConfigError(f"{prefix}{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _foreign(table: dict, used: set[str], where: str, owner: str) -> None:
    """Refuse a known key that ``owner`` does not read (it would be silently ignored)."""
    for key in table:
        if key not in used:
            raise ConfigError(f"{where}.{key}", f"not used by {owner} (it reads: "
                                                f"{', '.join(sorted(used))})")


def _number(table: dict, key: str, default: float, where: str, positive: bool = False) -> float:
    value = table.get(key, default)
    name = f"{where}.{key}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, f"must be a number, got {value!r}")
    if math.isnan(value) or math.isinf(value):
        raise ConfigError(name, f"must be finite, got {value!r}")
    if positive and value <= 0:
        raise ConfigError(name, f"must be positive, got {value!r}")
    return float(value)


def _integer(table: dict, key: str, default: int, where: str, low: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{where}.{key}", f"must be an integer >= {low}, got {value!r}")
    return value


def _bool(table: dict, key: str, default: bool, where: str) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{key}", f"must be true or false, got {value!r}")
    return value


def load_array(spec: Any, base: Path, field_name: str) -> np.ndarray:
    """A matrix or vector from a ``.npy`` path (relative to ``base``) or an inline list."""
    if isinstance(spec, str):
        path = (base / spec) if not Path(spec).is_absolute() else Path(spec)
        if not path.is_file():
            raise ConfigError(field_name, f"file not found: {path}")
        try:  # the header first: no allocation for a file that is not a plain array
            array = npyfile.load(path, bytes_per_element=ARRAY_BYTES_PER_ELEMENT)
        except npyfile.BadArrayFile as error:
            raise ConfigError(field_name, f"{spec}: {error}") from None
    elif isinstance(spec, list):
        try:
            array = np.array(spec, dtype=float)
        except (ValueError, TypeError):
            raise ConfigError(field_name, "inline arrays must be (nested) lists of numbers") from None
    else:
        raise ConfigError(field_name, f"must be a .npy path or an inline list, got {spec!r}")
    if not np.issubdtype(array.dtype, np.number):
        raise ConfigError(field_name, f"must be numeric, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ConfigError(field_name, "contains NaN or inf")
    return array


def _tolerances(system: dict, model: Model) -> tuple[float | None, float]:
    """``degeneracy_tol`` (None: the default) and ``drop_tol``, refused when absurd: a
    degeneracy tolerance of MAX_RELATIVE_DEGENERACY_TOL times the spectrum's scale would merge
    physically distinct levels and Bohr frequencies (the default is 1e-9 of it, far above
    rounding); a drop tolerance of MAX_DROP_TOL drops matrix elements whose rates (~|A|^2) are
    not negligible."""
    degeneracy_tol = system.get("degeneracy_tol")
    if degeneracy_tol is not None:
        degeneracy_tol = _number(system, "degeneracy_tol", 0.0, "system", positive=True)
        bound = MAX_RELATIVE_DEGENERACY_TOL * (1.0 + spectral_bound(model.stored_hamiltonian))
        if degeneracy_tol >= bound:
            raise ConfigError("system.degeneracy_tol",
                              f"must be below {MAX_RELATIVE_DEGENERACY_TOL:g} (1 + max|E|) = "
                              f"{bound:.3g} (max|E| <= {bound / MAX_RELATIVE_DEGENERACY_TOL - 1:.3g}"
                              f", the largest row sum of |H|), got {degeneracy_tol:g}: it would "
                              "merge distinct levels (default 1e-9 (1 + max|E|))")
    drop_tol = _number(system, "drop_tol", 1e-12, "system", positive=True)
    if drop_tol >= MAX_DROP_TOL:
        raise ConfigError("system.drop_tol", f"must be below {MAX_DROP_TOL:g}, got {drop_tol:g}: "
                                             "it would drop matrix elements whose rates matter "
                                             "(default 1e-12)")
    return degeneracy_tol, drop_tol


def spectral_bound(hamiltonian) -> float:
    """An upper bound of max|E| in O(nnz), before any diagonalisation: the largest row sum of
    ``|H|`` (Gershgorin; exact for a diagonal H)."""
    magnitude = abs(hamiltonian) if sp.issparse(hamiltonian) else np.abs(np.asarray(hamiltonian))
    return float(np.max(magnitude.sum(axis=1))) if hamiltonian.shape[0] else 0.0


def _system(system: dict, base: Path) -> Model:
    _unknown(system, SYSTEM_KEYS, "system")
    has_model, has_matrix = "model" in system, "hamiltonian" in system
    if has_model == has_matrix:
        raise ConfigError("system", "give exactly one of 'model' or 'hamiltonian'")
    operators = {}
    raw_ops = system.get("operators", {})
    if not isinstance(raw_ops, dict):
        raise ConfigError("system.operators", "must be a table of name = matrix")
    for name, spec in raw_ops.items():
        operators[name] = load_array(spec, base, f"system.operators.{name}")
    if has_model:
        params = system.get("params", {})
        if not isinstance(params, dict):
            raise ConfigError("system.params", "must be a table")
        model = build_model(system["model"], params) if isinstance(system["model"], str) else None
        if model is None:
            raise ConfigError("system.model", "must be a model name")
        d = model.dimension
        for name, op in operators.items():
            if op.shape != (d, d):
                raise ConfigError(f"system.operators.{name}", f"must have shape {(d, d)}, got {op.shape}")
        model.operators.update({k: v.astype(complex) for k, v in operators.items()})
        return model
    if "params" in system:
        raise ConfigError("system.params", "only for built-in models")
    H = load_array(system["hamiltonian"], base, "system.hamiltonian")
    H = check_hermitian(H, "system.hamiltonian")
    return explicit(H, operators)


def _couplings(entry: dict, model: Model, base: Path, where: str) -> list[tuple[str, np.ndarray]]:
    spec = entry.get("coupling")
    field_name = f"{where}.coupling"
    if spec is None:
        raise ConfigError(field_name, "missing")
    if isinstance(spec, str) and spec.endswith(":*"):
        # "sx:*": one independent bath per site, each with these parameters.
        stem = spec[:-1]
        names = sorted((k for k in model.operators if k.startswith(stem) and k[len(stem):].isdigit()),
                       key=lambda k: int(k[len(stem):]))
        if not names:
            raise ConfigError(field_name, f"the model names no operators {stem}0, {stem}1, ...")
        return [(name, check_hermitian(model.sparse_operator(name, field_name), field_name))
                for name in names]
    if isinstance(spec, str) and not spec.endswith(".npy"):
        matrix = model.sparse_operator(spec, field_name)
        name = spec
    else:
        matrix = load_array(spec, base, field_name)
        name = spec if isinstance(spec, str) else "inline"
    d = model.dimension
    if matrix.shape != (d, d):
        raise ConfigError(field_name, f"shape {matrix.shape} does not match the Hamiltonian {(d, d)}")
    return [(name, check_hermitian(matrix, field_name))]


def _bath(entry: dict, base: Path, where: str, lamb_shift_default: bool) -> Bath:
    kind = entry.get("spectral_density")
    if kind not in SPECTRAL_DENSITY_KEYS:
        raise ConfigError(f"{where}.spectral_density",
                          f"must be one of {', '.join(SPECTRAL_DENSITY_KEYS)}, got {kind!r}")
    _foreign(entry, COMMON_BATH_KEYS | SPECTRAL_DENSITY_KEYS[kind], where,
             f"a {kind} spectral density")
    lamb_shift = _bool(entry, "lamb_shift", lamb_shift_default, where)
    if kind == "rates":
        table = load_array(entry.get("table"), base, f"{where}.table") if "table" in entry else None
        if table is None:
            raise ConfigError(f"{where}.table", "a 'rates' bath needs a table of (w, gamma) rows")
        return _wrap(lambda: baths_module.from_rates(table, lamb_shift=lamb_shift), where)
    beta = _beta(entry, where)
    if kind == "ohmic":
        eta = _required_number(entry, "eta", where)
        cutoff = _required_number(entry, "cutoff", where)
        return _wrap(lambda: baths_module.ohmic(eta, cutoff, beta, lamb_shift), where)
    if kind == "drude_lorentz":
        lam = _required_number(entry, "reorganization", where)
        cutoff = _required_number(entry, "cutoff", where)
        return _wrap(lambda: baths_module.drude_lorentz(lam, cutoff, beta, lamb_shift), where)
    if kind == "tabulated":
        if "table" not in entry:
            raise ConfigError(f"{where}.table", "a tabulated bath needs a table of (w, J) rows")
        table = load_array(entry["table"], base, f"{where}.table")
        return _wrap(lambda: baths_module.tabulated(table, beta, lamb_shift), where)
    raise AssertionError(kind)  # every kind of SPECTRAL_DENSITY_KEYS is handled above


def _required_number(entry: dict, key: str, where: str) -> float:
    if key not in entry:
        raise ConfigError(f"{where}.{key}", "missing")
    return _number(entry, key, 0.0, where)


def _wrap(build, where: str) -> Bath:
    try:
        return build()
    except ConfigError as error:
        raise ConfigError(f"{where}.{error.field}", error.reason) from None


def _beta(entry: dict, where: str) -> float:
    has_t, has_b = "temperature" in entry, "beta" in entry
    if has_t == has_b:
        raise ConfigError(f"{where}.temperature", "give exactly one of 'temperature' or 'beta'")
    key = "temperature" if has_t else "beta"
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"{where}.{key}", f"must be a number, got {value!r}")
    if value < 0 or (value == 0 and key == "beta"):
        raise ConfigError(f"{where}.{key}", f"must be positive, got {value!r}")
    if key == "temperature":
        if math.isinf(value):
            raise ConfigError(f"{where}.temperature", "must be finite")
        return math.inf if value == 0 else 1.0 / value
    return float(value)


def _initial_state(table: dict, model: Model, base: Path) -> InitialState:
    _unknown(table, INITIAL_KEYS, "initial_state")
    kind = table.get("kind", "eigenstate")
    d = model.dimension
    where = "initial_state"
    if kind not in INITIAL_KIND_KEYS:
        raise ConfigError(f"{where}.kind", f"must be one of {', '.join(INITIAL_KINDS)}, got {kind!r}")
    _foreign(table, {"kind"} | INITIAL_KIND_KEYS[kind], where, f"kind = {kind!r}")
    if kind in ("eigenstate", "basis"):
        index = table.get("index", -1 if kind == "eigenstate" else 0)
        if isinstance(index, bool) or not isinstance(index, int) or not -d <= index < d:
            raise ConfigError(f"{where}.index", f"must be an integer in [{-d}, {d - 1}], got {index!r}")
        index %= d
        vector = None
        if kind == "basis":
            vector = np.zeros(d, dtype=complex)
            vector[index] = 1.0
        return InitialState(kind, vector, index)
    if kind == "product":
        return InitialState(kind, product_state(model, table.get("state", ""), f"{where}.state"))
    if kind in ("gibbs", "steady_state"):
        return InitialState(kind)
    if kind == "populations":
        return InitialState(kind, level_populations=_populations(table, base, where))
    if kind == "vector":
        if "vector" not in table:
            raise ConfigError(f"{where}.vector", "missing")
        vector = load_array(table["vector"], base, f"{where}.vector").astype(complex).ravel()
        if vector.size != d:
            raise ConfigError(f"{where}.vector", f"must have {d} components, got {vector.size}")
        norm = np.linalg.norm(vector)
        if norm == 0:
            raise ConfigError(f"{where}.vector", "is zero")
        return InitialState(kind, vector / norm)
    raise AssertionError(kind)  # every kind of INITIAL_KIND_KEYS is handled above


def _counting_fields(table: dict, base: Path) -> np.ndarray | None:
    """``[counting] s``: the counting fields (inverse energy unit) of the heat statistics;
    None when not given (the default grid depends on the spectrum:
    :func:`jumps.runtime.statistics.counting_fields`)."""
    _unknown(table, COUNTING_KEYS, "counting")
    if "s" not in table:
        return None
    values = load_array(table["s"], base, "counting.s")
    if values.ndim != 1 or values.size == 0 or np.iscomplexobj(values):
        raise ConfigError("counting.s", "must be a non-empty list of real numbers")
    return values.astype(float)


def _populations(table: dict, base: Path, where: str) -> np.ndarray:
    """Level populations (ascending energies): non-negative, adding up to one."""
    field_name = f"{where}.populations"
    if "populations" not in table:
        raise ConfigError(field_name, "missing (one weight per level, ascending energies)")
    values = load_array(table["populations"], base, field_name)
    if values.ndim != 1 or values.size == 0:
        raise ConfigError(field_name, f"must be a list of numbers, got shape {values.shape}")
    if np.iscomplexobj(values) or np.any(values < 0):
        raise ConfigError(field_name, "must be real and non-negative")
    total = float(values.sum())
    if abs(total - 1.0) > POPULATION_SUM_TOLERANCE:
        raise ConfigError(field_name, f"must add up to 1, they add up to {total:.10g}")
    return values.astype(float) / total


def _observables(spec: Any, model: Model, base: Path) -> dict[str, np.ndarray]:
    """Named Hermitian observables: a list of operator expressions or a table name = matrix."""
    if isinstance(spec, list):
        items = [(str(s), s) for s in spec]
    elif isinstance(spec, dict):
        items = list(spec.items())
    else:
        raise ConfigError("run.observables", "must be a list of names or a table name = matrix")
    out, given = {}, {}
    for name, value in items:
        field_name = f"run.observables.{name}"
        key = claim_result_key(name, field_name, given)
        if isinstance(value, str) and not value.endswith(".npy"):
            matrix = model.sparse_operator(value, field_name)
        else:
            matrix = load_array(value, base, field_name)
        d = model.dimension
        if matrix.shape != (d, d):
            raise ConfigError(field_name, f"must have shape {(d, d)}, got {matrix.shape}")
        out[key] = check_hermitian(matrix, field_name)
    return out
