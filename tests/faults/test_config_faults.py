"""Bad configs are refused before any work: ``python -m jumps run`` returns 2 with exactly one
line on stderr, ``jumps: error: FIELD: REASON``, naming the field; no traceback, no warning
line, no result directory (docs/design.md, "Invariants": when in doubt, refuse).

The cases are the ones that used to crash (exit 1 with a traceback), hang or give a wrong result
with exit 0: files that are not plain .npy arrays, observable names stored under one key, a
tabulated J(0) != 0, absurd tolerances, a product state that is not a string, a zero coupling
strength, runs too big for memory or with an absurd number of jumps. Each runs in this process
through ``jumps.runtime.cli.main``; a few also through a real process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from jumps.runtime import budget, cli, driver

ROOT = Path(__file__).resolve().parents[2]

SYSTEM = '[system]\nmodel = "two_level"\nparams = { w0 = 1.0 }\n'
CHAIN = '[system]\nmodel = "tfim_chain"\nparams = { n = 2 }\n'
OSCILLATOR = '[system]\nmodel = "harmonic_oscillator"\nparams = { levels = 4 }\n'
BATH = ('[[baths]]\ncoupling = "{coupling}"\nspectral_density = "ohmic"\neta = {eta}\n'
        'cutoff = 5.0\ntemperature = {temperature}\n')
RUN = "[run]\nt_final = {t_final}\nn_times = {n_times}\ntrajectories = {trajectories}\n"


def bath(coupling: str = "sx", eta: str = "0.05", temperature: str = "1.0", extra: str = "") -> str:
    return BATH.format(coupling=coupling, eta=eta, temperature=temperature) + extra


def run(t_final: str = "4.0", n_times: str = "9", trajectories: str = "50", extra: str = "") -> str:
    return RUN.format(t_final=t_final, n_times=n_times, trajectories=trajectories) + extra


def table_bath(kind: str, table: str, thermal: bool = True) -> str:
    lines = f'[[baths]]\ncoupling = "sx"\nspectral_density = "{kind}"\ntable = {table}\n'
    return lines + ("temperature = 1.0\n" if thermal else "")


def npz_named_npy(path: Path) -> None:
    with open(path, "wb") as file:
        np.savez(file, H=np.diag([0.5, -0.5]))


def corrupted_header(path: Path) -> None:
    np.save(path, np.diag([0.5, -0.5]))
    data = bytearray(path.read_bytes())
    data[10:30] = b"{'descr': garbage!!!"
    path.write_bytes(bytes(data))


def huge_header(path: Path) -> None:
    """A header claiming a (1e6, 1e6) float64 matrix (7.3 TiB) over 32 bytes of data."""
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(
            file, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
        file.write(b"\0" * 32)


def truncated(path: Path) -> None:
    np.save(path, np.diag([0.5, -0.5]))
    path.write_bytes(path.read_bytes()[:-8])


def object_array(path: Path) -> None:
    np.save(path, np.array([[{"a": 1}, None], [None, 2]], dtype=object), allow_pickle=True)


HAMILTONIAN_FILE = '[system]\nhamiltonian = "H.npy"\n'
# name -> (config text, field named, file writer for H.npy or None)
CASES = {
    # files that are not plain .npy arrays
    "npz_named_npy": (HAMILTONIAN_FILE + bath() + run(), "system.hamiltonian", npz_named_npy),
    "corrupted_npy_header": (HAMILTONIAN_FILE + bath() + run(), "system.hamiltonian",
                             corrupted_header),
    "huge_npy_header": (HAMILTONIAN_FILE + bath() + run(), "system.hamiltonian", huge_header),
    "huge_npy_observable": (SYSTEM + bath() + run(extra='observables = { P = "H.npy" }\n'),
                            "run.observables.P", huge_header),
    "truncated_npy": (HAMILTONIAN_FILE + bath() + run(), "system.hamiltonian", truncated),
    "pickled_npy": (HAMILTONIAN_FILE + bath() + run(), "system.hamiltonian", object_array),
    # booleans that are not booleans
    "run_lamb_shift_string": (SYSTEM + bath() + run(extra='lamb_shift = "yes"\n'),
                              "run.lamb_shift", None),
    "bath_lamb_shift_integer": (SYSTEM + bath(extra="lamb_shift = 1\n") + run(),
                                "baths[0].lamb_shift", None),
    "cache_string": (SYSTEM + bath() + run(extra='cache = "true"\n'), "run.cache", None),
    "allow_long_integer": (SYSTEM + bath() + run(extra="allow_long = 1\n"), "run.allow_long",
                           None),
    "periodic_no": ('[system]\nmodel = "tfim_chain"\nparams = { n = 3, periodic = "no" }\n'
                    + bath("sx:0") + run(), "system.params.periodic", None),
    "periodic_integer": ('[system]\nmodel = "xxz_chain"\nparams = { n = 3, periodic = 0 }\n'
                         + bath("sx:0") + run(), "system.params.periodic", None),
    # observable names stored under one key
    "observable_and_its_stderr": (OSCILLATOR + bath("x") + run(
        extra='observables = { x = "x", x_stderr = "n" }\n'), "run.observables.x_stderr", None),
    "colon_and_underscore": (CHAIN + bath("sx:0") + run(
        extra='observables = { "sz:0" = "sz:0", sz_0 = "sz:1" }\n'), "run.observables.sz_0",
        None),
    "same_observable_twice": (SYSTEM + bath() + run(extra='observables = ["sz", "sz"]\n'),
                              "run.observables.sz", None),
    # keys a spectral density does not read
    "ohmic_with_reorganization": (SYSTEM + bath(extra="reorganization = 0.1\n") + run(),
                                  "baths[0].reorganization", None),
    "ohmic_with_table": (SYSTEM + bath(extra="table = [[0.0, 0.0], [1.0, 1.0]]\n") + run(),
                         "baths[0].table", None),
    "rates_with_temperature": (SYSTEM + table_bath("rates", "[[-1.0, 0.1], [1.0, 0.2]]")
                               + run(), "baths[0].temperature", None),
    "rates_with_beta": (SYSTEM + table_bath("rates", "[[-1.0, 0.1], [1.0, 0.2]]", False)
                        + "beta = 1.0\n" + run(), "baths[0].beta", None),
    # J is odd: J(0) = 0
    "tabulated_J_at_zero": (SYSTEM + table_bath("tabulated", "[[0.0, 5.0], [1.0, 0.1], "
                                                             "[2.0, 0.1]]") + run(),
                            "baths[0].table", None),
    # absurd tolerances
    "degeneracy_tol_absurd": (SYSTEM + "degeneracy_tol = 0.01\n" + bath() + run(),
                              "system.degeneracy_tol", None),
    "drop_tol_absurd": (SYSTEM + "drop_tol = 0.5\n" + bath() + run(), "system.drop_tol", None),
    # a product state that is not a string
    "product_state_number": (CHAIN + bath("sx:0") + '[initial_state]\nkind = "product"\n'
                             "state = 5\n" + run(), "initial_state.state", None),
    # a zero coupling strength (refused like a coupling that vanishes)
    "eta_zero": (SYSTEM + bath(eta="0") + run(), "baths[0].eta", None),
    "reorganization_zero": (SYSTEM + '[[baths]]\ncoupling = "sx"\nspectral_density = '
                            '"drude_lorentz"\nreorganization = 0.0\ncutoff = 1.0\n'
                            "temperature = 1.0\n" + run(), "baths[0].reorganization", None),
    "tabulated_all_zero": (SYSTEM + table_bath("tabulated", "[[0.0, 0.0], [1.0, 0.0]]") + run(),
                           "baths[0].table", None),
    "rates_all_zero": (SYSTEM + table_bath("rates", "[[-1.0, 0.0], [1.0, 0.0]]", False) + run(),
                       "baths[0].table", None),
    # runs that cannot fit in memory (checked from the config, before any build)
    "n_times_huge": (SYSTEM + bath() + run(n_times="1000000000000"), "run.n_times", None),
    "trajectories_huge": (SYSTEM + bath() + run(trajectories="1000000000000"),
                          "run.trajectories", None),
    "record_trajectories_huge": (SYSTEM + bath() + run(n_times="1001", trajectories="10000000",
                                                       extra="record_trajectories = 10000000\n"),
                                 "run.record_trajectories", None),
}
# Cases that also run through a real ``python -m jumps run`` process.
SUBPROCESS = ("huge_npy_header", "eta_zero", "trajectories_huge")


def write_case(name: str, directory: Path) -> tuple[Path, str]:
    text, field, writer = CASES[name]
    directory.mkdir(parents=True, exist_ok=True)
    if writer is not None:
        writer(directory / "H.npy")
    path = directory / "config.toml"
    path.write_text(text)
    return path, field


def assert_one_line(status: int, err: str, field: str, out_dir: Path) -> None:
    assert status == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"jumps: error: {field}: "), lines[0]
    assert "Traceback" not in err and "warning" not in err
    assert not (out_dir / "run.json").exists()


@pytest.mark.parametrize("name", list(CASES))
def test_bad_config_exits_2_with_one_line(name, tmp_path, capsys):
    path, field = write_case(name, tmp_path)
    status = cli.main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    captured = capsys.readouterr()
    assert_one_line(status, captured.err, field, tmp_path / "out")


def test_bad_configs_in_a_real_process(tmp_path):
    """The same through ``python -m jumps run``: exit status 2, one line, no traceback (a
    (1e6, 1e6) header is refused from the header, before numpy allocates 7 TiB)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def one(name):
        path, field = write_case(name, tmp_path / name)
        out = tmp_path / name / "out"
        process = subprocess.run([sys.executable, "-m", "jumps", "run", str(path), "--out",
                                  str(out), "--quiet"], env=env, capture_output=True, text=True,
                                 timeout=120, check=False)
        return process, field, out

    with ThreadPoolExecutor(max_workers=3) as pool:
        for process, field, out in pool.map(one, SUBPROCESS):
            assert_one_line(process.returncode, process.stderr, field, out)


