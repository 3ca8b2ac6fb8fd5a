"""Lab 7: meet the families. Load an encoder, a decoder and an encoder-decoder, read their outputs, swap the
encoder under chapter 3.6's classifier, and answer checked questions about shapes, attention and memory.

:func:`load_families` takes one model per family from :mod:`labkit.zoo` (offline, only all-MiniLM-L6-v2 has
real weights; the others are tiny random models of the same architecture, and say so).
:func:`output_table` names every axis of what a model returned. :func:`swap_encoder` puts one zoo encoder
under :class:`~labkit.nn.SequenceClassifier` and reports train and test accuracy; :func:`verdict` words the
comparison from the numbers. Every expected answer of :func:`exercises` is measured on a model (the
real-size decoder is built on the ``meta`` device: shapes, no memory), never typed in.
"""
from __future__ import annotations

import contextlib

import copy
import math
import numbers
import time
from dataclasses import dataclass
from functools import cache
from typing import Any, Callable

import torch

from .. import zoo
from ..check import number, one_of, positive, probability, whole_number
from ..data.reviews import Reviews, balanced_subset
from ..data.text import encode
from ..exercises import Exercise
from ..nn import SequenceClassifier, count_parameters, freeze
from ..train import accuracy, evaluate, fit

__all__ = ["TRIO", "LLAMA", "LEARNING_RATES", "DTYPES", "QUESTION", "load_families", "loaded_side_by_side",
           "output_table", "next_token_entropy", "next_token_line", "majority_share", "reach_batch",
           "attention_reach", "RealSize", "llama_configs", "SwapRun", "swap_encoder", "swap_table", "verdict",
           "exercises"]

TRIO = {"encoder": "all-MiniLM-L6-v2", "decoder": "TinyLlama-1.1B", "encoder-decoder": "bart-base"}
LLAMA = "TinyLlama-1.1B"   # the decoder whose real config the memory questions read
# The learning rate of each arm: chapter 3.6's rate to fine-tune real weights, chapter 2's rate to train from
# random ones (a random encoder has nothing to protect and learns slowly at the small rate).
LEARNING_RATES = {"real": 1e-4, "random": 3e-4}
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# The settings of the questions (both notebooks read them from here).
QUESTION = dict(source_len=12, target_len=5, t=2, kv_tokens=2048, precision="bf16", gpu_gib=24.0)


def load_families(names: dict[str, str] | None = None, quiet: bool = False) -> dict[str, zoo.Pretrained]:
    """One loaded model per family (``{"encoder": name, ...}``, default :data:`TRIO`), each printed honestly."""
    names = dict(TRIO if names is None else names)
    loaded = {}
    for family, name in names.items():
        if zoo.card(name).family != family:
            raise ValueError(f"{name!r} is in the family {zoo.card(name).family!r}, not {family!r}")
        loaded[family] = zoo.load(name, quiet=quiet)
    return loaded


def loaded_side_by_side(families: dict[str, zoo.Pretrained]):
    """The side-by-side rows of the models that actually run here (tiny stand-ins included), with their weights."""
    import pandas as pd

    from ..sizing import architecture
    rows = [{"model": p.name, "family": family,
             "weights": "real pretrained" if p.real_weights else f"RANDOM ({p.source})",
             **architecture(p.model.config)} for family, p in families.items()]
    return pd.DataFrame(rows).set_index("model")


# ----------------------------------------------------------------------------- what each family returns
# tensor name -> (the name of each axis, what the tensor is); "*" entries depend on the family.
_INPUT_AXES = {
    "input_ids": (("batch", "tokens"), "input: token ids"),
    "attention_mask": (("batch", "tokens"), "input: 1 at a real token, 0 at padding"),
    "decoder_input_ids": (("batch", "target tokens"), "input: the target so far, shifted right by one"),
}
_OUTPUT_AXES = {
    ("encoder", "last_hidden_state"): (("batch", "tokens", "width"),
                                       "one contextual vector per token: what a classifier pools"),
    ("encoder", "pooler_output"): (("batch", "width"), "tanh(dense([CLS] vector)), BERT's next-sentence head; "
                                   "chapter 3.6's classifier does not use it"),
    ("decoder", "logits"): (("batch", "tokens", "vocabulary"),
                            "at position t, a score for every candidate next token t+1"),
    ("decoder", "cache K (layer 0)"): (("batch", "KV heads", "tokens", "head size"),
                                       "the keys kept for the next step; V has the same shape; one pair per layer"),
    ("encoder-decoder", "logits"): (("batch", "target tokens", "vocabulary"),
                                    "at target position t, a score for every candidate target token t+1"),
    ("encoder-decoder", "encoder_last_hidden_state"): (("batch", "source tokens", "width"),
                                                       "the encoder's vectors, read by every decoder layer through "
                                                       "cross-attention"),
    ("encoder-decoder", "cache K (layer 0)"): (("batch", "heads", "target tokens", "head size"),
                                               "self-attention keys over the target so far (V alike, per layer)"),
    ("encoder-decoder", "cross-attention K (layer 0)"): (("batch", "heads", "source tokens", "head size"),
                                                         "the encoder's keys for cross-attention, computed once "
                                                         "and kept"),
}


