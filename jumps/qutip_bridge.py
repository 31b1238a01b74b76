"""QuTiP in and out: ``Qobj`` operators and states, ``brmesolve``'s arguments (checked and
converted into a :class:`Problem`), QuTiP environments and spectra as baths.

qutip is never imported at module level (jumps works without it): a ``Qobj`` is recognised by
its attributes, and qutip is imported only to make a ``Qobj`` for output, or to tell the
environment classes apart when the object already is one of qutip's (so qutip is loaded).

Conventions (README, "Coming from QuTiP"). QuTiP's power spectrum of a bosonic environment is

    S(w) = 2 sign(w) J_qutip(|w|) (n(|w|) + 1),   S(0) = 2 T J_qutip'(0),

and ``brmesolve`` uses ``S(w)`` as the rate of a jump that hands ``w`` to the bath: ``w > 0``
is emission, as in jumps, and ``S`` *is* jumps' ``gamma(w) = 2 pi J(w) / (1 - exp(-beta w))``
when ``J = J_qutip / pi``. So ``OhmicEnvironment(T, alpha, wc, s=1)`` is
``ohmic(alpha / pi, wc, temperature=T)``, and ``DrudeLorentzEnvironment(T, lam, gamma)`` is
``drude_lorentz(lam, gamma, temperature=T)`` (jumps' Drude-Lorentz ``J`` carries the ``1/pi``
already). QuTiP neglects the Lamb shift; jumps includes it unless asked not to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError
from .generators.base import InitialState
from .physics.baths import Bath, drude_lorentz, from_callable, from_rates, ohmic
from .physics.matrices import as_array, check_hermitian, is_sparse
from .result import CALLBACK, stored_names


def is_qobj(value: Any) -> bool:
    """True for a ``qutip.Qobj`` (duck-typed: dims, ``full()`` and ``isket``)."""
    return hasattr(value, "dims") and hasattr(value, "isket") and callable(
        getattr(value, "full", None))


def operator_dims(value: Any) -> list | None:
    """The ``dims`` of a ``Qobj`` operator, as a JSON-friendly list (None for anything else)."""
    if not is_qobj(value):
        return None
    return [[int(n) for n in part] for part in value.dims]


def to_qobj(matrix: np.ndarray, dims: list | None):
    """``matrix`` as a ``qutip.Qobj`` with ``dims`` when dims are given, else unchanged."""
    if dims is None:
        return matrix
    import qutip

    return qutip.Qobj(matrix, dims=dims)


def state_arrays(state: Any, dimension: int, field: str = "state") -> tuple[np.ndarray | None,
                                                                         np.ndarray | None]:
    """``(vector, None)`` for a ket, ``(None, rho)`` for a density matrix: a ``Qobj`` (ket or
    operator) or an array ((d,) or (d, 1): a ket; (d, d): a density matrix)."""
    if is_qobj(state):
        if getattr(state, "isbra", False):
            raise ConfigError(field, "is a bra: give a ket or a density matrix")
        array = np.asarray(state.full(), dtype=complex)
        if state.isket:
            return _checked_length(array.ravel(), dimension, field), None
    else:
        array = np.asarray(as_array(state))
        if array.dtype == object or not np.issubdtype(array.dtype, np.number):
            raise ConfigError(field, "must be a ket or a density matrix of numbers")
        array = array.astype(complex)
        if array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1 and dimension > 1):
            return _checked_length(array.ravel(), dimension, field), None
    if array.shape != (dimension, dimension):
        raise ConfigError(field, f"must be a ket of {dimension} components or a {dimension} x "
                                 f"{dimension} density matrix, got shape {array.shape}")
    return None, array


def _checked_length(vector: np.ndarray, dimension: int, field: str) -> np.ndarray:
    if vector.size != dimension:
        raise ConfigError(field, f"has {vector.size} components, the system {dimension}")
    if not np.all(np.isfinite(vector)) or not np.any(vector):
        raise ConfigError(field, "must be finite and not zero")
    return vector


# Attributes of QuTiP environments that set a frequency scale (the Lamb-shift quadrature's).
_SCALE_ATTRIBUTES = ("wc", "gamma", "w0")


def bath_from(spectrum: Any, field: str) -> Bath:
    """A jumps bath from what QuTiP's ``brmesolve`` takes as an ``a_ops`` spectrum.

    Parameters
    ----------
    spectrum : Bath, qutip BosonicEnvironment, Coefficient, str or callable
        A jumps bath is returned as it is. A QuTiP bosonic environment gives a thermal bath
        whose rates are its ``power_spectrum`` (:func:`bath_from_environment`). A callable
        ``S(w)`` is QuTiP's spectrum convention: the rate of a jump handing ``w`` to the bath
        (``w > 0`` emission), no temperature, no KMS imposed (:func:`jumps.from_rates`).
    field : str
        How the caller names the argument, for errors.

    Returns
    -------
    Bath
    """
    if isinstance(spectrum, Bath):
        return spectrum
    if hasattr(spectrum, "power_spectrum") and hasattr(spectrum, "spectral_density"):
        return bath_from_environment(spectrum, field)
    if hasattr(spectrum, "power_spectrum_plus"):
        raise ConfigError(field, "a fermionic environment: jumps baths are bosonic")
    coefficient = qutip_spectrum(spectrum, field)
    if coefficient is not None:
        return from_rates(coefficient)
    if callable(spectrum):
        return from_rates(vectorised(spectrum))
    raise ConfigError(field, f"must be a jumps bath, a QuTiP BosonicEnvironment or a function "
                             f"S(w), got {type(spectrum).__name__}")


def _takes_only_w(function: Callable) -> bool:
    """True for a callable of one positional argument (``S(w)``, whatever its name)."""
    import inspect

    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return True
    required = [p for p in parameters if p.default is p.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(required) <= 1 and not any(p.kind == p.VAR_KEYWORD for p in parameters)


def qutip_spectrum(spectrum: Any, field: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """``gamma(w)`` for what ``brmesolve`` evaluates through a QuTiP coefficient with the
    frequency in ``args['w']``: a string (``"0.1 * (w > 0)"``), a ``qutip.Coefficient`` (an
    interpolated one, ``coefficient(array, tlist=ws)``, is read at ``t = w``, as QuTiP's
    ``SpectraCoefficient`` does) or a function of ``(t, w)`` / ``(t, args)``. None for anything
    else (a plain ``S(w)`` is called directly). Evaluated at ``t = 0``: the couplings are
    constant."""
    is_string = isinstance(spectrum, str)
    is_coefficient = (type(spectrum).__module__.startswith("qutip")
                      and hasattr(spectrum, "replace_arguments"))
    is_function = (callable(spectrum) and not is_coefficient
                   and not hasattr(spectrum, "power_spectrum") and not _takes_only_w(spectrum))
    if not (is_string or is_coefficient or is_function):
        return None
    try:
        import qutip
    except ImportError:
        raise ConfigError(field, "a string or (t, w) spectrum needs qutip: give a function "
                                 "S(w), a QuTiP environment or a jumps bath") from None
    interpolated = type(spectrum).__name__ == "InterCoefficient"
    try:
        if is_coefficient:
            coefficient = spectrum
        else:
            coefficient = qutip.coefficient(spectrum, args={"w": 0.0})

        def value(w: float) -> float:
            if interpolated:
                return complex(coefficient(w)).real
            return complex(coefficient(0.0, {"w": w})).real

        value(0.0)
    except ConfigError:
        raise
    except Exception as error:  # noqa: BLE001 - a user string or coefficient may raise anything
        raise ConfigError(field, f"QuTiP could not evaluate this spectrum at w = 0 "
                                 f"({type(error).__name__}: {error})") from None

    def on_arrays(w: np.ndarray) -> np.ndarray:
        w = np.asarray(w, dtype=float)
        return np.array([value(float(x)) for x in w.ravel()]).reshape(w.shape)

    return on_arrays


def bath_from_environment(environment: Any, field: str = "a_ops") -> Bath:
    """A jumps bath with the rates ``brmesolve`` takes from a QuTiP ``BosonicEnvironment``.

    ``gamma(w)`` equals ``environment.power_spectrum(w)`` on both signs of ``w`` (module
    docstring). Ohmic (``s = 1``) and Drude-Lorentz environments become jumps' own baths; any
    other environment with a temperature becomes :func:`jumps.from_callable` with ``J =
    J_qutip / pi``; one without a temperature becomes :func:`jumps.from_rates` of its power
    spectrum (no KMS imposed, as QuTiP).

    Examples
    --------
    >>> import numpy as np, qutip
    >>> env = qutip.OhmicEnvironment(T=0.5, alpha=0.05, wc=5.0, s=1)
    >>> bath = bath_from_environment(env)
    >>> w = np.array([-1.0, 0.0, 2.0])
    >>> bool(np.allclose(bath.rates(w), env.power_spectrum(w), rtol=1e-12))
    True
    """
    temperature = getattr(environment, "T", None)
    if temperature is None:
        return from_rates(vectorised(environment.power_spectrum), scale=_scale(environment))
    kind = type(environment).__name__
    if kind == "OhmicEnvironment" and float(environment.s) == 1.0:
        return ohmic(float(environment.alpha) / np.pi, float(environment.wc),
                     temperature=temperature)
    if kind == "DrudeLorentzEnvironment":
        return drude_lorentz(float(environment.lam), float(environment.gamma),
                             temperature=temperature)

    def spectral_density(w: np.ndarray) -> np.ndarray:
        return np.asarray(environment.spectral_density(w), dtype=float) / np.pi

    try:
        return from_callable(spectral_density, temperature=temperature, scale=_scale(environment))
    except ConfigError as error:
        raise ConfigError(f"{field} (temperature {temperature!r})", error.reason) from None


def _scale(environment: Any) -> float:
    """A frequency scale of a QuTiP environment (its cutoff), 1 if it names none."""
    for name in _SCALE_ATTRIBUTES:
        value = getattr(environment, name, None)
        if isinstance(value, (int, float)) and np.isfinite(value) and value > 0:
            return float(value)
    return 1.0


def vectorised(function: Callable) -> Callable[[np.ndarray], np.ndarray]:
    """``function`` called on arrays: directly when it takes them, else point by point (a
    spectrum written with ``if w > 0`` or ``math.exp``)."""

    def on_arrays(w: np.ndarray) -> np.ndarray:
        w = np.asarray(w, dtype=float)
        try:
            values = np.asarray(function(w), dtype=float)
            return np.broadcast_to(values, w.shape).copy()
        except (TypeError, ValueError):
            return np.array([float(function(x)) for x in w.ravel()]).reshape(w.shape)

    return on_arrays


# -- brmesolve's arguments -----------------------------------------------------------------

def operator_matrix(value: Any):
    """A sparse matrix as it is, anything else (array, Qobj) as an array."""
    return value if is_sparse(value) else as_array(value)


def checked_operators(hamiltonian: Any, couplings: Sequence[Any], convert,
                      names: tuple[str, str] = ("hamiltonian", "couplings")) -> tuple[Any, list]:
    """H and the couplings through ``convert``, each checked Hermitian and of H's shape
    (errors name them ``names``)."""
    H = check_hermitian(convert(hamiltonian), names[0])
    operators = [check_hermitian(convert(A), f"{names[1]}[{a}]") for a, A in enumerate(couplings)]
    for a, A in enumerate(operators):
        if A.shape != H.shape:
            raise ConfigError(f"{names[1]}[{a}]", f"shape {A.shape} does not match H {H.shape}")
    return H, operators


# Eigenvalues of a density matrix below -this are not rounding: it is not positive.
NEGATIVE_TOL = 1e-8
# A density matrix whose squared coherences between levels (and non-uniformity inside
# degenerate levels) add up to less than this is diagonal in the energy basis: coherences of
# ~1e-6 change no expectation value beyond any trajectory average's standard error.
DIAGONAL_TOL = 1e-12
# Kets up to this dimension are tested for being an eigenstate (through a d x d projector).
KET_TEST_DIMENSION = 2048


@dataclass
class Problem:
    """The arguments of :func:`jumps.jumpsolve` / :func:`jumps.exactsolve`, checked and
    converted: operators as arrays (sparse kept), baths as jumps baths, the state as a vector or
    a density matrix, ``e_ops`` as entries ``label``, ``key`` (stored as ``expect_<key>``),
    ``callable`` and the ``operator`` or ``function``."""

    hamiltonian: Any
    couplings: list
    baths: list[Bath]
    vector: np.ndarray | None
    rho: np.ndarray | None
    tlist: np.ndarray
    e_ops: list[dict]           # label, key, callable, operator or function
    e_ops_kind: str
    dims: list | None

    @property
    def dimension(self) -> int:
        return self.hamiltonian.shape[0]

    @property
    def operators(self) -> dict[str, Any]:
        return {e["key"]: e["operator"] for e in self.e_ops if not e["callable"]}

    @property
    def has_callables(self) -> bool:
        return any(e["callable"] for e in self.e_ops)

    def e_ops_record(self) -> list[dict]:
        """The e_ops as ``run.json`` keeps them (see :class:`jumps.result.Result`)."""
        return [{"label": e["label"], "key": e["key"], "callable": e["callable"]}
                for e in self.e_ops]

    def digest(self, *extra) -> str:
        """What makes two runs the same problem (``Result + Result`` checks it)."""
        digest = hashlib.sha256()
        for matrix in (self.hamiltonian, *self.couplings, self.tlist,
                       self.vector if self.vector is not None else self.rho,
                       *self.operators.values()):
            digest.update(np.ascontiguousarray(as_array(matrix), dtype=complex).tobytes())
        digest.update(repr([(b.kind, b.beta, sorted(b.params.items())) for b in self.baths]
                           + [e["label"] for e in self.e_ops] + list(extra)).encode())
        return digest.hexdigest()[:16]


def problem_of(H: Any, state: Any, tlist: Any, a_ops: Any, e_ops: Any) -> Problem:
    if type(H).__name__ == "QobjEvo" or isinstance(H, (list, tuple)):
        raise ConfigError("H", "time-dependent Hamiltonians are not supported (the Davies "
                               "equation needs a constant H)")
    if not isinstance(a_ops, (list, tuple)) or not a_ops:
        raise ConfigError("a_ops", "give a list of (operator, bath) pairs, at least one")
    pairs = []
    for a, pair in enumerate(a_ops):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ConfigError(f"a_ops[{a}]", "must be a pair (operator, bath)")
        pairs.append(pair)
    hamiltonian, couplings = checked_operators(H, [A for A, _ in pairs], operator_matrix,
                                               ("H", "a_ops"))
    baths = [bath_from(spectrum, f"a_ops[{a}]") for a, (_, spectrum) in enumerate(pairs)]
    d = hamiltonian.shape[0]
    vector, rho = state_arrays(state, d)
    times = np.asarray(tlist, dtype=float)
    if times.ndim != 1 or times.size < 1 or not np.all(np.isfinite(times)) or np.any(
            np.diff(times) <= 0):
        raise ConfigError("tlist", "must be a 1-d grid of increasing times")
    entries, kind = e_ops_entries(e_ops, d)
    return Problem(hamiltonian, couplings, baths, vector, rho, times, entries, kind,
                    operator_dims(H))


def e_ops_entries(e_ops: Any, d: int) -> tuple[list[dict], str]:
    """QuTiP's e_ops (None, one operator, a callable, a list or a dict of them) as entries."""
    if e_ops is None:
        return [], "list"
    if isinstance(e_ops, dict):
        labels, values, kind = list(e_ops), list(e_ops.values()), "dict"
        keys = stored_names(labels, "e_ops")
    else:
        if not isinstance(e_ops, (list, tuple)):
            e_ops = [e_ops]
        labels, values, kind = list(range(len(e_ops))), list(e_ops), "list"
        keys = [f"e{i}" for i in labels]
    entries = []
    for label, key, value in zip(labels, keys, values):
        field = f"e_ops[{label!r}]"
        if callable(value) and not is_qobj(value) and not hasattr(value, "shape"):
            entries.append({"label": label, "key": key, "callable": True, "function": value})
            continue
        operator = operator_matrix(value)
        if operator.shape != (d, d):
            raise ConfigError(field, f"must be a {d} x {d} operator, got shape {operator.shape}")
        try:
            operator = check_hermitian(operator, field)
        except ConfigError as error:
            if "Hermitian" not in error.reason:
                raise
            raise ConfigError(field, "must be Hermitian (trajectory averages of Hermitian "
                                     "operators; give (O + O^dag)/2 and (O - O^dag)/2i "
                                     "apart)") from None
        entries.append({"label": label, "key": key, "callable": False, "operator": operator})
    return entries, kind


