"""``python -m jumps info``: a readable summary of a config's generator."""

from __future__ import annotations

import numpy as np

from .config import RunConfig
from .davies import diagnostics
from .rates import RateGenerator

MAX_ROWS = 12


def _rows(items: list[str]) -> list[str]:
    if len(items) <= MAX_ROWS:
        return items
    half = MAX_ROWS // 2
    return items[:half] + [f"  ... ({len(items) - MAX_ROWS} more)"] + items[-half:]


def _header(config: RunConfig, g, built: dict) -> list[str]:
    lines = [(f"model            {config.model.name}  (energy unit: {config.model.energy_unit}; "
             "hbar = k_B = 1)")]
    if isinstance(g, RateGenerator):
        lines.append(f"dimension        {g.dimension}  (non-degenerate: smallest level spacing "
                     f"{g.min_level_spacing:.3g})")
    else:
        lines.append(f"dimension        {g.dimension}  ({g.n_levels} levels, largest degeneracy "
                     f"{g.level_sizes.max()})")
    lines.append(f"baths            {len(config.baths)}")
    for a, (bath, name) in enumerate(zip(config.baths, config.coupling_names)):
        temp = "non-thermal rates" if not bath.is_thermal else f"beta = {bath.beta:.6g}"
        params = ", ".join(f"{k} = {v:.6g}" if isinstance(v, float) else f"{k} = {v}"
                           for k, v in bath.params.items() if k != "table_sha")
        lines.append(f"  [{a}] {bath.kind:<14} coupling {name:<12} {temp}; {params}; "
                     f"Lamb shift {'on' if bath.lamb_shift_enabled and config.lamb_shift else 'off'}")
    source = f"loaded from the cache {built['cached']}" if built.get("cached") else "built"
    lines.append(f"build time       {built['build_seconds']:.3f} s ({built['kind']} generator, {source})")
    timings = getattr(g, "timings", None)
    if timings and not built.get("cached"):
        lines.append("                 " + ", ".join(f"{k} {v:.3g} s" for k, v in timings.items()))
    return lines


def _split_text(g: RateGenerator) -> str:
    if g.n_baths == 1:
        return "(none: one bath)"
    if g.set_size == 1:
        return "in 16 bits"
    if g.set_size >= g.n_baths:
        return "in 8 bits"
    return (f"in {g.n_sets} sets of {g.set_size} baths (16 bits per set, 8 bits per bath "
            "in a set)")


def _rates_info(config: RunConfig, g: RateGenerator, built: dict) -> str:
    lines = _header(config, g, built)
    lines += ["", "spectrum (eigenstates)",
              "  level   energy           total rate out    Lamb shift" +
              ("       Gibbs population" if g.common_beta() is not None else "")]
    gibbs = g.gibbs_populations() if g.common_beta() is not None else None
    items = []
    for m in range(g.dimension):
        row = f"  {m:>5}   {g.energies[m]:>+14.8g}   {g.level_rate[m]:>15.8e}   {g.lamb_shift[m]:>+12.5e}"
        if gibbs is not None:
            row += f"   {gibbs[m]:.6e}"
        items.append(row)
    lines += _rows(items)
    lines += ["", (f"transitions      {g.n_baths} x {g.dimension}^2 (bath, from, to), as alias tables; "
              f"bath split {_split_text(g)}"),
              "", "diagnostics"]
    largest = float(g.level_rate.max())
    lines += _diagnostics(("smallest level spacing", g.min_level_spacing),
                          ("largest total rate out of a level", largest),
                          "level spacing / rate", g.components, gibbs is not None,
                          "not decided (directed jump graph)",
                          "classes of eigenstates not connected by any rate")
    return "\n".join(lines)


def _diagnostics(spacing: tuple[str, float], rate: tuple[str, float], margin_label: str,
                 steady_states: int | None, thermal: bool, undecided: str, why_many: str) -> list[str]:
    """The diagnostics lines: secular margin (spacing / rate) and the steady states."""
    margin = spacing[1] / rate[1] if rate[1] > 0 else np.inf
    verdict = "ok" if margin > 10 else "WARNING: secular approximation questionable (want >> 1)"
    lines = [f"  {spacing[0]:<38} {spacing[1]:.6g}", f"  {rate[0]:<38} {rate[1]:.6g}",
             f"  {margin_label:<38} {margin:.6g}   {verdict}"]
    label = f"  {'steady state':<38} "
    if steady_states is None:
        lines.append(label + undecided)
    elif steady_states == 1:
        lines.append(label + "unique" + (" (the Gibbs state)" if thermal else ""))
    else:
        lines.append(label + f"NOT unique: {steady_states} independent steady states ({why_many})")
    return lines


def info_text(config: RunConfig, generator, built: dict) -> str:
    """The info report: spectrum, channels and rates, Gibbs populations, diagnostics.

    ``built`` is what :func:`jumps.build.build` returned about the build."""
    if isinstance(generator, RateGenerator):
        return _rates_info(config, generator, built)
    g = generator
    diag = diagnostics(g)
    lines = _header(config, g, built)
    lines.append("")
    beta = g.common_beta()
    gibbs = g.gibbs_populations() if beta is not None else None
    header = "  level   energy          degeneracy" + ("   Gibbs population" if gibbs is not None else "")
    lines += ["spectrum (levels)", header]
    items = []
    for k in range(g.n_levels):
        lo, hi = g.level_ptr[k], g.level_ptr[k + 1]
        row = f"  {k:>5}   {g.energies[lo]:>+14.8g}  {hi - lo:>10}"
        if gibbs is not None:
            row += f"   {gibbs[lo:hi].sum():.6e}"
        items.append(row)
    lines += _rows(items)
    lines.append("")
    frequencies = np.unique(g.channel_frequency)
    lines.append(f"Bohr frequencies {frequencies.size} distinct; channels (bath, w) {g.n_channels}; "
                 f"non-zero matrix elements {g.entry_row.size}")
    lines.append("  bath   w (emission > 0)    gamma(w)          S(w)              elements")
    order = np.lexsort((-g.channel_rate, g.channel_bath))
    items = [f"  {g.channel_bath[c]:>4}   {g.channel_frequency[c]:>+15.8g}   {g.channel_rate[c]:>15.8e}"
             f"   {g.channel_lamb_shift[c]:>+15.8e}   {g.entry_ptr[c + 1] - g.entry_ptr[c]:>8}"
             for c in order]
    lines += _rows(items)
    lines.append("")
    lines.append("diagnostics")
    lines += _diagnostics(("smallest spacing of Bohr frequencies", diag.min_frequency_spacing),
                          ("largest rate", diag.max_rate), "secular margin (spacing / rate)",
                          diag.steady_state_dimension, beta is not None,
                          "not decided (degenerate and large)",
                          "conserved quantity or dark states")
    if np.any(g.dropped_weight > 0):
        lines.append(f"  dropped matrix-element weight          {g.dropped_weight.max():.3e} "
                     f"(elements < {g.drop_tol:g} x max)")
    return "\n".join(lines)
