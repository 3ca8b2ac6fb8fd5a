"""Chapter 6.2's exercises: IoU by hand, the size of a linear probe, EfficientNet's last feature map, the VAE's KL term.

Every expected answer comes from running code: labkit's :func:`~labkit.vision.box_iou`, a head built
the way the chapter builds it, the shape the real network produces (read with a forward hook), and
``torch.distributions.kl_divergence``. The checks of the two code exercises run the learner's
function on cases chosen so that the usual mistakes fail (boxes apart on both axes, sizes that are
not multiples of 32, a non-zero mean).
"""
from __future__ import annotations

import torch
from torch import nn

from ..exercises import Exercise
from ..vision import box_iou

__all__ = ["IOU_CASES", "MAP_SIZES", "lite0_map_side", "probe_parameters", "exercises"]

# (box a, box b) as (x1, y1, x2, y2): overlapping, apart on both axes, touching, nested, equal, partly shifted
IOU_CASES = (
    ((0, 0, 2, 2), (1, 0, 3, 2)),
    ((0, 0, 1, 1), (2, 3, 4, 5)),
    ((0, 0, 2, 2), (2, 0, 4, 2)),
    ((0, 0, 4, 4), (1, 1, 2, 2)),
    ((1, 2, 3, 5), (1, 2, 3, 5)),
    ((0.5, 0.5, 3.0, 2.0), (1.0, 0.0, 2.5, 4.0)),
)
MAP_SIZES = (8, 30, 64, 100, 224)   # input sides; most are not multiples of 32


def _iou_ok(fn) -> bool:
    for a, b in IOU_CASES:
        expected = float(box_iou(torch.tensor([a], dtype=torch.float64), torch.tensor([b], dtype=torch.float64)))
        if abs(float(fn(a, b)) - expected) > 1e-6:
            return False
    return True


@torch.no_grad()
def lite0_map_side(model: nn.Module, size: int) -> int:
    """The side of the feature map that EfficientNet-Lite0 pools, for a size x size input (measured with a hook)."""
    seen = []
    hook = model._conv_head.register_forward_hook(lambda module, inputs, output: seen.append(output.shape[-1]))
    try:
        model.features(torch.zeros(1, 3, size, size))
    finally:
        hook.remove()
    return int(seen[0])


def probe_parameters(width: int, n_classes: int) -> int:
    """The numbers a linear head on ``width`` features for ``n_classes`` classes trains (built, then counted)."""
    return sum(p.numel() for p in nn.Linear(width, n_classes).parameters())


def _map_ok(fn, model) -> bool:
    return all(int(fn(size)) == lite0_map_side(model, size) for size in MAP_SIZES)


def _kl_ok(fn) -> bool:
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(q, p).sum(-1)          # (5,): one KL per row
    answer = torch.as_tensor(fn(mu, logvar), dtype=expected.dtype)
    return answer.shape == expected.shape and torch.allclose(answer, expected, atol=1e-5)


def exercises(model: nn.Module, width: int = 1280, n_classes: int = 10) -> dict[str, Exercise]:
    """The chapter's exercises; ``model`` is an EfficientNet-Lite0 (its feature maps are measured)."""
    return {
        "6.2.1": Exercise(
            "6.2.1", "Write iou(a, b) for two boxes given as (x1, y1, x2, y2).", check_fn=_iou_ok,
            hint="Build the overlap box from the inner edges. What should its width be when the boxes do not "
                 "meet, and what happens to a product of two negative numbers?",
            explain="Clamping each side of the overlap at 0 is what keeps boxes that are apart on both axes at IoU 0."),
        "6.2.2": Exercise(
            "6.2.2", f"How many numbers does a linear probe on {width} pooled features train for {n_classes} classes?",
            expected=lambda: probe_parameters(width, n_classes),
            hint="A linear layer has a weight for every (feature, class) pair, and one more number per class.",
            explain=f"The backbone's {sum(p.numel() for p in model.parameters()):,} weights stay frozen."),
        "6.2.3": Exercise(
            "6.2.3", "Write map_side(size): the side of the feature map EfficientNet-Lite0 pools, for a size x size "
                     "input.", check_fn=lambda fn: _map_ok(fn, model),
            hint="Count the stride-2 steps in the block table and the stem. TensorFlow's 'SAME' padding keeps a "
                 "partial window at the edge: does each halving round down or up?",
            explain="An 8 x 8 digit becomes a single position after the stem and four stages: the network sees "
                    "almost no spatial layout unless the digit is upsampled."),
        "6.2.4": Exercise(
            "6.2.4", "Write kl(mu, logvar): KL(N(mu, exp(logvar)) || N(0, 1)), summed over the latent dimensions, "
                     "one value per row.", check_fn=_kl_ok,
            hint="Write the two log-densities, take the expectation under the first Gaussian, and remember that "
                 "the variance is the exponential of logvar, not logvar itself.",
            explain="This is the term of the ELBO that keeps the codes close to the prior, so that decoding a "
                    "code drawn from N(0, I) gives a digit."),
    }
