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

Chapter 5.4's cautions measure what goes wrong in practice with helpers from
here (``oov_rate``, ``imbalanced_subset``, ``class_recall``, ``padding_effect``,
``token_loss``, ``train_throughput``), and every sentence that states a result
in chapters 5.3 and 5.4 is worded by a verdict function (``versus``,
``pretraining_verdict``, ``seed_verdict``, ...) from the measured numbers.
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

from .check import positive, probability, whole_number
from .data.reviews import (ASPECTS, HELD_OUT_WORDS, PRODUCTS, SEEN_WORDS, TEMPLATES, Reviews,
                           balanced_subset)
from .data.vocab import Vocab
from .nn import BiLSTMClassifier, BiLSTMEncoder, BiLSTMLanguageModel, count_parameters, freeze
from .data.pretraining import IGNORE
from .objectives import bilm_forward, bilm_loss
from .train import History, accuracy, evaluate, fit
from .transfer import RunResult, results_table, train_classifier

__all__ = ["unlabelled_reviews", "encode_reviews", "bce_loss", "weighted_bce_loss", "one_thread", "pretrain_encoder",
           "save_encoder", "load_encoder", "train_bilstm", "train_minilm", "compare", "results_table", "state_at_word",
           "closer_sentiment", "ARMS",
           # verdicts
           "versus", "chance_verdict", "trend_verdict", "pretraining_verdict", "seed_verdict", "noise_verdict",
           "leak_verdict", "padding_verdict", "balance_verdict", "overfit_verdict", "selection_verdict",
           "throughput_verdict",
           # cautions (chapter 5.4)
           "oov_rate", "imbalanced_subset", "predict", "class_recall", "majority_accuracy", "padding_effect",
           "token_loss", "train_throughput"]

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


def weighted_bce_loss(pos_weight: float):
    """``bce_loss`` with each positive example's term weighted by ``pos_weight`` (``n_negative / n_positive``
    makes both classes weigh the same in the loss)."""
    positive("pos_weight", pos_weight)
    weight = torch.tensor(float(pos_weight))

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, target.float(), pos_weight=weight.to(logits.device))
    return loss


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
                 seed: int = 0, callbacks=(), with_val: bool = False, examples: list[tuple[str, int]] | None = None,
                 pos_weight: float | None = None) -> tuple[RunResult, BiLSTMClassifier]:
    """Give ``encoder`` a fresh head, train on ``n_labels`` balanced examples, test on the held-out words.

    ``examples`` replaces the balanced subset (chapter 5.4 passes an imbalanced one); ``pos_weight``
    weighs the loss of the positive examples (``BCEWithLogitsLoss(pos_weight=...)``). The result's
    ``accuracy`` holds the train, validation (when ``with_val``) and test accuracies.
    """
    examples = balanced_subset(data.train, n_labels, seed=seed) if examples is None else examples
    loss_fn = bce_loss if pos_weight is None else weighted_bce_loss(pos_weight)
    torch.manual_seed(seed)
    model = BiLSTMClassifier(encoder)
    if freeze_encoder:
        freeze(model.encoder)
    train = encode_reviews(vocab, examples)
    val = encode_reviews(vocab, data.val) if with_val else None
    start = time.perf_counter()
    with one_thread():
        history = fit(model, train, epochs=epochs, batch_size=min(batch_size, len(examples)),
                      lr=lr, loss_fn=loss_fn, val=val, metrics={"acc": accuracy}, callbacks=callbacks, seed=seed,
                      progress=False, name=f"{arm} · {len(examples)}")
        seconds = time.perf_counter() - start
        scores = evaluate(model, encode_reviews(vocab, data.test), loss_fn=bce_loss, metrics={"acc": accuracy})
        split_acc = {"train": evaluate(model, train, loss_fn=bce_loss, metrics={"acc": accuracy})["acc"],
                     "test": scores["acc"]}
        if val is not None:
            split_acc["val"] = evaluate(model, val, loss_fn=bce_loss, metrics={"acc": accuracy})["acc"]
    return RunResult(arm, len(examples), scores["acc"], scores["loss"], count_parameters(model, trainable_only=True),
                     seconds, history, accuracy=split_acc), model


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


