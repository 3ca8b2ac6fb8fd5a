"""Pretraining objectives as ``forward`` / ``loss_fn`` pairs for :func:`labkit.train.fit`.

* causal LM (GPT):  :func:`clm_forward` + :func:`clm_loss`
* MLM + a pair task (BERT: NSP; ALBERT: SOP): :class:`MLMPairForward` + :func:`mlm_pair_loss`,
  the total loss ``L = L_MLM + L_pair`` (a sum, not one overwriting the other).
* bidirectional LM (ELMo's biLM, the BiLSTM of chapter 5): :func:`bilm_forward` + :func:`bilm_loss`,
  next word for the forward LSTM, previous word for the backward one.

And what a chapter measures around them: the unigram entropy of a token
stream (the loss of the best model that ignores context), mean-pooled encoder
features for a probe, a callback that prints a sample while a GPT trains; the
shortcuts that solve a sentence-pair task without reading for coherence (the
topic of each sentence, its first words); and verdicts worded from the numbers.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .check import number, whole_number
from .data.pretraining import IGNORE, mask_tokens
from .nn.bilstm import check_batch
from .nn.classifier import mean_pool
from .train import Callback, TrainState, accuracy, evaluate, fit

__all__ = ["clm_forward", "clm_loss", "MLMPairForward", "mlm_pair_loss", "pair_accuracy", "pair_predictions",
           "bilm_targets", "bilm_forward", "bilm_loss", "unigram_entropy", "context_verdict", "mean_pool",
           "encoder_features", "SampleEvery", "sample_stats", "perplexity", "linear_probe", "linear_probe_scores",
           "probe_verdict", "topic_shortcut", "first_words_shortcut", "shortcut_verdict", "pretrain_mlm_pair",
           "accuracy_by", "order_verdict", "decoding_verdict"]


def clm_forward(model, batch):
    """(inputs, targets) -> (logits (B, T, V), targets (B, T))."""
    x, y = batch
    return model(x), y


def clm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over every position, in nats per token."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE)


class MLMPairForward:
    """Masks a batch (freshly, every time: dynamic masking) and runs a BertForPretraining.

    The batch is (input_ids, token_type_ids, attention_mask, pair_label) as built by
    :func:`labkit.data.pretraining.encode_pairs`. The output is (mlm_logits,
    mlm_labels, pair_logits) and the target the pair label, ready for :func:`mlm_pair_loss`.
    """

    def __init__(self, tokenizer, mlm_prob: float = 0.15, use_pair: bool = True):
        self.vocab_size, self.mask_id = tokenizer.vocab_size, tokenizer.mask_id
        self.special_ids, self.mlm_prob, self.use_pair = list(tokenizer.special_ids), mlm_prob, use_pair

    def __call__(self, model, batch):
        ids, types, mask, pair = batch
        corrupted, labels = mask_tokens(ids, vocab_size=self.vocab_size, mask_id=self.mask_id,
                                        special_ids=self.special_ids, mlm_prob=self.mlm_prob)
        mlm_logits, pair_logits = model(corrupted, mask, types)
        if not self.use_pair:
            pair_logits = None
        return (mlm_logits, labels, pair_logits), pair


def mlm_pair_loss(output, pair_label: torch.Tensor) -> torch.Tensor:
    """L = L_MLM (only at the chosen positions) + L_pair (NSP or SOP; left out when its logits are None)."""
    mlm_logits, labels, pair_logits = output
    loss = F.cross_entropy(mlm_logits.reshape(-1, mlm_logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE)
    if pair_logits is not None:
        loss = loss + F.cross_entropy(pair_logits, pair_label)
    return loss


def pair_accuracy(output, pair_label: torch.Tensor) -> torch.Tensor:
    """Accuracy of the NSP/SOP head (a metric for :func:`labkit.train.fit`)."""
    pair_logits = output[2]
    if pair_logits is None:
        return torch.tensor(float("nan"))
    return (pair_logits.argmax(-1) == pair_label).float().mean()


@torch.no_grad()
def pair_predictions(model, data, batch_size: int = 256) -> torch.Tensor:
    """The pair head's predicted labels (NSP or SOP) of a BertForPretraining on ``data`` (as built by
    :func:`labkit.data.pretraining.encode_pairs`), unmasked inputs, in eval mode; on the CPU."""
    ids, types, mask, _ = data.tensors
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    out = [model(ids[i:i + batch_size].to(device), mask[i:i + batch_size].to(device),
                 types[i:i + batch_size].to(device))[1].argmax(-1).cpu() for i in range(0, len(ids), batch_size)]
    model.train(was)
    return torch.cat(out)


def pretrain_mlm_pair(cfg, tokenizer, pairs, steps: int, *, batch_size: int = 64, lr: float = 2e-3, seed: int = 0,
                      device="cpu", callbacks=(), name: str = "tiny BERT"):
    """Chapter 3.3's recipe: a fresh BertForPretraining(cfg) trained on encoded sentence ``pairs`` with
    L = L_MLM + L_pair (masks drawn fresh for every batch), AdamW, warmup over the first tenth of the ``steps``
    then cosine decay, gradients clipped to norm 1. Returns (model, history)."""
    from .nn import BertForPretraining
    from .train import warmup_cosine
    torch.manual_seed(seed)
    model = BertForPretraining(cfg).to(device)
    history = fit(model, pairs, steps=steps, batch_size=batch_size, lr=lr, forward=MLMPairForward(tokenizer),
                  loss_fn=mlm_pair_loss, scheduler=warmup_cosine(max(1, steps // 10), steps), clip_grad_norm=1.0,
                  seed=seed, name=name, progress=False, callbacks=list(callbacks))
    return model, history


def accuracy_by(predictions: Sequence[int], labels: Sequence[int],
                kinds: Sequence[str]) -> dict[str, tuple[int, float]]:
    """For every kind (in order of first appearance): (number of examples, accuracy of ``predictions``)."""
    predictions, labels = [int(p) for p in predictions], [int(y) for y in labels]
    if not len(predictions) == len(labels) == len(kinds):
        raise ValueError(f"predictions, labels and kinds must have the same length; got {len(predictions)}, "
                         f"{len(labels)}, {len(kinds)}")
    out = {}
    for kind in dict.fromkeys(kinds):
        idx = [i for i, k in enumerate(kinds) if k == kind]
        out[kind] = (len(idx), sum(predictions[i] == labels[i] for i in idx) / len(idx))
    return out


def order_verdict(name: str, by_kind: dict[str, tuple[int, float]], chance: float = 0.5,
                  near: float = 0.05) -> str:
    """One sentence worded from :func:`accuracy_by`: the accuracy on each kind of pair, near chance or above."""
    parts = []
    for kind, (n, acc) in by_kind.items():
        where = (f"within {100 * near:.0f} points of chance" if abs(acc - chance) <= near else
                 f"{100 * (acc - chance):+.0f} points from chance")
        parts.append(f"{kind} {acc:.3f} ({n} pairs, {where})")
    return f"{name}: " + "; ".join(parts) + "."


def bilm_targets(ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Targets (B, 2, T): ``[:, 0, t]`` = word t+1, ``[:, 1, t]`` = word t-1, ``IGNORE`` where there is none."""
    check_batch(ids, lengths)
    B, T = ids.shape
    real = torch.arange(T, device=ids.device)[None, :] < lengths[:, None].to(ids.device)
    words = torch.where(real, ids, torch.full_like(ids, IGNORE))
    nxt = torch.full_like(ids, IGNORE)
    prv = torch.full_like(ids, IGNORE)
    nxt[:, :-1] = words[:, 1:]
    prv[:, 1:] = words[:, :-1]
    prv[~real] = IGNORE  # a padding position has no "previous word" to predict
    return torch.stack([nxt, prv], dim=1)


