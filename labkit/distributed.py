"""One training loop, several processes: what :func:`labkit.train.fit` does under ``torchrun``.

``torchrun --nproc_per_node=N script.py`` starts N copies of the same script and tells each, through
environment variables, who it is (``RANK``, ``LOCAL_RANK``) and how many there are (``WORLD_SIZE``).
:func:`fit` reads them and, when ``WORLD_SIZE > 1``:

* joins the process group (:func:`context`): **gloo** on CPU, **nccl** on CUDA GPUs (one GPU per process,
  ``cuda:LOCAL_RANK``);
* gives each process its own share of every global batch (:class:`ShardedBatches`, the
  ``DistributedSampler`` idea): the global batch ``i`` of the seeded epoch order is cut into N interleaved
  shares, so N processes with ``batch_size = B/N`` see exactly the examples one process sees with ``B``;
* wraps the model in **DistributedDataParallel** (DDP): every process holds the whole model; after
  ``backward`` the gradients are averaged across processes (an all-reduce), so every process takes the
  same optimizer step and the weights stay identical. ``parallel="fsdp"`` shards parameters, gradients
  and optimizer state instead (FSDP, ZeRO stage 3: :func:`zero_memory`);
* weights each share's loss (:func:`sharded_loss`) so that the averaged gradient is the gradient of the
  global batch's mean loss even when the last batch does not split evenly, and reports that global loss
  on every process (so a NaN stops every process at the same step, never one alone);
* runs printing and plotting callbacks on rank 0 only (a callback with ``every_rank = True``, such as
  :class:`~labkit.train.EarlyStopping`, runs everywhere), and agrees on stopping (:func:`any_rank`);
* writes checkpoints from rank 0 only, atomically, with every process's random state in them, so that
  exact resume still holds.

The memory side of scaling out, :func:`zero_memory`, is the ZeRO paper's arithmetic (Rajbhandari et al.,
arXiv:1910.02054): what each process holds for parameters, gradients and optimizer state at ZeRO stages
0 (DDP), 1, 2 and 3 (FSDP's full sharding).
"""
from __future__ import annotations

import datetime
import math
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from .check import number, one_of, whole_number

__all__ = ["Context", "context", "check_backend", "BACKENDS", "PARALLEL", "ShardedBatches", "per_process_batch",
           "sharded_loss", "any_rank", "barrier", "gather_objects", "wrap_model", "full_state_dict", "same_weights_verdict", "ZERO_STAGES",
           "zero_memory", "zero_table", "free_port", "torchrun_command", "torchrun"]

BACKENDS = ("gloo", "nccl", "mpi")
PARALLEL = ("ddp", "fsdp")
# ZeRO stage -> what is sharded across the N processes (Rajbhandari et al. 2020, §5: P_os, P_os+g, P_os+g+p)
ZERO_STAGES = {0: (), 1: ("optimizer",), 2: ("optimizer", "gradients"), 3: ("optimizer", "gradients", "parameters")}


# ----------------------------------------------------------------------------- the process group
@dataclass
class Context:
    """Who this process is: its rank among ``world`` processes, its device and the backend in use."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def active(self) -> bool:
        """True when more than one process trains together."""
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that prints, plots and writes checkpoints."""
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")


def check_backend(backend: str | None) -> str:
    """The backend to use: ``None`` picks nccl with CUDA, gloo without; a named one must be usable here."""
    import torch.distributed as dist
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    one_of("backend", backend, BACKENDS)
    available = {"gloo": dist.is_gloo_available(), "nccl": dist.is_nccl_available(), "mpi": dist.is_mpi_available()}
    here = [b for b, ok in available.items() if ok] or ["none"]
    if not available[backend]:
        raise ValueError(f"backend={backend!r} is not available in this PyTorch build (torch {torch.__version__} "
                         f"has: {', '.join(here)}); on CPU use backend='gloo'")
    if backend == "nccl" and not torch.cuda.is_available():
        raise ValueError("backend='nccl' needs CUDA GPUs, and this machine has none; on CPU use backend='gloo'")
    return backend


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"the environment variable {name} must be a whole number (torchrun sets it); "
                         f"got {value!r}") from None


