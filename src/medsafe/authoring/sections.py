"""Split a normative document's text into sections that keep their numbering.

A *section* is one numbered provision: an article (``第三条``, ``第3条``, ``第3条の2``,
``Article 3``, ``Section 2.1``, ``Principle IV``) or a numbered clause (``1.``, ``2)``,
``1.2``). Chapters and parts (``第二章``, ``第2章``, ``Chapter 2``, ``Part II``) and Markdown
headings without an article number do not start a section: they become the ``chapter`` of the
sections under them. Paragraphs (項: ``２ ...``) and items (号: ``一 ...``) stay inside their
article, as in the source; a caption line just before an article (``（目的）``) is part of it.
Text before the first article is the ``preamble`` section.

Offsets are character offsets into the document text given (``text[start:end] == section.text``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUM = r"[0-9０-９一二三四五六七八九十百千零〇两]+"
CHAPTER = re.compile(
    rf"^(第{_NUM}[章节節编編部款]|(?:Chapter|CHAPTER|Part|PART)\s+[0-9IVXLC]+)(?=[\s:.　]|$)"
)
ARTICLE = re.compile(
    rf"^(第{_NUM}条(?:[の之]{_NUM})?"
    r"|(?:Article|ARTICLE|Section|SECTION|Principle|PRINCIPLE)\s+[0-9IVXLC]+(?:\.[0-9]+)*"
    r"|[0-9]+(?:\.[0-9]+)+|[0-9]+[.)])(?=[\s:.　]|$)"
)
_HEADING = re.compile(r"^#{1,6}\s+")
_CAPTION = re.compile(r"^[（(][^（()）]{1,30}[）)]$")
"""An article caption on its own line (``（目的）``): it belongs to the article after it."""


@dataclass(frozen=True)
class Section:
    """One numbered provision of a document."""

    number: str
    """Its own number as written (``第三条``, ``4.``, ``Article 2``; ``preamble``)."""
    chapter: str
    """The chapter heading it sits under ('' when none)."""
    start: int
    end: int
    text: str

    @property
    def key(self) -> str:
        """Stable id within the document: chapter number and own number (``第二章/第四条``)."""
        head = CHAPTER.match(self.chapter)
        prefix = head.group(1) if head else self.chapter
        number = self.number.rstrip(".)")
        return f"{prefix}/{number}" if prefix else number


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_sections(text: str) -> list[Section]:
    """The sections of ``text`` in document order (see the module docstring)."""
    sections: list[Section] = []
    chapter = ""
    current: tuple[str, str, int] | None = ("preamble", "", 0)
    offset = 0
    caption_at: int | None = None

    def close(at: int) -> None:
        if current is None:
            return
        number, chap, begin = current
        start, end = _trimmed(text, begin, at)
        if end > start and not (number == "preamble" and _only_headings(text[start:end])):
            sections.append(Section(number, chap, start, end, text[start:end]))

    for line in text.splitlines(keepends=True):
        body = _HEADING.sub("", line).strip()
        is_heading = bool(_HEADING.match(line))
        chap = CHAPTER.match(body)
        art = ARTICLE.match(body)
        if chap and not art:
            close(offset)
            chapter, current = body, None
        elif art and not (is_heading and not art.group(1).startswith(("第", "A", "S", "P"))):
            start = offset if caption_at is None else caption_at
            close(start)
            current = (art.group(1), chapter, start)
        elif is_heading and current is not None and current[0] != "preamble":
            close(offset)  # an unnumbered heading ends the article; its text is the chapter
            chapter, current = body, None
        elif is_heading and current is None:
            chapter = body
        elif current is None and body:
            current = ("preamble", chapter, offset)
        if _CAPTION.match(body):
            caption_at = offset if caption_at is None else caption_at
        elif body:
            caption_at = None
        offset += len(line)
    close(offset)
    return sections


def _only_headings(block: str) -> bool:
    return all(not ln.strip() or _HEADING.match(ln) for ln in block.splitlines())
