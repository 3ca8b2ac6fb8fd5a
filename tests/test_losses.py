"""labkit.losses matches torch.nn.functional, and SSIM matches scikit-image."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import correlate2d

from labkit import losses

torch.manual_seed(0)


def test_mse_matches_torch():
    a, b = torch.randn(7, 3, dtype=torch.float64), torch.randn(7, 3, dtype=torch.float64)
    for red in ("mean", "sum", "none"):
        torch.testing.assert_close(losses.mse(a, b, red), F.mse_loss(a, b, reduction=red))


def test_bce_with_logits_matches_torch_including_extreme_logits():
    z = torch.tensor([-800.0, -30.0, -1.0, 0.0, 0.5, 30.0, 800.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    ours = losses.binary_cross_entropy_with_logits(z, y)
    ref = F.binary_cross_entropy_with_logits(z, y)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=0)
    assert torch.isfinite(ours)
    (g,) = torch.autograd.grad(ours, z)
    torch.testing.assert_close(g, (torch.sigmoid(z) - y).detach() / len(y), rtol=1e-12, atol=1e-300)
    for red in ("sum", "none"):
        torch.testing.assert_close(losses.binary_cross_entropy_with_logits(z, y, red),
                                   F.binary_cross_entropy_with_logits(z, y, reduction=red))


def test_cross_entropy_matches_torch_and_is_stable():
    z = torch.randn(16, 5, dtype=torch.float64) * 4
    z[0, 2] = 1e4  # a huge logit: a naive softmax would overflow
    z = z.requires_grad_()
    y = torch.randint(0, 5, (16,))
    ours, ref = losses.cross_entropy(z, y), F.cross_entropy(z, y)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=0)
    (g,) = torch.autograd.grad(ours, z)
    torch.testing.assert_close(g, (torch.softmax(z, 1) - F.one_hot(y, 5)).detach() / 16)
    torch.testing.assert_close(losses.cross_entropy(z, y, "none"), F.cross_entropy(z, y, reduction="none"))


def test_ssim_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 32, 40))
    y = np.clip(x + 0.2 * rng.standard_normal(x.shape), 0, 1)
    ours = losses.ssim(torch.tensor(x), torch.tensor(y), data_range=1.0, reduction="none").numpy()
    ref = [metrics.structural_similarity(x[i], y[i], data_range=1.0, channel_axis=0, gaussian_weights=True,
                                         sigma=1.5, use_sample_covariance=False) for i in range(2)]
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    # 8-bit range: C1, C2 scale with L
    ours255 = losses.ssim(torch.tensor(x * 255), torch.tensor(y * 255), data_range=255.0, reduction="none")
    np.testing.assert_allclose(ours255.numpy(), ref, atol=1e-4)


def reference_ssim(x, y, L, w, sigma):
    """SSIM of one 2-D image by the formula, with scipy's 'valid' correlation (independent of torch)."""
    r = np.arange(w) - (w - 1) / 2
    g = np.exp(-r ** 2 / (2 * sigma ** 2))
    k = np.outer(g, g) / np.outer(g, g).sum()
    f = lambda a: correlate2d(a, k, mode="valid")
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx ** 2, f(y * y) - my ** 2, f(x * y) - mx * my
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    return np.mean((2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))


@pytest.mark.parametrize("w, sigma", [(11, 1.5), (7, 1.0), (3, 0.8)])
def test_ssim_matches_numpy_reference_for_small_windows(w, sigma):
    rng = np.random.default_rng(1)
    x, y = rng.random((8, 12)), rng.random((8, 12))
    if w > 8:
        with pytest.raises(ValueError, match="window_size"):
            losses.ssim(torch.tensor(x)[None, None], torch.tensor(y)[None, None], window_size=w, sigma=sigma)
        return
    ours = losses.ssim(torch.tensor(x)[None, None], torch.tensor(y)[None, None], 1.0, w, sigma).item()
    assert abs(ours - reference_ssim(x, y, 1.0, w, sigma)) < 1e-10


def test_ssim_is_one_for_identical_images_and_lower_otherwise():
    x = torch.rand(3, 1, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(losses.ssim(x, x.clone()), torch.tensor(1.0, dtype=torch.float64))
    assert losses.ssim(x, x + 0.1 * torch.randn_like(x)) < 0.99


def test_one_minus_ssim_is_a_trainable_loss():
    target = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    pred = torch.zeros_like(target, requires_grad=True)
    loss = 1 - losses.ssim(pred, target)
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


@pytest.mark.parametrize("call, name", [
    (lambda: losses.mse(torch.zeros(3), torch.zeros(4)), "pred"),
    (lambda: losses.mse(torch.zeros(3), torch.zeros(3), reduction="avg"), "reduction"),
    (lambda: losses.binary_cross_entropy_with_logits(torch.zeros(3, 1), torch.zeros(3)), "logits"),
    (lambda: losses.cross_entropy(torch.zeros(3, 4), torch.zeros(3)), "target"),
    (lambda: losses.cross_entropy(torch.zeros(3, 4), torch.tensor([0, 1, 4])), "target"),
    (lambda: losses.cross_entropy(torch.zeros(3, 4), torch.tensor([0, 1])), "target"),
    (lambda: losses.cross_entropy(torch.zeros(4), torch.tensor([0])), "logits"),
    (lambda: losses.ssim(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 15)), "x and y"),
    (lambda: losses.ssim(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16), data_range=0), "data_range"),
    (lambda: losses.ssim(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16), data_range=-1.0), "data_range"),
    (lambda: losses.ssim(torch.zeros(16, 16), torch.zeros(16, 16)), "x and y"),
    (lambda: losses.ssim(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16), window_size=4), "window_size"),
    (lambda: losses.ssim(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16), sigma=0), "sigma"),
])
def test_bad_input_is_refused(call, name):
    with pytest.raises(ValueError, match=name):
        call()