@contextlib.contextmanager
def _autocast_on_meta():
    """Let a forward pass on the meta device open ``torch.autocast``: the rotary embedding of transformers < 4.54
    opens ``torch.autocast(device_type=x.device.type, enabled=False)``, which torch refuses for ``meta``
    ("unsupported scalarType"). On meta nothing is computed, so that context can be empty."""
    real = torch.autocast

    def autocast(device_type, *args, **kwargs):
        return contextlib.nullcontext() if device_type == "meta" else real(device_type, *args, **kwargs)
    torch.autocast = autocast
    try:
        yield
    finally:
        torch.autocast = real


def _cache(out):
    """The KV cache of a forward pass, or None (transformers 5 names it ``cache``, earlier ``past_key_values``)."""
    if not hasattr(out, "keys"):
        return None
    for key in ("cache", "past_key_values"):
        if key in out.keys():
            return out[key]
    return None


def _kv(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(keys, values) of each layer of a KV cache, as each version of transformers stores them."""
    if hasattr(cache, "layers"):             # transformers >= 4.54: one object per layer
        return [(layer.keys, layer.values) for layer in cache.layers]
    if hasattr(cache, "key_cache"):          # DynamicCache before 4.54: two lists
        return list(zip(cache.key_cache, cache.value_cache))
    return [(layer[0], layer[1]) for layer in cache]   # the legacy tuple: (K, V[, cross K, cross V]) per layer


def _cache_layers(out) -> dict[str, Any]:
    """The first layer of each KV cache a forward pass returned, by row name (an empty dict when none)."""
    c = _cache(out)
    if c is None:
        return {}
    if hasattr(c, "self_attention_cache"):     # an encoder-decoder: the decoder's own cache and the encoder's K/V
        return {"cache K (layer 0)": _kv(c.self_attention_cache)[0][0],
                "cross-attention K (layer 0)": _kv(c.cross_attention_cache)[0][0]}
    if isinstance(c, tuple) and len(c[0]) == 4:  # a legacy encoder-decoder tuple
        return {"cache K (layer 0)": c[0][0], "cross-attention K (layer 0)": c[0][2]}
    return {"cache K (layer 0)": _kv(c)[0][0]}


def output_table(family: str, inputs: dict[str, torch.Tensor], out):
    """One row per tensor in and out of a forward pass: its shape and the meaning of each axis, with its size."""
    import pandas as pd
    one_of("family", family, ("encoder", "decoder", "encoder-decoder"))
    tensors = {**inputs, **{k: v for k, v in out.items() if isinstance(v, torch.Tensor)}, **_cache_layers(out)}
    rows = []
    for name, t in tensors.items():
        axes, what = _INPUT_AXES.get(name) or _OUTPUT_AXES.get((family, name), ((), "?"))
        if len(axes) != t.dim():
            raise ValueError(f"{name}: {t.dim()} axes, but the table names {len(axes)}: {axes}")
        rows.append({"tensor": name, "shape": tuple(t.shape),
                     "axes": " × ".join(f"{a} {n}" for a, n in zip(axes, t.shape)), "what it is": what})
    return pd.DataFrame(rows).set_index("tensor")


def next_token_entropy(logits: torch.Tensor) -> tuple[float, float]:
    """(mean entropy in nats of the next-token distribution at the last position, ln V: that of a uniform guess)."""
    logp = logits[:, -1].float().log_softmax(-1)
    return float(-(logp.exp() * logp).sum(-1).mean()), math.log(logits.shape[-1])


def next_token_line(logits: torch.Tensor, real_weights: bool) -> str:
    """What a decoder's last-position logits say, in words that follow the measured entropy."""
    h, uniform = next_token_entropy(logits)
    kind = "real weights" if real_weights else "RANDOM weights"
    line = (f"softmax(logits[:, -1]) is a distribution over the {logits.shape[-1]:,} next tokens: entropy "
            f"{h:.3f} nats against {uniform:.3f} for a uniform guess ({kind})")
    if h >= 0.95 * uniform:
        return line + ": almost uniform, the model has no preference, which is what untrained weights give"
    return line + f": {uniform - h:.2f} nats more certain than a uniform guess"


def majority_share(labels: list[int]) -> float:
    """The accuracy of always answering the most common label: the chance line of a classifier."""
    if not labels:
        raise ValueError("labels is empty")
    return max(labels.count(v) for v in set(labels)) / len(labels)


# ----------------------------------------------------------------------------- attention reach
def reach_batch(tokenizer, texts: list[str]) -> dict[str, torch.Tensor]:
    """The shortest and the longest of ``texts`` in one padded batch: the first row is the padded one."""
    if len(texts) < 2:
        raise ValueError(f"texts needs at least 2 texts of different lengths; got {len(texts)}")
    by_length = sorted(texts, key=lambda t: len(tokenizer(t)["input_ids"]))
    enc = tokenizer([by_length[0], by_length[-1]], padding=True, return_tensors="pt")
    if enc["attention_mask"][0].all():
        raise ValueError("texts all have the same token length: give texts of different lengths")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


@torch.no_grad()
def attention_reach(model, batch: dict[str, torch.Tensor], t: int, row: int = 0) -> int:
    """Measured: how many key positions get a weight > 0 from the query at position ``t`` of ``row``.

    The model runs with eager attention (the one that can return its weights); a position counts when any
    head of any layer gives it weight. A decoder gets random ids of the same lengths (it has no tokenizer
    offline; only the positions and the mask matter here).
    """
    mask = batch["attention_mask"]
    whole_number("t", t, minimum=0, maximum=int(mask[row].sum()) - 1)
    ids = batch["input_ids"]
    vocab = model.config.vocab_size
    if int(ids.max()) >= vocab:
        ids = torch.randint(5, vocab, ids.shape, generator=torch.Generator().manual_seed(0))
    before = model.config._attn_implementation
    zoo.set_attention(model, "eager")
    try:
        att = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
    finally:
        zoo.set_attention(model, before)
    return max(int((a[row, :, t] > 0).any(0).sum()) for a in att)   # a: (batch, heads, queries, keys)


# ----------------------------------------------------------------------------- the real-size decoder, measured
class RealSize:
    """The real-size model of a zoo decoder on the ``meta`` device (shapes, no memory): its parameters and the
    bytes of the KV cache a forward pass actually returns."""

    def __init__(self, name: str = LLAMA):
        self.name = name
        self.config = zoo.card(name).config("real")

    @cache
    def model(self, precision: str = "bf16"):
        one_of("precision", precision, DTYPES)
        return zoo.build(self.name, "real", device="meta").to(DTYPES[precision])

    def parameters(self) -> int:
        return count_parameters(self.model("fp32"))

    def weight_bytes(self, precision: str = "bf16") -> int:
        return sum(p.numel() * p.element_size() for p in self.model(precision).parameters())

    @torch.no_grad()
    def cache_bytes(self, tokens: int, batch: int = 1, precision: str = "bf16") -> int:
        """Bytes of the KV cache after a forward pass over ``batch`` sequences of ``tokens`` tokens (measured)."""
        whole_number("tokens", tokens, minimum=1, maximum=self.config.max_position_embeddings)
        whole_number("batch", batch, minimum=1)
        with torch.device("meta"), _autocast_on_meta():
            out = self.model(precision)(input_ids=torch.zeros(batch, tokens, dtype=torch.long), use_cache=True)
        return sum(t.numel() * t.element_size() for kv in _kv(_cache(out)) for t in kv)


def llama_configs() -> dict[str, Any]:
    """The configs a learner's ``llama_params`` is checked on: the real TinyLlama and tiny variants of it
    (grouped-query, tied head, one KV head per query head, a single KV head with a wider MLP), by description."""
    c = zoo.card(LLAMA)
    tiny = c.config("tiny")
    variants = [("real", {}), ("tiny", {}), ("tiny", {"tie_word_embeddings": True}),
                ("tiny", {"num_key_value_heads": tiny.num_attention_heads}),
                ("tiny", {"num_key_value_heads": 1, "intermediate_size": 2 * tiny.intermediate_size})]
    out = {}
    for size, overrides in variants:
        cfg = c.config(size)
        for k, v in overrides.items():
            setattr(cfg, k, v)
        label = (f"{size} {LLAMA}: {cfg.num_attention_heads} query / {cfg.num_key_value_heads} KV heads, "
                 f"MLP {cfg.intermediate_size}, {'tied' if cfg.tie_word_embeddings else 'untied'} LM head")
        out[label] = cfg
    return out


def _model_params(cfg) -> int:
    """Parameters of the LlamaForCausalLM that ``cfg`` builds (on ``meta``; a tied head counted once)."""
    import transformers
    with torch.device("meta"):
        return count_parameters(transformers.LlamaForCausalLM(cfg))


def _function_check(configs: dict[str, Any], truth: Callable[[Any], int]) -> Callable[[Callable], bool]:
    """A check for ``fn(config) -> int``: the true count on every config; prints how far off each miss is."""
    expected = {label: truth(cfg) for label, cfg in configs.items()}

    def check(fn) -> bool:
        if not callable(fn):
            print("   the answer is a function: llama_params(config) -> int")
            return False
        misses = []
        for label, cfg in configs.items():
            got = fn(copy.deepcopy(cfg))
            if isinstance(got, bool) or not isinstance(got, (int, float)) or got != expected[label]:
                misses.append(label)
                off = f"off by {got - expected[label]:+,}" if isinstance(got, (int, float)) and not isinstance(
                    got, bool) else f"returned {type(got).__name__}, not a number"
                print(f"   {label}: {off}")
        return not misses

    return check


def _same_tuple(size: int) -> Callable[[Any, tuple], bool]:
    def same(answer, expected) -> bool:
        try:
            got = tuple(answer)
        except TypeError:
            return False
        return len(got) == size and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in got) \
            and got == tuple(expected)
    return same


