"""A tiny typed registry: plug-ins register by name with a decorator (as Inspect AI does).

- A name may be *declared* with the module that registers it (:meth:`Registry.declare`): the
  module is imported the first time the name is looked up, so that listing or using one
  plug-in does not import every other one.
- Registering a name again replaces the old entry with a :class:`RegistryWarning` (a notebook
  cell run twice must not fail).
- *Built-in* names (registered or declared by medsafe's own modules) are protected: replacing
  one raises :class:`~medsafe.errors.RegistryError` unless ``replace_builtin=True`` is passed.
- Other packages add plug-ins through entry points (:data:`ENTRY_POINT_GROUPS`): each entry
  point's name is declared on the first lookup and its object is loaded when that name is first
  used; loading it must register the name (``@medsafe.scorer``, ``@medsafe.backend``...).
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from medsafe.errors import RegistryError

T = TypeVar("T")

ENTRY_POINT_GROUPS = {
    "scorer": "medsafe.scorers",
    "backend": "medsafe.backends",
    "loader": "medsafe.loaders",
    "strategy": "medsafe.strategies",
}
"""Entry-point group of each plug-in kind (``[project.entry-points."medsafe.scorers"]``)."""

BUILTIN_MODULES = {
    "scorer": "medsafe.scorers.builtin",
    "backend": "medsafe.models.builtin",
    "loader": "medsafe.suites.loaders",
}
"""The module that registers (or declares) a kind's built-in plug-ins; imported before a
plug-in registers or entry points are read, so that a built-in name is always known."""


class RegistryWarning(UserWarning):
    """A plug-in name was registered again and the new entry replaced the old one."""


def is_medsafe_module(module: str | None) -> bool:
    """Whether ``module`` is part of medsafe itself (what makes a registration built in)."""
    return module is not None and (module == "medsafe" or module.startswith("medsafe."))


def _defined_in(obj: object) -> str | None:
    module = getattr(obj, "__module__", None)
    return module if isinstance(module, str) else type(obj).__module__


def _initializing(module: str) -> bool:
    """Whether ``module`` is being imported right now (partially initialised)."""
    found = sys.modules.get(module)
    return bool(getattr(getattr(found, "__spec__", None), "_initializing", False))


def _outside_medsafe() -> int:
    """The ``stacklevel`` of the first caller outside medsafe (where a warning belongs)."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and is_medsafe_module(frame.f_globals.get("__name__")):
        frame = frame.f_back
        level += 1
    return level


def distribution_name(entry_point: EntryPoint) -> str:
    """The name of the installed distribution that provides ``entry_point``."""
    dist = entry_point.dist
    return dist.name if dist is not None else "<unknown distribution>"


def _where(entry_point: EntryPoint) -> str:
    return (
        f"entry point {entry_point.name} = {entry_point.value!r} (group {entry_point.group}) "
        f"of distribution {distribution_name(entry_point)}"
    )


