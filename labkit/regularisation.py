"""Regularisation while fine-tuning (chapter 3.5b, the article's section 3.3): data augmentation, dropout and
weight decay, each where it acts in the training step.

* **data augmentation** comes *before* the forward pass: a batch's texts are changed, then tokenised
  (:class:`Augment`, a ``collate`` for :func:`labkit.train.fit`; :class:`WordDropout`, :class:`SynonymSwap`);
* **dropout** acts *inside* the forward pass, and only in train mode: ``model.eval()`` turns it off
  (:func:`set_dropout`, :func:`dropout_outputs`);
* **weight decay** is part of the *optimizer step*. AdamW shrinks each decayed weight by ``(1 - lr·λ)`` on its own,
  outside Adam's rescaling (decoupled; Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019,
  arXiv:1711.05101); L2 in the loss adds ``λθ`` to the gradient instead, and Adam then divides that by
  ``√v̂`` like any gradient (coupled) (:func:`optimizer_for`, :func:`decay_in_one_step`).

:func:`run_setting` fine-tunes one :class:`Setting` from the pretrained weights and scores it on its training
examples and every test split; :func:`effect_verdicts` and :func:`norm_verdicts` word what the runs measured.
"""
from __future__ import annotations

import copy
import math
import random
import re
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .check import number, one_of, probability, whole_number
from .data.reviews import ASPECTS, PRODUCTS, SEEN_WORDS
from .data.text import encode
from .nn import SequenceClassifier
from .train import History, accuracy, evaluate, fit, make_adamw, warmup_cosine

__all__ = ["WordDropout", "SynonymSwap", "SENTIMENT_SYNONYMS", "CONTENT_SYNONYMS", "Augment", "words_in",
           "one_label_words", "set_dropout", "dropout_outputs", "freeze_unused_pooler", "split_decay", "optimizer_for",
           "with_l2", "decay_in_one_step", "Setting", "RegResult", "SETTINGS", "book_settings", "run_setting",
           "results_table", "paired_difference", "effect_verdicts", "norm_verdicts", "fit_verdict", "gap_verdict",
           "decay_factor", "weight_decay_for"]

# The data generator's own lists (labkit.data.reviews). Each group holds words or phrases that can stand in for
# each other without changing the label: the seen positive adjectives and phrases, the seen negative ones, and the
# label-free products and aspects. The sentiment groups carry the label: swapping within them puts sentiment
# knowledge in, as a list of synonyms with their polarity would in a real task.
SENTIMENT_SYNONYMS = tuple(tuple(SEEN_WORDS[y][kind]) for kind in ("adj", "phrase") for y in (1, 0))
CONTENT_SYNONYMS = (tuple(PRODUCTS), tuple(ASPECTS))


def _finder(entries) -> re.Pattern:
    """One pattern for every entry (longest first, whole words, any case)."""
    alternatives = sorted({e.lower() for e in entries}, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(e) for e in alternatives) + r")\b", re.IGNORECASE)


# ----------------------------------------------------------------------------- augmentation: before the forward pass
class WordDropout:
    """Delete each word with probability ``p`` (at least one word stays); label-agnostic: it may delete the only
    sentiment word of a review."""

    def __init__(self, p: float = 0.15):
        self.p = probability("p (word dropout)", p, open_high=True)

    def __call__(self, text: str, rng: random.Random) -> str:
        words = text.split()
        kept = [w for w in words if rng.random() >= self.p]
        return " ".join(kept or [rng.choice(words)])

    def __repr__(self) -> str:
        return f"WordDropout(p={self.p:g})"


class SynonymSwap:
    """Replace each word or phrase found in one of ``groups`` by a random entry of the same group, with probability
    ``p`` (the case of the first letter is kept; punctuation is untouched)."""

    def __init__(self, groups=SENTIMENT_SYNONYMS, p: float = 1.0, name: str = "synonym swap"):
        self.p = probability("p (swap probability)", p)
        self.groups = [tuple(g) for g in groups]
        if not self.groups or any(len(g) < 2 for g in self.groups):
            raise ValueError("groups must be a non-empty list of groups of at least 2 interchangeable entries")
        self.group_of = {e.lower(): g for g in self.groups for e in g}
        self.pattern = _finder(self.group_of)
        self.name = name

    def __call__(self, text: str, rng: random.Random) -> str:
        def swap(match: re.Match) -> str:
            found = match.group(0)
            if rng.random() >= self.p:
                return found
            new = rng.choice(self.group_of[found.lower()])
            return new[0].upper() + new[1:] if found[0].isupper() else new
        return self.pattern.sub(swap, text)

    def __repr__(self) -> str:
        return f"SynonymSwap({self.name!r}, {len(self.group_of)} entries, p={self.p:g})"


