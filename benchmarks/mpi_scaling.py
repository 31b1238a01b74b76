#!/usr/bin/env python3
"""Strong scaling of ``python -m jumps run`` over MPI ranks on a trajectory-bound run.

Each run is ``mpiexec -n K python -m mpi4py -m jumps run CONFIG --out DIR --quiet --force``
in a fresh temporary directory; the timings are read from the result's ``run.json``:
``run_seconds`` (the trajectory loop on rank 0, from the first chunk request to the last
answer: what scales) and ``wall_seconds`` (the whole command inside Python: build, compile or
cache load, trajectories, reduction, writing), plus the process wall time seen from here.

Rank counts are interleaved (1, 2, 1, 2, ...) for ``--repeats`` rounds and the median of each
is reported, so a change in the machine's load hits all rank counts alike; the load average
is printed before and after. One unmeasured run first fills Numba's on-disk cache.

Default config (written to a temporary TOML): the 6-spin TFIM of the Quickstart demo
(h = 1.1, hz = 0.3, sigma_x Ohmic baths eta = 0.01, wc = 5, T = 1, t in [0, 50], 101 points)
started in the all-up product state, so each trajectory spends time in amplitude mode and
costs ~1 ms (trajectory-bound, uneven costs for the dynamic scheduler); observables
``energy``, ``sz:0``; no density matrix. Any other config can be given with ``--config``.

    python benchmarks/mpi_scaling.py                         # ranks 1 2, 3 rounds
    python benchmarks/mpi_scaling.py --trajectories 40000 --repeats 5
    python benchmarks/mpi_scaling.py --config mpi_runs/demo_tfim.toml
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import format_table, load_average, median, tfim_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="a config to run instead of the default")
    parser.add_argument("--spins", type=int, default=6, help="chain length of the default config")
    parser.add_argument("--trajectories", type=int, default=20000)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="rounds over all rank counts")
    parser.add_argument("--mpiexec", default=str(Path(sys.executable).parent / "mpiexec"))
    return parser.parse_args()


def run_once(config: Path, ranks: int, trajectories: int, mpiexec: str, workdir: Path) -> dict:
    """One ``jumps run`` under ``mpiexec -n ranks``; its run.json plus the outside wall time."""
    out = Path(tempfile.mkdtemp(dir=workdir))
    command = [mpiexec, "-n", str(ranks), sys.executable, "-m", "mpi4py", "-m", "jumps", "run",
               str(config), "--out", str(out), "--quiet", "--force",
               "--trajectories", str(trajectories)]
    load = load_average().split()[2]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=Path(__file__).resolve().parents[1])
    outside = time.perf_counter() - start
    meta = json.loads((out / "run.json").read_text())
    return {"ranks": ranks, "outside": outside, "load": float(load), **meta}


def main() -> int:
    args = parse_args()
    if not Path(args.mpiexec).exists():
        args.mpiexec = "mpiexec"
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = args.config
        if config is None:
            config = workdir / "trajectory_bound.toml"
            text = tfim_config(args.spins, h=1.1, hz=0.3,
                               initial_state={"kind": "product", "state": "u" * args.spins},
                               trajectories=args.trajectories, seed=11,
                               observables=["energy", "sz:0"])
            config.write_text("# Written by benchmarks/mpi_scaling.py: a trajectory-bound run "
                              "for strong scaling.\n" + text)
        print(f"# mpi_scaling: {config if args.config else 'default trajectory-bound config'}, "
              f"{args.trajectories} trajectories, ranks {args.ranks}, {args.repeats} rounds")
        print(f"# {load_average()} (before)", flush=True)
        run_once(config, 1, 10, args.mpiexec, workdir)  # fill the Numba cache
        samples: dict[int, list[dict]] = {k: [] for k in args.ranks}
        for _ in range(args.repeats):
            for ranks in args.ranks:
                samples[ranks].append(run_once(config, ranks, args.trajectories, args.mpiexec,
                                               workdir))
        print(f"# {load_average()} (after)")

    base = args.ranks[0]
    base_run = median(s["run_seconds"] for s in samples[base])
    base_wall = median(s["wall_seconds"] for s in samples[base])
    rows = []
    for ranks in args.ranks:
        runs = samples[ranks]
        run_s = median(s["run_seconds"] for s in runs)
        wall_s = median(s["wall_seconds"] for s in runs)
        speedup = base_run / run_s
        rows.append([ranks, runs[0]["trajectories"], run_s, wall_s,
                     median(s["outside"] for s in runs), speedup, speedup * base / ranks,
                     base_wall / wall_s, runs[0]["trajectories"] / run_s,
                     median(s["total_jumps"] / s["run_seconds"] for s in runs),
                     " ".join(f"{s['run_seconds']:.2f}" for s in runs),
                     " ".join(f"{s['load']:.1f}" for s in runs)])
    print(f"\n# strong scaling (median of {args.repeats}; speed-up and efficiency from run_seconds, "
          "'speed-up wall' from wall_seconds)")
    print(format_table(["ranks", "trajectories", "run s", "wall s", "outside s", "speed-up",
                        "efficiency", "speed-up wall", "traj/s", "jumps/s", "run s (each)",
                        "load at start"], rows))
    if len(args.ranks) > 1:
        extra = samples[args.ranks[1]][0]
        print(f"# build {extra.get('build_seconds', float('nan')):.2f} s, compile/cache load "
              f"{extra.get('compile_seconds', float('nan')):.2f} s (run.json of one "
              f"{args.ranks[1]}-rank run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