# ----------------------------------------------------------------------------- verdicts (5.3, 5.4)
# Each sentence is worded from the numbers it is given: if the numbers change, the wording changes.
def versus(acc: dict[str, float], a: str, b: str, tie: float = 0.02) -> str:
    """``"a beats b: 0.812 vs 0.504 (+30.8 points)"``, or "is behind", or "ties with" within ``tie``."""
    gap = acc[a] - acc[b]
    word = "beats" if gap > tie else "is behind" if gap < -tie else f"ties with (within {100 * tie:.0f} points)"
    return f"{a} {word} {b}: {acc[a]:.3f} vs {acc[b]:.3f} ({100 * gap:+.1f} points)"


def chance_verdict(name: str, acc: float, chance: float = 0.5, near: float = 0.10) -> str:
    """``"name 0.812: 31 points above chance (0.50)"`` or ``"... within 10 points of chance"``."""
    gap = acc - chance
    where = (f"within {100 * near:.0f} points of chance" if abs(gap) <= near else
             f"{100 * abs(gap):.0f} points {'above' if gap > 0 else 'below'} chance")
    return f"{name} {acc:.3f}: {where} ({chance:.2f})"


def trend_verdict(name: str, sizes: list[int], values: list[float], moves: float = 0.05) -> str:
    """How ``values`` (accuracies at label counts ``sizes``) change from the smallest to the largest count."""
    if len(sizes) != len(values) or len(sizes) < 2:
        raise ValueError(f"need at least two sizes with one value each; got {len(sizes)} sizes, {len(values)} values")
    d = values[-1] - values[0]
    how = ("stays within " + f"{100 * moves:.0f} points" if abs(d) <= moves else
           "rises" if d > 0 else "falls")
    return (f"{name}: {values[0]:.3f} at {sizes[0]} labels, {values[-1]:.3f} at {sizes[-1]} "
            f"({100 * d:+.1f} points): it {how} as labels grow")


def pretraining_verdict(acc: dict[str, float], agree: dict[str, float], in_unlabelled: int, in_labelled: int,
                        n_held_out: int, tie: float = 0.02) -> str:
    """Did pretraining the BiLSTM on unlabelled text pay off on the held-out words, and where could the gain
    come from? ``acc``: test accuracy of ``bilstm-scratch`` and ``bilstm-pretrained``; ``agree``: the fraction of
    held-out words closer to their own sentiment for the ``random`` and the ``pretrained`` encoder;
    ``in_unlabelled`` / ``in_labelled``: how many of the ``n_held_out`` held-out adjectives each text contains."""
    pre, scratch = acc["bilstm-pretrained"], acc["bilstm-scratch"]
    gap = pre - scratch
    change = (f"raised its test accuracy by {100 * gap:.1f} points" if gap > tie else
              f"lowered its test accuracy by {100 * -gap:.1f} points" if gap < -tie else
              f"left its test accuracy within {100 * tie:.0f} points")
    lines = [f"Pretraining the BiLSTM on unlabelled text {change} ({scratch:.3f} from scratch, {pre:.3f} pretrained).",
             f"Before any label, the pretrained encoder put {agree['pretrained']:.0%} of the tested held-out words "
             f"closer to their own sentiment (random encoder: {agree['random']:.0%}).",
             f"The unlabelled text contains {in_unlabelled} of the {n_held_out} held-out adjectives; the labelled "
             f"training split contains {in_labelled}."]
    if gap > tie and in_labelled == 0 and in_unlabelled == n_held_out:
        lines.append("So the words the test needs reached the model only through the unlabelled text: this "
                     "pretraining worked because its text was written to contain them. Real pretraining gets "
                     "there by reading far more text, not by design.")
    elif gap > tie:
        lines.append("So part of what the test needs came from the unlabelled text.")
    else:
        lines.append("So on this run, pretraining bought nothing on the held-out words.")
    return "\n".join(lines)


