"""The job ``torchrun`` starts in chapter 7.2b, Lab 7b, the tests and ``scripts/bench_ddp.py``: one unchanged
:func:`labkit.train.fit` call (or, for the lab, a hand-written DDP loop), with rank 0 writing the results.

    torchrun --nproc_per_node=2 -m labkit.ddp_job mlp --global-batch-size 32 --out result.pt
    torchrun --nproc_per_node=2 -m labkit.ddp_job reviews --batch-size 8 --epochs 2 --out result.pt

Tasks: ``mlp`` (a small network on generated data: fast, optionally float64, for the equality test and the
benchmark) and ``reviews`` (chapter 3.6's classifier: all-MiniLM-L6-v2 + a new head on the review set).
``--runs`` lists the trainings of one launch (a launch costs seconds): ``fit`` runs, and ``hand`` runs
with the loop a tutorial writes by hand (``DistributedSampler`` optional), to show what goes wrong without
it. The result file (``torch.save``, read back with ``weights_only=True``) holds
the full weights, the history, the examples each rank saw, and timings.
"""
from __future__ import annotations

import argparse
import copy
import math
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from . import distributed
from .train import Callback, accuracy, evaluate, fit, warmup_cosine

__all__ = ["mlp_data", "mlp_model", "reviews_task", "hand_loop", "parse_run", "run", "main", "parser"]


# ----------------------------------------------------------------------------- the tasks
def mlp_data(n: int = 121, d: int = 8, seed: int = 0, dtype: torch.dtype = torch.float64) -> TensorDataset:
    """``n`` points in ``d`` dimensions, three classes from two thresholds (learnable, not trivial)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    return TensorDataset(X.to(dtype), y)


def mlp_model(d: int = 8, hidden: int = 32, seed: int = 1, dtype: torch.dtype = torch.float64) -> torch.nn.Module:
    """A two-layer MLP with no dropout (dropout draws its masks per process, so with it two runs differ)."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 3)).to(dtype)


def reviews_task(n_train: int, n_val: int, seed: int = 0, max_length: int = 48):
    """Chapter 3.6's classifier and data: (model, train, val, test) as tensors for :func:`fit`."""
    from .data.reviews import balanced_subset, make_reviews
    from .data.text import encode
    from .nn import SequenceClassifier
    from .transfer import Encoders
    enc = Encoders("all-MiniLM-L6-v2", quiet=True)
    data = make_reviews(seed=seed, n_val=n_val)
    torch.manual_seed(seed)
    model = SequenceClassifier(enc.encoder("pretrained"), n_classes=2)
    train = encode(enc.tokenizer, balanced_subset(data.train, n_train, seed=seed), max_length=max_length)
    return model, train, encode(enc.tokenizer, data.val, max_length=max_length), \
        encode(enc.tokenizer, data.test, max_length=max_length)


def _seen(n: int, batch_size: int, seed: int, ctx: distributed.Context, epochs: int) -> list[list[int]]:
    """The example indices this rank trains on in each epoch, as :func:`fit` shares them out."""
    from .train import Batches
    base = Batches(TensorDataset(torch.zeros(n)), batch_size, seed=seed)
    batches = distributed.ShardedBatches(base, ctx.rank, ctx.world) if ctx.active else base
    out = []
    for epoch in range(epochs):
        order = batches.order(epoch)
        if not ctx.active:
            out.append(order.tolist())
            continue
        mine = []
        for i in range(len(batches)):
            pos, weight = batches.positions(i)
            if weight > 0:
                mine += order[pos].tolist()
        out.append(mine)
    return out


