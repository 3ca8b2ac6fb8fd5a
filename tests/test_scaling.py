"""labkit.scaling: Kaplan's N counted against the model, power-law fits against scipy's curve_fit and known laws,
the corpus's entropy against the generator itself, Chinchilla's arithmetic, the verdicts both ways, the real-size
calculator against labkit.sizing and the Llama 2 paper's own figures, and the sweep's bookkeeping."""
import math
import random

import numpy as np
import pandas as pd
import pytest
import torch

from labkit import scale, scaling, sizing
from labkit.data import corpus as C
from labkit.nn import GPT, TransformerConfig
from labkit.scaling import ModelSize


# ----------------------------------------------------------------------------- Kaplan's N
@pytest.mark.parametrize("kw", [dict(d_model=16, n_heads=2, n_layers=1), dict(d_model=48, n_heads=6, n_layers=3),
                                dict(d_model=32, n_heads=4, n_layers=2, tie_weights=False),
                                dict(d_model=32, n_heads=4, n_layers=2, positional="sinusoidal")])
def test_non_embedding_params_is_the_model_without_its_tables(kw):
    cfg = TransformerConfig(vocab_size=126, max_len=32, **kw)
    model = GPT(cfg)
    pos = getattr(model.emb, "pos", None)                 # sinusoidal positions are a buffer, not parameters
    tables = model.emb.tok.weight.numel() + (pos.weight.numel() if pos is not None else 0)
    assert scaling.non_embedding_params(cfg) == sum(p.numel() for p in model.parameters()) - tables


def test_model_size_names_heads_and_refusals():
    s = ModelSize(48, 3)
    assert (s.name, s.n_heads, s.config(100).n_heads, s.config(100).max_len) == ("d48·L3", 6, 6, scaling.BLOCK)
    with pytest.raises(ValueError, match="multiple of the head width"):
        ModelSize(20, 2)
    with pytest.raises(ValueError, match="n_layers"):
        ModelSize(16, 0)


# ----------------------------------------------------------------------------- fits
def test_r_squared_equals_sklearn():
    from sklearn.metrics import r2_score
    rng = np.random.default_rng(0)
    y, y_hat = rng.normal(size=20), rng.normal(size=20)
    assert scaling.r_squared(y, y_hat) == pytest.approx(r2_score(y, y_hat), abs=1e-12)


def test_power_law_recovers_a_known_law_exactly():
    n = np.array([1e3, 3e3, 1e4, 3e4, 1e5, 3e5])
    pure = scaling.fit_power_law(n, 7.0 * n ** -0.3, irreducible=False)
    assert (pure.A, pure.alpha, pure.E) == pytest.approx((7.0, 0.3, 0.0), rel=1e-9)
    law = scaling.fit_power_law(n, 0.6 + 20.0 * n ** -0.4)
    assert (law.E, law.A, law.alpha) == pytest.approx((0.6, 20.0, 0.4), rel=1e-5)
    assert law.r2 == pytest.approx(1.0, abs=1e-9) and law.n_points == 6
    assert law(1e6) == pytest.approx(0.6 + 20.0 * 1e6 ** -0.4, rel=1e-5)
    assert str(law).startswith("L(N) = 0.600 + ")


def test_power_law_with_E_equals_scipy_curve_fit_on_noisy_data():
    from scipy.optimize import curve_fit
    rng = np.random.default_rng(1)
    n = np.geomspace(2e3, 4e5, 7)
    y = (0.7 + 9.0 * n ** -0.35) * np.exp(rng.normal(0, 0.01, n.size))
    law = scaling.fit_power_law(n, y)
    (E, A, alpha), _ = curve_fit(lambda x, E, A, a: np.log(E + A * x ** -a), n, np.log(y), p0=[0.5, 5, 0.3],
                                 bounds=([0, 0, 0], [y.min(), 1e6, 5]), maxfev=20000)
    assert (law.E, law.A, law.alpha) == pytest.approx((E, A, alpha), rel=2e-3)
    pure = scaling.fit_power_law(n, y, irreducible=False)
    slope, intercept = np.polyfit(np.log(n), np.log(y), 1)
    assert (pure.alpha, pure.A) == pytest.approx((-slope, math.exp(intercept)), rel=1e-9)


