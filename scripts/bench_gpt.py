"""Training throughput of labkit's from-scratch GPT against Hugging Face's GPT2LMHeadModel, same configuration.

One step = forward + backward + AdamW update. A few warm-up steps, then timed steps; tokens/s for each
model and their ratio (from-scratch / Hugging Face) from one run. Run: python -m scripts.bench_gpt
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F


def _timed(model, forward, batch, seq, vocab, warmup, steps) -> tuple[int, float]:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, vocab, (batch, seq + 1), generator=g)
    inputs, targets = x[:, :-1], x[:, 1:]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step():
        logits = forward(model, inputs)
        loss = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * seq * steps, time.perf_counter() - t0


def bench(n_layer=4, n_embd=128, n_head=4, seq=128, batch=8, vocab=8192, warmup=2, steps=10) -> dict:
    from transformers import GPT2Config, GPT2LMHeadModel

    from labkit.nn import GPT

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=n_head, vocab_size=vocab,
                                    n_positions=seq, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
    ours = GPT.from_hf(hf)            # same configuration, same weights
    tokens, seconds = {}, {}
    # two rounds of steps/2, alternating, so that background load on a shared machine hits both alike
    for name, model, fwd in [("labkit GPT", ours, lambda m, x: m(x)),
                             ("HF GPT2LMHeadModel", hf, lambda m, x: m(x).logits)] * 2:
        n, s = _timed(model, fwd, batch, seq, vocab, warmup, max(1, steps // 2))
        tokens[name], seconds[name] = tokens.get(name, 0) + n, seconds.get(name, 0.0) + s
    results = {name: tokens[name] / seconds[name] for name in tokens}
    results["ratio"] = results["labkit GPT"] / results["HF GPT2LMHeadModel"]
    return results


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per model (after 2x2 warm-up steps)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1; got {args.threads}")
        torch.set_num_threads(args.threads)
    r = bench(steps=args.steps)
    print(f"GPT training throughput, forward+backward+AdamW on CPU ({torch.get_num_threads()} threads), "
          "n_layer=4, n_embd=128, n_head=4, seq=128, batch=8, vocab=8192")
    for name in ("labkit GPT", "HF GPT2LMHeadModel"):
        print(f"  {name:<20s} {r[name]:10.0f} tokens/s")
    print(f"  ratio labkit / HF     {r['ratio']:10.2f}  (target >= 1.0)")
    return r


if __name__ == "__main__":
    main()
