"""Lab 3b: pretrain a GPT of the size you choose on the generated stories, and exercises on its loss.

:func:`stories` builds the corpus, the word tokenizer and the causal-LM blocks;
:class:`GPTLab` pretrains one GPT per call (live loss curve, a sample every few
steps) and :func:`panel` puts its width, depth, learning rate and step budget on
sliders. :func:`exercises` asks what the loss of a model that has learned
nothing, or only the word frequencies, would be; every expected value is computed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..data.corpus import follows_templates, make_corpus
from ..data.pretraining import causal_lm_blocks, token_stream
from ..data.tokenizer import get_tokenizer
from ..exercises import Exercise
from ..finetune import count_parameters
from ..nn.transformer import GPT, TransformerConfig
from ..objectives import (SampleEvery, clm_forward, clm_loss, context_verdict, sample_stats,
                          unigram_entropy)
from ..plots import LiveLossPlot
from ..train import evaluate, fit, warmup_cosine
from ..widgets import Int, LogFloat, Panel

__all__ = ["BLOCK", "N_HEADS", "CONTEXT", "PROMPT", "Stories", "stories", "gpt", "GPTLab", "heads_divide_width",
           "panel", "exercises"]

BLOCK = 32        # tokens per training block
N_HEADS = 4       # attention heads of every GPT in the lab
CONTEXT = 64      # position embeddings (the longest sequence a GPT can read)
PROMPT = "once there was"


@dataclass
class Stories:
    """The generated stories as a word-level token stream, cut into causal-LM blocks."""
    tokenizer: object
    stream: torch.Tensor
    val_stream: torch.Tensor
    train_blocks: object
    val_blocks: object

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def __str__(self) -> str:
        return (f"vocabulary V = {self.vocab_size}; {len(self.stream):,} training tokens in "
                f"{len(self.train_blocks)} blocks of {BLOCK}")


def stories(n_docs: int, seed: int = 0) -> Stories:
    """``n_docs`` generated training stories (and 100 validation ones), tokenized by words."""
    corpus = make_corpus(n_docs, 100, seed=seed)
    tok = get_tokenizer("word", corpus.texts())
    stream, val_stream = token_stream(tok, corpus.texts()), token_stream(tok, corpus.texts("val"))
    return Stories(tok, stream, val_stream, causal_lm_blocks(stream, BLOCK), causal_lm_blocks(val_stream, BLOCK))


def gpt(vocab_size: int, d_model: int, n_layers: int) -> GPT:
    """The lab's GPT: ``N_HEADS`` heads, ``CONTEXT`` positions, the LM head tied to the token embeddings."""
    return GPT(TransformerConfig(vocab_size=vocab_size, max_len=CONTEXT, d_model=d_model, n_heads=N_HEADS,
                                 n_layers=n_layers))


