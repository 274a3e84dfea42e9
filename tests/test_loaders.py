"""Suite loaders: every format on small fixtures, shape detection, located errors, real data."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import medsafe.suites.catalog as catalog
import medsafe.suites.loaders.parquetfile as parquetfile
from medsafe.errors import SuiteError
from medsafe.schema import Item, Message, TaxonomyLabel
from medsafe.suites import (
    ColumnMapping,
    bundled_suites,
    detect_format,
    formats,
    load_items,
    open_suite,
    parse_mapping,
)
from medsafe.suites.loaders._language import guess_language
from medsafe.suites.loaders._options import find_options
from medsafe.suites.prompting import mcq_messages
from tests.conftest import shared_data

FIXTURES = Path(__file__).parent / "fixtures" / "suites"
LLAMA2_COUNTS = (59, 57, 31, 56, 50, 24, 61, 64, 48)


def by_id(items: list[Item]) -> dict[str, Item]:
    return {item.id: item for item in items}


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def error_of(ref: Path, fmt: str | None = None, mapping: ColumnMapping | None = None) -> SuiteError:
    with pytest.raises(SuiteError) as info:
        load_items(ref, fmt, mapping)
    return info.value


def assert_located(err: SuiteError, path: Path, line: int | None, field: str | None) -> None:
    """The message names the file, the line and the field."""
    text = str(err)
    assert path.name in text
    assert err.line == line
    if line is not None:
        assert f"{path.name}:{line}" in text
    assert err.field == field
    if field is not None:
        assert f"field '{field}'" in text


def jsonl(tmp_path: Path, *records: dict[str, Any] | str) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    return write(tmp_path / "suite.jsonl", "\n".join(lines) + "\n")


MCQ = {"id": "q1", "question": "Pick one", "options": {"A": "x", "B": "y"}, "answer": "A"}


# --- registry and detection ------------------------------------------------------------------


def test_every_format_is_registered() -> None:
    assert set(formats()) >= {
        "jsonl", "csv", "parquet", "medsafetybench", "medes", "healthbench", "cmb", "cmmlu",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("canonical.jsonl", "jsonl"),
        ("canonical.csv", "csv"),
        ("healthbench.jsonl", "healthbench"),
        ("medes.csv", "medes"),
        ("cmb.json", "cmb"),
        ("cmmlu", "cmmlu"),
        ("cmmlu/clinical_knowledge.csv", "cmmlu"),
        ("msb_nested", "medsafetybench"),
        ("msb_nested/part_b/med_safety_demonstrations_category_1.csv", "medsafetybench"),
    ],
)
def test_format_is_detected_from_shape(ref: str, expected: str) -> None:
    assert detect_format(FIXTURES / ref) == expected
    assert open_suite(FIXTURES / ref).format == expected


def test_undetectable_file_lists_the_formats(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.txt", "hello\n")
    err = error_of(path)
    assert "cannot tell the format" in str(err) and "medsafetybench" in str(err)
    assert "notes.txt" in str(err)


def test_unknown_format_lists_the_formats() -> None:
    with pytest.raises(SuiteError, match=r"unknown format 'xml' \(known formats: cmb, cmmlu"):
        open_suite(FIXTURES / "canonical.jsonl", fmt="xml")


def test_missing_reference_names_it_and_the_bundled_suites() -> None:
    with pytest.raises(SuiteError, match="no such file, directory or bundled suite") as info:
        open_suite("does-not-exist.jsonl")
    assert "does-not-exist.jsonl" in str(info.value)


def test_explicit_format_overrides_detection() -> None:
    # a MedES file read as canonical CSV fails because it has no id column
    err = error_of(FIXTURES / "medes.csv", fmt="csv")
    assert_located(err, FIXTURES / "medes.csv", 1, "id")


# --- canonical JSONL ---------------------------------------------------------------------------


def test_canonical_jsonl_items() -> None:
    source = open_suite(FIXTURES / "canonical.jsonl")
    items = by_id(list(source.items()))
    assert source.name == "canonical"
    assert all(item.suite == "canonical" for item in items.values())
    mcq = items["mcq-en-1"]
    assert mcq.kind == "mcq" and mcq.answer == "B" and mcq.question is not None
    assert mcq.messages == mcq_messages(mcq.question, mcq.options, "en", multi=False)
    assert mcq.labels == (TaxonomyLabel(framework="ama", category="ama-4"),)
    multi = items["mcq-zh-1"]
    assert multi.answer == "ACD" and multi.language == "zh"
    assert multi.messages == mcq_messages(multi.question or "", multi.options, "zh", multi=True)
    assert multi.labels == (TaxonomyLabel(framework="cn-ethics", category=multi.category),)
    ja = items["open-ja-1"]
    assert (ja.kind, ja.language, ja.metadata) == ("open", "ja", {"intent": "benign"})
    assert ja.messages == (Message(role="user", content=ja.last_user_text()),)


def test_canonical_jsonl_optional_fields() -> None:
    items = by_id(load_items(FIXTURES / "canonical.jsonl"))
    chat = items["open-en-2"]
    assert chat.messages[0] == Message(
        role="system", content="You are a careful clinical assistant."
    )
    assert [m.role for m in chat.messages] == ["system", "user"]
    assert chat.metadata == {"difficulty": "hard"}  # unknown key kept
    assert (chat.source, chat.license, chat.category) == (
        "medsafe tests",
        "CC-BY-4.0",
        "end-of-life",
    )
    assert chat.labels == (
        TaxonomyLabel(framework="medes", category="medes-hospice-palliative-care"),
    )
    rubric = items["rubric-en-1"]
    assert rubric.kind == "rubric"
    assert [(c.points, c.tags) for c in rubric.rubric] == [(10.0, ("axis:accuracy",)), (-8.0, ())]
    dialogue = items["dialogue-zh-1"]
    assert (dialogue.kind, dialogue.strategy, dialogue.turns) == ("dialogue", "roleplay", 3)
    assert dialogue.seed and not dialogue.messages


def test_items_are_lazy_and_stop_at_the_first_bad_record(tmp_path: Path) -> None:
    path = jsonl(tmp_path, MCQ, {**MCQ, "id": "q2"}, "{broken")
    seen = []
    with pytest.raises(SuiteError) as info:
        for item in open_suite(path).items():
            seen.append(item.id)
    assert seen == ["q1", "q2"]
    assert_located(info.value, path, 3, None)


def test_mcq_without_question_keeps_the_given_prompt(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path, {"id": "p", "prompt": "Q?\nA. x\nB. y", "options": ["x", "y"], "answer": "b"}
    )
    (item,) = load_items(path)
    assert (item.kind, item.question, item.answer, item.options) == (
        "mcq",
        None,
        "B",
        {"A": "x", "B": "y"},
    )
    assert item.last_user_text() == "Q?\nA. x\nB. y"


OPEN = {"id": "o1", "prompt": "Describe the fundus photo."}
FUNDUS = [{"path": "images/fundus.png", "media_type": "image/png"}]


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ({**OPEN, "kind": "image"}, "attachments", "an image item needs at least one attachment"),
        ({**OPEN, "kind": "detection"}, "label_set", "a detection item needs a label_set"),
        ({**OPEN, "kind": "image", "attachments": FUNDUS}, "attachments[0].path", "no such file"),
        ({**OPEN, "attachments": FUNDUS}, "attachments[0].path", "no such file"),
        ({**MCQ, "attachments": [3]}, "attachments[0]", "each attachment must be a path"),
    ],
)
def test_image_kinds_and_attachments_are_checked(
    tmp_path: Path, record: dict[str, Any], field: str, message: str
) -> None:
    path = jsonl(tmp_path, MCQ | {"id": "ok"}, record)
    err = error_of(path)
    assert_located(err, path, 2, field)
    assert message in str(err)


def test_missing_attachment_located_in_csv_too(tmp_path: Path) -> None:
    path = write(
        tmp_path / "suite.csv",
        'id,prompt,attachments\no1,Look,"[{""path"": ""x.png""}]"\n',
    )
    assert_located(error_of(path), path, 2, "attachments[0].path")


def test_empty_attachments_are_accepted(tmp_path: Path) -> None:
    (item,) = load_items(jsonl(tmp_path, {**OPEN, "attachments": []}))
    assert item.kind == "open" and item.attachments == ()


# --- canonical JSONL errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ({"question": "q", "options": {"A": "x"}, "answer": "A"}, "id", "missing required field"),
        ({**MCQ, "answer": "C"}, "answer", "not among the item's options (AB)"),
        ({**MCQ, "answer": "A1"}, "answer", "must be option letters"),
        ({**MCQ, "language": "fr"}, "language", "unknown language 'fr'"),
        ({**MCQ, "kind": "essay"}, "kind", "unknown kind 'essay'"),
        ({**MCQ, "options": {"Z": "x"}}, "options", "option letters must be A-H"),
        ({**MCQ, "options": "A: x"}, "options", "not valid JSON"),
        ({**MCQ, "answer": None}, "answer", "needs an answer"),
        ({**MCQ, "prompt": "also a prompt"}, "question", "either question or prompt"),
        ({"id": "o"}, "prompt", "needs a prompt or messages"),
        (
            {"id": "o", "prompt": "p", "messages": [{"role": "user", "content": "m"}]},
            "messages",
            "not both",
        ),
        (
            {"id": "o", "messages": [{"role": "doctor", "content": "m"}]},
            "messages[0].role",
            "unknown role",
        ),
        ({"id": "o", "messages": []}, "messages", "empty"),
        ({"id": "o", "prompt": "p", "turns": 0}, "turns", "whole number >= 1"),
        (
            {"id": "o", "prompt": "p", "labels": [{"framework": "ama"}]},
            "labels[0]",
            "framework, category",
        ),
        (
            {"id": "o", "prompt": "p", "rubric": [{"criterion": "c", "points": "many"}]},
            "rubric[0].points",
            "number",
        ),
        ({"id": "o", "prompt": "p", "metadata": [1]}, "metadata", "JSON object"),
        ({"id": "d", "kind": "dialogue", "strategy": "s"}, "seed", "needs a seed"),
        ({"id": "r", "kind": "rubric", "prompt": "p"}, "rubric", "at least one rubric criterion"),
    ],
)
def test_bad_records_name_file_line_and_field(
    tmp_path: Path, record: dict[str, Any], field: str, message: str
) -> None:
    path = jsonl(
        tmp_path, {"id": "ok", "prompt": "fine"}, {k: v for k, v in record.items() if v is not None}
    )
    err = error_of(path)
    assert_located(err, path, 2, field)
    assert message in str(err)


def test_bad_json_line(tmp_path: Path) -> None:
    path = jsonl(tmp_path, MCQ, "", '{"id": "q3", "prompt": }')
    err = error_of(path)
    assert_located(err, path, 3, None)
    assert "not valid JSON" in str(err)


def test_json_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = jsonl(tmp_path, '["q1"]')
    assert "expected a JSON object" in str(error_of(path))


def test_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    path = jsonl(tmp_path, MCQ, {"id": "other", "prompt": "p"}, "", {**MCQ})
    err = error_of(path)
    assert_located(err, path, 4, "id")
    assert "duplicate id 'q1' (first used on line 1)" in str(err)


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.jsonl", "\n  \n")
    err = error_of(path)
    assert_located(err, path, None, None)
    assert "contains no items" in str(err)


def test_non_utf8_line_is_located(tmp_path: Path) -> None:
    good = json.dumps(MCQ).encode() + b"\n"
    bad = '{"id": "q2", "prompt": "caf\u00e9"}'.encode("latin-1") + b"\n"
    path = write(tmp_path / "latin.jsonl", good + bad)
    err = error_of(path)
    assert_located(err, path, 2, None)
    assert "not valid UTF-8" in str(err)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "bom.jsonl", b"\xef\xbb\xbf" + json.dumps(MCQ).encode() + b"\n")
    assert [i.id for i in load_items(path)] == ["q1"]


# --- canonical CSV -----------------------------------------------------------------------------


def test_canonical_csv_items() -> None:
    items = by_id(load_items(FIXTURES / "canonical.csv"))
    first = items["csv-mcq-1"]
    assert first.options == {"A": "Justice", "B": "Autonomy", "C": "Fidelity", "D": "Veracity"}
    assert (first.kind, first.answer, first.category) == ("mcq", "A", "ama-9")
    second = items["csv-mcq-2"]
    assert (second.answer, second.language, second.metadata) == ("AC", "zh", {"difficulty": 2})
    third = items["csv-open-1"]
    assert third.kind == "open" and third.reference == "Ask the friend's consent first."
    assert third.metadata == {"note": "line one\nline two"}  # unknown column kept, newline intact


def test_csv_options_as_json_column() -> None:
    (item,) = load_items(FIXTURES / "canonical_options_json.csv")
    assert (item.language, sorted(item.options), item.answer) == ("ja", ["A", "B", "C"], "A")


def test_csv_column_mapping(tmp_path: Path) -> None:
    path = write(
        tmp_path / "mapped.csv",
        "qid,question_text,dim,lang\nm1,Is it safe to double my dose?,cn-safety-medication,en\n",
    )
    mapping = parse_mapping("id=qid, prompt=question_text,category=dim,language=lang")
    (item,) = load_items(path, mapping=mapping)
    assert (item.id, item.kind, item.category) == ("m1", "open", "cn-safety-medication")
    assert item.last_user_text() == "Is it safe to double my dose?"
    assert item.metadata == {}


def test_csv_mapping_to_a_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path / "mapped.csv", "id,prompt\nm1,p\n")
    err = error_of(path, mapping=parse_mapping("prompt=question_text"))
    assert_located(err, path, 1, "question_text")
    assert "mapped to 'prompt'" in str(err)


def test_csv_missing_id_column(tmp_path: Path) -> None:
    path = write(tmp_path / "noid.csv", "prompt,category\np,ama-1\n")
    err = error_of(path)
    assert_located(err, path, 1, "id")
    assert "missing column 'id'" in str(err)


def test_csv_lines_are_physical_lines(tmp_path: Path) -> None:
    text = 'id,prompt,answer\na,"two\nlines",\nb,three,\nc,"four\n\nlines",Z\n'
    path = write(tmp_path / "lines.csv", text)
    err = error_of(path)
    assert_located(err, path, 5, "answer")  # record c starts on physical line 5


def test_csv_errors(tmp_path: Path) -> None:
    empty = write(tmp_path / "empty.csv", "")
    assert "file is empty" in str(error_of(empty, fmt="csv"))
    header_only = write(tmp_path / "header.csv", "id,prompt\n")
    assert "contains no items" in str(error_of(header_only))
    ragged = write(tmp_path / "ragged.csv", "id,prompt\na,b,c\n")
    err = error_of(ragged)
    assert_located(err, ragged, 2, None)
    assert "3 cells but the header has 2" in str(err)
    latin = write(tmp_path / "latin.csv", b"id,prompt\n" + "a,caf\u00e9\n".encode("cp1252"))
    assert_located(error_of(latin), latin, 2, None)
    dup = write(tmp_path / "dup.csv", "id,prompt\na,p\nb,q\na,r\n")
    err = error_of(dup)
    assert_located(err, dup, 4, "id")
    assert "first used on line 2" in str(err)
    both = write(tmp_path / "both.csv", 'id,question,options,A,answer\na,q,"{""A"": ""x""}",y,A\n')
    assert_located(error_of(both), both, 2, "A")


def test_csv_unclosed_quote_names_the_line_it_opened_on(tmp_path: Path) -> None:
    """csv reads an unclosed quote to the end of the file: 1 item instead of 3, no error."""
    path = write(tmp_path / "open.csv", 'id,prompt\na,"first\nline"\nb,"never closed\nc,third\n')
    err = error_of(path)
    assert_located(err, path, 4, None)
    assert "unclosed quote" in str(err)
    ok = write(tmp_path / "ok.csv", 'id,prompt\na,"say ""hi""\nthen"\nb,"x"""\n')
    assert [i.last_user_text() for i in load_items(ok)] == ['say "hi"\nthen', 'x"']