class Augment:
    """A ``collate`` for :func:`labkit.train.fit` over a list of ``(text, label)``: every batch is augmented afresh
    with ``fn(text, rng)``, *then* tokenised; the forward pass sees only the augmented batch."""

    def __init__(self, tokenizer, fn: Callable[[str, random.Random], str], *, seed: int = 0, max_length: int = 48):
        self.tokenizer, self.fn, self.max_length = tokenizer, fn, max_length
        self.rng = random.Random(seed)

    def __call__(self, examples: list[tuple[str, int]]):
        augmented = [(self.fn(text, self.rng), label) for text, label in examples]
        return encode(self.tokenizer, augmented, max_length=self.max_length).tensors


def words_in(examples, vocabulary) -> set[str]:
    """The entries of ``vocabulary`` (words or phrases) that occur in ``examples`` (``(text, label)`` pairs or
    texts), each once, in lower case."""
    texts = [e[0] if isinstance(e, tuple) else e for e in examples]
    pattern = _finder(vocabulary)
    return {m.lower() for t in texts for m in pattern.findall(t)}


def one_label_words(examples: list[tuple[str, int]], vocabulary) -> set[str]:
    """The words of ``vocabulary`` that occur in the examples of one label only: in a small labelled set a
    label-free word (a product, an aspect) can look like a cue."""
    by_label = [words_in([e for e in examples if e[1] == y], vocabulary) for y in sorted({e[1] for e in examples})]
    seen_twice = set.intersection(*by_label) if by_label else set()
    return set.union(*by_label) - seen_twice if by_label else set()


# ----------------------------------------------------------------------------- dropout: inside the forward pass
def set_dropout(model: nn.Module, p: float) -> int:
    """Set the probability of every ``nn.Dropout`` in ``model`` to ``p`` (Hugging Face's attention reads it too);
    returns how many modules were set."""
    probability("p (dropout)", p, open_high=True)
    modules = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    for m in modules:
        m.p = p
    return len(modules)


