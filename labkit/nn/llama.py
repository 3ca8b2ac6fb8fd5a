"""A modern decoder (Llama layout) from scratch: RoPE, RMSNorm, SwiGLU, grouped-query attention, a KV cache.

What changed since GPT-2 (``transformer.GPT``), one class or function each, read top to bottom:

* positions: no table of learned vectors; queries and keys are **rotated** by an angle proportional to
  their position (RoPE), so attention scores depend on the distance between tokens;
* normalisation: ``RMSNorm`` (no mean subtraction, no bias), before each sub-layer (pre-norm);
* feed-forward: ``SwiGLU``, a gated MLP with three matrices instead of two;
* attention: **grouped-query** -- fewer key/value heads than query heads, each shared by a group;
* generation: a ``KVCache`` keeps the keys and values of the past, so each new token costs one position.

``Llama.from_hf`` copies a Hugging Face ``LlamaForCausalLM`` (or ``Qwen2ForCausalLM``: the same model
plus biases on q, k, v) into these modules and reproduces its logits to float precision.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..check import number, positive, whole_number
from .sampling import next_token
from .transformer import _NO_PRUNING, HFOptions, RMSNorm, untied_head_check


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@dataclass
class LlamaConfig:
    vocab_size: int
    max_len: int = 256              # context length: the longest sequence (prompt + generated) the model takes
    d_model: int = 64
    n_heads: int = 4                # query heads
    n_kv_heads: int | None = None   # key/value heads: None -> n_heads (multi-head); 1 -> multi-query; else grouped
    n_layers: int = 2
    d_ff: int | None = None         # SwiGLU hidden width; None -> 8/3 * d_model rounded up to a multiple of 32
    rope_theta: float = 10000.0     # RoPE base: the slowest pair turns by position / theta^((d_head-2)/d_head)
    norm_eps: float = 1e-6
    qkv_bias: bool = False          # Qwen2: biases on the q, k, v projections (Llama has none)
    tie_weights: bool = False       # LM head shares the token-embedding matrix (Llama 1-3: no)

    def __post_init__(self):
        for name in ("vocab_size", "max_len", "d_model", "n_heads", "n_layers"):
            whole_number(name, getattr(self, name), minimum=1)
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads must divide d_model={self.d_model} (one of {_divisors(self.d_model)}); "
                             f"got {self.n_heads}")
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        whole_number("n_kv_heads", self.n_kv_heads, minimum=1, maximum=self.n_heads)
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_kv_heads must divide n_heads={self.n_heads} (one of {_divisors(self.n_heads)}); "
                             f"got {self.n_kv_heads}")
        if self.head_dim % 2:
            raise ValueError(f"d_model / n_heads must be even for RoPE (it rotates pairs); got {self.head_dim}")
        if self.d_ff is None:
            self.d_ff = math.ceil(8 * self.d_model / 3 / 32) * 32
        whole_number("d_ff", self.d_ff, minimum=1)
        positive("rope_theta", self.rope_theta)
        positive("norm_eps", self.norm_eps)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


def _rope(c) -> dict:
    """RoPE settings: transformers >= 5 keeps them in rope_parameters; 4.x in rope_theta and rope_scaling."""
    rope = getattr(c, "rope_parameters", None)
    if not rope:
        scaling = getattr(c, "rope_scaling", None) or {}
        rope = {"rope_type": scaling.get("rope_type", scaling.get("type", "default")), "rope_theta": c.rope_theta}
    return rope


def _full_attention_only(v, c) -> bool:
    return v is None or all(kind == "full_attention" for kind in v)


LLAMA_OPTIONS = HFOptions(
    "Llama.from_hf", ("llama", "qwen2"),
    implemented=frozenset({"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                           "num_attention_heads", "num_key_value_heads", "max_position_embeddings", "rms_norm_eps",
                           "rope_theta", "tie_word_embeddings"}),
    # pretraining_tp (4.x) only split the matrix products into slices: the same numbers. sliding_window and
    # max_window_layers matter only for the layers layer_types / use_sliding_window make sliding (refused).
    harmless=frozenset({"attention_dropout", "pretraining_tp", "sliding_window", "max_window_layers"}),
    refused={"hidden_act": ("hidden_act='silu' (SwiGLU)", lambda v, c: v in ("silu", "swish")),
             "rope_parameters": ("rope_type='default' with only rope_theta set (no scaling, every dimension rotated)",
                                 lambda v, c: not v or (v.get("rope_type", "default") == "default"
                                                        and set(v) <= {"rope_type", "rope_theta"})),
             "rope_scaling": ("rope_scaling=None", lambda v, c: hasattr(c, "rope_parameters") or not v),   # 4.x
             "head_dim": ("head_dim = hidden_size / num_attention_heads",
                          lambda v, c: v in (None, c.hidden_size // c.num_attention_heads)),
             "attention_bias": ("attention_bias=False (Qwen2's q, k, v biases come with model_type='qwen2')",
                                lambda v, c: v is False),
             "mlp_bias": ("mlp_bias=False", lambda v, c: v is False),
             "use_sliding_window": ("use_sliding_window=False: every layer attends to the whole past",
                                    lambda v, c: v is False),
             "layer_types": ("full attention in every layer", _full_attention_only),
             **_NO_PRUNING})


def llama_config_from_hf(c) -> LlamaConfig:
    """The LlamaConfig of a Hugging Face ``LlamaConfig`` or ``Qwen2Config`` (refusing what this file lacks)."""
    LLAMA_OPTIONS.check(c)
    return LlamaConfig(vocab_size=c.vocab_size, max_len=c.max_position_embeddings, d_model=c.hidden_size,
                       n_heads=c.num_attention_heads, n_kv_heads=c.num_key_value_heads, n_layers=c.num_hidden_layers,
                       d_ff=c.intermediate_size, rope_theta=_rope(c)["rope_theta"], norm_eps=c.rms_norm_eps,
                       qkv_bias=c.model_type == "qwen2", tie_weights=bool(c.tie_word_embeddings))


# ---------------------------------------------------------------- RoPE: rotary position embeddings
def rope_angles(max_len: int, head_dim: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotation angles, each (max_len, head_dim).

    Dimension pair i (i = 0 .. head_dim/2 - 1) turns at frequency theta^(-2i/head_dim): the first pairs
    spin fast (they see nearby order), the last ones slowly (they see long distances). Position p turns
    pair i by the angle p * frequency_i.
    """
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)   # (head_dim/2,)
    angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)              # (max_len, head_dim/2)
    angles = torch.cat([angles, angles], dim=-1)      # pair i = dimensions (i, i + head_dim/2), as in HF Llama
    return angles.cos(), angles.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension: a 90-degree turn of every pair."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair of x (B, heads, T, head_dim) by its position's angle; cos, sin are (T, head_dim).

    q_m . k_n then depends on m - n only: relative position, with no position table to outgrow.
    """
    return x * cos + rotate_half(x) * sin


# ---------------------------------------------------------------- SwiGLU feed-forward
class SwiGLU(nn.Module):
    """down( SiLU(gate(x)) * up(x) ): a gated MLP (Shazeer 2020), three bias-free matrices.

    GPT-2's MLP is down(GELU(up(x))) with d_ff = 4 d; SwiGLU's gate multiplies each hidden unit by a
    learned, input-dependent amount. With d_ff = 8/3 d its parameter count matches the 4d MLP.
    """

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.gate = nn.Linear(d_model, d_ff, bias=False)
        self.up = nn.Linear(d_model, d_ff, bias=False)
        self.down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x):                                      # x: (B, T, d_model)
        return self.down(F.silu(self.gate(x)) * self.up(x))   # (B, T, d_ff) -> (B, T, d_model)


# ---------------------------------------------------------------- the KV cache
class KVCache:
    """The keys and values of every layer for the tokens seen so far, written in place.

    Preallocated for ``capacity`` positions: keys and values are each (n_layers, B, n_kv_heads,
    capacity, head_dim). ``length`` counts the positions filled. Memory: 2 * n_layers * B * n_kv_heads
    * capacity * head_dim numbers, so n_kv_heads < n_heads (GQA) shrinks it by n_heads / n_kv_heads
    (``labkit.sizing.kv_cache_bytes`` computes it from a Hugging Face config).
    """

    def __init__(self, cfg: LlamaConfig, batch: int, capacity: int | None = None, *,
                 device=None, dtype=torch.float32):
        capacity = cfg.max_len if capacity is None else whole_number("capacity", capacity, minimum=1,
                                                                     maximum=cfg.max_len)
        shape = (cfg.n_layers, batch, cfg.n_kv_heads, capacity, cfg.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.capacity, self.length = capacity, 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new k, v (B, n_kv_heads, T, head_dim) after the past; return all keys and values so far."""
        start, end = self.length, self.length + k.size(2)
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]      # (B, n_kv_heads, end, head_dim)

    @property
    def nbytes(self) -> int:
        return self.k.nbytes + self.v.nbytes


