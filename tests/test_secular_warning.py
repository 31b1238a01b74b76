"""A questionable secular margin is said where a physicist looks: ``jumps run`` and ``jumps
exact`` on stderr, the analysis report as a note, the API as a SecularWarning (issue 14)."""

from __future__ import annotations

import helpers
import pytest

from analysis.cli import main as analysis_main
from jumps.runtime import cli

QUBIT = {
    "system": {"model": "two_level", "params": {"w0": 1.0}},
    "baths": [helpers.ohmic_bath("sx", eta=0.2)],
    "initial_state": {"kind": "eigenstate", "index": -1},
    "run": {"t_final": 10.0, "n_times": 11, "trajectories": 300, "seed": 2},
}


@pytest.mark.parametrize("eta, warned", [(0.2, True), (0.002, False)])
def test_run_exact_and_analysis_warn_of_a_questionable_secular_margin(tmp_path, capsys,
                                                                      monkeypatch, eta, warned):
    monkeypatch.setenv("JUMPS_MPI", "0")
    config = tmp_path / "config.toml"
    config.write_text(helpers.config_toml(QUBIT, baths={"eta": eta}))
    assert cli.main(["run", str(config), "--out", str(tmp_path / "run")]) == 0
    assert ("jumps: warning: secular margin" in capsys.readouterr().err) == warned
    assert cli.main(["run", str(config), "--out", str(tmp_path / "run"), "--quiet",
                     "--force"]) == 0
    assert "secular" not in capsys.readouterr().err  # --quiet: run.json and the report keep it
    assert cli.main(["exact", str(config), "--out", str(tmp_path / "exact")]) == 0
    assert ("jumps: warning: secular margin" in capsys.readouterr().err) == warned
    assert analysis_main([str(tmp_path / "run"), "--out", str(tmp_path / "report")]) == 0
    assert ("note: WARNING: secular margin" in capsys.readouterr().out) == warned
