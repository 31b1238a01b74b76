"""Result directories: ``run.json`` (metadata) and ``results.npz`` (arrays), written atomically.

A write goes to a temporary file in the same directory, is flushed to disk, then renamed over
the target, so a crash never leaves a half-written result.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_FILE = "results.npz"
META_FILE = "run.json"


def atomic_write(path: Path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); results get the usual umask permissions.
        os.chmod(temporary, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def write_json(path: Path, data: dict) -> None:
    text = json.dumps(data, indent=2, default=_json_default) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    atomic_write(path, lambda f: np.savez(f, **arrays))


def write_results(directory: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write ``results.npz`` then ``run.json`` (the metadata last: its presence marks a result)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_npz(directory / RESULTS_FILE, arrays)
    write_json(directory / META_FILE, meta)


def read_results(directory: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Load ``(arrays, meta)`` from a result directory."""
    directory = Path(directory)
    with np.load(directory / RESULTS_FILE, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    meta = json.loads((directory / META_FILE).read_text())
    return arrays, meta
