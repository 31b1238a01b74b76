#!/usr/bin/env python3
"""Large systems: build time of the rates generator against the BLAS floor, memory, jumps/s.

System (issue 6): the non-integrable open TFIM chain ``H = -sum sz sz - h sum sx - hz sum sz``
with J = 1, h = 1.05, hz = 0.5, an independent Ohmic bath (eta = 0.01, cutoff 5, T = 1) on
every site through sigma_x, N = 8, 10, 12, 14 spins (d = 2^N).

Each N runs in a fresh process (so its peak memory is its own), which measures, in one run:

1. the BLAS floor: a real ``eigh`` of the dense H (LAPACK dsyevr, as the build uses) plus one
   d x d x d matrix product (V^T (A V)), counted once per coupling operator (after a warm-up
   call; median of 3 for N <= 12, once above);
2. ``jumps.generators.rates.generator.build_rate_generator`` (with the Lamb shift): wall time of the first build in
   the process (what a new run pays, including loading the compiled kernels) and its own split
   into ``eigh``, the matrix products and the rest; for N <= 12 also the median of 3 more builds
   in the same process ("warm": what each point of a study in one process pays);
3. jumps per second of the trajectory kernel (16 lanes, one process) from the highest
   eigenstate, t in [0, 50] on 101 points, over at least ``--seconds`` of CPU time;
4. peak resident memory of the process (``ru_maxrss``).

BLAS threads: the build uses all cores (OpenBLAS default); the kernel one.

    python benchmarks/large_systems.py                  # N = 8 10 12 14 (N = 14 takes ~1 h)
    python benchmarks/large_systems.py --spins 8 10 12
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import format_table, load_average


def one(spins: int, seconds: float) -> dict:
    import scipy.linalg as sl

    from jumps.core.random import seed_key
    from jumps.generators.base import InitialState
    from jumps.generators.rates import generator as rates
    from jumps.generators.rates import kernels as rate_kernels
    from jumps.generators.rates import unravel as ru
    from jumps.physics import baths, models

    model = models.tfim_chain({"n": spins, "J": 1.0, "h": 1.05, "hz": 0.5})
    couplings = [model.sparse_operator(f"sx:{j}") for j in range(spins)]
    bath_list = [baths.ohmic(0.01, 5.0, 1.0)] * spins
    d = 2**spins
    # 1. The floor: eigh, and one d^3 product (counted once per coupling), after a small
    # warm-up (the first LAPACK call of a process pays ~1 s of start-up); the median of 3 up
    # to N = 12.
    warm_up = np.random.default_rng(0).standard_normal((64, 64))
    sl.eigh(warm_up + warm_up.T, driver="evr")
    eighs, gemms = [], []
    for _ in range(3 if spins <= 12 else 1):
        dense = model.sparse_hamiltonian.real.toarray()
        start = time.perf_counter()
        _, vectors = sl.eigh(dense, driver="evr", overwrite_a=True, check_finite=False)
        eighs.append(time.perf_counter() - start)
        del dense
        applied = np.asarray(couplings[0].real @ vectors)
        start = time.perf_counter()
        product = vectors.T @ applied
        gemms.append(time.perf_counter() - start)
        del vectors, applied, product
    eigh, gemm = float(np.median(eighs)), float(np.median(gemms))
    floor = eigh + spins * gemm
    # 2. The build.
    start = time.perf_counter()
    generator = rates.build_rate_generator(model.sparse_hamiltonian, couplings, bath_list)
    build = time.perf_counter() - start
    warm = []
    for _ in range(3 if spins <= 12 else 0):
        start = time.perf_counter()
        rates.build_rate_generator(model.sparse_hamiltonian, couplings, bath_list)
        warm.append(time.perf_counter() - start)
    # 3. Jumps per second.
    engine = ru.pack_rate_engine(generator)
    initial = ru.make_rate_initial(generator, InitialState("eigenstate", index=-1))
    times = np.linspace(0.0, 50.0, 101)
    key = seed_key(1)
    rate_kernels.run_rate_chunk(engine, initial, ru.new_rate_tally(d, times, spins, 1, 10000),
                                key, 0, 1)
    count, first, cpu, jumps, exact = 256, 1, 0.0, 0, 0
    while cpu < seconds:
        tally = ru.new_rate_tally(d, times, spins, count, 200 * count + 10000)
        tick = time.process_time()
        jumps += int(rate_kernels.run_rate_chunk(engine, initial, tally, key, first, count))
        cpu += time.process_time() - tick
        exact += int(tally.exact_decisions[0])
        first += count
        count *= 2
    return {"N": spins, "d": d, "eigh": eigh, "gemm": gemm, "floor": floor, "build": build,
            "warm_build": float(np.median(warm)) if warm else None,
            "timings": generator.timings, "set_size": generator.set_size,
            "jumps_per_second": jumps / cpu, "trajectories": first - 1, "jumps": jumps,
            "exact_fraction": exact / max(jumps, 1),
            "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spins", type=int, nargs="+", default=[8, 10, 12, 14])
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="CPU seconds of trajectories per N")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.seconds)))
        return 0
    print("# large_systems: TFIM J=1 h=1.05 hz=0.5, sigma_x Ohmic baths eta=0.01 wc=5 T=1 on "
          "every site; rates generator; one process per N")
    print(f"# {load_average()} (before)", flush=True)
    rows = []
    for spins in args.spins:
        done = subprocess.run([sys.executable, __file__, "--one", str(spins), "--seconds",
                               str(args.seconds)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"# N={spins} failed:\n{done.stderr}", flush=True)
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        t = r["timings"]
        warm = r["warm_build"]
        rows.append([r["N"], r["d"], r["eigh"], r["gemm"], r["floor"], r["build"],
                     r["build"] / r["floor"], "-" if warm is None else warm,
                     "-" if warm is None else warm / r["floor"], t["eigh"], t["products"],
                     t["rest"], r["peak_gib"], r["jumps_per_second"], r["set_size"],
                     r["exact_fraction"]])
        print(f"# N={spins}: build {r['build']:.1f} s, floor {r['floor']:.1f} s, peak "
              f"{r['peak_gib']:.2f} GiB, {r['jumps_per_second']:.3g} jumps/s", flush=True)
    print(format_table(["N", "d", "eigh s", "1 product s", "floor s", "build s", "build/floor",
                        "warm build s", "warm/floor", "build: eigh", "build: products",
                        "build: rest", "peak GiB", "jumps/s", "bath set size",
                        "exact-path fraction"], rows))
    print(f"# {load_average()} (after)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
