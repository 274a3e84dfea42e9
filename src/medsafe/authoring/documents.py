"""Read a normative document (txt, md, html, pdf, docx) into plain text and its metadata.

Metadata (``title``, ``issuer``, ``jurisdiction``, ``language``, ``date``, ``license``, ``url``)
comes, later ones winning, from: a front-matter block at the top of a txt/md file (``---``
lines around ``key: value`` lines, removed from the text), a sidecar ``FILE.meta.json``, and
what the caller gives (``medsafe corpus add --title ...``). A missing language is guessed from
the script (kana: ja, Han: zh, else en); a missing title is the file name.
"""

from __future__ import annotations

import json
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from medsafe.errors import SuiteError

SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
META_KEYS = ("title", "issuer", "jurisdiction", "language", "date", "license", "url")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_BLOCK_TAGS = {
    "p",
    "div",
    "br",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "section",
    "article",
    "pre",
    "blockquote",
    "dt",
    "dd",
    "table",
    "ul",
    "ol",
}
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


@dataclass(frozen=True)
class DocumentText:
    """A document's plain text (what section offsets refer to) and its metadata."""

    path: Path
    text: str
    meta: dict[str, str]


class _TextOfHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self.skip:
            self.skip -= 1
        elif tag == "title":
            self._in_title = False
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self.skip:
            self.parts.append(data)


def _clean(text: str) -> str:
    """NFC, LF line ends, no trailing spaces, at most one blank line in a row."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [ln.rstrip() for ln in text.split("\n")]
    out: list[str] = []
    for ln in lines:
        if ln or (out and out[-1]):
            out.append(ln)
    return "\n".join(out).strip("\n") + "\n"


def _front_matter(text: str, path: Path) -> tuple[dict[str, str], str]:
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---\n", 4)
    if end < 0:
        raise SuiteError("front matter opened with '---' is never closed", path=path, line=1)
    meta: dict[str, str] = {}
    for n, line in enumerate(text[4:end].split("\n"), start=2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise SuiteError("expected 'key: value'", path=path, line=n, field="front matter")
        meta[key.strip().lower()] = value.strip().strip("'\"")
    return meta, text[end + 5 :]


def _pdf_text(path: Path) -> str:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:  # pragma: no cover - pypdf is a dependency
        raise SuiteError("reading PDF needs pypdf (pip install pypdf)", path=path) from None
    try:
        reader = PdfReader(str(path))
        return "\n".join(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, ValueError, KeyError) as exc:
        raise SuiteError(f"not a readable PDF ({exc})", path=path) from None


def _docx_text(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            root = ElementTree.fromstring(archive.read("word/document.xml"))
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError) as exc:
        raise SuiteError(f"not a readable .docx ({exc})", path=path) from None
    paragraphs = ["".join(t.text or "" for t in p.iter(f"{_W}t")) for p in root.iter(f"{_W}p")]
    return "\n".join(paragraphs)


def guess_language(text: str) -> str:
    """``ja`` if the text has kana, else ``zh`` if it has Han characters, else ``en``."""
    if _KANA.search(text):
        return "ja"
    return "zh" if _HAN.search(text) else "en"


def read_document(path: Path, given: dict[str, str] | None = None) -> DocumentText:
    """The text and metadata of one document; SuiteError naming the file when unreadable."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise SuiteError(
            f"unsupported document type {suffix!r} (use {', '.join(SUFFIXES)})", path=path
        )
    meta: dict[str, str] = {}
    if suffix == ".pdf":
        raw = _pdf_text(path)
    elif suffix == ".docx":
        raw = _docx_text(path)
    else:
        try:
            raw = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SuiteError(f"not UTF-8 text (byte {exc.start})", path=path) from None
        except OSError as exc:
            raise SuiteError(f"cannot read ({exc.strerror})", path=path) from None
        raw = raw.replace("\r\n", "\n")
        if suffix in (".html", ".htm"):
            parser = _TextOfHtml()
            parser.feed(raw)
            if parser.title.strip():
                meta["title"] = parser.title.strip()
            raw = "".join(parser.parts)
        else:
            front, raw = _front_matter(raw, path)
            meta.update(front)
    meta.update(_sidecar(path))
    meta.update({k: v for k, v in (given or {}).items() if v})
    text = _clean(raw)
    if not text.strip():
        raise SuiteError("no text found in the document", path=path)
    meta.setdefault("title", path.stem)
    meta.setdefault("language", guess_language(text))
    if meta["language"] not in ("zh", "ja", "en"):
        raise SuiteError(
            f"language must be zh, ja or en, got {meta['language']!r}", path=path, field="language"
        )
    unknown = sorted(set(meta) - set(META_KEYS))
    if unknown:
        raise SuiteError(
            f"unknown metadata key(s) {', '.join(unknown)} (known: {', '.join(META_KEYS)})",
            path=path,
            field=unknown[0],
        )
    return DocumentText(path, text, meta)


def _sidecar(path: Path) -> dict[str, str]:
    side = path.with_name(path.name + ".meta.json")
    if not side.exists():
        return {}
    try:
        data: Any = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SuiteError(f"not a JSON object ({exc})", path=side) from None
    if not isinstance(data, dict):
        raise SuiteError("expected a JSON object", path=side)
    return {str(k).lower(): str(v) for k, v in data.items() if v is not None}


def document_paths(path: Path) -> list[Path]:
    """``path`` itself, or the supported documents under a folder (recursively, sorted)."""
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not found:
            raise SuiteError(f"no documents ({', '.join(SUFFIXES)}) in the folder", path=path)
        return found
    if not path.exists():
        raise SuiteError("no such file or folder", path=path)
    return [path]
