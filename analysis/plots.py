"""Plots of an analysis, as PNG, PDF or SVG (matplotlib is an optional extra, imported only
here and lazily). Named ``<name>.<format>``:

- ``observables``: the run's observables versus time, 1-sigma bands, exact curves.
- ``populations``: level populations versus time, 1-sigma bands, exact curves, Gibbs values.
- ``relaxation.png``: distance to the steady state versus time (log scale), noise level, fits.
- ``detailed_balance.png``: ``ln(Gamma_up/Gamma_down) - ln(b_up/b_low)`` versus ``beta dE`` with
  the KMS line of slope -1.
- ``heat.png``: histogram of the heat per trajectory, per bath, with the mean and exact mean.

With the per-trajectory statistics records (:mod:`analysis.statistics`):

- ``heat_distribution.png``: the heat distribution per bath against a Gaussian with the exact
  mean and variance (or the sample ones; the legend says which: not the exact distribution).
- ``scgf.png``: the SCGF estimate per bath against the exact curve (unreliable points marked).
- ``fluctuation_theorem.png``: ``ln P(sigma)/P(-sigma)`` against its expectation, slope 1.
- ``waiting_times.png``: first-jump and between-jump histograms against the exact densities.
- ``exchange_symmetry.png``: theta_hot(s) and the mirrored theta_hot(delta_beta - s)
  (:mod:`analysis.fluctuations`; two thermal baths only).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from jumps.errors import ConfigError

from . import fluctuations
from .balance import MIN_EXPECTED
from .report import Analysis

# Populations plot: at most this many levels (the most populated ones).
MAX_LEVELS_SHOWN = 8
MAX_HEAT_PANELS = 4
# Detailed-balance plot: pairs are labelled when there are at most this many.
MAX_LABELLED_PAIRS = 15
# Observables plot: one panel each, at most this many.
MAX_OBSERVABLE_PANELS = 6
FORMATS = ("png", "pdf", "svg")


def require_matplotlib():
    """The pyplot module with a file-only backend, or a one-line input error."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("--plots",
                          "matplotlib is not installed (pip install 'jumps[plot]')") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def unit_labels(energy_unit: str) -> tuple[str, str]:
    """Axis labels for an energy and a time in the model's units (hbar = 1)."""
    if energy_unit in ("", "arbitrary"):
        return "energy units", "1/energy unit, ħ = 1"
    base = energy_unit.split(" (")[0]
    extra = energy_unit[len(base):].strip(" ()")
    time = f"ħ/{base}" + (f"; {extra}" if extra else "")
    return base, time


class WrittenPlots(list):
    """The paths written (a list, in order), and ``figures``: name -> matplotlib ``Figure``
    (closed in pyplot, still drawable: a notebook shows ``figures["observables"]``)."""

    def __init__(self, paths: list[Path], figures: dict):
        super().__init__(paths)
        self.figures = figures


def write_plots(analysis: Analysis, directory: Path, format: str = "png") -> WrittenPlots:
    """Write the plots into ``directory`` as ``format`` (``png``, ``pdf`` or ``svg``).

    Returns
    -------
    WrittenPlots
        The paths written (a list) with the figures (``.figures``, by name).
    """
    if format not in FORMATS:
        raise ConfigError("--format", f"must be one of {', '.join(FORMATS)}, got {format!r}")
    plt = require_matplotlib()
    directory = Path(directory)
    written, figures = [], {}
    for name, draw in (("observables", _observables), ("populations", _populations),
                       ("relaxation", _relaxation),
                       ("detailed_balance", _detailed_balance), ("heat", _heat),
                       ("heat_distribution", _heat_distribution), ("scgf", _scgf),
                       ("fluctuation_theorem", _fluctuation_theorem),
                       ("waiting_times", _waiting_times),
                       ("exchange_symmetry", fluctuations.plot)):
        figure = draw(plt, analysis)
        if figure is None:
            continue
        path = directory / f"{name}.{format}"
        figure.savefig(path, dpi=130, bbox_inches="tight")
        plt.close(figure)
        written.append(path)
        figures[name] = figure
    return WrittenPlots(written, figures)