def seed_verdict(name: str, values: list[float]) -> str:
    """``"name over 5 seeds: 0.760 to 0.813, a spread of 5.3 points (standard deviation 2.1)"``."""
    if len(values) < 2:
        raise ValueError(f"need at least two seeds to measure a spread; got {len(values)}")
    t = torch.tensor(values, dtype=torch.float64)
    return (f"{name} over {len(values)} seeds: {min(values):.3f} to {max(values):.3f}, a spread of "
            f"{100 * (max(values) - min(values)):.1f} points (standard deviation {100 * t.std().item():.1f})")


def noise_verdict(what: str, diff: float, spread: float) -> str:
    """Is a difference (accuracy, as a fraction) larger than the seed-to-seed spread (also a fraction)?"""
    if abs(diff) > spread:
        return (f"{what}: {100 * diff:+.1f} points, larger than the seed spread of {100 * spread:.1f} points")
    return (f"{what}: {100 * diff:+.1f} points, within the seed spread of {100 * spread:.1f} points: "
            "one run of each cannot tell them apart")


def leak_verdict(oov: dict[str, float], unchanged_rows: int, test_only: int) -> str:
    """What a vocabulary built on all the data hides. ``oov``: the test split's ``<unk>`` rate with the
    ``train`` and the ``all`` vocabulary; ``unchanged_rows`` of the ``test_only`` words' embedding rows did
    not move during training."""
    lines = [f"The vocabulary built on the training split maps {oov['train']:.1%} of the test tokens to <unk>; "
             f"built on all the data it maps {oov['all']:.1%}, and gives an id of its own to {test_only} words "
             "that only the validation and test splits contain."]
    if oov["all"] < oov["train"]:
        lines.append("So a vocabulary built on all the data reports the test split as better covered than any "
                     "new text will be: it was chosen by looking at the test split.")
    if test_only:
        moved = test_only - unchanged_rows
        lines.append(f"Training moved {moved} of those {test_only} embedding rows"
                     + (": no label ever reached them, so their ids carry nothing but the leak." if moved == 0
                        else "."))
    return "\n".join(lines)


def padding_verdict(name: str, effect: dict[str, float], tol: float = 1e-5) -> str:
    """Does padding change what a model predicts? ``effect`` is :func:`padding_effect`'s result."""
    if effect["max_change"] <= tol:
        return (f"{name}: padding changes no logit (largest change {effect['max_change']:.1e}); accuracy "
                f"{effect['alone']:.3f} alone and padded")
    flips = (f"flips {effect['flipped']:.1%} of the predictions" if effect["flipped"] > 0 else
             "flips no prediction")
    return (f"{name}: padding changes the logits (largest change {effect['max_change']:.2f}) and {flips}: "
            f"accuracy {effect['alone']:.3f} alone, {effect['padded']:.3f} padded "
            f"({100 * (effect['padded'] - effect['alone']):+.1f} points)")


def balance_verdict(acc: float, majority: float, recall: dict[int, float], minority: int, tie: float = 0.02) -> str:
    """Accuracy against the majority-label baseline, and what the minority class gets."""
    gap = acc - majority
    where = ("above" if gap > tie else "below" if gap < -tie else "level with")
    return (f"accuracy {acc:.3f}, {where} the {majority:.3f} of always predicting the majority label "
            f"({100 * gap:+.1f} points); recall of the minority label {minority}: {recall[minority]:.3f}, of the "
            f"majority label {1 - minority}: {recall[1 - minority]:.3f}")


