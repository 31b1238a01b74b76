#!/usr/bin/env python3
"""Heat statistics study: two baths, steady state, currents, Fano factors, exchange symmetry.

For each config (default ``mpi_runs/heat_qubit.toml`` and ``mpi_runs/heat_chain.toml``; NAME is
the file name without ``.toml`` and a leading ``heat_``: ``qubit``, ``chain``) it runs

    mpiexec -n 2 python -m jumps run CONFIG --out results/heat-NAME --force
    python -m jumps exact CONFIG --out results/heat-NAME-exact --force
    python -m analysis results/heat-NAME --exact results/heat-NAME-exact --plots

(the analysis text goes to ``results/heat-NAME/report.txt``, its plots beside ``report.json``,
``exchange_symmetry.png`` among them) and prints per system, from ``report.json``'s
``statistics`` block: the steady-state heat current ``<Q_a>/t`` into each bath with its error,
the exact value and z; the Fano factors ``Var(N_a)/<N_a>`` of the jumps into each bath and
``Var(Q_a)/|<Q_a>|``; and the exchange fluctuation symmetry of the heat given to the hot bath,
``theta_hot(s) = theta_hot(delta_beta - s)``, ``delta_beta = beta_cold - beta_hot``
(analysis/fluctuations.py): on the exact SCGF, and per reliable trajectory pair its difference,
z against 0 (the t -> inf symmetry: biased by O(1/t) boundary terms at finite t) and z against
the exact finite-t difference. Timings per step close each block. ``Q_a`` is the heat given
to bath ``a`` (negative for the hot bath: heat flows out of it).

    python mpi_runs/heat_study.py
    python mpi_runs/heat_study.py mpi_runs/heat_qubit.toml --ranks 1 --out results
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIGS = [HERE / "heat_qubit.toml", HERE / "heat_chain.toml"]


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool | int):
        return str(value)
    return f"{value:.{digits}g}"


def pm(value, error) -> str:
    return "-" if value is None else f"{fmt(value)} +- {fmt(error, 2)}"


def table(header: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    return [indent + "  ".join(str(c).rjust(w) for c, w in zip(r, widths)).rstrip()
            for r in [header, *rows]]


def step(command: list[str], log: Path | None = None) -> float:
    """Run one command, its standard output into ``log`` (None: discarded); its wall time, or
    exit on failure (its error line is on stderr)."""
    start = time.perf_counter()
    if log is None:
        done = subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
    else:
        with open(log, "w") as sink:
            done = subprocess.run(command, check=False, stdout=sink)
    if done.returncode != 0:
        sys.exit(f"# failed (exit status {done.returncode}): {' '.join(command)}")
    return time.perf_counter() - start


def summary(name: str, report: dict, timings: dict) -> list[str]:
    r, block = report["result"], report["statistics"]
    lines = [(f"# {name}: {r['model']}, d = {r['dimension']}, {r['trajectories']} "
              f"trajectories, t_final = {fmt(r['t_final'])}, initial state {r['initial_state']}")]
    if block is None:
        return lines + ["  no statistics block (no per-trajectory records)"]
    symmetry = block.get("exchange_fluctuation_symmetry") or {}
    hot = symmetry.get("hot_bath")
    rows = []
    currents = block["heat_current"] or [{} for _ in block["fano_factor"]]
    for bath, current, fano in zip(r["baths"], currents, block["fano_factor"]):
        role = "hot" if bath["index"] == hot else "cold" if bath["index"] == symmetry.get(
            "cold_bath") else ""
        temperature = 1.0 / bath["beta"] if bath["beta"] else None
        rows.append([f"{bath['index']} {role}".strip(), fmt(temperature), bath["name"],
                     pm(current.get("current"), current.get("stderr")), fmt(current.get("exact")),
                     fmt(current.get("z"), 2), pm(fano["counts"], fano["counts_stderr"]),
                     pm(fano["heat"], fano["heat_stderr"])])
    lines += table(["bath", "T", "coupling", "current <Q_a>/t", "exact", "z", "Fano Var(N)/<N>",
                    "Var(Q)/|<Q>|"], rows)
    if block["heat_current"] is None:
        lines.append(f"  (no steady-state current: {block['heat_current_reason']})")
    if hot is None:
        lines.append(f"  exchange symmetry: not checked: {symmetry.get('reason')}")
    else:
        db = symmetry["delta_beta"]
        lines.append(f"  exchange symmetry of Q_hot (bath {hot}), theta(s) = theta({fmt(db)} - s): "
                     f"exact SCGF max |difference| = {fmt(symmetry['exact_max_abs_difference'], 2)}"
                     f" over {symmetry['exact_points']} grid points")
        pairs = [[fmt(p["s"]), fmt(p["s_partner"]), pm(p["difference"], p["stderr"]),
                  fmt(p["z"], 3), fmt(p["difference_exact_finite_t"]), fmt(p["z_finite_t"], 2)]
                 for p in symmetry["pairs"]]
        if pairs:
            lines.append(f"  trajectories at t = {fmt(symmetry['t'])}, pairs reliable on both "
                         "sides:")
            lines += table(["s", "s'", "theta(s) - theta(s')", "z vs 0", "exact at t",
                            "z vs exact at t"], pairs, indent="    ")
        else:
            lines.append(f"  trajectories: no pair reliable on both sides "
                         f"{symmetry.get('reason') or ''}".rstrip())
    lines.append("  time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", type=Path, nargs="*", default=CONFIGS)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("results"), help="parent directory")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--mpiexec", default=str(Path(sys.executable).parent / "mpiexec"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    text = []
    total = time.perf_counter()
    for config in args.configs:
        name = config.stem.removeprefix("heat_")
        out, exact = args.out / f"heat-{name}", args.out / f"heat-{name}-exact"
        run = [python, "-m", "jumps", "run", str(config), "--out", str(out), "--force", "--quiet"]
        if args.ranks > 1:
            run = [args.mpiexec, "-n", str(args.ranks), *run]
        timings = {"run": step(run)}
        timings["exact"] = step([python, "-m", "jumps", "exact", str(config), "--out", str(exact),
                                 "--force"])
        analysis = [python, "-m", "analysis", str(out), "--exact", str(exact)]
        if not args.no_plots:
            analysis.append("--plots")
        timings["analysis"] = step(analysis, log=out / "report.txt")
        meta = json.loads((out / "run.json").read_text())
        timings = {f"run (of which compile {meta.get('compile_seconds', 0.0):.1f} s, "
                   f"trajectories {meta.get('run_seconds', 0.0):.1f} s)": timings["run"],
                   "exact": timings["exact"], "analysis": timings["analysis"]}
        report = json.loads((out / "report.json").read_text())
        block = summary(name, report, timings)
        print("\n".join(block), flush=True)
        text += block + [""]
    text.append(f"# whole study: {time.perf_counter() - total:.1f} s on {args.ranks} rank(s)")
    print(text[-1])
    (args.out / "heat_study.txt").write_text("\n".join(text) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
