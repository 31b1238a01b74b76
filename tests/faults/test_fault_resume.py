"""--resume and --force against the run's fingerprint, and the validation of checkpoints
(docs/design.md, "The MPI model": checkpoints and resume).

Oracle: the uninterrupted run of the same config and seed (``fault_helpers.assert_same``);
a refusal is exit status 2 and one line naming what differs, or the bad file.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from fault_helpers import assert_same, one_line_error, run_here, write_config

from jumps.runtime.checkpoint import checksum

INTERRUPT = {"JUMPS_INJECT": "chunk-4=SIGTERM"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: (config, result directory)."""
    directory = tmp_path_factory.mktemp("reference")
    config = write_config(directory)
    status, stderr = run_here(config, "--out", directory / "out")
    assert status == 0, stderr
    return config, directory / "out"


def interrupted(tmp_path, reference, name: str = "out"):
    """A copy of the reference config in ``tmp_path`` and a run of it stopped by SIGTERM after
    4 chunks (exit 143, a final checkpoint)."""
    config = tmp_path / "config.toml"
    if not config.exists():
        shutil.copy(reference[0], config)
        shutil.copy(reference[0].parent / "P.npy", tmp_path / "P.npy")
    out = tmp_path / name
    status, stderr = run_here(config, "--out", out, env=INTERRUPT)
    assert status == 143, stderr
    assert "interrupted by SIGTERM" in stderr and "--resume" in stderr
    assert list((out / "checkpoint").glob("a001-r0000.npz"))
    return config, out


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, reference):
    config, out = interrupted(tmp_path, reference)
    status, stderr = run_here(config, "--out", out, "--resume", env=INTERRUPT)
    assert status == 143, stderr  # a second attempt, interrupted too
    status, stderr = run_here(config, "--out", out, "--resume")
    assert status == 0, stderr
    assert_same(reference[1], out, 2000)
    assert not (out / "checkpoint").exists()


def test_resume_refuses_a_changed_input_file(tmp_path, reference):
    config, out = interrupted(tmp_path, reference)
    before = sorted(p.name for p in (out / "checkpoint").iterdir())
    original = np.load(tmp_path / "P.npy")
    np.save(tmp_path / "P.npy", 2 * original)
    status, stderr = run_here(config, "--out", out, "--resume")
    assert status == 2
    assert "--resume: file P.npy changed since the interrupted run" in one_line_error(stderr)
    assert sorted(p.name for p in (out / "checkpoint").iterdir()) == before
    np.save(tmp_path / "P.npy", original)  # the same bytes again: the same run
    status, stderr = run_here(config, "--out", out, "--resume")
    assert status == 0, stderr
    assert_same(reference[1], out)


@pytest.mark.parametrize("change, expected", [
    (["--seed", "99"], "the seed differs (7 in the interrupted run, 99 now)"),
    (["--trajectories", "3000"], ("the trajectory count differs (2000 in the interrupted run, "
                                 "3000 now)")),
    ("t_final", "the config differs at run.t_final (30.0 then, 20.0 now)"),
])
def test_resume_names_what_differs(tmp_path, reference, change, expected):
    config, out = interrupted(tmp_path, reference)
    if change == "t_final":
        config.write_text(config.read_text().replace("t_final = 30.0", "t_final = 20.0"))
        change = []
    status, stderr = run_here(config, "--out", out, "--resume", *change)
    assert status == 2
    line = one_line_error(stderr)
    assert line.startswith("jumps: error: --resume: ") and expected in line, line
    assert "--force" in line


def test_resume_on_a_complete_run_checks_its_fingerprint(tmp_path, reference):
    """--resume on a complete result: the same run -> "already complete", exit 0, the result
    untouched; another seed or a changed file -> exit 2 naming it (it said "already
    complete")."""
    config, _ = reference
    out = tmp_path / "out"
    shutil.copytree(reference[1], out, symlinks=True)
    before = (out / "results.npz").read_bytes()
    status, _ = run_here(config, "--out", out, "--resume")
    assert status == 0
    status, stderr = run_here(config, "--out", out, "--resume", "--seed", "99")
    assert status == 2
    assert "the seed differs (7 in the complete result, 99 now)" in one_line_error(stderr)
    local = tmp_path / "config.toml"
    shutil.copy(config, local)
    np.save(tmp_path / "P.npy", np.eye(8))
    status, stderr = run_here(local, "--out", out, "--resume")
    assert status == 2
    assert "file P.npy changed since the result was written" in one_line_error(stderr)
    assert (out / "results.npz").read_bytes() == before


