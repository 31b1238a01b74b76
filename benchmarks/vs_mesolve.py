#!/usr/bin/env python3
"""Time to the populations of all levels: ``python -m jumps run`` against QuTiP ``mesolve``.

System (issue 3, integrable case): open TFIM chain of N spins, ``H = -sum sz sz - h sum sx``
(J = 1, h = 1.1, hz = 0), an independent Ohmic bath on every site through sigma_x (eta =
0.01, cutoff 5, beta = 1), no Lamb shift, from the all-up product state, t in [0, 50] on 101
points; N = 6, 8, 10 (d = 64, 256, 1024). Target: the energy-eigenbasis populations of all d
levels at all 101 times with standard error <= 0.005.

The engine: ``python -m jumps run CONFIG --quiet`` in a fresh process, timed from outside
(start-up included: interpreter, imports, generator build, since ``[run] cache = false``,
Numba cache load, writing the result), ``--repeats`` times (median), after one untimed warm-up
run that fills Numba's cache. No observables, ``density_matrix = "none"`` (the populations
are always stored). Trajectories: ``--trajectories`` (default 10001). A trajectory's
population of a level lies in [0, 1], so its variance is at most ``p(1-p) <= 1/4``, and the
standard error ``sqrt(var / (N - 1))`` (the engine's unbiased estimate) is <= 0.005 at every
level and time for ``N - 1 >= 0.25 / 0.005^2 = 10000``, whatever the populations: N = 10001
guarantees the target without a pilot. (``--target-stderr`` is no help here: it watches the
first observable.) The table prints the largest standard error reached and the N that would
have sufficed, ``N (max stderr / 0.005)^2`` (the amplitude path's populations vary less
than ``p(1-p)``).

QuTiP: ``MESolver(L).run(rho0, times, e_ops)`` on the sparse Davies Liouvillian in the
energy eigenbasis (column-stacking superoperator, CSR ``Qobj``) with ``rho0 = |psi0><psi0|``
in the eigenbasis and one ``e_ops`` callable returning ``rho.diag()`` (all populations at
once), default options (adams, atol 1e-8, rtol 1e-6; ``--mesolve-method``). Set-up (the
Liouvillian and the solver) is timed apart from the solve. The Liouvillian comes from
``qutip.liouvillian(H, c_ops)`` with the sparse eigenbasis ``H`` and collapse operators
``sqrt(gamma) A_a(w)`` (``common.eigenbasis_qutip``), what a QuTiP user writes; it adds the
channels one by one (three sparse additions each, to a growing matrix: 55 s at N = 8, hours
at N = 10), so above d = 64 (``--liouvillian auto``) it is assembled directly from the same
channels in one COO pass (``direct_liouvillian``; checked against ``qutip.liouvillian`` at
d <= 64, the difference is printed). Each N runs in a child process with
``--mesolve-timeout`` seconds and an address-space limit of ``--mesolve-memory-gb``: N = 10 has
d^2 = 1048576 and ~1.3e8 non-zeros (about 3 GB as CSR), and may run out of either; the table
then says so. The engine's populations are checked against mesolve's (largest difference
and z = difference / stderr where stderr >= 1e-4).

BLAS threads are pinned to one (both sides run on one core).

    python benchmarks/vs_mesolve.py                         # full: N = 6 8 10 (quiet machine)
    python benchmarks/vs_mesolve.py --spins 6 8 --out vs_mesolve.json
    python benchmarks/vs_mesolve.py --quick                 # smoke run: N = 4 6, 2000 traj
"""

from __future__ import annotations

import os

# One thread per solver: the comparison is per core (set before numpy is imported).
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import finish, format_table, load_average, median, run_cli, tfim_config

