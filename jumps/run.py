"""The run driver: composes config, generator, exact solver, trajectories and result files."""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__, exact
from .config import RunConfig
from .davies import DaviesGenerator, build_generator, diagnostics
from .errors import ConfigError
from .io import META_FILE, write_results


def build(config: RunConfig) -> DaviesGenerator:
    """The Davies generator of a config."""
    return build_generator(config.model.hamiltonian, config.couplings, config.baths,
                           degeneracy_tol=config.degeneracy_tol, drop_tol=config.drop_tol,
                           lamb_shift=config.lamb_shift)


def initial_density(config: RunConfig, generator: DaviesGenerator) -> np.ndarray:
    """The initial density matrix in the user's basis."""
    state = config.initial_state
    if state.kind == "gibbs":
        try:
            return generator.gibbs_state()
        except ValueError:
            raise ConfigError("initial_state.kind", "gibbs needs all baths at one temperature") from None
    if state.kind == "eigenstate":
        vector = generator.eigenvectors[:, state.index]
    else:
        vector = state.vector
    return np.outer(vector, vector.conj())


def prepare_output(out: Path, force: bool, resume: bool = False) -> Path:
    """Create the result directory; refuse to overwrite a finished result without ``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", f"{out} exists and is not a directory")
    if (out / META_FILE).exists() and not (force or resume):
        raise ConfigError("--out", f"{out} already holds a result (use --force to overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def metadata(config: RunConfig, generator: DaviesGenerator, method: str, **extra) -> dict:
    """``run.json`` contents: the config as run, versions, the generator's summary."""
    import numba
    import scipy

    diag = diagnostics(generator)
    return {
        "method": method,
        "config": config.raw,
        "config_path": str(Path(config.source).resolve()) if config.source else "",
        "model": config.model.name,
        "energy_unit": config.model.energy_unit,
        "dimension": generator.dimension,
        "n_baths": len(config.baths),
        "bath_couplings": config.coupling_names,
        "bath_beta": [b.beta for b in config.baths],
        "bath_thermal": [b.is_thermal for b in config.baths],
        "initial_state": config.initial_state.kind,
        "t_final": config.t_final,
        "n_times": config.n_times,
        "observables": list(config.observables),
        "density_matrix": config.store_density,
        "secular_margin": diag.secular_margin,
        "steady_state_dimension": diag.steady_state_dimension,
        "versions": {"jumps": __version__, "python": sys.version.split()[0],
                     "numpy": np.__version__, "scipy": scipy.__version__,
                     "numba": numba.__version__, "platform": platform.platform()},
        **extra,
    }


def generator_arrays(generator: DaviesGenerator) -> dict[str, np.ndarray]:
    """Arrays every result file carries about the generator."""
    return {
        "energies": generator.energies,
        "level_energies": generator.level_energies,
        "level_ptr": generator.level_ptr,
        "channel_bath": generator.channel_bath,
        "channel_frequency": generator.channel_frequency,
        "channel_rate": generator.channel_rate,
        "channel_lamb_shift": generator.channel_lamb_shift,
        "bath_beta": np.array([b.beta for b in generator.baths]),
    }


def run_exact(config: RunConfig, out: Path, force: bool = False) -> dict[str, np.ndarray]:
    """Solve the master equation densely on the config's time grid and write the result."""
    start = time.perf_counter()
    generator = build(config)
    if generator.dimension > exact.MAX_EXACT_DIMENSION:
        raise ConfigError("system", f"exact solver is for d <= {exact.MAX_EXACT_DIMENSION}, "
                                    f"this system has d = {generator.dimension}")
    out = prepare_output(out, force)
    solution = exact.evolve(generator, initial_density(config, generator), config.times)
    arrays = {"times": solution.times, "populations": solution.populations,
              **generator_arrays(generator)}
    for name, operator in config.observables.items():
        arrays[f"expect_{name}"] = np.real(solution.expectation(generator, operator))
    if config.store_density == "full":
        arrays["rho"] = solution.rho_user(generator)
    elif config.store_density == "diagonal":
        arrays["rho_diagonal"] = np.real(np.einsum("tii->ti", solution.rho_user(generator)))
    elapsed = time.perf_counter() - start
    write_results(out, arrays, metadata(config, generator, "exact", wall_seconds=elapsed))
    return arrays


