"""Fine-tuning helpers: freezing and counting what trains."""
from __future__ import annotations

from torch import nn

__all__ = ["freeze", "count_parameters"]


def freeze(module: nn.Module, frozen: bool = True) -> nn.Module:
    """Stop (or restart) gradient updates for every parameter of ``module``."""
    for p in module.parameters():
        p.requires_grad_(not frozen)
    return module


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
