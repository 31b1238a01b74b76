"""Command line: ``python -m analysis DIR [--exact DIR2] [--plots] [--format png|pdf|svg]
[--json] [--beta X] [--statistics]``.

Exit status 0 on success, 2 on bad input (one line naming the directory or flag and the
reason, no traceback), 1 on an internal failure (with the traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from jumps.errors import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Report on a jumps result directory: averages with error bars, comparison "
                    "with the exact master equation, detailed-balance and heat statistics "
                    "(hbar = k_B = 1).")
    parser.add_argument("result", type=Path,
                        help="result directory of python -m jumps run (or exact)")
    parser.add_argument("--exact", type=Path, metavar="DIR",
                        help="exact result (python -m jumps exact) on the same time grid; by "
                             "default the master equation is solved here for small systems")
    parser.add_argument("--no-exact", action="store_true",
                        help="do not solve the master equation on the fly")
    parser.add_argument("--beta", type=float, metavar="X",
                        help="declared inverse temperature to test against (replaces the "
                             "baths' own; needed for a bath given by its rates)")
    parser.add_argument("--alpha", type=float, default=0.01,
                        help="significance level of the pass/fail verdicts (default 0.01)")
    parser.add_argument("--statistics", action="store_true",
                        help="require the trajectory statistics (cumulants, SCGF, fluctuation "
                             "theorems, waiting times); by default they are reported whenever "
                             "the result has the per-trajectory records")
    parser.add_argument("--plots", action="store_true",
                        help="write plots (needs matplotlib): observables, populations, ...")
    parser.add_argument("--format", choices=("png", "pdf", "svg"),
                        help="file format of the plots (default png; implies --plots)")
    parser.add_argument("--json", action="store_true",
                        help="print the JSON report instead of the text report")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="where report.json and the plots go (default: the result directory)")
    return parser


def _command(args: argparse.Namespace) -> int:
    from .load import load_result
    from .report import analyse, write_report
    from .text import render

    result = load_result(args.result)
    args.plots = args.plots or args.format is not None
    if args.exact is not None and args.no_exact:
        raise ConfigError("--exact", "cannot be combined with --no-exact")
    if args.plots:
        from .plots import require_matplotlib

        require_matplotlib()
    analysis = analyse(result, exact_dir=args.exact, beta=args.beta, alpha=args.alpha,
                       solve_exact=not args.no_exact,
                       trajectory_statistics=True if args.statistics else None)
    out = args.out or result.path
    try:
        out.mkdir(parents=True, exist_ok=True)
        report_path = write_report(analysis, out)
    except OSError as error:
        raise ConfigError(str(out), f"cannot write the report: {error.strerror or error}") from None
    written = [report_path]
    if args.plots:
        from .plots import write_plots

        written += write_plots(analysis, out, args.format or "png")
    if args.json:
        print(json.dumps(analysis.report, indent=2))
    else:
        print(render(analysis.report))
        print()
        print("wrote " + ", ".join(str(p) for p in written))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return _command(args)
    except ConfigError as error:
        print(f"analysis: error: {error.field}: {error.reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("analysis: interrupted", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 (an internal failure: exit 1 with the traceback)
        print("analysis: internal error", file=sys.stderr)
        traceback.print_exc()
        return 1
