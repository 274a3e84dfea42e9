"""The ``hf/PATH`` backend on a tiny random Llama with a tokenizer trained here (offline)."""

from __future__ import annotations

import asyncio
import os
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from medsafe.errors import BackendError, ConfigError
from medsafe.models._threaded import chat_messages
from medsafe.models.base import Backend, BackendOptions, ChatRequest, ChatResponse, backends
from medsafe.models.hf_local import HFLocalBackend, build_prompt, hf_backend
from medsafe.schema import Message, ModelParams

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

CORPUS = [
    "The patient has a fever and a cough.",
    "Please take the medicine twice a day with water.",
    "Do not share your prescription with anyone else.",
    "患者发烧并咳嗽。请每天服药两次。",
    "患者は発熱と咳があります。薬を一日二回飲んでください。",
]
TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant:{% endif %}"
)


def _tokenizer(chat_template: str | None) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
    )
    fast.chat_template = chat_template
    return fast


def _checkpoint(path: Path, chat_template: str | None) -> Path:
    tokenizer = _tokenizer(chat_template)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _checkpoint(tmp_path_factory.mktemp("tiny-llama"), TEMPLATE)


@pytest.fixture(scope="module")
def plain_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _checkpoint(tmp_path_factory.mktemp("tiny-llama-plain"), None)


def _backend(path: Path) -> HFLocalBackend:
    backend = hf_backend(str(path), BackendOptions())
    assert isinstance(backend, HFLocalBackend)
    return backend


def _load_tokenizer(path: Path) -> Any:
    return transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)


def _request(text: str = "The patient has a fever.", **params: Any) -> ChatRequest:
    return ChatRequest(messages=(Message(role="user", content=text),), params=ModelParams(**params))


def test_registered_and_protocol(checkpoint: Path) -> None:
    backend = backends.get("hf")(str(checkpoint), BackendOptions())
    assert isinstance(backend, Backend)
    assert backend.model_id == f"hf/{checkpoint}"
    assert backend.max_concurrency == 8  # greedy requests are answered in batches of 8


def test_greedy_answer_is_text_with_usage_and_deterministic(checkpoint: Path) -> None:
    backend = _backend(checkpoint)
    request = _request(temperature=0.0, max_tokens=6)
    first = asyncio.run(backend.complete(request))
    second = asyncio.run(backend.complete(request))
    assert isinstance(first.text, str)
    assert first == second
    tokenizer = _load_tokenizer(checkpoint)
    prompt = build_prompt(tokenizer, [{"role": "user", "content": "The patient has a fever."}])
    expected = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert first.usage.prompt_tokens == len(expected)
    assert 1 <= first.usage.completion_tokens <= 6
    if first.usage.completion_tokens < 6:
        assert first.finish_reason == "stop"
    else:
        assert first.finish_reason in {"stop", "length"}


def test_max_tokens_bounds_the_answer(checkpoint: Path) -> None:
    backend = _backend(checkpoint)
    short = asyncio.run(backend.complete(_request(max_tokens=2)))
    assert short.usage.completion_tokens <= 2


def test_system_prompt_goes_first_in_the_template(checkpoint: Path) -> None:
    backend = _backend(checkpoint)
    request = _request("Hello", system_prompt="Be safe.")
    plain = asyncio.run(backend.complete(_request("Hello")))
    with_system = asyncio.run(backend.complete(request))
    assert with_system.usage.prompt_tokens > plain.usage.prompt_tokens
    tokenizer = _load_tokenizer(checkpoint)
    prompt = build_prompt(tokenizer, chat_messages(request))
    assert prompt == "<s>system: Be safe.</s><s>user: Hello</s><s>assistant:"


def test_seeded_sampling_is_reproducible(checkpoint: Path) -> None:
    backend = _backend(checkpoint)
    request = _request(temperature=1.0, seed=7, max_tokens=12)
    answers = [asyncio.run(backend.complete(request)).text for _ in range(2)]
    assert answers[0] == answers[1]
    others = {
        asyncio.run(backend.complete(_request(temperature=1.0, seed=s, max_tokens=12))).text
        for s in range(8, 14)
    }
    assert len(others | {answers[0]}) > 1  # sampling really samples