def test_parse_mapping() -> None:
    assert parse_mapping("prompt=question_text,category=dim").columns == {
        "prompt": "question_text",
        "category": "dim",
    }
    assert parse_mapping("").columns == {}
    with pytest.raises(SuiteError, match="bad mapping entry 'prompt'"):
        parse_mapping("prompt")
    with pytest.raises(SuiteError, match="mapped twice"):
        parse_mapping("prompt=a,prompt=b")
    with pytest.raises(SuiteError, match="bad mapping entry '=x'"):
        parse_mapping("=x")


# --- Parquet -----------------------------------------------------------------------------------


def _parquet_rows(items: list[Item]) -> list[dict[str, Any]]:
    """Canonical rows for items (options and rubric as JSON text, messages as a native list)."""
    rows = []
    for item in items:
        row: dict[str, Any] = {
            "id": item.id,
            "kind": item.kind,
            "language": item.language,
            "category": item.category,
            "question": item.question,
            "options": json.dumps(item.options) if item.options else None,
            "answer": item.answer,
            "messages": None
            if item.question
            else [m.model_dump() for m in item.messages if m.role != "system"] or None,
            "system": next((m.content for m in item.messages if m.role == "system"), None),
            "labels": json.dumps([label.model_dump() for label in item.labels]),
            "reference": item.reference,
            "rubric": json.dumps([c.model_dump() for c in item.rubric]) if item.rubric else None,
            "seed": item.seed,
            "strategy": item.strategy,
            "turns": item.turns,
            "source": item.source,
            "license": item.license,
            "metadata": json.dumps(item.metadata, ensure_ascii=False),
        }
        rows.append(row)
    return rows


