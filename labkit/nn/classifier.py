"""A sequence classifier: any encoder, a masked mean over its token vectors, one linear head."""
from __future__ import annotations

import torch
from torch import nn


class SequenceClassifier(nn.Module):
    """``encoder(input_ids, attention_mask).last_hidden_state`` -> masked mean -> dropout -> linear.

    The encoder is a Hugging Face model (pretrained or randomly initialised); the
    head is new and always starts random. Logits have shape (batch, n_classes).
    """

    def __init__(self, encoder: nn.Module, n_classes: int = 2, dropout: float = 0.1):
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2; got {n_classes!r}")
        self.encoder = encoder
        width = getattr(encoder.config, "hidden_size", None) or getattr(encoder.config, "dim")
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, n_classes)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(input_ids, attention_mask)))
