"""Which generator a config gets, what it will cost, and the on-disk generator cache.

Two generators describe the same Davies master equation:

- ``channels`` (:mod:`jumps.davies`): every channel ``(bath, Bohr frequency)`` with its sparse
  jump operator. Any spectrum, any initial state, coherences, the full density matrix; memory
  ~``n_baths d^2`` entries, so up to d ~ 2048.
- ``rates`` (:mod:`jumps.rates`): the rates between eigenstates of a non-degenerate spectrum,
  for trajectories that start in an eigenstate or the Gibbs state (they then stay in
  eigenstates, exactly). Memory ~``d^2`` numbers, build time near the BLAS floor: up to 14 spins.

``auto`` takes ``rates`` for d >= 256 when the initial state is an eigenstate or Gibbs and no
full density matrix is asked for, and ``channels`` otherwise (and when the spectrum turns out
degenerate). The cache keeps a built generator under a hash of everything it depends on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from . import rates
from .config import RunConfig
from .davies import DaviesGenerator, build_generator
from .errors import ConfigError
from .matrices import is_real, sparse

AUTO_RATES_DIMENSION = 256
GENERATOR_KINDS = ("auto", "channels", "rates")
CACHE_VERSION = 1  # the file layout; the code's own hash is in the key too (_code_hash)
# Bytes per stored eigenbasis entry of the channel generator and its kernel tables, measured
# on the 10-spin chain (10.5e6 entries; row, column, value, channel, transition table, pairs).
CHANNEL_BYTES_PER_ENTRY = 150


def wanted_kind(config: RunConfig) -> str:
    """The generator the config asks for (``auto`` resolved before the spectrum is known)."""
    if config.generator != "auto":
        return config.generator
    pure_start = config.initial_state.kind in ("eigenstate", "gibbs")
    if config.model.dimension >= AUTO_RATES_DIMENSION and pure_start and config.store_density != "full":
        return "rates"
    return "channels"


# -- estimates ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """What a build will cost on this machine (before building)."""

    kind: str
    dimension: int
    n_baths: int
    memory_bytes: float       # peak while building
    kept_bytes: float         # what the generator keeps
    available_bytes: float
    seconds: float            # build time, extrapolated from a timed small eigh and product
    floor_seconds: float      # its BLAS part: one eigh and one d^3 product per coupling

    @property
    def fits(self) -> bool:
        return self.memory_bytes < 0.9 * self.available_bytes

    def lines(self) -> list[str]:
        gib = 2.0**30
        return [f"generator        {self.kind}",
                (f"estimate         peak memory {self.memory_bytes / gib:.2f} GiB (keeps "
                f"{self.kept_bytes / gib:.2f} GiB; {self.available_bytes / gib:.1f} GiB available), "
                f"build ~{_duration(self.seconds)} (BLAS floor ~{_duration(self.floor_seconds)})")]


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.2g} s"
    return f"{seconds / 60:.3g} min"


_CALIBRATION: dict[str, float] = {}


def _calibrate() -> dict[str, float]:
    """Seconds per d^3 of a real ``eigh`` and of a real matrix product, timed at d = 1024
    (~0.4 s, the best of two) once per machine and kept in the cache directory. Larger
    matrices run somewhat faster per d^3, so the extrapolation errs on the long side."""
    if _CALIBRATION:
        return _CALIBRATION
    path = default_cache_root() / "calibration.json"
    try:
        _CALIBRATION.update(json.loads(path.read_text()))
        return _CALIBRATION
    except (OSError, ValueError):
        pass
    import scipy.linalg as sl

    size = 1024
    matrix = np.random.default_rng(0).standard_normal((size, size))
    matrix = matrix + matrix.T
    eigh = product = np.inf
    for _ in range(2):
        start = time.perf_counter()
        _, vectors = sl.eigh(matrix, driver="evr", check_finite=False)
        eigh = min(eigh, time.perf_counter() - start)
        start = time.perf_counter()
        vectors @ matrix
        product = min(product, time.perf_counter() - start)
    _CALIBRATION.update(eigh=eigh / size**3, product=product / size**3)
    _touch(path, json.dumps(_CALIBRATION))
    return _CALIBRATION


def estimate(config: RunConfig, kind: str | None = None) -> Estimate:
    """Memory and time of building the config's generator (``kind`` default: wanted_kind)."""
    kind = kind or wanted_kind(config)
    d, n_baths = config.model.dimension, len(config.baths)
    complex_values = not (is_real(config.model.stored_hamiltonian)
                          and all(is_real(A) for A in config.couplings))
    factor = 4.0 if complex_values else 1.0  # complex arithmetic: four real products
    speed = _calibrate()
    # Small products run below BLAS speed: the calibration at 512 overestimates large d a bit.
    floor = factor * (speed["eigh"] + n_baths * speed["product"]) * d**3
    if kind == "rates":
        n_groups = len({b.key for b in config.baths})
        memory = rates.memory_estimate(d, n_baths, complex_values, n_groups=n_groups)
        peak, kept, seconds = memory["peak"], memory["kept"], 1.25 * floor + 0.5
    else:
        entries = n_baths * d * d
        kept = entries * CHANNEL_BYTES_PER_ENTRY + 3 * 16 * d * d
        peak, seconds = 1.3 * kept, floor + 2.3e-6 * entries + 0.5
    return Estimate(kind, d, n_baths, float(peak), float(kept), rates.available_memory(),
                    float(seconds), float(floor))


