"""Result directories: ``run.json`` (metadata) and ``results.npz`` (arrays), committed together.

Every file is written to a temporary file in its directory, flushed to disk, then renamed over
the target, so a crash never leaves a half-written file. A result is two files, and they must
never disagree (new arrays beside old metadata after a ``--force`` rerun killed half-way), so
a result is committed in one step (docs/design.md, "Result format")::

    OUT/run.json      -> .jumps-result/run.json        names readers use (symlinks)
    OUT/results.npz   -> .jumps-result/results.npz
    OUT/.jumps-result -> .jumps-result-<id>            the commit point (a symlink)
    OUT/.jumps-result-<id>/run.json, results.npz       one committed result

A commit writes both files into a fresh ``.jumps-result-<id>`` and then renames a new
``.jumps-result`` symlink over the old one (atomic, also on NFS and Lustre): a reader sees the
old result or the new one, never a mixture. Directories and names left by a killed commit are
recognisably ours and removed by the next run (:func:`clean_leftovers`).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_FILE = "results.npz"
META_FILE = "run.json"
RESULT_LINK = ".jumps-result"
RESULT_PREFIX = ".jumps-result-"
# A directory of checkpoints being removed is first renamed to this prefix plus an id.
DISCARDED_PREFIX = ".jumps-discarded-"
_LINK_SUFFIX = ".link"
# Result directories and directories being removed (see clean_leftovers).
_OUR_DIRECTORY = re.compile(r"^\.jumps-(result|discarded)-[0-9a-f]{16}$")
# Temporaries of ours, by name: atomic_write's files, commits' links and directories. A file
# only matches if it is one of these, so a user's files in OUT are never touched.
_TEMPORARY = re.compile(r"^\.(results\.npz|run\.json|plan\.json|a\d+-r\d+\.npz)\.[a-z0-9_]{8}\.tmp$"
                        r"|^(\.jumps-result|results\.npz|run\.json)\.[0-9a-f]{16}\.link$"
                        r"|^\.jumps-lock\.[0-9a-f]{16}\.(stale|clock)$")


def new_id() -> str:
    """A fresh identifier for a commit or a run (16 hex digits)."""
    return uuid.uuid4().hex[:16]


def inject(step: str) -> None:
    """Testing hook: ``JUMPS_INJECT="STEP=ACTION[,STEP=ACTION...]"`` acts when the run reaches
    ``STEP``: ``kill`` ends the process at once (as ``kill -9`` would: no cleanup runs), an
    errno name (``ENOSPC``, ``EIO``) raises that OSError, a signal name (``SIGTERM``) sends it
    to this process, ``sleepX`` waits X seconds. Steps: ``result-write``, ``commit-link``,
    ``commit-names``, ``commit-cleanup``, ``checkpoint`` (every periodic checkpoint),
    ``final-checkpoint``, ``chunk`` (after every chunk) and ``chunk-N`` (after this rank's N-th
    chunk)."""
    spec = os.environ.get("JUMPS_INJECT")
    if not spec:
        return
    for item in spec.split(","):
        name, _, action = item.partition("=")
        if name.strip() != step:
            continue
        action = action.strip()
        if action == "kill":
            os._exit(137)
        if action.startswith("SIG"):
            os.kill(os.getpid(), getattr(signal, action))
            return
        if action.startswith("sleep"):
            time.sleep(float(action[5:]))
            return
        code = getattr(errno, action)
        raise OSError(code, os.strerror(code), f"(injected at {step})")


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
    fsync_directory(path.parent)


def fsync_directory(path: Path) -> None:
    """Flush a directory's entries (renames, new names) to disk, where the system allows it."""
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError as error:  # some filesystems cannot fsync a directory: nothing to do there
        if error.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP, errno.EROFS):
            raise
    finally:
        os.close(handle)


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
    """Commit ``results.npz`` and ``run.json`` together (see the module's docstring)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = RESULT_PREFIX + new_id()
    staging = directory / name
    staging.mkdir()
    try:
        inject("result-write")
        write_npz(staging / RESULTS_FILE, arrays)
        write_json(staging / META_FILE, meta)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = committed_name(directory)
    inject("commit-link")
    _replace_link(directory / RESULT_LINK, name)  # the commit
    fsync_directory(directory)
    inject("commit-names")
    link_names(directory)
    inject("commit-cleanup")
    if old is not None and old != name:
        shutil.rmtree(directory / old, ignore_errors=True)


def committed_name(directory: Path) -> str | None:
    """The name of the committed result's directory (``.jumps-result-<id>``), if any."""
    try:
        target = os.readlink(Path(directory) / RESULT_LINK)
    except OSError:
        return None
    return target if target.startswith(RESULT_PREFIX) and "/" not in target else None


