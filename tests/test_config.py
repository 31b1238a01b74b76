"""Config validation: every bad input is a ConfigError naming the field (DESIGN.md section 5);
good inputs become the objects the physics expects."""

import math

import numpy as np
import pytest

from jumps.errors import ConfigError
from jumps.physics.matrices import dense
from jumps.runtime.config import load_config


def test_bad_input_names_the_field(bad_case, tmp_path):
    """Each entry of conftest.BAD_INPUTS raises ConfigError with exactly that field."""
    path, field = bad_case.write(tmp_path)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.field == field
    assert error.value.reason
    assert "\n" not in str(error.value)


def test_good_config(good_config):
    """The valid config: one bath at beta = 1/T, observables named safely (sz:0 -> sz_0),
    uniform time grid, an explicit density-matrix mode."""
    config = load_config(good_config)
    assert config.model.name == "two_level"
    assert len(config.baths) == 1 and config.baths[0].beta == 1.0
    assert set(config.observables) == {"energy", "sz_0", "sx"}
    np.testing.assert_allclose(dense(config.observables["sz_0"]), np.diag([1.0, -1.0]))
    np.testing.assert_allclose(config.times, np.linspace(0, 4.0, 9))
    assert config.density_matrix == "full"
    assert config.initial_state.index == 1


@pytest.mark.parametrize("line, beta", [("temperature = 4.0", 0.25), ("beta = 4.0", 4.0),
                                        ("temperature = 0.0", math.inf), ("beta = inf", math.inf)])
def test_temperature_and_beta(tmp_path, line, beta):
    """beta = 1/temperature (k_B = 1); temperature = 0 means beta = inf (zero temperature)."""
    path = tmp_path / "c.toml"
    path.write_text('[system]\nmodel = "two_level"\n[[baths]]\ncoupling = "sx"\n'
                    'spectral_density = "drude_lorentz"\nreorganization = 0.1\ncutoff = 1.0\n'
                    f"{line}\n")
    assert load_config(path).baths[0].beta == beta


def test_site_wildcard_gives_one_bath_per_site(tmp_path):
    """coupling = "sx:*" is one independent bath per site, in site order."""
    path = tmp_path / "c.toml"
    path.write_text('[system]\nmodel = "tfim_chain"\nparams = { n = 3, hz = 0.2 }\n'
                    '[[baths]]\ncoupling = "sx:*"\nspectral_density = "ohmic"\neta = 0.01\n'
                    "cutoff = 2.0\nbeta = 1.5\n")
    config = load_config(path)
    assert config.coupling_names == ["sx:0", "sx:1", "sx:2"]
    assert [b.beta for b in config.baths] == [1.5, 1.5, 1.5]


def test_explicit_matrices_from_npy(tmp_path):
    """An explicit complex Hermitian H and a coupling from .npy files, paths relative to the
    config; a vector initial state is normalised on load."""
    H = np.array([[0.0, 0.3 - 0.2j], [0.3 + 0.2j, 1.0]])
    np.save(tmp_path / "H.npy", H)
    np.save(tmp_path / "A.npy", np.array([[0.0, 1.0], [1.0, 0.0]]))
    path = tmp_path / "c.toml"
    path.write_text('[system]\nhamiltonian = "H.npy"\n[[baths]]\ncoupling = "A.npy"\n'
                    'spectral_density = "ohmic"\neta = 0.01\ncutoff = 2.0\nbeta = 1.0\n'
                    '[initial_state]\nkind = "vector"\nvector = [3.0, 4.0]\n')
    config = load_config(path)
    np.testing.assert_allclose(config.model.hamiltonian, H)
    np.testing.assert_allclose(config.initial_state.vector, [0.6, 0.8])


def test_rates_bath_from_table(tmp_path):
    """spectral_density = "rates" with a (w, gamma) table: a non-thermal bath."""
    np.save(tmp_path / "gamma.npy", np.array([[-2.0, 0.1], [0.0, 0.05], [2.0, 0.1]]))
    path = tmp_path / "c.toml"
    path.write_text('[system]\nmodel = "two_level"\n[[baths]]\ncoupling = "sx"\n'
                    'spectral_density = "rates"\ntable = "gamma.npy"\n')
    config = load_config(path)
    assert not config.baths[0].is_thermal


@pytest.mark.parametrize("second", ["beta = 2.0", 'spectral_density = "rates"\ntable = [[-1.0, 0.1], [1.0, 0.2]]'])
def test_gibbs_initial_state_needs_one_temperature(tmp_path, second):
    """A Gibbs initial state is only defined when every bath is thermal at one temperature:
    two temperatures, or a non-thermal rates bath, is bad input (not a crash in the run)."""
    bath2 = ("[[baths]]\ncoupling = \"sz\"\n" + ('spectral_density = "ohmic"\neta = 0.01\ncutoff = 2.0\n'
                                               if "rates" not in second else "") + second + "\n")
    path = tmp_path / "c.toml"
    path.write_text('[system]\nmodel = "two_level"\n[[baths]]\ncoupling = "sx"\n'
                    'spectral_density = "ohmic"\neta = 0.01\ncutoff = 2.0\nbeta = 1.0\n'
                    + bath2 + '[initial_state]\nkind = "gibbs"\n')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.field == "initial_state.kind"