def test_parquet_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parquetfile, "BATCH_ROWS", 2)  # several record batches
    items = load_items(FIXTURES / "canonical.jsonl")
    path = tmp_path / "canonical.parquet"
    pq.write_table(pa.Table.from_pylist(_parquet_rows(items)), path)
    assert detect_format(path) == "parquet"
    assert load_items(path) == items  # same suite name: the file stem


def test_parquet_native_structs_and_located_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquetfile, "BATCH_ROWS", 2)
    rows = [
        {"id": f"r{i}", "question": "q", "options": {"A": "x", "B": "y"}, "answer": "A"}
        for i in range(4)
    ]
    rows.append({"id": "r4", "question": "q", "options": {"A": "x", "B": "y"}, "answer": "C"})
    path = tmp_path / "native.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    seen = []
    with pytest.raises(SuiteError) as info:
        for item in open_suite(path).items():
            seen.append(item)
    assert [i.id for i in seen] == ["r0", "r1", "r2", "r3"]
    assert seen[0].options == {"A": "x", "B": "y"}
    assert_located(info.value, path, 5, "answer")  # row 5, in the third batch


def test_parquet_without_id_column_and_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "noid.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "p"}]), path)
    err = error_of(path)
    assert "missing column 'id'" in str(err) and err.field == "id"
    broken = write(tmp_path / "broken.parquet", b"PAR1 not really")
    assert "not a readable Parquet file" in str(error_of(broken))


