"""Integrated Gradients from scratch, per-token attributions of a text classifier, and attention beside them.

Integrated Gradients (Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017,
arXiv:1703.01365) explains one output F(x) against a *baseline* x' (an input that means "nothing": here
the [PAD] embedding in place of every word, [CLS] and [SEP] kept):

    IG_i(x) = (x_i - x'_i) · ∫_0^1 ∂F(x' + α (x - x')) / ∂x_i dα

The integral is a sum over ``n_steps`` points α_k with weights w_k (:func:`path_rule`: the Riemann midpoint
rule, or Gauss-Legendre, captum's default). **Completeness**, the axiom that makes IG an explanation of
the number itself: Σ_i IG_i = F(x) - F(x'), up to the error of the sum (:func:`completeness_gap`).

For text the input is discrete, so the path runs through the **token embeddings**: a forward hook
replaces the output of the embedding table by the interpolated vectors (:func:`token_attributions`),
and a token's attribution is the sum over its embedding dimensions. Parity: ``tests/test_attribution.py``
checks both functions against captum's ``IntegratedGradients`` and ``LayerIntegratedGradients`` on the
same models to 1e-4.

Attention is not attribution (Jain & Wallace, "Attention is not Explanation", NAACL 2019,
arXiv:1902.10186): :func:`attention_received` reads, from :func:`labkit.attention_maps.attention_for`,
how much weight each token gets in the last layer (averaged over heads and over the queries, since the
classifier averages all token vectors); :func:`agreement` measures whether the two rank the tokens
alike (Kendall's τ) and whether they name the same top token.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from .attention_maps import attention_for
from .check import one_of, whole_number

__all__ = ["METHODS", "path_rule", "integrated_gradients", "completeness_gap", "token_attributions",
           "attention_received", "merge_subwords", "agreement", "completeness_verdict", "parity_verdict", "agreement_verdict"]

METHODS = ("riemann_middle", "gausslegendre")


def path_rule(n_steps: int, method: str = "riemann_middle") -> tuple[torch.Tensor, torch.Tensor]:
    """(alphas, weights) of the sum that stands for the integral over α in [0, 1]; the weights sum to 1."""
    whole_number("n_steps", n_steps, minimum=2)
    one_of("method", method, METHODS)
    if method == "riemann_middle":
        alphas = (torch.arange(n_steps, dtype=torch.float64) + 0.5) / n_steps
        weights = torch.full((n_steps,), 1 / n_steps, dtype=torch.float64)
    else:
        nodes, w = np.polynomial.legendre.leggauss(n_steps)
        alphas, weights = torch.from_numpy(0.5 * (1 + nodes)), torch.from_numpy(0.5 * w)
    return alphas.float(), weights.float()


def integrated_gradients(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, baseline: torch.Tensor, *,
                         n_steps: int = 50, method: str = "riemann_middle") -> torch.Tensor:
    """IG of the scalar ``f`` (a batch of inputs shaped like ``x`` -> one number per input) at ``x`` against
    ``baseline``: a tensor shaped like ``x``. All ``n_steps`` points go through ``f`` as one batch."""
    if x.shape != baseline.shape:
        raise ValueError(f"baseline must have the shape of x {tuple(x.shape)}; got {tuple(baseline.shape)}")
    alphas, weights = path_rule(n_steps, method)
    shape = (-1,) + (1,) * x.dim()
    path = (baseline.unsqueeze(0) + alphas.view(shape) * (x - baseline).unsqueeze(0)).detach().requires_grad_(True)
    out = f(path)
    if out.shape != (n_steps,):
        raise ValueError(f"f must return one number per input of the batch, shape ({n_steps},); got {tuple(out.shape)}")
    grads, = torch.autograd.grad(out.sum(), path)
    return (x - baseline) * (weights.view(shape) * grads).sum(0)


def completeness_gap(attributions: torch.Tensor, f_x: float, f_baseline: float) -> float:
    """Σ attributions - (F(x) - F(baseline)): 0 for exact Integrated Gradients."""
    return float(attributions.sum()) - (float(f_x) - float(f_baseline))


def token_attributions(model: nn.Module, embedding: nn.Embedding, input_ids: torch.Tensor,
                       attention_mask: torch.Tensor, target: int, baseline_ids: torch.Tensor, *, n_steps: int = 50,
                       method: str = "riemann_middle") -> dict:
    """IG of logit ``target`` of ``model(input_ids, attention_mask)`` (one sentence, shape (1, T)) through the
    output of ``embedding``, against the embeddings of ``baseline_ids``.

    Returns {"tokens": (T,) attribution per token (summed over the embedding), "full": (T, d),
    "f_x": F(x), "f_baseline": F(x'), "gap": the completeness gap}.
    """
    if input_ids.dim() != 2 or input_ids.size(0) != 1 or baseline_ids.shape != input_ids.shape:
        raise ValueError(f"input_ids and baseline_ids must both have shape (1, T); got {tuple(input_ids.shape)} "
                         f"and {tuple(baseline_ids.shape)}")
    model.eval()
    with torch.no_grad():
        e_x, e_b = embedding(input_ids)[0], embedding(baseline_ids)[0]        # (T, d)
    state = {}

    def substitute(module, inputs, output):
        return state["path"] if "path" in state else output

    def f(path: torch.Tensor) -> torch.Tensor:                                 # (n, T, d) -> (n,)
        state["path"] = path
        n = path.size(0)
        return model(input_ids.expand(n, -1), attention_mask.expand(n, -1))[:, target]

    hook = embedding.register_forward_hook(substitute)
    try:
        full = integrated_gradients(f, e_x, e_b, n_steps=n_steps, method=method)
        with torch.no_grad():
            f_x, f_b = (float(f(e.unsqueeze(0))[0]) for e in (e_x, e_b))
    finally:
        hook.remove()
    return {"tokens": full.sum(-1).detach(), "full": full.detach(), "f_x": f_x, "f_baseline": f_b,
            "gap": completeness_gap(full, f_x, f_b)}


def attention_received(encoder, tokenizer, sentence: str, layer: int = -1) -> tuple[list[str], torch.Tensor]:
    """(tokens, (T,) weight each token receives in ``layer``, averaged over its heads and over all queries);
    ``encoder`` is a :class:`labkit.nn.BertEncoder`. The weights of a row sum to 1, so these sum to 1 too."""
    tokens, maps = attention_for(encoder, tokenizer, sentence)
    return tokens, maps[layer].mean(0).mean(0)


def merge_subwords(tokens: list[str], values: torch.Tensor) -> tuple[list[str], torch.Tensor]:
    """WordPiece pieces ("fl", "##im", "##sy") joined into words ("flimsy"), their values summed: both IG
    attributions and attention weights add up over the pieces of a word."""
    if len(tokens) != len(values):
        raise ValueError(f"tokens and values must have the same length; got {len(tokens)} and {len(values)}")
    words, sums = [], []
    for t, v in zip(tokens, values.tolist()):
        if t.startswith("##") and words:
            words[-1] += t[2:]
            sums[-1] += v
        else:
            words.append(t)
            sums.append(v)
    return words, torch.tensor(sums)


def agreement(attention: torch.Tensor, attributions: torch.Tensor, tokens: list[str],
              skip: tuple[str, ...] = ("[CLS]", "[SEP]")) -> dict:
    """Kendall's τ between attention and |attribution| over the tokens not in ``skip``, the top token of each,
    and whether the top tokens differ."""
    from scipy.stats import kendalltau
    if not len(attention) == len(attributions) == len(tokens):
        raise ValueError(f"attention, attributions and tokens must have one entry per token; got "
                         f"{len(attention)}, {len(attributions)}, {len(tokens)}")
    keep = [i for i, t in enumerate(tokens) if t not in skip]
    if len(keep) < 2:
        raise ValueError("need at least two tokens outside skip to compare rankings")
    a, g = attention[keep].numpy(), attributions[keep].abs().numpy()
    tau = float(kendalltau(a, g).statistic)
    top_att, top_ig = tokens[keep[int(a.argmax())]], tokens[keep[int(g.argmax())]]
    return {"kendall tau": tau, "top by attention": top_att, "top by IG": top_ig,
            "top tokens differ": int(a.argmax()) != int(g.argmax())}


def completeness_verdict(gap: float, f_x: float, f_baseline: float, tol: float = 0.05) -> str:
    """Is Σ IG within ``tol`` (relative to |F(x) - F(x')|) of F(x) - F(x')?"""
    span = abs(f_x - f_baseline)
    rel = abs(gap) / span if span > 0 else abs(gap)
    return (f"completeness: Σ attributions = {gap + f_x - f_baseline:.4f}, F(x) - F(baseline) = "
            f"{f_x - f_baseline:.4f} (gap {gap:+.2e}, {100 * rel:.2f}% of it): "
            + ("the attributions account for the output, within the error of the sum."
               if rel <= tol else f"MORE than {100 * tol:g}% off: use more steps."))


def parity_verdict(max_diff: float, tol: float = 1e-4, what: str = "Integrated Gradients") -> str:
    return (f"{what}, from scratch against captum on the same model: max |difference| {max_diff:.1e} "
            + (f"<= {tol:g}: the same attributions." if max_diff <= tol else f"> {tol:g}: they DIFFER."))


def agreement_verdict(rows: list[dict]) -> str:
    """Over several sentences: median Kendall τ and how often attention's top token is not IG's."""
    if not rows:
        raise ValueError("rows is empty: compare at least one sentence")
    taus = sorted(r["kendall tau"] for r in rows)
    median = float(np.median(taus))
    differ = sum(r["top tokens differ"] for r in rows)
    strength = ("weak" if abs(median) < 0.3 else "moderate" if abs(median) < 0.6 else "strong")
    return (f"over {len(rows)} sentences: median Kendall τ between attention and |IG| {median:+.2f} ({strength} "
            f"agreement; 1 = same ranking, 0 = unrelated); the top token differs in {differ} of {len(rows)}: "
            + ("attention weights are not a stand-in for attributions here."
               if differ > len(rows) / 2 or abs(median) < 0.3 else
               "here attention mostly points at the tokens IG credits, which is not guaranteed in general."))