def context(backend: str | None = None, timeout_s: float = 300.0) -> Context:
    """The process group this process trains in, joined on first use.

    Without torchrun (no ``WORLD_SIZE``, or 1) this is a plain single process: nothing is initialised, but
    a named ``backend`` is still checked, so a typo fails on a laptop before it fails on a cluster.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return Context(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0), dist.get_backend())
    world = _env_int("WORLD_SIZE", 1)
    whole_number("WORLD_SIZE (the number of processes torchrun started)", world, minimum=1)
    if world == 1:
        if backend is not None:
            check_backend(backend)
        return Context()
    backend = check_backend(backend)
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if backend == "nccl":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={local_rank} but this machine has {torch.cuda.device_count()} CUDA "
                             f"GPU(s): start at most that many processes per machine (--nproc_per_node)")
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return Context(dist.get_rank(), dist.get_world_size(), local_rank, backend)


# ----------------------------------------------------------------------------- the data, shared out
def per_process_batch(global_batch_size: int, world: int) -> int:
    """The per-process batch of a global batch: it must split evenly over the processes."""
    whole_number("global_batch_size", global_batch_size)
    if global_batch_size % world:
        raise ValueError(f"global_batch_size={global_batch_size} does not split evenly over the {world} processes "
                         f"(WORLD_SIZE={world}): give a multiple of {world}, e.g. "
                         f"{world * max(1, round(global_batch_size / world))}")
    return global_batch_size // world


class ShardedBatches:
    """This process's share of every global batch, in the seeded order of :class:`~labkit.train.Batches`.

    The global batch ``i`` is positions ``[i·G, (i+1)·G)`` of the epoch's permutation (``G = batch_size ·
    world``); rank ``r`` takes every ``world``-th of them from position ``r``, which is what
    ``torch.utils.data.DistributedSampler`` gives (it strides over the whole epoch; striding within each
    global batch is the same thing and also handles the last, shorter batch). Together the processes see
    each example of the epoch once, exactly as one process with batch ``G`` would.
    """

    def __init__(self, batches, rank: int, world: int):
        n, b = batches.n, batches.batch_size
        if n < world:
            raise ValueError(f"train has {n} examples, fewer than the {world} processes torchrun started "
                             f"(WORLD_SIZE={world}): every process needs at least one example per step; "
                             f"start at most {n} processes")
        share = math.ceil(n / world)
        if b > share:
            raise ValueError(f"batch_size={b} is per process, and each of the {world} processes has about {share} "
                             f"of the {n} examples (global batch {b} x {world} = {b * world}): give batch_size "
                             f"at most {share}, or global_batch_size= at most {n}")
        self.batches, self.rank, self.world = batches, rank, world
        self.n, self.batch_size, self.seed = n, b, batches.seed
        self.global_batch = b * world

    def __len__(self) -> int:
        return math.ceil(self.n / self.global_batch)

    def order(self, epoch: int) -> torch.Tensor:
        return self.batches.order(epoch)

    def positions(self, i: int) -> tuple[torch.Tensor, float]:
        """(the positions in the epoch order that this rank trains on at step ``i``, its loss weight)."""
        start = i * self.global_batch
        end = min(start + self.global_batch, self.n)
        mine = torch.arange(start + self.rank, end, self.world)
        if len(mine) == 0:      # a last batch smaller than the number of processes: take part with weight 0
            return torch.tensor([start]), 0.0
        return mine, len(mine) * self.world / (end - start)

    def batch(self, order: torch.Tensor, i: int) -> tuple[Any, float]:
        pos, weight = self.positions(i)
        return self.batches.pick(order[pos]), weight


def sharded_loss(loss_fn: Callable, weight: float, world: int) -> Callable:
    """``loss_fn`` for one process's share: its gradient, averaged over the processes by DDP, is the gradient
    of the global batch's mean loss; its value is that global mean, the same number on every process.

    A share of ``k`` of the ``L`` examples of a global batch counts ``k·N/L`` times its own mean (1 when
    the batch splits evenly). The value comes from one all-reduce of the weighted losses; the gradient from
    this process's own term only (``+ (local - local.detach())`` adds zero, and keeps the graph).
    """
    import torch.distributed as dist

    def loss(output, target):
        local = loss_fn(output, target) * weight
        total = local.detach().clone()
        dist.all_reduce(total)                   # sum over processes
        return total / world + (local - local.detach())
    return loss


def any_rank(*flags: bool) -> list[bool]:
    """Whether each flag is set on at least one process (one all-reduce); every process gets the answer."""
    import torch.distributed as dist
    t = torch.tensor([float(bool(f)) for f in flags])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def barrier() -> None:
    """Wait until every process gets here."""
    import torch.distributed as dist
    dist.barrier()


def gather_objects(obj: Any, world: int) -> list:
    """Every process's ``obj``, in rank order, on every process."""
    import torch.distributed as dist
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


