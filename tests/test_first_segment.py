"""The first segment from an initial vector, tabulated once per chunk (channels/first.py).

Same seeds with and without the tables (``run_chunk(..., tables=False)``): every integer
count and record identical (the tables give each trajectory the same jump decisions, on the
same numbers), every float sum equal to rounding (``count * value`` instead of ``count``
additions). Product states and a superposition, several chunks and lane counts, the diagonal
of rho and observables; with the full density matrix the tables are off.
"""

import numpy as np
import pytest

from jumps.core.random import seed_key
from jumps.generators.channels import kernels, unravel
from jumps.generators.channels.generator import build_generator
from jumps.physics import baths, models


def tfim(n=4, hz=0.0):
    model = models.tfim_chain({"n": n, "J": 1.0, "h": 1.0, "hz": hz})
    g = build_generator(model.hamiltonian, [model.operators[f"sx:{j}"] for j in range(n)],
                        [baths.ohmic(0.05, 5.0, 1.0) for _ in range(n)], lamb_shift=True)
    return model, g


def product(n, spins):
    up, down = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    plus = (up + down) / np.sqrt(2)
    state = np.ones(1)
    for s in spins:
        state = np.kron(state, {"u": up, "d": down, "+": plus}[s])
    return state


def run(g, model, psi0, times, density, count, tables, lanes, chunk):
    engine = unravel.pack_engine(g)
    initial = unravel.make_initial(g, psi0)
    observables = {"sz0": model.operators["sz:0"]}
    template = unravel.new_tally(g, engine, times, observables, density, chunk)
    tallies = []
    for first in range(0, count, chunk):
        tally = unravel.fresh_tally(template, chunk)
        kernels.run_chunk(engine, initial, tally, seed_key(11), first, chunk, lanes, tables)
        tallies.append(tally)
    return tallies


@pytest.mark.parametrize("spins,hz,density,lanes,chunk", [
    ("uuuu", 0.0, "diagonal", 16, 300),
    ("u+du", 0.0, "diagonal", 1, 200),
    ("uuuu", 0.3, "none", 4, 600),
    ("uu", 0.0, "full", 16, 300),
])
def test_tables_change_sums_by_rounding_only(spins, hz, density, lanes, chunk):
    n = len(spins)
    model, g = tfim(n, hz)
    times = np.linspace(0.0, 20.0, 41)
    count = 600
    a = run(g, model, product(n, spins), times, density, count, True, lanes, chunk)
    b = run(g, model, product(n, spins), times, density, count, False, lanes, chunk)
    compared = 0
    for ta, tb in zip(a, b):
        for name in ta._fields:
            x, y = np.asarray(getattr(ta, name)), np.asarray(getattr(tb, name))
            if name == "buffer":  # rows past fill[k] are scratch
                assert np.array_equal(ta.fill, tb.fill)
                x = np.concatenate([x[k, :n] for k, n in enumerate(ta.fill)] + [x[:0, 0]])
                y = np.concatenate([y[k, :n] for k, n in enumerate(tb.fill)] + [y[:0, 0]])
            if x.dtype.kind in "iub":
                assert np.array_equal(x, y), name
            elif x.dtype.kind in "fc" and x.size:
                if density == "full":
                    assert np.array_equal(x, y, equal_nan=True), name
                else:
                    scale = max(float(np.max(np.abs(x[np.isfinite(x)]), initial=0.0)), 1e-300)
                    assert np.allclose(x, y, rtol=0, atol=1e-13 * scale, equal_nan=True), name
                compared += 1
    assert compared > 5
    if density != "full":  # the tables were used: the first segments' sums are there
        assert a[0].pop_sum[0].sum() == pytest.approx(chunk, rel=1e-12)
