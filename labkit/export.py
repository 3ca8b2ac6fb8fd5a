"""Serving chapter 3.6's classifier without its training code: ONNX + onnxruntime, and dynamic int8 quantisation.

* :func:`to_onnx` writes the classifier (encoder + masked mean + head) as one ONNX graph with a dynamic
  batch and a dynamic number of tokens, weights inside the one ``.onnx`` file. ``exporter="dynamo"`` is
  ``torch.onnx.export(..., dynamo=True)``, the torch.export-based exporter and PyTorch's default since 2.9
  (it needs the ``onnxscript`` package); ``exporter="torchscript"`` is the older tracer, which still runs in
  torch 2.13 but warns that it will be removed. Both work offline and give the same logits to about 1e-7;
  on all-MiniLM-L6-v2 the dynamo exporter takes about 4-5 times the CPU time (about 8 s against 2 s here),
  which is why the smoke profile, used by the tests, exports with the tracer.
* :class:`OnnxTextClassifier` runs that file with onnxruntime behind the same ``predict_logits(texts)`` as
  :class:`labkit.pipeline.TextClassifier`: the same tokenizer, padding and batches, so outputs compare
  one to one.
* :func:`quantize_int8` applies dynamic int8 quantisation (``torch.ao.quantization.quantize_dynamic``) to the
  encoder's ``nn.Linear`` layers: weights stored as int8 with one scale per output row (per channel; one
  scale per whole matrix distorts all-MiniLM-L6-v2's sentence vectors about twice as much), activations
  quantised on the fly, per batch, at each matrix product. What stays in float32, and why: the embedding tables (a lookup, not a
  matrix product, so dynamic quantisation has nothing to speed up; they are about half of all-MiniLM-L6-v2's
  parameters, which caps the size ratio near 1.6x), LayerNorm (its statistics need the precision; few
  numbers), the biases, and the classification head (769 numbers that decide the label).
  ``quantize_dynamic`` is deprecated in favour of the separate ``torchao`` package's ``quantize_`` API; in
  torch 2.13 it still runs, with x86 int8 kernels (fbgemm), and needs nothing more installed.
* :func:`serialized_size` and :func:`time_interleaved` measure size and speed; :func:`onnx_verdict` and
  :func:`int8_verdict` word the result from the numbers.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import statistics
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .check import number, one_of, positive, whole_number

__all__ = ["EXPORTERS", "to_onnx", "OnnxTextClassifier", "quantize_int8", "float_layers", "serialized_size",
           "time_interleaved", "ratio_range", "onnx_verdict", "int8_verdict"]


class _Logits(torch.nn.Module):
    """The classifier as a function of (input_ids, attention_mask) -> logits, in eval mode."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids, attention_mask)


EXPORTERS = ("dynamo", "torchscript")


def to_onnx(model: torch.nn.Module, tokenizer, path, *, example_texts: list[str], max_length: int = 48,
            exporter: str = "dynamo", opset: int = 18) -> Path:
    """Export ``model`` (a :class:`~labkit.nn.SequenceClassifier`) to ``path`` with dynamic batch and tokens."""
    from torch.export import Dim
    one_of("exporter", exporter, EXPORTERS)
    whole_number("max_length", max_length, minimum=2)
    if not example_texts or len(example_texts) < 2:
        raise ValueError("example_texts must hold at least 2 texts: the exporter traces a batch, and a batch of "
                         "one would fix the batch size at 1")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    enc = tokenizer(list(example_texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    names = dict(input_names=["input_ids", "attention_mask"], output_names=["logits"], opset_version=opset,
                 verbose=False)
    was_training = model.training
    model.eval()
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)            # the exporter logs every operator family it skips (torchvision's)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        args = (enc["input_ids"], enc["attention_mask"])
        if exporter == "dynamo":
            batch, tokens = Dim("batch", min=1, max=1024), Dim("tokens", min=2, max=max_length)
            torch.onnx.export(_Logits(model), args, str(path), dynamo=True, external_data=False,
                              dynamic_shapes=({0: batch, 1: tokens}, {0: batch, 1: tokens}), **names)
        else:
            axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                    "logits": {0: "batch"}}
            torch.onnx.export(_Logits(model), args, str(path), dynamo=False, dynamic_axes=axes, **names)
    onnx_log.setLevel(level)
    model.train(was_training)
    return path