# ----------------------------------------------------------------------------- the model, replicated or sharded
def _fsdp_units(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The blocks FSDP shards one by one: the entries of every ModuleList (a Transformer's layers)."""
    return [m for lst in model.modules() if isinstance(lst, torch.nn.ModuleList) for m in lst
            if any(p.requires_grad for p in m.parameters())]


def wrap_model(model: torch.nn.Module, ctx: Context, parallel: str = "ddp") -> torch.nn.Module:
    """The module the training step calls: DDP around ``model``, or ``model`` itself sharded in place by FSDP.

    DDP: every process keeps a full copy; gradients are all-reduced during ``backward``. Parameters that a
    step does not use (a pooler whose output the loss ignores) are found once (``static_graph``).
    FSDP (``torch.distributed.fsdp.fully_shard``, FSDP2): each process keeps 1/N of every parameter,
    gradient and optimizer state; a block's full weights exist only while it runs (all-gather) and its
    gradients are reduce-scattered back to the shards (ZeRO stage 3).
    """
    one_of("parallel", parallel, PARALLEL)
    if parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids = [ctx.local_rank] if ctx.device.type == "cuda" else None
        return DDP(model, device_ids=ids, static_graph=True)
    from torch.distributed.fsdp import fully_shard
    for unit in _fsdp_units(model):
        fully_shard(unit)
    fully_shard(model, reshard_after_forward=True)    # the root too: between steps only shards are held
    return model


def full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's full (unsharded) weights on the CPU, whether FSDP sharded them or not (collective under FSDP:
    every process must call it)."""
    state = model.state_dict()
    out = {}
    for k, v in state.items():
        if hasattr(v, "full_tensor"):          # a DTensor: FSDP's shard of a parameter
            v = v.full_tensor()
        out[k] = v.detach().cpu().clone()
    return out


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether FSDP (``fully_shard``) sharded this model."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:          # a torch without FSDP2
        return False
    return isinstance(model, FSDPModule)


def checkpoint_states(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """(model state, optimizer state) to save: plain ones, or full unsharded ones gathered from FSDP's shards."""
    if not is_sharded(model):
        return model.state_dict(), optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict
    return get_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_checkpoint_states(model: torch.nn.Module, optimizer: torch.optim.Optimizer, model_state: dict,
                           optim_state: dict) -> None:
    if not is_sharded(model):
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optim_state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict
    set_state_dict(model, optimizer, model_state_dict=model_state, optim_state_dict=optim_state,
                   options=StateDictOptions(full_state_dict=True))


def same_weights_verdict(deltas: dict[str, float], tol: float = 1e-6, moved: float | None = None) -> str:
    """One line per comparison: whether max |Δweight| between two runs is within ``tol``; ``moved`` (how far
    training moved the weights) says whether agreeing means anything."""
    number("tol", tol, minimum=0, open_low=True)
    lines = []
    for name, d in deltas.items():
        number(f"deltas[{name!r}]", d, minimum=0)
        lines.append(f"{name}: max |Δweight| = {d:.2g} " + (f"<= {tol:g}: the same weights" if d <= tol else
                                                             f"> {tol:g}: NOT the same weights"))
    if moved is not None:
        lines.append(f"(training moved the weights by up to {moved:.2g}: " +
                     ("far more than the runs differ)" if all(moved > 100 * d for d in deltas.values()) else
                      "not much more than the runs differ: the agreement says little)"))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- ZeRO's memory arithmetic
def zero_memory(n_params: float, world: int, stage: int, *, param_bytes: float = 2, grad_bytes: float = 2,
                optimizer_bytes: float = 12) -> dict[str, float]:
    """Bytes per process for the model states at ZeRO ``stage`` (0 = plain DDP, 3 = FSDP's full sharding).

    Rajbhandari et al. (arXiv:1910.02054, §3.1 and Fig. 1) count mixed-precision Adam: fp16 parameters
    (2Ψ bytes), fp16 gradients (2Ψ) and ``K = 12`` bytes per parameter of optimizer state (an fp32 copy of
    the parameters, Adam's momentum and variance): 16Ψ on every process in DDP. Stage 1 shards the optimizer
    state (4Ψ + KΨ/N), stage 2 the gradients too (2Ψ + (2+K)Ψ/N), stage 3 the parameters as well (16Ψ/N).
    fp32 training with Adam is ``param_bytes=4, grad_bytes=4, optimizer_bytes=8`` (also 16Ψ). Activations
    and temporary buffers are not model states and are not counted.
    """
    number("n_params", n_params, minimum=0, open_low=True)
    whole_number("world (the number of processes)", world, minimum=1)
    one_of("stage", stage, tuple(ZERO_STAGES))
    sharded = ZERO_STAGES[stage]
    number("param_bytes", param_bytes, minimum=0)
    number("grad_bytes", grad_bytes, minimum=0)
    number("optimizer_bytes", optimizer_bytes, minimum=0)
    per = {"parameters": param_bytes, "gradients": grad_bytes, "optimizer": optimizer_bytes}
    out = {k: n_params * b / (world if k in sharded else 1) for k, b in per.items()}
    out["total"] = sum(out.values())
    return out


def zero_table(n_params: float, world: int, **bytes_per_param):
    """A table of :func:`zero_memory` for stages 0-3, in GB (1e9 bytes, the paper's unit)."""
    import pandas as pd
    names = {0: "0: DDP (nothing sharded)", 1: "1: optimizer state", 2: "2: + gradients",
             3: "3: + parameters (FSDP full shard)"}
    rows = [{"ZeRO stage (sharded)": names[s], **{k: v / 1e9 for k, v in zero_memory(
        n_params, world, s, **bytes_per_param).items()}} for s in ZERO_STAGES]
    return pd.DataFrame(rows).set_index("ZeRO stage (sharded)").rename(columns=lambda c: f"{c} (GB)")


# ----------------------------------------------------------------------------- launching torchrun
def free_port() -> int:
    """A TCP port that is free on the loopback interface now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_command(nproc: int, target: str | Sequence[str], *, module: bool = True) -> list[str]:
    """``python -m torch.distributed.run`` for ``nproc`` processes on this machine, over the loopback only."""
    whole_number("nproc (processes)", nproc)
    target = [target] if isinstance(target, str) else list(target)
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--nnodes=1",
            "--master_addr=127.0.0.1", f"--master_port={free_port()}", *(["-m"] if module else []), *target]


def torchrun(nproc: int, target: str | Sequence[str], *, module: bool = True, threads: int = 1,
             timeout: float = 600, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``target`` (a module and its arguments) under torchrun with ``nproc`` processes and wait for it.

    Each process gets ``threads`` CPU threads (``OMP_NUM_THREADS``); gloo talks over the loopback interface.
    With ``check``, a failed run raises with the last lines of its output.
    """
    whole_number("threads", threads)
    full_env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TORCHELASTIC_ERROR_FILE": "",
                "PYTHONWARNINGS": "ignore", **(env or {})}
    if sys.platform.startswith("linux"):
        full_env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    full_env.pop("TORCHELASTIC_ERROR_FILE")
    done = subprocess.run(torchrun_command(nproc, target, module=module), capture_output=True, text=True,
                          timeout=timeout, env=full_env)
    if check and done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise RuntimeError(f"torchrun with {nproc} process(es) exited with code {done.returncode}:\n{tail}")
    return done
