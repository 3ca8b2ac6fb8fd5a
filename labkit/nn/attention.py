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


def causal_mask(t_q: int, t_k: int | None = None, device=None) -> torch.Tensor:
    """(T_q, T_k) boolean lower-triangular mask: True where key position <= query position."""
    t_k = t_q if t_k is None else t_k
    return torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril()


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Turn a tokenizer's (B, T) 0/1 ``attention_mask`` into a (B, 1, 1, T) boolean key mask."""
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must have shape (batch, seq_len); got {tuple(attention_mask.shape)}")
    return attention_mask.bool()[:, None, None, :]


def _combined_mask(mask, causal, t_q, t_k, device):
    if causal:
        c = causal_mask(t_q, t_k, device=device)
        mask = c if mask is None else (mask.bool() & c)
    return mask


def attention_weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None,
                      causal: bool = False) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) with masked positions removed; each row sums to 1."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))           # (..., T_q, T_k)
    mask = _combined_mask(mask, causal, q.size(-2), k.size(-2), q.device)
    if mask is not None:
        # a large negative number rather than -inf: a row with nothing to attend to stays finite
        scores = scores.masked_fill(~mask.bool(), torch.finfo(scores.dtype).min)
    return scores.softmax(dim=-1)


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V -- a weighted sum of the VALUE vectors."""
    return attention_weights(q, k, mask, causal) @ v


def attention_loop(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                   mask: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
    """The same computation, one query position at a time (the article's loop), for comparison.

    For each position i: score every key j, normalise the scores with a softmax, and
    return the weighted sum of the value vectors v_j.
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
    if d % 2:
        raise ValueError(f"d must be even for sinusoidal positions; got {d}")
    pos = torch.arange(max_len, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, d, 2, dtype=torch.float32) / d)
    pe = torch.zeros(max_len, d)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


class MultiHeadAttention(nn.Module):
    """n_heads attentions in parallel, each on its own d_model/n_heads slice, then one output projection.

    ``qkv`` is one Linear(d_model, 3*d_model) holding W_Q, W_K, W_V stacked (the layout of
    ``nn.MultiheadAttention.in_proj_weight``); ``proj`` is W_O.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if n_heads < 1 or d_model % n_heads:
            raise ValueError(f"n_heads ({n_heads}) must divide d_model ({d_model})")
        self.n_heads, self.d_head, self.dropout = n_heads, d_model // n_heads, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False,
                need_weights: bool = False):
        """x: (B, T, d_model); mask: boolean, broadcastable to (B, n_heads, T, T).

        Returns the output (B, T, d_model), or (output, weights (B, n_heads, T, T)) if need_weights.
        """
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=-1)
        # (B, T, C) -> (B, n_heads, T, d_head)
        q, k, v = (t.view(B, T, self.n_heads, self.d_head).transpose(1, 2) for t in (q, k, v))
        p = self.dropout if self.training else 0.0
        if need_weights:
            w = attention_weights(q, k, mask, causal)
            y = F.dropout(w, p) @ v
        else:  # fast path: PyTorch's fused kernel, same numbers
            w = None
            if mask is not None:  # additive float mask: a fully masked row stays finite, as above
                mask = _combined_mask(mask, causal, T, T, x.device)
                mask, causal = torch.zeros(mask.shape, dtype=q.dtype, device=x.device).masked_fill(
                    ~mask.bool(), torch.finfo(q.dtype).min), False
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal)
        y = y.transpose(1, 2).reshape(B, T, C)                      # heads side by side again
        y = self.proj(y)
        return (y, w) if need_weights else y
