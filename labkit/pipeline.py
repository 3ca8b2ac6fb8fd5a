"""Save a fine-tuned text classifier to a folder and load it back as a prediction function.

The folder holds everything needed to rebuild the model, and nothing executable:

* ``model.safetensors`` -- the weights (safetensors: no pickle, so loading runs no code);
* the tokenizer files (``tokenizer.save_pretrained``);
* ``config.json`` -- the encoder's Hugging Face config, the head layout, the label
  names, ``max_length`` and the labkit version.

:func:`load_pipeline` first checks the whole folder (:func:`check_model_folder`: every
field of config.json, the weights file's header, every tensor's name, shape and values,
the tokenizer), then rebuilds the same :class:`~labkit.nn.SequenceClassifier` from the
config and loads the saved weights strictly. Every problem found raises one
:class:`ModelFolderError`, a sentence naming the file, the field and what was expected.
"""
from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .check import one_of, probability, whole_number
from .nn import SequenceClassifier

__all__ = ["save_pipeline", "load_pipeline", "check_model_folder", "read_config", "ModelFolderError",
           "TextClassifier", "Prediction", "FORMAT"]

FORMAT = "labkit-text-classifier"
FORMAT_VERSION = 1
KNOWN_FORMAT_VERSIONS = (1,)
WEIGHTS, CONFIG = "model.safetensors", "config.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
TOKENIZER_VOCABULARIES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                          "tokenizer.model")
HEAD_CLASS, POOLING = "labkit.nn.SequenceClassifier", "masked mean over tokens"


class ModelFolderError(ValueError):
    """A saved model folder that does not hold what save_pipeline writes.

    Its message is one sentence naming the file, the field and what was expected.
    """


