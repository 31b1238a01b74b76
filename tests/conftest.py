"""Shared test data: a table of bad inputs, used by test_config.py and integration/test_cli.py.

A test that takes a ``bad_case`` argument runs once per entry; one that takes ``cli_bad_case``
once per entry marked ``subprocess`` (the cases also run through a real ``python -m jumps``
process; each costs half a second of interpreter and SciPy start-up)."""

from __future__ import annotations

import os
import tempfile

# One BLAS thread for the tests, set before NumPy loads OpenBLAS: the matrices here are small,
# and on a busy 2-core machine OpenBLAS's spinning worker threads made the QuTiP comparison
# 10x slower (2 s -> 25 s). setdefault: an explicit user setting wins; subprocesses inherit it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Generators built by the tests are cached in a directory of their own, never the user's.
os.environ["JUMPS_CACHE_DIR"] = tempfile.mkdtemp(prefix="jumps-test-cache-")

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

SYSTEM = '[system]\nmodel = "two_level"\nparams = { w0 = 1.0 }\n'
BATH = ('[[baths]]\ncoupling = "sx"\nspectral_density = "ohmic"\neta = 0.05\ncutoff = 5.0\n'
        'temperature = 1.0\n')
RUN = "[run]\nt_final = 4.0\nn_times = 9\n"
EXPLICIT = "[system]\nhamiltonian = {H}\n"


def config(system: str = SYSTEM, bath: str = BATH, run: str = RUN, extra: str = "") -> str:
    return system + bath + run + extra


def bath_with(**changes: str) -> str:
    """The valid bath with some ``key = value`` lines replaced (value None: removed)."""
    lines = []
    for line in BATH.splitlines():
        key = line.split("=")[0].strip()
        if key in changes:
            if changes[key] is not None:
                lines.append(f"{key} = {changes[key]}")
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class BadInput:
    """A config that must be refused with a ConfigError naming ``field``.

    ``toml`` None means no config file is written; ``{config}`` in ``field`` stands for the
    config's path; ``arrays`` are .npy files written beside it."""

    name: str
    toml: str | None
    field: str
    arrays: dict = field(default_factory=dict)
    subprocess: bool = False

    def write(self, directory: Path) -> tuple[Path, str]:
        directory.mkdir(parents=True, exist_ok=True)
        for filename, array in self.arrays.items():
            np.save(directory / filename, array)
        path = directory / "config.toml"
        if self.toml is not None:
            path.write_text(self.toml)
        return path, self.field.replace("{config}", str(path))


NON_HERMITIAN = np.array([[0.0, 1.0], [0.0, 0.0]])
NAN_MATRIX = np.array([[0.0, np.nan], [np.nan, 1.0]])

