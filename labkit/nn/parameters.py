"""What trains in a model, and how new trainable parts are attached to it.

* :func:`freeze` / :func:`count_parameters`: switch gradients off (or on) and count
  what is left to train;
* :func:`replace_linears`: swap chosen ``nn.Linear`` layers for a wrapped version,
  the one piece of model surgery LoRA (:mod:`labkit.lora`) and adapters
  (:mod:`labkit.adapters`) both need.
"""
from __future__ import annotations

from typing import Callable, Iterable

from torch import nn

__all__ = ["freeze", "count_parameters", "replace_linears"]


def freeze(module: nn.Module, frozen: bool = True) -> nn.Module:
    """Stop (or restart) gradient updates for every parameter of ``module``."""
    for p in module.parameters():
        p.requires_grad_(not frozen)
    return module


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """How many numbers ``module`` holds (only those with ``requires_grad`` when ``trainable_only``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def replace_linears(model: nn.Module, targets: str | Iterable[str], wrap: Callable[[nn.Linear], nn.Module],
                    name: str = "targets") -> list[str]:
    """Replace every ``nn.Linear`` whose name ends with a target by ``wrap(that_linear)``; return the names.

    ``"query"`` matches ``encoder.layer.0.attention.self.query`` (whole name parts
    only, as ``peft`` matches ``target_modules``). A target that matches no
    ``nn.Linear`` is refused, with the names the model has, before anything changes.
    ``name`` is the caller's name for ``targets``, used in the error.
    """
    targets = [targets] if isinstance(targets, str) else list(targets)
    if not targets:
        raise ValueError(f"{name} is empty: name at least one Linear layer, e.g. ['query', 'value']")
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    matches = lambda n, t: n == t or n.endswith("." + t)  # noqa: E731 - "query" matches "...self.query", not "...myquery"
    missing = [t for t in targets if not any(matches(n, t) for n in linears)]
    if missing:
        leaves = sorted({n.rsplit(".", 1)[-1] for n in linears})
        raise ValueError(f"{name} {missing} match no nn.Linear in the model; "
                         f"Linear names end with: {leaves[:12]} (e.g. {linears[:3]})")
    replaced = [n for n in linears if any(matches(n, t) for t in targets)]
    for full_name in replaced:
        parent_name, _, child = full_name.rpartition(".")
        parent = model.get_submodule(parent_name)  # "" is the model itself
        setattr(parent, child, wrap(getattr(parent, child)))
    return replaced
