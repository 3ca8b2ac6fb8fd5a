"""Scaling laws measured on small models, and the arithmetic of compute at real sizes (chapter 8.1, Lab 8).

Kaplan et al. ("Scaling Laws for Neural Language Models", arXiv:2001.08361, 2020) found that a language
model's test loss falls as a power law in its non-embedding parameters N, in its training tokens D and in its
training compute C ≈ 6ND, until something else limits it. Hoffmann et al. ("Training Compute-Optimal Large
Language Models", NeurIPS 2022, arXiv:2203.15556, "Chinchilla") fitted L(N, D) = E + A/N^α + B/D^β and found
that, for a fixed compute budget, parameters and tokens should grow together: about 20 tokens per parameter.

What the chapter and the lab share:

* **the ladder**: labkit's GPT (chapter 3.3) at several widths and depths (:class:`ModelSize`), trained with
  causal LM on the generated stories (:mod:`labkit.data.corpus`), every training block seen at most once
  (:func:`scaling_data`, :func:`train_run`); :class:`Sweep` trains a grid of (size, tokens) runs, each once;
* **power-law fits**: :func:`fit_power_law` (L = A·x^-α, or L = E + A·x^-α with an irreducible loss E),
  least squares on log L, with R² on L; :func:`compute_frontier`, the runs no cheaper run beats;
* **the floor**: :func:`story_entropy`, the entropy rate of the corpus's generator, below which no model's
  loss can go (with unlimited context);
* **Chinchilla's arithmetic**: :func:`chinchilla_tokens`, :func:`compute_optimal`; :func:`data_limited`
  measures which runs more data would have helped;
* **real sizes**: :func:`training_cost` for Llama 2 7B and 70B (:func:`llama2_config`): training FLOPs for a
  token budget, GPU-hours at a stated MFU and peak, memory for weights, gradients and AdamW states in bf16
  mixed precision; it reuses :mod:`labkit.sizing` (parameters from a config), :mod:`labkit.scale` (6ND,
  training memory) and prints its assumptions (:func:`assumptions`).

Conventions: N is Kaplan's *non-embedding* count (the token and position tables are left out; the LM head
shares the token table); Chinchilla's 20 tokens per parameter counts *all* parameters (Pearce & Song,
"Reconciling Kaplan and Chinchilla Scaling Laws", arXiv:2406.12907, trace much of the two papers' disagreement
to this difference). Compute is C = 6·N·D with the non-embedding N, Kaplan's convention.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from . import scale, sizing
from .check import number, one_of, positive, whole_number
from .nn.transformer import GPT, TransformerConfig

__all__ = ["BLOCK", "BATCH", "HEAD_DIM", "TOKENS_PER_PARAMETER", "ModelSize", "non_embedding_params",
           "ScalingData", "scaling_data", "Run", "train_run", "Sweep", "PowerLaw", "fit_power_law", "r_squared",
           "compute_frontier", "prediction", "prediction_verdict", "HeldOutCheck", "held_out_check", "story_entropy", "floor_verdict",
           "chinchilla_tokens", "compute_optimal", "data_limited", "data_limited_verdict", "frontier_verdict",
           "Accelerator", "A100", "H100", "LLAMA2", "LLAMA2_PRETRAINING", "llama2_config", "training_cost",
           "cost_table", "implied_mfu", "assumptions", "mfu_verdict", "cpu_years_verdict", "matmul_flops_per_second", "law_figure", "tokens_figure"]

BLOCK = 32           # tokens per training block, and the context of every model of the ladder
BATCH = 32           # blocks per step: 1,024 tokens
HEAD_DIM = 8         # width of one attention head: a model of width d has d / 8 heads
TOKENS_PER_PARAMETER = 20   # Hoffmann et al. 2022: compute-optimal training uses about 20 tokens per parameter


# ----------------------------------------------------------------------------- the ladder of sizes
@dataclass(frozen=True, order=True)
class ModelSize:
    """One rung of the ladder: a GPT of width ``d_model`` and depth ``n_layers`` (heads of ``HEAD_DIM``)."""
    d_model: int
    n_layers: int

    def __post_init__(self):
        whole_number("d_model", self.d_model, minimum=HEAD_DIM)
        whole_number("n_layers", self.n_layers)
        if self.d_model % HEAD_DIM:
            raise ValueError(f"d_model must be a multiple of the head width {HEAD_DIM}; got {self.d_model}")

    @property
    def n_heads(self) -> int:
        return self.d_model // HEAD_DIM

    @property
    def name(self) -> str:
        return f"d{self.d_model}·L{self.n_layers}"

    def config(self, vocab_size: int) -> TransformerConfig:
        return TransformerConfig(vocab_size=vocab_size, max_len=BLOCK, d_model=self.d_model, n_heads=self.n_heads,
                                 n_layers=self.n_layers)

    def __str__(self) -> str:
        return self.name


def non_embedding_params(cfg: TransformerConfig) -> int:
    """Kaplan's N for labkit's GPT: every parameter except the token and position tables.

    With the LM head tied to the token table (the default), the head is that table and is left out too; an
    untied head multiplies every token's vector, and is counted.
    """
    embeddings = cfg.vocab_size * cfg.d_model + cfg.max_len * cfg.d_model * (cfg.positional == "learned")
    return scale.param_count(cfg, "gpt") - embeddings


# ----------------------------------------------------------------------------- data: every block once
@dataclass
class ScalingData:
    """The generated stories as causal-LM blocks of ``BLOCK`` tokens: enough training blocks that a run of
    up to ``max_tokens`` tokens sees each block at most once, and a fixed validation set."""
    tokenizer: Any
    train_blocks: Any
    val_blocks: Any
    n_docs: int
    seed: int

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def train_tokens(self) -> int:
        return len(self.train_blocks) * BLOCK

    def __str__(self) -> str:
        return (f"{self.n_docs:,} generated stories: {self.train_tokens:,} training tokens in {len(self.train_blocks):,} "
                f"blocks of {BLOCK}; {len(self.val_blocks) * BLOCK:,} validation tokens; vocabulary V = "
                f"{self.vocab_size}")


def scaling_data(max_tokens: int, *, n_val_docs: int = 300, seed: int = 0) -> ScalingData:
    """Stories for runs of up to ``max_tokens`` training tokens, none repeated (plus ``n_val_docs`` for validation)."""
    from .data.corpus import make_corpus
    from .data.pretraining import causal_lm_blocks, token_stream
    from .data.tokenizer import get_tokenizer
    whole_number("max_tokens", max_tokens, minimum=BLOCK * BATCH)
    whole_number("n_val_docs", n_val_docs)
    per_doc = story_entropy()["tokens per story"]
    n_docs = math.ceil(1.02 * max_tokens / per_doc) + 10
    corpus = make_corpus(n_docs, n_val_docs, seed=seed)
    tok = get_tokenizer("word", corpus.texts())
    train = causal_lm_blocks(token_stream(tok, corpus.texts()), BLOCK)
    val = causal_lm_blocks(token_stream(tok, corpus.texts("val")), BLOCK)
    return ScalingData(tok, train, val, n_docs, seed)


# ----------------------------------------------------------------------------- one run, and a grid of them
@dataclass
class Run:
    """What one (size, tokens) run reached, and what it cost."""
    size: ModelSize
    tokens: int
    steps: int
    params: int
    non_embedding: int
    val_loss: float
    train_loss: float
    seconds: float
    cpu_seconds: float

    @property
    def compute(self) -> float:
        """C = 6 N D (non-embedding N), in FLOPs."""
        return scale.training_flops(self.non_embedding, self.tokens)

    def row(self) -> dict:
        return {"size": self.size.name, "d_model": self.size.d_model, "n_layers": self.size.n_layers,
                "N (non-embedding)": self.non_embedding, "parameters": self.params, "tokens D": self.tokens,
                "steps": self.steps, "compute C = 6ND": self.compute, "D / N_total": self.tokens / self.params,
                "val loss": self.val_loss, "train loss (last 10 steps)": self.train_loss, "seconds": self.seconds,
                "CPU seconds": self.cpu_seconds}


def train_run(data: ScalingData, size: ModelSize, tokens: int, *, lr: float = 3e-3, batch_size: int = BATCH,
              seed: int = 0, device="cpu", callbacks: Iterable = ()) -> Run:
    """Train a fresh GPT of ``size`` on ``tokens`` training tokens (whole steps of ``batch_size`` blocks), AdamW
    with 10% warmup and cosine decay, clipping at 1; return its validation loss and cost."""
    from .nn.parameters import count_parameters
    from .objectives import clm_forward, clm_loss
    from .train import evaluate, fit, warmup_cosine
    whole_number("batch_size", batch_size)
    positive("lr", lr)
    steps = whole_number("tokens // (batch_size x BLOCK) (the steps of the run)", tokens // (batch_size * BLOCK))
    if steps * batch_size > len(data.train_blocks):
        raise ValueError(f"tokens={tokens:,} needs {steps * batch_size:,} blocks, but the data holds "
                         f"{len(data.train_blocks):,}: build scaling_data(max_tokens >= {tokens:,}) so no block repeats")
    torch.manual_seed(seed)
    model = GPT(size.config(data.vocab_size)).to(device)
    wall, cpu = time.perf_counter(), time.process_time()
    hist = fit(model, data.train_blocks, steps=steps, batch_size=batch_size, lr=lr, forward=clm_forward,
               loss_fn=clm_loss, scheduler=warmup_cosine(max(1, steps // 10), steps), clip_grad_norm=1.0, seed=seed,
               progress=False, name=size.name, callbacks=list(callbacks))
    val = evaluate(model, data.val_blocks, forward=clm_forward, loss_fn=clm_loss)["loss"]
    last = [s["loss"] for s in hist.steps[-10:]]
    return Run(size, steps * batch_size * BLOCK, steps, count_parameters(model), non_embedding_params(model.cfg),
               float(val), float(np.mean(last)), time.perf_counter() - wall, time.process_time() - cpu)


class Sweep:
    """A grid of (size, tokens) runs on one :class:`ScalingData`, each trained once.

    ``sweep.run(sizes, budgets)`` trains every pair it has not trained yet (so a second call with one more
    size trains only that size) and returns the table of the requested runs; ``sweep.runs`` keeps them all.
    With a :class:`labkit.plots.LiveLossPlot` as ``plot``, the training loss of every run is drawn as it trains.
    """

    def __init__(self, data: ScalingData, *, lr: float = 3e-3, batch_size: int = BATCH, seed: int = 0,
                 device="cpu"):
        self.data, self.lr, self.batch_size, self.seed, self.device = data, positive("lr", lr), batch_size, seed, device
        whole_number("batch_size", batch_size)
        self.runs: dict[tuple[ModelSize, int], Run] = {}

    def key(self, size: ModelSize, tokens: int) -> tuple[ModelSize, int]:
        return size, (tokens // (self.batch_size * BLOCK)) * self.batch_size * BLOCK

    def run(self, sizes: Sequence[ModelSize], budgets: Sequence[int], *, plot=None, quiet: bool = False):
        """Train what is missing of ``sizes`` x ``budgets`` (tokens); return the table of those runs (a DataFrame)."""
        import pandas as pd
        sizes, budgets = [_as_size(s) for s in sizes], sorted(int(b) for b in budgets)
        if not sizes or not budgets:
            raise ValueError("sizes and budgets must each hold at least one entry")
        rows = []
        for tokens in budgets:
            for size in sizes:
                key = self.key(size, tokens)
                if key not in self.runs:
                    cbs = [plot.track(f"{size.name} · {_tokens(key[1])}")] if plot is not None else []
                    r = train_run(self.data, size, tokens, lr=self.lr, batch_size=self.batch_size, seed=self.seed,
                                  device=self.device, callbacks=cbs)
                    self.runs[key] = r
                    if not quiet:
                        print(f"{size.name:>8}: N = {r.non_embedding:>7,}, D = {_tokens(r.tokens):>6} tokens "
                              f"({r.steps:,} steps): val loss {r.val_loss:.4f}  [{r.seconds:.1f} s, "
                              f"{r.cpu_seconds:.1f} s CPU]")
                rows.append(self.runs[key].row())
        return pd.DataFrame(rows)

    def table(self):
        import pandas as pd
        return pd.DataFrame([r.row() for r in self.runs.values()])


def _as_size(s) -> ModelSize:
    if isinstance(s, ModelSize):
        return s
    if isinstance(s, (tuple, list)) and len(s) == 2:
        return ModelSize(*s)
    raise ValueError(f"a size is a ModelSize or a (d_model, n_layers) pair; got {s!r}")


def _tokens(n: float) -> str:
    """1,024,000 -> '1.02M', 256,000 -> '256k'."""
    if n >= 1e9:
        return f"{n / 1e9:.3g}B"
    if n >= 1e6:
        return f"{n / 1e6:.3g}M"
    return f"{n / 1e3:.3g}k" if n >= 1e3 else str(int(n))


# ----------------------------------------------------------------------------- power laws
def r_squared(y, y_hat) -> float:
    """1 - SS_res / SS_tot: the share of the variance of ``y`` that ``y_hat`` explains."""
    y, y_hat = np.asarray(y, float), np.asarray(y_hat, float)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - y_hat) ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")


@dataclass(frozen=True)
class PowerLaw:
    """L(x) = E + A · x^(-alpha); E = 0 for a pure power law. ``r2`` is R² on L over the fitted points."""
    A: float
    alpha: float
    E: float = 0.0
    variable: str = "N"
    r2: float = float("nan")
    n_points: int = 0

    def __call__(self, x):
        v = self.E + self.A * np.asarray(x, float) ** -self.alpha
        return float(v) if np.ndim(v) == 0 else v

    def __str__(self) -> str:
        e = f"{self.E:.3f} + " if self.E else ""
        return f"L({self.variable}) = {e}{self.A:.4g} · {self.variable}^-{self.alpha:.3f}"


def fit_power_law(x, y, *, irreducible: bool = True, variable: str = "N") -> PowerLaw:
    """Fit L = A·x^-α (``irreducible=False``: a straight line on log-log axes) or L = E + A·x^-α.

    Least squares on log L (every point weighs by its relative error, as in Hoffmann et al.'s fits), E kept in
    [0, min L). The line is fitted in closed form; with E, ``scipy.optimize.least_squares`` starts from the
    best line through log(L - E0) over a few E0 and keeps the best fit.
    """
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length; got {len(x)} and {len(y)}")
    need = 3 if irreducible else 2
    if len(x) < need:
        raise ValueError(f"a power law{' with E' if irreducible else ''} needs at least {need} points; got {len(x)}")
    if (x <= 0).any() or (y <= 0).any() or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite and > 0 (they are put on log axes)")
    if len(set(x.tolist())) < need:
        raise ValueError(f"x must hold at least {need} different values; got {sorted(set(x.tolist()))}")
    lx, ly = np.log(x), np.log(y)

    def line(E0: float) -> tuple[float, float]:
        slope, intercept = np.polyfit(lx, np.log(y - E0), 1)
        return float(np.exp(intercept)), float(-slope)

    if not irreducible:
        A, alpha = line(0.0)
        return PowerLaw(A, alpha, 0.0, variable, r_squared(y, A * x ** -alpha), len(x))
    from scipy.optimize import least_squares
    top = float(y.min()) * (1 - 1e-9)

    def residuals(p):
        E, log_a, alpha = p
        return np.log(E + np.exp(log_a - alpha * lx)) - ly

    best = None
    for frac in (0.0, 0.5, 0.8, 0.95):
        A0, alpha0 = line(frac * y.min())
        p0 = [frac * y.min(), math.log(A0), float(np.clip(alpha0, 1e-3, 5.0))]
        res = least_squares(residuals, p0, bounds=([0.0, -100.0, 0.0], [top, 100.0, 5.0]))
        if best is None or res.cost < best.cost:
            best = res
    E, log_a, alpha = (float(v) for v in best.x)
    law = PowerLaw(math.exp(log_a), alpha, E, variable, 0.0, len(x))
    return PowerLaw(law.A, alpha, E, variable, r_squared(y, law(x)), len(x))


def compute_frontier(table, loss: str = "val loss", compute: str = "compute C = 6ND"):
    """The runs that no run of less (or equal) compute beats: the compute-efficient frontier, by compute."""
    t = table.sort_values([compute, loss]).reset_index(drop=True)
    keep, best = [], math.inf
    for i, v in enumerate(t[loss]):
        if v < best:
            keep.append(i)
            best = v
    return t.loc[keep].reset_index(drop=True)


def prediction(law: PowerLaw, x: float, measured: float) -> dict:
    """What ``law`` predicts at ``x`` against what was measured there: both, and the relative error."""
    predicted = law(x)
    return {"x": float(x), "predicted": predicted, "measured": float(measured),
            "relative error": predicted / float(measured) - 1}


def prediction_verdict(name: str, pred: dict, tolerance: float) -> str:
    """Whether a prediction fell within ±``tolerance`` (relative) of the measurement, in words."""
    number("tolerance", tolerance, minimum=0, open_low=True)
    err = pred["relative error"]
    head = (f"{name}: predicted {pred['predicted']:.4f}, measured {pred['measured']:.4f}, relative error "
            f"{err:+.1%}")
    if abs(err) <= tolerance:
        return f"{head}: within the stated ±{tolerance:.0%}, so the law fitted on the smaller sizes predicted it"
    side = "too optimistic (below the measured loss)" if err < 0 else "too pessimistic (above the measured loss)"
    return f"{head}: outside the stated ±{tolerance:.0%}; the extrapolation is {side}"


@dataclass
class HeldOutCheck:
    """A law fitted without the largest size, its prediction for that size, and the check (and which runs were
    data-limited, with two budgets or more)."""
    table: Any                      # the runs read (a DataFrame of Run.row()s)
    sizes: list[ModelSize]
    budgets: list[int]
    held_out: ModelSize
    law: PowerLaw                   # E + A·N^-α on the smaller sizes at the largest budget
    line: PowerLaw                  # A·N^-α on the same points
    prediction: dict                # the held-out size at the largest budget: predicted, measured, error
    tolerance: float
    limits: Any = None              # labkit.scaling.data_limited, when there are >= 2 budgets
    threshold: float = 0.02
    lines: list[str] = field(default_factory=list)

    @property
    def largest(self):
        """The runs at the largest budget, smallest size first."""
        t = self.table[self.table["tokens D"] == self.table["tokens D"].max()]
        return t.sort_values("N (non-embedding)").reset_index(drop=True)

    @property
    def held_out_row(self):
        t = self.largest
        return t[t["size"] == self.held_out.name].iloc[0]

    def figure(self, floor: float | None = None, title: str = "The law fitted without the largest size, checked on it"):
        t = self.largest
        fit_rows = t[t["size"] != self.held_out.name]
        return law_figure({f"fitted sizes at D = {int(t['tokens D'].iloc[0]):,}": (fit_rows["N (non-embedding)"],
                                                                                  fit_rows["val loss"])},
                          self.law, held_out=(self.prediction["x"], self.prediction["measured"],
                                              self.prediction["predicted"]), floor=floor,
                          title=title)


def held_out_check(table, sizes: Sequence[ModelSize], tolerance: float, threshold: float = 0.02) -> HeldOutCheck:
    """Read a table of runs (:meth:`Sweep.run`): the law fitted on all sizes but the last at the largest budget, its
    prediction for the last size against the measured loss, and (with two budgets or more) the data-limited runs."""
    number("tolerance", tolerance, minimum=0, open_low=True)
    tokens = sorted(int(d) for d in set(table["tokens D"]))
    held_out = sizes[-1]
    at = table[table["tokens D"] == tokens[-1]]
    small = at[at["size"].isin([s.name for s in sizes[:-1]])].sort_values("N (non-embedding)")
    if held_out.name not in set(at["size"]) or len(small) != len(sizes) - 1:
        raise ValueError(f"the table needs a run of every size at its largest budget ({tokens[-1]:,} tokens)")
    held = at[at["size"] == held_out.name].iloc[0]
    if held["N (non-embedding)"] <= small["N (non-embedding)"].max():
        raise ValueError(f"the last size ({held_out.name}) must be the largest: it is the one held out")
    x, y = small["N (non-embedding)"].to_numpy(), small["val loss"].to_numpy()
    law, line = fit_power_law(x, y), fit_power_law(x, y, irreducible=False)
    n_held, measured = int(held["N (non-embedding)"]), float(held["val loss"])
    pred = prediction(law, n_held, measured)
    lines = [prediction_verdict(f"{held_out.name} with E", pred, tolerance),
             prediction_verdict(f"{held_out.name} without E", prediction(line, n_held, measured), tolerance)]
    limits = None
    if len(tokens) >= 2:
        limits = data_limited(table, threshold)
        lines += data_limited_verdict(limits, threshold)
    return HeldOutCheck(table, list(sizes), tokens, held_out, law, line, pred, tolerance, limits, threshold, lines)


# ----------------------------------------------------------------------------- the floor: the corpus's entropy
class _Recorder(random.Random):
    """A stand-in for the corpus's random generator: it adds up ln(number of options) of every draw and takes
    a fixed option, so one pass through ``make_document`` counts the information in a story."""

    def __init__(self, kind: int):
        super().__init__(0)
        self.nats, self.kind = 0.0, kind

    def choice(self, seq):
        self.nats += math.log(len(seq))
        return seq[0]

    def randrange(self, n, *args):
        self.nats += math.log(n)
        return self.kind

    def random(self):
        return 1.0     # never double a slot (the default corpus)


def story_entropy() -> dict[str, float]:
    """The entropy of one generated story, its length in tokens, and their ratio: the entropy rate, in nats per
    token, that no model can beat (it is the loss of the generator itself, reading a story from its start).

    Every draw of :func:`labkit.data.corpus.make_document` is uniform and each one shows in the text (the hero
    fixes the topic; the words of a sentence fix its template), so the story's entropy is the sum of the ln's of
    the number of options of its draws. The generator is replayed with a recording stand-in for its random
    source: once per topic and per template of the middle sentences (all three drawn alike), which averages
    exactly over both (every middle sentence picks one of 3 templates uniformly). The story's tokens are its
    words plus the ``[SEP]`` that ends it in the token stream.
    """
    from .data import corpus as C
    nats, tokens, kinds = [], [], 3
    for topic in C.TOPICS:
        for kind in range(kinds):
            r = _Recorder(kind)
            doc = C.make_document(r, topic)
            nats.append(r.nats + math.log(len(C.TOPICS)))     # the topic draw that passing topic= skipped
            tokens.append(len(doc.text.split()) + 1)            # + [SEP]
    h, n = float(np.mean(nats)), float(np.mean(tokens))
    return {"nats per story": h, "tokens per story": n, "nats per token": h / n}


def floor_verdict(E: float, floor: float, tol: float = 0.01) -> str:
    """The fitted irreducible loss ``E`` against the entropy rate ``floor`` of the data, in words."""
    head = f"fitted E = {E:.3f} nats/token against the generator's entropy rate {floor:.3f}"
    if E < floor - tol:
        return (f"{head}: E is BELOW the floor, which no model can reach; so E here is a fitting constant, not the "
                f"irreducible loss (too few sizes, or the larger ones still limited by data or steps)")
    if E <= floor + tol:
        return f"{head}: E sits at the floor (within {tol:g}): the law's asymptote is the entropy of the data"
    return (f"{head}: E is {E - floor:.3f} above the floor; part of the gap is what a {BLOCK}-token window cannot "
            f"see (the start of the story), the rest what none of these sizes and budgets learned")


# ----------------------------------------------------------------------------- Chinchilla's arithmetic
def chinchilla_tokens(n_params: float) -> float:
    """Hoffmann et al.'s compute-optimal budget: about 20 training tokens per parameter (all parameters)."""
    return TOKENS_PER_PARAMETER * number("n_params", n_params, minimum=0, open_low=True)


def compute_optimal(compute: float) -> dict[str, float]:
    """The (parameters, tokens) pair of a compute budget C under C = 6ND and D = 20N: N = sqrt(C / 120)."""
    positive("compute", compute)
    n = math.sqrt(compute / (6 * TOKENS_PER_PARAMETER))
    return {"parameters": n, "tokens": TOKENS_PER_PARAMETER * n}


def data_limited(table, threshold: float = 0.02, loss: str = "val loss"):
    """For each size and each budget but its largest: how much the next budget lowered the loss, per doubling of
    the tokens, and whether that exceeds ``threshold`` ("data-limited": more data would still have helped);
    beside it, the run's tokens per parameter against Chinchilla's 20."""
    import pandas as pd
    number("threshold", threshold, minimum=0, open_low=True)
    rows = []
    for size, g in table.groupby("size", sort=False):
        g = g.sort_values("tokens D")
        for (_, a), (_, b) in zip(g.iterrows(), g.iloc[1:].iterrows()):
            doublings = math.log2(b["tokens D"] / a["tokens D"])
            gain = (1 - b[loss] / a[loss]) / doublings
            rows.append({"size": size, "parameters": a["parameters"], "tokens D": a["tokens D"],
                         "next budget": b["tokens D"], "loss": a[loss], "loss at next budget": b[loss],
                         "drop per doubling": gain, "data-limited": bool(gain > threshold),
                         "D / N_total": a["tokens D"] / a["parameters"],
                         "below Chinchilla's 20": bool(a["tokens D"] < chinchilla_tokens(a["parameters"]))})
    return pd.DataFrame(rows)


def data_limited_verdict(limits, threshold: float = 0.02) -> list[str]:
    """One line per run of :func:`data_limited` (measured: data-limited or not; its tokens per parameter beside
    Chinchilla's 20), then the count: how many runs were data-limited, and how many of those at or above 20 tokens
    per parameter still were."""
    lines = []
    for _, r in limits.iterrows():
        measured = (f"more data lowered the loss by {r['drop per doubling']:.1%} per doubling "
                    + ("> " if r["data-limited"] else "<= ") + f"{threshold:.0%}: "
                    + ("data-limited" if r["data-limited"] else "not data-limited"))
        ratio = f"D/N = {r['D / N_total']:.3g} tokens per parameter " + (
            f"(below Chinchilla's {TOKENS_PER_PARAMETER})" if r["below Chinchilla's 20"]
            else f"(at or above Chinchilla's {TOKENS_PER_PARAMETER})")
        lines.append(f"{r['size']:>8} at {_tokens(r['tokens D']):>6} tokens: {measured}; {ratio}")
    n = len(limits)
    if not n:
        return lines
    limited = int(limits["data-limited"].sum())
    above = limits[~limits["below Chinchilla's 20"]]
    still = int(above["data-limited"].sum())
    text = f"{limited} of {n} runs were data-limited (more tokens still lowered the loss by more than {threshold:.0%} " \
           f"per doubling)"
    if len(above):
        text += (f"; of the {len(above)} at or above {TOKENS_PER_PARAMETER} tokens per parameter, {still} still were"
                 + (f": Chinchilla's {TOKENS_PER_PARAMETER} is the best split of a fixed compute between N and D, not "
                    "the point where more data stops helping" if still else
                    f": on these runs, more data stopped helping at {TOKENS_PER_PARAMETER} tokens per parameter"))
    else:
        text += f"; none had {TOKENS_PER_PARAMETER} tokens per parameter or more"
    return lines + [text]


def frontier_verdict(frontier, loss: str = "val loss") -> str:
    """Tokens per parameter of the compute-efficient runs, their median against Chinchilla's 20, in words
    ("around" within a factor of 2)."""
    ratios = (frontier["tokens D"] / frontier["parameters"]).to_numpy()
    lo, hi, mid = float(ratios.min()), float(ratios.max()), float(np.median(ratios))
    k = TOKENS_PER_PARAMETER
    where = "around" if k / 2 <= mid <= 2 * k else "above" if mid > 2 * k else "below"
    return (f"the {len(frontier)} compute-efficient runs used {lo:.3g} to {hi:.3g} tokens per parameter: their median, "
            f"{mid:.3g}, is {where} Chinchilla's {k}" + ("" if where == "around" else " (more than a factor of 2 off)"))


# ----------------------------------------------------------------------------- figures (log axes)
def law_figure(points: dict[str, tuple], law: PowerLaw | None = None, *, held_out: tuple | None = None,
               floor: float | None = None, x_title: str = "non-embedding parameters N", title: str = ""):
    """Loss against ``x`` on log-log axes: one series of (x, loss) points per entry of ``points``, the fitted law
    drawn across them and on to the held-out point (marked apart), and the entropy floor as a dotted line."""
    import plotly.graph_objects as go

    from .plots import PALETTE
    fig = go.Figure()
    xs = [v for x, _ in points.values() for v in x] + ([held_out[0]] if held_out else [])
    for i, (name, (x, y)) in enumerate(points.items()):
        fig.add_trace(go.Scatter(x=list(x), y=list(y), mode="markers+lines", name=name, opacity=0.9,
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=1),
                                 marker=dict(size=8, color=PALETTE[i % len(PALETTE)])))
    if law is not None and xs:
        grid = np.geomspace(min(xs), max(xs), 60)
        fig.add_trace(go.Scatter(x=grid, y=law(grid), mode="lines", name=f"fit: {law} (R² {law.r2:.3f})",
                                 line=dict(color="black", dash="dash")))
    if held_out is not None:
        x, measured, predicted = held_out
        fig.add_trace(go.Scatter(x=[x], y=[measured], mode="markers", name="held out: measured",
                                 marker=dict(size=14, symbol="star", color="#d62728")))
        if predicted is not None:
            fig.add_trace(go.Scatter(x=[x], y=[predicted], mode="markers", name="held out: predicted",
                                     marker=dict(size=12, symbol="x", color="black")))
    if floor is not None:
        fig.add_hline(y=floor, line=dict(color="grey", dash="dot"),
                      annotation_text=f"entropy rate of the stories {floor:.3f}", annotation_position="bottom right")
    fig.update_xaxes(type="log", title=x_title)
    fig.update_yaxes(type="log", title="validation loss (nats / token, log scale)")
    fig.update_layout(title=title, height=460, template="plotly_white", margin=dict(l=60, r=20, t=50, b=40),
                      legend=dict(orientation="h", yanchor="top", y=-0.18, xanchor="left", x=0))
    return fig