# ---------------------------------------------------------------- grouped-query attention
def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, n_kv_heads, T, d) -> (B, n_kv_heads * n_rep, T, d): each key/value head serves n_rep query heads."""
    return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=1)


class GroupedQueryAttention(nn.Module):
    """Causal self-attention with n_heads query heads and n_kv_heads key/value heads, RoPE on q and k.

    Query head h reads key/value head h // (n_heads / n_kv_heads). n_kv_heads = n_heads is ordinary
    multi-head attention; n_kv_heads = 1 is multi-query attention.
    """

    def __init__(self, cfg: LlamaConfig, layer: int):
        super().__init__()
        self.layer, self.n_heads, self.n_kv_heads, self.d_head = layer, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.q = nn.Linear(cfg.d_model, cfg.n_heads * cfg.head_dim, bias=cfg.qkv_bias)
        self.k = nn.Linear(cfg.d_model, cfg.n_kv_heads * cfg.head_dim, bias=cfg.qkv_bias)
        self.v = nn.Linear(cfg.d_model, cfg.n_kv_heads * cfg.head_dim, bias=cfg.qkv_bias)
        self.o = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.d_model, bias=False)

    def forward(self, x, cos, sin, cache: KVCache | None = None):
        """x (B, T, d_model); cos, sin (T, head_dim) for the T new positions -> (B, T, d_model)."""
        B, T, _ = x.shape
        q = self.q(x).view(B, T, self.n_heads, self.d_head).transpose(1, 2)      # (B, n_heads, T, d_head)
        k = self.k(x).view(B, T, self.n_kv_heads, self.d_head).transpose(1, 2)   # (B, n_kv_heads, T, d_head)
        v = self.v(x).view(B, T, self.n_kv_heads, self.d_head).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        past = 0
        if cache is not None:
            past = cache.length
            k, v = cache.update(self.layer, k, v)                                # (B, n_kv_heads, past+T, d_head)
        n_rep = self.n_heads // self.n_kv_heads
        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)                          # (B, n_heads, past+T, d_head)
        if T == 1:      # one new token: it may see every cached position
            y = F.scaled_dot_product_attention(q, k, v)
        elif past == 0:  # a whole prompt: the usual causal mask
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:            # new query i sits at position past + i and sees keys 0 .. past + i
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o(y.transpose(1, 2).reshape(B, T, self.n_heads * self.d_head))


# ---------------------------------------------------------------- the block and the model
class LlamaBlock(nn.Module):
    """Pre-norm block:  x = x + Attn(RMSNorm(x));  x = x + SwiGLU(RMSNorm(x))."""

    def __init__(self, cfg: LlamaConfig, layer: int):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = GroupedQueryAttention(cfg, layer)
        self.mlp_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = SwiGLU(cfg.d_model, cfg.d_ff)

    def forward(self, x, cos, sin, cache=None):
        x = x + self.attn(self.attn_norm(x), cos, sin, cache)
        return x + self.mlp(self.mlp_norm(x))


class Llama(nn.Module):
    """Decoder-only Transformer, Llama layout: token embedding -> pre-norm blocks -> RMSNorm -> LM head.

    There is no position table: positions enter only through the rotation of q and k (``rope_angles``
    is precomputed for max_len positions).
    """

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(LlamaBlock(cfg, i) for i in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        cos, sin = rope_angles(cfg.max_len, cfg.head_dim, cfg.rope_theta)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for name, p in self.named_parameters():       # N(0, 0.02) matrices, zero biases (as HF initialises)
            if p.dim() >= 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        if cfg.tie_weights:
            self.lm_head.weight = self.tok.weight

    def forward(self, idx, cache: KVCache | None = None, last_only: bool = False):
        """idx (B, T) new token ids -> logits (B, T, vocab_size) (or (B, 1, vocab_size) with last_only).

        With a cache, idx continues the cached sequence: its tokens sit at positions cache.length ... + T - 1.
        """
        if idx.dim() != 2:
            raise ValueError(f"input ids must have shape (batch, seq_len); got {tuple(idx.shape)}")
        start = 0 if cache is None else cache.length
        end = start + idx.size(1)
        if end > self.cfg.max_len:
            raise ValueError(f"sequence length {end} exceeds max_len={self.cfg.max_len} (the context length)")
        if cache is not None and end > cache.capacity:
            raise ValueError(f"sequence length {end} exceeds the cache's capacity={cache.capacity}")
        cos, sin = self.cos[start:end], self.sin[start:end]
        x = self.tok(idx)                                      # (B, T, d_model)
        for block in self.blocks:
            x = block(x, cos, sin, cache)
        if cache is not None:
            cache.length = end
        if last_only:
            x = x[:, -1:]
        return self.lm_head(self.norm(x))

    @torch.inference_mode()
    def generate(self, idx, max_new_tokens: int, *, use_cache: bool = True, greedy: bool = False,
                 temperature: float = 1.0, top_k: int | None = None, generator: torch.Generator | None = None):
        """Append max_new_tokens tokens to idx (B, T), one at a time.

        Without the cache every step runs the whole sequence again (step t costs T + t positions); with it,
        the prompt runs once (prefill) and every later step runs one new position against the cached keys.
        """
        _check_generation(self.cfg, idx, max_new_tokens, temperature, top_k)
        cache = KVCache(self.cfg, idx.size(0), idx.size(1) + max_new_tokens, device=idx.device,
                        dtype=self.tok.weight.dtype) if use_cache else None
        new = idx                                             # what the model has not seen yet
        for _ in range(max_new_tokens):
            logits = self(new if use_cache else idx, cache, last_only=True)[:, -1]     # (B, vocab_size)
            nxt = next_token(logits, greedy=greedy, temperature=temperature, top_k=top_k, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
            new = nxt
        return idx

    @classmethod
    def from_hf(cls, hf_model) -> "Llama":
        """Copy a Hugging Face ``LlamaForCausalLM`` / ``Qwen2ForCausalLM`` into a Llama with identical logits."""
        cfg = llama_config_from_hf(hf_model.config)
        model = cls(cfg)
        sd = hf_model.state_dict()
        untied_head_check("Llama.from_hf", sd, "lm_head.weight", "model.embed_tokens.weight", cfg.tie_weights)
        new = {"tok.weight": sd["model.embed_tokens.weight"], "norm.weight": sd["model.norm.weight"],
               "lm_head.weight": sd.get("lm_head.weight", sd["model.embed_tokens.weight"])}
        names = {"input_layernorm": "attn_norm", "post_attention_layernorm": "mlp_norm",
                 "self_attn.q_proj": "attn.q", "self_attn.k_proj": "attn.k", "self_attn.v_proj": "attn.v",
                 "self_attn.o_proj": "attn.o", "mlp.gate_proj": "mlp.gate", "mlp.up_proj": "mlp.up",
                 "mlp.down_proj": "mlp.down"}
        for i in range(cfg.n_layers):
            for theirs, ours in names.items():
                for t in ("weight", "bias"):
                    if f"model.layers.{i}.{theirs}.{t}" in sd:
                        new[f"blocks.{i}.{ours}.{t}"] = sd[f"model.layers.{i}.{theirs}.{t}"]
        model.load_state_dict(new, strict=True)
        return model


def _check_generation(cfg: LlamaConfig, idx, max_new_tokens, temperature, top_k) -> None:
    T = idx.size(-1)
    if idx.dim() != 2 or T > cfg.max_len:
        raise ValueError(f"the prompt must be (batch, length) with length <= max_len={cfg.max_len} (the context "
                         f"length); got {tuple(idx.shape)}")
    whole_number(f"max_new_tokens (after a {T}-token prompt, with max_len={cfg.max_len})", max_new_tokens,
                 minimum=0, maximum=cfg.max_len - T)
    number("temperature", temperature, minimum=0, open_low=True)
    whole_number("top_k", top_k, minimum=1, allow_none=True)


# ---------------------------------------------------------------- measuring generation
def generation_speed(runs: dict, new_tokens: int, repeats: int = 3) -> tuple[dict, dict]:
    """Tokens/s of each generation run (a callable returning the ids), timed in interleaved rounds.

    One warm-up round, then ``repeats`` rounds of a, b, c, a, b, c, ...: background load on a shared
    machine hits every run alike, so ratios are best taken round by round. Returns
    ({name: [tokens/s, one per round]}, {name: the ids of its last run}).
    """
    whole_number("repeats", repeats, minimum=1)
    speeds, outputs = {name: [] for name in runs}, {}
    with torch.no_grad():
        for fn in runs.values():
            fn()
        for _ in range(repeats):
            for name, fn in runs.items():
                t0 = time.perf_counter()
                outputs[name] = fn()
                speeds[name].append(new_tokens / (time.perf_counter() - t0))
    return speeds, outputs


def speed_ratio(speeds: dict, a: str, b: str) -> tuple[float, float, float]:
    """Run a's speed over run b's, round by round: (lowest, median, highest) over the rounds."""
    ratios = sorted(x / y for x, y in zip(speeds[a], speeds[b]))
    return ratios[0], statistics.median(ratios), ratios[-1]
