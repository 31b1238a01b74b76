"""The run driver: composes config, generator, exact solver, trajectories and result files.

``python -m jumps run`` is :func:`run_trajectories` on every rank, ``exact`` is
:func:`run_exact`. Everything generator-specific goes through the generator's unravelling
(:mod:`jumps.generators`); MPI goes through :mod:`jumps.runtime.parallel`.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from .. import __version__, generators
from ..core.sums import SPARSE_KEYS, Accumulator, mean_stderr
from ..errors import ConfigError
from ..physics import counting, exact
from . import checkpoint, parallel
from .build import build
from .config import RunConfig
from .io import META_FILE, write_results
from .plan import Plan, default_chunk_size, recorded_trajectories, resolve_start
from .statistics import exact_statistics, model_state, statistics_records


def initial_density(config: RunConfig, generator) -> np.ndarray:
    """The config's initial density matrix in the user's basis (``gibbs``, ``populations`` and
    ``steady_state`` resolved for ``generator``: :func:`jumps.runtime.plan.resolve_start`)."""
    state = resolve_start(generator, config.initial_state)
    V = generator.eigenvectors
    if state.populations is not None:
        return (V * state.populations) @ V.conj().T
    if state.kind == "eigenstate":
        vector = V[:, state.index]
        return np.outer(vector, vector.conj())
    weights, states = ((state.weights, state.states) if state.states is not None
                       else (np.ones(1), state.vector[None, :]))
    states = states / np.linalg.norm(states, axis=1, keepdims=True)
    return np.einsum("k,ki,kj->ij", weights, states, states.conj())


def prepare_output(out: Path, force: bool, resume: bool = False) -> Path:
    """Create the result directory; refuse to overwrite a finished result without ``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", f"{out} exists and is not a directory")
    if (out / META_FILE).exists() and not (force or resume):
        raise ConfigError("--out", f"{out} already holds a result (use --force to overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def metadata(config: RunConfig, generator, method: str, **extra) -> dict:
    """``run.json`` contents: the config as run, versions, the generator's summary."""
    import numba
    import scipy

    unravelling = generators.of(generator)
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
        **unravelling.diagnostics(generator).record,
        "lists_every_channel": unravelling.lists_every_channel,
        "versions": {"jumps": __version__, "python": sys.version.split()[0],
                     "numpy": np.__version__, "scipy": scipy.__version__,
                     "numba": numba.__version__, "platform": platform.platform()},
        **extra,
    }


def run_exact(config: RunConfig, out: Path, force: bool = False) -> dict[str, np.ndarray]:
    """Solve the master equation on the config's time grid and write the result: densely
    (the Liouvillian) for d <= 128; above, for a non-degenerate spectrum from a start diagonal
    in the energy basis, the rate equation that is exact there (d <= 4096). With the exact
    references of trajectory statistics (:func:`jumps.runtime.statistics.exact_statistics`)."""
    start = time.perf_counter()
    dense = config.model.dimension <= exact.MAX_EXACT_DIMENSION
    generator, _ = build(config, "channels" if dense else None)
    out = prepare_output(out, force)
    state = resolve_start(generator, config.initial_state)
    unravelling = generators.of(generator)
    density = unravelling.stored_density(config.density_matrix, generator.dimension)
    if dense:
        arrays = _dense_exact(config, generator, density)
    else:
        arrays = _rate_equation_exact(config, generator, unravelling, state, density)
    statistics, notes = exact_statistics(generator, state, config.times, config.counting_s)
    arrays.update(statistics)
    elapsed = time.perf_counter() - start
    write_results(out, arrays, metadata(config, generator, "exact", density_matrix=density,
                                        undefined_references=notes, wall_seconds=elapsed))
    return arrays


def _dense_exact(config: RunConfig, generator, density: str) -> dict[str, np.ndarray]:
    """Populations, observables and density matrices from the full Liouvillian."""
    solution = exact.evolve(generator, initial_density(config, generator), config.times)
    arrays = {"times": solution.times, "populations": solution.populations,
              **generator.summary_arrays()}
    for name, operator in config.observables.items():
        arrays[f"expect_{name}"] = np.real(solution.expectation(generator, operator))
    if density == "full":
        arrays["rho"] = solution.rho_user(generator)
    elif density == "diagonal":
        arrays["rho_diagonal"] = np.real(np.einsum("tii->ti", solution.rho_user(generator)))
    return arrays