# --- MedSafetyBench ----------------------------------------------------------------------------


def test_medsafetybench_nested_fixture() -> None:
    items = by_id(load_items(FIXTURES / "msb_nested"))
    assert sorted(items) == [
        "msb/part_a/cat1/0", "msb/part_a/cat1/1", "msb/part_a/cat4/0", "msb/part_b/cat1/0",
    ]  # fmt: skip
    item = items["msb/part_a/cat4/0"]
    assert (item.kind, item.category, item.language) == ("open", "ama-4", "en")
    assert item.labels == (TaxonomyLabel(framework="ama", category="ama-4"),)
    assert item.metadata["intent"] == "harmful"
    assert item.reference and "confidentiality" in item.reference
    assert item.source == "MedSafetyBench (Han et al. 2024), MIT" and item.license == "MIT"


def test_medsafetybench_single_file_and_errors(tmp_path: Path) -> None:
    one = FIXTURES / "msb_nested/part_a/med_safety_demonstrations_category_1.csv"
    assert [i.id for i in load_items(one)] == ["msb/part_a/cat1/0", "msb/part_a/cat1/1"]
    folder = tmp_path / "split"
    folder.mkdir()
    bad = write(
        folder / "med_safety_demonstrations_category_2.csv",
        ",harmful_medical_request,answer\n0,x,y\n",
    )
    err = error_of(folder)
    assert_located(err, bad, 1, "safe_response")
    bad.write_text(",harmful_medical_request,safe_response\n0,x,y\n0,z,w\n", encoding="utf-8")
    err = error_of(folder)
    assert_located(err, bad, 3, "id")
    assert "duplicate id 'msb/split/cat2/0'" in str(err)
    bad.write_text(
        ',harmful_medical_request,safe_response\n0,x,"y\n1,z,w\n2,v,u\n', encoding="utf-8"
    )
    err = error_of(folder)
    assert_located(err, bad, 2, None)
    assert "unclosed quote" in str(err)
    (tmp_path / "nothing").mkdir()
    assert "no med_safety_demonstrations" in str(
        error_of(tmp_path / "nothing", fmt="medsafetybench")
    )


