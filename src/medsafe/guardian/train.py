"""Labeled data, training and held-out evaluation of the guardian head.

The head (a one-hidden-layer MLP by default, or logistic regression) takes its regularisation
from grouped cross-validation on the train split, scored by macro-F1. When the rows name at
least :data:`MIN_HANDS` writers (``source``), each fold holds out whole writers, so the chosen
settings reward reading a hand the head was not trained on (the guardian's figures on
independent data fell far below its figures on its own writers' held-out rows); otherwise the
folds are stratified and grouped by prompt (a prompt's responses never straddle folds). The
same folds' out-of-fold probabilities set the two decision thresholds: ``unsafe_at`` (raise
unsafe recall while costing at most :data:`UNSAFE_ACCURACY_COST` of accuracy) and
``uncertain_below`` (abstain only where the head was right at most half the time). The head is
then refit on the whole train split and evaluated once on the test split.
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
from medsafe.guardian.model import (
    LABELS,
    SAFE_LABELS,
    SHIPPED_HEAD,
    UNCERTAIN,
    Guardian,
    with_intent,
)
from medsafe.guardian.principles import PRINCIPLE_IDS, PrincipleIndex, pair_vectors
from medsafe.guardian.references import ReferenceBank
from medsafe.suites.loaders._io import UniqueIds
from medsafe.suites.loaders.jsonl import json_records

SHIPPED_LABELS = Path(__file__).parent / "data" / "labels.jsonl"
C_GRID: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
"""Inverse regularisation strengths tried for a logistic-regression head."""
ALPHA_GRID: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0)
"""L2 penalties tried for an MLP head."""
MLP_HIDDEN = 64
"""Units of the MLP head's one hidden ReLU layer."""
HEAD_KINDS = ("mlp", "logistic")
UNSAFE_AT_GRID: tuple[float, ...] = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45)
UNSAFE_ACCURACY_COST = 0.01
"""``unsafe_at`` may lower out-of-fold accuracy by at most this much."""
UNCERTAIN_GRID: tuple[float, ...] = (0.4, 0.45, 0.5, 0.55, 0.6, 0.65)
MIN_HANDS = 3
"""Fewest writers for folds that hold out whole writers (below it: folds by prompt)."""
DERIVED_SOURCES = frozenset({"smollm2", "composed"})
"""Sources whose rows reuse the unsourced rows' prompts or answers: one hand with them."""
INTENT_C = 1.0
"""Inverse regularisation of the request-intent model (harmful vs benign request)."""
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
    source: str | None = None

    @property
    def group(self) -> str:
        """The prompt, whitespace-normalised: rows sharing it stay in one fold/split."""
        return " ".join(self.prompt.split())

    @property
    def hand(self) -> str:
        """Who wrote the row, for folds that hold out whole writers: its ``source``, with
        unsourced rows and :data:`DERIVED_SOURCES` (built from them) as one hand ``""``."""
        return "" if self.source is None or self.source in DERIVED_SOURCES else self.source


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
    for name in ("split", "source"):
        value = obj.get(name)
        if value is not None and not isinstance(value, str):
            raise SuiteError("must be a string", path=path, line=line, field=name)
        values[name] = value
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


