"""Built-in models: operator names, Hermiticity, dimensions, the operator-expression parser."""

import numpy as np
import pytest

from jumps.errors import ConfigError
from jumps.physics import models

SX = np.array([[0, 1], [1, 0]], dtype=complex)
SY = np.array([[0, -1j], [1j, 0]])
SZ = np.diag([1.0, -1.0]).astype(complex)
I2 = np.eye(2)


def kron(*factors):
    out = np.eye(1)
    for factor in factors:
        out = np.kron(out, factor)
    return out


# (model, params, dimension, operator names it must provide)
MODEL_CASES = [
    ("two_level", {"w0": 1.3}, 2, ["sx", "sy", "sz", "sp", "sm", "sx:0", "sz:0", "Sx"]),
    ("harmonic_oscillator", {"w": 0.7, "levels": 12}, 12, ["a", "adag", "n", "x", "p"]),
    ("tfim_chain", {"n": 3, "J": 1.0, "h": 0.9, "hz": 0.2}, 8,
     ["sx:0", "sx:2", "sy:1", "sz:2", "sp:0", "sm:1", "Sx", "Sz"]),
    ("xxz_chain", {"n": 4, "delta": 0.5, "hz": 0.1}, 16, ["sx:3", "sz:0", "Sz"]),
    ("collective_qubits", {"n": 3, "w0": 1.0}, 8, ["Sx", "Sy", "Sz", "sx:2"]),
    ("fmo", {}, 7, [f"site:{j}" for j in range(7)]),
]


@pytest.mark.parametrize("name, params, dimension, names", MODEL_CASES)
def test_model_dimension_names_and_hermiticity(name, params, dimension, names):
    """Each model has the documented dimension, names its operators, and its Hamiltonian and
    its Hermitian operators are Hermitian to rounding (1e-14)."""
    model = models.build_model(name, params)
    assert model.hamiltonian.shape == (dimension, dimension)
    assert model.dimension == dimension
    H = model.hamiltonian
    np.testing.assert_allclose(H, H.conj().T, atol=1e-14)
    for op_name in names:
        assert op_name in model.operators, op_name
        assert model.operators[op_name].shape == (dimension, dimension)
    for op_name, op in model.operators.items():
        if op_name.split(":")[0] not in ("sp", "sm", "a", "adag"):
            np.testing.assert_allclose(op, op.conj().T, atol=1e-14, err_msg=op_name)


def test_pauli_conventions_and_site_order():
    """Pauli matrices with eigenvalues +-1, |0> = |up> (sz = +1), site 0 is the leftmost
    tensor factor; sp raises sz (models.py docstring). Exact."""
    model = models.build_model("tfim_chain", {"n": 3})
    ops = model.operators
    np.testing.assert_array_equal(ops["sx:0"], kron(SX, I2, I2))
    np.testing.assert_array_equal(ops["sy:1"], kron(I2, SY, I2))
    np.testing.assert_array_equal(ops["sz:2"], kron(I2, I2, SZ))
    up = np.array([1, 0])
    down = np.array([0, 1])
    np.testing.assert_array_equal(models.PAULI["sp"] @ down, up)
    np.testing.assert_array_equal(models.PAULI["sm"] @ up, down)
    np.testing.assert_allclose(ops["Sz"], 0.5 * (ops["sz:0"] + ops["sz:1"] + ops["sz:2"]))


def test_two_level_hamiltonian():
    """H = (w0/2) sz: ground state |down>, gap w0 (models.two_level docstring). Exact."""
    model = models.build_model("two_level", {"w0": 1.3})
    np.testing.assert_array_equal(model.hamiltonian, 0.65 * SZ)


def test_tfim_hamiltonian_matches_formula():
    """H = -J sum sz_j sz_{j+1} - h sum sx_j - hz sum sz_j, open and periodic, built here
    from explicit Kronecker products (1e-14)."""
    J, h, hz = 1.2, 0.9, 0.3
    for periodic in (False, True):
        model = models.build_model("tfim_chain", {"n": 3, "J": J, "h": h, "hz": hz,
                                                  "periodic": periodic})
        site = [[kron(*(P if k == j else I2 for k in range(3))) for j in range(3)]
                for P in (SX, SZ)]
        sx, sz = site
        bonds = [(0, 1), (1, 2)] + ([(2, 0)] if periodic else [])
        H = -J * sum(sz[i] @ sz[j] for i, j in bonds) - h * sum(sx) - hz * sum(sz)
        np.testing.assert_allclose(model.hamiltonian, H, atol=1e-14)


def test_harmonic_oscillator_operators():
    """Truncated oscillator: a|n> = sqrt(n)|n-1>, H = w a^dag a, x = (a + a^dag)/sqrt(2)
    (exact up to one rounding in sqrt)."""
    model = models.build_model("harmonic_oscillator", {"w": 0.7, "levels": 6})
    a = model.operators["a"]
    for n in range(1, 6):
        assert a[n - 1, n] == pytest.approx(np.sqrt(n), rel=1e-15)
    np.testing.assert_allclose(np.diag(model.hamiltonian).real, 0.7 * np.arange(6), rtol=1e-15)
    np.testing.assert_allclose(model.operators["x"], (a + a.conj().T) / np.sqrt(2), atol=1e-15)