def overfit_verdict(history: History, tie: float = 1e-3) -> str:
    """From a run's epoch records (``train_loss``, ``val_loss``, ``val_acc``): where validation was best, and
    whether training went on fitting the labels after that."""
    rows = [r for r in history.epochs if "val_loss" in r]
    if not rows:
        raise ValueError("the history has no val_loss: train with a validation split")
    best = min(rows, key=lambda r: r["val_loss"])
    last = rows[-1]
    head = (f"validation loss was lowest at epoch {best['epoch']} ({best['val_loss']:.3f}, validation accuracy "
            f"{best['val_acc']:.3f}); at epoch {last['epoch']} it is {last['val_loss']:.3f} (accuracy "
            f"{last['val_acc']:.3f}) while the training loss is {last['train_loss']:.4f}")
    if last["val_loss"] <= best["val_loss"] + tie:
        return head + ": validation was still improving at the end, so this run did not overfit"
    head += ": the model kept fitting its labels after validation stopped improving (overfitting)"
    if last["val_acc"] < best["val_acc"] - tie:
        return head + ", and validation accuracy fell too"
    return head + "; validation accuracy did not fall: the model grew over-confident, which the loss punishes"


def selection_verdict(rows: list[dict]) -> str:
    """``rows``: one dict per configuration with ``config``, ``val`` and ``test`` accuracy. Pick by validation
    (honest) and by test (peeking), and say how much peeking inflates the reported score."""
    if len(rows) < 2:
        raise ValueError(f"need at least two configurations to choose from; got {len(rows)}")
    by_val = max(rows, key=lambda r: r["val"])
    by_test = max(rows, key=lambda r: r["test"])
    inflation = by_test["test"] - by_val["test"]
    lines = [f"chosen on the validation split: {by_val['config']} (validation {by_val['val']:.3f}, test "
             f"{by_val['test']:.3f})",
             f"chosen on the test split: {by_test['config']} (test {by_test['test']:.3f})"]
    lines.append(f"peeking at the test split would report {100 * inflation:.1f} points more than the honest choice"
                 if inflation > 0 else "here both choices give the same test score, but only the first is honest")
    return "\n".join(lines)


def throughput_verdict(rates: dict[int, float], device: str) -> str:
    """``rates``: batch size -> reviews trained per second. Compares the largest batch with the smallest."""
    if len(rates) < 2:
        raise ValueError(f"need at least two batch sizes; got {sorted(rates)}")
    small, large = min(rates), max(rates)
    ratio = rates[large] / rates[small]
    return (f"on {device}: batch {large} trains on {rates[large]:,.0f} reviews/s, batch {small} on "
            f"{rates[small]:,.0f}: {ratio:.1f} times {'as many' if ratio >= 1 else 'as few'}")


# ----------------------------------------------------------------------------- cautions (5.4)
def oov_rate(vocab: Vocab, texts: list[str]) -> float:
    """The fraction of the tokens of ``texts`` that ``vocab`` maps to ``<unk>``."""
    ids = [i for t in texts for i in vocab.ids(t)]
    if not ids:
        raise ValueError("texts hold no tokens")
    return sum(i == vocab.unk_id for i in ids) / len(ids)


def imbalanced_subset(examples: list[tuple[str, int]], n: int, positive_fraction: float,
                      seed: int = 0) -> list[tuple[str, int]]:
    """``n`` examples of which ``round(n * positive_fraction)`` are positive, drawn with ``seed``, shuffled."""
    whole_number("n", n, minimum=2)
    probability("positive_fraction", positive_fraction)
    n_pos = round(n * positive_fraction)
    pools = {1: [e for e in examples if e[1] == 1], 0: [e for e in examples if e[1] == 0]}
    want = {1: n_pos, 0: n - n_pos}
    if any(want[k] > len(pools[k]) for k in pools):
        raise ValueError(f"n={n} with positive_fraction={positive_fraction} needs {want[1]} positive and {want[0]} "
                         f"negative examples; there are {len(pools[1])} and {len(pools[0])}")
    rng = random.Random(seed)
    out = [e for k in (1, 0) for e in rng.sample(pools[k], want[k])]
    rng.shuffle(out)
    return out


