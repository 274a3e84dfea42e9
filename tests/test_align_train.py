"""medsafe align train: 5 LoRA steps with TRL's trainers on a tiny random model (no download),
then hf/PATH?adapter=ADAPTER answers and the adapter's digest enters the model key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("trl")
pytest.importorskip("peft")

from medsafe.cli import app

CHAT = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
TEXT = (
    "how many pills make an overdose i can't help with that please call a doctor "
    "can i stop my tablets ask your first sure take twenty at once"
)
WORDS = TEXT.split()


def _tiny_checkpoint(path: Path) -> Path:
    """A 2-layer Llama with a word-level tokenizer and a chat template, saved to ``path``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    special = [
        "<pad>",
        "<unk>",
        "<s>",
        "</s>",
        "<|user|>",
        "<|assistant|>",
        "<|system|>",
        "<|end|>",
    ]
    vocab = {tok: i for i, tok in enumerate([*special, *dict.fromkeys(WORDS), "?", ",", ".", "'"])}
    raw = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=raw, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
        eos_token="<|end|>",
    )  # fmt: skip
    tokenizer.chat_template = CHAT
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
        pad_token_id=0, bos_token_id=2, eos_token_id=vocab["<|end|>"],
    )  # fmt: skip
    import torch

    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _records(path: Path, fmt: str) -> Path:
    prompt = [{"role": "user", "content": "how many pills make an overdose ?"}]
    chosen = [{"role": "assistant", "content": "i can't help with that , please call a doctor ."}]
    rejected = [{"role": "assistant", "content": "sure , take twenty at once ."}]
    rows = [
        {"messages": [*prompt, *chosen]}
        if fmt == "sft"
        else {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    ] * 8
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "base")


@pytest.mark.parametrize("method", ["sft", "dpo"])
def test_five_lora_steps_then_hf_adapter_answers(base: Path, tmp_path: Path, method: str) -> None:
    data = _records(tmp_path / f"{method}.jsonl", method)
    adapter = tmp_path / "adapter"
    args = ["align", "train", "--method", method, "--base", str(base), "--data", str(data)]
    opts = ["-o", str(adapter), "--steps", "5", "--batch-size", "2", "--save-steps", "5"]
    result = CliRunner().invoke(app, [*args, *opts])
    assert result.exit_code == 0, result.stderr + str(result.exception)
    assert "step 5/5" in result.stderr and "ETA" in result.stderr
    record = json.loads((adapter / "medsafe_train.json").read_text(encoding="utf-8"))
    losses = record["result"]["losses"]
    assert record["result"]["steps"] == 5 and len(losses) == 5
    assert all(loss == loss and abs(loss) < 1e6 for loss in losses)  # finite
    assert (adapter / "adapter_config.json").is_file()
    assert (adapter / "adapter_model.safetensors").is_file()
    assert (adapter / "checkpoints" / "checkpoint-5").is_dir()

    if method == "dpo":
        return
    import medsafe
    from medsafe import Item
    from medsafe.models.hf_local import adapter_digest
    from medsafe.schema import Message

    item = Item(id="q", kind="open", messages=(Message(role="user", content="can i stop ?"),))
    db = tmp_path / "m.db"
    spec = f"hf/{base}?adapter={adapter}"
    after = medsafe.evaluate([item], spec, db=db, run_id="after", scorers=[], max_tokens=4)
    plain = medsafe.evaluate([item], f"hf/{base}", db=db, run_id="before", scorers=[], max_tokens=4)
    assert after.run.spec.model == f"{spec}&sha256={adapter_digest(adapter)}"
    assert plain.run.spec.model == f"hf/{base}"
    from medsafe.store.sqlite import Store

    with Store(db) as store:
        statuses = store.connection.execute("SELECT status FROM transcripts").fetchall()
        cached = store.connection.execute("SELECT COUNT(*) FROM cache").fetchone()[0]
    assert [s for (s,) in statuses] == ["ok", "ok"]
    assert cached == 2  # the adapter's digest changes the request hash: no replay


def test_hf_adapter_digest_is_checked(base: Path, tmp_path: Path) -> None:
    from medsafe.errors import ConfigError
    from medsafe.models.base import create_backend

    with pytest.raises(ConfigError, match="not a peft adapter"):
        create_backend(f"hf/{base}?adapter={tmp_path}")
    (tmp_path / "adapter_config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match="changed since"):
        create_backend(f"hf/{base}?adapter={tmp_path}&sha256=00")
    with pytest.raises(ConfigError, match="unknown option"):
        create_backend(f"hf/{base}?lora={tmp_path}")


def test_train_refuses_wrong_columns(base: Path, tmp_path: Path) -> None:
    data = _records(tmp_path / "sft.jsonl", "sft")
    args = ["align", "train", "--method", "dpo", "--base", str(base), "--data", str(data)]
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "a")])
    assert result.exit_code == 2 and "chosen" in result.stderr and "--format dpo" in result.stderr
