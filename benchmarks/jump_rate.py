#!/usr/bin/env python3
"""Jumps per second per core of the pure-mode trajectory kernel on a 1024-level system.

System: open 10-spin TFIM chain ``H = -sum sz sz - h sum sx - hz sum sz`` with h = 1.05,
hz = 0.5 (non-integrable: no degenerate levels), an independent Ohmic bath on every site
through sigma_x (eta = 0.01, cutoff 5, beta = 1), t in [0, t_final] on ``--times`` points.
The trajectories start in one eigenstate (default the highest), so every state of every
trajectory is a single non-degenerate eigenstate: the kernel's pure mode (a classical Markov
chain: alias draw of the target level, then the bath; interleaved lanes) from start to end.

Measured, in one process:

1. generator build (``build_generator``, with the Lamb shift as ``python -m jumps run`` does by
   default) and packing (``unravel.pack_engine``); sizes of the tables a jump reads;
2. Numba compile/cache-load time of the first ``kernels.run_chunk`` call (excluded below);
3. ``kernels.run_chunk`` on ``--trajectories`` trajectories, ``--repeats`` times with fresh
   tallies and disjoint trajectory indices: jumps/s from wall-clock time and from process CPU
   time; the median is the result (target: >= 5e6 jumps/s per core);
4. where the time goes, with the real code: the per-trajectory cost of a trajectory with no
   jump (t_final -> 0), and the same trajectories through ``unravel.ChunkRunner`` (what the
   driver runs: a fresh tally per chunk, then the merge), in chunks of ``--chunk``.

5. with ``--baseline REV``: the same kernel call of this checkout and of the package at git
   revision ``REV`` (:func:`common.baseline_package`), alternated in one process on
   ``--paired`` pairs of fresh trajectory sets (order swapped every pair); the median of the
   per-pair ratios is the result. A shared, noisy machine slows both sides of a pair alike,
   where separate runs minutes apart differ by 10-20%.

    python benchmarks/jump_rate.py                   # defaults of the issue
    python benchmarks/jump_rate.py --spins 8 --no-lamb-shift --repeats 3
    python benchmarks/jump_rate.py --baseline 27b4146 --no-lamb-shift   # before/after, paired
    python benchmarks/jump_rate.py --baseline 27b4146 --no-lamb-shift --baseline-first
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

import numpy as np
from common import (
    array_bytes,
    baseline_package,
    format_table,
    l3_cache_bytes,
    load_average,
    median,
    tfim_system,
    timed,
)

from jumps.core.random import seed_key
from jumps.generators.channels import kernels, unravel
from jumps.runtime.plan import default_chunk_size

TARGET_JUMPS_PER_SECOND = 5e6


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spins", type=int, default=10, help="chain length (d = 2^spins)")
    parser.add_argument("--h", type=float, default=1.05, help="transverse field")
    parser.add_argument("--hz", type=float, default=0.5, help="longitudinal field")
    parser.add_argument("--eigenstate", type=int, default=-1,
                        help="initial eigenstate index (ascending energies; -1 = highest)")
    parser.add_argument("--trajectories", type=int, default=20000, help="per timed repetition")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--t-final", type=float, default=50.0)
    parser.add_argument("--times", type=int, default=101, help="number of output times")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=default_chunk_size(20000),
                        help="chunk size for the ChunkRunner measurement (default: the driver's "
                             "choice for a 20000-trajectory run)")
    parser.add_argument("--no-lamb-shift", dest="lamb_shift", action="store_false",
                        help="build without the Lamb shift (much faster build; pure-mode "
                             "trajectories do not depend on it)")
    parser.add_argument("--baseline", metavar="REV",
                        help="git revision to compare with, alternated in this process")
    parser.add_argument("--paired", type=int, default=40,
                        help="pairs of kernel calls for --baseline (default 40)")
    parser.add_argument("--baseline-first", action="store_true",
                        help="with --baseline: compile/load the baseline's kernels first. The "
                             "copy loaded first tends to run a few percent faster in a paired "
                             "process (code placement): run both orders and take the geometric "
                             "mean of the two median ratios")
    return parser.parse_args()


def kernel_rates(engine, initial, template, key, count: int, repeats: int) -> list[dict]:
    """Time ``repeats`` calls of ``run_chunk`` on ``count`` fresh trajectories each.

    The integer counters persist across calls, as in the driver (``ChunkRunner``): a fresh
    84 MB transition-count array per call would time the kernel's first touch of its pages."""
    rows = []
    counters = {name: np.zeros_like(getattr(template, name)) for name in unravel.INT_FIELDS}
    for repeat in range(repeats):
        tally = unravel.fresh_tally(template, count, counters)
        first = (repeat + 1) * count  # disjoint from the warm-up trajectory 0
        t = timed(kernels.run_chunk, engine, initial, tally, key, first, count)
        jumps = int(t.value)
        rows.append({"wall": t.wall, "cpu": t.cpu, "jumps": jumps,
                     "wall_rate": jumps / t.wall, "cpu_rate": jumps / t.cpu})
    return rows