def _title(analysis: Analysis) -> str:
    r = analysis.report["result"]
    what = f"{r['trajectories']} trajectories" if r["method"] == "trajectories" else "exact"
    return f"{r['model']}, d = {r['dimension']}, {what}, initial state {r['initial_state']}"


def _observables(plt, analysis: Analysis):
    """One panel per observable: the mean with its 1-sigma band, and the exact curve."""
    result = analysis.result
    names = result.observable_names[:MAX_OBSERVABLE_PANELS]
    if not names:
        return None
    _, time_label = unit_labels(result.energy_unit)
    exact = analysis.reference.expectations if analysis.reference is not None else {}
    times = result.times
    figure, panels = plt.subplots(len(names), 1, figsize=(7.5, 2.2 + 1.6 * len(names)),
                                  sharex=True, squeeze=False)
    for axes, name in zip(panels[:, 0], names):
        mean = result[f"expect_{name}"]
        axes.plot(times, mean, color="C0", lw=1.4, label="trajectory average"
                  if result.is_trajectories else "exact result")
        if result.has(f"expect_{name}_stderr"):
            error = result[f"expect_{name}_stderr"]
            axes.fill_between(times, mean - error, mean + error, color="C0", alpha=0.25, lw=0,
                              label="±1 standard error")
        if name in exact:
            axes.plot(times, exact[name], color="black", lw=0.9, ls="--",
                      label="exact master equation")
        axes.set_ylabel(f"⟨{name}⟩")
        axes.legend(fontsize=8, frameon=False)
    panels[-1, 0].set_xlabel(f"time t  [{time_label}]")
    panels[-1, 0].set_xlim(times[0], times[-1])
    hidden = len(result.observable_names) - len(names)
    more = f" (first {len(names)}, {hidden} more not shown)" if hidden else ""
    panels[0, 0].set_title(f"Observables{more}\n{_title(analysis)}", fontsize=10)
    return figure


