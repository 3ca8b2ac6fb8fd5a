"""The one training loop every chapter uses.

:func:`train_step` is the textbook step, in the right order: forward -> loss ->
zero_grad -> backward -> clip -> step -> scheduler. :func:`fit` runs it over the
data and adds what a lab needs:

* a budget of ``epochs`` or of ``steps`` (a run that ends on its budget is
  complete, with its last epoch record, not "interrupted");
* a :class:`History` of every step and every epoch (train loss, validation loss
  and metrics), the same object whether the run was interrupted or not;
* callbacks at step and epoch end (live plots, early stopping, your own);
* gradient clipping, a learning-rate scheduler stepped every step;
* checkpoints written atomically, and **exact resume**: a run stopped after k
  steps and resumed ends with the same weights and history as one that never
  stopped (the data order, the random state and the optimizer all come back);
* a NaN or infinite loss stops the run with an error naming the step;
* interrupting the kernel stops at the next step boundary, saves a checkpoint
  and returns the history so far, so nothing is lost;
* under ``torchrun`` the same call trains with several processes
  (DistributedDataParallel, or FSDP with ``parallel="fsdp"``): each process
  takes its share of every global batch, only rank 0 prints, plots and writes
  checkpoints, and exact resume still holds (:mod:`labkit.distributed`).
"""
from __future__ import annotations

import math
import os
import random
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset, default_collate

from . import distributed
from .check import number, one_of, positive, whole_number

__all__ = ["fit", "train_step", "evaluate", "History", "TrainState", "Callback", "EarlyStopping",
           "Batches", "accuracy", "warmup_cosine", "default_forward", "load_checkpoint"]


# ----------------------------------------------------------------------------- data
def as_dataset(data, name: str = "data") -> Dataset:
    """A Dataset as it is; a tuple of tensors as a TensorDataset; anything else is refused."""
    if isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data):
        data = TensorDataset(*data)
    if not hasattr(data, "__len__") or not hasattr(data, "__getitem__"):
        raise TypeError(f"{name} must be a Dataset or a tuple of tensors; got {type(data).__name__}")
    return data


class Batches:
    """Mini-batches of a data set in a seeded order that depends only on (seed, epoch).

    Because the order of epoch ``e`` is a pure function of ``seed`` and ``e``, a
    resumed run can skip straight to batch ``b`` of epoch ``e``.
    """

    def __init__(self, data: Dataset | Sequence[torch.Tensor], batch_size: int, *, shuffle: bool = True,
                 seed: int = 0, collate: Callable | None = None, name: str = "train"):
        data = as_dataset(data, name)
        n = len(data)
        if n == 0:
            raise ValueError(f"{name} is empty: a labelled set needs at least one example")
        whole_number("batch_size", batch_size)
        if batch_size > n:
            raise ValueError(f"batch_size must be at most the size of {name} ({n} examples); got {batch_size}")
        self.data, self.n, self.batch_size = data, n, int(batch_size)
        self.shuffle, self.seed, self.collate = shuffle, int(seed), collate or default_collate
        self._tensors = data.tensors if isinstance(data, TensorDataset) else None

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.n)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g)

    def batch(self, order: torch.Tensor, i: int) -> Any:
        return self.pick(order[i * self.batch_size:(i + 1) * self.batch_size])

    def pick(self, idx: torch.Tensor) -> Any:
        """The examples at indices ``idx``, collated into one batch."""
        if self._tensors is not None:
            return tuple(t[idx] for t in self._tensors)
        return self.collate([self.data[j] for j in idx.tolist()])

    def __iter__(self):
        order = self.order(0)
        for i in range(len(self)):
            yield self.batch(order, i)


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def default_forward(model: torch.nn.Module, batch: Any) -> tuple[Any, Any]:
    """``(inputs..., target)`` -> ``(model(*inputs), target)``; a dict batch needs ``labels``."""
    if isinstance(batch, dict):
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return model(**inputs), batch["labels"]
    *inputs, target = batch
    return model(*inputs), target


