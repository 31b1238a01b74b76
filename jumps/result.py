"""The one result class: arrays (the ``results.npz`` keys) and metadata (``run.json``).

:func:`jumps.jumpsolve`, :func:`jumps.exactsolve`, :func:`jumps.unravel_generator`,
:func:`jumps.load` and ``analysis.load_result`` all give a :class:`Result`. Beside the arrays it
offers QuTiP's result vocabulary (``times``, ``expect``, ``e_data``, ``states``,
``final_state``, ``seeds``, ``stats``, ``col_times``, ``col_which``) and merges two runs of one
problem with ``+``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .core.records import RECORD_FIELDS
from .errors import ConfigError
from .runtime.io import write_results
from .runtime.resultfile import STDERR_SUFFIX as STDERR
from .runtime.resultfile import claim_result_key, read_checked

# Per-trajectory arrays (first axis: trajectories), concatenated by a merge.
TRAJECTORY_RECORDS = (*RECORD_FIELDS, "entropy_production", "trajectory_index")
# Recorded trajectories: jump lists (first axis: jumps) and tables (first axis: trajectories).
JUMP_LISTS = ("jump_trajectory", "jump_time", "jump_bath", "jump_frequency", "jump_from",
              "jump_to", "jump_channel")
TRAJECTORY_TABLES = ("trajectory_level", "trajectory_heat")
# Counts over all trajectories: a merge adds them.
COUNTS = ("jump_counts", "occupation_time")
TRANSITIONS = ("transition_bath", "transition_from", "transition_to", "transition_count")
# Callable e_ops are evaluated on the averaged state and stored under this prefix (not
# ``expect_``: they have no standard error, and may be complex).
CALLBACK = "callback_"
# run.json figures that stats reports, when present.
STATS_KEYS = ("method", "generator", "trajectories", "trajectories_requested", "stopped_by",
              "total_jumps", "build_seconds", "run_seconds", "ranks", "density_matrix",
              "secular_margin", "weak_coupling_ratio", "steady_state_dimension", "lamb_shift")


def stored_names(labels: list, field: str) -> list[str]:
    """The ``expect_<key>`` keys of observables named ``labels``, by the CLI's rule (``sz:0``
    is stored as ``sz_0``); names that would collide, be empty or read as a standard error are
    refused."""
    keys: dict[str, str] = {}
    for label in labels:
        claim_result_key(str(label), f"{field}[{str(label)!r}]", keys)
    return list(keys)


@dataclass(frozen=True)
class Result:
    """A result: arrays and metadata, from a run, the Python API or a result directory.

    The one class for the one file format (README, "Results"): :func:`jumps.jumpsolve`,
    :func:`jumps.exactsolve` and :func:`jumps.unravel_generator` return it,
    :func:`jumps.load` and ``analysis.load_result`` read a directory into it, :meth:`save`
    writes one.

    Attributes
    ----------
    arrays : dict of str to ndarray
        ``results.npz`` under its key names.
    meta : dict
        ``run.json``.
    path : Path or None
        The directory it was read from.
    derived : tuple of str
        Arrays the file lacked and that were derived on loading.

    Examples
    --------
    >>> import numpy as np, jumps
    >>> sz, sx = np.diag([1.0, -1.0]), np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> bath = jumps.ohmic(0.02, 5.0, temperature=1.0)
    >>> result = jumps.exactsolve(0.5 * sz, [1, 0], np.linspace(0, 10, 11), [(sx, bath)],
    ...                           e_ops=[sz])
    >>> result.expect[0].shape, result.final_state.shape
    ((11,), (2, 2))
    """

    arrays: dict
    meta: dict = field(default_factory=dict)
    path: Path | None = None
    derived: tuple[str, ...] = ()

    def __repr__(self) -> str:
        labels = [str(entry["label"]) for entry in self._entries]
        shown = ", ".join(labels[:6]) + (f", ... ({len(labels)} in all)" if len(labels) > 6
                                         else "")
        runs = ""
        if self.is_trajectories:
            seeds = self.seeds
            runs = (f"ntraj = {self.ntraj}, seed{'s' if len(seeds) > 1 else ''} "
                    f"{', '.join(str(s) for s in seeds[:3])}{', ...' if len(seeds) > 3 else ''}; ")
        times = self.times
        span = f"t = {times[0]:.4g} .. {times[-1]:.4g}" if times.size else "no times"
        text = (f"<Result {self.method}: {runs}d = {self.dimension}, {times.size} times "
                f"({span}); e_ops [{shown}]>")
        return text if len(text) < 480 else text[:476] + "...>"

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def __add__(self, other: Result) -> Result:
        """Merge two runs of one problem with different seeds (:func:`merge`)."""
        if not isinstance(other, Result):
            return NotImplemented
        return merge(self, other)

    def __radd__(self, other: object) -> Result:
        """``sum([r1, r2, ...])`` starts from 0."""
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented

    def has(self, key: str) -> bool:
        return key in self.arrays

    @property
    def method(self) -> str:
        return self.meta.get("method", "trajectories")

    @property
    def is_trajectories(self) -> bool:
        return self.method == "trajectories"

    @property
    def times(self) -> np.ndarray:
        """(T,) output times (``tlist`` for :func:`jumps.jumpsolve`)."""
        return self.arrays["times"]

    @property
    def energies(self) -> np.ndarray:
        """Eigenvalues, ascending (degenerate members share their level's energy)."""
        return self.arrays["energies"]

    @property
    def level_ptr(self) -> np.ndarray:
        return self.arrays["level_ptr"]

    @property
    def level_energies(self) -> np.ndarray:
        return self.arrays["level_energies"]

    @property
    def level_sizes(self) -> np.ndarray:
        return np.diff(self.level_ptr)

    @property
    def n_levels(self) -> int:
        return self.level_ptr.size - 1

    @property
    def dimension(self) -> int:
        return self.energies.size

    @property
    def n_baths(self) -> int:
        return self.arrays["bath_beta"].size

    @property
    def bath_beta(self) -> np.ndarray:
        """Inverse temperature per bath (nan for a bath given by its rates)."""
        return self.arrays["bath_beta"]

    @property
    def bath_thermal(self) -> list[bool | None]:
        """Per bath: True if thermal (KMS by construction), False if given by its rates,
        None if the result does not say (no temperature stored)."""
        thermal = self.meta.get("bath_thermal")
        if thermal is not None and len(thermal) == self.n_baths:
            return [bool(t) for t in thermal]
        return [None if np.isnan(b) else True for b in self.bath_beta]

    @property
    def bath_names(self) -> list[str]:
        names = self.meta.get("bath_couplings")
        if names is None or len(names) != self.n_baths:
            return [f"bath {a}" for a in range(self.n_baths)]
        return [str(n) for n in names]

    @property
    def ntraj(self) -> int:
        """Number of trajectories (0 for an exact result)."""
        return int(self.arrays["heat"].shape[0]) if self.is_trajectories else 0

    @property
    def seeds(self) -> list[int]:
        """The seed of each merged run (one for a single run; none for an exact result).
        Trajectory ``i`` of a run draws from the stream of ``(seed, i)``."""
        if "seeds" in self.meta:
            return [int(s) for s in self.meta["seeds"]]
        seed = self.meta.get("seed")
        return [] if seed is None else [int(seed)]

    @property
    def stats(self) -> dict:
        """Figures of the run: method, generator, trajectories, seeds, jumps, timings, density
        matrix mode, secular margin (those the result carries)."""
        stats = {key: self.meta[key] for key in STATS_KEYS if key in self.meta}
        stats["seeds"] = self.seeds
        return stats

    @property
    def energy_unit(self) -> str:
        return str(self.meta.get("energy_unit", "arbitrary"))

    @property
    def initial_state(self) -> str:
        return str(self.meta.get("initial_state", "unknown"))

    @property
    def observable_names(self) -> list[str]:
        """The observables' stored names, in the run's order (``run.json``), else as stored
        (``expect_<name>``) in file order."""
        listed = self.meta.get("observables")
        if isinstance(listed, list) and all(f"expect_{n}" in self.arrays for n in listed):
            return [str(n) for n in listed]
        return [k[len("expect_"):] for k in self.arrays
                if k.startswith("expect_") and not k.endswith(STDERR)]

    def level_populations(self, key: str = "populations") -> np.ndarray:
        """(T, L) populations of the levels (degenerate eigen-populations summed)."""
        return np.add.reduceat(self.arrays[key], self.level_ptr[:-1], axis=1)

    def level_populations_stderr(self) -> np.ndarray:
        """(T, L) an upper bound on the standard error of each level population.

        The file keeps the error of each eigen-population only; the error of a sum is at most
        the sum of the errors (exact for one-member levels).
        """
        return np.add.reduceat(self.arrays["populations_stderr"], self.level_ptr[:-1], axis=1)

    @property
    def populations(self) -> np.ndarray:
        """(T, d) energy-eigenbasis populations."""
        return self.arrays["populations"]

    # -- expectation values ------------------------------------------------------------

    @property
    def _entries(self) -> list[dict]:
        """The e_ops: ``label`` (the user's name, or index in a list), ``key`` (stored as
        ``expect_<key>``, or ``callback_<key>`` when ``callable``)."""
        listed = self.meta.get("e_ops")
        if isinstance(listed, list):
            return listed
        return [{"label": name, "key": name, "callable": False}
                for name in self.observable_names]

    def _shaped(self, values: list):
        """A list in e_ops order when e_ops was a list, else a dict by label."""
        if self.meta.get("e_ops_kind") == "list":
            return values
        return {entry["label"]: value for entry, value in zip(self._entries, values)}

    def _mean(self, entry: dict) -> np.ndarray:
        prefix = CALLBACK if entry.get("callable") else "expect_"
        return self.arrays[prefix + entry["key"]]

    def _stderr(self, entry: dict) -> np.ndarray | None:
        if entry.get("callable"):
            return None
        error = self.arrays.get(f"expect_{entry['key']}{STDERR}")
        if error is None and not self.is_trajectories:
            return np.zeros_like(self._mean(entry), dtype=float)
        return error

    @property
    def expect(self):
        """Mean of each observable per output time: a list in ``e_ops`` order when ``e_ops``
        was a list (or one operator), else a dict by name."""
        return self._shaped([self._mean(entry) for entry in self._entries])

    @property
    def e_data(self) -> dict:
        """The means by label (the name in a dict ``e_ops``, the index in a list)."""
        return {entry["label"]: self._mean(entry) for entry in self._entries}

    @property
    def stderr(self):
        """Standard error of each mean per output time, shaped like :attr:`expect` (zeros for
        an exact result, None for a callable ``e_ops``). A result without an ``e_ops``
        record (the CLI's, :func:`jumps.unravel_generator`'s) gives a dict of the observables
        that have one."""
        if "e_ops" not in self.meta:
            return {name: self.arrays[f"expect_{name}{STDERR}"] for name in self.observable_names
                    if f"expect_{name}{STDERR}" in self.arrays}
        return self._shaped([self._stderr(entry) for entry in self._entries])

    @property
    def std_expect(self):
        """The spread of each observable over trajectories (QuTiP's ``std_expect``: the
        standard deviation, ``stderr * sqrt(ntraj)``), shaped like :attr:`expect`."""
        root = math.sqrt(max(self.ntraj, 1))
        errors = [self._stderr(entry) for entry in self._entries]
        return self._shaped([None if e is None else e * root for e in errors])

    # -- states ------------------------------------------------------------------------

    @property
    def rho(self) -> np.ndarray | None:
        """(T, d, d) density matrices in the user's basis, when stored."""
        return self.arrays.get("rho")

    @property
    def states(self) -> list:
        """The averaged density matrix at every output time, in the user's basis: ``Qobj``
        with the input's dims when the input was a ``Qobj``, numpy otherwise; empty when the
        run did not keep it (``options={"store_states": True}``)."""
        rho = self.rho
        if rho is None:
            return []
        dims = self.meta.get("dims")
        return [_qobj(matrix, dims) for matrix in rho]

    @property
    def final_state(self):
        """The averaged density matrix at the last output time (None if not kept)."""
        rho = self.rho
        return None if rho is None else _qobj(rho[-1], self.meta.get("dims"))

    # -- recorded trajectories ---------------------------------------------------------

    def _recorded_rows(self) -> list[int]:
        rows = self.meta.get("jump_rows")
        if rows is not None:
            return [int(r) for r in rows]
        if "jump_trajectory" not in self.arrays:
            return []
        count = self.meta.get("record_jumps")
        if count is None:
            count = (self.meta.get("config") or {}).get("run", {}).get("record_jumps")
        if count is None:
            return [int(r) for r in np.unique(self.arrays["jump_trajectory"])]
        return list(range(min(int(count), self.ntraj)))

    @property
    def col_times(self) -> list[np.ndarray]:
        """Per recorded trajectory (``options={"record_jumps": K}``), the times of its jumps
        (dephasing events included), from the initial time ``tlist[0]``."""
        owner = self.arrays.get("jump_trajectory")
        start = float(self.meta.get("t0", 0.0))
        return [self.arrays["jump_time"][owner == row] + start for row in self._recorded_rows()]

    @property
    def col_which(self) -> list[np.ndarray]:
        """Per recorded trajectory, the bath (index in ``a_ops``) of each of its jumps."""
        owner = self.arrays.get("jump_trajectory")
        return [self.arrays["jump_bath"][owner == row] for row in self._recorded_rows()]

    # -- other forms -------------------------------------------------------------------

    def to_xarray(self):
        """The result as an ``xarray.Dataset`` (xarray is an optional dependency).

        Returns
        -------
        xarray.Dataset
            Coordinate ``time`` (:attr:`times`). One variable per expectation value over
            ``time``, named as stored (``expect_<key>``: ``expect_sz_0`` for ``"sz:0"``,
            ``expect_e0`` for the first of a list ``e_ops``; attribute ``label``, the name or
            index in ``e_ops``); for a trajectory result also ``expect_<key>_stderr`` (the
            standard error of the mean, :attr:`stderr`) and ``std_expect_<key>`` (the spread
            over trajectories, :attr:`std_expect`). Callable ``e_ops`` as ``callback_<key>``.
            ``populations`` (and ``populations_stderr``) over ``(time, state)``, the eigenstates
            in ascending energy, with the coordinate ``energy`` on ``state``. Attributes:
            ``method``, ``generator``, ``dimension``, ``ntraj``, ``seeds``.

        Raises
        ------
        ImportError
            xarray is not installed (``pip install xarray``).
        """
        try:
            import xarray
        except ImportError:
            raise ImportError("Result.to_xarray needs xarray, an optional dependency: "
                              "pip install xarray") from None
        variables = {}
        root = math.sqrt(max(self.ntraj, 1))
        for entry in self._entries:
            prefix = CALLBACK if entry.get("callable") else "expect_"
            label = {"label": str(entry["label"])}
            variables[prefix + entry["key"]] = ("time", self._mean(entry), label)
            error = self._stderr(entry)
            if self.is_trajectories and error is not None:
                variables[f"expect_{entry['key']}{STDERR}"] = (
                    "time", error, {**label, "meaning": "standard error of the mean"})
                variables[f"std_expect_{entry['key']}"] = (
                    "time", error * root, {**label, "meaning": "standard deviation over "
                                                                "trajectories"})
        coords = {"time": self.times}
        for key in ("populations", f"populations{STDERR}"):
            if key in self.arrays:
                variables[key] = (("time", "state"), self.arrays[key],
                                  {"meaning": "energy-eigenbasis populations"
                                   + (", standard error" if key.endswith(STDERR) else "")})
                coords["energy"] = ("state", self.energies)
        attrs = {"method": self.method, "generator": str(self.meta.get("generator", "")),
                 "dimension": self.dimension, "ntraj": self.ntraj, "seeds": self.seeds}
        return xarray.Dataset(variables, coords=coords, attrs=attrs)

    # -- files -------------------------------------------------------------------------

    def save(self, directory: str | Path, meta: dict | None = None) -> None:
        """Write a result directory (``results.npz``, ``run.json``) for ``python -m analysis``
        and :func:`jumps.load`.

        A result made by the Python API has no config to rebuild the generator from, so the
        analysis compares it with an exact solution only when one is given (``--exact``)."""
        write_results(Path(directory), self.arrays, {**self.meta, **(meta or {})})


def load(directory: str | Path) -> Result:
    """Read a result directory (``python -m jumps run`` or ``exact``, or :meth:`Result.save`).

    Every array is checked on reading (:func:`jumps.runtime.resultfile.read_checked`, as
    ``python -m analysis`` does): shapes, dtypes, index ranges, NaN, the keys a result must
    have, ``run.json``'s types.

    Parameters
    ----------
    directory : str or Path

    Returns
    -------
    Result
        The class :func:`jumps.jumpsolve` returns; ``derived`` names arrays the file lacked
        (levels, bath temperatures) and that were derived from the others.

    Raises
    ------
    ConfigError
        Naming the directory or the file and the reason: missing, not a result, unreadable,
        incomplete or inconsistent.

    Examples
    --------
    >>> import tempfile, numpy as np, jumps
    >>> sz, sx = np.diag([1.0, -1.0]), np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> bath = jumps.ohmic(0.01, 5.0, temperature=1.0)
    >>> exact = jumps.exactsolve(0.5 * sz, [0, 1], [0.0, 1.0], [(sx, bath)], e_ops={"sz": sz})
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     exact.save(directory)
    ...     back = jumps.load(directory)
    >>> type(back) is jumps.Result, back.expect["sz"].tolist() == exact.expect["sz"].tolist()
    (True, True)
    >>> jumps.load("no/such/dir")
    Traceback (most recent call last):
    ...
    jumps.errors.ConfigError: no/such/dir: no such directory
    """
    arrays, meta, derived = read_checked(directory)
    return Result(arrays, meta, path=Path(directory), derived=derived)


def merge(first: Result, second: Result) -> Result:
    """The result of the trajectories of both runs: one problem, different seeds.

    Means and standard errors are pooled (Chan's formula), counts added, per-trajectory
    records, jump lists and trajectory tables concatenated (the second run's trajectories
    follow the first's). Every other array must be equal in both.

    Raises
    ------
    ConfigError
        Not two trajectory runs, another problem (``meta["problem"]`` or an array that
        differs), or a seed shared by both.
    """
    if not (first.is_trajectories and second.is_trajectories):
        raise ConfigError("+", "only trajectory results merge (an exact result has nothing to "
                               "add)")
    if first.meta.get("problem") != second.meta.get("problem"):
        raise ConfigError("+", "the results are of different problems (H, a_ops, state, "
                               "tlist or e_ops differ)")
    shared = sorted(set(first.seeds) & set(second.seeds))
    if shared or not first.seeds or not second.seeds:
        why = f"seed {shared[0]} is in both" if shared else "a result does not record its seed"
        raise ConfigError("+", f"{why}: merging would count trajectories twice (give "
                               "different seeds)")
    n1, n2 = first.ntraj, second.ntraj
    arrays: dict[str, np.ndarray] = {}
    keys = list(dict.fromkeys([*first.arrays, *second.arrays]))
    for key in keys:
        if key.endswith(STDERR) and key[:-len(STDERR)] in first.arrays:
            continue
        a, b = first.arrays.get(key), second.arrays.get(key)
        if key + STDERR in first.arrays:
            if b is None or key + STDERR not in second.arrays:
                raise ConfigError("+", f"{key} is in one result only")
            arrays[key], arrays[key + STDERR] = _pooled(
                a, first.arrays[key + STDERR], n1, b, second.arrays[key + STDERR], n2)
        elif key in TRAJECTORY_RECORDS or key in TRAJECTORY_TABLES or key in JUMP_LISTS:
            arrays[key] = _concatenated(key, a, b, n1)
        elif key in COUNTS:
            arrays[key] = a + b
        elif key in TRANSITIONS:
            continue
        elif a is None or b is None or a.shape != b.shape or not np.array_equal(a, b,
                                                                              equal_nan=True):
            raise ConfigError("+", f"the results are of different problems ({key} differs)")
        else:
            arrays[key] = a
    if "transition_count" in first.arrays:
        arrays.update(_transitions(first.arrays, second.arrays))
    rows = first._recorded_rows() + [n1 + r for r in second._recorded_rows()]
    meta = {**first.meta, "seeds": first.seeds + second.seeds, "seed": None,
            "trajectories": n1 + n2, "jump_rows": rows,
            "trajectories_requested": n1 + n2,
            "total_jumps": first.meta.get("total_jumps", 0) + second.meta.get("total_jumps", 0),
            "run_seconds": first.meta.get("run_seconds", 0.0) + second.meta.get("run_seconds",
                                                                                0.0)}
    return Result(arrays, meta)


def _pooled(mean1, error1, n1, mean2, error2, n2):
    """Mean and standard error of two samples pooled, from each one's mean and standard error
    (sample variance ``n (n - 1) stderr^2 / n`` recovered, then Chan's merge); a complex array
    (``rho``) pools its real and imaginary parts separately."""
    if np.iscomplexobj(mean1) or np.iscomplexobj(mean2):
        real = _pooled(mean1.real, error1.real, n1, mean2.real, error2.real, n2)
        imag = _pooled(mean1.imag, error1.imag, n1, mean2.imag, error2.imag, n2)
        return real[0] + 1j * imag[0], real[1] + 1j * imag[1]
    n = n1 + n2
    squares1 = np.nan_to_num(error1**2 * n1 * (n1 - 1), posinf=0.0)
    squares2 = np.nan_to_num(error2**2 * n2 * (n2 - 1), posinf=0.0)
    delta = mean2 - mean1
    mean = mean1 + delta * (n2 / n)
    squares = squares1 + squares2 + delta**2 * (n1 * n2 / n)
    return mean, np.sqrt(squares / ((n - 1) * n))


def _concatenated(key: str, a, b, n1: int) -> np.ndarray:
    """Rows of both results; trajectory indices of the second shifted past the first's."""
    if a is None or b is None:
        raise ConfigError("+", f"{key} is in one result only (record the same things in both)")
    if key in ("jump_trajectory", "trajectory_index"):
        b = b + n1
    return np.concatenate([a, b])


def _transitions(first: dict, second: dict) -> dict[str, np.ndarray]:
    """Sparse transition counts of both results, added where ``(bath, from, to)`` agree."""
    keys = np.concatenate([np.stack([r[k] for k in TRANSITIONS[:3]], axis=1)
                           for r in (first, second)])
    counts = np.concatenate([first["transition_count"], second["transition_count"]])
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    total = np.bincount(inverse.ravel(), weights=counts, minlength=unique.shape[0])
    merged = {name: unique[:, i].astype(first[name].dtype)
              for i, name in enumerate(TRANSITIONS[:3])}
    merged["transition_count"] = np.rint(total).astype(first["transition_count"].dtype)
    return merged


def _qobj(matrix: np.ndarray, dims: list | None):
    """A ``qutip.Qobj`` with ``dims`` when the input had them, else the array (qutip imported
    only then)."""
    if dims is None:
        return matrix
    from .qutip_bridge import to_qobj

    return to_qobj(matrix, dims)
