"""Thermal baths: spectral densities, KMS transition rates and Lamb shifts.

Conventions (hbar = k_B = 1; docs/design.md, "Conventions"):

- ``J(w)`` is given for ``w >= 0`` and extended as an odd function, ``J(-w) = -J(w)``;
  ``J(w) = sum_k g_k^2 delta(w - w_k)``, so the reorganisation energy is
  ``lambda = integral_0^inf J(w)/w dw``.
- ``gamma(w) = 2 pi J(w) / (1 - exp(-beta w))``. A positive ``w`` is *emission* into the bath
  (the system loses ``w``); ``w < 0`` is absorption; ``w = 0`` is pure dephasing with the limit
  ``gamma(0) = 2 pi J'(0) / beta``. ``gamma(-w) = exp(-beta w) gamma(w)`` holds to rounding
  because the absorption rate is computed from the emission rate.
- ``S(w) = (1/2pi) PV integral gamma(w') / (w - w') dw'`` over the real line (Lamb shift).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..core.chebyshev import chebyshev_many
from ..errors import ConfigError

ArrayFunc = Callable[[np.ndarray], np.ndarray]


def _tanh_sinh_nodes(step: float, t_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Tanh-sinh nodes ``x`` in (0, 1) and weights for integral_0^1 f(x) dx."""
    t = np.arange(-t_max, t_max + step / 2, step)
    u = 0.5 * np.pi * np.sinh(t)
    x = 0.5 * (1.0 + np.tanh(u))
    weights = step * 0.25 * np.pi * np.cosh(t) / np.cosh(u) ** 2
    keep = (x > 0.0) & (x < 1.0) & (weights > 0.0)
    return x[keep], weights[keep]


