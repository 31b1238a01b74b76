"""The exchange fluctuation symmetry check (analysis.fluctuations).

Convention under test: ``Q_a`` is the heat given to bath ``a``; hot = the bath with the smaller
beta; ``theta_hot(s) = theta_hot(delta_beta - s)`` with ``delta_beta = beta_cold - beta_hot``.

Oracles: a Skellam heat ``Q = N_e - N_a`` (Poisson counts ``l_e``, ``l_a``) with
``l_a = l_e exp(delta_beta)`` obeys ``P(Q)/P(-Q) = exp(-delta_beta Q)``, so ``E[exp(s Q)] =
E[exp((delta_beta - s) Q)]`` at every t: no finite-time term, ``z`` is N(0, 1); the same heat
with the opposite sign (heat flowing into the hot bath) has its symmetry about
``-delta_beta/2`` and must fail. The exact SCGF of the Davies equation (``jumps.exact_statistics``)
for a qubit between a cold bath listed first and a hot bath listed second (so that "bath 0 is
hot" would be caught), and trajectories of the same qubit through the API and through a config
with the report (``analysis.analyse``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import jumps
from analysis import analyse, load_result, write_report
from analysis.fluctuations import (
    exact_difference,
    exchange_fluctuation_symmetry,
    finite_time_theta,
    hot_and_cold,
    pair_difference,
    partners,
)
from analysis.fluctuations import render as render_symmetry
from analysis.text import render
from jumps.generators import InitialState
from jumps.result import Result
from jumps.runtime.config import dump_config, load_config
from jumps.runtime.driver import run_exact, run_trajectories

BETA_COLD, BETA_HOT = 2.0, 0.5          # bath 0 cold, bath 1 hot
DELTA_BETA = BETA_COLD - BETA_HOT       # 1.5
GRID = DELTA_BETA / 2 + np.arange(-8, 9) / 8   # -0.25 .. 1.75, symmetric about 0.75
T_FINAL = 40.0


def skellam_theta(s, emission: float, absorption: float, t: float) -> np.ndarray:
    """``(1/t) ln E[exp(s (N_e - N_a))]`` of Poisson counts with means ``emission``, ``absorption``."""
    s = np.asarray(s, dtype=float)
    return (emission * np.expm1(s) + absorption * np.expm1(-s)) / t


def synthetic_result(rng, n: int = 20000, sign: float = 1.0, betas=(BETA_COLD, BETA_HOT),
                     t: float = 10.0, emission: float = 0.1) -> Result:
    """Heat given to the hot bath (bath 1) ``sign (N_e - N_a)`` with ``l_a = l_e exp(delta_beta)``;
    the cold bath gets the opposite (energy conservation). ``l_e = 0.1``: light enough tails
    that the pairs near delta_beta/2 are reliable on both sides, for either sign."""
    hot = sign * (rng.poisson(emission, n) - rng.poisson(emission * np.exp(DELTA_BETA), n))
    arrays = {"times": np.linspace(0.0, t, 11), "bath_beta": np.array(betas, dtype=float),
              "heat": np.stack([-hot, hot], axis=1).astype(float), "scgf_s": GRID}
    return Result(arrays, {"method": "trajectories", "trajectories": n,
                           "initial_state": "steady_state"})


def test_hot_bath_and_partners():
    """Hot is the smaller beta whatever the order; delta_beta > 0; the grid's partners mirror it
    about delta_beta/2; the cases where the check does not apply give a reason."""
    assert hot_and_cold([BETA_COLD, BETA_HOT])[:3] == (1, 0, DELTA_BETA)
    assert hot_and_cold([BETA_HOT, BETA_COLD])[:3] == (0, 1, DELTA_BETA)
    index = partners(GRID, DELTA_BETA)
    assert np.all(index >= 0) and np.allclose(GRID[index], DELTA_BETA - GRID)
    assert list(partners([0.0, 0.5], DELTA_BETA)) == [-1, -1]
    for betas, words in (([1.0], "two baths"), ([1.0, 1.0, 2.0], "two baths"),
                         ([1.0, np.nan], "rates"), ([1.0, np.inf], "zero"),
                         ([1.0, 1.0], "same temperature")):
        hot, _, delta, reason = hot_and_cold(betas)
        assert hot is None and delta is None and words in reason


def test_synthetic_symmetric_heat_passes_and_the_wrong_sign_fails():
    """Skellam heat with the exchange symmetry at every t: the exact curve is symmetric to
    rounding, the trajectory pairs agree (|z| < 4). Over 300 repetitions of 4000 the z of the
    pair nearest delta_beta/2 has mean 0 +- 0.35 and spread 1 +- 0.15 (measured: mean 0.2,
    spread 0.95-1.05: the error comes from the same weights as the difference, the skew that
    test_statistics measures for the third cumulant). The same heat with the opposite sign
    (into the hot bath: what a flipped heat convention would produce) fails at every reliable
    pair (|z| > 10), and so do the hot bath's exact curve mirrored about -delta_beta/2 and the
    cold bath's about +delta_beta/2."""
    rng = np.random.default_rng(5)
    t, le = 10.0, 0.1
    theta_hot = skellam_theta(GRID, le, le * np.exp(DELTA_BETA), t)
    exact = {"scgf_s": GRID, "scgf": np.stack([skellam_theta(-GRID, le, le * np.exp(DELTA_BETA),
                                                             t), theta_hot])}
    entry, curves = exchange_fluctuation_symmetry(synthetic_result(rng), exact)
    assert entry["reason"] is None and (entry["hot_bath"], entry["cold_bath"]) == (1, 0)
    assert entry["delta_beta"] == DELTA_BETA
    assert entry["exact_max_abs_difference"] < 1e-12 and entry["exact_points"] == GRID.size
    assert len(entry["pairs"]) >= 2 and entry["max_abs_z"] < 4, entry["pairs"]
    assert all(p["s"] + p["s_partner"] == pytest.approx(DELTA_BETA) for p in entry["pairs"])
    assert entry["pairs"][0]["difference_exact_finite_t"] is None  # no generator given
    assert np.allclose(curves["theta_exact"], theta_hot)
    # The wrong mirrors: the hot bath about -delta_beta/2, the cold bath about +delta_beta/2.
    wrong_grid = -DELTA_BETA / 2 + np.arange(-8, 9) / 8
    assert exact_difference(wrong_grid, skellam_theta(wrong_grid, le, le * np.exp(DELTA_BETA), t),
                            -DELTA_BETA)[0] > 0.01
    assert exact_difference(GRID, exact["scgf"][0], DELTA_BETA)[0] > 0.01
    # Calibration of the pair errors (one z per repetition: the pairs of one sample correlate).
    z = []
    for _ in range(300):
        pairs = exchange_fluctuation_symmetry(synthetic_result(rng, n=4000), None)[0]["pairs"]
        z += [pairs[-1]["z"]] if pairs else []
    assert len(z) > 250
    assert abs(np.mean(z)) < 0.35 and abs(np.std(z) - 1) < 0.15, (np.mean(z), np.std(z))
    # Flipped heat: every reliable pair is far off.
    flipped, _ = exchange_fluctuation_symmetry(synthetic_result(rng, sign=-1.0), None)
    assert flipped["pairs"] and all(abs(p["z"]) > 10 for p in flipped["pairs"])