def test_resume_with_force_continues_the_same_run_or_starts_over(tmp_path, reference):
    config, out = interrupted(tmp_path, reference)
    status, stderr = run_here(config, "--out", out, "--resume", "--force", "--seed", "8")
    assert status == 0, stderr
    assert "starting over (the seed differs" in stderr
    config, out = interrupted(tmp_path, reference, "second")
    status, stderr = run_here(config, "--out", out, "--resume", "--force")
    assert status == 0, stderr
    assert_same(reference[1], out)


def _rewrite(path, change) -> None:
    """Change a checkpoint file's arrays and store a valid checksum (a hand-edited file)."""
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    change(arrays)
    del arrays["checksum"]
    arrays["checksum"] = np.array(checksum(arrays))
    np.savez(path, **arrays)


def _damage(path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(16)
    path.write_bytes(bytes(data))


def _truncate(path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def _shift_chunks(arrays) -> None:
    arrays["chunks"] = arrays["chunks"] + 1


def _out_of_range(arrays) -> None:
    arrays["chunks"] = np.array([999], dtype=np.int64)


def _bad_shape(arrays) -> None:
    name = next(k for k in arrays if k.startswith("sum_") and arrays[k].ndim == 2)
    arrays[name] = arrays[name][:, :-1]


CASES = {
    "damaged": (lambda out, other: _damage(out / "checkpoint/a001-r0000.npz"),
                "a001-r0000.npz: damaged"),
    "truncated": (lambda out, other: _truncate(out / "checkpoint/a001-r0000.npz"),
                  "a001-r0000.npz: damaged"),
    "renamed": (lambda out, other: (out / "checkpoint/a001-r0000.npz").rename(
        out / "checkpoint/a003-r0001.npz"), ("a003-r0001.npz: was renamed (it was written as "
                                            "a001-r0000.npz)")),
    "copied_within_the_run": (lambda out, other: shutil.copy(
        out / "checkpoint/a001-r0000.npz", out / "checkpoint/a002-r0001.npz"),
        "a002-r0001.npz: was renamed"),
    "copied_from_another_run": (lambda out, other: shutil.copy(
        other / "checkpoint/a001-r0000.npz", out / "checkpoint/a002-r0003.npz"),
        "a002-r0003.npz: belongs to another run"),
    "chunks_renumbered": (lambda out, other: _rewrite(out / "checkpoint/a001-r0000.npz",
                                                      _shift_chunks),
                          "a001-r0000.npz: its rows are not those of its chunks"),
    "chunk_out_of_range": (lambda out, other: _rewrite(out / "checkpoint/a001-r0000.npz",
                                                       _out_of_range),
                           "a001-r0000.npz: chunk numbers out of range (the plan has 20 chunks)"),
    "shape": (lambda out, other: _rewrite(out / "checkpoint/a001-r0000.npz", _bad_shape),
              "a001-r0000.npz: does not match this run's plan (sum "),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_checkpoint_is_refused_by_name_or_discarded(tmp_path, reference, case):
    """Each bad file: exit 2, one line naming it; --discard-damaged drops it, runs its chunks
    again and gives the uninterrupted result."""
    spoil, expected = CASES[case]
    config, out = interrupted(tmp_path, reference)
    other = interrupted(tmp_path, reference, "other")[1] if "another" in case else None
    spoil(out, other)
    status, stderr = run_here(config, "--out", out, "--resume")
    assert status == 2
    line = one_line_error(stderr)
    assert expected in line and "--discard-damaged" in line, line
    status, stderr = run_here(config, "--out", out, "--resume", "--discard-damaged")
    assert status == 0, stderr
    assert "jumps: note: dropped checkpoint" in stderr
    assert_same(reference[1], out, 2000)


def test_discard_damaged_needs_resume(tmp_path, reference):
    status, stderr = run_here(reference[0], "--out", tmp_path / "x", "--discard-damaged")
    assert status == 2
    assert "--discard-damaged: only with --resume" in one_line_error(stderr)
    assert not (tmp_path / "x").exists()