T_FINAL, N_TIMES = 50.0, 101
TARGET = 0.005


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spins", type=int, nargs="+", default=[6, 8, 10])
    parser.add_argument("--h", type=float, default=1.1, help="transverse field")
    parser.add_argument("--trajectories", type=int, default=10001,
                        help="engine trajectories (10001 guarantees stderr <= 0.005)")
    parser.add_argument("--repeats", type=int, default=3, help="engine runs (median)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--liouvillian", choices=("auto", "qutip", "direct"), default="auto",
                        help="auto: qutip.liouvillian for d <= 64, direct assembly above")
    parser.add_argument("--mesolve-method", default="adams")
    parser.add_argument("--mesolve-timeout", type=float, default=3600.0,
                        help="seconds per N for QuTiP (set-up and solve) before it is stopped")
    parser.add_argument("--mesolve-memory-gb", type=float, default=12.0,
                        help="address-space limit of the QuTiP process")
    parser.add_argument("--no-mesolve", dest="mesolve", action="store_false")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: N = 4 6, 2000 trajectories, 2 repeats, 600 s timeout")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # N: run QuTiP only
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.spins, args.trajectories, args.repeats = [4, 6], 2000, 2
        args.mesolve_timeout = 600.0
    return args


# -- QuTiP (in a child process) -----------------------------------------------------------------

def direct_liouvillian(generator):
    """The Davies Liouvillian as a CSR ``qutip.Qobj`` superoperator in the eigenbasis,
    column-stacking (QuTiP's ``vec``: ``rho[i, j]`` at ``i + j d``), assembled in one pass:
    ``-i (I x H_eff) + i (conj(H_eff) x I) + sum_c conj(L_c) x L_c`` with ``H_eff = H + H_LS -
    (i/2) sum L^dag L`` (block diagonal) and ``L_c = sqrt(gamma_c) A_c`` (entries of channel
    ``c``: ``(n_k, m_k, v_k)``, so ``conj(L_c) x L_c`` holds ``gamma v_k conj(v_l)`` at row
    ``n_l d + n_k``, column ``m_l d + m_k``)."""
    import qutip
    import scipy.sparse as sp

    g, d = generator, generator.dimension
    effective = (sp.diags(g.energies.astype(complex))
                 + sp.csr_matrix(g.dense_blocks(g.lamb_shift_blocks - 0.5j * g.decay_blocks)))
    eye = sp.identity(d, dtype=complex, format="csr")
    coherent = (-1j * sp.kron(eye, effective) + 1j * sp.kron(effective.conj(), eye)).tocoo()
    sizes = np.diff(g.entry_ptr) ** 2
    total = int(sizes.sum()) + coherent.nnz
    index = np.int32 if d * d < 2**31 else np.int64
    rows, cols = np.empty(total, dtype=index), np.empty(total, dtype=index)
    vals = np.empty(total, dtype=complex)
    rows[:coherent.nnz], cols[:coherent.nnz], vals[:coherent.nnz] = (
        coherent.row, coherent.col, coherent.data)
    at = coherent.nnz
    del coherent
    for c in range(g.n_channels):
        lo, hi = g.entry_ptr[c], g.entry_ptr[c + 1]
        n, m, v = g.entry_row[lo:hi], g.entry_col[lo:hi], g.entry_value[lo:hi]
        k = (hi - lo) ** 2
        rows[at:at + k] = (n[None, :] * d + n[:, None]).ravel()
        cols[at:at + k] = (m[None, :] * d + m[:, None]).ravel()
        vals[at:at + k] = (g.channel_rate[c] * v[:, None] * v.conj()[None, :]).ravel()
        at += k
    L = sp.csr_matrix((vals, (rows, cols)), shape=(d * d, d * d))
    del rows, cols, vals
    return qutip.Qobj(L, dims=[[[d], [d]], [[d], [d]]], superrep="super", copy=False)