def bilm_forward(model, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """For a :class:`~labkit.nn.BiLSTMLanguageModel`: a batch ``(ids, lengths)`` -> ``(logits, targets)``."""
    ids, lengths = batch[0], batch[1]
    return model(ids, lengths), bilm_targets(ids, lengths)


def bilm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every position that has a next (or previous) word, both directions."""
    return F.cross_entropy(logits.flatten(0, 2), targets.flatten(), ignore_index=IGNORE)


def unigram_entropy(stream: torch.Tensor, vocab_size: int | None = None) -> float:
    """H = -Σ p(w) ln p(w) of the token frequencies in ``stream``, in nats.

    It is the cross-entropy of the best predictor that ignores the context, so a
    language model that learned anything from context must go below it.
    """
    stream = torch.as_tensor(stream).reshape(-1)
    if stream.numel() == 0:
        raise ValueError("stream is empty")
    counts = torch.bincount(stream, minlength=vocab_size or 0).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())


def context_verdict(loss: float, h1: float, margin: float = 0.5) -> str:
    """One sentence worded from a language model's loss and the unigram entropy ``h1`` (nats): it uses the
    context when its loss is at least ``margin`` nats below ``h1``."""
    number("margin", margin, minimum=0)
    where = f"{loss:.3f} nats/token against the unigram entropy {h1:.3f} ({loss - h1:+.3f})"
    if loss <= h1 - margin:
        return f"{where}: at least {margin:g} nats below it, so it uses the context."
    if loss < h1:
        return f"{where}: below it, but by less than {margin:g} nats (train longer)."
    return f"{where}: not below it, so it has learned no more than the word frequencies (train longer)."


@torch.no_grad()
def encoder_features(encoder, ids: torch.Tensor, mask: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Mean-pooled features of a (frozen) encoder, in eval mode, batch by batch; returned on the CPU."""
    was = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    ids, mask = ids.to(device), mask.to(device)
    out = [mean_pool(encoder(ids[i:i + batch_size], mask[i:i + batch_size]), mask[i:i + batch_size]).cpu()
           for i in range(0, len(ids), batch_size)]
    encoder.train(was)
    return torch.cat(out)


class SampleEvery(Callback):
    """Every ``every`` steps (and at the end), print ``sample(model)``: watch a GPT learn to write."""

    def __init__(self, sample: Callable, every: int = 100):
        whole_number("every", every)
        self.sample, self.every, self.printed = sample, every, []

    def _show(self, state: TrainState) -> None:
        was = state.model.training
        state.model.eval()
        text = self.sample(state.model)
        state.model.train(was)
        self.printed.append((state.step, text))
        print(f"step {state.step:>5} | loss {state.loss:.3f} | {text}")

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0:
            self._show(state)

    def on_fit_end(self, state: TrainState) -> None:
        if not self.printed or self.printed[-1][0] != state.step:
            self._show(state)


def linear_probe_scores(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor, *,
                        epochs: int = 300, lr: float = 3e-2, seed: int = 0) -> dict[str, float]:
    """Fit a linear classifier on frozen features (full batch, AdamW); its accuracy on the training examples
    (``"train"``: did it fit them?) and on the test examples (``"test"``: does it generalise?)."""
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise ValueError("train_x/train_y and test_x/test_y must have the same lengths")
    torch.manual_seed(seed)
    head = torch.nn.Linear(train_x.shape[1], int(max(train_y.max(), test_y.max())) + 1)
    fit(head, (train_x, train_y), epochs=epochs, batch_size=len(train_y), lr=lr, seed=seed, progress=False)
    return {split: evaluate(head, data, metrics={"acc": accuracy})["acc"]
            for split, data in (("train", (train_x, train_y)), ("test", (test_x, test_y)))}


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor, *,
                 epochs: int = 300, lr: float = 3e-2, seed: int = 0) -> float:
    """Fit a linear classifier on frozen features (full batch, AdamW) and return its test accuracy."""
    return linear_probe_scores(train_x, train_y, test_x, test_y, epochs=epochs, lr=lr, seed=seed)["test"]


