#!/usr/bin/env python3
"""Trajectories per second: this engine against QuTiP's best ``mcsolve`` set-up, side by side.

System (issue 3): open TFIM chains of N spins, ``H = -sum sz sz - h sum sx - hz sum sz`` with
J = 1, h = 1.1, an independent Ohmic bath on every site through sigma_x (eta = 0.01, cutoff 5,
beta = 1), no Lamb shift (``lamb_shift = false`` in [[baths]]; ``--lamb-shift`` turns it on for
both), t in [0, 50] on 101 points, the dense observable ``Mz = sum_j sz_j`` (given to the engine
as ``observables = { Mz = "Mz.npy" }``), ``density_matrix = "diagonal"``. Two cases:

- ``amplitude``: the integrable chain (hz = 0) from the all-up product state. Degenerate Bohr
  frequencies: jumps map superpositions to superpositions, the engine's amplitude path.
- ``pure``: the non-integrable chain (hz = 0.3) from the highest eigenstate: every state is one
  eigenstate, the engine's pure path (a classical Markov chain).

What each computes at the 101 times: QuTiP (``--qutip-e-ops all``, the default) ``<Mz>``, the
energy-eigenbasis populations and the diagonal of rho in the spin basis, exactly what the
engine's run stores (expect_Mz, populations, rho_diagonal; the engine also keeps per-trajectory
records: heat, jump counts, ...); ``--qutip-e-ops mz``: ``<Mz>`` only.

QuTiP, as an expert runs it: everything in the energy eigenbasis, sparse CSR ``Qobj``: ``H =
diag(E) (+ H_LS)``, one collapse operator ``sqrt(gamma_a(w)) A_a(w)`` per channel of the
engine's generator (``common.eigenbasis_qutip``), ``solver = qutip.MCSolver(H, c_ops,
options)`` then ``solver.rhs.compress()`` (merges ``-iH - sum L^dag L / 2`` into one CSR
matrix instead of one term per channel: ~20x faster steps with vern7), serial map, no progress
bar, default tolerances, for each ``--qutip-methods``: ``diag`` (H_eff is constant and
diagonal here: exact exponentials, the fastest) and ``vern7`` (the default integrator). Set-up
(Qobjs, solver + compress, a 1-trajectory warm-up) is timed apart; then ``--repeats`` runs of
``solver.run`` (median trajectories/s by wall clock and by process CPU time). The trajectory
count per run is ``--qutip-trajectories``, cut so that one run takes about ``--qutip-seconds``
(from the warm-up): rates are per trajectory, so small counts suffice. QuTiP is skipped above
``--max-qutip-channels`` collapse operators (the pure chain at N = 8 has 522240).

The engine, as a user runs it: ``python -m jumps run CONFIG --quiet`` in a fresh process,
``--repeats`` times after one untimed warm-up run of 1000 trajectories (fills Numba's cache),
on ``--trajectories`` each (default: as many as take ~``--engine-seconds`` by the warm-up,
10000 to 2e6): trajectories/s from ``run_seconds`` of run.json (the trajectory loop), start-up =
the process's wall time minus ``run_seconds`` (interpreter, imports, generator build, kernel
load, writing the result; ``wall_seconds`` is the driver's share). Also in-process ("kernel"):
the driver's plan and runner (``Plan.create``, ``plan.runner().run`` over its chunks, the
generator the CLI chooses) without start-up, checkpoints or output, ``--repeats`` times.
Generators go to a temporary ``JUMPS_CACHE_DIR``. BLAS threads are pinned to one: per core.

Then ``--interleave`` rounds (default 5) of one engine CLI run and one run of QuTiP's best
method, alternated (the order alternates too), each round's ratio taken on the same stretch of
host time: the median of those is the figure to quote on a shared machine, whose speed drifts
between the blocks above (two runs of this script on 2026-12-03 minutes apart: QuTiP 96 and 164
trajectories/s, the engine 9.3k and 13.2k).

Sanity check: z-scores of QuTiP's <Mz>(t) (all its runs) against the engine's (the last CLI
run), ``(qutip - engine) / sqrt(s^2 / n_qutip + stderr^2)`` with ``s^2`` the engine's
single-trajectory variance (correlated in time: max|z| of 3-4 is normal, tens is a
disagreement), and the largest difference of the populations.

    python benchmarks/vs_qutip.py                      # full: N = 6 8, both cases (quiet machine)
    python benchmarks/vs_qutip.py --spins 6 8 10 --qutip-seconds 120 --out vs_qutip.json
    python benchmarks/vs_qutip.py --quick              # smoke run: N = 4, few trajectories
    python benchmarks/vs_qutip.py --spins 6 --cases amplitude --interleave 9
"""

