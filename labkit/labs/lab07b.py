"""Lab 7b: scale it out. Run one fine-tuning under ``torchrun`` with 1 and 2 processes, read the speed-up, and
find the two global-batch mistakes by measuring them: the learning rate left as it was when the global batch
grew, and a hand-written loop without a ``DistributedSampler``, where every process trains on the same data.

:func:`launch` starts :mod:`labkit.ddp_job` under torchrun (one launch runs several trainings: a launch costs
seconds); :data:`TWO_PROCESS_RUNS` are the trainings of the 2-process launch. :func:`table` puts the runs side
by side; :func:`speedup`, :func:`overlap` and the ``*_verdict`` functions read them. Every expected answer of
:func:`exercises` is computed from the launches' results, never typed in.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from .. import distributed
from ..check import number, one_of, positive, whole_number
from ..exercises import Exercise

__all__ = ["TASKS", "two_process_runs", "launch", "fit_runs", "speedup", "overlap", "table", "speedup_verdict",
           "batch_verdict", "sampler_verdict", "share_is_right", "exercises"]

TASKS = ("reviews", "mlp")


def two_process_runs(global_batch: int) -> list[str]:
    """The trainings of the 2-process launch: the right call, the unchanged call, the hand loop without and
    with a DistributedSampler (per-process batch half the global one)."""
    whole_number("global_batch", global_batch, minimum=2)
    half = distributed.per_process_batch(global_batch, 2)
    return [f"fit:global={global_batch}", f"fit:batch={global_batch}", f"hand:batch={half},sampler=0",
            f"hand:batch={half},sampler=1"]


def launch(nproc: int, runs: list[str], *, task: str = "reviews", examples: int = 128, epochs: int = 2,
           lr: float = 1e-4, n_val: int = 40, warmup: int = 2, timeout: float = 600) -> dict[str, Any]:
    """Run ``runs`` (``ddp_job`` specs) in one torchrun launch of ``nproc`` processes; returns rank 0's results."""
    one_of("task", task, TASKS)
    whole_number("examples", examples, minimum=2)
    positive("lr", lr)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.pt"
        distributed.torchrun(nproc, ["labkit.ddp_job", task, "--out", str(out), "--examples", str(examples),
                                     "--epochs", str(epochs), "--lr", str(lr), "--n-val", str(n_val),
                                     "--warmup", str(warmup), "--runs", *runs], timeout=timeout,
                             env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
        return torch.load(out, weights_only=True)


def fit_runs(result: dict) -> dict[str, dict]:
    """A launch's runs by their spec."""
    return {r["spec"]: r for r in result["runs"]}


def speedup(one: dict, two: dict) -> float:
    """How many times faster the 2-process fit ran than the 1-process one (fit's own seconds, first run)."""
    return one["runs"][0]["seconds"]["train"] / two["runs"][0]["seconds"]["train"]


def overlap(run: dict, epoch: int = 0) -> float:
    """Of the examples rank 1 trained on in ``epoch``, the fraction that rank 0 trained on too."""
    seen = run["seen"]
    if len(seen) < 2:
        raise ValueError("overlap needs a run with at least 2 processes")
    mine, other = set(seen[1][epoch]), set(seen[0][epoch])
    return len(mine & other) / len(mine)


def _accuracy(r: dict) -> float | None:
    if "test" in r:
        return r["test"]["acc"]
    epochs = r.get("history", {}).get("epochs")
    return epochs[-1].get("val_acc") if epochs else None


def table(one: dict, two: dict):
    """Every run of both launches: processes, batches, steps, examples per rank, overlap, time, accuracy."""
    import pandas as pd
    rows = []
    for result in (one, two):
        for r in result["runs"]:
            steps = len(r["history"]["steps"]) if "history" in r else len(r["losses"])
            per_rank = r["seen"][0][0]
            rows.append({"run": r["spec"], "processes": result["world"],
                         "batch per process": r["batch_size"],
                         "global batch": r.get("global_batch_size", r["batch_size"] * result["world"]),
                         "optimizer steps": steps, "examples per rank, epoch 1": len(per_rank),
                         "distinct examples, epoch 1": len(set().union(*[set(s[0]) for s in r["seen"]])),
                         "rank overlap": overlap(r) if result["world"] > 1 else None,
                         "fit seconds": r["seconds"]["train"], "accuracy": _accuracy(r)})
    return pd.DataFrame(rows).set_index(["processes", "run"])


def speedup_verdict(ratio: float, cores: int) -> str:
    """What a measured 2-process speed-up means on a machine with ``cores`` CPU cores."""
    positive("ratio", ratio)
    whole_number("cores", cores)
    line = f"2 processes ran fit {ratio:.2f}x as fast as 1"
    if ratio >= 1.6:
        return line + ": close to the ideal 2x, the gradient all-reduce costs little next to the compute"
    if ratio > 1.1:
        return line + (f": faster, but short of 2x; the processes share {cores} cores and exchange every gradient "
                       "each step")
    return line + (f": no speed-up here; on {cores} shared cores two processes compete with everything else on the "
                   "machine, and the all-reduce adds to every step")


def batch_verdict(right: dict, unchanged: dict) -> str:
    """The unchanged call (``batch_size`` per process) against the right one (``global_batch_size``)."""
    s_right, s_unch = len(right["history"]["steps"]), len(unchanged["history"]["steps"])
    a_right, a_unch = _accuracy(right), _accuracy(unchanged)
    line = (f"the unchanged call trained with a global batch of {unchanged['global_batch_size']} instead of "
            f"{right['global_batch_size']}: {s_unch} optimizer steps instead of {s_right}")
    if a_right is None or a_unch is None:
        return line
    diff = 100 * (a_right - a_unch)
    if diff > 1:
        return line + f", and {diff:.1f} accuracy points lower with the same learning rate and epochs"
    if diff < -1:
        return line + f", yet {-diff:.1f} accuracy points higher: on this run the larger batch did not hurt"
    return line + f"; accuracy within 1 point ({diff:+.1f}): on this run the fewer steps did not cost accuracy"


def sampler_verdict(without: float, with_sampler: float) -> str:
    """The hand loop's rank overlap without and with a DistributedSampler."""
    for name, v in (("without", without), ("with_sampler", with_sampler)):
        number(name, v, minimum=0, maximum=1)
    line = (f"without a DistributedSampler rank 0 trained on {100 * without:.0f}% of rank 1's examples; with one, on "
            f"{100 * with_sampler:.0f}%")
    if without > 0.9 and with_sampler < 0.1:
        return line + ": without it both processes walk the same data, twice the work for one process's progress"
    return line


# ----------------------------------------------------------------------------- the code exercise
def share_is_right(fn: Callable[[list[int], int, int], list[int]]) -> bool:
    """``fn(batch, rank, world)`` shares a global batch out: the shares are disjoint, together they are the batch,
    their sizes differ by at most one, and the same call gives the same share."""
    cases = [(list(range(8)), 2), (list(range(10, 17)), 2), ([5, 3, 9, 1, 7, 2], 3), (list(range(9)), 4),
             ([4], 1), (list(range(1, 6)), 5)]
    for batch, world in cases:
        shares = [list(fn(list(batch), rank, world)) for rank in range(world)]
        if shares != [list(fn(list(batch), rank, world)) for rank in range(world)]:
            return False
        flat = [i for s in shares for i in s]
        if sorted(flat) != sorted(batch):
            return False
        sizes = [len(s) for s in shares]
        if max(sizes) - min(sizes) > 1:
            return False
    return True


def exercises(one: dict, two: dict, global_batch: int, lr: float) -> dict[str, Exercise]:
    """The lab's checked questions, every expected value computed from the two launches' results."""
    runs = fit_runs(two)
    right, unchanged = runs[f"fit:global={global_batch}"], runs[f"fit:batch={global_batch}"]
    without = next(r for r in two["runs"] if r["kind"] == "hand" and not r["sampler"])
    ex = [
        Exercise("7b.1", f"The 2-process run was given global_batch_size={global_batch}. How many examples does each "
                 "process put through the model at each step?", expected=lambda: right["batch_size"],
                 hint="the global batch is cut into one share per process; how many processes are there?"),
        Exercise("7b.2", "From the table's 'fit seconds', how many times faster did 2 processes run the same training "
                 "than 1 process? (a number like 1.3; fit's own time, not the launch)",
                 expected=lambda: speedup(one, two), rel=0.02,
                 hint="divide the slower run's fit seconds by the faster one's; which of the two is 'faster'?"),
        Exercise("7b.3", f"The unchanged call kept batch_size={global_batch} and ran under 2 processes. What global "
                 "batch size did it train with?", expected=lambda: unchanged["global_batch_size"],
                 hint="batch_size is per process (PyTorch's convention); what does each process add to one step?"),
        Exercise("7b.4", f"The learning rate {lr:g} was chosen for the global batch of the right run. For the "
                 "unchanged call's global batch, what learning rate does the linear scaling rule (Goyal et al., "
                 "2017) give?", expected=lambda: lr * unchanged["global_batch_size"] / right["global_batch_size"],
                 rel=1e-6, hint="the rule scales the learning rate by the same factor as the global batch"),
        Exercise("7b.5", "In the hand-written loop without a DistributedSampler, what fraction of the examples rank 1 "
                 "trained on in epoch 1 did rank 0 train on too? (a number from 0 to 1)",
                 expected=lambda: overlap(without), abs_tol=1e-9,
                 hint="read the 'rank overlap' column, or compare the two ranks' example lists in the result"),
        Exercise("7b.6", "Write my_share(batch, rank, world): this process's share of a global batch (a list of "
                 "example indices), as a DistributedSampler would cut it.", check_fn=share_is_right,
                 hint="the shares of all ranks must not overlap, must together be the whole batch, and must be "
                      "within one example of each other in size, for any number of processes; a stride helps"),
    ]
    return {e.key: e for e in ex}
