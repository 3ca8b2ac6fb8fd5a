"""Generating text with an encoder-decoder: greedy and beam search, BLEU, and why an encoder alone cannot do it.

* **Decoding.** The decoder gives, at every step, a distribution over the next token given the source and the
  tokens so far. :func:`greedy_decode` takes the most likely token each step. :func:`beam_search` keeps the
  ``beam_size`` best partial outputs (by summed log-probability) and returns the best finished one, its score
  divided by ``length ** length_penalty`` (0: the raw sum, which favours short outputs; 1: per token).
* **BLEU** (Papineni et al., ACL 2002) as sacrebleu computes it (Post, WMT 2018): the corpus's clipped n-gram
  precisions for n = 1..4, their geometric mean, times a brevity penalty ``exp(1 - r / c)`` when the output
  (c tokens) is shorter than the references (r); "13a" tokenisation and sacrebleu's default "exp" smoothing
  (an order with no match gets precision 100 / (2^k * total), k counting such orders). :func:`corpus_bleu`
  equals ``sacrebleu.corpus_bleu`` (tests/test_generation.py).
* **Encoder-only models cannot generate left to right.** A bidirectional encoder lets position t read t+1.
  :func:`future_influence` measures it on any model; :class:`PrefixLM` is the same Transformer trained on
  ``source <sep> target`` with next-token targets, with the causal mask (a decoder: GPT-style) or without it
  (an encoder: BERT-style). Without the mask, the prediction at t can read token t+1 in its input, so its
  teacher-forced loss says little about generation, where that token does not exist yet;
  :func:`next_token_losses` measures the loss with the input cut as generation cuts it.
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from .check import number, whole_number
from .data.vocab import PAD, UNK, Vocab, tokenize
from .nn import BertEncoder, TransformerConfig

__all__ = ["BOS", "EOS", "SEP", "build_vocab", "encode_pairs", "seq2seq_forward", "sequence_loss",
           "greedy_decode", "beam_search", "Hypothesis", "translate", "sequence_logprobs", "tokenize_13a", "corpus_bleu", "BLEU",
           "WordByWord", "PrefixLM", "encode_prefix_lm", "prefix_lm_forward", "prefix_lm_generate",
           "next_token_losses", "future_influence"]

BOS, EOS, SEP = "<bos>", "<eos>", "<sep>"


def build_vocab(pairs: Sequence[tuple[str, str]]) -> Vocab:
    """One vocabulary for both sides (the encoder-decoder shares its embedding): specials, then words by
    frequency. Ids: 0 <pad>, 1 <unk>, 2 <bos>, 3 <eos>, 4 <sep>."""
    counts = Counter(w for s, t in pairs for w in tokenize(s) + tokenize(t))
    return Vocab([PAD, UNK, BOS, EOS, SEP, *sorted(counts, key=lambda w: (-counts[w], w))])


def _pad(rows: list[list[int]]) -> torch.Tensor:
    out = torch.full((len(rows), max(len(r) for r in rows)), Vocab.pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r)
    return out


def encode_pairs(vocab: Vocab, pairs: Sequence[tuple[str, str]]) -> TensorDataset:
    """(source, decoder input, labels): source = words + <eos>; decoder input = <bos> + target;
    labels = target + <eos> (the decoder input shifted left by one: position t predicts token t+1)."""
    if not pairs:
        raise ValueError("pairs is empty: need at least one (source, target) pair")
    bos, eos = vocab.lookup(BOS), vocab.lookup(EOS)
    src = [vocab.ids(s) + [eos] for s, _ in pairs]
    tgt = [vocab.ids(t) for _, t in pairs]
    return TensorDataset(_pad(src), _pad([[bos] + t for t in tgt]), _pad([t + [eos] for t in tgt]))


def sequence_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Token cross-entropy over (B, T, V) logits and (B, T) labels, padding (id 0) skipped."""
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=Vocab.pad_id)


def seq2seq_forward(model, batch):
    """For ``labkit.train.fit``: (source, decoder input, labels) -> (logits, labels)."""
    src, dec_in, labels = batch
    return model(src, dec_in, attention_mask=(src != Vocab.pad_id).long()), labels


# ----------------------------------------------------------------------------- decoding
def _next_logprobs(model, memory, src_mask, ys) -> torch.Tensor:
    """log p(next token | source, ys) for each row: (B, V). The decoder re-reads ys each step (no cache)."""
    hidden = model.decode(ys, memory, src_mask)[:, -1]
    return F.log_softmax(model.lm_head(hidden) + model.final_logits_bias, dim=-1)


