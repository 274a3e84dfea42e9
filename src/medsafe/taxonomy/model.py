"""The two shapes of the taxonomy registry: a :class:`Framework` and its :class:`Category` s."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from medsafe.schema import Language

Provenance = Literal["published", "adapted", "reconstructed"]
"""Where a framework's category list comes from (see docs/taxonomy.md):

- ``published``: ids and names follow the cited source one to one.
- ``adapted``: the list follows the source; the wording (names, descriptions) is ours.
- ``reconstructed``: only the shape (e.g. the number of dimensions) comes from the source; the
  names are our own proposal.
"""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Category(_Frozen):
    """One category of a framework, e.g. AMA principle 3 (``ama-3``)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)+$")
    framework: str
    name: str
    name_zh: str | None = None
    name_ja: str | None = None
    description: str
    aliases: tuple[str, ...] = ()
    """Other spellings found in source data (e.g. a MedES scene written in Chinese)."""

    def label(self, language: Language = "en") -> str:
        """The category's name in ``language``, falling back to English."""
        localized = {"zh": self.name_zh, "ja": self.name_ja}.get(language)
        return localized or self.name

    def matches(self, text: str) -> bool:
        """Whether ``text`` names this category (id, any name or alias; spacing, case and
        slashes ignored)."""
        wanted = _normalise(text)
        names = (self.id, self.name, self.name_zh, self.name_ja, *self.aliases)
        return any(name is not None and _normalise(name) == wanted for name in names)


class Framework(_Frozen):
    """A named taxonomy (``ama``, ``medes``, ``cn-ethics``, ``cn-safety``...)."""

    name: str
    title: str
    description: str
    source: str
    """The citation of the source the categories come from."""
    url: str | None = None
    provenance: Provenance
    provenance_note: str
    categories: tuple[Category, ...]

    def ids(self) -> list[str]:
        """Category ids in their canonical order."""
        return [c.id for c in self.categories]

    def get(self, category_id: str) -> Category | None:
        """The category with this exact id, or ``None``."""
        return next((c for c in self.categories if c.id == category_id), None)

    def resolve(self, text: str) -> Category | None:
        """The category that ``text`` names (id, English/Chinese/Japanese name or alias)."""
        return next((c for c in self.categories if c.matches(text)), None)


_IGNORED = re.compile(r"[\s/／_\-·・]+")


def _normalise(text: str) -> str:
    return _IGNORED.sub("", text).casefold()
