"""Trajectory statistics (analysis.statistics) on synthetic records with known answers, then the
analysis CLI on a synthetic result directory.

Oracles: closed-form cumulants (Poisson: every cumulant equals the mean; Skellam ``N+ - N-``:
odd cumulants ``l+ - l-``, even ones ``l+ + l-``); the Poisson SCGF ``theta(s) = l (e^s - 1)``,
exact at every t; ``<exp(-sigma)> = 1`` for Gaussian sigma of mean v/2 and variance v, which
also obeys ``P(sigma)/P(-sigma) = exp(sigma)``, as does ``ln(l+/l-) (N+ - N-)``; exponential and
gamma waiting times. Error bars are honest when the z-scores of many independent synthetic
repetitions have mean 0 and spread 1: with R repetitions the spread of a sample standard
deviation is 1/sqrt(2R) (0.035 at R = 400), so the tolerances below (stated per test) are
several of those plus the known small-sample skew of the estimator. Seeds are fixed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from analysis.cli import main
from analysis.statistics import (
    MIN_EFFECTIVE_SAMPLES,
    covariance,
    cumulants,
    detailed_fluctuation,
    first_jump_test,
    first_law,
    integral_fluctuation,
    interval_test,
    jump_intervals,
    scgf_estimate,
    variance_to_mean,
)
from jumps.result import Result


def spread(z) -> tuple[float, float]:
    z = np.asarray(z, dtype=float)
    return float(z.mean()), float(z.std())


# -- cumulants ---------------------------------------------------------------------------------

def test_cumulant_errors_are_honest_on_poisson_counts():
    """Poisson(3), n = 2000, 400 repetitions: the mean, the variance and the third cumulant all
    equal 3. The z-scores of the mean and the variance have mean 0 +- 0.2 and spread 1 +- 0.15
    (4 standard errors of a spread at R = 400); the third cumulant's jackknife z is skewed by
    the correlation of k3 with its own error (measured: mean -0.22, spread 1.09), so its
    bounds are 0 +- 0.35 and 1 +- 0.2."""
    rng = np.random.default_rng(11)
    z = []
    for _ in range(400):
        c = cumulants(rng.poisson(3.0, 2000))
        z.append([(c[k] - 3.0) / c[f"{k}_stderr"] for k in ("mean", "variance", "third_cumulant")])
    z = np.array(z)
    for column, (mean_tol, spread_tol) in enumerate(((0.2, 0.15), (0.2, 0.15), (0.35, 0.2))):
        mean, sd = spread(z[:, column])
        assert abs(mean) < mean_tol and abs(sd - 1) < spread_tol, (column, mean, sd)


def test_covariance_and_fano_errors_are_honest():
    """``(X + Z, Y + Z)`` with independent Poisson X, exponential Y and Gaussian Z (sd 1.5): the
    covariance is Var Z = 2.25; a Poisson count has Var/mean = 1. 400 repetitions of 2000:
    jackknife z-scores with mean 0 +- 0.2 and spread 1 +- 0.15."""
    rng = np.random.default_rng(12)
    z_cov, z_fano = [], []
    for _ in range(400):
        common = 1.5 * rng.normal(size=2000)
        value, error = covariance(rng.poisson(2.0, 2000) + common,
                                  rng.exponential(size=2000) + common)
        z_cov.append((value - 2.25) / error)
        value, error = variance_to_mean(rng.poisson(4.0, 2000))
        z_fano.append((value - 1.0) / error)
    for z in (z_cov, z_fano):
        mean, sd = spread(z)
        assert abs(mean) < 0.2 and abs(sd - 1) < 0.15, (mean, sd)


# -- SCGF ----------------------------------------------------------------------------------------

def test_scgf_errors_are_honest_where_reliable():
    """Poisson heat (rate 0.3, t = 10): ``(1/t) ln E[exp(sQ)] = 0.3 (e^s - 1)`` exactly at this
    t. Over 300 repetitions of 2000 and s in [-1, 1.5], the points marked reliable have
    z-scores of mean 0 +- 0.3 and spread 1 +- 0.15 (the estimator of a logarithm of a
    right-skewed mean is skewed: measured mean -0.1); the large-s points are marked
    unreliable in most repetitions (there the estimate is biased low by several errors)."""
    rng = np.random.default_rng(13)
    s, t = np.linspace(-1.0, 1.5, 11), 10.0
    z, unreliable_at_top = [], 0
    for _ in range(300):
        est = scgf_estimate(rng.poisson(3.0, 2000).astype(float), s, t)
        ok = est["reliable"] & (s != 0)
        z.extend((est["theta"][ok] - 0.3 * np.expm1(s[ok])) / est["stderr"][ok])
        unreliable_at_top += not ok[-1]
    mean, sd = spread(z)
    assert abs(mean) < 0.3 and abs(sd - 1) < 0.15, (mean, sd)
    assert len(z) > 300 * 5
    assert unreliable_at_top > 0.9 * 300


def test_scgf_is_unreliable_when_one_trajectory_dominates():
    """999 trajectories with Q = 0 and one with Q = 50: at s = 1 the one weight e^50 is the
    whole mean (n_eff = 1): the point is unreliable; at s = -1 the weights are all ~1 and the
    point is reliable."""
    heat = np.zeros(1000)
    heat[0] = 50.0
    est = scgf_estimate(heat, np.array([-1.0, 1.0]), 5.0)
    assert list(est["reliable"]) == [True, False]
    assert est["n_eff"][1] == pytest.approx(1.0) and est["max_share"][1] == pytest.approx(1.0)
    assert est["n_eff"][1] < MIN_EFFECTIVE_SAMPLES


# -- fluctuation theorems ------------------------------------------------------------------------

def test_integral_fluctuation_theorem_on_gaussian_sigma():
    """sigma ~ N(v/2, v), v = 0.25: ``<exp(-sigma)> = 1``. Over 400 repetitions of 2000 (all
    reliable: the squared weights have n_eff ~ 750) the z against 1 has mean 0 +- 0.2 and
    spread 1 +- 0.15; NaN values are left out and counted.
    With v = 8 the weights exp(-sigma) are log-normal with variance 8: a few trajectories
    carry the mean, which is flagged unreliable (no z)."""
    rng = np.random.default_rng(14)
    z = []
    for _ in range(400):
        out = integral_fluctuation(rng.normal(0.125, 0.5, 2000))
        assert out["reliable"]
        z.append(out["z"])
    mean, sd = spread(z)
    assert abs(mean) < 0.2 and abs(sd - 1) < 0.15, (mean, sd)
    sigma = rng.normal(0.125, 0.5, 2000)
    sigma[:7] = np.nan
    out = integral_fluctuation(sigma)
    assert out["n"] == 1993 and out["n_undefined"] == 7 and abs(out["mean"] - 1) < 4 * out["stderr"]
    heavy = integral_fluctuation(rng.normal(4.0, math.sqrt(8.0), 2000))
    assert not heavy["reliable"] and heavy["z"] is None and "n_eff" in heavy["reason"]


def test_detailed_fluctuation_theorem_is_calibrated_and_has_power():
    """Two laws with ``P(sigma)/P(-sigma) = exp(sigma)``: Gaussian N(v/2, v) with v = 2 (binned)
    and ``ln 2 (N+ - N-)`` with Poisson N+ (mean 2) and N- (mean 1) (a lattice: one bin per
    value). 200 repetitions of 2000 each: the fraction with p < 0.05 is 5% within 4 binomial
    standard errors (0.062). A Gaussian of mean v/4 (``P(sigma)/P(-sigma) = exp(sigma/2)``)
    fails with p < 1e-6."""
    rng = np.random.default_rng(15)
    draws = {"gaussian": lambda: rng.normal(1.0, math.sqrt(2.0), 2000),
             "lattice": lambda: math.log(2.0) * (rng.poisson(2.0, 2000) - rng.poisson(1.0, 2000))}
    for name, draw in draws.items():
        results = [detailed_fluctuation(draw()) for _ in range(200)]
        assert ("one bin per value" in results[0]["binning"]) == (name == "lattice")
        assert min(r["n_tested"] for r in results) >= 3
        rejected = np.mean([r["p_value"] < 0.05 for r in results])
        assert abs(rejected - 0.05) < 4 * math.sqrt(0.05 * 0.95 / 200), (name, rejected)
    wrong = detailed_fluctuation(rng.normal(0.5, math.sqrt(2.0), 2000))
    assert wrong["p_value"] < 1e-6
    tested = [b for b in wrong["bins"] if b["tested"]]
    assert all(b["expected_positive"] >= 5 and b["expected_negative"] >= 5 for b in tested)


# -- waiting times -------------------------------------------------------------------------------

def test_first_jump_ks_is_uniform_on_correct_data_and_rejects_wrong_data():
    """Exponential first jumps (rate 0.3) censored at t_final = 10, exact survival on a coarse
    grid of 11 times (interpolated, flagged coarse): over 200 repetitions of 1000 the KS
    p-values are uniform (a KS test of them gives p > 1e-3) and the censored count's z has
    spread 1 +- 0.2; a 1.3x faster rate gives p < 1e-3."""
    rng = np.random.default_rng(16)
    times = np.linspace(0.0, 10.0, 11)
    survival = np.exp(-0.3 * times)
    p_values, z = [], []
    for _ in range(200):
        first = rng.exponential(1 / 0.3, 1000)
        first[first > 10] = np.inf
        test, density = first_jump_test(first, times, survival, 0.3 * survival)
        p_values.append(test["p_value"])
        z.append(test["censored_z"])
    assert test["coarse_grid"] and density.shape == times.shape
    assert stats.kstest(p_values, "uniform").pvalue > 1e-3
    assert abs(np.std(z) - 1) < 0.2
    first = rng.exponential(1 / 0.39, 1000)
    first[first > 10] = np.inf
    assert first_jump_test(first, times, survival, 0.3 * survival)[0]["p_value"] < 1e-3


def stationary_gamma_jumps(rng, trajectories: int, t_final: float, rate: float):
    """Jump lists of a stationary renewal process with Gamma(2, 1/rate) intervals (a burn-in
    of 30 mean intervals before t = 0), plus w = 0 dephasing jumps that must be ignored."""
    who, when = [], []
    for i in range(trajectories):
        t = -30.0 * 2 / rate
        while t < t_final:
            t += rng.gamma(2.0, 1.0 / rate)
            if 0.0 <= t < t_final:
                who.append(i)
                when.append(t)
    who, when = np.array(who), np.array(when)
    dephasing = rng.uniform(0, t_final, who.size // 2)
    return (np.concatenate([who, rng.integers(0, trajectories, dephasing.size)]),
            np.concatenate([when, dephasing]),
            np.concatenate([np.ones(who.size), np.zeros(dephasing.size)]))


def test_between_jump_intervals_against_the_window_corrected_palm_distribution():
    """Gamma(2) intervals (not exponential, so the window correction matters): the p-values of
    100 repetitions are uniform (KS p > 1e-3); the same intervals against the uncorrected
    Gamma CDF, and against a wrong Palm law, are rejected (p < 1e-6)."""
    rng = np.random.default_rng(17)
    t_final, rate = 10.0, 1.0
    grid = np.linspace(0.0, t_final, 21)
    survival = (1 + rate * grid) * np.exp(-rate * grid)
    density = rate**2 * grid * np.exp(-rate * grid)
    p_values = []
    for _ in range(100):
        intervals = jump_intervals(*stationary_gamma_jumps(rng, 100, t_final, rate), tol=1e-9)
        p_values.append(interval_test(intervals, grid, survival, density)[0]["p_value"])
    assert stats.kstest(p_values, "uniform").pvalue > 1e-3
    intervals = jump_intervals(*stationary_gamma_jumps(rng, 400, t_final, rate), tol=1e-9)
    assert stats.kstest(intervals, stats.gamma(2.0, scale=1 / rate).cdf).pvalue < 1e-6
    exponential = np.exp(-0.5 * grid)
    assert interval_test(intervals, grid, exponential, 0.5 * exponential)[0]["p_value"] < 1e-6


def test_first_law_per_trajectory():
    """``sum_a Q_a = E(n0) - E_final`` for trajectories in one level at both ends; one broken
    trajectory is counted, one spanning several levels is skipped."""
    arrays = {"energies": np.array([0.0, 1.0]), "level_energies": np.array([0.0, 1.0]),
              "heat": np.array([[1.0], [0.0], [1.0], [0.3]]), "n_jumps": np.array([1, 0, 3, 1]),
              "initial_level": np.array([1, 0, 1, 1]), "final_level": np.array([0, 0, 1, -1]),
              "final_energy": np.array([0.0, 0.0, 1.0, 0.5])}
    law = first_law(Result(arrays=arrays, meta={"method": "trajectories"}))
    assert law["checked"] == 3 and law["violations"] == 1
    assert law["max_abs_violation"] == pytest.approx(1.0)


# -- the CLI on a synthetic result ---------------------------------------------------------------

# Two baths, one Bohr frequency w = 1, independent Poisson emissions/absorptions (KMS ratio
# exp(-beta) per bath) and dephasings on bath 0: heat Skellam per bath, sigma = sum beta_a Q_a.
# Short enough (t * rates ~ 1) that <exp(-sigma)> is not carried by a few trajectories.
EMISSION, BETA, DEPHASING, T_FINAL, N_TIMES, TRAJECTORIES = (0.2, 0.1), (0.5, 0.25), 0.1, 5.0, 41, 2000
S_GRID = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 6.0])


def synthetic_exact(times: np.ndarray) -> dict:
    """The closed forms of the synthetic model on the output grid."""
    e = np.array(EMISSION)
    a = e * np.exp(-np.array(BETA))
    total = float((e + a).sum())
    t = times[:, None]
    covariance = np.zeros((times.size, 2, 2))
    covariance[:, [0, 1], [0, 1]] = (e + a) * t
    survival = np.exp(-total * times)
    # Independent Poisson counts: ln E[exp(s Q(t))] = t theta(s) at every t.
    scgf = e[:, None] * np.expm1(S_GRID) + a[:, None] * np.expm1(-S_GRID)
    return {"heat_mean": (e - a) * t, "heat_covariance": covariance,
            "heat_third_cumulant": (e - a) * t, "heat_current": e - a,
            "entropy_production_rate": np.array(float(np.dot(BETA, e - a))),
            "entropy_production_mean": float(np.dot(BETA, e - a)) * times,
            "scgf_s": S_GRID, "scgf": scgf, "scgf_finite_t": scgf,
            "first_jump_survival": survival, "first_jump_density": total * survival,
            "waiting_time_survival": survival, "waiting_time_density": total * survival}


def synthetic_records(rng) -> dict:
    """Every jump of every trajectory (uniform times), and the records they imply."""
    e = np.array(EMISSION)
    kinds = [(b, w, rate) for b in range(2)
             for w, rate in ((1.0, e[b]), (-1.0, e[b] * math.exp(-BETA[b])))]
    kinds.append((0, 0.0, DEPHASING))
    who, when, bath, frequency = [], [], [], []
    for b, w, rate in kinds:
        count = rng.poisson(rate * T_FINAL, TRAJECTORIES)
        who.append(np.repeat(np.arange(TRAJECTORIES), count))
        when.append(rng.uniform(0, T_FINAL, count.sum()))
        bath.append(np.full(count.sum(), b))
        frequency.append(np.full(count.sum(), w))
    who, when, bath, frequency = map(np.concatenate, (who, when, bath, frequency))
    order = np.lexsort((when, who))
    who, when, bath, frequency = who[order], when[order], bath[order], frequency[order]

    def per_bath(mask):
        out = np.zeros((TRAJECTORIES, 2), dtype=np.int64)
        np.add.at(out, (who[mask], bath[mask]), 1)
        return out

    emissions, absorptions = per_bath(frequency > 0), per_bath(frequency < 0)
    heat = (emissions - absorptions).astype(float)
    first = np.full(TRAJECTORIES, np.inf)
    np.minimum.at(first, who[frequency != 0], when[frequency != 0])
    listed = who < 300
    return {"heat": heat, "n_jumps": (emissions + absorptions).sum(axis=1),
            "emissions": emissions, "absorptions": absorptions,
            "dephasings": per_bath(frequency == 0), "first_jump_time": first,
            "entropy_production": heat @ np.array(BETA),
            "initial_level": np.full(TRAJECTORIES, -1), "final_level": np.full(TRAJECTORIES, -1),
            "final_energy": np.full(TRAJECTORIES, 0.5), "scgf_s": S_GRID,
            "jump_trajectory": who[listed], "jump_time": when[listed],
            "jump_bath": bath[listed], "jump_frequency": frequency[listed]}


def write_synthetic(directory: Path, arrays: dict, method: str) -> Path:
    times = np.linspace(0.0, T_FINAL, N_TIMES)
    base = {"times": times, "energies": np.array([0.0, 1.0]),
            "populations": np.tile([0.6, 0.4], (N_TIMES, 1)),
            "channel_bath": np.array([0, 0, 0, 1, 1]),
            "channel_frequency": np.array([1.0, -1.0, 0.0, 1.0, -1.0]),
            "channel_rate": np.array([EMISSION[0], EMISSION[0] * math.exp(-BETA[0]), DEPHASING,
                                      EMISSION[1], EMISSION[1] * math.exp(-BETA[1])]),
            "bath_beta": np.array(BETA)}
    if method == "trajectories":
        base.update(populations_stderr=np.full((N_TIMES, 2), 0.01),
                    jump_counts=np.zeros(5, dtype=np.int64), transition_from=np.array([1, 0]),
                    transition_to=np.array([0, 1]), transition_count=np.array([100, 80]),
                    occupation_time=np.array([2.0e4, 1.6e4]))
    directory.mkdir(parents=True)
    np.savez(directory / "results.npz", **base, **arrays)
    meta = {"method": method, "model": "synthetic", "dimension": 2, "initial_state":
            "steady_state", "bath_beta": list(BETA), "bath_thermal": [True, True],
            "bath_couplings": ["A", "B"], "t_final": T_FINAL, "n_times": N_TIMES,
            "seed": 1, "trajectories": TRAJECTORIES}
    (directory / "run.json").write_text(json.dumps(meta))
    return directory


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("statistics")
    records = synthetic_records(np.random.default_rng(21))
    exact = synthetic_exact(np.linspace(0.0, T_FINAL, N_TIMES))
    old = {k: records[k] for k in ("heat", "n_jumps")}
    return {"result": write_synthetic(root / "result", records, "trajectories"),
            "exact": write_synthetic(root / "exact", exact, "exact"),
            "old": write_synthetic(root / "old", old, "trajectories")}


def test_cli_reports_the_statistics_block(synthetic, tmp_path, capsys):
    """The analysis CLI on the synthetic result with its exact twin: exit 0, the text section,
    and a statistics block whose estimates agree with the closed forms within 4 standard
    errors (heat cumulants, currents, <sigma>, IFT), the SCGF point at s = 6 marked unreliable
    (null with a reason), and waiting-time p-values above 1e-4 (a correct model)."""
    status = main([str(synthetic["result"]), "--exact", str(synthetic["exact"]), "--out",
                   str(tmp_path), "--statistics"])
    out = capsys.readouterr().out
    assert status == 0
    assert "Trajectory statistics" in out and "integral FT" in out
    block = json.loads((tmp_path / "report.json").read_text())["statistics"]
    for bath in block["heat"]:
        for key in ("mean", "variance", "third_cumulant"):
            assert bath[f"{key}_exact"] is not None and abs(bath[f"z_{key}"]) < 4, (bath, key)
    assert all(abs(c["z"]) < 4 for c in block["heat_current"])
    assert all(abs(c["z"]) < 4 for c in block["heat_covariance"])
    assert abs(block["entropy_production"]["z"]) < 4
    assert abs(block["integral_fluctuation_theorem"]["z"]) < 4
    scgf = block["scgf"]
    assert scgf["s"] == list(S_GRID) and len(scgf["theta"]) == 2
    for a in range(2):
        assert scgf["theta"][a][-1] is None and "unreliable" in scgf["reasons"][a][-1]
        assert scgf["theta"][a][2] == 0.0 and scgf["theta_exact"][a][2] == 0.0
        assert all(abs(z) < 4 for z in scgf["z"][a] if z is not None)
    assert block["detailed_fluctuation_theorem"]["p_value"] > 1e-4
    assert block["waiting_time_ks_p_value"] > 1e-4
    assert block["waiting_time_between_jumps_ks_p_value"] > 1e-4
    fano = block["fano_factor"][0]
    assert abs(fano["counts"] - 1) < 4 * fano["counts_stderr"]  # a Poisson count


def test_cli_plots_the_statistics(synthetic, tmp_path, capsys):
    """``--plots`` writes the four statistics PNGs (skipped without matplotlib)."""
    pytest.importorskip("matplotlib")
    assert main([str(synthetic["result"]), "--exact", str(synthetic["exact"]), "--plots",
                 "--out", str(tmp_path)]) == 0
    for name in ("heat_distribution", "scgf", "fluctuation_theorem", "waiting_times"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_statistics_flag_refuses_a_result_without_records(synthetic, tmp_path, capsys):
    """Without the records the block is null; ``--statistics`` exits 2 with one line on stderr
    naming the flag."""
    assert main([str(synthetic["old"]), "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "report.json").read_text())["statistics"] is None
    capsys.readouterr()
    assert main([str(synthetic["old"]), "--statistics", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "--statistics" in lines[0] and "records" in lines[0]
    assert captured.out == ""
