"""``python -m analysis`` on a damaged or foreign result directory: exit status 2 and one line,
``analysis: error: WHERE: REASON`` naming the key and the problem; never a traceback (exit 1)
and never a report on nonsense (exit 0).

Before the checks of :mod:`analysis.load`, most cases below ended in an internal error with a
traceback (a record array of another length, an index beyond the levels, a 2-d time grid, a
wrong type in run.json), and some in a report with exit 0 (transition or channel arrays of
unequal lengths, NaN in the times, first-jump times of 10 trajectories out of 400, jump lists
naming a bath that does not exist, recorded tables of the wrong shape, a second bath in
``bath_beta``). The result is a real one (``python -m jumps run`` of a qubit with jump lists
and trajectory tables); each case damages a copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.cli import main as analysis_main
from jumps.runtime import cli

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """
[system]
model = "two_level"
params = { w0 = 1.0 }
[[baths]]
coupling = "sx"
spectral_density = "ohmic"
eta = 0.05
cutoff = 5.0
temperature = 1.0
[initial_state]
kind = "eigenstate"
index = -1
[run]
t_final = 10.0
n_times = 21
trajectories = 400
seed = 2
observables = ["sz", "energy"]
record_jumps = 5
record_trajectories = 5
"""


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A finished result directory and its arrays and metadata."""
    root = tmp_path_factory.mktemp("analysis")
    (root / "config.toml").write_text(CONFIG)
    assert cli.main(["run", str(root / "config.toml"), "--out", str(root / "good"),
                     "--quiet"]) == 0
    with np.load(root / "good" / "results.npz") as data:
        arrays = {key: data[key] for key in data.files}
    meta = json.loads((root / "good" / "run.json").read_text())
    return root / "good", arrays, meta


def changed(arrays: dict, **changes) -> dict:
    out = dict(arrays)
    for key, value in changes.items():
        if value is None:
            out.pop(key)
        else:
            out[key] = value(arrays[key]) if callable(value) else value
    return out


# name -> (changes of arrays: key -> new array, function of the old one or None to drop it;
# words of the one line)
NPZ_CASES = {
    "populations_not_T_by_d": ({"populations": lambda a: a[:, :1]},
                               "populations has shape (21, 1), expected (21, 2)"),
    "populations_stderr_short": ({"populations_stderr": lambda a: a[:-1]},
                                 "populations_stderr has shape (20, 2)"),
    "heat_one_dimensional": ({"heat": lambda a: a[:, 0]}, "heat has shape (400,), expected 2"),
    "heat_two_baths": ({"heat": lambda a: np.hstack([a, a])},
                       "heat has shape (400, 2), expected (400, 1)"),
    "n_jumps_short": ({"n_jumps": lambda a: a[:-3]}, "n_jumps has shape (397,)"),
    "emissions_short": ({"emissions": lambda a: a[:-1]}, "emissions has shape (399, 1)"),
    "first_jump_time_short": ({"first_jump_time": lambda a: a[:10]},
                              "first_jump_time has shape (10,), expected (400,)"),
    "entropy_production_short": ({"entropy_production": lambda a: a[:4]},
                                 "entropy_production has shape (4,)"),
    "final_level_beyond_levels": ({"final_level": lambda a: a + 7},
                                  "final_level has values in [7, 8], outside [-1, 1]"),
    "transition_arrays_unequal": ({"transition_from": lambda a: a[:1]},
                                  "transition_from has shape (1,), expected (2,)"),
    "transition_beyond_levels": ({"transition_to": lambda a: a + 5}, "transition_to has values"),
    "level_ptr_out_of_range": ({"level_ptr": np.array([0, 5, 2])},
                               "level_ptr does not partition"),
    "level_ptr_float": ({"level_ptr": lambda a: a.astype(float)},
                        "level_ptr must be a list of integers"),
    "times_nan": ({"times": lambda a: np.where(np.arange(a.size) == 3, np.nan, a)},
                  "times contains NaN"),
    "times_decreasing": ({"times": lambda a: a[::-1].copy()}, "times must increase strictly"),
    "times_two_dimensional": ({"times": lambda a: a[None, :]}, "times has shape (1, 21)"),
    "energies_nan": ({"energies": np.array([np.nan, 0.5])}, "energies contains NaN"),
    "observable_short": ({"expect_sz": lambda a: a[:5]}, "expect_sz has shape (5,)"),
    "observable_missing": ({"expect_sz": None}, "missing expect_sz"),
    "rho_wrong_shape": ({"rho": lambda a: a[:, :1]}, "rho has shape (21, 1, 2)"),
    "channel_arrays_unequal": ({"channel_rate": lambda a: a[:1]},
                               "channel_rate has shape (1,), expected (2,)"),
    "channel_of_no_bath": ({"channel_bath": lambda a: a + 3}, "channel_bath has values"),
    "jump_lists_unequal": ({"jump_time": lambda a: a[:-2]}, "jump_time has shape"),
    "jump_of_no_bath": ({"jump_bath": lambda a: a + 4}, "jump_bath has values"),
    "trajectory_level_wrong_shape": ({"trajectory_level": lambda a: a[:, :4]},
                                     "trajectory_level has shape (5, 4), expected (5, 21)"),
    "trajectory_heat_wrong_shape": ({"trajectory_heat": lambda a: a[:2]},
                                    "trajectory_heat has shape (2, 21, 1), expected (5, 21, 1)"),
    "occupation_time_short": ({"occupation_time": lambda a: a[:1]},
                              "occupation_time has shape (1,)"),
    "heat_complex": ({"heat": lambda a: a + 1j}, "heat has dtype complex128"),
    "populations_strings": ({"populations": np.full((21, 2), "x")}, "populations has dtype"),
    "two_bath_temperatures": ({"bath_beta": np.array([1.0, 2.0])},
                              "heat has shape (400, 1), expected (400, 2)"),
    "missing_heat": ({"heat": None}, "missing arrays: heat"),
    "pickle_inside": ({"heat": np.array([{"a": 1}], dtype=object)},
                      "an array holds Python objects"),
}
META_CASES = {
    "not_an_object": ("[1, 2]", "run.json: must be a JSON object, got list"),
    "no_method": (lambda m: {k: v for k, v in m.items() if k != "method"},
                  "run.json: 'method' must be one of"),
    "observables_not_a_list": (lambda m: {**m, "observables": 5},
                               "'observables' must be a list"),
    "dimension_not_an_integer": (lambda m: {**m, "dimension": "two"},
                                 "'dimension' must be an integer"),
    "dimension_wrong": (lambda m: {**m, "dimension": 3}, "run.json says dimension 3"),
    "config_not_an_object": (lambda m: {**m, "config": [1]}, "'config' must be an object"),
    "config_path_not_a_string": (lambda m: {**m, "config_path": 5}, "'config_path' must be"),
    "lists_every_channel_string": (lambda m: {**m, "lists_every_channel": "no"},
                                   "'lists_every_channel' must be true or false"),
    "bath_thermal_not_a_list": (lambda m: {**m, "bath_thermal": 3}, "'bath_thermal' must be"),
    "bath_beta_strings": (lambda m: {**m, "bath_beta": ["hot"]}, "'bath_beta' must list"),
    "bath_couplings_two": (lambda m: {**m, "bath_couplings": ["sx", "sz"]},
                           "1 baths, run.json lists 2"),
    "empty_file": ("", "run.json: unreadable JSON"),
}


