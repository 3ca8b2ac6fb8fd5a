"""Save a fine-tuned text classifier to a folder and load it back as a prediction function.

The folder holds everything needed to rebuild the model, and nothing executable:

* ``model.safetensors`` -- the weights (safetensors: no pickle, so loading runs no code);
* the tokenizer files (``tokenizer.save_pretrained``);
* ``config.json`` -- the encoder's Hugging Face config, the head layout, the label
  names, ``max_length`` and the labkit version.

:func:`load_pipeline` rebuilds the same :class:`~labkit.nn.SequenceClassifier`
from the config (random weights first), then loads the saved weights strictly:
a missing or unexpected tensor is an error, not a silent partial load.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .check import whole_number
from .nn import SequenceClassifier

__all__ = ["save_pipeline", "load_pipeline", "TextClassifier", "Prediction", "FORMAT"]

FORMAT = "labkit-text-classifier"
FORMAT_VERSION = 1
WEIGHTS, CONFIG = "model.safetensors", "config.json"


@dataclass
class Prediction:
    label: str
    probability: float            # of the predicted label
    probs: dict[str, float]       # every label's probability


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string; wrap a single text: predict([text])")
    if not isinstance(texts, (list, tuple)):
        raise TypeError(f"texts must be a list of strings; got {type(texts).__name__}")
    if not texts:
        raise ValueError("texts is empty: give at least one text")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] must be a string; got {type(t).__name__}")
        if not t.strip():
            raise ValueError(f"texts[{i}] is empty (or only whitespace): every text needs at least one word")
    return list(texts)


class TextClassifier:
    """A tokenizer and a classifier bundled into ``predict(texts)``; always in eval mode, no gradients."""

    def __init__(self, model: SequenceClassifier, tokenizer, labels: list[str], max_length: int,
                 batch_size: int = 32):
        if len(labels) != model.head.out_features:
            raise ValueError(f"labels has {len(labels)} names but the head has {model.head.out_features} outputs")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.labels, self.max_length, self.batch_size = list(labels), int(max_length), int(batch_size)

    @torch.no_grad()
    def predict_logits(self, texts: list[str]) -> torch.Tensor:
        """Logits of shape (len(texts), n_classes), computed in batches of ``batch_size`` texts."""
        texts = _check_texts(texts)
        self.model.eval()
        device = next(self.model.parameters()).device
        out = []
        for i in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(texts[i:i + self.batch_size], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
            out.append(self.model(enc["input_ids"].to(device), enc["attention_mask"].to(device)).cpu())
        return torch.cat(out)

    def predict_proba(self, texts: list[str]) -> torch.Tensor:
        return self.predict_logits(texts).softmax(-1)

    def predict(self, texts: list[str]) -> list[Prediction]:
        """One :class:`Prediction` per text: the label, its probability, and every label's probability."""
        probs = self.predict_proba(texts)
        return [Prediction(self.labels[int(p.argmax())], float(p.max()),
                           {name: float(v) for name, v in zip(self.labels, p)}) for p in probs]

    def __repr__(self) -> str:
        return f"TextClassifier(labels={self.labels}, max_length={self.max_length})"


def _dedupe(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """Store a shared (tied) tensor once: ``aliases`` maps the kept name to the other names of that tensor.

    safetensors refuses tensors that share memory; a tied embedding or an
    ALBERT-style shared layer appears under several names in a state dict.
    """
    kept: dict[tuple, str] = {}
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, list[str]] = {}
    for name in sorted(state):
        t = state[name]
        key = (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
        if t.numel() and key in kept:
            aliases.setdefault(kept[key], []).append(name)
        else:
            kept[key] = name
            tensors[name] = t.detach().cpu().contiguous().clone()   # a private copy: no memory shared
    return tensors, aliases


def save_pipeline(model: SequenceClassifier, tokenizer, directory, *, labels: list[str], max_length: int) -> Path:
    """Write weights (safetensors), tokenizer and config.json to ``directory``; returns its path."""
    from safetensors.torch import save_file

    from . import __version__
    if not isinstance(model, SequenceClassifier):
        raise TypeError(f"model must be a labkit.nn.SequenceClassifier; got {type(model).__name__}")
    labels = list(labels)
    if len(labels) != model.head.out_features or not all(isinstance(x, str) and x for x in labels) \
            or len(set(labels)) != len(labels):
        raise ValueError(f"labels must be {model.head.out_features} distinct non-empty names, one per "
                         f"head output; got {labels!r}")
    whole_number("max_length", max_length)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tensors, aliases = _dedupe(model.state_dict())
    save_file(tensors, str(out / WEIGHTS), metadata={"format": FORMAT, "aliases": json.dumps(aliases)})
    tokenizer.save_pretrained(str(out))
    config = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "labkit_version": __version__,
        "labels": labels, "n_classes": len(labels), "max_length": max_length,
        "head": {"class": "labkit.nn.SequenceClassifier", "pooling": "masked mean over tokens",
                 "dropout": model.dropout.p, "in_features": model.head.in_features,
                 "out_features": model.head.out_features},
        "encoder": model.encoder.config.to_dict(),
    }
    (out / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return out


def read_config(directory) -> dict:
    """The pipeline's config.json, checked: clear errors for a missing folder, file, or a foreign config."""
    where = Path(directory)
    if not where.is_dir():
        raise FileNotFoundError(f"model directory {str(where)!r} does not exist (or is not a folder)")
    missing = [n for n in (CONFIG, WEIGHTS) if not (where / n).is_file()]
    if missing:
        raise FileNotFoundError(f"model directory {str(where)!r} lacks {', '.join(missing)}: "
                                f"write it with labkit.pipeline.save_pipeline")
    try:
        config = json.loads((where / CONFIG).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{where / CONFIG} is not valid JSON: {e}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{where / CONFIG} was not written by labkit.pipeline.save_pipeline "
                         f"(its 'format' is {config.get('format') if isinstance(config, dict) else None!r}, "
                         f"expected {FORMAT!r}); a plain Hugging Face model folder needs transformers instead")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{where / CONFIG} has format_version {config['format_version']}; this labkit reads "
                         f"up to {FORMAT_VERSION}: upgrade labkit")
    for key in ("labels", "max_length", "head", "encoder"):
        if key not in config:
            raise ValueError(f"{where / CONFIG} lacks the key {key!r}")
    return config


def load_pipeline(directory, *, device: str | torch.device = "cpu", batch_size: int = 32) -> TextClassifier:
    """Rebuild the classifier saved in ``directory`` and return it as a :class:`TextClassifier` (eval mode)."""
    from safetensors import safe_open
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    config = read_config(directory)
    where = Path(directory)
    enc = dict(config["encoder"])
    model_type = enc.pop("model_type", None)
    if not model_type:
        raise ValueError(f"{where / CONFIG}: the encoder config lacks 'model_type'")
    encoder = AutoModel.from_config(AutoConfig.for_model(model_type, **enc))
    head = config["head"]
    model = SequenceClassifier(encoder, n_classes=head["out_features"], dropout=head["dropout"])
    with safe_open(str(where / WEIGHTS), framework="pt") as f:
        aliases = json.loads((f.metadata() or {}).get("aliases", "{}"))
    state = load_file(str(where / WEIGHTS))
    for name, others in aliases.items():
        state.update({other: state[name] for other in others})
    # strict: every tensor in the file must fit the rebuilt model and every model tensor must be in the file
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{where / WEIGHTS} does not match the model rebuilt from {where / CONFIG}: {e}") from None
    model.to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(where))
    return TextClassifier(model, tokenizer, config["labels"], config["max_length"], batch_size=batch_size)
