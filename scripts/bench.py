"""make bench: figures, not assertions.

1. Each notebook's wall and CPU time at the ``cpu`` profile (or ``--profiles``), slowest first, from Jupyter
   Book's execution cache (scripts/book_cache.py): a notebook the cache lacks is executed first, one at a
   time (``--jobs``), so its time is not shared with another notebook; cached ones print at once.
2. The training loop's overhead: ``labkit.train.fit`` against a hand-written PyTorch loop on the same
   model, data, optimizer and batch order (median of several alternating runs, and the ratio).
3. Any further benchmark modules under scripts/ named ``bench_*.py`` with a ``main()``.

    python -m scripts.bench                       # everything
    python -m scripts.bench --skip-notebooks      # only the loop overhead and the extra benchmarks
    python -m scripts.bench --profiles smoke,cpu --match ch02
"""
from __future__ import annotations

import argparse
import importlib
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent


def notebooks(match: str | None) -> list[Path]:
    found = sorted(p for d in ("book", "labs") for p in (ROOT / d).rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)
    return [p for p in found if not match or match in str(p)]


def time_notebooks(profiles: list[str], match: str | None, jobs: int = 1) -> None:
    from scripts import book_cache
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "LABKIT_HEADLESS": "1"})
    for profile in profiles:
        rows, _ = book_cache.execute(profile, jobs=jobs, match=match)
        book_cache.print_times([r for r in rows if not match or match in r["notebook"]], profile)
    print(f"load average now: {' '.join(f'{v:.1f}' for v in os.getloadavg())} (2 cores: above 2, times are inflated)")


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(128, 512), torch.nn.GELU(), torch.nn.Linear(512, 512), torch.nn.GELU(),
                               torch.nn.Linear(512, 10))


def hand_written_loop(X, y, epochs: int, batch_size: int) -> float:
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    start = time.perf_counter()
    losses = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(X), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(X), batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return time.perf_counter() - start


def labkit_loop(X, y, epochs: int, batch_size: int) -> float:
    from labkit.train import fit
    model = _model()
    start = time.perf_counter()
    fit(model, (X, y), epochs=epochs, batch_size=batch_size, lr=1e-3, progress=False)
    return time.perf_counter() - start


def loop_overhead(repeats: int = 7) -> None:
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(8192, 128, generator=g), torch.randint(0, 10, (8192,), generator=g)
    args = (X, y, 2, 64)
    hand_written_loop(*args), labkit_loop(*args)  # warm up
    hand, lab = [], []
    for _ in range(repeats):  # alternate, so drift in the machine's speed hits both
        hand.append(hand_written_loop(*args))
        lab.append(labkit_loop(*args))
    h, l = statistics.median(hand), statistics.median(lab)
    steps = 2 * (8192 // 64)
    print(f"training loop, {steps} steps of an MLP (128-512-512-10, batch 64), median of {repeats} runs:")
    print(f"  hand-written PyTorch loop: {h:.3f} s ({1e3 * h / steps:.2f} ms/step)")
    print(f"  labkit.train.fit:          {l:.3f} s ({1e3 * l / steps:.2f} ms/step)")
    print(f"  overhead: {100 * (l / h - 1):+.1f}%  (ratio {l / h:.3f})")


def extra_benchmarks() -> None:
    for path in sorted((ROOT / "scripts").glob("bench_*.py")):
        module = importlib.import_module(f"scripts.{path.stem}")
        if hasattr(module, "main"):
            print(f"\n== {path.stem} ==")
            module.main([])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", default="cpu", help="comma-separated profiles to time (default cpu)")
    ap.add_argument("--jobs", type=int, default=1, help="notebooks executed side by side when not cached (default 1)")
    ap.add_argument("--match", default=None, help="only notebooks whose path contains this")
    ap.add_argument("--skip-notebooks", action="store_true")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    loop_overhead()
    extra_benchmarks()
    if not args.skip_notebooks:
        print()
        time_notebooks([p.strip() for p in args.profiles.split(",") if p.strip()], args.match, args.jobs)


if __name__ == "__main__":
    main()
