"""``python -m jumps`` as a user runs it: bad input gives exit status 2 and one line on stderr
naming the field, never a traceback (docs/design.md, "Data flow"); ``exact`` writes the result files
and refuses to overwrite them without --force."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def run_jumps(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "jumps", *map(str, args)], env=env, cwd=cwd,
                          check=False,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def bad_outcomes(subprocess_bad_inputs, tmp_path_factory):
    """Run ``jumps info`` on the subprocess bad cases once, a few processes at a time (each is
    mostly interpreter start-up), keyed by case name: (completed process, expected field)."""
    root = tmp_path_factory.mktemp("bad")

    def one(case):
        path, field = case.write(root / case.name)
        return case.name, (run_jumps("info", path), field)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(one, subprocess_bad_inputs))


def test_bad_input_exit_status_and_one_line(cli_bad_case, bad_outcomes):
    """A real ``python -m jumps info``: exit status 2, exactly one line on stderr, which names
    the field; no traceback."""
    result, field = bad_outcomes[cli_bad_case.name]
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert field in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("command", ["info", "exact", "run"])
def test_bad_input_in_process(bad_case, command, tmp_path, capsys):
    """Every bad case through ``jumps.cli.main`` for each command: return value 2, one line on
    stderr naming the field, nothing on stdout (an uncaught exception would fail the test)."""
    from jumps.runtime.cli import main

    path, field = bad_case.write(tmp_path)
    out = ["--out", str(tmp_path / "out")] if command != "info" else []
    status = main([command, str(path), *out])
    captured = capsys.readouterr()
    assert status == 2
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert field in lines[0]
    assert captured.out == ""
    assert not (tmp_path / "out" / "run.json").exists()


@pytest.mark.parametrize("command", ["info", "exact"])
def test_zero_coupling_exits_2(command, tmp_path, capsys):
    """A zero coupling matrix passes config validation but not the generator: still exit 2 with
    one line naming the coupling (regression: IndexError, exit 1)."""
    from jumps.runtime.cli import main

    path = tmp_path / "zero.toml"
    path.write_text('[system]\nmodel = "two_level"\n[[baths]]\n'
                    'coupling = [[0.0, 0.0], [0.0, 0.0]]\nspectral_density = "ohmic"\n'
                    "eta = 0.05\ncutoff = 5.0\nbeta = 1.0\n")
    out = ["--out", str(tmp_path / "out")] if command == "exact" else []
    assert main([command, str(path), *out]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "baths[0].coupling" in lines[0]


def test_info_reports_diagnostics(good_config):
    """``info`` on a valid config: exit 0, the spectrum, Gibbs populations, the secular margin
    and the steady-state verdict are printed."""
    result = run_jumps("info", good_config)
    assert result.returncode == 0, result.stderr
    assert "secular margin" in result.stdout
    assert "steady state" in result.stdout and "unique" in result.stdout
    assert "Gibbs" in result.stdout


def test_exact_writes_results_and_refuses_overwrite(good_config, tmp_path):
    """``exact`` writes run.json and results.npz with times, populations, energies,
    expect_<name> and rho (density_matrix = "full"); the arrays agree with the in-process
    solver (1e-13); a second run without --force exits 2 with one line and leaves the result
    untouched; with --force it succeeds."""
    from jumps.physics import exact as exact_module
    from jumps.runtime.build import build
    from jumps.runtime.config import load_config

    out = tmp_path / "result"
    result = run_jumps("exact", good_config, "--out", out)
    assert result.returncode == 0, result.stderr
    meta = json.loads((out / "run.json").read_text())
    assert meta["dimension"] == 2
    with np.load(out / "results.npz") as data:
        arrays = {key: data[key] for key in data.files}
    for key in ("times", "populations", "energies", "expect_energy", "expect_sz_0", "expect_sx",
                "rho"):
        assert key in arrays, key
    assert arrays["times"].shape == (9,)
    assert arrays["populations"].shape == (9, 2)
    assert arrays["rho"].shape == (9, 2, 2)
    np.testing.assert_allclose(arrays["populations"].sum(axis=1), 1.0, atol=1e-12)

    config = load_config(good_config)
    generator, _ = build(config)
    rho0 = np.outer(generator.eigenvectors[:, 1], generator.eigenvectors[:, 1].conj())
    solution = exact_module.evolve(generator, rho0, config.times)
    np.testing.assert_allclose(arrays["rho"], solution.rho_user(generator), atol=1e-13)
    np.testing.assert_allclose(arrays["expect_sz_0"],
                               np.real(solution.expectation(generator, np.diag([1.0, -1.0]))),
                               atol=1e-13)
    np.testing.assert_allclose(arrays["energies"], [-0.5, 0.5], atol=1e-15)

    before = (out / "results.npz").stat().st_mtime_ns
    again = run_jumps("exact", good_config, "--out", out)
    assert again.returncode == 2
    assert len(again.stderr.splitlines()) == 1 and "--out" in again.stderr
    assert "Traceback" not in again.stderr
    assert (out / "results.npz").stat().st_mtime_ns == before

    forced = run_jumps("exact", good_config, "--out", out, "--force")
    assert forced.returncode == 0, forced.stderr


def test_exact_diagonal_mode_has_no_full_rho(tmp_path, good_config):
    """density_matrix = "diagonal": no (T, d, d) rho array is written."""
    text = good_config.read_text().replace('density_matrix = "full"', 'density_matrix = "diagonal"')
    path = tmp_path / "diagonal.toml"
    path.write_text(text)
    result = run_jumps("exact", path, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "out" / "results.npz") as data:
        assert "rho" not in data.files
        assert "populations" in data.files
