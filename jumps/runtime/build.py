"""Which generator a config gets, what it will cost, and the on-disk generator cache.

The generators (:mod:`jumps.generators`) describe the same Davies master equation; this module
picks one for a config (``run.generator``, or for ``auto`` the registry's preference among those
that accept the run), estimates its memory and build time before building, builds it (falling
back to the next candidate when a build finds it :class:`~jumps.generators.NotApplicable`),
and keeps a built generator on disk under a hash of everything it depends on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import generators
from ..core.memory import available_memory
from ..errors import ConfigError
from ..generators.base import file_digest
from ..physics.matrices import is_real, sparse
from .config import RunConfig

# Generators of this dimension and above are cached: smaller ones build in under a second.
CACHE_MIN_DIMENSION = 256
CACHE_VERSION = 1  # the file layout; the code's own hash is in the key too (_code_hash)
# A build may take this fraction of the available memory at its peak.
MEMORY_FRACTION = 0.9


def wanted_kind(config: RunConfig) -> str:
    """The generator the config asks for, before building (``auto``: the registry's first
    candidate for this dimension, initial state and density mode)."""
    return _candidates(config)[0].name


def _candidates(config: RunConfig):
    return generators.candidates(config.generator, config.model.dimension, config.initial_state,
                                 config.density_matrix)


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
        return self.memory_bytes < MEMORY_FRACTION * self.available_bytes

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
    # Large matrices run somewhat faster per d^3 than the calibration's: errs on the long side.
    floor = factor * (speed["eigh"] + n_baths * speed["product"]) * d**3
    cost = generators.get(kind).cost(config, floor, complex_values)
    return Estimate(kind, d, n_baths, float(cost.peak_bytes), float(cost.kept_bytes),
                    available_memory(), float(cost.seconds), float(floor))


def check_fits(config: RunConfig, kind: str) -> Estimate:
    """The estimate, or a ConfigError when the build would not fit in memory."""
    guess = estimate(config, kind)
    if not guess.fits:
        gib = 2.0**30
        hint = generators.get(kind).memory_hint(config)
        raise ConfigError("system", f"the {kind} generator of d = {guess.dimension} with "
                                    f"{guess.n_baths} baths needs ~{guess.memory_bytes / gib:.1f} "
                                    f"GiB, this machine has {guess.available_bytes / gib:.1f} GiB "
                                    f"available{hint}")
    return guess


# -- building, with the cache --------------------------------------------------------------------


def build(config: RunConfig, kind: str | None = None, comm=None):
    """The config's generator: from the cache when one was built from the same inputs, else
    built (and cached when ``run.cache`` is on and the build is not trivial).

    ``kind`` forces a generator (default: the config's choice). With a communicator of several
    ranks call it on all of them: the generator decides which ranks build (the rates generator
    is built by all ranks together, the channel generator by rank 0); every decision here is
    taken on rank 0 and broadcast, so that a ConfigError is raised on every rank or on none.
    Returns ``(generator, info)`` (``generator`` is None on ranks other than 0) with
    ``info = {"kind", "cached", "build_seconds"}``.
    """
    comm = comm if comm is not None else _OneRank()
    choices = [generators.get(kind)] if kind else _candidates(config)
    start = time.perf_counter()
    for position, unravelling in enumerate(choices):
        fallback = position + 1 < len(choices)
        generator = _build_one(config, unravelling, comm, fallback)
        if generator is not None:
            generator, cached = generator
            return generator, {"kind": unravelling.name, "cached": cached,
                               "build_seconds": time.perf_counter() - start}
    raise AssertionError("the last candidate either builds or raises")


def _build_one(config: RunConfig, unravelling, comm, fallback: bool):
    """``(generator, cache directory or None)``, or None when the generator does not apply
    and ``fallback`` allows the next candidate (remembered in the cache, to skip the failing
    build next time)."""
    kind = unravelling.name
    directory = cache_directory(config, kind)
    generator = None
    if comm.rank == 0 and directory is not None and (directory / "meta.json").exists():
        try:
            generator = load(directory, config)
        except (OSError, KeyError, ValueError, TypeError):
            shutil.rmtree(directory, ignore_errors=True)  # damaged: build it again
    if comm.bcast(generator is not None if comm.rank == 0 else None):
        return generator, str(directory)
    marker = directory.with_name(directory.name + ".not-applicable") if directory else None
    known = comm.bcast(bool(marker and marker.exists()) if comm.rank == 0 else None)
    if fallback and known:
        return None  # known from an earlier run: no second eigh
    failure = None
    if comm.rank == 0:
        try:
            check_fits(config, kind)
        except ConfigError as error:
            failure = (error.field, error.reason)
    failure = comm.bcast(failure)
    if failure is not None:
        raise ConfigError(*failure)
    try:
        generator = unravelling.build(config, comm)
    except generators.NotApplicable as error:
        if not fallback:
            raise
        if marker is not None and comm.rank == 0:
            _touch(marker, error.reason)
        return None
    if directory is not None and comm.rank == 0:
        save(directory, generator, kind)
    return generator, None


class _OneRank:
    """The communicator of a serial build (what :class:`jumps.runtime.parallel.Comm` is with one rank)."""

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
    head = {"version": CACHE_VERSION, "code": _code_hash(kind), "kind": kind,
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


def _code_hash(kind: str) -> str:
    """Hash of the code a generator is computed by: its own subpackage, the shared core
    (:mod:`jumps.core`), the physics (:mod:`jumps.physics`) and the interface. A changed
    algorithm or constant is a new key."""
    package = Path(__file__).resolve().parent.parent
    shared = [*sorted((package / "core").glob("*.py")), *sorted((package / "physics").glob("*.py")),
              package / "generators" / "base.py"]
    return file_digest([*generators.get(kind).code_files(), *shared])


def cache_directory(config: RunConfig, kind: str) -> Path | None:
    """Where this config's generator is cached, or None (cache off, small or unhashable)."""
    if not config.cache or config.model.dimension < CACHE_MIN_DIMENSION:
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
        arrays, meta = generators.get(kind).to_arrays(generator)
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
    return generators.get(meta["kind"]).from_arrays(arrays, meta, tuple(config.baths))
