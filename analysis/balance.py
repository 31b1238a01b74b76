"""Detailed-balance statistics of the jump records.

Rates between levels (docs/design.md, "Conventions"; ``w > 0`` is emission). For a pair of levels
``lower < upper`` with gap ``dE = E_upper - E_lower``:

- ``Gamma_down = N(upper -> lower) / T_occ(upper)`` and
  ``Gamma_up = N(lower -> upper) / T_occ(lower)``: the maximum-likelihood rates of a Markov jump
  process (``T_occ`` counts only time spent inside a single level, and only jumps out of such
  states are counted, so each ratio is a consistent estimator). Confidence intervals are the
  exact Poisson (Garwood) ones.
- KMS implies ``Gamma_up / Gamma_down = (b_upper / b_lower) exp(-beta dE)``; ``b`` are the
  degeneracies. For degenerate levels this holds for rates averaged evenly over the level,
  which is what the estimator gives when the state inside the level is evenly mixed: a run
  started in the Gibbs state (stationary). Pairs with a degenerate level are therefore tested
  only on Gibbs-started runs.
- Per pair, the score z of the exact conditional test: given ``n = N_up + N_down`` the up
  count is binomial with ``p0 = R0 T_lower / (R0 T_lower + T_upper)``, ``R0`` the expected
  ratio; ``z = (N_up - n p0) / sqrt(n p0 (1 - p0))`` (``z > 0``: more up-jumps than KMS allows,
  a bath that looks hotter). Globally ``chi2 = sum z^2`` on one degree of freedom per pair.
"""

from __future__ import annotations

import math

import numpy as np

from .load import Result
from .stats import bonferroni_p_value, chi2_p_value, poisson_interval

# A pair enters a chi-square test when at least this many jumps are expected each way given
# its total (the usual validity rule of the chi-square approximation).
MIN_EXPECTED = 5


def frequency_tolerance(result: Result) -> float:
    """Two frequencies closer than this are one Bohr frequency (above jumps' own 1e-9 scale)."""
    return 1e-7 * (1.0 + float(np.max(np.abs(result.energies))))


def _transition_matrix(result: Result) -> np.ndarray:
    """(L, L) counts ``N[m, n]`` of jumps from level m to level n."""
    L = result.n_levels
    counts = np.zeros((L, L), dtype=np.int64)
    np.add.at(counts, (result["transition_from"], result["transition_to"]),
              result["transition_count"])
    return counts


def _pair_baths(result: Result, gap: float, tol: float) -> list[int]:
    """Baths that have a channel with a non-zero rate at ``+gap`` or ``-gap``: a superset of
    the baths that connect the pair (another pair may share the gap), so a pair whose
    candidates share one temperature is never tested against a wrong one."""
    frequency, rate = result["channel_frequency"], result["channel_rate"]
    bath = result["channel_bath"]
    hit = (np.abs(np.abs(frequency) - gap) <= tol) & (rate > 0)
    return sorted({int(b) for b in bath[hit]})


def _declared_beta(result: Result, baths: list[int],
                   beta_override: float | None) -> tuple[float | None, str]:
    """The inverse temperature a pair is tested against, and where it comes from."""
    if beta_override is not None:
        return beta_override, "--beta"
    baths = baths or list(range(result.n_baths))
    betas = result.bath_beta[baths]
    if any(result.bath_thermal[b] is False for b in baths):
        return None, "non-thermal bath (given by its rates): no declared temperature (use --beta)"
    if np.any(np.isnan(betas)):
        return None, "the result stores no bath temperature (use --beta)"
    if np.unique(betas).size > 1:
        return None, "baths at different temperatures share this pair"
    return float(betas[0]), "bath"