def _exp_sinh_nodes(step: float, t_min: float, t_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Exp-sinh nodes ``x`` in (0, inf) and weights for integral_0^inf f(x) dx."""
    t = np.arange(t_min, t_max + step / 2, step)
    x = np.exp(0.5 * np.pi * np.sinh(t))
    weights = step * 0.5 * np.pi * np.cosh(t) * x
    return x, weights


# from_callable checks that J(w)/w settles as w -> 0: at 1e-3 of the difference step it must not
# exceed its value at the step by more than 1% (J ~ w^s: a factor 1e-3^(s - 1), 1.007 at
# s = 0.999; it falls for s > 1, where J'(0) = 0).
SLOPE_CHECK_FACTOR = 1e-3
SLOPE_CHECK_TOLERANCE = 0.01
# Double-exponential rules: exponentially convergent for integrands analytic inside the
# interval, whatever they do at the end points (kinks of J at w = 0, the beta = inf step,
# algebraic or exponential tails). Step 1/32 gives ~1e-12 relative on the test baths.
_FINITE_X, _FINITE_W = _tanh_sinh_nodes(1.0 / 32.0, 3.2)
_HALF_X, _HALF_W = _exp_sinh_nodes(1.0 / 32.0, -4.0, 3.6)


@dataclass(frozen=True)
class Bath:
    """A bosonic bath, or a non-thermal noise source given by its rates.

    Build one with :func:`ohmic`, :func:`drude_lorentz`, :func:`tabulated`,
    :func:`from_callable` or :func:`from_rates`.

    Attributes
    ----------
    kind : str
        ``"ohmic"``, ``"drude_lorentz"``, ``"tabulated"``, ``"callable"`` or ``"rates"``.
    beta : float
        Inverse temperature (``np.inf`` for zero temperature; ``nan`` for ``"rates"``).
    spectral_density_positive : callable or None
        ``J(w)`` for ``w >= 0``, vectorised. None for a bath given by its rates.
    slope_at_zero : float
        ``lim_{w -> 0+} J(w) / w``, for the dephasing rate ``gamma(0)``.
    scale : float
        A frequency scale of the bath (the cutoff), used by the Lamb-shift quadrature.
    rate_function : callable or None
        ``gamma(w)`` on both signs for ``kind == "rates"`` (no KMS imposed).
    lamb_shift_enabled : bool
        Whether the generator includes this bath's Lamb shift.
    params : dict
        The parameters it was built from, for reports.
    """

    kind: str
    beta: float
    spectral_density_positive: ArrayFunc | None
    slope_at_zero: float
    scale: float
    rate_function: ArrayFunc | None = None
    lamb_shift_enabled: bool = True
    params: dict = field(default_factory=dict)

    @property
    def temperature(self) -> float:
        """Temperature ``1/beta`` (0 at ``beta = inf``)."""
        return 0.0 if np.isinf(self.beta) else 1.0 / self.beta

    @property
    def is_thermal(self) -> bool:
        """True when the rates obey KMS at ``beta`` by construction."""
        return self.kind != "rates"

    def spectral_density(self, w: np.ndarray) -> np.ndarray:
        """``J(w)`` on both signs of ``w`` (odd extension)."""
        if self.spectral_density_positive is None:
            raise ValueError("a bath given by its rates has no spectral density")
        w = np.asarray(w, dtype=float)
        return np.sign(w) * self.spectral_density_positive(np.abs(w))

    def rates(self, w: np.ndarray) -> np.ndarray:
        """Transition rates ``gamma(w)``; ``w > 0`` emission, ``w < 0`` absorption.

        KMS ``gamma(-w) = exp(-beta w) gamma(w)`` is exact: the absorption rate is the emission
        rate times the Boltzmann factor.
        """
        w = np.asarray(w, dtype=float)
        if self.rate_function is not None:
            return np.asarray(self.rate_function(w), dtype=float)
        beta = self.beta
        magnitude = np.abs(w)
        j = self.spectral_density_positive(magnitude)
        with np.errstate(divide="ignore", invalid="ignore"):
            if np.isinf(beta):
                emission = 2.0 * np.pi * j
                boltzmann = np.zeros_like(magnitude)
            else:
                emission = 2.0 * np.pi * j / (-np.expm1(-beta * magnitude))
                boltzmann = np.exp(-beta * magnitude)
        gamma = np.where(w > 0, emission, boltzmann * emission)
        zero_rate = 0.0 if np.isinf(beta) else 2.0 * np.pi * self.slope_at_zero / beta
        return np.where(w == 0, zero_rate, gamma)

    def correlation_rates(self) -> list[tuple[str, float]]:
        """The known rates at which the bath's correlation function decays, by what sets them:
        the ``cutoff`` of a spectral density that has one (Ohmic, Drude-Lorentz) and ``2 pi T``
        (the first Matsubara frequency) of a thermal bath at ``T > 0``. Empty when neither is
        known (a tabulated or callable ``J`` at ``T = 0``, or a bath given by its rates): the
        weak-coupling check (:func:`jumps.runtime.info.weak_coupling_record`) then leaves the
        bath out.

        Examples
        --------
        >>> ohmic(0.01, 5.0, temperature=0.5).correlation_rates()
        [('cutoff', 5.0), ('2 pi T', 3.141592653589793)]
        """
        rates = []
        cutoff = self.params.get("cutoff")
        if cutoff is not None:
            rates.append(("cutoff", float(cutoff)))
        if self.is_thermal and 0 < self.beta < np.inf:
            rates.append(("2 pi T", 2.0 * np.pi / self.beta))
        return rates

    @property
    def fingerprint(self) -> tuple | None:
        """Everything the rates and Lamb shift depend on (for the generator cache), or None
        for a bath defined by a Python function."""
        if self.kind == "callable" or (self.kind == "rates" and "table_sha" not in self.params):
            return None
        return (self.kind, self.beta, self.lamb_shift_enabled, tuple(sorted(self.params.items())))

    @property
    def key(self) -> tuple:
        """Equal keys mean equal rates and Lamb shifts (lets a generator compute them once)."""
        if self.kind in ("ohmic", "drude_lorentz"):
            return (self.kind, self.beta, self.lamb_shift_enabled, tuple(sorted(self.params.items())))
        return ("object", id(self))

    def lamb_shift(self, w: np.ndarray, table_above: int = 256) -> np.ndarray:
        """Lamb shift ``S(w) = (1/2pi) PV integral gamma(w') / (w - w') dw'``.

        The principal value is taken by pairing ``w - s`` with ``w + s``:
        ``S(w) = (1/2pi) integral_0^inf [gamma(w - s) - gamma(w + s)] / s ds``, a regular
        integral, split at ``s = |w|`` (where the rate may have a kink at zero temperature) and
        done with double-exponential quadrature: about 1e-12 relative against the closed forms
        in the tests (for smooth J; a tabulated J's kinks limit it to ~1e-6).

        With more than ``table_above`` distinct frequencies, ``S`` is interpolated from an
        adaptive piecewise-Chebyshev table of the quadrature (:class:`LambShiftTable`), whose
        error is below ``1e-10 * max|S|`` at its check points.
        """
        w = np.atleast_1d(np.asarray(w, dtype=float))
        unique, inverse = np.unique(w, return_inverse=True)
        if unique.size <= table_above:
            return self._lamb_shift_direct(unique)[inverse].reshape(w.shape)
        table = LambShiftTable(self._lamb_shift_direct, unique[0], unique[-1])
        values = table(unique)
        exact_zero = unique == 0.0
        values[exact_zero] = self._lamb_shift_direct(unique[exact_zero])
        return values[inverse].reshape(w.shape)

    def _lamb_shift_direct(self, w: np.ndarray, chunk: int = 2048) -> np.ndarray:
        out = np.empty_like(w)
        for start in range(0, w.size, chunk):
            out[start:start + chunk] = self._lamb_shift_chunk(w[start:start + chunk])
        return out

    def _lamb_shift_chunk(self, w: np.ndarray) -> np.ndarray:
        edge = np.abs(w)[:, None]
        # [0, |w|]: tanh-sinh; [|w|, inf): exp-sinh scaled to the bath's own frequency scale.
        s_inner = edge * _FINITE_X[None, :]
        weights_inner = edge * _FINITE_W[None, :]
        s_outer = edge + self.scale * _HALF_X[None, :]
        weights_outer = self.scale * np.broadcast_to(_HALF_W, s_outer.shape)
        total = np.zeros(w.size)
        for s, weights in ((s_inner, weights_inner), (s_outer, weights_outer)):
            difference = self.rates(w[:, None] - s) - self.rates(w[:, None] + s)
            with np.errstate(invalid="ignore", divide="ignore"):
                integrand = np.where(s > 0, difference / s, 0.0)
            total += np.sum(weights * integrand, axis=1)
        return total / (2.0 * np.pi)


class LambShiftTable:
    """Adaptive piecewise-Chebyshev interpolation of a smooth function on ``[low, high]``.

    Panels (split at 0, where ``S`` may have a ``w log|w|`` kink at zero temperature) carry
    degree-``DEGREE`` Chebyshev interpolants; a panel is halved until the interpolant matches
    the function at points between its nodes to ``TOLERANCE * max|f|`` (``relative``: to
    ``TOLERANCE`` times the largest ``|f|`` on that panel, for functions such as rates that
    decay by orders of magnitude). All evaluations of a refinement round are made in one
    vectorised call. ``edges`` and ``coefficients`` are plain arrays (the Numba kernels of the
    large-system path evaluate rate tables with them).
    """

    DEGREE = 24
    TOLERANCE = 1e-10
    # Halvings of a panel at most (60 take any interval below double resolution), and the
    # panel width, relative to its position, at which refinement stops whatever the error.
    MAX_REFINEMENTS = 60
    MIN_RELATIVE_WIDTH = 1e-13
    # An empty interval (low == high) is widened by this much on each side to one panel.
    PAD = 1e-12

    def __init__(self, function: ArrayFunc, low: float, high: float, relative: bool = False):
        n = self.DEGREE
        self._nodes = np.cos(np.pi * (np.arange(n) + 0.5) / n)            # in (-1, 1)
        self._checks = np.cos(np.pi * np.arange(1, n) / n)                # between nodes
        edges = [low, high] if not low < 0 < high else [low, 0.0, high]
        todo = [(a, b) for a, b in itertools.pairwise(edges) if b > a]
        if not todo:
            todo = [(low - self.PAD, high + self.PAD)]
        accepted: list[tuple[float, float, np.ndarray]] = []
        scale = 0.0
        for _ in range(self.MAX_REFINEMENTS):
            if not todo:
                break
            a = np.array([p[0] for p in todo])[:, None]
            b = np.array([p[1] for p in todo])[:, None]
            half, mid = 0.5 * (b - a), 0.5 * (b + a)
            points = np.concatenate([mid + half * self._nodes, mid + half * self._checks], axis=1)
            values = function(points.ravel()).reshape(points.shape)
            scale = max(scale, float(np.max(np.abs(values))))
            bound = np.max(np.abs(values), axis=1) if relative else np.full(len(todo), scale)
            coefficients = np.polynomial.chebyshev.chebfit(self._nodes, values[:, :n].T, n - 1).T
            interpolated = self._clenshaw(coefficients, np.broadcast_to(self._checks, (len(todo), n - 1)))
            error = np.max(np.abs(interpolated - values[:, n:]), axis=1)
            good = ((error <= self.TOLERANCE * np.maximum(bound, 1e-300))
                    | (half[:, 0] < self.MIN_RELATIVE_WIDTH * (1 + np.abs(mid[:, 0]))))
            next_todo = []
            for i, (lo, hi) in enumerate(todo):
                if good[i]:
                    accepted.append((lo, hi, coefficients[i]))
                else:
                    centre = 0.5 * (lo + hi)
                    next_todo += [(lo, centre), (centre, hi)]
            todo = next_todo
        accepted.sort(key=lambda panel: panel[0])
        self.edges = np.array([p[0] for p in accepted] + [accepted[-1][1]])
        self.coefficients = np.array([p[2] for p in accepted])

    @staticmethod
    def _clenshaw(coefficients: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Evaluate Chebyshev series row-wise: ``coefficients (P, n)`` at ``x (P, m)``."""
        b1 = np.zeros_like(x)
        b2 = np.zeros_like(x)
        for k in range(coefficients.shape[1] - 1, 0, -1):
            b1, b2 = 2.0 * x * b1 - b2 + coefficients[:, k:k + 1], b1
        return x * b1 - b2 + coefficients[:, :1]

    def __call__(self, w: np.ndarray) -> np.ndarray:
        w = np.ascontiguousarray(w, dtype=float)
        out = np.empty(w.size)
        chebyshev_many(self.edges[:-1], self.edges[1:], self.coefficients, w.ravel(), out)
        return out.reshape(w.shape)


def _sha(*arrays: np.ndarray) -> str:
    """A short hash of table contents (a tabulated bath's identity in the generator cache)."""
    import hashlib

    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype=float).tobytes())
    return digest.hexdigest()[:16]


