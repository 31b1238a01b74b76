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
import math
import os
import shutil
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import generators
from ..core.memory import available_memory
from ..errors import ConfigError
from ..generators.base import DamagedArrays, file_digest
from ..physics.matrices import is_real, sparse
from . import npyfile
from .config import RunConfig

# Generators of this dimension and above are cached: smaller ones build in under a second.
CACHE_MIN_DIMENSION = 256
# The file layout; the code's own hash is in the key too (_code_hash). 2: meta.json lists every
# array's dtype, shape and CRC-32, and the key of the config the entry was built from.
CACHE_VERSION = 2
# Checksums read arrays in pieces of this many bytes (a memory-mapped array is never copied).
CHECKSUM_BLOCK = 1 << 24
CALIBRATION_FILE = "calibration.json"
CALIBRATION_KEYS = ("eigh", "product")
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
    path = default_cache_root() / CALIBRATION_FILE
    stored = _read_calibration(path)
    if stored is not None:
        _CALIBRATION.update(stored)
        return _CALIBRATION
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


def _read_calibration(path: Path) -> dict[str, float] | None:
    """The stored calibration, or None when there is none; a damaged one (not JSON, other
    keys, a value that is not a positive finite number) gives a one-line warning and None (it
    is measured again and rewritten)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        _warn(f"calibration file {path} unreadable ({error}); recomputing")
        return None
    try:
        values = json.loads(text)
        reason = None
    except ValueError:
        values, reason = None, "not JSON"
    if reason is None and (not isinstance(values, dict) or set(values) != set(CALIBRATION_KEYS)):
        reason = f"expected the keys {', '.join(CALIBRATION_KEYS)}"
    for key in CALIBRATION_KEYS if reason is None else ():
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and value > 0):
            reason = f"{key}: must be a positive finite number, got {value!r}"
            break
    if reason is not None:
        _warn(f"calibration file {path} damaged ({reason}); recomputing")
        return None
    return {key: float(values[key]) for key in CALIBRATION_KEYS}


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
    if comm.rank == 0 and directory is not None and directory.exists():
        try:
            generator = load(directory, config, kind)
        except CacheDamage as damage:  # never used: removed and built again
            _warn(f"cache entry {directory} damaged ({damage}); rebuilding")
            if directory.is_dir():
                shutil.rmtree(directory, ignore_errors=True)
            else:
                directory.unlink(missing_ok=True)
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
    """Write a small file atomically (a temporary file renamed into place: a reader never sees
    half of it); a failure only loses the file."""
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(handle, "w") as file:
            file.write(text + "\n")
        os.replace(temporary, path)
    except OSError:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def _warn(message: str) -> None:
    """One line on stderr (a damaged cache entry or calibration: the run goes on)."""
    print(f"jumps: warning: {message}", file=sys.stderr, flush=True)


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


class CacheDamage(Exception):
    """A cache entry that cannot be used; ``str()`` names the file and the problem."""


def checksum(array: np.ndarray) -> str:
    """CRC-32 of an array's bytes in file order (the order numpy.save writes), read in pieces
    of CHECKSUM_BLOCK bytes: a memory-mapped array is read from disk once, never copied
    (measured ~1 GiB/s on one core from the page cache, faster than reading the file)."""
    flat = array.reshape(-1, order="A")  # a view for C- or Fortran-ordered arrays
    step = max(1, CHECKSUM_BLOCK // max(array.itemsize, 1))
    value = 0
    for start in range(0, flat.size, step):
        piece = np.ascontiguousarray(flat[start:start + step])
        value = zlib.crc32(piece.view(np.uint8), value)
    return f"{value:08x}"


def save(directory: Path, generator, kind: str, key: str | None = None) -> None:
    """Write the generator's arrays as .npy files (memory-mapped on load), atomically: into a
    temporary directory, renamed into place. ``meta.json`` lists each array's dtype, shape and
    checksum, and the config's cache key (``key``, default the directory's). A failure to
    write only loses the cache."""
    directory = Path(directory)
    temporary = None
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        arrays, meta = generators.get(kind).to_arrays(generator)
        manifest = {}
        for name, array in arrays.items():
            array = np.asarray(array)
            np.save(temporary / f"{name}.npy", array, allow_pickle=False)
            manifest[name] = {"dtype": array.dtype.str, "shape": list(array.shape),
                              "crc32": checksum(array)}
        meta["kind"] = kind
        meta["cache"] = {"version": CACHE_VERSION, "key": key or _entry_key(directory),
                         "dimension": int(generator.dimension), "arrays": manifest}
        meta = json.loads(json.dumps(meta, default=float))  # as it will be read back
        meta["cache"]["meta_crc32"] = _meta_checksum(meta)
        (temporary / "meta.json").write_text(json.dumps(meta))
        os.replace(temporary, directory)
    except OSError:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


def _meta_checksum(meta: dict) -> str:
    """CRC-32 of the metadata (scalars such as ``degeneracy_tol`` shape the results too),
    without the checksum itself."""
    cache = {k: v for k, v in meta.get("cache", {}).items() if k != "meta_crc32"}
    text = json.dumps({**meta, "cache": cache}, sort_keys=True)
    return f"{zlib.crc32(text.encode()):08x}"


def _entry_key(directory: Path) -> str:
    """The cache key in an entry's name ``<kind>-<key>``."""
    return Path(directory).name.rpartition("-")[2]