def accuracy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose arg-max (or, for one logit, sign) equals the target."""
    if output.ndim == target.ndim:  # one logit per example
        return ((output > 0).long() == target.long()).float().mean()
    return (output.argmax(dim=-1) == target).float().mean()


# ----------------------------------------------------------------------------- history
@dataclass
class History:
    """Every optimisation step and every epoch of a run, as plain numbers."""

    steps: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    interrupted: bool = False

    def to_dict(self) -> dict:
        return {"steps": self.steps, "epochs": self.epochs}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(steps=list(d["steps"]), epochs=list(d["epochs"]))

    def last(self, key: str) -> float:
        """The latest value of ``key`` in the epoch records (e.g. ``"val_acc"``)."""
        for row in reversed(self.epochs):
            if key in row:
                return row[key]
        raise KeyError(f"no epoch record has {key!r}; keys: {sorted(self.epochs[-1]) if self.epochs else []}")

    def frame(self, level: str = "epochs"):
        import pandas as pd
        return pd.DataFrame(getattr(self, level))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, History) and self.to_dict() == other.to_dict()


@dataclass
class TrainState:
    """What callbacks see: the model, the optimizer, where the run is, and its history."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    history: History
    epochs: int
    steps_per_epoch: int
    step: int = 0
    epoch: int = 0
    loss: float = float("nan")
    stop: bool = False
    name: str = "run"
    budget: int | None = None        # steps in all, when the run has a step budget

    @property
    def total_steps(self) -> int:
        return self.budget if self.budget is not None else self.epochs * self.steps_per_epoch