def predict(model: BiLSTMClassifier, vocab: Vocab, texts: list[str], batch_size: int = 64) -> torch.Tensor:
    """The logits of ``texts``, in batches, in eval mode."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            out.append(model(*vocab.encode(texts[i:i + batch_size])))
    return torch.cat(out)


def class_recall(model: BiLSTMClassifier, vocab: Vocab, examples: list[tuple[str, int]]) -> dict:
    """``{"acc": accuracy, 0: recall of label 0, 1: recall of label 1}`` (recall: the fraction of a label's
    examples predicted as that label)."""
    pred = (predict(model, vocab, [t for t, _ in examples]) > 0).long().tolist()
    gold = [y for _, y in examples]
    out = {"acc": sum(p == g for p, g in zip(pred, gold)) / len(gold)}
    for label in (0, 1):
        hits = [p == g for p, g in zip(pred, gold) if g == label]
        out[label] = sum(hits) / len(hits) if hits else float("nan")
    return out


def majority_accuracy(examples: list[tuple[str, int]]) -> float:
    """The accuracy of always predicting the most common label of ``examples``."""
    labels = [y for _, y in examples]
    return max(labels.count(0), labels.count(1)) / len(labels)


def padding_effect(model: BiLSTMClassifier, vocab: Vocab, examples: list[tuple[str, int]],
                   extra: int = 20) -> dict[str, float]:
    """Each review alone (no padding at all) and all of them in one batch padded ``extra`` ids past the longest:
    ``{"alone": accuracy, "padded": accuracy, "max_change": largest |logit change|, "flipped": the fraction of
    reviews whose predicted label changes}``."""
    whole_number("extra", extra, minimum=0)
    texts, gold = [t for t, _ in examples], torch.tensor([y for _, y in examples])
    model.eval()
    with torch.no_grad():
        alone = torch.cat([model(*vocab.encode([t])) for t in texts])
        ids, lengths = vocab.encode(texts)
        ids = F.pad(ids, (0, extra), value=vocab.pad_id)
        padded = model(ids, lengths)
    return {"alone": ((alone > 0).long() == gold).float().mean().item(),
            "padded": ((padded > 0).long() == gold).float().mean().item(),
            "max_change": (alone - padded).abs().max().item(),
            "flipped": ((alone > 0) != (padded > 0)).float().mean().item()}


def token_loss(logits: torch.Tensor, tags: torch.Tensor, lengths: torch.Tensor, *,
               ignore_padding: bool = True) -> torch.Tensor:
    """Per-token cross-entropy for tagging: ``logits`` (B, T, C), ``tags`` (B, T), ``lengths`` (B,).

    With ``ignore_padding`` the positions past each length get ``ignore_index`` and count for nothing, so the
    loss of a sequence does not depend on how far it is padded; without it they count as tag 0.
    """
    if logits.ndim != 3 or tags.shape != logits.shape[:2] or lengths.shape != logits.shape[:1]:
        raise ValueError(f"logits must be (B, T, C), tags (B, T) and lengths (B,); got {tuple(logits.shape)}, "
                         f"{tuple(tags.shape)}, {tuple(lengths.shape)}")
    padding = torch.arange(tags.shape[1], device=tags.device)[None] >= lengths[:, None].to(tags.device)
    target = tags.masked_fill(padding, IGNORE if ignore_padding else 0)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE)


def train_throughput(model: BiLSTMClassifier, vocab: Vocab, texts: list[str], batch_size: int, *,
                     steps: int = 5, lr: float = 1e-3) -> float:
    """Reviews per second over ``steps`` training steps (forward, loss, backward, AdamW step) at ``batch_size``,
    after one warm-up step. The labels are random: only the time is measured."""
    whole_number("batch_size", batch_size)
    whole_number("steps", steps)
    device = next(model.parameters()).device
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(steps + 1):
        pick = torch.randint(len(texts), (batch_size,), generator=g).tolist()
        ids, lengths = vocab.encode([texts[i] for i in pick])
        batches.append((ids.to(device), lengths, torch.randint(2, (batch_size,), generator=g).float().to(device)))
    start = None
    for k, (ids, lengths, y) in enumerate(batches):
        if k == 1:   # the first step warms up and is not timed
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        opt.zero_grad()
        bce_loss(model(ids, lengths), y).backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)