def load(directory: Path, config: RunConfig, kind: str | None = None):
    """A cached generator, validated before use; large arrays are memory-mapped read-only.

    Raises :class:`CacheDamage` unless: ``meta.json`` is this layout's, of generator ``kind``
    (default: the one it names), built from the config whose key names the directory
    (:func:`cache_directory`), of its dimension and number of baths; the ``.npy`` files are exactly those listed, each a complete array of the listed
    dtype and shape with the listed checksum; and the generator's own consistency checks pass
    (:meth:`~jumps.generators.base.Unravelling.check_arrays`: every index the kernel follows
    within range). Cost: one read of every array for the checksums and a pass over the index
    arrays: 0.5 s for the 320 MiB entry of a 12-spin chain (d = 4096; 0.35 s of checksums, 0.1 s
    of range checks, against 0.02 s to memory-map it unchecked and 190 s to build it), so ~10 s
    for the ~9 GiB of 14 spins, whose build takes tens of minutes."""
    directory = Path(directory)
    meta = _read_meta(directory, kind)
    kind = meta["kind"]
    key = _entry_key(directory)  # cache_directory names the entry by the config's key
    cache = meta["cache"]
    if cache.get("key") != key:
        raise CacheDamage(f"meta.json: built from another config (key {cache.get('key')!r}, "
                          f"this config's is {key!r})")
    if cache.get("dimension") != config.model.dimension:
        raise CacheDamage(f"meta.json: dimension {cache.get('dimension')!r}, the config's is "
                          f"{config.model.dimension}")
    arrays = _read_arrays(directory, cache["arrays"])
    unravelling = generators.get(kind)
    try:
        unravelling.check_arrays(arrays, meta, len(config.baths))
        return unravelling.from_arrays(arrays, meta, tuple(config.baths))
    except DamagedArrays as error:
        raise CacheDamage(str(error)) from None
    except (KeyError, ValueError, TypeError, IndexError) as error:
        raise CacheDamage(f"its arrays are not a {kind} generator ({error})") from None


def _read_meta(directory: Path, kind: str | None) -> dict:
    try:
        meta = json.loads((directory / "meta.json").read_text())
    except FileNotFoundError:
        raise CacheDamage("meta.json: missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise CacheDamage(f"meta.json: unreadable ({str(error)[:80]})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("cache"), dict):
        raise CacheDamage("meta.json: not a cache entry's metadata")
    cache = meta["cache"]
    if cache.get("version") != CACHE_VERSION:
        raise CacheDamage(f"meta.json: layout version {cache.get('version')!r}, expected "
                          f"{CACHE_VERSION}")
    if cache.get("meta_crc32") != _meta_checksum(meta):
        raise CacheDamage("meta.json: checksum mismatch")
    if meta.get("kind") not in generators.names() or (kind is not None and meta["kind"] != kind):
        raise CacheDamage(f"meta.json: generator {meta.get('kind')!r}, expected {kind!r}")
    if not isinstance(cache.get("arrays"), dict):
        raise CacheDamage("meta.json: no list of arrays")
    return meta


def _read_arrays(directory: Path, manifest: dict) -> dict[str, np.ndarray]:
    """The listed arrays, memory-mapped (copy-on-write), each checked against its header and
    checksum."""
    present = {path.stem for path in directory.glob("*.npy")}
    for name in sorted(set(manifest) ^ present):
        raise CacheDamage(f"{name}.npy: {'missing' if name in manifest else 'not listed in meta.json'}")
    arrays = {}
    for name, entry in manifest.items():
        path = directory / f"{name}.npy"
        if not isinstance(entry, dict) or not {"dtype", "shape", "crc32"} <= set(entry):
            raise CacheDamage(f"meta.json: the entry of {name}.npy is incomplete")
        try:
            header = npyfile.read_header(path)
        except npyfile.BadArrayFile as error:
            raise CacheDamage(f"{name}.npy: {error}") from None
        if header.dtype.str != entry["dtype"] or list(header.shape) != entry["shape"]:
            raise CacheDamage(f"{name}.npy: {header.dtype.str} {header.shape}, meta.json says "
                              f"{entry['dtype']} {tuple(entry['shape'])}")
        try:
            # Copy-on-write, not read-only: Numba types a read-only array apart, so a generator
            # loaded read-only compiled every kernel a second time (~60 s at d = 256). Nothing
            # writes to these arrays; a write would change this process's pages, not the file.
            array = np.load(path, mmap_mode="c", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise CacheDamage(f"{name}.npy: unreadable ({error})") from None
        if checksum(array) != entry["crc32"]:
            raise CacheDamage(f"{name}.npy: checksum mismatch")
        arrays[name] = array
    return arrays
