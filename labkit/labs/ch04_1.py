"""Chapter 4.1's verdict and exercises: which loss wins which metric in the denoising experiment, the binary
cross-entropy of a constant prediction, where the gradient of MSE on a sigmoid peaks, and SSIM's luminance term.

:func:`metric_verdicts` words the comparison of the two denoisers from their per-image test scores, so the
sentence changes when the numbers do. Every expected answer of :func:`exercises` is computed from the
chapter's objects or from :mod:`labkit.losses`, never typed in; ``tests/test_ch04.py`` checks that each
refuses the usual wrong answers.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import losses
from ..exercises import Exercise

__all__ = ["HIGHER_IS_BETTER", "per_image_scores", "metric_verdicts", "constant_prediction_bce", "exercises"]

HIGHER_IS_BETTER = {"MSE": False, "SSIM": True}   # the two test metrics of the denoising experiment


@torch.no_grad()
def per_image_scores(model: torch.nn.Module, noisy: torch.Tensor, clean: torch.Tensor,
                     window: dict) -> dict[str, np.ndarray]:
    """Test MSE and SSIM of ``model``'s output for every image (two arrays of length N)."""
    was = model.training
    model.eval()
    pred = model(noisy)
    model.train(was)
    return {"MSE": ((pred - clean) ** 2).flatten(1).mean(1).cpu().numpy(),
            "SSIM": losses.ssim(pred, clean, reduction="none", **window).cpu().numpy()}


def metric_verdicts(scores: dict[str, dict[str, np.ndarray]], trained_for: dict[str, str], *,
                    baseline: dict[str, float] | None = None, clear: float = 0.6) -> list[str]:
    """One line per metric (which model is better, by how much, on what share of the images), then the verdict.

    ``scores``: model name -> metric -> per-image values (the same images for both models);
    ``trained_for``: model name -> the metric its loss optimises; ``baseline``: metric -> the score of doing
    nothing (the noisy input), so a line can say whether each model improves on it at all. A model that is
    better on fewer than ``clear`` of the images (paired) wins only narrowly.
    """
    models = list(scores)
    if len(models) != 2 or set(trained_for) != set(models):
        raise ValueError(f"scores and trained_for must name the same two models; got {models} and {list(trained_for)}")
    lines, winners, narrow = [], {}, []
    for metric, higher in HIGHER_IS_BETTER.items():
        means = {m: float(np.mean(scores[m][metric])) for m in models}
        best = (max if higher else min)(means, key=means.get)
        other = next(m for m in models if m != best)
        a, b = np.asarray(scores[best][metric]), np.asarray(scores[other][metric])
        share = float(np.mean(a > b if higher else a < b))
        if share < clear:
            narrow.append(metric)
        winners[metric] = best
        lines.append(f"test {metric} ({'higher' if higher else 'lower'} is better): the model trained with {best} "
                     f"is {'narrowly' if share < clear else 'clearly'} better, {means[best]:.4f} against "
                     f"{means[other]:.4f}, and better on {share:.0%} of the {len(a)} test images")
    own = all(trained_for[w] == metric for metric, w in winners.items())
    if own:
        verdict = "each model is better on the metric it was trained for"
    elif len(set(winners.values())) == 1:
        w = next(iter(winners.values()))
        loser = next(m for m in models if m != w)
        verdict = (f"the model trained with {w} is better on both metrics; training with {loser} did not even win "
                   f"{trained_for[loser]}")
    else:
        verdict = "each model is better on the metric the other one was trained for"
    how = (f" (narrowly on {', '.join(narrow)}: a win on fewer than {clear:.0%} of the images is close to a tie)"
           if narrow else " (clearly on both)")
    if baseline is not None:
        for m in models:
            better = [metric for metric, higher in HIGHER_IS_BETTER.items()
                      if (np.mean(scores[m][metric]) > baseline[metric]) == higher]
            what = " and ".join(better) if better else "neither metric"
            lines.append(f"the model trained with {m} improves on the noisy input in {what}"
                         + ("" if len(better) == len(HIGHER_IS_BETTER) else " (it has not learned to denoise yet)"))
    return lines + [f"Verdict: {verdict}{how}."]


