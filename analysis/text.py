"""The report as text: aligned tables, units stated once at the top (hbar = k_B = 1)."""

from __future__ import annotations

import math

from . import fluctuations

# At most this many rows of a per-time table or of a per-pair table are printed.
MAX_TIME_ROWS = 8
MAX_PAIR_ROWS = 30


def num(value, digits: int = 4) -> str:
    """A number in ``digits`` significant figures; ``-`` for a missing value."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def pm(value, error, digits: int = 4) -> str:
    if value is None:
        return "-"
    if error is None:
        return num(value, digits)
    return f"{num(value, digits)} +- {num(error, 2)}"


def percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def table(headers: list[str], rows: list[list[str]], align: str, indent: str = "  ") -> list[str]:
    """Rows under headers, columns padded to a common width (``align``: ``l``/``r`` per column)."""
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)]

    def line(cells):
        parts = [str(c).ljust(w) if a == "l" else str(c).rjust(w)
                 for c, w, a in zip(cells, widths, align)]
        return (indent + "  ".join(parts)).rstrip()

    return [line(headers)] + [line(r) for r in rows]


def _sample_indices(n: int, count: int) -> list[int]:
    if n <= count:
        return list(range(n))
    step = (n - 1) / (count - 1)
    return sorted({round(i * step) for i in range(count)})


def render(report: dict) -> str:
    """The whole report."""
    lines = _header(report)
    lines += _relaxation(report)
    if report["result"]["method"] == "trajectories":
        lines += _comparison(report)
        lines += _detailed_balance(report)
        lines += _flux(report)
        lines += _boltzmann(report)
        lines += _heat(report)
        if report.get("statistics"):
            lines += _statistics(report["statistics"])
    else:
        lines += ["", "An exact result: no error bars, jump statistics or heat to analyse."]
    return "\n".join(lines)


def _header(report: dict) -> list[str]:
    r = report["result"]
    lines = [f"jumps analysis of {r['path']}"]
    if r["method"] == "trajectories":
        lines.append(f"  {r['trajectories']} trajectories (seed {num(r['seed'])}), initial state "
                     f"{r['initial_state']}, t = 0 .. {num(r['t_final'])} on {r['n_times']} times")
    else:
        lines.append(f"  exact master-equation solution, initial state {r['initial_state']}, "
                     f"t = 0 .. {num(r['t_final'])}")
    lines.append(f"  model {r['model']}, dimension {r['dimension']} ({r['n_levels']} levels), "
                 f"{len(r['baths'])} bath(s)")
    unit = r["energy_unit"]
    unit = "the model's energy unit (arbitrary)" if unit in ("", "arbitrary") else unit
    lines.append(f"  units: energies, Bohr frequencies, rates and heat in {unit};")
    lines.append("    time in its inverse; hbar = k_B = 1; beta = 1/T")
    kinds = {True: "thermal (KMS by construction)", False: "NON-THERMAL: given by its rates",
             None: "temperature not stored"}
    rows = [[str(b["index"]), b["name"], num(b["beta"]), kinds[b["thermal"]]] for b in r["baths"]]
    lines += table(["bath", "coupling", "beta", "kind"], rows, "llrl", indent="    ")
    if report.get("comparison"):
        lines.append(f"  exact reference: {report['comparison']['source']}")
    for note in report["notes"]:
        lines.append(f"  note: {note}")
    return lines


def _relaxation(report: dict) -> list[str]:
    lines = ["", "Approach to equilibrium"]
    gibbs, exact = report.get("gibbs_trace_distance"), report.get("exact_trace_distance")
    if gibbs is None:
        lines.append("  trace distance to the Gibbs state: not computed "
                     f"({report['gibbs_beta_source']})")
    else:
        lines.append("  D_Gibbs(t) = (1/2)||rho(t) - rho_Gibbs||_1 at beta = "
                     f"{num(report['gibbs_beta'])} (from {report['gibbs_beta_source']}); "
                     f"{report['gibbs_trace_distance_method']}")
    if exact is not None:
        lines.append(f"  D_exact(t) = (1/2)||rho(t) - rho_exact(t)||_1 to the master equation; "
                     f"{report['exact_trace_distance_method']}")
    if gibbs is not None or exact is not None:
        times, noise = report["times"], report["noise_level"]
        columns = [("t", times), ("D_Gibbs(t)", gibbs), ("D_exact(t)", exact),
                   ("noise level", noise)]
        columns = [(name, values) for name, values in columns if values is not None]
        rows = [[num(values[i], 4 if name != "noise level" else 2) for name, values in columns]
                for i in _sample_indices(len(times), MAX_TIME_ROWS)]
        lines += table([name for name, _ in columns], rows, "r" * len(columns), indent="    ")
        lines.append("    (noise level: the D that statistical errors alone would give; "
                     "a D of a few times it is zero within errors)")
    rel = report["relaxation"]
    if rel.get("tau") is not None:
        lines.append(f"  relaxation time  tau = {pm(rel['tau'], rel['tau_stderr'])}  "
                     f"(effective: fit of ln D(t) to the {rel['reference_state']} over t in "
                     f"[{num(rel['window'][0])}, {num(rel['window'][1])}], "
                     f"{rel['n_points']} points)")
    else:
        lines.append(f"  relaxation time  not estimated from the data: {rel.get('reason', '')}")
    if rel.get("tau_generator") is not None:
        lines.append(f"  slowest relaxation time of the master equation (1 / Liouvillian gap) = "
                     f"{num(rel['tau_generator'])}")
    return lines


def _comparison(report: dict) -> list[str]:
    comparison = report.get("comparison")
    lines = ["", "Comparison with the exact master equation  (z = (estimate - exact) / stderr)"]
    if not comparison:
        lines.append("  not made: no exact reference (see the notes; or pass --exact DIR)")
        return lines
    rows = []
    for f in comparison["families"]:
        if f["n_points"] == 0:
            continue
        at = "" if f["max_abs_z_time"] is None else f" (t = {num(f['max_abs_z_time'])})"
        rows.append([f["quantity"], str(f["n_points"]), percent(f["within_1_sigma"]),
                     percent(f["within_2_sigma"]), percent(f["within_3_sigma"]),
                     num(f["max_abs_z"], 3) + at])
    rows.append(["all", str(comparison["n_points"]), percent(comparison["within_1_sigma"]),
                 percent(comparison["within_2_sigma"]), percent(comparison["within_3_sigma"]),
                 num(comparison["max_abs_z"], 3)])
    gauss = comparison["gaussian"]
    rows.append(["honest error bars", "", percent(gauss["within_1_sigma"]),
                 percent(gauss["within_2_sigma"]), percent(gauss["within_3_sigma"]), ""])
    lines += table(["quantity", "points", "|z|<1", "|z|<2", "|z|<3", "max |z|"], rows, "lrrrrl")
    n = comparison["n_points"]
    if n > 1:
        lines.append(f"  (points are correlated in time; for {n} independent points the largest "
                     f"|z| would be about {math.sqrt(2 * math.log(n)):.2g})")
    if comparison["same_value_points"]:
        lines.append(f"  set aside: {comparison['same_value_points']} points where every "
                     "trajectory gave the same value (zero or rounding-level error,")
        lines.append("    e.g. t = 0 or a level no trajectory reached); largest |estimate - exact| "
                     f"there {num(comparison['same_value_max_difference'], 2)}")
    if comparison["rare_points"]:
        lines.append(f"  set aside: {comparison['rare_points']} rare-event points (fewer than ~10 "
                     "trajectories' worth of signal: no Gaussian error bar);")
        lines.append(f"    largest |z| there {num(comparison['rare_max_abs_z'], 3)}")
    return lines


def _detailed_balance(report: dict) -> list[str]:
    test = report["detailed_balance_test"]
    entries = report["detailed_balance"]
    lines = ["", ("Detailed balance between levels  (expected Gamma_up/Gamma_down = "
                  "(b_upper/b_lower) exp(-beta dE))"),
             ("  Gamma = N / T_occ: jumps counted out of single-level states over the time "
              "spent in them; 95% Poisson intervals; z: exact conditional test of the counts")]
    if not entries:
        lines.append("  no jumps between distinct levels")
        return lines
    rows = []
    for e in entries[:MAX_PAIR_ROWS]:
        bath = str(e["bath"]) if e["bath"] is not None else ",".join(map(str, e["baths"])) or "-"
        rows.append([bath, f"{e['levels'][0]}-{e['levels'][1]}", num(e["frequency"]),
                     str(e["count_down"]), str(e["count_up"]), _rate(e, "down"), _rate(e, "up"),
                     pm(e["rate_ratio"], e["rate_ratio_stderr"], 3), num(e["expected_ratio"], 3),
                     num(e["z"], 2) + (" *" if e["z"] is not None and abs(e["z"]) > 3 else "")])
    lines += table(["bath", "levels", "dE", "N_down", "N_up", "Gamma_down [95% CI]",
                    "Gamma_up [95% CI]", "ratio", "expected", "z"], rows, "llrrrllrrl")
    if len(entries) > MAX_PAIR_ROWS:
        lines.append(f"  ... {len(entries) - MAX_PAIR_ROWS} more pairs in report.json")
    notes = sorted({e["note"] for e in entries if e["note"]})
    lines += [f"  untested pairs: {n}" for n in notes]
    lines.append(_verdict(test))
    for fit in test["fits"]:
        if fit["beta"] is None:
            continue
        tail = " (fewer than two well-sampled pairs: one temperature always fits)"
        if fit["p_value"] is not None:
            tail = (f"; one temperature for all its pairs: chi2 = {num(fit['chi2'], 3)} on "
                    f"{fit['dof']} dof, p = {num(fit['p_value'], 3)}")
        plural = "s" if fit["n_pairs"] > 1 else ""
        who = (f"bath {fit['bath']}" if fit["bath"] is not None
               else "baths " + ",".join(map(str, fit["baths"])))
        lines.append(f"  {who}: effective beta from the rate ratios = "
                     f"{pm(fit['beta'], fit['beta_stderr'])} ({fit['n_pairs']} pair{plural}){tail}")
    if test["within_level_jumps"]:
        lines.append(f"  {test['within_level_jumps']} jumps inside a level (dephasing, w = 0) "
                     "are not pairs")
    return lines


def _rate(entry: dict, label: str) -> str:
    rate, ci = entry[f"rate_{label}"], entry[f"rate_{label}_ci95"]
    if rate is None:
        return "-"
    return f"{num(rate, 3)} [{num(ci[0], 2)}, {num(ci[1], 2)}]"


def _verdict(test: dict) -> str:
    if test["p_value"] is None:
        return ("  global test: not possible (no pair with a temperature to test against; "
                "pass --beta)")
    verdict = "PASS" if test["passed"] else "FAIL: the rates break detailed balance"
    parts = []
    if test["chi2"] is not None:
        parts.append(f"against the declared temperature, chi2 = {num(test['chi2'], 4)} on "
                     f"{test['dof']} dof")
    if "fitted" in test["test"]:
        parts.append("one fitted temperature for all ratios (no declared temperature)")
    combined = " (Bonferroni-combined)" if " + " in test["test"] else ""
    return (f"  global test: {'; '.join(parts)}: p = {num(test['p_value'], 3)}{combined} "
            f"(alpha = {test['alpha']:g}): {verdict}")


def _flux(report: dict) -> list[str]:
    flux = report["flux_balance"]
    lines = ["", "Flux balance N(w) vs N(-w) per bath"]
    if not flux["rows"]:
        lines.append("  no emission channels")
        return lines
    rows = [[str(r["bath"]), num(r["frequency"]), str(r["count_emission"]),
             str(r["count_absorption"]), num(r["z"], 2)] for r in flux["rows"][:MAX_PAIR_ROWS]]
    lines += table(["bath", "w", "N(w) emitted", "N(-w) absorbed", "z"], rows, "lrrrl")
    lines.append(f"  assumption: {flux['assumption']}")
    if flux["p_value"] is not None:
        ok = "PASS" if flux["p_value"] >= report["alpha"] else "FAIL"
        lines.append(f"  chi2 = {num(flux['chi2'], 4)} on {flux['dof']} dof, "
                     f"p = {num(flux['p_value'], 3)}: {ok}")
    return lines


def _boltzmann(report: dict) -> list[str]:
    test = report["boltzmann"]
    lines = ["", "Boltzmann test of the time-averaged level populations"]
    if test["window"] is None:
        lines.append(f"  not made: {test['reason']}")
        return lines
    lines.append(f"  window t in [{num(test['window'][0])}, {num(test['window'][1])}] "
                 f"({test['reason']}); Gibbs at beta = {num(test['beta'])}")
    rows = [[str(v["level"]), num(v["energy"]), str(v["degeneracy"]), num(v["population"]),
             num(v["stderr_bound"], 2), num(v["gibbs"]), num(v["z"], 2)]
            for v in test["levels"][:MAX_PAIR_ROWS]]
    lines += table(["level", "E", "b", "population", "stderr <=", "Gibbs", "z"], rows, "rrrrrrr")
    lines.append("  (stderr <=: binomial error of one time's population if Gibbs holds, an upper "
                 "bound for the time average)")
    if test.get("untested"):
        lines.append(f"  untested: {test['untested']} levels with fewer than 5 trajectories "
                     "expected at a time (too rare for a Gaussian z)")
    if test["p_value"] is not None:
        ok = "PASS" if test["p_value"] >= report["alpha"] else "FAIL"
        lines.append(f"  max |z| = {num(test['max_abs_z'], 3)}, p = {num(test['p_value'], 3)} "
                     "(Bonferroni; conservative): "
                     f"{ok}")
    return lines


def _heat(report: dict) -> list[str]:
    statistics = report["heat"]
    lines = ["", "Heat per trajectory  (Q_a = energy given to bath a; sum of w over its jumps)"]
    rows = [[str(b["bath"]), b["name"], pm(b["mean"], b["stderr"]),
             pm(b["variance"], b["variance_stderr"]), f"{num(b['min'])} .. {num(b['max'])}",
             num(b["exact_mean"]), num(b["z_vs_exact"], 2)]
            for b in statistics["baths"]]
    lines += table(["bath", "coupling", "<Q>", "Var Q", "range", "exact <Q>", "z"], rows, "lllllrl")
    balance = statistics["balance"]
    line = f"  energy balance: sum_a <Q_a> = {pm(balance['total_mean'], balance['total_stderr'])}"
    if balance["expected"] is not None:
        line += (f"; -(<H>(t_final) - <H>(0)) = {num(balance['expected'])} "
                 f"from {balance['source']}; z = {num(balance['z'], 2)}")
    else:
        line += "; no energy change to compare with (no exact reference, no 'energy' observable)"
    lines.append(line)
    return lines


def _z_cell(exact, z) -> list[str]:
    return [num(exact), num(z, 2) + (" *" if z is not None and abs(z) > 3 else "")]


def _statistics(block: dict) -> list[str]:
    """The "Trajectory statistics" section (analysis.statistics; z = (estimate - exact) / stderr,
    ``*`` beyond 3)."""
    source = block["exact_source"] or block.get("heat_exact_mean_source") or "none"
    lines = ["", (f"Trajectory statistics at t_final = {num(block['t_final'])}  "
                  f"({block['trajectories']} trajectories; exact values: {source})")]
    rows = []
    for h in block["heat"]:
        row = [str(h["bath"])]
        for key in ("mean", "variance", "third_cumulant"):
            row += [pm(h[key], h[f"{key}_stderr"]), *_z_cell(h[f"{key}_exact"], h[f"z_{key}"])]
        rows.append(row)
    lines += table(["bath", "<Q>", "exact", "z", "Var Q", "exact", "z", "k3(Q)", "exact", "z"],
                   rows, "llrllrllrl")
    lines += [f"  Cov(Q_{c['baths'][0]}, Q_{c['baths'][1]}) = {pm(c['covariance'], c['stderr'])}"
              f"; exact {num(c['exact'])}, z = {num(c['z'], 2)}" for c in block["heat_covariance"]]
    counts = block["jump_counts"]
    lines.append(f"  jumps with w != 0 per trajectory: "
                 f"{pm(counts['n_jumps']['mean'], counts['n_jumps']['mean_stderr'])}")
    for f in block["fano_factor"]:
        emitted = counts.get("emissions", [{}] * (f["bath"] + 1))[f["bath"]].get("mean")
        absorbed = counts.get("absorptions", [{}] * (f["bath"] + 1))[f["bath"]].get("mean")
        heat = (pm(f["heat"], f["heat_stderr"]) if f["heat"] is not None
                else f"- ({f['heat_reason']})")
        lines.append(f"  bath {f['bath']}: <emissions> {num(emitted)}, <absorptions> "
                     f"{num(absorbed)}; Fano Var(N)/<N> = {pm(f['counts'], f['counts_stderr'])}"
                     f"; Var(Q)/|<Q>| = {heat}")
    if block["heat_current"]:
        lines += [f"  steady-state heat current into bath {c['bath']}: <Q>/t = "
                  f"{pm(c['current'], c['stderr'])}; exact {num(c['exact'])}, z = {num(c['z'], 2)}"
                  for c in block["heat_current"]]
    lines += _scgf(block["scgf"])
    lines += _fluctuation_theorems(block)
    lines += fluctuations.render(block.get("exchange_fluctuation_symmetry"))
    lines += _waiting_times(block)
    law = block["first_law"]
    if law["checked"]:
        lines.append(f"  first law per trajectory (sum_a Q_a = E(n0) - E_final, {law['checked']} "
                     f"trajectories in one level at both ends): largest |violation| "
                     f"{num(law['max_abs_violation'], 2)}, {law['violations']} beyond tolerance")
    return lines


def _scgf(scgf: dict) -> list[str]:
    if scgf["s"] is None:
        return [f"  SCGF: not estimated: {scgf['reason']}"]
    lines = [(f"  SCGF theta(s) = (1/t) ln <exp(s Q_a)> (delta-method error; unreliable "
              f"where the weights w = exp(s Q) or w^2 have n_eff < "
              f"{scgf['min_effective_samples']})")]
    for a, theta in enumerate(scgf["theta"]):
        rows = []
        for k in _sample_indices(len(scgf["s"]), MAX_TIME_ROWS):
            shown = (pm(theta[k], scgf["theta_stderr"][a][k]) if scgf["reliable"][a][k]
                     else "unreliable")
            rows.append([num(scgf["s"][k]), shown, num(scgf["theta_exact"][a][k]),
                         num(scgf["z"][a][k], 2), num(scgf["theta_limit"][a][k]),
                         num(scgf["effective_samples"][a][k], 3),
                         num(scgf["effective_samples_squared"][a][k], 3)])
        lines.append(f"    bath {a}:")
        lines += table(["s", "theta", "exact (same t)", "z", "limit t->inf", "n_eff(w)",
                        "n_eff(w^2)"], rows, "rlrrrrr", indent="      ")
    lines.append(f"    ({scgf['comparison']})")
    return lines


def _fluctuation_theorems(block: dict) -> list[str]:
    ift, sigma = block["integral_fluctuation_theorem"], block["entropy_production"]
    if ift["mean"] is None:
        return [f"  fluctuation theorems: not tested: {ift['reason']}"]
    z = num(ift["z"], 2) if ift["z"] is not None else f"- ({ift['reason']})"
    expected = ("unknown" if ift.get("expected", 1.0) is None
                else "1" if ift.get("expected", 1.0) == 1.0
                else f"{num(ift['expected'], 4)}: p0 leaves levels empty")
    lines = [f"  integral FT: <exp(-sigma)> = {pm(ift['mean'], ift['stderr'])} "
             f"(expected {expected}), "
             f"z = {z}; n_eff = {num(ift['effective_samples'], 3)}"
             + (f"; sigma undefined in {ift['n_undefined']} trajectories (left out)"
                if ift["n_undefined"] else "")]
    line = f"  entropy production <sigma> = {pm(sigma['mean'], sigma['stderr'])}"
    if sigma["exact"] is not None:
        line += f"; exact {num(sigma['exact'])} ({sigma['exact_source']}), z = {num(sigma['z'], 2)}"
    lines.append(line)
    dft = block["detailed_fluctuation_theorem"]
    if not dft["applies"]:
        lines.append(f"  detailed FT: not tested: {dft['reason']}")
    elif dft["p_value"] is None:
        lines.append(f"  detailed FT: no bin pair with enough counts ({dft['rule']})")
    else:
        lines.append(f"  detailed FT ln P(sigma)/P(-sigma) = sigma: {dft['n_tested']} bin pairs "
                     f"({dft['binning']}), chi2 = {num(dft['chi2'], 4)} on {dft['dof']} dof, "
                     f"p = {num(dft['p_value'], 3)}; max |z| = {num(dft['max_abs_z'], 3)} "
                     f"(Bonferroni p = {num(dft['max_abs_z_p_value'], 3)})")
    return lines


def _coarse(test: dict) -> str:
    if not test["coarse_grid"]:
        return ""
    return (f" (COARSE time grid: the exact density changes by up to "
            f"{percent(test['density_max_step'])} between output times; the interpolated CDF is "
            "suspect)")


def _waiting_times(block: dict) -> list[str]:
    lines = []
    first, between = block["first_jump"], block["between_jumps"]
    if first["p_value"] is not None:
        coarse = _coarse(first)
        lines.append(f"  first jump (w != 0): KS p = {num(first['p_value'], 3)} on "
                     f"{first['n_observed']} times <= t_final{coarse}; no jump in "
                     f"{first['n_censored']} trajectories (expected {num(first['censored_expected'])}"
                     f", z = {num(first['censored_z'], 2)})")
    else:
        lines.append(f"  first jump: not tested: {first['reason']}")
    if between["p_value"] is not None:
        coarse = _coarse(between)
        lines.append(f"  waiting time between jumps: KS p = {num(between['p_value'], 3)} on "
                     f"{between['n_intervals']} intervals of {between['trajectories']} "
                     f"trajectories against the Palm distribution x (t_final - tau){coarse};")
        lines.append(f"    {between['note']}")
    else:
        lines.append(f"  waiting time between jumps: not tested: {between['reason']}")
    return lines
