"""Named-entity recognition as token classification: BIO tags, word-piece alignment, entity-level scores.

A tagger labels every *word* with ``B-TYPE`` (the first word of an entity), ``I-TYPE`` (a later word of the
same entity) or ``O`` (outside). An entity is a maximal run ``B-X I-X ... I-X``. Three things this module does:

* **reads BIO strictly**. An ``I-X`` that does not continue an ``X`` entity (after ``O``, at the start, or after
  another type) is not valid BIO. :func:`entities` refuses it by default (``invalid="error"``), or repairs it
  with the conlleval rule (``invalid="repair"``): *an I-X that does not continue an X entity starts one, as if
  it were B-X*. That is how ``conlleval`` and ``seqeval``'s default mode read such tags, so the scores agree.
* **scores entities, not tokens** (:func:`entity_scores`): a predicted entity counts only if its type, first
  word and last word all equal a gold entity's. Precision, recall and F1 are micro-averaged over entities,
  equal to ``seqeval``'s to 1e-9 (tests/test_ner.py).
* **aligns word labels to word pieces** (:func:`align_labels`): WordPiece cuts a rare word into several
  pieces; the first piece gets the word's label, the other pieces and the special tokens get -100, which
  ``F.cross_entropy(..., ignore_index=-100)`` skips. One prediction per word, read at its first piece.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from .check import one_of, whole_number

__all__ = ["IGNORE", "REPAIR_RULE", "repair_bio", "entities", "entity_scores", "EntityScores", "align_labels",
           "encode_tagged", "TokenClassifier", "trim_padding", "tagger_forward", "token_loss", "predict_tags",
           "FeatureTagger", "capitalisation_tags", "gazetteer_tags", "entity_strings", "untyped",
           "slot_type_agreement"]

IGNORE = -100        # the label of positions the loss skips (F.cross_entropy's default ignore_index)
REPAIR_RULE = "an I-X that does not continue an X entity starts one, as if it were B-X (the conlleval rule)"


def _split_tag(tag: str, position: int) -> tuple[str, str]:
    """("B" | "I" | "O", type) of one tag; anything else is refused."""
    if tag == "O":
        return "O", ""
    if isinstance(tag, str) and tag[:2] in ("B-", "I-") and len(tag) > 2:
        return tag[0], tag[2:]
    raise ValueError(f"tag {position} is {tag!r}: a BIO tag is 'O', 'B-TYPE' or 'I-TYPE'")


def repair_bio(tags: Sequence[str], invalid: str = "error") -> tuple[list[str], int]:
    """(valid BIO tags, number of tags changed). ``invalid="error"`` refuses an I- that opens an entity."""
    one_of("invalid", invalid, ("error", "repair"))
    out, changed, prev = [], 0, "O"
    for i, tag in enumerate(tags):
        kind, etype = _split_tag(tag, i)
        if kind == "I" and prev not in (f"B-{etype}", f"I-{etype}"):
            if invalid == "error":
                after = "the start" if i == 0 else f"{prev!r}"
                raise ValueError(f"tag {i} is {tag!r} after {after}: an entity must open with 'B-{etype}'. "
                                 f"Pass invalid='repair' to read it with the rule: {REPAIR_RULE}")
            tag, changed = f"B-{etype}", changed + 1
        out.append(tag)
        prev = tag
    return out, changed


def entities(tags: Sequence[str], invalid: str = "error") -> list[tuple[str, int, int]]:
    """The entities of one tag sequence as (type, first word, last word), in order."""
    tags, _ = repair_bio(tags, invalid)
    found, start = [], None
    for i, tag in enumerate(list(tags) + ["O"]):
        if start is not None and not tag.startswith("I-"):      # the open entity ends before word i
            found.append((tags[start][2:], start, i - 1))
            start = None
        if tag.startswith("B-"):
            start = i
    return found


@dataclass
class EntityScores:
    precision: float
    recall: float
    f1: float
    n_gold: int
    n_pred: int
    n_correct: int
    repaired: int = 0                                   # predicted tags changed by the repair rule
    per_type: dict[str, dict[str, float]] = field(default_factory=dict)

    def __str__(self) -> str:
        return (f"entity precision {self.precision:.3f} · recall {self.recall:.3f} · F1 {self.f1:.3f} "
                f"({self.n_correct} of {self.n_gold} gold entities found, {self.n_pred} predicted)")


def _prf(correct: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    p = correct / n_pred if n_pred else 0.0
    r = correct / n_gold if n_gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], invalid: str = "error") -> EntityScores:
    """Entity-level micro precision / recall / F1 over sentences (exact type and boundaries), and per type.

    ``invalid`` applies to both sides: "error" refuses an I- that opens an entity, "repair" reads it as B-.
    """
    if len(gold) != len(pred):
        raise ValueError(f"gold and pred must have one tag sequence per sentence; got {len(gold)} and {len(pred)}")
    g_all, p_all, repaired = set(), set(), 0
    for s, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {s}: gold has {len(g)} tags, pred has {len(p)}; one tag per word on both")
        p, n = repair_bio(p, invalid)
        repaired += n
        g_all |= {(s, *e) for e in entities(g, invalid)}
        p_all |= {(s, *e) for e in entities(p)}
    right = g_all & p_all
    per_type = {}
    count = lambda found: Counter(e[1] for e in found)  # noqa: E731  (entities per type)
    ng, np_, nr = count(g_all), count(p_all), count(right)
    for t in sorted(set(ng) | set(np_)):
        p, r, f = _prf(nr[t], np_[t], ng[t])
        per_type[t] = {"precision": p, "recall": r, "f1": f, "support": ng[t]}
    return EntityScores(*_prf(len(right), len(p_all), len(g_all)), len(g_all), len(p_all), len(right), repaired,
                        per_type)


# ----------------------------------------------------------------------------- word pieces
def align_labels(word_ids: Sequence[int | None], word_labels: Sequence[int], ignore: int = IGNORE) -> list[int]:
    """One label per token: the word's label at its first piece; ``ignore`` at later pieces and special tokens.

    ``word_ids`` is what a fast tokenizer's ``encoding.word_ids()`` gives: the index of the word each token
    came from, ``None`` for [CLS], [SEP] and padding.
    """
    labels, previous = [], None
    for w in word_ids:
        labels.append(ignore if w is None or w == previous else word_labels[w])
        previous = w
    return labels


def encode_tagged(tokenizer, sentences, tags: Sequence[str], max_length: int = 64) -> TensorDataset:
    """(input_ids, attention_mask, labels) for sentences of words with BIO tags; ``tags`` is the label list.

    A tag outside ``tags`` (e.g. a test set with a type the training set lacks) and a sentence longer than
    ``max_length`` pieces are refused, never silently dropped or cut.
    """
    whole_number("max_length", max_length, minimum=4)
    if not sentences:
        raise ValueError("sentences is empty: need at least one tagged sentence")
    index = {t: i for i, t in enumerate(tags)}
    for s, sent in enumerate(sentences):
        unknown = sorted(set(sent.tags) - set(index))
        if unknown:
            raise ValueError(f"sentence {s} has tag(s) {unknown} that are not in the label set {list(tags)}: "
                             "train and test must use the same labels")
    enc = tokenizer([s.words for s in sentences], is_split_into_words=True, padding=True, truncation=False,
                    return_tensors="pt")
    if enc["input_ids"].shape[1] > max_length:
        longest = int(enc["attention_mask"].sum(1).argmax())
        raise ValueError(f"sentence {longest} has {int(enc['attention_mask'][longest].sum())} word pieces, more "
                         f"than max_length={max_length}; raise max_length (cutting would drop its last tags)")
    labels = [align_labels(enc.word_ids(i), [index[t] for t in s.tags]) for i, s in enumerate(sentences)]
    return TensorDataset(enc["input_ids"], enc["attention_mask"], torch.tensor(labels))


class TokenClassifier(nn.Module):
    """An encoder and one linear layer applied at every token: logits (B, T, n_tags)."""

    def __init__(self, encoder: nn.Module, n_tags: int, dropout: float = 0.1):
        super().__init__()
        whole_number("n_tags", n_tags, minimum=2)
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, n_tags)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, d)
        return self.head(self.dropout(hidden))


def trim_padding(ids: torch.Tensor, mask: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Cut the columns after the batch's longest real sequence from (B, T, ...) tensors.

    A data set is padded to its longest example; most batches are shorter, and a Transformer's cost grows
    with T, so a batch is trimmed to what it needs (the result is the same: padding is masked anyway).
    """
    keep = int(mask.sum(1).max())
    return (ids[:, :keep], mask[:, :keep], *(t[:, :keep] for t in others))