def probe_verdict(name: str, scores: dict[str, float], chance: float, *, fits: float = 0.95,
                  near: float = 0.10) -> str:
    """One sentence worded from a probe's train and test accuracy: does it fit its labelled examples, and does
    it generalise to the unlabelled ones or only memorise (test within ``near`` of ``chance``)?"""
    train, test = scores["train"], scores["test"]
    fit_words = (f"fits its labelled examples (train accuracy {train:.3f})" if train >= fits else
                 f"does not even fit its labelled examples (train accuracy {train:.3f} < {fits})")
    if test - chance <= near:
        general = (f"it only memorises them: test accuracy {test:.3f}, within {100 * near:.0f} points of chance "
                   f"{chance:.3f}" if train >= fits else
                   f"test accuracy {test:.3f}, within {100 * near:.0f} points of chance {chance:.3f}")
    else:
        general = (f"it generalises beyond them: test accuracy {test:.3f}, {100 * (test - chance):.0f} points above "
                   f"chance {chance:.3f}")
    return f"{name}: {fit_words}; {general}."


def topic_shortcut(pairs: Sequence[tuple[str, str, int]], topic_of: dict[str, str]) -> float:
    """Accuracy of the rule "label 1 (NotNext) exactly when A and B name words of different topics" on
    ``pairs``; a sentence names a topic when its topic words (``topic_of``) all share one."""
    if not pairs:
        raise ValueError("pairs is empty")

    def topic(sentence: str):
        found = {topic_of[w] for w in sentence.split() if w in topic_of}
        return found.pop() if len(found) == 1 else None

    return sum((topic(a) != topic(b)) == bool(y) for a, b, y in pairs) / len(pairs)


