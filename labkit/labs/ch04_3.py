"""Chapter 4.3's networks, verdicts and exercises: deep MLPs with one activation each, dead ReLU units, and
sentences worded from what was measured (does the gradient vanish with depth, does a network learn, do dead
units grow with the learning rate, does a gradient reach a layer whose units are all off).

Every expected answer of :func:`exercises` is computed from the chapter's objects; ``tests/test_ch04.py``
checks that each refuses the usual wrong answers.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..check import one_of, whole_number
from ..exercises import Exercise

__all__ = ["MODULES", "deep_mlp", "layer_grad_norms", "dead_units", "dead_fraction", "gradient_flow_verdicts",
           "training_verdict", "dead_units_verdict", "gradient_reaches", "exercises"]

MODULES = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "ReLU": nn.ReLU,
           "LeakyReLU": lambda: nn.LeakyReLU(0.01), "GELU": nn.GELU}


def deep_mlp(act: str, depth: int, width: int = 32, seed: int = 0, d_in: int = 2, d_out: int = 2) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` units with activation ``act``, each initialised for it: Glorot/Xavier
    (variance 1/fan-in here) for sigmoid and tanh, He/Kaiming (2/fan-in) for the ReLU family; biases 0."""
    one_of("act", act, MODULES)
    whole_number("depth", depth)
    torch.manual_seed(seed)
    layers, d = [], d_in
    for _ in range(depth):
        lin = nn.Linear(d, width)
        if act in ("sigmoid", "tanh"):
            nn.init.xavier_normal_(lin.weight)
        else:
            nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        layers += [lin, MODULES[act]()]
        d = width
    return nn.Sequential(*layers, nn.Linear(d, d_out))


def layer_grad_norms(model: nn.Sequential, X: torch.Tensor, Y: torch.Tensor) -> list[float]:
    """‖∂L/∂W‖ of every hidden layer (first to last) after one cross-entropy backward pass on (X, Y)."""
    model.zero_grad()
    F.cross_entropy(model(X), Y).backward()
    return [m.weight.grad.norm().item() for m in model if isinstance(m, nn.Linear)][:-1]


@torch.no_grad()
def dead_units(model: nn.Sequential, X: torch.Tensor) -> list[int]:
    """Per hidden ReLU layer: the units whose output is 0 for every row of X (their weight gradient is exactly 0)."""
    counts, h = [], X
    for m in model:
        h = m(h)
        if isinstance(m, nn.ReLU):
            counts.append(int((h == 0).all(dim=0).sum()))
    return counts


def dead_fraction(model: nn.Sequential, X: torch.Tensor) -> float:
    """The share of all hidden ReLU units that are dead on X (exercise 4.3.3's reference)."""
    widths = [model[i - 1].out_features for i, m in enumerate(model) if isinstance(m, nn.ReLU)]
    return sum(dead_units(model, X)) / sum(widths)


# ----------------------------------------------------------------------------- verdicts
def gradient_flow_verdicts(norms: dict[str, list[float]], factor: float = 10.0,
                           vanish_orders: float = 3.0) -> list[str]:
    """Per activation: the first hidden layer's gradient norm over the last one's, and how far it is from 1.

    Within ``factor`` either way it is kept; beyond ``vanish_orders`` orders of magnitude it vanishes (or
    explodes); in between it shrinks (or grows). Then which activations stay within ``factor``.
    """
    lines, within = [], []
    for act, n in norms.items():
        r = n[0] / n[-1]
        orders = abs(math.log10(r)) if r > 0 else float("inf")
        if 1 / factor <= r <= factor:
            within.append(act)
            state = f"within a factor of {factor:g}"
        elif orders >= vanish_orders:
            state = f"{'vanishes' if r < 1 else 'explodes'} ({orders:.1f} orders of magnitude)"
        else:
            state = f"{'shrinks' if r < 1 else 'grows'} by {orders:.1f} orders of magnitude"
        lines.append(f"{act}: first / last hidden layer = {r:.3g}: {state}")
    rest = [a for a in norms if a not in within]
    lines.append(f"Verdict at depth {len(next(iter(norms.values())))}: within a factor of {factor:g}: "
                 f"{', '.join(within) or 'none'}; not: {', '.join(rest) or 'none'}.")
    return lines


def training_verdict(curve, chance: float = math.log(2), tol: float = 0.01) -> str:
    """'still at chance level' when the last loss is within ``tol`` of ``chance`` (log 2 for two balanced
    classes), else how far the loss fell."""
    first, last = float(curve[0]), float(curve[-1])
    if abs(last - chance) < tol:
        return f"still at chance level (loss {last:.4f} ≈ log 2 = {chance:.4f})"
    return f"learning (loss {first:.4f} -> {last:.4f})"


