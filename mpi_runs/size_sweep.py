#!/usr/bin/env python3
"""System-size sweep: build time, memory, trajectories/s and jumps/s of one config per N.

For each chain length N the config's ``system.params.n`` is set to N (written to a temporary
TOML beside the results) and ``python -m jumps run`` is launched, under ``mpiexec -n K`` with
``--ranks K``. The figures come from the result's ``run.json``: ``build_seconds`` (0.0x s when
the generator came from the cache: pass ``--no-cache`` to measure builds), the per-rank peak
memory, ``run_seconds`` of the trajectory loop, trajectories and jumps.

    python mpi_runs/size_sweep.py mpi_runs/tfim_large.toml --spins 4 6 8 10 12 14
    python mpi_runs/size_sweep.py mpi_runs/tfim_large.toml --spins 8 10 12 --ranks 2 --no-cache
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tomllib
from pathlib import Path

from jumps.runtime.config import dump_config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("--spins", type=int, nargs="+", default=[4, 6, 8, 10, 12, 14])
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--trajectories", type=int, help="override [run] trajectories")
    parser.add_argument("--no-cache", action="store_true", help="build every generator afresh")
    parser.add_argument("--out", type=Path, default=Path("results/size_sweep"))
    parser.add_argument("--mpiexec", default=str(Path(sys.executable).parent / "mpiexec"))
    args = parser.parse_args()
    raw = tomllib.loads(args.config.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for spins in args.spins:
        raw["system"].setdefault("params", {})["n"] = spins
        raw.setdefault("run", {})["cache"] = not args.no_cache
        if args.trajectories:
            raw["run"]["trajectories"] = args.trajectories
        config = args.out / f"n{spins}.toml"
        config.write_text(dump_config(raw))
        out = args.out / f"n{spins}"
        command = [sys.executable, "-m", "jumps", "run", str(config), "--out", str(out),
                   "--force", "--quiet"]
        if args.ranks > 1:
            command = [args.mpiexec, "-n", str(args.ranks), *command]
        done = subprocess.run(command, check=False)
        if done.returncode != 0:
            print(f"# N={spins}: exit status {done.returncode}", flush=True)
            continue
        meta = json.loads((out / "run.json").read_text())
        run = max(meta["run_seconds"], 1e-9)
        rows.append([spins, meta["dimension"], meta["generator"], meta["build_seconds"],
                     "yes" if meta.get("generator_cache") else "no",
                     max(meta["peak_rss_mb_per_rank"]) / 1024, meta["trajectories"] / run,
                     meta["total_jumps"] / run])
        print(f"# N={spins} done: build {meta['build_seconds']:.1f} s, run {run:.1f} s", flush=True)
    header = ["N", "d", "generator", "build s", "cached", "peak GiB/rank", "traj/s", "jumps/s"]
    widths = [max(len(h), *(len(f"{r[i]:.4g}" if isinstance(r[i], float) else str(r[i]))
                          for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    text = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    for r in rows:
        text.append("  ".join((f"{v:.4g}" if isinstance(v, float) else str(v)).rjust(w)
                              for v, w in zip(r, widths)))
    table = "\n".join(text)
    print(f"# {args.ranks} rank(s), config {args.config}\n{table}")
    (args.out / "table.txt").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
