"""The rates generator (jumps.rates) and its trajectories (jumps.rate_kernels, rate_unravel).

Oracles: the channel generator (jumps.davies) of the same system, built independently (its
per-entry rates gamma_a(w) |<n|A_a|m>|^2 and its Lamb-shift blocks); the Pauli rate equation
dp/dt = (R - diag(sum R)) p solved by expm; exact per-bath expectations given the simulated
occupation times. Stochastic tests use fixed seeds and 4-standard-error tolerances.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.linalg as sl

from jumps.core.random import seed_key
from jumps.errors import ConfigError
from jumps.generators.base import InitialState
from jumps.generators.channels import generator as davies
from jumps.generators.rates import generator as rates
from jumps.generators.rates import kernels as rate_kernels
from jumps.generators.rates import unravel as ru
from jumps.physics import baths, models
from jumps.runtime.plan import resolve_start


def chain(n: int = 5, hz: float = 0.5):
    """Non-integrable open TFIM chain (J = 1, h = 1.05): a non-degenerate spectrum."""
    model = models.tfim_chain({"n": n, "J": 1.0, "h": 1.05, "hz": hz})
    return model, [model.sparse_operator(f"sx:{j}") for j in range(n)]


def mixed_baths(n: int):
    """Two bath groups (Ohmic at T = 1 and Drude-Lorentz at beta = 0.7): the bath choice
    then needs the per-group rates, not only matrix elements."""
    return [baths.ohmic(0.05, 5.0, 1.0)] * (n - 1) + [baths.drude_lorentz(0.05, 2.0, 0.7)]


def per_bath_rates(g: davies.DaviesGenerator, n_baths: int) -> np.ndarray:
    """(a, m, n) rates from the channel generator: the oracle."""
    out = np.zeros((n_baths, g.dimension, g.dimension))
    bath = g.channel_bath[g.entry_channel]
    np.add.at(out, (bath, g.entry_col, g.entry_row), g.entry_rate)
    return out


@pytest.fixture(scope="module")
def pair():
    """The rates generator (8-bit split: many exact decisions) and the channel generator."""
    model, couplings = chain()
    bath_list = mixed_baths(len(couplings))
    r = rates.build_rate_generator(model.sparse_hamiltonian, couplings, bath_list,
                                   set_size=len(bath_list))
    g = davies.build_generator(model.hamiltonian, [c.toarray() for c in couplings], bath_list)
    return model, couplings, bath_list, r, g


def expected_split(per_bath: np.ndarray, set_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact two-level split from per-bath rates (a, m, n): cumulative fractions of the
    sets (m, n, sets - 1) and of the baths within each set (m, n, n_baths - sets)."""
    n_baths = per_bath.shape[0]
    total = per_bath.sum(axis=0)
    edges = list(range(0, n_baths, set_size)) + [n_baths]
    sets = [per_bath[lo:hi] for lo, hi in itertools.pairwise(edges)]
    with np.errstate(invalid="ignore", divide="ignore"):
        coarse = [np.where(total > 0, sum(s.sum(axis=0) for s in sets[:g + 1]) / total, 0.0)
                  for g in range(len(sets) - 1)]
        fine = []
        for s in sets:
            in_set = s.sum(axis=0)
            fine += [np.where(in_set > 0, s[:j + 1].sum(axis=0) / in_set, 0.0)
                     for j in range(len(s) - 1)]
    def stack(parts):
        return np.stack(parts, axis=-1) if parts else np.zeros(total.shape + (0,))

    return stack(coarse), stack(fine)


@pytest.fixture(scope="module", params=[1, 2, 3, 5])
def any_split(request, pair):
    """Rates generators of the same chain with every kind of bath split: 16 bits (sets of 1),
    sets of 2 (the last one a single bath) and 3 (3 + 2), 8 bits (one set of all 5 baths)."""
    model, couplings, bath_list, r, g = pair
    if request.param != r.set_size:
        r = rates.build_rate_generator(model.sparse_hamiltonian, couplings, bath_list,
                                       set_size=request.param)
    return r, g


