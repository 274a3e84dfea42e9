"""Labeled data, training and held-out evaluation of the guardian head.

C is chosen by grouped, stratified cross-validation on the train split (a prompt's responses
never straddle folds), scored by macro-F1; the head is then refit on the whole train split and
evaluated once on the test split.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from medsafe.errors import SuiteError
from medsafe.guardian.evaluation import (
    GuardianEvaluation,
    SliceAccuracy,
    evaluate,
    slice_accuracy,
)
from medsafe.guardian.features import EMBEDDING_MODEL_ID, PairFeatures, featurize
from medsafe.guardian.model import LABELS, SAFE_LABELS, SHIPPED_HEAD, Guardian
from medsafe.guardian.principles import PRINCIPLE_IDS, PrincipleIndex, pair_vectors
from medsafe.guardian.references import ReferenceBank
from medsafe.suites.loaders._io import UniqueIds
from medsafe.suites.loaders.jsonl import json_records

SHIPPED_LABELS = Path(__file__).parent / "data" / "labels.jsonl"
C_GRID: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
N_BOOT = 2000
_LANGUAGES = ("en", "zh", "ja")
_CATEGORY = re.compile(r"ama-[1-9]")
_CHOICES: dict[str, tuple[str, ...]] = {
    "label": LABELS,
    "language": _LANGUAGES,
    "intent": ("harmful", "benign"),
    "split": ("train", "test"),
}


@dataclass(frozen=True)
class LabeledRow:
    """One labeled (prompt, response) pair."""

    id: str
    prompt: str
    response: str
    label: str
    language: str
    category: str
    intent: str
    split: str | None = None

    @property
    def group(self) -> str:
        """The prompt, whitespace-normalised: rows sharing it stay in one fold/split."""
        return " ".join(self.prompt.split())


def _parse_row(obj: object, path: Path, line: int) -> LabeledRow:
    if not isinstance(obj, dict):
        raise SuiteError("expected a JSON object", path=path, line=line)
    values: dict[str, Any] = {}
    for name in ("id", "prompt", "response", "label", "language", "category", "intent"):
        if name not in obj:
            raise SuiteError("missing", path=path, line=line, field=name)
        if not isinstance(obj[name], str):
            raise SuiteError("must be a string", path=path, line=line, field=name)
        values[name] = obj[name]
    split = obj.get("split")
    if split is not None and not isinstance(split, str):
        raise SuiteError("must be a string", path=path, line=line, field="split")
    values["split"] = split
    for name in ("id", "prompt"):
        if not values[name].strip():
            raise SuiteError("must not be empty", path=path, line=line, field=name)
    for name, allowed in _CHOICES.items():
        if values[name] is not None and values[name] not in allowed:
            raise SuiteError(
                f"{values[name]!r} is not one of {', '.join(allowed)}",
                path=path,
                line=line,
                field=name,
            )
    if not _CATEGORY.fullmatch(values["category"]):
        raise SuiteError(
            f"{values['category']!r} is not ama-1..ama-9", path=path, line=line, field="category"
        )
    return LabeledRow(**values)


def load_labels(path: Path) -> list[LabeledRow]:
    """Read and validate a labels JSONL file; errors name the file, line and field."""
    rows: list[LabeledRow] = []
    ids = UniqueIds()
    with_split: bool | None = None
    for line_no, obj in json_records(path):
        row = _parse_row(obj, path, line_no)
        ids.add(row.id, path, line_no)
        has_split = row.split is not None
        if with_split is None:
            with_split = has_split
        elif has_split != with_split:
            raise SuiteError(
                "either every row has a split or none does",
                path=path,
                line=line_no,
                field="split",
            )
        rows.append(row)
    if not rows:
        raise SuiteError("no labeled rows", path=path)
    return rows


def rows_hash(rows: Sequence[LabeledRow]) -> str:
    """SHA-256 of the rows' canonical JSON, in order."""
    blob = json.dumps([asdict(r) for r in rows], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def split_rows(
    rows: Sequence[LabeledRow], seed: int = 0
) -> tuple[list[LabeledRow], list[LabeledRow]]:
    """The file's train/test split, or a grouped 80/20 split by prompt when it has none."""
    if all(r.split is not None for r in rows):
        return [r for r in rows if r.split == "train"], [r for r in rows if r.split == "test"]
    from sklearn.model_selection import GroupShuffleSplit

    splitter = GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=seed)
    train_idx, test_idx = next(splitter.split(rows, groups=[r.group for r in rows]))
    return [rows[i] for i in sorted(train_idx)], [rows[i] for i in sorted(test_idx)]


def _pipeline(c: float) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    )


def choose_c(
    x: np.ndarray[Any, Any], y: Sequence[str], groups: Sequence[str], seed: int
) -> tuple[float, dict[str, float]]:
    """The C of :data:`C_GRID` with the best grouped-CV macro-F1 (ties: the smaller C)."""
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_score

    n_splits = min(5, len(set(groups)))
    if n_splits < 2:
        raise ValueError("need at least two distinct prompts in the train split")
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    scores: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # classes smaller than n_splits
        for c in C_GRID:
            cv = cross_val_score(
                _pipeline(c), x, list(y), groups=list(groups), cv=folds, scoring="f1_macro"
            )
            scores[repr(c)] = float(np.mean(cv))
    best = max(C_GRID, key=lambda c: (round(scores[repr(c)], 12), -c))
    return best, scores