def _populations(plt, analysis: Analysis):
    result = analysis.result
    _, time_label = unit_labels(result.energy_unit)
    times = result.times
    populations = result.level_populations()
    stderr = result.level_populations_stderr() if result.has("populations_stderr") else None
    exact = analysis.curves.get("reference_populations")
    exact = np.add.reduceat(exact, result.level_ptr[:-1], axis=1) if exact is not None else None
    shown = np.sort(np.argsort(populations.max(axis=0))[::-1][:MAX_LEVELS_SHOWN])
    beta = analysis.report.get("gibbs_beta")
    figure, axes = plt.subplots(figsize=(7.5, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, k in enumerate(shown):
        color = colors[i % len(colors)]
        size = result.level_sizes[k]
        label = f"level {k}: E = {result.level_energies[k]:.4g}"
        label += f" (×{size})" if size > 1 else ""
        axes.plot(times, populations[:, k], color=color, lw=1.4, label=label)
        if stderr is not None:
            axes.fill_between(times, populations[:, k] - stderr[:, k],
                              populations[:, k] + stderr[:, k], color=color, alpha=0.25, lw=0)
        if exact is not None:
            axes.plot(times, exact[:, k], color="black", lw=0.9, ls="--")
    if exact is not None:
        axes.plot([], [], color="black", lw=0.9, ls="--", label="exact master equation")
    if stderr is not None:
        axes.fill_between([], [], [], color="gray", alpha=0.25, lw=0, label="±1 standard error")
    if beta is not None:
        gibbs = _gibbs_levels(result, beta)
        for k in shown:
            axes.axhline(gibbs[k], color="gray", lw=0.8, ls=":")
        axes.plot([], [], color="gray", lw=0.8, ls=":", label=f"Gibbs, β = {beta:.4g}")
    axes.set_xlabel(f"time t  [{time_label}]")
    axes.set_ylabel("level population")
    subset = ("" if shown.size == result.n_levels
              else f" ({shown.size} most populated of {result.n_levels} levels)")
    axes.set_title(f"Level populations{subset}\n{_title(analysis)}", fontsize=10)
    axes.set_xlim(times[0], times[-1])
    axes.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return figure


def _gibbs_levels(result, beta: float) -> np.ndarray:
    energies = result.level_energies
    weights = result.level_sizes * (np.exp(-beta * (energies - energies.min())) if np.isfinite(beta)
                                    else (energies == energies.min()))
    return weights / weights.sum()


def _relaxation(plt, analysis: Analysis):
    distance = analysis.curves.get("relaxation_distance")
    if distance is None:
        return None
    relaxation = analysis.curves["relaxation"]
    _, time_label = unit_labels(analysis.result.energy_unit)
    times, noise = analysis.result.times, analysis.curves["noise_level"]
    figure, axes = plt.subplots(figsize=(7.5, 4.5))
    floor = max(float(np.min(distance[distance > 0])) if np.any(distance > 0) else 1e-6, 1e-12)
    axes.semilogy(times, np.maximum(distance, floor), "o", ms=3, color="C0",
                  label=f"D(t) to the {relaxation['reference_state']}")
    if np.any(noise > 0):
        axes.semilogy(times, np.maximum(noise, floor), color="gray", lw=1,
                      label="noise level (statistical errors alone)")
    peak = int(np.argmax(distance))
    if relaxation.get("tau") is not None:
        t0, t1 = relaxation["window"]
        inside = (times >= t0) & (times <= t1)
        axes.axvspan(t0, t1, color="C1", alpha=0.08, lw=0)
        logs = np.log(distance[inside]) + times[inside] / relaxation["tau"]
        anchor = float(np.exp(np.mean(logs)))
        axes.semilogy(times, anchor * np.exp(-times / relaxation["tau"]), color="C1", lw=1.2,
                      label=f"fit: τ = {relaxation['tau']:.3g} (on t ∈ [{t0:.3g}, {t1:.3g}])")
    if relaxation.get("tau_generator") is not None:
        tau = relaxation["tau_generator"]
        axes.semilogy(times, distance[peak] * np.exp(-(times - times[peak]) / tau), color="k",
                      ls="--", lw=1, label=f"slowest mode of the master equation: τ = {tau:.3g}")
    axes.set_ylim(bottom=floor / 2, top=2 * max(float(distance.max()), floor))
    axes.set_xlabel(f"time t  [{time_label}]")
    axes.set_ylabel("trace distance  ½‖ρ(t) − ρ_ss‖₁")
    axes.set_title(f"Approach to the steady state\n{_title(analysis)}", fontsize=10)
    axes.legend(fontsize=8)
    return figure


def _detailed_balance(plt, analysis: Analysis):
    """Pairs with at least MIN_EXPECTED jumps expected each way at the plotted beta (selected
    by their total count, which does not bias the ratio; sparser pairs would scatter the plot
    with biased logarithms of small counts)."""
    report = analysis.report
    entries = [e for e in report.get("detailed_balance") or [] if e["log_ratio"] is not None]
    fits = {tuple(f["baths"]): f for f in report["detailed_balance_test"]["fits"]}
    points, fitted_used, hidden = [], False, 0
    for e in entries:
        beta = e["beta"]
        if beta is None:
            beta = (fits.get(tuple(e["baths"])) or {}).get("beta")
            fitted_used = True
        if beta is None:
            continue
        factor = e["degeneracy_upper"] / e["degeneracy_lower"]
        ratio = factor * math.exp(-beta * e["frequency"])
        p0 = ratio * e["occupation_lower"] / (ratio * e["occupation_lower"] + e["occupation_upper"])
        if (e["count_up"] + e["count_down"]) * min(p0, 1 - p0) < MIN_EXPECTED:
            hidden += 1
            continue
        points.append((beta * e["frequency"], e["log_ratio"] - math.log(factor), e, beta))
    if not points:
        return None
    figure, axes = plt.subplots(figsize=(6.8, 5.2))
    for x, y, e, _ in points:
        color = f"C{e['bath'] % 10}" if e["bath"] is not None else "C9"
        axes.errorbar(x, y, yerr=e["log_ratio_stderr"], fmt="o", ms=4, color=color, capsize=2)
        if len(points) <= MAX_LABELLED_PAIRS:
            axes.annotate(f"{e['levels'][0]}↔{e['levels'][1]}", (x, y), textcoords="offset points",
                          xytext=(5, 4), fontsize=7, color="dimgray")
    line = np.linspace(0, 1.08 * max(p[0] for p in points), 50)
    axes.plot(line, -line, "k--", lw=1, label="KMS detailed balance (slope −1)")
    for bath in sorted({e["bath"] for _, _, e, _ in points if e["bath"] is not None}):
        name = report["result"]["baths"][bath]["name"]
        axes.plot([], [], "o", color=f"C{bath % 10}", label=f"bath {bath} ({name})")
    if any(e["bath"] is None for _, _, e, _ in points):
        axes.plot([], [], "o", color="C9", label="pairs coupled by several baths")
    if hidden:
        axes.plot([], [], " ", label=f"{hidden} sparse pairs not shown (< {MIN_EXPECTED} jumps "
                                     "expected each way)")
    betas = {round(b, 12) for *_, b in points}
    which = f"β = {betas.pop():.4g}" if len(betas) == 1 else "β of each pair's bath"
    source = "fitted to the rate ratios: no declared temperature" if fitted_used else "declared"
    axes.set_xlabel(f"β ΔE,  ΔE = E_upper − E_lower\n({which}, {source})")
    axes.set_ylabel("ln(Γ_up / Γ_down) − ln(b_upper / b_lower)")
    test = report["detailed_balance_test"]
    verdict = ""
    if test["p_value"] is not None:
        outcome = "pass" if test["passed"] else "FAIL"
        verdict = (f"\ntest of the {test['test']}: p = {test['p_value']:.3g} "
                   f"({outcome} at α = {test['alpha']:g})")
    axes.set_title(f"Detailed balance between level pairs (±1 standard error){verdict}",
                   fontsize=10)
    axes.legend(fontsize=8)
    return figure


def _heat(plt, analysis: Analysis):
    statistics = analysis.report.get("heat")
    if not statistics:
        return None
    baths = statistics["baths"][:MAX_HEAT_PANELS]
    energy_label, _ = unit_labels(analysis.result.energy_unit)
    columns = min(2, len(baths))
    rows = -(-len(baths) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 4.6 * rows), squeeze=False)
    n = analysis.result.ntraj
    for ax, b in zip(axes.ravel(), baths):
        h = b["histogram"]
        if h["kind"] == "discrete":
            values = np.array(h["values"])
            width = 0.8 * (np.min(np.diff(values)) if values.size > 1 else 1.0)
            ax.bar(values, np.array(h["counts"]) / n, width=width, color="C0", alpha=0.7,
                   label="trajectories")
        else:
            ax.stairs(np.array(h["counts"]) / n, np.array(h["edges"]), fill=True, color="C0",
                      alpha=0.7, label="trajectories")
        ax.axvline(b["mean"], color="C3", lw=1.5,
                   label=f"mean ⟨Q⟩ = {b['mean']:.3g} ± {b['stderr']:.2g}")
        if b["exact_mean"] is not None:
            ax.axvline(b["exact_mean"], color="k", ls="--", lw=1,
                       label=f"exact ⟨Q⟩ = {b['exact_mean']:.3g}")
        ax.set_xlabel(f"heat Q given to bath {b['bath']}  [{energy_label}]")
        ax.set_ylabel("fraction of trajectories")
        ax.set_title(f"bath {b['bath']} ({b['name']}): Var Q = {b['variance']:.3g} ± "
                     f"{b['variance_stderr']:.2g}", fontsize=10)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    for ax in axes.ravel()[len(baths):]:
        ax.set_visible(False)
    shown = "" if len(baths) == len(statistics["baths"]) else \
        f" (baths 0-{len(baths) - 1} of {len(statistics['baths'])}; all in report.json)"
    figure.suptitle(f"Heat per trajectory over t ∈ [0, {analysis.result.times[-1]:.4g}]{shown}\n"
                    f"{_title(analysis)}", fontsize=10)
    figure.tight_layout()
    return figure


def _statistics(analysis: Analysis) -> dict | None:
    return analysis.report.get("statistics")


def _heat_distribution(plt, analysis: Analysis):
    """Per bath: the heat histogram (probability per value for a discrete heat, density
    otherwise) and a Gaussian with the exact mean and variance when both are known, else with
    the sample ones; a Gaussian, not the exact distribution (the legend says so)."""
    block = _statistics(analysis)
    if not block:
        return None
    baths = block["heat"][:MAX_HEAT_PANELS]
    histograms = {b["bath"]: b["histogram"] for b in analysis.report["heat"]["baths"]}
    energy_label, _ = unit_labels(analysis.result.energy_unit)
    columns = min(2, len(baths))
    rows = -(-len(baths) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 4.6 * rows), squeeze=False)
    n = analysis.result.ntraj
    for ax, b in zip(axes.ravel(), baths):
        h = histograms[b["bath"]]
        if h["kind"] == "discrete":
            values = np.array(h["values"])
            spacing = float(np.min(np.diff(values))) if values.size > 1 else 1.0
            ax.bar(values, np.array(h["counts"]) / n, width=0.8 * spacing, color="C0", alpha=0.7,
                   label="trajectories (probability per value)")
            lo, hi, per = values.min() - spacing, values.max() + spacing, spacing
        else:
            edges = np.array(h["edges"])
            ax.stairs(np.array(h["counts"]) / (n * np.diff(edges)), edges, fill=True, color="C0",
                      alpha=0.7, label="trajectories (density)")
            lo, hi, per = edges[0], edges[-1], 1.0
        exact = b["mean_exact"] is not None and b["variance_exact"] is not None
        mean = b["mean_exact"] if exact else b["mean"]
        variance = b["variance_exact"] if exact else b["variance"]
        if variance is not None and variance > 0:
            x = np.linspace(lo, hi, 400)
            gauss = per * np.exp(-0.5 * (x - mean) ** 2 / variance) / math.sqrt(2 * math.pi
                                                                                  * variance)
            what = ("Gaussian with the exact mean and variance" if exact
                    else "Gaussian with the sample mean and variance (no exact cumulants)")
            ax.plot(x, gauss, color="k", lw=1.2, ls="--" if exact else ":",
                    label=f"{what}\n(not the exact distribution)")
        ax.set_xlabel(f"heat Q given to bath {b['bath']}  [{energy_label}]")
        ax.set_ylabel("probability" if h["kind"] == "discrete" else "probability density")
        z = "" if b["z_variance"] is None else f", z(Var) = {b['z_variance']:.2g}"
        ax.set_title(f"bath {b['bath']} ({b['name']}){z}", fontsize=10)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    for ax in axes.ravel()[len(baths):]:
        ax.set_visible(False)
    figure.suptitle(f"Heat distribution at t = {block['t_final']:.4g}\n{_title(analysis)}",
                    fontsize=10)
    figure.tight_layout()
    return figure


