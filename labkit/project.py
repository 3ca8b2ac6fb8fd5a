"""Chapter 5's project: the article's BiLSTM sentiment classifier, done right, pretrained, and compared.

The arms, on the same split and the same labelled examples:

* ``bilstm-scratch``: :class:`~labkit.nn.BiLSTMClassifier`, every weight random;
* ``bilstm-pretrained-frozen`` / ``bilstm-pretrained``: the same model whose
  encoder was first pretrained on unlabelled reviews (ELMo-style,
  :class:`~labkit.nn.BiLSTMLanguageModel`), saved, reloaded, and given a fresh
  head; then only the head trains (frozen) or everything does (full fine-tuning);
* ``minilm-pretrained``: the pretrained Transformer all-MiniLM-L6-v2 through
  :func:`labkit.transfer.train_classifier`.

The labelled data is :func:`labkit.data.reviews.make_reviews`: its test split
expresses sentiment only with words the labelled training split never has.
The unlabelled text (:func:`unlabelled_reviews`) uses the same products and
aspects with the seen *and* held-out sentiment words mixed, and no labels:
that is what pretraining text is, text about the world with no answers in it.
"""
from __future__ import annotations

import json
import os
import random
import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch.utils.data import TensorDataset

from .check import whole_number
from .data.reviews import (ASPECTS, HELD_OUT_WORDS, PRODUCTS, SEEN_WORDS, TEMPLATES, Reviews,
                           balanced_subset)
from .data.vocab import Vocab
from .nn import BiLSTMClassifier, BiLSTMEncoder, BiLSTMLanguageModel, count_parameters, freeze
from .objectives import bilm_forward, bilm_loss
from .train import History, accuracy, evaluate, fit
from .transfer import RunResult, results_table, train_classifier

__all__ = ["unlabelled_reviews", "encode_reviews", "bce_loss", "one_thread", "pretrain_encoder", "save_encoder",
           "load_encoder", "train_bilstm", "train_minilm", "compare", "results_table", "state_at_word",
           "closer_sentiment", "ARMS"]

ARMS = ("bilstm-scratch", "bilstm-pretrained-frozen", "bilstm-pretrained", "minilm-pretrained")
# Unlabelled text is not the labelled set: it has its own sentences, where two words of one mood
# meet ("superb, really great"), as they do in real reviews. No label is stored anywhere.
MORE_TEMPLATES = [
    "the {product} is {adj}, really {adj2}.",
    "{adj} and {adj2}: {phrase}.",
    "{phrase}. the {aspect} is {adj} and the {product} is {adj2}.",
    "a {adj} {aspect}, a {adj2} {product}.",
    "{adj}, {adj2}, {phrase}!",
]


def unlabelled_reviews(n: int, seed: int = 1, exclude: Reviews | None = None) -> list[str]:
    """``n`` review texts, no labels, with seen and held-out sentiment words mixed.

    The labelled set's templates, plus :data:`MORE_TEMPLATES` (drawn three times
    as often) where two words of one sentiment meet ("superb, really great"), the
    way real text mixes them; no sentence of ``exclude`` (the labelled splits) is
    repeated. Short: no filler sentences, so pretraining spends its steps on sentiment.
    """
    whole_number("n", n)
    rng = random.Random(seed)
    taken = set() if exclude is None else {t for split in ("train", "val", "test") for t in exclude.texts(split)}
    words = {lab: {k: SEEN_WORDS[lab][k] + HELD_OUT_WORDS[lab][k] for k in ("adj", "phrase")} for lab in (0, 1)}
    out: list[str] = []
    for _ in range(200 * n):
        mood = words[rng.randrange(2)]
        text = rng.choice(TEMPLATES + 3 * MORE_TEMPLATES).format(
            product=rng.choice(PRODUCTS), aspect=rng.choice(ASPECTS), adj=rng.choice(mood["adj"]),
            adj2=rng.choice(mood["adj"]), phrase=rng.choice(mood["phrase"]))
        text = text[0].upper() + text[1:]
        if text not in taken:
            taken.add(text)
            out.append(text)
            if len(out) == n:
                return out
    raise RuntimeError(f"could not generate {n} distinct unlabelled reviews")