def test_pair_difference_is_the_difference_of_the_estimates():
    """``pair_difference`` equals ``(1/t) ln mean exp(sQ) - (1/t) ln mean exp(s'Q)`` computed
    naively (no overflow at these values), and its error is below the quadrature sum of the
    single-point errors for positively correlated weights (s, s' > 0)."""
    rng = np.random.default_rng(8)
    q = rng.poisson(2.0, 5000) - rng.poisson(3.0, 5000).astype(float)
    t = 10.0
    value, error = pair_difference(q, 0.5, 1.0, t)
    naive = (np.log(np.mean(np.exp(0.5 * q))) - np.log(np.mean(np.exp(1.0 * q)))) / t
    assert value == pytest.approx(naive, rel=1e-12)
    single = [np.std(np.exp(s * q), ddof=1) / np.mean(np.exp(s * q)) / np.sqrt(q.size) / t
              for s in (0.5, 1.0)]
    assert 0 < error < np.hypot(*single)


def test_not_applicable_gives_a_reason():
    """Equal temperatures, or no counting-field grid: a reason, no pairs; rendered as one line."""
    rng = np.random.default_rng(9)
    same = synthetic_result(rng, betas=(1.0, 1.0))
    entry, curves = exchange_fluctuation_symmetry(same, None)
    assert entry["hot_bath"] is None and "same temperature" in entry["reason"]
    assert entry["pairs"] == [] and curves == {}
    assert "not checked" in render_symmetry(entry)[0]
    bare = synthetic_result(rng)
    del bare.arrays["scgf_s"]
    entry, _ = exchange_fluctuation_symmetry(bare, None)
    assert entry["hot_bath"] == 1 and "grid" in entry["reason"] and entry["pairs"] == []


