#!/usr/bin/env python3
"""This engine against ``qutip.mcsolve`` on the same Davies master equation, side by side.

System (issue 3): open TFIM chains of N spins, ``H = -sum sz sz - h sum sx - hz sum sz`` with
J = 1, h = 1.1, hz = 0.3, an independent Ohmic bath on every site through sigma_x (eta = 0.01,
cutoff wc = 5, beta = 1), t in [0, 50] on 101 points. Observables: ``sz:0``, ``sx:0`` and the
energy ``H``. Initial states: the highest eigenstate and the all-up product state.

Both solvers get the same Lindblad operators ``L_c = sqrt(gamma_c) A_c(w)``, one per channel
(bath, Bohr frequency), taken from ``generator.lindblad_operators()``, the same Hamiltonian
``H`` (+ ``H_LS`` with ``--lamb-shift``; default off for both, which keeps the N = 10 build
short), the same observables and the same number of trajectories, in one process.

qutip is given the operators either in the user basis (dense rank-one matrices, as
``lindblad_operators("user")`` returns them) or, equivalently, in the energy eigenbasis, where
each ``L_c`` has a single non-zero entry (sparse CSR) and H is diagonal: the same master
equation in another basis, and the fastest form for qutip. ``--qutip-basis`` picks which;
the user basis is skipped when its dense operators would exceed ``--max-dense-gb``, qutip
altogether when there are more than ``--max-qutip-channels`` collapse operators.

qutip runs with its default options (``method="vern7"``, atol 1e-8, rtol 1e-6, serial map,
``improved_sampling=False``) except ``progress_bar=False``; its rate is trajectories over
``result.stats["run time"]`` (the time to build the ``Qobj`` list and qutip's own
preparation are reported apart). The engine is timed on ``kernels.run_chunk`` alone after a
warm-up call (Numba compile excluded), ``--repeats`` times (median), once at qutip's trajectory
count and once on a batch of at least ``--engine-seconds`` of work. Rates from wall-clock and
from process CPU time are both printed; BLAS threads are pinned to one (one core each).

A sanity check compares qutip's averages with the engine's batch averages (z-scores over
observables and times, see ``agreement``): both must run the same stochastic process.

    python benchmarks/vs_qutip.py                              # N = 4 6 8 10, both states
    python benchmarks/vs_qutip.py --spins 4 6 --qutip-trajectories 4:20 6:2 --initial highest
"""

from __future__ import annotations

import os

# One thread per solver: the comparison is per core (set before numpy is imported).
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import sys

import numpy as np
from common import format_table, load_average, median, tfim_system, timed

from jumps.core.random import seed_key
from jumps.generators.channels import kernels, unravel

OBSERVABLES = ("sz:0", "sx:0", "energy")
T_FINAL, N_TIMES = 50.0, 101


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spins", type=int, nargs="+", default=[4, 6, 8, 10])
    parser.add_argument("--h", type=float, default=1.1)
    parser.add_argument("--hz", type=float, default=0.3)
    parser.add_argument("--initial", choices=("highest", "product", "both"), default="both",
                        help="highest eigenstate, all-up product state, or both")
    parser.add_argument("--qutip-trajectories", nargs="+", default=["4:20", "6:2", "8:1", "10:1"],
                        metavar="N:NTRAJ", help="trajectories for qutip (and the side-by-side "
                                                "engine run) per chain length")
    parser.add_argument("--qutip-basis", choices=("energy", "user", "both"), default="both")
    parser.add_argument("--max-dense-gb", type=float, default=0.5,
                        help="skip qutip's user basis above this much dense operator memory")
    parser.add_argument("--max-qutip-channels", type=int, default=600_000,
                        help="skip qutip above this many collapse operators")
    parser.add_argument("--engine-seconds", type=float, default=1.0,
                        help="minimum CPU seconds of the engine's batch measurement")
    parser.add_argument("--engine-max-trajectories", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3, help="engine repetitions (median)")
    parser.add_argument("--lamb-shift", action="store_true",
                        help="include H_LS for both (engine: generator; qutip: H + H_LS)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.qutip_trajectories = {int(n): int(k) for n, k in
                               (item.split(":") for item in args.qutip_trajectories)}
    return args


