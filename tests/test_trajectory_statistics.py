"""The engine's trajectory statistics against their exact references from the master equation.

Systems (hbar = k_B = 1; docs/design.md, "Conventions"), each with a hot bath 0 and a cold
bath 1, both Ohmic (``eta = 0.05``, cutoff 5), and both generators (``jumps.davies_generator``
and ``jumps.rates_generator`` of the same system; both spectra are non-degenerate):

- ``qubit``: ``H = (w0/2) sz``, ``w0 = 1``, coupled through ``sx`` to baths at ``beta_hot = 0.5``
  and ``beta_cold = 2``;
- ``tfim``: ``tfim_chain(n = 2, h = 1.05, hz = 0.5)`` (4 levels spread over 5.16) coupled
  through ``sx:0`` to the hot bath and ``sx:1`` to the cold one, at ``beta_hot = 0.5`` and
  ``beta_cold = 1``. Not ``beta_cold = 2``: then ``<exp(-sigma)>`` is dominated by the rare
  absorptions of the 5.16 gap from the cold bath (weight ``e^{10.3}``), and with 40000
  trajectories the squared weights have fewer than 50 effective samples even at ``t = 2``
  (measured 3 to 48), so analysis/statistics.py rightly calls the IFT estimate unreliable
  (its z was -4.8 and -6.4 at n_eff^2 = 48 and 42: the sample misses the tail).

Conventions: a jump through the Bohr frequency ``w = E_m - E_n`` hands ``w`` to its bath
(``w > 0`` emission); ``Q_a`` is the sum of ``w`` over the jumps into bath ``a``; only ``w != 0``
jumps are counted in ``n_jumps`` and the waiting times. The SCGF is ``theta_a(s) = lim (1/t) ln
E[exp(s Q_a)]``, ``Q_a`` the heat *given to* bath ``a``, so ``theta_a'(0)`` is the current into
bath ``a`` (negative for the hot bath) and the exchange fluctuation theorem reads
``theta_hot(s) = theta_hot(beta_cold - beta_hot - s)``, ``theta_cold(s) = theta_cold(beta_hot -
beta_cold - s)``. Entropy production ``sigma = ln p0(n0) - ln p_t(n_t) + sum_a beta_a Q_a``.

Oracles: ``jumps.exact_statistics`` (heat cumulants by the augmented linear ODE, currents,
entropy production, first-jump and Palm waiting-time laws), the finite-time moment generating
function ``Tr exp(L_a(s) t) p0`` (``jumps.physics.counting``, ``expm_multiply``), the exact mean
jump counts ``int_0^t Tr J_a^(+-) p(t') dt'``, the fluctuation theorems (exact at finite t for
these starts), and the initial/exact populations. Tolerances: 4 standard errors (Gaussian
``|z| > 4``: 6e-5 per check) and p-values above 1e-3; every standard error is that of the
estimator in analysis/statistics.py. Seeds are fixed, so the outcome is deterministic. Each test
also checks its own resolution (enough samples, non-trivial z-scores, and a deliberately wrong
reference or record that the same check rejects).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
from scipy.sparse import bmat, csr_matrix, identity
from scipy.sparse.linalg import expm_multiply

import jumps
from analysis.statistics import (
    MIN_EFFECTIVE_SAMPLES,
    covariance,
    cumulants,
    detailed_fluctuation,
    first_jump_test,
    integral_fluctuation,
    interval_test,
    jump_intervals,
    scgf_estimate,
    z_score,
)
from jumps import generators
from jumps.physics import counting
from jumps.physics.models import tfim_chain

Z_MAX = 4.0
P_MIN = 1e-3
HOT, COLD = 0, 1
ETA, CUTOFF = 0.05, 5.0
KINDS = ("davies", "rates")
SYSTEMS = ("qubit", "tfim")
CASES = [(name, kind) for name in SYSTEMS for kind in KINDS]
IDS = [f"{name}-{kind}" for name, kind in CASES]

# Steady-state runs: t_final, output times (a fine grid: the KS tests interpolate the exact
# survival between output times), trajectories, trajectories whose jumps are listed.
STEADY_T, STEADY_TIMES, STEADY_N, LISTED = 20.0, 201, 40000, 4000
# Full-support diagonal starts, far from the steady state (the qubit's is inverted). t_final is
# short enough for <exp(-sigma)> to have >= 50 effective samples of its weights and of their
# squares with POPULATION_N trajectories (measured at these seeds: qubit t = 5: ~6000 and
# ~210; tfim t = 4: ~19500 and 780-920).
POPULATIONS = {"qubit": (0.2, 0.8), "tfim": (0.4, 0.3, 0.2, 0.1)}
POPULATION_T = {"qubit": 5.0, "tfim": 4.0}
POPULATION_TIMES, POPULATION_N = 201, 40000
S_GRID = np.linspace(-1.0, 1.0, 21)


@cache
def system(name: str):
    """``(H, couplings, betas)``: hot bath first."""
    if name == "qubit":
        sx = np.array([[0.0, 1.0], [1.0, 0.0]])
        return 0.5 * np.diag([1.0, -1.0]), (sx, sx), (0.5, 2.0)
    model = tfim_chain({"n": 2, "h": 1.05, "hz": 0.5})
    return model.hamiltonian, (model.operator("sx:0"), model.operator("sx:1")), (0.5, 1.0)


@cache
def generator(name: str, kind: str):
    H, couplings, betas = system(name)
    build = jumps.davies_generator if kind == "davies" else jumps.rates_generator
    return build(H, list(couplings), [jumps.ohmic(ETA, CUTOFF, beta) for beta in betas])


def model_of(g) -> counting.CountingModel:
    """The generator's own counting model for a diagonal start (classical: non-degenerate)."""
    return generators.of(g).counting_model(g, coherent=False)


