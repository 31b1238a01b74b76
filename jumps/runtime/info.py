"""``python -m jumps info``: a readable summary of a config's generator."""

from __future__ import annotations

from .. import generators
from ..generators.base import Diagnostics
from .budget import run_estimate
from .config import RunConfig

# A secular margin (frequency spacing / largest rate) below this is flagged: the secular
# approximation wants the spacing to be many linewidths.
SECULAR_MARGIN_OK = 10.0


def _header(config: RunConfig, dimension: str, built: dict, timings: dict | None) -> list[str]:
    lines = [(f"model            {config.model.name}  (energy unit: {config.model.energy_unit}; "
             "hbar = k_B = 1)"),
             f"dimension        {dimension}",
             f"baths            {len(config.baths)}"]
    for a, (bath, name) in enumerate(zip(config.baths, config.coupling_names)):
        temp = "non-thermal rates" if not bath.is_thermal else f"beta = {bath.beta:.6g}"
        params = ", ".join(f"{k} = {v:.6g}" if isinstance(v, float) else f"{k} = {v}"
                           for k, v in bath.params.items() if k != "table_sha")
        lines.append(f"  [{a}] {bath.kind:<14} coupling {name:<12} {temp}; {params}; "
                     f"Lamb shift {'on' if bath.lamb_shift_enabled and config.lamb_shift else 'off'}")
    source = f"loaded from the cache {built['cached']}" if built.get("cached") else "built"
    lines.append(f"build time       {built['build_seconds']:.3f} s ({built['kind']} generator, {source})")
    if timings and not built.get("cached"):
        lines.append("                 " + ", ".join(f"{k} {v:.3g} s" for k, v in timings.items()))
    return lines


def secular_warning(diag: Diagnostics) -> str | None:
    """The warning a questionable secular margin deserves (``run``, ``exact``, the API), or
    None."""
    margin = diag.secular_margin
    if margin > SECULAR_MARGIN_OK:
        return None
    return (f"secular margin {margin:.3g} ({diag.spacing[0]} {diag.spacing[1]:.3g} / "
            f"{diag.rate[0]} {diag.rate[1]:.3g}): the secular approximation is questionable "
            f"(want >> 1, flagged below {SECULAR_MARGIN_OK:g})")


def diagnostic_lines(diag: Diagnostics, thermal: bool) -> list[str]:
    """The diagnostics lines: secular margin (spacing / rate) and the steady states."""
    margin = diag.secular_margin
    verdict = ("ok" if margin > SECULAR_MARGIN_OK
               else "WARNING: secular approximation questionable (want >> 1)")
    lines = [f"  {diag.spacing[0]:<38} {diag.spacing[1]:.6g}",
             f"  {diag.rate[0]:<38} {diag.rate[1]:.6g}",
             f"  {diag.margin_label:<38} {margin:.6g}   {verdict}"]
    label = f"  {'steady state':<38} "
    if diag.steady_states is None:
        lines.append(label + diag.undecided)
    elif diag.steady_states == 1:
        lines.append(label + "unique" + (" (the Gibbs state)" if thermal else ""))
    else:
        lines.append(label + f"NOT unique: {diag.steady_states} independent steady states "
                             f"({diag.why_many})")
    return lines + diag.notes


def info_text(config: RunConfig, generator, built: dict) -> str:
    """The info report: spectrum, channels or rates, Gibbs populations, diagnostics.

    ``built`` is what :func:`jumps.runtime.build.build` returned about the build."""
    unravelling = generators.of(generator)
    dimension, body = unravelling.describe(generator)
    lines = _header(config, dimension, built, getattr(generator, "timings", None))
    lines += body
    lines += ["", "diagnostics"]
    lines += diagnostic_lines(unravelling.diagnostics(generator),
                              generator.common_beta() is not None)
    lines += ["", "run (python -m jumps run: what it will take)"]
    lines += run_estimate(config, generator).lines()
    return "\n".join(lines)
