"""Shared pieces of the benchmark scripts: the TFIM test system, timing, load, tables.

Not a test module and not part of the package. The scripts import it as ``common`` (they
run as ``python benchmarks/NAME.py``, so this directory is on ``sys.path``).

Timing: every measurement records both the wall-clock time (``time.perf_counter``) and the
CPU time of this process (``time.process_time``). On a machine shared with other jobs the
wall-clock rate is what one core delivered while contended; the CPU-time rate is what one
core delivers while this process is actually scheduled (memory-bound code is still slowed
down by other jobs sharing the caches, so neither is an idle-machine figure).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Measure this checkout's package, not whatever copy happens to be installed.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jumps.generators.channels.generator import DaviesGenerator, build_generator
from jumps.physics import baths, models
from jumps.runtime.config import dump_config


@dataclass(frozen=True)
class Timing:
    """One timed call: wall-clock and process CPU seconds, and what the call returned."""

    wall: float
    cpu: float
    value: object = None


def timed(function: Callable[..., object], *args: object) -> Timing:
    """Call ``function(*args)`` once and time it (wall clock and process CPU time)."""
    cpu = time.process_time()
    wall = time.perf_counter()
    value = function(*args)
    return Timing(time.perf_counter() - wall, time.process_time() - cpu, value)


def baseline_package(revision: str) -> str:
    """Import name of this repository's ``jumps`` package at git ``revision``, extracted once
    (``git archive``) under ``~/.cache/jumps-bench`` as a package of another name, so that a
    benchmark can load both versions into one process and alternate them (paired timings on
    one noisy machine; its Numba cache stays next to the copy, so later runs load it)."""
    root, sha = baseline_tree(revision, "")
    name = f"jumps_{sha}"
    if not (root / name / "__init__.py").exists():
        (root / "jumps").rename(root / name)
    sys.path.insert(0, str(root))
    return name


def baseline_tree(revision: str, prefix: str = "cli-") -> tuple[Path, str]:
    """``(directory, short sha)``: a directory under ``~/.cache/jumps-bench`` holding this
    repository's ``jumps`` package at git ``revision`` (``git archive``, extracted once; its
    Numba cache stays there), from which ``python -m jumps`` runs that version
    (:func:`run_cli` with ``tree``)."""
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=10", revision],
                         check=True, capture_output=True, text=True).stdout.strip()
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "jumps-bench" / f"{prefix}{sha}"
    if not any((root / name / "__init__.py").exists() for name in ("jumps", f"jumps_{sha}")):
        root.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", sha, "jumps"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    return root, sha


def median(values) -> float:
    return float(statistics.median(values))


def load_average() -> str:
    """The 1, 5 and 15 minute load averages and the core count, as one line."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def l3_cache_bytes() -> int | None:
    """Size of the last-level cache of CPU 0 (Linux sysfs), or None."""
    caches = sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"))
    for index in reversed(caches):
        try:
            text = (index / "size").read_text().strip()
        except OSError:
            continue
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
    return None


def tfim_system(spins: int, h: float, hz: float, eta: float = 0.01, cutoff: float = 5.0,
                beta: float = 1.0, lamb_shift: bool = True) -> tuple[models.Model, DaviesGenerator]:
    """Open TFIM chain ``H = -sum sz sz - h sum sx - hz sum sz`` (J = 1) with an independent
    Ohmic bath ``J(w) = eta w exp(-|w|/cutoff)`` at inverse temperature ``beta`` coupled
    through ``sigma_x`` on every site."""
    model = models.tfim_chain({"n": spins, "J": 1.0, "h": h, "hz": hz})
    couplings = [model.operators[f"sx:{j}"] for j in range(spins)]
    bath_list = [baths.ohmic(eta, cutoff, beta) for _ in range(spins)]
    return model, build_generator(model.hamiltonian, couplings, bath_list, lamb_shift=lamb_shift)


def tfim_config(spins: int, h: float, hz: float, initial_state: dict,
                bath: dict | None = None, **run: object) -> str:
    """TOML text of a ``python -m jumps run`` of the chain of :func:`tfim_system` (J = 1, an
    Ohmic bath eta = 0.01, cutoff 5, T = 1 on every site through ``sigma_x``) over
    ``t in [0, 50]`` on 101 points, no density matrix; ``bath`` adds keys to the [[baths]]
    entry (e.g. ``{"lamb_shift": False}``), ``run`` adds or replaces [run] keys."""
    return dump_config({
        "system": {"model": "tfim_chain", "params": {"n": spins, "J": 1.0, "h": h, "hz": hz}},
        "baths": [{"coupling": "sx:*", "spectral_density": "ohmic", "eta": 0.01, "cutoff": 5.0,
                   "temperature": 1.0, **(bath or {})}],
        "initial_state": initial_state,
        "run": {"t_final": 50.0, "n_times": 101, "density_matrix": "none", **run},
    })


