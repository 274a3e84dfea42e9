"""Image attachments and detection labels of a canonical record (docs/imaging.md).

Attachments are paths (or ``{path, kind, media_type, sha256}`` objects) relative to the suite
file; each must exist. The stored path is the resolved absolute one, the media type comes from
the suffix (or the DICOM preamble) and ``sha256`` is the file's content hash (computed once per
file and checked against a given one). A detection item needs ``label_set`` (distinct labels)
and ``expected`` (a subset; ``[]`` = no problem), given as JSON lists or ``|``-joined text.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from medsafe.errors import SuiteError
from medsafe.imaging.media import identifying_fields, media_type_of
from medsafe.schema import Attachment


class Where(Protocol):
    """Where a record came from (``_canonical.Where``), to raise located errors."""

    path: Path

    def error(self, message: str, field: str | None = None) -> SuiteError:
        """A located SuiteError."""
        ...


_ATTACHMENT_KEYS = {"path", "kind", "media_type", "sha256"}


@functools.lru_cache(maxsize=4096)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """Content hash of a file, cached by path, size and modification time."""
    stat = path.stat()
    return _sha256(str(path), stat.st_size, stat.st_mtime_ns)


def attachments(raw: Any, where: Where) -> tuple[Attachment, ...]:
    """Validated attachments, paths resolved against the suite file's folder."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip().startswith("[") else [raw]
        except json.JSONDecodeError as exc:
            raise where.error(f"not valid JSON: {exc.msg}", "attachments") from None
    if not isinstance(raw, list):
        raise where.error("attachments must be a list of paths or objects", "attachments")
    base = where.path.parent if where.path.is_file() else where.path
    return tuple(
        _attachment(entry, base, where, f"attachments[{i}]") for i, entry in enumerate(raw)
    )


def _attachment(entry: Any, base: Path, where: Where, field: str) -> Attachment:
    given: dict[str, Any]
    if isinstance(entry, str):
        given = {"path": entry}
    elif isinstance(entry, dict) and "path" in entry and set(entry) <= _ATTACHMENT_KEYS:
        given = dict(entry)
    else:
        raise where.error(
            "each attachment must be a path or {path, kind, media_type, sha256}", field
        )
    if not isinstance(given["path"], str) or not given["path"].strip():
        raise where.error("path must be text", f"{field}.path")
    path = (base / given["path"]).resolve()
    if not path.is_file():
        raise where.error(f"no such file: {given['path']} (looked in {base})", f"{field}.path")
    digest = file_sha256(path)
    if given.get("sha256") and str(given["sha256"]).lower() != digest:
        raise where.error(f"sha256 does not match the file ({digest})", f"{field}.sha256")
    media = given.get("media_type") or media_type_of(path)
    kind = given.get("kind", "image")
    if kind not in ("image", "file"):
        raise where.error(f"kind must be image or file, got {kind!r}", f"{field}.kind")
    if kind == "image" and media is None:
        raise where.error(
            "not a PNG, JPEG or DICOM file (set media_type or kind: file)", f"{field}.path"
        )
    return Attachment(kind=kind, path=str(path), media_type=media, sha256=digest)


def _labels(value: Any, where: Where, field: str) -> list[str]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise where.error(f"not valid JSON: {exc.msg}", field) from None
        else:
            value = [part.strip() for part in text.split("|") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise where.error("expected a list of labels (JSON list or |-joined text)", field)
    return [v.strip() for v in value]


def detection_metadata(metadata: Mapping[str, Any], where: Where) -> dict[str, Any]:
    """``metadata`` with ``label_set`` and ``expected`` checked and normalised to lists."""
    out = dict(metadata)
    if "label_set" not in out:
        raise where.error("a detection item needs a label_set", "label_set")
    label_set = _labels(out["label_set"], where, "label_set")
    if not label_set or len(set(label_set)) != len(label_set):
        raise where.error("label_set must list distinct labels", "label_set")
    if "expected" not in out:
        raise where.error("a detection item needs expected ([] = no problem)", "expected")
    expected = _labels(out["expected"], where, "expected")
    unknown = sorted(set(expected) - set(label_set))
    if unknown:
        raise where.error(f"expected labels {unknown} are not in the label_set", "expected")
    out["label_set"] = label_set
    out["expected"] = sorted(set(expected))
    return out


def deidentification_note(found: tuple[Attachment, ...], where: Where) -> dict[str, list[str]]:
    """Per DICOM attachment (by file name), the identifying header fields it fills, all of which
    are left out of what is sent (only re-encoded pixels leave); stored with the item."""
    note: dict[str, list[str]] = {}
    for i, attachment in enumerate(found):
        if attachment.media_type != "application/dicom":
            continue
        try:
            fields = identifying_fields(Path(attachment.path))
        except Exception as exc:  # pydicom raises many kinds on a broken file
            raise where.error(
                f"not a readable DICOM file: {exc}", f"attachments[{i}].path"
            ) from None
        note[Path(attachment.path).name] = list(fields)
    return note
