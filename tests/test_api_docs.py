"""The Python API examples in README.md and docs/api.md run as written (offline, in a tmp dir)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(path: Path) -> list[str]:
    """The ```python code blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```$", path.read_text(encoding="utf-8"), re.M | re.S)


@pytest.mark.parametrize("page", ["README.md", "docs/api.md"])
def test_the_python_api_example_runs(page: str, tmp_path: Path) -> None:
    blocks = python_blocks(ROOT / page)
    assert blocks, f"{page} has no python example"
    example = blocks[0]
    assert "medsafe.evaluate(" in example and 'db="medsafe.db"' in example
    done = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("1.0")
    assert (tmp_path / "medsafe.db").is_file()  # the example's store, in the tmp dir
