"""``medsafe align train``: a LoRA adapter trained with TRL's own trainers (CPU works).

``--method sft`` uses :class:`trl.SFTTrainer` on conversational ``messages`` records,
``--method dpo`` :class:`trl.DPOTrainer` on ``prompt``/``chosen``/``rejected`` records (the
files ``medsafe align build`` writes). The base model is a transformers checkpoint directory
or a GGUF file (e.g. the embedded SmolLM2-135M, dequantised by transformers' ``gguf_file=``;
its float checkpoint is saved in ``ADAPTER/base`` so that ``hf/ADAPTER/base?adapter=ADAPTER``
can evaluate the result). Checkpoints go to ``ADAPTER/checkpoints`` (``resume`` continues from
the last); the adapter (``adapter_config.json``, ``adapter_model.safetensors``) and a
``medsafe_train.json`` record (method, base, data digest, steps, losses, library versions) to
``ADAPTER``. Needs ``pip install 'medsafe[train]'``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from medsafe.errors import ConfigError
from medsafe.models._threaded import require_modules
from medsafe.outputs import staged, stderr_note

Method = Literal["sft", "dpo"]
METHODS: tuple[Method, ...] = ("sft", "dpo")
TRAIN_MODULES = ("torch", "transformers", "trl", "peft", "datasets")
COLUMNS: dict[Method, set[str]] = {"sft": {"messages"}, "dpo": {"prompt", "chosen", "rejected"}}
RECORD = "medsafe_train.json"


@dataclass(frozen=True)
class TrainOptions:
    """One training job."""

    method: Method
    base: Path
    data: Path
    out: Path
    max_steps: int = -1
    epochs: float = 1.0
    learning_rate: float = 2e-4
    batch_size: int = 4
    lora_r: int = 8
    lora_alpha: int = 16
    max_length: int = 512
    beta: float = 0.1
    seed: int = 0
    save_steps: int = 50
    resume: bool = False


@dataclass
class TrainResult:
    """What a job did (also written to ``ADAPTER/medsafe_train.json``)."""

    steps: int
    final_loss: float | None
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    base_checkpoint: str | None = None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_dataset_file(path: Path, method: Method) -> Any:
    """The records as a ``datasets.Dataset``; the method's columns must be there."""
    from datasets import load_dataset  # type: ignore[import-untyped]

    suffix = path.suffix.lower()
    kinds = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
    if suffix not in kinds:
        raise ConfigError(f"{path}: training data must be .jsonl or .parquet")
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    data = load_dataset(kinds[suffix], data_files=str(path), split="train")
    missing = COLUMNS[method] - set(data.column_names)
    if missing:
        raise ConfigError(
            f"{path}: {method} needs column(s) {sorted(missing)} (has {data.column_names}); "
            f"build it with medsafe align build --format {method}"
        )
    if len(data) == 0:
        raise ConfigError(f"{path}: no records")
    return data.select_columns(sorted(COLUMNS[method]))


