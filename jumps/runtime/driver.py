"""The run driver: composes config, generator, exact solver, trajectories and result files.

``python -m jumps run`` is :func:`run_trajectories` on every rank, ``exact`` is
:func:`run_exact`. Everything generator-specific goes through the generator's unravelling
(:mod:`jumps.generators`); MPI goes through :mod:`jumps.runtime.parallel`.
"""

from __future__ import annotations

import errno
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from .. import __version__, generators
from ..core.memory import gc_paused
from ..core.sums import SPARSE_KEYS, Accumulator, mean_stderr
from ..errors import ConfigError, RunFailure
from ..physics import counting, exact
from . import blas, checkpoint, parallel
from .budget import check_run_size
from .build import build
from .config import RunConfig
from .fingerprint import run_fingerprint
from .info import validity_warnings, weak_coupling_record
from .interrupt import SignalGuard
from .interrupt import name as signal_name
from .io import discard_directory, inject, read_meta, write_results
from .outdir import OutputDirectory
from .outdir import release as release_lock
from .plan import Plan, default_chunk_size, recorded_trajectories, resolve_start
from .progress import progress_bar
from .statistics import (
    check_counting_fields,
    counting_fields,
    exact_statistics,
    model_state,
    statistics_records,
)


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


def commit(output: OutputDirectory, arrays: dict[str, np.ndarray], meta: dict,
           saved: str | None = None) -> None:
    """Rank 0: write the result (:func:`jumps.runtime.io.write_results`, one commit) if the
    lock is still this run's. A failed write is a RunFailure (exit 1) saying where the work
    is (``saved``: the checkpoint's message) and how to finish."""
    output.check()
    try:
        write_results(output.path, arrays, meta)
    except OSError as error:
        space = error.errno in (errno.ENOSPC, errno.EDQUOT)
        reason = f"cannot write the result into {output.path} ({error.strerror})"
        if saved:
            reason += (f"; {saved}: run the same command with --resume once "
                       f"{'there is space' if space else 'the problem is fixed'}")
        raise RunFailure("--out", reason) from None


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
        **weak_coupling_record(generator),
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
    guard = SignalGuard()  # SIGTERM ends it like SIGINT, through the lock's release
    output = OutputDirectory(out)
    try:
        output.open()
        if read_meta(output.path) is not None and not force:
            raise ConfigError("--out", f"{out} already holds a result (use --force to overwrite)")
        interrupted = output.path / checkpoint.CHECKPOINT_DIR
        if interrupted.exists() and not force:
            raise ConfigError("--out", f"{out} holds an interrupted trajectory run: continue it "
                                       "with 'jumps run --resume', or use --force to discard it")
        if interrupted.exists():  # --force: a later --resume must not overwrite this result
            discard_directory(interrupted)
        return _run_exact(config, output)
    finally:
        guard.defer()
        output.close()
        guard.restore()


