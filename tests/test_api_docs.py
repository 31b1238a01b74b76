"""The docstring examples of the Python API run as written (numpydoc ``Examples``), and every
name ``jumps`` exports has them."""

from __future__ import annotations

import doctest
import inspect

import pytest

import jumps
import jumps.api
import jumps.errors
import jumps.physics.baths
import jumps.qutip_bridge
import jumps.result
import jumps.solvers

pytest.importorskip("qutip")

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("module", [jumps.api, jumps.solvers, jumps.result, jumps.errors,
                                    jumps.qutip_bridge, jumps.physics.baths],
                         ids=lambda m: m.__name__)
def test_examples(module):
    outcome = doctest.testmod(module, optionflags=FLAGS)
    assert outcome.attempted > 0 and outcome.failed == 0


@pytest.mark.parametrize("name", sorted(jumps.__all__))
def test_every_public_name_has_numpydoc_sections_and_a_running_example(name):
    """Every function and class in ``jumps.__all__``: an ``Examples`` section that runs
    (its own docstring's, not its methods'); a function also has ``Parameters`` and
    ``Returns``."""
    obj = getattr(jumps, name)
    text = inspect.getdoc(obj) or ""
    sections = ["Examples"] + (["Parameters", "Returns"] if inspect.isfunction(obj) else [])
    for section in sections:
        assert f"\n{section}\n{'-' * len(section)}\n" in text, f"{name}: no {section} section"
    tests = doctest.DocTestFinder(recurse=False).find(obj, name, globs={})
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in tests:
        runner.run(test)
    outcome = runner.summarize(verbose=False)
    assert outcome.attempted > 0 and outcome.failed == 0, name