class MissingModelFileError(ModelFolderError, FileNotFoundError):
    """The folder, or a file it needs, is not there (a FileNotFoundError too, as before)."""


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
    whole_number("max_length", max_length, maximum=max_tokens(model.encoder.config))   # the positions it has
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tensors, aliases = _dedupe(model.state_dict())
    save_file(tensors, str(out / WEIGHTS), metadata={"format": FORMAT, "aliases": json.dumps(aliases)})
    tokenizer.save_pretrained(str(out))
    config = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "labkit_version": __version__,
        "labels": labels, "n_classes": len(labels), "max_length": max_length,
        "head": {"class": HEAD_CLASS, "pooling": POOLING,
                 "dropout": model.dropout.p, "in_features": model.head.in_features,
                 "out_features": model.head.out_features},
        "encoder": model.encoder.config.to_dict(),
    }
    (out / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return out


# ---------------------------------------------------------------- checking a saved folder
def _short(v: Any, n: int = 60) -> str:
    r = repr(v)
    return r if len(r) <= n else r[:n - 3] + "..."


def _guard(where: Path, check, key: str, value: Any, **kw) -> Any:
    """A labkit.check guard on one field; its message becomes a ModelFolderError naming the file."""
    try:
        return check(f"{key!r}", value, **kw)
    except ValueError as e:
        raise ModelFolderError(f"{where}: {e}") from None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise ModelFolderError(f"{path} is not UTF-8 text: {what} must be a JSON file") from None
    except (json.JSONDecodeError, RecursionError) as e:
        raise ModelFolderError(f"{path} is not valid JSON ({e}): {what} must be a JSON object; "
                               f"the file is damaged or was cut short") from None


def _require_files(where: Path) -> None:
    if not where.is_dir():
        raise MissingModelFileError(f"model directory {str(where)!r} does not exist (or is not a folder)")
    missing = [n for n in (CONFIG, WEIGHTS, TOKENIZER_CONFIG) if not (where / n).is_file()]
    if not any((where / n).is_file() for n in TOKENIZER_VOCABULARIES):
        missing.append("the tokenizer's vocabulary (tokenizer.json or vocab.txt)")
    if missing:
        raise MissingModelFileError(f"model directory {str(where)!r} lacks {', '.join(missing)}: write the "
                                    f"folder with labkit.pipeline.save_pipeline (config.json, model.safetensors "
                                    f"and the tokenizer files)")


def _check_labels(where: Path, labels: Any) -> list[str]:
    if not isinstance(labels, list):
        raise ModelFolderError(f"{where}: 'labels' must be a list of label names (strings), one per head output; "
                               f"got a {type(labels).__name__}: {_short(labels)}")
    for i, name in enumerate(labels):
        if not isinstance(name, str) or not name.strip():
            raise ModelFolderError(f"{where}: 'labels[{i}]' must be a non-empty string (a label name); "
                                   f"got {_short(name)}")
    twice = sorted({name for name in labels if labels.count(name) > 1})
    if twice:
        raise ModelFolderError(f"{where}: 'labels' names {twice[0]!r} more than once: every head output needs "
                               f"its own name")
    if len(labels) < 2:
        raise ModelFolderError(f"{where}: 'labels' must name at least 2 classes; got {_short(labels)}")
    return labels


def read_config(directory) -> dict:
    """config.json of a saved folder, checked field by field against what :func:`save_pipeline` writes.

    The folder must exist and hold config.json, model.safetensors and the tokenizer files; the
    encoder config is checked only for a known ``model_type`` here (:func:`check_model_folder` builds it).
    """
    where = Path(directory)
    _require_files(where)
    file = where / CONFIG
    config = _read_json(file, "config.json")
    if not isinstance(config, dict):
        raise ModelFolderError(f"{file} must hold a JSON object (save_pipeline writes one); "
                               f"it holds a {type(config).__name__}")
    if config.get("format") != FORMAT:
        raise ModelFolderError(f"{file} was not written by labkit.pipeline.save_pipeline (its 'format' is "
                               f"{_short(config.get('format'))}, expected {FORMAT!r}); a plain Hugging Face model "
                               f"folder needs transformers instead")
    version = config.get("format_version")
    if _is_int(version) and version > FORMAT_VERSION:
        raise ModelFolderError(f"{file}: 'format_version' is {version}, written by a newer labkit; this labkit "
                               f"reads format_version {FORMAT_VERSION}: upgrade labkit")
    if not (_is_int(version) and version in KNOWN_FORMAT_VERSIONS):
        raise ModelFolderError(f"{file}: 'format_version' must be {' or '.join(map(str, KNOWN_FORMAT_VERSIONS))} "
                               f"(the versions this labkit reads); got {_short(version)}")
    if "labkit_version" in config and not isinstance(config["labkit_version"], str):
        raise ModelFolderError(f"{file}: 'labkit_version' must be a string such as '0.1.0'; "
                               f"got {_short(config['labkit_version'])}")
    for key in ("labels", "n_classes", "max_length", "head", "encoder"):
        if key not in config:
            raise ModelFolderError(f"{file} lacks the field {key!r} (save_pipeline writes it)")
    labels = _check_labels(file, config["labels"])
    _guard(file, whole_number, "n_classes", config["n_classes"], minimum=2)
    if config["n_classes"] != len(labels):
        raise ModelFolderError(f"{file}: 'n_classes' is {config['n_classes']} but 'labels' has {len(labels)} "
                               f"names: one name per class")
    _guard(file, whole_number, "max_length", config["max_length"], minimum=1)
    head = config["head"]
    if not isinstance(head, dict):
        raise ModelFolderError(f"{file}: 'head' must be an object (class, pooling, dropout, in_features, "
                               f"out_features); got {_short(head)}")
    for key in ("class", "pooling", "dropout", "in_features", "out_features"):
        if key not in head:
            raise ModelFolderError(f"{file}: 'head' lacks the field {key!r} (save_pipeline writes it)")
    _guard(file, one_of, "head.class", head["class"], choices=(HEAD_CLASS,))
    _guard(file, one_of, "head.pooling", head["pooling"], choices=(POOLING,))
    _guard(file, probability, "head.dropout", head["dropout"], open_high=True)
    _guard(file, whole_number, "head.in_features", head["in_features"], minimum=1)
    _guard(file, whole_number, "head.out_features", head["out_features"], minimum=2)
    if head["out_features"] != len(labels):
        raise ModelFolderError(f"{file}: 'head.out_features' is {head['out_features']} but 'labels' has "
                               f"{len(labels)} names: one name per head output")
    encoder = config["encoder"]
    if not isinstance(encoder, dict):
        raise ModelFolderError(f"{file}: 'encoder' must be an object (the encoder's Hugging Face config); "
                               f"got {_short(encoder)}")
    model_type = encoder.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise ModelFolderError(f"{file}: 'encoder.model_type' must name a Hugging Face model type such as 'bert'; "
                               f"got {_short(model_type)}")
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    known = list(CONFIG_MAPPING.keys())
    if model_type not in known:
        close = difflib.get_close_matches(model_type, known, n=3)
        raise ModelFolderError(f"{file}: 'encoder.model_type' is {model_type!r}, a model type this transformers "
                               f"does not know" + (f" (close matches: {', '.join(map(repr, close))})" if close else ""))
    return config


# Encoders with learned absolute positions: the longest input is max_position_embeddings (RoBERTa-style
# tables start after the padding id, so they hold pad_token_id + 1 fewer positions).
_POSITION_TABLES = {"bert": False, "distilbert": False, "albert": False, "electra": False, "roberta": True,
                    "xlm-roberta": True, "camembert": True, "mpnet": True}


def max_tokens(encoder_config) -> int | None:
    """The longest input (in tokens) of an encoder with a table of learned positions; None: no fixed limit known."""
    positions = getattr(encoder_config, "max_position_embeddings", None)
    offset = _POSITION_TABLES.get(getattr(encoder_config, "model_type", None))
    if offset is None or not _is_int(positions):
        return None
    pad = getattr(encoder_config, "pad_token_id", None)
    return positions - ((pad + 1 if _is_int(pad) else 1) if offset else 0)


def _encoder_config(file: Path, config: dict):
    from transformers import AutoConfig
    enc = dict(config["encoder"])
    model_type = enc.pop("model_type")
    try:
        encoder_config = AutoConfig.for_model(model_type, **enc)
    except Exception as e:          # transformers raises many kinds for a bad value: one message names the field
        raise ModelFolderError(f"{file}: 'encoder' is not a valid {model_type} config "
                               f"({type(e).__name__}: {_short(' '.join(str(e).split()), 200)})") from None
    limit = max_tokens(encoder_config)
    if limit is not None and config["max_length"] > limit:
        raise ModelFolderError(f"{file}: 'max_length' is {config['max_length']} but this {model_type} encoder "
                               f"(encoder.max_position_embeddings={encoder_config.max_position_embeddings}) reads "
                               f"at most {limit} tokens")
    return encoder_config


def _expected_tensors(file: Path, config: dict, encoder_config) -> dict[str, tuple[tuple, bool]]:
    """name -> (shape, is floating point) of every tensor of the model config.json describes (built on 'meta')."""
    from transformers import AutoModel
    head = config["head"]
    try:
        with torch.device("meta"):    # shapes only: no memory, no initialisation
            model = SequenceClassifier(AutoModel.from_config(encoder_config), n_classes=head["out_features"],
                                       dropout=head["dropout"])
    except Exception as e:
        raise ModelFolderError(f"{file}: 'encoder' does not describe a model transformers can build "
                               f"({type(e).__name__}: {_short(' '.join(str(e).split()), 200)})") from None
    if model.head.in_features != head["in_features"]:
        raise ModelFolderError(f"{file}: 'head.in_features' is {head['in_features']} but the encoder described by "
                               f"'encoder' outputs vectors of width {model.head.in_features}")
    return {name: (tuple(t.shape), t.is_floating_point()) for name, t in model.state_dict().items()}


_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
                "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def read_safetensors_header(path) -> tuple[dict[str, tuple[str, tuple]], dict]:
    """(name -> (dtype, shape), metadata) of a safetensors file, read without the safetensors library.

    The format: 8 bytes (little-endian length N), N bytes of JSON header, then the tensors' bytes. Every
    header entry is checked against the file's size, so a copy cut short is named, not crashed on.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        first = f.read(8)
        if len(first) < 8:
            raise ModelFolderError(f"{path} is {size} bytes long: too short for a safetensors file (8 bytes of "
                                   f"header length, a JSON header, the tensors); the copy is empty or was cut short")
        n = int.from_bytes(first, "little")
        if n > min(size - 8, 100 * 2 ** 20):
            raise ModelFolderError(f"{path}: its first 8 bytes announce a {n}-byte header but {size - 8} bytes "
                                   f"follow them: not a safetensors file, or a copy cut short")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        header = None
    if not isinstance(header, dict):
        raise ModelFolderError(f"{path}: its header is not a JSON object: not a safetensors file, or a damaged one")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ModelFolderError(f"{path}: its header's '__metadata__' must map names to strings: a damaged file")
    data, end, tensors = size - 8 - n, 0, {}
    for name, entry in header.items():
        shape = entry.get("shape") if isinstance(entry, dict) else None
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(entry, dict) and entry.get("dtype") in _DTYPE_BYTES and isinstance(shape, list)
                and all(_is_int(d) and d >= 0 for d in shape) and isinstance(offsets, list) and len(offsets) == 2
                and all(_is_int(o) for o in offsets) and 0 <= offsets[0] <= offsets[1]):
            raise ModelFolderError(f"{path}: the header entry of tensor {name!r} is not a dtype, a shape and two "
                                   f"data offsets: a damaged file")
        need = math.prod(shape) * _DTYPE_BYTES[entry["dtype"]]
        if offsets[1] - offsets[0] != need:
            raise ModelFolderError(f"{path}: tensor {name!r} ({entry['dtype']}, shape {shape}) needs {need} bytes "
                                   f"but the header gives it {offsets[1] - offsets[0]}: a damaged file")
        if offsets[1] > data:
            raise ModelFolderError(f"{path}: tensor {name!r} ends at byte {offsets[1]} of the data but the file "
                                   f"holds {data} bytes of data: the copy was cut short")
        tensors[name], end = (entry["dtype"], tuple(shape)), max(end, offsets[1])
    if end != data:
        raise ModelFolderError(f"{path}: {data - end} bytes follow the last tensor: a damaged file")
    return tensors, metadata


def _check_weights(file: Path, config_file: Path, expected: dict) -> dict[str, torch.Tensor]:
    """The weights, every name, shape and value checked against the model config.json describes."""
    from safetensors import safe_open
    tensors, metadata = read_safetensors_header(file)
    if metadata.get("format") != FORMAT:
        raise ModelFolderError(f"{file} was not written by labkit.pipeline.save_pipeline (its metadata 'format' is "
                               f"{_short(metadata.get('format'))}, expected {FORMAT!r}): weights from another model?")
    try:
        aliases = json.loads(metadata.get("aliases", "{}"))
    except json.JSONDecodeError:
        aliases = None
    if not (isinstance(aliases, dict) and all(k in tensors and isinstance(v, list)
                                              and all(isinstance(x, str) for x in v) for k, v in aliases.items())):
        raise ModelFolderError(f"{file}: its metadata 'aliases' must map stored tensor names to lists of other "
                               f"names: a damaged file")
    shapes = {name: shape for name, (_, shape) in tensors.items()}
    shapes.update({other: shapes[name] for name, others in aliases.items() for other in others})
    missing, extra = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
    if missing or extra:
        parts = ([f"it lacks {len(missing)} of the model's {len(expected)} tensors (e.g. {missing[0]!r})"] if missing
                 else []) + ([f"{len(extra)} of its tensors {'is' if len(extra) == 1 else 'are'} not in that model "
                                   f"(e.g. {extra[0]!r})"] if extra else [])
        raise ModelFolderError(f"{file} does not match the model described by {config_file}: {' and '.join(parts)}: "
                               f"the weights come from another model, or the copy is incomplete")
    wrong = [name for name in sorted(shapes) if shapes[name] != expected[name][0]]
    if wrong:
        name = wrong[0]
        raise ModelFolderError(f"{file} does not match the model described by {config_file}: tensor {name!r} has "
                               f"shape {list(shapes[name])}, expected {list(expected[name][0])}"
                               + (f" ({len(wrong) - 1} more tensors differ too)" if len(wrong) > 1 else "")
                               + ": the weights come from another model")
    kinds = [name for name, (dtype, _) in tensors.items() if dtype.startswith(("F", "BF")) != expected[name][1]]
    if kinds:
        raise ModelFolderError(f"{file}: tensor {kinds[0]!r} is stored as {tensors[kinds[0]][0]}, but the model "
                               f"expects {'floating-point' if expected[kinds[0]][1] else 'integer'} values")
    state, broken, bad_values = {}, [], 0
    try:
        with safe_open(str(file), framework="pt") as f:
            for name in tensors:
                t = state[name] = f.get_tensor(name)
                if t.is_floating_point():
                    n_bad = int((~torch.isfinite(t)).sum())
                    if n_bad:
                        broken.append(name)
                        bad_values += n_bad
    except Exception as e:          # the header was checked: this is a damaged data section
        raise ModelFolderError(f"{file} cannot be read ({type(e).__name__}: {_short(str(e), 120)}): "
                               f"a damaged file") from None
    if broken:
        raise ModelFolderError(f"{file}: {len(broken)} of its {len(tensors)} tensors "
                               f"{'holds' if len(broken) == 1 else 'hold'} NaN or infinite values "
                               f"({bad_values} numbers in all, e.g. in {broken[0]!r}): the weights are damaged, "
                               f"or come from a training run that diverged")
    state.update({other: state[name] for name, others in aliases.items() for other in others})
    return state


def _largest_token_id(tokenizer_json: dict) -> int | None:
    model = tokenizer_json.get("model")
    vocab = model.get("vocab") if isinstance(model, dict) else None
    ids = list(vocab.values()) if isinstance(vocab, dict) else [len(vocab) - 1] if isinstance(vocab, list) else []
    ids += [t.get("id") for t in tokenizer_json.get("added_tokens") or [] if isinstance(t, dict)]
    ids = [i for i in ids if _is_int(i)]
    return max(ids) if ids else None


def _check_tokenizer(where: Path, encoder_config):
    """The tokenizer files: valid JSON, ids that fit the encoder's embedding table; then the tokenizer itself."""
    from transformers import AutoTokenizer
    if not isinstance(_read_json(where / TOKENIZER_CONFIG, "tokenizer_config.json"), dict):
        raise ModelFolderError(f"{where / TOKENIZER_CONFIG} must hold a JSON object (the tokenizer's settings)")
    if (where / "tokenizer.json").is_file():
        spec = _read_json(where / "tokenizer.json", "tokenizer.json")
        if not isinstance(spec, dict) or not isinstance(spec.get("model"), dict):
            raise ModelFolderError(f"{where / 'tokenizer.json'} must hold a JSON object with a 'model' "
                                   f"(a tokenizers file): a damaged file")
        largest, rows = _largest_token_id(spec), getattr(encoder_config, "vocab_size", None)
        if largest is not None and _is_int(rows) and largest >= rows:
            raise ModelFolderError(f"{where / 'tokenizer.json'}: its token ids go up to {largest} but the encoder "
                                   f"has {rows} embedding rows (encoder.vocab_size in {CONFIG}): the tokenizer "
                                   f"belongs to another model")
    try:
        return AutoTokenizer.from_pretrained(str(where))
    except Exception as e:          # tokenizers and transformers raise many kinds: one message names the folder
        raise ModelFolderError(f"the tokenizer files in {str(where)!r} cannot be loaded ({type(e).__name__}: "
                               f"{_short(' '.join(str(e).split()), 160)}): save them again with "
                               f"tokenizer.save_pretrained") from None


@dataclass
class _Checked:
    config: dict
    encoder_config: Any
    state: dict
    tokenizer: Any


def _check_folder(directory) -> _Checked:
    where = Path(directory)
    config = read_config(where)
    encoder_config = _encoder_config(where / CONFIG, config)
    expected = _expected_tensors(where / CONFIG, config, encoder_config)
    state = _check_weights(where / WEIGHTS, where / CONFIG, expected)
    return _Checked(config, encoder_config, state, _check_tokenizer(where, encoder_config))


def check_model_folder(directory) -> dict:
    """Check a folder written by :func:`save_pipeline` before anything is built; returns its config.

    config.json field by field (types, ranges, labels vs head size, format_version, model_type), the
    weights (a readable header, every expected tensor with its expected shape, all values finite) and
    the tokenizer files. Raises :class:`ModelFolderError`, naming the file, the field and what was expected.
    """
    return _check_folder(directory).config


def load_pipeline(directory, *, device: str | torch.device = "cpu", batch_size: int = 32) -> TextClassifier:
    """Rebuild the classifier saved in ``directory`` and return it as a :class:`TextClassifier` (eval mode)."""
    from transformers import AutoModel

    checked = _check_folder(directory)     # every problem of the folder raises ModelFolderError here
    config, head = checked.config, checked.config["head"]
    encoder = AutoModel.from_config(checked.encoder_config)
    model = SequenceClassifier(encoder, n_classes=head["out_features"], dropout=head["dropout"])
    # strict: every tensor in the file must fit the rebuilt model and every model tensor must be in the file
    model.load_state_dict(checked.state, strict=True)
    model.to(device).eval()
    return TextClassifier(model, checked.tokenizer, config["labels"], config["max_length"], batch_size=batch_size)
