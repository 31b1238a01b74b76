"""jumps.core.borrow: the same arrays without an owner (no atomic reference counts)."""

import sys
from collections import namedtuple

import numba
import numpy as np
from numba.core import cgutils, types
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

from jumps.core.borrow import borrowed, keep_alive

Pair = namedtuple("Pair", ["values", "out", "scale"])


@intrinsic
def _owned(typingctx, array):
    """True when ``array`` has a meminfo (an owner whose count Numba keeps)."""
    def codegen(context, builder, signature, args):
        meminfo = make_array(signature.args[0])(context, builder, args[0]).meminfo
        return builder.icmp_unsigned("!=", meminfo, cgutils.get_null_value(meminfo.type))
    return types.boolean(array), codegen


@numba.njit
def _ownership(pair):
    view = borrowed(pair)
    return _owned(pair.values), _owned(view.values), _owned(view.out)


@numba.njit
def _scaled_sum(pair):
    """Writes through the borrowed tuple; reads an owner allocated here through its view."""
    view = borrowed(pair)
    owner = np.arange(view.values.size) * 1.0
    local = borrowed(owner)
    total = 0.0
    for i in range(view.values.size):
        view.out[i] = view.values[i] * view.scale
        filler = np.ones(64)  # allocations while only the view is read
        total += local[i] + filler[0] - 1.0
    keep_alive(owner)
    return total


def test_borrowed_arrays_have_no_owner_and_the_originals_keep_theirs():
    pair = Pair(np.ones(3), np.zeros(3), 2.0)
    assert _ownership(pair) == (True, False, False)


def test_borrowed_views_read_and_write_the_same_memory():
    values = np.arange(5.0)
    pair = Pair(values, np.zeros(5), 3.0)
    before = sys.getrefcount(values), sys.getrefcount(pair.out)
    assert _scaled_sum(pair) == np.arange(5.0).sum()
    assert (sys.getrefcount(values), sys.getrefcount(pair.out)) == before
    np.testing.assert_array_equal(pair.out, 3.0 * values)


def test_keep_alive_counts_its_arguments():
    assert keep_alive(np.zeros(1), np.zeros(2)) == 2


def test_run_chunk_keeps_every_owner_alive_while_its_views_are_used():
    """Numba frees a local after its last use: each ``*_owner`` of run_chunk must be freed once,
    after the keep_alive call, and every borrowed view (and ``sums``, built of views) must be
    dead before that call."""
    from numba.core import compiler, ir

    from jumps.generators.channels import kernels

    function = compiler.run_frontend(kernels.run_chunk.py_func, emit_dels=True)
    views = {"work", "parts", "levels", "occ", "step0", "rng", "sums"}
    owners = {f"{name}_owner" for name in views - {"sums"}}
    keep, freed, view_deaths = None, {}, []
    position = 0
    for label in sorted(function.blocks):
        for statement in function.blocks[label].body:
            position += 1
            if isinstance(statement, ir.Del):
                name = statement.value.split(".")[0]
                if name in owners:
                    freed.setdefault(name, []).append(position)
                elif name in views:
                    view_deaths.append(position)
            if (isinstance(statement, ir.Assign) and isinstance(statement.value, ir.Expr)
                    and statement.value.op == "call"):
                callee = function.get_definition(statement.value.func)
                if isinstance(callee, (ir.Global, ir.FreeVar)) and callee.name == "keep_alive":
                    keep = position
    assert keep is not None and view_deaths
    assert set(freed) == owners
    assert all(len(where) == 1 and where[0] > keep for where in freed.values()), (keep, freed)
    assert max(view_deaths) < keep, (max(view_deaths), keep)
