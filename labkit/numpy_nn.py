"""A neural network in NumPy with every backward pass written by hand (chapter 4).

Shapes follow Z = X W + b: a batch X is (n, d_in), W is (d_in, d_out), b is (d_out,),
and each layer's backward turns dL/d(output) into dL/d(input):

    Linear    dX = dZ W^T     dW = X^T dZ     db = sum over the batch of dZ
    ReLU      dZ = dA * 1[Z > 0]
    Sigmoid   dZ = dA * A (1 - A)             (A = sigma(Z): evaluated at Z, not at A)
    Tanh      dZ = dA * (1 - A^2)

Losses return a scalar from ``forward`` and dL/d(prediction) from ``backward()``.
:func:`gradient_check` compares any of this with central finite differences (lab 4b
uses it to check a learner's own backward functions: :mod:`labkit.labs.lab04b`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .check import positive, whole_number

__all__ = ["Layer", "Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Sequential", "MLP",
           "MSELoss", "BCEWithLogitsLoss", "SoftmaxCrossEntropy", "sigmoid", "softmax", "train_gd",
           "gradient_check", "relative_error", "check_layer"]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z), without overflow for large |z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Layer:
    """A layer: ``forward(x)`` remembers what ``backward(grad_out)`` needs; params and grads are dicts."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.params.items())
        return f"{type(self).__name__}({shapes})"


class Linear(Layer):
    """Z = X W + b with W of shape (d_in, d_out) and b of shape (d_out,)."""

    def __init__(self, d_in: int, d_out: int, rng: np.random.Generator | int | None = 0):
        super().__init__()
        if d_in < 1 or d_out < 1:
            raise ValueError(f"d_in and d_out must be >= 1; got d_in={d_in}, d_out={d_out}")
        rng = np.random.default_rng(rng)
        bound = 1 / np.sqrt(d_in)  # PyTorch's default nn.Linear initialisation range
        self.params = {"W": rng.uniform(-bound, bound, (d_in, d_out)), "b": rng.uniform(-bound, bound, d_out)}

    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != self.params["W"].shape[0]:
            raise ValueError(f"Linear expects x of shape (n, {self.params['W'].shape[0]}); got {x.shape}")
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, grad_out):
        self.grads = {"W": self.x.T @ grad_out, "b": grad_out.sum(axis=0)}
        return grad_out @ self.params["W"].T


class ReLU(Layer):
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, grad_out):
        return grad_out * self.mask


class LeakyReLU(Layer):
    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.slope = negative_slope

    def forward(self, x):
        self.mask = x > 0
        return np.where(self.mask, x, self.slope * x)

    def backward(self, grad_out):
        return grad_out * np.where(self.mask, 1.0, self.slope)


class Sigmoid(Layer):
    def forward(self, x):
        self.a = sigmoid(x)
        return self.a

    def backward(self, grad_out):
        return grad_out * self.a * (1 - self.a)


class Tanh(Layer):
    def forward(self, x):
        self.a = np.tanh(x)
        return self.a

    def backward(self, grad_out):
        return grad_out * (1 - self.a ** 2)


class Sequential(Layer):
    """Layers applied in order; backward runs them in reverse."""

    def __init__(self, *layers: Layer):
        super().__init__()
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out):
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
        return grad_out

    def parameters(self):
        """(layer index, name, array, gradient) for every parameter."""
        return [(i, k, layer.params[k], layer.grads.get(k)) for i, layer in enumerate(self.layers)
                for k in layer.params]

    def sgd_step(self, lr: float) -> None:
        positive("lr", lr)
        for layer in self.layers:
            for k in layer.params:
                layer.params[k] -= lr * layer.grads[k]

    def __repr__(self) -> str:
        return "Sequential(\n" + "".join(f"  {layer!r}\n" for layer in self.layers) + ")"


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh}


def MLP(sizes: list[int], activation: str = "relu", seed: int = 0) -> Sequential:
    """Linear layers of the given sizes with an activation between them (none after the last)."""
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output size; got {sizes!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}")
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(d_in, d_out, rng))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return Sequential(*layers)


