"""Suite loaders: turn a file or directory into validated :class:`~medsafe.schema.Item` s.

Each loader registers by name (``--format NAME``) and can say whether a path looks like its
format (``sniff``), so ``--format`` may be left out. Loaders yield items lazily and raise
:class:`~medsafe.errors.SuiteError` naming file, line and field on the first bad record; the
caller imports inside one transaction so that nothing is partially imported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from medsafe.registry import Registry
from medsafe.schema import Item


@dataclass(frozen=True)
class ColumnMapping:
    """Renames source columns to canonical fields, e.g. ``{"prompt": "question_text"}``."""

    columns: Mapping[str, str] = field(default_factory=dict)

    def source(self, canonical: str) -> str:
        """The source column that holds the canonical field ``canonical``."""
        return self.columns.get(canonical, canonical)


class Loader(Protocol):
    """Reads one on-disk format."""

    name: str
    description: str

    def sniff(self, path: Path) -> bool:
        """Whether ``path`` looks like this format (cheap: names and first lines only)."""
        ...

    def load(self, path: Path, mapping: ColumnMapping) -> Iterator[Item]:
        """Yield items; raise SuiteError naming file, line and field on bad input."""
        ...


loaders: Registry[Loader] = Registry("loader")