def link_names(directory: Path) -> None:
    """Make ``results.npz`` and ``run.json`` the symlinks into ``.jumps-result`` (idempotent;
    also completes a commit killed before this step). Regular files of the layout before
    commits (or of the analysis' own writes) are replaced, ``run.json`` removed first: a reader
    then sees no result for a moment, never new arrays beside old metadata."""
    directory = Path(directory)
    if committed_name(directory) is None:
        return
    wanted = {name: f"{RESULT_LINK}/{name}" for name in (RESULTS_FILE, META_FILE)}
    meta = directory / META_FILE
    if meta.exists() and not (meta.is_symlink() and os.readlink(meta) == wanted[META_FILE]):
        meta.unlink()
        fsync_directory(directory)
    for name in (RESULTS_FILE, META_FILE):  # run.json last: its presence marks a result
        path = directory / name
        if not (path.is_symlink() and os.readlink(path) == wanted[name]):
            _replace_link(path, wanted[name])
    fsync_directory(directory)


def _replace_link(path: Path, target: str) -> None:
    """Point the symlink ``path`` at ``target`` in one rename."""
    temporary = path.parent / f"{path.name}.{new_id()}{_LINK_SUFFIX}"
    os.symlink(target, temporary)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def clean_leftovers(directory: Path) -> list[str]:
    """Remove what killed writers of ours left in ``directory`` (call while holding its lock):
    uncommitted or replaced ``.jumps-result-<id>`` directories, temporary files and links.
    Returns the names removed."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    current = committed_name(directory)
    removed = []
    for entry in directory.iterdir():
        name = entry.name
        if _OUR_DIRECTORY.match(name) and entry.is_dir() and not entry.is_symlink():
            if name != current:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(name)
        elif _TEMPORARY.match(name) and (entry.is_symlink() or entry.is_file()):
            entry.unlink(missing_ok=True)
            removed.append(name)
    link_names(directory)
    return removed


def discard_directory(path: Path) -> None:
    """Remove a directory in a way a kill cannot leave half-done: rename it to a name
    :func:`clean_leftovers` removes, then delete it."""
    path = Path(path)
    aside = path.parent / f"{DISCARDED_PREFIX}{new_id()}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    fsync_directory(path.parent)
    shutil.rmtree(aside, ignore_errors=True)


def result_base(directory: Path) -> Path:
    """Where a result's two files are read from: the committed directory (one consistent
    pair even while another run commits), else ``directory`` itself (results written without
    commits)."""
    directory = Path(directory)
    name = committed_name(directory)
    return directory / name if name is not None else directory


def read_meta(directory: Path) -> dict | None:
    """The committed ``run.json`` of ``directory``, or None if it holds no result (an unreadable
    one gives ``{"unreadable": path}``)."""
    directory = Path(directory)
    for _ in range(3):  # the committed directory may be replaced between the two steps
        name = committed_name(directory)
        path = directory / (f"{name}/{META_FILE}" if name else META_FILE)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            if name is None:
                return None
        except (OSError, ValueError):
            return {"unreadable": str(path)}
    return None


def read_results(directory: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Load ``(arrays, meta)`` from a result directory (one committed pair)."""
    for attempt in range(3):
        base = result_base(directory)
        try:
            with np.load(base / RESULTS_FILE, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
            meta = json.loads((base / META_FILE).read_text())
            return arrays, meta
        except FileNotFoundError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