# ----------------------------------------------------------------------------- the hand-written loop
def hand_loop(model: torch.nn.Module, train: TensorDataset, *, batch_size: int, lr: float, epochs: int,
              seed: int, sampler: bool, set_epoch: bool = True) -> tuple[list[float], list[list[int]]]:
    """The DDP loop a tutorial writes: DataLoader (+ DistributedSampler if ``sampler``), DDP, AdamW.

    Returns (the loss of every step on this rank, the example indices this rank saw in each epoch).
    Without the sampler every rank walks the whole data set in the same seeded order: N processes do N
    times the work of one and learn nothing more.
    """
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DataLoader, DistributedSampler
    ctx = distributed.context()
    indexed = TensorDataset(torch.arange(len(train)), *train.tensors)
    dsampler = DistributedSampler(indexed, shuffle=True, seed=seed) if (sampler and ctx.active) else None
    loader = DataLoader(indexed, batch_size=batch_size, sampler=dsampler, shuffle=dsampler is None,
                        generator=torch.Generator().manual_seed(seed) if dsampler is None else None)
    ddp = DDP(model, static_graph=True) if ctx.active else model
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses, seen = [], []
    for epoch in range(epochs):
        if dsampler is not None and set_epoch:
            dsampler.set_epoch(epoch)          # forget this and every epoch repeats the first one's order
        model.train()
        seen.append([])
        for idx, *inputs, target in loader:
            loss = F.cross_entropy(ddp(*inputs), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            seen[-1].extend(idx.tolist())
    return losses, seen


# ----------------------------------------------------------------------------- the job
def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m labkit.ddp_job", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=["mlp", "reviews"])
    ap.add_argument("--out", required=True, help="where rank 0 writes the result (torch.save)")
    ap.add_argument("--batch-size", type=int, default=None, help="per process")
    ap.add_argument("--global-batch-size", type=int, default=None, help="all processes together")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--examples", type=int, default=121, help="mlp: examples; reviews: labelled training reviews")
    ap.add_argument("--n-val", type=int, default=40)
    ap.add_argument("--hidden", type=int, default=32, help="mlp: hidden width")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    ap.add_argument("--parallel", choices=list(distributed.PARALLEL), default="ddp")
    ap.add_argument("--backend", default=None)
    ap.add_argument("--warmup", type=int, default=0, help="warmup steps of a warmup-cosine schedule (0: none)")
    ap.add_argument("--clip", type=float, default=None)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--interrupt-after", type=int, default=None)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--runs", nargs="+", default=None,
                    help="the trainings of this launch, in order (default: one 'fit'); e.g. fit:global=16 "
                         "fit:batch=16 hand:sampler=0 hand:sampler=1")
    ap.add_argument("--no-sampler", action="store_true", help="hand runs: leave out the DistributedSampler")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--crash-rank", type=int, default=None, help="this rank dies (os._exit) at --crash-step")
    ap.add_argument("--crash-step", type=int, default=None)
    return ap


class _Crash(Callback):
    """For the test that a dying process leaves no half-written checkpoint: exit hard at a step."""
    every_rank = True

    def __init__(self, rank: int, step: int, ctx):
        self.rank, self.step, self.ctx = rank, step, ctx

    def on_step_end(self, state):
        if self.ctx.rank == self.rank and state.step == self.step:
            import os
            os._exit(3)


def _local(t: torch.Tensor) -> torch.Tensor:
    """The part of a tensor this process holds (FSDP's shard of a DTensor; a plain tensor is all here)."""
    return t.to_local() if hasattr(t, "to_local") else t


def _warm_up(model: torch.nn.Module, train: TensorDataset) -> None:
    """One forward and backward (eval mode: no random numbers drawn, no step taken) and one optimizer step on a
    dummy parameter: the one-time costs of a process (lazy imports, kernel set-up: seconds on a busy machine)
    then stay out of the timed runs."""
    was = model.training
    model.eval()
    *inputs, target = train[:2]
    F.cross_entropy(model(*inputs), target).backward()
    model.zero_grad(set_to_none=True)
    model.train(was)
    dummy = torch.nn.Parameter(torch.zeros(1))
    dummy.grad = torch.ones(1)
    from .train import make_adamw
    make_adamw([dummy], lr=1e-3).step()


RUN_KEYS = {"batch": "batch_size", "global": "global_batch_size", "lr": "lr", "sampler": "sampler",
            "parallel": "parallel"}


