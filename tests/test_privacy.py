"""DP-SGD from scratch against opacus (per-sample gradients, the clipped averaged gradient, the accountant),
the gradient leak, and the verdict wording."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from labkit import privacy


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4))


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(10, 12, generator=g), torch.randint(4, (10,), generator=g)


def test_per_sample_gradients_match_autograd_one_example_at_a_time_and_opacus(batch):
    x, y = batch
    model = mlp()
    mine = privacy.per_sample_gradients(model, x, y)
    for i in range(len(x)):
        model.zero_grad()
        F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]).backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(mine[name][i], p.grad, atol=1e-6, rtol=0)
    ref, _ = privacy.opacus_reference(model, x, y, max_norm=1.0)
    assert set(ref) == set(mine)
    assert max(float((mine[k] - ref[k]).abs().max()) for k in mine) <= 1e-6


def test_clipped_averaged_gradient_matches_opacus_dp_optimizer(batch):
    x, y = batch
    model = mlp()
    grads = privacy.per_sample_gradients(model, x, y)
    norms = privacy.per_sample_norms(grads)
    C = float(norms.median())                         # half the examples get clipped
    assert (norms > C).any() and (norms < C).any()
    clipped = privacy.clip_per_sample(grads, C)
    after = privacy.per_sample_norms(clipped)
    assert torch.all(after <= C + 1e-5)
    small = norms < C                                 # below C: untouched (up to the 1e-6 in the formula)
    torch.testing.assert_close(after[small], norms[small], atol=1e-5, rtol=1e-5)
    mine = privacy.noisy_gradient(clipped, C, 0.0, len(x))
    _, ref = privacy.opacus_reference(model, x, y, max_norm=C)
    assert max(float((mine[k] - ref[k]).abs().max()) for k in mine) <= 1e-6
    # the unclipped mean gradient is different: clipping changed something
    plain = {k: g.mean(0) for k, g in grads.items()}
    assert max(float((mine[k] - plain[k]).abs().max()) for k in mine) > 1e-3


def test_noise_has_the_standard_deviation_sigma_c_over_b():
    clipped = {"w": torch.zeros(5, 20000)}
    g = torch.Generator().manual_seed(0)
    out = privacy.noisy_gradient(clipped, max_norm=2.0, noise_multiplier=1.5, expected_batch_size=10, generator=g)
    assert float(out["w"].std()) == pytest.approx(1.5 * 2.0 / 10, rel=0.03)
    assert float(out["w"].mean()) == pytest.approx(0.0, abs=0.01)


def test_epsilon_from_the_accountant_falls_with_noise_and_grows_with_steps():
    e = [privacy.epsilon(s, 0.05, 500, 1e-5) for s in (0.7, 1.0, 2.0)]
    assert e[0] > e[1] > e[2] > 0
    assert privacy.epsilon(1.0, 0.05, 1000, 1e-5) > e[1]
    assert privacy.epsilon(0.0, 0.05, 10, 1e-5) == math.inf
    with pytest.raises(ValueError, match="delta"):
        privacy.epsilon(1.0, 0.05, 10, 0.0)


def test_train_dp_sgd_without_noise_and_clipping_is_sgd_on_the_poisson_batches(batch):
    x, y = batch
    model, ref = mlp(), mlp()
    res = privacy.train_dp_sgd(model, x, y, x_test=x, y_test=y, epochs=2, batch_size=5, lr=0.1, max_norm=1e6,
                               noise_multiplier=0.0, seed=3)
    g = torch.Generator().manual_seed(3)
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    for idx in privacy.poisson_batches(10, 0.5, 4, g):
        opt.zero_grad()
        if len(idx):
            (F.cross_entropy(ref(x[idx]), y[idx], reduction="sum") / 5).backward()
            opt.step()
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0)
    assert res.steps == 4 and res.epsilon == math.inf and res.clipped_share == 0.0 and len(res.accuracy) == 2


def test_a_gradient_gives_its_input_back_and_noise_hides_it(batch):
    x, y = batch
    model = mlp()
    model.zero_grad()
    F.cross_entropy(model(x[:1]), y[:1]).backward()
    w, b = model[0].weight.grad, model[0].bias.grad
    torch.testing.assert_close(privacy.input_from_gradient(w, b), x[0], atol=1e-5, rtol=1e-4)
    noisy = privacy.input_from_gradient(w + 0.5 * torch.randn_like(w), b + 0.5 * torch.randn_like(b))
    assert float((noisy - x[0]).abs().max()) > 0.5
    with pytest.raises(ValueError, match="bias_grad is all zero"):
        privacy.input_from_gradient(w, torch.zeros_like(b))
    with pytest.raises(ValueError, match="weight_grad must be"):
        privacy.input_from_gradient(w[0], b)


def test_bad_input_is_refused_with_the_parameter_named(batch):
    x, y = batch
    with pytest.raises(ValueError, match="max_norm"):
        privacy.clip_per_sample({"w": torch.ones(2, 3)}, 0.0)
    with pytest.raises(ValueError, match="same number of examples"):
        privacy.per_sample_gradients(mlp(), x, y[:3])
    with pytest.raises(ValueError, match="noise_multiplier"):
        privacy.noisy_gradient({"w": torch.ones(2, 3)}, 1.0, -1.0, 2)
    with pytest.raises(ValueError, match="batch_size"):
        privacy.train_dp_sgd(mlp(), x, y, x_test=x, y_test=y, epochs=1, batch_size=11, lr=0.1, max_norm=1.0,
                             noise_multiplier=1.0)


def _result(sigma, eps, acc):
    return privacy.DPResult(None, sigma, 1.0, 0.05, 100, eps, 1e-5, [acc], 0.5)


def test_verdicts_follow_the_numbers():
    assert "both within 1e-06" in privacy.privacy_verdict(1e-8, 2e-7)
    assert "NOT within 1e-06" in privacy.privacy_verdict(1e-8, 3e-3)
    rising = privacy.tradeoff_verdict([_result(4, 0.5, 0.6), _result(1, 3.0, 0.85), _result(0.5, 12.0, 0.9)], 0.95)
    assert "ε = 0.5: 0.600" in rising and "costs 35.0 points" in rising and "accuracy rises as ε grows" in rising
    bumpy = privacy.tradeoff_verdict([_result(4, 0.5, 0.9), _result(1, 3.0, 0.6)], 0.95)
    assert "does not rise steadily" in bumpy
    with pytest.raises(ValueError, match="no private run"):
        privacy.tradeoff_verdict([_result(0, math.inf, 0.9)], 0.95)
