"""Bottleneck adapters (Houlsby et al., arXiv:1902.00751).

An adapter is a small residual MLP, ``x + up(act(down(x)))``, inserted after a
frozen sublayer. In a Hugging Face ``BertLayer`` the natural places are the two
output projections, ``attention.output.dense`` (after attention) and
``output.dense`` (after the feed-forward block): the adapter then acts before
the dropout, the residual sum and the LayerNorm, as in the paper. ``up`` starts
at zero, so a freshly adapted model computes what the base model computes.
"""
from __future__ import annotations

from torch import nn

__all__ = ["Adapter", "Adapted", "add_adapters"]


class Adapter(nn.Module):
    """``x + up(gelu(down(x)))`` with a ``bottleneck``-wide middle; identity at initialisation."""

    def __init__(self, width: int, bottleneck: int = 16):
        super().__init__()
        if isinstance(bottleneck, bool) or not isinstance(bottleneck, int) or bottleneck <= 0:
            raise ValueError(f"bottleneck must be a whole number > 0; got {bottleneck!r}")
        self.down, self.act, self.up = nn.Linear(width, bottleneck), nn.GELU(), nn.Linear(bottleneck, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x):
        return x + self.up(self.act(self.down(x)))


class Adapted(nn.Module):
    """A frozen linear layer followed by a trainable :class:`Adapter`."""

    def __init__(self, base: nn.Linear, bottleneck: int = 16):
        super().__init__()
        self.base, self.adapter = base, Adapter(base.out_features, bottleneck)
        for p in base.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        return self.adapter(self.base(x))


def add_adapters(model: nn.Module, targets=("output.dense",), bottleneck: int = 16) -> list[str]:
    """Put an adapter after every ``nn.Linear`` whose name ends with one of ``targets``.

    The default, ``"output.dense"``, matches both output projections of every
    ``BertLayer`` (``attention.output.dense`` and ``output.dense``). Returns the
    adapted names; freeze the rest of the model yourself.
    """
    if isinstance(targets, str):
        targets = [targets]
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    names = [n for n in linears if any(n == t or n.endswith("." + t) for t in targets)]
    if not names:
        raise ValueError(f"targets {list(targets)} match no nn.Linear in the model; some Linear names: {linears[:6]}")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, Adapted(getattr(parent, child), bottleneck))
    return names
