"""Checkpoints of a trajectory run, and resuming one.

``OUT/checkpoint/plan.json`` holds the run's fingerprint (:mod:`jumps.runtime.fingerprint`),
its config and a run id. Every rank writes ``OUT/checkpoint/a{attempt}-r{rank}.npz``
(atomically) with the sums of the chunks it finished in this attempt, their numbers, their rows
and per-trajectory records, the file's identity (the fingerprint's digest, the run id, the
attempt and the rank) and a SHA-256 of all of it. The tallies of an attempt start from zero, so
the files of all attempts hold disjoint sets of chunks and a resume adds them up: no
coordination between ranks is needed to checkpoint, and a ``kill -9`` loses only the chunks
that were running. A resume checks every file (readable, checksum, identity, chunk numbers in
range and disjoint, rows and array shapes matching the plan) and refuses a bad one by name, or
drops it with ``--discard-damaged`` and runs its chunks again.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.sums import SPARSE_KEYS, Accumulator
from ..errors import ConfigError
from . import fingerprint as fingerprints
from .io import clean_leftovers, discard_directory, inject, new_id, read_meta, write_json, write_npz

CHECKPOINT_DIR = "checkpoint"
PLAN_FILE = "plan.json"
_NAME = re.compile(r"^a(\d{3,})-r(\d{4,})\.npz$")
_DAMAGED_ADVICE = ("use --resume --discard-damaged to drop it and run its chunks again, or "
                   "--force to start over")


def checksum(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of named arrays: names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{value.dtype.str}\0{value.shape}\0".encode())
        digest.update(value.reshape(-1).view(np.uint8) if value.size else b"")
    return digest.hexdigest()


def file_name(attempt: int, rank: int) -> str:
    return f"a{attempt:03d}-r{rank:04d}.npz"


class RankCheckpoint:
    """One rank's checkpoint file for one attempt of the run ``run_id``."""

    def __init__(self, out: Path, digest: str, run_id: str, attempt: int, rank: int):
        self.path = Path(out) / CHECKPOINT_DIR / file_name(attempt, rank)
        self.identity = json.dumps({"digest": digest, "run_id": run_id, "attempt": attempt,
                                    "rank": rank})
        self.rank = rank
        self._warned: set = set()

    def write(self, sums: dict[str, np.ndarray], chunks: list[int], rows: np.ndarray,
              records: dict[str, np.ndarray], final: bool = False) -> bool:
        """The sums of ``chunks`` and the per-trajectory ``records`` of their ``rows``. A write
        that fails warns (once per kind of failure) and returns False: the run goes on."""
        arrays = {**{f"sum_{k}": v for k, v in sums.items()},
                  **{f"record_{k}": v[rows] for k, v in records.items()},
                  "chunks": np.array(chunks, dtype=np.int64), "rows": rows,
                  "identity": np.array(self.identity)}
        arrays["checksum"] = np.array(checksum(arrays))
        try:
            inject("final-checkpoint" if final else "checkpoint")
            write_npz(self.path, arrays)
        except OSError as error:
            kind = (error.errno, final)
            if kind not in self._warned:
                self._warned.add(kind)
                what = "final checkpoint" if final else "checkpoint"
                goes_on = ("" if final else "; the run goes on (warned once for this kind of "
                                            "failure)")
                print(f"jumps: warning: rank {self.rank}: {what} not written ({error.strerror}: "
                      f"{self.path}){goes_on}", file=sys.stderr)
            return False
        return True


@dataclass
class CheckpointFile:
    """One validated checkpoint file."""

    path: Path
    chunks: np.ndarray
    rows: np.ndarray
    sums: dict[str, np.ndarray]
    records: dict[str, np.ndarray]