def _tuple_exercise(key: str, question: str, size: int, expected: Callable[[], tuple], **kw) -> Exercise:
    same = _same_tuple(size)
    return Exercise(key, question, check_fn=lambda answer: same(answer, expected()), **kw)


# ----------------------------------------------------------------------------- swapping the encoder
@dataclass
class SwapRun:
    model: str
    weights: str          # "real pretrained" or "RANDOM (...)": a random arm is not a pretrained result
    real_weights: bool
    parameters: int       # the whole classifier
    lr: float
    train_acc: float
    test_acc: float
    seconds: float

    def row(self) -> dict:
        return {"encoder": self.model, "weights": self.weights, "parameters": self.parameters, "lr": self.lr,
                "train accuracy": round(self.train_acc, 3), "test accuracy": round(self.test_acc, 3),
                "seconds": round(self.seconds, 1)}


def swap_encoder(p: zoo.Pretrained, data: Reviews, n_labels: int, *, epochs: int, batch_size: int,
                 lr: float | None = None, seed: int = 0, callbacks=()) -> SwapRun:
    """Chapter 3.6's classifier (masked mean + linear head) on a fresh copy of ``p.model``, trained on the same
    ``n_labels`` balanced reviews for the same budget, then scored on its training reviews and on the test split.

    Each encoder reads its own tokenizer's ids (offline stand-ins borrow all-MiniLM-L6-v2's). ``lr`` defaults to
    :data:`LEARNING_RATES` for real or random weights.
    """
    if p.tokenizer is None:
        raise ValueError(f"{p.name} came without a tokenizer; swap_encoder needs an encoder that has one")
    lr = LEARNING_RATES["real" if p.real_weights else "random"] if lr is None else lr
    positive("lr", lr)
    examples = balanced_subset(data.train, n_labels, seed=seed)
    train, test = encode(p.tokenizer, examples), encode(p.tokenizer, data.test)
    whole_number("batch_size", batch_size, minimum=1, maximum=len(train))
    torch.manual_seed(seed)
    model = SequenceClassifier(copy.deepcopy(p.model), n_classes=2)
    start = time.perf_counter()
    fit(model, train, epochs=epochs, batch_size=batch_size, lr=lr, metrics={"acc": accuracy}, callbacks=callbacks,
        seed=seed, name=p.name, progress=False)
    seconds = time.perf_counter() - start
    score = lambda split: evaluate(model, split, batch_size=64, metrics={"acc": accuracy})["acc"]   # noqa: E731
    weights = "real pretrained" if p.real_weights else f"RANDOM ({p.source})"
    return SwapRun(p.name, weights, p.real_weights, count_parameters(model), lr, score(train), score(test), seconds)