def density_matrix(rho: np.ndarray) -> np.ndarray:
    """``rho`` checked (Hermitian, positive, finite trace) and normalised."""
    rho = check_hermitian(rho, "state")
    trace = np.real(np.trace(rho))
    if not trace > 0:
        raise ConfigError("state", f"a density matrix needs a positive trace, got {trace:.3g}")
    rho = rho / trace
    lowest = float(np.linalg.eigvalsh(rho)[0])
    if lowest < -NEGATIVE_TOL:
        raise ConfigError("state", f"is not a density matrix (eigenvalue {lowest:.3g} < 0)")
    return rho


def callbacks(problem: Problem, rho: np.ndarray | None) -> dict[str, np.ndarray]:
    """Callable e_ops ``f(t, state)`` on the averaged states (``Qobj`` with the input's dims
    when the input was one): QuTiP's callback, evaluated on the mean state, which is the mean
    of ``f`` over trajectories only for ``f`` linear in the state."""
    out = {}
    for entry in problem.e_ops:
        if entry["callable"]:
            values = [entry["function"](float(t), to_qobj(matrix, problem.dims))
                      for t, matrix in zip(problem.tlist, rho)]
            array = np.asarray(values)
            if array.dtype.kind not in "fciub" or array.shape != (problem.tlist.size,):
                raise ConfigError(f"e_ops[{entry['label']!r}]",
                                  "a callable must return one number per time")
            out[CALLBACK + entry["key"]] = array
    return out


