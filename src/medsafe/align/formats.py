"""TRL's conversational dataset formats, written as JSONL or Parquet.

* ``sft`` (language modelling, conversational): ``{"messages": [{role, content}, ...]}``, the
  prompt's messages then the chosen assistant answer.
* ``dpo`` (preference, conversational, explicit prompt): ``{"prompt": [...], "chosen":
  [{"role": "assistant", ...}], "rejected": [{"role": "assistant", ...}]}``.
* ``kto`` (unpaired preference): ``{"prompt": [...], "completion": [{"role": "assistant",
  ...}], "label": true|false}``.

Records hold only these columns (TRL's trainers read them as they are); where each record came
from is listed in the export's manifest, by record index.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from medsafe.errors import ConfigError
from medsafe.outputs import staged, stderr_note

Format = Literal["sft", "dpo", "kto"]
FORMATS: tuple[Format, ...] = ("sft", "dpo", "kto")
Chat = list[dict[str, str]]


def assistant(text: str) -> Chat:
    """A one-message assistant turn."""
    return [{"role": "assistant", "content": text}]


def sft_record(prompt: Chat, chosen: str) -> dict[str, Any]:
    """A conversational language-modelling record."""
    return {"messages": [*prompt, *assistant(chosen)]}


def dpo_record(prompt: Chat, chosen: str, rejected: str) -> dict[str, Any]:
    """A conversational preference record with an explicit prompt."""
    return {"prompt": prompt, "chosen": assistant(chosen), "rejected": assistant(rejected)}


def kto_record(prompt: Chat, completion: str, desirable: bool) -> dict[str, Any]:
    """A conversational unpaired-preference record."""
    return {"prompt": prompt, "completion": assistant(completion), "label": desirable}


def suffix_kind(path: Path) -> Literal["jsonl", "parquet"]:
    """``jsonl`` or ``parquet`` from the output's suffix (anything else is refused)."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return "jsonl"
    if suffix == ".parquet":
        return "parquet"
    raise ConfigError(f"{path}: the output must end in .jsonl or .parquet")


def write_records(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """Write ``records`` atomically as JSONL or Parquet (by ``path``'s suffix)."""
    kind = suffix_kind(path)
    with staged(path, stderr_note) as tmp:
        if kind == "jsonl":
            with tmp.open("w", encoding="utf-8") as handle:
                for record in records:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(list(records)), tmp)
