"""A damaged generator cache is never used: it is rebuilt, with one warning line, and the run's
result equals a clean run's (README, "Two generators": the cache paragraph).

Before the validation a damaged ``alias.npy`` (targets beyond d) segfaulted the rates kernel
(exit 139), and a changed ``threshold.npy`` or ``meta.json`` gave another result with exit 0.
Now ``meta.json`` lists every array's dtype, shape and CRC-32, the key of the config it was
built from and its own checksum; loading checks them, then the generator's index ranges
(:meth:`jumps.generators.base.Unravelling.check_arrays`). The runs here: an 8-spin chain
(d = 256) with two baths and the rates generator, the cache on, in a cache directory of the
module's own (``JUMPS_CACHE_DIR``).
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

from jumps.runtime import build as build_module
from jumps.runtime import cli

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """
[system]
model = "tfim_chain"
params = { n = 8, J = 1.0, h = 1.05, hz = 0.5 }
[[baths]]
coupling = "sx:0"
spectral_density = "ohmic"
eta = 0.02
cutoff = 5.0
temperature = 1.0
[[baths]]
coupling = "sx:7"
spectral_density = "ohmic"
eta = 0.03
cutoff = 5.0
temperature = 0.5
[initial_state]
kind = "eigenstate"
index = -1
[run]
t_final = 20.0
n_times = 11
trajectories = 200
seed = 3
observables = ["sz:0"]
generator = "rates"
cache = true
lamb_shift = false
"""
COMPARED = ("populations", "expect_sz_0", "heat", "n_jumps", "emissions", "absorptions",
            "transition_from", "transition_to", "transition_count", "final_level")


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The cache directory, the config, the clean run's result and a pristine copy of the
    cache entry it built."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUMPS_CACHE_DIR", str(root / "cache"))
        config = root / "config.toml"
        config.write_text(CONFIG)
        assert cli.main(["run", str(config), "--out", str(root / "clean"), "--quiet"]) == 0
        (entry,) = (root / "cache").glob("rates-*")
        shutil.copytree(entry, root / "pristine")
        with np.load(root / "clean" / "results.npz") as data:
            result = {key: data[key] for key in COMPARED}
        yield {"root": root, "config": config, "entry": entry, "result": result}


@pytest.fixture
def entry(clean, monkeypatch):
    """The cache entry, restored from the pristine copy (the test damages it)."""
    monkeypatch.setenv("JUMPS_CACHE_DIR", str(clean["root"] / "cache"))
    shutil.rmtree(clean["entry"], ignore_errors=True)
    shutil.copytree(clean["root"] / "pristine", clean["entry"])
    return clean["entry"]


def rewrite_meta(directory: Path, change) -> None:
    """Apply ``change`` to meta.json and store a matching checksum (a consistent edit)."""
    meta = json.loads((directory / "meta.json").read_text())
    change(meta)
    meta["cache"]["meta_crc32"] = build_module._meta_checksum(meta)
    (directory / "meta.json").write_text(json.dumps(meta))


def alias_beyond_d(directory: Path) -> None:
    alias = np.load(directory / "alias.npy")
    alias[::7] = 2_000_000_000
    np.save(directory / "alias.npy", alias)


def alias_beyond_d_with_its_checksum(directory: Path) -> None:
    """Out-of-range targets whose checksum is recorded too (as a bug at save time would):
    the range check catches them."""
    alias_beyond_d(directory)
    checksum = build_module.checksum(np.load(directory / "alias.npy"))
    rewrite_meta(directory, lambda meta: meta["cache"]["arrays"]["alias"].update(crc32=checksum))


def truncated(directory: Path) -> None:
    path = directory / "threshold.npy"
    path.write_bytes(path.read_bytes()[:-1000])


def wrong_dtype(directory: Path) -> None:
    np.save(directory / "alias.npy", np.load(directory / "alias.npy").astype(np.int64))


def values_changed(directory: Path) -> None:
    """Thresholds still in [0, 1], shapes and dtypes intact: only the checksum tells."""
    threshold = np.load(directory / "threshold.npy")
    threshold[-256:] = 0.5  # the top eigenstate's row: the trajectories start there
    np.save(directory / "threshold.npy", threshold)


def meta_truncated(directory: Path) -> None:
    path = directory / "meta.json"
    path.write_text(path.read_text()[:40])


def meta_edited(directory: Path) -> None:
    """degeneracy_tol changes how the result's channels are grouped; not an array."""
    path = directory / "meta.json"
    meta = json.loads(path.read_text())
    meta["degeneracy_tol"] *= 1e6
    path.write_text(json.dumps(meta))


def entry_of_another_config(directory: Path) -> None:
    rewrite_meta(directory, lambda meta: meta["cache"].update(key="0" * 24))


DAMAGES = {  # name -> (damage, what the warning says)
    "alias_beyond_d": (alias_beyond_d, "alias.npy: checksum mismatch"),
    "alias_beyond_d_with_its_checksum": (alias_beyond_d_with_its_checksum,
                                         "alias.npy: values in [0, 2000000000], outside [0, 256)"),
    "truncated_file": (truncated, "threshold.npy: truncated"),
    "wrong_dtype": (wrong_dtype, "alias.npy: <i8 (65536,), meta.json says <i4 (65536,)"),
    "checksum_mismatch": (values_changed, "threshold.npy: checksum mismatch"),
    "damaged_meta_json": (meta_truncated, "meta.json: unreadable"),
    "edited_meta_json": (meta_edited, "meta.json: checksum mismatch"),
    "another_config": (entry_of_another_config, "meta.json: built from another config"),
}