def child(args) -> int:
    """Build the Liouvillian, solve, save the populations; one JSON line on stdout."""
    import resource

    limit = int(args.mesolve_memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from common import eigenbasis_qutip, tfim_system, timed

    spins = args.child
    info: dict = {"N": spins}
    try:
        import qutip

        _, generator = tfim_system(spins, args.h, 0.0, lamb_shift=False)
        d = generator.dimension
        kind = args.liouvillian
        if kind == "auto":
            kind = "qutip" if d <= 64 else "direct"
        info["liouvillian"] = kind

        def build():
            if kind == "direct":
                return direct_liouvillian(generator)
            return qutip.liouvillian(*eigenbasis_qutip(generator))

        made = timed(build)
        L = made.value
        info["liouvillian_seconds"] = made.wall
        if d <= 64:  # the direct assembly against QuTiP's own
            other = (direct_liouvillian(generator) if kind == "qutip"
                     else qutip.liouvillian(*eigenbasis_qutip(generator)))
            info["liouvillian_check"] = float(np.max(np.abs((L - other).full())))
        info["nnz"] = int(L.data.as_scipy().nnz)
        up = np.zeros(d, dtype=complex)
        up[0] = 1.0
        psi = generator.eigenvectors.conj().T @ up
        rho0 = qutip.Qobj(np.outer(psi, psi.conj()), dims=[[d], [d]])
        times = np.linspace(0.0, T_FINAL, N_TIMES)
        solver = timed(lambda: qutip.MESolver(L, options={
            "method": args.mesolve_method, "progress_bar": False, "store_states": False}))
        info["solver_seconds"] = solver.wall
        solved = timed(lambda: solver.value.run(
            rho0, times, e_ops={"populations": lambda t, rho: np.real(rho.diag())}))
        info["solve_seconds"] = solved.wall
        info["solve_cpu_seconds"] = solved.cpu
        info["stats"] = {k: v for k, v in solved.value.stats.items()
                         if isinstance(v, (int, float, str))}
        np.save(args.child_out, np.array(solved.value.e_data["populations"]))
        info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    except MemoryError:
        info["error"] = f"out of memory (address space limit {args.mesolve_memory_gb:g} GB)"
    print(json.dumps(info))
    return 0


def run_mesolve(spins: int, args, workdir: Path) -> dict:
    """QuTiP in a child process under the timeout and memory limit."""
    out = workdir / f"mesolve-{spins}.npy"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(spins),
               "--child-out", str(out), "--h", str(args.h), "--liouvillian", args.liouvillian,
               "--mesolve-method", args.mesolve_method,
               "--mesolve-memory-gb", str(args.mesolve_memory_gb)]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True,
                              timeout=args.mesolve_timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {args.mesolve_timeout:g} s"}
    outside = time.perf_counter() - start
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        if "MemoryError" in done.stderr or done.returncode == -9:
            tail = [f"out of memory (limit {args.mesolve_memory_gb:g} GB)"]
        return {"error": tail[0][:200]}
    info = json.loads(lines[-1])
    info["outside_seconds"] = outside
    if "error" not in info:
        info["populations"] = np.load(out)
    return info


# -- the engine ---------------------------------------------------------------------------------

def write_config(workdir: Path, spins: int, args) -> Path:
    text = tfim_config(spins, args.h, 0.0, {"kind": "product", "state": "u" * spins},
                       bath={"lamb_shift": False}, trajectories=args.trajectories,
                       seed=args.seed, observables=[], density_matrix="none", cache=False)
    path = workdir / f"tfim{spins}.toml"
    path.write_text("# Written by benchmarks/vs_mesolve.py.\n" + text)
    return path


def run_engine(spins: int, args, workdir: Path) -> dict:
    config = write_config(workdir, spins, args)
    run_cli(config, workdir / f"warmup{spins}", "--trajectories", "16")
    runs = [run_cli(config, workdir / f"run{spins}-{r}", "--seed", str(args.seed + r))
            for r in range(args.repeats)]
    metas = [r["meta"] for r in runs]
    with np.load(runs[-1]["results"]) as data:
        populations, stderr = data["populations"], data["populations_stderr"]
    largest = float(np.max(stderr))
    return {"trajectories": args.trajectories,
            "outside_seconds": median(r["outside"] for r in runs),
            "run_seconds": median(m["run_seconds"] for m in metas),
            "build_seconds": median(m["build_seconds"] for m in metas),
            "startup_seconds": median(r["outside"] - m["run_seconds"]
                                      for r, m in zip(runs, metas)),
            "max_stderr": largest,
            "needed": math.ceil(args.trajectories * (largest / TARGET) ** 2),
            "populations": populations, "stderr": stderr}


def check(engine: dict, mesolve: dict) -> tuple[float, float]:
    """Largest |engine - mesolve| population, and largest |z| = |difference| / stderr where
    the stderr is at least 1e-4 (before most trajectories have jumped, the spread comes from
    a few of them and a tiny stderr is no error bar)."""
    diff = engine["populations"] - mesolve["populations"]
    ok = engine["stderr"] >= 1e-4
    z = np.abs(diff[ok] / engine["stderr"][ok])
    return float(np.max(np.abs(diff))), float(np.max(z)) if z.size else 0.0