@cache
def run(name: str, kind: str, start: str):
    """One run and its exact references: ``(result, exact, p0)``; ``start`` is "steady" or
    "populations" (``POPULATIONS[name]``)."""
    g = generator(name, kind)
    if start == "steady":
        times = np.linspace(0.0, STEADY_T, STEADY_TIMES)
        given = {"steady_state": True}
        p0 = counting.steady_state(model_of(g))
        n, seed = STEADY_N, 101 + KINDS.index(kind)
    else:
        times = np.linspace(0.0, POPULATION_T[name], POPULATION_TIMES)
        given = {"populations": list(POPULATIONS[name])}
        p0 = np.asarray(POPULATIONS[name], dtype=float)
        n, seed = POPULATION_N, 202 + KINDS.index(kind)
    result = jumps.unravel_generator(g, times=times, trajectories=n, seed=seed,
                                     record_jumps=LISTED, s=S_GRID, **given)
    exact = jumps.exact_statistics(g, times, s=S_GRID, **given)
    return result, exact, p0


def integrated_state(model: counting.CountingModel, p0: np.ndarray, t: float) -> np.ndarray:
    """``int_0^t exp(L t') p0 dt'``: the second half of ``exp(M t) (p0, 0)`` with
    ``M = [[L, 0], [1, 0]]``."""
    D = model.size
    zero = csr_matrix((D, D))
    M = bmat([[model.generator, zero], [identity(D), zero]], format="csr")
    x = expm_multiply(M * t, np.concatenate([p0, np.zeros(D)]))
    return x[D:]


def exact_counts(model: counting.CountingModel, p0: np.ndarray, t: float) -> dict:
    """Exact mean numbers of emissions (``w > 0``) and absorptions (``w < 0``) per bath up to
    ``t``: ``int_0^t Tr J_a^(+-) p(t') dt'``."""
    q = integrated_state(model, p0, t)
    out = {"emissions": [], "absorptions": []}
    for a, (_, w) in enumerate(model.jumps):
        for key, mask in (("emissions", w > 0), ("absorptions", w < 0)):
            out[key].append(float(model.trace @ (model.weighted(a, mask.astype(float)) @ q)))
    return out


