#!/usr/bin/env python3
"""Full density matrices from a product state: trajectories per second of ``python -m jumps run``
with ``density_matrix = "full"``, this checkout against a git revision, side by side.

System (issue 13): open TFIM chain of N spins (default 8, d = 256), ``H = -sum sz sz - h sum
sx`` (J = 1, h = 1.1, hz = 0: integrable), an Ohmic bath on every site through sigma_x (eta
0.01, cutoff 5, T = 1), no Lamb shift, from the all-up product state (every trajectory keeps a
superposition of many levels: the amplitude path), t in [0, 50] on 101 points, the full
density matrix (user's basis) with its standard errors at every output time.

Each side runs ``python -m jumps run CONFIG --quiet`` in a fresh process: this checkout with
``--trajectories`` trajectories, the baseline (``git archive REV jumps`` extracted under
``~/.cache/jumps-bench/cli-SHA``, run from there) with ``--baseline-trajectories`` (it may be
~100x slower), with the default chunk size on both sides (as a user runs them) unless
``--baseline-chunk`` says otherwise. One untimed warm-up run per side fills its Numba cache; then ``--repeats``
timed runs per side, alternated (baseline, this, baseline, ...). The rate is trajectories /
``run_seconds`` of run.json (the trajectories, their sums and the result; start-up and the
generator build excluded, since they do not scale with the trajectories); the whole process's
wall time is printed as well. The ratio is of the medians.

BLAS threads are pinned to one (a rank's view: under ``mpirun`` every rank has a core).

    python benchmarks/full_density.py --baseline 28ea41f      # issue 13's "today"
    python benchmarks/full_density.py --spins 6 --trajectories 4000
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import tempfile
from pathlib import Path

from common import REPO, baseline_tree, format_table, load_average, median, run_cli, tfim_config


def run(tree: Path, config: Path, out: Path, trajectories: int, seed: int) -> dict:
    """One ``python -m jumps run`` of the package in ``tree``: wall time, run_seconds, rate."""
    done = run_cli(config, out, "--trajectories", str(trajectories), "--seed", str(seed),
                   tree=tree)
    seconds = done["meta"]["run_seconds"]
    return {"outside": done["outside"], "run_seconds": seconds, "rate": trajectories / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spins", type=int, default=8)
    parser.add_argument("--trajectories", type=int, default=2000)
    parser.add_argument("--baseline", metavar="REV")
    parser.add_argument("--baseline-trajectories", type=int, default=200)
    parser.add_argument("--baseline-chunk", type=int, default=0,
                        help="the baseline's chunk_size (default: its own default, as a user "
                             "runs it; its --baseline-trajectories gives one chunk, its most "
                             "favourable set-up)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    before = load_average()
    print(f"# {before} (before)")
    work = Path(tempfile.mkdtemp(prefix="full_density_"))

    def config(name: str, **run_keys: object) -> Path:
        path = work / name
        path.write_text("# Written by benchmarks/full_density.py.\n" + tfim_config(
            args.spins, 1.1, 0.0, {"kind": "product", "state": "u" * args.spins},
            bath={"lamb_shift": False}, seed=args.seed, density_matrix="full", cache=False,
            **run_keys))
        return path

    sides = [("this checkout", REPO, args.trajectories, config("this.toml"))]
    if args.baseline:
        chunk = {"chunk_size": args.baseline_chunk} if args.baseline_chunk else {}
        sides.insert(0, (f"baseline {args.baseline}", baseline_tree(args.baseline)[0],
                         args.baseline_trajectories, config("baseline.toml", **chunk)))
    for name, tree, _, path in sides:  # warm-up: compile or load the Numba cache
        run(tree, path, work / "warmup", 16, args.seed)
    timings: dict[str, list[dict]] = {name: [] for name, *_ in sides}
    for r in range(args.repeats):
        for name, tree, count, path in sides:
            timings[name].append(run(tree, path, work / "run", count, args.seed + 1 + r))

    rows, rates = [], {}
    for name, _, count, _ in sides:
        runs = timings[name]
        rates[name] = median(t["rate"] for t in runs)
        rows.append([name, count, median(t["run_seconds"] for t in runs),
                     median(t["outside"] for t in runs), rates[name]])
    d = 2 ** args.spins
    print(f"# TFIM N = {args.spins} (d = {d}), h = 1.1, all-up product state, full density "
          f"matrix, 101 times; {args.repeats} runs per side (medians)")
    print(format_table(["side", "trajectories", "run s", "process s", "trajectories/s"], rows))
    after = load_average()
    print(f"# {after} (after)")
    if args.baseline:
        base = rates[sides[0][0]]
        print(f"# this checkout runs {rates['this checkout'] / base:.1f}x the baseline's "
              f"trajectories/s (target >= 50x)")


if __name__ == "__main__":
    main()