@dataclass
class Previous:
    """This run's checkpoint state on rank 0: the earlier attempts' files and what
    :meth:`begin` does once the run is about to compute (nothing changes on disk before, so a
    run refused during its build leaves the directory as it found it)."""

    out: Path
    fingerprint: dict
    config: dict
    run_id: str
    attempt: int
    files: list[CheckpointFile] = field(default_factory=list)
    dropped: list[tuple[Path, str]] = field(default_factory=list)
    fresh: bool = True
    _sums: dict | None = None

    @property
    def digest(self) -> str:
        return fingerprints.digest(self.fingerprint)

    @property
    def chunks(self) -> set[int]:
        return {int(c) for f in self.files for c in f.chunks}

    @property
    def sums(self) -> dict[str, np.ndarray] | None:
        """The earlier attempts' sums added up (None if there are none)."""
        if self._sums is None and self.files:
            accumulator = Accumulator()
            for f in self.files:
                accumulator.add(f.sums)
            self._sums = accumulator.sums()
        return self._sums

    def fill(self, records: dict[str, np.ndarray]) -> None:
        """Write the earlier attempts' per-trajectory records into ``records`` (in place)."""
        for f in self.files:
            for name, value in f.records.items():
                records[name][f.rows] = value

    def check_shapes(self, sums: dict[str, np.ndarray], records: dict[str, np.ndarray],
                     discard: bool) -> None:
        """Every file's arrays must have the plan's shapes (``sums`` and ``records`` of a
        fresh runner); a file that does not is refused, or dropped with ``discard``."""
        for f in list(self.files):
            problem = _shape_problem(f, sums, records)
            if problem is None:
                continue
            if not discard:
                raise ConfigError(str(f.path), f"does not match this run's plan ({problem}); "
                                               f"{_DAMAGED_ADVICE}")
            self.files.remove(f)
            self.dropped.append((f.path, problem))
            self._sums = None

    def begin(self) -> None:
        """Rank 0, before computing: a fresh run replaces any old checkpoint directory and
        writes ``plan.json``; a resumed one deletes the dropped files."""
        directory = self.out / CHECKPOINT_DIR
        if self.fresh:
            if directory.exists():
                discard_directory(directory)
            directory.mkdir()
            write_json(directory / PLAN_FILE, {"fingerprint": self.fingerprint,
                                               "digest": self.digest, "run_id": self.run_id,
                                               "config": self.config})
            return
        clean_leftovers(directory)
        for path, problem in self.dropped:
            path.unlink(missing_ok=True)
            print(f"jumps: note: dropped checkpoint {path} ({problem}); its chunks run again",
                  file=sys.stderr)


def start_or_resume(out: Path, fingerprint: dict, config: dict, resume: bool, force: bool,
                    discard: bool = False) -> Previous | None:
    """On rank 0, before anything is built: what this run continues. None: ``--resume`` found
    this run's complete result (nothing to do). Refusals are ConfigErrors naming what differs
    or which file is bad; nothing on disk changes here but leftovers of a finished commit."""
    out = Path(out)
    directory = out / CHECKPOINT_DIR
    result = read_meta(out)
    plan = _read_plan(directory)
    if plan and result and plan.get("run_id") == result.get("run_id"):
        discard_directory(directory)  # a commit killed before it removed its checkpoints
        plan = None
    fresh = Previous(out, fingerprint, config, new_id(), 1)
    interrupted = directory.exists()
    if not resume:
        if force:
            return fresh
        if interrupted:
            raise ConfigError("--out", f"{out} holds an interrupted run: use --resume to continue "
                                       "it or --force to start over")
        if result is not None:
            raise ConfigError("--out", f"{out} already holds a result (use --force to overwrite)")
        return fresh
    if interrupted:
        if plan is None:
            if force:
                return fresh
            raise ConfigError(str(directory / PLAN_FILE), "missing or unreadable: cannot tell "
                                                          "which run the checkpoints belong to; "
                                                          "use --force to start over")
        changed = fingerprints.differences(plan.get("fingerprint", {}), fingerprint,
                                           plan.get("config"), config, "in the interrupted run",
                                           "the interrupted run")
        if changed:
            if force:
                print(f"jumps: note: --resume --force: starting over ({'; '.join(changed)})",
                      file=sys.stderr)
                return fresh
            raise ConfigError("--resume", f"{'; '.join(changed)}; use --force to start over")
        return _load(out, plan, discard)
    if result is not None and not force:
        return _check_complete(out, result, fingerprint, config)
    return fresh


def _check_complete(out: Path, result: dict, fingerprint: dict, config: dict) -> None:
    """``--resume`` on a complete result: nothing if it is this run's, else a refusal."""
    if "unreadable" in result:
        raise ConfigError(result["unreadable"], "unreadable result metadata; use --force to rerun")
    if result.get("method") != "trajectories":
        raise ConfigError("--resume", f"{out} holds a result of method "
                                      f"{result.get('method')!r}, not a trajectory run; use "
                                      "--force to overwrite it")
    stored = result.get("fingerprint")
    if not isinstance(stored, dict):
        raise ConfigError("--resume", f"{out} holds a result without a fingerprint (written by "
                                      "an older jumps): cannot tell whether it is this run's; "
                                      "use --force to rerun")
    changed = fingerprints.differences(stored, fingerprint, result.get("config"), config,
                                       "in the complete result", "the result was written")
    if changed:
        raise ConfigError("--resume", f"{out} holds a complete result of another run: "
                                      f"{'; '.join(changed)}; use --force to rerun")


