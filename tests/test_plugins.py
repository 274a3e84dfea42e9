"""Plug-ins from another installed package: entry points, loaded lazily, used by a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "medsafe-plugin-demo"
version = "0.1.0"

[project.entry-points."medsafe.scorers"]
shouty = "medsafe_plugin_demo"

[project.entry-points."medsafe.backends"]
parrot = "medsafe_plugin_demo:parrot"

[project.entry-points."medsafe.loaders"]
broken = "medsafe_plugin_broken"

[tool.setuptools]
py-modules = ["medsafe_plugin_demo", "medsafe_plugin_broken"]
"""

PLUGIN = '''
"""A scorer and a backend, registered when this module is imported."""
import medsafe
from medsafe import Scale

SHOUTS = Scale(kind="binary", title="Shouted answers", lo=0, hi=1, levels=(0, 1))


@medsafe.scorer(name="shouty", scale=SHOUTS)
def shouty(item, transcript):
    return 1.0 if (transcript.response or "").isupper() else 0.0


@medsafe.backend("parrot", model_id="parrot-1")
async def parrot(messages, params):
    return "ANSWER: A " + messages[-1].content.upper()
'''

RUN = """
import json, sys
import medsafe
from medsafe.models.base import backends
from medsafe.scoring import scorers
from medsafe.schema import Item

assert "medsafe_plugin_demo" not in sys.modules
assert "parrot" in backends.names() and "shouty" in scorers.names()
assert "medsafe_plugin_demo" not in sys.modules  # declared by name, not imported yet
items = [
    Item(id=f"p{i}", kind="mcq", question="Which?", options={"A": "a", "B": "b"}, answer="A",
         messages=[{"role": "user", "content": f"which one {i}?"}])
    for i in range(3)
]
results = medsafe.evaluate(items, "parrot", scorers=["shouty", "mcq"], db=sys.argv[1])
try:
    from medsafe.suites import get_loader
    get_loader("broken")
except medsafe.RegistryError as exc:
    broken = str(exc)
print(json.dumps({
    "model": results.run.spec.model,
    "shouty": results.scorers["shouty"].mean,
    "scale": results.scorers["shouty"].scale.title,
    "accuracy": results.mcq.value,
    "broken": broken,
}))
"""


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo plug-in package, installed into a folder of its own."""
    root = tmp_path_factory.mktemp("plugin")
    source, target = root / "src", root / "site"
    source.mkdir()
    (source / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (source / "medsafe_plugin_demo.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    (source / "medsafe_plugin_broken.py").write_text("import no_such_module_anywhere\n")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    subprocess.run(
        [*pip, "--no-build-isolation", "--target", str(target), str(source)],
        check=True,
        capture_output=True,
    )
    return target


def test_an_installed_plugin_registers_a_scorer_and_a_backend_for_a_run(
    plugin_path: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(plugin_path)}
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(tmp_path / "plugin.db")],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["model"] == "parrot@parrot-1"  # a plug-in's model_id is part of the cache key
    assert out["shouty"] == 1.0 and out["scale"] == "Shouted answers"
    assert out["accuracy"] == 1.0
    assert "loader 'broken'" in out["broken"] and "failed to load" in out["broken"]
    assert "medsafe-plugin-demo" in out["broken"].replace("_", "-")  # names the distribution
    assert "ModuleNotFoundError" in out["broken"]


def test_the_cli_uses_plugins_by_name(plugin_path: Path, tmp_path: Path) -> None:
    suite = tmp_path / "open.jsonl"
    rows = [{"id": f"o{i}", "kind": "open", "prompt": f"help me {i}"} for i in range(2)]
    suite.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(plugin_path)}
    args = ["run", str(suite), "--model", "parrot", "--scorer", "shouty", "--db", "cli.db"]
    args += ["--format", "jsonl"]  # detection would try (and report) the broken plug-in loader
    done = subprocess.run(
        [sys.executable, "-m", "medsafe.cli", *args, "--run-id", "cli", "--json"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    printed = json.loads(done.stdout)
    assert printed["run"]["spec"]["model"] == "parrot@parrot-1"
    assert printed["scorers"]["shouty"]["mean"] == 1.0
