"""Every lab's checks: the right answer passes; the naive answer, the article's answer, a constant output and an
ignored argument are refused; an exercise follows its arguments; a hint never states the answer.

Lab 3c has its own file (test_lab03c.py); Lab 5's right answers and the article's versions are in test_bilstm.py.
"""
import math
from collections import Counter

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from labkit import zoo
from labkit.data.reviews import HELD_OUT_WORDS, make_reviews
from labkit.finetune import count_parameters
from labkit.labs import lab02, lab03a, lab03b, lab04a, lab04b, lab05
from labkit.nn import BertEncoder
from labkit.numpy_nn import sigmoid, softmax
from labkit.transfer import Encoders, RunResult, closer_to_own_sentiment
from exercise_checks import refuses, states_answer


# ----------------------------------------------------------------------------- Lab 2
@pytest.fixture(scope="module")
def encoders():
    return Encoders("all-MiniLM-L6-v2", quiet=True)


@pytest.fixture(scope="module")
def reviews():
    return make_reviews(seed=0, n_test=40)


def _result(arm, acc, train=1.0):
    return RunResult(arm, 16, acc, 0.5, 10, 1.0, history=None,
                     accuracy={"train": train, "val": 0.9, "unseen": acc})


def test_lab02_right_answers_pass_and_naive_ones_fail(encoders, reviews):
    ex = lab02.exercises(encoders, reviews)
    width = encoders.loaded.model.config.hidden_size
    encoder = count_parameters(encoders.loaded.model)
    held_out = [w for lab in HELD_OUT_WORDS.values() for w in lab["adj"]]
    labels = reviews.labels("test")
    own = {arm: sum(r["own sentiment closer"] for r in closer_to_own_sentiment(encoders.encoder(arm),
                                                                                encoders.tokenizer))
           for arm in ("pretrained", "scratch")}
    right = {"2.1": 2 * width + 2, "2.2": encoder + 2 * width + 2, "2.3": 0,
             "2.4": max(Counter(labels).values()) / len(labels), "2.5": own["pretrained"] - own["scratch"]}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
        assert not states_answer(ex[key].hint, answer), key
    assert refuses(ex["2.1"], 2 * width, width)                      # forgot the biases; one output
    assert refuses(ex["2.2"], encoder, 2 * width + 2)                # the encoder alone; the head alone
    assert refuses(ex["2.3"], len(held_out))                         # "all of them"
    assert refuses(ex["2.4"], 1.0, 0.0, 1 / 3)
    # 2.5: one encoder's count alone, "all of them", a coin, no difference, the sign the wrong way round
    assert refuses(ex["2.5"], own["pretrained"], own["scratch"], len(held_out), len(held_out) // 2, 0,
                   own["scratch"] - own["pretrained"])


def test_lab02_verdict_follows_the_numbers():
    ahead = lab02.verdict({"scratch": _result("scratch", 0.52), "pretrained": _result("pretrained", 0.84)})
    assert "the pretrained arm is ahead (+32.0 points" in ahead
    assert "scratch fits its 16 labels (train accuracy 1.000 >= 0.95) and is within 10 points of chance" in ahead
    assert "pretrained fits its 16 labels (train accuracy 1.000 >= 0.95) and is more than 10 points above" in ahead
    behind = lab02.verdict({"scratch": _result("scratch", 0.9, train=0.7), "pretrained": _result("pretrained", 0.6)})
    assert "the scratch arm is ahead (-30.0 points" in behind and "scratch does not fit its 16 labels (train accuracy 0.700 < 0.95)" in behind
    level = lab02.verdict({"scratch": _result("scratch", 0.61), "pretrained": _result("pretrained", 0.6)})
    assert "the two arms are level" in level


def test_lab02_panel_refuses_a_batch_larger_than_the_labels(encoders, reviews, capsys):
    lab = lab02.TwoArms(encoders, reviews)
    panel = lab02.panel(lab, n_labels=16, epochs=1)
    assert panel.run(batch_size=32, n_labels=16) is None
    assert "batch_size must be at most n_labels=16" in capsys.readouterr().out and lab.rows == []
    assert lab02.batch_fits({"batch_size": 16, "n_labels": 16}) is None


