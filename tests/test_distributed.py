"""labkit.train.fit under torchrun: two processes (gloo, loopback) end where one process ends; resume is exact;
FSDP shards; a dying process leaves no half-written checkpoint; bad input is named; ZeRO's memory formulas.

The equality runs in float64: two processes add the two halves' gradients in another order than one process
adds the whole batch's, and float64 keeps that rounding (about 1e-16 per step) far below the 1e-6 asked for.
The float32 run is checked too, at 1e-5.
"""
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from labkit import distributed
from labkit.ddp_job import mlp_data, mlp_model
from labkit.train import Batches, fit, load_checkpoint, save_atomic

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import ddp_worker  # noqa: E402


def max_delta(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "result.pt"
    distributed.torchrun(2, [str(HERE / "ddp_worker.py"), str(out)], module=False, timeout=540)
    return torch.load(out, weights_only=True)


@pytest.fixture(scope="module")
def one():
    """The same runs in this process: one process, the whole global batch."""
    runs = {}
    for dtype in (torch.float64, torch.float32):
        model = mlp_model(dtype=dtype)
        h = fit(model, mlp_data(ddp_worker.N, dtype=dtype), val=mlp_data(40, seed=1, dtype=dtype), **ddp_worker.kw())
        runs[dtype] = (model.state_dict(), h)
    return runs


def test_two_processes_end_with_the_weights_of_one(two, one):
    assert two["world"] == 2 and two["backend"] == "gloo"
    for dtype, tol in ((torch.float64, 1e-6), (torch.float32, 1e-5)):
        weights, history = one[dtype]
        run = two[f"ddp_{dtype}"]
        delta = max_delta(run["weights"], weights)
        print(f"{dtype}: max |weights(2 processes) - weights(1 process)| = {delta:.3g}")
        assert delta <= tol
        assert len(run["history"]["steps"]) == len(history.steps) == 3 * 16
        assert max(abs(a["loss"] - b["loss"]) for a, b in zip(run["history"]["steps"], history.steps)) <= 10 * tol
        assert run["history"]["epochs"][-1]["val_loss"] == pytest.approx(history.epochs[-1]["val_loss"], abs=10 * tol)
    # the training moved the weights far more than the two runs differ
    start = mlp_model().state_dict()
    assert max_delta(one[torch.float64][0], start) > 1e-2


def test_each_process_trains_on_its_own_half(two):
    """Run the worker's sharding here: the two ranks' examples are disjoint and together are the epoch."""
    base = Batches(mlp_data(ddp_worker.N), 4, seed=3)
    order = base.order(0)
    seen = []
    for rank in range(2):
        sb = distributed.ShardedBatches(base, rank, 2)
        mine = [int(order[p]) for i in range(len(sb)) for p in sb.positions(i)[0] if sb.positions(i)[1] > 0]
        seen.append(mine)
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(ddp_worker.N))
    # the last global batch has one example: rank 1 takes part with weight 0
    last = distributed.ShardedBatches(base, 1, 2).positions(15)
    assert last[1] == 0.0 and distributed.ShardedBatches(base, 0, 2).positions(15)[1] == 2.0


def test_resume_under_ddp_is_exact(two):
    r = two["resume"]
    assert r["interrupted_steps"] == 11 and r["checkpoint_world"] == 2 and r["rng_ranks"] == 2
    assert max_delta(r["weights"], two["ddp_torch.float64"]["weights"]) == 0.0
    assert r["history"] == two["ddp_torch.float64"]["history"]


def test_fsdp_matches_and_shards(two, one):
    """FSDP2 (fully_shard) runs on CPU with gloo in this torch: same weights; each rank holds half."""
    f = two["fsdp"]
    assert f["sharded"]
    assert max_delta(f["weights"], one[torch.float64][0]) <= 1e-6
    n = sum(p.numel() for p in mlp_model().parameters())
    local = f["local"]
    assert sum(r["parameters"] for r in local) == n                # every number lives on exactly one rank
    assert all(abs(r["parameters"] - n / 2) <= 32 for r in local)  # about half each (rows of the weights)
    predicted = distributed.zero_memory(n, 2, 3, param_bytes=1, grad_bytes=1, optimizer_bytes=2)
    assert predicted["parameters"] == n / 2
    assert sum(r["optimizer"] for r in local) == 2 * n             # Adam: two numbers per parameter, sharded
    assert max_delta(two["fsdp_resume"]["weights"], f["weights"]) == 0.0


def test_bad_input_under_torchrun_names_the_value(two):
    e = two["errors"]
    assert "global_batch_size=7" in e["global batch"] and "2 processes" in e["global batch"]
    assert "1 examples, fewer than the 2 processes" in e["too few examples"] and "WORLD_SIZE=2" in e["too few examples"]
    assert "batch_size=6 is per process" in e["per-process batch"]
    assert "lr=" in e["fsdp optimizer"]


def test_a_dying_process_leaves_a_complete_checkpoint(tmp_path):
    out = tmp_path / "crash.pt"
    done = distributed.torchrun(2, [str(HERE / "ddp_worker.py"), str(out), "crash"], module=False, check=False,
                                timeout=300)
    assert done.returncode != 0
    ck = load_checkpoint(str(out) + ".ckpt")          # loads: a whole file, from the last completed step
    assert ck["step"] == 4 and ck["config"]["world_size"] == 2 and len(ck["history"]["steps"]) == 4
    assert not list(tmp_path.glob("*.tmp-*"))


