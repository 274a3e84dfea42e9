"""The taxonomy registry: bundled frameworks, lookups, localized names and honest provenance."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from medsafe.errors import RegistryError
from medsafe.taxonomy import (
    Category,
    Framework,
    ama_principle,
    category,
    find_category,
    framework_of,
    frameworks,
    get_framework,
)
from medsafe.taxonomy.registry import _check

# The 14 scene names of the MedEthicAlign sample release (subjective part), as written there.
MEDES_SCENES_ZH = (
    "辅助生殖", "常规护理", "特殊疾病护理", "护患关系", "动物实验",
    "器官移植", "急危重症处置", "常规诊疗", "医患关系", "基因/干细胞诊疗",
    "数字医疗", "安宁疗护", "公共卫生资源分配", "人体试验",
)  # fmt: skip


def test_bundled_frameworks_and_their_sizes() -> None:
    sizes = {f.name: len(f.categories) for f in frameworks()}
    assert sizes == {"ama": 9, "medes": 14, "cn-ethics": 11, "cn-safety": 9}
    assert [f.name for f in frameworks()] == sorted(sizes)


def test_ama_principles_are_numbered_like_medsafetybench() -> None:
    assert [ama_principle(i).id for i in range(1, 10)] == [f"ama-{i}" for i in range(1, 10)]
    assert get_framework("ama").ids() == [f"ama-{i}" for i in range(1, 10)]
    assert "law" in ama_principle(3).name.lower()
    assert "2403.03744" in get_framework("ama").source


@pytest.mark.parametrize("bad", [0, 10, -1, True])
def test_ama_principle_out_of_range(bad: int) -> None:
    with pytest.raises(RegistryError, match="1-9"):
        ama_principle(bad)


def test_category_lookup_and_errors() -> None:
    assert category("medes", "medes-human-trials").name_zh == "人体试验"
    with pytest.raises(RegistryError, match=r"no category 'ama-10'.*ama-1"):
        category("ama", "ama-10")
    with pytest.raises(RegistryError, match=r"unknown taxonomy framework 'who'.*cn-ethics"):
        get_framework("who")


def test_framework_of_every_category_and_unknown_ids() -> None:
    for framework in frameworks():
        for cat in framework.categories:
            assert framework_of(cat.id) == framework.name
            assert find_category(cat.id) == cat
    assert framework_of("ama-0") is None
    assert framework_of("") is None
    assert find_category("clinical_knowledge") is None


def test_category_ids_are_unique_prefixed_and_described() -> None:
    ids = [c.id for f in frameworks() for c in f.categories]
    assert len(ids) == len(set(ids))
    for framework in frameworks():
        for cat in framework.categories:
            assert cat.id.startswith(f"{framework.name}-")
            assert re.fullmatch(r"[a-z0-9-]+", cat.id)
            assert cat.name and cat.description
            assert cat.name_zh and cat.name_ja


def test_medes_scenes_resolve_from_the_released_chinese_names() -> None:
    medes = get_framework("medes")
    resolved = [medes.resolve(scene) for scene in MEDES_SCENES_ZH]
    assert all(c is not None for c in resolved)
    assert len({c.id for c in resolved if c is not None}) == 14
    # the objective part spells the gene scene without a slash
    gene = medes.resolve("基因干细胞诊疗")
    assert gene is not None and gene.id == "medes-gene-stem-cell-therapy"
    assert medes.resolve("Human-subject research") == medes.get("medes-human-trials")
    assert medes.resolve("远程会诊") is None


def test_labels_fall_back_to_english() -> None:
    cat = category("cn-safety", "cn-safety-medication")
    assert cat.label("zh") == "用药安全"
    assert cat.label("ja") == "薬剤の安全"
    assert cat.label("en") == "Medication safety"
    bare = Category(id="x-y", framework="x", name="Only English", description="d")
    assert bare.label("ja") == "Only English"


def test_provenance_is_documented_honestly() -> None:
    for name in ("cn-ethics", "cn-safety"):
        framework = get_framework(name)
        assert framework.provenance == "reconstructed"
        assert "2505.07205" in framework.source
        assert "own proposal" in framework.provenance_note
    assert get_framework("medes").provenance == "adapted"
    assert "MedEthicAlign" in get_framework("medes").source


def test_data_file_invariants_are_checked(tmp_path: Path) -> None:
    stray = Category(id="ama-1", framework="ama", name="n", description="d")
    wrong = Framework(
        name="medes",
        title="t",
        description="d",
        source="s",
        provenance="adapted",
        provenance_note="n",
        categories=(stray,),
    )
    with pytest.raises(ValueError, match="does not belong"):
        _check(wrong, tmp_path)
    twice = wrong.model_copy(
        update={"name": "ama", "categories": (stray, stray)},
    )
    with pytest.raises(ValueError, match="appears twice"):
        _check(twice, tmp_path)
