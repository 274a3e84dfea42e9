"""The plug-in registry: registration, replacement, built-in protection, declared plug-ins."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path
from types import ModuleType

import pytest

from medsafe.errors import RegistryError
from medsafe.registry import Registry, RegistryWarning


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


def test_registering_a_name_again_replaces_it_with_a_warning() -> None:
    registry: Registry[int] = Registry("widget")
    registry.register("one")(1)
    with pytest.warns(RegistryWarning, match="widget 'one' is registered again"):
        registry.register("one")(2)
    assert registry.get("one") == 2


def test_builtin_names_are_protected_unless_replaced_explicitly() -> None:
    registry: Registry[int] = Registry("widget")
    registry.register("core", builtin=True)(1)
    assert registry.is_builtin("core")
    with pytest.raises(RegistryError, match=r"widget 'core' is built in.*replace_builtin=True"):
        registry.register("core")(2)
    assert registry.get("core") == 1
    registry.register("core", replace_builtin=True)(3)
    assert registry.get("core") == 3 and not registry.is_builtin("core")
    registry.register("core", builtin=True)(4)  # the built-in module imported later: ignored
    assert registry.get("core") == 3


def test_medsafe_modules_register_builtins() -> None:
    from medsafe.models.base import backends
    from medsafe.scale import Scale
    from medsafe.scorers.mcq import create_mcq_scorer
    from medsafe.scoring import register_scorer, scorers
    from medsafe.suites.base import loaders

    assert scorers.is_builtin("mcq") and scorers.is_builtin("guardian")
    assert backends.is_builtin("openai") and loaders.is_builtin("jsonl")
    with pytest.raises(RegistryError, match="scorer 'guardian' is built in"):
        mine = Scale(kind="binary", title="mine", lo=0, hi=1)
        register_scorer("guardian", mine)(create_mcq_scorer)


def test_builtin_scorers_are_known_before_a_plugin_registers() -> None:
    code = (
        "import sys, pytest\n"
        "from medsafe.errors import RegistryError\n"
        "from medsafe.scale import Scale\n"
        "from medsafe.scoring import register_scorer\n"
        "assert 'medsafe.scorers.builtin' not in sys.modules\n"
        "scale = Scale(kind='binary', title='t', lo=0, hi=1)\n"
        "try:\n"
        "    register_scorer('mcq', scale)(lambda config: None)\n"
        "except RegistryError as exc:\n"
        "    assert 'built in' in str(exc)\n"
        "else:\n"
        "    raise SystemExit('a plug-in took the built-in name mcq')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_declared_scorers_import_their_module_on_first_use_only() -> None:
    code = (
        "import sys\n"
        "from medsafe.scoring import ScorerConfig, create_scorer, scorers\n"
        "import medsafe.scorers.builtin\n"
        "assert 'harmfulness' in scorers and 'mcq' in scorers\n"
        "assert 'medsafe.scorers.harmfulness' not in sys.modules\n"
        "assert create_scorer(ScorerConfig(name='mcq')).name == 'mcq'\n"
        "assert 'medsafe.scorers.mcq' in sys.modules\n"
        "assert 'medsafe.scorers.harmfulness' not in sys.modules\n"
        "assert 'medsafe.judges.base' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _entry_points(*points: EntryPoint) -> object:
    def select(group: str) -> list[EntryPoint]:
        return [p for p in points if p.group == group]

    return select


def test_entry_points_are_declared_on_first_lookup_and_loaded_on_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry: Registry[int] = Registry("widget", group="test.widgets")
    holder = ModuleType("widget_registry_holder")
    holder.__dict__["registry"] = registry
    monkeypatch.setitem(sys.modules, "widget_registry_holder", holder)
    (tmp_path / "widget_plug.py").write_text(
        "from widget_registry_holder import registry\nregistry.register('plug')(7)\n"
    )
    (tmp_path / "widget_empty.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    points = (
        EntryPoint("plug", "widget_plug", "test.widgets"),
        EntryPoint("empty", "widget_empty", "test.widgets"),
        EntryPoint("broken", "no_such_module_for_medsafe:x", "test.widgets"),
    )
    monkeypatch.setattr("medsafe.registry.entry_points", _entry_points(*points))
    assert registry.names() == ["broken", "empty", "plug"]
    assert "widget_plug" not in sys.modules  # declared, not imported
    assert registry.get("plug") == 7
    with pytest.raises(RegistryError, match=r"widget 'empty'.*loaded but registered no widget"):
        registry.get("empty")
    with pytest.raises(RegistryError, match=r"widget 'broken'.*failed to load: ModuleNotFound"):
        registry.get("broken")
    monkeypatch.delitem(sys.modules, "widget_plug")


def test_an_entry_point_may_not_take_a_builtin_name_silently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry: Registry[int] = Registry("widget", group="test.widgets")
    registry.register("core", builtin=True)(1)
    point = EntryPoint("core", "json", "test.widgets")  # imports fine, replaces nothing
    monkeypatch.setattr("medsafe.registry.entry_points", _entry_points(point))
    with pytest.raises(RegistryError, match="widget 'core' is built in, yet entry point core"):
        registry.names()
    assert registry.get("core") == 1


def test_a_plugin_named_like_a_builtin_cannot_hide_it_while_builtins_load() -> None:
    code = (
        "from importlib.metadata import EntryPoint\n"
        "import medsafe.registry\n"
        "from medsafe.errors import RegistryError\n"
        "point = EntryPoint('rubric', 'json', 'medsafe.scorers')\n"
        "medsafe.registry.entry_points = lambda group: [point] if 'scorers' in group else []\n"
        "import medsafe.scorers.builtin  # asks 'name in scorers' while it declares them\n"
        "from medsafe.scoring import scorers\n"
        "try:\n"
        "    scorers.names()\n"
        "except RegistryError as exc:\n"
        "    assert 'is built in, yet entry point rubric' in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('a plug-in hid the built-in scorer rubric')\n"
        "assert scorers.is_builtin('rubric')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_lookup_while_another_thread_imports_the_builtins_waits_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import uuid

    name = f"slow_builtins_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "import sys, time\n"
        "registry = sys.modules['tests.test_registry'].SLOW\n"
        "time.sleep(0.5)  # the first thread is still importing when the second one asks\n"
        "registry.register('widget', builtin=True)(42)\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry[int] = Registry("widget", group="medsafe.test-none", builtins=name)
    monkeypatch.setattr(sys.modules[__name__], "SLOW", registry, raising=False)
    found: dict[str, object] = {}

    def look(who: str) -> None:
        try:
            found[who] = registry.get("widget")
        except RegistryError as exc:  # before the fix: the second thread gave up at once
            found[who] = exc

    first = threading.Thread(target=look, args=("first",))
    first.start()
    while name not in sys.modules:  # the first thread has begun the import
        pass
    second = threading.Thread(target=look, args=("second",))
    second.start()
    first.join(10)
    second.join(10)
    assert found == {"first": 42, "second": 42}
