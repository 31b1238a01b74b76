"""A questionable weak-coupling condition is said where a physicist looks, as the secular
margin is (issue 14): ``jumps info`` flags it, ``jumps run`` (not with ``--quiet``) and ``jumps
exact`` print it on stderr, ``run.json`` keeps the figures, the analysis report notes it, the
API raises a WeakCouplingWarning; one text (:func:`jumps.runtime.info.weak_coupling_warning`).

The criterion (docs/design.md, "Conventions"): the largest total jump rate out of a state over
the slowest decay rate of a bath correlation function, min(cutoff, 2 pi T) over the baths,
flagged above 0.1. The cases: a qubit (w0 = 1, coupling sx, Ohmic, cutoff 5) at T = 0.05
(2 pi T = 0.314) with eta = 0.02, whose excited state decays at gamma(1) = 0.103: ratio 0.33,
while its secular margin (2 / 0.103 = 19) is fine; and at T = 1 with eta = 0.002: ratio 0.003.
"""

from __future__ import annotations

import json
import math
import warnings

import helpers
import numpy as np
import pytest

import jumps
from analysis.cli import main as analysis_main
from jumps.runtime import cli
from jumps.runtime.info import WEAK_COUPLING_RATIO_OK, weak_coupling_record

SZ = np.diag([1.0, -1.0])
SX = np.array([[0.0, 1.0], [1.0, 0.0]])
STRONG = {"eta": 0.02, "temperature": 0.05}
WEAK = {"eta": 0.002, "temperature": 1.0}
QUBIT = {
    "system": {"model": "two_level", "params": {"w0": 1.0}},
    "baths": [helpers.ohmic_bath("sx")],
    "initial_state": {"kind": "eigenstate", "index": -1},
    "run": {"t_final": 5.0, "n_times": 6, "trajectories": 200, "seed": 2},
}


def emission(eta: float, cutoff: float, temperature: float, w: float = 1.0) -> float:
    """gamma(w) = 2 pi J(w) / (1 - exp(-w / T)) for J = eta w exp(-w / cutoff)."""
    return 2 * math.pi * eta * w * math.exp(-w / cutoff) / (-math.expm1(-w / temperature))


@pytest.mark.parametrize("bath, source, slowest", [
    (jumps.ohmic(0.02, 5.0, temperature=0.05), "2 pi T of bath 0", 2 * math.pi * 0.05),
    (jumps.ohmic(0.02, 0.5, temperature=1.0), "cutoff of bath 0", 0.5),
    (jumps.drude_lorentz(0.02, 0.5, temperature=1.0), "cutoff of bath 0", 0.5),
    (jumps.ohmic(0.02, 5.0, temperature=0.0), "cutoff of bath 0", 5.0),
])
def test_ratio_is_the_largest_escape_rate_over_the_slowest_bath_decay(bath, source, slowest):
    """Against the definition: a qubit's largest total rate out of a state is its excited
    state's gamma(w0) (coupling sx); the bath's slowest decay rate is min(cutoff, 2 pi T), the
    cutoff alone at T = 0. 1e-12 relative."""
    generator = jumps.davies_generator(0.5 * SZ, [SX], [bath], lamb_shift=False)
    record = weak_coupling_record(generator)
    rate = float(bath.rates(np.array([1.0]))[0])
    assert record["max_escape_rate"] == pytest.approx(rate, rel=1e-12)
    assert record["bath_correlation_source"] == source
    assert record["bath_correlation_rate"] == pytest.approx(slowest, rel=1e-12)
    assert record["weak_coupling_ratio"] == pytest.approx(rate / slowest, rel=1e-12)


def test_the_slowest_bath_and_the_total_rate_count():
    """Two baths: the rate out of a state adds both baths' rates, and the slower bath sets
    the decay rate compared with it (the system changes at its total rate whichever bath
    drives it)."""
    fast, slow = jumps.ohmic(0.01, 5.0, temperature=1.0), jumps.ohmic(0.01, 5.0, temperature=0.1)
    generator = jumps.davies_generator(0.5 * SZ, [SX, SX], [fast, slow], lamb_shift=False)
    record = weak_coupling_record(generator)
    total = sum(float(b.rates(np.array([1.0]))[0]) for b in (fast, slow))
    assert record["max_escape_rate"] == pytest.approx(total, rel=1e-12)
    assert record["bath_correlation_source"] == "2 pi T of bath 1"
    assert record["weak_coupling_ratio"] == pytest.approx(total / (0.2 * math.pi), rel=1e-12)