def pair_entries(result: Result, beta_override: float | None = None) -> list[dict]:
    """One entry per pair of levels with at least one observed jump between them."""
    counts = _transition_matrix(result)
    occupation = result["occupation_time"]
    energies, sizes = result.level_energies, result.level_sizes
    tol = frequency_tolerance(result)
    stationary = result.initial_state == "gibbs"
    names = result.bath_names
    entries = []
    lower, upper = np.nonzero(np.triu(counts + counts.T, 1))
    for lo, up in zip(lower.tolist(), upper.tolist()):
        gap = float(energies[up] - energies[lo])
        n_up, n_down = int(counts[lo, up]), int(counts[up, lo])
        t_lo, t_up = float(occupation[lo]), float(occupation[up])
        baths = _pair_baths(result, gap, tol)
        beta, beta_source = _declared_beta(result, baths, beta_override)
        entry = {
            "bath": baths[0] if len(baths) == 1 else None, "baths": baths,
            "bath_names": [names[b] for b in baths],
            "frequency": gap, "levels": [lo, up],
            "energy_lower": float(energies[lo]), "energy_upper": float(energies[up]),
            "degeneracy_lower": int(sizes[lo]), "degeneracy_upper": int(sizes[up]),
            "count_down": n_down, "count_up": n_up,
            "occupation_lower": t_lo, "occupation_upper": t_up,
            **_rates(n_up, n_down, t_lo, t_up),
            "beta": beta, "beta_source": beta_source,
            "expected_ratio": None, "z": None, "tested": False, "note": "",
        }
        if beta is not None:
            degeneracy = sizes[up] / sizes[lo]
            boltzmann = 0.0 if math.isinf(beta) else math.exp(-beta * gap)
            entry["expected_ratio"] = float(degeneracy * boltzmann)
        if beta is None:
            entry["note"] = beta_source
        elif (sizes[lo] > 1 or sizes[up] > 1) and not stationary:
            entry["note"] = ("degenerate level: its rates depend on the state inside the level; "
                             "tested only on runs started in the Gibbs state")
        elif t_lo <= 0 or t_up <= 0:
            entry["note"] = "a level of the pair was never occupied alone"
        else:
            entry["z"], entry["tested"], entry["note"] = _score_z(n_up, n_down, t_lo, t_up,
                                                                  entry["expected_ratio"])
        entries.append(entry)
    entries.sort(key=lambda e: (e["bath"] if e["bath"] is not None else len(names), e["frequency"]))
    return entries


def _rates(n_up: int, n_down: int, t_lo: float, t_up: float) -> dict:
    """Rates with 95% Poisson intervals and their ratio with its delta-method error."""
    out = {}
    for label, n, t in (("down", n_down, t_up), ("up", n_up, t_lo)):
        lo, hi = poisson_interval(n)
        out[f"rate_{label}"] = n / t if t > 0 else None
        out[f"rate_{label}_ci95"] = [float(lo) / t, float(hi) / t] if t > 0 else None
    out.update(rate_ratio=None, rate_ratio_stderr=None, log_ratio=None, log_ratio_stderr=None)
    if n_down > 0 and t_lo > 0 and t_up > 0:
        ratio = (n_up / t_lo) / (n_down / t_up)
        out["rate_ratio"] = ratio
        if n_up > 0:
            relative = math.sqrt(1.0 / n_up + 1.0 / n_down)
            out.update(rate_ratio_stderr=ratio * relative, log_ratio=math.log(ratio),
                       log_ratio_stderr=relative)
    return out


def _score_z(n_up: int, n_down: int, t_lo: float, t_up: float,
             expected: float) -> tuple[float | None, bool, str]:
    """``(z, tested, note)`` of the conditional test of one pair (see the module docstring).

    The chi-square approximation wants at least ``MIN_EXPECTED`` jumps expected each way
    given the pair's total; below that the pair is listed with its z but left out of the test.
    """
    n = n_up + n_down
    p0 = expected * t_lo / (expected * t_lo + t_up)
    if p0 <= 0.0 or p0 >= 1.0:
        # Zero temperature: up-jumps are forbidden; any is a certain violation.
        if n_up == 0:
            return None, False, "zero temperature and no up-jump: nothing to test"
        return math.inf, True, ""
    z = (n_up - n * p0) / math.sqrt(n * p0 * (1.0 - p0))
    if n * min(p0, 1.0 - p0) < MIN_EXPECTED:
        return z, False, f"fewer than {MIN_EXPECTED} jumps expected each way (too few to test)"
    return z, True, ""