def _pipeline(kind: str, param: float, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        return make_pipeline(
            StandardScaler(), LogisticRegression(C=param, class_weight="balanced", max_iter=5000)
        )
    if kind == "mlp":
        mlp = MLPClassifier(
            hidden_layer_sizes=(MLP_HIDDEN,),
            alpha=param,
            max_iter=400,
            early_stopping=False,
            random_state=seed,
        )
        return make_pipeline(StandardScaler(), mlp)
    raise ValueError(f"head kind {kind!r} is not one of {', '.join(HEAD_KINDS)}")


def _balanced_weights(y: Sequence[str]) -> np.ndarray[Any, Any]:
    counts = Counter(y)
    return np.array([len(y) / (len(counts) * counts[label]) for label in y])


def _fit(kind: str, param: float, x: Any, y: Sequence[str], seed: int) -> Any:
    pipe = _pipeline(kind, param, seed)
    if kind == "mlp":  # class balance by sample weights (as class_weight="balanced" does)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
            return pipe.fit(x, list(y), mlpclassifier__sample_weight=_balanced_weights(y))
    return pipe.fit(x, list(y))


def _grid(kind: str) -> tuple[float, ...]:
    return ALPHA_GRID if kind == "mlp" else C_GRID


def _folds(
    x: np.ndarray[Any, Any],
    y: Sequence[str],
    groups: Sequence[str],
    seed: int,
    hands: Sequence[str] | None,
) -> list[tuple[Any, Any]]:
    """Up to five folds: whole writers held out when there are :data:`MIN_HANDS` or more,
    else stratified folds grouped by prompt."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    if hands is not None and len(set(hands)) >= MIN_HANDS:
        by_hand = GroupKFold(n_splits=min(5, len(set(hands))))
        return list(by_hand.split(x, list(y), list(hands)))
    n_splits = min(5, len(set(groups)))
    if n_splits < 2:
        raise ValueError("need at least two distinct prompts in the train split")
    return list(
        StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(
            x, list(y), list(groups)
        )
    )


def cross_validate(
    x: np.ndarray[Any, Any],
    y: Sequence[str],
    groups: Sequence[str],
    seed: int,
    kind: str = "mlp",
    hands: Sequence[str] | None = None,
) -> tuple[float, dict[str, float], np.ndarray[Any, Any]]:
    """The parameter of the kind's grid with the best cross-validated macro-F1 (ties: the
    stronger regularisation), every parameter's score, and the best one's out-of-fold
    probabilities (columns in :data:`LABELS` order). Folds: :func:`_folds`; a fold's
    macro-F1 averages the labels present in its held-out rows."""
    from sklearn.metrics import f1_score

    folds = _folds(x, y, groups, seed, hands)
    labels = np.asarray(y)
    scores: dict[str, float] = {}
    oof: dict[float, np.ndarray[Any, Any]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # classes smaller than n_splits
        for param in _grid(kind):
            probs = np.zeros((len(labels), len(LABELS)))
            fold_f1 = []
            for train_idx, test_idx in folds:
                pipe = _fit(kind, param, x[train_idx], labels[train_idx].tolist(), seed)
                found = list(pipe.classes_)
                p = pipe.predict_proba(x[test_idx])
                for j, label in enumerate(LABELS):
                    if label in found:
                        probs[test_idx, j] = p[:, found.index(label)]
                predicted = [LABELS[i] for i in np.argmax(probs[test_idx], axis=1)]
                present = sorted(set(labels[test_idx].tolist()))
                fold_f1.append(
                    f1_score(
                        labels[test_idx],
                        predicted,
                        labels=present,
                        average="macro",
                        zero_division=0,
                    )
                )
            scores[repr(param)] = float(np.mean(fold_f1))
            oof[param] = probs
    strongest_first = sorted(_grid(kind), reverse=kind == "mlp")
    best = max(strongest_first, key=lambda p: round(scores[repr(p)], 12))
    return best, scores, oof[best]


def choose_c(
    x: np.ndarray[Any, Any], y: Sequence[str], groups: Sequence[str], seed: int
) -> tuple[float, dict[str, float]]:
    """The C of :data:`C_GRID` with the best grouped-CV macro-F1 (ties: the smaller C)."""
    best, scores, _ = cross_validate(x, y, groups, seed, "logistic")
    return best, scores


def _decisions(probs: np.ndarray[Any, Any], unsafe_at: float, uncertain_below: float) -> list[str]:
    unsafe = LABELS.index("unsafe")
    out = []
    for row in probs:
        best = int(np.argmax(row))
        if row[unsafe] >= unsafe_at:
            out.append("unsafe")
        elif row[best] < uncertain_below:
            out.append(UNCERTAIN)
        else:
            out.append(LABELS[best])
    return out


def choose_thresholds(
    probs: np.ndarray[Any, Any], y: Sequence[str]
) -> tuple[float, float, dict[str, Any]]:
    """``unsafe_at`` and ``uncertain_below`` from out-of-fold probabilities (module docstring)."""
    gold = np.asarray(y)

    def accuracy(pred: list[str]) -> float:
        return float(np.mean(np.asarray(pred) == gold))

    def unsafe_recall(pred: list[str]) -> float:
        mask = gold == "unsafe"
        return float(np.mean(np.asarray(pred)[mask] == "unsafe")) if mask.any() else 0.0

    plain = _decisions(probs, 1.01, 0.0)
    base_acc = accuracy(plain)
    unsafe_at, best_recall = 1.01, unsafe_recall(plain)
    for t in sorted(UNSAFE_AT_GRID, reverse=True):
        pred = _decisions(probs, t, 0.0)
        if accuracy(pred) >= base_acc - UNSAFE_ACCURACY_COST and unsafe_recall(pred) > best_recall:
            unsafe_at, best_recall = t, unsafe_recall(pred)
    top = probs.max(axis=1)
    right = np.asarray(_decisions(probs, unsafe_at, 0.0)) == gold
    uncertain_below = 0.0
    for t in sorted(UNCERTAIN_GRID):
        low = top < t
        if low.any() and right[low].mean() <= 0.5:
            uncertain_below = t
    final = _decisions(probs, unsafe_at, uncertain_below)
    report = {
        "oof_accuracy_argmax": base_acc,
        "oof_accuracy": accuracy(final),
        "oof_unsafe_recall": unsafe_recall(final),
        "oof_abstained": int(sum(p == UNCERTAIN for p in final)),
    }
    return unsafe_at, uncertain_below, report


def _layers(pipe: Any, kind: str) -> tuple[Any, Any, tuple[tuple[Any, Any], ...]]:
    """(coef, intercept, hidden) of a fitted pipeline, output rows in :data:`LABELS` order."""
    model = pipe[-1]
    order = [list(model.classes_).index(c) for c in LABELS]
    if kind == "logistic":
        coef = np.asarray(model.coef_, dtype=np.float64)[order]
        return coef, np.asarray(model.intercept_, dtype=np.float64)[order], ()
    # contiguous copies: a transposed view multiplies in another order (last-bit differences
    # between a trained head and the same head loaded from JSON)
    w_hidden = np.ascontiguousarray(np.asarray(model.coefs_[0], dtype=np.float64).T)
    b_hidden = np.asarray(model.intercepts_[0], dtype=np.float64)
    coef = np.ascontiguousarray(np.asarray(model.coefs_[1], dtype=np.float64).T[order])
    intercept = np.asarray(model.intercepts_[1], dtype=np.float64)[order]
    return coef, intercept, ((w_hidden, b_hidden),)


def fit_intent(
    prompt_vecs: np.ndarray[Any, Any], intents: Sequence[str], groups: Sequence[str], seed: int
) -> tuple[np.ndarray[Any, Any], float, np.ndarray[Any, Any], float]:
    """The request-intent model (logistic regression over ``query:`` embeddings, one row per
    distinct request): weights, bias, each row's out-of-fold probability of a harmful request
    (5 folds over requests, so a row never sees its own request) and the out-of-fold accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    first = {g: i for i, g in reversed(list(enumerate(groups)))}
    keys = sorted(first, key=first.__getitem__)
    x = prompt_vecs[[first[g] for g in keys]].astype(np.float64)
    y = np.array([intents[first[g]] == "harmful" for g in keys])

    def model() -> Any:
        return LogisticRegression(C=INTENT_C, class_weight="balanced", max_iter=2000)

    oof = np.full(len(keys), 0.5)
    if len(set(y.tolist())) == 2 and min(y.sum(), (~y).sum()) >= 2:
        n_splits = int(min(5, y.sum(), (~y).sum()))
        folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        for train_idx, test_idx in folds.split(x, y):
            oof[test_idx] = model().fit(x[train_idx], y[train_idx]).predict_proba(x[test_idx])[:, 1]
        fitted = model().fit(x, y)
        weights, bias = fitted.coef_[0].astype(np.float64), float(fitted.intercept_[0])
    else:  # one intent only: a constant model
        weights = np.zeros(x.shape[1])
        bias = 4.0 if y.all() else -4.0 if not y.any() else 0.0
    by_group = dict(zip(keys, oof, strict=True))
    accuracy = float(np.mean((oof >= 0.5) == y))
    return weights, bias, np.array([by_group[g] for g in groups]), accuracy


