"""medsafe corpus add: reading, sectioning with numbering, hashes, scoped re-import reports."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsafe.authoring.corpus import load_sections, sample_corpus
from medsafe.authoring.documents import read_document
from medsafe.authoring.sections import split_sections
from medsafe.cli import app
from medsafe.store.sqlite import Store

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_sample_corpus_has_numbered_sections_in_three_languages(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    code, output = invoke("corpus", "add", "@sample", "--corpus", "sample", "--db", str(db))
    assert code == 0, output
    assert "3 document(s): 42 added, 0 changed, 0 removed" in output
    with Store(db) as store:
        sections = load_sections(store.connection, "sample")
    assert len(sections) == 42
    assert {s.language for s in sections} == {"zh", "ja", "en"}
    assert {s.meta["license"] for s in sections} == {"CC-BY-4.0"}
    ids = {s.section_id for s in sections}
    assert {"第二章/第四条", "第3章/第8条", "Chapter 2/4"} <= ids
    for s in sections:  # offsets index the document text exactly
        doc = read_document(
            next(p for p in sample_corpus().glob("*.md") if s.doc_id.startswith(p.stem))
        )
        assert doc.text[s.start : s.end] == s.text
    ja8 = next(s for s in sections if s.section_id == "第3章/第8条")
    assert "一 患者を識別できる情報を削除すること。" in ja8.text  # 号 stay in their article


def test_numbering_styles() -> None:
    text = (
        "前文。\n第一章 总则\n第一条 甲。\n第二条之外\n第3条の2 乙。\n２ 項。\n一 号。\n"
        "Chapter II Duties\nArticle 4 A.\nSection 4.1 B.\n1.2 C.\n5) D.\n"
    )
    numbers = [(s.chapter, s.number) for s in split_sections(text)]
    assert numbers == [
        ("", "preamble"),
        ("第一章 总则", "第一条"),
        ("第一章 总则", "第3条の2"),
        ("Chapter II Duties", "Article 4"),
        ("Chapter II Duties", "Section 4.1"),
        ("Chapter II Duties", "1.2"),
        ("Chapter II Duties", "5)"),
    ]
    article = split_sections(text)[1]
    assert article.text == "第一条 甲。\n第二条之外"  # not a number followed by a space


def test_captions_and_chinese_sub_articles() -> None:
    text = (
        "第一章 総則\n（目的）\n第一条 この指針は、目的を定める。\n"
        "（定義）\n第二条 定義。\n第三条之一 补充。\n"
    )
    sections = split_sections(text)
    assert [s.number for s in sections] == ["第一条", "第二条", "第三条之一"]
    assert sections[0].text == "（目的）\n第一条 この指針は、目的を定める。"
    assert sections[1].text == "（定義）\n第二条 定義。"


def test_reimport_reports_added_changed_removed_scoped_to_path(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    shutil.copytree(sample_corpus(), folder)
    other = tmp_path / "other.txt"
    other.write_text("Article 1 Keep records.\nArticle 2 Wash hands.\n", encoding="utf-8")
    db = str(tmp_path / "m.db")
    assert invoke("corpus", "add", str(folder), "--corpus", "c", "--db", db)[0] == 0
    assert invoke("corpus", "add", str(other), "--corpus", "c", "--db", db)[0] == 0
    code, output = invoke("corpus", "add", str(folder), "--corpus", "c", "--db", db)
    assert "0 added, 0 changed, 0 removed, 42 unchanged" in output
    en = folder / "sample-en.md"
    text = en.read_text(encoding="utf-8")
    text = text.replace("obtain the patient's consent.", "obtain written consent.")
    text = text.replace("14. A physician may withhold", "15. A physician may withhold")
    en.write_text(text + "\n16. New duty.\n", encoding="utf-8")
    (folder / "sample-zh.md").unlink()
    code, output = invoke("corpus", "add", str(folder), "--corpus", "c", "--db", db)
    assert code == 0, output
    assert "2 document(s): 2 added, 1 changed, 15 removed" in output  # 14 zh + old 14
    assert "changed: sample-en-" in output and "#Chapter 2/4" in output
    code, output = invoke("corpus", "add", str(en), "--corpus", "c", "--db", db, "--json")
    report = json.loads(output)
    assert report["removed"] == [] and report["unchanged"] == 15  # the other docs stay
    with Store(Path(db)) as store:
        refs = {s.ref for s in load_sections(store.connection, "c")}
    assert any(r.startswith("other-") for r in refs)


def test_html_docx_and_metadata(tmp_path: Path) -> None:
    html = tmp_path / "g.html"
    html.write_text(
        "<html><head><title>Guide</title><style>x{}</style></head><body>"
        "<h1>Chapter 1 Care</h1><p>1. Staff must wash hands.</p>"
        "<p>2. Staff may wear gloves.</p></body></html>",
        encoding="utf-8",
    )
    doc = read_document(html, {"issuer": "Board"})
    assert doc.meta["title"] == "Guide" and doc.meta["issuer"] == "Board"
    assert [s.number for s in split_sections(doc.text)] == ["1.", "2."]
    docx = tmp_path / "d.docx"
    body = "".join(
        f"<w:p><w:r><w:t>{t}</w:t></w:r></w:p>"
        for t in ("第一条 必须洗手。", "第二条 可以戴手套。")
    )
    xml = (
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{body}</w:body></w:document>"
    )
    with zipfile.ZipFile(docx, "w") as z:
        z.writestr("word/document.xml", xml)
    doc = read_document(docx)
    assert doc.meta["language"] == "zh"
    assert [s.number for s in split_sections(doc.text)] == ["第一条", "第二条"]


def test_pdf(tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    pdf = tmp_path / "p.pdf"
    writer = pypdf.PdfWriter()
    writer.add_blank_page(200, 200)
    with pdf.open("wb") as fh:
        writer.write(fh)
    code, output = invoke("corpus", "add", str(pdf), "--corpus", "c", "--db", str(tmp_path / "m"))
    assert code == 2 and "p.pdf" in output and "no text found" in output


def test_bad_input_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text("---\ntitle: x\nno colon here\n---\n1. Text.\n", encoding="utf-8")
    code, output = invoke("corpus", "add", str(bad), "--corpus", "c", "--db", str(tmp_path / "m"))
    assert code == 2 and "bad.md:3" in output and "front matter" in output
    bad.write_text("---\ncolour: red\n---\n1. Text.\n", encoding="utf-8")
    code, output = invoke("corpus", "add", str(bad), "--corpus", "c", "--db", str(tmp_path / "m"))
    assert code == 2 and "colour" in output
    code, output = invoke("corpus", "add", str(bad), "--corpus", "a b", "--db", str(tmp_path / "m"))
    assert code == 2 and "corpus name" in output
    (tmp_path / "empty").mkdir()
    code, output = invoke("corpus", "add", str(tmp_path / "empty"), "--corpus", "c")
    assert code == 2 and "no documents" in output
    code, output = invoke("corpus", "add", str(tmp_path / "gone.md"), "--corpus", "c")
    assert code == 2 and "no such file or folder" in output
    (tmp_path / "x.rtf").write_text("{\\rtf1}")
    code, output = invoke("corpus", "add", str(tmp_path / "x.rtf"), "--corpus", "c")
    assert code == 2 and "unsupported document type '.rtf'" in output
    code, output = invoke("corpus", "list", "nothing", "--db", str(tmp_path / "m"))
    assert code == 2 and "no such store" in output  # reading never creates a store
    assert invoke("corpus", "add", "@sample", "--corpus", "s", "--db", str(tmp_path / "m"))[0] == 0
    code, output = invoke("corpus", "list", "nothing", "--db", str(tmp_path / "m"))
    assert code == 2 and "no corpus 'nothing' in the store (corpora: s;" in output
