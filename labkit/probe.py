"""A linear probe: a frozen encoder's sentence vectors, one linear layer trained on them, and the classifier
they make together.

Chapter 3.5 trains the probe with the encoder in the loop; here the sentence vectors are computed
once (the encoder is frozen, so they never change) and the head is fitted on them with full-batch
AdamW, in seconds. The result is an ordinary :class:`~labkit.nn.SequenceClassifier` (encoder ->
masked mean -> head), differentiable end to end: chapter 8.2 quantises its encoder and explains its
predictions with Integrated Gradients.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .check import positive, whole_number
from .nn import SequenceClassifier, freeze
from .transfer import sentence_vectors

__all__ = ["fit_probe", "probe_accuracy"]


def fit_probe(encoder: nn.Module, tokenizer, examples: list[tuple[str, int]], *, steps: int = 300,
              lr: float = 1e-2, weight_decay: float = 1e-3, seed: int = 0,
              batch: int = 64) -> tuple[SequenceClassifier, float]:
    """(classifier with a copy of ``encoder``, frozen, and the fitted head, in eval mode; its train accuracy).

    ``encoder`` follows the Hugging Face interface (``config.hidden_size``; ``last_hidden_state``), as
    :class:`~labkit.transfer.BookEncoder` and all-MiniLM-L6-v2 do.
    """
    whole_number("steps", steps)
    positive("lr", lr)
    if not examples:
        raise ValueError("examples is empty: the probe needs labelled (text, label) pairs")
    labels = torch.tensor([y for _, y in examples])
    n_classes = int(labels.max()) + 1
    texts = [t for t, _ in examples]
    feats = torch.cat([sentence_vectors(encoder, tokenizer, texts[i:i + batch]) for i in range(0, len(texts), batch)])
    torch.manual_seed(seed)
    model = SequenceClassifier(copy.deepcopy(encoder), n_classes=max(2, n_classes))
    freeze(model.encoder)
    opt = torch.optim.AdamW(model.head.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model.head(feats), labels).backward()
        opt.step()
    with torch.no_grad():
        train_acc = float((model.head(feats).argmax(-1) == labels).float().mean())
    return model.eval(), train_acc


@torch.no_grad()
def probe_accuracy(model: SequenceClassifier, tokenizer, examples: list[tuple[str, int]], batch: int = 64) -> float:
    """Accuracy of ``model`` (any SequenceClassifier) on (text, label) pairs, in eval mode."""
    texts, labels = [t for t, _ in examples], torch.tensor([y for _, y in examples])
    feats = torch.cat([sentence_vectors(model.encoder, tokenizer, texts[i:i + batch])
                       for i in range(0, len(texts), batch)])
    return float((model.head(feats).argmax(-1) == labels).float().mean())