def kernel_setup(package: str, args) -> dict:
    """The pure-mode kernel call of the package ``package`` (this checkout's ``jumps`` or a
    baseline copy), built with that package's own code; compiled or loaded once."""
    def module(name: str):
        return importlib.import_module(f"{package}.{name}")

    models, baths_ = module("physics.models"), module("physics.baths")
    generator_module = module("generators.channels.generator")
    pack, kern = module("generators.channels.unravel"), module("generators.channels.kernels")
    model = models.tfim_chain({"n": args.spins, "J": 1.0, "h": args.h, "hz": args.hz})
    generator = generator_module.build_generator(
        model.hamiltonian, [model.operators[f"sx:{j}"] for j in range(args.spins)],
        [baths_.ohmic(0.01, 5.0, 1.0) for _ in range(args.spins)], lamb_shift=args.lamb_shift)
    engine = pack.pack_engine(generator)
    initial = pack.make_initial(generator, generator.eigenvectors[:, args.eigenstate])
    times = np.linspace(0.0, args.t_final, args.times)
    template = pack.new_tally(generator, engine, times, {}, "none", 0,
                              amplitude=pack.amplitude_possible(engine, initial))
    key = module("core.random").seed_key(args.seed)
    kern.run_chunk(engine, initial, pack.fresh_tally(template, 1), key, 0, 1)
    counters = {name: np.zeros_like(getattr(template, name)) for name in pack.INT_FIELDS}
    return {"kernels": kern, "unravel": pack, "engine": engine, "initial": initial,
            "template": template, "key": key, "counters": counters}


def paired_rates(sides: dict[str, dict], count: int, pairs: int) -> dict[str, list[float]]:
    """Jumps per CPU second of each side's kernel on the same ``count`` fresh trajectories,
    alternated ``pairs`` times (order swapped every pair)."""
    rates: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for p in range(pairs):
        for name in names if p % 2 == 0 else names[::-1]:
            side = sides[name]
            tally = side["unravel"].fresh_tally(side["template"], count, side["counters"])
            start = time.process_time()
            jumps = side["kernels"].run_chunk(side["engine"], side["initial"], tally,
                                              side["key"], (p + 1) * count, count)
            rates[name].append(int(jumps) / (time.process_time() - start))
    return rates