def dead_units_verdict(at_init: int, by_lr: dict[float, int], units: int) -> str:
    """Dead units at initialisation and after training at each learning rate, and whether the count grows
    with the learning rate (strictly, from the smallest rate to the largest)."""
    lrs = sorted(by_lr)
    counts = [by_lr[lr] for lr in lrs]
    grows = all(b > a for a, b in zip(counts, counts[1:]))
    trend = ("grows with the learning rate" if grows else
             "does not grow steadily with the learning rate")
    after = ", ".join(f"{by_lr[lr]} after lr {lr:g}" for lr in lrs)
    change = by_lr[lrs[-1]] - at_init
    return (f"dead units (of {units}): {at_init} at initialisation; {after}. The count {trend}; after the largest "
            f"rate {abs(change)} {'more' if change >= 0 else 'fewer'} units are dead than at the start.")


def gradient_reaches(name: str, norm: float) -> str:
    """Whether any gradient reaches a layer (its weight gradient's norm is above 0)."""
    return (f"{name}: gradient norm {norm:.3e}: " +
            ("a gradient reaches the layer, so gradient descent can still move it" if norm > 0 else
             "no gradient at all reaches the layer: gradient descent cannot move it"))


# ----------------------------------------------------------------------------- exercises
def _dead_fraction_ok(fn, models: list[nn.Sequential], X: torch.Tensor) -> bool:
    for model in models:
        want = dead_fraction(model, X)
        got = fn(model, X.clone())
        got = float(got.item() if isinstance(got, torch.Tensor) else got)
        if not np.isclose(got, want, rtol=1e-9, atol=1e-12):
            print(f"   a model with {want:.3f} of its hidden ReLU units dead: your function gave {got:.3f}")
            return False
    return True


def exercises(depth: int, x, slopes: dict[str, np.ndarray], models: list[nn.Sequential],
              X: torch.Tensor) -> dict[str, Exercise]:
    """Three questions on the chapter's objects.

    ``depth``: the layers of the gradient-flow network (4.3.1); ``x`` and ``slopes``: the grid and the
    autograd derivatives of every activation on it (4.3.2); ``models`` and ``X``: ReLU networks of the
    dying-ReLU experiment and its inputs, on which a learner's ``dead_fraction`` is checked (4.3.3).
    """
    whole_number("depth", depth)
    grid = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=float)
    gelu = np.asarray(slopes["GELU"], dtype=float)
    spacing = float(abs(grid[1] - grid[0]))
    return {
        "4.3.1": Exercise(
            "4.3.1", f"A gradient flows back through {depth} sigmoid layers. Each multiplies it by σ'(z) ≤ 1/4 "
            "(and by a weight matrix). By at least how many orders of magnitude do the σ' factors alone shrink it? "
            "(A positive number.)",
            expected=lambda: depth * math.log10(4), rel=1e-3,
            hint="the factors multiply, one per layer; an order of magnitude is a factor of 10, so count in log10",
            explain="The measured first / last ratio above spans one layer fewer and includes the weights, so it "
                    "need not equal this bound; compare them."),
        "4.3.2": Exercise(
            "4.3.2", "At which input x > 0 is GELU's slope the largest?",
            expected=lambda: float(grid[int(gelu.argmax())]), abs_tol=spacing / 2 + 1e-3,
            hint="GELU'(x) = Φ(x) + xφ(x); differentiate once more, with φ'(x) = −xφ(x), and set it to 0; "
                 "or read the peak of GELU's curve in the right-hand panel",
            explain=f"There the slope is {gelu.max():.3f}, more than ReLU's 1; and unlike ReLU's, GELU's slope is "
                    + (f"negative for x < {grid[gelu < 0].max():.2f}." if (gelu < 0).any() else
                       "never negative here.")),
        "4.3.3": Exercise(
            "4.3.3", "Write dead_fraction(model, X) -> the fraction of the hidden ReLU units of an nn.Sequential of "
            "Linear and ReLU layers whose output is 0 for every row of X.",
            check_fn=lambda fn: _dead_fraction_ok(fn, models, X),
            hint="run X through the layers one at a time and look at the output of each ReLU: a unit is dead only "
                 "if it is 0 on all rows, not on some; divide by the number of hidden units, not of activations",
            explain="Dead units get exactly zero gradient, so no optimizer step can bring them back."),
    }
