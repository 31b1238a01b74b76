"""``Result.to_xarray()``: a Dataset over ``time`` with one variable per expectation value,
its standard error and spread, and the populations; xarray stays optional (a clear
ImportError without it)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import jumps

SZ = np.diag([1.0, -1.0])
SX = np.array([[0.0, 1.0], [1.0, 0.0]])
BATH = jumps.ohmic(0.005, 5.0, temperature=1.0)
TLIST = np.linspace(0.0, 6.0, 7)


def test_trajectory_result_as_a_dataset():
    xarray = pytest.importorskip("xarray")
    result = jumps.jumpsolve(0.5 * SZ, [0.6, 0.8], TLIST, [(SX, BATH)],
                             e_ops={"sz": SZ, "sx:0": SX, "trace": lambda t, rho: np.trace(rho)},
                             ntraj=50, seeds=2, options={"progress_bar": False})
    ds = result.to_xarray()
    assert isinstance(ds, xarray.Dataset)
    np.testing.assert_array_equal(ds["time"].values, TLIST)
    for label, key in (("sz", "sz"), ("sx:0", "sx_0")):
        np.testing.assert_array_equal(ds[f"expect_{key}"].values, result.expect[label])
        np.testing.assert_array_equal(ds[f"expect_{key}_stderr"].values, result.stderr[label])
        np.testing.assert_array_equal(ds[f"std_expect_{key}"].values, result.std_expect[label])
        variable = ds[f"expect_{key}"]
        assert variable.dims == ("time",) and variable.attrs["label"] == label
    assert result.stderr["sz"][-1] > 0  # the errors are not zeros by accident
    np.testing.assert_allclose(ds["callback_trace"].values, 1.0, atol=1e-12)
    assert "expect_trace_stderr" not in ds
    assert ds["populations"].dims == ("time", "state") and ds["populations"].shape == (7, 2)
    np.testing.assert_array_equal(ds["populations_stderr"].values,
                                  result.arrays["populations_stderr"])
    np.testing.assert_array_equal(ds["energy"].values, result.energies)
    assert ds.attrs["ntraj"] == 50 and ds.attrs["seeds"] == [2]
    assert ds.attrs["method"] == "trajectories"


def test_exact_result_and_list_e_ops():
    pytest.importorskip("xarray")
    exact = jumps.exactsolve(0.5 * SZ, [0.6, 0.8], TLIST, [(SX, BATH)], e_ops=[SZ, SX])
    ds = exact.to_xarray()
    np.testing.assert_array_equal(ds["expect_e1"].values, exact.expect[1])
    assert ds["expect_e0"].attrs["label"] == "0"
    assert not [name for name in ds.data_vars if "stderr" in name or "std_" in name]
    assert ds.attrs["method"] == "exact" and ds.attrs["ntraj"] == 0


def test_without_xarray_the_error_says_how_to_install_it(monkeypatch):
    exact = jumps.exactsolve(0.5 * SZ, [0.6, 0.8], TLIST[:2], [(SX, BATH)], e_ops=[SZ])
    monkeypatch.setitem(sys.modules, "xarray", None)  # import xarray raises ImportError
    with pytest.raises(ImportError, match="pip install xarray"):
        exact.to_xarray()