def check_fits(config: RunConfig, kind: str) -> Estimate:
    """The estimate, or a ConfigError when the build would not fit in memory."""
    guess = estimate(config, kind)
    if not guess.fits:
        gib = 2.0**30
        pure = config.initial_state.kind in ("eigenstate", "gibbs")
        hint = (" (the rates generator needs less: start in an eigenstate or the Gibbs state)"
                if kind == "channels" and not pure else "")
        raise ConfigError("system", f"the {kind} generator of d = {guess.dimension} with "
                                    f"{guess.n_baths} baths needs ~{guess.memory_bytes / gib:.1f} "
                                    f"GiB, this machine has {guess.available_bytes / gib:.1f} GiB "
                                    f"available{hint}")
    return guess


# -- building, with the cache --------------------------------------------------------------------


def build(config: RunConfig, kind: str | None = None, comm=None):
    """The config's generator: from the cache when one was built from the same inputs, else
    built (and cached when ``run.cache`` is on and the build is not trivial).

    With a communicator of several ranks call it on all of them: the rates generator is then
    built by all ranks together (:func:`jumps.rates.build_rate_generator`), the channel
    generator by rank 0; every decision is taken on rank 0 and broadcast, so that a ConfigError
    is raised on every rank or on none. Returns ``(generator, info)`` (``generator`` is None
    on ranks other than 0) with ``info = {"kind", "cached", "build_seconds"}``.
    """
    comm = comm if comm is not None else _OneRank()
    kind = kind or wanted_kind(config)
    start = time.perf_counter()
    directory = cache_directory(config, kind)
    generator = None
    if comm.rank == 0 and directory is not None and (directory / "meta.json").exists():
        try:
            generator = load(directory, config)
        except (OSError, KeyError, ValueError, TypeError):
            shutil.rmtree(directory, ignore_errors=True)  # damaged: build it again
    if comm.bcast(generator is not None if comm.rank == 0 else None):
        return generator, {"kind": kind, "cached": str(directory),
                           "build_seconds": time.perf_counter() - start}
    degenerate = directory.with_name(directory.name + ".degenerate") if directory else None
    known = comm.bcast(bool(degenerate and degenerate.exists()) if comm.rank == 0 else None)
    if kind == "rates" and config.generator == "auto" and known:
        return build(config, "channels", comm)  # known from an earlier run: no second eigh
    failure = None
    if comm.rank == 0:
        try:
            check_fits(config, kind)
        except ConfigError as error:
            failure = (error.field, error.reason)
    failure = comm.bcast(failure)
    if failure is not None:
        raise ConfigError(*failure)
    if kind == "rates":
        try:
            generator = rates.build_rate_generator(
                config.model.stored_hamiltonian, config.couplings, config.baths,
                degeneracy_tol=config.degeneracy_tol, lamb_shift=config.lamb_shift,
                comm=comm if comm.is_parallel else None)
        except ConfigError as error:
            if config.generator == "auto" and "degenerate levels" in error.reason:
                if degenerate is not None and comm.rank == 0:
                    _touch(degenerate, error.reason)
                return build(config, "channels", comm)
            raise
    elif comm.rank == 0:
        generator = build_generator(config.model.hamiltonian, config.couplings, config.baths,
                                    degeneracy_tol=config.degeneracy_tol,
                                    drop_tol=config.drop_tol, lamb_shift=config.lamb_shift)
    seconds = time.perf_counter() - start
    if directory is not None and comm.rank == 0:
        save(directory, generator, kind)
    return generator, {"kind": kind, "cached": None, "build_seconds": seconds}


class _OneRank:
    """The communicator of a serial build (what :class:`jumps.parallel.Comm` is with one rank)."""

    rank, size, is_parallel = 0, 1, False

    @staticmethod
    def bcast(value):
        return value


