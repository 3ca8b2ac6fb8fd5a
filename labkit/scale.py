"""Back-of-the-envelope sizes of a Transformer: parameters, training FLOPs, training memory.

Every count here is exact for labkit's GPT / BertEncoder (and Hugging Face's GPT-2 / BERT, which
share their layouts); the FLOP and memory figures are the standard approximations:

* training compute  C ≈ 6 · N · D   (N parameters, D training tokens: 2ND forward, 4ND backward)
* training memory   weights + gradients + optimizer state (+ activations, which depend on batch and length)
"""
from __future__ import annotations

from .check import one_of
from .nn.transformer import TransformerConfig


def block_params(cfg: TransformerConfig) -> int:
    """One Transformer block: attention (W_Q, W_K, W_V, W_O + biases), feed-forward, two LayerNorms."""
    d, f = cfg.d_model, cfg.d_ff
    attention = 4 * d * d + 4 * d
    feed_forward = d * f + f + f * d + d
    norms = 2 * 2 * d
    return attention + feed_forward + norms


def param_count(cfg: TransformerConfig, kind: str = "gpt", pooler: bool = False) -> int:
    """Parameters of labkit's ``GPT`` (kind="gpt", tied LM head) or ``BertEncoder`` (kind="bert").

    ``pooler=True`` adds BERT's pooler (d_model^2 + d_model), which Hugging Face's BertModel carries.
    """
    one_of("kind", kind, ("gpt", "bert"))
    d = cfg.d_model
    embeddings = cfg.vocab_size * d + cfg.max_len * d * (cfg.positional == "learned")
    if kind == "gpt":
        head = 0 if cfg.tie_weights else cfg.vocab_size * d
        return embeddings + cfg.n_layers * block_params(cfg) + 2 * d + head      # + final LayerNorm
    embeddings += cfg.type_vocab_size * d + 2 * d                                 # segments + LayerNorm
    return embeddings + cfg.n_layers * block_params(cfg) + (d * d + d) * pooler


def training_flops(n_params: float, n_tokens: float) -> float:
    """C ≈ 6 N D: each parameter does a multiply-add (2 FLOPs) per token forward and twice that backward."""
    return 6.0 * n_params * n_tokens


def attention_flops_per_token(cfg: TransformerConfig, seq_len: int) -> float:
    """Forward FLOPs per token that 6ND leaves out: QK^T and weights·V, 2 · 2 · n_layers · seq_len · d_model."""
    return 4.0 * cfg.n_layers * seq_len * cfg.d_model


def training_memory(n_params: float, *, weight_bytes: int = 4, grad_bytes: int = 4,
                    optimizer: str = "adamw", master_copy: bool = False) -> dict:
    """Bytes for weights, gradients and optimizer state (activations not included).

    AdamW keeps two fp32 moments per parameter (8 bytes); SGD with momentum one (4); plain SGD none.
    Mixed precision (bf16 weights and grads, ``weight_bytes=grad_bytes=2``) usually keeps an fp32
    master copy of the weights too (``master_copy=True``, 4 more bytes per parameter).
    """
    state = {"adamw": 8, "adam": 8, "sgd_momentum": 4, "sgd": 0}
    one_of("optimizer", optimizer, state)
    out = {"weights": n_params * weight_bytes, "gradients": n_params * grad_bytes,
           "optimizer": n_params * state[optimizer], "master_weights": n_params * 4 * master_copy}
    out["total"] = sum(out.values())
    return out


def gib(n_bytes: float) -> float:
    return n_bytes / 2**30