def assert_z(z: dict, minimum: int) -> None:
    """Every z-score within Z_MAX, enough of them, and not all trivially zero."""
    assert len(z) >= minimum, sorted(z)
    bad = {k: v for k, v in z.items() if v is None or not abs(v) < Z_MAX}
    assert not bad, bad
    assert max(abs(v) for v in z.values()) > 1e-3, z  # an estimate equal to its reference


# -- 1. cumulants, counts, currents, mean entropy production ------------------------------------

@pytest.mark.parametrize("start", ["steady", "populations"])
@pytest.mark.parametrize(("name", "kind"), CASES, ids=IDS)
def test_heat_cumulants_counts_and_currents(name, kind, start):
    """Oracle: ``jumps.exact_statistics`` at t_final (``heat_mean``, the diagonal and the
    off-diagonal of ``heat_covariance``, ``heat_third_cumulant``, ``entropy_production_mean``,
    the steady-state ``heat_current``) and ``int_0^t Tr J_a^(+-) p dt'`` for the mean numbers of
    emissions and absorptions per bath and of ``n_jumps``. Tolerance 4 standard errors: mean
    ``s/sqrt(N)``, variance from the fourth central moment, third cumulant and covariance by the
    delete-a-group jackknife (analysis.statistics.cumulants/covariance). Resolution: the
    variances are resolved to 10%, and from the steady state the current is > 10 standard
    errors from zero (an engine without the heat flow fails)."""
    result, exact, p0 = run(name, kind, start)
    g = generator(name, kind)
    t = float(result.times[-1])
    heat = result["heat"]
    N = heat.shape[0]
    assert heat.shape == (N, 2) and N == (STEADY_N if start == "steady" else POPULATION_N)
    # Book-keeping: n_jumps counts the w != 0 jumps, which are emissions and absorptions.
    assert np.array_equal(result["n_jumps"],
                          result["emissions"].sum(axis=1) + result["absorptions"].sum(axis=1))
    if name == "qubit":  # one Bohr frequency: Q_a = w0 (emissions_a - absorptions_a)
        np.testing.assert_allclose(heat, result["emissions"] - result["absorptions"],
                                   rtol=0, atol=1e-12)
    z = {}
    for a in (HOT, COLD):
        c = cumulants(heat[:, a])
        for key, ref in (("mean", exact["heat_mean"][-1, a]),
                         ("variance", exact["heat_covariance"][-1, a, a]),
                         ("third_cumulant", exact["heat_third_cumulant"][-1, a])):
            z[f"{key}[{a}]"] = z_score(c[key], c[f"{key}_stderr"], float(ref))
        assert c["variance_stderr"] < 0.1 * exact["heat_covariance"][-1, a, a]
        if start == "steady":
            current = float(exact["heat_current"][a])
            z[f"current[{a}]"] = z_score(c["mean"] / t, c["mean_stderr"] / t, current)
            assert abs(current) > 10 * c["mean_stderr"] / t
    value, stderr = covariance(heat[:, HOT], heat[:, COLD])
    z["covariance"] = z_score(value, stderr, float(exact["heat_covariance"][-1, HOT, COLD]))
    if start == "steady":  # the hot bath loses heat, the cold one gains it
        assert exact["heat_current"][HOT] < 0 < exact["heat_current"][COLD]
    counts = exact_counts(model_of(g), p0, t)
    for key in ("emissions", "absorptions"):
        for a in (HOT, COLD):
            x = result[key][:, a].astype(float)
            z[f"{key}[{a}]"] = z_score(x.mean(), x.std(ddof=1) / math.sqrt(N), counts[key][a])
    x = result["n_jumps"].astype(float)
    z["n_jumps"] = z_score(x.mean(), x.std(ddof=1) / math.sqrt(N),
                           sum(sum(counts[key]) for key in counts))
    sigma = result["entropy_production"]
    assert np.all(np.isfinite(sigma))  # a diagonal start, thermal baths, non-degenerate levels
    z["sigma"] = z_score(sigma.mean(), sigma.std(ddof=1) / math.sqrt(N),
                         float(exact["entropy_production_mean"][-1]))
    assert exact["entropy_production_mean"][-1] > 10 * sigma.std(ddof=1) / math.sqrt(N)
    assert_z(z, 15 if start == "steady" else 13)


