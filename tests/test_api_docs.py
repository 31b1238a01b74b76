"""The docstring examples of the Python API run as written (numpydoc ``Examples``)."""

from __future__ import annotations

import doctest

import pytest

import jumps.api
import jumps.physics.baths
import jumps.qutip_bridge
import jumps.result

pytest.importorskip("qutip")


@pytest.mark.parametrize("module", [jumps.api, jumps.result, jumps.qutip_bridge,
                                    jumps.physics.baths], ids=lambda m: m.__name__)
def test_examples(module):
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert outcome.attempted > 0 and outcome.failed == 0
