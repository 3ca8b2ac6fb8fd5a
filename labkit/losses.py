"""Loss functions from scratch, for chapter 4 (matched to ``torch.nn.functional`` in the tests).

    mse(pred, target)                                   mean of squared errors
    binary_cross_entropy_with_logits(z, y)              BCE from logits, never from probabilities
    cross_entropy(logits, target)                       K-class CE from logits and integer labels
    ssim(x, y, data_range=1.0)                          structural similarity (higher is better, max 1)
    1 - ssim(x, y, ...)                                 ... and the loss built from it

Cross-entropy is computed from logits with the log-sum-exp trick, so a huge or tiny
logit never turns into ``log(0)``. SSIM is the windowed form of Wang et al. (2004):
statistics under an 11x11 Gaussian window (sigma 1.5), one SSIM value per window
position that fits inside the image, averaged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .check import positive, whole_number

__all__ = ["mse", "binary_cross_entropy_with_logits", "cross_entropy", "gaussian_window", "ssim_map", "ssim"]

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be one of {', '.join(_REDUCTIONS)}; got {reduction!r}")


def _same_shape(a: torch.Tensor, b: torch.Tensor, a_name: str, b_name: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{a_name} and {b_name} must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}")


def mse(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error: (1/n) sum_i (y_i - y_hat_i)^2."""
    _same_shape(pred, target, "pred", "target")
    return _reduce((pred - target) ** 2, reduction)


def binary_cross_entropy_with_logits(logits: torch.Tensor, target: torch.Tensor,
                                     reduction: str = "mean") -> torch.Tensor:
    """-(1/n) sum [y log sigma(z) + (1-y) log(1 - sigma(z))], computed stably from the logit z.

    Rewritten as max(z, 0) - z*y + log(1 + exp(-|z|)): no exp of a large positive
    number, no log of 0. Its gradient with respect to z is sigma(z) - y.
    """
    _same_shape(logits, target, "logits", "target")
    target = target.to(logits.dtype)
    relu = (logits + logits.abs()) / 2  # = max(z, 0), with autograd's slope 1/2 at z = 0 (not 1)
    loss = relu - logits * target + torch.log1p(torch.exp(-logits.abs()))
    return _reduce(loss, reduction)


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """-(1/n) sum_i log softmax(z_i)[y_i] for logits (n, K) and integer labels (n,).

    log softmax(z)_k = z_k - logsumexp(z), and logsumexp(z) = m + log sum exp(z - m)
    with m = max(z), so every exponent is <= 0. The gradient is softmax(z) - onehot(y).
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (n, K); got {tuple(logits.shape)}")
    if target.dim() != 1 or target.shape[0] != logits.shape[0]:
        raise ValueError(f"target must have shape ({logits.shape[0]},) to match logits; got {tuple(target.shape)}")
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise ValueError(f"target must hold integer class indices; got dtype {target.dtype}")
    k = logits.shape[1]
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= k):
        raise ValueError(f"target values must be in [0, {k - 1}]; got {int(target.min())}..{int(target.max())}")
    m = logits.max(dim=1, keepdim=True).values.detach()
    logsumexp = m.squeeze(1) + torch.log(torch.exp(logits - m).sum(dim=1))
    picked = logits.gather(1, target.long().unsqueeze(1)).squeeze(1)
    return _reduce(logsumexp - picked, reduction)


# ----------------------------------------------------------------------------- SSIM
def gaussian_window(window_size: int = 11, sigma: float = 1.5, *, dtype=torch.float32,
                    device=None) -> torch.Tensor:
    """A (window_size, window_size) Gaussian window that sums to 1."""
    if whole_number("window_size", window_size) % 2 == 0:  # odd: the window has a centre pixel
        raise ValueError(f"window_size must be an odd positive integer; got {window_size!r}")
    positive("sigma", sigma)
    r = torch.arange(window_size, dtype=torch.float64, device=device) - (window_size - 1) / 2
    g = torch.exp(-0.5 * (r / sigma) ** 2)
    g = g / g.sum()
    return torch.outer(g, g).to(dtype)


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window_size: int = 11,
             sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """SSIM at every window position that fits inside the image: (N, C, H-w+1, W-w+1).

    mu, sigma^2 and sigma_xy are Gaussian-weighted local statistics (population
    covariance), C1 = (k1 L)^2 and C2 = (k2 L)^2 with L = data_range.
    """
    _same_shape(x, y, "x", "y")
    if x.dim() != 4:
        raise ValueError(f"x and y must be image batches of shape (N, C, H, W); got {tuple(x.shape)}")
    positive("data_range (the span of pixel values, e.g. 1.0 or 255)", data_range)
    h, w = x.shape[-2:]
    whole_number(f"window_size (for {h}x{w} images)", window_size, maximum=min(h, w))
    if not x.dtype.is_floating_point:
        x, y = x.float(), y.float()
    y = y.to(x.dtype)
    c = x.shape[1]
    win = gaussian_window(window_size, sigma, dtype=x.dtype, device=x.device).expand(c, 1, -1, -1)

    def blur(t):  # the Gaussian-weighted local mean, channel by channel, 'valid' positions only
        return F.conv2d(t, win, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov_xy = blur(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window_size: int = 11,
         sigma: float = 1.5, reduction: str = "mean") -> torch.Tensor:
    """Mean SSIM of two image batches (N, C, H, W); ``reduction="none"`` gives one value per image.

    A similarity, not a loss: 1 for identical images, lower when they differ.
    Train with ``1 - ssim(pred, target)``.
    """
    per_image = ssim_map(x, y, data_range, window_size, sigma).flatten(1).mean(dim=1)
    return _reduce(per_image, reduction)
