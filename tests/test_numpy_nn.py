"""Every hand-written backward pass in labkit.numpy_nn agrees with finite differences and with autograd."""
import numpy as np
import pytest
import torch

from labkit import numpy_nn as nn

rng = np.random.default_rng(0)
X = rng.normal(size=(5, 4))


@pytest.mark.parametrize("layer", [nn.Linear(4, 3, 1), nn.ReLU(), nn.LeakyReLU(0.1), nn.Sigmoid(), nn.Tanh(),
                                   nn.MLP([4, 6, 2], "tanh", seed=2)], ids=lambda l: type(l).__name__)
def test_layer_passes_gradient_check(layer):
    errors = nn.check_layer(layer, X.copy())
    assert errors and max(errors.values()) < 1e-7, errors
    if isinstance(layer, nn.Linear):
        assert set(errors) == {"x", "W", "b"}
    if isinstance(layer, nn.Sequential):
        assert set(errors) == {"x", "0.W", "0.b", "2.W", "2.b"}


@pytest.mark.parametrize("loss, pred, y", [
    (nn.MSELoss(), rng.normal(size=(6, 2)), rng.normal(size=(6, 2))),
    (nn.BCEWithLogitsLoss(), rng.normal(size=(6, 1)) * 3, rng.integers(0, 2, (6, 1)).astype(float)),
    (nn.SoftmaxCrossEntropy(), rng.normal(size=(6, 4)), rng.integers(0, 4, 6)),
], ids=["mse", "bce", "softmax_ce"])
def test_loss_gradients(loss, pred, y):
    pred = pred.copy()
    loss(pred, y)
    analytic = loss.backward()
    numeric = nn.gradient_check(lambda p: loss(p, y), pred)
    assert nn.relative_error(analytic, numeric) < 1e-7


def test_losses_match_torch():
    z = rng.normal(size=(6, 4))
    y = rng.integers(0, 4, 6)
    assert np.isclose(nn.SoftmaxCrossEntropy()(z, y),
                      torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(y)).item(), rtol=1e-12)
    zb, yb = rng.normal(size=(6, 1)) * 50, rng.integers(0, 2, (6, 1)).astype(float)
    assert np.isclose(nn.BCEWithLogitsLoss()(zb, yb), torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(zb), torch.tensor(yb)).item(), rtol=1e-12)


def test_mlp_2_3_1_gradients_equal_autograd():
    net = nn.MLP([2, 3, 1], "relu", seed=0)
    assert net.layers[0].params["W"].shape == (2, 3) and net.layers[2].params["W"].shape == (3, 1)
    x = np.random.default_rng(1).normal(size=(8, 2))
    y = (x[:, :1] * x[:, 1:] > 0).astype(float)
    loss = nn.BCEWithLogitsLoss()
    value = loss(net.forward(x), y)
    net.backward(loss.backward())

    t = {k: torch.tensor(v, requires_grad=True) for k, v in
         [("W1", net.layers[0].params["W"]), ("b1", net.layers[0].params["b"]),
          ("W2", net.layers[2].params["W"]), ("b2", net.layers[2].params["b"])]}
    z2 = torch.relu(torch.tensor(x) @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"]
    ref = torch.nn.functional.binary_cross_entropy_with_logits(z2, torch.tensor(y))
    ref.backward()
    assert np.isclose(value, ref.item(), rtol=1e-12)
    for (i, name), key in zip([(0, "W"), (0, "b"), (2, "W"), (2, "b")], ["W1", "b1", "W2", "b2"]):
        np.testing.assert_allclose(net.layers[i].grads[name], t[key].grad.numpy(), rtol=1e-10, atol=1e-14)


def test_mlp_learns_xor_like_data():
    data = np.random.default_rng(3).normal(size=(200, 2))
    y = (data[:, :1] * data[:, 1:] > 0).astype(float)
    net, loss = nn.MLP([2, 16, 1], "tanh", seed=0), nn.BCEWithLogitsLoss()
    first = loss(net.forward(data), y)
    for _ in range(500):
        loss(net.forward(data), y)
        net.backward(loss.backward())
        net.sgd_step(0.5)
    assert loss(net.forward(data), y) < 0.5 * first


def test_gradient_check_of_a_known_function():
    x = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(nn.gradient_check(lambda v: float(np.sum(v ** 3)), x), 3 * x ** 2, rtol=1e-8)
    np.testing.assert_array_equal(x, [1.0, -2.0, 0.5])  # restored


@pytest.mark.parametrize("call, name", [
    (lambda: nn.Linear(0, 3), "d_in"),
    (lambda: nn.Linear(2, 3).forward(np.zeros((4, 3))), "Linear"),
    (lambda: nn.MLP([2]), "sizes"),
    (lambda: nn.MLP([2, 3, 1], "swish"), "activation"),
    (lambda: nn.gradient_check(lambda v: 0.0, np.zeros(2), eps=0), "eps"),
    (lambda: nn.gradient_check(lambda v: 0.0, np.zeros(2, dtype=int)), "x"),
    (lambda: nn.MSELoss()(np.zeros((3, 1)), np.zeros(3)), "pred"),
    (lambda: nn.SoftmaxCrossEntropy()(np.zeros((3, 2)), np.array([0, 1, 2])), "labels"),
    (lambda: nn.MLP([2, 3, 1]).sgd_step(-0.1), "lr"),
    (lambda: nn.MLP([2, 3, 1]).sgd_step(True), "lr"),
    (lambda: nn.train_gd(nn.MLP([2, 1]), nn.MSELoss(), np.zeros((2, 2)), np.zeros((2, 1)), lr=0.1, steps=0), "steps"),
])
def test_bad_input_is_refused(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_check_layer_catches_a_wrong_backward():
    class ArticleSigmoid(nn.Sigmoid):  # §3.8.3: the derivative evaluated at A instead of Z
        def backward(self, grad_out):
            s = nn.sigmoid(self.a)
            return grad_out * s * (1 - s)

    assert nn.check_layer(ArticleSigmoid(), X.copy())["x"] > 1e-2


def test_check_layer_catches_a_backward_that_ignores_grad_out():
    class IgnoresGradOut(nn.Tanh):  # returns f'(Z) alone, as if the upstream gradient were all ones
        def backward(self, grad_out):
            return 1 - self.a ** 2

    assert nn.check_layer(IgnoresGradOut(), X.copy())["x"] > 1e-2


def test_train_gd_is_the_loop_of_forward_backward_and_step():
    data = np.random.default_rng(4).normal(size=(64, 2))
    y = (data[:, :1] > 0) * 1.0
    a, b = nn.MLP([2, 4, 1], "tanh", seed=1), nn.MLP([2, 4, 1], "tanh", seed=1)
    curve = nn.train_gd(a, nn.BCEWithLogitsLoss(), data, y, lr=0.5, steps=50)
    loss = nn.BCEWithLogitsLoss()
    by_hand = []
    for _ in range(50):
        by_hand.append(loss(b.forward(data), y))
        b.backward(loss.backward())
        b.sgd_step(0.5)
    assert curve == by_hand and len(curve) == 50 and curve[-1] < curve[0]
    np.testing.assert_array_equal(a.layers[0].params["W"], b.layers[0].params["W"])
