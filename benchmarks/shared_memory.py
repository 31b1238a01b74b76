#!/usr/bin/env python3
"""Generator build time and peak memory per rank, with and without MPI shared memory.

A 10-spin TFIM chain (J = 1, h = 1.05, hz = 0.5, sigma_x Ohmic bath on every site, T = 1) from
its highest eigenstate, run with ``mpiexec -n 2 python -m jumps run`` for both generators:

- ``channels``: every channel's sparse operator (10.5e6 stored elements; the kernel tables
  are ~1.5 GB);
- ``rates``: alias tables and the bath split (~30 MB).

Rank 0 builds the generator; the other ranks receive its arrays either in MPI shared-memory
windows (one copy per node, ``JUMPS_SHARED_MEMORY=1``, the default) or as private copies by
broadcast (``JUMPS_SHARED_MEMORY=0``). Read from each run's ``run.json``: ``build_seconds`` and
the peak resident memory of every rank (``ru_maxrss``: shared pages count in each rank that
touches them, so the node total is what ``free`` reports, not the sum). The generator cache is
off, so every run builds.

    python benchmarks/shared_memory.py
    python benchmarks/shared_memory.py --spins 8 --generators rates
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import format_table, load_average, tfim_config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spins", type=int, default=10)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--generators", nargs="+", default=["channels", "rates"])
    parser.add_argument("--mpiexec", default=str(Path(sys.executable).parent / "mpiexec"))
    args = parser.parse_args()
    print(f"# shared_memory: {args.spins}-spin chain, {args.ranks} ranks; {load_average()}",
          flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for generator in args.generators:
            config = Path(tmp) / f"{generator}.toml"
            config.write_text(tfim_config(
                args.spins, h=1.05, hz=0.5, initial_state={"kind": "eigenstate", "index": -1},
                trajectories=4000, seed=3, observables=["energy"], generator=generator,
                cache=False))
            for shared in ("1", "0"):
                out = Path(tmp) / f"{generator}-{shared}"
                command = [args.mpiexec, "-n", str(args.ranks), sys.executable, "-m", "jumps",
                           "run", str(config), "--out", str(out), "--quiet", "--force"]
                subprocess.run(command, check=True, env={**os.environ, "JUMPS_SHARED_MEMORY": shared})
                meta = json.loads((out / "run.json").read_text())
                peaks = meta["peak_rss_mb_per_rank"]
                rows.append([generator, "shared" if shared == "1" else "private copies",
                             meta["build_seconds"], " ".join(f"{p:.0f}" for p in peaks),
                             sum(peaks), meta["run_seconds"]])
                print(f"#   {generator}, shared={shared}: done", flush=True)
    print(format_table(["generator", "arrays on ranks > 0", "build s (rank 0)",
                        "peak MB per rank", "sum of peaks MB", "run s"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
