"""``python -m jumps run`` end to end, in a real subprocess: the result directory of docs/design.md,
"Result format", refusal to overwrite, command-line overrides, and a run started in the Gibbs state.

Oracles: the list of result keys in docs/design.md, "Result format"; the same trajectories run
in-process through ``jumps.unravel`` (identical random streams, so identical jump records); the
Gibbs state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import helpers
import numpy as np
import pytest

from jumps import generators
from jumps.runtime import config as config_module
from jumps.runtime import driver as run_module
from jumps.runtime.config import dump_config

REPO = Path(__file__).resolve().parents[1]

TWO_LEVEL = helpers.config_toml(helpers.QUBIT, run={
    "t_final": 20.0, "n_times": 21, "trajectories": 300, "seed": 7,
    "observables": ["sx", "sz:0", "energy"], "density_matrix": "full"})

GIBBS_OSCILLATOR = dump_config({
    "system": {"model": "harmonic_oscillator", "params": {"levels": 5, "w": 1.0}},
    "baths": [helpers.ohmic_bath("x")],
    "initial_state": {"kind": "gibbs"},
    "run": {"t_final": 20.0, "n_times": 11, "trajectories": 3000, "seed": 5, "observables": ["n"]},
})


def jumps_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m jumps ARGS`` with the repository on the path, serial (no MPI launcher)."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), "JUMPS_MPI": "0"}
    return subprocess.run([sys.executable, "-m", "jumps", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=600, check=False)


def read(out: Path) -> tuple[dict, dict]:
    with np.load(out / "results.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return arrays, json.loads((out / "run.json").read_text())


def in_process(config_path: Path, trajectories: int, seed: int):
    """The same run through jumps.unravel, without the driver."""
    config = config_module.load_config(config_path)
    generator, _ = run_module.build(config)
    return helpers.unravel_in_process(generator, config.initial_state.vector, config.times,
                                      config.observables, trajectories, seed,
                                      density=generators.of(generator).stored_density(
                                          config.density_matrix, generator.dimension))


@pytest.fixture(scope="module")
def two_level_run(tmp_path_factory):
    """One CLI run of the two-level config: (config path, result directory, process)."""
    directory = tmp_path_factory.mktemp("cli")
    path = directory / "two_level.toml"
    path.write_text(TWO_LEVEL)
    out = directory / "result"
    completed = jumps_cli("run", str(path), "--out", str(out), "--quiet", cwd=directory)
    return path, out, completed


def test_run_writes_the_design_result_directory(two_level_run):
    """Oracle: docs/design.md, "Result format": run.json with the config, seed,
    trajectories, ranks, versions and timings; results.npz with times, energies, populations
    (eigenbasis) and their errors, rho and its errors (user basis), expect_<name> and errors
    (names made file-safe: sz:0 -> sz_0), per channel bath, frequency and jump counts, sparse
    transitions, occupation times, per-trajectory heat and jumps. Shapes from the config.
    Bookkeeping identities are exact: every jump is counted once in its channel and once in its
    trajectory, and the heat is the channel frequencies times the counts. Jumps out of a
    superposition of levels (here the dephasing channel, which keeps |+> a superposition) are
    not transitions between eigenstates, so transitions count at most the jumps."""
    _, out, completed = two_level_run
    assert completed.returncode == 0, completed.stderr
    arrays, meta = read(out)
    T, d, ntraj = 21, 2, 300
    expected_shapes = {
        "times": (T,), "energies": (d,), "populations": (T, d), "populations_stderr": (T, d),
        "rho": (T, d, d), "rho_stderr": (T, d, d), "occupation_time": (d,),
        "heat": (ntraj, 1), "n_jumps": (ntraj,),
    }
    for name in ("sx", "sz_0", "energy"):
        expected_shapes[f"expect_{name}"] = (T,)
        expected_shapes[f"expect_{name}_stderr"] = (T,)
    for key, shape in expected_shapes.items():
        assert key in arrays, key
        assert arrays[key].shape == shape, (key, arrays[key].shape)
    for key in ("channel_bath", "channel_frequency", "jump_counts", "transition_from",
                "transition_to", "transition_count"):
        assert key in arrays and arrays[key].ndim == 1, key
    assert arrays["channel_bath"].shape == arrays["channel_frequency"].shape == arrays["jump_counts"].shape
    assert np.iscomplexobj(arrays["rho"])
    np.testing.assert_allclose(arrays["times"], np.linspace(0.0, 20.0, T))
    np.testing.assert_allclose(arrays["populations"].sum(axis=1), 1.0, atol=1e-12)
    # Jumps per channel count every jump: w != 0 (n_jumps) and dephasing events (w = 0).
    total = int(arrays["n_jumps"].sum() + arrays["dephasings"].sum())
    assert arrays["n_jumps"].sum() > 0
    assert int(arrays["jump_counts"].sum()) == total
    assert 0 < int(arrays["transition_count"].sum()) < total
    heat_from_channels = np.sum(arrays["jump_counts"] * arrays["channel_frequency"])
    assert arrays["heat"].sum() == pytest.approx(heat_from_channels, abs=1e-9 * max(1, total))
    assert meta["seed"] == 7 and meta["trajectories"] == ntraj
    assert meta["ranks"] == 1
    assert meta["config"]["run"]["trajectories"] == ntraj
    assert {"jumps", "numpy", "numba"} <= set(meta["versions"])
    assert any(key.endswith("_seconds") for key in meta), "timings"


def test_run_matches_in_process_trajectories(two_level_run):
    """The driver (config, chunking, merging, finalize) adds nothing to the physics: the same
    seed run in-process through jumps.unravel gives identical per-trajectory jump counts and
    heat (bit for bit) and the same averages to 1e-12."""
    path, out, completed = two_level_run
    assert completed.returncode == 0, completed.stderr
    arrays, _ = read(out)
    run = in_process(path, 300, 7)
    assert np.array_equal(arrays["n_jumps"], run.tally.n_jumps)
    assert np.array_equal(arrays["heat"], run.tally.heat)
    for key in ("populations", "rho", "expect_sx", "expect_sz_0"):
        np.testing.assert_allclose(arrays[key], run.out[key], rtol=1e-12, atol=1e-12, err_msg=key)


def test_run_refuses_to_overwrite_without_force(two_level_run):
    """An existing result is not overwritten without --force (docs/design.md, "Result format");
    bad input exits with status 2 and one line naming the field, no traceback (docs/design.md,
    "Data flow"). The old result stays untouched."""
    path, out, completed = two_level_run
    assert completed.returncode == 0, completed.stderr
    before = (out / "results.npz").read_bytes()
    again = jumps_cli("run", str(path), "--out", str(out), "--quiet", cwd=path.parent)
    assert again.returncode == 2
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and "--out" in lines[0] and "Traceback" not in again.stderr
    assert (out / "results.npz").read_bytes() == before


def test_force_with_trajectory_and_seed_overrides(two_level_run, tmp_path):
    """--force overwrites; --trajectories and --seed replace the config's values: run.json
    records them, the result holds that many trajectories, and they are exactly the
    trajectories of that seed (oracle: the in-process run with seed 11)."""
    path, out, completed = two_level_run
    assert completed.returncode == 0, completed.stderr
    forced = jumps_cli("run", str(path), "--out", str(out), "--force", "--quiet",
                       "--trajectories", "50", "--seed", "11", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    arrays, meta = read(out)
    assert meta["seed"] == 11 and meta["trajectories"] == 50
    assert arrays["heat"].shape == (50, 1) and arrays["n_jumps"].shape == (50,)
    run = in_process(path, 50, 11)
    assert np.array_equal(arrays["n_jumps"], run.tally.n_jumps)
    assert np.array_equal(arrays["heat"], run.tally.heat)


def test_gibbs_initial_state_stays_at_gibbs(tmp_path):
    """A run started in the Gibbs state (eigenstates sampled with exp(-beta E)/Z) is
    stationary. Oracle: the Gibbs populations at every time point, and <n> = sum_n n p_n.
    Tolerance: 4 standard errors per point under the rules of helpers.py (z-scores where the
    expected count is >= 30, Bernstein bound for the rest). Every trajectory is in an
    eigenstate of a non-degenerate level throughout, so every jump is also a transition."""
    path = tmp_path / "gibbs.toml"
    path.write_text(GIBBS_OSCILLATOR)
    out = tmp_path / "result"
    completed = jumps_cli("run", str(path), "--out", str(out), "--quiet", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    arrays, meta = read(out)
    assert meta["initial_state"] == "gibbs"
    total = int(arrays["n_jumps"].sum() + arrays["dephasings"].sum())
    assert arrays["n_jumps"].sum() > 0
    assert int(arrays["jump_counts"].sum()) == total == int(arrays["transition_count"].sum())
    generator, _ = run_module.build(config_module.load_config(path))
    gibbs = generator.gibbs_populations()
    ntraj = meta["trajectories"]
    check = helpers.Comparison(ntraj)
    T = arrays["times"].size
    check.add("populations", arrays["populations"], arrays["populations_stderr"],
              np.broadcast_to(gibbs, (T, gibbs.size)), 1.0, False, population=True)
    n_gibbs = gibbs @ np.arange(gibbs.size)
    check.add("expect_n", arrays["expect_n"], arrays["expect_n_stderr"],
              np.full(T, n_gibbs), float(gibbs.size - 1), False)
    assert not check.failures, check.failures
    assert check.z["populations"].size >= 2 * T
    assert check.max_abs_z < helpers.Z_LIMIT, check.worst()