# -- the run-size check after the build (jumps.runtime.budget.check_run_size) ----------------


@pytest.fixture
def hooked(monkeypatch):
    """The driver with the run-size check after its build: as it is hooked up in the driver,
    or (until then) by wrapping the driver's ``build`` the way the hook calls it."""
    if not hasattr(driver, "check_run_size"):
        original = driver.build

        def build_then_check(config, kind=None, comm=None):
            generator, built = original(config, kind, comm=comm)
            if generator is not None:
                budget.check_run_size(config, generator)
            return generator, built

        monkeypatch.setattr(driver, "build", build_then_check)


AFTER_BUILD = {
    # up to 4e307 jumps per trajectory: refused (it ran forever)
    "t_final_absurd": (SYSTEM + bath() + run(t_final="1e308"), "run.t_final"),
    # no rate is non-zero at this system's frequencies (it crashed with an IndexError)
    "only_dephasing_at_zero_temperature": (SYSTEM + bath("sz", temperature="0.0") + run(),
                                           "baths"),
    "table_zero_at_the_gap": (SYSTEM + table_bath("tabulated", "[[0.0, 0.0], [5.0, 0.0], "
                                                               "[6.0, 1.0], [7.0, 0.0]]")
                              + run(), "baths"),
}


@pytest.mark.parametrize("name", list(AFTER_BUILD))
def test_run_size_refusals(name, hooked, tmp_path, capsys):
    text, field = AFTER_BUILD[name]
    path = tmp_path / "config.toml"
    path.write_text(text)
    status = cli.main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    assert_one_line(status, capsys.readouterr().err, field, tmp_path / "out")


