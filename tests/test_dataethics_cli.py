"""``medsafe check-data``: the JSON interface on text, JSONL, CSV, suites and runs; redaction;
licences; bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from medsafe.cli import app
from medsafe.schema import Item, Message
from medsafe.store import Store
from tests.conftest import make_spec

runner = CliRunner()
PHI = Path(__file__).parent / "fixtures" / "phi"


def check(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["check-data", *args])
    return result.exit_code, result.stdout, result.stderr


def findings(*args: str) -> list[dict[str, object]]:
    code, out, err = check(*args, "--json")
    assert code in (0, 1), err
    data = json.loads(out)
    return list(data["findings"])


def test_plain_text_one_record_per_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("no identifiers here\n\n患者电话13812345678\n", encoding="utf-8")
    code, out, _ = check(str(path), "--json")
    assert code == 1
    assert json.loads(out) == {
        "findings": [
            {"line": 3, "item_id": None, "field": "text", "type": "phone", "start": 4, "end": 15}
        ]
    }


def test_jsonl_fields_and_item_ids(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    rows = [
        {"id": "a", "prompt": "fine", "license": "MIT", "source": "x"},
        {"id": "b", "messages": [{"role": "user", "content": "Mail bob@example.org"}]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    code, out, err = check(str(path), "--json")
    assert code == 1
    data = json.loads(out)
    assert data["findings"] == [
        {
            "line": 2,
            "item_id": "b",
            "field": "messages.0.content",
            "type": "email",
            "start": 5,
            "end": 20,
        }
    ]
    assert set(data) == {"findings"}
    assert "licences: MIT (1)" in err and "1 items have no license" in err
    code, out, _ = check(str(path))
    assert "1 items have no license" in out


def test_csv_header_is_line_one_and_multiline_cells(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text(
        'id,prompt\nq1,"first line\nsecond line: call 03-1234-5678"\nq2,Dr. Smith\n',
        encoding="utf-8",
    )
    found = findings(str(path))
    assert found == [
        {"line": 3, "item_id": "q1", "field": "prompt", "type": "phone", "start": 29, "end": 41},
        {"line": 4, "item_id": "q2", "field": "prompt", "type": "person", "start": 4, "end": 9},
    ]
    cell = "first line\nsecond line: call 03-1234-5678"
    assert cell[29:41] == "03-1234-5678"


def test_bundled_suite_is_clean_and_licensed() -> None:
    code, out, err = check("starter", "--json")
    assert code == 0
    assert json.loads(out) == {"findings": []}
    assert "licences: CC-BY-4.0 (181)" in err and "no license" not in err


def test_run_input_has_null_lines(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    items = [
        Item(id="i1", kind="open", messages=(Message(role="user", content="Hi"),)),
        Item(
            id="i2",
            kind="open",
            messages=(Message(role="user", content="My number is 090-1234-5678"),),
        ),
    ]
    with Store(db) as store:
        store.create_run(make_spec("r1", "openai/x"), items, {})
    code, out, err = check("run:r1", "--db", str(db), "--json")
    assert code == 1, err
    data = json.loads(out)
    assert data["findings"] == [
        {
            "line": None,
            "item_id": "i2",
            "field": "messages.0.content",
            "type": "phone",
            "start": 13,
            "end": 26,
        }
    ]
    assert set(data) == {"findings"}
    assert "2 items have no license" in err
    code, _, err = check("run:nope", "--db", str(db))
    assert code == 2 and "no run 'nope'" in err


def test_redact_writes_same_format_with_consistent_placeholders(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    rows = [
        {"id": "1", "text": "王医生的电话是13812345678，2023年4月1日复诊"},
        {"id": "2", "text": "再次联系王医生：138-1234-5678"},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code, _, err = check(str(path), "--redact", "-o", str(out))
    assert code == 1 and "wrote 2 redacted records" in err
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines[0] == {"id": "1", "text": "[PERSON_1]医生的电话是[PHONE_1]，[DATE_1]复诊"}
    assert lines[1] == {"id": "2", "text": "再次联系[PERSON_1]医生：[PHONE_1]"}
    code, _, _ = check(str(path), "--redact", "-o", str(out), "--keep-dates")
    assert "2023年4月1日" in out.read_text(encoding="utf-8")
    code, _, _ = check(str(out), "--json")
    assert code == 0  # the redacted copy has no identifiers left


def test_redact_csv_and_text(tmp_path: Path) -> None:
    csv_in = tmp_path / "in.csv"
    csv_in.write_text("id,note\n1,mail a@example.com\n2,again a@example.com\n", encoding="utf-8")
    csv_out = tmp_path / "out.csv"
    check(str(csv_in), "--redact", "-o", str(csv_out))
    assert csv_out.read_text(encoding="utf-8") == ("id,note\n1,mail [EMAIL_1]\n2,again [EMAIL_1]\n")
    text_in = tmp_path / "in.txt"
    text_in.write_text("Dr. Smith\nMr. Jones and Dr. Smith\n", encoding="utf-8")
    text_out = tmp_path / "out.txt"
    check(str(text_in), "--redact", "-o", str(text_out))
    assert text_out.read_text(encoding="utf-8") == (
        "Dr. [PERSON_1]\nMr. [PERSON_2] and Dr. [PERSON_1]\n"
    )


def test_bad_input_names_file_line_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a"}\n{"id": \n', encoding="utf-8")
    code, _, err = check(str(bad))
    assert code == 2 and "bad.jsonl:2" in err and "not valid JSON" in err
    ragged = tmp_path / "bad.csv"
    ragged.write_text("id,prompt\n1,ok\n2,a,b\n", encoding="utf-8")
    code, _, err = check(str(ragged))
    assert code == 2 and "bad.csv:3" in err and "3 cells" in err
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"ok\n\xff\xfe\n")
    code, _, err = check(str(binary))
    assert code == 2 and "bin.txt:2" in err and "UTF-8" in err
    code, _, err = check(str(tmp_path / "missing.txt"))
    assert code == 2 and "missing.txt" in err
    code, _, err = check(str(bad), "--redact")
    assert code == 2 and "-o" in err
    code, _, err = check("starter", "--mrn-pattern", "(")
    assert code == 2 and "regular expression" in err
    code, _, err = check("run:x", "--db", str(tmp_path / "none.db"))
    assert code == 2 and "no such store" in err


def test_evaluate_prints_the_figure_table() -> None:
    code, out, _ = check("--evaluate", str(PHI / "heldout.jsonl"))
    assert code == 0
    assert "| type | lang | TP | FP | FN | precision [95% CI] | recall [95% CI] |" in out
    assert "structured (ID, phone, e-mail)" in out
    code, out, _ = check("--evaluate", str(PHI / "heldout.jsonl"), "--json")
    data = json.loads(out)
    assert data["snippets"] == 60 and "by_type_language" in data


def test_text_output_masks_values(tmp_path: Path) -> None:
    path = tmp_path / "n.txt"
    path.write_text("mail alice@example.com\n", encoding="utf-8")
    code, out, _ = check(str(path))
    assert code == 1
    assert "alice@example.com" not in out and "a***************m" in out


def test_known_benchmarks_carry_licences_and_check_data_reports_them() -> None:
    suites = Path(__file__).parent / "fixtures" / "suites"
    code, out, err = check(str(suites / "cmmlu"), "--json")
    assert code == 0 and json.loads(out) == {"findings": []}
    assert "licences: CC-BY-NC-4.0 (3)" in err
    code, out, _ = check(str(suites / "cmmlu"))
    assert "licences: CC-BY-NC-4.0 (3)" in out and "no license" not in out


def test_exports_carry_source_and_licence(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from medsafe.export import export_jsonl, export_parquet

    db = tmp_path / "s.db"
    items = [
        Item(
            id="i1",
            kind="open",
            messages=(Message(role="user", content="Hi"),),
            source="medsafe starter suite",
            license="CC-BY-4.0",
        ),
        Item(id="i2", kind="open", messages=(Message(role="user", content="Hello"),)),
    ]
    with Store(db) as store:
        store.create_run(make_spec("r1", "openai/x"), items, {})
        export_jsonl(store, "r1", tmp_path / "e.jsonl")
        export_parquet(store, "r1", tmp_path / "e.parquet")
    rows = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert [(r["source"], r["license"]) for r in rows] == [
        ("medsafe starter suite", "CC-BY-4.0"),
        (None, None),
    ]
    table = pq.read_table(tmp_path / "e.parquet")
    assert table.column("license").to_pylist() == ["CC-BY-4.0", None]


def test_scan_run_reports_items_answers_and_licences(tmp_path: Path) -> None:
    """What the governance report reads: findings in items and in the model's answers."""
    from medsafe.dataethics import scan_run
    from medsafe.testing.mock_openai import MockConfig, ThreadedMockServer

    suite = tmp_path / "s.jsonl"
    rows = [
        {"id": "a", "prompt": "Is aspirin safe?", "license": "CC-BY-4.0"},
        {"id": "b", "prompt": "Mail me at pat@example.org", "license": "CC-BY-4.0"},
    ]
    suite.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    db = tmp_path / "m.db"
    config = MockConfig(responder=lambda messages: "Call Dr. Tanaka on 090-1234-5678.")
    with ThreadedMockServer(config) as server:
        head = ["run", str(suite), "--model", "openai/mock", "--base-url", server.base_url]
        tail = ["--db", str(db), "--run-id", "r1", "--scorer", "mcq", "--no-progress"]
        result = runner.invoke(app, [*head, *tail])
    assert result.exit_code == 0, result.output
    with Store(db) as store:
        scan = scan_run(store.connection, "r1")
    assert scan.items == 2 and scan.items_with_identifiers == 1
    assert scan.by_type == {"email": 1}
    assert scan.answers_by_type == {"phone": 2, "person": 2}
    assert {(f.item_id, f.field) for f in scan.answer_findings} == {
        ("a", "turns.1"),
        ("b", "turns.1"),
    }
    assert scan.licenses == {"CC-BY-4.0": 2}
    code, out, _ = check("run:r1", "--db", str(db), "--json")
    fields = {(f["item_id"], f["field"], f["type"]) for f in json.loads(out)["findings"]}
    assert ("b", "messages.0.content", "email") in fields and ("a", "turns.1", "phone") in fields
    code, _, err = check("run:r1", "--db", str(db), "--redact", "-o", str(tmp_path / "x"))
    assert code == 2 and "not on a stored run" in err


def test_text_output_lists_the_first_findings_only(tmp_path: Path) -> None:
    path = tmp_path / "many.txt"
    path.write_text("".join(f"call 138{i:08d}\n" for i in range(60)), encoding="utf-8")
    code, out, _ = check(str(path))
    assert code == 1
    assert "... and 10 more (all of them with --json)" in out and "60 findings: phone 60" in out
    assert len(findings(str(path))) == 60