def load_base(base: Path, out: Path) -> tuple[Any, Any, str | None]:
    """``(model, tokenizer, saved float checkpoint or None)`` from a directory or a GGUF file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if base.is_file() and base.suffix.lower() == ".gguf":
        kwargs: dict[str, Any] = {"gguf_file": base.name}
        tokenizer = AutoTokenizer.from_pretrained(base.parent, **kwargs)
        loaded = AutoModelForCausalLM.from_pretrained(base.parent, **kwargs)
        # the weights are dequantised floats, but transformers marks a GGUF-loaded model as
        # quantised (not serialisable): rebuild a plain model from its config and weights
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
        model.load_state_dict(loaded.state_dict())
        saved = out / "base"
        model.config._name_or_path = str(saved)  # the adapter's base_model_name_or_path
        model.save_pretrained(saved)
        tokenizer.save_pretrained(saved)
        return model, tokenizer, str(saved)
    if not (base / "config.json").is_file():
        raise ConfigError(f"--base {base}: not a checkpoint directory (no config.json) or .gguf")
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True)
    return model, tokenizer, None


def _progress_callback(report: Callable[[str], None], losses: list[float]) -> Any:
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """One line per logging step: step, loss, elapsed time and ETA."""

        start = 0.0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.start = time.monotonic()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if not logs or "loss" not in logs:
                return
            losses.append(float(logs["loss"]))
            done, total = state.global_step, max(state.max_steps, 1)
            spent = time.monotonic() - self.start
            eta = spent / max(done, 1) * (total - done)
            report(f"step {done}/{total}  loss {logs['loss']:.4f}  {spent:.0f}s  ETA {eta:.0f}s")

    return Progress()


def train(opts: TrainOptions, report: Callable[[str], None] = stderr_note) -> TrainResult:
    """Train a LoRA adapter with TRL and write it (plus its record) to ``opts.out``."""
    if opts.method not in METHODS:
        raise ConfigError(f"--method must be one of {', '.join(METHODS)}, got {opts.method!r}")
    require_modules(TRAIN_MODULES, "train")
    data = load_dataset_file(opts.data, opts.method)
    from peft import LoraConfig

    opts.out.mkdir(parents=True, exist_ok=True)
    model, tokenizer, saved = load_base(opts.base, opts.out)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lora = LoraConfig(
        r=opts.lora_r,
        lora_alpha=opts.lora_alpha,
        lora_dropout=0.0,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    common: dict[str, Any] = {
        "output_dir": str(opts.out / "checkpoints"),
        "max_steps": opts.max_steps,
        "num_train_epochs": opts.epochs,
        "learning_rate": opts.learning_rate,
        "per_device_train_batch_size": opts.batch_size,
        "logging_steps": 1,
        "save_steps": opts.save_steps,
        "save_total_limit": 2,
        "seed": opts.seed,
        "report_to": "none",
        "use_cpu": True,
        "max_length": opts.max_length,
        "disable_tqdm": True,
        "gradient_checkpointing": False,  # small models on CPU: speed over memory
    }
    losses: list[float] = []
    callbacks = [_progress_callback(report, losses)]
    trainer: Any
    if opts.method == "sft":
        from trl.trainer.sft_config import SFTConfig
        from trl.trainer.sft_trainer import SFTTrainer

        trainer = SFTTrainer(
            model=model,
            args=SFTConfig(**common),
            train_dataset=data,
            processing_class=tokenizer,
            peft_config=lora,
            callbacks=callbacks,
        )
    else:
        from trl.trainer.dpo_config import DPOConfig
        from trl.trainer.dpo_trainer import DPOTrainer

        trainer = DPOTrainer(
            model=model,
            args=DPOConfig(**common, beta=opts.beta),
            train_dataset=data,
            processing_class=tokenizer,
            peft_config=lora,
            callbacks=callbacks,
        )
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # our Progress line replaces its raw dicts
    started = time.monotonic()
    resume = opts.resume and any((opts.out / "checkpoints").glob("checkpoint-*"))
    output = trainer.train(resume_from_checkpoint=True if resume else None)
    trainer.save_model(str(opts.out))
    result = TrainResult(
        steps=int(trainer.state.global_step),
        final_loss=losses[-1] if losses else float(output.training_loss),
        losses=losses,
        seconds=round(time.monotonic() - started, 1),
        base_checkpoint=saved,
    )
    _write_record(opts, result)
    return result


def _write_record(opts: TrainOptions, result: TrainResult) -> None:
    import peft
    import torch
    import transformers
    import trl

    body = {
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
        "data_sha256": _sha256(opts.data),
        "result": asdict(result),
        "versions": {
            "trl": trl.__version__,
            "peft": peft.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        },
    }
    with staged(opts.out / RECORD, stderr_note) as tmp:
        tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