def _rate_equation_exact(config: RunConfig, generator, unravelling, state,
                         density: str) -> dict[str, np.ndarray]:
    """Populations, observables and the diagonal of rho from the rate equation (exact for a
    non-degenerate spectrum from a diagonal start: no coherences ever form)."""
    if density == "full":
        raise ConfigError("run.density_matrix", f"the exact solution of d = "
                                                f"{generator.dimension} > "
                                                f"{exact.MAX_EXACT_DIMENSION} is the rate "
                                                "equation's: 'diagonal' or 'none'")
    model = unravelling.counting_model(generator, coherent=not state.is_diagonal)
    if model.kind != "classical":
        raise ConfigError("system", f"exact solver: d = {generator.dimension} > "
                                    f"{exact.MAX_EXACT_DIMENSION} needs a non-degenerate "
                                    "spectrum and a start diagonal in the energy basis")
    populations = np.real(counting.populations(model, model_state(model, generator, state),
                                               config.times))
    arrays = {"times": config.times, "populations": populations, **generator.summary_arrays()}
    for name, operator in config.observables.items():
        arrays[f"expect_{name}"] = populations @ generator.diagonal_of(operator)
    if density == "diagonal":
        arrays["rho_diagonal"] = generator.user_basis_populations(populations)
    return arrays


# -- trajectories ------------------------------------------------------------------------------


# --target-stderr waits for this many trajectories: a standard error from fewer is itself too
# uncertain to stop on.
MIN_TRAJECTORIES_TO_STOP = 100


class _Scheduler:
    """Rank 0's bookkeeping: the next chunk, global progress, and the early stop."""

    def __init__(self, plan: Plan, done: set[int], target_stderr: float | None, base_moments):
        self.todo = (c for c in range(plan.n_chunks) if c not in done)
        self.done_trajectories = sum(plan.chunk_range(c)[1] for c in done)
        self.jumps = 0
        self.stopped = False
        self.target = target_stderr
        self.moments: dict[int, tuple] = {}
        self.base_moments = base_moments

    def next_chunk(self, report: dict) -> int:
        self.done_trajectories += report.get("trajectories", 0)
        self.jumps += report.get("jumps", 0)
        if report.get("moments") is not None:
            self.moments[report["rank"]] = report["moments"]
        if self.target is not None and not self.stopped:
            self.stopped = self._converged()
        return -1 if self.stopped else next(self.todo, -1)

    def _converged(self) -> bool:
        if not self.moments or self.done_trajectories < MIN_TRAJECTORIES_TO_STOP:
            return False
        parts = list(self.moments.values()) + ([self.base_moments] if self.base_moments else [])
        total = sum(p[0] for p in parts)
        total_sq = sum(p[1] for p in parts)
        _, stderr = mean_stderr(total, total_sq, self.done_trajectories)
        return float(stderr.max()) < self.target