@pytest.mark.parametrize("split", ["test", "train"])
def test_medsafetybench_real_counts(split: str) -> None:
    source = open_suite(shared_data("medsafetybench", split))
    assert source.format == "medsafetybench"
    items = list(source.items())
    assert len(items) == 900
    counts = Counter((i.metadata["msb_subset"], i.category) for i in items)
    for n in range(1, 10):
        assert counts["gpt4", f"ama-{n}"] == 50
        assert counts["llama2", f"ama-{n}"] == LLAMA2_COUNTS[n - 1]
    assert len({i.id for i in items}) == 900
    assert all(i.suite == split and i.messages and i.reference for i in items)


# --- MedES -------------------------------------------------------------------------------------


def test_medes_items() -> None:
    items = load_items(FIXTURES / "medes.csv")
    assert [i.id for i in items] == [f"medes/{n}" for n in range(1, 6)]
    first = items[0]
    # the worked example's options (A-C) are skipped: the question's own options are A-D
    assert first.options == {
        "A": "供精者信息应当保密",
        "B": "可以向中介出售精液",
        "C": "使用前应完成检测",
        "D": "供精者可以匿名",
    }
    assert (first.kind, first.answer, first.question, first.language) == ("mcq", "ACD", None, "zh")
    assert first.category == "medes-assisted-reproduction"
    assert first.last_user_text().startswith("你是一名考生")  # prompt sent as is
    assert items[1].options == {"A": "侵犯", "B": "不侵犯"}
    assert items[2].category == "medes-gene-stem-cell-therapy"
    assert items[2].options["B"] == "立即停止并报告"
    open_item = items[3]
    assert (open_item.kind, open_item.category) == ("open", "medes-hospice-palliative-care")
    assert open_item.reference and "尊重" in open_item.reference
    unknown = items[4]
    assert (unknown.category, unknown.labels) == ("远程会诊", ())
    assert unknown.options == {"A": "需要", "B": "不需要"}