# ----------------------------------------------------------------------------- exercises
def constant_prediction_bce(labels: torch.Tensor, p: float) -> float:
    """The mean binary cross-entropy of a model that predicts probability ``p`` for every example."""
    labels = torch.as_tensor(labels, dtype=torch.float64)
    logit = torch.full_like(labels, float(np.log(p / (1 - p))))
    return losses.binary_cross_entropy_with_logits(logit, labels).item()


def _constant_ssim(window: dict, dark: float, bright: float) -> float:
    """SSIM of two constant images (values ``dark`` and ``bright``), as labkit.losses.ssim computes it."""
    size = window.get("window_size", 11)
    x, y = torch.full((1, 1, size, size), dark, dtype=torch.float64), torch.full((1, 1, size, size), bright,
                                                                                 dtype=torch.float64)
    return losses.ssim(x, y, **window).item()


def exercises(labels: torch.Tensor, zs: torch.Tensor, mse_gradient: torch.Tensor, window: dict, *, p: float = 0.9,
              dark: float = 0.02, bright: float = 0.04) -> dict[str, Exercise]:
    """Three questions on the chapter's objects.

    ``labels``: a batch of 0/1 labels (4.1.1; ``p`` is the constant prediction); ``zs`` and ``mse_gradient``:
    the notebook's grid of logits and |∂/∂z (σ(z) − 1)²| on it (4.1.2); ``window``: the SSIM settings of the
    denoising experiment (4.1.3, with two constant images of values ``dark`` and ``bright``).
    """
    labels, zs, g = labels.detach().cpu(), zs.detach().cpu(), mse_gradient.detach().cpu()
    spacing = float((zs[1] - zs[0]).abs())
    return {
        "4.1.1": Exercise(
            "4.1.1", f"A model predicts ŷ = {p:g} for every one of the {len(labels)} examples of "
            f"`batch_labels[:{len(labels)}]` (the labels of the batch-size cell). What is its binary cross-entropy, "
            "averaged as the book defines it?",
            expected=lambda: constant_prediction_bce(labels, p), rel=1e-4,
            hint="count the positive and the negative labels first; each kind of label contributes its own term, "
                 "with the natural logarithm",
            explain="The article's one-term sum would count only the positives and grow with the batch; the "
                    "negatives, which this model gets badly wrong, carry most of the loss."),
        "4.1.2": Exercise(
            "4.1.2", "For a positive example (y = 1), at which logit z is the gradient of MSE on a sigmoid, "
            "|∂/∂z (σ(z) − 1)²|, the largest?",
            expected=lambda: float(zs[int(g.argmax())]), abs_tol=spacing / 2 + 1e-9,
            hint="write the gradient as a function of s = σ(z), find the s where it peaks (set the derivative in s "
                 "to 0), then turn s back into a logit; or read the peak of the orange curve",
            explain="The peak is at σ(z) = 1/3, z = −ln 2: a model that is a little wrong learns fastest, and a "
                    "confidently wrong one (z → −∞) hardly learns at all. Cross-entropy's gradient |σ(z) − 1| "
                    "instead grows toward 1 as the model gets more wrong."),
        "4.1.3": Exercise(
            "4.1.3", f"Two constant images: every pixel of x is {dark:g}, every pixel of y is {bright:g} (a dark "
            f"patch and one twice as bright; L = {window.get('data_range', 1.0):g}). What is SSIM(x, y)?",
            expected=lambda: _constant_ssim(window, dark, bright), rel=1e-3,
            hint="in a constant image every variance and covariance is 0: which factor of the formula is left, and "
                 "what do the constants C1 and C2 do then?",
            explain=f"Only the luminance term (2μxμy + C1)/(μx² + μy² + C1) is left; without C1 it would be "
                    f"{2 * dark * bright / (dark ** 2 + bright ** 2):.4g}, and 0/0 for two black images: C1 keeps the "
                    "ratio stable where both means are near 0."),
    }