# -- trajectories ------------------------------------------------------------------------------

CHECKPOINT_DIR = "checkpoint"


def default_chunk_size(trajectories: int) -> int:
    """About 200 chunks (load balance, progress, checkpoints), at most 1000 trajectories each."""
    return int(min(1000, max(1, -(-trajectories // 200))))


def config_fingerprint(config: RunConfig) -> str:
    """Hash of the config as run: a resumed run must have the same one."""
    import hashlib
    import json

    text = json.dumps(config.raw, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Plan:
    """What every rank needs to run chunks: plain arrays, broadcast from rank 0."""

    def __init__(self, config: RunConfig, generator: DaviesGenerator):
        from . import unravel

        self.times = config.times
        self.ntraj = config.trajectories
        self.chunk = config.chunk_size or default_chunk_size(config.trajectories)
        self.n_chunks = -(-self.ntraj // self.chunk)
        self.key = unravel.seed_key(config.seed)
        self.engine = unravel.pack_engine(generator)
        psi0 = None if config.initial_state.kind == "gibbs" else (
            generator.eigenvectors[:, config.initial_state.index]
            if config.initial_state.kind == "eigenstate" else config.initial_state.vector)
        self.initial = unravel.make_initial(generator, psi0)
        self.names = list(config.observables)
        self.density = config.store_density
        # The generator without its baths (their Python callables need not travel).
        from dataclasses import replace

        self.generator = replace(generator, baths=())
        self.observables = config.observables

    def chunk_range(self, chunk: int) -> tuple[int, int]:
        first = chunk * self.chunk
        return first, min(self.chunk, self.ntraj - first)

    def new_tally(self, n_baths: int):
        from . import unravel

        return unravel.new_tally(self.generator, self.engine, self.times, self.observables,
                                 self.density, 0, n_baths)


def _first_observable_moments(plan: _Plan, tally) -> tuple[np.ndarray, np.ndarray] | None:
    """Running sum and sum of squares of the first observable (pure-level part included)."""
    if not plan.names:
        return None
    g = plan.generator
    single = np.flatnonzero(g.level_sizes == 1)
    diagonal = np.real(tally.observables[0].diagonal()[g.level_ptr[single]])
    counts = tally.level_counts[:, single].astype(float)
    return (tally.obs_sum[:, 0] + counts @ diagonal, tally.obs_sumsq[:, 0] + counts @ diagonal**2)


class _Checkpoints:
    """Per-rank checkpoint files ``checkpoint/a{attempt}-r{rank}.npz``.

    Each attempt's rank files hold only the chunks finished in that attempt (its tallies start
    from zero), so the files of all attempts are disjoint and a resume adds them up.
    """

    def __init__(self, out: Path, attempt: int, rank: int):
        self.directory = Path(out) / CHECKPOINT_DIR
        self.path = self.directory / f"a{attempt:03d}-r{rank:04d}.npz"

    def write(self, sums: dict, chunks: list[int], heat: np.ndarray, n_jumps: np.ndarray,
              rows: np.ndarray) -> None:
        from .io import write_npz

        write_npz(self.path, {**{f"sum_{k}": v for k, v in sums.items()},
                              "chunks": np.array(chunks, dtype=np.int64),
                              "rows": rows, "heat": heat[rows], "n_jumps": n_jumps[rows]})

    @staticmethod
    def load_all(out: Path) -> list[dict[str, np.ndarray]]:
        directory = Path(out) / CHECKPOINT_DIR
        states = []
        for path in sorted(directory.glob("a*-r*.npz")):
            with np.load(path) as data:
                states.append({k: data[k] for k in data.files})
        return states


def _resume_state(out: Path, plan: _Plan, fingerprint: str, resume: bool, force: bool):
    """On rank 0: (attempt number, previous chunks, summed previous state) for this run."""
    import json
    import shutil

    directory = Path(out) / CHECKPOINT_DIR
    plan_file = directory / "plan.json"
    expected = {"fingerprint": fingerprint, "ntraj": plan.ntraj, "chunk": plan.chunk}
    if directory.exists() and not resume:
        if not force:
            raise ConfigError("--out", f"{out} holds an interrupted run: use --resume to continue "
                                       "it or --force to start over")
        shutil.rmtree(directory)
    if not directory.exists():
        directory.mkdir(parents=True)
        from .io import write_json

        write_json(plan_file, expected)
        return 1, set(), None
    if not plan_file.exists() or json.loads(plan_file.read_text()) != expected:
        raise ConfigError("--resume", "the config, trajectory count or chunk size changed since "
                                      "the interrupted run; use --force to start over")
    states = _Checkpoints.load_all(out)
    attempts = [int(p.name[1:4]) for p in directory.glob("a*-r*.npz")]
    if not states:
        return 1 + max(attempts, default=0), set(), None
    from .unravel import Accumulator

    accumulator = Accumulator()
    done: set[int] = set()
    for state in states:
        done.update(state["chunks"].tolist())
        accumulator.add({k: v for k, v in state.items() if k.startswith("sum_")})
    base = {**accumulator.sums(), "rows": [s["rows"] for s in states],
            "heat": [s["heat"] for s in states], "n_jumps": [s["n_jumps"] for s in states]}
    return 1 + max(attempts, default=0), done, base


class _Scheduler:
    """Rank 0's bookkeeping: which chunk comes next, global progress, early stop."""

    def __init__(self, plan: _Plan, done: set[int], target_stderr: float | None, base_moments):
        self.plan = plan
        self.todo = (c for c in range(plan.n_chunks) if c not in done)
        self.done_trajectories = sum(plan.chunk_range(c)[1] for c in done)
        self.jumps = 0
        self.stopped = False
        self.target = target_stderr
        self.moments = {}
        self.base_moments = base_moments

    def next_chunk(self, report: dict) -> int:
        self.done_trajectories += report.get("trajectories", 0)
        self.jumps += report.get("jumps", 0)
        if report.get("moments") is not None:
            self.moments[report["rank"]] = report["moments"]
        if self.target is not None and not self.stopped:
            self.stopped = self._converged()
        if self.stopped:
            return -1
        return next(self.todo, -1)

    def _converged(self) -> bool:
        if not self.moments or self.done_trajectories < 100:
            return False
        total = sum(m[0] for m in self.moments.values())
        total_sq = sum(m[1] for m in self.moments.values())
        if self.base_moments is not None:
            total, total_sq = total + self.base_moments[0], total_sq + self.base_moments[1]
        n = self.done_trajectories
        variance = np.maximum(total_sq - total**2 / n, 0.0) / (n - 1)
        return float(np.sqrt(variance.max() / n)) < self.target


def run_trajectories(config: RunConfig, out: Path, force: bool = False, resume: bool = False,
                     quiet: bool = False, target_stderr: float | None = None, comm=None) -> int:
    """Unravel the config's master equation into trajectories; write the result directory.

    Runs on every rank of ``comm`` (default: MPI world when launched by mpirun, else serial).
    Returns the exit status.
    """
    from . import kernels, parallel, unravel

    comm = comm or parallel.get_comm()
    timings = {}
    start = time.perf_counter()

    def prepare():
        if comm.rank != 0:
            return None
        if (Path(out) / META_FILE).exists() and resume and not force:
            return "complete"
        prepare_output(out, force, resume)
        generator = build(config)
        timings["build_seconds"] = time.perf_counter() - start
        plan = _Plan(config, generator)
        attempt, done, base = _resume_state(out, plan, config_fingerprint(config), resume, force)
        compile_start = time.perf_counter()
        kernels.run_chunk(plan.engine, plan.initial, plan.new_tally(len(config.baths)), plan.key, 0, 0)
        timings["compile_seconds"] = time.perf_counter() - compile_start
        return plan, attempt, done, base, generator

    prepared = parallel.agree_or_exit(comm, prepare)
    status = comm.bcast("complete" if prepared == "complete" else None)
    if status == "complete":
        if comm.rank == 0:
            print(f"{out}: the run is already complete")
        return 0
    plan, attempt, done = comm.bcast(None if comm.rank else prepared[:3])
    base = prepared[3] if comm.rank == 0 else None
    full_generator = prepared[4] if comm.rank == 0 else None

    template = plan.new_tally(len(config.baths))
    runner = unravel.ChunkRunner(plan.engine, plan.initial, template, plan.key, plan.ntraj)
    checkpoints = _Checkpoints(out, attempt, comm.rank)
    my_chunks: list[int] = []
    base_moments = None
    if base is not None and plan.names:
        base_moments = _first_observable_moments(
            plan, template._replace(**{k: base[f"sum_{k}"] for k in unravel.SUM_FIELDS}))
    scheduler = _Scheduler(plan, done, target_stderr, base_moments) if comm.rank == 0 else None
    dispatcher = comm.dispatcher(scheduler.next_chunk if scheduler else None)
    bar = _progress(plan, done, quiet) if comm.rank == 0 else None
    run_start = time.perf_counter()
    last_checkpoint = run_start
    report: dict = {"rank": comm.rank}
    while True:
        parallel.inject_fault(comm.rank, len(my_chunks))
        chunk = dispatcher.request(report)
        if chunk < 0:
            break
        first, count = plan.chunk_range(chunk)
        jumps = runner.run(first, count)
        my_chunks.append(chunk)
        report = {"rank": comm.rank, "trajectories": count, "jumps": jumps,
                  "moments": _first_observable_moments(plan, template._replace(**runner.sums()))
                  if target_stderr else None}
        if bar is not None:
            bar.update(scheduler.done_trajectories + count - bar.n)
            elapsed = time.perf_counter() - run_start
            bar.set_postfix_str(f"{(scheduler.jumps + jumps) / max(elapsed, 1e-9):.3g} jumps/s", refresh=False)
        now = time.perf_counter()
        if now - last_checkpoint > config.checkpoint_seconds:
            checkpoints.write(runner.sums(), my_chunks, runner.heat, runner.n_jumps,
                              _rows(plan, my_chunks))
            last_checkpoint = now
    dispatcher.close()
    run_seconds = time.perf_counter() - run_start
    if bar is not None:
        bar.close()
    merged = {name: comm.reduce_sum(value) for name, value in runner.sums().items()}
    heat = comm.reduce_sum(runner.heat)
    n_jumps = comm.reduce_sum(runner.n_jumps)
    all_chunks = comm.allgather(my_chunks)
    if comm.rank != 0:
        return 0
    finished = set(done).union(*map(set, all_chunks))
    if base is not None:
        for name in merged:
            merged[name] = merged[name] + base[f"sum_{name}"]
        for rows, h, n in zip(base["rows"], base["heat"], base["n_jumps"]):
            heat[rows], n_jumps[rows] = h, n
    rows = _rows(plan, sorted(finished))
    n = rows.size
    jump_list = runner.jump_list(min(config.record_jumps, n)) if config.record_jumps else {}
    timings["run_seconds"] = run_seconds
    arrays = {"times": plan.times, **generator_arrays(full_generator),
              **unravel.finalize(plan.generator, plan.engine, merged, n, plan.names, template.observables),
              "heat": heat[rows], "n_jumps": n_jumps[rows], "trajectory_index": rows, **jump_list}
    total_jumps = int(arrays["n_jumps"].sum())
    meta = metadata(config, full_generator, "trajectories", seed=config.seed,
                    trajectories=n, trajectories_requested=plan.ntraj, ranks=comm.size,
                    chunk_size=plan.chunk, attempts=attempt, total_jumps=total_jumps,
                    jumps_per_second=total_jumps / max(run_seconds, 1e-9) if attempt == 1 else None,
                    target_stderr=target_stderr, wall_seconds=time.perf_counter() - start,
                    **timings)
    write_results(out, arrays, meta)
    import shutil

    shutil.rmtree(Path(out) / CHECKPOINT_DIR, ignore_errors=True)
    if not quiet:
        print(f"{n} trajectories, {total_jumps} jumps in {run_seconds:.2f} s on {comm.size} "
              f"rank(s) -> {out}", file=sys.stderr)
    return 0


def _rows(plan: _Plan, chunks) -> np.ndarray:
    """Global trajectory indices of a set of chunks, ascending."""
    if not len(chunks):
        return np.zeros(0, dtype=np.int64)
    ranges = [plan.chunk_range(c) for c in sorted(chunks)]
    return np.concatenate([np.arange(first, first + count) for first, count in ranges]).astype(np.int64)


def _progress(plan: _Plan, done: set[int], quiet: bool):
    from tqdm import tqdm

    initial = sum(plan.chunk_range(c)[1] for c in done)
    return tqdm(total=plan.ntraj, initial=initial, unit="traj", disable=quiet or None,
                dynamic_ncols=True, file=sys.stderr)