def test_fmo_matrix():
    """FMO (Adolphs & Renger 2006): 7x7 real symmetric, diagonal = site energies - 12210 cm^-1,
    lowest site energy (site 3 of the literature, index 2) at 0, coupling 1-2 = -87.7 cm^-1."""
    model = models.build_model("fmo")
    H = model.hamiltonian
    assert H.shape == (7, 7)
    np.testing.assert_array_equal(H, H.T)
    assert np.all(H.imag == 0)
    assert H[2, 2] == 0.0
    assert H[0, 1] == -87.7
    np.testing.assert_allclose(np.diag(H).real.min(), 0.0)
    np.testing.assert_array_equal(model.operators["site:4"], np.diag(np.eye(7)[4]))


@pytest.mark.parametrize("expression, expected", [
    ("0.8*sx + 0.6*sz", 0.8 * SX + 0.6 * SZ),
    ("1e-3*sx", 1e-3 * SX),
    ("2.5E-2*sz - 1e+1*sx", 2.5e-2 * SZ - 10 * SX),
    ("-sx", -SX),
    ("-0.5*sz + sx", -0.5 * SZ + SX),
    ("sx*sz", SX @ SZ),
    ("sqrt(2)*sp + sm", np.sqrt(2) * np.array([[0, 1], [0, 0]]) + np.array([[0, 0], [1, 0]])),
    ("energy", 0.5 * SZ),
])
def test_parser_two_level(expression, expected):
    """Expressions on the two-level model against matrices written out by hand (1e-15)."""
    model = models.build_model("two_level", {"w0": 1.0})
    np.testing.assert_allclose(model.operator(expression), expected, atol=1e-15)


def test_parser_products_of_sites_and_oscillator():
    """"sz:0*sz:1" is the matrix product (kron(sz, sz) on two qubits), "a + adag" = sqrt(2) x."""
    chain = models.build_model("tfim_chain", {"n": 2})
    np.testing.assert_array_equal(chain.operator("sz:0*sz:1"), np.kron(SZ, SZ))
    np.testing.assert_array_equal(chain.operator("sx:0 + sx:1"), np.kron(SX, I2) + np.kron(I2, SX))
    oscillator = models.build_model("harmonic_oscillator", {"levels": 5})
    np.testing.assert_allclose(oscillator.operator("a + adag"),
                               np.sqrt(2) * oscillator.operators["x"], atol=1e-15)


def test_parser_user_names_ending_in_e():
    """A user operator whose name ends in 'e' is not mistaken for a number's exponent:
    "Pe + sx" is the sum of two operators (regression: it was read as one name 'Pe+sx')."""
    projector = np.diag([0.0, 1.0])
    model = models.explicit(np.diag([0.0, 1.0]), {"Pe": projector})
    np.testing.assert_array_equal(model.operator("Pe + sx"), projector + SX)
    np.testing.assert_array_equal(model.operator("Pe-1e-2*sx"), projector - 1e-2 * SX)


@pytest.mark.parametrize("expression", ["sq", "0.5*sx + foo", "sx:1", "a", "", "sx +", "2.0",
                                        "sx*", "--sx", "+"])
def test_parser_rejects_unknown_or_malformed(expression):
    """Unknown names and malformed expressions are ConfigError naming the given field."""
    model = models.build_model("two_level")
    with pytest.raises(ConfigError) as error:
        model.operator(expression, "baths[0].coupling")
    assert error.value.field == "baths[0].coupling"


def test_unknown_model_and_parameters():
    """Unknown model names and parameters, and out-of-range values, are ConfigError."""
    with pytest.raises(ConfigError) as error:
        models.build_model("tfim")
    assert error.value.field == "system.model"
    with pytest.raises(ConfigError) as error:
        models.build_model("tfim_chain", {"n": 3, "g": 1.0})
    assert error.value.field == "system.params.g"
    with pytest.raises(ConfigError) as error:
        models.build_model("tfim_chain", {"n": 0})
    assert error.value.field == "system.params.n"
    with pytest.raises(ConfigError):
        models.build_model("harmonic_oscillator", {"w": float("nan")})


def test_explicit_model_checks_hermiticity():
    """explicit(): non-Hermitian, non-square and NaN matrices are ConfigError; a 4x4 matrix
    gets two-qubit operator names."""
    with pytest.raises(ConfigError, match="Hermitian"):
        models.explicit(np.array([[0.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(ConfigError, match="square"):
        models.explicit(np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="NaN"):
        models.explicit(np.array([[np.nan, 0.0], [0.0, 1.0]]))
    model = models.explicit(np.diag([0.0, 1.0, 1.0, 2.0]))
    assert model.qubits == 2
    np.testing.assert_array_equal(model.operators["sx:1"], np.kron(I2, SX))


def test_product_state():
    """Product states: site 0 leftmost; "u" = sz +1."""
    model = models.build_model("tfim_chain", {"n": 2})
    np.testing.assert_array_equal(models.product_state(model, "ud", "s"), [0, 1, 0, 0])
    with pytest.raises(ConfigError):
        models.product_state(model, "u", "s")
    with pytest.raises(ConfigError):
        models.product_state(models.build_model("fmo"), "u", "s")
