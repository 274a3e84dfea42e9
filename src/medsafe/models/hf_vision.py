"""``hf/PATH`` for a local image-text-to-text checkpoint (a config with ``vision_config``, e.g.
LLaVA): loaded with ``AutoProcessor`` and ``AutoModelForImageTextToText`` from local files only.

The item's image attachments are read like the HTTP path reads them (PNG/JPEG/DICOM, DICOM
windowed and never sent with its header, reduced to 1,024 px) and given to the processor with
the conversation: through the processor's chat template when it has one (an ``image`` part per
image before the first user text), else ``role: content`` lines with one image token per image
before the first user text. Decoding follows :func:`medsafe.models.hf_local.generate`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medsafe.imaging.media import DEFAULT_MAX_SIDE, load_image
from medsafe.models._threaded import DEFAULT_MAX_TOKENS, chat_messages
from medsafe.models.base import ChatRequest, ChatResponse
from medsafe.schema import Usage


def is_vision_checkpoint(path: Path) -> bool:
    """Whether ``path/config.json`` describes a vision-language model."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "vision_config" in config


def load_vision(path: Path) -> tuple[Any, Any]:
    """``(processor, model)`` of a local image-text-to-text checkpoint, in eval mode."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    auto_processor: Any = AutoProcessor
    auto_model: Any = AutoModelForImageTextToText
    processor = auto_processor.from_pretrained(path, local_files_only=True)
    model = auto_model.from_pretrained(path, local_files_only=True)
    model.eval()
    return processor, model


def request_images(request: ChatRequest, max_side: int = DEFAULT_MAX_SIDE) -> list[Any]:
    """PIL images of the request's image attachments (RGB, at most ``max_side`` px)."""
    images = []
    for attachment in request.item.attachments if request.item is not None else ():
        if attachment.kind != "image":
            continue
        image, _removed = load_image(Path(attachment.path), attachment.media_type)
        if max(image.size) > max_side:
            image.thumbnail((max_side, max_side))
        images.append(image.convert("RGB"))
    return images


def vision_prompt(processor: Any, messages: list[dict[str, str]], n_images: int) -> str:
    """The prompt text with ``n_images`` image placeholders before the first user text."""
    if getattr(processor, "chat_template", None):
        parts: list[dict[str, Any]] = []
        placed = False
        for message in messages:
            content: list[dict[str, Any]] = [{"type": "text", "text": message["content"]}]
            if message["role"] == "user" and not placed:
                content = [{"type": "image"}] * n_images + content
                placed = True
            parts.append({"role": message["role"], "content": content})
        return str(processor.apply_chat_template(parts, add_generation_prompt=True))
    token = getattr(processor, "image_token", "<image>")
    lines, placed = [], False
    for message in messages:
        text = message["content"]
        if message["role"] == "user" and not placed:
            text = "".join(f"{token}\n" for _ in range(n_images)) + text
            placed = True
        lines.append(f"{message['role']}: {text}")
    return "\n".join([*lines, "assistant:"])


def generate_vision(processor: Any, model: Any, request: ChatRequest) -> ChatResponse:
    """One blocking generation with the request's images (greedy at temperature 0/None)."""
    import torch

    params = request.params
    images = request_images(request)
    prompt = vision_prompt(processor, chat_messages(request), len(images))
    inputs = processor(images=images or None, text=prompt, return_tensors="pt")
    max_new = params.max_tokens or DEFAULT_MAX_TOKENS
    kwargs: dict[str, Any] = {"max_new_tokens": max_new}
    if params.temperature:
        kwargs.update(do_sample=True, temperature=params.temperature)
        if params.seed is not None:
            torch.manual_seed(params.seed)
    else:
        kwargs.update(do_sample=False)
    tokenizer = processor.tokenizer
    with torch.no_grad():
        output = model.generate(**inputs, pad_token_id=tokenizer.pad_token_id, **kwargs)
    prompt_len = int(inputs["input_ids"].shape[1])
    new_ids = [int(t) for t in output[0][prompt_len:]]
    stopped = bool(new_ids) and new_ids[-1] == tokenizer.eos_token_id
    return ChatResponse(
        text=tokenizer.decode(new_ids, skip_special_tokens=True),
        usage=Usage(prompt_tokens=prompt_len, completion_tokens=len(new_ids)),
        finish_reason="stop" if stopped or len(new_ids) < max_new else "length",
    )
