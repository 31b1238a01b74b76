"""Borrowed arrays: views whose reference count Numba does not touch.

Numba counts references to every array it passes around: a function that takes an array (or a
namedtuple of arrays) adds one to the array's count on entry and takes it away on exit, each an
atomic read-modify-write of a shared counter (~20 cycles). The amplitude path calls a handful of
helpers per jump and per no-jump segment with ~80 arrays between them, and those atomic pairs
were a fifth of its time (docs/design.md, "Numba and reference counts").

:func:`borrowed` returns the same arrays (same data, shape and strides) with no owner: their
``meminfo`` pointer is NULL, and Numba's ``NRT_incref``/``NRT_decref`` return at once on NULL
(a predicted branch instead of an atomic). Arrays made by ``numba.carray`` from a raw pointer
are of this kind too. A borrowed array does not keep its memory alive: the caller must hold an
owning reference for as long as any borrowed view is used. The kernels borrow the engine and
the tally (held by the Python caller for the whole kernel call) and their own scratch arrays
(held to the end of the kernel by :func:`keep_alive`), and never return a borrowed array.
"""

from __future__ import annotations

import numba
from numba.core import cgutils, types
from numba.extending import intrinsic, overload
from numba.np.arrayobj import make_array


def _borrow_value(context, builder, typ, value):
    """``value`` of Numba type ``typ`` with the meminfo (and parent) of its arrays set to NULL;
    other members keep their own reference (a new one, as an intrinsic's result must be)."""
    if isinstance(typ, types.Array):
        array = make_array(typ)(context, builder, value)
        array.meminfo = cgutils.get_null_value(array.meminfo.type)
        array.parent = cgutils.get_null_value(array.parent.type)
        return array._getvalue()
    if isinstance(typ, types.BaseTuple):
        members = [_borrow_value(context, builder, member, builder.extract_value(value, i))
                   for i, member in enumerate(typ)]
        return context.make_tuple(builder, typ, members)
    context.nrt.incref(builder, typ, value)
    return value


@intrinsic
def _borrow(typingctx, value):
    """The intrinsic behind :func:`borrowed`."""
    if not isinstance(value, (types.Array, types.BaseTuple)):
        return None

    def codegen(context, builder, signature, args):
        return _borrow_value(context, builder, signature.args[0], args[0])

    return value(value), codegen


def borrowed(value):
    """An array, or a (named) tuple of arrays and scalars, as the same type with no owner (see
    the module docstring: the caller keeps the owner alive). In plain Python (``NUMBA_DISABLE_JIT``,
    as the tests run the kernels) it is ``value`` itself."""
    return value


# Not inline="always": Numba 0.68's dead-code elimination after inlining an overload drops
# the writes through a namedtuple's arrays (tests/test_borrow.py).
@overload(borrowed)
def _borrowed_jit(value):
    if isinstance(value, (types.Array, types.BaseTuple)):
        return lambda value: _borrow(value)
    return None


@numba.njit(cache=True, nogil=True)
def keep_alive(*owners):
    """No-op: a use of ``owners`` at this point, so that Numba, which frees a local array after
    its last use, keeps the owners of borrowed views alive until here."""
    return len(owners)