# -- 2. the scaled cumulant generating function -------------------------------------------------

@pytest.mark.parametrize("name", SYSTEMS)
def test_exact_scgf_exchange_symmetry(name):
    """Oracle: the exchange fluctuation theorem ``theta_hot(s) = theta_hot(beta_cold - beta_hot
    - s)`` and ``theta_cold(s) = theta_cold(beta_hot - beta_cold - s)`` (``theta_a(s) = lim (1/t)
    ln E[exp(s Q_a)]``, ``Q_a`` given to bath a), exact for the leading eigenvalue of the tilted
    generator of a Davies master equation with KMS rates. Checked to 1e-10 on the SCGF of
    ``jumps.exact_statistics`` for both generators (their classical models) and on the quantum
    (Liouvillian) model of the channels generator; rounding of a dense eigenvalue problem with
    entries of order 10 is ~1e-14. Resolution: theta is not symmetric about s = 0 (the wrong
    sign convention fails) and is far from zero."""
    _, _, (beta_hot, beta_cold) = system(name)
    centre = {HOT: beta_cold - beta_hot, COLD: beta_hot - beta_cold}
    offsets = np.linspace(-1.5, 1.5, 13)
    quantum = counting.quantum_model(generator(name, "davies"))
    assert quantum.kind == "quantum"
    for a in (HOT, COLD):
        s = centre[a] / 2 + offsets
        mirrored = centre[a] - s
        values = []
        for kind in KINDS:
            g = generator(name, kind)
            both = jumps.exact_statistics(g, [0.0, 1.0], steady_state=True,
                                          s=np.concatenate([s, mirrored, -s]))["scgf"][a]
            values.append(both)
        values.append(np.concatenate([counting.scgf(quantum, x, baths=[a])[0]
                                      for x in (s, mirrored, -s)]))
        for theta in values:
            here, there, opposite = np.split(theta, 3)
            np.testing.assert_allclose(here, there, rtol=0, atol=1e-10)
            assert np.max(np.abs(here)) > 0.05
            assert np.max(np.abs(here - opposite)) > 1e-2  # not symmetric about s = 0
        # The three models agree (the same master equation).
        np.testing.assert_allclose(values[1], values[0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(values[2], values[0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("name", "kind"), CASES, ids=IDS)
def test_scgf_estimate_against_finite_time_value(name, kind):
    """Oracle: the finite-time ``(1/t) ln Tr exp(L_a(s) t) p_ss`` (``model.tilted(a, s)``,
    ``expm_multiply``, ``model.trace``), which the estimate ``(1/t) ln mean exp(s Q_a)``
    targets (the ``t -> inf`` limit differs by O(1/t)). Tolerance 4 delta-method standard
    errors (analysis.statistics.scgf_estimate) at the points it marks reliable (n_eff of the
    weights and of their squares >= 50); at least 6 reliable non-zero points per bath. The
    estimate's bias is O(1/(N t)), negligible. Resolution: the limit ``theta(s)`` itself is
    rejected at some point (the test sees the finite-time correction), so a wrong exact value
    of that size would be caught."""
    result, exact, p0 = run(name, kind, "steady")
    model = model_of(generator(name, kind))
    t = float(result.times[-1])
    z, z_limit = {}, []
    for a in (HOT, COLD):
        estimate = scgf_estimate(result["heat"][:, a], S_GRID, t)
        reliable = estimate["reliable"] & (S_GRID != 0)
        assert reliable.sum() >= 6, estimate["n_eff_squared"]
        assert np.min(estimate["n_eff_squared"][reliable]) >= MIN_EFFECTIVE_SAMPLES
        for k in np.flatnonzero(reliable):
            tilted = expm_multiply(model.tilted(a, S_GRID[k]) * t, p0)
            finite = math.log(float(model.trace @ tilted)) / t
            z[f"{a}, s={S_GRID[k]:+.1f}"] = z_score(estimate["theta"][k], estimate["stderr"][k],
                                                   finite)
            z_limit.append(z_score(estimate["theta"][k], estimate["stderr"][k],
                                   float(exact["scgf"][a, k])))
    assert_z(z, 12)
    assert max(abs(v) for v in z_limit) > Z_MAX


# -- 3-4. fluctuation theorems ------------------------------------------------------------------

@pytest.mark.parametrize(("name", "kind"), CASES, ids=IDS)
def test_integral_fluctuation_theorem(name, kind):
    """Oracle: ``<exp(-sigma)> = 1`` from the full-support diagonal start ``POPULATIONS``
    (exact at any t). Tolerance 4 standard errors ``std(exp(-sigma))/sqrt(N)``, used only because
    t_final and N make the estimate reliable by analysis/statistics.py's rule (n_eff of the
    weights and of their squares >= 50, asserted). Resolution: sigma is > 10 standard errors
    from zero, and dropping the heat term ``sum_a beta_a Q_a`` from sigma (an engine that
    mis-books the heat) is rejected by the same check."""
    result, _, _ = run(name, kind, "populations")
    sigma = result["entropy_production"]
    ift = integral_fluctuation(sigma)
    assert ift["n"] == POPULATION_N and ift["reliable"], ift
    assert min(ift["effective_samples"], ift["effective_samples_squared"]) >= 50
    assert abs(ift["z"]) < Z_MAX and abs(ift["z"]) > 1e-3, ift
    assert sigma.mean() > 10 * sigma.std(ddof=1) / math.sqrt(sigma.size)
    _, _, betas = system(name)
    wrong = integral_fluctuation(sigma - result["heat"] @ np.asarray(betas))
    assert wrong["reliable"] and abs(wrong["z"]) > Z_MAX, wrong


@pytest.mark.parametrize(("name", "kind"), CASES, ids=IDS)
def test_detailed_fluctuation_theorem(name, kind):
    """Oracle: from the steady state ``P(sigma)/P(-sigma) = exp(sigma)`` at any t (the
    time-reversed process of a stationary Davies chain with KMS rates is the same process),
    i.e. given ``|sigma| = u`` the sign is + with probability ``1/(1 + e^-u)``. Tolerance:
    analysis.statistics.detailed_fluctuation's chi2 p-value > 1e-3 and its largest |z| < 4,
    over >= 5 tested bin pairs. Resolution: sigma built with the two temperatures swapped is
    rejected."""
    result, _, _ = run(name, kind, "steady")
    sigma = result["entropy_production"]
    test = detailed_fluctuation(sigma)
    assert test["n_tested"] >= 5, test["bins"]
    assert test["p_value"] > P_MIN and test["max_abs_z"] < Z_MAX, test
    assert test["max_abs_z"] > 1e-3
    _, _, betas = system(name)
    swapped = sigma + result["heat"] @ (np.asarray(betas[::-1]) - np.asarray(betas))
    wrong = detailed_fluctuation(swapped)
    assert wrong["n_tested"] >= 5 and wrong["p_value"] < P_MIN, wrong


# -- 5. waiting times ---------------------------------------------------------------------------

@pytest.mark.parametrize("start", ["steady", "populations"])
@pytest.mark.parametrize(("name", "kind"), CASES, ids=IDS)
def test_first_jump_times(name, kind, start):
    """Oracle: ``first_jump_survival`` and ``first_jump_density`` of ``jumps.exact_statistics``
    (``S(t) = Tr exp((L - J) t) p0``), cubic-Hermite interpolated on the output grid (201
    times: not coarse). Tolerance: the KS p-value of the first-jump times before t_final > 1e-3
    and the censored count within 4 binomial standard errors. Resolution: the same times
    stretched by 10% (an engine with 10% slower rates) fail the same check."""
    result, exact, _ = run(name, kind, start)
    first = result["first_jump_time"]

    def check(times):
        test, _ = first_jump_test(times, result.times, exact["first_jump_survival"],
                                  exact["first_jump_density"])
        censored = test["censored_z"]
        return test, test["p_value"] > P_MIN and (censored is None or abs(censored) < Z_MAX)

    test, passed = check(first)
    assert test["n_observed"] >= 10000 and not test["coarse_grid"], test
    assert passed, test
    assert test["censored_z"] is not None, test
    slow, passed = check(1.1 * first)
    assert not passed, slow


@pytest.mark.parametrize(("name", "kind"), CASES, ids=IDS)
def test_between_jump_intervals(name, kind):
    """Oracle: the steady-state Palm waiting-time law (``waiting_time_survival``,
    ``waiting_time_density``: ``Tr J exp((L - J) tau) J rho_ss / Tr J rho_ss``) times the
    window factor ``t_final - tau`` (analysis.statistics.interval_test). Tolerance: KS p-value
    > 1e-3 (approximate: intervals of one trajectory are correlated; LISTED trajectories).
    Resolution: intervals stretched by 10% fail."""
    result, exact, _ = run(name, kind, "steady")
    tol = 1e-9 * (1.0 + float(np.max(np.abs(result.energies))))
    intervals = jump_intervals(result["jump_trajectory"], result["jump_time"],
                               result["jump_frequency"], tol)
    assert np.unique(result["jump_trajectory"]).size > 0.99 * LISTED
    test, _ = interval_test(intervals, result.times, exact["waiting_time_survival"],
                            exact["waiting_time_density"])
    assert test["n_intervals"] >= 10000 and not test["coarse_grid"], test
    assert test["p_value"] > P_MIN, test
    slow, _ = interval_test(1.1 * intervals[1.1 * intervals < STEADY_T], result.times,
                            exact["waiting_time_survival"], exact["waiting_time_density"])
    assert slow["p_value"] < P_MIN, slow


# -- 6. initial and final levels ----------------------------------------------------------------

@pytest.mark.parametrize("start", ["steady", "populations"])
@pytest.mark.parametrize(("name", "kind"), CASES, ids=IDS)
def test_initial_and_final_levels(name, kind, start):
    """Oracle: the counts of ``initial_level`` per level are multinomial with the given
    populations (or the exact steady state, ``counting.steady_state`` of the generator's
    model), and those of ``final_level`` with the master equation's populations at t_final
    (``counting.populations``). Tolerance: 4 binomial standard errors ``sqrt(N p (1 - p))``
    per level. Resolution: the steady-state counts reject both baths' Gibbs states, and the
    populations start's final counts reject the initial populations."""
    result, _, p0 = run(name, kind, start)
    g = generator(name, kind)
    N = result["initial_level"].size
    d = g.dimension
    pt = counting.populations(model_of(g), p0, [0.0, float(result.times[-1])])[-1]

    def z_levels(levels, p):
        counts = np.bincount(levels, minlength=d)
        assert counts.size == d and levels.min() >= 0
        return (counts - N * p) / np.sqrt(N * p * (1 - p))

    z0, zt = z_levels(result["initial_level"], p0), z_levels(result["final_level"], pt)
    assert np.all(np.abs(z0) < Z_MAX) and np.all(np.abs(zt) < Z_MAX), (z0, zt)
    assert np.max(np.abs(np.concatenate([z0, zt]))) > 1e-3
    if start == "steady":
        np.testing.assert_allclose(pt, p0, atol=1e-10)
        for beta in system(name)[2]:
            gibbs = np.exp(-beta * (g.energies - g.energies[0]))
            assert np.max(np.abs(z_levels(result["initial_level"], gibbs / gibbs.sum()))) > Z_MAX
    else:
        assert np.max(np.abs(z_levels(result["final_level"], p0))) > Z_MAX