def swap_table(runs: list[SwapRun]):
    import pandas as pd
    return pd.DataFrame([r.row() for r in runs]).set_index("encoder")


def _against_chance(acc: float, chance: float) -> str:
    gap = acc - chance
    if abs(gap) < 0.05:
        return "within 5 points of chance"
    if gap >= 0.15:
        return f"{gap * 100:.0f} points above chance"
    return f"{abs(gap) * 100:.0f} points {'above' if gap > 0 else 'below'} chance"


def verdict(runs: list[SwapRun], chance: float) -> list[str]:
    """Sentences that follow the numbers: each arm against chance, the ranking, and over-fitting where it shows."""
    if not runs:
        raise ValueError("runs is empty: train at least one encoder")
    probability("chance", chance)
    lines = []
    for r in runs:
        kind = "real weights" if r.real_weights else "random weights, NOT a pretrained result"
        line = (f"{r.model} ({kind}): train {r.train_acc:.3f}, test {r.test_acc:.3f}, "
                f"{_against_chance(r.test_acc, chance)} ({chance:.3f})")
        if r.train_acc - r.test_acc >= 0.15 and r.train_acc - chance >= 0.15:
            line += ("; the gap between train and test says it learned the training reviews' own words, "
                     "which the test split does not use")
        lines.append(line)
    ranked = sorted(runs, key=lambda r: r.test_acc, reverse=True)
    if len(ranked) > 1:
        first, second = ranked[0], ranked[1]
        gap = first.test_acc - second.test_acc
        if gap < 0.02:
            lines.append(f"{first.model} and {second.model} are tied on the test split "
                         f"(a gap of {gap * 100:.1f} points, within noise for one seed)")
        else:
            lines.append(f"{first.model} is best on the test split, {gap * 100:.1f} points ahead of {second.model}")
    return lines