def _first_words(sentence: str, n: int) -> tuple[str, ...]:
    return tuple(sentence.split()[:n])


def first_words_shortcut(train_pairs: Sequence[tuple[str, str, int]], test_pairs: Sequence[tuple[str, str, int]],
                         n_words: int = 1) -> float:
    """The best a classifier can do that reads only the first ``n_words`` words of A and of B.

    A lookup table learned on ``train_pairs``: for each (first words of A, first words of B) it predicts the
    label seen most often with them (the majority label of all training pairs where the key never occurred);
    returns its accuracy on ``test_pairs``. If this is high, the task can be solved without reading on.
    """
    whole_number("n_words", n_words)
    if not train_pairs or not test_pairs:
        raise ValueError("train_pairs and test_pairs must both be non-empty")
    seen: dict[tuple, Counter] = defaultdict(Counter)
    for a, b, y in train_pairs:
        seen[_first_words(a, n_words), _first_words(b, n_words)][y] += 1
    fallback = Counter(y for *_, y in train_pairs).most_common(1)[0][0]
    guess = {key: c.most_common(1)[0][0] for key, c in seen.items()}
    return sum(guess.get((_first_words(a, n_words), _first_words(b, n_words)), fallback) == y
               for a, b, y in test_pairs) / len(test_pairs)


def shortcut_verdict(task: str, shortcut: str, acc: float, chance: float = 0.5, *, solved: float = 0.95,
                     near: float = 0.05) -> str:
    """One sentence worded from a shortcut's accuracy on a task: solves it, solves part of it, or gets nothing."""
    number("acc", acc, minimum=0, maximum=1)
    if acc >= solved:
        how = f"solves it almost entirely ({acc:.3f}; chance {chance:.2f})"
    elif acc - chance > near:
        how = f"solves part of it ({acc:.3f}; chance {chance:.2f})"
    else:
        how = f"does no better than chance ({acc:.3f}; chance {chance:.2f})"
    return f"{task}: {shortcut} {how}."


def sample_stats(texts: Sequence[str], grammatical: Callable[[str], bool]) -> dict[str, float]:
    """What a set of generated samples does: its complete sentences (ending with ``.``), the share that
    ``grammatical`` accepts, and the share that repeat, word for word, an earlier sentence of the same sample
    (its first word, an order marker where the corpus has them, left out). Special tokens are skipped."""
    n = ok = repeated = 0
    for text in texts:
        words, sentence, seen = text.split(), [], set()
        for w in words:
            if w.startswith("[") and w.endswith("]"):   # [SEP] between documents, and other special tokens
                continue
            sentence.append(w)
            if w == ".":
                n += 1
                ok += bool(grammatical(" ".join(sentence)))
                body = " ".join(sentence[1:])
                repeated += body in seen
                seen.add(body)
                sentence = []
    return {"sentences": n, "follow the templates": ok / n if n else float("nan"),
            "repeat an earlier sentence": repeated / n if n else float("nan")}


def decoding_verdict(stats: dict[str, dict[str, float]]) -> list[str]:
    """Sentences worded from :func:`sample_stats` of several decoding settings: which setting keeps to the
    templates least and which repeats itself most (ties named together), and which finished no sentence."""
    if not stats:
        raise ValueError("stats is empty")
    wrote = {name: s for name, s in stats.items() if s["sentences"]}
    silent = [name for name in stats if name not in wrote]
    lines = [f"no complete sentence from: {', '.join(silent)}."] if silent else []
    if not wrote:
        return lines
    for key, most in (("follow the templates", min), ("repeat an earlier sentence", max)):
        values = {name: s[key] for name, s in wrote.items()}
        best = most(values.values())
        names = [n for n, v in values.items() if v == best]
        others = [v for n, v in values.items() if n not in names]
        if not others:
            lines.append(f"every setting that finished a sentence: {best:.0%} of its sentences {key}.")
            continue
        word = "fewest" if most is min else "most"
        span = f"{min(others):.0%}" if f"{min(others):.0%}" == f"{max(others):.0%}" else \
            f"{min(others):.0%} to {max(others):.0%}"
        lines.append(f"{' and '.join(names)}: the {word} sentences that {key} ({best:.0%}; the other settings "
                     f"{span}).")
    return lines


def perplexity(loss: float) -> float:
    """exp(loss): the effective number of equally likely choices per token."""
    return math.exp(loss)