def encode_reviews(vocab: Vocab, examples: list[tuple[str, int]]) -> TensorDataset:
    """``(ids, lengths, label)`` with float labels of shape (N,), as ``BCEWithLogitsLoss`` wants."""
    if not examples:
        raise ValueError("examples is empty: need at least one (text, label) pair")
    ids, lengths = vocab.encode([t for t, _ in examples])
    return TensorDataset(ids, lengths, torch.tensor([float(y) for _, y in examples]))


@contextmanager
def one_thread():
    """Run a block with one PyTorch CPU thread, then restore the setting.

    The models here are small: an LSTM steps through time multiplying tiny
    matrices, and MiniLM sees batches of 16 short reviews. Splitting such work
    across threads costs more in synchronisation than it saves, and on a
    2-core machine that is busy with anything else, threads that wait on each
    other made every arm several times slower in our measurements.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``BCEWithLogitsLoss``: logits (B,) and float targets (B,) of 0.0/1.0; the sigmoid is inside, stable."""
    return F.binary_cross_entropy_with_logits(logits, target.float())


def pretrain_encoder(vocab: Vocab, texts: list[str], *, embed_dim: int = 64, hidden: int = 64,
                     epochs: int = 15, batch_size: int = 128, lr: float = 1e-2, seed: int = 0,
                     val_texts: list[str] | None = None, callbacks=()) -> tuple[BiLSTMEncoder, History]:
    """Pretrain a fresh :class:`BiLSTMEncoder` on unlabelled ``texts`` (next word / previous word)."""
    torch.manual_seed(seed)
    lm = BiLSTMLanguageModel(BiLSTMEncoder(len(vocab), embed_dim, hidden))
    ids, lengths = vocab.encode(texts)
    val = TensorDataset(*vocab.encode(val_texts)) if val_texts else None
    with one_thread():
        history = fit(lm, TensorDataset(ids, lengths), epochs=epochs, batch_size=batch_size, lr=lr,
                      loss_fn=bilm_loss, forward=bilm_forward, val=val, metrics={}, clip_grad_norm=1.0,
                      callbacks=callbacks, seed=seed, progress=False, name="pretrain")
    return lm.encoder, history


def save_encoder(encoder: BiLSTMEncoder, vocab: Vocab, path: str | os.PathLike) -> None:
    """The encoder's ``state_dict`` as safetensors, with its config and vocabulary in the file's metadata
    (the weights are meaningless without the word ids they were trained with)."""
    if len(vocab) != encoder.config["vocab_size"]:
        raise ValueError(f"vocab has {len(vocab)} words but the encoder was built for {encoder.config['vocab_size']}")
    state = {k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}
    save_file(state, str(path), metadata={"config": json.dumps(encoder.config), "vocab": json.dumps(vocab.words)})