# -- output -------------------------------------------------------------------------------------

def print_tables(rows: list[dict]) -> None:
    main, detail = [], []
    for r in rows:
        e, m = r["engine"], r.get("mesolve") or {"error": "not run"}
        failed = m.get("error")
        total = None if failed else m["liouvillian_seconds"] + m["solver_seconds"] + m[
            "solve_seconds"]
        main.append([r["N"], r["d"], e["trajectories"], e["max_stderr"], e["outside_seconds"],
                     e["startup_seconds"], failed or m["solve_seconds"],
                     "-" if failed else m["liouvillian_seconds"] + m["solver_seconds"],
                     "-" if failed else m["solve_seconds"] / e["outside_seconds"],
                     "-" if failed else total / e["outside_seconds"]])
        if not failed:
            dp, z = r["check"]
            detail.append([r["N"], m["liouvillian"], m["nnz"], m.get("liouvillian_check", "-"),
                           m["solve_cpu_seconds"], m["peak_rss_mb"], e["needed"],
                           e["run_seconds"], e["build_seconds"], dp, z])
    print("\n# time to all populations at 101 times, stderr <= 0.005 (seconds, wall clock, "
          "one core); ratio = mesolve / jumps")
    print(format_table(["N", "d", "trajectories", "max stderr", "jumps wall", "of which start-up",
                        "mesolve wall", "mesolve set-up", "ratio", "ratio with set-up"], main))
    if detail:
        print("\n# details: Liouvillian (kind, non-zeros, |direct - qutip.liouvillian| at "
              "d <= 64), mesolve CPU s and peak RSS MB; jumps: N that would suffice, "
              "run_seconds, build s; check vs mesolve: max |dp|, max |z| (stderr >= 1e-4)")
        print(format_table(["N", "liouvillian", "nnz", "check", "solve cpu s", "RSS MB",
                            "N needed", "run_seconds", "build s", "max |dp|", "max |z|"],
                           detail))


def summary(rows: list[dict]) -> str:
    parts = []
    for r in rows:
        m = r.get("mesolve") or {"error": "not run"}
        jumps = r["engine"]["outside_seconds"]
        if m.get("error"):
            parts.append(f"N={r['N']}: jumps {jumps:.3g} s, mesolve {m['error']}")
        else:
            parts.append(f"N={r['N']}: jumps {jumps:.3g} s vs mesolve {m['solve_seconds']:.3g} s "
                         f"({m['solve_seconds'] / jumps:.3g}x)")
    return "summary: time to populations (stderr <= 0.005): " + "; ".join(parts)


def main() -> int:
    args = parse_args()
    if args.child is not None:
        return child(args)
    import qutip

    print(f"# vs_mesolve: integrable TFIM J=1 h={args.h} hz=0, sigma_x Ohmic baths eta=0.01 "
          f"wc=5 beta=1, no Lamb shift, all-up product state, t in [0, {T_FINAL}] "
          f"({N_TIMES} points); target stderr {TARGET} on every population; qutip "
          f"{qutip.__version__} mesolve {args.mesolve_method}")
    before = load_average()
    print(f"# {before} (before)", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vs_mesolve-") as tmp:
        workdir = Path(tmp)
        os.environ["JUMPS_CACHE_DIR"] = str(workdir / "cache")
        for spins in args.spins:
            row = {"N": spins, "d": 2**spins, "engine": run_engine(spins, args, workdir)}
            print(f"# N={spins}: jumps {row['engine']['outside_seconds']:.3g} s", flush=True)
            if args.mesolve:
                row["mesolve"] = run_mesolve(spins, args, workdir)
                m = row["mesolve"]
                print(f"# N={spins}: mesolve " + (m["error"] if "error" in m else
                                                  f"{m['solve_seconds']:.3g} s"), flush=True)
                if "error" not in m:
                    row["check"] = check(row["engine"], m)
            rows.append(row)
    print_tables(rows)
    finish(rows, before, summary(rows), args.out, skip=("populations", "stderr"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
