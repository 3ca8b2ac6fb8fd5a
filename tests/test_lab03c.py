"""Lab 3c: the exercises accept the right answer and refuse the naive one, a constant and an ignored argument; no
hint states its answer; a lab run adds the row it was asked for."""
import pytest
import torch

from labkit.data.reviews import balanced_subset, make_reviews
from labkit.data.text import encode
from labkit.nn import count_parameters
from labkit.labs import lab03c
from labkit.transfer import Encoders
from test_labs import refuses, states_answer


@pytest.fixture(scope="module")
def encoders():
    return Encoders("all-MiniLM-L6-v2", quiet=True)


@pytest.fixture(scope="module")
def sizes(encoders):
    c = encoders.loaded.model.config
    return c.hidden_size, c.num_hidden_layers, c.intermediate_size, 2 * c.hidden_size + 2  # d, blocks, ffn, head


@pytest.fixture(scope="module")
def tiny(encoders):
    data = make_reviews(seed=0, n_train=20, n_val=2, n_test=4)
    return encode(encoders.tokenizer, balanced_subset(data.train, 4)), encode(encoders.tokenizer, data.test)


def test_exercises_accept_hand_counts_and_reject_wrong_ones(encoders, sizes):
    d, blocks, ffn, head = sizes
    ex = lab03c.exercises(encoders, r=4, k=2)
    block = 4 * (d * d + d) + (d * ffn + ffn) + (ffn * d + d) + 4 * d
    biases = blocks * (4 * d + ffn + d + 2 * d) + d + d  # blocks, embeddings LayerNorm, pooler
    total = count_parameters(encoders.loaded.model) + head
    adapters = 2 * blocks * (d * 16 + 16 + 16 * d + d)     # bottleneck 16 after both output projections
    lora8 = 2 * blocks * 2 * 8 * d
    right = {"3c.1": 2 * blocks * 2 * 4 * d + head, "3c.2": 2 * block + head, "3c.3": biases + head,
             "3c.4": 8 * total / 2 ** 20, "3c.5": 2.0, "3c.6": adapters}
    assert set(ex) == set(right)
    for key in ex:
        assert ex[key].check(right[key]), key
        assert not states_answer(ex[key].hint, right[key]), key
    assert ex["3c.4"].check(round(right["3c.4"], 1))  # to 1%
    assert ex["3c.1"].check(None) is False  # "not answered yet", no error
    # 3c.1: without the head, A alone, the rank asked ignored (r=8)
    assert refuses(ex["3c.1"], 2 * blocks * 2 * 4 * d, 2 * blocks * 4 * d + head, 2 * blocks * 2 * 8 * d + head)
    # 3c.2: without the head, k ignored (one block), every block
    assert refuses(ex["3c.2"], 2 * block, block + head, blocks * block + head)
    # 3c.3: without the head, without the pooler, the blocks' biases alone
    assert refuses(ex["3c.3"], biases, biases - d + head, blocks * (4 * d + ffn + d + 2 * d))
    # 3c.4: with the gradients (12 bytes), one moment, MB of 10**6 bytes instead of MiB (4.9% off)
    assert refuses(ex["3c.4"], 12 * total / 2 ** 20, 4 * total / 2 ** 20, 8 * total / 1e6)
    # 3c.5: r / alpha, alpha, r
    assert refuses(ex["3c.5"], 0.5, 16, 8)
    # 3c.6: both merge (0), neither merges, the wrong one merges, LoRA's count, the two added together
    assert refuses(ex["3c.6"], 0, adapters - lora8, -lora8, lora8, adapters + lora8)


def test_lora_exercise_follows_the_rank(encoders, sizes):
    d, blocks, _, head = sizes
    assert lab03c.exercises(encoders, r=1)["3c.1"].check(2 * blocks * 2 * d + head)
    assert lab03c.exercises(encoders, k=1)["3c.2"].check(count_parameters(encoders.loaded.model.encoder.layer[-1]) + head)


def test_inference_extra_counts_what_cannot_be_merged(encoders, sizes):
    d, blocks, _, _ = sizes
    assert lab03c.mergeable() == "LoRA"
    assert lab03c.added_parameters(encoders, "LoRA", r=8) == 2 * blocks * 2 * 8 * d
    assert lab03c.added_parameters(encoders, "adapters") == lab03c.inference_extra(encoders)


def test_settings_label_rows_and_refuse_bad_values():
    assert lab03c.settings("LoRA", r=4) == ("LoRA r=4 (α=8, q/v)", {"r": 4, "alpha": 8, "targets": ("query", "value")})
    assert lab03c.settings("top-k blocks", k=3) == ("top-k k=3", {"k": 3})
    assert lab03c.settings("BitFit") == ("BitFit", {})
    assert set(lab03c.CHOICES) == set(lab03c.SUGGESTED_LR)
    from labkit.strategies import LEARNING_RATES, STRATEGIES
    assert set(lab03c.CHOICES.values()) == set(STRATEGIES)  # every strategy on the panel, by its id
    assert lab03c.SUGGESTED_LR["LoRA"] == LEARNING_RATES["lora"]  # one table of rates, in labkit.strategies
    with pytest.raises(ValueError, match="strategy must be one of"):
        lab03c.settings("prompt tuning")
    with pytest.raises(ValueError, match=r"r \(the LoRA rank\)"):
        lab03c.settings("LoRA", r=0)


class _Handle:
    def __init__(self):
        self.shown = []

    def update(self, df):
        self.shown.append(df)


def test_a_run_adds_a_row_with_the_requested_settings(encoders, sizes, tiny):
    d, blocks, ffn, head = sizes
    train, test = tiny
    lab = lab03c.StrategyLab(encoders, train, test, batch_size=4)
    lab._handle = _Handle()  # what show() creates in a notebook
    row = lab.run("LoRA", r=4, lr=1e-3, epochs=1)
    assert row["strategy"] == "LoRA r=4 (α=8, q/v)" and row["lr"] == 1e-3 and row["epochs"] == 1
    assert row["trainable params"] == 2 * blocks * 2 * 4 * d + head
    assert 0 <= row["test accuracy"] <= 1
    row = lab.run("top-k blocks", k=1, lr=2e-4, epochs=1)
    block = count_parameters(encoders.loaded.model.encoder.layer[-1])
    assert row["strategy"] == "top-k k=1" and row["trainable params"] == block + head
    table = lab.table()
    assert list(table.index) == [1, 2] and list(table["strategy"]) == ["LoRA r=4 (α=8, q/v)", "top-k k=1"]
    assert [len(df) for df in lab._handle.shown] == [1, 2]  # the displayed table grew in place
    with pytest.raises(ValueError, match="k must be"):
        lab.run("top-k blocks", k=9, lr=2e-4, epochs=1)
    assert len(lab.rows) == 2  # a refused run adds no row
    assert lab.results[0].model is None and lab.last.strategy == "top_k"  # STRATEGIES' id
    # every run trained a fresh copy: the top block moved in run 2, the pretrained weights did not
    top = lambda encoder: encoder.encoder.layer[-1].output.dense.weight
    assert not torch.equal(top(lab.last.model.encoder), top(encoders.loaded.model))
    assert torch.equal(top(encoders.encoder("pretrained")), top(encoders.loaded.model))