def detailed_balance(result: Result, beta_override: float | None = None,
                     alpha: float = 0.01) -> dict:
    """Per-pair rates and z-scores against KMS at the declared temperature, the global
    chi-square test, and per group of pairs coupled by the same baths a fitted effective
    temperature with its own test.

    ``p_value`` combines (Bonferroni: ``k`` times the smallest of ``k`` p-values) the
    declared-temperature test over the pairs that have a declared temperature with, for each
    group of pairs that has none (a bath given by its rates, no ``--beta``), the test that one
    fitted temperature explains all its ratios (which needs two well-sampled pairs).
    """
    entries = pair_entries(result, beta_override)
    tested = [e for e in entries if e["tested"]]
    chi2 = float(sum(e["z"] ** 2 for e in tested))
    groups = sorted({tuple(e["baths"]) for e in entries if e["baths"]})
    fits = [_fit_beta(result, baths, entries) for baths in groups]
    out = {"entries": entries, "n_pairs": len(entries), "n_tested": len(tested),
           "alpha": alpha, "chi2": chi2 if tested else None, "dof": len(tested),
           "fits": fits, "within_level_jumps": int(np.trace(_transition_matrix(result)))}
    undeclared = {tuple(e["baths"]) for e in entries if e["beta"] is None}
    components, names = [], []
    if tested:
        components.append(chi2_p_value(chi2, len(tested)))
        names.append("declared temperature")
    fitted = [f["p_value"] for f in fits
              if tuple(f["baths"]) in undeclared and f["p_value"] is not None]
    if fitted:
        components += fitted
        names.append("single fitted temperature")
    out["test"] = " + ".join(names) or "none"
    out["p_value"] = min(1.0, len(components) * min(components)) if components else None
    out["passed"] = None if out["p_value"] is None else bool(out["p_value"] >= alpha)
    return out


def _fit_beta(result: Result, baths: tuple[int, ...], entries: list[dict]) -> dict:
    """Effective inverse temperature of the pairs coupled by ``baths``, by maximum likelihood.

    Given ``n = N_up + N_down`` the up count of a pair is binomial with
    ``logit p = ln(b_up T_lower / (b_low T_upper)) - beta dE`` (the test of
    :func:`pair_entries` with ``beta`` free): a logistic regression in ``beta``, solved by
    Newton's method (the log-likelihood is concave). Every pair with jumps counts, zero counts
    included, so no selection biases ``beta``. The Pearson chi-square at the optimum, over the
    pairs with at least ``MIN_EXPECTED`` jumps expected each way, has one degree of freedom
    fewer than those pairs: a small p-value means no single temperature fits.
    """
    stationary = result.initial_state == "gibbs"
    rows = [e for e in entries if tuple(e["baths"]) == baths
            and e["occupation_lower"] > 0 and e["occupation_upper"] > 0
            and (stationary or (e["degeneracy_lower"] == 1 and e["degeneracy_upper"] == 1))]
    out = {"baths": list(baths), "bath": baths[0] if len(baths) == 1 else None,
           "n_pairs": len(rows), "beta": None, "beta_stderr": None, "chi2": None,
           "dof": 0, "p_value": None}
    if not rows:
        return out
    up = np.array([e["count_up"] for e in rows], dtype=float)
    n = up + np.array([e["count_down"] for e in rows], dtype=float)
    x = np.array([e["frequency"] for e in rows])
    offset = np.log([e["degeneracy_upper"] * e["occupation_lower"]
                     / (e["degeneracy_lower"] * e["occupation_upper"]) for e in rows])
    beta = 0.0
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(offset - beta * x)))
        information = float(np.sum(n * p * (1 - p) * x**2))
        if information <= 0:
            return out
        step = -float(np.sum(x * (up - n * p))) / information
        beta += float(np.clip(step, -10.0 / max(x.max(), 1e-300), 10.0 / max(x.max(), 1e-300)))
        if abs(step) < 1e-12 * max(1.0, abs(beta)):
            break
    else:
        return out  # no finite optimum (e.g. no up-jump at all: zero temperature)
    p = 1.0 / (1.0 + np.exp(-(offset - beta * x)))
    variance = n * p * (1 - p)
    out.update(beta=beta, beta_stderr=1.0 / math.sqrt(float(np.sum(variance * x**2))))
    enough = n * np.minimum(p, 1 - p) >= MIN_EXPECTED
    out["dof"] = max(int(enough.sum()) - 1, 0)
    if enough.sum() > 1:
        chi2 = float(np.sum((up - n * p)[enough] ** 2 / variance[enough]))
        out.update(chi2=chi2, p_value=chi2_p_value(chi2, out["dof"]))
    return out


