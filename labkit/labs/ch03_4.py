"""Chapter 3.4 (building large models): the experiments' small helpers, the sentences that word what they
measured, and the chapter's exercises.

Every verdict is worded from the numbers it is given (``tests/test_ch03_4.py`` feeds it numbers that go both
ways); every expected answer is computed from the chapter's objects, never typed in.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..exercises import Exercise
from ..nn import count_parameters

__all__ = ["two_weights", "one_update_verdict", "residual_verdict", "norm_verdict", "init_verdict",
           "stream_verdict", "decay_verdict", "recompute_verdict", "exercises"]


# ----------------------------------------------------------------------------- the chapter's small experiments
def two_weights(opt_cls, steps: int = 100, lr: float = 0.01, wd: float = 0.1, big: float = 50.0) -> list[float]:
    """Two weights, both starting at 1: weight 0 gets no loss gradient at all, weight 1 a large one (``big``) that
    flips sign every step. Returns both after ``steps`` steps of ``opt_cls(lr=lr, weight_decay=wd)``."""
    w = nn.Parameter(torch.ones(2))
    opt = opt_cls([w], lr=lr, weight_decay=wd)
    for t in range(steps):
        opt.zero_grad()
        w.grad = torch.tensor([0.0, big * (-1) ** t])
        opt.step()
    return w.detach().tolist()


# ----------------------------------------------------------------------------- verdicts, worded from the numbers
def one_update_verdict(correct: float, article: float, rel: float = 0.05) -> str:
    """The article's loop (an SGD step, then an Adam step) against the one AdamW step of the correct loop."""
    if correct <= 0:
        raise ValueError(f"correct must be > 0 (the size of one AdamW step); got {correct!r}")
    ratio = article / correct
    if abs(ratio - 1) <= rel:
        return (f"Verdict: the two loops moved the weights equally far (ratio {ratio:.2f}); on this batch the "
                "article's extra update made no difference.")
    return (f"Verdict: the article's loop moved the weights {ratio:.2f} times as far as the one AdamW step: it is a "
            "different algorithm (two updates per batch), not a description of AdamW.")


def residual_verdict(plain: dict, residual: dict, fits: float = 0.95) -> str:
    """``plain`` / ``residual``: {"ratio": first-layer / last-layer gradient norm at init, "acc": training
    accuracy after training}. Says which stack passes the gradient down and which fits the data."""
    def fit_words(name, acc):
        return f"{name} {'fits' if acc >= fits else 'does not fit'} the training set (accuracy {acc:.1%})"
    flow = ("the residual stack keeps the first layer's gradient closer to the last layer's"
            if abs(math.log(residual["ratio"])) < abs(math.log(plain["ratio"])) else
            "the plain stack keeps the first layer's gradient at least as close to the last layer's")
    return (f"Verdict: at initialisation {flow} (first/last = {residual['ratio']:.2e} with residuals, "
            f"{plain['ratio']:.2e} without); after training, {fit_words('the residual MLP', residual['acc'])} and "
            f"{fit_words('the plain MLP', plain['acc'])}.")


def norm_verdict(val_losses: dict[str, float], batch_stat_losses: dict[str, float] | None = None,
                 batch: str = "batch", rel: float = 0.10, leak: float = 0.05) -> str:
    """BatchNorm's validation loss (eval mode: running statistics, as at inference) against the best of the other
    normalisations: about as well (within ``rel``), better or worse. With ``batch_stat_losses`` (the same loss
    in train mode, where BatchNorm normalises with the statistics of the batch itself), also whether the batch's
    own statistics lower BatchNorm's loss by more than ``leak`` (relative): information from other positions and
    other sequences that the model will not have at inference."""
    if batch not in val_losses or len(val_losses) < 2:
        raise ValueError(f"val_losses needs {batch!r} and at least one other normalisation; got {sorted(val_losses)}")
    others = {k: v for k, v in val_losses.items() if k != batch}
    best_name = min(others, key=others.get)
    b, o = val_losses[batch], others[best_name]
    scale = max(abs(o), 1e-12)
    if abs(b - o) <= rel * scale:
        how = f"trains about as well as {best_name} norm (within {100 * rel:.0f}%)"
    elif b < o:
        how = f"does better than {best_name} norm, by {100 * (o - b) / scale:.0f}%"
    else:
        how = f"does worse than {best_name} norm, by {100 * (b - o) / scale:.0f}%"
    text = (f"Verdict: on this toy task BatchNorm {how}: validation loss on the copied half (eval mode) "
            f"{b:.3f} against {o:.3f}.")
    if batch_stat_losses is not None:
        bs = batch_stat_losses[batch]
        drop = (b - bs) / max(abs(b), 1e-12)
        text += (f" With each batch's own statistics (train mode) BatchNorm's loss is {bs:.3f}: "
                 + (f"{100 * drop:.0f}% lower, so in training it was reading information from the rest of the "
                    "batch, future positions included, that it does not have at inference." if drop > leak else
                    f"within {100 * leak:.0f}% of the eval-mode loss, so here the batch statistics leak little."))
    return text