# ----------------------------------------------------------------------------- exercises
def exercises(families: dict[str, zoo.Pretrained], texts: list[str], swapped: zoo.Pretrained, *,
              source_len: int = QUESTION["source_len"], target_len: int = QUESTION["target_len"],
              t: int = QUESTION["t"], kv_tokens: int = QUESTION["kv_tokens"], precision: str = QUESTION["precision"],
              gpu_gib: float = QUESTION["gpu_gib"]) -> dict[str, Exercise]:
    """The lab's seven questions. ``families``: :func:`load_families`; ``texts``: a few reviews; ``swapped``: the
    encoder put under the classifier in place of MiniLM. Expected values are measured the first time an answer
    is checked, then kept."""
    enc, dec, s2s = families["encoder"], families["decoder"], families["encoder-decoder"]
    whole_number("source_len", source_len, minimum=1)
    whole_number("target_len", target_len, minimum=1)
    one_of("precision", precision, DTYPES)
    number("gpu_gib", gpu_gib, minimum=1)
    batch = reach_batch(enc.tokenizer, texts)
    n_short = int(batch["attention_mask"][0].sum())
    whole_number("t", t, minimum=0, maximum=n_short - 1)
    real = RealSize(LLAMA)
    rc = real.config
    tokens = enc.tokenizer(texts, padding=True, return_tensors="pt")

    @cache
    def hidden_shape():
        with torch.no_grad():
            return tuple(enc.model(**tokens).last_hidden_state.shape)

    @cache
    def seq2seq_shape():
        g = torch.Generator().manual_seed(0)
        vocab = s2s.model.config.vocab_size
        with torch.no_grad():
            out = s2s.model(input_ids=torch.randint(5, vocab, (2, source_len), generator=g),
                            decoder_input_ids=torch.randint(5, vocab, (2, target_len), generator=g))
        return tuple(out.logits.shape)

    @cache
    def reach():
        return attention_reach(dec.model, batch, t), attention_reach(enc.model, batch, t)

    @cache
    def sequences_that_fit():
        free = gpu_gib * 2 ** 30 - real.weight_bytes(precision)
        return math.floor(free / real.cache_bytes(kv_tokens, 1, precision))

    def frozen_head():
        model = SequenceClassifier(copy.deepcopy(swapped.model), n_classes=2)
        freeze(model.encoder)
        return count_parameters(model, trainable_only=True)

    configs = llama_configs()
    short = enc.tokenizer.decode(batch["input_ids"][0][:n_short], skip_special_tokens=True)
    return {
        "7.1": _tuple_exercise(
            "7.1", f"{len(texts)} reviews go through {enc.name}'s tokenizer (padding=True) and the encoder. What is "
            "the shape of last_hidden_state? Answer a tuple of 3 whole numbers.", 3, hidden_shape,
            hint="one axis per review, one per position of the padded batch (count tokens, not words: look at "
                 "tokens['input_ids']), one per feature of a token vector (the config knows it)",
            explain="(batch, tokens, width): tokens include [CLS], [SEP] and padding; the classifier averages "
                    "over axis 1 with the attention mask."),
        "7.2": _tuple_exercise(
            "7.2", f"{s2s.name}: a batch of 2 sources of {source_len} tokens and 2 targets of {target_len} tokens "
            "(decoder_input_ids). What is the shape of logits? A tuple of 3.", 3, seq2seq_shape,
            hint="the logits score the next *target* token at every position of the decoder's input; which "
                 "length is that, and how many candidates does each position score?",
            explain="(batch, target tokens, vocabulary): the source length only appears in the encoder's output "
                    "and in the cross-attention keys."),
        "7.3": _tuple_exercise(
            "7.3", f"The shortest and the longest of the {len(texts)} reviews go in one padded batch "
            f"(lab07.reach_batch): the shortest, \"{short}\", is padded to the longest's length. "
            f"Its token at position t={t} (counting from 0): to how many positions does it attend (weight > 0) "
            f"in the decoder {dec.name} (fed random ids of the same lengths: only positions matter), and in the "
            f"encoder {enc.name}? Answer (decoder, encoder).", 2, reach,
            hint="a decoder's causal mask lets a token see the past and one more position; an encoder's mask "
                 "hides something else: what did padding add to this row?",
            explain="A decoder: positions 0..t (itself included), so t + 1. An encoder: every real token of its "
                    "own text, before and after; never the padding."),
        "7.4": Exercise(
            "7.4", f"{LLAMA} at its real size ({rc.num_hidden_layers} layers, width {rc.hidden_size}, "
            f"{rc.num_attention_heads} query heads, {rc.num_key_value_heads} KV heads): how many bytes does its KV "
            f"cache take for one sequence of {kv_tokens:,} tokens at {precision}?",
            expected=cache(lambda: real.cache_bytes(kv_tokens, 1, precision)),
            hint="per layer and per past token, the cache keeps what later queries need and cannot recompute; "
                 "each of those vectors is (heads that have their own K/V) × head size numbers, where head size "
                 "= width / query heads; then bytes per number",
            explain="2 (K and V) × layers × KV heads × head size × tokens × bytes. Grouped-query attention "
                    "shrinks it by query heads / KV heads against full multi-head attention."),
        "7.5": Exercise(
            "7.5", "Write llama_params(config) -> the number of parameters of LlamaForCausalLM(config) (a tied "
            f"LM head counted once). It is checked on {len(configs)} configs: " + "; ".join(configs) + ".",
            check_fn=_function_check(configs, _model_params),
            hint="print(zoo.build('TinyLlama-1.1B')) lists every module of the tiny model: which have a bias? "
                 "which sizes read num_key_value_heads? what does config.tie_word_embeddings change? do not forget "
                 "the modules that hold only a scale",
            explain="Embeddings V·d; per layer Q and O d·(heads·head size), K and V d·(KV heads·head size), "
                    "three SwiGLU matrices 3·d·f, two RMSNorm scales 2d; a final norm d; an LM head V·d unless "
                    "tied. No biases anywhere."),
        "7.6": Exercise(
            "7.6", f"Chapter 3.6's classifier on {swapped.name} (the swapped encoder, as loaded here), encoder "
            "frozen, 2 classes: how many parameters train?",
            expected=cache(frozen_head),
            hint="only the new head trains; its input is this encoder's width (read swapped.model.config), "
                 "and a linear layer has more than weights",
            explain="width × classes + classes: the head depends on the encoder's width, not on its depth."),
        "7.7": Exercise(
            "7.7", f"Serving {LLAMA} (real size) at {precision} on a {gpu_gib:g} GiB GPU: the weights and one KV "
            f"cache of {kv_tokens:,} tokens per sequence must fit (ignore activations). How many sequences at "
            "most?", expected=sequences_that_fit,
            hint="first the bytes the weights take at this precision (count the parameters of the real config, "
                 "zoo.build(..., 'real', device='meta') has no memory), then how many whole caches of 7.4 fit "
                 "in what is left; 1 GiB = 2**30 bytes",
            explain="The weights take a fixed share; the rest is cache, and at long contexts the cache, not the "
                    "weights, limits the batch."),
    }