def test_allow_long_overrides_the_jump_refusal(tmp_path):
    """``[run] allow_long = true``: the estimate is returned, not refused (the run would then
    go on for as long as asked; here only the check is called)."""
    from jumps.runtime.build import build
    from jumps.runtime.config import load_config

    path = tmp_path / "config.toml"
    path.write_text(SYSTEM + bath() + run(t_final="1e12", extra="allow_long = true\n"))
    config = load_config(path)
    generator, _ = build(config)
    estimate = budget.check_run_size(config, generator)
    assert estimate.jumps_per_trajectory > budget.MAX_JUMPS_PER_TRAJECTORY
    rate = max(config.baths[0].rates(np.array([1.0, -1.0])))
    # the bound is the largest total rate out of a state times t_final: at least the qubit's
    # larger rate (the coupling sx has unit matrix elements), and an upper bound
    assert estimate.max_rate == pytest.approx(rate, rel=1e-9)
    assert estimate.jumps_per_trajectory == pytest.approx(rate * 1e12, rel=1e-9)


def test_info_prints_jumps_and_run_time(tmp_path, capsys):
    """``info`` prints the expected jumps per trajectory (an upper bound) and the run time."""
    path = tmp_path / "config.toml"
    path.write_text(SYSTEM + bath() + run())
    assert cli.main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "expected jumps   <= " in out and "upper bound" in out
    assert "run time" in out and "jumps/s" in out