@torch.no_grad()
def greedy_decode(model, src: torch.Tensor, bos: int, eos: int, max_len: int = 32) -> list[list[int]]:
    """The most likely token at each step, for a batch of sources (B, S); each output stops at <eos>."""
    whole_number("max_len", max_len)
    model.eval()
    mask = (src != Vocab.pad_id).long()
    memory = model.encode(src, mask)
    ys = torch.full((src.shape[0], 1), bos, dtype=torch.long)
    done = torch.zeros(src.shape[0], dtype=torch.bool)
    for _ in range(max_len):
        nxt = _next_logprobs(model, memory, mask, ys).argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, eos), nxt)        # a finished row only pads with <eos>
        ys = torch.cat([ys, nxt[:, None]], dim=1)
        done |= nxt == eos
        if done.all():
            break
    return [_cut(row[1:].tolist(), eos) for row in ys]


def _cut(ids: list[int], eos: int) -> list[int]:
    return ids[:ids.index(eos)] if eos in ids else ids


@dataclass
class Hypothesis:
    tokens: list[int]          # without <bos>, without <eos>
    logprob: float             # summed log-probability, <eos> included when it finished
    finished: bool


@torch.no_grad()
def beam_search(model, src: torch.Tensor, bos: int, eos: int, beam_size: int = 4, max_len: int = 32,
                length_penalty: float = 1.0) -> Hypothesis:
    """The best output for ONE source (1, S) found by beam search.

    Each step, every live hypothesis is extended by every token; of all extensions, those ending in <eos>
    are set aside as finished and the best ``beam_size`` others stay live. The search stops when
    ``beam_size`` hypotheses have finished (or, with ``length_penalty=0``, when the best finished one beats
    every live one: their scores can only fall), or at ``max_len``. The answer is the hypothesis with the best
    ``logprob / length ** length_penalty``, the length counting <eos>.
    """
    whole_number("beam_size", beam_size)
    whole_number("max_len", max_len)
    number("length_penalty", length_penalty, minimum=0)
    if src.dim() != 2 or src.shape[0] != 1:
        raise ValueError(f"beam_search takes one source of shape (1, S); got {tuple(src.shape)}")
    model.eval()
    mask = (src != Vocab.pad_id).long()
    memory = model.encode(src, mask)
    live = [Hypothesis([], 0.0, False)]
    finished: list[Hypothesis] = []
    final = lambda h: h.logprob / max(1, len(h.tokens) + h.finished) ** length_penalty  # noqa: E731
    for _ in range(max_len):
        ys = torch.tensor([[bos] + h.tokens for h in live])
        logp = _next_logprobs(model, memory.expand(len(live), -1, -1), mask.expand(len(live), -1), ys)
        total = torch.tensor([h.logprob for h in live])[:, None] + logp               # (live, V)
        order = total.flatten().argsort(descending=True)
        new = []
        for flat in order.tolist():
            h, tok = live[flat // logp.shape[1]], flat % logp.shape[1]
            score = float(total.flatten()[flat])
            if tok == eos:
                finished.append(Hypothesis(h.tokens, score, True))
            else:
                new.append(Hypothesis(h.tokens + [tok], score, False))
            if len(new) == beam_size:
                break
        live = new
        if len(finished) >= beam_size:          # enough finished candidates (Hugging Face's early_stopping=True)
            break
        # with the raw sum (length_penalty 0) a live hypothesis can only lose score: stop once one finished
        # hypothesis beats every live one
        if length_penalty == 0 and finished and max(h.logprob for h in finished) >= max(h.logprob for h in live):
            break
    return max(finished + live, key=final) if finished else max(live, key=final)


def translate(model, vocab: Vocab, sentences: Sequence[str], *, beam_size: int = 1, max_len: int = 32,
              length_penalty: float = 1.0, batch_size: int = 64) -> list[str]:
    """Source sentences -> output sentences: greedy (``beam_size=1``, batched) or beam search (one by one)."""
    bos, eos = vocab.lookup(BOS), vocab.lookup(EOS)
    rows = [vocab.ids(s) + [eos] for s in sentences]
    if beam_size == 1:
        ids = [out for i in range(0, len(rows), batch_size)
               for out in greedy_decode(model, _pad(rows[i:i + batch_size]), bos, eos, max_len)]
    else:
        ids = [beam_search(model, torch.tensor([r]), bos, eos, beam_size, max_len, length_penalty).tokens
               for r in rows]
    return [" ".join(vocab.decode(x)) for x in ids]


@torch.no_grad()
def sequence_logprobs(model, vocab: Vocab, sources: Sequence[str], outputs: Sequence[str]) -> list[float]:
    """log p(output + <eos> | source) of each pair under the model: the score both decoders try to maximise."""
    model.eval()
    logits, labels = seq2seq_forward(model, encode_pairs(vocab, list(zip(sources, outputs))).tensors)
    token = -F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=Vocab.pad_id, reduction="none")
    return token.sum(1).tolist()                                # padding positions contribute 0


