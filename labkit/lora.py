"""LoRA: low-rank adaptation of a frozen linear layer (Hu et al., arXiv:2106.09685).

A pretrained weight ``W`` (out x in) stays frozen; the layer learns a low-rank
update ``ΔW = (alpha / r) · B A`` with ``A`` (r x in) and ``B`` (out x r)::

    h = W x + b + (alpha / r) · B (A dropout(x))

``A`` starts Kaiming-uniform (as in ``nn.Linear`` and in ``peft``), ``B`` starts
at zero, so at initialisation the wrapped model computes exactly what the base
model computes. After training, :func:`merge_lora` folds ``ΔW`` into ``W``: the
merged model is a plain network with no extra inference cost.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .check import positive, probability, whole_number
from .nn.parameters import replace_linears

__all__ = ["LoRALinear", "inject_lora", "merge_lora", "unmerge_lora", "lora_state_dict", "lora_layers"]


class LoRALinear(nn.Module):
    """``base(x) + scale · B(A(dropout(x)))``, with ``base`` frozen and ``scale = alpha / r``."""

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be an nn.Linear; got {type(base).__name__}")
        whole_number("r (the LoRA rank)", r, minimum=1)
        positive("alpha (the LoRA scale numerator)", alpha)
        probability("dropout", dropout, open_high=True)
        # scale = alpha / r (Hu et al. §4.1): with Adam, alpha acts like a learning-rate multiplier, and
        # dividing by r means r can change without re-tuning it.
        self.base, self.r, self.alpha, self.scale = base, r, alpha, alpha / r
        for p in base.parameters():  # W0 and its bias stay exactly as pretrained
            p.requires_grad_(False)
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}  # live next to W0, in its precision
        # nn.Linear stores W as (out, in), so ΔW = B @ A must be (out, in): A is (r, in), B is (out, r).
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, **factory))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, **factory))  # B = 0: ΔW = 0 at the start
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # what nn.Linear and peft use for A
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()  # on the LoRA path only
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """ΔW = scale · B A, shape (out, in), the same as the frozen weight it adds to."""
        return self.scale * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (..., in) -> out: (..., out)
        out = self.base(x)
        if self.merged:  # ΔW is already inside base.weight: adding it again would count it twice
            return out
        # x A^T B^T: (..., in) -> (..., r) -> (..., out). Two thin products: r·(in + out) multiply-adds
        # per row instead of in·out, and the (out, in) matrix ΔW is never built.
        return out + self.scale * (self.dropout(x) @ self.lora_A.T @ self.lora_B.T)

    @torch.no_grad()
    def merge(self) -> None:
        """W0 <- W0 + ΔW: one matrix again, so inference costs what the base layer costs."""
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """W0 <- W0 - ΔW (back to the pretrained weight, up to float rounding)."""
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, merged={self.merged}"


def inject_lora(model: nn.Module, target_modules=("query", "value"), r: int = 8, alpha: float = 16,
                dropout: float = 0.0) -> list[str]:
    """Replace every ``nn.Linear`` whose name ends with a target (``"query"`` matches
    ``encoder.layer.0.attention.self.query``, as in ``peft``) by a :class:`LoRALinear`.

    Only the new ``lora_A``/``lora_B`` matrices are trainable in the replaced layers;
    the rest of the model is left as it is (freeze it yourself, see
    :func:`labkit.nn.freeze`). Returns the replaced names.
    """
    whole_number("r (the LoRA rank)", r, minimum=1)  # checked before any layer is replaced
    positive("alpha (the LoRA scale numerator)", alpha)
    return replace_linears(model, target_modules, lambda linear: LoRALinear(linear, r, alpha, dropout),
                           name="target_modules")


def lora_layers(model: nn.Module) -> list[LoRALinear]:
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every ``ΔW`` into its base weight (inference then costs what the base model costs)."""
    for layer in lora_layers(model):
        layer.merge()
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Undo :func:`merge_lora`: subtract ``ΔW`` again (the base weights come back up to rounding)."""
    for layer in lora_layers(model):
        layer.unmerge()
    return model


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the LoRA matrices: what you store per task (kilobytes, not the whole model)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_A" in k or "lora_B" in k}