def tagger_forward(model: "TokenClassifier", batch):
    """For ``labkit.train.fit``: (input_ids, attention_mask, labels) -> (logits, labels), padding trimmed."""
    ids, mask, labels = trim_padding(*batch)
    return model(ids, mask), labels


def token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the labelled positions only (first pieces): (B, T, C) and (B, T) with -100 skipped."""
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)


@torch.no_grad()
def predict_tags(model: TokenClassifier, data: TensorDataset, tags: Sequence[str], batch_size: int = 64) -> list[list[str]]:
    """One tag per word, read at each word's first piece (where the label is not -100)."""
    model.eval()
    out = []
    ids, mask, labels = data.tensors
    for i in range(0, len(ids), batch_size):
        pred = model(ids[i:i + batch_size], mask[i:i + batch_size]).argmax(-1)
        for row, lab in zip(pred, labels[i:i + batch_size]):
            out.append([tags[int(t)] for t in row[lab != IGNORE]])
    return out


# ----------------------------------------------------------------------------- baselines
def _features(words: Sequence[str], i: int) -> dict[str, float]:
    """The classic hand-made features of word i (Ratnaparkhi-style maximum-entropy tagging)."""
    w = words[i]
    prev = words[i - 1].lower() if i > 0 else "<s>"
    nxt = words[i + 1].lower() if i + 1 < len(words) else "</s>"
    return {f"w={w.lower()}": 1, f"suffix3={w[-3:].lower()}": 1, f"prev={prev}": 1, f"next={nxt}": 1,
            f"prev2={words[i - 2].lower() if i > 1 else '<s>'}": 1, "capitalised": float(w[:1].isupper()),
            "first_word": float(i == 0), "digits": float(w.isdigit()), f"shape={_shape(w)}": 1}


