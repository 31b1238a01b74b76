"""``jumps.jumpsolve`` and ``jumps.exactsolve`` in place of QuTiP's ``brmesolve``.

Oracle: ``qutip.brmesolve`` with the same arguments (QuTiP 5; ODE tolerances 1e-12/1e-10), Lamb
shift off in jumps since QuTiP neglects it. In the secular limit (``sec_cutoff`` 0.1: every
Bohr frequency of these spectra is resolved) brmesolve integrates the Davies equation with
the power spectrum as the rates, so:

- ``exactsolve`` agrees to 1e-6 (what is left is the ODE solver's error, ~1e-9);
- ``jumpsolve``'s means agree within 4 standard errors at every time (fixed seeds). At
  ``t = tlist[0]`` every trajectory holds the initial state: the standard error is 0 and the
  mean equal to 1e-10.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import jumps
from jumps.runtime import cli
from tests.helpers import QUBIT, config_toml

qutip = pytest.importorskip("qutip")

BRMESOLVE_OPTIONS = {"atol": 1e-12, "rtol": 1e-10}
QUIET = {"lamb_shift": False, "progress_bar": False}
Z_MAX = 4.0
README = Path(__file__).resolve().parents[1] / "README.md"


def qubit_problem():
    """A qubit with a transverse field (its eigenbasis is not the user's), started in |0>
    (coherences), coupled through sx to an Ohmic environment; a non-uniform grid from t = 1
    (brmesolve's initial time is tlist[0])."""
    H = 0.5 * qutip.sigmaz() + 0.2 * qutip.sigmax()
    environment = qutip.OhmicEnvironment(T=0.5, alpha=0.02, wc=5.0, s=1)
    tlist = 1.0 + np.concatenate([np.linspace(0, 2, 5), np.linspace(3, 40, 12)])
    e_ops = [qutip.sigmaz(), qutip.sigmax(), qutip.sigmay()]
    return H, qutip.basis(2, 0), tlist, [(qutip.sigmax(), environment)], e_ops


def three_level_problem():
    """Three levels with unequal gaps (no degenerate Bohr frequencies), a coupling with
    diagonal and off-diagonal elements (dephasing and transitions), a Drude-Lorentz
    environment, started in a superposition."""
    H = (qutip.Qobj(np.diag([0.0, 1.0, 2.7]))
         + 0.1 * qutip.Qobj(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])))
    A = qutip.Qobj(np.array([[0, 1, 0.3], [1, 0, 1], [0.3, 1, 0.5]]))
    environment = qutip.DrudeLorentzEnvironment(T=0.7, lam=0.02, gamma=2.0)
    coherence = qutip.Qobj(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]]))
    state = (qutip.basis(3, 0) + qutip.basis(3, 2)).unit()
    return H, state, np.linspace(0, 30, 16), [(A, environment)], [qutip.num(3), coherence,
                                                                  qutip.projection(3, 1, 1)]


def brmesolve(H, state, tlist, a_ops, e_ops):
    return qutip.brmesolve(H, state, tlist, a_ops=a_ops, e_ops=e_ops,
                           options=BRMESOLVE_OPTIONS).expect


def assert_within_sigma(result, reference: list[np.ndarray]) -> None:
    """Every mean within Z_MAX standard errors of the reference; where the standard error is 0
    (the initial time) the mean equals it to 1e-10."""
    for k, expected in enumerate(reference):
        mean, error = result.expect[k], result.stderr[k]
        assert mean.shape == expected.shape
        spread = error > 0
        assert np.all(np.abs(mean - expected)[~spread] < 1e-10), k
        z = np.abs(mean - expected)[spread] / error[spread]
        assert z.size and z.max() < Z_MAX, f"e_ops[{k}]: |z| up to {z.max():.2f}"


@pytest.mark.parametrize("problem, seed", [(qubit_problem, 11), (three_level_problem, 12)],
                         ids=["qubit-ohmic", "three-level-drude-lorentz"])
