"""What tests/test_distributed.py runs under ``torchrun --nproc_per_node=2`` (gloo, loopback): several
unchanged ``labkit.train.fit`` calls in one launch (a launch costs seconds), results written by rank 0.

    python -m torch.distributed.run --nproc_per_node=2 tests/ddp_worker.py OUT_FILE [crash]
"""
import os
import sys

import torch

from labkit import distributed
from labkit.ddp_job import mlp_data, mlp_model
from labkit.train import Callback, fit, load_checkpoint, save_atomic, warmup_cosine

GLOBAL_BATCH, N, EPOCHS = 8, 121, 3       # 121 = 15 x 8 + 1: the last global batch has one example


def kw(**extra):
    steps = EPOCHS * -(-N // GLOBAL_BATCH)
    return dict(epochs=EPOCHS, global_batch_size=GLOBAL_BATCH, lr=1e-2, seed=3, clip_grad_norm=1.0,
                scheduler=warmup_cosine(3, steps), progress=False, **extra)


def error_of(fn):
    try:
        fn()
    except ValueError as e:
        return str(e)
    return None


class Crash(Callback):
    """Rank 1 dies hard at step 5, the way a process killed by the system does."""
    every_rank = True

    def on_step_end(self, state):
        if distributed.context().rank == 1 and state.step == 5:
            os._exit(3)


def main(out: str, mode: str = "equal") -> None:
    torch.set_num_threads(1)
    ctx = distributed.context()
    train, val = mlp_data(N), mlp_data(40, seed=1)
    result = {"world": ctx.world, "backend": ctx.backend}
    if mode == "crash":
        ck = out + ".ckpt"
        fit(mlp_model(), train, checkpoint=ck, checkpoint_every=1, callbacks=[Crash()], **kw())
        return                                # never reached on any rank: rank 1 dies, torchrun stops rank 0

    for dtype in (torch.float64, torch.float32):
        model = mlp_model(dtype=dtype)
        h = fit(model, mlp_data(N, dtype=dtype), val=mlp_data(40, seed=1, dtype=dtype), **kw())
        result[f"ddp_{dtype}"] = {"weights": distributed.full_state_dict(model), "history": h.to_dict()}

    ck = out + ".resume.ckpt"
    part = fit(mlp_model(), train, val=val, checkpoint=ck, interrupt_after=11, **kw())
    resumed_model = mlp_model(seed=99)
    resumed = fit(resumed_model, train, val=val, checkpoint=ck, resume=True, **kw())
    result["resume"] = {"interrupted_steps": len(part.steps), "weights": distributed.full_state_dict(resumed_model),
                        "history": resumed.to_dict(), "checkpoint_world": load_checkpoint(ck)["config"]["world_size"],
                        "rng_ranks": len(load_checkpoint(ck)["rng_ranks"])}

    model = mlp_model()
    h = fit(model, train, val=val, parallel="fsdp", **kw())
    weights = distributed.full_state_dict(model)
    local = {"parameters": sum(p.to_local().numel() for p in model.parameters()),
             "optimizer": sum(v.to_local().numel() for s in _optimizer_states(model) for v in s)}
    result["fsdp"] = {"weights": weights, "history": h.to_dict(),
                      "local": distributed.gather_objects(local, ctx.world),
                      "sharded": all(hasattr(p, "full_tensor") for p in model.parameters())}
    ck = out + ".fsdp.ckpt"
    fit(mlp_model(), train, parallel="fsdp", checkpoint=ck, interrupt_after=7, **kw())
    m = mlp_model(seed=42)
    fit(m, train, parallel="fsdp", checkpoint=ck, resume=True, **kw())
    result["fsdp_resume"] = {"weights": distributed.full_state_dict(m)}

    result["errors"] = {
        "global batch": error_of(lambda: fit(mlp_model(), train, epochs=1, global_batch_size=7, lr=1e-2)),
        "too few examples": error_of(lambda: fit(mlp_model(), mlp_data(1), epochs=1, batch_size=1, lr=1e-2)),
        "per-process batch": error_of(lambda: fit(mlp_model(), mlp_data(10), epochs=1, batch_size=6, lr=1e-2)),
        "fsdp optimizer": error_of(lambda: fit(mlp_model(), train, epochs=1, batch_size=4, parallel="fsdp",
                                               optimizer=torch.optim.SGD(mlp_model().parameters(), lr=0.1))),
    }
    if ctx.is_main:
        save_atomic(result, out)


def _optimizer_states(model):
    """The optimizer is fit's; rebuild one step's AdamW state to count its shard sizes."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(mlp_data(4).tensors[0]).sum().backward()
    opt.step()
    return [[s["exp_avg"], s["exp_avg_sq"]] for s in opt.state.values()]


if __name__ == "__main__":
    main(*sys.argv[1:])