def _positive(value: float, name: str, allow_zero: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(name, f"must be a number, got {value!r}") from None
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = "non-negative" if allow_zero else "positive"
        raise ConfigError(name, f"must be a finite {bound} number, got {value!r}")
    return value


# A bath whose coupling strength is zero never makes a jump: it is refused like a coupling
# operator that vanishes (docs/design.md, "Invariants"), rather than run as a bath with no
# channels (the user meant another value, or no such bath).
NEVER_ACTS = "this bath would never act (remove it, or give a positive value)"


def _strength(value: float, name: str) -> float:
    """A coupling strength: finite and positive (zero refused with NEVER_ACTS)."""
    value = _positive(value, name, allow_zero=True)
    if value == 0:
        raise ConfigError(name, "is zero: " + NEVER_ACTS)
    return value


def _beta(beta: float | None, temperature: float | None = None) -> float:
    """The inverse temperature from exactly one of ``beta`` and ``temperature``
    (``temperature = 0`` is ``beta = inf``)."""
    if (beta is None) == (temperature is None):
        given = "both were given" if beta is not None else "neither was given"
        raise ConfigError("beta", f"give exactly one of beta and temperature (beta = "
                                  f"1/temperature, k_B = 1): {given}")
    if temperature is not None:
        try:
            temperature = float(temperature)
        except (TypeError, ValueError):
            raise ConfigError("temperature", f"must be a number, got {temperature!r}") from None
        if not temperature >= 0 or np.isinf(temperature):
            raise ConfigError("temperature", f"must be finite and >= 0 (0: zero temperature), "
                                             f"got {temperature!r}")
        return np.inf if temperature == 0 else 1.0 / temperature
    try:
        beta = float(beta)
    except (TypeError, ValueError):
        raise ConfigError("beta", f"must be a number, got {beta!r}") from None
    if np.isnan(beta) or beta <= 0:
        raise ConfigError("beta", f"must be positive (inf for zero temperature), got {beta!r}")
    return beta


def ohmic(eta: float, cutoff: float, beta: float | None = None, lamb_shift: bool = True, *,
          temperature: float | None = None) -> Bath:
    """Ohmic bath with exponential cutoff, ``J(w) = eta * w * exp(-|w|/cutoff)``.

    Reorganisation energy ``eta * cutoff``; ``S(0) = -eta * cutoff`` at any temperature.
    ``qutip.OhmicEnvironment(T, alpha, wc, s=1)`` is ``ohmic(alpha / pi, wc, temperature=T)``
    (README, "Coming from QuTiP").

    Parameters
    ----------
    eta : float
        Dimensionless coupling strength (> 0).
    cutoff : float
        Cutoff frequency (> 0).
    beta, temperature : float
        The inverse temperature, or the temperature ``1/beta``: give exactly one (``beta =
        inf`` or ``temperature = 0`` for zero temperature).
    lamb_shift : bool
        Include this bath's Lamb shift.

    Returns
    -------
    Bath

    Examples
    --------
    >>> import jumps
    >>> bath = jumps.ohmic(0.01, 5.0, temperature=0.5)
    >>> bath.beta
    2.0
    """
    eta = _strength(eta, "eta")
    cutoff = _positive(cutoff, "cutoff")
    return Bath("ohmic", _beta(beta, temperature), lambda w: eta * w * np.exp(-w / cutoff), slope_at_zero=eta,
                scale=cutoff, lamb_shift_enabled=lamb_shift,
                params={"eta": eta, "cutoff": cutoff})


def drude_lorentz(reorganization: float, cutoff: float, beta: float | None = None,
                  lamb_shift: bool = True, *, temperature: float | None = None) -> Bath:
    """Drude–Lorentz bath, ``J(w) = (2 lambda / pi) * w * cutoff / (w^2 + cutoff^2)``.

    ``qutip.DrudeLorentzEnvironment(T, lam, gamma)`` is ``drude_lorentz(lam, gamma,
    temperature=T)``: the same rates (README, "Coming from QuTiP").

    Parameters
    ----------
    reorganization : float
        Reorganisation energy ``lambda`` (> 0).
    cutoff : float
        Cutoff (Drude) frequency (> 0).
    beta, temperature : float
        The inverse temperature, or the temperature ``1/beta``: give exactly one (``beta =
        inf`` or ``temperature = 0`` for zero temperature).
    lamb_shift : bool
        Include this bath's Lamb shift.

    Returns
    -------
    Bath

    Examples
    --------
    >>> import jumps
    >>> jumps.drude_lorentz(0.02, 2.0, temperature=0.0).beta
    inf
    """
    lam = _strength(reorganization, "reorganization")
    cutoff = _positive(cutoff, "cutoff")
    return Bath("drude_lorentz", _beta(beta, temperature),
                lambda w: (2.0 * lam / np.pi) * w * cutoff / (w**2 + cutoff**2),
                slope_at_zero=2.0 * lam / (np.pi * cutoff), scale=cutoff,
                lamb_shift_enabled=lamb_shift, params={"reorganization": lam, "cutoff": cutoff})


def _check_table(table: np.ndarray, field_name: str) -> tuple[np.ndarray, np.ndarray]:
    table = np.asarray(table, dtype=float)
    if table.ndim != 2 or table.shape[1] != 2 or table.shape[0] < 2:
        raise ConfigError(field_name, f"must be rows of (w, value), got shape {table.shape}")
    if not np.all(np.isfinite(table)):
        raise ConfigError(field_name, "contains NaN or inf")
    order = np.argsort(table[:, 0])
    w, values = table[order, 0], table[order, 1]
    if np.any(np.diff(w) <= 0):
        raise ConfigError(field_name, "frequencies must be distinct")
    return w, values


def tabulated(table: np.ndarray, beta: float | None = None, lamb_shift: bool = True, *,
              temperature: float | None = None) -> Bath:
    """Spectral density from a table of ``(w, J)`` rows with ``w >= 0``.

    Linear interpolation between points, zero beyond the last point; ``J(0) = 0`` (J is odd):
    a table without a row at ``w = 0`` starts from ``(0, 0)``, and a row ``(0, J)`` with
    ``J != 0`` is refused.

    Parameters
    ----------
    table : (n, 2) array
        Rows ``(w, J(w))``, ``w`` ascending from ``>= 0``, ``J >= 0``.
    beta, temperature : float
        Give exactly one (``temperature = 0`` is ``beta = inf``).
    lamb_shift : bool
        Include this bath's Lamb shift.

    Returns
    -------
    Bath

    Examples
    --------
    >>> import numpy as np, jumps
    >>> bath = jumps.tabulated([[0.0, 0.0], [1.0, 0.1], [4.0, 0.0]], temperature=0.5)
    >>> absorption, emission = bath.rates(np.array([-1.0, 1.0]))
    >>> round(float(emission), 6), bool(np.isclose(absorption, np.exp(-2.0) * emission))
    (0.726661, True)
    """
    w, j = _check_table(table, "table")
    if w[0] < 0:
        raise ConfigError("table", "spectral-density frequencies must be >= 0 (J is odd)")
    if np.any(j < 0):
        raise ConfigError("table", "J(w) must be >= 0 for w >= 0")
    if w[0] == 0 and j[0] != 0:
        raise ConfigError("table", f"J(0) must be 0 (J is odd, J(-w) = -J(w)), the row at "
                                   f"w = 0 gives {j[0]:g}")
    if not np.any(j > 0):
        raise ConfigError("table", "J(w) is zero everywhere: " + NEVER_ACTS)
    if w[0] > 0:
        w, j = np.concatenate([[0.0], w]), np.concatenate([[0.0], j])
    beta = _beta(beta, temperature)
    return Bath(
        kind="tabulated",
        beta=beta,
        spectral_density_positive=lambda x: np.interp(x, w, j, right=0.0),
        slope_at_zero=j[1] / w[1],
        scale=float(w[-1]) / 4.0,
        lamb_shift_enabled=lamb_shift,
        params={"points": int(w.size), "w_max": float(w[-1]), "table_sha": _sha(w, j)},
    )


def from_callable(spectral_density: ArrayFunc, beta: float | None = None, scale: float = 1.0,
                  lamb_shift: bool = True, *, temperature: float | None = None) -> Bath:
    """Spectral density from a user function ``J(w)``, called with arrays of ``w >= 0``.

    Such a bath is never cached (a function has no fingerprint).

    Parameters
    ----------
    spectral_density : callable
        ``J(w)`` for arrays of ``w >= 0``, with ``J(0) = 0``; extended as an odd function.
    beta, temperature : float
        Give exactly one (``temperature = 0`` is ``beta = inf``).
    scale : float
        The bath's frequency scale (its cutoff) for the Lamb-shift quadrature.
    lamb_shift : bool
        Include this bath's Lamb shift.

    Returns
    -------
    Bath

    Examples
    --------
    >>> import numpy as np, jumps
    >>> super_ohmic = jumps.from_callable(lambda w: 0.01 * w**3 * np.exp(-w), temperature=1.0)
    >>> np.round(super_ohmic.spectral_density(np.array([-1.0, 1.0])), 6).tolist()
    [-0.003679, 0.003679]
    """
    if not callable(spectral_density):
        raise ConfigError("spectral_density", "must be callable")
    beta = _beta(beta, temperature)
    scale = _positive(scale, "scale")

    def positive(w: np.ndarray) -> np.ndarray:
        return np.asarray(spectral_density(np.asarray(w, dtype=float)), dtype=float) * np.ones_like(w)

    # J'(0) by a forward difference at ~sqrt(eps) of the scale (J(0) = 0): error ~1e-7 relative.
    step = 1e-7 * scale
    slope = float(positive(np.array([step]))[0] / step)
    # J(w)/w must stay finite as w -> 0 at T > 0 (the dephasing rate 2 pi T J'(0)): a
    # sub-Ohmic J ~ w^s (s < 1) makes it grow without bound, and any finite difference would
    # be an artefact of the step (QuTiP's power spectrum is infinite there).
    finer = float(positive(np.array([step * SLOPE_CHECK_FACTOR]))[0] / (step * SLOPE_CHECK_FACTOR))
    if np.isfinite(beta) and not (np.isfinite(finer)
                                  and finer <= slope + SLOPE_CHECK_TOLERANCE * abs(slope)):
        raise ConfigError("spectral_density", (
            f"J(w)/w does not settle as w -> 0 ({slope:.4g} at w = {step:.1e}, {finer:.4g} at "
            f"w = {step * SLOPE_CHECK_FACTOR:.1e}): a sub-Ohmic J ~ w^s with s < 1 has an "
            "infinite zero-frequency (dephasing) rate 2 pi T J'(0) at T > 0, outside the Davies "
            "equation; use s >= 1, or T = 0"))
    return Bath(
        kind="callable",
        beta=beta,
        spectral_density_positive=positive,
        slope_at_zero=slope,
        scale=scale,
        lamb_shift_enabled=lamb_shift,
        params={"scale": scale},
    )


def from_rates(rates: np.ndarray | ArrayFunc, scale: float | None = None,
               lamb_shift: bool = True) -> Bath:
    """A non-thermal noise source given directly by ``gamma(w)`` on both signs of ``w``.

    No KMS condition is imposed: this is the case the detailed-balance statistics must flag.
    QuTiP's callable ``S(w)`` in ``a_ops`` becomes such a bath.

    Parameters
    ----------
    rates : (n, 2) array or callable
        Rows ``(w, gamma)`` (linear interpolation, zero outside), or a vectorised
        ``gamma(w)``; ``w > 0`` is emission.
    scale : float, optional
        A frequency scale for the Lamb-shift quadrature (a table: a quarter of its largest
        ``|w|``; a callable: 1).
    lamb_shift : bool
        Include this bath's Lamb shift.

    Returns
    -------
    Bath
        ``beta = nan``, ``is_thermal`` False.

    Examples
    --------
    >>> import numpy as np, jumps
    >>> noise = jumps.from_rates([[-1.0, 0.02], [1.0, 0.05]])
    >>> np.round(noise.rates(np.array([-1.0, 0.0, 1.0])), 6).tolist(), noise.is_thermal
    ([0.02, 0.035, 0.05], False)
    """
    if callable(rates):
        function = rates
        scale = _positive(1.0 if scale is None else scale, "scale")
        params: dict = {"scale": scale}
    else:
        w, gamma = _check_table(rates, "table")
        if np.any(gamma < 0):
            raise ConfigError("table", "rates must be >= 0")
        if not np.any(gamma > 0):
            raise ConfigError("table", "gamma(w) is zero everywhere: " + NEVER_ACTS)

        def function(x: np.ndarray) -> np.ndarray:
            return np.interp(x, w, gamma, left=0.0, right=0.0)

        scale = float(np.max(np.abs(w))) / 4.0 if scale is None else scale
        params = {"points": int(w.size), "w_min": float(w[0]), "w_max": float(w[-1]),
                  "table_sha": _sha(w, gamma)}
    return Bath(
        kind="rates",
        beta=float("nan"),
        spectral_density_positive=None,
        slope_at_zero=0.0,
        scale=scale,
        rate_function=function,
        lamb_shift_enabled=lamb_shift,
        params=params,
    )


def check_bath_values(rates: np.ndarray, shifts: np.ndarray) -> None:
    """Refuse negative or non-finite rates, and non-finite Lamb shifts (an overflow: a
    coupling strength of 1e300, say), in one line naming ``baths``."""
    if not np.all(np.isfinite(rates)) or np.any(rates < 0):
        raise ConfigError("baths", "a bath gives negative or non-finite rates at the Bohr frequencies")
    if not np.all(np.isfinite(shifts)):
        raise ConfigError("baths", "a bath's Lamb shift is not finite at the Bohr frequencies "
                                   "(overflow: is the coupling strength absurd?)")
