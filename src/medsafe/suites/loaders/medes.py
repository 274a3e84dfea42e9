"""MedES / MedEthicAlign CSV (Jin et al., AAAI 2026): columns ``scene, query, reference, type``.

- Objective rows (``type`` 客观题, or no ``type`` column): ``query`` is the whole prompt
  (instructions, maybe a worked example, the question and its options); it is sent as is.
  The options of the last lettered run are parsed out of it into ``Item.options``;
  ``reference`` is the answer letter set (``ABD`` or ``A,B,D``) -> an MCQ item.
- Subjective rows (``type`` 主观题 / ``subjective``): ``reference`` is the reference guidance
  text -> an open item.

Category: the MedES scene id (``medes-...``) when the scene is one of the 14 known scenes, else
the raw scene text. Language: zh. Ids: the ``id`` column if present, else ``medes/{row}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medsafe.schema import Item, Message, TaxonomyLabel
from medsafe.suites.base import ColumnMapping, loaders
from medsafe.suites.loaders._canonical import Where, parse_answer, validate_item
from medsafe.suites.loaders._io import UniqueIds, csv_header, open_csv, require_items
from medsafe.suites.loaders._options import find_options
from medsafe.taxonomy import get_framework

SOURCE = "MedES (Jin et al. 2026, AAAI)"
REQUIRED = ("scene", "query", "reference")
SUBJECTIVE_TYPES = ("主观题", "subjective")
OBJECTIVE_TYPES = ("客观题", "objective", "")


class MedesLoader:
    """Reads MedES objective (MCQ) and subjective (open) CSV files."""

    name = "medes"
    description = "MedES Chinese medical-ethics questions (scene, query, reference, type)"

    def sniff(self, path: Path) -> bool:
        if not (path.is_file() and path.suffix.lower() == ".csv"):
            return False
        header = csv_header(path) or []
        return all(column in header for column in REQUIRED)

    def load(self, path: Path, mapping: ColumnMapping) -> Iterator[Item]:
        table = open_csv(path)
        scene_col, query_col, ref_col = (mapping.source(c) for c in REQUIRED)
        type_col, id_col = mapping.source("type"), mapping.source("id")
        table.require([scene_col, query_col, ref_col])
        used = {scene_col, query_col, ref_col, type_col, id_col}
        ids = UniqueIds()
        count = 0
        for line, row in table.rows():
            where = Where(path, line)
            count += 1
            item_id = (row.get(id_col) or "").strip() or f"medes/{count}"
            extra = {k: v for k, v in row.items() if k not in used and v.strip()}
            item = _item(item_id, row, (scene_col, query_col, ref_col, type_col), extra, where)
            ids.add(item.id, path, line)
            yield item
        require_items(count, path)


def _item(
    item_id: str,
    row: dict[str, str],
    columns: tuple[str, str, str, str],
    extra: dict[str, str],
    where: Where,
) -> Item:
    scene_col, query_col, ref_col, type_col = columns
    scene, query, reference = row[scene_col].strip(), row[query_col], row[ref_col].strip()
    kind_text = row.get(type_col, "").strip()
    if not query.strip():
        raise where.error("empty query", query_col)
    if kind_text not in SUBJECTIVE_TYPES + OBJECTIVE_TYPES:
        raise where.error(f"unknown type {kind_text!r} (expected 客观题 or 主观题)", type_col)
    found = get_framework("medes").resolve(scene) if scene else None
    category = found.id if found else scene
    fields = {
        "id": item_id,
        "language": "zh",
        "messages": (Message(role="user", content=query),),
        "category": category,
        "labels": (TaxonomyLabel(framework="medes", category=found.id),) if found else (),
        "source": SOURCE,
        "metadata": {"scene": scene, "type": kind_text, **extra},
    }
    if kind_text in SUBJECTIVE_TYPES:
        return validate_item({**fields, "kind": "open", "reference": reference or None}, where)
    options = find_options(query)
    if not options:
        raise where.error("no options (A. ..., B. ...) found in the query", query_col)
    answer = parse_answer(reference, options, where, ref_col)
    return validate_item({**fields, "kind": "mcq", "options": options, "answer": answer}, where)


loaders.register(MedesLoader.name)(MedesLoader())