# -- the Davies equation -------------------------------------------------------------------------

SZ = np.diag([1.0, -1.0])
SX = np.array([[0.0, 1.0], [1.0, 0.0]])


@pytest.fixture(scope="module")
def qubit():
    """A qubit H = sz/2 coupled through sx to a cold bath (bath 0) and a hot one (bath 1)."""
    return jumps.davies_generator(0.5 * SZ, couplings=[SX, SX],
                                  baths=[jumps.ohmic(eta=0.02, cutoff=5.0, beta=BETA_COLD),
                                         jumps.ohmic(eta=0.02, cutoff=5.0, beta=BETA_HOT)])


def test_exact_scgf_has_the_symmetry_with_this_sign(qubit):
    """The exact SCGF of the hot bath (bath 1) is symmetric about +delta_beta/2 to 1e-10, zero at
    s = 0 and s = delta_beta, negative between (heat flows out of the hot bath: its current is
    negative); the cold bath's is symmetric about -delta_beta/2 instead, and neither is about
    the other's centre."""
    times = np.linspace(0.0, T_FINAL, 41)
    exact = jumps.exact_statistics(qubit, times, steady_state=True, s=GRID)
    assert exact["heat_current"][1] < 0 < exact["heat_current"][0]
    assert exact_difference(GRID, exact["scgf"][1], DELTA_BETA)[0] < 1e-10
    assert exact_difference(GRID, exact["scgf"][0], DELTA_BETA)[0] > 1e-3
    theta = exact["scgf"][1]
    assert abs(theta[GRID == 0.0][0]) < 1e-12 and abs(theta[GRID == DELTA_BETA][0]) < 1e-10
    assert np.all(theta[(GRID > 0) & (GRID < DELTA_BETA)] < 0)
    cold_grid = -DELTA_BETA / 2 + np.arange(-4, 5) / 8
    other = jumps.exact_statistics(qubit, times, steady_state=True, s=cold_grid)
    assert exact_difference(cold_grid, other["scgf"][0], -DELTA_BETA)[0] < 1e-10
    assert exact_difference(cold_grid, other["scgf"][1], -DELTA_BETA)[0] > 1e-3


def test_finite_time_values_tend_to_the_scgf(qubit):
    """``(1/t) ln E[exp(s Q_hot(t))]`` from the steady state: 0 at s = 0, and within 2/t of the
    exact ``t -> inf`` SCGF at t = 40 and 10x closer at t = 400 (the boundary term is O(1/t))."""
    s = np.array([0.0, 0.5, 1.0, 1.5])
    limit = jumps.exact_statistics(qubit, [0.0, 1.0], steady_state=True, s=s)["scgf"][1]
    state = InitialState("steady_state")
    near, far = (finite_time_theta(qubit, state, 1, s, t) - limit for t in (40.0, 400.0))
    assert abs(near[0]) < 1e-12 and abs(far[0]) < 1e-12
    assert np.all(np.abs(near) < 2 / 40) and np.max(np.abs(far)) < 0.15 * np.max(np.abs(near))