def _scgf(plt, analysis: Analysis):
    """theta_hat(s) with 1-sigma error bars where reliable; unreliable points as grey crosses
    (their value is not trusted); the exact SCGF at the same t, and its t -> inf limit, as lines."""
    block = _statistics(analysis)
    if not block or block["scgf"]["s"] is None:
        return None
    scgf = block["scgf"]
    raw = analysis.curves.get("statistics", {}).get("scgf_theta")
    s = np.array(scgf["s"], dtype=float)
    figure, axes = plt.subplots(figsize=(6.8, 4.8))
    for a in range(len(scgf["theta"])):
        color = f"C{a % 10}"
        ok = np.array(scgf["reliable"][a], dtype=bool)
        theta = np.array([np.nan if v is None else v for v in scgf["theta"][a]])
        error = np.array([np.nan if v is None else v for v in scgf["theta_stderr"][a]])
        axes.errorbar(s[ok], theta[ok], yerr=error[ok], fmt="o", ms=4, capsize=2, color=color,
                      label=f"bath {a}: (1/t) ln⟨exp(sQ)⟩, t = {scgf['t']:.3g}")
        if raw is not None and np.any(~ok):
            axes.plot(s[~ok], raw[a][~ok], "x", color="gray")
        for key, style, what in (("theta_exact", "-", f"exact at t = {scgf['t']:.3g}"),
                                 ("theta_limit", ":", "exact, t → ∞")):
            exact = np.array([np.nan if v is None else v for v in scgf[key][a]])
            if np.any(np.isfinite(exact)):
                axes.plot(s, exact, style, marker=".", color=color, lw=1,
                          label=f"bath {a}: {what} (lines join the grid points)")
    if raw is not None and not all(all(r) for r in scgf["reliable"]):
        axes.plot([], [], "x", color="gray",
                  label=f"unreliable: n_eff(w) or n_eff(w²) < {scgf['min_effective_samples']} "
                        "(value not trusted)")
    energy_label, _ = unit_labels(analysis.result.energy_unit)
    axes.set_xlabel(f"counting field s  [1/({energy_label})]")
    axes.set_ylabel("θ(s)  [rate]")
    axes.set_title(f"Scaled cumulant generating function of the heat\n{_title(analysis)}",
                   fontsize=10)
    axes.legend(fontsize=8)
    return figure


