"""``python -m analysis`` as a user runs it: a report with units on stdout and report.json on disk
(exit 0); ``--json`` prints the same JSON; ``--plots`` writes the PNGs; bad input (a missing or
wrong directory, a mismatched --exact, a bad flag value, no matplotlib) gives exit status 2 and one
line on stderr naming the culprit, never a traceback (the exit statuses of README, "Command
line")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import helpers
import pytest

from analysis.cli import main
from jumps.runtime.config import load_config
from jumps.runtime.driver import run_exact, run_trajectories

REPO = Path(__file__).resolve().parents[2]

CONFIG = helpers.config_toml(helpers.QUBIT, run={
    "t_final": 20.0, "n_times": 41, "trajectories": 500, "seed": 4, "observables": ["sz"]})


def run_analysis(*args, python_prefix: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"}
    if python_prefix is None:
        command = [sys.executable, "-m", "analysis", *map(str, args)]
    else:
        command = [sys.executable, "-c", python_prefix + "from analysis.cli import main; "
                   f"sys.exit(main({[str(a) for a in args]!r}))"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180,
                          check=False)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """A trajectory result, its exact twin, an exact result on another grid, and broken dirs."""
    root = tmp_path_factory.mktemp("cli")
    (root / "config.toml").write_text(CONFIG)
    config = load_config(root / "config.toml")
    run_trajectories(config, root / "result", quiet=True)
    run_exact(config, root / "exact")
    run_exact(load_config(root / "config.toml", {"n_times": 21}), root / "exact_other_grid")
    (root / "empty").mkdir()
    (root / "corrupt").mkdir()
    (root / "corrupt" / "run.json").write_text('{"method": "trajectories"}')
    (root / "corrupt" / "results.npz").write_bytes(b"not a zip file")
    (root / "a_file").write_text("x")
    return root


def test_report_on_stdout_and_report_json(dirs, tmp_path):
    """Exit 0; the text report states units and shows each section; report.json is written
    where --out says and is valid JSON with the detailed-balance entries."""
    process = run_analysis(dirs / "result", "--exact", dirs / "exact", "--out", tmp_path)
    assert process.returncode == 0, process.stderr
    text = process.stdout
    for heading in ("units:", "Approach to equilibrium",
                    "Comparison with the exact master equation", "Detailed balance",
                    "Flux balance", "Boltzmann test", "Heat per trajectory"):
        assert heading in text
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["comparison"]["source"].startswith("exact result")
    assert report["detailed_balance"]
    assert report["detailed_balance"][0]["frequency"] == pytest.approx(1.0)


def test_json_flag_prints_the_report(dirs, tmp_path, capsys):
    """``--json``: stdout is exactly the JSON written to report.json (in process, for speed)."""
    assert main([str(dirs / "result"), "--json", "--out", str(tmp_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "report.json").read_text())
    assert set(printed) >= {"gibbs_trace_distance", "max_z_vs_exact", "detailed_balance",
                            "detailed_balance_p_value", "heat_mean", "heat_stderr"}


def test_report_goes_into_the_result_directory_by_default(dirs, capsys):
    """Without --out, report.json lands beside results.npz, readable like any new file."""
    assert main([str(dirs / "result")]) == 0
    path = dirs / "result" / "report.json"
    assert json.loads(path.read_text())["result"]["path"] == str(dirs / "result")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_plots_are_written(dirs, tmp_path, capsys):
    """``--plots`` writes the four PNGs (skipped without matplotlib)."""
    pytest.importorskip("matplotlib")
    assert main([str(dirs / "result"), "--plots", "--out", str(tmp_path)]) == 0
    for name in ("populations", "relaxation", "detailed_balance", "heat"):
        png = tmp_path / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_analysing_an_exact_result(dirs, tmp_path, capsys):
    """An exact result has no statistics: exit 0 and the sections that make sense."""
    assert main([str(dirs / "exact"), "--out", str(tmp_path)]) == 0
    assert "An exact result" in capsys.readouterr().out


BAD = [
    # (case, arguments relative to the fixture root, text the one error line must contain)
    ("missing directory", ["nowhere"], "no such directory"),
    ("a file", ["a_file"], "not a directory"),
    ("no run.json", ["empty"], "not a jumps result directory"),
    ("corrupt arrays", ["corrupt"], "unreadable"),
    ("exact on another grid", ["result", "--exact", "exact_other_grid"], "time grid"),
    ("exact is not exact", ["result", "--exact", "result"], "not an exact result"),
    ("negative beta", ["result", "--beta", "-1"], "--beta"),
    ("alpha out of range", ["result", "--alpha", "2"], "--alpha"),
]


def _arguments(root: Path, arguments: list[str]) -> list[str]:
    return [str(root / a) if not a.startswith("-") and not a.lstrip("-").replace(".", "").isdigit()
            else a for a in arguments]


@pytest.mark.parametrize("case, arguments, message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_in_process(dirs, tmp_path, capsys, case, arguments, message):
    """Every bad input through ``analysis.cli.main``: status 2, one line on stderr, nothing on
    stdout (an uncaught exception would fail the test)."""
    status = main(_arguments(dirs, arguments) + ["--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], captured.err
    assert captured.out == ""


def test_bad_input_as_a_real_process(dirs):
    """A bad input through a real ``python -m analysis`` process, and --plots with matplotlib
    unimportable: exit status 2, exactly one line on stderr, no traceback."""
    cases = [(_arguments(dirs, a), m, None) for _, a, m in BAD[:1]]
    cases.append(([str(dirs / "result"), "--plots", "--out", str(dirs / "noplots")], "matplotlib",
                  "import sys; sys.modules['matplotlib'] = None; "))
    with ThreadPoolExecutor(max_workers=2) as pool:
        processes = list(pool.map(lambda c: (run_analysis(*c[0], python_prefix=c[2]), c[1]), cases))
    for process, message in processes:
        assert process.returncode == 2, process.stderr
        lines = process.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], process.stderr
        assert "Traceback" not in process.stderr + process.stdout
