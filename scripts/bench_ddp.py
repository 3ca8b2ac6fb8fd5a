"""The 2-process speed-up of labkit.train.fit under torchrun (DDP, gloo) on this machine.

The same fine-tuning (chapter 3.6's classifier: all-MiniLM-L6-v2 + head, a fixed number of steps at a fixed
global batch) runs as 1 process with 1 thread, 1 process with 2 threads, and 2 processes with 1 thread each,
in interleaved rounds (so load on a shared machine hits all three alike). The time is fit's own (from a
barrier after loading to the end of training, rank 0), without the seconds torchrun and the imports take;
the launch's wall time is printed beside it. Ratios are taken round by round: median and range.

    python -m scripts.bench_ddp [--repeats 3] [--steps 8] [--task reviews|mlp]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from labkit import distributed

CONFIGS = {"1 process x 1 thread": (1, 1), "1 process x 2 threads": (1, 2), "2 processes x 1 thread": (2, 1)}


def one_run(nproc: int, threads: int, task: str, steps: int, global_batch: int, n: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.pt"
        extra = ["--hidden", "512", "--dtype", "float32"] if task == "mlp" else []
        t0 = time.perf_counter()
        distributed.torchrun(nproc, ["labkit.ddp_job", task, "--out", str(out), "--steps", str(steps),
                                     "--global-batch-size", str(global_batch), "--examples", str(n), "--n-val", "8",
                                     "--lr", "1e-4", "--threads", str(threads), *extra], threads=threads,
                             env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
        wall = time.perf_counter() - t0
        result = torch.load(out, weights_only=True)
    return result["seconds"]["train"], wall


def bench(repeats: int = 3, steps: int = 8, task: str = "reviews", global_batch: int = 16, n: int = 128) -> dict:
    train = {name: [] for name in CONFIGS}
    wall = {name: [] for name in CONFIGS}
    for _ in range(repeats):
        for name, (nproc, threads) in CONFIGS.items():
            t, w = one_run(nproc, threads, task, steps, global_batch, n)
            train[name].append(t)
            wall[name].append(w)
    return {"train": train, "wall": wall}


def _ratio(times: dict, slow: str, fast: str) -> tuple[float, float, float]:
    r = sorted(a / b for a, b in zip(times[slow], times[fast]))
    return r[0], statistics.median(r), r[-1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--task", choices=["reviews", "mlp"], default="reviews")
    args = ap.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"DDP speed-up ({args.task}: {args.steps} steps, global batch 16; {os.cpu_count()} CPU cores; "
          f"load average {load:.1f} at the start; {args.repeats} interleaved rounds)")
    res = bench(args.repeats, args.steps, args.task)
    for name in CONFIGS:
        t, w = res["train"][name], res["wall"][name]
        print(f"  {name:24s} fit {statistics.median(t):7.2f} s (range {min(t):.2f}-{max(t):.2f}); "
              f"whole launch {statistics.median(w):6.1f} s")
    base = "1 process x 1 thread"
    for other in ("2 processes x 1 thread", "1 process x 2 threads"):
        lo, mid, hi = _ratio(res["train"], base, other)
        print(f"  speed-up of {other} over {base}: {mid:.2f}x (range {lo:.2f}-{hi:.2f})")
    lo, mid, hi = _ratio(res["train"], "1 process x 2 threads", "2 processes x 1 thread")
    print(f"  2 processes against 1 process using both cores: {mid:.2f}x (range {lo:.2f}-{hi:.2f})")
    if hasattr(os, "getloadavg"):
        print(f"  load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
