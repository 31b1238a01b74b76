"""The lock on the output directory (docs/design.md, "The MPI model": the output directory).

Oracles: a second run on a directory in use exits 2 with one line naming the holder's pid,
host and start time, whatever its flags, and changes nothing; a lock whose holder is dead is
broken with a one-line note; a run refused during its build leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest
from fault_helpers import (
    assert_same,
    kill_group,
    one_line_error,
    run_here,
    start_process,
    wait_for_checkpoints,
    write_config,
)

from jumps.errors import RunFailure
from jumps.runtime import outdir
from jumps.runtime.outdir import LOCK_FILE, OutputDirectory


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    directory = tmp_path_factory.mktemp("reference")
    config = write_config(directory)
    status, stderr = run_here(config, "--out", directory / "out")
    assert status == 0, stderr
    return config, directory / "out"


IN_USE = re.compile(r"^jumps: error: --out: .* is in use by pid (\d+) on host (\S+) since "
                    r"\d\d:\d\d:\d\d")


def test_a_held_lock_refuses_every_second_run(tmp_path, reference):
    """Plain, --force and --resume runs on a directory held by a live process (this one): exit
    2 naming pid, host and time; the result stays as it was."""
    config, result = reference
    out = tmp_path / "out"
    shutil.copytree(result, out, symlinks=True)
    before = (out / "results.npz").read_bytes()
    holder = OutputDirectory(out)
    holder.open()
    try:
        for flags in ([], ["--force"], ["--resume"], ["--resume", "--force"]):
            status, stderr = run_here(config, "--out", out, *flags)
            assert status == 2, (flags, stderr)
            match = IN_USE.match(one_line_error(stderr))
            assert match, stderr
            assert int(match[1]) == os.getpid() and match[2] == socket.gethostname()
        assert (out / "results.npz").read_bytes() == before
        assert (out / LOCK_FILE).exists()
    finally:
        holder.close()
    assert not (out / LOCK_FILE).exists()
    status, stderr = run_here(config, "--out", out, "--resume")
    assert status == 0, stderr


def test_concurrent_runs_on_one_directory(tmp_path, reference):
    """A run in progress (another process): a second run, with --force, or a concurrent
    --resume, exits 2 naming it, and --force deletes nothing of it (it deleted the running
    run's checkpoints)."""
    config, _ = reference
    out = tmp_path / "out"
    process = start_process([config, "--out", out, "--trajectories", "400000"],
                            env={"JUMPS_INJECT": "chunk=sleep0.02"})
    try:
        wait_for_checkpoints(process, out, 1)
        for flags in ([], ["--force"], ["--resume"]):
            status, stderr = run_here(config, "--out", out, "--trajectories", "400000", *flags)
            assert status == 2, stderr
            match = IN_USE.match(one_line_error(stderr))
            assert match and int(match[1]) == process.pid, stderr
            assert (out / "checkpoint" / "plan.json").exists()
    finally:
        kill_group(process, signal.SIGTERM)
        process.communicate(timeout=60)
    assert process.returncode == 143
    assert not (out / LOCK_FILE).exists()


def _write_lock(out, **fields) -> None:
    out.mkdir(parents=True, exist_ok=True)
    record = {"pid": 1234, "host": socket.gethostname(), "started": time.time(),
              "token": "0" * 16, "identity": outdir._host_identity(), "proc_start": None,
              **fields}
    (out / LOCK_FILE).write_text(json.dumps(record))


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_stale_lock_of_a_dead_process_is_broken(tmp_path, reference):
    config, result = reference
    out = tmp_path / "out"
    pid = _dead_pid()
    _write_lock(out, pid=pid)
    status, stderr = run_here(config, "--out", out)
    assert status == 0, stderr
    assert f"jumps: note: --out: broke the stale lock of pid {pid} on host" in stderr
    assert "(the process is gone)" in stderr
    assert_same(result, out)
    assert not (out / LOCK_FILE).exists()


def test_a_lock_of_a_killed_process_not_yet_reaped_is_broken(tmp_path, reference):
    """A holder killed by SIGKILL whose parent has not reaped it (a zombie: its pid still
    answers kill(pid, 0), as ranks of an mpiexec killed together can) is dead."""
    config, _ = reference
    out = tmp_path / "out"
    zombie = subprocess.Popen(["true"])
    time.sleep(0.3)  # ended, not yet waited for
    try:
        _write_lock(out, pid=zombie.pid)
        status, stderr = run_here(config, "--out", out)
        assert status == 0, stderr
        assert f"broke the stale lock of pid {zombie.pid}" in stderr
    finally:
        zombie.wait()


def test_a_lock_from_another_host_is_broken_only_without_heartbeat(tmp_path, reference):
    config, result = reference
    out = tmp_path / "out"
    _write_lock(out, host="node7.elsewhere", identity="other", started=time.time() - 4000)
    status, stderr = run_here(config, "--out", out)
    assert status == 2
    assert "is in use by pid 1234 on host node7.elsewhere since" in one_line_error(stderr)
    old = time.time() - outdir.STALE_SECONDS - 60
    os.utime(out / LOCK_FILE, (old, old))
    status, stderr = run_here(config, "--out", out)
    assert status == 0, stderr
    assert "broke the stale lock of pid 1234 on host node7.elsewhere" in stderr
    assert "no heartbeat for" in stderr
    assert_same(result, out)


def test_an_unreadable_lock_is_in_use_until_it_is_old(tmp_path, reference):
    config, _ = reference
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).write_text("")
    status, stderr = run_here(config, "--out", out)
    assert status == 2 and "still being written" in one_line_error(stderr)
    old = time.time() - outdir.STALE_SECONDS - 60
    os.utime(out / LOCK_FILE, (old, old))
    status, stderr = run_here(config, "--out", out)
    assert status == 0, stderr