# ----------------------------------------------------------------------------- BLEU
_13A = [(re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),     # punctuation and symbols apart
        (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),                  # . and , apart unless after a digit
        (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),                  # ... or before a digit
        (re.compile(r"([0-9])(-)"), r"\1 \2 ")]                       # a dash after a digit


def tokenize_13a(line: str) -> list[str]:
    """mteval-v13a's tokenisation (WMT's standard, sacrebleu's default)."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    for entity, ch in (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")):
        line = line.replace(entity, ch)
    line = f" {line} "
    for pattern, repl in _13A:
        line = pattern.sub(repl, line)
    return line.split()


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


@dataclass
class BLEU:
    score: float                 # 0..100
    precisions: list[float]      # n = 1..4, in percent
    brevity_penalty: float
    hyp_len: int
    ref_len: int

    def __str__(self) -> str:
        p = "/".join(f"{x:.1f}" for x in self.precisions)
        return (f"BLEU = {self.score:.2f} {p} (BP = {self.brevity_penalty:.3f} ratio = "
                f"{self.hyp_len / max(1, self.ref_len):.3f} hyp_len = {self.hyp_len} ref_len = {self.ref_len})")


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str | Sequence[str]], max_n: int = 4) -> BLEU:
    """Corpus BLEU of the hypotheses against one reference (a string) or several (a list) per sentence."""
    whole_number("max_n", max_n)
    if isinstance(hypotheses, str) or len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"need one reference entry per hypothesis (and at least one); got {len(hypotheses)} "
                         f"hypotheses and {len(references)} references")
    correct, total, hyp_len, ref_len = [0] * max_n, [0] * max_n, 0, 0
    for hyp, refs in zip(hypotheses, references):
        refs = [refs] if isinstance(refs, str) else list(refs)
        h = tokenize_13a(hyp.rstrip())
        rs = [tokenize_13a(r.rstrip()) for r in refs]
        hyp_len += len(h)
        # the reference length closest to the hypothesis length (the shorter one on a tie)
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in rs)[1]
        for n in range(1, max_n + 1):
            hn = _ngrams(h, n)
            best = Counter()
            for r in rs:                                   # an n-gram may count as often as in any one reference
                best |= _ngrams(r, n)
            correct[n - 1] += sum(min(c, best[g]) for g, c in hn.items())      # clipped matches
            total[n - 1] += sum(hn.values())
    bp = 1.0 if hyp_len >= ref_len else (math.exp(1 - ref_len / hyp_len) if hyp_len else 0.0)
    precisions = [0.0] * max_n
    if not any(correct):
        return BLEU(0.0, precisions, bp, hyp_len, ref_len)
    smooth = 1.0
    for n in range(max_n):
        if total[n] == 0:
            break
        if correct[n] == 0:                                # sacrebleu's "exp" smoothing
            smooth *= 2
            precisions[n] = 100.0 / (smooth * total[n])
        else:
            precisions[n] = 100.0 * correct[n] / total[n]
    logs = [math.log(p) if p > 0 else -9999999999 for p in precisions]
    return BLEU(bp * math.exp(sum(logs) / max_n), precisions, bp, hyp_len, ref_len)


# ----------------------------------------------------------------------------- a classical baseline
class WordByWord:
    """The dictionary baseline: each source word becomes the target word it co-occurs with most (Dice
    coefficient over the training pairs), in the source order; words with no clear partner are dropped."""

    def __init__(self, min_dice: float = 0.3):
        self.min_dice = number("min_dice", min_dice, minimum=0, maximum=1)
        self.table: dict[str, str] = {}

    def fit(self, pairs: Sequence[tuple[str, str]]) -> "WordByWord":
        cs, ct, both = Counter(), Counter(), defaultdict(Counter)
        for s, t in pairs:
            sw, tw = set(tokenize(s)), set(tokenize(t))
            cs.update(sw)
            ct.update(tw)
            for a in sw:
                both[a].update(tw)
        for a in cs:
            dice = {b: 2 * c / (cs[a] + ct[b]) for b, c in both[a].items()}
            b = max(dice, key=lambda x: (dice[x], x))
            if dice[b] >= self.min_dice:
                self.table[a] = b
        return self

    def translate(self, sentence: str) -> str:
        return " ".join(self.table[w] for w in tokenize(sentence) if w in self.table)


# ----------------------------------------------------------------------------- encoder-only vs decoder-only
class PrefixLM(nn.Module):
    """One Transformer stack reading ``source <sep> target`` and predicting each next token.

    ``causal=True``: position t sees 0..t (a decoder-only model, GPT-style). ``causal=False``: every position
    sees every other (an encoder-only model, BERT-style). Same weights, same data: only the mask differs.
    """

    def __init__(self, cfg: TransformerConfig, causal: bool):
        super().__init__()
        self.causal = bool(causal)
        self.encoder = BertEncoder(cfg)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.encoder.emb.tok.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(ids, attention_mask=(ids != Vocab.pad_id).long(), causal=self.causal)
        return self.lm_head(hidden)                                              # (B, T, V)


def encode_prefix_lm(vocab: Vocab, pairs: Sequence[tuple[str, str]]) -> TensorDataset:
    """(ids, labels): ids = source <sep> target <eos>; labels = the next token at each target position
    (the source positions and the last one are padding, so only the target is learned)."""
    sep, eos = vocab.lookup(SEP), vocab.lookup(EOS)
    ids, labels = [], []
    for s, t in pairs:
        src, tgt = vocab.ids(s), vocab.ids(t)
        seq = src + [sep] + tgt + [eos]
        ids.append(seq)
        labels.append([Vocab.pad_id] * len(src) + tgt + [eos] + [Vocab.pad_id])    # at <sep>: the first target word
    return TensorDataset(_pad(ids), _pad(labels))


def prefix_lm_forward(model: PrefixLM, batch):
    ids, labels = batch
    return model(ids), labels


@torch.no_grad()
def prefix_lm_generate(model: PrefixLM, vocab: Vocab, sentences: Sequence[str], max_len: int = 32) -> list[str]:
    """Greedy left-to-right generation after ``source <sep>``: each new token is appended and fed back."""
    model.eval()
    sep, eos = vocab.lookup(SEP), vocab.lookup(EOS)
    out = []
    for s in sentences:
        ids = vocab.ids(s) + [sep]
        start = len(ids)
        for _ in range(max_len):
            nxt = int(model(torch.tensor([ids]))[0, -1].argmax())
            if nxt == eos:
                break
            ids.append(nxt)
        out.append(" ".join(vocab.decode(ids[start:])))
    return out


@torch.no_grad()
def next_token_losses(model: PrefixLM, data: TensorDataset, max_sequences: int = 100) -> dict[str, float]:
    """The mean next-token loss over the target tokens of the first ``max_sequences`` sequences, twice:
    with the whole sequence in the input (teacher forcing, as in training) and with the input cut after the
    position being predicted (what the model has while generating).

    For a causal model the two are equal: it never looks ahead. A bidirectional one may read token t+1 in
    the first case; the second shows what it can do without it.
    """
    whole_number("max_sequences", max_sequences)
    ids, labels = (t[:max_sequences] for t in data.tensors)
    model.eval()
    whole = float(sequence_loss(model(ids), labels))                    # token-weighted mean, padding skipped
    cut = []
    for seq, lab in zip(ids, labels):
        for t in (lab != Vocab.pad_id).nonzero().flatten().tolist():
            cut.append(float(F.cross_entropy(model(seq[None, :t + 1])[0, -1], lab[t])))   # tokens 0..t only
    return {"whole sequence in view": whole, "only the past in view": sum(cut) / len(cut)}


@torch.no_grad()
def future_influence(hidden_states: Callable[[torch.Tensor], torch.Tensor], ids: torch.Tensor, position: int,
                     replacement: int) -> torch.Tensor:
    """How much each position's output moves when the token at ``position`` is replaced: (T,) max |change|.

    ``hidden_states(ids)`` maps (1, T) ids to (1, T, d) states. For a model that may generate left to right,
    every entry before ``position`` must be 0: an earlier position must not depend on a later token.
    """
    if ids.dim() != 2 or ids.shape[0] != 1:
        raise ValueError(f"ids must have shape (1, T); got {tuple(ids.shape)}")
    whole_number("position", position, minimum=0, maximum=ids.shape[1] - 1)
    changed = ids.clone()
    changed[0, position] = replacement
    return (hidden_states(changed) - hidden_states(ids))[0].abs().amax(-1)
