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