def test_trajectories_through_the_api(qubit):
    """20000 steady-state trajectories to t = 40: hot bath 1 found; the exact SCGF symmetric to
    1e-10; at least two pairs reliable on both sides, each agreeing with the exact finite-t
    difference (|z_finite_t| < 4), which is negative for s < s' (theta(s) < theta(s') at
    finite t) and more than 4 errors from 0 at the widest pair (the O(1/t) boundary term)."""
    times = np.linspace(0.0, T_FINAL, 41)
    result = jumps.unravel_generator(qubit, times=times, trajectories=20000, seed=3,
                                     steady_state=True, s=GRID)
    exact = jumps.exact_statistics(qubit, times, steady_state=True, s=GRID)
    entry, curves = exchange_fluctuation_symmetry(result, exact, qubit,
                                                  InitialState("steady_state"))
    assert (entry["hot_bath"], entry["cold_bath"], entry["delta_beta"]) == (1, 0, DELTA_BETA)
    assert entry["exact_max_abs_difference"] < 1e-10
    pairs = entry["pairs"]
    assert len(pairs) >= 2, entry
    for p in pairs:
        assert p["s"] < DELTA_BETA / 2 < p["s_partner"]
        assert abs(p["z_finite_t"]) < 4, p
        assert p["difference_exact_finite_t"] < 0
    assert abs(pairs[0]["difference_exact_finite_t"]) > 4 * pairs[0]["stderr"]
    assert np.all(np.isfinite(curves["theta_finite_t"]))


def test_report_text_and_plot_from_a_config(tmp_path):
    """A config run (cold bath first) analysed with its ``jumps exact`` twin: report.json's
    statistics block carries ``exchange_fluctuation_symmetry`` with the exact check (< 1e-10),
    pairs with finite-t values from the rebuilt generator (|z_finite_t| < 4), the text report
    its section, and ``--plots`` its PNG."""
    raw = {"system": {"model": "two_level", "params": {"w0": 1.0}},
           "baths": [{"coupling": "sx", "spectral_density": "ohmic", "eta": 0.02, "cutoff": 5.0,
                      "beta": beta} for beta in (BETA_COLD, BETA_HOT)],
           "initial_state": {"kind": "steady_state"}, "counting": {"s": GRID.tolist()},
           "run": {"t_final": T_FINAL, "n_times": 41, "trajectories": 20000, "seed": 4}}
    path = tmp_path / "qubit.toml"
    path.write_text(dump_config(raw))
    config = load_config(path)
    assert run_trajectories(config, tmp_path / "run", quiet=True) == 0
    run_exact(config, tmp_path / "exact")
    analysis = analyse(load_result(tmp_path / "run"), exact_dir=tmp_path / "exact")
    write_report(analysis, tmp_path / "run")
    entry = json.loads((tmp_path / "run" / "report.json").read_text())["statistics"][
        "exchange_fluctuation_symmetry"]
    assert entry["hot_bath"] == 1 and entry["delta_beta"] == DELTA_BETA
    assert entry["exact_max_abs_difference"] < 1e-10 and entry["reason"] is None
    assert entry["pairs"] and all(abs(p["z_finite_t"]) < 4 for p in entry["pairs"])
    assert set(entry["pairs"][0]) >= {"s", "s_partner", "theta", "theta_partner", "difference",
                                      "stderr", "z"}
    assert "exchange fluctuation symmetry" in render(analysis.report)
    pytest.importorskip("matplotlib")
    from analysis.plots import write_plots

    written = write_plots(analysis, tmp_path / "run")
    assert tmp_path / "run" / "exchange_symmetry.png" in written
