#!/usr/bin/env python3
"""Strong and weak scaling of ``python -m jumps run`` over 1..K MPI ranks.

Strong: the same config (same trajectories) on 1, 2, ..., K ranks.
Weak: ``trajectories = base * K`` on K ranks (ideal: constant wall time).

For each K the run is repeated ``--repeat`` times and the median is reported; times are the
run's own ``run_seconds`` (trajectory work, after generator build and Numba compile) and the
process wall time. Writes the table to stdout and, with ``--out``, to a text file.

    python mpi_runs/scaling.py mpi_runs/demo_tfim.toml --ranks 1 2 --repeat 3
    python mpi_runs/scaling.py mpi_runs/demo_tfim.toml --ranks 1 2 --mode weak
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(config: Path, ranks: int, trajectories: int | None, mpiexec: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        command = [mpiexec, "-n", str(ranks), sys.executable, "-m", "jumps", "run", str(config),
                   "--out", str(out), "--quiet", "--force"]
        if trajectories:
            command += ["--trajectories", str(trajectories)]
        start = time.perf_counter()
        subprocess.run(command, check=True)
        wall = time.perf_counter() - start
        meta = json.loads((out / "run.json").read_text())
    return {"wall": wall, "run": meta["run_seconds"], "trajectories": meta["trajectories"],
            "jumps": meta["total_jumps"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mode", choices=("strong", "weak"), default="strong")
    parser.add_argument("--trajectories", type=int, help="per run (strong) or per rank (weak)")
    parser.add_argument("--mpiexec", default=str(Path(sys.executable).parent / "mpiexec"))
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    if not Path(args.mpiexec).exists():
        args.mpiexec = "mpiexec"
    # Compile once so no run pays for it (and ranks never compile concurrently).
    run_once(args.config, 1, 1, args.mpiexec)
    rows = []
    for ranks in args.ranks:
        trajectories = args.trajectories
        if args.mode == "weak":
            trajectories = (args.trajectories or 2000) * ranks
        samples = [run_once(args.config, ranks, trajectories, args.mpiexec) for _ in range(args.repeat)]
        rows.append((ranks, statistics.median(s["run"] for s in samples),
                     statistics.median(s["wall"] for s in samples), samples[0]["trajectories"],
                     samples[0]["jumps"]))
    base_run = rows[0][1]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    title = (f"{args.mode} scaling of {args.config} (median of {args.repeat}; "
             f"load before: {load:.2f}; {os.cpu_count()} cores)")
    header = (f"{'ranks':>5} {'trajectories':>12} {'run s':>9} {'wall s':>9} {'speed-up':>9} "
              f"{'efficiency':>10} {'traj/s':>10} {'jumps/s':>11}")
    lines = [title, header]
    for ranks, run_s, wall_s, ntraj, jumps in rows:
        if args.mode == "strong":
            speedup = base_run / run_s
            efficiency = speedup / (ranks / rows[0][0])
        else:
            speedup = base_run / run_s * ranks / rows[0][0]
            efficiency = base_run / run_s
        lines.append(f"{ranks:>5} {ntraj:>12} {run_s:>9.3f} {wall_s:>9.3f} {speedup:>9.2f} "
                     f"{efficiency:>10.2f} {ntraj / run_s:>10.4g} {jumps / run_s:>11.4g}")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
