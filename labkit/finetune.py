"""Fine-tuning helpers: choosing which parameters train (top-k blocks, BitFit, gradual
unfreezing with discriminative learning rates), knowledge distillation, and measuring what
training costs. Freezing and counting parameters: :mod:`labkit.nn` (``freeze``,
``count_parameters``). LoRA and adapters: :mod:`labkit.lora`, :mod:`labkit.adapters`."""
from __future__ import annotations

import copy
import os
import threading
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from .check import number, positive, probability, whole_number
from .nn.parameters import count_parameters, freeze  # noqa: F401 - their home is labkit.nn; kept importable here
from .train import Callback, History, fit


# ----------------------------------------------------------------------------- which parameters train
__all__ = ["encoder_layers", "unfreeze_top_k", "bitfit", "layerwise_param_groups", "GradualUnfreezing",
           "distillation_loss", "distill", "soft_targets", "slice_layers", "memory_breakdown", "Meter"]


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks, bottom first (BERT ``encoder.layer``, DistilBERT ``transformer.layer``)."""
    for path in ("encoder.layer", "transformer.layer", "encoder.encoder.layer", "encoder.transformer.layer", "layer"):
        try:
            layers = model.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(layers, nn.ModuleList):
            return layers
    raise ValueError(f"model ({type(model).__name__}) has no encoder.layer / transformer.layer block list")


def unfreeze_top_k(encoder: nn.Module, k: int) -> nn.Module:
    """Freeze the whole encoder, then let only its top ``k`` blocks train (k=0: a frozen encoder)."""
    layers = encoder_layers(encoder)
    whole_number("k", k, minimum=0, maximum=len(layers))  # the encoder has len(layers) blocks
    freeze(encoder)
    for layer in layers[len(layers) - k:]:
        freeze(layer, frozen=False)
    return encoder


def bitfit(model: nn.Module, head: str = "head") -> nn.Module:
    """BitFit (Ben Zaken et al., arXiv:2106.10199): only the bias terms and the task head train."""
    names = dict(model.named_modules())
    if head and head not in names:
        raise ValueError(f"head {head!r} is not a submodule of the model; top-level modules: {list(dict(model.named_children()))}")
    for name, p in model.named_parameters():
        p.requires_grad_(name.endswith("bias") or (bool(head) and name.startswith(head + ".")))
    return model


def layerwise_param_groups(model: nn.Module, base_lr: float, decay: float = 0.8, head: str = "head") -> list[dict]:
    """Discriminative learning rates (ULMFiT, arXiv:1801.06146): ``base_lr · decay**depth``.

    Depth 0 is the head (and anything outside the encoder), depth 1 the top block,
    ..., depth L+1 the embeddings. Every parameter, frozen or not, lands in exactly
    one group, so an optimizer built once still updates blocks unfrozen later.
    """
    positive("base_lr", base_lr)
    number("decay", decay, minimum=0, maximum=1, open_low=True)
    layers = encoder_layers(model)
    depth_of = {id(p): len(layers) - i for i, layer in enumerate(layers) for p in layer.parameters()}
    groups: dict[int, list] = {}
    for name, p in model.named_parameters():
        depth = depth_of.get(id(p), len(layers) + 1 if "embeddings" in name else 0)
        groups.setdefault(depth, []).append(p)
    label = lambda d: "head" if d == 0 else "embeddings" if d == len(layers) + 1 else f"block {len(layers) - d}"
    return [{"params": groups[d], "lr": base_lr * decay ** d, "name": label(d)} for d in sorted(groups)]


class GradualUnfreezing(Callback):
    """ULMFiT's gradual unfreezing: epoch 1 trains only what is outside the encoder (the head);
    each later epoch unfreezes ``per_epoch`` more blocks, top-down, then the embeddings.

    Build the optimizer over *all* parameters (e.g. with :func:`layerwise_param_groups`):
    frozen parameters get no gradient, and AdamW skips them until they thaw.
    """

    def __init__(self, encoder: nn.Module, per_epoch: int = 1):
        whole_number("per_epoch", per_epoch, minimum=1)
        self.encoder, self.per_epoch, self.unfrozen = encoder, per_epoch, 0
        self.stages = list(reversed(list(encoder_layers(encoder))))
        if hasattr(encoder, "embeddings"):
            self.stages.append(encoder.embeddings)

    def _apply(self) -> None:
        freeze(self.encoder)
        for stage in self.stages[:self.unfrozen]:
            freeze(stage, frozen=False)

    def on_fit_start(self, state) -> None:
        self._apply()

    def on_epoch_end(self, state) -> None:
        self.unfrozen = min(len(self.stages), self.unfrozen + self.per_epoch)
        self._apply()

    def state_dict(self) -> dict:
        return {"unfrozen": self.unfrozen}

    def load_state_dict(self, d: dict) -> None:
        self.unfrozen = d["unfrozen"]
        self._apply()


# ----------------------------------------------------------------------------- knowledge distillation
def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                      T: float = 2.0, alpha: float = 0.5) -> torch.Tensor:
    """Hinton et al. (arXiv:1503.02531): ``alpha·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1−alpha)·CE(s, y)``.

    The T² keeps the soft-target gradients on the same scale as the hard ones
    when T changes. The KL is averaged over the batch, like the cross-entropy.
    """
    positive("T (temperature)", T)
    probability("alpha", alpha)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits {tuple(student_logits.shape)} and teacher_logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape")
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=-1), F.log_softmax(teacher_logits / T, dim=-1),
                    reduction="batchmean", log_target=True)
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(student_logits, targets)


@torch.no_grad()
def _teacher_logits(teacher: nn.Module, inputs: list[torch.Tensor], batch_size: int = 64) -> torch.Tensor:
    was_training = teacher.training
    teacher.eval()
    out = torch.cat([teacher(*(t[i:i + batch_size] for t in inputs)) for i in range(0, len(inputs[0]), batch_size)])
    teacher.train(was_training)
    return out


def distill(student: nn.Module, teacher: nn.Module, train: TensorDataset, *, T: float = 2.0, alpha: float = 0.5,
            **fit_kwargs) -> History:
    """Train ``student`` on ``train`` (inputs..., labels) against the teacher's soft targets with :func:`fit`."""
    positive("T (temperature)", T)
    probability("alpha", alpha)
    *inputs, labels = train.tensors
    data = TensorDataset(*inputs, _teacher_logits(teacher, inputs), labels)
    return fit(student, data, forward=lambda model, b: (model(*b[:-2]), (b[-2], b[-1])),
               loss_fn=lambda s, tgt: distillation_loss(s, tgt[0], tgt[1], T, alpha), **fit_kwargs)