def _touch(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    except OSError:
        pass


def default_cache_root() -> Path:
    """``$JUMPS_CACHE_DIR``, else ``$XDG_CACHE_HOME/jumps`` or ``~/.cache/jumps``."""
    if os.environ.get("JUMPS_CACHE_DIR"):
        return Path(os.environ["JUMPS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jumps"


def cache_key(config: RunConfig, kind: str) -> str | None:
    """Hash of everything the generator depends on, or None if something cannot be hashed
    (a bath defined by a Python function)."""
    digest = hashlib.sha256()
    head = {"version": CACHE_VERSION, "code": _code_hash(), "kind": kind,
            "degeneracy_tol": config.degeneracy_tol, "drop_tol": config.drop_tol,
            "lamb_shift": config.lamb_shift}
    for bath in config.baths:
        if bath.fingerprint is None:
            return None
        head.setdefault("baths", []).append(bath.fingerprint)
    digest.update(json.dumps(head, sort_keys=True, default=str).encode())
    for matrix in [config.model.stored_hamiltonian, *config.couplings]:
        csr = sparse(matrix)
        csr.sort_indices()
        digest.update(f"{csr.shape} {csr.nnz}".encode())
        for part in (csr.indptr, csr.indices, csr.data):
            digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()[:24]


def _code_hash() -> str:
    """Hash of the modules a generator is computed by: a changed algorithm is a new key."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in ("baths.py", "davies.py", "rates.py", "kernels.py", "matrices.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:12]


def cache_directory(config: RunConfig, kind: str) -> Path | None:
    """Where this config's generator is cached, or None (cache off, small or unhashable)."""
    if not config.cache or config.model.dimension < AUTO_RATES_DIMENSION:
        return None
    key = cache_key(config, kind)
    return None if key is None else default_cache_root() / f"{kind}-{key}"


def save(directory: Path, generator, kind: str) -> None:
    """Write the generator's arrays as .npy files (memory-mapped on load), atomically: into a
    temporary directory, renamed into place. A failure to write only loses the cache."""
    directory = Path(directory)
    temporary = None
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        arrays, meta = _flatten(generator)
        for name, array in arrays.items():
            np.save(temporary / f"{name}.npy", array, allow_pickle=False)
        meta["kind"] = kind
        (temporary / "meta.json").write_text(json.dumps(meta, default=float))
        os.replace(temporary, directory)
    except OSError:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


def load(directory: Path, config: RunConfig):
    """A cached generator; large arrays are memory-mapped read-only."""
    meta = json.loads((Path(directory) / "meta.json").read_text())
    arrays = {p.stem: np.load(p, mmap_mode="r", allow_pickle=False)
              for p in Path(directory).glob("*.npy")}
    return _unflatten(meta, arrays, config)


def _flatten(generator) -> tuple[dict[str, np.ndarray], dict]:
    arrays: dict[str, np.ndarray] = {}
    meta: dict = {"class": type(generator).__name__}
    for item in fields(generator):
        value = getattr(generator, item.name)
        if isinstance(value, np.ndarray):
            arrays[item.name] = value
        elif item.name == "couplings":
            for a, A in enumerate(value):
                arrays[f"coupling{a}_indptr"], arrays[f"coupling{a}_indices"] = A.indptr, A.indices
                arrays[f"coupling{a}_data"] = A.data
            meta["n_couplings"] = len(value)
        elif item.name == "rate_tables":
            arrays.update({f"rate_{k}": v for k, v in value._asdict().items()})
        elif item.name != "baths":
            meta[item.name] = value
    return arrays, meta


def _unflatten(meta: dict, arrays: dict[str, np.ndarray], config: RunConfig):
    if meta["class"] == "DaviesGenerator":
        names = {f.name for f in fields(DaviesGenerator)}
        values = {k: v for k, v in arrays.items() if k in names}
        values.update({k: v for k, v in meta.items() if k in names})
        return DaviesGenerator(**values, baths=tuple(config.baths))
    d = arrays["energies"].shape[0]
    couplings = tuple(sp.csr_matrix((arrays[f"coupling{a}_data"], arrays[f"coupling{a}_indices"],
                                     arrays[f"coupling{a}_indptr"]), shape=(d, d))
                      for a in range(meta["n_couplings"]))
    tables = rates.RateTables(**{k: arrays[f"rate_{k}"] for k in rates.RateTables._fields})
    names = {f.name for f in fields(rates.RateGenerator)}
    values = {k: v for k, v in arrays.items() if k in names}
    values.update({k: v for k, v in meta.items() if k in names})
    return rates.RateGenerator(**values, couplings=couplings, rate_tables=tables,
                               baths=tuple(config.baths))