# -- the engine -------------------------------------------------------------------------------

class Engine:
    """The engine on one generator and initial state, timed on ``kernels.run_chunk`` alone."""

    def __init__(self, generator, model, psi0, seed: int):
        self.generator = generator
        self.times = np.linspace(0.0, T_FINAL, N_TIMES)
        self.engine = unravel.pack_engine(generator)
        self.initial = unravel.make_initial(generator, psi0)
        self.observables = {name: model.operator(name) for name in OBSERVABLES}
        self.template = unravel.new_tally(generator, self.engine, self.times, self.observables,
                                          "none", 0)
        self.key = seed_key(seed)
        self.next_index = 0
        self.run(1)  # Numba compile (or cache load): excluded from every timing

    def run(self, count: int):
        """Run ``count`` new trajectories; returns (timing, jumps, tally)."""
        tally = unravel.fresh_tally(self.template, count)
        first, self.next_index = self.next_index, self.next_index + count
        t = timed(kernels.run_chunk, self.engine, self.initial, tally, self.key, first, count)
        return t, int(t.value), tally

    def rates(self, count: int, repeats: int) -> dict:
        """Median trajectories/s and jumps/s over ``repeats`` runs of ``count`` trajectories."""
        runs = [self.run(count) for _ in range(repeats)]
        return {"traj_wall": median(count / t.wall for t, _, _ in runs),
                "traj_cpu": median(count / t.cpu for t, _, _ in runs),
                "jumps_wall": median(j / t.wall for t, j, _ in runs),
                "jumps_cpu": median(j / t.cpu for t, j, _ in runs),
                "jumps_per_traj": median(j / count for _, j, _ in runs)}

    def batch(self, min_seconds: float, max_count: int, start: int) -> tuple[dict, dict]:
        """Double the trajectory count until one run takes ``min_seconds`` of CPU time."""
        count = max(1, start)
        while True:
            t, jumps, tally = self.run(count)
            if t.cpu >= min_seconds or count >= max_count:
                break
            count = min(max_count, max(2 * count, int(1.2 * count * min_seconds / max(t.cpu, 1e-6))))
        sums = {name: getattr(tally, name) for name in unravel.SUM_FIELDS}
        averages = unravel.finalize(self.generator, self.engine, sums, count, list(OBSERVABLES),
                                    tally.observables)
        rate = {"count": count, "traj_wall": count / t.wall, "traj_cpu": count / t.cpu,
                "jumps_wall": jumps / t.wall, "jumps_cpu": jumps / t.cpu,
                "jumps_per_traj": jumps / count}
        return rate, averages


# -- qutip --------------------------------------------------------------------------------------

def qutip_problem(generator, model, psi0, basis: str, lamb_shift: bool):
    """``(H, c_ops, psi0, e_ops)`` as Qobj for qutip, in the user or the energy basis."""
    import qutip
    import scipy.sparse as sp

    V = generator.eigenvectors
    shift = generator.dense_blocks(generator.lamb_shift_blocks) if lamb_shift else 0.0
    if basis == "user":
        H = model.hamiltonian + (V @ shift @ V.conj().T if lamb_shift else 0.0)
        c_ops = [qutip.Qobj(L) for L in generator.lindblad_operators("user")]
        e_ops = [qutip.Qobj(model.operator(name)) for name in OBSERVABLES]
        return qutip.Qobj(H), c_ops, qutip.Qobj(psi0), e_ops
    H = np.diag(generator.energies).astype(complex) + shift
    roots = np.sqrt(generator.channel_rate)
    c_ops = [qutip.Qobj(sp.csr_matrix(roots[c] * generator.jump_operator(c)))
             for c in range(generator.n_channels)]
    e_ops = [qutip.Qobj(generator.to_energy_basis(model.operator(name))) for name in OBSERVABLES]
    return (qutip.Qobj(sp.csr_matrix(H)), c_ops, qutip.Qobj(V.conj().T @ psi0), e_ops)


