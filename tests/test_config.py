"""Config validation: every bad input is a ConfigError naming the field (docs/design.md, "Data
flow"); good inputs become the objects the physics expects; dump_config writes configs back."""

import json
import math
import tomllib

import numpy as np
import pytest

from jumps.errors import ConfigError
from jumps.physics.matrices import dense
from jumps.runtime.config import dump_config, load_config, parse_config


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


def test_dump_config_round_trips():
    """dump_config is the inverse of tomllib.loads on a config with [[baths]], inline tables,
    lists, booleans, inf, a quoted key and an escaped string: the text reads back as the same
    dictionary, types and key order included (JSON text compared: 300 and 300.0 differ), and
    both dictionaries validate to the same config."""
    raw = {
        "system": {"model": "two_level", "params": {"w0": 1.0},
                   "operators": {"P": [[1.0, 0], [0, 0.0]]}},
        "baths": [
            {"coupling": "0.8*sx + 0.6*sz", "spectral_density": "ohmic", "eta": 0.05,
             "cutoff": 5.0, "beta": math.inf, "lamb_shift": False},
            {"coupling": [[0.0, 1], [1, 0]], "spectral_density": "drude_lorentz",
             "reorganization": 1e-3, "cutoff": 2, "temperature": 0.5},
        ],
        "initial_state": {"kind": "vector", "vector": [0.6, 0.8]},
        "run": {"t_final": 4.0, "n_times": 9, "trajectories": 300, "seed": 7,
                "observables": {"sz:0": "sz:0", "p": "P", "x": [[0.0, 1.0], [1.0, 0.0]]},
                "density_matrix": "full", "lamb_shift": True, "cache": False},
    }
    text = dump_config(raw)
    assert "beta = inf" in text and "[[baths]]" in text and "trajectories = 300\n" in text
    back = tomllib.loads(text)
    assert json.dumps(back) == json.dumps(raw)
    awkward = {"run": {"a key": 'quote " backslash \\ newline \n tab \t control \x01 é'}}
    assert tomllib.loads(dump_config(awkward)) == awkward
    original, parsed = parse_config(raw), parse_config(back)
    assert json.dumps(parsed.raw) == json.dumps(original.raw)
    assert [b.beta for b in parsed.baths] == [math.inf, 2.0]
    assert [b.beta for b in parsed.baths] == [b.beta for b in original.baths]
    assert not parsed.baths[0].lamb_shift_enabled and parsed.baths[1].lamb_shift_enabled
    assert set(parsed.observables) == {"sz_0", "p", "x"} and not parsed.cache


def test_default_counting_fields_fit_a_wide_spectrum():
    """Without [counting] s the grid is DEFAULT_S, narrowed to |s| (E_max - E_min) = 10 when
    [-1, 1] would be refused (fmo, in cm^-1: the shipped mpi_runs/fmo.toml exited 2); a given
    grid is kept, and a too-wide given grid is still refused."""
    from pathlib import Path

    from jumps.runtime.build import build
    from jumps.runtime.statistics import DEFAULT_S, check_counting_fields, counting_fields

    root = Path(__file__).resolve().parents[1]
    config = load_config(root / "mpi_runs" / "fmo.toml")
    assert config.counting_s is None
    generator, _ = build(config)
    width = np.ptp(generator.energies)
    assert width > 30
    s = counting_fields(generator, config.counting_s)
    check_counting_fields(generator, s)
    np.testing.assert_allclose(s, DEFAULT_S * 10.0 / width)
    np.testing.assert_array_equal(counting_fields(generator, [0.01, 0.02]), [0.01, 0.02])
    with pytest.raises(ConfigError, match="counting.s"):
        check_counting_fields(generator, counting_fields(generator, [1.0]))
    narrow = load_config(root / "mpi_runs" / "two_level.toml")
    narrow_generator, _ = build(narrow)
    np.testing.assert_array_equal(counting_fields(narrow_generator, None), DEFAULT_S)
