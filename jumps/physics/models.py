"""Built-in system models: a Hamiltonian and the operators it names.

Every model returns a :class:`Model`: a Hermitian ``hamiltonian`` (d x d) and a dictionary of
named operators (``sx:0``, ``sz:3``, ``x``, ``n``, ``site:2``, ...). Units: hbar = k_B = 1,
energies in the model's own unit (``Model.energy_unit``); times are in the inverse unit.

Spin models use Pauli matrices (eigenvalues +-1), qubit ``j`` is the ``j``-th tensor factor from
the left, and ``|0> = |up>`` is the ``sz = +1`` state.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from functools import cached_property, reduce
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError
from .matrices import check_hermitian, dense, sparse

__all__ = ["MODELS", "Model", "build_model", "check_hermitian", "explicit", "product_state"]

PAULI = {
    "sx": np.array([[0, 1], [1, 0]], dtype=complex),
    "sy": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "sz": np.array([[1, 0], [0, -1]], dtype=complex),
    "sp": np.array([[0, 1], [0, 0]], dtype=complex),  # raises sz: |down> -> |up>
    "sm": np.array([[0, 0], [1, 0]], dtype=complex),
}

# Single-qubit states for product initial states.
QUBIT_STATES = {
    "up": np.array([1, 0], dtype=complex),
    "down": np.array([0, 1], dtype=complex),
    "+": np.array([1, 1], dtype=complex) / np.sqrt(2),
    "-": np.array([1, -1], dtype=complex) / np.sqrt(2),
    "+i": np.array([1, 1j], dtype=complex) / np.sqrt(2),
    "-i": np.array([1, -1j], dtype=complex) / np.sqrt(2),
}

# 1 cm^-1 as an angular frequency: 2 pi c * 100 m^-1, in rad/fs; the time unit of the FMO
# model is its inverse, 1 / (2 pi c * 1 cm^-1) = 5308.8 fs.
CM_INVERSE_PER_FS = 2.0 * np.pi * 2.99792458e10 * 1e-15
KELVIN_IN_CM_INVERSE = 0.69503476  # k_B in cm^-1 / K


@dataclass(frozen=True)
class Model:
    """A system: Hamiltonian, named operators, and how to read its units.

    Attributes
    ----------
    name : str
        Model name (``"tfim_chain"``, ``"explicit"``, ...).
    stored_hamiltonian : (d, d) ndarray or scipy sparse matrix
        Hermitian system Hamiltonian in the model's basis (the "user basis"), as built: sparse
        for spin models. :attr:`hamiltonian` is its dense form, :attr:`sparse_hamiltonian`
        its CSR form.
    operators : dict[str, ndarray]
        Named operators in the same basis (Hermitian or not; couplings must be Hermitian),
        dense; :meth:`sparse_operator` gives any of them, or an expression, as CSR.
    qubits : int
        Number of qubits for spin models (enables product initial states), else 0.
    energy_unit : str
        Unit of energies; times are in the inverse unit (hbar = 1).
    params : dict
        The parameters used.
    """

    name: str
    stored_hamiltonian: Any
    operators: Mapping[str, np.ndarray] = field(default_factory=dict)
    qubits: int = 0
    energy_unit: str = "arbitrary"
    params: dict = field(default_factory=dict)

    @property
    def dimension(self) -> int:
        return self.stored_hamiltonian.shape[0]

    @cached_property
    def hamiltonian(self) -> np.ndarray:
        """The Hamiltonian as a dense complex matrix (made on first use)."""
        return dense(self.stored_hamiltonian)

    @property
    def sparse_hamiltonian(self) -> sp.csr_matrix:
        return sparse(self.stored_hamiltonian)

    def operator(self, expression: str, field_name: str = "operator") -> np.ndarray:
        """Evaluate an operator expression: a sum of terms ``[coef *] name [* name ...]``.

        Examples: ``"sx:0"``, ``"0.8*sx + 0.6*sz"``, ``"sz:0*sz:1"``, ``"a + adag"``,
        ``"energy"`` (the Hamiltonian).
        """
        return parse_operator(expression, self._lookup, self.dimension, field_name)

    def sparse_operator(self, expression: str, field_name: str = "operator") -> sp.csr_matrix:
        """:meth:`operator` as a sparse CSR matrix, never made dense on the way."""
        return parse_operator(expression, self._lookup_sparse, self.dimension, field_name,
                              sparse_result=True)

    def _lookup(self, name: str) -> np.ndarray | None:
        if name in ("energy", "H"):
            return self.hamiltonian
        return self.operators.get(name)

    def _lookup_sparse(self, name: str) -> sp.csr_matrix | None:
        if name in ("energy", "H"):
            return self.sparse_hamiltonian
        if isinstance(self.operators, QubitOperators):
            return self.operators.sparse_or_none(name)
        op = self.operators.get(name)
        return None if op is None else sparse(op)


def _number(token: str) -> float | None:
    token = token.strip()
    if token.startswith("sqrt"):
        inner = token[4:].strip("()")
        try:
            return float(np.sqrt(float(inner)))
        except ValueError:
            return None
    try:
        return float(token)
    except ValueError:
        return None


def parse_operator(expression: str, lookup: Callable[[str], Any], dimension: int,
                   field_name: str, sparse_result: bool = False):
    """Parse ``[coef *] name [* name ...] (+|-) ...`` into a matrix (see Model.operator):
    dense, or CSR with ``sparse_result`` (then ``lookup`` returns sparse matrices)."""
    text = expression.replace(" ", "")
    if not text:
        raise ConfigError(field_name, "empty operator expression")
    # Split on + and - that are not part of a number's exponent (1e-3; but "Pe+sx" splits).
    terms = re.split(r"(?<![0-9.][eE])(?=[+-])", text)
    if len(terms) > 1 and terms[0] == "":  # a leading sign: "-sx + sz"
        terms = terms[1:]
    if sparse_result:
        total = sp.csr_matrix((dimension, dimension), dtype=complex)
    else:
        total = np.zeros((dimension, dimension), dtype=complex)
    for term in terms:
        if term in ("", "+", "-"):
            raise ConfigError(field_name, f"cannot parse operator expression {expression!r}")
        sign = -1.0 if term[0] == "-" else 1.0
        factors = term.lstrip("+-").split("*")
        identity = sp.identity(dimension, dtype=complex, format="csr") if sparse_result else (
            np.eye(dimension, dtype=complex))
        matrix = identity * sign
        named = False
        for factor in factors:
            value = _number(factor)
            if value is not None:
                matrix = matrix * value
                continue
            op = lookup(factor)
            if op is None:
                raise ConfigError(field_name, f"unknown operator name {factor!r}")
            matrix = matrix @ op
            named = True
        if not named:
            raise ConfigError(field_name, f"term {term!r} names no operator")
        total = total + matrix
    return sp.csr_matrix(total) if sparse_result else total


def site_operator(single: np.ndarray, site: int, n: int) -> sp.csr_matrix:
    """``single`` acting on qubit ``site`` of ``n`` (site 0 is the leftmost factor), sparse."""
    left = sp.identity(2**site, dtype=complex, format="csr")
    right = sp.identity(2 ** (n - site - 1), dtype=complex, format="csr")
    return sp.kron(sp.kron(left, sp.csr_matrix(single)), right, format="csr")


class QubitOperators(MutableMapping):
    """The named operators of ``n`` qubits, built on demand (dense) instead of all at once.

    Names: ``sx:j, sy:j, sz:j, sp:j, sm:j`` (``sx`` ... too when ``n == 1``) and the collective
    spins ``Sx, Sy, Sz = (1/2) sum sigma_j``; operators added by the user are stored as given.
    At n = 10 the eager dictionary held 53 dense 1024 x 1024 matrices (850 MB) on every rank.
    """

    def __init__(self, n: int):
        self.n = n
        self.extra: dict[str, np.ndarray] = {}
        self._names = [f"{p}:{j}" for p in PAULI for j in range(n)] + ["Sx", "Sy", "Sz"]
        if n == 1:
            self._names += list(PAULI)

    def sparse_or_none(self, name: str) -> sp.csr_matrix | None:
        """Any operator of this mapping as CSR (built-ins never dense), or None if unknown."""
        if name in self.extra:
            return sparse(self.extra[name])
        return self.sparse(name) if name in self._names else None

    def sparse(self, name: str) -> sp.csr_matrix:
        """A built-in operator as a sparse matrix."""
        if name in ("Sx", "Sy", "Sz"):
            pauli = PAULI["s" + name[1]]
            return 0.5 * sum(site_operator(pauli, j, self.n) for j in range(self.n))
        stem, _, site = name.partition(":")
        return site_operator(PAULI[stem], int(site) if site else 0, self.n)

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.extra:
            return self.extra[name]
        if name not in self._names:
            raise KeyError(name)
        return self.sparse(name).toarray()

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        self.extra[name] = value

    def __delitem__(self, name: str) -> None:
        del self.extra[name]

    def __iter__(self):
        yield from self._names
        yield from (k for k in self.extra if k not in self._names)

    def __len__(self) -> int:
        return len(set(self._names) | set(self.extra))


def _require_int(params: dict, key: str, default: int, low: int, high: int) -> int:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ConfigError(f"system.params.{key}", f"must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


def _require_float(params: dict, key: str, default: float) -> float:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ConfigError(f"system.params.{key}", f"must be a finite number, got {value!r}")
    return float(value)


def _require_bool(params: dict, key: str, default: bool) -> bool:
    value = params.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"system.params.{key}", f"must be true or false, got {value!r}")
    return value


def _chain(params: dict, model: str, couplings: dict[str, float], min_n: int):
    """The parameters every spin chain shares: ``n`` (default 4), its couplings (name ->
    default) and ``periodic`` (false); returns ``(n, couplings, periodic, operators)``."""
    _check_params(params, {"n", "periodic", *couplings}, model)
    n = _require_int(params, "n", 4, min_n, 16)
    values = {k: _require_float(params, k, default) for k, default in couplings.items()}
    return n, values, _require_bool(params, "periodic", False), QubitOperators(n)


def _check_params(params: dict, allowed: set[str], model: str) -> None:
    unknown = set(params) - allowed
    if unknown:
        raise ConfigError(f"system.params.{min(unknown)}",
                          f"unknown parameter for model {model!r} (allowed: {', '.join(sorted(allowed))})")


def two_level(params: dict) -> Model:
    """Qubit ``H = (w0/2) sz``: ground state ``|down>``, gap ``w0`` (param ``w0``, default 1).

    Operators: ``sx, sy, sz, sp, sm`` (also ``sx:0`` ...). Thermal ``<sz> = -tanh(beta w0 / 2)``.
    """
    _check_params(params, {"w0"}, "two_level")
    w0 = _require_float(params, "w0", 1.0)
    ops = QubitOperators(1)
    return Model("two_level", 0.5 * w0 * ops["sz"], ops, qubits=1, params={"w0": w0})


def harmonic_oscillator(params: dict) -> Model:
    """Truncated oscillator ``H = w a^dag a`` on levels ``0..levels-1``.

    Params ``w`` (default 1), ``levels`` (default 20). Operators: ``a``, ``adag``, ``n``,
    ``x = (a + adag)/sqrt(2)``, ``p = i (adag - a)/sqrt(2)``.
    """
    _check_params(params, {"w", "levels"}, "harmonic_oscillator")
    w = _require_float(params, "w", 1.0)
    levels = _require_int(params, "levels", 20, 2, 4096)
    a = np.diag(np.sqrt(np.arange(1, levels)), 1).astype(complex)
    adag = a.conj().T
    ops = {
        "a": a,
        "adag": adag,
        "n": adag @ a,
        "x": (a + adag) / np.sqrt(2.0),
        "p": 1j * (adag - a) / np.sqrt(2.0),
    }
    return Model("harmonic_oscillator", w * ops["n"], ops, params={"w": w, "levels": levels})


def _chain_bonds(n: int, periodic: bool) -> list[tuple[int, int]]:
    bonds = [(j, j + 1) for j in range(n - 1)]
    if periodic and n > 2:
        bonds.append((n - 1, 0))
    return bonds


def tfim_chain(params: dict) -> Model:
    """Ising chain ``H = -J sum sz_j sz_{j+1} - h sum sx_j - hz sum sz_j`` (Pauli matrices).

    Params: ``n`` (qubits, default 4), ``J`` (1), ``h`` (transverse, 1), ``hz`` (longitudinal,
    0: integrable at ``hz = 0``), ``periodic`` (false: open chain).
    """
    n, c, periodic, ops = _chain(params, "tfim_chain", {"J": 1.0, "h": 1.0, "hz": 0.0}, 1)
    s = ops.sparse
    H = sum(-c["J"] * s(f"sz:{i}") @ s(f"sz:{j}") for i, j in _chain_bonds(n, periodic))
    H = H + sum(-c["h"] * s(f"sx:{j}") - c["hz"] * s(f"sz:{j}") for j in range(n))
    return Model("tfim_chain", sp.csr_matrix(H), ops, qubits=n,
                 params={"n": n, **c, "periodic": periodic})


def xxz_chain(params: dict) -> Model:
    """XXZ chain ``H = J sum (sx sx + sy sy + delta sz sz)_{j,j+1} + hz sum sz_j``.

    Params: ``n`` (4), ``J`` (1), ``delta`` (1), ``hz`` (0), ``periodic`` (false).
    """
    n, c, periodic, ops = _chain(params, "xxz_chain", {"J": 1.0, "delta": 1.0, "hz": 0.0}, 2)
    s = ops.sparse
    H = sum(c["J"] * (s(f"sx:{i}") @ s(f"sx:{j}") + s(f"sy:{i}") @ s(f"sy:{j}")
                      + c["delta"] * s(f"sz:{i}") @ s(f"sz:{j}"))
            for i, j in _chain_bonds(n, periodic))
    H = H + sum(c["hz"] * s(f"sz:{j}") for j in range(n))
    return Model("xxz_chain", sp.csr_matrix(H), ops, qubits=n,
                 params={"n": n, **c, "periodic": periodic})


def collective_qubits(params: dict) -> Model:
    """``n`` identical qubits ``H = (w0/2) sum sz_j``, for collective coupling through ``Sx``.

    Params ``n`` (2), ``w0`` (1). Operators: per-site Paulis and collective spins
    ``Sx, Sy, Sz = (1/2) sum sigma_j``. Coupled through ``Sx`` the singlet stays dark.
    """
    _check_params(params, {"n", "w0"}, "collective_qubits")
    n = _require_int(params, "n", 2, 1, 14)
    w0 = _require_float(params, "w0", 1.0)
    ops = QubitOperators(n)
    return Model("collective_qubits", w0 * ops.sparse("Sz"), ops, qubits=n,
                 params={"n": n, "w0": w0})


# Fenna–Matthews–Olson complex of C. tepidum: site energies and couplings in cm^-1 from
# Adolphs & Renger, Biophys. J. 91, 2778 (2006) (the matrix used by Ishizaki & Fleming,
# PNAS 106, 17255 (2009)). Shifted by 12210 cm^-1 (the lowest site energy): a constant
# shift changes no dynamics.
FMO_HAMILTONIAN_CM = np.array([
    [12410.0, -87.7, 5.5, -5.9, 6.7, -13.7, -9.9],
    [-87.7, 12530.0, 30.8, 8.2, 0.7, 11.8, 4.3],
    [5.5, 30.8, 12210.0, -53.5, -2.2, -9.6, 6.0],
    [-5.9, 8.2, -53.5, 12320.0, -70.7, -17.0, -63.3],
    [6.7, 0.7, -2.2, -70.7, 12480.0, 81.1, -1.3],
    [-13.7, 11.8, -9.6, -17.0, 81.1, 12630.0, 39.7],
    [-9.9, 4.3, 6.0, -63.3, -1.3, 39.7, 12440.0],
])
FMO_OFFSET_CM = 12210.0


def fmo(params: dict) -> Model:
    """7-site FMO exciton Hamiltonian (Adolphs & Renger 2006), single-exciton manifold.

    Energies in cm^-1 (shifted by -12210 cm^-1); the time unit is
    ``1 / (2 pi c * 1 cm^-1) = 5308.8 fs``. Temperatures in the bath config are in cm^-1
    too: ``T[cm^-1] = 0.695035 * T[K]`` (300 K = 208.5 cm^-1, 77 K = 53.5 cm^-1).
    Operators: ``site:j = |j><j|`` (j = 0..6, site 1 of the literature is ``site:0``).
    """
    _check_params(params, set(), "fmo")
    H = (FMO_HAMILTONIAN_CM - FMO_OFFSET_CM * np.eye(7)).astype(complex)
    ops = {f"site:{j}": np.diag(np.eye(7)[j]).astype(complex) for j in range(7)}
    unit = (f"cm^-1 (time unit {1.0 / CM_INVERSE_PER_FS:.1f} fs; a temperature of T kelvin is "
            f"{KELVIN_IN_CM_INVERSE:.4f} T cm^-1)")
    return Model("fmo", H, ops, energy_unit=unit, params={})


MODELS: dict[str, Callable[[dict], Model]] = {
    "two_level": two_level,
    "harmonic_oscillator": harmonic_oscillator,
    "tfim_chain": tfim_chain,
    "xxz_chain": xxz_chain,
    "collective_qubits": collective_qubits,
    "fmo": fmo,
}


def build_model(name: str, params: dict | None = None) -> Model:
    """Build a built-in model by name (see ``MODELS``)."""
    if name not in MODELS:
        raise ConfigError("system.model", f"unknown model {name!r} (known: {', '.join(MODELS)})")
    return MODELS[name](dict(params or {}))


def explicit(hamiltonian: np.ndarray, operators: dict[str, np.ndarray] | None = None) -> Model:
    """A model from an explicit Hermitian matrix and optional named operators."""
    H = check_hermitian(hamiltonian, "system.hamiltonian")
    d = H.shape[0]
    qubits = int(np.log2(d)) if d > 1 and (d & (d - 1)) == 0 else 0
    ops: MutableMapping = QubitOperators(qubits) if qubits > 0 else {}
    for name, op in (operators or {}).items():
        op = np.asarray(op, dtype=complex)
        if op.shape != (d, d):
            raise ConfigError(f"operators.{name}", f"must have shape {(d, d)}, got {op.shape}")
        ops[name] = op
    return Model("explicit", H, ops, qubits=qubits)


def product_state(model: Model, spec: str | list[str], field_name: str) -> np.ndarray:
    """A product state of qubits: a list of ``up/down/+/-/+i/-i`` or a string like ``"ud+-"``."""
    if model.qubits == 0:
        raise ConfigError(field_name, f"product states need a qubit model, not {model.name!r}")
    if not isinstance(spec, (str, list, tuple)) or (
            not isinstance(spec, str) and not all(isinstance(s, str) for s in spec)):
        raise ConfigError(field_name, f"must be a string such as 'ud+-' or a list of "
                                      f"single-qubit states ({', '.join(QUBIT_STATES)}), "
                                      f"got {spec!r}")
    if isinstance(spec, str):
        letters = {"u": "up", "d": "down", "0": "up", "1": "down", "+": "+", "-": "-"}
        try:
            spec = [letters[c] for c in spec]
        except KeyError:
            raise ConfigError(field_name, f"use letters u, d, 0, 1, +, - in {spec!r}") from None
    if len(spec) != model.qubits:
        raise ConfigError(field_name, f"needs {model.qubits} single-qubit states, got {len(spec)}")
    try:
        factors = [QUBIT_STATES[s] for s in spec]
    except (KeyError, TypeError):
        raise ConfigError(field_name, f"single-qubit states are {', '.join(QUBIT_STATES)}") from None
    return reduce(np.kron, factors)