def test_jumpsolve_for_brmesolve(problem, seed):
    """Swap brmesolve for jumpsolve (same arguments plus ntraj; a_ops from QuTiP
    environments): means within 4 sigma of brmesolve at every time; final_state a Qobj with
    the input's dims; the seed recorded.

    Power, checked by perturbing jumpsolve's input with these seeds: rates 30% too large give
    |z| up to 8, a temperature 1.5x too high 5 to 7, the factor pi of the Ohmic convention 30
    or more, the Lamb shift on 22 (qubit); the unperturbed runs stay below 2.6."""
    H, state, tlist, a_ops, e_ops = problem()
    reference = brmesolve(H, state, tlist, a_ops, e_ops)
    result = jumps.jumpsolve(H, state, tlist, a_ops, e_ops, ntraj=1600, seeds=seed,
                             options=QUIET)
    assert_within_sigma(result, reference)
    np.testing.assert_array_equal(result.times, tlist)
    assert isinstance(result.final_state, qutip.Qobj)
    assert result.final_state.dims == H.dims
    assert result.seeds == [seed] and result.ntraj == 1600


@pytest.mark.parametrize("problem", [qubit_problem, three_level_problem],
                         ids=["qubit-ohmic", "three-level-drude-lorentz"])
def test_exactsolve_for_brmesolve(problem):
    """exactsolve within 1e-6 of brmesolve on the same (non-uniform, shifted) grids; its
    states are Qobj with the input's dims."""
    H, state, tlist, a_ops, e_ops = problem()
    reference = brmesolve(H, state, tlist, a_ops, e_ops)
    result = jumps.exactsolve(H, state, tlist, a_ops, e_ops, options={"lamb_shift": False})
    for k, expected in enumerate(reference):
        np.testing.assert_allclose(result.expect[k], expected, rtol=0, atol=1e-6)
    assert result.final_state.dims == H.dims and len(result.states) == tlist.size


def test_lamb_shift_is_on_by_default():
    """The Lamb shift (off in brmesolve) rotates the qubit's coherence: with the default
    options <sy> leaves brmesolve's band (the comparison above can tell)."""
    H, state, tlist, a_ops, e_ops = qubit_problem()
    reference = brmesolve(H, state, tlist, a_ops, e_ops)
    result = jumps.exactsolve(H, state, tlist, a_ops, e_ops)
    assert np.max(np.abs(result.expect[2] - reference[2])) > 1e-3


def test_mixed_state_and_dict_e_ops():
    """A density matrix with coherences is sampled from its eigen-decomposition; one diagonal
    in the energy basis from its populations. e_ops as a dict gives dicts by name (stored with
    the CLI's key rule); a callable e_op is evaluated on the averaged state. 4 sigma against
    brmesolve."""
    H, _, tlist, a_ops, _ = qubit_problem()
    plus = (qutip.basis(2, 0) + qutip.basis(2, 1)).unit()
    mixed = 0.3 * qutip.ket2dm(qutip.basis(2, 0)) + 0.7 * qutip.ket2dm(plus)
    _, states = H.eigenstates()
    thermal = 0.8 * qutip.ket2dm(states[0]) + 0.2 * qutip.ket2dm(states[1])
    sz = qutip.sigmaz()
    for rho, kind, seed in ((mixed, "vector", 21), (thermal, "populations", 22)):
        reference = brmesolve(H, rho, tlist, a_ops, [sz])[0]
        result = jumps.jumpsolve(H, rho, tlist, a_ops,
                                 {"sz:0": sz, "f": lambda t, state: qutip.expect(sz, state)},
                                 ntraj=400, seeds=seed, options=QUIET)
        assert result.meta["initial_state"] == kind
        assert list(result.expect) == ["sz:0", "f"] and "expect_sz_0" in result.arrays
        error = result.stderr["sz:0"]
        z = np.abs(result.expect["sz:0"] - reference)[error > 0] / error[error > 0]
        assert z.max() < Z_MAX
        np.testing.assert_allclose(result.expect["f"], result.expect["sz:0"], atol=1e-12)
        assert result.stderr["f"] is None


