"""The plug-in registry: registration, declared (lazily imported) plug-ins, clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from medsafe.errors import RegistryError
from medsafe.registry import Registry


def test_register_get_and_unknown_name_lists_the_known() -> None:
    registry: Registry[int] = Registry("widget")
    registry.register("one")(1)
    registry.declare("later", "json")  # a module that registers nothing
    assert registry.get("one") == 1
    assert registry.names() == ["later", "one"] and "later" in registry
    with pytest.raises(RegistryError, match=r"unknown widget 'two' \(known: later, one\)"):
        registry.get("two")
    with pytest.raises(RegistryError, match="json was to register widget 'later' but did not"):
        registry.get("later")
    with pytest.raises(RegistryError, match="registered twice"):
        registry.register("one")(2)
    with pytest.raises(RegistryError, match="registered twice"):
        registry.declare("one", "json")


def test_declared_scorers_import_their_module_on_first_use_only() -> None:
    code = (
        "import sys\n"
        "from medsafe.scorers.base import ScorerConfig, create_scorer, scorers\n"
        "import medsafe.scorers.builtin\n"
        "assert 'harmfulness' in scorers and 'mcq' in scorers\n"
        "assert 'medsafe.scorers.harmfulness' not in sys.modules\n"
        "assert create_scorer(ScorerConfig(name='mcq')).name == 'mcq'\n"
        "assert 'medsafe.scorers.mcq' in sys.modules\n"
        "assert 'medsafe.scorers.harmfulness' not in sys.modules\n"
        "assert 'medsafe.judges.base' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