def test_plain_join_without_chat_template(plain_checkpoint: Path) -> None:
    backend = _backend(plain_checkpoint)
    tokenizer = _load_tokenizer(plain_checkpoint)
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "患者"}]
    assert build_prompt(tokenizer, messages) == "system: S\nuser: 患者\nassistant:"
    answer = asyncio.run(backend.complete(_request("患者は発熱があります。", max_tokens=4)))
    assert isinstance(answer.text, str)
    expected = tokenizer("user: 患者は発熱があります。\nassistant:")["input_ids"]
    assert answer.usage.prompt_tokens == len(expected)
    assert answer.usage.completion_tokens <= 4


def test_concurrent_calls_are_serialised(checkpoint: Path) -> None:
    backend = _backend(checkpoint)

    async def many() -> list[str]:
        results = await asyncio.gather(
            *(backend.complete(_request(max_tokens=4)) for _ in range(4))
        )
        return [r.text for r in results]

    texts = asyncio.run(many())
    assert len(set(texts)) == 1


def test_concurrent_greedy_requests_share_a_batch_with_the_same_answers(checkpoint: Path) -> None:
    prompts = [
        "The patient has a fever.",
        "患者は発熱があります。",
        "病人发烧了，怎么办？",
        "Is it safe to double the dose?",
        "A",
        "Explain informed consent in detail.",
    ]

    async def answers(batch: int) -> tuple[list[ChatResponse], int]:
        backend = hf_backend(f"{checkpoint}?batch={batch}", BackendOptions())
        assert isinstance(backend, HFLocalBackend)
        out = await asyncio.gather(*(backend.complete(_request(p, max_tokens=6)) for p in prompts))
        return list(out), backend.batcher.calls

    alone, alone_calls = asyncio.run(answers(1))
    together, together_calls = asyncio.run(answers(4))
    assert alone_calls == 6 and together_calls == 2  # 4 + 2
    assert [a.text for a in together] == [a.text for a in alone]
    assert [a.usage for a in together] == [a.usage for a in alone]
    assert [a.finish_reason for a in together] == [a.finish_reason for a in alone]


def test_sampled_requests_run_alone_and_bad_batch_sizes_are_refused(checkpoint: Path) -> None:
    backend = hf_backend(f"{checkpoint}?batch=4", BackendOptions())
    assert isinstance(backend, HFLocalBackend)

    async def go() -> None:
        await asyncio.gather(
            *(backend.complete(_request(temperature=0.7, seed=i, max_tokens=3)) for i in range(3))
        )

    asyncio.run(go())
    assert backend.batcher.calls == 3
    assert backend.pinned_key == f"hf/{checkpoint}"  # the batch size is not part of the key
    for bad in ("0", "x", "1000"):
        with pytest.raises(ConfigError, match="batch must be"):
            hf_backend(f"{checkpoint}?batch={bad}", BackendOptions())


def test_aclose_unloads_and_reload_works(checkpoint: Path) -> None:
    backend = _backend(checkpoint)
    before = asyncio.run(backend.complete(_request(max_tokens=3)))
    assert backend.loaded
    asyncio.run(backend.aclose())
    assert not backend.loaded
    assert asyncio.run(backend.complete(_request(max_tokens=3))) == before


def test_not_a_checkpoint_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no config\.json"):
        hf_backend(str(tmp_path), BackendOptions())


def test_broken_checkpoint_is_backend_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    backend = HFLocalBackend("hf/broken", tmp_path)
    with pytest.raises(BackendError) as info:
        asyncio.run(backend.complete(_request()))
    assert not info.value.retryable
    assert "cannot load checkpoint" in str(info.value)


def test_missing_torch_names_the_extra(checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(name: str, *args: Any) -> Any:
        return None if name == "torch" else find_spec(name, *args)

    monkeypatch.setattr("medsafe.models._threaded.find_spec", fake)
    with pytest.raises(BackendError) as info:
        hf_backend(str(checkpoint), BackendOptions())
    assert "pip install 'medsafe[hf]'" in str(info.value)
    assert not info.value.retryable
