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

from .check import whole_number
from .nn.parameters import replace_linears

__all__ = ["Adapter", "Adapted", "add_adapters"]


class Adapter(nn.Module):
    """``x + up(gelu(down(x)))`` with a ``bottleneck``-wide middle; identity at initialisation."""

    def __init__(self, width: int, bottleneck: int = 16):
        super().__init__()
        whole_number("bottleneck", bottleneck, minimum=1)
        # down: (..., width) -> (..., bottleneck), up: back to (..., width). Parameters: about
        # 2·width·bottleneck per adapter, against width² for one more dense layer.
        self.down, self.act, self.up = nn.Linear(width, bottleneck), nn.GELU(), nn.Linear(bottleneck, width)
        nn.init.zeros_(self.up.weight)  # up = 0: the adapter adds nothing until it is trained,
        nn.init.zeros_(self.up.bias)    # so training starts from exactly the pretrained model

    def forward(self, x):
        # The residual "x +" keeps the frozen layer's output as it is; the adapter learns a correction.
        # The GELU between down and up is why an adapter cannot be merged into the weight as LoRA can.
        return x + self.up(self.act(self.down(x)))


class Adapted(nn.Module):
    """A frozen linear layer followed by a trainable :class:`Adapter`."""

    def __init__(self, base: nn.Linear, bottleneck: int = 16):
        super().__init__()
        self.base, self.adapter = base, Adapter(base.out_features, bottleneck)
        for p in base.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        # (..., in) -> base -> (..., out) -> adapter -> (..., out): the shapes the layer had before
        return self.adapter(self.base(x))


def add_adapters(model: nn.Module, targets=("output.dense",), bottleneck: int = 16) -> list[str]:
    """Put an adapter after every ``nn.Linear`` whose name ends with one of ``targets``.

    The default, ``"output.dense"``, matches both output projections of every
    ``BertLayer`` (``attention.output.dense`` and ``output.dense``). Returns the
    adapted names; freeze the rest of the model yourself.
    """
    whole_number("bottleneck", bottleneck, minimum=1)  # checked before any layer is replaced
    return replace_linears(model, targets, lambda linear: Adapted(linear, bottleneck))
