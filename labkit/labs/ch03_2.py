"""Chapter 3.2's exercises: the weights that two masks leave, what tying GPT-2's LM head saves, and how the
memory of the attention weights grows with the sequence length; and the chapter's verdicts, worded from its
measurements (learned positions, gradient spread over depth, parity with the reference, log-log slopes).

Every expected answer is computed from the chapter's objects (its masked weights, GPT-2's published
configuration, the tensor the cost cell measured), never typed in; ``tests/test_ch03_2.py`` checks that each
refuses the usual wrong answers.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from .. import zoo
from ..check import number
from ..exercises import Exercise

__all__ = ["nonzero_weights", "tied_parameters", "position_similarity", "band_verdict", "evenness_verdict",
           "parity_verdict", "loglog_slope", "exercises"]


def nonzero_weights(weights: torch.Tensor) -> int:
    """How many attention weights are not zero (a masked key gets exactly 0)."""
    return int((weights > 0).sum())


def tied_parameters(name: str = "gpt2") -> int:
    """Parameters a separate LM head matrix would add to a zoo model at its real size: vocabulary x width."""
    cfg = zoo.card(name).config("real")
    width = getattr(cfg, "n_embd", None) or cfg.hidden_size
    return int(cfg.vocab_size) * int(width)


def position_similarity(positions: torch.Tensor, n: int = 128, far: int = 32) -> tuple[float, float]:
    """Mean cosine of neighbouring rows of a position-embedding matrix (the first ``n``), and of rows at least
    ``far`` apart."""
    P = F.normalize(positions[:n].detach().float(), dim=-1)
    S = P @ P.T
    gap = (torch.arange(len(P))[:, None] - torch.arange(len(P))[None, :]).abs()
    if not (gap >= far).any():
        raise ValueError(f"need more than far={far} positions; got {len(P)}")
    return S[gap == 1].mean().item(), S[gap >= far].mean().item()


def band_verdict(near: float, far: float, margin: float = 0.1) -> str:
    """Whether learned positions form a band along the diagonal: neighbours at least ``margin`` more similar."""
    number("margin", margin, minimum=0)
    shown = f"mean cosine of neighbouring positions {near:+.3f}, of positions far apart {far:+.3f}"
    if near - far >= margin:
        return f"{shown}: nearby positions are more similar (a band along the diagonal)."
    return f"{shown}: no band along the diagonal (difference under {margin:g})."


def evenness_verdict(ratios: dict[str, float], depth: int) -> str:
    """Which placement's gradient-norm ratio (last block / first block) is closer to 1, on a log scale."""
    if len(ratios) < 2 or any(not r > 0 for r in ratios.values()):
        raise ValueError(f"ratios must hold at least two positive ratios; got {ratios}")
    spread = {name: abs(math.log(r)) for name, r in ratios.items()}
    even = min(spread, key=spread.get)
    factor = math.exp(max(spread.values()) - spread[even])
    shown = ", ".join(f"{name} {r:.2f}" for name, r in ratios.items())
    return (f"last block / first block: {shown}. At initialisation {even} spreads the gradient most evenly over "
            f"the {depth} blocks (its ratio is closer to 1 by a factor of {factor:.1f}).")


def parity_verdict(what: str, diff: float, tol: float = 1e-4) -> str:
    """Whether a from-scratch module computes the same function as its reference: max |difference| under ``tol``."""
    number("tol", tol, minimum=0, open_low=True)
    if diff < tol:
        return f"{what}: max |diff| = {diff:.2e} < {tol:g}, the same function up to float32 rounding."
    return f"{what}: max |diff| = {diff:.2e} >= {tol:g}, NOT the same function."


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The slope of log y against log x between the last two points (the exponent of a power law)."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("xs and ys must have the same length, at least 2")
    (x1, x2), (y1, y2) = xs[-2:], ys[-2:]
    if min(x1, x2, y1, y2) <= 0 or x1 == x2:
        raise ValueError("the last two points need positive values and different x")
    return math.log(y2 / y1) / math.log(x2 / x1)


def exercises(masked_weights: torch.Tensor, seq_len: int, weights_mib: float,
              model: str = "gpt2") -> dict[str, Exercise]:
    """Three questions: ``masked_weights`` is one sequence's (queries, keys) weights under its padding and the
    causal mask; ``weights_mib`` the MiB of the explicit attention weights the cost cell measured at
    ``seq_len`` tokens."""
    number("weights_mib", weights_mib, minimum=0, open_low=True)
    n_q, n_k = masked_weights.shape[-2:]
    return {
        "3.2.1": Exercise(
            "3.2.1", f"In the figure 'padding + causal mask' (sequence 2: {n_q} tokens, the last 2 of them "
            f"padding), how many of the {n_q * n_k} weights are not zero?",
            expected=lambda: nonzero_weights(masked_weights),
            hint="go row by row: a query may see the keys at or before its own position, and never a padding "
                 "key; padding queries still have a row",
            explain="The two masks combine with a logical AND; a padding query's row is computed too (its output "
                    "is simply never used)."),
        "3.2.2": Exercise(
            "3.2.2", f"{model} ties its LM head to its token-embedding matrix. How many parameters would an untied "
            f"LM head add to the real {model}? (labkit.zoo.card({model!r}).config('real') gives its size.)",
            expected=lambda: tied_parameters(model),
            hint="the LM head maps each position's vector to one logit per vocabulary entry: what shape is its "
                 "matrix? (GPT-2's head has no bias)",
            explain="That is about a third of GPT-2 small's 124M parameters: tying saves it and shares what the "
                    "model learns about a token between reading it and predicting it."),
        "3.2.3": Exercise(
            "3.2.3", f"The explicit path stored {weights_mib:.6g} MiB of attention weights at T = {seq_len}. How "
            f"many MiB would it store at T = {2 * seq_len}?",
            expected=lambda: weights_mib * 4, rel=1e-3,
            hint="the weights form one matrix per head with one entry per (query, key) pair: how does that count "
                 "change when T doubles?",
            explain="Quadratic: doubling T quadruples the memory, which is why long contexts need fused kernels "
                    "that never store the T x T matrix."),
    }
