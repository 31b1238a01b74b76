"""Baths from QuTiP: environments and spectra as jumps baths, and ``temperature=``.

Oracle: QuTiP's own ``power_spectrum`` (what ``brmesolve`` uses as the rate of a jump that
hands ``w`` to the bath, ``w > 0`` emission) must equal ``Bath.rates`` on both signs of ``w``
and at 0: 1e-9 relative for the closed forms (QuTiP's absorption ``2 J (n(w) + 1)`` at
``w < 0`` cancels: ~1e-10 of its own rounding at ``w = -14 T``; jumps takes absorption from
emission and KMS); for a generic environment also 1e-6 of the largest rate, since its
``gamma(0)`` comes from a forward difference of ``J`` at ``1e-7`` of its scale.
"""

from __future__ import annotations

import numpy as np
import pytest

import jumps
from jumps.qutip_bridge import bath_from, bath_from_environment

qutip = pytest.importorskip("qutip")

W = np.array([-7.0, -2.0, -0.3, -1e-3, 0.0, 1e-3, 0.3, 1.0, 2.0, 7.0])


@pytest.mark.parametrize("environment, kind", [
    (qutip.OhmicEnvironment(T=0.5, alpha=0.05, wc=5.0, s=1), "ohmic"),
    (qutip.OhmicEnvironment(T=0.0, alpha=0.05, wc=5.0, s=1), "ohmic"),
    (qutip.DrudeLorentzEnvironment(T=0.7, lam=0.02, gamma=2.0), "drude_lorentz"),
    (qutip.UnderDampedEnvironment(T=0.7, lam=0.2, gamma=0.5, w0=1.5), "callable"),
    (qutip.OhmicEnvironment(T=0.5, alpha=0.05, wc=5.0, s=2), "callable"),
], ids=["ohmic", "ohmic-T0", "drude-lorentz", "underdamped", "superohmic"])
def test_environment_rates_are_its_power_spectrum(environment, kind):
    bath = bath_from_environment(environment)
    assert bath.kind == kind and bath.is_thermal
    expected = environment.power_spectrum(W)
    if kind == "callable":
        np.testing.assert_allclose(bath.rates(W), expected, rtol=1e-9,
                                   atol=1e-6 * np.max(expected))
    else:
        np.testing.assert_allclose(bath.rates(W), expected, rtol=1e-9, atol=1e-300)


def test_environment_without_temperature_and_callables():
    """No temperature: its power spectrum as given (no KMS imposed, as QuTiP). A callable
    S(w) (QuTiP's convention) is the rate as given, vectorised or not."""
    table = np.linspace(-5, 5, 201)
    environment = qutip.BosonicEnvironment.from_power_spectrum(
        lambda w: 0.1 * (w > 0) + 0.01, wlist=table)
    bath = bath_from(environment, "a_ops[0]")
    assert not bath.is_thermal
    np.testing.assert_allclose(bath.rates(W[1:-1]), environment.power_spectrum(W[1:-1]))
    scalar_only = bath_from(lambda w: 0.1 if w > 0 else 0.0, "a_ops[0]")
    np.testing.assert_array_equal(scalar_only.rates(W), 0.1 * (W > 0))
    assert bath_from(jumps.ohmic(0.1, 1.0, 2.0), "x").kind == "ohmic"
    np.testing.assert_array_equal(bath_from("0.1 * (w > 0)", "a_ops[0]").rates(W), 0.1 * (W > 0))
    with pytest.raises(jumps.ConfigError, match="could not evaluate"):
        bath_from("q > 0", "a_ops[0]")


def test_factor_pi_of_the_conventions():
    """README table: OhmicEnvironment(alpha) is ohmic(alpha / pi); DrudeLorentzEnvironment
    (lam, gamma) is drude_lorentz(lam, gamma)."""
    ohmic = qutip.OhmicEnvironment(T=0.5, alpha=0.05, wc=5.0, s=1)
    np.testing.assert_allclose(jumps.ohmic(0.05 / np.pi, 5.0, temperature=0.5).rates(W),
                               ohmic.power_spectrum(W), rtol=1e-9)
    drude = qutip.DrudeLorentzEnvironment(T=0.7, lam=0.02, gamma=2.0)
    np.testing.assert_allclose(jumps.drude_lorentz(0.02, 2.0, temperature=0.7).rates(W),
                               drude.power_spectrum(W), rtol=1e-9)


@pytest.mark.parametrize("constructor", [
    lambda **t: jumps.ohmic(0.1, 1.0, **t),
    lambda **t: jumps.drude_lorentz(0.1, 1.0, **t),
    lambda **t: jumps.tabulated([[0.0, 0.0], [1.0, 0.5], [2.0, 0.0]], **t),
    lambda **t: jumps.from_callable(lambda w: w * np.exp(-w), **t),
], ids=["ohmic", "drude_lorentz", "tabulated", "from_callable"])
def test_temperature_or_beta(constructor):
    """Exactly one of beta and temperature; temperature 0 is beta = inf."""
    assert constructor(temperature=0.25).beta == 4.0
    assert constructor(beta=4.0).beta == 4.0
    assert constructor(temperature=0).beta == np.inf
    for bad, field in (({}, "beta"), ({"beta": 1.0, "temperature": 1.0}, "beta"),
                       ({"temperature": -1.0}, "temperature"),
                       ({"temperature": float("nan")}, "temperature")):
        with pytest.raises(jumps.ConfigError) as error:
            constructor(**bad)
        assert error.value.field == field
