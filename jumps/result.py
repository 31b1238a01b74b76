"""The one result class: arrays (the ``results.npz`` keys) and metadata (``run.json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .runtime.io import write_results


@dataclass(frozen=True)
class Result:
    """A result: arrays and metadata, from a run, the Python API or a result directory.

    The one class for the one file format (README, "Results"): :func:`jumps.unravel_generator`
    returns it, :func:`analysis.load_result` reads a directory into it, :meth:`save` writes one.

    Attributes
    ----------
    arrays : dict of str to ndarray
        ``results.npz`` under its key names.
    meta : dict
        ``run.json``.
    path : Path or None
        The directory it was read from.
    derived : tuple of str
        Arrays the file lacked and that were derived on loading (results saved by the Python
        API carry no ``level_ptr``, ``level_energies`` or ``bath_beta``).
    """

    arrays: dict
    meta: dict = field(default_factory=dict)
    path: Path | None = None
    derived: tuple[str, ...] = ()

    def __repr__(self) -> str:
        kind = self.meta.get("method", "result")
        size = f"{self.ntraj} trajectories, " if kind == "trajectories" else ""
        return (f"Result({kind}: {size}d = {self.dimension}, {self.times.size} times, "
                f"observables {self.observable_names})")

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

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
        return int(self.arrays["heat"].shape[0]) if self.is_trajectories else 0

    @property
    def energy_unit(self) -> str:
        return str(self.meta.get("energy_unit", "arbitrary"))

    @property
    def initial_state(self) -> str:
        return str(self.meta.get("initial_state", "unknown"))

    @property
    def observable_names(self) -> list[str]:
        """The observables, in the run's order (``run.json``), else as stored
        (``expect_<name>``) in file order."""
        listed = self.meta.get("observables")
        if isinstance(listed, list) and all(f"expect_{n}" in self.arrays for n in listed):
            return [str(n) for n in listed]
        return [k[len("expect_"):] for k in self.arrays
                if k.startswith("expect_") and not k.endswith("_stderr")]

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

    @property
    def expect(self) -> dict[str, np.ndarray]:
        """Mean of each observable per output time."""
        return {name: self.arrays[f"expect_{name}"] for name in self.observable_names}

    @property
    def stderr(self) -> dict[str, np.ndarray]:
        """Standard error of each observable's mean per output time (trajectory results)."""
        return {name: self.arrays[f"expect_{name}_stderr"] for name in self.observable_names
                if f"expect_{name}_stderr" in self.arrays}

    @property
    def rho(self) -> np.ndarray | None:
        """(T, d, d) density matrices in the user's basis, when stored."""
        return self.arrays.get("rho")

    def save(self, directory: str | Path, meta: dict | None = None) -> None:
        """Write a result directory (``results.npz``, ``run.json``) for ``python -m analysis``.

        A result made by the Python API has no config to rebuild the generator from, so the
        analysis compares it with an exact solution only when one is given (``--exact``)."""
        write_results(Path(directory), self.arrays, {**self.meta, **(meta or {})})