# ----------------------------------------------------------------------------- losses
class MSELoss:
    """L = mean((pred - y)^2) over all entries; dL/dpred = 2 (pred - y) / size."""

    def forward(self, pred, y):
        if pred.shape != y.shape:
            raise ValueError(f"pred and y must have the same shape; got {pred.shape} and {y.shape}")
        self.diff = pred - y
        return float(np.mean(self.diff ** 2))

    def backward(self):
        return 2 * self.diff / self.diff.size

    __call__ = forward


class BCEWithLogitsLoss:
    """Binary cross-entropy from logits z (n, 1) and labels y in {0, 1}; dL/dz = (sigma(z) - y) / n."""

    def forward(self, z, y):
        if z.shape != y.shape:
            raise ValueError(f"logits and y must have the same shape; got {z.shape} and {y.shape}")
        self.z, self.y = z, y
        return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))

    def backward(self):
        return (sigmoid(self.z) - self.y) / self.z.size

    __call__ = forward


class SoftmaxCrossEntropy:
    """Softmax + cross-entropy from logits (n, K) and integer labels (n,); dL/dz = (softmax(z) - onehot) / n."""

    def forward(self, z, y):
        y = np.asarray(y)
        if z.ndim != 2 or y.shape != (z.shape[0],):
            raise ValueError(f"need logits (n, K) and integer labels (n,); got {z.shape} and {y.shape}")
        if y.min() < 0 or y.max() >= z.shape[1]:
            raise ValueError(f"labels must be in [0, {z.shape[1] - 1}]; got {y.min()}..{y.max()}")
        self.y = y
        shifted = z - z.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.p = np.exp(log_p)
        return float(-log_p[np.arange(len(y)), y].mean())

    def backward(self):
        g = self.p.copy()
        g[np.arange(len(self.y)), self.y] -= 1
        return g / len(self.y)

    __call__ = forward


def train_gd(net: Sequential, loss, x: np.ndarray, y: np.ndarray, *, lr: float, steps: int) -> list[float]:
    """Full-batch gradient descent: forward, loss, backward, step, ``steps`` times.

    Returns the loss before each step.
    """
    whole_number("steps", steps)
    curve = []
    for _ in range(steps):
        curve.append(loss(net.forward(x), y))
        net.backward(loss.backward())
        net.sgd_step(lr)
    return curve


# ----------------------------------------------------------------------------- gradient checks
def gradient_check(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Numerical gradient of a scalar function by central differences: (f(x+eps) - f(x-eps)) / 2eps.

    ``x`` is perturbed in place one entry at a time and restored, so ``f`` may read it
    through a closure (e.g. a layer's weight array). The error is O(eps^2).
    """
    if not eps > 0:
        raise ValueError(f"eps must be > 0; got {eps!r}")
    if not (isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)):
        raise ValueError("x must be a floating-point NumPy array (float64 for a meaningful check)")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        up = f(x)
        x[i] = old - eps
        down = f(x)
        x[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / (||a|| + ||b||): about 1e-8 or below means two gradients agree."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else 0.0


def check_layer(layer: Layer, x: np.ndarray, seed: int = 0, eps: float = 1e-6) -> dict[str, float]:
    """Relative error between ``layer.backward`` and finite differences, for the input and each parameter.

    For a :class:`Sequential`, every parameter of every layer is checked (named ``"0.W"``, ``"0.b"``, ...).

    Uses L = sum(layer(x) * G) for a fixed random G, so dL/d(output) = G.
    """
    g_out = np.random.default_rng(seed).normal(size=layer.forward(x).shape)

    def loss(_=None):
        return float(np.sum(layer.forward(x) * g_out))

    layer.forward(x)
    errors = {"x": relative_error(layer.backward(g_out), gradient_check(loss, x, eps))}
    parts = [(f"{i}.", l) for i, l in enumerate(layer.layers)] if isinstance(layer, Sequential) else [("", layer)]
    analytic = {prefix + k: l.grads[k].copy() for prefix, l in parts for k in l.params}
    for prefix, l in parts:
        for k, p in l.params.items():
            errors[prefix + k] = relative_error(analytic[prefix + k], gradient_check(loss, p, eps))
    return errors