def assert_same_result(out: Path, clean: dict) -> None:
    with np.load(out / "results.npz") as data:
        for key, expected in clean["result"].items():
            assert np.array_equal(data[key], expected), key


def assert_warned(err: str, entry: Path, reason: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"jumps: warning: cache entry {entry} damaged ({reason}"), lines[0]
    assert lines[0].endswith("); rebuilding"), lines[0]


@pytest.mark.parametrize("name", list(DAMAGES))
def test_damaged_entry_is_rebuilt(name, clean, entry, tmp_path, capsys):
    """Exit 0, one warning line naming the file and the problem, the clean run's result, and
    a valid entry in place afterwards."""
    damage, reason = DAMAGES[name]
    damage(entry)
    status = cli.main(["run", str(clean["config"]), "--out", str(tmp_path / "out"), "--quiet"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert_warned(captured.err, entry, reason)
    assert_same_result(tmp_path / "out", clean)
    meta = json.loads((tmp_path / "out" / "run.json").read_text())
    assert meta["generator_cache"] is None  # built, not loaded
    status = cli.main(["run", str(clean["config"]), "--out", str(tmp_path / "again"), "--quiet"])
    captured = capsys.readouterr()
    assert status == 0 and captured.err == ""  # the rebuilt entry is valid and used
    assert json.loads((tmp_path / "again" / "run.json").read_text())["generator_cache"]


def test_intact_entry_is_used_silently(clean, entry, tmp_path, capsys):
    assert cli.main(["run", str(clean["config"]), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert json.loads((tmp_path / "out" / "run.json").read_text())["generator_cache"] == str(entry)
    assert_same_result(tmp_path / "out", clean)


def test_damaged_alias_in_a_real_process(clean, entry, tmp_path):
    """What segfaulted (exit 139): a real ``python -m jumps run`` now warns and rebuilds."""
    alias_beyond_d(entry)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JUMPS_CACHE_DIR": str(clean["root"] / "cache")}
    process = subprocess.run([sys.executable, "-m", "jumps", "run", str(clean["config"]),
                              "--out", str(tmp_path / "out"), "--quiet"], env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert process.returncode == 0, process.stderr
    assert_warned(process.stderr, entry, "alias.npy: checksum mismatch")
    assert_same_result(tmp_path / "out", clean)


@pytest.mark.parametrize("text, reason", [
    ('{"eigh": -1.0, "product": 1e-11}', "eigh: must be a positive finite number, got -1.0"),
    ('{"eigh": ', "not JSON"),
])
def test_damaged_calibration_is_recomputed(text, reason, clean, entry, tmp_path, monkeypatch,
                                           capsys):
    """calibration.json (the build-time estimate's BLAS speed) is read when a generator is
    built: a damaged one gives one warning line, is measured again and rewritten; the run's
    result is the clean one."""
    shutil.rmtree(entry)  # a build, so that the estimate reads the calibration
    monkeypatch.setattr(build_module, "_CALIBRATION", {})
    path = clean["root"] / "cache" / "calibration.json"
    path.write_text(text)
    status = cli.main(["run", str(clean["config"]), "--out", str(tmp_path / "out"), "--quiet"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"jumps: warning: calibration file {path} damaged ({reason}")
    assert lines[0].endswith("); recomputing")
    stored = json.loads(path.read_text())
    assert set(stored) == {"eigh", "product"} and all(v > 0 for v in stored.values())
    assert_same_result(tmp_path / "out", clean)


@pytest.mark.parametrize("text, reason", [
    ('{"eigh": 1e-10}', "expected the keys eigh, product"),
    ('{"eigh": 1e-10, "product": "fast"}', "product: must be a positive finite number"),
    ('{"eigh": 1e-10, "product": true}', "product: must be a positive finite number"),
    ('{"eigh": Infinity, "product": 1e-11}', "eigh: must be a positive finite number"),
    ("[1e-10, 1e-11]", "expected the keys eigh, product"),
])
def test_calibration_values_are_checked(text, reason, tmp_path, capsys):
    """The calibration reader alone (no measurement): a damaged file is None, with one line."""
    path = tmp_path / "calibration.json"
    path.write_text(text)
    assert build_module._read_calibration(path) is None
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and f"damaged ({reason}" in lines[0], lines
    path.write_text('{"eigh": 1e-10, "product": 2e-11}')
    assert build_module._read_calibration(path) == {"eigh": 1e-10, "product": 2e-11}
    assert capsys.readouterr().err == ""


def test_cached_arrays_are_writeable_copies_on_write(entry):
    """Loaded arrays are copy-on-write maps: writeable, as a fresh build's (Numba types a
    read-only array apart: a read-only cache entry compiled every kernel a second time, ~60 s
    at d = 256), and a write changes this process's pages, never the cache file."""
    manifest = json.loads((entry / "meta.json").read_text())["cache"]["arrays"]
    arrays = build_module._read_arrays(entry, manifest)
    assert arrays and all(array.flags.writeable for array in arrays.values())
    threshold = arrays["threshold"]
    before = np.load(entry / "threshold.npy")
    threshold[:] = -1.0
    np.testing.assert_array_equal(np.load(entry / "threshold.npy"), before)
