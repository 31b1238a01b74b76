"""``jumps.load`` checks what it reads, with the analysis' checks (one implementation:
:func:`jumps.runtime.resultfile.read_checked`): a damaged ``results.npz`` or ``run.json`` is a
ConfigError naming the file and the problem in one line, never a KeyError or an IndexError
later. Results of the Python API (a ``tlist`` from a negative time, a merge, an exact
solution) load back unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

import analysis.load
import jumps
from jumps.runtime.io import read_results

SZ = np.diag([1.0, -1.0])
SX = np.array([[0.0, 1.0], [1.0, 0.0]])
BATH = jumps.ohmic(0.005, 5.0, temperature=1.0)
OPTIONS = {"progress_bar": False, "record_jumps": 60}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small jumpsolve result (numpy inputs, a grid from t = -1), saved; its arrays and
    run.json as written."""
    directory = tmp_path_factory.mktemp("load") / "good"
    result = jumps.jumpsolve(0.5 * SZ, [0.0, 1.0], np.linspace(-1.0, 3.0, 9), [(SX, BATH)],
                             e_ops={"sz": SZ, "sx:0": SX}, ntraj=60, seeds=3, options=OPTIONS)
    result.save(directory)
    arrays, meta = read_results(directory)
    return directory, result, arrays, meta


def write(directory, arrays: dict, meta: dict):
    jumps.Result(arrays, meta).save(directory)
    return directory


def test_api_results_load_back(saved, tmp_path):
    """A grid from t = -1 (run.json's t0), a merge of two seeds and an exact solution load back
    with their arrays."""
    directory, result, _, _ = saved
    back = jumps.load(directory)
    assert back.times[0] == -1.0 and back.derived == ()
    for key in result.arrays:
        np.testing.assert_array_equal(back.arrays[key], result.arrays[key], err_msg=key)
    other = jumps.jumpsolve(0.5 * SZ, [0.0, 1.0], np.linspace(-1.0, 3.0, 9), [(SX, BATH)],
                            e_ops={"sz": SZ, "sx:0": SX}, ntraj=40, seeds=4, options=OPTIONS)
    merged = result + other
    merged.save(tmp_path / "merged")
    assert jumps.load(tmp_path / "merged").ntraj == 100
    exact = jumps.exactsolve(0.5 * SZ, [0.0, 1.0], [-2.0, 0.0, 0.5, 4.0], [(SX, BATH)],
                             e_ops=[SZ])
    exact.save(tmp_path / "exact")
    np.testing.assert_array_equal(jumps.load(tmp_path / "exact").expect[0], exact.expect[0])


def drop(key):
    return lambda arrays: {k: v for k, v in arrays.items() if k != key}


def change(key, function):
    return lambda arrays: {**arrays, key: function(arrays[key])}


# name -> (what is done to the arrays, words of the one line)
NPZ_CASES = {
    "missing_times": (drop("times"), "missing arrays: times"),
    "missing_heat": (drop("heat"), "missing arrays: heat"),
    "missing_populations": (drop("populations"), "missing arrays: populations"),
    "missing_observable": (drop("expect_sx_0"), "missing expect_sx_0"),
    "missing_observable_stderr": (drop("expect_sz_stderr"), "missing expect_sz_stderr"),
    "populations_wrong_shape": (change("populations", lambda a: a[:, :1]),
                                "populations has shape (9, 1), expected (9, 2)"),
    "observable_wrong_shape": (change("expect_sz", lambda a: a[:4]),
                               "expect_sz has shape (4,), expected (9,)"),
    "rho_wrong_shape": (change("rho", lambda a: a[:, :, :1]), "rho has shape (9, 2, 1)"),
    "heat_wrong_shape": (change("heat", lambda a: a[:10]),
                         "n_jumps has shape (60,), expected (10,) (trajectories)"),
    "times_nan": (change("times", lambda a: np.where(np.arange(a.size) == 2, np.nan, a)),
                  "times contains NaN"),
    "observable_nan": (change("expect_sz", lambda a: a * np.nan), "expect_sz contains NaN"),
    "populations_strings": (change("populations", lambda a: np.full(a.shape, "x")),
                            "populations has dtype <U1, expected real numbers"),
    "heat_complex": (change("heat", lambda a: a + 1j), "heat has dtype complex128"),
    "jump_bath_beyond_baths": (change("jump_bath", lambda a: a + 3), "jump_bath has values"),
    "times_from_another_start": (change("times", lambda a: a - 1.0),
                                 "times must increase strictly from t >= 0"),
}


@pytest.mark.parametrize("name", list(NPZ_CASES))
def test_damaged_results_npz_is_one_clear_error(name, saved, tmp_path):
    _, _, arrays, meta = saved
    damage, words = NPZ_CASES[name]
    directory = write(tmp_path / name, damage(arrays), meta)
    with pytest.raises(jumps.ConfigError) as error:
        jumps.load(directory)
    line = str(error.value)
    assert "\n" not in line and words in line, line
    assert error.value.field == str(directory / "results.npz")
    with pytest.raises(jumps.ConfigError) as again:  # the analysis reads it the same way
        analysis.load.load_result(directory)
    assert str(again.value) == line


@pytest.mark.parametrize("change_meta, words", [
    (lambda m: {k: v for k, v in m.items() if k != "method"}, "'method' must be one of"),
    (lambda m: {**m, "observables": "sz"}, "'observables' must be a list"),
    (lambda m: {**m, "dimension": 3}, "run.json says dimension 3"),
    (lambda m: {**m, "bath_beta": [1.0, 2.0]}, "1 baths, run.json lists 2 in 'bath_beta'"),
    (lambda m: {**m, "t0": "minus one"}, "'t0' must be an integer or a number"),
])
def test_damaged_run_json_is_one_clear_error(change_meta, words, saved, tmp_path):
    _, _, arrays, meta = saved
    directory = write(tmp_path / "meta", arrays, change_meta(meta))
    with pytest.raises(jumps.ConfigError, match=words) as error:
        jumps.load(directory)
    assert "\n" not in str(error.value)


def test_unreadable_files(saved, tmp_path):
    """Not a result directory, an empty results.npz, a run.json that is not JSON."""
    source, _, _, _ = saved
    with pytest.raises(jumps.ConfigError, match="not a jumps result directory"):
        jumps.load(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "results.npz").write_bytes(b"")
    (empty / "run.json").write_text((source / "run.json").read_text())
    with pytest.raises(jumps.ConfigError, match="results.npz: unreadable"):
        jumps.load(empty)
    (empty / "results.npz").write_bytes((source / "results.npz").read_bytes())
    (empty / "run.json").write_text("{")
    with pytest.raises(jumps.ConfigError, match="run.json: unreadable JSON"):
        jumps.load(empty)
    (empty / "run.json").write_text(json.dumps([1]))
    with pytest.raises(jumps.ConfigError, match="must be a JSON object"):
        jumps.load(empty)


def test_one_implementation():
    """The analysis reads result directories with jumps' reader."""
    assert analysis.load.load_result is jumps.result.load