def _run_exact(config: RunConfig, output: OutputDirectory) -> dict[str, np.ndarray]:
    start = time.perf_counter()
    dense = config.model.dimension <= exact.MAX_EXACT_DIMENSION
    generator, _ = build(config, "channels" if dense else None)
    warn_validity(generator)
    state = resolve_start(generator, config.initial_state)
    unravelling = generators.of(generator)
    density = unravelling.stored_density(config.density_matrix, generator.dimension)
    if dense:
        arrays = _dense_exact(config, generator, density)
    else:
        arrays = _rate_equation_exact(config, generator, unravelling, state, density)
    statistics, notes = exact_statistics(generator, state, config.times,
                                         counting_fields(generator, config.counting_s))
    arrays.update(statistics)
    elapsed = time.perf_counter() - start
    commit(output, arrays, metadata(config, generator, "exact", density_matrix=density,
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
        self.signum = 0  # a signal some rank received: no more chunks

    def next_chunk(self, report: dict) -> int:
        if report.get("stop"):
            self.stopped = True
            self.signum = self.signum or report["stop"]
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
                     quiet: bool = False, target_stderr: float | None = None, comm=None,
                     discard_damaged: bool = False) -> int:
    """Unravel the config's master equation into trajectories; write the result directory.

    Runs on every rank of ``comm`` (default: the MPI world when launched by mpirun, else one
    rank). Returns the exit status: 0, or ``128 + signal`` after SIGINT or SIGTERM (the
    finished chunks checkpointed). Rank 0 holds the lock on ``out`` until it returns.
    """
    comm = comm or parallel.get_comm()
    guard = SignalGuard()
    output = OutputDirectory(out) if comm.rank == 0 else None
    parallel.ABORT_HOOKS.clear()
    try:
        status = _run(config, Path(out), comm, output, guard, force, resume, quiet,
                      target_stderr, discard_damaged)
    finally:
        guard.defer()  # a signal now must not interrupt the release of the lock
        if output is not None:
            output.close()
        guard.restore()
    parallel.ABORT_HOOKS.clear()  # kept on an exception: the abort that follows needs them
    return status


def _run(config: RunConfig, out: Path, comm, output: OutputDirectory | None, guard: SignalGuard,
         force: bool, resume: bool, quiet: bool, target_stderr: float | None,
         discard_damaged: bool) -> int:
    start = time.perf_counter()
    root = comm.rank == 0
    previous = parallel.agree_or_exit(comm, lambda: _open_output(
        output, config, force, resume, discard_damaged) if root else None)
    if comm.bcast(previous is None if root else None):
        if root:
            print(f"{out}: the run is already complete")
        return 0
    # A rank that aborts the job (MPI_Abort) releases the lock: rank 0 may die before it can.
    token = comm.bcast(output.token if root else None)
    parallel.ABORT_HOOKS.append(lambda: release_lock(out, token))
    generator, built = parallel.agree_or_exit(comm, lambda: build(config, comm=comm))
    ranks_on_node = comm.node_size()
    parallel.agree_or_exit(comm, lambda: (check_run_size(config, generator, ranks_on_node),
                                          check_counting_fields(
                                              generator, counting_fields(generator, config.counting_s)))
                           if root else None)
    prepared = parallel.agree_or_exit(
        comm, lambda: _prepare(config, generator, built, quiet) if root else None)
    plan, timings = prepared if root else (None, {})
    del prepared
    if comm.is_parallel:
        plan = Plan.share(plan, comm)
        if root:  # rank 0 keeps the shared copies only
            generator = plan.unravelling.adopt_shared(generator, plan)
    timings["compile_seconds"] = _warm_up(comm, plan)
    runner = plan.runner()
    parallel.agree_or_exit(comm, lambda: _begin(previous, runner, discard_damaged) if root
                           else None)
    done, attempt, digest, run_id = comm.bcast(
        (previous.chunks, previous.attempt, previous.digest, previous.run_id) if root else None)
    saver = checkpoint.RankCheckpoint(out, digest, run_id, attempt, comm.rank)
    guard.defer()
    with blas.one_thread_per_rank(comm.is_parallel):  # the build kept all threads
        timings["blas_threads"] = blas.current()  # as OpenBLAS itself reports it
        my_chunks, run_seconds, stop = _work(comm, plan, config, runner, saver, done, previous,
                                             quiet, target_stderr, guard)
    signum = max(comm.allgather(stop))
    # The finished work goes to the checkpoint before anything else is written.
    saved = not my_chunks or saver.write(runner.sums(), my_chunks, plan.rows(my_chunks),
                                         runner.records, final=True)
    saved = all(comm.allgather(saved))
    where = (f"the finished chunks are saved in {out / checkpoint.CHECKPOINT_DIR}" if saved else
             f"the chunks up to the last checkpoint are saved in "
             f"{out / checkpoint.CHECKPOINT_DIR} (a final checkpoint failed)")
    if signum:
        if root:
            print(f"jumps: interrupted by {signal_name(signum)}: {where}; continue with "
                  "--resume", file=sys.stderr)
        comm.barrier()
        comm.free_shared()
        return 128 + signum
    merged = _reduce(comm, runner.sums())
    records = _gather_records(comm, plan, runner.records, my_chunks)
    finished = set(done).union(*map(set, comm.allgather(my_chunks)))
    peak_rss = comm.allgather(_peak_rss_mb())
    failure = None
    if root:
        timings.update(run_seconds=run_seconds, wall_seconds=time.perf_counter() - start,
                       peak_rss_mb_per_rank=peak_rss, shared_memory=comm.is_parallel and
                       os.environ.get("JUMPS_SHARED_MEMORY", "1") not in ("0", "false", "no"))
        try:
            _finish(config, output, generator, plan, runner, merged, records, finished,
                    previous, comm.size, timings, target_stderr, quiet, where)
        except RunFailure as error:
            failure = (error.field, error.reason, "RunFailure")
    comm.barrier()  # the others sleep while rank 0 writes the result
    failure = comm.bcast(failure)
    comm.free_shared()  # collective with every rank, after rank 0 has written
    if failure is not None:
        parallel.raise_agreed(failure)
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


def _open_output(output: OutputDirectory, config: RunConfig, force: bool, resume: bool,
                 discard_damaged: bool):
    """Rank 0, before anything is built: lock the output directory and find what this run
    continues (:func:`jumps.runtime.checkpoint.start_or_resume`; None: already complete)."""
    output.open()
    chunk = config.chunk_size or default_chunk_size(config.trajectories)
    return checkpoint.start_or_resume(output.path, run_fingerprint(config, chunk), config.raw,
                                      resume, force, discard_damaged)


def _begin(previous: checkpoint.Previous, runner, discard_damaged: bool) -> None:
    """Rank 0, once the plan is made: check the earlier attempts' arrays against it, then set
    up the checkpoint directory for this attempt."""
    previous.check_shapes(runner.sums(), runner.records, discard_damaged)
    try:
        previous.begin()
    except OSError as error:
        raise RunFailure("--out", f"cannot set up the checkpoints in {previous.out}: "
                                  f"{error.strerror}") from None


def warn_validity(generator) -> None:
    """A questionable secular margin or weak-coupling ratio, as ``jumps info`` flags them, on
    stderr (rank 0)."""
    for _, message in validity_warnings(generator)[1]:
        print(f"jumps: warning: {message}", file=sys.stderr, flush=True)


def _prepare(config: RunConfig, generator, built, quiet: bool = False):
    """Rank 0: the plan and the timings so far (and the secular and weak-coupling warnings,
    unless ``quiet``: run.json keeps the figures and the analysis report repeats them)."""
    if not quiet:
        warn_validity(generator)
    timings = {"build_seconds": built["build_seconds"], "generator_cache": built["cached"],
               "build_timings": getattr(generator, "timings", None)}
    plan = Plan.create(generator, config.initial_state, config.times, config.trajectories,
                       config.seed, config.observables, config.density_matrix, config.chunk_size,
                       len(config.baths))
    return plan, timings


def _work(comm, plan: Plan, config: RunConfig, runner, saver: checkpoint.RankCheckpoint,
          done: set[int], previous, quiet: bool, target_stderr: float | None,
          guard: SignalGuard):
    """Every rank: take chunks from the dispatcher until there are none, or until a signal;
    checkpoint on the way. Returns this rank's chunks, the seconds and the signal (or 0)."""
    scheduler = None
    if comm.rank == 0:
        base = plan.observable_moments(previous.sums) if previous.sums else None
        scheduler = _Scheduler(plan, done, target_stderr, base)
    dispatcher = comm.dispatcher(scheduler.next_chunk if scheduler else None)
    bar = progress_bar(plan.ntraj, scheduler.done_trajectories, quiet) if scheduler else None
    my_chunks: list[int] = []
    report: dict = {"rank": comm.rank}
    start = last_save = time.perf_counter()
    while True:
        parallel.inject_fault(comm.rank, len(my_chunks))
        if guard.signum is not None:  # finish no further chunk; tell rank 0 to stop all
            report["stop"] = guard.signum
        chunk = dispatcher.request(report)
        if chunk < 0:
            break
        first, count = plan.chunk_range(chunk)
        with gc_paused():
            jumps = runner.run(first, count)
        my_chunks.append(chunk)
        inject("chunk")
        inject(f"chunk-{len(my_chunks)}")
        report = {"rank": comm.rank, "trajectories": count, "jumps": jumps, "moments":
                  plan.observable_moments(runner.sums(transitions=False))
                  if target_stderr else None}
        if bar is not None:
            rate = (scheduler.jumps + jumps) / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix_str(f"{rate:.3g} jumps/s", refresh=False)
            bar.update(scheduler.done_trajectories + count - bar.n)
        if time.perf_counter() - last_save > config.checkpoint_seconds:
            saver.write(runner.sums(), my_chunks, plan.rows(my_chunks), runner.records)
            last_save = time.perf_counter()
    dispatcher.close()
    if bar is not None:
        bar.close()
    stop = guard.signum or (scheduler.signum if scheduler else 0) or 0
    return my_chunks, time.perf_counter() - start, stop


def _finish(config, output, generator, plan, runner, merged, records, finished, previous,
            ranks, timings, target_stderr, quiet, saved: str) -> None:
    """Rank 0: add earlier attempts, average, commit the result, remove the checkpoints."""
    if previous.sums is not None:
        accumulator = Accumulator()
        accumulator.add(merged)
        accumulator.add(previous.sums)
        merged = accumulator.sums()
        previous.fill(records)
    rows = plan.rows(finished)
    records = {name: value[rows] for name, value in records.items()}
    added, undefined = statistics_records(generator, plan.state, records, config.t_final,
                                          counting_fields(generator, config.counting_s))
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
                    fingerprint=previous.fingerprint, run_id=previous.run_id,
                    **plan.unravelling.run_summary(merged), **timings)
    commit(output, arrays, meta, saved)
    checkpoint.remove(output.path)
    out = output.path
    if not quiet:
        print(f"{rows.size} trajectories, {total_jumps} jumps in {timings['run_seconds']:.2f} s "
              f"on {ranks} rank(s) -> {out}", file=sys.stderr)


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