class GPTLab:
    """Pretrains a fresh GPT per :meth:`pretrain` call on ``data``; prints samples as it learns."""

    def __init__(self, data: Stories, *, device="cpu", seed: int = 0, sample_every: int = 100):
        self.data, self.device, self.seed, self.sample_every = data, device, seed, sample_every
        self.h1 = unigram_entropy(data.stream)
        self.prompt = torch.tensor([data.tokenizer.encode(PROMPT)], device=device)

    def sample(self, model) -> str:
        """16 tokens after the prompt (top-5 sampling, seeded: the same model writes the same text)."""
        g = torch.Generator(device=self.device).manual_seed(self.seed)
        return self.data.tokenizer.decode(model.generate(self.prompt, 16, top_k=5, generator=g)[0])

    def pretrain(self, d_model: int, n_layers: int, lr: float, steps: int) -> dict:
        """Build a GPT of this size, train it with causal LM for ``steps`` steps; return what it reached."""
        torch.manual_seed(self.seed)
        model = gpt(self.data.vocab_size, d_model, n_layers).to(self.device)
        n = count_parameters(model)
        print(f"GPT: d_model={d_model}, n_layers={n_layers}, {n:,} parameters; lr={lr:g}, {steps} steps")
        hist = fit(model, self.data.train_blocks, steps=steps, batch_size=32, lr=lr,
                   forward=clm_forward, loss_fn=clm_loss, scheduler=warmup_cosine(max(1, steps // 10), steps),
                   clip_grad_norm=1.0, seed=self.seed, progress=False, name="gpt",
                   callbacks=[LiveLossPlot(f"GPT d={d_model}, L={n_layers}, lr={lr:g}", every=10),
                              SampleEvery(self.sample, every=self.sample_every)])
        val = evaluate(model, self.data.val_blocks, forward=clm_forward, loss_fn=clm_loss)["loss"]
        print(f"validation loss {val:.3f} nats/token | unigram entropy H1 {self.h1:.3f} | "
              f"uniform ln V {math.log(self.data.vocab_size):.3f}")
        print(f"verdict: validation loss {context_verdict(val, self.h1)}")
        model.eval()
        stats = sample_stats([self.sample(model)], follows_templates)
        model.train()
        print(f"its last sample: {stats['sentences']} complete sentences, "
              + (f"{stats['follow the templates']:.0%} of them follow the corpus's templates"
                 if stats["sentences"] else "so none to check against the corpus's templates"))
        return {"val_loss": val, "params": n, "first_loss": hist.steps[0]["loss"], "model": model, "history": hist,
                "sample": stats}


def heads_divide_width(values: dict) -> str | None:
    """The panel's check across parameters: the width is split evenly over the heads."""
    if values["d_model"] % N_HEADS:
        return f"d_model must be a multiple of n_heads = {N_HEADS}; got {values['d_model']}"
    return None


def panel(lab: GPTLab, width: int, depth: int, steps: int) -> Panel:
    """Width, depth, learning rate and steps on sliders over :meth:`GPTLab.pretrain` (defaults as given)."""
    return Panel(lab.pretrain, title="Lab 3b · pretrain your GPT", validate=heads_divide_width,
                 d_model=Int(16, 256, width, step=16, label="width (d_model)"),
                 n_layers=Int(1, 6, depth, label="depth (n_layers)"),
                 lr=LogFloat(1e-4, 3e-2, 3e-3, label="learning rate"),
                 steps=Int(10, 5000, steps, step=10, label="steps"))


def exercises(data: Stories, d_model: int = 32, n_layers: int = 2) -> dict[str, Exercise]:
    """The lab's three questions; the expected values are counted or computed on ``data``."""
    V = data.vocab_size
    return {
        "3b.1": Exercise(
            "3b.1", f"How many parameters does GPT(TransformerConfig(vocab_size=V, max_len={CONTEXT}, "
            f"d_model={d_model}, n_heads={N_HEADS}, n_layers={n_layers})) have? (The LM head shares the "
            "token-embedding matrix.)",
            expected=lambda: count_parameters(gpt(V, d_model, n_layers)),
            hint="add up, layer by layer: the two embedding tables, then in each block two LayerNorms (a scale and "
                 "a shift each), the fused Q/K/V projection, the attention output projection and the two MLP "
                 "layers (d → 4d → d), every linear layer with its bias; then the final LayerNorm. What does a tied "
                 "LM head add?",
            explain="Per block that is 12d² + 13d: the d² terms dominate as models grow."),
        "3b.2": Exercise(
            "3b.2", "What cross-entropy (in nats per token) does a model get that gives every one of the V tokens "
            "the same probability?",
            expected=lambda: math.log(V), rel=1e-4,
            hint="the loss of one token is −ln of the probability given to the right token; what is that "
                 "probability here? (nats: the natural logarithm)",
            explain="An untrained GPT starts close to ln V, as the first step of every loss curve shows."),
        "3b.3": Exercise(
            "3b.3", "What is the unigram entropy H1 = -Σ p(w) ln p(w) of the training token stream `stream`, in nats?",
            expected=lambda: unigram_entropy(data.stream), rel=1e-6,
            hint="p(w) is how often token w occurs in `stream`, as a share of all its tokens",
            explain="A model whose validation loss is below H1 must be using the context."),
    }