def run_trajectories(config: RunConfig, out: Path, force: bool = False, resume: bool = False,
                     quiet: bool = False, target_stderr: float | None = None, comm=None) -> int:
    """Unravel the config's master equation into trajectories; write the result directory.

    Runs on every rank of ``comm`` (default: the MPI world when launched by mpirun, else one
    rank). Returns the exit status.
    """
    comm = comm or parallel.get_comm()
    start = time.perf_counter()
    previous = parallel.agree_or_exit(
        comm, lambda: _prepare_output(config, out, force, resume) if comm.rank == 0 else None)
    if comm.bcast(previous == "complete" if comm.rank == 0 else None):
        if comm.rank == 0:
            print(f"{out}: the run is already complete")
        return 0
    generator, built = parallel.agree_or_exit(comm, lambda: build(config, comm=comm))
    prepared = parallel.agree_or_exit(
        comm, lambda: _prepare(config, generator, built) if comm.rank == 0 else None)
    plan, timings = prepared if comm.rank == 0 else (None, {})
    del prepared
    if comm.is_parallel:
        plan = Plan.share(plan, comm)
        if comm.rank == 0:  # rank 0 keeps the shared copies only
            generator = plan.unravelling.adopt_shared(generator, plan)
    timings["compile_seconds"] = _warm_up(comm, plan)
    done = comm.bcast(previous.chunks if comm.rank == 0 else None)
    attempt = comm.bcast(previous.attempt if comm.rank == 0 else None)
    runner, my_chunks, run_seconds = _work(comm, plan, config, out, attempt, done, previous,
                                           quiet, target_stderr)
    merged = _reduce(comm, runner.sums())
    records = _gather_records(comm, plan, runner.records, my_chunks)
    finished = set(done).union(*map(set, comm.allgather(my_chunks)))
    peak_rss = comm.allgather(_peak_rss_mb())
    if comm.rank != 0:
        comm.barrier()      # asleep while rank 0 writes the result
        comm.free_shared()  # collective with rank 0's call below, after it has written
        return 0
    timings.update(run_seconds=run_seconds, wall_seconds=time.perf_counter() - start,
                   peak_rss_mb_per_rank=peak_rss, shared_memory=comm.is_parallel and
                   os.environ.get("JUMPS_SHARED_MEMORY", "1") not in ("0", "false", "no"))
    _finish(config, out, generator, plan, runner, merged, records, finished, previous,
            comm.size, timings, target_stderr, quiet)
    comm.barrier()
    comm.free_shared()
    return 0


