"""Exponentials that vectorise: ``exp`` and ``exp(-i lambda t)`` as plain arithmetic, for loops
over many states.

Numba calls the C library's scalar ``exp`` for ``np.exp``: an opaque call per element, so a
loop of exponentials (the norm of a decaying superposition, one term per occupied level, at
every step of the waiting-time root search) neither vectorises nor inlines. :func:`exp_real`
is the textbook algorithm written out: ``x = n ln 2 + r`` with ``|r| <= ln(2)/2`` (Cody-Waite:
``ln 2`` in two parts, so ``n ln 2`` is exact), ``exp(r)`` by its Taylor series to ``r^13``
(truncation below 1e-17 relative), and ``2^n`` put into the exponent bits. Its error is a few
ulp (``tests/test_vexp.py`` checks it against ``np.exp``); LLVM vectorises a loop of it.

:func:`phase_factor` is ``exp(-i lambda t)`` for a complex ``lambda`` (the no-jump evolution of
one eigenstate of ``H_eff``): :func:`exp_real` of ``Im(lambda) t`` times the cosine and sine of
``x = Re(lambda) t``. Those are fdlibm's kernels (polynomials on ``|r| <= pi/4``, below 1 ulp)
after the reduction ``x = n pi/2 + r``, computed with fused multiply-adds against ``pi/2`` in
two doubles (~106 bits): within ~2e-16 of the C library's for ``|x|`` up to 1e14, ~1e-14 at
1e15, far below the rounding of the argument ``Re(lambda) t`` itself (``ulp(x)``: 0.016 at
1e14). The C library's complex exponential is a
``sincos`` and an ``exp`` call per element, ~35 ns; this is a few ns and vectorises.
"""

from __future__ import annotations

import math

import numba
from llvmlite import ir
from numba.core import cgutils
from numba.extending import intrinsic

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # ln 2 with its low bits zero: n * LN2_HI is exact
LN2_LO = 1.90821492927058770002e-10  # ln 2 - LN2_HI
# Below this the result is 0 (the C library returns subnormals down to -745).
EXP_MIN = -708.0
# Above this exp overflows.
EXP_MAX = 709.0
# 1/k! for k = 13 .. 2 (Horner's scheme from the top).
_C13 = 1.0 / 6227020800.0
_C12 = 1.0 / 479001600.0
_C11 = 1.0 / 39916800.0
_C10 = 1.0 / 3628800.0
_C9 = 1.0 / 362880.0
_C8 = 1.0 / 40320.0
_C7 = 1.0 / 5040.0
_C6 = 1.0 / 720.0
_C5 = 1.0 / 120.0
_C4 = 1.0 / 24.0
_C3 = 1.0 / 6.0
_C2 = 0.5
# pi/2 = PIO2_HI + PIO2_LO (PIO2_HI the double nearest pi/2), 2/pi.
PIO2_HI = 1.5707963267948966
PIO2_LO = 6.123233995736766e-17
TWO_OVER_PI = 0.6366197723675814
# fdlibm's __kernel_sin and __kernel_cos on |r| <= pi/4.
_S1, _S2, _S3 = -1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04
_S4, _S5, _S6 = 2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10
_K1, _K2, _K3 = 4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05
_K4, _K5, _K6 = -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11


if numba.config.DISABLE_JIT:
    def exp_real(x):
        """``exp(x)`` for ``x <= EXP_MAX`` (0 below ``EXP_MIN``); the C library's without the
        JIT (``NUMBA_DISABLE_JIT=1``)."""
        return math.exp(x) if x >= EXP_MIN else (0.0 if x < EXP_MIN else x)

    def phase_factor(lam, t):
        """``exp(-i lam t)``; the C library's without the JIT."""
        return complex(math.cos(lam.real * t), -math.sin(lam.real * t)) * exp_real(lam.imag * t)
else:
    @intrinsic
    def _double_from_bits(typingctx, bits):
        """The float64 whose IEEE-754 bit pattern is the int64 ``bits``."""
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.DoubleType())
        return numba.types.float64(numba.types.int64), codegen

    @numba.njit(cache=True, nogil=True, inline="always")
    def exp_real(x):
        """``exp(x)`` for ``x <= EXP_MAX``, within 1 ulp; 0 below ``EXP_MIN``, NaN for NaN.
        Branch-free arithmetic (no call), so loops of it vectorise."""
        y = max(x, EXP_MIN)
        n = math.floor(y * LOG2E + 0.5)
        r = (y - n * LN2_HI) - n * LN2_LO
        p = _C13
        p = p * r + _C12
        p = p * r + _C11
        p = p * r + _C10
        p = p * r + _C9
        p = p * r + _C8
        p = p * r + _C7
        p = p * r + _C6
        p = p * r + _C5
        p = p * r + _C4
        p = p * r + _C3
        p = p * r + _C2
        p = p * r + 1.0
        p = p * r + 1.0
        value = p * _double_from_bits((numba.int64(n) + 1023) << 52)
        # 0 below the range; a NaN argument stays NaN (the comparison is false for it).
        return value if x >= EXP_MIN else (0.0 if x < EXP_MIN else x)

    @intrinsic
    def _fma(typingctx, a, b, c):
        """``a * b + c`` rounded once (LLVM ``llvm.fma.f64``: the instruction where the CPU has
        it, an exact library call where not)."""
        def codegen(context, builder, signature, args):
            double = ir.DoubleType()
            function = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(double, [double, double, double]), "llvm.fma.f64")
            return builder.call(function, args)
        f64 = numba.types.float64
        return f64(f64, f64, f64), codegen

    @numba.njit(cache=True, nogil=True, inline="always")
    def phase_factor(lam, t):
        """``exp(-i lam t)`` for complex ``lam`` with ``Im(lam) t <= EXP_MAX``: see the module
        docstring. Branch-free arithmetic (no call), so loops of it vectorise."""
        x = lam.real * t
        n = math.floor(x * TWO_OVER_PI + 0.5)
        high = n * PIO2_HI
        r = ((x - high) - _fma(n, PIO2_HI, -high)) - n * PIO2_LO
        z = r * r
        sine = r + z * r * (_S1 + z * (_S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * _S6)))))
        half = 0.5 * z
        w = 1.0 - half
        cosine = w + (((1.0 - w) - half)
                      + z * z * (_K1 + z * (_K2 + z * (_K3 + z * (_K4 + z * (_K5 + z * _K6))))))
        quadrant = numba.int64(n)
        # cos x, sin x = (c, s), (-s, c), (-c, -s), (s, -c) in quadrants 0 .. 3 (mod 4): the
        # odd quadrants swap the two, and the signs are exact multiplications by +-1.
        odd = (quadrant & 1) == 1
        a = sine if odd else cosine
        b = cosine if odd else sine
        a *= 1.0 - 2.0 * (((quadrant + 1) >> 1) & 1)
        b *= 1.0 - 2.0 * ((quadrant >> 1) & 1)
        scale = exp_real(lam.imag * t)
        return complex(a * scale, -b * scale)