def tokens_figure(table, *, floor: float | None = None, title: str = "Loss against training tokens, one line per size"):
    """Validation loss against training tokens D (log-log), one line per size: where a line still falls, more
    data would help (a data-limited run); where it is flat, the size is the limit."""
    points = {size: (g["tokens D"].tolist(), g["val loss"].tolist())
              for size, g in table.sort_values("tokens D").groupby("size", sort=False)}
    fig = law_figure(points, floor=floor, x_title="training tokens D", title=title)
    return fig


# ----------------------------------------------------------------------------- real sizes
@dataclass(frozen=True)
class Accelerator:
    """A GPU by its dense bf16 tensor-core peak (no sparsity) and its memory (decimal GB, as sold)."""
    name: str
    peak_flops: float
    memory_gb: float


A100 = Accelerator("NVIDIA A100 80GB SXM", 312e12, 80)     # NVIDIA A100 datasheet: 312 TFLOP/s bf16 dense
H100 = Accelerator("NVIDIA H100 SXM", 989e12, 80)          # NVIDIA H100 datasheet: 989 TFLOP/s bf16 dense

# Touvron et al., "Llama 2: Open Foundation and Fine-Tuned Chat Models", arXiv:2307.09288 (2023): the published
# configs (Hugging Face meta-llama/Llama-2-7b-hf and -70b-hf), 2.0T pretraining tokens, and Table 2's GPU-hours
# on A100-80GB.
LLAMA2 = {
    "7B": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096),
    "70B": dict(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
                num_key_value_heads=8, vocab_size=32000, max_position_embeddings=4096),
}
LLAMA2_PRETRAINING = {"tokens": 2.0e12, "A100 GPU-hours": {"7B": 184_320, "70B": 1_720_320}}