def test_not_decided_without_a_known_correlation_time():
    """A tabulated J at T = 0 (no cutoff known, no thermal time) and rates given directly:
    nothing to compare with, no figure and no warning."""
    table = np.array([[0.0, 0.0], [1.0, 0.5], [2.0, 0.0]])
    for bath in (jumps.tabulated(table, temperature=0.0),
                 jumps.from_rates(np.array([[-1.0, 0.0], [1.0, 0.5]]))):
        generator = jumps.davies_generator(0.5 * SZ, [SX], [bath], lamb_shift=False)
        record = weak_coupling_record(generator)
        assert record["weak_coupling_ratio"] is None and record["bath_correlation_rate"] is None
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            jumps.exactsolve(0.5 * SZ, [0.0, 1.0], [0.0, 1.0], [(SX, bath)], e_ops=[SZ],
                             options={"lamb_shift": False})


@pytest.mark.parametrize("changes, warned", [(STRONG, True), (WEAK, False)])
def test_cli_run_exact_info_and_analysis(tmp_path, capsys, monkeypatch, changes, warned):
    monkeypatch.setenv("JUMPS_MPI", "0")
    config = tmp_path / "config.toml"
    config.write_text(helpers.config_toml(QUBIT, baths=changes))
    expected_ratio = emission(changes["eta"], 5.0, changes["temperature"]) / min(
        5.0, 2 * math.pi * changes["temperature"])
    assert (expected_ratio > WEAK_COUPLING_RATIO_OK) == warned
    assert cli.main(["info", str(config)]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "weak coupling" in line)
    assert f"{expected_ratio:.6g}" in line and ("WARNING" in line) == warned
    assert cli.main(["run", str(config), "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert ("jumps: warning: weak-coupling ratio" in err) == warned
    assert "secular" not in err  # this qubit's secular margin is fine: one warning, not two
    if warned:
        assert f"weak-coupling ratio {expected_ratio:.3g} (largest total rate" in err
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["weak_coupling_ratio"] == pytest.approx(expected_ratio, rel=1e-9)
    assert cli.main(["run", str(config), "--out", str(tmp_path / "run"), "--quiet",
                     "--force"]) == 0
    assert "weak-coupling" not in capsys.readouterr().err  # --quiet: run.json keeps it
    assert cli.main(["exact", str(config), "--out", str(tmp_path / "exact")]) == 0
    assert ("jumps: warning: weak-coupling ratio" in capsys.readouterr().err) == warned
    assert analysis_main([str(tmp_path / "run"), "--out", str(tmp_path / "report")]) == 0
    assert ("note: WARNING: weak-coupling ratio" in capsys.readouterr().out) == warned
    notes = json.loads((tmp_path / "report" / "report.json").read_text())["notes"]
    assert any("weak-coupling ratio" in note for note in notes) == warned


def test_api_raises_a_weak_coupling_warning_with_the_same_text(tmp_path, capsys, monkeypatch):
    """jumpsolve, exactsolve and unravel_generator warn with the text run prints; the weak
    case raises nothing (warnings as errors)."""
    monkeypatch.setenv("JUMPS_MPI", "0")
    strong = jumps.ohmic(STRONG["eta"], 5.0, temperature=STRONG["temperature"])
    arguments = (0.5 * SZ, [1.0, 0.0], np.linspace(0, 5, 6), [(SX, strong)])
    with pytest.warns(jumps.WeakCouplingWarning, match="weak-coupling ratio") as caught:
        result = jumps.jumpsolve(*arguments, e_ops=[SZ], ntraj=50, seeds=1,
                                 options={"progress_bar": False})
    assert result.stats["weak_coupling_ratio"] > WEAK_COUPLING_RATIO_OK
    config = tmp_path / "config.toml"
    config.write_text(helpers.config_toml(QUBIT, baths=STRONG))
    assert cli.main(["exact", str(config), "--out", str(tmp_path / "exact")]) == 0
    printed = capsys.readouterr().err.strip()
    assert printed == f"jumps: warning: {caught[0].message}"
    with pytest.warns(jumps.WeakCouplingWarning, match="weak-coupling ratio"):
        jumps.exactsolve(*arguments, e_ops=[SZ])
    generator = jumps.davies_generator(0.5 * SZ, [SX], [strong])
    with pytest.warns(jumps.WeakCouplingWarning):
        jumps.unravel_generator(generator, times=np.linspace(0, 1, 3), trajectories=20)
    weak = jumps.ohmic(WEAK["eta"], 5.0, temperature=WEAK["temperature"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jumps.exactsolve(0.5 * SZ, [1.0, 0.0], [0.0, 1.0], [(SX, weak)], e_ops=[SZ])
