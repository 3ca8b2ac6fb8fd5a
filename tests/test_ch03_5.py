"""Chapter 3.5's verdicts follow their numbers both ways (the teacher's confidence, KD against hard labels,
forgetting, what each strategy costs); its exercises accept the right answers and refuse the usual wrong ones."""
import copy

import pytest
import torch
from transformers import BertConfig, BertModel

from labkit.finetune import GradualUnfreezing, encoder_layers, soft_targets
from labkit.labs import ch03_5
from labkit.lora import inject_lora
from labkit.nn import SequenceClassifier, freeze
from labkit.strategies import StrategyResult, cost_verdicts
from test_labs import refuses, states_answer

H, LAYERS = 32, 4


def tiny_bert(seed=0):
    torch.manual_seed(seed)
    return BertModel(BertConfig(hidden_size=H, num_hidden_layers=LAYERS, num_attention_heads=4, intermediate_size=64,
                                vocab_size=100, max_position_embeddings=32)).eval()


# ----------------------------------------------------------------------------- verdicts
def stats(p_top_T, agree=1.0):
    return {"T": 2.0, "agrees with labels": agree, "top-class probability at T=1": min(1.0, p_top_T + 0.02),
            "top-class probability at T": p_top_T, "entropy share at T": 0.1}


def test_teacher_verdict_follows_the_confidence():
    sure = ch03_5.teacher_verdict(stats(0.98))
    assert "nearly certain" in sure and "0.980 at T=2" in sure and "100% of the reviews" in sure
    assert "where it disagrees" in ch03_5.teacher_verdict(stats(0.98, agree=0.9))
    unsure = ch03_5.teacher_verdict(stats(0.7))
    assert "not certain" in unsure and "nearly" not in unsure


def test_soft_targets_read_the_teacher():
    torch.manual_seed(0)
    teacher = SequenceClassifier(tiny_bert(), n_classes=2).eval()
    ids = torch.randint(0, 100, (6, 5))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        logits = teacher(ids, mask)
    labels = logits.argmax(-1)
    s = soft_targets(teacher, torch.utils.data.TensorDataset(ids, mask, labels), T=3.0)
    assert s["agrees with labels"] == 1.0
    assert s["top-class probability at T=1"] == pytest.approx(logits.softmax(-1).max(-1).values.mean().item(), rel=1e-5)
    assert s["top-class probability at T"] == pytest.approx((logits / 3).softmax(-1).max(-1).values.mean().item(), rel=1e-5)
    assert 0 < s["entropy share at T"] <= 1 and s["T"] == 3.0
    flipped = soft_targets(teacher, torch.utils.data.TensorDataset(ids, mask, 1 - labels), T=3.0)
    assert flipped["agrees with labels"] == 0.0
    with pytest.raises(ValueError, match="T"):
        soft_targets(teacher, torch.utils.data.TensorDataset(ids, mask, labels), T=0)


def test_kd_and_forgetting_verdicts():
    assert "ahead by 5.0 points" in ch03_5.kd_verdict(0.85, 0.80)
    assert "behind by 5.0 points" in ch03_5.kd_verdict(0.80, 0.85)
    assert "level" in ch03_5.kd_verdict(0.801, 0.80)
    assert "fell by 12.5 points" in ch03_5.forgetting_verdict(0.9, 0.775) and "catastrophic forgetting" in \
        ch03_5.forgetting_verdict(0.9, 0.775)
    none = ch03_5.forgetting_verdict(0.9, 0.895)
    assert "no forgetting measurable" in none and "-0.5 points" in none
    assert "no forgetting measurable" in ch03_5.forgetting_verdict(0.8, 0.85)


def _result(name, trainable, total, state, acts):
    mem = {"grads MB": state / 3, "AdamW state MB": 2 * state / 3, "activations MB": acts}
    return StrategyResult(name, 0.8, trainable, total, 1.0, 1.0, mem, None, None)


