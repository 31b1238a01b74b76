"""The master-equation side of a comparison: the generator rebuilt from a result's config, the
exact solution (from a ``jumps exact`` directory or computed here for small d), the steady
state, the slowest relaxation rate and the exact mean heat per bath.

This is the one module of ``analysis`` that runs ``jumps`` physics; it never runs trajectories.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import expm_multiply

from jumps.errors import ConfigError
from jumps.generators.channels.generator import DaviesGenerator
from jumps.physics import exact
from jumps.runtime.build import build
from jumps.runtime.config import RunConfig, parse_config
from jumps.runtime.driver import initial_density
from jumps.runtime.plan import resolve_start
from jumps.runtime.statistics import counting_fields, exact_statistics

from .load import Result, check_same_run, load_result

# Above this dimension the exact solution is not computed on the fly (give --exact instead).
MAX_ON_THE_FLY_DIMENSION = 64
MAX_REBUILD_DIMENSION = 1024  # the channel generator of a 10-spin chain: ~20 s
# Above this dimension the Liouvillian spectrum (relaxation rate) is not computed densely.
MAX_SPECTRUM_DIMENSION = 24


class Unavailable(Exception):
    """A reference quantity cannot be had; the message says why (shown in the report)."""


@dataclass(frozen=True)
class System:
    """A result's config and its Davies generator, rebuilt."""

    config: RunConfig
    generator: DaviesGenerator


@dataclass(frozen=True)
class Reference:
    """The exact master-equation solution on the result's time grid.

    Attributes
    ----------
    source : str
        Where it comes from, for the report.
    populations : (T, d) eigenbasis populations
    expectations : dict name -> (T,) real
    rho : (T, d, d) complex in the user's basis, or None
    rho_diagonal : (T, d) in the user's basis, or None
    arrays : dict or None
        The exact references of trajectory statistics (:func:`jumps.exact_statistics` keys),
        when computed on the fly for a result with statistics records.
    """

    source: str
    populations: np.ndarray
    expectations: dict
    rho: np.ndarray | None
    rho_diagonal: np.ndarray | None
    arrays: dict | None = None


def rebuild(result: Result) -> System:
    """The config and generator of a result, from ``run.json`` (config as run, config path).

    Raises :class:`Unavailable` when the config is absent, no longer valid (a file it names
    moved) or describes another spectrum than the result's.
    """
    raw = result.meta.get("config")
    if not isinstance(raw, dict):
        raise Unavailable("run.json holds no config (a result saved from the Python API)")
    config_path = result.meta.get("config_path") or ""
    base = Path(config_path).parent if config_path else result.path
    dimension = int(result.meta.get("dimension", 0))
    if dimension > MAX_REBUILD_DIMENSION:
        raise Unavailable(f"d = {dimension} > {MAX_REBUILD_DIMENSION}: the generator is not rebuilt "
                          "for the analysis")
    try:
        config = parse_config(raw, base=base, source=config_path)
        generator, _ = build(config, "channels")
    except ConfigError as error:
        raise Unavailable(f"cannot rebuild the generator from the config ({error.field}: "
                          f"{error.reason})") from None
    scale = 1.0 + float(np.max(np.abs(result.energies)))
    if generator.energies.shape != result.energies.shape or not np.allclose(
            generator.energies, result.energies, rtol=0, atol=1e-8 * scale):
        raise Unavailable("the rebuilt generator has another spectrum than the result (did a "
                          "file the config names change?)")
    if not result.meta.get("lists_every_channel", True):
        return System(config, generator)  # the result lists only the channels that jumped
    rates = result["channel_rate"]
    floor = 1e-14 * max(1.0, float(rates.max(initial=0.0)))
    if generator.channel_rate.shape != rates.shape or not np.allclose(
            generator.channel_rate, rates, rtol=1e-9, atol=floor):
        raise Unavailable("the rebuilt generator has other channel rates than the result (did a "
                          "file the config names change?)")
    return System(config, generator)


def from_directory(result: Result, path: str | Path) -> Reference:
    """The reference from a ``python -m jumps exact`` directory (checked against ``result``)."""
    other = load_result(path)
    if other.method != "exact":
        raise ConfigError(f"--exact {other.path}",
                          "not an exact result (made by python -m jumps exact)")
    check_same_run(result, other)
    expectations = {name: other[f"expect_{name}"] for name in other.observable_names}
    return Reference(source=f"exact result {other.path}", populations=other["populations"],
                     expectations=expectations, rho=other.arrays.get("rho"),
                     rho_diagonal=other.arrays.get("rho_diagonal"))


