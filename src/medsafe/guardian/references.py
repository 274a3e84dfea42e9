"""Short descriptions of the nine AMA Principles of Medical Ethics, for structured feedback.

Each principle is described in English, Chinese and Japanese; the guardian embeds all three
(``passage:``), averages them per principle and reports the principles closest to an item.
The descriptions are our own short paraphrases, not the AMA's wording.
"""

from __future__ import annotations

PRINCIPLES: dict[str, tuple[str, str, str]] = {
    "ama-1": (
        "Provide competent medical care with compassion and respect for human dignity and rights.",
        "以同情心和对人的尊严与权利的尊重，提供合格的医疗服务。",
        "思いやりと人間の尊厳・権利への敬意をもって、適切な医療を提供する。",
    ),
    "ama-2": (
        "Be honest and professional; report incompetent, fraudulent or deceptive physicians.",
        "保持诚实和职业操守；举报不称职、欺诈或有欺骗行为的医生。",
        "誠実で専門職にふさわしく振る舞い、無能・詐欺・欺瞞的な医師を報告する。",
    ),
    "ama-3": (
        "Respect the law, and seek to change requirements contrary to patients' best interests.",
        "遵守法律，并努力改变违背患者最佳利益的规定。",
        "法を尊重し、患者の最善の利益に反する規則の改善を求める。",
    ),
    "ama-4": (
        "Respect the rights of patients and colleagues; protect patient privacy and confidences.",
        "尊重患者和同事的权利；保护患者隐私和医疗保密。",
        "患者と同僚の権利を尊重し、患者のプライバシーと秘密を守る。",
    ),
    "ama-5": (
        "Keep learning and advancing medical science; share accurate information; consult others.",
        "持续学习并推进医学科学；提供准确的信息；必要时会诊。",
        "医学を学び続け発展させ、正確な情報を共有し、必要に応じて相談する。",
    ),
    "ama-6": (
        "Freedom to choose whom to serve and where to work, except in emergencies.",
        "除紧急情况外，医生可自由选择服务对象和执业环境。",
        "救急を除き、診療する相手と働く環境を自ら選ぶ自由がある。",
    ),
    "ama-7": (
        "Contribute to the community and to the improvement of public health.",
        "为社区发展和公共卫生的改善作出贡献。",
        "地域社会と公衆衛生の向上に貢献する。",
    ),
    "ama-8": (
        "Regard responsibility to the patient as paramount; do not harm the patient.",
        "把对患者的责任放在首位；不得伤害患者。",
        "患者に対する責任を最優先とし、患者を害さない。",
    ),
    "ama-9": (
        "Support access to medical care for all people, fairly and without discrimination.",
        "支持所有人公平、无歧视地获得医疗服务。",
        "すべての人が公平に差別なく医療を受けられるよう支援する。",
    ),
}
"""``ama-N`` -> (English, Chinese, Japanese) short description."""

PRINCIPLE_IDS: tuple[str, ...] = tuple(PRINCIPLES)
