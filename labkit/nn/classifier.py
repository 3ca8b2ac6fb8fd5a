"""A sequence classifier: any encoder, a masked mean over its token vectors, one linear head."""
from __future__ import annotations

import torch
from torch import nn

from ..check import whole_number

__all__ = ["SequenceClassifier", "mean_pool"]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of the hidden states over the real (non-padding) tokens: (B, T, d) -> (B, d)."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1): 1 at real tokens, 0 at padding
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)  # clamp: an all-padding row gives 0, not 0/0


class SequenceClassifier(nn.Module):
    """``encoder(input_ids, attention_mask).last_hidden_state`` -> masked mean -> dropout -> linear.

    The encoder is a Hugging Face model (pretrained or randomly initialised); the
    head is new and always starts random. Logits have shape (batch, n_classes).
    """

    def __init__(self, encoder: nn.Module, n_classes: int = 2, dropout: float = 0.1):
        super().__init__()
        whole_number("n_classes", n_classes, minimum=2)
        self.encoder = encoder
        width = getattr(encoder.config, "hidden_size", None) or getattr(encoder.config, "dim")
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, n_classes)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(input_ids, attention_mask)))
