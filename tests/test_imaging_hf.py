"""``hf/PATH`` with a tiny randomly initialised LLaVA built here (no download): the item's image
goes through the processor into the model."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from medsafe.models.base import ChatRequest, create_backend
from medsafe.schema import Attachment, Item, Message, ModelParams

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

CORPUS = ["Which disease is shown? DR or AMD.", "The fundus shows haemorrhages.",
          "图像 显示 糖尿病 视网膜 病变"] * 20  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        pad_token="<pad>", extra_special_tokens={"image_token": "<image>"},
    )  # fmt: skip
    vision = transformers.CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
        image_size=32, patch_size=8, projection_dim=32,
    )  # fmt: skip
    text = transformers.LlamaConfig(
        vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
        bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )  # fmt: skip
    config = transformers.LlavaConfig(
        vision_config=vision, text_config=text,
        image_token_index=fast.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="full", vision_feature_layer=-1,
    )  # fmt: skip
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("llava")
    transformers.LlavaForConditionalGeneration(config).save_pretrained(path)
    processor = transformers.LlavaProcessor(
        image_processor=transformers.CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ),
        tokenizer=fast, patch_size=8, vision_feature_select_strategy="full",
        num_additional_image_tokens=1, image_token="<image>",
    )  # fmt: skip
    processor.save_pretrained(path)
    return path


def _request(attachments: tuple[Attachment, ...]) -> ChatRequest:
    item = Item(
        id="img",
        kind="image",
        messages=(Message(role="user", content="Which disease is shown? DR or AMD."),),
        attachments=attachments,
    )
    return ChatRequest(
        messages=item.messages, params=ModelParams(temperature=0, max_tokens=6), item=item
    )


def test_tiny_vlm_answers_with_the_image(checkpoint: Path, tmp_path: Path) -> None:
    png = tmp_path / "fundus.png"
    Image.new("RGB", (80, 60), (190, 60, 20)).save(png)
    attachment = Attachment(path=str(png), media_type="image/png")
    backend = create_backend(f"hf/{checkpoint}")

    async def ask(request: ChatRequest) -> Any:
        return await backend.complete(request)

    with_image = asyncio.run(ask(_request((attachment,))))
    again = asyncio.run(ask(_request((attachment,))))
    without = asyncio.run(ask(_request(())))
    asyncio.run(backend.aclose())
    assert isinstance(with_image.text, str) and with_image.text == again.text
    assert 0 < with_image.usage.completion_tokens <= 6
    # 16 patches + the class token stand in for the image, then the new line after it
    assert with_image.usage.prompt_tokens - without.usage.prompt_tokens == 17 + 1
