"""Numba's on-disk cache of this package's kernels, invalidated by any change to the package.

Numba stamps a cached function with the content hash of the file that defines it, and only
that file: ``kernels.run_chunk`` compiled with yesterday's ``evolution.waiting_time`` inlined
would still load after ``evolution.py`` changed (measured: an edit to ``evolution.py`` alone
left the old machine code running). With an editable install (``tasks.py``), a ``git pull``
that touches one helper module could then give a wrong result with exit status 0.

:func:`install` puts a cache locator in front of Numba's own for functions defined inside this
package: the same places (``NUMBA_CACHE_DIR`` if set, else ``__pycache__`` next to the
source, else the user-wide cache), but
the stamp is a hash of every ``.py`` file of the package, so any change to any of them
recompiles every kernel once. It must run before the first ``@njit(cache=True)`` of the package
is decorated (``jumps/__init__.py`` calls it first). If Numba's internals ever move, it falls
back to a cache directory named by that hash (``numba.config.CACHE_DIR``), which is as safe.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


@functools.cache
def package_digest() -> bytes:
    """:func:`sources_digest` of this package (once per process)."""
    return sources_digest(PACKAGE)


def sources_digest(directory: Path) -> bytes:
    """SHA-256 over the relative path and content of every ``.py`` file under ``directory``."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*.py")):
        digest.update(str(path.relative_to(directory)).encode())
        digest.update(path.read_bytes())
    return digest.digest()


def _inside(py_file: str) -> bool:
    try:
        return Path(py_file).resolve().is_relative_to(PACKAGE)
    except OSError:
        return False


def install() -> None:
    """Stamp this package's cached kernels with :func:`package_digest` (see the module doc)."""
    from numba.core import caching, config

    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    try:
        base_classes = (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator,
                        caching.UserWideCacheLocator)
        impl._locator_classes  # noqa: B018 - the attribute this hook extends
    except AttributeError:
        if not config.CACHE_DIR:
            config.CACHE_DIR = os.path.join(caching.AppDirs(appname="numba", appauthor=False)
                                            .user_cache_dir, "jumps-" + package_digest().hex())
        return

    def locator(base):
        class PackageLocator(base):
            """``base``, for this package's functions, stamped by the whole package."""

            def get_source_stamp(self):
                return package_digest()

            @classmethod
            def from_function(cls, py_func, py_file):
                if not _inside(py_file):
                    return None
                return super().from_function(py_func, py_file)

        PackageLocator.__name__ = f"Jumps{base.__name__}"
        return PackageLocator

    ours = [locator(base) for base in base_classes]
    if not any(getattr(c, "__name__", "").startswith("Jumps") for c in impl._locator_classes):
        impl._locator_classes[:0] = ours