BAD_INPUTS = [
    BadInput("malformed_toml", SYSTEM + "[[baths]\ncoupling = sx\n", "{config}", subprocess=True),
    BadInput("missing_config_file", None, "{config}", subprocess=True),
    BadInput("unknown_section", config(extra="[sytem]\nx = 1\n"), "sytem"),
    BadInput("unknown_model", config(system='[system]\nmodel = "three_level"\n'), "system.model",
             subprocess=True),
    BadInput("unknown_model_parameter",
             config(system='[system]\nmodel = "two_level"\nparams = { w = 1.0 }\n'),
             "system.params.w"),
    BadInput("unknown_operator", config(bath=bath_with(coupling='"sq"')), "baths[0].coupling",
             subprocess=True),
    BadInput("unknown_run_key", config(run="[run]\ntfinal = 3.0\n"), "run.tfinal", subprocess=True),
    BadInput("unknown_bath_key", config(bath=BATH + "temprature = 2.0\n"),
             "baths[0].temprature"),
    BadInput("unknown_spectral_density", config(bath=bath_with(spectral_density='"debye"')),
             "baths[0].spectral_density"),
    BadInput("non_hermitian_inline_hamiltonian",
             config(system=EXPLICIT.format(H="[[0.0, 1.0], [0.0, 0.0]]")), "system.hamiltonian",
             subprocess=True),
    BadInput("non_hermitian_inline_coupling",
             config(bath=bath_with(coupling="[[0.0, 1.0], [0.0, 0.0]]")), "baths[0].coupling"),
    BadInput("non_hermitian_npy_hamiltonian", config(system=EXPLICIT.format(H='"H.npy"')),
             "system.hamiltonian", {"H.npy": NON_HERMITIAN}),
    BadInput("non_hermitian_npy_coupling", config(bath=bath_with(coupling='"A.npy"')),
             "baths[0].coupling", {"A.npy": NON_HERMITIAN}, subprocess=True),
    BadInput("non_square_inline_hamiltonian",
             config(system=EXPLICIT.format(H="[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]")),
             "system.hamiltonian"),
    BadInput("non_square_npy_hamiltonian", config(system=EXPLICIT.format(H='"H.npy"')),
             "system.hamiltonian", {"H.npy": np.zeros((2, 3))}, subprocess=True),
    BadInput("ragged_inline_hamiltonian",
             config(system=EXPLICIT.format(H="[[0.0, 1.0], [1.0]]")), "system.hamiltonian"),
    BadInput("coupling_shape_mismatch_inline",
             config(system=EXPLICIT.format(H="[[0.0, 1.0], [1.0, 0.0]]"),
                    bath=bath_with(coupling="[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]")),
             "baths[0].coupling", subprocess=True),
    BadInput("coupling_shape_mismatch_npy", config(bath=bath_with(coupling='"A.npy"')),
             "baths[0].coupling", {"A.npy": np.eye(4)}),
    BadInput("negative_temperature", config(bath=bath_with(temperature="-1.0")),
             "baths[0].temperature", subprocess=True),
    BadInput("beta_zero", config(bath=bath_with(temperature=None) + "beta = 0.0\n"),
             "baths[0].beta", subprocess=True),
    BadInput("temperature_and_beta", config(bath=BATH + "beta = 2.0\n"),
             "baths[0].temperature"),
    BadInput("negative_eta", config(bath=bath_with(eta="-0.05")), "baths[0].eta"),
    BadInput("nan_in_npy_hamiltonian", config(system=EXPLICIT.format(H='"H.npy"')),
             "system.hamiltonian", {"H.npy": NAN_MATRIX}, subprocess=True),
    BadInput("nan_in_npy_coupling", config(bath=bath_with(coupling='"A.npy"')),
             "baths[0].coupling", {"A.npy": NAN_MATRIX}),
    BadInput("missing_npy_file", config(system=EXPLICIT.format(H='"nowhere.npy"')),
             "system.hamiltonian", subprocess=True),
    BadInput("no_baths", SYSTEM + RUN, "baths"),
    BadInput("initial_index_out_of_range",
             config(extra='[initial_state]\nkind = "eigenstate"\nindex = 2\n'),
             "initial_state.index", subprocess=True),
    BadInput("initial_index_not_integer",
             config(extra='[initial_state]\nkind = "basis"\nindex = 0.5\n'),
             "initial_state.index"),
    BadInput("unknown_initial_kind", config(extra='[initial_state]\nkind = "thermal"\n'),
             "initial_state.kind"),
    BadInput("wrong_density_matrix_mode", config(run=RUN + 'density_matrix = "fulll"\n'),
             "run.density_matrix", subprocess=True),
    BadInput("too_few_times", config(run="[run]\nn_times = 1\n"), "run.n_times"),
    BadInput("unknown_observable", config(run=RUN + 'observables = ["energy", "sq"]\n'),
             "run.observables.sq"),
]


SUBPROCESS_INPUTS = [case for case in BAD_INPUTS if case.subprocess]


def pytest_generate_tests(metafunc):
    for name, cases in (("bad_case", BAD_INPUTS), ("cli_bad_case", SUBPROCESS_INPUTS)):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, cases, ids=[case.name for case in cases])


@pytest.fixture(scope="session")
def subprocess_bad_inputs() -> list[BadInput]:
    """The bad-input cases that also run through a real process (to run them together)."""
    return SUBPROCESS_INPUTS


@pytest.fixture
def good_config(tmp_path) -> Path:
    """A valid two-level config with observables and the full density matrix."""
    path = tmp_path / "good.toml"
    path.write_text(config(run=RUN + 'observables = ["energy", "sz:0", "sx"]\n'
                                     'density_matrix = "full"\n',
                           extra='[initial_state]\nkind = "eigenstate"\nindex = -1\n'))
    return path
