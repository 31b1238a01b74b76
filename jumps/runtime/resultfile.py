"""The ``results.npz`` format: how arrays are named.

An observable named ``x`` is stored as ``expect_x`` and its standard error as
``expect_x_stderr``; characters other than letters, digits and ``_`` become ``_`` (``sz:0`` is
stored as ``expect_sz_0``). The CLI (``[run] observables``) and the Python API (``e_ops``,
``observables``) name their arrays by this one rule.
"""

from __future__ import annotations

from ..errors import ConfigError

# results.npz stores observable x as expect_x and its standard error as expect_x_stderr.
STDERR_SUFFIX = "_stderr"


def result_key(name: str) -> str:
    """A result-file-safe name: ``sz:0`` -> ``sz_0``."""
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)


def claim_result_key(name: str, field: str, taken: dict[str, str]) -> str:
    """The key of an observable named ``name`` (:func:`result_key`), recorded in ``taken``
    (key -> name).

    Raises
    ------
    ConfigError
        Naming ``field``: the name is empty, its key reads as another observable's standard
        error, or its key is already taken (the same name twice, or ``sz:0`` beside ``sz_0``).
    """
    key = result_key(name)
    if not name:
        raise ConfigError(field, "is empty")
    if key.endswith(STDERR_SUFFIX):
        raise ConfigError(field, f"is stored as expect_{key}, which reads as the standard error "
                                 f"of {key[:-len(STDERR_SUFFIX)]!r}: rename it")
    if key in taken:
        raise ConfigError(field, "is named twice" if taken[key] == name else
                          f"is stored as expect_{key}, like {taken[key]!r} (':' and other signs "
                          "are stored as '_'): rename one")
    taken[key] = name
    return key
