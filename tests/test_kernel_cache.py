"""Numba's cache of the package's kernels is stamped by the whole package (jumps/kernel_cache.py):
a change to a helper module must not leave a kernel that inlined the old helper loading from
the cache."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil

import numba
from numba.core import caching

import jumps
from jumps import kernel_cache


def cached_dispatchers():
    """Every ``@njit(cache=True)`` function of the package, imported."""
    for info in pkgutil.walk_packages(jumps.__path__, "jumps."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (isinstance(value, numba.core.registry.CPUDispatcher)
                    and value.__module__ == info.name and value._cache is not None
                    and not isinstance(value._cache, caching.NullCache)):
                yield value


def test_every_cached_kernel_is_stamped_by_the_whole_package():
    kernels = list(cached_dispatchers())
    assert len(kernels) > 20  # the channels, rates and core kernels
    for kernel in kernels:
        locator = kernel._cache._impl._locator
        assert type(locator).__name__.startswith("Jumps"), kernel
        assert locator.get_source_stamp() == kernel_cache.package_digest(), kernel


def test_the_stamp_changes_with_any_module(tmp_path):
    (tmp_path / "core").mkdir()
    (tmp_path / "kernels.py").write_text("def f(): return helper()\n")
    (tmp_path / "core" / "helper.py").write_text("def helper(): return 1\n")
    before = kernel_cache.sources_digest(tmp_path)
    assert kernel_cache.sources_digest(tmp_path) == before
    (tmp_path / "core" / "helper.py").write_text("def helper(): return 2\n")
    assert kernel_cache.sources_digest(tmp_path) != before


def test_functions_outside_the_package_keep_numbas_locators(tmp_path):
    source = tmp_path / "user_module.py"
    source.write_text("import numba\n\n@numba.njit(cache=True)\ndef f(x):\n    return x + 1\n")
    spec = importlib.util.spec_from_file_location("user_module", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert not type(module.f._cache._impl._locator).__name__.startswith("Jumps")