def test_lab02_a_run_trains_both_arms_with_the_settings_asked(encoders, reviews):
    lab = lab02.TwoArms(encoders, reviews)
    out = lab.run(n_labels=16, lr=1e-4, epochs=1, batch_size=16, freeze_encoder=True)
    assert set(out) == {"scratch", "pretrained"}
    head = 2 * encoders.loaded.model.config.hidden_size + 2
    assert [r["arm"] for r in lab.rows] == ["scratch", "pretrained"]
    assert all(r["frozen"] and r["labels"] == 16 and r["trainable params"] == head for r in lab.rows)
    assert all(0 <= r[k] <= 1 for r in lab.rows for k in ("train accuracy", "val accuracy", "test accuracy"))
    assert set(out["scratch"].accuracy) == {"train", "val", "unseen"}
    assert list(lab.table()["arm"]) == ["scratch", "pretrained"]
    assert f"test (held-out words) {out['scratch'].test_acc:.3f}" in lab02.verdict(out)


# ----------------------------------------------------------------------------- Lab 3a
SENTENCE = "The animal didn't cross the street because it was too tired."


@pytest.fixture(scope="module")
def attention():
    pre = zoo.load("all-MiniLM-L6-v2", quiet=True)
    return BertEncoder.from_hf(pre.model).eval(), pre.tokenizer


