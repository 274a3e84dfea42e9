"""CMMLU (Li et al. 2023) CSV: columns ``<index>,Question,A,B,C,D,Answer``, one file per subject
(the file stem, e.g. ``clinical_knowledge``, is the category) -> zh single-answer MCQ items.
A directory of CMMLU CSV files is read file by file. Ids: ``cmmlu/{subject}/{index}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medsafe.errors import SuiteError
from medsafe.schema import Item
from medsafe.suites.base import ColumnMapping, loaders
from medsafe.suites.loaders._canonical import Where, parse_answer, validate_item
from medsafe.suites.loaders._io import UniqueIds, csv_header, open_csv, require_items, sorted_files
from medsafe.suites.prompting import mcq_messages

COLUMNS = ("Question", "A", "B", "C", "D", "Answer")
SOURCE = "CMMLU (Li et al. 2023)"
LICENSE = "CC-BY-NC-4.0"
"""As the dataset card of haonan-li/cmmlu states."""


def _is_cmmlu(path: Path) -> bool:
    header = csv_header(path) or []
    return all(column in header for column in COLUMNS)


class CmmluLoader:
    """Reads a CMMLU subject CSV or a directory of them."""

    name = "cmmlu"
    description = "CMMLU Chinese multiple-choice questions (one CSV per subject)"

    def sniff(self, path: Path) -> bool:
        if path.is_file():
            return path.suffix.lower() == ".csv" and _is_cmmlu(path)
        return path.is_dir() and any(_is_cmmlu(p) for p in sorted_files(path, ["*.csv"]))

    def load(self, path: Path, mapping: ColumnMapping) -> Iterator[Item]:
        files = [path] if path.is_file() else sorted_files(path, ["*.csv"])
        if not files:
            raise SuiteError("no CMMLU .csv file found", path=path)
        ids = UniqueIds()
        count = 0
        for file in files:
            for line, item in _file_items(file, mapping):
                ids.add(item.id, file, line)
                count += 1
                yield item
        require_items(count, path)


def _file_items(file: Path, mapping: ColumnMapping) -> Iterator[tuple[int, Item]]:
    subject = file.stem
    question_col, *letter_cols, answer_col = (mapping.source(c) for c in COLUMNS)
    table = open_csv(file)
    table.require([question_col, *letter_cols, answer_col])
    index_col = table.header[0] if table.header[0] not in (question_col, *letter_cols) else None
    for position, (line, row) in enumerate(table.rows()):
        where = Where(file, line)
        question = row[question_col].strip()
        if not question:
            raise where.error("empty question", question_col)
        options = {
            letter: row[col].strip()
            for letter, col in zip("ABCD", letter_cols, strict=True)
            if row[col].strip()
        }
        answer = parse_answer(row[answer_col], options, where, answer_col)
        index = (row[index_col].strip() if index_col is not None else "") or str(position)
        fields = {
            "id": f"cmmlu/{subject}/{index}",
            "language": "zh",
            "kind": "mcq",
            "messages": mcq_messages(question, options, "zh", len(answer) > 1),
            "question": question,
            "options": options,
            "answer": answer,
            "category": subject,
            "source": SOURCE,
            "license": LICENSE,
            "metadata": {"subject": subject},
        }
        yield line, validate_item(fields, where)


loaders.register(CmmluLoader.name)(CmmluLoader())