def test_the_heartbeat_and_a_lost_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(outdir, "HEARTBEAT_SECONDS", 0.05)
    out = tmp_path / "out"
    holder = OutputDirectory(out)
    holder.open()
    try:
        old = time.time() - 1000
        os.utime(out / LOCK_FILE, (old, old))
        time.sleep(0.3)
        assert time.time() - (out / LOCK_FILE).stat().st_mtime < 10  # refreshed
        holder.check()
        _write_lock(out, token="f" * 16)  # taken over (broken by another run)
        with pytest.raises(RunFailure, match="lost its lock"):
            holder.check()
    finally:
        holder.close()
    assert (out / LOCK_FILE).exists()  # not ours to remove


def test_a_run_refused_during_its_build_leaves_nothing(tmp_path, reference):
    """Bad input found after the build (level populations that do not fit the spectrum):
    exit 2; the output directory it created is gone, a directory that existed keeps only
    what it held, and the corrected rerun runs."""
    config, result = reference
    bad = tmp_path / "bad.toml"
    shutil.copy(config.parent / "P.npy", tmp_path / "P.npy")
    bad.write_text(config.read_text().replace(
        'kind = "product"\nstate = "+dd"', 'kind = "populations"\npopulations = [0.5, 0.5]'))
    out = tmp_path / "new" / "out"
    status, stderr = run_here(bad, "--out", out)
    assert status == 2
    assert "initial_state.populations" in one_line_error(stderr)
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    shutil.copytree(result, kept, symlinks=True)
    status, _ = run_here(bad, "--out", kept, "--force")
    assert status == 2
    assert sorted(p.name for p in kept.iterdir()) == sorted(p.name for p in result.iterdir())
    status, stderr = run_here(config, "--out", out)
    assert status == 0, stderr


@pytest.mark.slow
def test_an_error_on_one_rank_ends_all_and_releases_the_lock(tmp_path, reference):
    """A failure on rank 1 ends both ranks promptly (MPI_Abort) and the aborting rank removes
    rank 0's lock (rank 0 is killed before its own cleanup): the next run needs no breaking."""
    from fault_helpers import run_process

    config, result = reference
    out = tmp_path / "out"
    start = time.monotonic()
    failed = run_process([config, "--out", out, "--trajectories", "200000"], 2,
                         env={"JUMPS_INJECT_FAULT": "1:2"}, timeout=60)
    assert failed.returncode != 0 and time.monotonic() - start < 30
    assert "injected failure on rank 1" in failed.stderr
    assert not (out / LOCK_FILE).exists()
    status, stderr = run_here(config, "--out", out, "--force")
    assert status == 0 and "stale lock" not in stderr, stderr
    assert_same(result, out)