def test_composite_dims_and_numpy_inputs():
    """Tensor dims come back on every state; numpy inputs give numpy states."""
    sz, sx = qutip.sigmaz(), qutip.sigmax()
    I2 = qutip.qeye(2)
    H = 0.5 * qutip.tensor(sz, I2) + 0.8 * qutip.tensor(I2, sz) + 0.1 * qutip.tensor(sx, sx)
    environment = qutip.OhmicEnvironment(T=1.0, alpha=0.01, wc=5.0, s=1)
    a_ops = [(qutip.tensor(sx, I2), environment), (qutip.tensor(I2, sx), environment)]
    state = qutip.tensor(qutip.basis(2, 0), qutip.basis(2, 1))
    result = jumps.jumpsolve(H, state, [0.0, 1.0, 2.0], a_ops, ntraj=50, seeds=1,
                             options={"progress_bar": False, "store_states": True})
    assert [s.dims for s in result.states] == [H.dims] * 3
    plain = jumps.jumpsolve(H.full(), state.full(), [0.0, 1.0, 2.0],
                            [(A.full(), environment) for A, environment in a_ops], ntraj=50,
                            seeds=1, options={"progress_bar": False, "store_states": True})
    assert isinstance(plain.final_state, np.ndarray)
    np.testing.assert_allclose(plain.final_state, result.final_state.full(), atol=1e-12)


def test_default_seeds_differ_and_are_recorded():
    """Two calls without seeds draw different seeds, record them, and differ; the recorded
    seed reproduces a run."""
    H, state, tlist, a_ops, e_ops = qubit_problem()
    first = jumps.jumpsolve(H, state, tlist, a_ops, e_ops, ntraj=100, options=QUIET)
    second = jumps.jumpsolve(H, state, tlist, a_ops, e_ops, ntraj=100, options=QUIET)
    assert len(first.seeds) == 1 and len(second.seeds) == 1
    assert first.seeds != second.seeds
    assert not np.array_equal(first.expect[0], second.expect[0])
    again = jumps.jumpsolve(H, state, tlist, a_ops, e_ops, ntraj=100, seeds=first.seeds[0],
                            options=QUIET)
    np.testing.assert_array_equal(again.expect[0], first.expect[0])


def test_merge_pools_two_seeds():
    """``a + b`` pools the trajectories: the mean is the trajectory-weighted mean, the
    standard error that of all trajectories (equal to a run of both by Chan's formula, to
    rounding), records and recorded jumps concatenated; the same seed or another problem is
    refused."""
    H, state, tlist, a_ops, e_ops = qubit_problem()
    options = {**QUIET, "record_jumps": 2}
    a = jumps.jumpsolve(H, state, tlist, a_ops, e_ops, ntraj=300, seeds=1, options=options)
    b = jumps.jumpsolve(H, state, tlist, a_ops, e_ops, ntraj=100, seeds=2, options=options)
    merged = a + b
    assert merged.ntraj == 400 and merged.seeds == [1, 2]
    np.testing.assert_allclose(merged.expect[0], (300 * a.expect[0] + 100 * b.expect[0]) / 400,
                               atol=1e-14)
    values = np.concatenate([a.arrays["final_energy"], b.arrays["final_energy"]])
    np.testing.assert_array_equal(merged.arrays["final_energy"], values)
    assert len(merged.col_times) == 4 and len(merged.col_which) == 4
    assert merged.arrays["jump_counts"].sum() == (a.arrays["jump_counts"].sum()
                                                  + b.arrays["jump_counts"].sum())
    with pytest.raises(jumps.ConfigError, match="seed 1 is in both"):
        a + a
    other = jumps.jumpsolve(H, state, tlist[:-1], a_ops, e_ops, ntraj=100, seeds=3,
                            options=options)
    with pytest.raises(jumps.ConfigError, match="different problems"):
        a + other
    pooled = sum([a, b])  # sum() starts from 0
    np.testing.assert_array_equal(pooled.expect[0], merged.expect[0])


def test_pooled_standard_error_is_exact():
    """Chan's pooling of (mean, stderr, n) against the standard error of the concatenated
    sample (numpy, ddof=1): equal to rounding."""
    from jumps.result import _pooled

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=37), rng.normal(1.0, 2.0, size=11)

    def stats(v):
        return v.mean(), v.std(ddof=1) / np.sqrt(v.size), v.size

    mean, error = _pooled(*stats(x), *stats(y))
    both = np.concatenate([x, y])
    np.testing.assert_allclose([mean, error], [both.mean(), both.std(ddof=1) / np.sqrt(48)],
                               rtol=1e-12)