def llama2_config(size: str):
    """The ``transformers.LlamaConfig`` of Llama 2 ``size`` ("7B" or "70B")."""
    from transformers import LlamaConfig
    one_of("size", size, LLAMA2)
    return LlamaConfig(**LLAMA2[size])


def training_cost(config, tokens: float, *, accelerator: Accelerator = A100, mfu: float = 0.4) -> dict[str, float]:
    """Compute, time and memory to train the model of ``config`` on ``tokens`` tokens.

    FLOPs by 6ND (N: every parameter, by :func:`labkit.sizing.param_count`) and, beside it, labkit.sizing's count
    with attention at the model's context; GPU-hours = FLOPs / (MFU x peak); memory of the model states in bf16
    mixed precision with AdamW (:func:`labkit.scale.training_memory`: bf16 weights and gradients, fp32 master
    weights and two fp32 moments, 16 bytes per parameter), no activations; the fewest GPUs that hold those states
    when they are sharded evenly (ZeRO-3 / FSDP).
    """
    positive("tokens", tokens)
    number("mfu", mfu, minimum=0, maximum=1, open_low=True)
    n = sizing.param_count(config)
    flops = scale.training_flops(n, tokens)
    with_attention = sizing.flops_per_token(config)["training"] * tokens
    seconds = flops / (mfu * accelerator.peak_flops)
    mem = scale.training_memory(n, weight_bytes=2, grad_bytes=2, master_copy=True)
    return {"parameters": n, "tokens": float(tokens), "training FLOPs (6ND)": flops,
            "training FLOPs with attention": with_attention, "GPU-hours": seconds / 3600,
            "GPU-days": seconds / 86400, "weights (bf16) GB": mem["weights"] / 1e9,
            "gradients (bf16) GB": mem["gradients"] / 1e9, "AdamW moments (fp32) GB": mem["optimizer"] / 1e9,
            "master weights (fp32) GB": mem["master_weights"] / 1e9, "model states GB": mem["total"] / 1e9,
            "GPUs to hold the states": math.ceil(mem["total"] / (accelerator.memory_gb * 1e9)),
            "Chinchilla tokens (20 N)": chinchilla_tokens(n)}