class OnnxTextClassifier:
    """An ONNX file run by onnxruntime, with the tokenizer and batching of :class:`labkit.pipeline.TextClassifier`."""

    def __init__(self, path, tokenizer, labels: list[str], max_length: int, batch_size: int = 32, threads: int = 1):
        import onnxruntime as ort
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no ONNX file at {str(path)!r}: write it with labkit.export.to_onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = whole_number("threads", threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer, self.labels = tokenizer, list(labels)
        self.max_length, self.batch_size = int(max_length), whole_number("batch_size", batch_size)

    def predict_logits(self, texts: list[str]) -> torch.Tensor:
        """Logits of shape (len(texts), n_classes), in batches of ``batch_size`` texts."""
        if isinstance(texts, str) or not isinstance(texts, (list, tuple)) or not texts:
            raise TypeError(f"texts must be a non-empty list of strings; got {texts!r:.60}")
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
        if bad:
            raise ValueError(f"texts[{bad[0]}] is not a non-empty string: every text needs at least one word")
        out = []
        for i in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(texts[i:i + self.batch_size], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="np")
            feeds = {"input_ids": enc["input_ids"].astype(np.int64),
                     "attention_mask": enc["attention_mask"].astype(np.int64)}
            out.append(torch.from_numpy(self.session.run(["logits"], feeds)[0]))
        return torch.cat(out)


# ----------------------------------------------------------------------------- int8
def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` whose encoder's ``nn.Linear`` layers are dynamically quantised to int8 (CPU only)."""
    if not hasattr(model, "encoder"):
        raise TypeError(f"model must have an .encoder (a labkit.nn.SequenceClassifier); got {type(model).__name__}")
    q = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # the deprecation notices (torchao is the successor)
        qconfig = torch.ao.quantization.per_channel_dynamic_qconfig      # one scale per output row of W
        q.encoder = torch.ao.quantization.quantize_dynamic(q.encoder, {torch.nn.Linear: qconfig}, dtype=torch.qint8)
    return q


def float_layers(model: torch.nn.Module) -> dict[str, int]:
    """The kinds of layer that hold float32 weights in ``model``, with how many numbers each kind holds."""
    counts: dict[str, int] = {}
    for module in model.modules():
        own = [p for p in module.parameters(recurse=False) if p.dtype.is_floating_point]
        if own:
            kind = type(module).__name__
            counts[kind] = counts.get(kind, 0) + sum(p.numel() for p in own)
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def serialized_size(model: torch.nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: what the weights take on disk."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


# ----------------------------------------------------------------------------- timing and verdicts
def time_interleaved(runs: dict[str, Callable[[], object]], repeats: int = 5) -> dict[str, list[float]]:
    """Seconds of each run, in interleaved rounds (a, b, c, a, b, c, ...) after one warm-up round, so that
    load on a shared machine hits every run alike; ratios are best taken round by round (:func:`ratio_range`)."""
    whole_number("repeats", repeats)
    for fn in runs.values():
        fn()
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - t0)
    return seconds


def ratio_range(seconds: dict[str, list[float]], slow: str, fast: str) -> tuple[float, float, float]:
    """How many times faster ``fast`` ran than ``slow``, round by round: (lowest, median, highest)."""
    ratios = sorted(a / b for a, b in zip(seconds[slow], seconds[fast]))
    return ratios[0], statistics.median(ratios), ratios[-1]


def _speed_words(low: float, mid: float, high: float, what: str) -> str:
    if low > 1.0:
        return f"{what} is faster in every round ({mid:.2f}x, range {low:.2f}-{high:.2f})"
    if high < 1.0:
        return f"{what} is slower in every round ({mid:.2f}x, range {low:.2f}-{high:.2f})"
    return f"{what} is neither clearly faster nor slower ({mid:.2f}x, range {low:.2f}-{high:.2f}: the rounds disagree)"


def onnx_verdict(max_abs_diff: float, speed: tuple[float, float, float], tol: float = 1e-4) -> str:
    """Whether the ONNX logits match PyTorch's within ``tol``, and how the speed compares."""
    number("max_abs_diff", max_abs_diff, minimum=0)
    positive("tol", tol)
    same = (f"ONNX logits match PyTorch's (max |difference| {max_abs_diff:.2g} <= {tol:g})" if max_abs_diff <= tol
            else f"ONNX logits DIFFER from PyTorch's (max |difference| {max_abs_diff:.2g} > {tol:g}): do not serve this file")
    return same + "; " + _speed_words(*speed, "onnxruntime")


def int8_verdict(size_ratio: float, speed: tuple[float, float, float], acc_drop_points: float, *,
                 min_size_ratio: float = 1.5, max_drop_points: float = 1.0) -> str:
    """The int8 model against the targets: ``size_ratio`` times smaller, ``acc_drop_points`` accuracy lost."""
    positive("size_ratio", size_ratio)
    number("acc_drop_points", acc_drop_points)
    size = (f"{size_ratio:.2f}x smaller (target >= {min_size_ratio:g}x: "
            f"{'met' if size_ratio >= min_size_ratio else 'NOT met'})")
    lost = "gained" if acc_drop_points < 0 else "lost"
    acc = (f"{abs(acc_drop_points):.1f} accuracy points {lost} (target <= {max_drop_points:g} lost: "
           f"{'met' if acc_drop_points <= max_drop_points else 'NOT met'})")
    return f"int8: {size}; {acc}; " + _speed_words(*speed, "int8")