class Registry(Generic[T]):
    """Maps names to plug-ins of one kind (backends, scorers, loaders...)."""

    def __init__(self, kind: str, *, group: str | None = None, builtins: str | None = None) -> None:
        self.kind = kind
        self.group = group or ENTRY_POINT_GROUPS.get(kind)
        """Entry-point group read on the first lookup (None: no entry points)."""
        self.builtins = builtins or BUILTIN_MODULES.get(kind)
        self._entries: dict[str, T] = {}
        self._declared: dict[str, str | EntryPoint] = {}
        """Name -> module (or entry point) that registers it when loaded (not loaded yet)."""
        self._builtin: set[str] = set()
        self._replaced: set[str] = set()
        """Built-in names a plug-in replaced (``replace_builtin=True``); the built-in stays out."""
        self._scanned = False

    def register(
        self, name: str, *, builtin: bool | None = None, replace_builtin: bool = False
    ) -> Callable[[T], T]:
        """Decorator: ``@registry.register("name")``.

        ``builtin`` defaults to whether the object is defined in a medsafe module.
        """

        def decorate(obj: T) -> T:
            is_builtin = is_medsafe_module(_defined_in(obj)) if builtin is None else builtin
            if self._admit(name, is_builtin, replace_builtin):
                self._entries[name] = obj
                self._declared.pop(name, None)
            return obj

        return decorate

    def declare(self, name: str, module: str) -> None:
        """Announce ``name``, registered by ``module`` when that is imported (on first use)."""
        is_builtin = is_medsafe_module(module)
        if is_builtin and name in self._builtin:
            return  # already registered by that very module
        if self._admit(name, is_builtin, replace_builtin=False):
            self._entries.pop(name, None)
            self._declared[name] = module

    def _admit(self, name: str, builtin: bool, replace_builtin: bool) -> bool:
        """Apply the replacement rules; False when the new entry must be ignored."""
        if builtin:
            if name in self._replaced:
                return False  # a plug-in replaced this built-in on purpose: keep the plug-in
            if name in self._builtin and name in self._entries:
                self._warn_again(name)
            self._builtin.add(name)
            return True
        self._load_builtins()
        if name in self._builtin:
            if not replace_builtin:
                raise RegistryError(
                    f"{self.kind} {name!r} is built in: choose another name, or pass "
                    "replace_builtin=True to replace the built-in one"
                )
            if name in self._replaced:
                self._warn_again(name)
            self._replaced.add(name)
        elif name in self._entries:  # a declaration not loaded yet is replaced silently
            self._warn_again(name)
        return True

    def _warn_again(self, name: str) -> None:
        warnings.warn(
            f"{self.kind} {name!r} is registered again: the new one replaces the old",
            RegistryWarning,
            stacklevel=_outside_medsafe(),
        )

    def _load_builtins(self) -> None:
        """Import the built-ins. While another thread imports them, this waits until it is done
        (the import system's module lock); in the importing thread itself (a built-in asking
        while it registers) it returns the partial module at once."""
        if self.builtins is not None:
            importlib.import_module(self.builtins)

    def _scan(self) -> None:
        """Declare the entry points of :attr:`group` (once, after the built-ins are known)."""
        if self._scanned or self.group is None:
            return
        self._load_builtins()
        if self.builtins is not None and _initializing(self.builtins):
            return  # a built-in module is asking while it registers: scan on a later lookup
        self._scanned = True
        self._load_builtins()
        offered: dict[str, EntryPoint] = {}
        conflicts: list[EntryPoint] = []
        for entry_point in entry_points(group=self.group):
            name = entry_point.name
            first = offered.setdefault(name, entry_point)
            if first is not entry_point:
                warnings.warn(
                    f"{self.kind} {name!r} is offered by both {distribution_name(first)} and "
                    f"{distribution_name(entry_point)}; using {distribution_name(first)}",
                    RegistryWarning,
                    stacklevel=3,
                )
            elif self.is_builtin(name):
                conflicts.append(entry_point)
            elif name not in self._entries and name not in self._declared:
                self._declared[name] = entry_point
        for entry_point in conflicts:  # only an explicit replace_builtin=True may take the name
            self._import(entry_point.name, entry_point)
            if self.is_builtin(entry_point.name):
                raise RegistryError(
                    f"{self.kind} {entry_point.name!r} is built in, yet "
                    f"{_where(entry_point)} offers it; register it with replace_builtin=True "
                    "to replace the built-in one"
                )

    def _load(self, name: str, source: str | EntryPoint) -> None:
        """Import what was declared to register ``name``; a clear error if it does not."""
        if isinstance(source, str):
            importlib.import_module(source)
            if name not in self._entries:
                raise RegistryError(f"{source} was to register {self.kind} {name!r} but did not")
            return
        self._import(name, source)
        if name not in self._entries:
            raise RegistryError(
                f"{self.kind} {name!r}: {_where(source)} loaded but registered no "
                f"{self.kind} {name!r}"
            )

    def _import(self, name: str, entry_point: EntryPoint) -> None:
        """Load an entry point; an error names it and its distribution."""
        try:
            entry_point.load()
        except Exception as exc:
            raise RegistryError(
                f"{self.kind} {name!r}: {_where(entry_point)} failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def get(self, name: str) -> T:
        """The plug-in registered as ``name``; a clear error listing the known names if none."""
        if name not in self._entries:
            self._scan()
            source = self._declared.get(name)
            if source is not None:
                self._load(name, source)
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(
                f"unknown {self.kind} {name!r} (known: {', '.join(self.names()) or 'none'})"
            ) from None

    def is_builtin(self, name: str) -> bool:
        """Whether ``name`` is one of medsafe's own plug-ins (and not replaced by another)."""
        self._load_builtins()
        return name in self._builtin and name not in self._replaced

    def names(self) -> list[str]:
        """Registered (or declared) names, sorted, entry points included."""
        self._scan()
        return sorted({*self._entries, *self._declared})

    def __contains__(self, name: object) -> bool:
        if name not in self._entries and name not in self._declared:
            self._scan()
        return name in self._entries or name in self._declared

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