def run_qutip(problem, ntraj: int, seed: int) -> dict:
    import qutip

    H, c_ops, psi0, e_ops = problem
    times = np.linspace(0.0, T_FINAL, N_TIMES)
    def solve():
        return qutip.mcsolve(H, psi0, times, c_ops, e_ops=e_ops, ntraj=ntraj, seeds=seed,
                             options={"progress_bar": False})

    t = timed(solve)
    result = t.value
    run_seconds = result.stats["run time"]
    jumps = sum(len(times_) for times_ in result.col_times)
    cpu_run = t.cpu * run_seconds / t.wall  # the CPU share of the run phase
    return {"ntraj": ntraj, "run": run_seconds, "prep": result.stats["preparation time"],
            "cpu_fraction": t.cpu / t.wall,
            "traj_wall": ntraj / run_seconds, "traj_cpu": ntraj / cpu_run,
            "jumps_wall": jumps / run_seconds, "jumps_cpu": jumps / cpu_run,
            "jumps_per_traj": jumps / ntraj, "expect": [np.real(e) for e in result.expect]}


def agreement(averages: dict, batch_count: int, qutip_result: dict) -> tuple[float, float]:
    """Max and rms over observables and times of ``z = (qutip - engine) / error``.

    ``error^2 = s^2 / n_qutip + stderr_engine^2`` with ``s^2`` the single-trajectory variance
    estimated from the engine's large batch (qutip's own estimate from a few trajectories is
    too noisy). Both solvers run the same stochastic process, so z is standard-normal-like
    (correlated in time): max|z| of a few is expected, tens is a disagreement.
    """
    n = qutip_result["ntraj"]
    z = []
    for o, name in enumerate(OBSERVABLES):
        stderr = averages[f"expect_{name}_stderr"]
        error = np.sqrt(stderr**2 * batch_count / n + stderr**2)
        ok = error > 1e-12
        z.append((qutip_result["expect"][o] - averages[f"expect_{name}"])[ok] / error[ok])
    z = np.concatenate(z)
    return float(np.max(np.abs(z))), float(np.sqrt(np.mean(z**2)))


# -- one chain length ---------------------------------------------------------------------------

def initial_states(model, generator, which: str) -> dict[str, np.ndarray]:
    states = {}
    if which in ("highest", "both"):
        states["highest eigenstate"] = generator.eigenvectors[:, -1]
    if which in ("product", "both"):
        up = np.zeros(generator.dimension, dtype=complex)
        up[0] = 1.0  # |up up ... up>: qubit 0 leftmost, |0> = |up>
        states["all-up product"] = up
    return states


def bases(args, generator) -> list[tuple[str, str | None]]:
    """``(basis, reason skipped or None)`` for qutip at this size."""
    d, channels = generator.dimension, generator.n_channels
    wanted = ("energy", "user") if args.qutip_basis == "both" else (args.qutip_basis,)
    out = []
    for basis in wanted:
        if channels > args.max_qutip_channels:
            # A CSR Qobj of one entry still holds a (d+1)-long int64 row pointer.
            floor_gb = channels * 8 * (d + 1) / 1e9
            reason = (f"{channels} collapse operators (>= {floor_gb:.0f} GB as CSR Qobj; "
                      f"--max-qutip-channels {args.max_qutip_channels})")
            out.append((basis, reason))
        elif basis == "user" and channels * d * d * 16 / 1e9 > args.max_dense_gb:
            reason = (f"dense operators need {channels * d * d * 16 / 1e9:.1f} GB "
                      f"(--max-dense-gb {args.max_dense_gb})")
            out.append((basis, reason))
        else:
            out.append((basis, None))
    return out


