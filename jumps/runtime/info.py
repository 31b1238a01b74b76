"""``python -m jumps info``: a readable summary of a config's generator."""

from __future__ import annotations

from .. import generators
from ..generators.base import Diagnostics
from .budget import run_estimate
from .config import RunConfig

# A secular margin (frequency spacing / largest rate) below this is flagged: the secular
# approximation wants the spacing to be many linewidths.
SECULAR_MARGIN_OK = 10.0
# A weak-coupling ratio (largest total rate out of a state / slowest decay rate of a bath
# correlation function) above this is flagged: the Born-Markov approximation wants the system
# to change little over a bath's correlation time (docs/design.md, "Conventions").
WEAK_COUPLING_RATIO_OK = 0.1


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


def weak_coupling_record(generator) -> dict:
    """The weak-coupling figures of a generator, as ``run.json`` keeps them.

    ``max_escape_rate``: the largest total jump rate out of any state, ``Gamma``
    (:meth:`~jumps.generators.base.Unravelling.max_escape_rate`); ``bath_correlation_rate``:
    the smallest decay rate of a bath correlation function over the baths (each bath's
    :meth:`~jumps.physics.baths.Bath.correlation_rates`: its cutoff, ``2 pi T``), and
    ``bath_correlation_source``, what sets it; ``weak_coupling_ratio``: ``Gamma`` over it (want
    << 1). A figure not known (no bath with a cutoff or ``T > 0``) is None.
    """
    rate = generators.of(generator).max_escape_rate(generator)
    slowest = None
    for a, bath in enumerate(generator.baths):
        for name, value in bath.correlation_rates():
            if slowest is None or value < slowest[1]:
                slowest = (f"{name} of bath {a}", value)
    ratio = None if rate is None or slowest is None else float(rate) / slowest[1]
    return {"max_escape_rate": None if rate is None else float(rate),
            "bath_correlation_rate": None if slowest is None else slowest[1],
            "bath_correlation_source": None if slowest is None else slowest[0],
            "weak_coupling_ratio": ratio}


def weak_coupling_warning(record: dict) -> str | None:
    """The warning a questionable weak-coupling ratio deserves, from the figures of
    :func:`weak_coupling_record` (a generator's, or a result's ``run.json``), or None: one
    text for ``run``, ``exact``, the analysis report and the API."""
    ratio = record.get("weak_coupling_ratio")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
        return None
    if not ratio > WEAK_COUPLING_RATIO_OK:
        return None
    rate, slowest = record.get("max_escape_rate"), record.get("bath_correlation_rate")
    figures = (f" (largest total rate out of a state {rate:.3g} / slowest bath correlation "
               f"decay rate {slowest:.3g}, the {record.get('bath_correlation_source')})"
               if isinstance(rate, (int, float)) and isinstance(slowest, (int, float)) else "")
    return (f"weak-coupling ratio {ratio:.3g}{figures}: the weak-coupling (Born-Markov) "
            f"approximation is questionable (want << 1, flagged above "
            f"{WEAK_COUPLING_RATIO_OK:g})")


def validity_warnings(generator) -> tuple[dict, list[tuple[str, str]]]:
    """What ``run``, ``exact`` and the API say about a generator's approximations: the
    figures ``run.json`` keeps (its diagnostics record and :func:`weak_coupling_record`), and
    the warnings, as ``(kind, text)`` with kind ``"secular"`` or ``"weak coupling"``."""
    diagnostics = generators.of(generator).diagnostics(generator)
    weak = weak_coupling_record(generator)
    found = [("secular", secular_warning(diagnostics)), ("weak coupling",
                                                         weak_coupling_warning(weak))]
    return {**diagnostics.record, **weak}, [(kind, text) for kind, text in found if text]


def diagnostic_lines(diag: Diagnostics, thermal: bool, weak: dict | None = None) -> list[str]:
    """The diagnostics lines: secular margin (spacing / rate), the weak-coupling ratio (when
    ``weak``, :func:`weak_coupling_record`, is given) and the steady states."""
    margin = diag.secular_margin
    verdict = ("ok" if margin > SECULAR_MARGIN_OK
               else "WARNING: secular approximation questionable (want >> 1)")
    lines = [f"  {diag.spacing[0]:<38} {diag.spacing[1]:.6g}",
             f"  {diag.rate[0]:<38} {diag.rate[1]:.6g}",
             f"  {diag.margin_label:<38} {margin:.6g}   {verdict}"]
    if weak is not None:
        lines += _weak_coupling_lines(weak)
    label = f"  {'steady state':<38} "
    if diag.steady_states is None:
        lines.append(label + diag.undecided)
    elif diag.steady_states == 1:
        lines.append(label + "unique" + (" (the Gibbs state)" if thermal else ""))
    else:
        lines.append(label + f"NOT unique: {diag.steady_states} independent steady states "
                             f"({diag.why_many})")
    return lines + diag.notes


def _weak_coupling_lines(weak: dict) -> list[str]:
    label = f"  {'weak coupling (rate / bath decay rate)':<38} "
    ratio = weak["weak_coupling_ratio"]
    if ratio is None:
        return [label + "not decided (no bath with a cutoff or T > 0)"]
    verdict = ("ok" if ratio <= WEAK_COUPLING_RATIO_OK
               else "WARNING: weak-coupling approximation questionable (want << 1)")
    slowest = f"{weak['bath_correlation_rate']:.6g}   ({weak['bath_correlation_source']})"
    return [f"  {'largest total rate out of a state':<38} {weak['max_escape_rate']:.6g}",
            f"  {'slowest bath correlation decay rate':<38} {slowest}",
            label + f"{ratio:.6g}   {verdict}"]


def info_text(config: RunConfig, generator, built: dict) -> str:
    """The info report: spectrum, channels or rates, Gibbs populations, diagnostics.

    ``built`` is what :func:`jumps.runtime.build.build` returned about the build."""
    unravelling = generators.of(generator)
    dimension, body = unravelling.describe(generator)
    lines = _header(config, dimension, built, getattr(generator, "timings", None))
    lines += body
    lines += ["", "diagnostics"]
    lines += diagnostic_lines(unravelling.diagnostics(generator),
                              generator.common_beta() is not None,
                              weak_coupling_record(generator))
    lines += ["", "run (python -m jumps run: what it will take)"]
    lines += run_estimate(config, generator).lines()
    return "\n".join(lines)