def cost_table(configs: dict[str, Any], tokens: float, *, accelerator: Accelerator = A100, mfu: float = 0.4):
    """:func:`training_cost` for each named config, one column each (a DataFrame)."""
    import pandas as pd
    return pd.DataFrame({name: training_cost(cfg, tokens, accelerator=accelerator, mfu=mfu)
                         for name, cfg in configs.items()})


def implied_mfu(config, tokens: float, gpu_hours: float, accelerator: Accelerator = A100) -> float:
    """The model-FLOPs utilisation that reported GPU-hours imply: 6ND / (GPU-hours x 3600 x peak)."""
    positive("gpu_hours", gpu_hours)
    return scale.training_flops(sizing.param_count(config), tokens) / (gpu_hours * 3600 * accelerator.peak_flops)


def assumptions(accelerator: Accelerator = A100, mfu: float = 0.4) -> list[str]:
    """The assumptions behind :func:`training_cost`, as lines to print beside its numbers."""
    return [f"compute: C = 6 N D (2ND forward, 4ND backward); N counts every parameter (labkit.sizing); the column "
            f"'with attention' adds the attention scores at the model's context (labkit.sizing.flops_per_token)",
            f"hardware: {accelerator.name}, {accelerator.peak_flops / 1e12:.0f} TFLOP/s dense bf16 peak, "
            f"{accelerator.memory_gb:.0f} GB; model-FLOPs utilisation (MFU) {mfu:.0%} of that peak",
            "memory: bf16 weights (2 B) and gradients (2 B), fp32 master weights (4 B), AdamW's two fp32 moments "
            "(8 B): 16 bytes per parameter; activations, the KV cache and temporary buffers NOT included",
            "GPUs to hold the states: the states sharded evenly over GPUs (ZeRO-3 / FSDP), nothing else on them"]