def train_guardian(
    rows: Sequence[LabeledRow], *, seed: int = 0, kind: str = "mlp", intent: bool = False
) -> tuple[Guardian, GuardianEvaluation]:
    """Train on the train split, evaluate once on the test split (see :func:`split_rows`).

    ``intent`` adds a request-intent model whose output the head reads (:func:`fit_intent`);
    it did not help on the independent set (docs/guardian.md), so it is off by default.
    """
    if kind not in HEAD_KINDS:
        raise ValueError(f"head kind {kind!r} is not one of {', '.join(HEAD_KINDS)}")
    train, test = split_rows(rows, seed)
    if not train or not test:
        raise ValueError(f"need train and test rows, got {len(train)} and {len(test)}")
    if missing := set(LABELS) - {r.label for r in train}:
        raise ValueError(f"train split lacks labels {sorted(missing)}")
    everything = [*train, *test]
    feats = featurize([r.prompt for r in everything], [r.response for r in everything])
    x_train, x_test = feats.matrix[: len(train)], feats.matrix[len(train) :]
    y_train = [r.label for r in train]
    groups = [r.group for r in train]
    intent_model: tuple[np.ndarray[Any, Any], float] | None = None
    intent_meta: dict[str, Any] = {}
    if intent:
        intent_w, intent_b, harm, intent_accuracy = fit_intent(
            feats.prompt_vecs[: len(train)], [r.intent for r in train], groups, seed
        )
        x_train = with_intent(x_train, harm)
        intent_model = (intent_w, intent_b)
        intent_meta = {"intent_model": {"C": INTENT_C, "oof_accuracy": intent_accuracy}}
    hands = [r.hand for r in train]
    best, cv_scores, oof = cross_validate(x_train, y_train, groups, seed, kind, hands)
    unsafe_at, uncertain_below, threshold_report = choose_thresholds(oof, y_train)
    pipe = _fit(kind, best, x_train, y_train, seed)
    scaler = pipe[0]
    coef, intercept, hidden = _layers(pipe, kind)
    safe = [i for i, r in enumerate(train) if r.label in SAFE_LABELS]
    bank = ReferenceBank.build(
        [train[i].id for i in safe],
        [train[i].response for i in safe],
        [train[i].language for i in safe],
        feats.prompt_vecs[safe],
    )
    meta: dict[str, Any] = {
        "seed": seed,
        "kind": kind,
        "hidden_units": MLP_HIDDEN if kind == "mlp" else 0,
        "alpha" if kind == "mlp" else "C": best,
        "cv_macro_f1": cv_scores,
        "cv_folds": "writers" if len(set(hands)) >= MIN_HANDS else "prompts",
        "thresholds": threshold_report,
        **intent_meta,
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
        coef=coef,
        intercept=intercept,
        hidden=hidden,
        mean=np.asarray(scaler.mean_, dtype=np.float64),
        scale=np.asarray(scaler.scale_, dtype=np.float64),
        unsafe_at=unsafe_at,
        uncertain_below=uncertain_below,
        intent=intent_model,
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
    predicted = [guardian.decide(row) for row in probs]
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
    labels: Path = SHIPPED_LABELS, out: Path = SHIPPED_HEAD, *, seed: int = 0, kind: str = "mlp"
) -> GuardianEvaluation:
    """Train from a labels file and write the head to ``out`` (the CLI's ``guardian train``)."""
    guardian, evaluation = train_guardian(load_labels(labels), seed=seed, kind=kind)
    guardian.save(out)
    return evaluation


def reproduce_evaluation(
    labels: Path = SHIPPED_LABELS, head: Path = SHIPPED_HEAD
) -> GuardianEvaluation:
    """Retrain from the shipped labels with the shipped head's seed; return held-out figures."""
    meta = Guardian.load(head).meta if head.is_file() else {}
    seed, kind = int(meta.get("seed", 0)), str(meta.get("kind", "mlp"))
    intent = "intent_model" in meta
    return train_guardian(load_labels(labels), seed=seed, kind=kind, intent=intent)[1]


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