def load_encoder(path: str | os.PathLike) -> tuple[BiLSTMEncoder, Vocab]:
    """``(encoder, vocab)`` from :func:`save_encoder`'s file (safetensors: no code is executed)."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if "config" not in meta or "vocab" not in meta:
        raise ValueError(f"{path} was not written by save_encoder (no config/vocab metadata)")
    encoder = BiLSTMEncoder(**json.loads(meta["config"]))
    encoder.load_state_dict(load_file(str(path)))
    return encoder, Vocab(json.loads(meta["vocab"]))


def train_bilstm(encoder: BiLSTMEncoder, vocab: Vocab, data: Reviews, n_labels: int, *, arm: str,
                 epochs: int, lr: float, batch_size: int = 16, freeze_encoder: bool = False,
                 seed: int = 0, callbacks=(), with_val: bool = False) -> tuple[RunResult, BiLSTMClassifier]:
    """Give ``encoder`` a fresh head, train on ``n_labels`` balanced examples, test on the held-out words."""
    examples = balanced_subset(data.train, n_labels, seed=seed)
    torch.manual_seed(seed)
    model = BiLSTMClassifier(encoder)
    if freeze_encoder:
        freeze(model.encoder)
    val = encode_reviews(vocab, data.val) if with_val else None
    start = time.perf_counter()
    with one_thread():
        history = fit(model, encode_reviews(vocab, examples), epochs=epochs, batch_size=min(batch_size, n_labels),
                      lr=lr, loss_fn=bce_loss, val=val, metrics={"acc": accuracy}, callbacks=callbacks, seed=seed,
                      progress=False, name=f"{arm} · {n_labels}")
        seconds = time.perf_counter() - start
        scores = evaluate(model, encode_reviews(vocab, data.test), loss_fn=bce_loss, metrics={"acc": accuracy})
    return RunResult(arm, n_labels, scores["acc"], scores["loss"], count_parameters(model, trainable_only=True),
                     seconds, history), model


def train_minilm(encoders, data: Reviews, n_labels: int, *, epochs: int, lr: float = 1e-4, batch_size: int = 16,
                 seed: int = 0, callbacks=(), with_val: bool = False) -> RunResult:
    """The upgrade: the pretrained Transformer, fine-tuned on the same labelled examples."""
    with one_thread():
        r = train_classifier(encoders, "pretrained", data, n_labels, lr=lr, epochs=epochs,
                             batch_size=min(batch_size, n_labels), seed=seed, callbacks=callbacks, with_val=with_val)
    r.arm = "minilm-pretrained"
    return r


def compare(data: Reviews, vocab: Vocab, pretrained_path, encoders, n_labels: int, *, epochs: int,
            minilm_epochs: int, lr: float = 3e-3, minilm_lr: float = 1e-4, embed_dim: int = 64, hidden: int = 64,
            seed: int = 0, plot=None, arms: tuple[str, ...] = ARMS) -> list[RunResult]:
    """Every arm on the same ``n_labels`` examples; ``plot`` (a LiveLossPlot) follows each run."""
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"arms must be among {', '.join(ARMS)}; got {unknown}")
    results = []
    for arm in arms:
        cbs = [plot.track(f"{arm} n={n_labels}")] if plot is not None else []
        if arm == "minilm-pretrained":
            results.append(train_minilm(encoders, data, n_labels, epochs=minilm_epochs, lr=minilm_lr,
                                        seed=seed, callbacks=cbs))
            continue
        if arm == "bilstm-scratch":
            torch.manual_seed(seed)
            encoder = BiLSTMEncoder(len(vocab), embed_dim, hidden)
        else:
            encoder, saved_vocab = load_encoder(pretrained_path)
            if saved_vocab.words != vocab.words:
                raise ValueError("the pretrained encoder was saved with another vocabulary")
        results.append(train_bilstm(encoder, vocab, data, n_labels, arm=arm, epochs=epochs, lr=lr, seed=seed,
                                    freeze_encoder=arm.endswith("frozen"), callbacks=cbs)[0])
    return results


# ----------------------------------------------------------------------------- what pretraining learned
FRAME = "the screen is {word} and"   # one fixed sentence frame, so only the word differs


def state_at_word(encoder: BiLSTMEncoder, vocab: Vocab, word: str) -> torch.Tensor:
    """Both directions' states at ``word`` inside :data:`FRAME`, shape (2H,)."""
    ids, lengths = vocab.encode([FRAME.format(word=word)])
    with torch.no_grad():
        out, _ = encoder.eval()(ids, lengths)
    return out[0, FRAME.split().index("{word}")]


def closer_sentiment(encoder: BiLSTMEncoder, vocab: Vocab, held_out: dict[str, str],
                     seen: dict[str, list[str]]) -> list[dict]:
    """For each held-out word (mapped to its true sentiment): the mean cosine similarity of its state
    to the states of the seen words of each sentiment, and which sentiment is closer."""
    if not held_out or not seen or not all(seen.values()):
        raise ValueError("held_out and seen must be non-empty, with at least one seen word per sentiment")
    with one_thread():
        seen_states = {s: [state_at_word(encoder, vocab, w) for w in words] for s, words in seen.items()}
        rows = []
        for word, truth in held_out.items():
            h = state_at_word(encoder, vocab, word)
            cos = {s: sum(F.cosine_similarity(h, c, dim=0).item() for c in states) / len(states)
                   for s, states in seen_states.items()}
            rows.append({"held-out word": word, "is": truth, "closer to": max(cos, key=cos.get),
                         **{f"cos to seen {s}": round(v, 3) for s, v in cos.items()}})
    return rows