def soft_targets(teacher: nn.Module, data: TensorDataset, T: float = 2.0) -> dict[str, float]:
    """What a student would learn from ``teacher`` on the transfer set ``data`` (inputs..., labels): how often the
    teacher agrees with the labels, and how sure it is: the mean probability of its top class at T = 1 and at the
    distillation temperature ``T``, and the mean entropy of its softened targets as a share of the maximum
    (0: one-hot, like a hard label; 1: uniform)."""
    positive("T (temperature)", T)
    *inputs, labels = data.tensors
    logits = _teacher_logits(teacher, inputs).float()
    p1, pT = logits.softmax(-1), (logits / T).softmax(-1)
    entropy = -(pT * pT.clamp(min=1e-12).log()).sum(-1) / torch.log(torch.tensor(float(logits.shape[-1])))
    return {"T": T, "agrees with labels": float((logits.argmax(-1) == labels).float().mean()),
            "top-class probability at T=1": float(p1.max(-1).values.mean()),
            "top-class probability at T": float(pT.max(-1).values.mean()),
            "entropy share at T": float(entropy.mean())}


def slice_layers(encoder: nn.Module, keep: list[int]) -> nn.Module:
    """A copy of ``encoder`` with only the blocks at indices ``keep`` (a smaller student, à la DistilBERT)."""
    layers = encoder_layers(encoder)
    if not keep or any(not 0 <= i < len(layers) for i in keep):
        raise ValueError(f"keep must be a non-empty list of block indices in [0, {len(layers) - 1}]; got {keep!r}")
    small = copy.deepcopy(encoder)
    target = encoder_layers(small)
    kept = [target[i] for i in keep]
    for i in reversed(range(len(target))):
        del target[i]
    target.extend(kept)
    if hasattr(small, "config") and hasattr(small.config, "num_hidden_layers"):
        small.config.num_hidden_layers = len(keep)
    return small


# ----------------------------------------------------------------------------- what training costs
def memory_breakdown(model: nn.Module, *inputs: torch.Tensor) -> dict[str, float]:
    """Megabytes of training state for one batch: weights, gradients, AdamW moments, saved activations.

    Gradients and AdamW's two moments exist only for trainable parameters; the
    activations are the tensors autograd saves for the backward pass (counted
    once each, by storage), measured with ``torch.autograd.graph.saved_tensors_hooks``.
    """
    mb = 1 / 2 ** 20
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    seen: dict[tuple, int] = {}
    params = {p.data_ptr() for p in model.parameters()}

    def pack(t):
        key = (t.untyped_storage().data_ptr(), t.device.type)
        if key[0] not in params:
            seen[key] = t.untyped_storage().nbytes()
        return t

    was_training = model.training
    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(*inputs)
    del out
    model.train(was_training)
    return {"weights MB": weights * mb, "grads MB": trainable * mb, "AdamW state MB": 2 * trainable * mb,
            "activations MB": sum(seen.values()) * mb}


class Meter:
    """``with Meter() as m: ...`` -> ``m.seconds`` (wall time) and ``m.peak_mb``: the peak resident set size
    (RSS) during the block minus the RSS at its start, sampled every ``every`` seconds from /proc/self/statm
    (Linux; elsewhere the growth of ``resource.getrusage`` max-RSS, a process-lifetime high-water mark)."""

    def __init__(self, every: float = 0.01):
        self.every, self.seconds, self.peak_mb = every, 0.0, 0.0

    @staticmethod
    def _rss() -> float | None:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
        except (OSError, ValueError, AttributeError):
            return None

    def _sample(self) -> None:
        while not self._done.wait(self.every):
            self._peak = max(self._peak, self._rss() or 0.0)

    def __enter__(self):
        import resource
        self._start_rss = self._rss()
        self._start_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self._peak, self._done = self._start_rss or 0.0, threading.Event()
        if self._start_rss is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        import resource
        self.seconds = time.perf_counter() - self._t0
        self._done.set()
        if self._start_rss is not None:
            self._thread.join()
            self.peak_mb = max(0.0, max(self._peak, self._rss() or 0.0) - self._start_rss)
        else:
            self.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - self._start_max
        return False