class Callback:
    """Override any of these; a callback with state also defines state_dict/load_state_dict.

    Under torchrun a callback runs on rank 0 only (it prints, plots, logs), unless it sets
    ``every_rank = True`` because every process needs its effect. Setting ``state.stop`` on any
    process stops all of them at the same step.
    """

    every_rank: bool = False

    def on_fit_start(self, state: TrainState) -> None: ...
    def on_step_end(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...
    def on_fit_end(self, state: TrainState) -> None: ...


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; optionally restore the best weights."""

    every_rank = True     # under torchrun every process must stop, and restore, alike

    def __init__(self, monitor: str = "val_loss", patience: int = 3, mode: str = "min",
                 min_delta: float = 0.0, restore_best: bool = True):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max'; got {mode!r}")
        if patience < 1:
            raise ValueError(f"patience must be >= 1; got {patience!r}")
        self.monitor, self.patience, self.mode = monitor, patience, mode
        self.min_delta, self.restore_best = min_delta, restore_best
        self.best: float | None = None
        self.best_epoch = -1
        self.wait = 0
        self.best_weights: dict | None = None

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta

    def on_epoch_end(self, state: TrainState) -> None:
        row = state.history.epochs[-1]
        if self.monitor not in row:
            raise KeyError(f"EarlyStopping monitors {self.monitor!r}, which the epoch record lacks "
                           f"(has {sorted(row)}); pass val= to fit() for val_* keys")
        value = row[self.monitor]
        if self._better(value):
            self.best, self.best_epoch, self.wait = value, row["epoch"], 0
            if self.restore_best:
                self.best_weights = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
        else:
            self.wait += 1
            if self.wait >= self.patience:
                state.stop = True

    def on_fit_end(self, state: TrainState) -> None:
        if self.restore_best and self.best_weights is not None and state.stop:
            state.model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "best_weights": self.best_weights}

    def load_state_dict(self, d: dict) -> None:
        self.best, self.best_epoch, self.wait = d["best"], d["best_epoch"], d["wait"]
        self.best_weights = d["best_weights"]


def warmup_cosine(warmup_steps: int, total_steps: int, min_ratio: float = 0.0):
    """A scheduler factory: linear warmup to the base LR, then cosine decay to ``min_ratio`` of it."""
    if warmup_steps < 0 or total_steps < 1 or warmup_steps > total_steps:
        raise ValueError(f"need 0 <= warmup_steps <= total_steps and total_steps >= 1; "
                         f"got warmup_steps={warmup_steps}, total_steps={total_steps}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return lambda optimizer: torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ----------------------------------------------------------------------------- checkpoints
def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temporary file beside ``path``, flushed to disk, then renamed over ``path``.

    The rename is atomic: ``path`` is the previous complete checkpoint or the new complete one, never a
    half-written file, even if the writing process dies mid-save (it leaves at most its own temporary file,
    named after its process id, which a failed save removes).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by :func:`fit` (safely: ``weights_only=True``)."""
    return torch.load(path, map_location="cpu", weights_only=True)


# ----------------------------------------------------------------------------- evaluate
@torch.no_grad()
def evaluate(model: torch.nn.Module, data, *, batch_size: int = 64, loss_fn: Callable = F.cross_entropy,
             forward: Callable = default_forward, metrics: dict[str, Callable] | None = None,
             collate: Callable | None = None) -> dict[str, float]:
    """Mean loss and metrics over ``data`` in eval mode (dropout off), batch-size weighted."""
    data = as_dataset(data, "data")
    batches = Batches(data, min(batch_size, max(1, len(data))), shuffle=False, collate=collate, name="data")
    device = _model_device(model)
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {"loss": 0.0, **{k: 0.0 for k in (metrics or {})}}
    seen = 0
    order = batches.order(0)
    for i in range(len(batches)):
        batch = to_device(batches.batch(order, i), device)
        output, target = forward(model, batch)
        n = len(target)
        totals["loss"] += float(loss_fn(output, target)) * n
        for k, fn in (metrics or {}).items():
            totals[k] += float(fn(output, target)) * n
        seen += n
    model.train(was_training)
    return {k: v / seen for k, v in totals.items()}


def _model_device(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


# ----------------------------------------------------------------------------- interrupt
class _StopOnInterrupt:
    """First Ctrl-C (or kernel interrupt) asks the loop to stop at the next step; a second one aborts."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


# ----------------------------------------------------------------------------- one step
def train_step(model: torch.nn.Module, batch: Any, optimizer: torch.optim.Optimizer, *,
               loss_fn: Callable = F.cross_entropy, forward: Callable = default_forward,
               clip: float | None = None, scheduler: Any = None, step: int | None = None) -> float:
    """One optimisation step, the one every chapter uses; returns the loss as a number.

    The order matters: the gradients of the previous step are cleared *before*
    ``backward`` (PyTorch adds gradients up, it does not overwrite them);
    clipping looks at the fresh gradients; the scheduler moves the learning
    rate only after the optimizer has used it. A non-finite loss stops here,
    before it can poison the weights, with the step number (``step``) named.
    """
    output, target = forward(model, batch)          # the model's prediction and what it should be
    loss = loss_fn(output, target)                  # a scalar tensor that remembers how it was computed
    value = loss.item()
    if not math.isfinite(value):
        where = f" at step {step}" if step is not None else ""
        raise FloatingPointError(f"loss is {value}{where}; training stopped. Try a lower learning rate, "
                                 f"gradient clipping, or check the inputs.")
    optimizer.zero_grad(set_to_none=True)           # drop the last step's gradients
    loss.backward()                                 # d loss / d parameter, into each parameter's .grad
    if clip is not None:                            # rescale all gradients together if their norm > clip
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], clip)
    optimizer.step()                                # parameters move against their gradients
    if scheduler is not None:
        scheduler.step()                            # the learning rate for the *next* step
    return value


# ----------------------------------------------------------------------------- fit's helpers
def _check_lr(optimizer: torch.optim.Optimizer) -> None:
    for i, group in enumerate(optimizer.param_groups):
        lr = group.get("lr")
        if isinstance(lr, torch.Tensor):
            lr = float(lr)
        if not isinstance(lr, (int, float)) or not lr > 0 or not math.isfinite(lr):
            raise ValueError(f"lr (learning rate) must be a number > 0; got {lr!r} in parameter group {i}")


def make_adamw(params, lr: float, weight_decay: float = 0.0) -> torch.optim.AdamW:
    """AdamW, using the fused kernel where this PyTorch has one for the device (several times faster on CPU)."""
    params = list(params)
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def _make_optimizer(model, lr, optimizer, weight_decay) -> torch.optim.Optimizer:
    """A ready optimizer as it is, else AdamW over the trainable parameters; exactly one of the two."""
    if optimizer is not None and lr is not None:
        raise ValueError("give lr or optimizer, not both (set the learning rate on the optimizer)")
    if optimizer is None:
        if lr is None:
            raise ValueError("give lr (learning rate, a number > 0) or an optimizer")
        number("lr (learning rate)", lr, minimum=0, open_low=True)
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("model has no trainable parameters (all have requires_grad=False)")
        optimizer = make_adamw(params, lr=lr, weight_decay=weight_decay)
    _check_lr(optimizer)
    return optimizer


def _budget(epochs: int | None, steps: int | None, steps_per_epoch: int) -> tuple[int, int]:
    """(epochs to run, steps in all): give ``epochs`` or a ``steps`` budget, not both."""
    if epochs is not None and steps is not None:
        raise ValueError("give epochs or steps (a budget of optimisation steps), not both")
    if steps is not None:
        steps = whole_number("steps", steps)
        return math.ceil(steps / steps_per_epoch), steps
    epochs = whole_number("epochs", 1 if epochs is None else epochs)
    return epochs, epochs * steps_per_epoch


class Checkpoint:
    """Where a run is saved (atomically) and how it comes back exactly: weights, optimizer,
    scheduler, history, callbacks' state, random state, and the position in the data."""

    def __init__(self, path, batches: Batches, state: TrainState, scheduler: Any, callbacks: list,
                 ctx: distributed.Context | None = None):
        self.path = None if path is None else Path(path)
        self.ctx = ctx or distributed.Context()
        self.config = {"batch_size": batches.batch_size, "seed": batches.seed, "n": batches.n,
                       "world_size": self.ctx.world}
        self.state, self.scheduler, self.callbacks = state, scheduler, callbacks

    def save(self, epoch: int, batch: int) -> None:
        """Save the position "next: batch ``batch`` of epoch ``epoch``"; nothing without a path.

        Under torchrun every process calls this (FSDP gathers the shards, every process's random state
        is collected) and rank 0 alone writes the file.
        """
        if self.path is None:
            return
        s, sched, ctx = self.state, self.scheduler, self.ctx
        model_state, optim_state = distributed.checkpoint_states(s.model, s.optimizer)
        rng = _rng_state()
        rng_ranks = distributed.gather_objects(rng, ctx.world) if ctx.active else None
        if ctx.is_main:
            save_atomic({"format": 1, "config": self.config, "epoch": epoch, "batch": batch, "step": s.step,
                         "model": model_state, "optimizer": optim_state,
                         "scheduler": sched.state_dict() if sched is not None else None,
                         "history": s.history.to_dict(), "rng": rng, "rng_ranks": rng_ranks,
                         "callbacks": [cb.state_dict() if hasattr(cb, "state_dict") else None
                                       for cb in self.callbacks]}, self.path)
        if ctx.active:       # no process goes on (and perhaps reads the file) before rank 0 has written it
            distributed.barrier()

    def restore(self) -> tuple[int, int]:
        """Load the checkpoint if it exists and return the (epoch, batch) to continue from."""
        if self.path is None:
            raise ValueError("resume=True needs checkpoint= (the path to resume from)")
        if not self.path.exists():
            return 0, 0
        ck, s = load_checkpoint(self.path), self.state
        for key, value in self.config.items():
            saved = ck["config"].get(key, 1 if key == "world_size" else None)   # older checkpoints: one process
            if saved != value:
                what = " (processes)" if key == "world_size" else ""
                raise ValueError(f"cannot resume: the checkpoint was written with {key}{what}={saved!r}, "
                                 f"this call has {key}={value!r}")
        distributed.load_checkpoint_states(s.model, s.optimizer, ck["model"], ck["optimizer"])
        if self.scheduler is not None and ck.get("scheduler") is not None:
            self.scheduler.load_state_dict(ck["scheduler"])
        s.history.steps, s.history.epochs = ck["history"]["steps"], ck["history"]["epochs"]
        for cb, cb_state in zip(self.callbacks, ck.get("callbacks", [])):
            if cb_state is not None and hasattr(cb, "load_state_dict"):
                cb.load_state_dict(cb_state)
        _set_rng_state(ck["rng_ranks"][self.ctx.rank] if ck.get("rng_ranks") else ck["rng"])
        s.step = ck["step"]
        if self.ctx.is_main:
            print(f"resumed from {self.path.name}: epoch {ck['epoch'] + 1}, step {s.step}")
        return ck["epoch"], ck["batch"]


def _end_epoch(state: TrainState, val, evaluate_kw: dict) -> None:
    """Append the epoch record (mean train loss; validation loss and metrics if ``val``)."""
    epoch = state.epoch + 1
    row = {"epoch": epoch, "step": state.step,
           "train_loss": float(np.mean([s["loss"] for s in state.history.steps if s["epoch"] == epoch]))}
    if val is not None:
        row.update({f"val_{k}": v for k, v in evaluate(state.model, val, **evaluate_kw).items()})
    state.history.epochs.append(row)


def _progress_bar(progress: bool | str, state: TrainState):
    if not ((state.total_steps >= 300) if progress == "auto" else bool(progress)):
        return None
    from tqdm.auto import tqdm
    return tqdm(total=state.total_steps, initial=state.step, desc=state.name, leave=False)


# ----------------------------------------------------------------------------- fit
def fit(model: torch.nn.Module, train, *, epochs: int | None = None, steps: int | None = None,
        batch_size: int | None = None, lr: float | None = None, optimizer: torch.optim.Optimizer | None = None,
        weight_decay: float = 0.0, loss_fn: Callable = F.cross_entropy, forward: Callable = default_forward,
        val=None, metrics: dict[str, Callable] | None = None, scheduler: Any = None,
        clip_grad_norm: float | None = None, callbacks: Iterable[Callback] = (),
        checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None, resume: bool = False,
        interrupt_after: int | None = None, seed: int = 0, collate: Callable | None = None,
        progress: bool | str = "auto", name: str = "run", global_batch_size: int | None = None,
        parallel: str = "ddp", backend: str | None = None) -> History:
    """Train ``model`` on ``train`` with :func:`train_step` and return its :class:`History`.

    Run ``epochs`` passes over the data, or a budget of ``steps`` optimisation steps
    (the last epoch may be partial; it still gets its record). ``train``/``val`` are
    Datasets or tuples of tensors, batches ``(inputs..., target)`` unless you pass
    ``forward(model, batch) -> (output, target)``. Give ``lr`` (AdamW over the trainable
    parameters) or a ready ``optimizer``; ``scheduler`` is a scheduler or a factory
    ``optimizer -> scheduler`` (:func:`warmup_cosine`), stepped every step. With
    ``checkpoint``, the run is saved every ``checkpoint_every`` steps and at each epoch
    end, and ``resume=True`` continues from it exactly. ``interrupt_after=k`` behaves
    like pressing Stop after step k (the resume tests use it).

    ``batch_size`` (default 32) is per process, PyTorch's convention: under ``torchrun`` with N
    processes the global batch is N times larger. ``global_batch_size`` instead fixes the global
    batch (it must split evenly over the processes), so the same call trains the same model with any
    number of processes. ``parallel`` ("ddp" or "fsdp") and ``backend`` (None: nccl on CUDA, else
    gloo) matter only under torchrun; see :mod:`labkit.distributed`.
    """
    one_of("parallel", parallel, distributed.PARALLEL)
    ctx = distributed.context(backend)
    if global_batch_size is not None:
        if batch_size is not None:
            raise ValueError("give batch_size (per process) or global_batch_size (all processes together), not both")
        batch_size = distributed.per_process_batch(global_batch_size, ctx.world)
    batches = Batches(train, 32 if batch_size is None else batch_size, shuffle=True, seed=seed, collate=collate,
                      name="train")
    step_model = model
    if ctx.active:
        batches = distributed.ShardedBatches(batches, ctx.rank, ctx.world)
        if parallel == "fsdp" and optimizer is not None:
            raise ValueError("parallel='fsdp' shards the parameters, so fit must build the optimizer after "
                             "sharding: give lr= instead of optimizer=")
        if _model_device(model).type == "cuda" and _model_device(model) != ctx.device:
            model.to(ctx.device)                      # one GPU per process: cuda:LOCAL_RANK
        step_model = distributed.wrap_model(model, ctx, parallel)
    n_epochs, budget = _budget(epochs, steps, len(batches))
    optimizer = _make_optimizer(model, lr, optimizer, weight_decay)
    whole_number("checkpoint_every", checkpoint_every, allow_none=True)
    if clip_grad_norm is not None:
        positive("clip_grad_norm", clip_grad_norm)
    if scheduler is not None and not isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler):
        scheduler = scheduler(optimizer)
    callbacks, device = list(callbacks), _model_device(model)
    here = [cb for cb in callbacks if ctx.is_main or cb.every_rank]    # rank 0 runs all; the others, every_rank ones
    state = TrainState(model=model, optimizer=optimizer, history=History(), epochs=n_epochs,
                       steps_per_epoch=len(batches), name=name, budget=budget)
    saved = Checkpoint(checkpoint, batches, state, scheduler, callbacks, ctx)
    start_epoch, start_batch = saved.restore() if resume else (0, 0)
    evaluate_kw = dict(batch_size=batches.batch_size, loss_fn=loss_fn, forward=forward, metrics=metrics,
                       collate=collate)
    bar = _progress_bar(progress, state) if ctx.is_main else None
    for cb in here:
        cb.on_fit_start(state)
    with _StopOnInterrupt() as interrupt:
        for epoch in range(start_epoch, n_epochs):
            state.epoch = epoch
            model.train()
            order = batches.order(state.epoch)
            for b in range(start_batch if state.epoch == start_epoch else 0, len(batches)):
                lr_now = float(optimizer.param_groups[0]["lr"])
                batch, step_loss = batches.batch(order, b), loss_fn
                if ctx.active:            # this process's share, and a loss whose value is the global batch's
                    batch, weight = batch
                    step_loss = distributed.sharded_loss(loss_fn, weight, ctx.world)
                state.loss = train_step(step_model, to_device(batch, device), optimizer,
                                        loss_fn=step_loss, forward=forward, clip=clip_grad_norm,
                                        scheduler=scheduler, step=state.step + 1)
                state.step += 1
                state.history.steps.append({"step": state.step, "epoch": state.epoch + 1, "loss": state.loss,
                                            "lr": lr_now})
                for cb in here:
                    cb.on_step_end(state)
                if ctx.active:            # every process stops at the same step, or none does
                    state.stop, interrupt.requested = distributed.any_rank(state.stop, interrupt.requested)
                if bar is not None:
                    bar.update(1)
                if interrupt.requested or state.step == interrupt_after:
                    state.history.interrupted = True
                    saved.save(state.epoch, b + 1)
                    if interrupt.requested and ctx.is_main:
                        print(f"interrupted at step {state.step}; " + (f"resume from {saved.path.name} with "
                              "resume=True" if saved.path else "pass checkpoint= to be able to resume"))
                    break
                if checkpoint_every and state.step % checkpoint_every == 0:
                    saved.save(state.epoch, b + 1)
                if state.stop or state.step >= budget:
                    break
            if state.history.interrupted:
                break
            _end_epoch(state, val, evaluate_kw)
            for cb in here:
                cb.on_epoch_end(state)
            if ctx.active:
                state.stop, = distributed.any_rank(state.stop)
            saved.save(state.epoch + 1, 0)
            if state.stop or state.step >= budget:
                break
    if bar is not None:
        bar.close()
    for cb in here:
        cb.on_fit_end(state)
    return state.history