def _fluctuation_theorem(plt, analysis: Analysis):
    """ln(N_+/N_-) per tested bin pair against its expectation ln(sum p / sum (1-p)) under the
    detailed fluctuation theorem (about the bin's sigma), with the line of slope 1."""
    block = _statistics(analysis)
    dft = (block or {}).get("detailed_fluctuation_theorem") or {}
    bins = [b for b in dft.get("bins", []) if b["tested"] and b["log_ratio"] is not None]
    if not bins:
        return None
    x = np.array([b["expected_log_ratio"] for b in bins])
    y = np.array([b["log_ratio"] for b in bins])
    error = np.array([b["log_ratio_stderr"] for b in bins])
    figure, axes = plt.subplots(figsize=(6.4, 5.0))
    axes.errorbar(x, y, yerr=error, fmt="o", ms=4, capsize=2, color="C0",
                  label="trajectories (±1 Poisson standard error)")
    line = np.linspace(0, 1.05 * float(max(x.max(), y.max())), 50)
    axes.plot(line, line, "k--", lw=1, label="detailed fluctuation theorem (slope 1)")
    axes.set_xlabel("σ of the bin: ln Σp/Σ(1−p), p = 1/(1 + e^(−|σ|)) over its trajectories")
    axes.set_ylabel("ln P(σ) / P(−σ)")
    axes.set_title(f"Detailed fluctuation theorem ({dft['binning']}): χ² = {dft['chi2']:.3g} on "
                   f"{dft['dof']} dof, p = {dft['p_value']:.3g}\n{_title(analysis)}", fontsize=9)
    axes.legend(fontsize=8)
    return figure


