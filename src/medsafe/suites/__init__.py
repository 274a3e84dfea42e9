"""Suites: open a file, a directory or a bundled suite by name and stream validated items.

>>> source = open_suite("starter")            # or a path; format detected from the file's shape
>>> for item in source.items(): ...           # lazy; raises SuiteError naming file, line, field
>>> items = load_items("my.csv", mapping=parse_mapping("prompt=question_text"))

Loaders register by name in :data:`medsafe.suites.base.loaders` (see :func:`formats`); the
formats and their fields are documented in docs/formats.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import medsafe.suites.loaders as _builtin_loaders
from medsafe.errors import SuiteError
from medsafe.schema import Item
from medsafe.suites.base import ColumnMapping, Loader
from medsafe.suites.base import loaders as _registry
from medsafe.suites.catalog import bundled_suites

__all__ = [
    "ColumnMapping",
    "Loader",
    "SuiteSource",
    "bundled_suites",
    "detect_format",
    "formats",
    "get_loader",
    "load_items",
    "open_suite",
    "parse_mapping",
]


@dataclass(frozen=True)
class SuiteSource:
    """An opened suite: where it is, which loader reads it and how columns are renamed."""

    name: str
    """Suite name stored on each ``Item.suite`` (file stem, directory name or bundled name)."""
    path: Path
    format: str
    mapping: ColumnMapping = field(default_factory=ColumnMapping)

    def items(self) -> Iterator[Item]:
        """Validated items, lazily; raises :class:`SuiteError` on the first bad record."""
        for item in get_loader(self.format).load(self.path, self.mapping):
            yield item.model_copy(update={"suite": self.name})


def formats() -> list[str]:
    """Names of the registered loaders (values for ``--format``)."""
    return _registry.names()


def get_loader(name: str) -> Loader:
    """The loader registered as ``name``; :class:`SuiteError` listing the formats if none."""
    if name not in _registry:
        raise SuiteError(f"unknown format {name!r} (known formats: {', '.join(formats())})")
    return _registry.get(name)


def detect_format(path: Path) -> str:
    """The format of ``path`` from its shape: specific benchmark formats first (they look at
    headers and first records), then the generic ones by suffix."""
    generic = [n for n in _builtin_loaders.GENERIC if n in _registry]
    specific = [n for n in formats() if n not in generic]
    for name in specific + generic:
        if _registry.get(name).sniff(path):
            return name
    raise SuiteError(
        f"cannot tell the format of this {'directory' if path.is_dir() else 'file'}; "
        f"pass a format (known formats: {', '.join(formats())})",
        path=path,
    )


def open_suite(
    ref: str | Path, fmt: str | None = None, mapping: ColumnMapping | None = None
) -> SuiteSource:
    """Open a suite by path (file or directory) or bundled name; nothing is read beyond what
    format detection needs."""
    path = Path(ref)
    bundled = bundled_suites()
    if path.exists():
        name = path.stem if path.is_file() else path.resolve().name
        default_format = None
    elif str(ref) in bundled:
        name = str(ref)
        path, default_format, _ = bundled[name]
    else:
        known = ", ".join(bundled) or "none"
        raise SuiteError(f"no such file, directory or bundled suite (bundled: {known})", path=ref)
    chosen = fmt or default_format or detect_format(path)
    get_loader(chosen)
    return SuiteSource(name=name, path=path, format=chosen, mapping=mapping or ColumnMapping())


def load_items(
    ref: str | Path, fmt: str | None = None, mapping: ColumnMapping | None = None
) -> list[Item]:
    """Every item of a suite, fully validated before anything is returned."""
    return list(open_suite(ref, fmt, mapping).items())


def parse_mapping(spec: str) -> ColumnMapping:
    """Parse a ``--map`` option: ``"prompt=question_text,category=dim"`` (canonical=source)."""
    columns: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        canonical, sep, source = (s.strip() for s in part.partition("="))
        if not sep or not canonical or not source:
            raise SuiteError(f"bad mapping entry {part!r}: expected canonical=source_column")
        if canonical in columns:
            raise SuiteError(f"field {canonical!r} is mapped twice", field=canonical)
        columns[canonical] = source
    return ColumnMapping(columns)