def write(directory: Path, arrays: dict, meta_text: str) -> Path:
    directory.mkdir(parents=True)
    np.savez(directory / "results.npz", **arrays)
    (directory / "run.json").write_text(meta_text)
    return directory


def assert_refused(directory: Path, words: str, capsys, out: Path) -> None:
    status = analysis_main([str(directory), "--no-exact", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("analysis: error: ") and words in lines[0], lines[0]
    assert "Traceback" not in err and "Warning" not in err
    assert not (out / "report.json").exists()


@pytest.mark.parametrize("name", list(NPZ_CASES))
def test_damaged_results_npz(name, good, tmp_path, capsys):
    _, arrays, meta = good
    change, words = NPZ_CASES[name]
    directory = write(tmp_path / name, changed(arrays, **change), json.dumps(meta))
    assert_refused(directory, words, capsys, tmp_path / "out")


@pytest.mark.parametrize("name", list(META_CASES))
def test_damaged_run_json(name, good, tmp_path, capsys):
    _, arrays, meta = good
    change, words = META_CASES[name]
    text = change if isinstance(change, str) else json.dumps(change(meta))
    directory = write(tmp_path / name, arrays, text)
    assert_refused(directory, words, capsys, tmp_path / "out")


@pytest.mark.parametrize("name, make, words", [
    ("npz_is_a_directory", lambda path: path.mkdir(), "results.npz: not a file"),
    ("npz_empty", lambda path: path.write_bytes(b""), "results.npz: unreadable"),
    ("npz_truncated", None, "results.npz: unreadable"),
])
def test_unreadable_results_npz(name, make, words, good, tmp_path, capsys):
    source, _, _ = good
    directory = tmp_path / name
    directory.mkdir()
    shutil.copy(source / "run.json", directory / "run.json")
    path = directory / "results.npz"
    if make is None:
        path.write_bytes((source / "results.npz").read_bytes()[:5000])
    else:
        make(path)
    assert_refused(directory, words, capsys, tmp_path / "out")


def test_the_good_result_is_analysed(good, tmp_path, capsys):
    """The checks refuse nothing that jumps writes: the undamaged result gives exit 0."""
    source, _, _ = good
    assert analysis_main([str(source), "--no-exact", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().err == ""


def test_pickle_in_a_real_process(good, tmp_path):
    """``python -m analysis`` on an archive holding a pickled object array: exit 2, one line;
    the object is never unpickled (allow_pickle stays False)."""
    _, arrays, meta = good
    directory = write(tmp_path / "pickle", changed(arrays, heat=np.array([object()])),
                      json.dumps(meta))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.run([sys.executable, "-m", "analysis", str(directory), "--no-exact"],
                             env=env, capture_output=True, text=True, timeout=120, check=False)
    assert process.returncode == 2, process.stderr
    assert len(process.stderr.splitlines()) == 1, process.stderr
    assert "results.npz: unreadable: an array holds Python objects" in process.stderr