def _reduce(comm, sums: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """Sum every rank's sums on rank 0: dense arrays by MPI reduction, the sparse transition
    counts by gathering and merging."""
    dense = {k: v for k, v in sums.items() if k not in SPARSE_KEYS}
    merged = {name: comm.reduce_sum(value) for name, value in dense.items()}
    if "transition_keys" in sums:
        parts = comm.gather((sums["transition_keys"], sums["transition_counts"]))
        if comm.rank == 0:
            accumulator = Accumulator()
            for keys, counts in parts:
                accumulator.add({"transition_keys": keys, "transition_counts": counts})
            merged.update(accumulator.sums())
    return merged if comm.rank == 0 else None


def _gather_records(comm, plan: Plan, records: dict[str, np.ndarray],
                    chunks: list[int]) -> dict[str, np.ndarray] | None:
    """Every rank's per-trajectory records of the rows it ran, into rank 0's arrays (rows no
    rank ran keep their fill values; they are not written out)."""
    rows = plan.rows(chunks)
    parts = comm.gather((rows, {name: value[rows] for name, value in records.items()}))
    if comm.rank != 0:
        return None
    for rows, values in parts[1:]:
        for name, value in values.items():
            records[name][rows] = value
    return records


def _warm_up(comm, plan: Plan) -> float:
    """Compile the kernel for the arrays every rank will run with (the shared ones): rank 0
    first, then the others load Numba's on-disk cache, so ranks never compile at once."""
    start = time.perf_counter()
    if comm.rank == 0:
        plan.warm_up()
    comm.barrier()
    if comm.rank != 0:
        plan.warm_up()
    return time.perf_counter() - start


def _prepare_output(config: RunConfig, out: Path, force: bool, resume: bool):
    """Rank 0, before anything is built: the output directory and the earlier attempts of
    this run (:func:`jumps.runtime.checkpoint.start_or_resume`), or ``"complete"``."""
    if (Path(out) / META_FILE).exists() and resume and not force:
        return "complete"
    prepare_output(out, force, resume)
    chunk = config.chunk_size or default_chunk_size(config.trajectories)
    identity = {"fingerprint": checkpoint.fingerprint(config.raw), "ntraj": config.trajectories,
                "chunk": chunk}
    return checkpoint.start_or_resume(out, identity, resume, force)


def _prepare(config: RunConfig, generator, built):
    """Rank 0: the plan and the timings so far."""
    timings = {"build_seconds": built["build_seconds"], "generator_cache": built["cached"],
               "build_timings": getattr(generator, "timings", None)}
    plan = Plan.create(generator, config.initial_state, config.times, config.trajectories,
                       config.seed, config.observables, config.density_matrix, config.chunk_size,
                       len(config.baths))
    return plan, timings


def _work(comm, plan: Plan, config: RunConfig, out: Path, attempt: int, done: set[int],
          previous, quiet: bool, target_stderr: float | None):
    """Every rank: take chunks from the dispatcher until there are none; checkpoint on the way."""
    runner = plan.runner()
    saver = checkpoint.RankCheckpoint(out, attempt, comm.rank)
    scheduler = None
    if comm.rank == 0:
        base = plan.observable_moments(previous.sums) if previous.sums else None
        scheduler = _Scheduler(plan, done, target_stderr, base)
    dispatcher = comm.dispatcher(scheduler.next_chunk if scheduler else None)
    bar = _progress(plan, scheduler.done_trajectories, quiet) if scheduler else None
    my_chunks: list[int] = []
    report: dict = {"rank": comm.rank}
    start = last_save = time.perf_counter()
    while True:
        parallel.inject_fault(comm.rank, len(my_chunks))
        chunk = dispatcher.request(report)
        if chunk < 0:
            break
        first, count = plan.chunk_range(chunk)
        jumps = runner.run(first, count)
        my_chunks.append(chunk)
        report = {"rank": comm.rank, "trajectories": count, "jumps": jumps, "moments":
                  plan.observable_moments(runner.sums(transitions=False))
                  if target_stderr else None}
        if bar is not None:
            bar.update(scheduler.done_trajectories + count - bar.n)
            rate = (scheduler.jumps + jumps) / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix_str(f"{rate:.3g} jumps/s", refresh=False)
        if time.perf_counter() - last_save > config.checkpoint_seconds:
            saver.write(runner.sums(), my_chunks, plan.rows(my_chunks), runner.records)
            last_save = time.perf_counter()
    dispatcher.close()
    if bar is not None:
        bar.close()
    return runner, my_chunks, time.perf_counter() - start


def _finish(config, out, generator, plan, runner, merged, records, finished, previous,
            ranks, timings, target_stderr, quiet) -> None:
    """Rank 0: add earlier attempts, average, write the result, remove the checkpoints."""
    if previous.sums is not None:
        accumulator = Accumulator()
        accumulator.add(merged)
        accumulator.add(previous.sums)
        merged = accumulator.sums()
        previous.fill(records)
    rows = plan.rows(finished)
    records = {name: value[rows] for name, value in records.items()}
    added, undefined = statistics_records(generator, plan.state, records, config.t_final,
                                          config.counting_s)
    arrays = {"times": plan.times, **generator.summary_arrays(),
              **plan.finalize(generator, merged, rows.size), **records, **added,
              "trajectory_index": rows,
              **recorded_trajectories(plan, runner, records, rows, config.record_jumps,
                                      config.record_trajectories)}
    total_jumps = int(arrays["n_jumps"].sum())
    first_attempt = previous.attempt == 1
    meta = metadata(config, generator, "trajectories", seed=config.seed, trajectories=int(rows.size),
                    trajectories_requested=plan.ntraj, ranks=ranks, chunk_size=plan.chunk,
                    density_matrix=plan.density, attempts=previous.attempt,
                    total_jumps=total_jumps,
                    jumps_per_second=total_jumps / max(timings["run_seconds"], 1e-9) if first_attempt else None,
                    target_stderr=target_stderr, undefined_records=undefined,
                    **plan.unravelling.run_summary(merged), **timings)
    write_results(out, arrays, meta)
    checkpoint.remove(out)
    if not quiet:
        print(f"{rows.size} trajectories, {total_jumps} jumps in {timings['run_seconds']:.2f} s "
              f"on {ranks} rank(s) -> {out}", file=sys.stderr)


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _progress(plan: Plan, initial: int, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=plan.ntraj, initial=initial, unit="traj", disable=quiet or None,
                dynamic_ncols=True, file=sys.stderr)