def init_verdict(final_std: dict[str, float], start_std: float = 1.0, factor: float = 10.0) -> str:
    """Which initialisations let the activations vanish (std below ``start_std / factor``), explode (above
    ``start_std * factor``) or keep their scale after the last layer."""
    def state(s):
        ratio = s / start_std
        return (f"vanishes ({ratio:.2g}x the input's)" if ratio < 1 / factor else
                f"explodes ({ratio:.2g}x the input's)" if ratio > factor else f"keeps its scale ({ratio:.2g}x)")
    return "Verdict: after the last layer, " + "; ".join(
        f"{name}: std {s:.2e}, {state(s)}" for name, s in final_std.items()) + "."


def stream_verdict(unscaled: list[float], scaled: list[float]) -> str:
    """The residual stream's std from its first to its last block, with and without GPT-2's 1/√(2L) scaling."""
    g_u, g_s = unscaled[-1] / unscaled[0], scaled[-1] / scaled[0]
    which = "grows less" if g_s < g_u else "grows at least as much"
    return (f"Verdict: from the first block to the last, the residual stream's std grows {g_u:.2f}x with N(0, 0.02) "
            f"and {g_s:.2f}x with the scaled projections: scaling the init {which}.")


def decay_verdict(adam_l2: list[float], adamw: list[float], factor: float) -> str:
    """The two-weight demo: which optimizer decays the weight that has no gradient, and by how much."""
    shrink = lambda w: 1 - w
    return (f"Verdict: the weight with no gradient lost {100 * shrink(adam_l2[0]):.1f}% under Adam + L2 and "
            f"{100 * shrink(adamw[0]):.1f}% under AdamW (AdamW's factor (1 - lr·wd)^steps = {factor:.4f}); the "
            f"weight with the large gradient ended at {adam_l2[1]:.4f} under Adam + L2 and {adamw[1]:.4f} under "
            "AdamW. " + ("Adam + L2 decays the two weights unequally; AdamW decays them alike."
                         if abs(shrink(adam_l2[0]) - shrink(adam_l2[1])) > abs(shrink(adamw[0]) - shrink(adamw[1]))
                         else "Here the two optimizers treat the weights alike."))


def recompute_verdict(calls_plain: int, calls_checkpointed: int, blocks: int) -> str:
    """Block forward calls per training step without and with activation checkpointing."""
    extra = calls_checkpointed - calls_plain
    return (f"Verdict: one training step ran the {blocks} blocks' forward {calls_plain} times without checkpointing "
            f"and {calls_checkpointed} times with it: {extra / blocks:.0f} extra forward pass of every block.")


# ----------------------------------------------------------------------------- exercises
def exercises(bn_input: torch.Tensor, block: nn.Module, schedule: list[float], *, base_lr: float, warmup: int,
              step: int = 400, lr: float = 0.01, wd: float = 0.1, steps: int = 100) -> dict[str, Exercise]:
    """Four questions on the chapter's objects: ``bn_input`` (what the BatchNorm of the first cell receives),
    ``block`` (one block of the tiny GPT), ``schedule`` (the learning rates that ``warmup_cosine(warmup,
    len(schedule))`` gave an optimizer with ``base_lr``, one per step)."""
    if not 0 <= step < len(schedule):
        raise ValueError(f"step must be in [0, {len(schedule) - 1}] (the schedule has {len(schedule)} steps); got {step}")
    width = bn_input.shape[1]

    def running_mean():
        bn = nn.BatchNorm1d(width).train()
        bn(bn_input)
        return float(bn.running_mean[0])

    return {
        "3.4.1": Exercise(
            "3.4.1", f"A fresh nn.BatchNorm1d({width}) (momentum 0.1, running_mean starting at 0) is called once, in "
            "train mode, on the first layer's output for the batch x of the first cell, net[0](x). No optimizer "
            "runs. What is running_mean[0] afterwards?",
            expected=running_mean, rel=1e-4,
            hint="the forward call itself updates the running statistics: new = (1 - momentum)·old + "
                 "momentum·(this batch's mean of the feature); the feature is the first column of net[0](x)",
            explain="BatchNorm is a layer of the forward pass: calling the model moves its statistics."),
        "3.4.2": Exercise(
            "3.4.2", "How many parameters does one block of the tiny GPT (tiny_gpt().blocks[0]) have?",
            expected=lambda: count_parameters(block),
            hint="attention: four d×d projections with their biases; feed-forward: d→d_ff→d with biases; two "
                 "LayerNorms with a gain and a shift each; read d and d_ff from the model's config",
            explain="scale.block_params gives the same count from the config alone."),
        "3.4.3": Exercise(
            "3.4.3", f"warmup_cosine({warmup}, {len(schedule)}) with a base learning rate of {base_lr:g}: what is "
            f"the learning rate used at step {step} (counting from 0)?",
            expected=schedule[step], rel=1e-4,
            hint="after the warmup, the factor is 0.5·(1 + cos(π·progress)), where progress counts from the END "
                 "of the warmup to the last step",
            explain="Cosine decay is slow at first and at the end, fastest in the middle."),
        "3.4.4": Exercise(
            "3.4.4", f"AdamW(lr={lr:g}, weight_decay={wd:g}), {steps} steps, on a weight that starts at 1 and never "
            "gets a loss gradient (its grad is 0): what is the weight at the end?",
            expected=lambda: two_weights(torch.optim.AdamW, steps=steps, lr=lr, wd=wd)[0], rel=1e-5,
            hint="with a zero gradient Adam's own step is 0; what is left is the decoupled decay, which multiplies "
                 "the weight by the same factor every step",
            explain="Adam + L2 would instead turn λθ into a gradient and rescale it: a different weight."),
    }