def flux_balance(result: Result) -> dict:
    """Jump counts through ``+w`` and ``-w`` of each bath: in the Gibbs state the fluxes
    balance exactly (docs/design.md, "Conventions"), so on a run *started* in the Gibbs state (stationary
    at all times) ``E[N(w)] = E[N(-w)]``.

    ``z = (N(w) - N(-w)) / sqrt(N(w) + N(-w))`` uses the variance of independent Poisson
    counts. Per-time counts are not stored, so no stationary window can be cut out of a run
    that starts elsewhere: the test is then not made (the counts are still listed).
    """
    frequency, bath = result["channel_frequency"], result["channel_bath"]
    counts = result["jump_counts"]
    tol = frequency_tolerance(result)
    stationary = result.initial_state == "gibbs"
    rows = []
    for c in np.flatnonzero(frequency > tol):
        partner = np.flatnonzero((bath == bath[c]) & (np.abs(frequency + frequency[c]) <= tol))
        n_minus = int(counts[partner].sum()) if partner.size else 0
        n_plus = int(counts[c])
        total = n_plus + n_minus
        z = (n_plus - n_minus) / math.sqrt(total) if total > 0 and stationary else None
        rows.append({"bath": int(bath[c]), "frequency": float(frequency[c]),
                     "count_emission": n_plus, "count_absorption": n_minus, "z": z})
    tested = [r for r in rows if r["z"] is not None]
    chi2 = float(sum(r["z"] ** 2 for r in tested))
    return {"stationary": stationary, "rows": rows, "n_tested": len(tested),
            "chi2": chi2 if tested else None, "dof": len(tested),
            "p_value": chi2_p_value(chi2, len(tested)) if tested else None,
            "assumption": ("run started in the Gibbs state, hence stationary over the whole run; "
                           "Poisson variance N(w) + N(-w) (an overestimate when emission and "
                           "absorption alternate, as in a two-level system: the test is then "
                           "conservative)") if stationary else
                          ("not tested: the run did not start in the Gibbs state and per-time "
                           "jump counts are not stored, so no stationary window exists")}


MIN_EXPECTED = 5.0  # trajectories expected in a level at one time, for the Boltzmann test


def boltzmann_test(result: Result, beta: float | None, window_start: float | None,
                   window_reason: str) -> dict:
    """Time-averaged level populations over ``[window_start, t_final]`` against Gibbs.

    ``z_k = (mean_t P_k(t) - g_k) / s_k`` with ``s_k = sqrt(g_k (1 - g_k) / N)``, the binomial
    error of one time's population of ``N`` trajectories if the Gibbs populations ``g_k`` hold
    (the hypothesis tested): the error of a time average is at most that (equal if the times
    were fully correlated; per-trajectory time averages are not stored), so the test is
    conservative. The error is the hypothesis', not the sample's: a level that no trajectory
    visited at most times has a sample error near zero, which would make any single visit look
    significant. Levels with ``N g_k < MIN_EXPECTED`` are too rare for a Gaussian z and are not
    tested (counted in ``untested``). The p-value is Bonferroni's for the largest ``|z|``.
    """
    out = {"beta": beta, "window": None, "levels": [], "max_abs_z": None, "p_value": None,
           "reason": window_reason, "untested": 0}
    if beta is None or window_start is None or not result.has("populations_stderr"):
        if beta is None:
            out["reason"] = "no temperature to compare with (use --beta)"
        return out
    times = result.times
    inside = times >= window_start - 1e-12 * max(1.0, times[-1])
    if inside.sum() < 2:
        out["reason"] = "the stationary window holds fewer than 2 time points: run longer"
        return out
    energies, sizes = result.level_energies, result.level_sizes
    weights = sizes * (np.exp(-beta * (energies - energies.min())) if not math.isinf(beta)
                       else (energies == energies.min()).astype(float))
    gibbs = weights / weights.sum()
    mean = result.level_populations()[inside].mean(axis=0)
    n = result.ntraj
    stderr = np.sqrt(gibbs * (1.0 - gibbs) / n)
    levels, z_values = [], []
    for k in range(result.n_levels):
        testable = n * gibbs[k] >= MIN_EXPECTED and stderr[k] > 0
        z = (mean[k] - gibbs[k]) / stderr[k] if testable else None
        out["untested"] += 0 if testable else 1
        levels.append({"level": k, "energy": float(energies[k]), "degeneracy": int(sizes[k]),
                       "population": float(mean[k]), "stderr_bound": float(stderr[k]),
                       "gibbs": float(gibbs[k]), "z": z})
        if z is not None:
            z_values.append(abs(z))
    out.update(window=[float(times[inside][0]), float(times[-1])], levels=levels)
    if z_values:
        out["max_abs_z"] = max(z_values)
        out["p_value"] = bonferroni_p_value(out["max_abs_z"], len(z_values))
    return out
