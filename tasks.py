#!/usr/bin/env python3
"""Set up and run the project with nothing but Python >= 3.11 and pip.

    python3 tasks.py demo    # set up .venv, run the MPI thermalisation demo and its analysis
    python3 tasks.py test    # set up .venv, run the test suite (pytest arguments may follow)

The virtual environment ``.venv`` gets the package with its ``mpi`` (mpi4py + the MPICH
wheel), ``test`` and ``plot`` extras. It is reinstalled only when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".jumps-installed"
DEMO_CONFIG = ROOT / "mpi_runs" / "demo_tfim.toml"


def run(*command: str | Path, **kwargs) -> None:
    print("+", " ".join(str(c) for c in command), flush=True)
    subprocess.run([str(c) for c in command], check=True, cwd=ROOT, **kwargs)


def setup() -> None:
    """Create .venv and install the package (editable) with its extras, once per pyproject."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be run by an older python3
        sys.exit(f"jumps needs Python >= 3.11, this is {sys.version.split()[0]}")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest and PYTHON.exists():
        return
    if not PYTHON.exists():
        print(f"creating {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[mpi,test,plot]")
    STAMP.write_text(digest)


def demo() -> None:
    """MPI trajectory run of the demo config, its exact reference, and the analysis report."""
    ranks = str(min(2, os.cpu_count() or 1))
    run(BIN / "mpiexec", "-n", ranks, PYTHON, "-m", "jumps", "run", DEMO_CONFIG,
        "--out", "results/demo", "--force")
    run(PYTHON, "-m", "jumps", "exact", DEMO_CONFIG, "--out", "results/demo-exact", "--force")
    run(PYTHON, "-m", "analysis", "results/demo", "--exact", "results/demo-exact", "--plots")


def test(arguments: list[str]) -> None:
    run(PYTHON, "-m", "pytest", "-q", *arguments)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("demo", "test", "setup"):
        sys.exit(__doc__)
    setup()
    try:
        if sys.argv[1] == "demo":
            demo()
        elif sys.argv[1] == "test":
            test(sys.argv[2:])
    except subprocess.CalledProcessError as error:
        sys.exit(error.returncode)


if __name__ == "__main__":
    main()