def test_power_law_refuses_what_it_cannot_fit():
    with pytest.raises(ValueError, match="at least 3 points"):
        scaling.fit_power_law([1, 2], [3, 2])
    with pytest.raises(ValueError, match="at least 2 points"):
        scaling.fit_power_law([1], [3], irreducible=False)
    with pytest.raises(ValueError, match="> 0"):
        scaling.fit_power_law([1, 2, 3], [1, 0, 2])
    with pytest.raises(ValueError, match="same length"):
        scaling.fit_power_law([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="different values"):
        scaling.fit_power_law([5, 5, 6], [1, 2, 3])


def test_compute_frontier_keeps_the_runs_no_cheaper_run_beats():
    t = pd.DataFrame({"compute C = 6ND": [1, 2, 3, 4, 5], "val loss": [2.0, 2.5, 1.5, 1.6, 1.0]})
    assert scaling.compute_frontier(t)["compute C = 6ND"].tolist() == [1, 3, 5]


def test_prediction_verdict_both_ways():
    law = scaling.PowerLaw(A=10.0, alpha=0.5, E=0.5)
    inside = scaling.prediction(law, 100.0, 1.52)            # predicts 1.5
    assert inside["relative error"] == pytest.approx(1.5 / 1.52 - 1)
    assert "within the stated ±5%" in scaling.prediction_verdict("d96", inside, 0.05)
    low = scaling.prediction(law, 100.0, 1.8)
    assert "outside the stated ±5%" in scaling.prediction_verdict("d96", low, 0.05)
    assert "too optimistic" in scaling.prediction_verdict("d96", low, 0.05)
    assert "too pessimistic" in scaling.prediction_verdict("d96", scaling.prediction(law, 100.0, 1.2), 0.05)
    with pytest.raises(ValueError, match="tolerance"):
        scaling.prediction_verdict("d96", inside, 0)


# ----------------------------------------------------------------------------- the floor
class Counting(random.Random):
    """The generator's own random draws, with -ln p of each one added up (an independent measurement)."""

    def __init__(self, seed):
        super().__init__(seed)
        self.nats = 0.0

    def choice(self, seq):
        self.nats += math.log(len(seq))
        return super().choice(seq)

    def randrange(self, n, *args):
        self.nats += math.log(n)
        return super().randrange(n)


def test_story_entropy_equals_the_generators_own_draws():
    h = scaling.story_entropy()
    rng, n = Counting(3), 20_000
    lengths, per_story = [], []
    for _ in range(n):
        before = rng.nats
        lengths.append(len(C.make_document(rng).text.split()) + 1)
        per_story.append(rng.nats - before)
    se = np.std(per_story) / math.sqrt(n)
    assert abs(np.mean(per_story) - h["nats per story"]) < 4 * se
    assert abs(np.mean(lengths) - h["tokens per story"]) < 4 * np.std(lengths) / math.sqrt(n)
    assert h["nats per token"] == pytest.approx(h["nats per story"] / h["tokens per story"])


def test_story_length_counts_the_tokens_the_stream_holds():
    data = scaling.scaling_data(20_000, n_val_docs=10)
    from labkit.data.pretraining import token_stream
    corpus = C.make_corpus(data.n_docs, 10, seed=0)
    stream = token_stream(data.tokenizer, corpus.texts())
    assert abs(len(stream) / data.n_docs - scaling.story_entropy()["tokens per story"]) < 0.3
    assert data.train_tokens >= 20_000


def test_floor_verdict_both_ways():
    assert "BELOW the floor" in scaling.floor_verdict(0.5, 0.6)
    assert "sits at the floor" in scaling.floor_verdict(0.605, 0.6)
    assert "0.100 above the floor" in scaling.floor_verdict(0.7, 0.6)


# ----------------------------------------------------------------------------- Chinchilla
def test_chinchilla_arithmetic():
    assert scaling.chinchilla_tokens(70e9) == pytest.approx(1.4e12)
    opt = scaling.compute_optimal(5.76e23)                   # Chinchilla's own budget: about 70B and 1.4T
    assert scale.training_flops(opt["parameters"], opt["tokens"]) == pytest.approx(5.76e23)
    assert opt["tokens"] == pytest.approx(20 * opt["parameters"])
    assert opt["parameters"] == pytest.approx(69.3e9, rel=0.01)
    with pytest.raises(ValueError, match="compute"):
        scaling.compute_optimal(-1)


def _grid(losses):
    rows = []
    for (size, params), by_d in losses.items():
        for d, loss in by_d.items():
            rows.append({"size": size, "parameters": params, "tokens D": d, "val loss": loss})
    return pd.DataFrame(rows)


def test_data_limited_measures_the_gain_per_doubling_and_compares_with_the_rule():
    t = _grid({("small", 100): {10_000: 1.00, 40_000: 0.99, 80_000: 0.985},
               ("big", 100_000): {10_000: 1.00, 40_000: 0.80, 80_000: 0.70}})
    lim = scaling.data_limited(t, threshold=0.02)
    small, big = lim[lim["size"] == "small"], lim[lim["size"] == "big"]
    assert small["drop per doubling"].iloc[0] == pytest.approx(0.01 / 2)     # 1% over two doublings
    assert not small["data-limited"].any() and big["data-limited"].all()
    assert not small["below Chinchilla's 20"].any() and big["below Chinchilla's 20"].all()
    lines = scaling.data_limited_verdict(lim, 0.02)
    assert lines[-1].startswith("2 of 4 runs were data-limited")
    assert "of the 2 at or above 20 tokens per parameter, 0 still were" in lines[-1]
    assert "more data stopped helping" in lines[-1] and "not data-limited" in lines[0]
    flipped = _grid({("small", 100): {10_000: 1.0, 20_000: 0.5}})
    last = scaling.data_limited_verdict(scaling.data_limited(flipped), 0.02)[-1]
    assert "1 of 1 runs" in last and "1 still were" in last and "not the point where more data stops" in last
    under = _grid({("big", 100_000): {10_000: 1.0, 20_000: 0.5}})
    assert "none had 20 tokens per parameter" in scaling.data_limited_verdict(scaling.data_limited(under))[-1]


def test_frontier_verdict_both_ways():
    f = pd.DataFrame({"tokens D": [100, 200, 300], "parameters": [10, 20, 30]})      # 10 tokens per parameter
    assert "median, 10, is around Chinchilla's 20" in scaling.frontier_verdict(f)
    assert "is below Chinchilla's 20 (more than a factor of 2 off)" in scaling.frontier_verdict(f.assign(parameters=[20, 40, 60]))
    assert "is above Chinchilla's 20" in scaling.frontier_verdict(f.assign(parameters=[1, 2, 3]))
    assert "1 to 100 tokens per parameter" in scaling.frontier_verdict(f.assign(parameters=[100, 2, 3]))


# ----------------------------------------------------------------------------- real sizes
def test_training_cost_of_llama2_reuses_sizing_and_counts_16_bytes_per_parameter():
    cfg = scaling.llama2_config("7B")
    cost = scaling.training_cost(cfg, 2e12, mfu=0.5)
    n = sizing.param_count(cfg)
    assert cost["parameters"] == n == 6_738_415_616
    assert cost["training FLOPs (6ND)"] == 6 * n * 2e12
    assert cost["training FLOPs with attention"] > cost["training FLOPs (6ND)"]
    assert cost["GPU-hours"] == pytest.approx(6 * n * 2e12 / (0.5 * 312e12) / 3600)
    assert cost["GPU-days"] == pytest.approx(cost["GPU-hours"] / 24)
    assert cost["model states GB"] == pytest.approx(16 * n / 1e9)
    assert cost["model states GB"] == pytest.approx(sizing.memory(cfg, "bf16")["full fine-tuning"] / 1e9)
    assert cost["GPUs to hold the states"] == math.ceil(16 * n / 80e9)
    table = scaling.cost_table({k: scaling.llama2_config(k) for k in scaling.LLAMA2}, 2e12)
    assert list(table.columns) == ["7B", "70B"] and table.loc["parameters", "70B"] == pytest.approx(69e9, rel=0.01)
    with pytest.raises(ValueError, match="mfu"):
        scaling.training_cost(cfg, 1e9, mfu=1.5)
    with pytest.raises(ValueError, match="size"):
        scaling.llama2_config("13B")


def test_llama2_configs_build_the_published_sizes():
    from transformers import LlamaForCausalLM
    for size in scaling.LLAMA2:
        cfg = scaling.llama2_config(size)
        with torch.device("meta"):
            counted = sum(p.numel() for p in LlamaForCausalLM(cfg).parameters())
        assert counted == sizing.param_count(cfg)


def test_reported_llama2_hours_imply_a_plausible_mfu():
    """Touvron et al.'s GPU-hours for 2T tokens, against 6ND at the A100's peak: a utilisation between 30 and 60%,
    what well-tuned large runs report (a wrong constant, e.g. 2ND or a wrong peak, would leave that range)."""
    for size, hours in scaling.LLAMA2_PRETRAINING["A100 GPU-hours"].items():
        mfu = scaling.implied_mfu(scaling.llama2_config(size), scaling.LLAMA2_PRETRAINING["tokens"], hours)
        assert 0.3 < mfu < 0.6, (size, mfu)


def test_assumptions_name_what_the_numbers_assume():
    text = "\n".join(scaling.assumptions(scaling.H100, 0.35))
    for needle in ("6 N D", "989 TFLOP/s", "35%", "16 bytes per parameter", "NOT included"):
        assert needle in text


def test_mfu_and_cpu_verdicts_both_ways():
    assert "within 5 points" in scaling.mfu_verdict("7B", 0.40, 0.39)
    assert "optimistic" in scaling.mfu_verdict("7B", 0.60, 0.39)
    assert "pessimistic" in scaling.mfu_verdict("7B", 0.20, 0.39)
    assert "CPUs do not train such models" in scaling.cpu_years_verdict(8e22, 1e10, "7B")
    assert "feasible on this machine" in scaling.cpu_years_verdict(1e15, 1e10, "tiny")
    assert "1.2 days" in scaling.cpu_years_verdict(1e15, 1e10, "tiny")
    assert "2.0 s" in scaling.cpu_years_verdict(2e10, 1e10, "tinier")


def test_matmul_throughput_is_measured():
    assert scaling.matmul_flops_per_second(64, repeat=2) > 1e6


# ----------------------------------------------------------------------------- runs and the sweep
@pytest.fixture(scope="module")
def tiny_data():
    return scaling.scaling_data(4 * scaling.BATCH * scaling.BLOCK, n_val_docs=20)


def test_train_run_counts_tokens_and_refuses_repeated_data(tiny_data):
    torch.set_num_threads(1)
    r = scaling.train_run(tiny_data, ModelSize(8, 1), 3 * scaling.BATCH * scaling.BLOCK + 100)
    assert (r.steps, r.tokens) == (3, 3 * scaling.BATCH * scaling.BLOCK)
    assert r.compute == 6 * r.non_embedding * r.tokens
    assert r.params == sum(p.numel() for p in GPT(ModelSize(8, 1).config(tiny_data.vocab_size)).parameters())
    assert math.isfinite(r.val_loss) and r.cpu_seconds > 0
    with pytest.raises(ValueError, match="so no block repeats"):
        scaling.train_run(tiny_data, ModelSize(8, 1), 10 * len(tiny_data.train_blocks) * scaling.BLOCK)
    with pytest.raises(ValueError, match="steps of the run"):
        scaling.train_run(tiny_data, ModelSize(8, 1), 10)


def test_sweep_trains_each_run_once(tiny_data, capsys):
    sweep = scaling.Sweep(tiny_data)
    budgets = [scaling.BATCH * scaling.BLOCK, 2 * scaling.BATCH * scaling.BLOCK]
    first = sweep.run([(8, 1), ModelSize(16, 1)], budgets)
    assert len(first) == 4 and len(sweep.runs) == 4
    capsys.readouterr()
    again = sweep.run([ModelSize(8, 1), ModelSize(16, 1), ModelSize(16, 2)], budgets[:1])
    assert len(again) == 3 and len(sweep.runs) == 5
    assert capsys.readouterr().out.count("val loss") == 1          # only the new run trained
    assert again.iloc[0]["val loss"] == first.iloc[0]["val loss"]
    with pytest.raises(ValueError, match="ModelSize or a"):
        sweep.run(["d8"], budgets)