@torch.no_grad()
def dropout_outputs(model: nn.Module, *inputs: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """The largest output difference between two calls on the same inputs: both in train mode, both in eval
    mode, and train against eval. Dropout makes the first and the last non-zero; eval mode makes the second 0."""
    was = model.training
    torch.manual_seed(seed)
    model.train()
    a, b = model(*inputs), model(*inputs)
    model.eval()
    c, d = model(*inputs), model(*inputs)
    model.train(was)
    gap = lambda x, y: float((x - y).abs().max())
    return {"train vs train": gap(a, b), "eval vs eval": gap(c, d), "train vs eval": gap(a, c)}


# ----------------------------------------------------------------------------- weight decay: inside the optimizer step
def freeze_unused_pooler(model: nn.Module) -> nn.Module:
    """Freeze a Hugging Face pooler that the classifier never reads (it reads ``last_hidden_state``). It gets no
    loss gradient, so AdamW skips it, but L2 in the loss would still pull it towards 0: frozen, both leave it."""
    pooler = getattr(getattr(model, "encoder", None), "pooler", None)
    if pooler is not None:
        for p in pooler.parameters():
            p.requires_grad_(False)
    return model


def split_decay(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(decayed, not decayed) trainable parameters: the matrices (weights of linear layers and embeddings) are
    decayed; biases and LayerNorm gains are not (the usual practice, as in nanoGPT and Hugging Face's Trainer)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [p for p in params if p.ndim >= 2], [p for p in params if p.ndim < 2]


def with_l2(loss_fn: Callable, params: list[nn.Parameter], lam: float) -> Callable:
    """``loss_fn`` plus ``(λ/2)·Σ‖θ‖²`` over ``params``: L2 regularisation *in the loss* (its gradient is λθ)."""
    number("lam (L2 strength)", lam, minimum=0)

    def loss(output, target):
        return loss_fn(output, target) + 0.5 * lam * sum(p.pow(2).sum() for p in params)
    return loss


def optimizer_for(model: nn.Module, lr: float, weight_decay: float = 0.0,
                  decay: str = "decoupled") -> tuple[torch.optim.Optimizer, Callable]:
    """(optimizer, loss_fn) for a fine-tuning run with weight decay λ = ``weight_decay`` on the matrices.

    ``decay="decoupled"``: AdamW, the decay inside the step (θ ← θ - lr·λ·θ - lr·adam_step), cross-entropy alone.
    ``decay="coupled"``: Adam, and L2 in the loss (cross-entropy + (λ/2)‖θ‖²), so λθ passes through Adam's
    division by √v̂ like the loss gradient.
    """
    one_of("decay", decay, ("decoupled", "coupled"))
    number("weight_decay", weight_decay, minimum=0)
    decayed, rest = split_decay(model)
    if decay == "decoupled":
        groups = [{"params": decayed, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
        return make_adamw(groups, lr=lr), F.cross_entropy
    try:  # the fused kernel where this PyTorch has one (as make_adamw does for AdamW)
        adam = torch.optim.Adam(decayed + rest, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        adam = torch.optim.Adam(decayed + rest, lr=lr)
    return adam, with_l2(F.cross_entropy, decayed, weight_decay)


def decay_in_one_step(model: nn.Module, batch: tuple[torch.Tensor, ...], *, lr: float, weight_decay: float,
                      embedding: str = "encoder.embeddings.word_embeddings.weight") -> list[dict]:
    """One optimizer step from the same weights, three ways: no decay, AdamW (decoupled), Adam + L2 in the loss
    (coupled). Measured on the rows of the word-embedding matrix whose tokens are *not* in the batch (their loss
    gradient is exactly 0) and on the rows whose tokens are: the relative change ``Σ|Δθ| / Σ|θ|``."""
    ids = batch[0]
    rows = torch.zeros(dict(model.named_parameters())[embedding].shape[0], dtype=torch.bool)
    rows[ids.unique()] = True
    out = []
    for name, wd, decay in (("no decay", 0.0, "decoupled"), (f"AdamW, weight_decay={weight_decay:g} (decoupled)",
                            weight_decay, "decoupled"), (f"Adam + L2 in the loss, λ={weight_decay:g} (coupled)",
                            weight_decay, "coupled")):
        m = freeze_unused_pooler(copy.deepcopy(model).train())
        set_dropout(m, 0.0)  # the same forward pass for all three
        opt, loss_fn = optimizer_for(m, lr, wd, decay)
        w0 = dict(m.named_parameters())[embedding].detach().clone()
        opt.zero_grad()
        loss_fn(m(*batch[:-1]), batch[-1]).backward()
        opt.step()
        delta = (dict(m.named_parameters())[embedding].detach() - w0).abs()
        rel = lambda r: float(delta[r].sum() / w0[r].abs().sum())
        out.append({"update": name, "rows of tokens not in the batch: Σ|Δθ|/Σ|θ|": rel(~rows),
                    "rows of tokens in the batch: Σ|Δθ|/Σ|θ|": rel(rows)})
    return out


# ----------------------------------------------------------------------------- one fine-tuning run per setting
@dataclass(frozen=True)
class Setting:
    """What one run changes against the baseline: weight decay (and how it is applied), dropout, augmentation."""
    name: str
    weight_decay: float = 0.0
    decay: str = "decoupled"          # "decoupled" (AdamW) or "coupled" (Adam + L2 in the loss)
    dropout: float | None = None      # None: as the pretrained config has it (0.1 for all-MiniLM-L6-v2)
    augment: Callable | None = None   # fn(text, rng) -> text, applied to every training batch

    def __post_init__(self):
        one_of("decay", self.decay, ("decoupled", "coupled"))
        number("weight_decay", self.weight_decay, minimum=0)
        if self.dropout is not None:
            probability("dropout", self.dropout, open_high=True)


SETTINGS = ("baseline", "no_dropout", "adamw", "l2", "word_dropout", "swap_content", "swap_sentiment")


def book_settings(weight_decay: float = 0.01, word_p: float = 0.15) -> dict[str, Setting]:
    """The chapter's settings by id (:data:`SETTINGS`): the baseline (the pretrained dropout 0.1, no weight decay,
    no augmentation) and six runs that each change one thing."""
    return {
        "baseline": Setting("baseline"),
        "no_dropout": Setting("no dropout", dropout=0.0),
        "adamw": Setting(f"weight decay {weight_decay:g} (AdamW)", weight_decay=weight_decay),
        "l2": Setting(f"L2 {weight_decay:g} in the loss (Adam)", weight_decay=weight_decay, decay="coupled"),
        "word_dropout": Setting(f"word dropout {word_p:g}", augment=WordDropout(word_p)),
        "swap_content": Setting("swap products/aspects", augment=SynonymSwap(CONTENT_SYNONYMS, name="products/aspects")),
        "swap_sentiment": Setting("swap sentiment words", augment=SynonymSwap(SENTIMENT_SYNONYMS, name="sentiment words")),
    }


@dataclass
class RegResult:
    setting: str
    seed: int
    accuracy: dict[str, float]        # "train" (its un-augmented labelled examples, eval mode) and every test split
    norm_before: float                # ‖θ‖ of the decayed matrices, pretrained
    norm_after: float                 # the same after fine-tuning
    moved: float                      # ‖θ - θ_pretrained‖ of the decayed matrices
    seconds: float
    history: History = field(repr=False)

    @property
    def norm_change(self) -> float:
        """Relative change of the decayed weights' norm, ‖θ‖_after / ‖θ‖_before - 1."""
        return self.norm_after / self.norm_before - 1


def _norm(params) -> float:
    return math.sqrt(sum(float(p.detach().double().pow(2).sum()) for p in params))


def run_setting(setting: Setting, encoders, examples: list[tuple[str, int]], tests: dict[str, list], *,
                seed: int = 0, lr: float = 1e-4, epochs: int = 10, batch_size: int = 8, warmup: float = 0.1,
                callbacks=(), device=None) -> RegResult:
    """Fine-tune a fresh copy of the pretrained encoder plus a new head on ``examples`` with ``setting``
    (AdamW or Adam + L2, warmup then cosine decay), then score it on ``examples`` and every split of ``tests``."""
    if not isinstance(setting, Setting):
        raise TypeError(f"setting must be a Setting; got {type(setting).__name__}")
    whole_number("epochs", epochs)
    number("warmup", warmup, minimum=0, maximum=1)
    if batch_size > len(examples):
        raise ValueError(f"batch_size must be at most the number of examples ({len(examples)}); got {batch_size}")
    torch.manual_seed(seed)
    model = freeze_unused_pooler(SequenceClassifier(encoders.encoder("pretrained"), n_classes=2).to(device or "cpu"))
    if setting.dropout is not None:
        set_dropout(model, setting.dropout)
    optimizer, loss_fn = optimizer_for(model, lr, setting.weight_decay, setting.decay)
    decayed = split_decay(model)[0]
    start = [p.detach().clone() for p in decayed]
    tok = encoders.tokenizer
    if setting.augment is None:
        train, collate = encode(tok, examples), None
    else:
        train, collate = list(examples), Augment(tok, setting.augment, seed=seed)
    total = epochs * math.ceil(len(examples) / batch_size)
    t0 = time.perf_counter()
    history = fit(model, train, epochs=epochs, batch_size=batch_size, optimizer=optimizer, loss_fn=loss_fn,
                  scheduler=warmup_cosine(max(1, round(warmup * total)), total), collate=collate, seed=seed,
                  callbacks=callbacks, progress=False, name=setting.name)
    seconds = time.perf_counter() - t0
    splits = {"train": examples, **tests}
    acc = {s: evaluate(model, encode(tok, ex), batch_size=64, metrics={"acc": accuracy})["acc"]
           for s, ex in splits.items()}
    moved = math.sqrt(sum(float((p.detach() - s).double().pow(2).sum()) for p, s in zip(decayed, start)))
    return RegResult(setting.name, seed, acc, _norm(start), _norm(decayed), moved, seconds, history)


# ----------------------------------------------------------------------------- reading the runs
def results_table(results: list[RegResult]):
    """One row per setting: the mean over seeds of every accuracy, the train-test gap, the weight norm's change."""
    import pandas as pd
    rows = []
    for name in dict.fromkeys(r.setting for r in results):
        runs = [r for r in results if r.setting == name]
        row = {"setting": name, "seeds": len(runs)}
        for split in runs[0].accuracy:
            row[f"{split} acc"] = round(statistics.mean(r.accuracy[split] for r in runs), 3)
        row["train - test (points)"] = round(100 * statistics.mean(r.accuracy["train"] - r.accuracy["test"]
                                                                   for r in runs), 1)
        row["‖θ‖ change %"] = round(100 * statistics.mean(r.norm_change for r in runs), 4)
        row["‖θ - θ₀‖"] = round(statistics.mean(r.moved for r in runs), 3)
        row["seconds"] = round(sum(r.seconds for r in runs), 1)
        rows.append(row)
    return pd.DataFrame(rows).set_index("setting")


def paired_difference(results: list[RegResult], setting: str, baseline: str, split: str) -> list[float]:
    """Per seed, accuracy of ``setting`` minus that of ``baseline`` on ``split`` (same seed: same labelled
    examples, same head, same batch order)."""
    by = {(r.setting, r.seed): r.accuracy[split] for r in results}
    seeds = sorted({r.seed for r in results if r.setting == setting} & {r.seed for r in results if r.setting == baseline})
    if not seeds:
        raise ValueError(f"no seed has runs of both {setting!r} and {baseline!r}")
    return [by[(setting, s)] - by[(baseline, s)] for s in seeds]


def effect_verdicts(results: list[RegResult], baseline: str, split: str = "test", *, min_points: float = 1.0,
                    confidence: float = 0.95) -> list[str]:
    """One sentence per setting: does it change ``split`` accuracy against ``baseline``, measured seed by seed?

    A change counts only if the ``confidence`` interval of the mean paired difference (Student's t, n - 1 degrees
    of freedom) excludes 0 and the mean is at least ``min_points``; with one seed there is no spread, so no change
    can be told from noise."""
    from scipy.stats import t as student_t
    probability("confidence", confidence, open_high=True)
    names = [n for n in dict.fromkeys(r.setting for r in results) if n != baseline]
    if baseline not in {r.setting for r in results}:
        raise ValueError(f"baseline must be one of the settings {sorted({r.setting for r in results})}; got {baseline!r}")
    lines = []
    for name in names:
        d = [100 * x for x in paired_difference(results, name, baseline, split)]
        mean = statistics.mean(d)
        head = f"{name}: {split} accuracy {mean:+.1f} points against {baseline!r}"
        if len(d) < 2:
            lines.append(f"{head} (one seed: no spread to compare it with, so no verdict).")
            continue
        if all(x == 0 for x in d):
            lines.append(f"{head}: the same accuracy at every one of the {len(d)} seeds, no effect at all.")
            continue
        margin = student_t.ppf((1 + confidence) / 2, len(d) - 1) * statistics.stdev(d) / math.sqrt(len(d))
        spread = f"per seed {', '.join(f'{x:+.1f}' for x in d)}; {100 * confidence:.0f}% interval {mean:+.1f} ± {margin:.1f}"
        if abs(mean) >= min_points and abs(mean) > margin:
            lines.append(f"{head} ({spread}): it {'helps' if mean > 0 else 'hurts'} at this scale.")
        elif abs(mean) <= margin:
            lines.append(f"{head} ({spread}): no measurable effect at this scale (the interval includes 0: "
                         f"{len(d)} seeds cannot tell this change from the seed-to-seed spread).")
        else:
            lines.append(f"{head} ({spread}): no measurable effect at this scale (under {min_points:g} point).")
    return lines


def fit_verdict(results: list[RegResult], setting: str, fits: float = 0.95) -> str:
    """Does ``setting`` fit its labelled examples (train accuracy, eval mode) at every seed?"""
    acc = [r.accuracy["train"] for r in results if r.setting == setting]
    if not acc:
        raise ValueError(f"no run of {setting!r}")
    worst = min(acc)
    return (f"{setting} {'fits' if worst >= fits else 'does NOT fit'} its labelled examples: train accuracy "
            f"{worst:.3f} or more at every seed ({'>=' if worst >= fits else '<'} {fits}); "
            + ("a regulariser can only act on the gap between train and test." if worst >= fits else
               "the baseline is under-trained, so a regulariser's effect cannot be read as less overfitting."))


def gap_verdict(results: list[RegResult], setting: str, seen: str = "val", unseen: str = "test") -> str:
    """``setting``'s gap from train to ``seen`` (new sentences, the training split's sentiment words) and to
    ``unseen`` (held-out sentiment words), mean over seeds, and which part of the test gap the seen split explains."""
    runs = [r for r in results if r.setting == setting]
    if not runs:
        raise ValueError(f"no run of {setting!r}")
    gap = {s: 100 * statistics.mean(r.accuracy["train"] - r.accuracy[s] for r in runs) for s in (seen, unseen)}
    share = gap[seen] / gap[unseen] if gap[unseen] > 0 else float("nan")
    if not gap[unseen] > 0:
        how = "there is no train-test gap to explain."
    elif share >= 0.5:
        how = (f"new sentences with the seen words already account for {100 * share:.0f}% of the test gap: most of it is "
               "the usual generalisation gap of a few labels.")
    else:
        how = (f"new sentences account for only {100 * share:.0f}% of the test gap: most of it comes from the held-out "
               "words.")
    return (f"{setting}: train - {seen} gap {gap[seen]:.1f} points, train - {unseen} gap {gap[unseen]:.1f} points; {how}")


def decay_factor(lrs: list[float], weight_decay: float) -> float:
    """What AdamW's decoupled decay alone multiplies a weight by over a run with learning rates ``lrs``:
    the product of (1 - lr·λ)."""
    number("weight_decay", weight_decay, minimum=0)
    return math.prod(1 - lr * weight_decay for lr in lrs)


def weight_decay_for(lrs: list[float], shrink: float = 0.01) -> float:
    """The λ at which AdamW's decay alone would shrink every decayed weight by ``shrink`` over a run with
    learning rates ``lrs`` (solving the product of (1 - lr·λ) = 1 - shrink, by bisection)."""
    number("shrink", shrink, minimum=0, maximum=1, open_low=True, open_high=True)
    total = sum(lrs)
    if total <= 0:
        raise ValueError("lrs must contain a learning rate > 0")
    lo, hi = 0.0, 1.0 / max(lrs)  # at hi one step would zero the weight
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if decay_factor(lrs, mid) > 1 - shrink else (lo, mid)
    return (lo + hi) / 2


def norm_verdicts(results: list[RegResult], baseline: str) -> list[str]:
    """How much each setting changed the decayed weights' norm, against how far fine-tuning moved them."""
    table = {n: [r for r in results if r.setting == n] for n in dict.fromkeys(r.setting for r in results)}
    if baseline not in table:
        raise ValueError(f"baseline must be one of the settings {list(table)}; got {baseline!r}")
    base = statistics.mean(r.norm_change for r in table[baseline])
    lines = []
    for name, runs in table.items():
        change = statistics.mean(r.norm_change for r in runs)
        moved = statistics.mean(r.moved / r.norm_before for r in runs)
        extra = change - base
        ratio = abs(extra) / moved if moved > 0 else math.inf
        size = ("far smaller than" if ratio < 0.1 else "comparable to" if ratio < 1 else "larger than")
        lines.append(f"{name}: ‖θ‖ changed by {100 * change:+.4f}% ({100 * extra:+.4f}% beyond {baseline!r}); "
                     f"fine-tuning moved the weights by {100 * moved:.4f}% of ‖θ‖, so the extra change of the norm "
                     f"is {size} the distance the weights moved." if name != baseline else
                     f"{name}: ‖θ‖ changed by {100 * change:+.4f}%; fine-tuning moved the weights by "
                     f"{100 * moved:.4f}% of ‖θ‖.")
    return lines
