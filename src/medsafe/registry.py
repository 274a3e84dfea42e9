"""A tiny typed registry: plug-ins register by name with a decorator (as Inspect AI does).

A name may also be *declared* with the module that registers it (:meth:`Registry.declare`):
the module is imported the first time the name is looked up, so that listing or using one
plug-in does not import every other one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from medsafe.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to plug-ins of one kind (backends, scorers, loaders...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._declared: dict[str, str] = {}
        """Name -> module that registers it when imported (not imported yet)."""

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@registry.register("name")``."""

        def decorate(obj: T) -> T:
            if name in self._entries:
                raise RegistryError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            self._declared.pop(name, None)
            return obj

        return decorate

    def declare(self, name: str, module: str) -> None:
        """Announce ``name``, registered by ``module`` when that is imported (on first use)."""
        if name in self._entries or name in self._declared:
            raise RegistryError(f"{self.kind} {name!r} is registered twice")
        self._declared[name] = module

    def get(self, name: str) -> T:
        """The plug-in registered as ``name``; a clear error listing the known names if none."""
        if name not in self._entries and name in self._declared:
            module = self._declared[name]
            importlib.import_module(module)
            if name not in self._entries:
                raise RegistryError(f"{module} was to register {self.kind} {name!r} but did not")
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(
                f"unknown {self.kind} {name!r} (known: {', '.join(self.names()) or 'none'})"
            ) from None

    def names(self) -> list[str]:
        """Registered (or declared) names, sorted."""
        return sorted({*self._entries, *self._declared})

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._declared

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
