"""The frameworks bundled in ``taxonomy/data/*.json``, loaded once and looked up by name or id."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from medsafe.errors import RegistryError
from medsafe.taxonomy.model import Category, Framework

DATA_DIR = Path(__file__).parent / "data"


@cache
def _frameworks() -> dict[str, Framework]:
    loaded: dict[str, Framework] = {}
    for path in sorted(DATA_DIR.glob("*.json")):
        framework = Framework.model_validate(json.loads(path.read_text(encoding="utf-8")))
        _check(framework, path)
        loaded[framework.name] = framework
    return loaded


def _check(framework: Framework, path: Path) -> None:
    """Data-file invariants pydantic cannot express: ids unique and prefixed by the framework."""
    seen: set[str] = set()
    for cat in framework.categories:
        if cat.framework != framework.name or not cat.id.startswith(f"{framework.name}-"):
            raise ValueError(f"{path}: category {cat.id!r} does not belong to {framework.name!r}")
        if cat.id in seen:
            raise ValueError(f"{path}: category id {cat.id!r} appears twice")
        seen.add(cat.id)


@cache
def _index() -> dict[str, Category]:
    index: dict[str, Category] = {}
    for framework in _frameworks().values():
        for cat in framework.categories:
            if cat.id in index:
                raise ValueError(f"category id {cat.id!r} is used by two frameworks")
            index[cat.id] = cat
    return index


def frameworks() -> list[Framework]:
    """Every bundled framework, sorted by name."""
    return [f for _, f in sorted(_frameworks().items())]


def get_framework(name: str) -> Framework:
    """The framework called ``name``; :class:`RegistryError` listing known names if none."""
    try:
        return _frameworks()[name]
    except KeyError:
        known = ", ".join(sorted(_frameworks()))
        raise RegistryError(f"unknown taxonomy framework {name!r} (known: {known})") from None


def category(framework: str, category_id: str) -> Category:
    """The category ``category_id`` of ``framework``; :class:`RegistryError` if absent."""
    fw = get_framework(framework)
    found = fw.get(category_id)
    if found is None:
        raise RegistryError(
            f"framework {framework!r} has no category {category_id!r} "
            f"(known: {', '.join(fw.ids())})"
        )
    return found


def framework_of(category_id: str) -> str | None:
    """The name of the framework that defines ``category_id``, or ``None``."""
    found = _index().get(category_id)
    return found.framework if found else None


def find_category(category_id: str) -> Category | None:
    """The category with this id in any framework, or ``None``."""
    return _index().get(category_id)


def ama_principle(i: int) -> Category:
    """AMA Principle of Medical Ethics ``i`` (1-9), i.e. MedSafetyBench category ``i``."""
    if isinstance(i, bool) or not isinstance(i, int) or not 1 <= i <= 9:
        raise RegistryError(f"AMA principles are numbered 1-9, got {i!r}")
    return category("ama", f"ama-{i}")
