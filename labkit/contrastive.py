"""CLIP's symmetric contrastive loss (Radford et al., ICML 2021, arXiv:2103.00020), and a tiny CLIP.

A batch holds B (image, text) pairs. Both encoders map their input to one vector; after L2
normalisation the B x B matrix of cosine similarities, times a learned temperature
``exp(logit_scale)``, is read twice as a classification problem: each image must pick its own
text among the B texts (rows), and each text its own image (columns)::

    L = ( CE(logits, [0..B-1]) + CE(logits^T, [0..B-1]) ) / 2

``logit_scale`` starts at ln(1/0.07) and its exponential is clipped at 100, as in the paper
("clipped to prevent scaling the logits by more than 100"). Every other pair of the batch is a
negative example, so the loss falls as the batch grows harder, and two *identical* texts in a
batch (two pictures of a seven captioned alike) cannot be told apart: see :func:`duplicate_floor`.

The tiny CLIP pairs scikit-learn's 8x8 handwritten digits with generated captions
("a handwritten seven"); zero-shot classification compares an image with the caption of each class.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .check import whole_number
from .nn.transformer import BertEncoder, TransformerConfig
from .nn.classifier import mean_pool

__all__ = ["LOGIT_SCALE_INIT", "LOGIT_SCALE_MAX", "clip_logits", "clip_loss", "duplicate_floor",
           "DIGIT_WORDS", "CAPTION_TEMPLATES", "digit_captions", "DigitImageEncoder", "CaptionEncoder", "TinyCLIP",
           "clip_forward", "contrastive_loss", "zero_shot_predict"]

LOGIT_SCALE_INIT = math.log(1 / 0.07)   # CLIP's initial temperature: 0.07
LOGIT_SCALE_MAX = 100.0                 # exp(logit_scale) is clipped here


def clip_logits(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """(B, B) logits: row i = image i against every text; exp(logit_scale) clipped at 100."""
    image_emb = F.normalize(image_emb, dim=-1)
    text_emb = F.normalize(text_emb, dim=-1)
    return logit_scale.exp().clamp(max=LOGIT_SCALE_MAX) * image_emb @ text_emb.t()


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """The symmetric loss: mean of image->text and text->image cross-entropy; pair i is the right answer for row i."""
    if image_emb.shape != text_emb.shape or image_emb.dim() != 2:
        raise ValueError(f"image_emb and text_emb must both be (B, d); got {tuple(image_emb.shape)} "
                         f"and {tuple(text_emb.shape)}")
    logits = clip_logits(image_emb, text_emb, logit_scale)
    target = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def duplicate_floor(keys: Sequence) -> float:
    """The lowest possible clip loss when pairs with equal ``keys`` (e.g. equal captions) are interchangeable.

    A text repeated k times in a batch gives k equal columns: the best an image can do is share its
    probability among them, a cross-entropy of ln k. Averaged over the batch (both directions alike).
    """
    keys = list(keys)
    counts = {k: keys.count(k) for k in set(keys)}
    return sum(math.log(counts[k]) for k in keys) / len(keys)


# ---------------------------------------------------------------- paired data: digits and captions
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CAPTION_TEMPLATES = ("a handwritten {word}", "the digit {numeral}", "a scanned {word}",
                     "the number {word} written by hand", "a small {numeral}")


def digit_captions(digits: Sequence[int], *, template: str | None = None,
                   generator: torch.Generator | None = None) -> list[str]:
    """One caption per digit, from a random template of :data:`CAPTION_TEMPLATES` (or the one given)."""
    picks = torch.randint(len(CAPTION_TEMPLATES), (len(digits),), generator=generator).tolist()
    return [(template or CAPTION_TEMPLATES[k]).format(word=DIGIT_WORDS[int(d)], numeral=int(d))
            for d, k in zip(digits, picks)]


# ---------------------------------------------------------------- the tiny CLIP
class DigitImageEncoder(nn.Module):
    """8x8 grey image -> vector: two 3x3 convolutions, 2x2 average pooling, a linear layer."""

    def __init__(self, d_out: int = 64, width: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.GELU(),
                                 nn.Conv2d(width, 2 * width, 3, padding=1), nn.GELU(), nn.AvgPool2d(2),
                                 nn.Flatten(), nn.Linear(2 * width * 16, d_out))

    def forward(self, images):            # (B, 8, 8), values 0..1
        return self.net(images.unsqueeze(1))


class CaptionEncoder(nn.Module):
    """Caption ids -> vector: a one-layer BERT encoder, mean-pooled over the real tokens."""

    def __init__(self, vocab_size: int, d_model: int = 32, max_len: int = 16):
        super().__init__()
        self.encoder = BertEncoder(TransformerConfig(vocab_size=vocab_size, max_len=max_len, d_model=d_model,
                                                     n_heads=2, n_layers=1))

    def forward(self, ids, attention_mask):
        return mean_pool(self.encoder(ids, attention_mask), attention_mask)


class TinyCLIP(nn.Module):
    """Two encoders, a linear projection of each into one shared space, and the learned logit scale."""

    def __init__(self, image_encoder: nn.Module, text_encoder: nn.Module, d_image: int, d_text: int,
                 d_shared: int = 32):
        super().__init__()
        self.image_encoder, self.text_encoder = image_encoder, text_encoder
        self.image_proj = nn.Linear(d_image, d_shared, bias=False)
        self.text_proj = nn.Linear(d_text, d_shared, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(LOGIT_SCALE_INIT))

    def encode_image(self, images):
        return self.image_proj(self.image_encoder(images))

    def encode_text(self, ids, attention_mask):
        return self.text_proj(self.text_encoder(ids, attention_mask))

    def forward(self, images, ids, attention_mask):
        """-> (image embeddings (B, d), text embeddings (B, d), logit_scale), ready for :func:`clip_loss`."""
        return self.encode_image(images), self.encode_text(ids, attention_mask), self.logit_scale


def clip_forward(model: TinyCLIP, batch):
    """For :func:`labkit.train.fit`: a batch (images, caption ids, caption mask, digit) -> (output, digit)."""
    images, ids, mask, digit = batch
    return model(images, ids, mask), digit


def contrastive_loss(output, target=None) -> torch.Tensor:
    """:func:`clip_loss` of a :func:`clip_forward` output (the digit labels are not used by the loss)."""
    return clip_loss(*output)


@torch.no_grad()
def zero_shot_predict(model: TinyCLIP, images: torch.Tensor, class_ids: torch.Tensor,
                      class_mask: torch.Tensor) -> torch.Tensor:
    """For each image, the index of the class text (one caption per class) most similar to it (on the CPU)."""
    whole_number("number of class texts", len(class_ids), minimum=2)
    device = model.logit_scale.device
    was = model.training
    model.eval()
    scores = clip_logits(model.encode_image(images.to(device)),
                         model.encode_text(class_ids.to(device), class_mask.to(device)), model.logit_scale)
    model.train(was)
    return scores.argmax(-1).cpu()