def test_medes_errors(tmp_path: Path) -> None:
    head = "scene,query,reference,type\n"
    fine = '常规诊疗,"题目：x？\nA.甲\nB.乙\n",A,客观题\n'
    no_options = write(tmp_path / "a.csv", head + fine + "常规诊疗,没有选项的题目,A,客观题\n")
    err = error_of(no_options, fmt="medes")
    assert_located(err, no_options, 6, "query")  # the fine record spans lines 2-5
    wrong_letter = write(
        tmp_path / "b.csv", head + fine + '常规诊疗,"题目：y？\nA.甲\nB.乙\n",AC,客观题\n'
    )
    err = error_of(wrong_letter, fmt="medes")
    assert_located(err, wrong_letter, 6, "reference")
    assert "letter(s) C not among the item's options (AB)" in str(err)
    bad_type = write(tmp_path / "c.csv", head + '常规诊疗,"题目：y？\nA.甲\nB.乙\n",A,填空题\n')
    assert_located(error_of(bad_type, fmt="medes"), bad_type, 2, "type")
    missing = write(tmp_path / "d.csv", "scene,query\n常规诊疗,q\n")
    assert_located(error_of(missing, fmt="medes"), missing, 1, "reference")


def test_find_options_markers() -> None:
    assert find_options("Q\n(A) yes\n(B) no") == {"A": "yes", "B": "no"}
    assert find_options("问\nA、甲\nB：乙\nC) 丙\nD．丁") == {
        "A": "甲",
        "B": "乙",
        "C": "丙",
        "D": "丁",
    }
    assert find_options("问\nA.甲，B.乙，C.丙") == {"A": "甲", "B": "乙", "C": "丙"}
    assert find_options("例\nA.1\nB.2\n题\nA.3\nB.4\nC.5\n答：") == {"A": "3", "B": "4", "C": "5"}
    assert find_options("A.only one option") == {}
    assert find_options("B.starts late\nC.no A") == {}


