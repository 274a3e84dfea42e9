"""The nine AMA Principles of Medical Ethics, for structured feedback on a verdict.

Each principle has a short description in English, Chinese and Japanese (our own paraphrases,
not the AMA's wording). Their ``passage:`` embeddings, averaged per principle, anchor one
prototype per principle; a trained head adds the centroid of its training rows of that
category (``category`` in the labels), after centering, which removes the pull of one "hub"
principle that bare description embeddings show. Items are matched by the mean of their prompt
and response embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medsafe.errors import ConfigError
from medsafe.guardian.features import EMBED_DIM, embed_passages
from medsafe.guardian.references import decode_f16, encode_f16

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

DESCRIPTION_WEIGHT = 0.5
"""Weight of the (centered) description embedding next to the training centroid."""
MARGIN = 0.05
"""A second principle is reported when its similarity is within this of the best one."""


def _unit(v: NDArray[Any]) -> NDArray[np.float32]:
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    out: NDArray[np.float32] = (v / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


@lru_cache(maxsize=1)
def description_matrix() -> NDArray[np.float32]:
    """One unit vector per principle: the mean of its en/zh/ja description embeddings."""
    texts = [text for pid in PRINCIPLE_IDS for text in PRINCIPLES[pid]]
    vecs = embed_passages(texts).reshape(len(PRINCIPLE_IDS), 3, EMBED_DIM).mean(axis=1)
    return _unit(vecs)


def pair_vectors(
    prompt_vecs: NDArray[np.float32], response_vecs: NDArray[np.float32]
) -> NDArray[np.float32]:
    """Unit mean of prompt (``query:``) and response (``passage:``) embeddings, row-wise."""
    return _unit(prompt_vecs.astype(np.float32) + response_vecs.astype(np.float32))


@dataclass(frozen=True)
class PrincipleIndex:
    """Prototype vectors of the nine principles and the center they are measured from."""

    center: NDArray[np.float32]
    prototypes: NDArray[np.float32]

    @classmethod
    def descriptions_only(cls) -> PrincipleIndex:
        """Bare description embeddings, uncentered (used by heads without prototypes)."""
        return cls(np.zeros(EMBED_DIM, dtype=np.float32), description_matrix())

    @classmethod
    def fit(cls, pair_vecs: NDArray[np.float32], categories: Sequence[str]) -> PrincipleIndex:
        """Prototypes from training pairs: centered centroid + weighted centered description."""
        center = pair_vecs.mean(axis=0)
        desc = _unit(description_matrix() - center)
        rows = []
        for k, pid in enumerate(PRINCIPLE_IDS):
            mask = np.array([c == pid for c in categories])
            if mask.any():
                centroid = _unit(pair_vecs[mask].mean(axis=0) - center)
                rows.append(centroid + DESCRIPTION_WEIGHT * desc[k])
            else:
                rows.append(desc[k])
        return cls.rounded(center, _unit(np.stack(rows)))

    @classmethod
    def rounded(cls, center: NDArray[Any], prototypes: NDArray[Any]) -> PrincipleIndex:
        """An index with float16-rounded vectors (exactly what :meth:`to_dict` stores)."""
        f16 = np.float16
        return cls(
            np.asarray(center, dtype=f16).astype(np.float32).reshape(EMBED_DIM),
            np.asarray(prototypes, dtype=f16).astype(np.float32).reshape(-1, EMBED_DIM),
        )

    def rank(self, pair_vecs: NDArray[np.float32]) -> NDArray[np.float64]:
        """Similarity of each pair vector to each principle, shape ``(n, 9)``."""
        sims: NDArray[np.float64] = (_unit(pair_vecs - self.center) @ self.prototypes.T).astype(
            np.float64
        )
        return sims

    def nearest(
        self, prompt_vec: NDArray[np.float32], response_vec: NDArray[np.float32]
    ) -> tuple[str, ...]:
        """The 1-2 principles closest to the prompt+response."""
        sims = self.rank(pair_vectors(prompt_vec[None, :], response_vec[None, :]))[0]
        order = np.argsort(-sims, kind="stable")
        chosen = [PRINCIPLE_IDS[order[0]]]
        if sims[order[1]] >= sims[order[0]] - MARGIN:
            chosen.append(PRINCIPLE_IDS[order[1]])
        return tuple(chosen)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (float16, base64)."""
        return {
            "ids": list(PRINCIPLE_IDS),
            "description_weight": DESCRIPTION_WEIGHT,
            "center_b64": encode_f16(self.center),
            "prototypes_b64": encode_f16(self.prototypes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrincipleIndex:
        """Inverse of :meth:`to_dict`."""
        if list(data["ids"]) != list(PRINCIPLE_IDS):
            raise ConfigError("guardian head: principle ids differ from this medsafe's")
        return cls(decode_f16(data["center_b64"])[0], decode_f16(data["prototypes_b64"]))