def mfu_verdict(size: str, assumed: float, implied: float, band: float = 0.05) -> str:
    """The MFU the calculator assumed against the one a run's reported GPU-hours imply, in words."""
    head = f"Llama 2 {size}: the reported GPU-hours imply an MFU of {implied:.0%}; the calculator assumed {assumed:.0%}"
    if abs(implied - assumed) <= band:
        return f"{head}: within {band * 100:.0f} points, so its GPU-hours match the paper's to within " \
               f"{abs(assumed / implied - 1):.0%}"
    side = "optimistic (too few GPU-hours)" if assumed > implied else "pessimistic (too many GPU-hours)"
    return f"{head}: more than {band * 100:.0f} points apart, the calculator is {side} by {abs(implied / assumed - 1):.0%}"


def cpu_years_verdict(flops: float, flops_per_second: float, what: str) -> str:
    """How long ``flops`` take at a measured CPU throughput, in words (the article's "高性能CPU" put to numbers)."""
    positive("flops_per_second", flops_per_second)
    seconds = flops / flops_per_second
    years = seconds / (365.25 * 86400)
    told = (f"{years:,.0f} years" if years >= 1 else f"{seconds / 86400:,.1f} days" if seconds >= 86400
            else f"{seconds:,.1f} s")
    verdict = ("longer than recorded history: CPUs do not train such models; clusters of GPUs or TPUs do"
               if years > 5000 else "a long time for one machine" if years > 1 else "feasible on this machine")
    return (f"{what} at this CPU's measured {flops_per_second / 1e9:,.1f} GFLOP/s (every cycle used): {told}, "
            f"{verdict}")


def matmul_flops_per_second(n: int = 512, repeat: int = 5) -> float:
    """This machine's measured float32 matrix-multiply throughput on the current torch threads (FLOP/s)."""
    whole_number("n", n)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best