def _read_plan(directory: Path) -> dict | None:
    try:
        plan = json.loads((directory / PLAN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return plan if isinstance(plan, dict) and "run_id" in plan else None


def _load(out: Path, plan: dict, discard: bool) -> Previous:
    """Validate and load the interrupted run's checkpoint files."""
    directory = out / CHECKPOINT_DIR
    ntraj, chunk = plan["fingerprint"]["trajectories"], plan["fingerprint"]["chunk_size"]
    previous = Previous(out, plan["fingerprint"], plan.get("config", {}), plan["run_id"], 1,
                        fresh=False)
    claimed: dict[int, Path] = {}
    last_attempt = 0
    for path in sorted(directory.glob("a*-r*.npz")):
        match = _NAME.match(path.name)
        if match:
            last_attempt = max(last_attempt, int(match[1]))
        entry, problem = _read(path, match, plan, ntraj, chunk)
        if entry is not None:
            overlap = [int(c) for c in entry.chunks if int(c) in claimed]
            if overlap:
                problem = (f"holds chunk {overlap[0]}, which {claimed[overlap[0]].name} holds "
                           "too (copied or renamed by hand?)")
        if problem is not None:
            if not discard:
                raise ConfigError(str(path), f"{problem}; {_DAMAGED_ADVICE}")
            previous.dropped.append((path, problem))
            continue
        claimed.update({int(c): path for c in entry.chunks})
        previous.files.append(entry)
    previous.attempt = last_attempt + 1
    return previous


def _read(path: Path, match, plan: dict, ntraj: int, chunk: int):
    """``(CheckpointFile, None)`` or ``(None, what is wrong)``."""
    if match is None:
        return None, "not a checkpoint name (a<attempt>-r<rank>.npz)"
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except Exception as error:  # noqa: BLE001 - whatever a damaged file raises, it is damaged
        return None, f"damaged (unreadable: {type(error).__name__}: {error})"
    stored = arrays.pop("checksum", None)
    if stored is None or "identity" not in arrays:
        return None, "damaged or foreign (no checksum or identity)"
    if str(stored) != checksum(arrays):
        return None, "damaged (checksum mismatch)"
    try:
        identity = json.loads(str(arrays.pop("identity")))
        attempt, rank = int(identity["attempt"]), int(identity["rank"])
    except (ValueError, KeyError, TypeError):
        return None, "damaged (unreadable identity)"
    if identity.get("run_id") != plan["run_id"] or identity.get("digest") != plan.get("digest"):
        return None, (f"belongs to another run (run id {identity.get('run_id')}; this run's is "
                      f"{plan['run_id']})")
    if (attempt, rank) != (int(match[1]), int(match[2])):
        return None, f"was renamed (it was written as {file_name(attempt, rank)})"
    chunks, rows = arrays.get("chunks"), arrays.get("rows")
    n_chunks = -(-ntraj // chunk)
    if (chunks is None or rows is None or chunks.ndim != 1 or chunks.dtype.kind not in "iu"
            or np.unique(chunks).size != chunks.size):
        return None, "damaged (chunk numbers missing or repeated)"
    if chunks.size and (chunks.min() < 0 or chunks.max() >= n_chunks):
        return None, f"chunk numbers out of range (the plan has {n_chunks} chunks)"
    expected = _rows(sorted(int(c) for c in chunks), ntraj, chunk)
    if rows.shape != expected.shape or not np.array_equal(rows, expected):
        return None, "its rows are not those of its chunks"
    sums = {k[4:]: v for k, v in arrays.items() if k.startswith("sum_")}
    records = {k[7:]: v for k, v in arrays.items() if k.startswith("record_")}
    return CheckpointFile(path, chunks, rows, sums, records), None


def _rows(chunks: list[int], ntraj: int, chunk: int) -> np.ndarray:
    if not chunks:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(c * chunk, min((c + 1) * chunk, ntraj))
                           for c in chunks]).astype(np.int64)


def _shape_problem(f: CheckpointFile, sums: dict[str, np.ndarray],
                   records: dict[str, np.ndarray]) -> str | None:
    if set(f.sums) != set(sums):
        return f"sums {sorted(set(f.sums) ^ set(sums))} differ"
    for name, value in f.sums.items():
        want = sums[name]
        if name in SPARSE_KEYS:
            if value.ndim != 1 or value.dtype != want.dtype:
                return f"sum {name}: {value.dtype}{list(value.shape)}"
            continue
        if value.shape != want.shape or value.dtype != want.dtype:
            return (f"sum {name}: {value.dtype}{list(value.shape)}, the plan's "
                    f"{want.dtype}{list(want.shape)}")
    if set(f.records) != set(records):
        return f"records {sorted(set(f.records) ^ set(records))} differ"
    for name, value in f.records.items():
        want = records[name]
        shape = (f.rows.size, *want.shape[1:])
        if value.shape != shape or value.dtype != want.dtype:
            return (f"record {name}: {value.dtype}{list(value.shape)}, the plan's "
                    f"{want.dtype}{list(shape)}")
    if "transition_keys" in f.sums and f.sums["transition_keys"].size != \
            f.sums["transition_counts"].size:
        return "transition keys and counts differ in length"
    return None


def remove(out: Path) -> None:
    """Delete the checkpoints once the final result is committed."""
    discard_directory(Path(out) / CHECKPOINT_DIR)