# ----------------------------------------------------------------------------- without launching anything
def test_save_atomic_keeps_the_previous_file_when_a_save_fails(tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    save_atomic({"step": 1}, path)

    def half_then_fail(obj, f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt
    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path) == {"step": 1} and not list(tmp_path.glob("*.tmp-*"))


def test_save_atomic_survives_a_hard_kill(tmp_path):
    """A process killed in the middle of torch.save (os._exit: no cleanup runs) leaves the old checkpoint."""
    path = tmp_path / "run.ckpt"
    save_atomic({"step": 1}, path)
    code = ("import os, torch\nfrom labkit.train import save_atomic\n"
            "def die(obj, f):\n    f.write(b'half'); f.flush(); os._exit(9)\n"
            f"torch.save = die\nsave_atomic({{'step': 2}}, {str(path)!r})\n")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 9
    assert load_checkpoint(path) == {"step": 1}


def test_sharding_and_backend_errors():
    base = Batches(mlp_data(3), 1)
    with pytest.raises(ValueError, match=r"3 examples, fewer than the 4 processes .*WORLD_SIZE=4"):
        distributed.ShardedBatches(base, 0, 4)
    with pytest.raises(ValueError, match=r"global_batch_size=30 does not split evenly over the 4 processes"):
        distributed.per_process_batch(30, 4)
    assert distributed.per_process_batch(32, 4) == 8
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"backend='nccl' (needs CUDA|is not available).*backend='gloo'"):
            distributed.check_backend("nccl")
        with pytest.raises(ValueError, match="nccl"):          # one process: the named backend is still checked
            fit(mlp_model(), mlp_data(16), epochs=1, batch_size=4, lr=1e-2, backend="nccl")
    with pytest.raises(ValueError, match=r"backend must be one of .*gloo"):
        distributed.check_backend("glooo")
    if not torch.distributed.is_mpi_available():
        with pytest.raises(ValueError, match=r"backend='mpi' is not available in this PyTorch build"):
            distributed.check_backend("mpi")
    with pytest.raises(ValueError, match="parallel"):
        fit(mlp_model(), mlp_data(16), epochs=1, batch_size=4, lr=1e-2, parallel="zero")
    with pytest.raises(ValueError, match="not both"):
        fit(mlp_model(), mlp_data(16), epochs=1, batch_size=4, global_batch_size=4, lr=1e-2)


def test_bad_world_size_in_the_environment(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be a whole number"):
        distributed.context()


def test_global_batch_size_on_one_process_is_the_batch_size():
    a, b = mlp_model(), mlp_model()
    ha = fit(a, mlp_data(40), epochs=2, global_batch_size=8, lr=1e-2, seed=1)
    hb = fit(b, mlp_data(40), epochs=2, batch_size=8, lr=1e-2, seed=1)
    assert ha == hb and max_delta(a.state_dict(), b.state_dict()) == 0.0


# ----------------------------------------------------------------------------- ZeRO's arithmetic
def test_zero_memory_matches_the_paper():
    """Rajbhandari et al., Fig. 1: Ψ = 7.5B parameters, N = 64 GPUs, K = 12 (mixed-precision Adam)."""
    gb = {s: distributed.zero_memory(7.5e9, 64, s)["total"] / 1e9 for s in range(4)}
    assert gb[0] == pytest.approx(120) and round(gb[1], 1) == 31.4 and round(gb[2], 1) == 16.6
    assert round(gb[3], 1) == 1.9
    for psi, n in ((1e6, 1), (3.3e8, 8), (7e10, 1024)):
        m = [distributed.zero_memory(psi, n, s) for s in range(4)]
        assert m[0]["total"] == 16 * psi                                        # (2 + 2 + K)Ψ
        assert m[1]["total"] == pytest.approx(4 * psi + 12 * psi / n)
        assert m[2]["total"] == pytest.approx(2 * psi + 14 * psi / n)
        assert m[3]["total"] == pytest.approx(16 * psi / n)
        assert all(a["total"] >= b["total"] for a, b in zip(m, m[1:]))
    fp32 = distributed.zero_memory(1e6, 4, 2, param_bytes=4, grad_bytes=4, optimizer_bytes=8)
    assert fp32 == {"parameters": 4e6, "gradients": 1e6, "optimizer": 2e6, "total": 7e6}
    table = distributed.zero_table(7.5e9, 64)
    assert list(table["total (GB)"].round(1)) == [120.0, 31.4, 16.6, 1.9]


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_params=0, world=4, stage=1), "n_params"), (dict(n_params=1e6, world=0, stage=1), "world"),
    (dict(n_params=1e6, world=4, stage=4), "stage"), (dict(n_params=1e6, world=4, stage=1, optimizer_bytes=-1),
                                                      "optimizer_bytes"),
])
def test_zero_memory_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        distributed.zero_memory(**kwargs)


def test_same_weights_verdict_follows_the_numbers():
    v = distributed.same_weights_verdict({"float64": 1e-16, "float32": 6e-8}, tol=1e-6, moved=0.5)
    assert v.count("the same weights") == 2 and "far more than the runs differ" in v
    v = distributed.same_weights_verdict({"float32": 3e-5}, tol=1e-6, moved=1e-4)
    assert "NOT the same weights" in v and "says little" in v
    with pytest.raises(ValueError, match="tol"):
        distributed.same_weights_verdict({"a": 0.0}, tol=0)


def test_ddp_job_run_specs():
    from labkit.ddp_job import parse_run, parser
    args = parser().parse_args(["mlp", "--out", "x", "--lr", "0.01", "--global-batch-size", "16"])
    r = parse_run("fit:batch=8,parallel=fsdp", args)
    assert r["batch_size"] == 8 and r["global_batch_size"] is None and r["parallel"] == "fsdp" and r["lr"] == 0.01
    assert parse_run("hand:sampler=0", args)["sampler"] is False
    with pytest.raises(ValueError, match="unknown setting 'bs'"):
        parse_run("fit:bs=8", args)
    with pytest.raises(ValueError, match="'fit' or 'hand'"):
        parse_run("train", args)