def initial_state(generator, vector: np.ndarray | None, rho: np.ndarray | None) -> InitialState:
    """The initial state in the generator's terms: level populations when the state is
    diagonal in the energy basis (maximally mixed inside degenerate levels), else a pure
    state, else a mixture of the density matrix's eigenvectors drawn with its eigenvalues."""
    d = generator.dimension
    if vector is not None:
        vector = vector / np.linalg.norm(vector)
        if d > KET_TEST_DIMENSION:
            return InitialState("vector", vector=vector)
        projector = np.outer(vector, vector.conj())
    else:
        rho = density_matrix(rho)
        projector = rho
    level_ptr = generator.level_ptr
    level_populations = np.add.reduceat(generator.diagonal_of(projector), level_ptr[:-1])
    off_diagonal = np.sum(np.abs(projector) ** 2) - np.sum(level_populations**2
                                                           / np.diff(level_ptr))
    if off_diagonal < DIAGONAL_TOL:
        return InitialState("populations",
                            level_populations=np.clip(level_populations, 0.0, None))
    if vector is not None:
        return InitialState("vector", vector=vector)
    weights, states = np.linalg.eigh(rho)
    keep = weights > 1e-14 * weights.max()
    return InitialState("vector", weights=weights[keep] / weights[keep].sum(),
                        states=np.ascontiguousarray(states[:, keep].T))