def test_rates_match_the_channel_generator(any_split):
    """Total rates m -> n recovered from the alias tables, and the level rates, equal the
    channel generator's sum over channels of gamma |A|^2 (1e-12 relative: rounding); the
    energies agree; every rounded boundary of the two-level bath split is within half a
    quantum (+1e-6) of the exact cumulative fraction."""
    r, g = any_split
    per_bath = per_bath_rates(g, r.n_baths)
    total = per_bath.sum(axis=0)
    scale = total.max()
    np.testing.assert_allclose(r.energies, g.energies, atol=1e-12)
    np.testing.assert_allclose(r.total_rates(np.arange(r.dimension)), total, atol=1e-12 * scale)
    np.testing.assert_allclose(r.level_rate, total.sum(axis=1), rtol=1e-12)
    coarse, fine = expected_split(per_bath, r.set_size)
    d = r.dimension
    assert coarse.shape[-1] == r.n_sets - 1 and fine.shape[-1] == r.n_baths - r.n_sets
    stored_coarse = r.coarse_split.reshape(d, d, -1).astype(float)
    stored_fine = r.fine_split.reshape(d, d, -1).astype(float)
    assert np.max(np.abs(coarse * rates.COARSE_SCALE - stored_coarse), initial=0) <= 0.5 + 1e-6
    assert np.max(np.abs(fine * rates.FINE_SCALE - stored_fine), initial=0) <= 0.5 + 1e-6


def test_diagonal_lamb_shift_matches_the_channel_generator(pair):
    """H_LS is diagonal for a non-degenerate spectrum: equal to the channel generator's
    Lamb-shift blocks (1e-9 of max|S|: the Chebyshev table's stated 1e-10 plus sums)."""
    _, _, _, r, g = pair
    reference = np.real(np.diag(g.dense_blocks(g.lamb_shift_blocks)))
    np.testing.assert_allclose(r.lamb_shift, reference, atol=1e-9 * np.abs(reference).max())


def test_complex_system_matches_the_channel_generator():
    """A random complex Hamiltonian with complex couplings (the complex eigenvector path and
    the conjugated products): rates and bath split as above."""
    rng = np.random.default_rng(4)
    d = 12

    def hermitian():
        m = rng.standard_normal((d, d)) + 1j * rng.standard_normal((d, d))
        return (m + m.conj().T) / 2

    H, couplings = hermitian(), [hermitian(), hermitian()]
    bath_list = [baths.ohmic(0.05, 5.0, 1.0), baths.ohmic(0.02, 3.0, 2.0)]
    r = rates.build_rate_generator(H, couplings, bath_list, set_size=1)
    g = davies.build_generator(H, couplings, bath_list)
    total = per_bath_rates(g, 2).sum(axis=0)
    assert np.iscomplexobj(r.vectors)
    np.testing.assert_allclose(r.total_rates(np.arange(d)), total, atol=1e-12 * total.max())


def test_degenerate_spectrum_is_refused():
    """Collective qubits have degenerate levels: a ConfigError naming the system."""
    model = models.collective_qubits({"n": 3})
    with pytest.raises(ConfigError, match="degenerate levels"):
        rates.build_rate_generator(model.sparse_hamiltonian, [model.sparse_operator("Sx")],
                                   [baths.ohmic(0.05, 5.0, 1.0)])


def run_rates(r, kind: str, times, ntraj: int, seed: int, chunk: int = 1000):
    engine = ru.pack_rate_engine(r)
    initial = ru.make_rate_initial(r, resolve_start(r, InitialState(kind, index=-1)))
    runner = ru.RateChunkRunner(engine, initial, times, seed_key(seed), ntraj)
    for first in range(0, ntraj, chunk):
        runner.run(first, min(chunk, ntraj - first))
    return runner, ru.finalize_rates(r, runner.sums(), ntraj, [], np.zeros((0, r.dimension)), "none")


def test_populations_follow_the_pauli_rate_equation(pair):
    """From the highest eigenstate, trajectory populations agree with expm of the Pauli rate
    matrix of the channel generator within 4 standard errors at every time point where
    N p >= 20 (binomial errors; fewer counts are not Gaussian). Also: error bars honest
    (about 95% of the points within 2 sigma), and the points tested are many."""
    _, _, _, r, g = pair
    times = np.linspace(0.0, 40.0, 21)
    ntraj = 20000
    _, out = run_rates(r, "eigenstate", times, ntraj, seed=3)
    R = g.rate_matrix().toarray()
    generator = R - np.diag(R.sum(axis=0))
    start = np.zeros(r.dimension)
    start[-1] = 1.0
    exact = np.array([sl.expm(generator * t) @ start for t in times])
    np.testing.assert_array_equal(out["populations"][0], start)
    tested = exact * ntraj >= 20
    tested[0] = False  # t = 0: exact, zero error bar (checked above)
    z = (out["populations"] - exact)[tested] / out["populations_stderr"][tested]
    assert tested.sum() > 200
    assert np.max(np.abs(z)) < 4.0
    assert 0.9 < np.mean(np.abs(z) < 2.0) < 0.99


