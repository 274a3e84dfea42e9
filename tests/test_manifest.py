"""Signed run manifests and keys: medsafe manifest, manifest verify, keys new."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from medsafe.audit.chain import append
from medsafe.audit.content import run_content_hash
from medsafe.audit.signoffs import record_signoff
from medsafe.cli import app
from medsafe.manifest.build import PREDICATE_TYPE, STATEMENT_TYPE
from medsafe.schema import Item, ScorerSpec
from medsafe.store import Store, StoreWriter
from tests.audit_support import score, write_run

FAKE_KEY = "sk-FAKE0123456789abcdefSECRET"


def medsafe(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def signed(tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """A run with a sign-off, a gate result and a fake key around; its signed manifest."""
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    write_run(db, base_url="http://127.0.0.1:9/v1", api_key_env="OPENAI_API_KEY")
    with Store(db) as store:
        record = store.require_run("run1")
        judge = ScorerSpec(name="harm", judges=("openai/j",), options={"api_key": FAKE_KEY})
        store.update_spec(record.spec.model_copy(update={"scorers": (judge,)}))
        conn = store.connection
        append(conn, "alice", "login", None, {})
        record_signoff(conn, "run1", "audrey", "approve", "審査済み", "")
        conn.execute(
            "INSERT INTO gate_results (run_ids, policy_sha256, outcome, result_json, ts) "
            "VALUES (?, ?, ?, ?, ?)",
            ('["run1"]', "ab" * 32, "pass", json.dumps({"outcome": "pass", "rules": []}), "t"),
        )
    keys = tmp_path / "signer"
    assert medsafe("keys", "new", "--out", str(keys)).exit_code == 0
    manifest = tmp_path / "run1.manifest.json"
    result = medsafe(
        "manifest", "run1", "--db", str(db), "--sign", f"{keys}.key", "-o", str(manifest)
    )
    assert result.exit_code == 0, result.output
    return manifest, Path(f"{keys}.pub"), db


def test_manifest_is_an_in_toto_statement_of_the_run(signed: tuple[Path, Path, Path]) -> None:
    manifest, _pub, db = signed
    statement = json.loads(manifest.read_text())
    assert statement["_type"] == STATEMENT_TYPE
    assert statement["predicateType"] == PREDICATE_TYPE
    content = run_content_hash(Store(db).connection, "run1")
    assert statement["subject"] == [{"name": "medsafe-run:run1", "digest": {"sha256": content}}]
    predicate = statement["predicate"]
    assert predicate["suite"]["items"] == 4 and len(predicate["suite"]["sha256"]) == 64
    assert predicate["model"]["model"] == "openai/test"
    assert predicate["model"]["params"]["temperature"] == 0.0
    assert predicate["versions"]["manifest"]["packages"]["cryptography"]
    (signoff,) = predicate["signoffs"]
    assert signoff["decision"] == "approve" and signoff["comment"] == "審査済み"
    assert not signoff["stale"]
    assert predicate["gate_results"][0]["outcome"] == "pass"
    assert predicate["audit"]["entries"] == 2 and predicate["audit"]["chain_ok"]


def test_no_secret_in_the_manifest(signed: tuple[Path, Path, Path]) -> None:
    text = signed[0].read_text()
    assert FAKE_KEY not in text and "OPENAI_API_KEY" not in text
    assert "api_key" not in text


def test_verify_with_key_passes_then_fails_after_one_byte(
    signed: tuple[Path, Path, Path],
) -> None:
    manifest, pub, db = signed
    result = medsafe("manifest", "verify", str(manifest), "--key", str(pub), "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "valid Ed25519 signature" in result.output and "manifest intact" in result.output
    data = bytearray(manifest.read_bytes())
    data[data.index(b'"items": 4') + 9] = ord("5")  # one byte: 4 items -> 5 items
    manifest.write_bytes(bytes(data))
    result = medsafe("manifest", "verify", str(manifest), "--key", str(pub))
    assert result.exit_code == 1 and "signature" in result.output and "NOT intact" in result.output


def test_verify_fails_on_a_trailing_byte_and_without_signature(
    signed: tuple[Path, Path, Path],
) -> None:
    manifest, pub, _db = signed
    manifest.write_bytes(manifest.read_bytes() + b" ")
    assert medsafe("manifest", "verify", str(manifest), "--key", str(pub)).exit_code == 1
    Path(f"{manifest}.sig").unlink()
    result = medsafe("manifest", "verify", str(manifest), "--key", str(pub))
    assert result.exit_code == 1 and "missing" in result.output


def test_unsigned_verify_checks_the_store_and_says_so(signed: tuple[Path, Path, Path]) -> None:
    manifest, _pub, db = signed
    result = medsafe("manifest", "verify", str(manifest), "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "signature: NOT checked" in result.output and "matches" in result.output
    writer = StoreWriter(db)
    writer.put_scores("run1", [score(_item(db), 1.0, judge="human")])
    writer.close()
    result = medsafe("manifest", "verify", str(manifest), "--db", str(db))
    assert result.exit_code == 1 and "run 'run1' changed" in result.output


def _item(db: Path) -> Item:
    with Store(db) as store:
        return next(store.iter_items("run1"))


def test_verify_catches_a_truncated_audit_tail_through_the_manifest_head(
    signed: tuple[Path, Path, Path],
) -> None:
    manifest, _pub, db = signed
    with Store(db) as store:
        store.connection.execute("DELETE FROM signoffs")
        store.connection.execute("DELETE FROM audit_log WHERE seq = 2")
    result = medsafe("manifest", "verify", str(manifest), "--db", str(db))
    assert result.exit_code == 1 and "truncated" in result.output


def test_keys_new_modes_and_refusal(tmp_path: Path) -> None:
    prefix = tmp_path / "k"
    result = medsafe("keys", "new", "--out", str(prefix))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(Path(f"{prefix}.key").stat().st_mode) == 0o600
    assert Path(f"{prefix}.key").read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert Path(f"{prefix}.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    before = Path(f"{prefix}.key").read_bytes()
    result = medsafe("keys", "new", "--out", str(prefix))
    assert result.exit_code == 2 and "refusing to overwrite" in result.output
    assert Path(f"{prefix}.key").read_bytes() == before


def test_bad_arguments(tmp_path: Path, db: Path) -> None:
    write_run(db)
    assert medsafe("manifest", "run1", "--db", str(db)).exit_code == 2  # no -o
    assert medsafe("manifest", "nope", "--db", str(db), "-o", str(tmp_path / "m")).exit_code == 2
    pub = tmp_path / "not-a-key.pub"
    pub.write_text("hello")
    manifest = tmp_path / "m.json"
    assert medsafe("manifest", "run1", "--db", str(db), "-o", str(manifest)).exit_code == 0
    result = medsafe("manifest", "verify", str(manifest), "--key", str(pub))
    assert result.exit_code == 2 and "not-a-key.pub" in result.output
    result = medsafe("manifest", "verify", str(tmp_path / "missing.json"), "--db", str(db))
    assert result.exit_code == 2 and "missing.json: cannot read" in result.output


def test_signing_warns_about_a_readable_key_and_refuses_stdout(tmp_path: Path, db: Path) -> None:
    write_run(db)
    prefix = tmp_path / "k"
    assert medsafe("keys", "new", "--out", str(prefix)).exit_code == 0
    key = Path(f"{prefix}.key")
    key.chmod(0o644)
    out = tmp_path / "m.json"
    result = medsafe("manifest", "run1", "--db", str(db), "--sign", str(key), "-o", str(out))
    assert result.exit_code == 0 and "lets others read the signing key" in result.output
    result = medsafe("manifest", "run1", "--db", str(db), "--sign", str(key), "-o", "-")
    assert result.exit_code == 2 and "standard output" in result.output
    # rewritten unsigned: the old signature would not match, so it goes
    result = medsafe("manifest", "run1", "--db", str(db), "-o", str(out))
    assert result.exit_code == 0 and not Path(f"{out}.sig").exists()


def test_a_signature_by_another_key_fails(tmp_path: Path, signed: tuple[Path, Path, Path]) -> None:
    manifest, _pub, _db = signed
    other = tmp_path / "other"
    assert medsafe("keys", "new", "--out", str(other)).exit_code == 0
    result = medsafe("manifest", "verify", str(manifest), "--key", f"{other}.pub")
    assert result.exit_code == 1 and "does not match" in result.output


def test_manifest_lists_review_tasks_and_gate_results(tmp_path: Path) -> None:
    from tests.test_governance_report import _governed

    db = tmp_path / "g.db"
    run = _governed(db)
    out = tmp_path / "m.json"
    assert medsafe("manifest", run, "--db", str(db), "-o", str(out)).exit_code == 0
    predicate = json.loads(out.read_text(encoding="utf-8"))["predicate"]
    (task,) = predicate["review_tasks"]
    assert task["task_id"] == "t1" and task["units_labelled_k_times"] == 8
    assert task["labels"] == 16 and task["reviewers"] == 2
    assert predicate["gate_results"][0]["result"]["rules"][0]["n_needed"] == 1147
    assert predicate["egress"]["allow_phi"] is True
