"""Scaled dot-product attention, written out, and multi-head attention built on it.

Conventions (the same as ``torch.nn.functional.scaled_dot_product_attention``):
``q`` is (..., T_q, d), ``k`` and ``v`` are (..., T_k, d); a boolean ``mask`` broadcastable to
(..., T_q, T_k) is True where a query MAY attend to a key. ``causal=True`` adds the
lower-triangular mask (query i sees keys 0..i).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..check import whole_number


def causal_mask(t_q: int, t_k: int | None = None, device=None) -> torch.Tensor:
    """(T_q, T_k) boolean lower-triangular mask: True where key position <= query position."""
    t_k = t_q if t_k is None else t_k
    return torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril()  # row i: True for columns 0..i


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Turn a tokenizer's (B, T) 0/1 ``attention_mask`` into a (B, 1, 1, T) boolean key mask."""
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must have shape (batch, seq_len); got {tuple(attention_mask.shape)}")
    # (B, 1, 1, T) broadcasts over heads and query positions: a padding KEY is hidden from every query.
    # (A padding query still gets an output; nothing downstream should read it.)
    return attention_mask.bool()[:, None, None, :]


def _combined_mask(mask, causal, t_q, t_k, device):
    """The key mask and the causal mask together: a key is visible only if both allow it."""
    if causal:
        c = causal_mask(t_q, t_k, device=device)
        mask = c if mask is None else (mask.bool() & c)
    return mask


def attention_weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None,
                      causal: bool = False) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) with masked positions removed; each row sums to 1."""
    # q·k sums d products: with unit-variance entries its variance is d. Dividing by sqrt(d) keeps the
    # scores near unit variance at any width, so the softmax does not saturate into a one-hot whose
    # gradient vanishes (Vaswani et al. 2017, §3.2.1).
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))           # (..., T_q, d) @ (..., d, T_k)
    mask = _combined_mask(mask, causal, q.size(-2), k.size(-2), q.device)
    if mask is not None:
        # a large negative number rather than -inf: a row with nothing to attend to stays finite
        scores = scores.masked_fill(~mask.bool(), torch.finfo(scores.dtype).min)
    return scores.softmax(dim=-1)  # over the keys: row i is how query i spreads its attention


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V -- a weighted sum of the VALUE vectors."""
    return attention_weights(q, k, mask, causal) @ v


def attention_loop(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                   mask: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
    """The same computation, one query position at a time (the article's loop), for comparison.

    For each position i: score every key j, normalise the scores with a softmax, and
    return the weighted sum of the value vectors v_j. T_q small matrix-vector steps
    instead of one matrix product: same numbers, much slower (chapter 3.2 times both).
    """
    t_q, t_k, d = q.size(-2), k.size(-2), q.size(-1)
    mask = _combined_mask(mask, causal, t_q, t_k, q.device)
    if mask is not None:
        mask = mask.bool().expand(*q.shape[:-2], t_q, t_k)
    outputs = []
    for i in range(t_q):
        scores = (q[..., i:i + 1, :] * k).sum(-1) / math.sqrt(d)          # (..., T_k)
        if mask is not None:
            scores = scores.masked_fill(~mask[..., i, :], torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=-1)                                   # (..., T_k)
        outputs.append((weights.unsqueeze(-1) * v).sum(-2))               # (..., d_v)
    return torch.stack(outputs, dim=-2)


def sinusoidal_positions(max_len: int, d: int) -> torch.Tensor:
    """The fixed encodings of "Attention Is All You Need": PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(.)."""
    if d % 2:  # sin and cos come in pairs
        raise ValueError(f"d must be even for sinusoidal positions; got {d}")
    pos = torch.arange(max_len, dtype=torch.float32)[:, None]                          # (max_len, 1)
    # 1 / 10000^(2i/d) written as exp(-ln(10000) 2i/d): wavelengths from 2π to 10000·2π, one per pair
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, d, 2, dtype=torch.float32) / d)  # (d/2,)
    pe = torch.zeros(max_len, d)
    pe[:, 0::2] = torch.sin(pos * freq)   # (max_len, d/2) by broadcasting, into the even columns
    pe[:, 1::2] = torch.cos(pos * freq)   # and the odd ones: PE[p + k] is a rotation of PE[p]
    return pe


class MultiHeadAttention(nn.Module):
    """n_heads attentions in parallel, each on its own d_model/n_heads slice, then one output projection.

    ``qkv`` is one Linear(d_model, 3*d_model) holding W_Q, W_K, W_V stacked (the layout of
    ``nn.MultiheadAttention.in_proj_weight``); ``proj`` is W_O.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        whole_number("n_heads", n_heads)
        if d_model % n_heads:  # each head gets an equal slice of the width
            raise ValueError(f"n_heads ({n_heads}) must divide d_model ({d_model})")
        self.n_heads, self.d_head, self.dropout = n_heads, d_model // n_heads, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)  # W_Q, W_K, W_V in one matrix product
        self.proj = nn.Linear(d_model, d_model, bias=bias)     # W_O: mixes what the heads found

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False,
                need_weights: bool = False):
        """x: (B, T, d_model); mask: boolean, broadcastable to (B, n_heads, T, T).

        Returns the output (B, T, d_model), or (output, weights (B, n_heads, T, T)) if need_weights.
        """
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=-1)                      # each (B, T, C)
        # (B, T, C) -> (B, T, n_heads, d_head) -> (B, n_heads, T, d_head): the heads become a batch
        # dimension, so one batched matrix product runs every head at once, each on its own slice
        q, k, v = (t.view(B, T, self.n_heads, self.d_head).transpose(1, 2) for t in (q, k, v))
        p = self.dropout if self.training else 0.0                  # dropout on the weights, in training only
        if need_weights:
            w = attention_weights(q, k, mask, causal)               # (B, n_heads, T, T)
            y = F.dropout(w, p) @ v                                 # (B, n_heads, T, d_head)
        else:  # fast path: PyTorch's fused kernel, same numbers, never stores the (T, T) weights
            w = None
            if mask is not None:  # additive float mask: a fully masked row stays finite, as above
                mask = _combined_mask(mask, causal, T, T, x.device)
                mask, causal = torch.zeros(mask.shape, dtype=q.dtype, device=x.device).masked_fill(
                    ~mask.bool(), torch.finfo(q.dtype).min), False
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal)
        # (B, n_heads, T, d_head) -> (B, T, n_heads, d_head) -> (B, T, C): the heads side by side again
        # (reshape copies, since the transpose left the memory non-contiguous)
        y = y.transpose(1, 2).reshape(B, T, C)
        y = self.proj(y)
        return (y, w) if need_weights else y
