"""Imaging suite formats (docs/imaging.md):

- ``medbench-image``: MedBench-style JSONL ``{question, answer, img_path}`` (``img_path`` a path
  or a list, relative to the file); options as ``options`` beside the question or inside it
  (``A. ...`` lines). A letter answer gives an MCQ item with attachments, any other answer an
  ``image`` item with the answer as its reference.
- ``image-folder``: a folder with ``labels.csv`` (``path, label[, modality]``): one ``image``
  item per row for the ``classification`` scorer, the classes being the distinct labels.
- ``ct-report-qc``: JSONL ``{report, errors: [{type, location, span?, suggestion?}]}`` (plus
  ``id``, ``language``, ``label_set`` optional): one ``detection`` item per report; error types
  are matched to the label set (default: the eight report error types) through the synonyms.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medsafe.imaging.inject import PROMPTS, label_set
from medsafe.imaging.labels import location_of, parser_for
from medsafe.schema import Item
from medsafe.suites.base import ColumnMapping, loaders
from medsafe.suites.loaders._canonical import Where, build_item
from medsafe.suites.loaders._io import UniqueIds, csv_header, first_line, open_csv, require_items
from medsafe.suites.loaders._language import guess_language
from medsafe.suites.loaders._options import find_options
from medsafe.suites.loaders.jsonl import SUFFIXES, json_records

LABELS_FILE = "labels.csv"
CLASSIFY_PROMPT = {
    "en": "Which of these is shown in the image: {classes}? Answer with one of them only.",
    "zh": "图像中显示的是以下哪一种：{classes}？只回答其中一项。",
    "ja": "画像に示されているのは次のどれですか：{classes}。一つだけ答えてください。",
}


def _first_record(path: Path) -> dict[str, Any] | None:
    if not (path.is_file() and path.suffix.lower() in SUFFIXES):
        return None
    line = first_line(path)
    try:
        record = json.loads(line) if line else None
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


class MedBenchImageLoader:
    """MedBench-style image questions: ``question, answer, img_path``."""

    name = "medbench-image"
    description = "MedBench-style image questions (question, answer, img_path) in JSONL"

    def sniff(self, path: Path) -> bool:
        record = _first_record(path)
        return record is not None and {"question", "answer", "img_path"} <= set(record)

    def load(self, path: Path, mapping: ColumnMapping) -> Iterator[Item]:
        ids = UniqueIds()
        count = 0
        for line, record in json_records(path):
            where = Where(path, line)
            rec = {mapping.columns.get(k, k): v for k, v in record.items()}
            for name in ("question", "answer", "img_path"):
                if name not in rec:
                    raise where.error(f"missing required field {name!r}", name)
            question, answer = str(rec.pop("question")), str(rec.pop("answer")).strip()
            images = rec.pop("img_path")
            canonical: dict[str, Any] = {
                "id": str(rec.pop("id", "") or f"medbench-image/{line}"),
                "language": rec.pop("language", None) or guess_language(question),
                "attachments": images if isinstance(images, list) else [images],
                **rec,
            }
            options = rec.get("options") or find_options(question)
            if options and _letters(answer):
                canonical.update(kind="mcq", prompt=question, options=options, answer=answer)
            else:
                canonical.update(kind="image", prompt=question, reference=answer)
                canonical.pop("options", None)
            item = build_item(canonical, where)
            ids.add(item.id, path, line)
            count += 1
            yield item
        require_items(count, path)


def _letters(answer: str) -> bool:
    letters = "".join(ch for ch in answer.upper() if ch not in " ,，、;；/|")
    return bool(letters) and all("A" <= ch <= "H" for ch in letters)


class ImageFolderLoader:
    """A folder of images with ``labels.csv`` (``path, label[, modality]``)."""

    name = "image-folder"
    description = "a folder of images with labels.csv (path, label[, modality])"

    def sniff(self, path: Path) -> bool:
        labels = path / LABELS_FILE
        if not (path.is_dir() and labels.is_file()):
            return False
        header = csv_header(labels) or []
        return "path" in header and "label" in header

    def load(self, path: Path, mapping: ColumnMapping) -> Iterator[Item]:
        labels_path = path / LABELS_FILE if path.is_dir() else path
        table = open_csv(labels_path)
        path_col, label_col = mapping.source("path"), mapping.source("label")
        modality_col, language_col = mapping.source("modality"), mapping.source("language")
        table.require([path_col, label_col])
        rows = list(table.rows())
        classes = sorted({row[label_col].strip() for _, row in rows if row[label_col].strip()})
        ids = UniqueIds()
        for line, row in rows:
            where = Where(labels_path, line)
            label = row[label_col].strip()
            if not label:
                raise where.error("empty label", label_col)
            if len(classes) < 2:
                raise where.error("labels.csv needs at least two distinct labels", label_col)
            language = (row.get(language_col) or "").strip() or guess_language(" ".join(classes))
            prompt = CLASSIFY_PROMPT.get(language, CLASSIFY_PROMPT["en"])
            canonical = {
                "id": row.get(mapping.source("id"), "").strip() or row[path_col].strip(),
                "kind": "image",
                "language": language,
                "prompt": prompt.format(classes=" / ".join(classes)),
                "attachments": [row[path_col].strip()],
                "classes": classes,
                "label": label,
                "modality": (row.get(modality_col) or "").strip(),
                "category": label,
            }
            item = build_item(canonical, where)
            ids.add(item.id, labels_path, line)
            yield item
        require_items(len(rows), labels_path)


class CtReportQcLoader:
    """CT-report QC: ``report`` and ``errors: [{type, location, span?, suggestion?}]``."""

    name = "ct-report-qc"
    description = "CT-report quality control (report, errors[type, location]) in JSONL"

    def sniff(self, path: Path) -> bool:
        record = _first_record(path)
        return record is not None and {"report", "errors"} <= set(record)

    def load(self, path: Path, mapping: ColumnMapping) -> Iterator[Item]:
        ids = UniqueIds()
        count = 0
        for line, record in json_records(path):
            where = Where(path, line)
            item = _qc_item({mapping.columns.get(k, k): v for k, v in record.items()}, line, where)
            ids.add(item.id, path, line)
            count += 1
            yield item
        require_items(count, path)


def _qc_item(rec: dict[str, Any], line: int, where: Where) -> Item:
    report = rec.pop("report", None)
    if not isinstance(report, str) or not report.strip():
        raise where.error("report must be non-empty text", "report")
    errors = rec.pop("errors", None)
    if not isinstance(errors, list):
        raise where.error("errors must be a list ([] = no error)", "errors")
    language = rec.pop("language", None) or guess_language(report)
    if language not in PROMPTS or not PROMPTS[language]:
        raise where.error(f"no QC prompt for language {language!r} (zh, ja, en)", "language")
    labels = rec.pop("label_set", None) or label_set(language)
    parser = parser_for([str(x) for x in labels])
    expected: set[str] = set()
    locations: dict[str, str] = {}
    for i, error in enumerate(errors):
        field = f"errors[{i}]"
        if not isinstance(error, dict) or not isinstance(error.get("type"), str):
            raise where.error("each error needs a type", field)
        parsed = parser.parse(error["type"])
        if len(parsed.labels) != 1:
            raise where.error(f"type {error['type']!r} names no one label of the label set", field)
        (label,) = parsed.labels
        expected.add(label)
        place = location_of(str(error.get("location") or ""))
        if place is not None:
            locations[label] = place
    joiner = ", " if language == "en" else "、"
    prompt = PROMPTS[language].format(labels=joiner.join(labels), report=report)
    canonical = {
        "id": str(rec.pop("id", "") or f"ct-report-qc/{line}"),
        "kind": "detection",
        "language": language,
        "prompt": prompt,
        "label_set": list(labels),
        "expected": sorted(expected),
        "locations": locations,
        "errors": errors,
        **rec,
    }
    return build_item(canonical, where)


loaders.register(MedBenchImageLoader.name)(MedBenchImageLoader())
loaders.register(ImageFolderLoader.name)(ImageFolderLoader())
loaders.register(CtReportQcLoader.name)(CtReportQcLoader())
