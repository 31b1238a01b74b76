"""The generators, and the registry that maps a name (``run.generator``) to one.

Each generator is a subpackage with an :class:`~jumps.generators.base.Unravelling`; the rest of
the engine reaches it only through :func:`get`, :func:`of` and :func:`candidates`. Adding a
generator is one subpackage and one :func:`register` line below (docs/design.md, "Adding a
generator").
"""

from __future__ import annotations

from ..errors import ConfigError
from .base import InitialState, NotApplicable, Unravelling
from .channels import Channels
from .rates import Rates

_REGISTRY: dict[str, Unravelling] = {}


def register(unravelling: Unravelling) -> None:
    """Make ``unravelling`` available as ``run.generator = unravelling.name``."""
    if unravelling.name == "auto":
        raise ValueError("'auto' is not a generator's name")
    _REGISTRY[unravelling.name] = unravelling


def unregister(name: str) -> None:
    """Remove a registered generator (for tests that register their own)."""
    _REGISTRY.pop(name, None)


def names() -> tuple[str, ...]:
    """The registered generators, in the order of registration."""
    return tuple(_REGISTRY)


def get(name: str) -> Unravelling:
    """The unravelling registered as ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError("run.generator", f"must be auto or one of {', '.join(_REGISTRY)}, "
                                           f"got {name!r}") from None


def of(generator) -> Unravelling:
    """The unravelling of a built generator (by its type; a subclass falls back to its
    parent's unravelling when it has none of its own)."""
    for unravelling in _REGISTRY.values():
        if type(generator) is unravelling.generator_type:
            return unravelling
    for unravelling in _REGISTRY.values():
        if isinstance(generator, unravelling.generator_type):
            return unravelling
    raise TypeError(f"no registered generator builds {type(generator).__name__}")


def candidates(choice: str, dimension: int, state: InitialState,
               density: str) -> list[Unravelling]:
    """The generators to try for ``run.generator = choice``, best first: the named one, or
    for ``auto`` every generator that accepts the run, by :meth:`Unravelling.auto_priority`
    (a build that raises :class:`NotApplicable` passes to the next)."""
    if choice != "auto":
        return [get(choice)]
    ranked = [(u.auto_priority(dimension, state, density), i, u)
              for i, u in enumerate(_REGISTRY.values())]
    ranked = [item for item in ranked if item[0] is not None]
    ranked.sort(key=lambda item: (-item[0], item[1]))  # highest priority, then registration
    return [u for _, _, u in ranked]


register(Channels())
register(Rates())

__all__ = ["InitialState", "NotApplicable", "Unravelling", "candidates", "get", "names", "of",
           "register", "unregister"]
