"""Weight-only quantisation from scratch (int8, int4, NF4) and the memory arithmetic of LoRA and QLoRA.

Chapter 7.2c (:mod:`labkit.export`) runs PyTorch's own *dynamic* int8 path, which quantises the
activations too and multiplies in integers. This module does the simpler thing most large-model
quantisation does first: store the **weights** in few bits and turn them back into floats right before
each matrix product (weight-only quantisation; the arithmetic stays in float).

**Absmax quantisation** (symmetric, no zero point) of a row or a group of g numbers w with b bits:

    s = max |w| / (2^(b-1) - 1),   q = round(w / s) ∈ {-(2^(b-1)-1), ..., 2^(b-1)-1},   ŵ = s·q

One scale per output row is *per channel*; one per group of ``group_size`` consecutive inputs of a row
is *per group* (finer, so an outlier spoils fewer numbers). Every ŵ is within s/2 of w.

**NF4** (NormalFloat4, Dettmers, Pagnoni, Holtzman & Zettlemoyer, "QLoRA: Efficient Finetuning of
Quantized LLMs", NeurIPS 2023, arXiv:2305.14314): 16 levels placed at quantiles of a normal
distribution, scaled to [-1, 1], with an exact 0 (:func:`nf4_levels`, built as bitsandbytes builds
them); each group is divided by its absmax and every number replaced by the nearest level. Trained
weights are roughly normal, so equal-probability levels waste fewer codes than int4's equal steps.

Storage (:class:`QuantizedLinear`): 8-bit codes as int8, 4-bit codes packed two per byte (uint8), the
scales in float32 (one per row or group: 32/g bits per weight on top), the bias in float32.

**QLoRA memory** (:func:`qlora_memory`): a 4-bit NF4 base (0.5 bytes a weight), its quantisation
constants (0.5 bits a weight with one float32 absmax per 64; 0.127 bits with *double quantisation*:
8-bit absmax per 64, one float32 per 256 of those), the embeddings, norms and LM head in bf16, and
LoRA adapters on every linear layer of every block (the paper's choice) in bf16 with bf16 gradients
and float32 AdamW moments (12 bytes an adapter parameter). The paper's *paged optimisers* move
optimizer state to CPU memory when the GPU runs out: that avoids out-of-memory spikes but does not
shrink the total, so it is not counted as a saving. Activations are not counted (they grow with
batch and sequence length; gradient checkpointing trades them for compute).
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from . import sizing
from .check import one_of, whole_number

__all__ = ["SCHEMES", "nf4_levels", "absmax_quantize", "dequantize", "nf4_quantize", "nf4_dequantize",
           "pack_int4", "unpack_int4", "QuantizedLinear", "quantize_linears", "weight_error", "llama_linears",
           "qlora_memory", "lora_memory_table", "quantization_verdict"]

SCHEMES = ("int8", "int4", "nf4")


def nf4_levels() -> torch.Tensor:
    """The 16 NF4 levels in [-1, 1]: 8 positive quantiles of N(0, 1) and 7 negative ones, with 0 shared, each
    side normalised to its largest (bitsandbytes' ``create_normal_map(offset=0.9677083)``)."""
    import numpy as np
    from scipy.stats import norm
    offset = 0.9677083
    pos = norm.ppf(np.linspace(offset, 0.5, 9)[:-1]).tolist()
    neg = (-norm.ppf(np.linspace(offset, 0.5, 8)[:-1])).tolist()
    v = torch.tensor(sorted(pos + [0.0] + neg), dtype=torch.float64)
    return (v / v.abs().max()).float()


def _groups(w: torch.Tensor, group_size: int | None) -> torch.Tensor:
    """(out, in) -> (out, n_groups, g); group_size None: one group per row."""
    if w.ndim != 2:
        raise ValueError(f"w must be a 2-d weight matrix (out, in); got shape {tuple(w.shape)}")
    g = w.shape[1] if group_size is None else whole_number("group_size", group_size)
    if w.shape[1] % g:
        raise ValueError(f"group_size ({g}) must divide the number of inputs ({w.shape[1]})")
    return w.reshape(w.shape[0], w.shape[1] // g, g)


def absmax_quantize(w: torch.Tensor, bits: int = 8, group_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes int8 of shape w, scales (out, n_groups)) by symmetric absmax per row (or per group)."""
    whole_number("bits", bits, minimum=2, maximum=8)
    qmax = 2 ** (bits - 1) - 1
    grouped = _groups(w.detach().float(), group_size)
    scale = grouped.abs().amax(-1) / qmax
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)        # an all-zero group: any scale works
    q = torch.round(grouped / scale[..., None]).clamp(-qmax, qmax).to(torch.int8)
    return q.reshape(w.shape), scale


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """ŵ = s·q, with s per row or per group (the group size follows from the shapes)."""
    out, n_in = q.shape
    return (q.float().reshape(out, scale.shape[1], -1) * scale[..., None]).reshape(out, n_in)


def nf4_quantize(w: torch.Tensor, group_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes 0..15 as int8 of shape w, absmax per group (out, n_groups)): each number replaced by the nearest
    NF4 level after dividing its group by the group's absmax."""
    grouped = _groups(w.detach().float(), group_size)
    absmax = grouped.abs().amax(-1)
    absmax = torch.where(absmax == 0, torch.ones_like(absmax), absmax)
    levels = nf4_levels()
    midpoints = (levels[1:] + levels[:-1]) / 2           # the nearest level: which pair of midpoints x falls between
    codes = torch.bucketize(grouped / absmax[..., None], midpoints).to(torch.int8)
    return codes.reshape(w.shape), absmax


def nf4_dequantize(codes: torch.Tensor, absmax: torch.Tensor) -> torch.Tensor:
    return dequantize(nf4_levels()[codes.long()], absmax)


def pack_int4(codes: torch.Tensor, offset: int) -> torch.Tensor:
    """Two 4-bit codes per byte: (code + offset) of even columns in the low nibble, odd columns in the high one."""
    if codes.shape[-1] % 2:
        raise ValueError(f"the number of columns must be even to pack two codes a byte; got {codes.shape[-1]}")
    u = (codes.to(torch.int16) + offset).to(torch.uint8)
    return u[..., 0::2] | (u[..., 1::2] << 4)


def unpack_int4(packed: torch.Tensor, offset: int) -> torch.Tensor:
    low, high = (packed & 0x0F).to(torch.int16) - offset, (packed >> 4).to(torch.int16) - offset
    return torch.stack([low, high], dim=-1).reshape(*packed.shape[:-1], 2 * packed.shape[-1]).to(torch.int8)


class QuantizedLinear(nn.Module):
    """A Linear whose weight is stored as int8 / packed int4 / packed NF4 codes plus scales; ``forward``
    dequantises the weight and runs ``F.linear`` in float32 (weight-only quantisation)."""

    def __init__(self, linear: nn.Linear, scheme: str = "int8", group_size: int | None = None):
        super().__init__()
        one_of("scheme", scheme, SCHEMES)
        if scheme == "nf4" and group_size is None:
            group_size = 64
        self.scheme, self.group_size = scheme, group_size
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach()
        if scheme == "nf4":
            codes, scale = nf4_quantize(w, group_size)
            codes = pack_int4(codes, 0)
        else:
            codes, scale = absmax_quantize(w, 8 if scheme == "int8" else 4, group_size)
            if scheme == "int4":
                codes = pack_int4(codes, 8)
        self.register_buffer("codes", codes)
        self.register_buffer("scale", scale.float())
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    def weight_hat(self) -> torch.Tensor:
        """The float32 weight the codes stand for."""
        if self.scheme == "int8":
            return dequantize(self.codes, self.scale)
        if self.scheme == "int4":
            return dequantize(unpack_int4(self.codes, 8), self.scale)
        return nf4_dequantize(unpack_int4(self.codes, 0), self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight_hat(), self.bias)

    def extra_repr(self) -> str:
        return (f"in={self.in_features}, out={self.out_features}, scheme={self.scheme}, "
                f"group_size={self.group_size or 'row'}")


def quantize_linears(model: nn.Module, scheme: str = "int8", group_size: int | None = None,
                     skip: tuple[str, ...] = ("head",)) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` (except those whose name starts with one of ``skip``)
    replaced by a :class:`QuantizedLinear`."""
    one_of("scheme", scheme, SCHEMES)
    q = copy.deepcopy(model).cpu().eval()
    targets = [(name, m) for name, m in q.named_modules() if isinstance(m, nn.Linear)
               and not any(name == s or name.startswith(s + ".") for s in skip)]
    if not targets:
        raise ValueError("model has no nn.Linear layer to quantise (outside skip)")
    for name, m in targets:
        parent, _, child = name.rpartition(".")
        setattr(q.get_submodule(parent) if parent else q, child, QuantizedLinear(m, scheme, group_size))
    return q


def weight_error(model: nn.Module, quantized: nn.Module) -> dict[str, float]:
    """Max |w - ŵ| over all quantised weights, and the relative error ‖W - Ŵ‖ / ‖W‖ over them all."""
    ref = dict(model.named_modules())
    worst, diff2, norm2, n = 0.0, 0.0, 0.0, 0
    for name, m in quantized.named_modules():
        if isinstance(m, QuantizedLinear):
            w = ref[name].weight.detach().float().cpu()
            d = w - m.weight_hat()
            worst = max(worst, float(d.abs().max()))
            diff2, norm2, n = diff2 + float((d ** 2).sum()), norm2 + float((w ** 2).sum()), n + w.numel()
    if n == 0:
        raise ValueError("quantized holds no QuantizedLinear layer")
    return {"max |w - ŵ|": worst, "relative error": math.sqrt(diff2 / norm2), "quantised weights": n}


# ----------------------------------------------------------------------------- memory arithmetic
def llama_linears(config) -> list[tuple[int, int]]:
    """(d_in, d_out) of every linear layer of one Llama-style block: q, k, v, o, gate, up, down."""
    d, f = config.hidden_size, config.intermediate_size
    head = getattr(config, "head_dim", None) or d // config.num_attention_heads
    kv = config.num_key_value_heads * head
    return [(d, config.num_attention_heads * head), (d, kv), (d, kv), (config.num_attention_heads * head, d),
            (d, f), (d, f), (f, d)]


def qlora_memory(config, r: int = 64, block: int = 64, double_quant: bool = True) -> dict[str, float]:
    """Bytes of QLoRA fine-tuning for a Llama-style config (assumptions: the module docstring)."""
    whole_number("r (the LoRA rank)", r)
    whole_number("block", block)
    if getattr(config, "model_type", None) != "llama":
        raise ValueError(f"qlora_memory counts Llama-style blocks; got model_type={getattr(config, 'model_type', None)!r}")
    layers = config.num_hidden_layers
    linear = layers * sum(i * o for i, o in llama_linears(config))
    other = sizing.param_count(config) - linear                      # embeddings, norms, LM head: bf16
    adapters = layers * sum(r * (i + o) for i, o in llama_linears(config))
    const_bits = (8 / block + 32 / (block * 256)) if double_quant else 32 / block
    return {"parameters": sizing.param_count(config), "4-bit weights": linear * 0.5,
            "quantisation constants": linear * const_bits / 8, "bf16 embeddings, norms, head": other * 2,
            "LoRA parameters": adapters, "adapters + gradients + AdamW (12 B each)": adapters * 12,
            "total": linear * 0.5 + linear * const_bits / 8 + other * 2 + adapters * 12,
            "constant bits per weight": const_bits}


def lora_memory_table(configs: dict[str, object], r_lora: int = sizing.LORA_RANK, r_qlora: int = 64):
    """GB (10^9 bytes) per model: bf16 inference, full fine-tuning (16 B a parameter), LoRA on a bf16 base
    (:func:`labkit.sizing.memory`), and QLoRA (:func:`qlora_memory`). Weights and optimizer state only."""
    import pandas as pd
    rows = {}
    for name, cfg in configs.items():
        m, q = sizing.memory(cfg, "bf16", r=r_lora), qlora_memory(cfg, r=r_qlora)
        rows[name] = {"parameters (B)": m["parameters"] / 1e9, "inference bf16": m["inference"] / 1e9,
                      "full fine-tuning (AdamW, mixed bf16)": m["full fine-tuning"] / 1e9,
                      f"LoRA r={r_lora} q,v (bf16 base)": m["LoRA"] / 1e9,
                      f"QLoRA r={r_qlora} all linear (NF4 base)": q["total"] / 1e9}
    return pd.DataFrame(rows).T


def quantization_verdict(name: str, size_ratio: float, mean_cos: float, acc_drop_points: float, *,
                         min_cos: float = 0.99, max_drop_points: float = 1.0) -> str:
    """A quantised encoder against fp32: size, sentence-vector cosine and classifier accuracy, worded."""
    cos = (f"mean cosine to the fp32 sentence vectors {mean_cos:.4f} "
           f"({'>=' if mean_cos >= min_cos else '<'} {min_cos:g}: "
           f"{'the vectors barely move' if mean_cos >= min_cos else 'the vectors move noticeably'})")
    lost = "lost" if acc_drop_points >= 0 else "gained"
    acc = (f"{abs(acc_drop_points):.1f} accuracy points {lost} "
           f"({'within' if acc_drop_points <= max_drop_points else 'MORE than'} {max_drop_points:g})")
    return f"{name}: {size_ratio:.2f}x smaller than fp32; {cos}; {acc}."