from __future__ import annotations

import os

# One thread per solver: the comparison is per core (set before numpy is imported).
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import (
    finish,
    format_table,
    load_average,
    magnetization,
    median,
    run_cli,
    tfim_config,
    tfim_system,
    timed,
)

T_FINAL, N_TIMES = 50.0, 101
CASES = {
    "amplitude": {"hz": 0.0, "initial": "product",
                  "label": "integrable hz=0, all-up product state (amplitude path)"},
    "pure": {"hz": 0.3, "initial": "highest",
             "label": "hz=0.3, highest eigenstate (pure path)"},
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spins", type=int, nargs="+", default=[6, 8])
    parser.add_argument("--cases", nargs="+", choices=tuple(CASES), default=list(CASES))
    parser.add_argument("--h", type=float, default=1.1, help="transverse field")
    parser.add_argument("--trajectories", type=int, default=0,
                        help="engine trajectories per CLI run (0: enough for --engine-seconds)")
    parser.add_argument("--engine-seconds", type=float, default=2.0,
                        help="with --trajectories 0: aim for run_seconds of about this long "
                             "(at least 10000, at most 2e6 trajectories)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (median)")
    parser.add_argument("--qutip-methods", nargs="+", default=["diag", "vern7"],
                        help="mcsolve integrators to time (the best one is compared)")
    parser.add_argument("--qutip-trajectories", type=int, default=200,
                        help="most trajectories per qutip run")
    parser.add_argument("--qutip-seconds", type=float, default=30.0,
                        help="aim for qutip runs of about this long (fewer trajectories)")
    parser.add_argument("--qutip-e-ops", choices=("all", "mz"), default="all",
                        help="all: Mz, populations and spin-basis diagonal (as the engine); "
                             "mz: Mz only")
    parser.add_argument("--max-qutip-channels", type=int, default=100_000,
                        help="skip qutip above this many collapse operators")
    parser.add_argument("--interleave", type=int, default=5,
                        help="then this many rounds of one engine CLI run and one run of "
                             "QuTiP's best method, alternated: the median of the per-round "
                             "ratios (a shared host's speed drifts between the blocks above; "
                             "0: off)")
    parser.add_argument("--no-kernel", dest="kernel", action="store_false",
                        help="skip the in-process (no start-up) engine timing")
    parser.add_argument("--lamb-shift", action="store_true", help="H_LS on for both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: N = 4, 300 engine / <= 10 qutip trajectories, 2 repeats")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    if args.quick:
        args.spins, args.trajectories, args.repeats = [4], 300, 2
        args.qutip_trajectories, args.qutip_seconds = 10, 5.0
        args.interleave = min(args.interleave, 2)
    return args


# -- the engine ---------------------------------------------------------------------------------

def write_config(workdir: Path, case: str, spins: int, args) -> Path:
    """The run's config and its Mz.npy in ``workdir``."""
    spec = CASES[case]
    np.save(workdir / "Mz.npy", magnetization(spins))
    initial = ({"kind": "product", "state": "u" * spins} if spec["initial"] == "product"
               else {"kind": "eigenstate", "index": -1})
    text = tfim_config(spins, args.h, spec["hz"], initial, bath={"lamb_shift": args.lamb_shift},
                       trajectories=max(args.trajectories, 1), seed=args.seed,
                       observables={"Mz": "Mz.npy"}, density_matrix="diagonal")
    path = workdir / "run.toml"
    path.write_text(f"# Written by benchmarks/vs_qutip.py ({case}).\n" + text)
    return path


def engine_cli(config: Path, workdir: Path, args) -> dict:
    """One untimed warm-up run (fills Numba's cache; sizes the runs), then ``--repeats`` timed
    CLI runs of ``count`` trajectories."""
    pilot = 1000
    warm = run_cli(config, workdir / "warmup", "--trajectories", str(pilot))
    count = args.trajectories
    if count <= 0:
        per_traj = max(warm["meta"]["run_seconds"], 1e-6) / pilot
        count = int(min(2_000_000, max(10_000, round(args.engine_seconds / per_traj, -3))))
    runs = [run_cli(config, workdir / f"cli{r}", "--seed", str(args.seed + r),
                    "--trajectories", str(count)) for r in range(args.repeats)]
    metas = [r["meta"] for r in runs]
    out = {"trajectories": count,
           "traj_per_s": median(count / m["run_seconds"] for m in metas),
           "run_seconds": median(m["run_seconds"] for m in metas),
           "outside_seconds": median(r["outside"] for r in runs),
           "wall_seconds": median(m["wall_seconds"] for m in metas),
           "startup_seconds": median(r["outside"] - m["run_seconds"] for r, m in zip(runs, metas)),
           "build_seconds": median(m["build_seconds"] for m in metas),
           "compile_seconds": median(m["compile_seconds"] for m in metas),
           "jumps_per_traj": median(m["total_jumps"] / count for m in metas),
           "generator": metas[-1]["generator"]}
    with np.load(runs[-1]["results"]) as data:
        out["averages"] = {key: data[key] for key in
                           ("expect_Mz", "expect_Mz_stderr", "populations", "populations_stderr")}
    return out


def engine_in_process(config: Path, count: int, args) -> dict:
    """The driver's plan and runner in this process: the trajectory loop alone."""
    from jumps.runtime.build import build
    from jumps.runtime.config import load_config
    from jumps.runtime.plan import Plan

    cfg = load_config(config)
    generator, _ = build(cfg)
    walls, cpus = [], []
    for r in range(args.repeats + 1):
        plan = Plan.create(generator, cfg.initial_state, cfg.times, count,
                           args.seed + 100 + r, cfg.observables, cfg.density_matrix,
                           cfg.chunk_size, len(cfg.baths))
        plan.warm_up()
        runner = plan.runner()

        def loop(plan=plan, runner=runner) -> int:
            return sum(runner.run(*plan.chunk_range(c)) for c in range(plan.n_chunks))

        t = timed(loop)
        if r:  # the first pass pages everything in
            walls.append(t.wall)
            cpus.append(t.cpu)
    return {"traj_per_s": median(count / w for w in walls),
            "traj_per_s_cpu": median(count / c for c in cpus)}


# -- qutip --------------------------------------------------------------------------------------

def qutip_problem(generator, spins: int, psi0_user: np.ndarray, which: str, lamb_shift: bool):
    """``(H, c_ops, psi0, e_ops)`` in the energy eigenbasis (sparse H and c_ops)."""
    import qutip
    from common import eigenbasis_qutip

    d = generator.dimension
    V = generator.eigenvectors
    H, c_ops = eigenbasis_qutip(generator, lamb_shift)
    psi0 = qutip.Qobj(V.conj().T @ psi0_user, dims=[[d], [1]])
    e_ops = {"Mz": qutip.Qobj(generator.to_energy_basis(magnetization(spins)), dims=[[d], [d]])}
    if which == "all":
        e_ops["populations"] = lambda t, psi: np.abs(psi.full().ravel()) ** 2
        e_ops["diagonal"] = lambda t, psi: np.abs(V @ psi.full().ravel()) ** 2
    return H, c_ops, psi0, e_ops


def run_qutip(problem, method: str, args, w_nonzero: np.ndarray, timers: dict) -> dict:
    import qutip

    H, c_ops, psi0, e_ops = problem
    times = np.linspace(0.0, T_FINAL, N_TIMES)
    options = {"method": method, "progress_bar": False}

    def make():
        solver = qutip.MCSolver(H, c_ops, options=options)
        solver.rhs.compress()
        return solver

    setup = timed(make)
    solver = setup.value
    first = timed(lambda: solver.run(psi0, times, 1, e_ops=e_ops, seeds=args.seed))
    ntraj = int(max(1, min(args.qutip_trajectories, args.qutip_seconds / max(first.wall, 1e-6))))
    walls, cpus, jumps, total, sums = [], [], 0, 0, {}
    for r in range(args.repeats):
        t = timed(lambda seed=args.seed + 1000 * (r + 1): solver.run(
            psi0, times, ntraj, e_ops=e_ops, seeds=seed))
        walls.append(t.wall)
        cpus.append(t.cpu)
        result = t.value
        jumps += sum(int(np.count_nonzero(w_nonzero[np.asarray(which, dtype=int)]))
                     for which in result.col_which)
        for key in e_ops:
            sums[key] = sums.get(key, 0.0) + ntraj * np.real(np.asarray(result.e_data[key]))
        total += ntraj
    # One more run of the same solver, for --interleave: trajectories/s by wall clock.
    timers[method] = lambda seed: ntraj / timed(lambda: solver.run(
        psi0, times, ntraj, e_ops=e_ops, seeds=seed)).wall
    return {"method": method, "ntraj": ntraj, "setup_seconds": setup.wall,
            "first_traj_seconds": first.wall,
            "traj_per_s": median(ntraj / w for w in walls),
            "traj_per_s_cpu": median(ntraj / c for c in cpus),
            "jumps_per_traj": jumps / total, "total": total,
            "averages": {key: value / total for key, value in sums.items()}}


def agreement(qutip_run: dict, engine: dict) -> tuple[float, float, float]:
    """max|z| and rms z of QuTiP's <Mz>(t) against the engine's, and the largest population
    difference (populations are rare events early on: a z-score there means little)."""
    n_engine, n_qutip = engine["trajectories"], qutip_run["total"]
    mine, theirs = engine["averages"], qutip_run["averages"]
    stderr = mine["expect_Mz_stderr"]
    error = np.sqrt(stderr**2 * n_engine / n_qutip + stderr**2)
    ok = error > 1e-12
    z = (theirs["Mz"] - mine["expect_Mz"])[ok] / error[ok]
    dp = (float(np.max(np.abs(theirs["populations"] - mine["populations"])))
          if "populations" in theirs else float("nan"))
    return float(np.max(np.abs(z))), float(np.sqrt(np.mean(z**2))), dp


# -- one case -----------------------------------------------------------------------------------

def compare(args, case: str, spins: int, workdir: Path) -> dict:
    spec = CASES[case]
    build = timed(tfim_system, spins, args.h, spec["hz"], 0.01, 5.0, 1.0, args.lamb_shift)
    _, generator = build.value
    d, channels = generator.dimension, generator.n_channels
    row = {"case": case, "N": spins, "d": d, "channels": channels, "qutip": [], "skipped": None}
    print(f"# {case} N={spins}: d={d}, {channels} channels (generator {build.wall:.1f} s)",
          flush=True)

    config = write_config(workdir, case, spins, args)
    row["engine"] = engine_cli(config, workdir, args)
    print(f"#   engine CLI: {row['engine']['traj_per_s']:.4g} traj/s", flush=True)
    if args.kernel:
        try:
            row["kernel"] = engine_in_process(config, row["engine"]["trajectories"], args)
        except (ImportError, AttributeError, TypeError, ValueError) as error:
            # internal API (others may change it): report, do not stop the comparison
            row["kernel"] = {"error": f"{type(error).__name__}: {error}"}

    if channels > args.max_qutip_channels:
        row["skipped"] = f"{channels} collapse operators > --max-qutip-channels"
        return row
    if spec["initial"] == "product":
        psi0 = np.zeros(d, dtype=complex)
        psi0[0] = 1.0  # |up ... up>
    else:
        psi0 = generator.eigenvectors[:, -1]
    setup = timed(qutip_problem, generator, spins, psi0, args.qutip_e_ops, args.lamb_shift)
    row["qutip_objects_seconds"] = setup.wall
    w_nonzero = generator.channel_frequency != 0
    timers = {}
    for method in args.qutip_methods:
        run = run_qutip(setup.value, method, args, w_nonzero, timers)
        run["z"] = agreement(run, row["engine"])
        row["qutip"].append(run)
        print(f"#   qutip {method}: {run['traj_per_s']:.4g} traj/s ({run['ntraj']} per run)",
              flush=True)
    if args.interleave > 0:
        row["interleaved"] = interleave(args, config, workdir, row, timers[best(row)["method"]])
    return row


def interleave(args, config: Path, workdir: Path, row: dict, qutip_rate) -> dict:
    """``--interleave`` rounds of one engine CLI run and one QuTiP run (its best method),
    alternated (which goes first alternates too): per-round ratios see the same host."""
    count = row["engine"]["trajectories"]
    engine, qutip = [], []
    for r in range(args.interleave):
        def cli(r=r) -> float:
            meta = run_cli(config, workdir / f"round{r}", "--seed", str(args.seed + 500 + r),
                           "--trajectories", str(count))["meta"]
            return count / meta["run_seconds"]
        if r % 2:
            qutip.append(qutip_rate(args.seed + 5000 + r))
            engine.append(cli())
        else:
            engine.append(cli())
            qutip.append(qutip_rate(args.seed + 5000 + r))
    ratios = [e / q for e, q in zip(engine, qutip)]
    out = {"method": best(row)["method"], "engine": engine, "qutip": qutip, "ratios": ratios,
           "median_ratio": median(ratios)}
    print(f"#   interleaved ({out['method']}): ratios "
          + " ".join(f"{x:.3g}" for x in ratios) + f", median {out['median_ratio']:.3g}",
          flush=True)
    return out


# -- output -------------------------------------------------------------------------------------

def best(row: dict) -> dict | None:
    return max(row["qutip"], key=lambda q: q["traj_per_s"]) if row["qutip"] else None


def kernel_rate(row: dict) -> float | str:
    kernel = row.get("kernel")
    if not kernel or "error" in kernel:
        return "-"
    return kernel["traj_per_s"]


def print_tables(rows: list[dict]) -> None:
    main = []
    for r in rows:
        e, q, k = r["engine"], best(r), kernel_rate(r)
        main.append([r["case"], r["N"], r["d"], r["channels"],
                     f"{q['method']}" if q else "skipped", q["traj_per_s"] if q else "-",
                     e["traj_per_s"], e["traj_per_s"] / q["traj_per_s"] if q else "-",
                     k, k / q["traj_per_s"] if q and not isinstance(k, str) else "-",
                     e["startup_seconds"]])
    print("\n# trajectories/s, wall clock, one core (medians); ratio = engine / best qutip")
    print(format_table(["case", "N", "d", "channels", "qutip best", "qutip traj/s",
                        "jumps CLI traj/s", "ratio", "jumps kernel traj/s", "ratio kernel",
                        "jumps start-up s"], main))

    detail = []
    for r in rows:
        for q in r["qutip"]:
            detail.append([r["case"], r["N"], q["method"], q["ntraj"], q["traj_per_s"],
                           q["traj_per_s_cpu"], r["qutip_objects_seconds"], q["setup_seconds"],
                           q["first_traj_seconds"], q["jumps_per_traj"],
                           r["engine"]["jumps_per_traj"], f"{q['z'][0]:.1f} / {q['z'][1]:.2f}",
                           q["z"][2]])
    if detail:
        print("\n# qutip mcsolve (eigenbasis, sparse, rhs.compress()); set-up apart; jumps/traj "
              "counts w != 0; qutip vs engine: z of <Mz>(t), largest population difference")
        print(format_table(["case", "N", "method", "ntraj/run", "traj/s", "traj/s cpu",
                            "Qobjs s", "solver s", "1st traj s", "jumps/traj",
                            "engine jumps/traj", "Mz z max / rms", "max |dp|"], detail))

    cli = []
    for r in rows:
        e, k = r["engine"], r.get("kernel") or {}
        cli.append([r["case"], r["N"], e["generator"], e["trajectories"], e["outside_seconds"],
                    e["wall_seconds"], e["run_seconds"], e["build_seconds"],
                    e["compile_seconds"], e["startup_seconds"],
                    k.get("traj_per_s_cpu", k.get("error", "-"))])
    print("\n# engine: python -m jumps run CONFIG --quiet (seconds, medians); start-up = process "
          "- run_seconds; kernel cpu = in-process loop, traj/s by CPU time")
    print(format_table(["case", "N", "generator", "traj", "process s", "wall_seconds",
                        "run_seconds", "build s", "compile s", "start-up s",
                        "kernel traj/s cpu"], cli))
    for r in rows:
        if r["skipped"]:
            print(f"# {r['case']} N={r['N']}: qutip skipped ({r['skipped']})")
    inter = [[r["case"], r["N"], r["interleaved"]["method"], len(r["interleaved"]["ratios"]),
              median(r["interleaved"]["engine"]), median(r["interleaved"]["qutip"]),
              min(r["interleaved"]["ratios"]), r["interleaved"]["median_ratio"],
              max(r["interleaved"]["ratios"])] for r in rows if r.get("interleaved")]
    if inter:
        print("\n# interleaved rounds (engine CLI run, then QuTiP run, alternating order): "
              "per-round ratios engine / qutip")
        print(format_table(["case", "N", "qutip", "rounds", "jumps CLI traj/s", "qutip traj/s",
                            "ratio min", "ratio median", "ratio max"], inter))


def summary(rows: list[dict]) -> str:
    parts = []
    for r in rows:
        q = best(r)
        if q is None:
            continue
        k = kernel_rate(r)
        kernel = "" if isinstance(k, str) else f", kernel {k / q['traj_per_s']:.3g}x"
        inter = (f", interleaved median {r['interleaved']['median_ratio']:.3g}x"
                 if r.get("interleaved") else "")
        parts.append(f"{r['case']} N={r['N']}: {r['engine']['traj_per_s'] / q['traj_per_s']:.3g}x"
                     f"{kernel}{inter} (qutip {q['method']})")
    return "summary: jumps / qutip mcsolve trajectories/s: " + ("; ".join(parts) or "none")


def main() -> int:
    args = parse_args()
    import qutip

    print(f"# vs_qutip: TFIM J=1 h={args.h}, sigma_x Ohmic baths eta=0.01 wc=5 beta=1 on every "
          f"site, t in [0, {T_FINAL}] ({N_TIMES} points), observable Mz (dense .npy), "
          f"density_matrix diagonal, Lamb shift {'on' if args.lamb_shift else 'off'}; "
          f"qutip {qutip.__version__} e_ops {args.qutip_e_ops}")
    for case in args.cases:
        print(f"# case {case}: {CASES[case]['label']}")
    before = load_average()
    print(f"# {before} (before)", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vs_qutip-") as tmp:
        os.environ["JUMPS_CACHE_DIR"] = str(Path(tmp) / "cache")
        for spins in args.spins:
            for case in args.cases:
                workdir = Path(tmp) / f"{case}-{spins}"
                workdir.mkdir()
                rows.append(compare(args, case, spins, workdir))
    print_tables(rows)
    finish(rows, before, summary(rows), args.out, skip=("averages",))
    return 0


if __name__ == "__main__":
    sys.exit(main())
