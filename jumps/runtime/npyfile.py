"""Reading ``.npy`` files that may be damaged or foreign, without trusting them.

A ``.npy`` file names its dtype and shape in a header; :func:`read_header` reads only that
(``numpy.lib.format``), so that a file which is not a plain array (a ``.npz`` archive given a
``.npy`` name, a pickle, a corrupted header, a header claiming more data than the file holds or
than fits in memory) is refused with a one-line reason before any data is read or allocated.
The config (:func:`jumps.runtime.config.load_array`) and the generator cache
(:mod:`jumps.runtime.build`) both read their files through it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.memory import available_memory

# The header of a .npy file is short; a longer one is not a file numpy.save wrote.
MAX_HEADER_BYTES = 1 << 16
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Header:
    """What a ``.npy`` header declares, and where the data starts."""

    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype
    offset: int       # bytes before the data
    file_bytes: int   # the file's size

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    @property
    def data_bytes(self) -> int:
        return self.count * self.dtype.itemsize


class BadArrayFile(ValueError):
    """The file is not a plain, complete ``.npy`` array; ``str()`` is the reason."""


def read_header(path: str | Path, complete: bool = True) -> Header:
    """The header of a ``.npy`` file, checked: a plain numeric-or-bool array (no Python
    objects) and, with ``complete``, its data present in full (no more, no less: see
    :func:`check_complete`). Raises :class:`BadArrayFile`."""
    path = Path(path)
    try:
        with open(path, "rb") as file:
            start = file.read(len(ZIP_MAGIC))
            if start == ZIP_MAGIC:
                raise BadArrayFile("is a .npz archive (zip), not a .npy array: save one array "
                                   "with numpy.save")
            file.seek(0)
            try:
                version = np.lib.format.read_magic(file)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(
                        file, max_header_size=MAX_HEADER_BYTES)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(
                        file, max_header_size=MAX_HEADER_BYTES)
                else:
                    raise BadArrayFile(f"unsupported .npy format version {version}")
            except BadArrayFile:
                raise
            except (ValueError, SyntaxError, TypeError, OverflowError, EOFError) as error:
                raise BadArrayFile(f"not a .npy array file ({_short(error)})") from None
            offset = file.tell()
            size = path.stat().st_size
    except OSError as error:
        raise BadArrayFile(f"cannot be read ({error.strerror or error})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise BadArrayFile(f"holds {dtype} values (Python objects or records), not numbers")
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise BadArrayFile(f"holds {dtype} values, not numbers")
    header = Header(tuple(int(n) for n in shape), bool(fortran), dtype, offset, size)
    if complete:
        check_complete(header)
    return header


def check_complete(header: Header) -> None:
    """Refuse a file whose data is shorter or longer than its header declares."""
    size, offset, dtype = header.file_bytes, header.offset, header.dtype
    if size - offset != header.data_bytes:
        what = "truncated" if size - offset < header.data_bytes else "longer than its header says"
        raise BadArrayFile(f"{what}: the header declares shape {header.shape} of {dtype} "
                           f"({header.data_bytes} bytes of data), the file holds "
                           f"{size - offset}")


def check_fits(header: Header, bytes_per_element: float, fraction: float = 0.5) -> None:
    """Refuse an array that would take more than ``fraction`` of the available memory once
    converted to ``bytes_per_element`` per element (what the caller makes of it)."""
    needed = header.count * bytes_per_element
    available = available_memory()
    if needed > fraction * available:
        raise BadArrayFile(f"holds a {header.shape} {header.dtype} array: loading it needs "
                           f"~{gib(needed)}, this machine has {gib(available)} available")


def load(path: str | Path, bytes_per_element: float = 16.0, mmap: bool = False) -> np.ndarray:
    """The array of a checked ``.npy`` file (:func:`read_header`, and :func:`check_fits` unless
    memory-mapped). Raises :class:`BadArrayFile`."""
    header = read_header(path, complete=False)
    if not mmap:
        check_fits(header, bytes_per_element)
    check_complete(header)
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise BadArrayFile(f"unreadable ({_short(error)})") from None


def gib(nbytes: float) -> str:
    """``nbytes`` in a readable unit."""
    for unit, size in (("TiB", 2.0**40), ("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10)):
        if nbytes >= size:
            return f"{nbytes / size:.3g} {unit}"
    return f"{nbytes:.0f} bytes"


def _short(error: BaseException) -> str:
    """The first line of an error message, at most 120 characters."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."
