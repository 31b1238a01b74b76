"""One commit point for results.npz and run.json, and failed writes (docs/design.md, "Result
format").

Oracles: a reader (the names results.npz and run.json) sees one whole result, the old or the
new, whatever step a run is killed at (``fault_helpers.consistent``); after a failed write the
work is in the checkpoint and ``--resume`` gives the uninterrupted result
(``fault_helpers.assert_same``).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from fault_helpers import (
    assert_same,
    consistent,
    one_line_error,
    run_forked,
    run_here,
    write_config,
)

from jumps.runtime.io import RESULT_LINK, RESULT_PREFIX


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Two uninterrupted runs of one config: 2000 and 1500 trajectories."""
    directory = tmp_path_factory.mktemp("reference")
    config = write_config(directory)
    for name, extra in (("out", []), ("small", ["--trajectories", "1500"])):
        status, stderr = run_here(config, "--out", directory / name, *extra)
        assert status == 0, stderr
    return config, directory / "out", directory / "small"


def _ours(out):
    """Result directories and temporaries of ours in ``out`` (after a run: exactly one)."""
    return sorted(p.name for p in out.iterdir()
                  if p.name.startswith(RESULT_PREFIX) or p.name.endswith((".tmp", ".link")))


@pytest.mark.parametrize("step, visible", [("result-write", 2000), ("commit-link", 2000),
                                           ("commit-names", 1500), ("commit-cleanup", 1500)])
def test_a_kill_at_any_commit_step_leaves_one_whole_result(tmp_path, reference, step, visible):
    """A --force rerun (1500 trajectories over a 2000 one) killed at each step of its commit:
    the names show the old result or the new one, whole (it showed new arrays beside the old
    run.json). The next run removes the leftovers and ends with the new result: --resume
    finishes from the final checkpoint, or finds the commit done."""
    config, old, new = reference
    out = tmp_path / "out"
    shutil.copytree(old, out, symlinks=True)
    status, stderr = run_forked(config, "--out", out, "--force", "--trajectories", "1500",
                                env={"JUMPS_INJECT": f"{step}=kill"})
    assert status == 137, stderr
    assert consistent(out)["trajectories"] == visible
    status, stderr = run_here(config, "--out", out, "--resume", "--trajectories", "1500")
    assert status == 0, stderr
    assert consistent(out)["trajectories"] == 1500
    assert_same(new, out, 1500)
    assert not (out / "checkpoint").exists()
    assert len(_ours(out)) == 1 and (out / RESULT_LINK).is_symlink(), _ours(out)


def test_a_result_of_the_layout_before_commits_is_replaced_whole(tmp_path, reference):
    """A directory holding results.npz and run.json as plain files (older jumps, or written by
    hand): --force replaces them by the committed pair."""
    config, old, new = reference
    out = tmp_path / "out"
    out.mkdir()
    for name in ("results.npz", "run.json"):
        shutil.copy(old / name, out / name)
    status, stderr = run_here(config, "--out", out, "--force", "--trajectories", "1500")
    assert status == 0, stderr
    assert (out / "run.json").is_symlink()
    assert_same(new, out, 1500)


@pytest.mark.parametrize("step", ["result-write", "commit-link"])
def test_a_full_disk_at_the_final_write_keeps_the_work(tmp_path, reference, step):
    """ENOSPC while writing the result: exit 1, one line saying the work is safe and to use
    --resume once there is space; nothing half-written is visible; --resume then finishes
    (it was a traceback, and the chunks after the last periodic checkpoint were lost)."""
    config, old, _ = reference
    out = tmp_path / "out"
    status, stderr = run_here(config, "--out", out, env={"JUMPS_INJECT": f"{step}=ENOSPC"})
    assert status == 1
    line = one_line_error(stderr)
    assert "cannot write the result" in line and "No space left on device" in line
    assert "the finished chunks are saved in" in line
    assert "--resume once there is space" in line
    assert not (out / "run.json").exists() and not (out / "results.npz").exists()
    assert not (out / ".jumps-lock").exists()
    with np.load(out / "checkpoint" / "a001-r0000.npz") as data:
        assert data["chunks"].size == 20  # every chunk is in the final checkpoint
    status, stderr = run_here(config, "--out", out, "--resume")
    assert status == 0, stderr
    assert_same(old, out, 2000)
    assert len(_ours(out)) == 1, _ours(out)


def test_a_failed_periodic_checkpoint_warns_once_and_the_run_goes_on(tmp_path, reference):
    config, old, _ = reference
    out = tmp_path / "out"
    status, stderr = run_here(config, "--out", out, env={"JUMPS_INJECT": "checkpoint=ENOSPC"})
    assert status == 0, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr  # 20 chunks, each followed by a failed checkpoint
    assert lines[0].startswith("jumps: warning: rank 0: checkpoint not written (No space left")
    assert "the run goes on" in lines[0]
    assert_same(old, out, 2000)


def test_a_failed_final_checkpoint_still_writes_the_result(tmp_path, reference):
    config, old, _ = reference
    out = tmp_path / "out"
    status, stderr = run_here(config, "--out", out,
                              env={"JUMPS_INJECT": "final-checkpoint=EIO"})
    assert status == 0, stderr
    assert "final checkpoint not written" in stderr
    assert_same(old, out, 2000)


def test_every_write_failing_says_what_is_lost(tmp_path, reference):
    config, _, _ = reference
    out = tmp_path / "out"
    status, stderr = run_here(config, "--out", out, env={
        "JUMPS_INJECT": "checkpoint=ENOSPC,final-checkpoint=ENOSPC,result-write=ENOSPC"})
    assert status == 1
    assert "a final checkpoint failed" in stderr.splitlines()[-1]


def test_leftovers_of_killed_runs_are_removed_and_nothing_else(tmp_path, reference):
    """What killed writers of ours leave (an unlinked result directory, temporary files and
    links, a checkpoint directory being removed) goes; a user's files stay."""
    config, old, _ = reference
    out = tmp_path / "out"
    shutil.copytree(old, out, symlinks=True)
    leftovers = [".jumps-result-0123456789abcdef", ".jumps-discarded-0123456789abcdef"]
    for name in leftovers:
        (out / name).mkdir()
        (out / name / "results.npz").write_bytes(b"partial")
    temporaries = [".results.npz.ab_cd123.tmp", ".run.json.x1y2z3w4.tmp",
                   "run.json.0123456789abcdef.link", ".jumps-lock.0123456789abcdef.stale"]
    for name in temporaries:
        (out / name).write_text("partial")
    mine = ["notes.txt", ".notes.tmp", "results.npz.bak", ".jumps-result-mine"]
    for name in mine:
        (out / name).write_text("the user's")
    (out / ".jumps-result-old").mkdir()
    mine.append(".jumps-result-old")
    status, stderr = run_here(config, "--out", out, "--force", "--trajectories", "1500")
    assert status == 0, stderr
    names = {p.name for p in out.iterdir()}
    assert not names & set(leftovers + temporaries), names
    assert set(mine) <= names
    assert len([n for n in names if n.startswith(RESULT_PREFIX) and n not in mine]) == 1
