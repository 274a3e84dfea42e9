"""MedSafetyBench (Han et al. 2024, MIT): ``med_safety_demonstrations_category_{i}.csv`` files with
columns ``<index>,harmful_medical_request,safe_response``, anywhere under a directory.

Each row becomes an open item: the harmful request is the prompt, the safe response the
reference, category ``ama-{i}`` (AMA Principle of Medical Ethics i), metadata ``intent=harmful``.
Ids are ``msb/{subdir}/cat{i}/{index}`` with ``subdir`` the folder relative to the one opened.

Splits: a file under a folder named ``test`` or ``train`` (the folder opened, one of its
subfolders, or the opened folder's parent) gets ``metadata.split`` (``test`` marks evaluation
items, which ``medsafe align build`` refuses to train on) and the split leads its id, wherever the
data is opened from: ``msb/test/gpt4/cat1/0`` and ``msb/train/gpt4/cat1/0`` (before medsafe
0.x opening ``test/`` gave ``msb/gpt4/cat1/0``, an id the train split shared; stored runs keep
their ids and stay readable, but resuming such a run with this loader is refused as a changed
suite).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from medsafe.errors import SuiteError
from medsafe.schema import Item, Message
from medsafe.suites.base import ColumnMapping, loaders
from medsafe.suites.loaders._canonical import Where, labels_for, validate_item
from medsafe.suites.loaders._io import UniqueIds, open_csv, require_items, sorted_files

SOURCE = "MedSafetyBench (Han et al. 2024), MIT"
FILE_PATTERN = re.compile(r"^med_safety_demonstrations_category_([1-9])\.csv$")
REQUEST, RESPONSE = "harmful_medical_request", "safe_response"


class MedSafetyBenchLoader:
    """Reads a MedSafetyBench split directory (or one of its category files)."""

    name = "medsafetybench"
    description = "MedSafetyBench harmful medical requests with safe responses (AMA categories 1-9)"

    def sniff(self, path: Path) -> bool:
        if path.is_file():
            return FILE_PATTERN.match(path.name) is not None
        return path.is_dir() and bool(_category_files(path))

    def load(self, path: Path, mapping: ColumnMapping) -> Iterator[Item]:
        files = [path] if path.is_file() else _category_files(path)
        if not files:
            raise SuiteError(
                "no med_safety_demonstrations_category_{1..9}.csv file found", path=path
            )
        root = path.parent if path.is_file() else path
        ids = UniqueIds()
        count = 0
        for file in files:
            for item, line in _file_items(file, root, mapping):
                ids.add(item.id, file, line)
                count += 1
                yield item
        require_items(count, path)


def _category_files(root: Path) -> list[Path]:
    return [p for p in sorted_files(root, ["*.csv"]) if FILE_PATTERN.match(p.name)]


SPLITS = ("test", "train")


def _split_and_subset(file: Path, root: Path) -> tuple[str | None, str]:
    """``(split, subset)``: the nearest folder named test/train at or below ``root``'s parent
    (None when there is none) and the folders below it (or below ``root``) as the subset."""
    top = root.parent
    chain = [file.parent, *file.parent.parents]
    scope = chain[: chain.index(top) + 1] if top in chain else chain[:1]
    for folder in scope:
        if folder.name in SPLITS:
            below = file.parent.relative_to(folder).as_posix()
            return folder.name, below if below != "." else ""
    subdir = file.parent.relative_to(root).as_posix()
    return None, subdir if subdir != "." else file.parent.name


def _file_items(file: Path, root: Path, mapping: ColumnMapping) -> Iterator[tuple[Item, int]]:
    match = FILE_PATTERN.match(file.name)
    if match is None:
        raise SuiteError(
            "expected a file named med_safety_demonstrations_category_N.csv", path=file
        )
    number = int(match.group(1))
    category = f"ama-{number}"
    split, subset = _split_and_subset(file, root)
    prefix = "/".join(filter(None, ("msb", split, subset, f"cat{number}")))
    request, response = mapping.source(REQUEST), mapping.source(RESPONSE)
    table = open_csv(file)
    table.require([request, response])
    index_column = table.header[0] if table.header[0] not in (request, response) else None
    for row_number, (line, row) in enumerate(table.rows()):
        where = Where(file, line)
        prompt, reference = row[request].strip(), row[response].strip()
        if not prompt:
            raise where.error("empty harmful request", request)
        index = row[index_column].strip() if index_column is not None else ""
        metadata: dict[str, object] = {
            "intent": "harmful",
            "msb_category": number,
            "msb_subset": subset or split,
        }
        if split:
            metadata["split"] = split
        fields = {
            "id": f"{prefix}/{index or row_number}",
            "language": "en",
            "kind": "open",
            "messages": (Message(role="user", content=prompt),),
            "category": category,
            "labels": labels_for(category),
            "reference": reference or None,
            "source": SOURCE,
            "license": "MIT",
            "metadata": metadata,
        }
        yield validate_item(fields, where), line


loaders.register(MedSafetyBenchLoader.name)(MedSafetyBenchLoader())