def test_lab03a_counts_pass_and_naive_counts_fail(attention):
    encoder, tok = attention
    ex = lab03a.exercises(encoder, tok, SENTENCE, layer=2, head=0)
    n = len(tok(SENTENCE)["input_ids"])
    L, H = encoder.cfg.n_layers, encoder.cfg.n_heads
    right = {"3a.1": n * n, "3a.2": 1.0, "3a.3": n * (n + 1) // 2, "3a.4": L * H * n * n}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
        assert not states_answer(ex[key].hint, answer), key
    words = n - 2
    assert refuses(ex["3a.1"], words * words, n)                     # without [CLS]/[SEP]; one per token
    assert refuses(ex["3a.2"], 0.0, n, 1 / n)
    assert refuses(ex["3a.3"], n * (n - 1) // 2, n * n / 2, n * n)   # no diagonal; half; no mask
    assert refuses(ex["3a.4"], n * n, L * n * n, H * n * n)          # forgot layers or heads


def test_lab03a_exercises_follow_the_sentence(attention):
    encoder, tok = attention
    n = len(tok(SENTENCE)["input_ids"])
    short = lab03a.exercises(encoder, tok, "The cat sat.")
    m = len(tok("The cat sat.")["input_ids"])
    assert m != n and short["3a.1"].check(m * m) and not short["3a.1"].check(n * n)


def test_lab03a_previous_token_share_reads_the_subdiagonal():
    t = 5
    prev = torch.diag(torch.ones(t - 1), -1)
    prev[0, 0] = 1.0                                 # token 0 has no previous token
    maps = torch.stack([prev, torch.eye(t), torch.full((t, t), 1 / t)])
    torch.testing.assert_close(lab03a.previous_token_share(maps), torch.tensor([1.0, 0.0, 1 / t]))


def test_lab03a_head_profile_measures_each_kind_of_position_and_roles_follow_it():
    t, tokens = 5, ["[CLS]", "a", "b", "c", "[SEP]"]
    prev = torch.diag(torch.ones(t - 1), -1)
    prev[0, 0] = 1.0
    to_cls = torch.zeros(t, t)
    to_cls[:, 0] = 1.0
    profile = lab03a.head_profile(torch.stack([prev, to_cls, torch.full((t, t), 1 / t)]), tokens)
    assert list(profile.columns) == ["previous token", "next token", "itself", "[CLS]", "[SEP]"]
    assert profile.loc[0, "previous token"] == 1.0 and profile.loc[1, "[CLS]"] == 1.0
    assert profile.loc[2].tolist() == pytest.approx([1 / t] * 5)
    roles = lab03a.head_roles(profile)
    assert roles == ["head 0: 100% of its weight on the previous token", "head 1: 100% of its weight on [CLS]",
                     "head 2: no kind of position gets 50% of the weight on average"]
    assert lab03a.head_roles(profile, threshold=0.1)[-1] == "head 2: 20% of its weight on the previous token"
    with pytest.raises(ValueError, match="len\\(tokens\\)"):
        lab03a.head_profile(torch.stack([prev]), tokens[:3])


def test_lab03a_panel_draws_the_chosen_head_and_refuses_bad_values(attention, monkeypatch, capsys):
    encoder, tok = attention
    shown = []
    monkeypatch.setattr(go.Figure, "show", lambda fig, *a, **k: shown.append(fig))
    panel = lab03a.panel(encoder, tok, SENTENCE, layer=2, head=1)
    tokens, maps = panel.run(causal=True)
    assert shown[0].layout.title.text == "layer 2, head 1 (causal mask)"
    assert torch.all(maps[2][1].triu(1) == 0)        # the causal map has nothing above the diagonal
    assert "strongest key" in capsys.readouterr().out
    assert panel.run(layer=encoder.cfg.n_layers) is None and panel.run(sentence="  ") is None
    assert "Refused" in capsys.readouterr().out


# ----------------------------------------------------------------------------- Lab 3b
@pytest.fixture(scope="module")
def stories():
    return lab03b.stories(40, seed=0)


def test_lab03b_right_answers_pass_and_naive_ones_fail(stories):
    ex = lab03b.exercises(stories)
    V, d, L, T = stories.vocab_size, 32, 2, lab03b.CONTEXT
    params = V * d + T * d + L * (12 * d * d + 13 * d) + 2 * d
    counts = Counter(stories.stream.tolist())
    p = np.array(list(counts.values())) / len(stories.stream)
    h1 = float(-(p * np.log(p)).sum())
    right = {"3b.1": params, "3b.2": math.log(V), "3b.3": h1}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
        assert not states_answer(ex[key].hint, answer), key
    assert refuses(ex["3b.1"], params + V * d,                       # an untied LM head
                   params - T * d,                                    # no position embeddings
                   V * d + T * d + L * 12 * d * d)                    # the 12 d² rule without biases and norms
    assert refuses(ex["3b.2"], math.log2(V), 1 / V, V)                # bits; a probability; the count
    assert refuses(ex["3b.3"], h1 / math.log(2), math.log(V))         # bits; the uniform guess


def test_lab03b_exercises_follow_the_model_and_the_stream(stories):
    V, d = stories.vocab_size, 32
    wide = lab03b.exercises(stories, d_model=64)
    assert not wide["3b.1"].check(V * d + 64 * d + 2 * (12 * d * d + 13 * d) + 2 * d)
    assert wide["3b.1"].check(count_parameters(lab03b.gpt(V, 64, 2)))
    other = lab03b.stories(60, seed=1)
    from labkit.objectives import unigram_entropy
    assert not lab03b.exercises(other)["3b.3"].check(unigram_entropy(stories.stream))


def test_lab03b_pretrain_runs_the_budget_and_learns(stories, monkeypatch):
    monkeypatch.setattr(go.Figure, "show", lambda *a, **k: None)
    lab = lab03b.GPTLab(stories, seed=0, sample_every=10)
    out = lab.pretrain(d_model=16, n_layers=1, lr=3e-3, steps=20)
    assert out["params"] == count_parameters(lab03b.gpt(stories.vocab_size, 16, 1))
    assert out["first_loss"] == pytest.approx(math.log(stories.vocab_size), rel=0.1)  # untrained: about ln V
    assert out["val_loss"] < out["first_loss"]
    hist, per_epoch = out["history"], math.ceil(len(stories.train_blocks) / 32)
    assert len(hist.steps) == 20 and len(hist.epochs) == math.ceil(20 / per_epoch) and not hist.interrupted
    assert isinstance(lab.sample(out["model"]), str) and lab.sample(out["model"]) == lab.sample(out["model"])
    assert set(out["sample"]) == {"sentences", "follow the templates", "repeat an earlier sentence"}


def test_lab03b_run_prints_its_verdicts(stories, monkeypatch, capsys):
    monkeypatch.setattr(go.Figure, "show", lambda *a, **k: None)
    out = lab03b.GPTLab(stories, seed=0, sample_every=10).pretrain(d_model=16, n_layers=1, lr=3e-3, steps=10)
    printed = capsys.readouterr().out
    assert f"verdict: validation loss {out['val_loss']:.3f} nats/token against the unigram entropy" in printed
    assert "its last sample:" in printed


def test_lab03b_panel_refuses_a_width_the_heads_cannot_split(stories, capsys):
    panel = lab03b.panel(lab03b.GPTLab(stories), width=32, depth=1, steps=10)
    assert panel.run(d_model=50) is None and panel.run(lr=0.0) is None
    out = capsys.readouterr().out
    assert "d_model must be a multiple of n_heads = 4; got 50" in out and "lr must be a finite number > 0" in out
    assert panel.results == []


# ----------------------------------------------------------------------------- Lab 4a
STEPS_4A3 = math.ceil(math.log(0.01) / math.log(0.99))               # |x| shrinks by 0.99 per step: 459 steps


def test_lab04a_right_answers_pass_and_naive_ones_fail():
    ex = lab04a.exercises()
    limit = 2 / 25                                                    # the quadratic's Hessian: eigenvalues 1, 25
    right = {"4a.1": 0.1, "4a.2": limit, "4a.3": STEPS_4A3, "4a.4": 0.1 / math.sqrt(0.001)}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
        assert not states_answer(ex[key].hint, answer), key
    assert ex["4a.1"].check(1.01 * limit) and ex["4a.1"].check(np.float64(0.5))
    assert refuses(ex["4a.1"], 1 / 25, limit, 0.0, -1.0, "0.1", True, float("nan"))  # 1/λ; the edge; not numbers
    assert refuses(ex["4a.2"], 1 / 25, 2.0, 1 / 12.5 * 2, True, "0.08", float("nan"))  # 1/λ_max; 2/λ_min; twice
    # 4a.3 takes the exact count, ln(0.01)/ln(0.99) unrounded, and the estimate ln(1 − lr) ≈ −lr
    assert ex["4a.3"].check(math.log(0.01) / math.log(0.99)) and ex["4a.3"].check(math.log(0.01) / -0.01)
    assert refuses(ex["4a.3"], math.log(0.01) / (2 * math.log(0.99)),  # f = x²/2 shrinking 100-fold, not |x|
                   math.log(0.01) / math.log(1 - 0.01 * 25),            # the steep direction
                   lab04a.steps_to_shrink(0.01, optimizer="momentum"),  # momentum's count, not GD's
                   1 / 0.01, 300, 0, True, "459", None)                 # 1/lr; the old step count; constants
    assert refuses(ex["4a.4"], 1.0, 10.0, 1 / math.sqrt(0.001),        # no difference (the article); m or v alone
                   math.sqrt(0.001) / 0.1, True, "3.16")                # the inverse ratio; not numbers


def test_lab04a_explanations_and_hints_do_not_give_away_an_answer():
    ex = lab04a.exercises()
    answers = {"4a.2": 2 / 25, "4a.3": STEPS_4A3, "4a.4": 0.1 / math.sqrt(0.001), "λ_max": 25.0}
    for key, e in ex.items():
        for other, value in answers.items():
            assert not states_answer(e.hint, value), (key, other)
            if other != key:
                assert not states_answer(e.explain, value), (key, other)


def test_lab04a_exercises_follow_their_settings():
    assert lab04a.steps_to_shrink(0.02) == math.ceil(math.log(0.01) / math.log(0.98))
    ex = lab04a.exercises(lr=0.02)
    assert ex["4a.3"].check(lab04a.steps_to_shrink(0.02)) and not ex["4a.3"].check(STEPS_4A3)  # lr is not ignored
    assert lab04a.exercises(shrink=10)["4a.3"].check(math.ceil(math.log(0.1) / math.log(0.99)))
    assert lab04a.steps_to_shrink(0.1) is None                         # diverges: never shrinks
    assert lab04a.first_step_ratio(beta1=0.5, beta2=0.75) == pytest.approx(0.5 / 0.5)
    assert lab04a.first_step_ratio(beta1=0.9, beta2=0.99) == pytest.approx(0.1 / 0.1)
    for bad in (True, 0.0, -0.01):
        with pytest.raises(ValueError, match="lr"):
            lab04a.diverges(bad)
        with pytest.raises(ValueError, match="lr"):
            lab04a.steps_to_shrink(bad)


def test_lab04a_panel_shows_beta2_to_four_decimals(monkeypatch, capsys):
    panel = lab04a.panel(steps=20)
    beta2 = panel.params["beta2"].widget("beta2")
    assert format(0.999, beta2.readout_format) == "0.9990" and format(0.9, beta2.readout_format) == "0.9000"
    assert panel.params["momentum"].widget("momentum").readout_format == ".2f"
    monkeypatch.setattr(go.Figure, "show", lambda *a, **k: None)
    ends = panel.run(surface="quadratic", optimizer="adam", beta2=0.9)
    assert set(ends) == {"adam (lr=0.001)", "gd (lr=0.001)"}
    assert panel.run(lr=0.0) is None and "lr must be a finite number > 0" in capsys.readouterr().out
    assert panel.run(lr=True) is None and "lr must be a finite number > 0; got True" in capsys.readouterr().out


# ----------------------------------------------------------------------------- Lab 4b
def _sigmoid_right(z, grad_out):
    a = sigmoid(z)
    return grad_out * a * (1 - a)


def _linear_right(x, W, b, grad_out):
    return grad_out @ W.T, x.T @ grad_out, grad_out.sum(axis=0)


def _softmax_ce_right(z, y, grad_out):
    p = softmax(z)
    p[np.arange(len(y)), y] -= 1
    return grad_out * p / len(y)


def _mlp(X, Y, W1, b1, W2, b2, grad_out, relu_mask=True, mean=True):
    Z1 = X @ W1 + b1
    A1 = np.maximum(Z1, 0)
    dZ2 = grad_out * (sigmoid(A1 @ W2 + b2) - Y) / (len(X) if mean else 1)
    dZ1 = dZ2 @ W2.T * ((Z1 > 0) if relu_mask else 1)
    return X.T @ dZ1, dZ1.sum(axis=0), A1.T @ dZ2, dZ2.sum(axis=0)


RIGHT_4B = {
    "4b.1": _sigmoid_right,
    "4b.2": lambda z, grad_out: grad_out * (1 - np.tanh(z) ** 2),
    "4b.3": lambda z, grad_out: grad_out * (z > 0),
    "4b.4": _linear_right,
    "4b.5": _softmax_ce_right,
    "4b.6": _mlp,
}
def _article_mlp(X, Y, W1, b1, W2, b2, grad_out):
    """§3.8.3 made to run: ∇A2 = −(1/n)Σ(Y − A2) (a scalar), ∇Z2 = σ'(A2)∇A2 (σ' at A2 = σ(Z2)), then on."""
    Z1 = X @ W1 + b1
    A1 = np.maximum(Z1, 0)
    A2 = sigmoid(A1 @ W2 + b2)
    dA2 = -grad_out * (Y - A2).sum() / len(X)
    dZ2 = sigmoid(A2) * (1 - sigmoid(A2)) * dA2
    dZ1 = dZ2 @ W2.T * (Z1 > 0)
    return X.T @ dZ1, dZ1.sum(axis=0), A1.T @ dZ2, dZ2.sum(axis=0)


def _mlp_sigmoid_twice(X, Y, W1, b1, W2, b2, grad_out):
    """(A2 − Y)/n is already ∇Z2; multiplying it by σ'(Z2) once more is a common slip."""
    Z1 = X @ W1 + b1
    A1 = np.maximum(Z1, 0)
    A2 = sigmoid(A1 @ W2 + b2)
    dZ2 = grad_out * (A2 - Y) / len(X) * A2 * (1 - A2)
    dZ1 = dZ2 @ W2.T * (Z1 > 0)
    return X.T @ dZ1, dZ1.sum(axis=0), A1.T @ dZ2, dZ2.sum(axis=0)


def _mlp_batch_not_summed(X, Y, W1, b1, W2, b2, grad_out):
    """The article's ∇b = ∇Z: one row per example instead of a sum over the batch."""
    dW1, _, dW2, _ = _mlp(X, Y, W1, b1, W2, b2, grad_out)
    Z1 = X @ W1 + b1
    dZ2 = grad_out * (sigmoid(np.maximum(Z1, 0) @ W2 + b2) - Y) / len(X)
    return dW1, dZ2 @ W2.T * (Z1 > 0), dW2, dZ2


WRONG_4B = {  # key -> {what it is: a wrong backward}
    "4b.1": {"article: σ' at A": lab04b.article_sigmoid_backward,
             "constant": lambda z, grad_out: np.full_like(z, 0.25),
             "ignores grad_out": lambda z, grad_out: sigmoid(z) * (1 - sigmoid(z)),
             "ignores z": lambda z, grad_out: 0.25 * grad_out},
    "4b.2": {"naive: 1 - z²": lambda z, grad_out: grad_out * (1 - z ** 2),
             "constant": lambda z, grad_out: np.ones_like(z),
             "ignores z": lambda z, grad_out: grad_out,
             "ignores grad_out": lambda z, grad_out: 1 - np.tanh(z) ** 2},
    "4b.3": {"ReLU of the gradient": lambda z, grad_out: np.maximum(grad_out, 0),
             "ignores grad_out": lambda z, grad_out: (z > 0) * 1.0,
             "constant": lambda z, grad_out: np.zeros_like(z)},
    "4b.4": {"dW transposed": lambda x, W, b, grad_out: (grad_out @ W.T, grad_out.T @ x, grad_out.sum(0)),
             "db not summed": lambda x, W, b, grad_out: (grad_out @ W.T, x.T @ grad_out, grad_out),
             "article: X ∇Z, no transpose": lambda x, W, b, grad_out: (grad_out @ W.T, x @ grad_out, grad_out.sum(0)),
             "ignores grad_out": lambda x, W, b, grad_out: _linear_right(x, W, b, np.ones((len(x), W.shape[1]))),
             "constant": lambda x, W, b, grad_out: (np.zeros_like(x), np.zeros_like(W), np.zeros_like(b)),
             "two of three": lambda x, W, b, grad_out: (x.T @ grad_out, grad_out.sum(0))},
    "4b.5": {"no mean": lambda z, y, grad_out: _softmax_ce_right(z, y, grad_out) * len(y),
             "only the right class": lambda z, y, grad_out: -np.eye(z.shape[1])[y] * (1 - softmax(z)) / len(y),
             "ignores grad_out": lambda z, y, grad_out: _softmax_ce_right(z, y, 1.0),
             "constant": lambda z, y, grad_out: np.zeros_like(z)},
    "4b.6": {"no ReLU mask": lambda *a, grad_out: _mlp(*a, grad_out, relu_mask=False),
             "no mean": lambda *a, grad_out: _mlp(*a, grad_out, mean=False),
             "ignores grad_out": lambda *a, grad_out: _mlp(*a, 1.0),
             "article: ∇A2 a scalar, σ'(σ(Z2))": _article_mlp,
             "σ' applied twice": _mlp_sigmoid_twice,
             "article: batch sum missing in ∇b": _mlp_batch_not_summed,
             "constant": lambda X, Y, W1, b1, W2, b2, grad_out: tuple(np.zeros_like(p) for p in (W1, b1, W2, b2))},
}


@pytest.mark.parametrize("key", sorted(RIGHT_4B))
def test_lab04b_right_backward_passes_and_wrong_ones_fail(key, capsys):
    ex = lab04b.exercises(seed=0)
    assert set(ex) == set(RIGHT_4B)
    assert ex[key].check(RIGHT_4B[key])
    for what, wrong in WRONG_4B[key].items():
        assert not ex[key].check(wrong), what
    out = capsys.readouterr().out
    assert "✅" in out and "❌" in out and "Hint:" in out


def test_lab04b_reports_what_is_wrong(capsys):
    ex = lab04b.exercises(seed=0)

    def todo(z, grad_out):
        raise NotImplementedError

    assert not ex["4b.1"].check(todo) and "not implemented yet" in capsys.readouterr().out
    assert not ex["4b.1"].check(lambda z, grad_out: z @ z) and "raised ValueError" in capsys.readouterr().out
    assert not ex["4b.1"].check(lambda z, grad_out: grad_out.sum(0))
    assert "dL/dz must have shape (4, 3)" in capsys.readouterr().out
    assert not ex["4b.4"].check(WRONG_4B["4b.4"]["two of three"])
    assert "return 3 gradient(s), for x, W, b; got 2" in capsys.readouterr().out
    assert not ex["4b.1"].check(lab04b.article_sigmoid_backward)
    assert "dL/dz differs from finite differences (relative error" in capsys.readouterr().out
    assert ex["4b.1"].check(None) is False and "not answered yet" in capsys.readouterr().out


def test_lab04b_backward_check_of_a_right_and_a_wrong_backward():
    rng = np.random.default_rng(1)
    inputs = {"x": rng.normal(size=(4, 2)), "W": rng.normal(size=(2, 3)), "b": rng.normal(size=3)}
    reference = lab04b.BackwardCheck(lambda x, W, b: x @ W + b, inputs)
    assert reference.wrt == ("x", "W", "b") and reference.grad_out.shape == (4, 3)
    np.testing.assert_allclose(reference.expected["b"], reference.grad_out.sum(0), rtol=1e-6)
    assert reference.problems(_linear_right) == []
    assert reference.problems(WRONG_4B["4b.4"]["db not summed"]) == [
        "dL/db must have shape (3,) (the shape of b); got (4, 3)"]


def test_lab04b_a_scalar_output_gets_a_random_upstream_gradient():
    for seed in range(5):
        check = lab04b.BackwardCheck(lambda z, y: float(np.mean(z)) + 0 * y.sum(), {"z": np.ones((3, 2)),
                                                                                    "y": np.array([0, 1, 2])}, seed=seed)
        assert isinstance(check.grad_out, float) and 1.5 <= abs(check.grad_out) <= 3.0
        assert check.problems(lambda z, y, grad_out: grad_out * np.full_like(z, 1 / z.size)) == []
        assert check.problems(lambda z, y, grad_out: np.full_like(z, 1 / z.size))  # ignores grad_out: refused
    ex = lab04b.exercises(seed=0)
    assert not ex["4b.5"].check(WRONG_4B["4b.5"]["ignores grad_out"])
    assert not ex["4b.6"].check(WRONG_4B["4b.6"]["ignores grad_out"])


def test_lab04b_hints_do_not_hold_the_solution():
    for key, ex in lab04b.exercises().items():
        for formula in ("σ(z)(1 − σ(z))", "1 − tanh²", "grad_out Wᵀ", "Xᵀ grad_out", "softmax(z) − onehot",
                        "(σ(Z2) − Y)/n", "1[Z1 > 0]"):
            assert formula not in ex.hint, (key, formula)


# ----------------------------------------------------------------------------- Lab 5 (refusals beyond test_bilstm)
class _Constant(nn.Module):
    """A 'model' that ignores the review: one learnable number, the same for every review."""
    def __init__(self, vocab_size):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, ids, lengths):
        return self.bias.expand(ids.shape[0])


def test_lab05_refuses_constant_outputs_and_ignored_arguments():
    ex = lab05.exercises(make_reviews(seed=0, n_test=20))
    assert not ex["5.1"].check(lambda texts: {"<pad>": 0, "<unk>": 1})                 # ignores the texts
    assert not ex["5.2"].check(lambda vocab, text: [1] * len(text.split()))           # ignores the vocabulary
    assert not ex["5.3"].check(lambda examples: (torch.zeros(10, 5, dtype=torch.long), torch.full((10,), 5),
                                                 torch.zeros(10)))                    # a constant batch
    assert not ex["5.4"].check(_Constant) and not ex["5.5"].check(_Constant)          # a constant logit
    assert not ex["5.6"].check(lambda logits, target: torch.tensor(0.6931))           # a constant loss
    assert not ex["5.6"].check(lambda logits, target: F.binary_cross_entropy_with_logits(
        logits, torch.ones_like(logits)))                                              # ignores the target
    assert not ex["5.7"].check(lab05.article_parameter_count() + 2 * 4 * 32)          # PyTorch's two biases
    assert not ex["5.8"].check("<pad>")


def test_lab05_hints_do_not_state_the_answer():
    ex = lab05.exercises(make_reviews(seed=0, n_test=20))
    assert not states_answer(ex["5.7"].hint, lab05.article_parameter_count())
    assert not states_answer(ex["5.8"].hint, "hello")
    for key, code in (("5.2", ".get("), ("5.4", "h_n[-2]"), ("5.5", "pack_padded_sequence("),
                      ("5.6", "BCEWithLogits")):
        assert code not in ex[key].hint, key


def test_lab04a_panel_uses_momentum_and_betas_only_where_the_optimizer_has_them():
    p = lab04a.panel(steps=20)
    for optimizer, momentum, betas in (("gd", False, False), ("momentum", True, False), ("nesterov", True, False),
                                       ("adam", False, True), ("adamw", False, True)):
        values = {**p.defaults(), "optimizer": optimizer}
        applies = p.applicable(values)
        assert applies["momentum"] is momentum and applies["beta1"] is betas and applies["beta2"] is betas, optimizer
        done = p.settings(values)
        assert ("momentum" in done) is momentum and ("beta2" in done) is betas, done
