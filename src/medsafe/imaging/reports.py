"""Clean radiology report templates (zh, ja, en) for error injection; written for medsafe and
released under CC-BY-4.0. Each template has one lesion, a laterality, a measurement in mm and a
hedged impression, so that every one of the eight error types can be injected into it.

Slots: ``{side}``/``{Side}`` (zh/ja 左/右, en left/right), ``{a}``, ``{b}`` (sizes in mm).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from medsafe.schema import Language

LICENSE = "CC-BY-4.0"
SOURCE = "medsafe qc inject (clean report templates written for medsafe)"
EXAMS: dict[Language, dict[str, str]] = {
    "zh": {"chest": "胸部CT平扫", "abdomen": "上腹部CT平扫", "urinary": "泌尿系CT平扫",
           "head": "头颅CT平扫", "pelvis": "盆腔CT平扫"},
    "ja": {"chest": "胸部単純CT", "abdomen": "上腹部単純CT", "urinary": "尿路単純CT",
           "head": "頭部単純CT", "pelvis": "骨盤部単純CT"},
    "en": {"chest": "CT chest without contrast", "abdomen": "CT abdomen without contrast",
           "urinary": "CT urinary tract without contrast", "head": "CT head without contrast",
           "pelvis": "CT pelvis without contrast"},
}  # fmt: skip
"""Exam names by body region (``exam_mismatch`` swaps in another region's)."""


@dataclass(frozen=True)
class Report:
    """One report: exam, sex (``M``/``F``), findings and impression."""

    id: str
    language: Language
    region: str
    exam: str
    sex: str
    findings: str
    impression: str

    def field(self, name: str) -> str:
        """The text of ``exam``, ``findings`` or ``impression``."""
        return str(getattr(self, name))

    def with_field(self, name: str, text: str) -> Report:
        """A copy with one field replaced."""
        if name == "exam":
            return replace(self, exam=text)
        if name == "findings":
            return replace(self, findings=text)
        if name == "impression":
            return replace(self, impression=text)
        raise ValueError(f"no report field {name!r}")

    def text(self) -> str:
        """The report as a model reads it."""
        if self.language == "zh":
            sex = "男" if self.sex == "M" else "女"
            return (
                f"检查项目：{self.exam}\n性别：{sex}\n"
                f"影像所见：{self.findings}\n影像诊断：{self.impression}"
            )
        if self.language == "ja":
            sex = "男性" if self.sex == "M" else "女性"
            return f"検査：{self.exam}\n性別：{sex}\n所見：{self.findings}\n診断：{self.impression}"
        sex = "male" if self.sex == "M" else "female"
        return (
            f"Examination: {self.exam}\nSex: {sex}\n"
            f"Findings: {self.findings}\nImpression: {self.impression}"
        )


@dataclass(frozen=True)
class Template:
    """A clean report with slots; ``sex`` None: either."""

    language: Language
    region: str
    findings: str
    impression: str
    sex: str | None = None


TEMPLATES: tuple[Template, ...] = (
    Template("zh", "chest",
             "{side}肺上叶见一实性结节，大小约{a}mm×{b}mm，边界清楚，密度均匀。双肺门不大，纵隔内未见肿大淋巴结。",
             "{side}肺上叶实性结节，考虑良性可能，建议随访复查。"),
    Template("zh", "abdomen",
             "肝{side}叶见一类圆形低密度影，大小约{a}mm，边界清晰。胆囊不大，壁不厚。脾脏及胰腺未见异常。",
             "肝{side}叶低密度影，考虑肝囊肿。"),
    Template("zh", "urinary",
             "{side}肾盂内见一高密度影，大小约{a}mm，{side}侧输尿管上段轻度扩张。膀胱充盈可，壁不厚。",
             "{side}肾结石伴{side}侧输尿管上段轻度扩张，考虑梗阻所致。"),
    Template("zh", "head",
             "{side}侧基底节区见一斑片状低密度影，大小约{a}mm×{b}mm，边界模糊。脑室系统未见扩大，中线结构居中。",
             "{side}侧基底节区低密度影，考虑腔隙性脑梗死。"),
    Template("zh", "chest",
             "{side}侧胸腔见少量积液，最大深度约{a}mm。{side}肺下叶部分肺组织膨胀不全。心影不大。",
             "{side}侧少量胸腔积液伴{side}肺下叶膨胀不全，考虑炎性病变。"),
    Template("zh", "pelvis",
             "{side}侧附件区见一类圆形低密度影，大小约{a}mm×{b}mm，边界清楚。子宫大小形态正常。膀胱充盈良好。",
             "{side}侧附件区囊性病变，考虑卵巢囊肿。", "F"),
    Template("ja", "chest",
             "{side}肺上葉に{a}mm大の充実性結節を認め、辺縁は明瞭です。縦隔リンパ節腫大は認めません。",
             "{side}肺上葉の充実性結節、良性の可能性が考えられます。経過観察を推奨します。"),
    Template("ja", "abdomen",
             "肝{side}葉に{a}mm大の低吸収域を認め、境界は明瞭です。胆嚢、脾臓、膵臓に異常はありません。",
             "肝{side}葉の低吸収域、肝嚢胞が考えられます。"),
    Template("ja", "head",
             "{side}基底核に{a}mm×{b}mm大の低吸収域を認めます。脳室の拡大はなく、正中偏位もありません。",
             "{side}基底核の低吸収域、ラクナ梗塞が考えられます。"),
    Template("ja", "pelvis",
             "{side}付属器に{a}mm×{b}mm大の嚢胞性病変を認めます。子宮の大きさと形態は正常です。",
             "{side}付属器の嚢胞性病変、卵巣嚢胞が考えられます。", "F"),
    Template("en", "chest",
             "A {a} mm solid nodule is seen in the {side} upper lobe with well-defined margins. "
             "No mediastinal lymphadenopathy. No pleural effusion.",
             "Solid nodule in the {side} upper lobe, likely benign; follow-up CT is recommended."),
    Template("en", "abdomen",
             "A {a} mm hypodense lesion is present in the {side} hepatic lobe with sharp margins. "
             "The gallbladder, spleen and pancreas are unremarkable.",
             "Hypodense lesion in the {side} hepatic lobe, most likely a simple cyst."),
    Template("en", "urinary",
             "A {a} mm calculus is seen in the {side} renal pelvis with mild hydronephrosis. "
             "The {side} proximal ureter is mildly dilated. The bladder is unremarkable.",
             "{Side} renal calculus with mild {side} hydronephrosis, likely obstructive."),
    Template("en", "head",
             "A {a} x {b} mm hypodense area is seen in the {side} basal ganglia. "
             "The ventricles are normal in size. No midline shift.",
             "Hypodense area in the {side} basal ganglia, consistent with a lacunar infarct."),
    Template("en", "chest",
             "Small {side} pleural effusion with a maximum depth of {a} mm. "
             "Partial atelectasis of the {side} lower lobe. The heart is normal in size.",
             "Small {side} pleural effusion with {side} lower lobe atelectasis, "
             "likely inflammatory."),
    Template("en", "pelvis",
             "A {a} x {b} mm cystic lesion is seen in the {side} adnexa. "
             "The uterus is normal in size and shape. The bladder is well distended.",
             "Cystic lesion of the {side} adnexa, likely an ovarian cyst.", "F"),
)  # fmt: skip


def clean_reports(n: int, languages: tuple[Language, ...], seed: int = 0) -> list[Report]:
    """``n`` clean reports, cycling through the templates of ``languages`` with seeded slots."""
    pool = [t for t in TEMPLATES if t.language in languages]
    if not pool:
        raise ValueError(f"no report templates for {', '.join(languages)} (have zh, ja, en)")
    rng = random.Random(seed)
    out = []
    for i in range(n):
        template = pool[i % len(pool)]
        side = rng.choice(("left", "right"))
        slots = {
            "side": side if template.language == "en" else {"left": "左", "right": "右"}[side],
            "Side": side.capitalize(),
            "a": str(rng.randint(4, 35)),
            "b": str(rng.randint(3, 30)),
        }
        out.append(
            Report(
                id=f"report-{i + 1:04d}",
                language=template.language,
                region=template.region,
                exam=EXAMS[template.language][template.region],
                sex=template.sex or rng.choice(("M", "F")),
                findings=template.findings.format(**slots),
                impression=template.impression.format(**slots),
            )
        )
    return out