def test_target_tol_and_timeout_stop_early():
    """target_tol stops once every stderr is below it (after >= 100 trajectories); the result
    then holds the trajectories done, 0 .. n-1, and says why it stopped."""
    H, state, tlist, a_ops, e_ops = qubit_problem()
    result = jumps.jumpsolve(H, state, tlist, a_ops, e_ops, ntraj=2000, seeds=4,
                             target_tol=0.08, options=QUIET)
    assert 100 <= result.ntraj < 2000 and result.stats["stopped_by"] == "target_tol"
    assert all(np.all(error <= 0.08) for error in result.stderr)
    np.testing.assert_array_equal(result.arrays["trajectory_index"], np.arange(result.ntraj))
    timed = jumps.jumpsolve(H, state, tlist, a_ops, e_ops, ntraj=100000, seeds=4,
                            timeout=1e-9, options=QUIET)
    assert timed.ntraj < 100000 and timed.stats["stopped_by"] == "timeout"


def test_load_of_a_cli_run_is_the_same_class(tmp_path):
    """``jumps.load`` on a ``python -m jumps run`` directory gives the class jumpsolve gives,
    with its seed and observables; a saved jumpsolve result loads back with its e_ops shape
    and Qobj dims."""
    config = tmp_path / "qubit.toml"
    config.write_text(config_toml(QUBIT, run={"trajectories": 50, "seed": 9, "t_final": 2.0,
                                              "n_times": 5, "observables": ["sz", "sx"]}))
    assert cli.main(["run", str(config), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    loaded = jumps.load(tmp_path / "run")
    H, state, tlist, a_ops, e_ops = qubit_problem()
    result = jumps.jumpsolve(H, state, tlist, a_ops, e_ops, ntraj=20, seeds=1, options=QUIET)
    assert type(loaded) is type(result) is jumps.Result
    assert loaded.seeds == [9] and loaded.ntraj == 50 and set(loaded.expect) == {"sz", "sx"}
    result.save(tmp_path / "api")
    back = jumps.load(tmp_path / "api")
    np.testing.assert_array_equal(back.expect[1], result.expect[1])
    assert back.final_state.dims == H.dims
    with pytest.raises(jumps.ConfigError, match="no such directory"):
        jumps.load(tmp_path / "missing")


def test_short_repr():
    """A repr a notebook can show (QuTiP's are one paragraph)."""
    H, state, tlist, a_ops, e_ops = qubit_problem()
    result = jumps.jumpsolve(H, state, tlist, a_ops, e_ops, ntraj=20, seeds=1, options=QUIET)
    assert len(repr(result)) < 500 and "ntraj = 20" in repr(result)


def test_refusals_name_the_argument():
    """Bad input raises ConfigError naming the argument."""
    H, state, tlist, a_ops, e_ops = qubit_problem()
    cases = [
        ({"tlist": [0.0, 2.0, 1.0]}, "tlist"),
        ({"e_ops": [qutip.destroy(2)]}, "e_ops"),
        ({"state": qutip.basis(3, 0)}, "state"),
        ({"state": qutip.Qobj(np.diag([1.0, -0.5]))}, "state"),
        ({"a_ops": [(qutip.sigmax(), "q > 0")]}, "a_ops"),
        ({"options": {"chunk_size": -5}}, "options['chunk_size']"),
        ({"options": {"record_jumps": -1}}, "options['record_jumps']"),
        ({"target_tol": "a"}, "target_tol"),
        ({"target_tol": float("nan")}, "target_tol"),
        ({"options": {"nonsense": 1}}, "options"),
        ({"seeds": [1, 2]}, "seeds"),
        ({"e_ops": {"a_stderr": qutip.sigmaz()}}, "e_ops"),
        ({"e_ops": {"sz:0": qutip.sigmaz(), "sz_0": qutip.sigmax()}}, "e_ops['sz_0']"),
        ({"e_ops": {"": qutip.sigmaz()}}, "e_ops"),
        ({"options": {"generator": "nonsense"}}, "options['generator']"),
        ({"a_ops": [(qutip.sigmax(), qutip.OhmicEnvironment(T=0.3, alpha=0.02, wc=5, s=0.5))]},
         "a_ops"),
    ]
    for change, field in cases:
        arguments = {"H": H, "state": state, "tlist": tlist, "a_ops": a_ops, "e_ops": e_ops,
                     "ntraj": 10, "options": QUIET, **change}
        arguments["options"] = {**QUIET, **arguments["options"]}
        with pytest.raises(jumps.ConfigError) as error:
            jumps.jumpsolve(**arguments)
        assert error.value.field.startswith(field), (change, error.value)


def test_qutip_coefficient_spectra_are_read_at_w():
    """brmesolve hands a string, a qutip Coefficient or a (t, w) function its frequency in
    args['w'] (an interpolated Coefficient at t = w): jumps reads them the same way, and
    agrees with brmesolve to 1e-6 (a Coefficient called as S(w) gave its value at w = 0 for
    every Bohr frequency, 1.0 off in <sz> with no error)."""
    H = 0.5 * qutip.sigmaz() + 0.2 * qutip.sigmax()
    state, tlist, e_ops = qutip.basis(2, 0), np.linspace(0, 20, 11), [qutip.sigmaz()]
    ws = np.linspace(-5, 5, 201)
    spectra = ["0.1 * (w > 0) + 0.02",
               qutip.coefficient("0.1 * (w > 0) + 0.02", args={"w": 0}),
               qutip.coefficient(lambda t, w: 0.1 * (w > 0) + 0.02, args={"w": 0}),
               lambda t, w: 0.1 * (w > 0) + 0.02,
               qutip.coefficient(0.1 * (ws > 0) + 0.02, tlist=ws)]
    for spectrum in spectra:
        a_ops = [(qutip.sigmax(), spectrum)]
        expected = brmesolve(H, state, tlist, a_ops, e_ops)
        with pytest.warns(jumps.SecularWarning):
            exact = jumps.exactsolve(H, state, tlist, a_ops, e_ops, options={"lamb_shift": False})
        assert np.allclose(exact.expect[0], expected[0], atol=1e-6), spectrum


def test_option_forms():
    """A 0-d array seed is a seed; density_matrix 'auto' with a state to store keeps the full
    density matrix (it refused, asking for 'full')."""
    H, state, tlist, a_ops, e_ops = qubit_problem()
    result = jumps.jumpsolve(H, state, tlist, a_ops, e_ops, ntraj=20, seeds=np.array(7),
                             options={**QUIET, "density_matrix": "auto",
                                      "store_final_state": True})
    assert result.seeds == [7] and result.final_state.dims == [[2], [2]]


def test_secular_warning():
    """A questionable secular margin (two Bohr frequencies 1e-3 apart, rates ~1e-2) is a
    SecularWarning, as jumps info flags it; the problems above raise none."""
    H = qutip.Qobj(np.diag([0.0, 1.0, 2.001]))
    A = qutip.Qobj(np.ones((3, 3)) - np.eye(3))
    environment = qutip.OhmicEnvironment(T=1.0, alpha=0.01, wc=5.0, s=1)
    with pytest.warns(jumps.SecularWarning, match="secular margin"):
        jumps.exactsolve(H, qutip.basis(3, 2), [0.0, 1.0], [(A, environment)])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", jumps.SecularWarning)
        jumps.exactsolve(*qubit_problem())


def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def test_readme_coming_from_qutip_example():
    """The README's brmesolve-to-jumpsolve script runs as printed and its own check holds."""
    blocks = re.findall(r"```python\n(.*?)```", readme_section("Coming from QuTiP"), re.DOTALL)
    assert blocks, "no python block in README 'Coming from QuTiP'"
    namespace: dict = {}
    exec(compile("\n".join(blocks), "README.md", "exec"), namespace)  # noqa: S102
    assert isinstance(namespace["result"], jumps.Result)
