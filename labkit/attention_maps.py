"""Attention maps of an encoder, as plotly heatmaps, and a free-text control for widget panels.

    tokens, maps = attention_for(encoder, tokenizer, "The cat sat.")   # maps[layer]: (heads, T, T)
    heatmap(maps[2][0], tokens, "layer 2, head 0")
    head_grid(maps[2], tokens, "layer 2")

``Text`` has the interface of the specs in :mod:`labkit.widgets` (``default``, ``validate``,
``widget``), so ``Panel(..., sentence=Text("The cat sat."))`` gives a text box.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from .plots import wrap_title


@dataclass
class Text:
    """A line of free text (a sentence), as a text box."""
    default: str
    max_chars: int = 300
    label: str | None = None

    def validate(self, name: str, v: Any) -> str | None:
        if not isinstance(v, str) or not v.strip():
            return f"{name} must be a non-empty piece of text; got {v!r}"
        if len(v) > self.max_chars:
            return f"{name} must be at most {self.max_chars} characters; got {len(v)}"
        return None

    def allowed(self) -> str:
        return f"any text up to {self.max_chars} characters"

    def widget(self, name: str):
        import ipywidgets as w
        return w.Text(value=self.default, description=self.label or name, continuous_update=False,
                      layout=w.Layout(width="90%"), style={"description_width": "initial"})


@torch.no_grad()
def attention_for(encoder, tokenizer, sentence: str, causal: bool = False):
    """Tokenise one sentence and return (tokens, [per layer: weights (n_heads, T, T)]) from a BertEncoder."""
    batch = tokenizer(sentence, return_tensors="pt", truncation=True, max_length=encoder.cfg.max_len)
    encoder.eval()
    _, maps = encoder(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"),
                      need_weights=True, causal=causal)
    tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    return tokens, [m[0] for m in maps]


def _labels(tokens):
    return [f"{i}:{t}" for i, t in enumerate(tokens)]     # positions keep repeated tokens apart


def heatmap(weights: torch.Tensor, tokens, title: str, height: int = 480) -> go.Figure:
    """One head's (T, T) attention weights: rows are queries, columns keys."""
    labels = _labels(tokens)
    fig = go.Figure(go.Heatmap(z=weights.numpy(), x=labels, y=labels, colorscale="Viridis", zmin=0,
                               colorbar=dict(title="weight"),
                               hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title_text="query (attends from)")
    fig.update_xaxes(title_text="key (attends to)", tickangle=-45)
    fig.update_layout(title=title, height=height, width=height + 80)
    return wrap_title(fig, 48)


def head_grid(layer_weights: torch.Tensor, tokens, title: str, heads=None, cols: int = 4) -> go.Figure:
    """Small heatmaps of several heads of one layer (layer_weights: (n_heads, T, T)).

    The keys (tokens) label the x axis of the bottom row and the queries the y axis of the first
    column, so a reader of the static page can tell which token attends to which without hovering.
    """
    heads = list(range(layer_weights.shape[0])) if heads is None else list(heads)
    cols = max(1, min(cols, len(heads)))
    rows = -(-len(heads) // cols)
    labels = _labels(tokens)
    longest = max((len(t) for t in labels), default=1)
    tick = 9 if len(labels) <= 16 else 7
    margin = 12 + int(0.6 * tick * longest)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"head {h}" for h in heads],
                        horizontal_spacing=0.02, vertical_spacing=0.06 + 0.012 * longest / max(1, rows),
                        shared_xaxes=True, shared_yaxes=True)
    for i, h in enumerate(heads):
        fig.add_trace(go.Heatmap(z=layer_weights[h].numpy(), x=labels, y=labels, coloraxis="coloraxis",
                                 hovertemplate=f"head {h}<br>query %{{y}}<br>key %{{x}}<br>weight %{{z:.3f}}"
                                               "<extra></extra>"),
                      i // cols + 1, i % cols + 1)
    fig.update_yaxes(autorange="reversed", showticklabels=False, tickfont=dict(size=tick))
    fig.update_xaxes(showticklabels=False, tickfont=dict(size=tick), tickangle=-60)
    for r in range(1, rows + 1):
        fig.update_yaxes(showticklabels=True, row=r, col=1)
    for c in range(1, cols + 1):          # the bottom cell of each column (the last row may be short)
        last_row = max(r for r in range(1, rows + 1) if (r - 1) * cols + c <= len(heads))
        fig.update_xaxes(showticklabels=True, row=last_row, col=c)
    fig.update_layout(height=max(220, 14 * len(labels)) * rows + 80 + margin,
                      coloraxis={"colorscale": "Viridis", "cmin": 0, "colorbar": {"title": "weight"}},
                      title=title + "<br><sup>rows: query token (attends from), columns: key token (attends to)</sup>",
                      margin=dict(l=margin + 20, b=margin + 20, t=70, r=20))
    return wrap_title(fig)