def train_guardian(
    rows: Sequence[LabeledRow], *, seed: int = 0
) -> tuple[Guardian, GuardianEvaluation]:
    """Train on the train split, evaluate once on the test split (see :func:`split_rows`)."""
    train, test = split_rows(rows, seed)
    if not train or not test:
        raise ValueError(f"need train and test rows, got {len(train)} and {len(test)}")
    if missing := set(LABELS) - {r.label for r in train}:
        raise ValueError(f"train split lacks labels {sorted(missing)}")
    everything = [*train, *test]
    feats = featurize([r.prompt for r in everything], [r.response for r in everything])
    x_train, x_test = feats.matrix[: len(train)], feats.matrix[len(train) :]
    y_train = [r.label for r in train]
    best_c, cv_scores = choose_c(x_train, y_train, [r.group for r in train], seed)
    pipe = _pipeline(best_c).fit(x_train, y_train)
    scaler, lr = pipe[0], pipe[-1]
    order = [list(lr.classes_).index(c) for c in LABELS]
    safe = [i for i, r in enumerate(train) if r.label in SAFE_LABELS]
    bank = ReferenceBank.build(
        [train[i].id for i in safe],
        [train[i].response for i in safe],
        [train[i].language for i in safe],
        feats.prompt_vecs[safe],
    )
    meta: dict[str, Any] = {
        "seed": seed,
        "C": best_c,
        "cv_macro_f1": cv_scores,
        "n_train": len(train),
        "n_test": len(test),
        "train_label_counts": dict(sorted(Counter(y_train).items())),
        "training_set_sha256": rows_hash(train),
        "labels_sha256": rows_hash(rows),
        "embedding_model": EMBEDDING_MODEL_ID,
    }
    n = len(train)
    index = PrincipleIndex.fit(
        pair_vectors(feats.prompt_vecs[:n], feats.response_vecs[:n]), [r.category for r in train]
    )
    guardian = Guardian(
        classes=LABELS,
        coef=np.asarray(lr.coef_, dtype=np.float64)[order],
        intercept=np.asarray(lr.intercept_, dtype=np.float64)[order],
        mean=np.asarray(scaler.mean_, dtype=np.float64),
        scale=np.asarray(scaler.scale_, dtype=np.float64),
        references=bank,
        principles=index,
        meta=meta,
    )
    evaluation = _held_out(guardian, x_test, test, seed)
    evaluation = replace(evaluation, principle_hits=_principle_hits(index, feats, train, test))
    final = replace(guardian, meta={**meta, "evaluation": evaluation.to_dict()}, head_hash="")
    return final, evaluation


def _held_out(
    guardian: Guardian, x_test: np.ndarray[Any, Any], test: Sequence[LabeledRow], seed: int
) -> GuardianEvaluation:
    """``guardian``'s figures on the test rows (features ``x_test``)."""
    probs = guardian.predict_proba(x_test, [r.response for r in test])
    predicted = [LABELS[int(i)] for i in np.argmax(probs, axis=1)]
    return evaluate(
        [r.label for r in test],
        predicted,
        LABELS,
        groups=[r.group for r in test],
        languages=[r.language for r in test],
        n_boot=N_BOOT,
        seed=seed,
    )


def _principle_hits(
    index: PrincipleIndex,
    feats: PairFeatures,
    train: Sequence[LabeledRow],
    test: Sequence[LabeledRow],
) -> dict[str, SliceAccuracy]:
    """How often the principles of gold-unsafe test rows match their labelled category."""
    rows = [(len(train) + i, r) for i, r in enumerate(test) if r.label == "unsafe"]
    if not rows:
        return {}
    top1 = returned = 0
    for i, row in rows:
        p, r = feats.prompt_vecs[i], feats.response_vecs[i]
        sims = index.rank(pair_vectors(p[None, :], r[None, :]))[0]
        top1 += PRINCIPLE_IDS[int(np.argmax(sims))] == row.category
        returned += row.category in index.nearest(p, r)
    return {
        "top1": slice_accuracy(top1, len(rows)),
        "returned": slice_accuracy(returned, len(rows)),
    }


def train_and_save(
    labels: Path = SHIPPED_LABELS, out: Path = SHIPPED_HEAD, *, seed: int = 0
) -> GuardianEvaluation:
    """Train from a labels file and write the head to ``out`` (the CLI's ``guardian train``)."""
    guardian, evaluation = train_guardian(load_labels(labels), seed=seed)
    guardian.save(out)
    return evaluation


def reproduce_evaluation(
    labels: Path = SHIPPED_LABELS, head: Path = SHIPPED_HEAD
) -> GuardianEvaluation:
    """Retrain from the shipped labels with the shipped head's seed; return held-out figures."""
    seed = int(Guardian.load(head).meta.get("seed", 0)) if head.is_file() else 0
    return train_guardian(load_labels(labels), seed=seed)[1]


def evaluate_head(labels: Path = SHIPPED_LABELS, head: Path = SHIPPED_HEAD) -> GuardianEvaluation:
    """The held-out figures of the head as shipped (no retraining): its test split, scored.

    This is what the published figures describe; :func:`reproduce_evaluation` also retrains,
    which numerical library releases can move by an item or two.
    """
    guardian = Guardian.load(head)
    seed = int(guardian.meta.get("seed", 0))
    _train, test = split_rows(load_labels(labels), seed)
    feats = featurize([r.prompt for r in test], [r.response for r in test])
    evaluation = _held_out(guardian, feats.matrix, test, seed)
    if guardian.principles is None:
        return evaluation
    # _principle_hits indexes the features after the train rows: an empty train prefix here.
    return replace(evaluation, principle_hits=_principle_hits(guardian.principles, feats, [], test))