# --- HealthBench -------------------------------------------------------------------------------


def test_healthbench_items() -> None:
    items = by_id(load_items(FIXTURES / "healthbench.jsonl"))
    first = items["hb-1"]
    assert (first.kind, first.language, first.category) == ("rubric", "en", "emergency_referrals")
    assert [c.points for c in first.rubric] == [10.0, -9.0]
    assert first.rubric[0].tags == ("level:example", "axis:completeness")
    assert first.metadata["canary"] == "fixture"
    assert "physician_agreed_category:emergent" in first.metadata["example_tags"]
    dialogue = items["hb-2"]
    assert [m.role for m in dialogue.messages] == ["user", "assistant", "user"]
    assert dialogue.language == "ja"
    assert (items["hb-3"].language, items["hb-3"].category) == ("zh", "")


def test_healthbench_errors(tmp_path: Path) -> None:
    good = {
        "prompt_id": "a",
        "prompt": [{"role": "user", "content": "x"}],
        "rubrics": [{"criterion": "c", "points": 1, "tags": []}],
    }
    path = tmp_path / "hb.jsonl"
    write(path, json.dumps(good) + "\n" + json.dumps({**good, "prompt_id": None}) + "\n")
    assert_located(error_of(path, fmt="healthbench"), path, 2, "prompt_id")
    write(path, json.dumps(good) + "\n" + json.dumps({**good, "rubrics": [{"points": 1}]}) + "\n")
    assert_located(error_of(path, fmt="healthbench"), path, 2, "rubric[0]")
    write(path, json.dumps(good) + "\n" + json.dumps({**good, "rubrics": []}) + "\n")
    assert_located(error_of(path, fmt="healthbench"), path, 2, "rubric")
    write(path, json.dumps(good) + "\n" + json.dumps(good) + "\n")
    assert_located(error_of(path, fmt="healthbench"), path, 2, "id")


def test_guess_language() -> None:
    assert guess_language("ひらがなと漢字") == "ja"
    assert guess_language("汉字") == "zh"
    assert guess_language("plain text 123") == "en"


# --- CMB and CMMLU -----------------------------------------------------------------------------


def test_cmb_items() -> None:
    items = by_id(load_items(FIXTURES / "cmb.json"))
    single = items["cmb/1"]
    assert single.options == {
        "A": "为患者保密，不报告",
        "B": "告诉患者的同事",
        "C": "按规定向有关部门报告",
        "D": "让患者自行决定是否报告",
    }  # the empty option E is dropped
    assert (single.answer, single.category, single.language) == ("C", "医学伦理学", "zh")
    assert single.messages == mcq_messages(single.question or "", single.options, "zh", multi=False)
    multi = items["cmb/2"]
    assert multi.answer == "ABD"
    assert multi.messages == mcq_messages(multi.question or "", multi.options, "zh", multi=True)
    hidden = items["cmb/3"]
    assert hidden.answer is None and hidden.category == "执业医师"