def parse_run(spec: str, args: argparse.Namespace) -> dict[str, Any]:
    """``"fit"``, ``"fit:batch=16"``, ``"fit:global=16,lr=2e-4"``, ``"hand:sampler=0"``: one training of a launch,
    its settings taken from the command line unless the spec overrides them."""
    kind, _, rest = spec.partition(":")
    if kind not in ("fit", "hand"):
        raise ValueError(f"a run is 'fit' or 'hand' (with optional :key=value,...); got {spec!r}")
    out = {"kind": kind, "spec": spec, "batch_size": args.batch_size, "global_batch_size": args.global_batch_size,
           "lr": args.lr, "sampler": not args.no_sampler, "parallel": args.parallel}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key not in RUN_KEYS:
            raise ValueError(f"unknown setting {key!r} in run {spec!r}; known: {', '.join(RUN_KEYS)}")
        out[RUN_KEYS[key]] = {"lr": float, "sampler": lambda v: v not in ("0", "false", "no"),
                              "parallel": str}.get(key, int)(value)
        if key == "batch":
            out["global_batch_size"] = None
        if key == "global":
            out["batch_size"] = None
    return out


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    """Every run of ``args.runs`` in this launch, in order; rank 0 returns the results (others None)."""
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    ctx = distributed.context(args.backend)
    dtype = getattr(torch, args.dtype)
    if args.task == "mlp":
        train, val = mlp_data(args.examples, seed=args.seed, dtype=dtype), mlp_data(args.n_val, seed=args.seed + 1,
                                                                                   dtype=dtype)
        first, test = mlp_model(hidden=args.hidden, dtype=dtype), None
    else:
        first, train, val, test = reviews_task(args.examples, args.n_val, seed=args.seed)
    template = copy.deepcopy(first) if len(args.runs or ["fit"]) > 1 else None   # before DDP or FSDP touch it
    _warm_up(first, train)
    setup = time.perf_counter() - t_start
    runs = []
    for i, spec in enumerate(args.runs or ["fit"]):
        r = parse_run(spec, args)
        model = first if i == 0 else copy.deepcopy(template)   # every run starts from the same weights
        if ctx.active:
            distributed.barrier()                    # every process starts the clock together
        t0 = time.perf_counter()
        out: dict[str, Any] = {"spec": spec, "kind": r["kind"]}
        if r["kind"] == "hand":
            bs = r["batch_size"] or r["global_batch_size"]
            losses, seen = hand_loop(model, train, batch_size=bs, lr=r["lr"], epochs=args.epochs or 1,
                                     seed=args.seed, sampler=r["sampler"])
            seconds = time.perf_counter() - t0
            out.update(losses=losses, batch_size=bs, sampler=r["sampler"])
        else:
            callbacks = [_Crash(args.crash_rank, args.crash_step, ctx)] if args.crash_rank is not None else []
            per_proc = r["batch_size"] if r["batch_size"] is not None else distributed.per_process_batch(
                r["global_batch_size"] or 32, ctx.world)
            total = args.steps or (args.epochs or 1) * math.ceil(len(train) / (per_proc * ctx.world))
            history = fit(model, train, val=val, epochs=args.epochs, steps=args.steps, batch_size=r["batch_size"],
                          global_batch_size=r["global_batch_size"], lr=r["lr"], seed=args.seed,
                          scheduler=warmup_cosine(args.warmup, total) if args.warmup else None,
                          clip_grad_norm=args.clip, metrics={"acc": accuracy}, checkpoint=args.checkpoint,
                          interrupt_after=args.interrupt_after, resume=args.resume, parallel=r["parallel"],
                          backend=args.backend, progress=False, callbacks=callbacks,
                          name=f"{ctx.world} process(es)")
            seconds = time.perf_counter() - t0
            seen = _seen(len(train), per_proc, args.seed, ctx, max(1, len(history.epochs)))
            local = {"parameters": sum(_local(p).numel() for p in model.parameters()),
                     "gradients": sum(_local(p.grad).numel() for p in model.parameters() if p.grad is not None)}
            out.update(history=history.to_dict(), interrupted=history.interrupted, batch_size=per_proc,
                       global_batch_size=per_proc * ctx.world, parallel=r["parallel"],
                       local=distributed.gather_objects(local, ctx.world) if ctx.active else [local])
        out["seen"] = distributed.gather_objects(seen, ctx.world) if ctx.active else [seen]
        out["seconds"] = {"setup": setup, "train": seconds}
        if test is not None:
            out["test"] = evaluate(model, test, metrics={"acc": accuracy})
        if i == 0 or args.task == "mlp":                # the big model's weights only once
            out["weights"] = distributed.full_state_dict(model)
        runs.append(out)
    result = {"world": ctx.world, "backend": ctx.backend, "task": args.task, "parallel": args.parallel,
              "threads": args.threads, "runs": runs, **runs[0]}    # the first run's entries at the top, too
    return result if ctx.is_main else None


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    result = run(args)
    if result is not None:
        from .train import save_atomic
        save_atomic(result, args.out)


if __name__ == "__main__":
    main()
