"""The generator interface and its registry (docs/design.md, "Adding a generator").

A new generator is one subpackage (here: a class in this module) and one ``register`` line.
The minimal one below wraps the channel generator under its own name and type; runs of it
through the driver and the Python API must equal the channel generator's bit for bit (same
kernel, same streams), and nothing outside the registry may need to know its name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pytest

import jumps
from jumps import generators
from jumps.errors import ConfigError
from jumps.generators.base import InitialState
from jumps.generators.channels import Channels
from jumps.generators.channels.generator import DaviesGenerator
from jumps.runtime.config import load_config
from jumps.runtime.driver import run_trajectories
from jumps.runtime.info import info_text
from jumps.runtime.io import read_results

PACKAGE = Path(jumps.__file__).resolve().parent

CONFIG = """
[system]
model = "tfim_chain"
params = {{ n = 3, h = 1.1, hz = 0.3 }}
[[baths]]
coupling = "sx:*"
spectral_density = "ohmic"
eta = 0.02
cutoff = 5.0
temperature = 1.0
[initial_state]
kind = "product"
state = "+dd"
[run]
t_final = 10.0
n_times = 11
trajectories = 300
seed = 5
observables = ["sz:0", "energy"]
record_jumps = 2
generator = "{generator}"
"""


@dataclass(frozen=True)
class WrappedGenerator(DaviesGenerator):
    """The channel generator under another type (what a new generator's dataclass is)."""

    @classmethod
    def wrap(cls, generator: DaviesGenerator) -> WrappedGenerator:
        return cls(**{f.name: getattr(generator, f.name) for f in fields(generator)})


class Wrapped(Channels):
    """A minimal generator: the channel generator's build, packing and kernel, own name."""

    name = "wrapped"
    generator_type = WrappedGenerator

    def build(self, config, comm):
        generator = super().build(config, comm)
        return None if generator is None else WrappedGenerator.wrap(generator)

    def from_arrays(self, arrays, meta, baths):
        return WrappedGenerator.wrap(super().from_arrays(arrays, meta, baths))


@pytest.fixture
def wrapped():
    generators.register(Wrapped())  # the one registry line
    yield
    generators.unregister("wrapped")


def run(tmp_path: Path, generator: str) -> tuple[dict, dict]:
    path = tmp_path / f"{generator}.toml"
    path.write_text(CONFIG.format(generator=generator))
    out = tmp_path / generator
    assert run_trajectories(load_config(path), out, quiet=True) == 0
    return read_results(out)


def test_registered_generator_runs_through_the_driver(tmp_path, wrapped):
    """Oracle: the channel generator's own run of the same config and seed (bit for bit)."""
    arrays, meta = run(tmp_path, "wrapped")
    reference, reference_meta = run(tmp_path, "channels")
    assert meta["generator"] == "wrapped" and reference_meta["generator"] == "channels"
    assert set(arrays) == set(reference)
    for key in reference:
        np.testing.assert_array_equal(arrays[key], reference[key], err_msg=key)
    assert arrays["jump_time"].size > 0  # the jump list went through the new generator too


def test_registered_generator_runs_through_the_api(wrapped):
    """The API finds the unravelling from the generator's type; oracle as above."""
    sz = np.diag([1.0, -1.0])
    sx = np.array([[0.0, 1.0], [1.0, 0.0]])
    bath = [jumps.ohmic(0.05, 5.0, beta=1.0)]
    plain = jumps.davies_generator(0.5 * sz, [sx], bath)
    times = np.linspace(0.0, 10.0, 11)
    results = [jumps.unravel_generator(g, psi0=[0.6, 0.8], times=times, trajectories=400,
                                       seed=3, observables={"sz": sz})
               for g in (WrappedGenerator.wrap(plain), plain)]
    assert generators.of(WrappedGenerator.wrap(plain)).name == "wrapped"
    assert results[0].meta["generator"] == "wrapped"
    for key, value in results[1].arrays.items():
        np.testing.assert_array_equal(results[0].arrays[key], value, err_msg=key)


def test_registered_generator_has_info(tmp_path, wrapped):
    """``info`` describes it through the interface (its diagnostics, its spectrum)."""
    path = tmp_path / "c.toml"
    path.write_text(CONFIG.format(generator="wrapped"))
    config = load_config(path)
    generator, built = generators.get("wrapped").build(config, _OneRank()), {
        "kind": "wrapped", "cached": None, "build_seconds": 0.0}
    text = info_text(config, generator, built)
    assert "wrapped generator" in text and "secular margin" in text


class _OneRank:
    rank, size, is_parallel = 0, 1, False


def test_unknown_generator_is_refused_naming_the_registered_ones(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(CONFIG.format(generator="wrapped"))
    with pytest.raises(ConfigError, match="run.generator: must be auto or one of channels, rates"):
        load_config(path)


def test_auto_prefers_the_highest_priority_that_accepts_the_run():
    """``auto``: rates from d = 256 for eigenstate and Gibbs starts, else channels; a pure
    state that is no eigenstate, or a full density matrix, never gets rates."""
    eigen, product = InitialState("eigenstate", index=0), InitialState("product")

    def names(*args):
        return [u.name for u in generators.candidates("auto", *args)]

    assert names(256, eigen, "auto") == ["rates", "channels"]
    assert names(255, eigen, "auto") == ["channels"]
    assert names(1024, product, "auto") == ["channels"]
    assert names(1024, eigen, "full") == ["channels"]
    assert names(1024, InitialState("gibbs"), "diagonal") == ["rates", "channels"]


def test_no_branch_on_a_generator_name_outside_the_registry():
    """Outside jumps/generators/, no code tests a generator's type or compares a generator,
    its kind or a result's generator with a generator's name (the interface decides); a name may only be passed along
    (``build(config, "channels")``). A bath's spectral density may be called "rates" too: only
    comparisons that mention a generator (or the build's kind, or a plan) count."""
    names = set(generators.names())  # "auto" is a mode, not a generator
    about_generators = ("generator", "unravelling", "plan", "built")
    offenders = []
    for path in [*PACKAGE.rglob("*.py"), *(PACKAGE.parent / "analysis").rglob("*.py")]:
        if "generators" in path.relative_to(PACKAGE.parent).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if (any(isinstance(o, ast.Constant) and o.value in names for o in operands)
                        and any(word in ast.unparse(node) for word in about_generators)):
                    offenders.append(f"{path.name}:{node.lineno}")
            is_type_test = (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                            and node.func.id in ("isinstance", "type") and len(node.args) == 2)
            if is_type_test and ast.unparse(node.args[1]).endswith("Generator"):
                offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, offenders


def test_modules_stay_small():
    """No module of jumps/ or analysis/ over 700 lines (one idea per module)."""
    sizes = {p: len(p.read_text().splitlines())
             for p in [*PACKAGE.rglob("*.py"), *(PACKAGE.parent / "analysis").rglob("*.py")]}
    assert max(sizes.values()) <= 700, max(sizes, key=sizes.get)


def test_cited_documents_exist():
    """Every document a docstring or comment of the package cites is in the repository."""
    root = PACKAGE.parent
    for path in [*PACKAGE.rglob("*.py"), *(root / "analysis").rglob("*.py")]:
        text = path.read_text()
        assert "DESIGN.md" not in text, path
        if "docs/design.md" in text:
            assert (root / "docs" / "design.md").is_file()