def test_cost_verdicts_follow_the_numbers():
    results = {"full": _result("full", 1000, 1000, 12.0, 10.0), "lora": _result("lora", 10, 1010, 0.12, 8.0),
               "linear_probe": _result("linear_probe", 2, 1000, 0.02, 0.1), "gradual": _result("gradual", 300, 1000, 3.6, 9.0)}
    lines = cost_verdicts(results)
    assert any("LoRA (r=8, query/value) trains 0.99% of the parameters: all under 2%." in l for l in lines)
    assert any("state 1.0% of full fine-tuning's, activations 80% of its: the activations shrink far less" in l for l in lines)
    assert any("the smallest of all strategies" in l for l in lines)
    assert any("30% of those of full fine-tuning: with this budget it never reached" in l for l in lines)
    other = {"full": _result("full", 1000, 1000, 12.0, 10.0), "bitfit": _result("bitfit", 50, 1000, 0.6, 0.5),
             "linear_probe": _result("linear_probe", 2, 1000, 0.02, 0.6), "gradual": _result("gradual", 1000, 1000, 12, 9)}
    lines = cost_verdicts(other)
    assert any("BitFit trains 5.00% of the parameters: not all under 2%." in l for l in lines)
    assert any("the activations shrink about as much as the optimizer state" in l for l in lines)
    assert any("not the smallest (BitFit has 0.5 MB)" in l for l in lines)
    assert any("far more than" in l for l in cost_verdicts({**other, "bitfit": _result("bitfit", 50, 1000, 0.6, 0.01)}))
    assert any("by the end it trained the whole network" in l for l in lines)
    with pytest.raises(ValueError, match="reference must be one of"):
        cost_verdicts({"lora": results["lora"]})


# ----------------------------------------------------------------------------- exercises
@pytest.fixture(scope="module")
def chapter():
    adapted = freeze(tiny_bert())
    inject_lora(adapted, ["query", "value"], r=8, alpha=16)
    lora = _result("lora", 8 * H * 2 * 2 * LAYERS + 2 * H + 2, 10_000, 0.5, 1.0)
    lora.memory = {"grads MB": 0.01, "AdamW state MB": 0.02, "activations MB": 1.0}
    return adapted, lora


def test_blocks_training_runs_the_callback():
    for epochs in (1, 2, 4, 9):
        enc = tiny_bert()
        assert ch03_5.blocks_training(enc, epochs) == min(epochs - 1, LAYERS)
    # the same as GradualUnfreezing inside fit would leave: epoch e trains e - 1 blocks
    enc = tiny_bert()
    cb = GradualUnfreezing(enc)
    cb.on_fit_start(None); cb.on_epoch_end(None)
    assert sum(all(p.requires_grad for p in l.parameters()) for l in encoder_layers(enc)) == 1


def test_exercises_accept_the_right_answers_and_refuse_the_wrong_ones(chapter):
    adapted, lora = chapter
    ex = ch03_5.exercises(adapted, lora, 0.9, 0.775, tiny_bert, epochs=4)
    n_lora = LAYERS * 2 * (8 * H + H * 8)
    state = lora.memory["grads MB"] + lora.memory["AdamW state MB"]
    right = {"3.5.1": n_lora, "3.5.2": state, "3.5.3": 12.5, "3.5.4": 3}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
        assert not states_answer(ex[key].hint, answer), key
    # 3.5.1: full updates of the same layers (naive), A alone, one layer, with the head
    assert refuses(ex["3.5.1"], LAYERS * 2 * H * H, LAYERS * 2 * 8 * H, 2 * 8 * H, n_lora + 2 * H + 2)
    # 3.5.2: the moments alone, the gradients alone, with the weights (16 bytes)
    assert refuses(ex["3.5.2"], lora.memory["AdamW state MB"], lora.memory["grads MB"], state * 16 / 12)
    # 3.5.3: the sign the wrong way round, a fraction instead of points, no forgetting, the accuracy after
    assert refuses(ex["3.5.3"], -12.5, 0.125, 0, 77.5)
    # 3.5.4: one block per epoch from the first (the head-only epoch ignored), all blocks, none
    assert refuses(ex["3.5.4"], 4, LAYERS, 0)


def test_exercises_follow_their_arguments(chapter):
    adapted, lora = chapter
    ex = ch03_5.exercises(adapted, lora, 0.8, 0.85, tiny_bert, epochs=2)
    assert ex["3.5.3"].check(-5.0) and not ex["3.5.3"].check(5.0)
    assert ex["3.5.4"].check(1) and not ex["3.5.4"].check(3)
