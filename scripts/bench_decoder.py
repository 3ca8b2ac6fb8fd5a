"""Greedy generation speed of labkit's from-scratch Llama: with and without the KV cache, and against
Hugging Face's ``LlamaForCausalLM.generate`` on the same configuration and weights (a tiny random model).

Each repeat times the three runs back to back (so background load on a shared machine hits all three
alike) after one warm-up round; ratios are computed per repeat and reported as the median and the range
(min-max) over the repeats. Run: python -m scripts.bench_decoder [--repeats 5] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics

import torch

from labkit.check import whole_number


def bench(n_layers=4, d_model=256, n_heads=8, n_kv_heads=2, vocab=8192, prompt=16, new_tokens=256,
          repeats=5) -> dict:
    """tokens/s of each run (median over repeats) and each ratio as (min, median, max) over repeats."""
    from transformers import LlamaConfig as HFLlamaConfig
    from transformers import LlamaForCausalLM
    from transformers.utils import logging

    from labkit.nn.llama import Llama, LlamaConfig, generation_speed, speed_ratio

    logging.set_verbosity_error()
    torch.manual_seed(0)
    d_ff = LlamaConfig(vocab_size=vocab, d_model=d_model, n_heads=n_heads).d_ff      # 8/3 d_model, rounded up
    hf = LlamaForCausalLM(HFLlamaConfig(
        vocab_size=vocab, hidden_size=d_model, intermediate_size=d_ff,
        num_hidden_layers=n_layers, num_attention_heads=n_heads, num_key_value_heads=n_kv_heads,
        max_position_embeddings=prompt + new_tokens, initializer_range=0.1)).eval()   # 0.1: varied greedy tokens
    ours = Llama.from_hf(hf).eval()          # same configuration, same weights
    ids = torch.randint(1, vocab, (1, prompt), generator=torch.Generator().manual_seed(0))
    runs = {
        "labkit, KV cache": lambda: ours.generate(ids, new_tokens, greedy=True),
        "labkit, no cache": lambda: ours.generate(ids, new_tokens, greedy=True, use_cache=False),
        "HF generate (cache)": lambda: hf.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                                   max_new_tokens=new_tokens, eos_token_id=None, pad_token_id=0),
    }
    speed, outputs = generation_speed(runs, new_tokens, repeats)      # interleaved rounds, after a warm-up
    result = {name: statistics.median(v) for name, v in speed.items()}
    result["cache / no cache"] = speed_ratio(speed, "labkit, KV cache", "labkit, no cache")
    result["labkit / HF generate"] = speed_ratio(speed, "labkit, KV cache", "HF generate (cache)")
    first = next(iter(outputs.values()))
    result["same tokens"] = all(torch.equal(first, out) for out in outputs.values())
    result["config"] = dict(n_layers=n_layers, d_model=d_model, n_heads=n_heads, n_kv_heads=n_kv_heads, vocab=vocab,
                            prompt=prompt, new_tokens=new_tokens, repeats=repeats)
    return result


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds of the three runs (after one warm-up)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: a small model's steps are small products, and one thread "
                         "suffers least from other work on a shared CPU; chapter 7.1b times it the same way)")
    args = ap.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(whole_number("--threads", args.threads))
    try:
        r = bench(repeats=args.repeats)
    finally:
        torch.set_num_threads(threads)          # make bench runs other benchmarks in the same process
    c = r["config"]
    print(f"Greedy generation of {c['new_tokens']} new tokens after a {c['prompt']}-token prompt, tiny random "
          f"Llama (n_layers={c['n_layers']}, d_model={c['d_model']}, n_heads={c['n_heads']}, "
          f"n_kv_heads={c['n_kv_heads']}, vocab={c['vocab']}), CPU, {args.threads} thread(s), "
          f"{c['repeats']} interleaved repeats")
    for name in ("labkit, KV cache", "labkit, no cache", "HF generate (cache)"):
        print(f"  {name:<22s} {r[name]:8.0f} tokens/s (median)")
    for name, target in (("cache / no cache", 3.0), ("labkit / HF generate", 1.0)):
        lo, med, hi = r[name]
        print(f"  {name:<22s} {med:8.2f}x median, range {lo:.2f}-{hi:.2f}  (target >= {target:g}x)")
    print(f"  same tokens in all three runs: {r['same tokens']}")
    return r


if __name__ == "__main__":
    main()
