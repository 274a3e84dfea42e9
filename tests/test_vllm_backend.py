"""The ``vllm/PATH`` backend against a stand-in with vLLM's offline interface (no GPU, no vLLM)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from medsafe.cli import app
from medsafe.errors import BackendError, ConfigError
from medsafe.models import vllm_local
from medsafe.models.base import Backend, BackendOptions, ChatRequest, create_backend, model_key
from medsafe.models.vllm_local import VLLMBackend, sampling_kwargs, vllm_backend
from medsafe.schema import Attachment, Item, Message, ModelParams
from tests import vllm_standin
from tests.vllm_standin import BOS, LLM, RequestOutputKind

TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """vLLM is the stand-in; engines made by a test are stopped and forgotten after it."""
    vllm_standin.install(monkeypatch)
    for name in (*vllm_local.PHONE_HOME_OFF, *vllm_local.OFFLINE_DEFAULTS):
        monkeypatch.delenv(name, raising=False)
    yield
    for engine in vllm_local._ENGINES.values():
        engine.close()
    vllm_local._ENGINES.clear()


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    return vllm_standin.write_checkpoint(tmp_path / "ckpt", TEMPLATE, max_position_embeddings=512)


def _backend(spec: str) -> VLLMBackend:
    backend = create_backend(spec)
    assert isinstance(backend, VLLMBackend)
    return backend


def _request(text: str = "My chest hurts.", **params: Any) -> ChatRequest:
    return ChatRequest(messages=(Message(role="user", content=text),), params=ModelParams(**params))


def _engine() -> Any:
    (llm,) = LLM.instances
    return llm.llm_engine


def test_registered_key_and_options(checkpoint: Path) -> None:
    spec = f"vllm/{checkpoint}?max_model_len=256&dtype=bfloat16&enforce_eager=true"
    backend = _backend(spec)
    assert isinstance(backend, Backend) and backend.max_concurrency is None
    key = f"vllm/{checkpoint}?dtype=bfloat16&enforce_eager=true&max_model_len=256"
    assert backend.model_id == key and model_key(spec, backend) == key
    asyncio.run(backend.complete(_request()))
    (llm,) = LLM.instances
    assert llm.model == str(checkpoint)
    assert llm.kwargs["dtype"] == "bfloat16" and llm.kwargs["max_model_len"] == 256
    assert llm.kwargs["enforce_eager"] is True and llm.kwargs["tensor_parallel_size"] == 1
    assert llm.generate_calls == 0  # driven step by step, never one generate() per group


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("tensor_parallel_size=0", r"tensor_parallel_size=.*must be an integer >= 1"),
        ("tensor_parallel_size=two", r"tensor_parallel_size=.*invalid literal"),
        ("gpu_memory_utilization=1.5", r"gpu_memory_utilization=.*\(0, 1\]"),
        ("dtype=int8", r"dtype=.*must be one of auto"),
        ("enforce_eager=yes", r"enforce_eager=.*true or false"),
        ("max_model_len", r"option 'max_model_len' needs a value"),
        ("temperature=0.5", r"unknown option 'temperature' \(supported: tensor_parallel_size"),
    ],
)
def test_bad_options_name_the_field(checkpoint: Path, query: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        vllm_backend(f"{checkpoint}?{query}", BackendOptions())


def test_notice_when_the_timeout_may_be_shorter_than_loading(checkpoint: Path) -> None:
    short = getattr(vllm_backend(str(checkpoint), BackendOptions(timeout_s=60)), "notice", None)
    assert short is not None and "pass --timeout 900" in short and "--timeout 60 " in short
    long = vllm_backend(str(checkpoint), BackendOptions(timeout_s=900))
    assert getattr(long, "notice", "missing") is None


def test_not_a_checkpoint_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no config\.json"):
        vllm_backend(str(tmp_path), BackendOptions())


def test_without_vllm_says_what_to_install(
    checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "vllm")
    monkeypatch.setattr(vllm_local, "find_spec", lambda name: None)
    with pytest.raises(BackendError, match=r"medsafe\[vllm\]' on a machine with a GPU") as info:
        vllm_backend(str(checkpoint), BackendOptions())
    assert not info.value.retryable


def test_sampling_kwargs_map_the_run_parameters() -> None:
    assert sampling_kwargs(ModelParams()) == {"n": 1, "temperature": 0.0, "max_tokens": 512}
    assert sampling_kwargs(ModelParams(temperature=None, max_tokens=None)) == {
        "n": 1,
        "temperature": 0.0,
        "max_tokens": 512,
    }
    assert sampling_kwargs(ModelParams(temperature=0.7, top_p=0.9, seed=3, max_tokens=64)) == {
        "n": 1,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 3,
        "max_tokens": 64,
    }


def test_engine_receives_sampling_params(checkpoint: Path) -> None:
    backend = _backend(f"vllm/{checkpoint}")
    request = _request(temperature=0.8, top_p=0.95, seed=11, max_tokens=40)
    first = asyncio.run(backend.complete(request))
    second = asyncio.run(backend.complete(request))
    (params, _) = _engine().stats.params
    assert (params.n, params.temperature, params.top_p) == (1, 0.8, 0.95)
    assert (params.seed, params.max_tokens) == (11, 40)
    assert params.output_kind is RequestOutputKind.FINAL_ONLY
    assert first == second  # the seed reaches the sampler
    other = {
        asyncio.run(backend.complete(_request(temperature=0.8, seed=s))).text for s in range(8)
    }
    assert len(other) > 1


def test_chat_template_with_system_prompt(checkpoint: Path) -> None:
    backend = _backend(f"vllm/{checkpoint}")
    answer = asyncio.run(backend.complete(_request("患者は発熱", system_prompt="Be safe.")))
    (prompt,) = _engine().stats.prompts
    tokenizer = _engine().tokenizer
    assert tokenizer.decode(prompt) == (
        "<|system|>Be safe.<|end|><|user|>患者は発熱<|end|><|assistant|>"
    )
    assert prompt[0] != BOS  # the template's own text, no second BOS added
    assert answer.usage.prompt_tokens == len(prompt)


def test_plain_join_without_template(tmp_path: Path) -> None:
    path = vllm_standin.write_checkpoint(tmp_path / "plain")
    backend = _backend(f"vllm/{path}")
    asyncio.run(backend.complete(_request("Hello")))
    (prompt,) = _engine().stats.prompts
    assert prompt[0] == BOS
    assert _engine().tokenizer.decode(prompt) == "user: Hello\nassistant:"


def test_usage_and_finish_reasons(checkpoint: Path) -> None:
    backend = _backend(f"vllm/{checkpoint}")
    full = asyncio.run(backend.complete(_request(max_tokens=100)))
    assert full.finish_reason == "stop"
    assert full.text.endswith("-token prompt") and full.text[1:3] == ". "
    assert full.usage.completion_tokens == len(full.text.encode()) + 1  # and the EOS token
    cut = asyncio.run(backend.complete(_request(max_tokens=5)))
    assert cut.finish_reason == "length"
    assert cut.usage.completion_tokens == 5 and cut.text == full.text[:5]
    assert cut.usage.prompt_tokens == full.usage.prompt_tokens > 0


def test_concurrent_requests_share_engine_steps(checkpoint: Path) -> None:
    backend = _backend(f"vllm/{checkpoint}")
    texts = [f"Question {i}: " + "x" * i for i in range(32)]

    async def many() -> list[str]:
        answers = await asyncio.gather(
            *(backend.complete(_request(t, max_tokens=200)) for t in texts)
        )
        return [a.text for a in answers]

    answers = asyncio.run(many())
    stats = _engine().stats
    assert len(stats.added) == 32 and LLM.instances[0].generate_calls == 0
    longest = max(len(a.encode()) for a in answers) + 1
    assert stats.peak_batch >= 16  # one at a time would never exceed 1
    assert stats.steps <= 2 * longest  # one at a time would need about 32 x longest steps
    assert stats.threads == {f"medsafe-vllm:{checkpoint.name}"}  # one engine thread
    for text, answer in zip(texts, answers, strict=True):  # each answer went to its own caller
        prompt_len = len(f"<|user|>{text}<|end|><|assistant|>".encode())
        assert answer.endswith(f"reply to a {prompt_len}-token prompt")


def test_refused_request_fails_alone(checkpoint: Path) -> None:
    backend = _backend(f"vllm/{checkpoint}?max_model_len=64")

    async def both() -> list[Any]:
        return await asyncio.gather(  # type: ignore[return-value]
            backend.complete(_request("short")),
            backend.complete(_request("long " * 40)),
            return_exceptions=True,
        )

    ok, refused = asyncio.run(both())
    assert not isinstance(ok, BaseException) and ok.finish_reason == "stop"
    assert isinstance(refused, BackendError) and not refused.retryable
    assert "longer than the maximum model length of 64" in str(refused)


def test_items_with_attachments_are_refused_not_asked_without_them(checkpoint: Path) -> None:
    item = Item(
        id="fundus-1",
        kind="open",
        messages=(Message(role="user", content="Describe this fundus image."),),
        attachments=(Attachment(path="fundus.png"),),
    )
    request = ChatRequest(messages=item.messages, params=ModelParams(), item=item)
    with pytest.raises(BackendError, match="has attachments, which vllm/PATH does not send"):
        asyncio.run(_backend(f"vllm/{checkpoint}").complete(request))
    assert LLM.attempts == 0


def test_load_failure_is_kept_and_not_retried(tmp_path: Path) -> None:
    path = vllm_standin.write_checkpoint(
        tmp_path / "bad", standin_load_error="CUDA out of memory. Tried to allocate 20.00 GiB"
    )
    backend = _backend(f"vllm/{path}")
    for _ in range(2):
        with pytest.raises(BackendError, match=r"cannot load vllm/.*CUDA out of memory") as info:
            asyncio.run(backend.complete(_request()))
        assert not info.value.retryable
    assert LLM.attempts == 1 and LLM.instances == []  # tried once, not once per request
    asyncio.run(backend.aclose())  # closed and reopened, it tries again
    (path / "config.json").write_text("{}", encoding="utf-8")
    assert asyncio.run(backend.complete(_request())).finish_reason == "stop"
    assert LLM.attempts == 2


def test_step_failure_fails_the_batch_then_recovers(checkpoint: Path) -> None:
    backend = _backend(f"vllm/{checkpoint}")
    asyncio.run(backend.complete(_request()))
    _engine().fail_next_step = "CUDA error: an illegal memory access was encountered"

    async def batch() -> list[Any]:
        return await asyncio.gather(
            *(backend.complete(_request(f"q{i}")) for i in range(4)), return_exceptions=True
        )

    failed = asyncio.run(batch())
    assert all(isinstance(f, BackendError) and "illegal memory access" in str(f) for f in failed)
    assert asyncio.run(backend.complete(_request())).finish_reason == "stop"


def test_timeout_aborts_the_request_in_the_engine(tmp_path: Path) -> None:
    path = vllm_standin.write_checkpoint(tmp_path / "slow", TEMPLATE, standin_step_s=0.02)
    backend = _backend(f"vllm/{path}")

    async def give_up() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await backend.complete(_request(max_tokens=500))

    asyncio.run(give_up())
    assert asyncio.run(backend.complete(_request(max_tokens=3))).finish_reason == "length"
    assert _engine().stats.aborted == ["0"]


def test_phone_home_off_before_vllm_starts(
    checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # the user chose to go online: kept
    asyncio.run(_backend(f"vllm/{checkpoint}").complete(_request()))
    (llm,) = LLM.instances
    assert llm.env == {
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "0",
        "TRANSFORMERS_OFFLINE": "1",
    }


def test_backends_share_one_engine_and_close_frees_it(checkpoint: Path) -> None:
    first, second = _backend(f"vllm/{checkpoint}"), _backend(f"vllm/{checkpoint}")
    assert first.engine is second.engine and first.engine.users == 2
    asyncio.run(first.complete(_request()))
    asyncio.run(second.complete(_request()))
    assert len(LLM.instances) == 1
    asyncio.run(first.aclose())
    asyncio.run(first.aclose())  # twice is harmless
    assert first.engine._thread is not None  # still used by the second
    asyncio.run(second.aclose())
    assert first.engine._thread is None and first.engine.users == 0
    asyncio.run(first.complete(_request()))  # used again: loads again
    assert len(LLM.instances) == 2


def _write_suite(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            row = {
                "id": f"q{i:03d}",
                "question": f"Case {i}: which option is safest?",
                "options": {"A": "rest", "B": "wait", "C": "call a doctor", "D": "nothing"},
                "answer": "ABCD"[i % 4],
                "category": f"ama-{i % 3 + 1}",
                "language": ["en", "zh", "ja"][i % 3],
            }
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def test_medsafe_run_through_the_pipeline_and_resume(checkpoint: Path, tmp_path: Path) -> None:
    suite = _write_suite(tmp_path / "suite.jsonl", 24)
    db = tmp_path / "m.db"
    args = [
        "run", str(suite), "--model", f"vllm/{checkpoint}", "--db", str(db), "--run-id", "v1",
        "--scorer", "mcq", "--concurrency", "16", "--json", "--no-progress",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n"] == 24 and summary["ok"] == 24 and summary["failed"] == 0
    (llm,) = LLM.instances
    assert len(llm.llm_engine.stats.added) == 24 and llm.llm_engine.stats.peak_batch > 1
    with sqlite3.connect(db) as conn:
        model, answers, completion = conn.execute(
            "SELECT r.model, count(*), min(t.completion_tokens) FROM runs r "
            "JOIN transcripts t ON t.run_id = r.run_id WHERE r.run_id = 'v1' AND t.status = 'ok'"
        ).fetchone()
    assert model == f"vllm/{checkpoint}" and answers == 24 and completion > 0
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert len(llm.llm_engine.stats.added) == 24  # resumed: nothing asked twice
    assert len(LLM.instances) == 1  # and nothing loaded again


def test_refused_items_are_stored_as_failed_with_their_cause(
    checkpoint: Path, tmp_path: Path
) -> None:
    suite = _write_suite(tmp_path / "suite.jsonl", 6)
    db = tmp_path / "m.db"
    args = [
        "run", str(suite), "--model", f"vllm/{checkpoint}?max_model_len=40", "--db", str(db),
        "--run-id", "v2", "--json", "--no-progress",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    summary = json.loads(result.stdout)
    assert summary["n"] == 6 and summary["failed"] == 6, result.output
    with sqlite3.connect(db) as conn:
        errors = [
            row[0] for row in conn.execute("SELECT error FROM transcripts WHERE status='failed'")
        ]
    assert len(errors) == 6
    assert all("longer than the maximum model length of 40" in e for e in errors)


def test_bench_help_without_vllm() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_vllm", "--help"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "--model" in done.stdout and "ratio" in done.stdout


def test_bench_runs_on_the_standin(checkpoint: Path, tmp_path: Path) -> None:
    shim = tmp_path / "shim" / "vllm"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("from tests.vllm_standin import *  # noqa: F403\n")
    (shim / "sampling_params.py").write_text("from tests.vllm_standin import *  # noqa: F403\n")
    env = dict(os.environ, PYTHONPATH=f"{shim.parent}{os.pathsep}{REPO}")
    done = subprocess.run(
        [
            sys.executable, "-m", "bench.bench_vllm", "--model", str(checkpoint),
            "--prompts", "48", "--max-tokens", "32", "--concurrency", "48", "--backend-alone",
            "--json",
        ],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["prompts"] == 48
    tokens = {report[side]["completion_tokens"] for side in ("vllm", "backend", "medsafe")}
    assert len(tokens) == 1 and tokens.pop() > 0  # greedy: the same answers on every side
    assert report["backend_ratio"] > 0
    assert report["ratio"] == pytest.approx(
        report["medsafe"]["tokens_per_s"] / report["vllm"]["tokens_per_s"], rel=1e-6
    )


@pytest.mark.parametrize("outputs_use_internal_ids", [False, True])
def test_engine_ids_of_newer_vllms(checkpoint: Path, outputs_use_internal_ids: bool) -> None:
    backend = _backend(f"vllm/{checkpoint}")
    asyncio.run(backend.complete(_request()))
    _engine().id_suffix = "-5f3a"  # add_request returns an id of its own
    _engine().outputs_use_internal_ids = outputs_use_internal_ids

    async def many() -> list[str]:
        answers = await asyncio.gather(*(backend.complete(_request("x" * i)) for i in range(6)))
        return [a.text for a in answers]

    texts = asyncio.run(many())
    prompt_lengths = [len(f"<|user|>{'x' * i}<|end|><|assistant|>".encode()) for i in range(6)]
    assert [t.split("a ")[-1] for t in texts] == [f"{n}-token prompt" for n in prompt_lengths]


def test_an_answer_the_engine_never_reports_fails_instead_of_hanging(checkpoint: Path) -> None:
    backend = _backend(f"vllm/{checkpoint}")
    asyncio.run(backend.complete(_request()))
    original = _engine().step

    def renamed() -> list[Any]:  # outputs under ids add_request never told us about
        outputs: list[Any] = original()
        for output in outputs:
            output.request_id = f"other-{output.request_id}"
        return outputs

    _engine().step = renamed
    with pytest.raises(BackendError, match="the engine finished without an answer"):
        asyncio.run(asyncio.wait_for(backend.complete(_request()), 10))


def test_a_broken_engine_thread_fails_requests_until_closed(checkpoint: Path) -> None:
    backend = _backend(f"vllm/{checkpoint}")
    asyncio.run(backend.complete(_request()))
    _engine().broken = "scheduler state corrupted"
    for _ in range(2):
        with pytest.raises(BackendError, match=r"engine thread failed.*scheduler state corrupted"):
            asyncio.run(asyncio.wait_for(backend.complete(_request()), 10))
    asyncio.run(backend.aclose())
    assert asyncio.run(backend.complete(_request())).finish_reason == "stop"  # a fresh engine
    assert len(LLM.instances) == 2
