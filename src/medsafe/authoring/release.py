"""A generated release on disk, its manifest, and ``medsafe generate diff``.

A release folder holds:

- ``suite.jsonl`` -- the ``open`` and ``mcq`` items (a suite for ``medsafe run``);
- ``seeds.jsonl`` -- red-team seeds (``medsafe redteam build seeds.jsonl ...``);
- ``rules.jsonl`` -- every rule kept, with its source span;
- ``rejected.jsonl`` -- what was dropped (stage ``rules``, ``items`` or ``validate``) and why;
- ``dedup.jsonl`` -- what deduplication removed, the item it duplicates, stage and similarity;
- ``manifest.json`` -- format ``medsafe-authoring-release/1``: ``release`` (16 hex digits of
  the hash of the suite, seeds and rules), corpus name and hash, every section's hash,
  generator and validator specs, the prompts' hashes, counts per kind, scene and language.

Each file is written to a temporary name and renamed; the manifest is written last, so a
folder with a manifest is a complete release.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medsafe.authoring.items import Generated, Seed
from medsafe.authoring.prompts import prompt_hashes
from medsafe.authoring.rules import Rejection, Rule
from medsafe.errors import SuiteError
from medsafe.schema import Item

FORMAT = "medsafe-authoring-release/1"


@dataclass
class Release:
    """Everything a generation made."""

    suite: str
    corpus: str
    corpus_hash: str
    sections: dict[str, str]
    generator: str
    validator: str | None
    taxonomy: str
    rules: list[Rule]
    entries: list[Generated]
    rejected: list[Rejection] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    review: dict[str, int] = field(default_factory=dict)
    """With ``--on-fail review``: items restored by reviewers and items awaiting review."""
    manifest: dict[str, Any] = field(default_factory=dict)


def _line(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


def _write(path: Path, lines: Iterable[str]) -> str:
    text = "".join(f"{ln}\n" for ln in lines)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _counts(entries: list[Generated]) -> dict[str, dict[str, int]]:
    kinds = Counter("redteam" if isinstance(e, Seed) else e.kind for e in entries)
    scenes = Counter(e.category for e in entries)
    langs = Counter(e.language for e in entries)
    per = Counter(
        f"{'redteam' if isinstance(e, Seed) else e.kind}/{e.category}/{e.language}" for e in entries
    )
    return {
        "kind": dict(sorted(kinds.items())),
        "scene": dict(sorted(scenes.items())),
        "language": dict(sorted(langs.items())),
        "kind/scene/language": dict(sorted(per.items())),
    }


def suite_record(item: Item) -> dict[str, Any]:
    """The canonical JSONL record of an item (docs/formats.md): an MCQ gives its question and
    options (the loader renders the prompt), other kinds their messages."""
    data = item.model_dump(mode="json", exclude={"suite"})
    if item.kind == "mcq":
        data.pop("messages")
    return {k: v for k, v in data.items() if v not in (None, [], {}, "")}


def write_release(release: Release, out: Path) -> None:
    """Write the release folder (see the module docstring); fills ``release.manifest``."""
    out.mkdir(parents=True, exist_ok=True)
    items = [e for e in release.entries if not isinstance(e, Seed)]
    seeds = [e for e in release.entries if isinstance(e, Seed)]
    hashes = {
        "suite.jsonl": _write(out / "suite.jsonl", (_line(suite_record(i)) for i in items)),
        "seeds.jsonl": _write(out / "seeds.jsonl", (_line(s.to_json()) for s in seeds)),
        "rules.jsonl": _write(out / "rules.jsonl", (_line(r.to_json()) for r in release.rules)),
    }
    _write(out / "rejected.jsonl", (_line(asdict(r)) for r in release.rejected))
    _write(out / "dedup.jsonl", (_line(r) for r in release.removed))
    digest = hashlib.sha256("".join(hashes[k] for k in sorted(hashes)).encode()).hexdigest()
    release.manifest = {
        "format": FORMAT,
        "release": digest[:16],
        "suite": release.suite,
        "corpus": release.corpus,
        "corpus_hash": release.corpus_hash,
        "sections": release.sections,
        "generator": release.generator,
        "validator": release.validator,
        "taxonomy": release.taxonomy,
        "prompts": prompt_hashes(("rules", "items", "validate")),
        "files": hashes,
        "counts": {
            "rules": len(release.rules),
            "items": len(items),
            "seeds": len(seeds),
            "rejected": len(release.rejected),
            "deduplicated": len(release.removed),
            **release.review,
            **_counts(release.entries),
        },
    }
    _write(out / "manifest.json", [json.dumps(release.manifest, ensure_ascii=False, indent=2)])


def read_manifest(folder: Path) -> dict[str, Any]:
    """A release's manifest; SuiteError naming the file when missing or not a release."""
    path = folder / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(f"not a release folder ({exc.strerror})", path=path) from None
    except json.JSONDecodeError as exc:
        raise SuiteError(f"not JSON ({exc.msg})", path=path, line=exc.lineno) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SuiteError(f"expected format {FORMAT!r}", path=path, field="format")
    return data


def _sources(folder: Path) -> dict[str, str]:
    """entry id -> section ref, for the items and seeds of a release."""
    found: dict[str, str] = {}
    for name in ("suite.jsonl", "seeds.jsonl"):
        path = folder / name
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SuiteError(f"a release needs it ({exc.strerror})", path=path) from None
        for n, raw in enumerate(text.splitlines(), start=1):
            if raw.strip():
                try:
                    obj = json.loads(raw)
                    found[str(obj["id"])] = str(obj["metadata"]["section_ref"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise SuiteError(
                        "expected an item with metadata.section_ref", path=path, line=n
                    ) from None
    return found


@dataclass(frozen=True)
class ReleaseDiff:
    """What changed between two releases."""

    changed_sections: list[str]
    removed_sections: list[str]
    added_sections: list[str]
    stale_items: dict[str, str]
    """Items of OLD whose source section changed or is gone -> ``changed`` / ``removed``."""
    new_items: list[str]
    """Items of NEW that OLD did not have."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def diff_releases(old: Path, new: Path) -> ReleaseDiff:
    """Items whose source rules changed: compare the section hashes of two releases."""
    a, b = read_manifest(old)["sections"], read_manifest(new)["sections"]
    changed = sorted(ref for ref in a if ref in b and a[ref] != b[ref])
    removed = sorted(ref for ref in a if ref not in b)
    added = sorted(ref for ref in b if ref not in a)
    old_items, new_items = _sources(old), _sources(new)
    stale = {
        item: ("changed" if ref in b else "removed")
        for item, ref in sorted(old_items.items())
        if ref in changed or ref in removed
    }
    return ReleaseDiff(changed, removed, added, stale, sorted(set(new_items) - set(old_items)))