def _waiting_times(plt, analysis: Analysis):
    """Histograms (densities) of the first-jump times <= t_final and of the intervals between
    jumps, against the exact conditional first-jump density and the window-corrected Palm
    density."""
    block = _statistics(analysis)
    if not block:
        return None
    curves = analysis.curves.get("statistics", {})
    times = analysis.result.times
    panels = [(name, block[key], curves.get(curve)) for name, key, curve in (
        ("first jump (w ≠ 0), given one before t_final", "first_jump", "first_jump_density"),
        ("interval between jumps (w ≠ 0)", "between_jumps", "interval_density"))
        if block[key].get("histogram") is not None]
    if not panels:
        return None
    _, time_label = unit_labels(analysis.result.energy_unit)
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.4), squeeze=False)
    for ax, (name, test, exact) in zip(axes.ravel(), panels):
        counts, edges = np.array(test["histogram"]["counts"]), np.array(test["histogram"]["edges"])
        total = max(int(counts.sum()), 1)
        ax.stairs(counts / (total * np.diff(edges)), edges, fill=True, color="C0", alpha=0.7,
                  label=f"trajectories ({total})")
        if exact is not None:
            ax.plot(times, exact, "k--", lw=1.2, label="exact" + (
                " (Palm × (t_final − τ))" if test is block["between_jumps"] else ""))
        p = test.get("p_value")
        ax.set_title(name + (f"\nKS p = {p:.3g}" if p is not None else ""), fontsize=9)
        ax.set_xlabel(f"time  [{time_label}]")
        ax.set_ylabel("probability density")
        ax.legend(fontsize=8)
    figure.suptitle(f"Waiting times\n{_title(analysis)}", fontsize=10)
    figure.tight_layout()
    return figure
