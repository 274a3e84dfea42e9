"""Output targets of ``export -o``, ``report -o`` and ``report --pdf`` (medsafe.outputs)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from medsafe.cli import app
from medsafe.outputs import OutputError, check_output, staged
from tests.test_show_delete import fill

runner = CliRunner()


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


@pytest.fixture
def filled(db: Path) -> Path:
    fill(db)
    return db


@pytest.mark.parametrize(
    "args",
    [
        ("export", "a", "-o", "{dir}"),
        ("export", "a", "--format", "parquet", "-o", "{dir}"),
        ("report", "a", "-o", "{dir}"),
        ("report", "a", "-o", "{dir}/r.html", "--pdf", "{dir}"),
    ],
)
def test_directory_target_is_refused(filled: Path, tmp_path: Path, args: tuple[str, ...]) -> None:
    target = tmp_path / "out"
    target.mkdir()
    result = invoke(*(a.format(dir=target) for a in args), "--db", str(filled))
    assert result.exit_code == 2, result.output
    assert f"{target}: is a directory" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not list(tmp_path.glob("**/*.part")) and list(target.iterdir()) == []


def test_missing_folder_is_refused(filled: Path, tmp_path: Path) -> None:
    result = invoke("export", "a", "-o", str(tmp_path / "no" / "x.jsonl"), "--db", str(filled))
    assert result.exit_code == 2 and "no such folder" in result.stderr


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_device_is_written_in_place_not_replaced(filled: Path, fmt: str) -> None:
    result = invoke("export", "a", "--format", fmt, "-o", "/dev/null", "--db", str(filled))
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(Path("/dev/null").stat().st_mode)
    assert not Path("/dev/null.part").exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
@pytest.mark.parametrize(
    "args",
    [("export", "a", "-o", "/dev/full"), ("export", "a", "--format", "parquet", "-o", "/dev/full")],
)
def test_full_device_fails_cleanly(filled: Path, args: tuple[str, ...]) -> None:
    result = invoke(*args, "--db", str(filled))
    assert result.exit_code == 2, result.output
    assert "/dev/full: cannot write" in result.stderr
    assert stat.S_ISCHR(Path("/dev/full").stat().st_mode)
    assert not Path("/dev/full.part").exists()


def test_export_to_stdout(filled: Path) -> None:
    result = invoke("export", "a", "-o", "-", "--db", str(filled))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["item_id"] for r in rows] == ["d1", "q00001"]
    assert "wrote 2 records to standard output" in result.stderr
    assert not Path("-").exists()


def test_report_to_stdout(filled: Path) -> None:
    result = invoke("report", "a", "-o", "-", "--db", str(filled))
    assert result.exit_code == 0, result.output
    assert result.stdout.lstrip().lower().startswith("<!doctype html")
    assert "wrote standard output" in result.stderr
    assert not Path("-").exists()


def test_report_pdf_to_stdout_is_refused(filled: Path, tmp_path: Path) -> None:
    html = tmp_path / "r.html"
    result = invoke("report", "a", "-o", str(html), "--pdf", "-", "--db", str(filled))
    assert result.exit_code == 2 and "standard output" in result.stderr
    assert not html.exists()


@pytest.mark.parametrize("command", ["export", "report"])
def test_replacing_a_file_says_so(filled: Path, tmp_path: Path, command: str) -> None:
    target = tmp_path / "out.txt"
    first = invoke(command, "a", "-o", str(target), "--db", str(filled))
    assert first.exit_code == 0 and "replacing" not in first.stderr
    target.write_text("old")
    second = invoke(command, "a", "-o", str(target), "--db", str(filled))
    assert second.exit_code == 0, second.output
    notes = [line for line in second.stderr.splitlines() if "replacing" in line]
    assert notes == [f"note: replacing existing file {target}"]
    assert target.read_text() != "old" and not list(tmp_path.glob("*.part"))


def test_staged_leaves_nothing_on_error(tmp_path: Path) -> None:
    target = tmp_path / "x.bin"
    target.write_text("kept")
    with pytest.raises(RuntimeError), staged(target, print) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "kept" and not list(tmp_path.glob("*.part"))


def test_check_output(tmp_path: Path) -> None:
    check_output(Path("-"))
    check_output(tmp_path / "new.html")
    with pytest.raises(OutputError, match="is a directory"):
        check_output(tmp_path)
    with pytest.raises(OutputError, match="standard output"):
        check_output(Path("-"), stdout_ok=False)