def format_table(headers: list[str], rows: list[list[object]]) -> str:
    """Right-aligned plain-text table; floats in 4 significant digits."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) if text else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in text]
    return "\n".join(lines)


def array_bytes(arrays) -> int:
    """Total bytes of the numpy arrays in an iterable."""
    return int(sum(np.asarray(a).nbytes for a in arrays))


def magnetization(spins: int) -> np.ndarray:
    """Dense ``Mz = sum_j sz_j`` on ``spins`` qubits (qubit 0 leftmost, ``|0> = up``)."""
    sz = np.array([1.0, -1.0])
    diagonal = sum(np.kron(np.kron(np.ones(2**j), sz), np.ones(2 ** (spins - j - 1)))
                   for j in range(spins))
    return np.diag(diagonal)


def eigenbasis_qutip(generator: DaviesGenerator, lamb_shift: bool = False):
    """``(H, c_ops)`` as sparse (CSR) ``qutip.Qobj`` in the energy eigenbasis, as an expert
    sets up QuTiP for the Davies equation: ``H = diag(E) + H_LS`` (block diagonal) and one
    collapse operator ``sqrt(gamma_a(w)) A_a(w)`` per channel, built straight from the
    generator's channel entries (a handful of non-zeros each). dims ``[[d], [d]]``."""
    import qutip
    import scipy.sparse as sp

    g, d = generator, generator.dimension
    H = sp.diags(g.energies.astype(complex)).tocsr()
    if lamb_shift:
        H = (H + sp.csr_matrix(g.dense_blocks(g.lamb_shift_blocks))).tocsr()
    dims = [[d], [d]]
    roots = np.sqrt(g.channel_rate)
    c_ops = []
    for c in range(g.n_channels):
        lo, hi = g.entry_ptr[c], g.entry_ptr[c + 1]
        L = sp.csr_matrix((roots[c] * g.entry_value[lo:hi],
                           (g.entry_row[lo:hi], g.entry_col[lo:hi])), shape=(d, d))
        c_ops.append(qutip.Qobj(L, dims=dims))
    return qutip.Qobj(H, dims=dims), c_ops


def run_cli(config: Path, out: Path, *args: str, timeout: float | None = None,
            tree: Path = REPO) -> dict:
    """``python -m jumps run CONFIG --out OUT --quiet --force ARGS`` in a fresh process, as a
    user runs it: this checkout's package, or the one in ``tree`` (:func:`baseline_tree`), with
    the caller's environment. Returns ``{"outside": wall seconds of the whole process
    (start-up included), "meta": run.json, "results": results.npz path}``.
    """
    command = [sys.executable, "-m", "jumps", "run", str(config), "--out", str(out),
               "--quiet", "--force", *args]
    env = {**os.environ, "PYTHONPATH": str(tree)} if tree != REPO else None
    start = time.perf_counter()
    done = subprocess.run(command, check=False, cwd=tree, env=env, capture_output=True,
                          text=True, timeout=timeout)
    outside = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} in {tree} failed ({done.returncode}): "
                           f"{done.stderr.strip()[-2000:]}")
    meta = json.loads((out / "run.json").read_text())
    return {"outside": outside, "meta": meta, "results": out / "results.npz"}


def jsonable(value, skip: tuple[str, ...] = ()):
    """``value`` with numpy scalars as Python numbers and dict keys in ``skip`` left out (the
    large arrays), for ``json.dumps``."""
    if isinstance(value, dict):
        return {k: jsonable(v, skip) for k, v in value.items() if k not in skip}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, skip) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def finish(rows: list[dict], before: str, line: str, out: Path | None,
           skip: tuple[str, ...] = ()) -> None:
    """The end of a comparison script: the load after, the summary ``line``, and with ``out``
    the rows (:func:`jsonable`), loads, summary and time as JSON."""
    after = load_average()
    print(f"# {after} (after)")
    print(line)
    if out:
        out.write_text(json.dumps({"rows": jsonable(rows, skip), "load_before": before,
                                   "load_after": after, "summary": line,
                                   "time": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1))
