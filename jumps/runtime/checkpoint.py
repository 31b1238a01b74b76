"""Checkpoints of a trajectory run, and resuming one.

Every rank writes ``OUT/checkpoint/a{attempt}-r{rank}.npz`` (atomically) with the sums of the
chunks it finished in this attempt, their numbers and their per-trajectory records. The tallies
of an attempt start from zero, so the files of all attempts hold disjoint sets of chunks and a
resume simply adds them up: no coordination between ranks is needed to checkpoint, and a
``kill -9`` loses only the chunks that were running.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.sums import Accumulator
from ..errors import ConfigError
from .io import write_json, write_npz

CHECKPOINT_DIR = "checkpoint"


def fingerprint(raw_config: dict) -> str:
    """Hash of the config as run: a resumed run must have the same one."""
    text = json.dumps(raw_config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RankCheckpoint:
    """One rank's checkpoint file for one attempt."""

    def __init__(self, out: Path, attempt: int, rank: int):
        self.path = Path(out) / CHECKPOINT_DIR / f"a{attempt:03d}-r{rank:04d}.npz"

    def write(self, sums: dict[str, np.ndarray], chunks: list[int], rows: np.ndarray,
              records: dict[str, np.ndarray]) -> None:
        """The sums of ``chunks`` and the per-trajectory ``records`` of their ``rows``."""
        write_npz(self.path, {**{f"sum_{k}": v for k, v in sums.items()},
                              **{f"record_{k}": v[rows] for k, v in records.items()},
                              "chunks": np.array(chunks, dtype=np.int64), "rows": rows})


@dataclass
class Previous:
    """What earlier attempts finished: ``sums`` added up, and per-trajectory records (one
    ``(rows, {name: values})`` per checkpoint file)."""

    attempt: int
    chunks: set[int] = field(default_factory=set)
    sums: dict[str, np.ndarray] | None = None
    records: list[tuple[np.ndarray, dict[str, np.ndarray]]] = field(default_factory=list)

    def fill(self, records: dict[str, np.ndarray]) -> None:
        """Write the earlier attempts' per-trajectory records into ``records`` (in place)."""
        for rows, values in self.records:
            for name, value in values.items():
                records[name][rows] = value


def start_or_resume(out: Path, identity: dict, resume: bool, force: bool) -> Previous:
    """On rank 0: set up ``OUT/checkpoint`` for a new attempt and load earlier ones.

    ``identity`` (config fingerprint, trajectory count, chunk size) must match the interrupted
    run's, or the chunks would not mean the same trajectories.
    """
    directory = Path(out) / CHECKPOINT_DIR
    plan_file = directory / "plan.json"
    if directory.exists() and not resume:
        if not force:
            raise ConfigError("--out", f"{out} holds an interrupted run: use --resume to continue "
                                       "it or --force to start over")
        shutil.rmtree(directory)
    if not directory.exists():
        directory.mkdir(parents=True)
        write_json(plan_file, identity)
        return Previous(1)
    if not plan_file.exists() or json.loads(plan_file.read_text()) != identity:
        raise ConfigError("--resume", "the config, trajectory count or chunk size changed since "
                                      "the interrupted run; use --force to start over")
    paths = sorted(directory.glob("a*-r*.npz"))
    attempt = 1 + max((int(p.name[1:4]) for p in paths), default=0)
    accumulator = Accumulator()
    previous = Previous(attempt)
    for path in paths:
        with np.load(path) as data:
            state = {k: data[k] for k in data.files}
        previous.chunks.update(state["chunks"].tolist())
        accumulator.add({k[4:]: v for k, v in state.items() if k.startswith("sum_")})
        previous.records.append((state["rows"], {k[7:]: v for k, v in state.items()
                                                 if k.startswith("record_")}))
    previous.sums = accumulator.sums() if paths else None
    return previous


def remove(out: Path) -> None:
    """Delete the checkpoints once the final result is written."""
    shutil.rmtree(Path(out) / CHECKPOINT_DIR, ignore_errors=True)