def on_the_fly(result: Result, system: System) -> Reference:
    """Solve the master equation now, on the result's time grid (small d only)."""
    g, config = system.generator, system.config
    if g.dimension > MAX_ON_THE_FLY_DIMENSION:
        raise Unavailable(f"d = {g.dimension} > {MAX_ON_THE_FLY_DIMENSION}: not solved on the fly "
                          "(run python -m jumps exact and pass --exact)")
    rho0 = _initial_density(system)
    try:
        solution = exact.evolve(g, rho0, result.times)
    except ValueError as error:
        raise Unavailable(f"exact solver: {error}") from None
    expectations = {name: np.real(solution.expectation(g, op))
                    for name, op in config.observables.items()}
    rho_user = solution.rho_user(g) if (result.has("rho") or result.has("rho_diagonal")) else None
    source = config.source or "the result's config"
    return Reference(source=f"computed on the fly from {source}",
                     populations=solution.populations, expectations=expectations,
                     rho=rho_user if result.has("rho") else None,
                     rho_diagonal=np.real(np.einsum("tii->ti", rho_user))
                     if result.has("rho_diagonal") else None,
                     arrays=_statistics_references(result, system))


def _statistics_references(result: Result, system: System) -> dict | None:
    """The exact references of the trajectory statistics (None without records, or when the
    master equation cannot give them: the reason is then the report's business)."""
    if not result.has("first_jump_time"):
        return None
    config = system.config
    try:
        state = resolve_start(system.generator, config.initial_state)
        arrays, _ = exact_statistics(system.generator, state, result.times,
                                     counting_fields(system.generator, config.counting_s))
    except ConfigError:
        return None
    return arrays


def _initial_density(system: System) -> np.ndarray:
    try:
        return initial_density(system.config, system.generator)
    except ConfigError as error:
        raise Unavailable(f"no initial density matrix ({error.reason})") from None


def steady_state(generator: DaviesGenerator) -> np.ndarray:
    """The unique steady state in the eigenbasis; :class:`Unavailable` if it is not unique."""
    states = exact.steady_states(generator)
    if len(states) != 1:
        raise Unavailable(f"{len(states)} independent steady states: no unique reference")
    rho = states[0]
    return 0.5 * (rho + rho.conj().T)


def slowest_relaxation_rate(generator: DaviesGenerator) -> float:
    """The Liouvillian spectral gap: the smallest ``-Re(lambda)`` over its non-zero eigenvalues.

    ``1/gap`` is the slowest relaxation time of the master equation (any observable's approach
    to the steady state ends as ``exp(-gap t)`` unless the slowest mode is not excited).
    """
    if generator.dimension > MAX_SPECTRUM_DIMENSION:
        raise Unavailable(f"d = {generator.dimension} > {MAX_SPECTRUM_DIMENSION}: "
                          "spectrum not computed")
    values = np.linalg.eigvals(exact.liouvillian(generator).toarray())
    decay = -values.real
    scale = max(float(np.max(np.abs(values))), 1e-300)
    positive = decay[decay > 1e-9 * scale]
    if positive.size == 0:
        raise Unavailable("no decaying mode")
    return float(positive.min())


def exact_mean_heat(system: System, t_final: float) -> np.ndarray:
    """Exact mean heat handed to each bath during ``[0, t_final]``.

    ``<Q_a> = sum_{c in a} w_c gamma_c Tr(A_c^dag A_c X)`` with ``X = integral_0^T rho(t) dt``,
    the jump rate of channel ``c`` times the energy ``w_c`` each jump gives bath ``a``
    (docs/design.md, "Conventions"). ``X`` comes from one exponential of the augmented generator
    ``[[L, 0], [1, 0]]`` acting on ``(rho0, 0)``.
    """
    g = system.generator
    if g.dimension > MAX_ON_THE_FLY_DIMENSION:
        raise Unavailable(f"d = {g.dimension} > {MAX_ON_THE_FLY_DIMENSION}: "
                          "exact heat not computed")
    d = g.dimension
    L = exact.liouvillian(g)
    n = d * d
    augmented = sp.bmat([[L, None], [sp.identity(n, format="csr"), sp.csr_matrix((n, n))]]).tocsr()
    rho0 = g.to_energy_basis(_initial_density(system))
    start = np.concatenate([rho0.ravel(), np.zeros(n, dtype=complex)])
    integral = expm_multiply(augmented * t_final, start)[n:].reshape(d, d)
    # Tr(A_c^dag A_c X) = sum_n (A_c X A_c^dag)_nn for all channels at once: one sparse matrix
    # B whose rows are the pairs (channel c, target n), B[(c, n), m] = <n|A_c|m>.
    channel = g.entry_channel
    keys, key_of = np.unique(channel * d + g.entry_row, return_inverse=True)
    B = sp.csr_matrix((g.entry_value, (key_of, g.entry_col)), shape=(keys.size, d))
    per_row = np.real(np.asarray(B.conj().multiply(B @ integral).sum(axis=1))).ravel()
    key_channel = keys // d
    weight = g.channel_frequency[key_channel] * g.channel_rate[key_channel] * per_row
    n_baths = len(g.baths) if g.baths else int(g.channel_bath.max()) + 1
    return np.bincount(g.channel_bath[key_channel], weights=weight, minlength=n_baths)