def compare_baseline(args) -> None:
    """Section 5: this checkout against ``--baseline``, paired."""
    baseline = baseline_package(args.baseline)
    sides = {}
    order = [("this checkout", "jumps"), (f"baseline {args.baseline}", baseline)]
    if args.baseline_first:
        order.reverse()
    for label, package in order:
        start = time.perf_counter()
        sides[label] = kernel_setup(package, args)
        print(f"# {label} ({package}): built and compiled/loaded in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    rates = paired_rates(sides, args.trajectories, args.paired)
    here, base = np.array(rates["this checkout"]), np.array(rates[f"baseline {args.baseline}"])
    ratio = here / base
    quartiles = lambda x: np.quantile(x, [0.25, 0.5, 0.75])
    print(f"\n# paired kernel calls, {args.paired} pairs of {args.trajectories} trajectories")
    print(format_table(["side", "M jumps/s cpu q25", "median", "q75"],
                       [[name, *(quartiles(np.array(r)) / 1e6)] for name, r in rates.items()]
                       + [["ratio this/baseline", *quartiles(ratio)]]))
    print(f"# this checkout runs at {np.median(ratio):.3f} x the baseline's jump rate "
          f"(median of per-pair ratios; {'baseline' if args.baseline_first else 'this checkout'}"
          f" loaded first)")


def empty_trajectory_cost(generator, engine, initial, key, count: int) -> float:
    """CPU microseconds per trajectory that ends before its first jump (t_final = 1e-9)."""
    times = np.array([0.0, 1e-9])
    template = unravel.new_tally(generator, engine, times, {}, "none", 0)
    kernels.run_chunk(engine, initial, unravel.fresh_tally(template, 1), key, 0, 1)
    costs = []
    for repeat in range(3):
        tally = unravel.fresh_tally(template, count)
        costs.append(timed(kernels.run_chunk, engine, initial, tally, key, 0, count).cpu)
    return median(costs) / count * 1e6


def driver_rate(engine, initial, template, key, count: int, chunk: int) -> dict:
    """The same number of trajectories through ``ChunkRunner`` in chunks of ``chunk``."""
    runner = unravel.ChunkRunner(engine, initial, template, key, count)

    def run_all() -> int:
        return sum(runner.run(first, min(chunk, count - first)) for first in range(0, count, chunk))

    t = timed(run_all)
    return {"chunk": chunk, "chunks": -(-count // chunk), "wall": t.wall, "cpu": t.cpu,
            "jumps": int(t.value)}


def main() -> int:
    args = parse_args()
    if args.baseline:
        compare_baseline(args)
        return 0
    print(f"# jump_rate: {args.spins}-spin TFIM h={args.h} hz={args.hz}, sigma_x Ohmic baths "
          f"eta=0.01 wc=5 beta=1, t in [0, {args.t_final}] ({args.times} points), "
          f"start in eigenstate {args.eigenstate}")
    print(f"# {load_average()} (before)")
    build = timed(tfim_system, args.spins, args.h, args.hz, 0.01, 5.0, 1.0, args.lamb_shift)
    _, generator = build.value
    pack = timed(unravel.pack_engine, generator)
    engine = pack.value
    d = generator.dimension
    degenerate = int(np.sum(generator.level_sizes > 1))
    per_jump_tables = array_bytes([engine.pairs, engine.trans_weight, engine.trans_bath])
    # trans_counts: one int64 per transition-table entry.
    counters = 8 * engine.trans_channel.size
    l3 = l3_cache_bytes()
    print(format_table(
        ["quantity", "value"],
        [["dimension d", d], ["levels (degenerate)", f"{generator.n_levels} ({degenerate})"],
         ["channels (bath, Bohr frequency)", generator.n_channels],
         ["transition-table entries", engine.trans_channel.size],
         ["level pairs (source, target)", engine.pairs.size],
         ["build_generator s (wall / cpu)", f"{build.wall:.1f} / {build.cpu:.1f}"
          + ("" if args.lamb_shift else "  [no Lamb shift]")],
         ["pack_engine s (wall / cpu)", f"{pack.wall:.1f} / {pack.cpu:.1f}"],
         ["tables a jump reads from (MB)", f"{per_jump_tables / 1e6:.0f}"],
         ["counters written per jump, per tally (MB)", f"{counters / 1e6:.0f}"],
         ["last-level cache (MB)", f"{l3 / 1e6:.0f}" if l3 else "unknown"]]))
    if degenerate:
        print("# warning: degenerate levels: trajectories may leave pure mode", file=sys.stderr)

    times = np.linspace(0.0, args.t_final, args.times)
    initial = unravel.make_initial(generator, generator.eigenvectors[:, args.eigenstate])
    # As the driver does: a run that never leaves pure mode gets no amplitude-mode sums.
    template = unravel.new_tally(generator, engine, times, {}, "none", 0,
                                 amplitude=unravel.amplitude_possible(engine, initial))
    key = seed_key(args.seed)
    compile_time = timed(kernels.run_chunk, engine, initial, unravel.fresh_tally(template, 1),
                         key, 0, 1)
    print(f"\n# first run_chunk call (Numba compile or cache load, excluded below): "
          f"{compile_time.wall:.2f} s")

    rows = kernel_rates(engine, initial, template, key, args.trajectories, args.repeats)
    table = [[i + 1, args.trajectories, r["jumps"], r["jumps"] / args.trajectories, r["wall"],
              r["cpu"], r["wall_rate"] / 1e6, r["cpu_rate"] / 1e6] for i, r in enumerate(rows)]
    wall_rate = median(r["wall_rate"] for r in rows)
    cpu_rate = median(r["cpu_rate"] for r in rows)
    table.append(["median", "", "", "", median(r["wall"] for r in rows),
                  median(r["cpu"] for r in rows), wall_rate / 1e6, cpu_rate / 1e6])
    print(f"\n# kernels.run_chunk, pure mode, {args.repeats} repetitions")
    print(format_table(["rep", "traj", "jumps", "jumps/traj", "wall s", "cpu s",
                        "Mjumps/s wall", "Mjumps/s cpu"], table))
    verdict = "met" if cpu_rate >= TARGET_JUMPS_PER_SECOND else "MISSED"
    print(f"# target >= {TARGET_JUMPS_PER_SECOND / 1e6:g} M jumps/s per core: {verdict} "
          f"(median {cpu_rate / 1e6:.3g} M/s on CPU time, {wall_rate / 1e6:.3g} M/s wall)")

    jumps_per_traj = median(r["jumps"] for r in rows) / args.trajectories
    cpu_per_traj = median(r["cpu"] for r in rows) / args.trajectories * 1e6
    empty = empty_trajectory_cost(generator, engine, initial, key, 20 * args.trajectories)
    per_jump = (cpu_per_traj - empty) / max(jumps_per_traj, 1e-300) * 1e3
    driver = driver_rate(engine, initial, template, key, args.trajectories, args.chunk)
    kernel_cpu = median(r["cpu"] for r in rows)
    print("\n# where the CPU time goes (real code)")
    print(format_table(["part", "value"], [
        ["CPU us per trajectory (median)", f"{cpu_per_traj:.2f}"],
        ["  of which: trajectory without jumps (seed, initial state, tally rows)", f"{empty:.2f}"],
        ["  of which: per jump (ns)", f"{per_jump:.0f}"],
        [f"ChunkRunner, {driver['chunks']} chunks of {driver['chunk']}: cpu s", f"{driver['cpu']:.3f}"],
        ["  kernel alone (median above): cpu s", f"{kernel_cpu:.3f}"],
        ["  per-chunk overhead (fresh tally + merge), cpu ms",
         f"{(driver['cpu'] - kernel_cpu) / driver['chunks'] * 1e3:.2f}"],
        ["  jumps/s through ChunkRunner (cpu)", f"{driver['jumps'] / driver['cpu'] / 1e6:.3g} M"],
    ]))
    print(f"# {load_average()} (after)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
