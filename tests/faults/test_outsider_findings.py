"""Regressions from an outsider's attempt to break the engine (issues 11 and 12): each case
once gave a wrong result with exit 0, a hang, a traceback or an overwrite."""

from __future__ import annotations

import helpers
import numpy as np
import pytest
from fault_helpers import run_here

from jumps.runtime import cli
from jumps.runtime.io import read_results

# A 3-spin chain without longitudinal field coupled through sx:0 only: parity is conserved
# and sx:0 commutes with it, so the two parity sectors never meet: two steady states.
PARITY = {
    "system": {"model": "tfim_chain", "params": {"n": 3, "J": 1.0, "h": 1.05, "hz": 0.0}},
    "baths": [helpers.ohmic_bath("sx:0", eta=0.02)],
    "initial_state": {"kind": "steady_state"},
    "run": {"t_final": 30.0, "n_times": 31, "trajectories": 200, "seed": 5, "cache": False},
}


def write(tmp_path, base=PARITY, **sections):
    path = tmp_path / "config.toml"
    path.write_text(helpers.config_toml(base, **sections))
    return path


@pytest.mark.parametrize("generator", ["channels", "rates"])
def test_a_steady_state_that_is_not_unique_is_refused_by_both_generators(tmp_path, generator):
    """The rates build joined the sectors through rounding-level matrix elements (~1e-17),
    counted one steady state and sampled an arbitrary one, exit 0."""
    config = write(tmp_path, run={"generator": generator})
    status, err = run_here(config, "--out", tmp_path / "out")
    assert status == 2
    assert err.strip() == "jumps: error: initial_state.kind: not unique: 2 steady states"


def test_counting_fields_too_large_for_any_estimate_are_refused(tmp_path):
    """|s| w_max = 41: the exact reference ran for hours (or overflowed), exit 0 on run."""
    config = write(tmp_path, initial_state={"kind": "gibbs"}, counting={"s": [-1.0, 15.0]})
    status, err = run_here(config, "--out", tmp_path / "out")
    assert status == 2 and err.startswith("jumps: error: counting.s: |s| = 15")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("generator", ["channels", "rates"])
def test_an_overflowing_bath_is_refused_in_one_line(tmp_path, generator):
    """eta = 1e300 stored NaN Lamb shifts with exit 0 (and printed overflow warnings)."""
    config = write(tmp_path, baths={"eta": 1e300}, initial_state={"kind": "gibbs"},
                   run={"generator": generator, "allow_long": True, "t_final": 1e-300})
    status, err = run_here(config, "--out", tmp_path / "out")
    assert status == 2
    assert err.strip().splitlines() == [
        ("jumps: error: baths: a bath's Lamb shift is not finite at the Bohr frequencies "
         "(overflow: is the coupling strength absurd?)")]


def test_the_integral_fluctuation_theorem_expects_less_than_one_without_full_support(tmp_path):
    """An eigenstate start: <exp(-sigma)> is the reversed process's weight on that level, not
    1 (the report showed z = -1.8e13). The run stores the exact value; the trajectories
    agree with it."""
    config = write(tmp_path, system={"params": {"n": 3, "J": 1.0, "h": 1.05, "hz": 0.4}},
                   baths={"coupling": "sx:*"},
                   initial_state={"kind": "populations", "populations": [0.5, 0, 0, 0, 0.5, 0, 0, 0]},
                   run={"trajectories": 4000, "t_final": 10.0})
    status, err = run_here(config, "--out", tmp_path / "out")
    assert status == 0, err
    arrays, _ = read_results(tmp_path / "out")
    expected = float(arrays["ift_expected"])
    assert 0.05 < expected < 0.95
    weights = np.exp(-arrays["entropy_production"][np.isfinite(arrays["entropy_production"])])
    z = (weights.mean() - expected) / (weights.std(ddof=1) / np.sqrt(weights.size))
    assert abs(z) < 4


def test_exact_refuses_a_directory_holding_an_interrupted_run(tmp_path, capsys):
    """jumps exact wrote beside an interrupted run's checkpoint; a later --resume then replaced
    the exact result, with no --force anywhere."""
    config = write(tmp_path, initial_state={"kind": "gibbs"})
    out = tmp_path / "out"
    (out / "checkpoint").mkdir(parents=True)
    assert cli.main(["exact", str(config), "--out", str(out)]) == 2
    assert "interrupted trajectory run" in capsys.readouterr().err
    assert cli.main(["exact", str(config), "--out", str(out), "--force"]) == 0
    assert not (out / "checkpoint").exists()


def test_an_empty_out_is_refused(tmp_path, capsys):
    """--out '' wrote the result into the current directory."""
    config = write(tmp_path, initial_state={"kind": "gibbs"})
    with pytest.raises(SystemExit) as exit_:
        cli.main(["exact", str(config), "--out", ""])
    assert exit_.value.code == 2
    assert "--out: must not be empty" in capsys.readouterr().err


def test_an_out_below_a_regular_file_is_bad_input(tmp_path, capsys):
    """--out FILE/sub exited 1 (an environment failure) instead of 2 (bad input)."""
    config = write(tmp_path, initial_state={"kind": "gibbs"})
    (tmp_path / "a_file").write_text("")
    for command in ("run", "exact"):
        try:
            status = cli.main([command, str(config), "--out",
                               str(tmp_path / "a_file" / "sub" / "out")])
        except SystemExit as exit_:  # `exact` exits from its own error handler
            status = exit_.code
        stderr = capsys.readouterr().err
        assert status == 2, stderr
        expected = (f"jumps: error: --out: cannot create {tmp_path / 'a_file' / 'sub'}: "
                    f"{tmp_path / 'a_file'} is not a directory")
        assert stderr.strip().splitlines() == [expected]
    assert (tmp_path / "a_file").read_text() == ""


def test_target_stderr_must_be_finite(tmp_path):
    config = write(tmp_path, initial_state={"kind": "gibbs"})
    status, err = run_here(config, "--out", tmp_path / "out", "--target-stderr", "inf")
    assert status == 2 and "--target-stderr: must be positive and finite" in err


def test_api_populations_must_add_up_to_one_as_in_a_config():
    import jumps
    from jumps.errors import ConfigError

    qubit = jumps.davies_generator(np.diag([0.5, -0.5]), [np.array([[0, 1], [1, 0]])],
                                   [jumps.ohmic(0.02, 5.0, beta=1.0)])
    with pytest.raises(ConfigError, match="must add up to 1, they add up to 1.1"):
        jumps.unravel_generator(qubit, populations=[0.3, 0.8], times=[0.0, 1.0],
                                trajectories=10)
