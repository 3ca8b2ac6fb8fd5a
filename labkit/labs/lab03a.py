"""Lab 3a: the attention maps of a pretrained encoder, from a panel, and exercises that count its weights.

:func:`panel` gives a text box, layer and head sliders and a causal-mask toggle
over :func:`show_attention`; :func:`exercises` asks how many weights attention
computes, and every expected value is measured on the encoder's own maps.
"""
from __future__ import annotations

from functools import partial

import torch

from ..attention_maps import Text, attention_for, heatmap
from ..exercises import Exercise
from ..widgets import Int, Panel, Toggle

__all__ = ["show_attention", "panel", "previous_token_share", "head_profile", "head_roles", "exercises"]


def show_attention(encoder, tokenizer, sentence: str, layer: int, head: int, causal: bool):
    """Draw one head's map for ``sentence``, print each token's strongest key; return (tokens, maps)."""
    tokens, maps = attention_for(encoder, tokenizer, sentence, causal=causal)
    w = maps[layer][head]
    heatmap(w, tokens, f"layer {layer}, head {head}{' (causal mask)' if causal else ''}").show()
    strongest = w.argmax(-1)
    print("each token's strongest key:  " + ",  ".join(f"{q} → {tokens[k]}" for q, k in zip(tokens, strongest.tolist())))
    return tokens, maps


def panel(encoder, tokenizer, sentence: str, layer: int = 0, head: int = 0, title: str = "Attention maps") -> Panel:
    """A text box, layer and head sliders and a causal toggle over :func:`show_attention`."""
    cfg = encoder.cfg
    return Panel(partial(show_attention, encoder, tokenizer), title=title,
                 sentence=Text(sentence), layer=Int(0, cfg.n_layers - 1, layer), head=Int(0, cfg.n_heads - 1, head),
                 causal=Toggle(False))


def previous_token_share(layer_maps: torch.Tensor) -> torch.Tensor:
    """For each head of one layer (maps: (heads, T, T)), the mean weight a token puts on the token before it."""
    return layer_maps.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1)


def head_profile(layer_maps: torch.Tensor, tokens: list[str]):
    """For each head of one layer (maps: (heads, T, T)), the mean weight a query puts on the token before it, the
    token after it, itself, ``[CLS]`` and the ``[SEP]`` tokens: a pandas frame, one row per head."""
    import pandas as pd
    if layer_maps.dim() != 3 or layer_maps.shape[-1] != layer_maps.shape[-2] or layer_maps.shape[-1] != len(tokens):
        raise ValueError(f"layer_maps must have shape (heads, T, T) with T = len(tokens) = {len(tokens)}; got "
                         f"{tuple(layer_maps.shape)}")
    sep = [i for i, t in enumerate(tokens) if t == "[SEP]"]
    cls = [i for i, t in enumerate(tokens) if t == "[CLS]"]
    columns = {
        "previous token": previous_token_share(layer_maps),
        "next token": layer_maps.diagonal(offset=1, dim1=-2, dim2=-1).mean(-1),
        "itself": layer_maps.diagonal(dim1=-2, dim2=-1).mean(-1),
        "[CLS]": layer_maps[..., cls].sum(-1).mean(-1) if cls else torch.zeros(len(layer_maps)),
        "[SEP]": layer_maps[..., sep].sum(-1).mean(-1) if sep else torch.zeros(len(layer_maps)),
    }
    frame = pd.DataFrame({k: v.detach().cpu().numpy() for k, v in columns.items()})
    frame.index.name = "head"
    return frame


def head_roles(profile, threshold: float = 0.5) -> list[str]:
    """Sentences worded from :func:`head_profile`: each head whose weight goes mostly (at least ``threshold``, on
    average) to one kind of position, and how many heads spread it more widely."""
    lines, spread = [], []
    for head, row in profile.iterrows():
        kind, share = row.idxmax(), float(row.max())
        if share >= threshold:
            lines.append(f"head {head}: {share:.0%} of its weight on {kind if kind.startswith('[') else 'the ' + kind}")
        else:
            spread.append(str(head))
    if spread:
        lines.append(f"heads {', '.join(spread)}: no kind of position gets {threshold:.0%} of the weight on average "
                     "(they spread it more widely)" if len(spread) > 1 else
                     f"head {spread[0]}: no kind of position gets {threshold:.0%} of the weight on average")
    return lines


def exercises(encoder, tokenizer, sentence: str, layer: int = 0, head: int = 0) -> dict[str, Exercise]:
    """The lab's four questions about ``sentence``; each expected value is computed from the encoder's maps."""
    tokens, maps = attention_for(encoder, tokenizer, sentence)
    _, causal_maps = attention_for(encoder, tokenizer, sentence, causal=True)
    w, wc = maps[layer][head], causal_maps[layer][head]
    n = len(tokens)
    return {
        "3a.1": Exercise("3a.1", f"How many attention weights does ONE head compute for the sentence "
                                 f"{sentence!r} ({n} tokens with [CLS] and [SEP])?",
                         expected=lambda: w.numel(),
                         hint="every query has its own row of weights over the keys: how many rows, how long is each?",
                         explain="n queries × n keys: quadratic in the sequence length."),
        "3a.2": Exercise("3a.2", "What does each row of an attention matrix sum to?",
                         expected=lambda: round(w.sum(-1).mean().item(), 4), rel=1e-3,
                         hint="each row is the output of a softmax over the keys",
                         explain="A softmax makes the weights of one query a probability distribution."),
        "3a.3": Exercise("3a.3", f"With the causal mask on, how many of that head's {n * n} weights are non-zero?",
                         expected=lambda: int((wc > 0).sum()),
                         hint="draw the mask for 4 tokens: how many keys may the first query see, the second, ...? "
                              "Then add up for n tokens",
                         explain="n(n+1)/2: the lower triangle with its diagonal."),
        "3a.4": Exercise("3a.4", "How many attention weights does the whole encoder compute for this sentence "
                                 f"({len(maps)} layers × {maps[0].shape[0]} heads)?",
                         expected=lambda: sum(m.numel() for m in maps),
                         hint="every head of every layer computes a map of its own",
                         explain="Layers × heads × n²: it grows with the square of the sentence length."),
    }
