"""The article's BiLSTM, done right: one encoder, a classifier head, and an ELMo-style pretraining head.

    encoder = BiLSTMEncoder(len(vocab))
    lm = BiLSTMLanguageModel(encoder)        # pretrain on unlabelled text (next word / previous word),
                                             # with labkit.objectives.bilm_forward / bilm_loss
    clf = BiLSTMClassifier(encoder)          # a fresh head; logits (B,), train with BCEWithLogitsLoss

Saving and reloading a pretrained encoder with its vocabulary: :mod:`labkit.project`
(``save_encoder`` / ``load_encoder``).

Why next-word/previous-word (Peters et al., "Deep contextualized word
representations" (ELMo), NAACL 2018, arXiv:1802.05365) rather than MLM: a
one-layer bidirectional LSTM is two LSTMs, one reading left to right and one
right to left. Each can predict the *next* word in its own reading direction
without ever seeing it, so every position of every sentence is a training
signal, no ``[MASK]`` token is needed, and the encoder pretrained is exactly
the encoder the classifier uses. (With more than one layer, ``nn.LSTM`` feeds
both directions into the next layer, which would let the model see the word it
must predict; so the encoder has one layer.)
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..check import whole_number

__all__ = ["BiLSTMEncoder", "BiLSTMClassifier", "BiLSTMLanguageModel", "check_batch"]


def check_batch(ids: torch.Tensor, lengths: torch.Tensor) -> None:
    """``ids`` (B, T) and ``lengths`` (B,) with every length in [1, T], else ValueError."""
    if ids.ndim != 2:
        raise ValueError(f"ids must have shape (batch, time); got {tuple(ids.shape)}")
    if lengths.shape != ids.shape[:1]:
        raise ValueError(f"lengths must have shape ({ids.shape[0]},), one per sequence; got {tuple(lengths.shape)}")
    if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > ids.shape[1]):
        raise ValueError(f"lengths must be between 1 and {ids.shape[1]}; got {lengths.tolist()}")


class BiLSTMEncoder(nn.Module):
    """Embedding (padding_idx=0) -> one bidirectional LSTM over the *packed* sequence.

    Packing means the LSTM stops at each sequence's true length, so padding
    never enters a state: a sequence gets the same result alone or in a padded batch.
    ``pack=False`` runs the LSTM over every position, padding included (the
    article's Keras model without a mask does that); chapter 5.4 measures what it costs.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden: int = 64, dropout: float = 0.0,
                 pack: bool = True):
        super().__init__()
        whole_number("vocab_size", vocab_size, minimum=3)  # padding, unknown and at least one word
        whole_number("embed_dim", embed_dim)
        whole_number("hidden", hidden)
        if not isinstance(pack, bool):
            raise ValueError(f"pack must be True or False; got {pack!r}")
        self.config = {"vocab_size": vocab_size, "embed_dim": embed_dim, "hidden": hidden}
        self.hidden, self.pack = hidden, pack
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(embed_dim, hidden, batch_first=True, bidirectional=True)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``outputs`` (B, T, 2H): forward states in ``[..., :H]``, backward in ``[..., H:]`` (0 at padding);
        ``h_n`` (2, B, H): the final forward state (after the last real word) and the final backward state
        (after reading back to the first word)."""
        check_batch(ids, lengths)
        x = self.dropout(self.embedding(ids))
        if not self.pack:   # every position is read, padding too; h_n is the state after position T
            out, (h_n, _) = self.lstm(x)
            return out, h_n
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        return out, h_n


class BiLSTMClassifier(nn.Module):
    """Encoder -> [final forward state ; final backward state] -> dropout -> Linear(2H, 1) -> logits (B,).

    No sigmoid: train with ``BCEWithLogitsLoss`` on float labels of shape (B,)
    (``torch.sigmoid(logits)`` is the probability of label 1 when you need one).
    """

    def __init__(self, encoder: BiLSTMEncoder, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * encoder.hidden, 1)

    def features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        _, h_n = self.encoder(ids, lengths)
        return torch.cat([h_n[-2], h_n[-1]], dim=-1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(ids, lengths))).squeeze(-1)


class BiLSTMLanguageModel(nn.Module):
    """ELMo-style pretraining of a :class:`BiLSTMEncoder`: the forward LSTM predicts the next word,
    the backward LSTM the previous word. ``forward`` returns logits (B, 2, T, V): ``[:, 0]`` next, ``[:, 1]`` previous."""

    def __init__(self, encoder: BiLSTMEncoder):
        super().__init__()
        self.encoder = encoder
        vocab_size = encoder.embedding.num_embeddings
        self.next_word = nn.Linear(encoder.hidden, vocab_size)
        self.prev_word = nn.Linear(encoder.hidden, vocab_size)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out, _ = self.encoder(ids, lengths)
        h = self.encoder.hidden
        return torch.stack([self.next_word(out[..., :h]), self.prev_word(out[..., h:])], dim=1)