def _shape(w: str) -> str:
    return "".join("X" if c.isupper() else "x" if c.islower() else "d" if c.isdigit() else c for c in w)[:4]


class FeatureTagger:
    """A classical baseline: logistic regression on hand-made word features (the word, its suffix, its
    neighbours, capitalisation, digits, shape), one decision per word, BIO repaired afterwards."""

    def __init__(self, C: float = 1.0):
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.linear_model import LogisticRegression
        self.vectorizer = DictVectorizer()
        self.model = LogisticRegression(C=C, max_iter=2000)

    def fit(self, sentences) -> "FeatureTagger":
        X = [_features(s.words, i) for s in sentences for i in range(len(s.words))]
        y = [t for s in sentences for t in s.tags]
        self.model.fit(self.vectorizer.fit_transform(X), y)
        return self

    def predict(self, sentences) -> list[list[str]]:
        flat = self.model.predict(self.vectorizer.transform(
            [_features(s.words, i) for s in sentences for i in range(len(s.words))]))
        out, k = [], 0
        for s in sentences:
            out.append(repair_bio(list(flat[k:k + len(s.words)]), "repair")[0])
            k += len(s.words)
        return out


def capitalisation_tags(words: Sequence[str], label: str = "ENT", skip_first: bool = True) -> list[str]:
    """The shortcut probe 'a run of capitalised words (or digits) is an entity', untyped (one label)."""
    tags, prev = [], "O"
    for i, w in enumerate(words):
        inside = (w[:1].isupper() or w.isdigit()) and not (skip_first and i == 0)
        tags.append("O" if not inside else (f"I-{label}" if prev != "O" else f"B-{label}"))
        prev = tags[-1]
    return tags


def gazetteer_tags(words: Sequence[str], known: dict[tuple[str, ...], str]) -> list[str]:
    """The memorisation probe: tag every occurrence of an entity string seen in training, longest match first."""
    tags, i, longest = ["O"] * len(words), 0, max((len(k) for k in known), default=0)
    while i < len(words):
        for n in range(min(longest, len(words) - i), 0, -1):
            etype = known.get(tuple(words[i:i + n]))
            if etype is not None:
                tags[i:i + n] = [f"B-{etype}"] + [f"I-{etype}"] * (n - 1)
                i += n - 1
                break
        i += 1
    return tags


def entity_strings(sentences) -> dict[tuple[str, ...], str]:
    """Every entity string of ``sentences`` and its type: what a gazetteer would memorise."""
    out = {}
    for s in sentences:
        for etype, a, b in entities(s.tags):
            out[tuple(s.words[a:b + 1])] = etype
    return out


def untyped(tags: Sequence[str], label: str = "ENT") -> list[str]:
    """The same spans with one type: for scoring span detection alone."""
    return [t if t == "O" else f"{t[0]}-{label}" for t in tags]


def slot_type_agreement(train, test) -> float:
    """How often a test entity's type equals the majority type of its template slot in training:
    how much of the type the words around an entity give away."""
    votes: dict[tuple[int, int], Counter] = defaultdict(Counter)

    def slots(s):
        return [((s.template, k), etype) for k, (etype, _, _) in enumerate(entities(s.tags))]

    for s in train:
        for key, etype in slots(s):
            votes[key][etype] += 1
    hits = [votes[key].most_common(1)[0][0] == etype for s in test for key, etype in slots(s) if votes[key]]
    return sum(hits) / len(hits) if hits else 0.0