def compare(args, spins: int) -> list[dict]:
    build = timed(tfim_system, spins, args.h, args.hz, 0.01, 5.0, 1.0, args.lamb_shift)
    model, generator = build.value
    ntraj = args.qutip_trajectories.get(spins, 1)
    print(f"# N={spins}: d={generator.dimension}, {generator.n_channels} channels, generator "
          f"built in {build.wall:.1f} s; {ntraj} trajectories side by side", flush=True)
    rows = []
    for state_name, psi0 in initial_states(model, generator, args.initial).items():
        engine = Engine(generator, model, psi0, args.seed)
        for basis, skipped in bases(args, generator):
            row = {"N": spins, "d": generator.dimension, "channels": generator.n_channels,
                   "state": state_name, "basis": basis, "ntraj": ntraj, "skipped": skipped}
            if skipped is None:
                setup = timed(qutip_problem, generator, model, psi0, basis, args.lamb_shift)
                row["setup"] = setup.wall
                row["qutip"] = run_qutip(setup.value, ntraj, args.seed)
                del setup
            row["engine"] = engine.rates(ntraj, args.repeats)
            batch, averages = engine.batch(args.engine_seconds, args.engine_max_trajectories, ntraj)
            row["batch"] = batch
            if "qutip" in row:
                row["z"] = agreement(averages, batch["count"], row["qutip"])
            rows.append(row)
            print(f"#   {state_name}, qutip {basis} basis: "
                  + ("skipped" if skipped else f"{row['qutip']['run']:.1f} s") , flush=True)
    return rows


# -- tables -------------------------------------------------------------------------------------

def print_tables(rows: list[dict]) -> None:
    main_rows, detail_rows = [], []
    for r in rows:
        e, b, q = r["engine"], r["batch"], r.get("qutip")
        if q is None:
            main_rows.append([r["N"], r["state"], r["basis"], r["ntraj"], "-", "-",
                              e["traj_cpu"], e["jumps_cpu"], "-", "-", b["traj_cpu"], "-"])
            note = (f"qutip skipped: {r['skipped']}; engine batch {b['count']} traj, "
                    f"{b['jumps_per_traj']:.1f} jumps/traj")
            detail_rows.append([r["N"], r["state"], r["basis"], note])
            continue
        main_rows.append([r["N"], r["state"], r["basis"], r["ntraj"], q["traj_cpu"],
                          q["jumps_cpu"], e["traj_cpu"], e["jumps_cpu"],
                          e["traj_cpu"] / q["traj_cpu"], e["traj_wall"] / q["traj_wall"],
                          b["traj_cpu"], b["traj_cpu"] / q["traj_cpu"]])
        note = (f"Qobj list {r['setup']:.1f} s, qutip prep {q['prep']:.1f} s, "
                f"run {q['run']:.1f} s wall (cpu share {q['cpu_fraction']:.2f}); "
                f"jumps/traj qutip {q['jumps_per_traj']:.1f}, engine "
                f"{b['jumps_per_traj']:.2f} ({b['count']} traj); "
                f"z max {r['z'][0]:.1f} rms {r['z'][1]:.2f}")
        detail_rows.append([r["N"], r["state"], r["basis"], note])
    print("\n# rates per core from process CPU time (the machine is shared); 'ratio wall' uses "
          "wall-clock rates")
    print(format_table(["N", "initial", "qutip basis", "ntraj", "qutip traj/s", "qutip jumps/s",
                        "engine traj/s", "engine jumps/s", "ratio", "ratio wall",
                        "engine batch traj/s", "ratio batch"], main_rows))
    print("\n# details (z: qutip's averages against the engine's batch, see agreement())")
    print(format_table(["N", "initial", "qutip basis", "notes"], detail_rows))


def main() -> int:
    args = parse_args()
    import qutip

    print(f"# vs_qutip: TFIM h={args.h} hz={args.hz} J=1, sigma_x Ohmic baths eta=0.01 wc=5 "
          f"beta=1, t in [0, {T_FINAL}] ({N_TIMES} points), observables {', '.join(OBSERVABLES)}; "
          f"Lamb shift {'on' if args.lamb_shift else 'off'} for both; qutip {qutip.__version__} "
          f"mcsolve defaults (vern7, atol 1e-8, rtol 1e-6, serial) + progress_bar=False")
    print(f"# {load_average()} (before)", flush=True)
    rows = []
    for spins in args.spins:
        rows += compare(args, spins)
    print_tables(rows)
    print(f"# {load_average()} (after)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
