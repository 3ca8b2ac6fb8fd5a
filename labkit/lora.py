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

__all__ = ["LoRALinear", "inject_lora", "merge_lora", "unmerge_lora", "lora_state_dict", "lora_layers"]


class LoRALinear(nn.Module):
    """``base(x) + scale · B(A(dropout(x)))``, with ``base`` frozen and ``scale = alpha / r``."""

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be an nn.Linear; got {type(base).__name__}")
        if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
            raise ValueError(f"r (the LoRA rank) must be a whole number > 0; got {r!r}")
        if not alpha > 0:
            raise ValueError(f"alpha (the LoRA scale numerator) must be > 0; got {alpha!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1); got {dropout!r}")
        self.base, self.r, self.alpha, self.scale = base, r, alpha, alpha / r
        for p in base.parameters():
            p.requires_grad_(False)
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, **factory))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, **factory))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        return self.scale * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.merged:
            return out
        return out + self.scale * (self.dropout(x) @ self.lora_A.T @ self.lora_B.T)

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, merged={self.merged}"


def _linear_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]


def inject_lora(model: nn.Module, target_modules=("query", "value"), r: int = 8, alpha: float = 16,
                dropout: float = 0.0) -> list[str]:
    """Replace every ``nn.Linear`` whose name ends with a target (``"query"`` matches
    ``encoder.layer.0.attention.self.query``, as in ``peft``) by a :class:`LoRALinear`.

    Only the new ``lora_A``/``lora_B`` matrices are trainable in the replaced layers;
    the rest of the model is left as it is (freeze it yourself, see
    :func:`labkit.finetune.freeze`). Returns the replaced names.
    """
    if isinstance(target_modules, str):
        target_modules = [target_modules]
    if not target_modules:
        raise ValueError("target_modules is empty: name at least one Linear layer, e.g. ['query', 'value']")
    if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
        raise ValueError(f"r (the LoRA rank) must be a whole number > 0; got {r!r}")
    if not alpha > 0:
        raise ValueError(f"alpha (the LoRA scale numerator) must be > 0; got {alpha!r}")
    linears = _linear_names(model)
    matched = {t: [n for n in linears if n == t or n.endswith("." + t)] for t in target_modules}
    missing = [t for t, names in matched.items() if not names]
    if missing:
        leaves = sorted({n.rsplit(".", 1)[-1] for n in linears})
        raise ValueError(f"target_modules {missing} match no nn.Linear in the model; "
                         f"Linear names end with: {leaves[:12]} (e.g. {linears[:3]})")
    replaced = []
    for name in linears:
        if any(name in names for names in matched.values()):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, LoRALinear(getattr(parent, child), r=r, alpha=alpha, dropout=dropout))
            replaced.append(name)
    return replaced


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