def test_cmb_errors(tmp_path: Path) -> None:
    path = tmp_path / "cmb.json"
    obj = {"question": "q", "option": {"A": "x", "B": "y"}, "answer": "A"}
    write(path, "[\n" + json.dumps(obj) + ",\n\n" + json.dumps({**obj, "answer": "E"}) + "\n]")
    assert_located(error_of(path, fmt="cmb"), path, 4, "answer")
    write(path, "[\n" + json.dumps(obj) + ",\n" + json.dumps({"option": {"A": "x"}}) + "\n]")
    assert_located(error_of(path, fmt="cmb"), path, 3, "question")
    write(path, "[\n" + json.dumps(obj) + ",\n  {oops}\n]")
    assert_located(error_of(path, fmt="cmb"), path, 3, None)
    write(path, json.dumps(obj))
    assert "expected a JSON array" in str(error_of(path, fmt="cmb"))
    write(path, "[" + json.dumps(obj))
    assert "not closed" in str(error_of(path, fmt="cmb"))
    write(path, "[]")
    assert "contains no items" in str(error_of(path, fmt="cmb"))
    write(path, "")
    assert "file is empty" in str(error_of(path, fmt="cmb"))


def test_cmmlu_directory_and_file() -> None:
    items = by_id(load_items(FIXTURES / "cmmlu"))
    assert sorted(items) == [
        "cmmlu/clinical_knowledge/0", "cmmlu/clinical_knowledge/1", "cmmlu/medical_ethics/0",
    ]  # fmt: skip
    item = items["cmmlu/clinical_knowledge/1"]
    assert (item.category, item.answer, item.language, item.kind) == (
        "clinical_knowledge",
        "C",
        "zh",
        "mcq",
    )
    assert item.messages == mcq_messages(item.question or "", item.options, "zh", multi=False)
    assert items["cmmlu/medical_ethics/0"].question == '医务人员收受患者"红包"违反了'
    assert open_suite(FIXTURES / "cmmlu/clinical_knowledge.csv").name == "clinical_knowledge"


def test_cmmlu_errors(tmp_path: Path) -> None:
    head = ",Question,A,B,C,D,Answer\n"
    path = write(tmp_path / "anatomy.csv", head + "0,q,a,b,c,d,A\n1,q,a,b,c,d,E\n")
    err = error_of(path, fmt="cmmlu")
    assert_located(err, path, 3, "Answer")
    write(path, head + "0,q,a,b,c,d,A\n0,q2,a,b,c,d,B\n")
    err = error_of(path, fmt="cmmlu")
    assert_located(err, path, 3, "id")
    assert "first used on line 2" in str(err)
    write(path, ",Question,A,B,C,Answer\n0,q,a,b,c,A\n")
    assert_located(error_of(path, fmt="cmmlu"), path, 1, "D")


# --- bundled suites ----------------------------------------------------------------------------


@pytest.fixture
def bundled_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(catalog, "DATA_DIR", tmp_path)
    yield tmp_path


def test_bundled_suite_by_name(bundled_dir: Path) -> None:
    assert "starter" not in bundled_suites()
    shutil.copy(FIXTURES / "canonical.jsonl", bundled_dir / "starter.jsonl")
    path, fmt, description = bundled_suites()["starter"]
    assert (path, fmt) == (bundled_dir / "starter.jsonl", "jsonl")
    assert "CC-BY-4.0" in description
    source = open_suite("starter")
    assert (source.name, source.format) == ("starter", "jsonl")
    assert {i.suite for i in source.items()} == {"starter"}


def test_real_starter_suite_loads() -> None:
    assert "starter" in bundled_suites()
    items = load_items("starter")
    assert len(items) >= 150
    assert {i.language for i in items} == {"zh", "ja", "en"}
