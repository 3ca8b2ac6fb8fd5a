"""Lab 4b: backward passes written by hand, each checked against finite differences.

The learner writes ``backward(**inputs, grad_out)`` for a forward function;
:class:`BackwardCheck` calls it with an upstream gradient G and compares what
it returns with central finite differences of L = sum(forward(**inputs) * G).
:func:`exercises` gives one check per function of the lab, on fixed random inputs.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..exercises import Exercise
from ..numpy_nn import BCEWithLogitsLoss, SoftmaxCrossEntropy, gradient_check, relative_error, sigmoid

__all__ = ["BackwardCheck", "backward_exercise", "mlp_loss", "article_sigmoid_backward", "exercises"]


class BackwardCheck:
    """Finite-difference gradients of ``forward`` at fixed inputs, and what is wrong with a learner's backward.

    With a fixed random upstream gradient G, L = sum(forward(**inputs) * G), so dL/d(output) = G. G is random
    for a scalar output too (a number between 1.5 and 3 in size, of either sign), so a backward that ignores
    ``grad_out`` fails.
    ``backward(**inputs, grad_out=G)`` must return dL/d(input) for each name in ``wrt``
    (one array, or a tuple in that order).
    """

    def __init__(self, forward: Callable, inputs: dict[str, np.ndarray], wrt: tuple[str, ...] | None = None,
                 seed: int = 0):
        self.inputs = {k: np.asarray(v, dtype=float) if np.issubdtype(np.asarray(v).dtype, np.floating)
                       else np.asarray(v) for k, v in inputs.items()}
        self.wrt = tuple(wrt) if wrt else tuple(k for k, v in self.inputs.items()
                                                if np.issubdtype(v.dtype, np.floating))
        out = np.asarray(forward(**self.inputs), dtype=float)
        rng = np.random.default_rng(seed)
        # A random upstream gradient, for a scalar output too: with grad_out = 1 a backward that ignores it
        # would pass. A scalar one is kept away from ±1 and 0 (and may be negative), so ignoring it shows.
        self.grad_out = (rng.normal(size=out.shape) if out.ndim else
                         float(rng.choice([-1.0, 1.0]) * rng.uniform(1.5, 3.0)))

        def loss(_=None):
            return float(np.sum(np.asarray(forward(**self.inputs)) * self.grad_out))

        self.expected = {k: gradient_check(loss, self.inputs[k]) for k in self.wrt}

    def problems(self, backward: Callable, tol: float = 1e-6) -> list[str]:
        """What is wrong with ``backward``: a missing gradient, a shape, an error size; [] when nothing is."""
        got = backward(**{k: v.copy() for k, v in self.inputs.items()}, grad_out=self.grad_out)
        got = list(got) if isinstance(got, (tuple, list)) else [got]
        if len(got) != len(self.wrt):
            return [f"return {len(self.wrt)} gradient(s), for {', '.join(self.wrt)}; got {len(got)}"]
        problems = []
        for name, g in zip(self.wrt, got):
            e = self.expected[name]
            g = None if g is None else np.asarray(g, dtype=float)
            if g is None or g.shape != e.shape:
                problems.append(f"dL/d{name} must have shape {e.shape} (the shape of {name}); "
                                f"got {None if g is None else g.shape}")
            elif relative_error(g, e) > tol:
                problems.append(f"dL/d{name} differs from finite differences (relative error "
                                f"{relative_error(g, e):.1e})")
        return problems


def backward_exercise(key: str, question: str, forward: Callable, inputs: dict, *, wrt: tuple[str, ...] | None = None,
                      hint: str = "", seed: int = 0) -> Exercise:
    """An exercise whose answer is a backward function; a wrong one is told what is wrong (a shape, an error size)."""
    reference = BackwardCheck(forward, inputs, wrt, seed=seed)

    def check(backward) -> bool:
        problems = reference.problems(backward)
        for p in problems:
            print(f"   {p}")
        return not problems

    return Exercise(key, question, check_fn=check, hint=hint, explain="Matches central finite differences.")


def mlp_loss(X, Y, W1, b1, W2, b2):
    """The forward pass of 4b.6: a ReLU hidden layer, then BCE from the logit Z2 (mean over rows)."""
    Z2 = np.maximum(X @ W1 + b1, 0) @ W2 + b2
    return BCEWithLogitsLoss()(Z2, Y)


def article_sigmoid_backward(z, grad_out):
    """The article's §3.8.3: σ'(A)·∇A, the derivative evaluated at the output A = σ(z) instead of at z."""
    a = sigmoid(z)
    return grad_out * sigmoid(a) * (1 - sigmoid(a))


def exercises(seed: int = 0) -> dict[str, Exercise]:
    """The lab's six backward passes, on random inputs drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    normal = rng.normal
    return {
        "4b.1": backward_exercise(
            "4b.1", "sigmoid_backward(z, grad_out): the gradient at z of A = σ(z)", sigmoid, {"z": normal(size=(4, 3))},
            hint="the chain rule multiplies grad_out by σ' elementwise; at which point is σ' taken: the layer's "
                 "input or its output? σ' can be written with σ itself"),
        "4b.2": backward_exercise(
            "4b.2", "tanh_backward(z, grad_out): the gradient at z of A = tanh(z)", lambda z: np.tanh(z), {"z": normal(size=(4, 3))},
            hint="differentiate tanh; its derivative can be written with tanh(z) itself"),
        "4b.3": backward_exercise(
            "4b.3", "relu_backward(z, grad_out): the gradient at z of A = max(0, z)", lambda z: np.maximum(z, 0),
            {"z": normal(size=(4, 3))},
            hint="where does max(0, z) follow z, and where is it flat?"),
        "4b.4": backward_exercise(
            "4b.4", "linear_backward(x, W, b, grad_out) -> (dX, dW, db) for Z = xW + b",
            lambda x, W, b: x @ W + b,
            {"x": normal(size=(5, 2)), "W": normal(size=(2, 3)), "b": normal(size=3)},
            hint="differentiate one element Z_ij = Σ_k x_ik W_kj + b_j; each gradient has the shape of what it is the "
                 "gradient of, which tells where the transposes go; b is added to every row"),
        "4b.5": backward_exercise(
            "4b.5", "softmax_ce_backward(z, y, grad_out): the gradient at the logits z of the mean softmax "
            "cross-entropy", lambda z, y: SoftmaxCrossEntropy()(z, y),
            {"z": normal(size=(6, 4)), "y": np.array([0, 3, 1, 1, 2, 0])}, wrt=("z",),
            hint="differentiate −log softmax(z)_y with respect to every z_k, the wrong classes (k ≠ y) included; "
                 "the loss is a mean over the n rows"),
        "4b.6": backward_exercise(
            "4b.6", "mlp_backward(X, Y, W1, b1, W2, b2, grad_out) -> (dW1, db1, dW2, db2) of mlp_loss", mlp_loss,
            {"X": normal(size=(8, 2)), "Y": (rng.random((8, 1)) < 0.5) * 1.0, "W1": normal(size=(2, 3)),
             "b1": normal(size=3), "W2": normal(size=(3, 1)), "b2": normal(size=1)},
            wrt=("W1", "b1", "W2", "b2"),
            hint="go backward one step at a time: the loss's gradient at the logit Z2 first (the idea of 4b.5, for "
                 "one logit and a sigmoid), then the second linear layer (4b.4), the ReLU (4b.3), the first linear "
                 "layer; keep Z1 from the forward pass"),
    }
