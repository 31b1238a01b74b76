"""Command line: ``python -m jumps {run,info,exact} CONFIG.toml``.

Exit status 0 on success, 2 on bad input or a refused run (one line naming the field and the
reason), 1 when the environment fails the run (a write error, a full disk: one line too) or on
an internal failure, 128 + N after signal N (130 SIGINT, 143 SIGTERM; a run's finished chunks
are checkpointed first). The CLI only parses arguments and calls the driver.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
from pathlib import Path

from ..errors import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jumps",
        description="Quantum-jump trajectories of the Davies master equation (hbar = k_B = 1).")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="unravel into trajectories (serial, or all ranks under mpirun)")
    run.add_argument("config", type=Path)
    run.add_argument("--out", type=_directory,
                     help="result directory (default: results/<config name>)")
    run.add_argument("--trajectories", type=int, help="number of trajectories (overrides [run])")
    run.add_argument("--seed", type=int, help="random seed (overrides [run])")
    run.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    run.add_argument("--force", action="store_true",
                     help="overwrite an existing result or start an interrupted run over (with "
                          "--resume: continue the interrupted run if it is this one, else start "
                          "over)")
    run.add_argument("--discard-damaged", action="store_true",
                     help="with --resume: delete checkpoint files that fail validation and run "
                          "their chunks again")
    run.add_argument("--quiet", action="store_true",
                     help="no progress (a bar on a terminal, lines otherwise) and no warnings")
    run.add_argument("--allow-long", action="store_true",
                     help="run even when over a billion jumps per trajectory are expected "
                          "(as [run] allow_long = true)")
    run.add_argument("--target-stderr", type=float, metavar="X",
                     help="stop early once the largest standard error of the first observable "
                          "is below X")

    info = sub.add_parser("info", help="spectrum, channels, rates, Gibbs state, diagnostics")
    info.add_argument("config", type=Path)
    info.add_argument("--estimate", action="store_true",
                      help="only estimate memory and build time; do not build")

    exact = sub.add_parser("exact", help="solve the master equation densely (small d)")
    exact.add_argument("config", type=Path)
    exact.add_argument("--out", type=_directory,
                       help="result directory (default: results/<name>-exact)")
    exact.add_argument("--force", action="store_true", help="overwrite an existing result")
    return parser


def _default_out(config: Path, suffix: str = "") -> Path:
    return Path("results") / (config.stem + suffix)


def _command(args: argparse.Namespace) -> int:
    from .config import load_config

    if args.command == "info":
        from .build import build, check_fits, estimate, wanted_kind
        from .info import info_text

        config = load_config(args.config)
        guess = estimate(config, wanted_kind(config))
        print("\n".join(guess.lines()), flush=True)
        if args.estimate:
            return 0
        check_fits(config, guess.kind)
        generator, built = build(config)
        print(info_text(config, generator, built))
        return 0
    if args.command == "exact":
        from .driver import run_exact

        config = load_config(args.config)
        out = args.out or _default_out(args.config, "-exact")
        run_exact(config, out, force=args.force)
        print(f"exact solution written to {out}")
        return 0
    from .driver import run_trajectories
    from .parallel import agree_or_exit, get_comm

    if args.trajectories is not None and args.trajectories < 1:
        raise ConfigError("--trajectories", f"must be >= 1, got {args.trajectories}")
    if args.seed is not None and args.seed < 0:
        raise ConfigError("--seed", f"must be >= 0, got {args.seed}")
    if args.discard_damaged and not args.resume:
        raise ConfigError("--discard-damaged", "only with --resume")
    if args.target_stderr is not None and not 0 < args.target_stderr < math.inf:
        raise ConfigError("--target-stderr", f"must be positive and finite, got "
                                             f"{args.target_stderr}")
    comm = get_comm()
    config = agree_or_exit(comm, lambda: load_config(
        args.config, {"trajectories": args.trajectories, "seed": args.seed,
                      "allow_long": True if args.allow_long else None}))
    out = args.out or _default_out(args.config)
    return run_trajectories(config, out, force=args.force, resume=args.resume,
                            quiet=args.quiet, target_stderr=args.target_stderr, comm=comm,
                            discard_damaged=args.discard_damaged)


def _directory(text: str) -> Path:
    """``--out``: a path; an empty one would be the current directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return Path(text)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status.

    Under MPI an error that only some ranks see ends every rank at once (``MPI_Abort``); an
    error every rank agrees on (bad input found before work starts, a result that could not be
    written) exits 2 (1) on all of them; a signal during the chunks exits 128 + N on all of
    them after their final checkpoints.
    """
    from . import parallel
    from .interrupt import Interrupted

    args = _parser().parse_args(argv)
    under_mpi = args.command == "run" and parallel.launched_by_mpi()
    rank = int(os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0"))) if under_mpi else 0
    try:
        return _command(args)
    except ConfigError as error:
        agreed = getattr(error, "agreed", False)
        if rank == 0 or not agreed:
            print(f"jumps: error: {error.field}: {error.reason}", file=sys.stderr)
        if under_mpi and not agreed:
            parallel.abort_world(error.exit_status)
        return error.exit_status
    except BrokenPipeError:
        # The reader went away (``python -m jumps info C | head``): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Interrupted as interrupted:  # before a run's chunks started: nothing to checkpoint
        print(f"jumps: interrupted by {interrupted}", file=sys.stderr)
        if under_mpi:
            parallel.abort_world(interrupted.status)
        return interrupted.status
    except KeyboardInterrupt:
        print("jumps: interrupted", file=sys.stderr)
        if under_mpi:
            parallel.abort_world(130)
        return 130
    except Exception:  # noqa: BLE001 - the last resort: report, end every rank, exit 1
        prefix = f"jumps: rank {rank}: internal error" if under_mpi else "jumps: internal error"
        print(prefix, file=sys.stderr)
        traceback.print_exc()
        if under_mpi:
            parallel.abort_world(1)
        return 1