def test_bath_attribution_is_exact(any_split):
    """Each bath's jump count against its expectation given the simulated path,
    sum_m R_a(m) T_occ(m) (R_a the channel generator's rate out of m into bath a, T_occ the
    run's occupation times): within 4 Poisson standard errors, with two bath groups and every
    kind of bath split (the 8-bit parts send a few percent of the decisions to the exact path:
    counted)."""
    r, g = any_split
    runner, out = run_rates(r, "eigenstate", np.linspace(0.0, 40.0, 5), 20000, seed=8)
    per_bath = per_bath_rates(g, r.n_baths).sum(axis=2)      # (a, m): rate out into a
    expected = per_bath @ out["occupation_time"]
    counts = np.bincount(out["transition_bath"], weights=out["transition_count"],
                         minlength=r.n_baths)
    z = (counts - expected) / np.sqrt(expected)
    assert np.max(np.abs(z)) < 4.0, z
    if r.set_size > 1:
        assert runner.exact_decisions > 200 * (r.set_size - 1)
    # Every counted transition is a jump: w != 0 (n_jumps) or a dephasing event (w = 0).
    assert counts.sum() == runner.records["n_jumps"].sum() + runner.records["dephasings"].sum()


@pytest.mark.parametrize("forced_exact", [False, True])
def test_bath_choice_of_one_pair_is_exact(any_split, monkeypatch, forced_exact):
    """The bath of every jump m -> n of one pair, drawn by the kernel the runs use
    (``run_rate_chunk``: >= 20000 draws), against the channel generator's per-bath shares of
    that pair: every bath within 4 binomial standard errors. ``forced_exact`` runs the kernel
    as plain Python (its ``py_func``; the prefetch hint, an LLVM intrinsic, becomes a no-op)
    with every rounded decision made ambiguous (``_rounded_bath`` -> -1), so that the exact
    paths of both levels (all baths for the set, the set's baths for the bath in it) decide
    alone; otherwise the rounded 16- and 8-bit splits decide almost always."""
    r, g = any_split
    per_bath = per_bath_rates(g, r.n_baths)                  # (a, m, n): R_a(m -> n)
    d = r.dimension
    pair_rate = per_bath.sum(axis=0)
    share = per_bath / np.maximum(pair_rate, 1e-300)
    # The pair whose least-likely bath is most likely (every bath well tested), weighted by
    # how often the pair is taken from its source.
    taken = pair_rate / np.maximum(pair_rate.sum(axis=1, keepdims=True), 1e-300)
    m, n = np.unravel_index(np.argmax(share.min(axis=0) * taken), (d, d))
    run = rate_kernels.run_rate_chunk
    if forced_exact:
        monkeypatch.setattr(rate_kernels, "_rounded_bath", lambda *args: -1)
        monkeypatch.setattr(rate_kernels, "prefetch", lambda array, index: None)
        run = run.py_func
    ntraj, capacity = 300, 200000
    times = np.array([0.0, 100.0 / r.level_rate[m]])
    tally = ru.new_rate_tally(d, times, r.n_baths, ntraj, capacity)
    run(ru.pack_rate_engine(r), ru.make_rate_initial(r, InitialState("eigenstate", index=m)),
        tally, seed_key(12), 0, ntraj)
    jumps = int(tally.n_taken[0])
    assert jumps <= capacity
    keys = tally.taken[:jumps]
    chosen = (keys // (d * d))[((keys // d) % d == m) & (keys % d == n)]
    draws = chosen.size
    assert draws >= 20000
    counts = np.bincount(chosen, minlength=r.n_baths)
    p = share[:, m, n]
    assert p.min() > 0.05
    z = (counts - draws * p) / np.sqrt(draws * p * (1 - p))
    assert np.max(np.abs(z)) < 4.0, z
    if forced_exact:
        assert tally.exact_decisions[0] >= jumps
    elif r.set_size == 1:  # a flat 16-bit split: ~1.5e-5 exact decisions per boundary
        assert tally.exact_decisions[0] < 10 * jumps / 20000


def test_heat_is_minus_the_energy_change(pair):
    """Energy bookkeeping per trajectory: the heat handed to all baths is the energy the
    system lost, E(start) - E(end), exactly up to rounding of the sum (1e-10)."""
    _, _, _, r, _ = pair
    engine = ru.pack_rate_engine(r)
    initial = ru.make_rate_initial(r, InitialState("eigenstate", index=-1))
    tally = ru.new_rate_tally(r.dimension, np.linspace(0.0, 30.0, 2), r.n_baths, 50, 100000,
                              log=100000)
    rate_kernels.run_rate_chunk(engine, initial, tally, seed_key(2), 0, 50, 1)
    keys = tally.log_code[:tally.log_count[0]]
    d = r.dimension
    source, target = (keys // d) % d, keys % d
    np.testing.assert_array_equal(tally.log_levels[:tally.log_count[0]].T, [source, target])
    events = tally.n_jumps + tally.dephasings.sum(axis=1)  # every logged jump, w = 0 included
    ends = np.split(target, np.cumsum(events)[:-1])
    final = np.array([e[-1] if e.size else d - 1 for e in ends])
    np.testing.assert_allclose(tally.heat.sum(axis=1), r.energies[-1] - r.energies[final],
                               atol=1e-10)
    # Each jump starts where the previous one of its trajectory ended.
    for path_source, path_target in zip(np.split(source, np.cumsum(events)[:-1]), ends):
        assert np.array_equal(path_source[1:], path_target[:-1])


def test_records_do_not_depend_on_lanes_or_chunks(pair):
    """One lane and 16 lanes, one chunk and uneven chunks: identical per-trajectory heat and
    jumps, transition counts and level counts (each trajectory draws from its own stream)."""
    _, _, _, r, _ = pair
    times = np.linspace(0.0, 20.0, 11)
    engine = ru.pack_rate_engine(r)
    initial = ru.make_rate_initial(r, InitialState("eigenstate", index=-1))

    def tally(lanes):
        t = ru.new_rate_tally(r.dimension, times, r.n_baths, 300, 100000)
        rate_kernels.run_rate_chunk(engine, initial, t, seed_key(5), 0, 300, lanes)
        return t

    one, many = tally(1), tally(16)
    for name in ("heat", "n_jumps", "dephasings", "first_jump_time", "final_level",
                 "level_counts", "n_taken"):
        assert np.array_equal(getattr(one, name), getattr(many, name)), name
    assert np.array_equal(np.sort(one.taken[:one.n_taken[0]]), np.sort(many.taken[:many.n_taken[0]]))
    chunked, _ = run_rates(r, "eigenstate", times, 300, seed=5, chunk=37)
    whole, _ = run_rates(r, "eigenstate", times, 300, seed=5, chunk=300)
    for name, values in whole.records.items():
        assert np.array_equal(chunked.records[name], values), name
    for key, value in whole.sums().items():
        np.testing.assert_allclose(chunked.sums()[key], value, rtol=1e-13, err_msg=key)


def test_gibbs_start_stays_gibbs():
    """Started in the Gibbs state the populations stay Gibbs (stationarity of the Pauli
    equation with KMS rates): 4 standard errors at every time, levels with N p >= 20."""
    model, couplings = chain()
    one_temperature = [baths.ohmic(0.05, 5.0, 1.0)] * len(couplings)
    r = rates.build_rate_generator(model.sparse_hamiltonian, couplings, one_temperature)
    ntraj = 20000
    _, out = run_rates(r, "gibbs", np.linspace(0.0, 30.0, 7), ntraj, seed=11)
    gibbs = r.gibbs_populations()
    tested = gibbs * ntraj >= 20
    z = (out["populations"][:, tested] - gibbs[tested]) / out["populations_stderr"][:, tested]
    assert np.max(np.abs(z)) < 4.0
    assert r.components == 1


def test_initial_superposition_is_refused(pair):
    """A plan of the rates generator from a pure state that is no eigenstate is refused,
    naming the field (the rule lives in the generator's unravelling)."""
    from jumps.runtime.plan import Plan

    _, _, _, r, _ = pair
    state = InitialState("product", vector=np.ones(r.dimension) / np.sqrt(r.dimension))
    with pytest.raises(ConfigError, match="initial_state.kind"):
        Plan.create(r, state, np.linspace(0.0, 1.0, 3), 10, 0, {}, "auto")


CONFIG = {
    "system": {"model": "tfim_chain", "params": {"n": 8, "J": 1.0, "h": 1.05, "hz": 0.5}},
    "baths": [{"coupling": "sx:*", "spectral_density": "ohmic", "eta": 0.01, "cutoff": 5.0,
               "temperature": 1.0}],
    "initial_state": {"kind": "eigenstate", "index": -1},
    "run": {"t_final": 10.0, "n_times": 11, "trajectories": 100},
}


def test_generator_cache_round_trip(tmp_path, monkeypatch):
    """auto picks the rates generator at d = 256 from an eigenstate; the first build is
    cached, the second is loaded (memory-mapped) and equal array for array; another
    temperature is another key; run.cache = false never writes."""
    import copy

    from jumps.runtime import build as build_module
    from jumps.runtime.config import parse_config

    monkeypatch.setenv("JUMPS_CACHE_DIR", str(tmp_path))
    config = parse_config(copy.deepcopy(CONFIG))
    first, info = build_module.build(config)
    assert info["kind"] == "rates" and info["cached"] is None
    second, info = build_module.build(config)
    assert info["cached"] is not None
    for name in ("energies", "vectors", "level_rate", "threshold", "alias", "coarse_split",
                 "fine_split", "lamb_shift"):
        assert np.array_equal(getattr(first, name), getattr(second, name)), name
    assert first.set_size == second.set_size
    warmer = copy.deepcopy(CONFIG)
    warmer["baths"][0]["temperature"] = 2.0
    assert (build_module.cache_key(parse_config(warmer), "rates")
            != build_module.cache_key(config, "rates"))
    off = copy.deepcopy(CONFIG)
    off["run"]["cache"] = False
    assert build_module.cache_directory(parse_config(off), "rates") is None


def test_auto_falls_back_to_channels_for_a_degenerate_spectrum(tmp_path, monkeypatch):
    """The spectrum of 8 collective qubits is degenerate: auto builds the channel generator
    instead; an explicit generator = 'rates' is a ConfigError."""
    from jumps.runtime import build as build_module
    from jumps.runtime.config import parse_config

    monkeypatch.setenv("JUMPS_CACHE_DIR", str(tmp_path))
    raw = {"system": {"model": "collective_qubits", "params": {"n": 8}},
           "baths": [{"coupling": "Sx", "spectral_density": "ohmic", "eta": 0.01, "cutoff": 5.0,
                      "temperature": 1.0}],
           "initial_state": {"kind": "eigenstate", "index": -1}}
    generator, info = build_module.build(parse_config(raw))
    assert info["kind"] == "channels" and isinstance(generator, davies.DaviesGenerator)
    raw["run"] = {"generator": "rates"}
    with pytest.raises(ConfigError, match="degenerate"):
        build_module.build(parse_config(raw))


def test_estimate_refuses_what_does_not_fit(monkeypatch):
    """A build that needs more memory than is available stops before building, with a
    ConfigError naming the system and both sizes."""
    import copy

    from jumps.runtime import build as build_module
    from jumps.runtime.config import parse_config

    monkeypatch.setattr(rates, "available_memory", lambda: 1e6)
    monkeypatch.setattr(build_module, "available_memory", lambda: 1e6)
    with pytest.raises(ConfigError, match="GiB"):
        build_module.check_fits(parse_config(copy.deepcopy(CONFIG)), "rates")


@pytest.mark.slow
def test_ten_spin_chain_follows_the_pauli_rate_equation():
    """Issue 6: the 10-spin non-integrable chain (J = 1, h = 1.05, hz = 0.5, sigma_x Ohmic
    bath on every site, T = 1) from its highest eigenstate. Oracle: the Pauli rate equation
    with R(m -> n) = sum_a gamma(E_m - E_n) |<n|sx_a|m>|^2 computed densely with numpy (not
    through jumps.rates), propagated by expm on the time grid. Populations with N p >= 20
    within 4 standard errors at every time, and error bars honest."""
    n = 10
    model, couplings = chain(n)
    bath = baths.ohmic(0.02, 5.0, 1.0)
    r = rates.build_rate_generator(model.sparse_hamiltonian, couplings, [bath] * n)
    energies, vectors = np.linalg.eigh(model.hamiltonian.real)
    gamma = bath.rates(energies[:, None] - energies[None, :])        # [m, n]: w = E_m - E_n
    R = sum(gamma * (vectors.T @ (c.toarray().real @ vectors)).T ** 2 for c in couplings)
    generator = R.T - np.diag(R.sum(axis=1))                          # dp/dt = generator p
    times = np.linspace(0.0, 60.0, 13)
    step = sl.expm(generator * (times[1] - times[0]))
    exact = [np.eye(r.dimension)[-1]]
    for _ in times[1:]:
        exact.append(step @ exact[-1])
    exact = np.array(exact)
    ntraj = 40000
    _, out = run_rates(r, "eigenstate", times, ntraj, seed=21, chunk=4000)
    tested = exact * ntraj >= 20
    tested[0] = False
    z = (out["populations"] - exact)[tested] / out["populations_stderr"][tested]
    assert tested.sum() > 500
    assert np.max(np.abs(z)) < 4.0
    assert 0.9 < np.mean(np.abs(z) < 2.0) < 0.99


def test_real_sparse_hamiltonian_with_a_complex_coupling():
    """Regression: a real (float) sparse H with a complex coupling (sigma_y) must work in
    complex arithmetic; the exact bath decisions then agree with the channel generator's
    per-bath rates (checked through the bath attribution over many draws of one pair)."""
    import scipy.sparse as sparse_module

    model = models.tfim_chain({"n": 3, "J": 1.0, "h": 1.05, "hz": 0.5})
    H = sparse_module.csr_matrix(model.hamiltonian.real)
    couplings = [model.sparse_operator("sy:0"), model.sparse_operator("sx:1")]
    bath_list = [baths.ohmic(0.05, 5.0, 1.0)] * 2
    r = rates.build_rate_generator(H, couplings, bath_list, set_size=len(bath_list))
    assert np.iscomplexobj(r.vectors)
    engine = ru.pack_rate_engine(r)
    g = davies.build_generator(model.hamiltonian, [c.toarray() for c in couplings], bath_list)
    per_bath = per_bath_rates(g, 2)
    m, n = 7, 2
    weights = np.zeros(2)
    rate_kernels._exact_weights(engine, m, n, 0, 2, weights)
    fractions = (np.arange(4000) + 0.5) / 4000
    chosen = np.array([rate_kernels._pick(weights, 0, 2, 1, f) for f in fractions])
    share = per_bath[0, m, n] / per_bath[:, m, n].sum()
    assert abs(np.mean(chosen == 0) - share) <= 1.0 / 4000 + 1e-12


def test_rates_generator_refuses_a_full_density_matrix():
    """generator = 'rates' with density_matrix = 'full' is refused by the config (before any
    work); with 'auto' at small d it stores the diagonal."""
    import copy

    from jumps.runtime.config import parse_config

    raw = copy.deepcopy(CONFIG)
    raw["run"].update(generator="rates", density_matrix="full")
    with pytest.raises(ConfigError, match="run.density_matrix"):
        parse_config(raw)


def test_python_api_runs_the_rates_generator():
    """jumps.rates_generator and unravel_generator(eigenstate=...) from sparse matrices, against
    the channel generator through the same API: <sz_0>(t) within 4 combined standard errors
    (independent runs), populations summing to one; psi0 is refused with a ConfigError."""
    import jumps

    model, couplings = chain(4)
    bath_list = [baths.ohmic(0.05, 5.0, 1.0)] * 4
    sz = model.sparse_operator("sz:0")
    times = np.linspace(0.0, 20.0, 6)
    fast = jumps.unravel_generator(jumps.rates_generator(model.sparse_hamiltonian, couplings,
                                                         bath_list),
                                   eigenstate=-1, times=times, trajectories=4000, seed=1,
                                   observables={"sz": sz})
    full = jumps.unravel_generator(jumps.davies_generator(model.hamiltonian,
                                                          [c.toarray() for c in couplings],
                                                          bath_list),
                                   eigenstate=-1, times=times, trajectories=4000, seed=2,
                                   observables={"sz": sz.toarray()}, density="none")
    error = np.hypot(fast.stderr["sz"], full.stderr["sz"])[1:]
    assert np.max(np.abs(fast.expect["sz"] - full.expect["sz"])[1:] / error) < 4.0
    np.testing.assert_allclose(fast.populations.sum(axis=1), 1.0, atol=1e-12)
    with pytest.raises(ConfigError, match="psi0"):
        jumps.unravel_generator(jumps.rates_generator(model.sparse_hamiltonian, couplings,
                                                      bath_list), psi0=np.eye(16)[0], times=times)
