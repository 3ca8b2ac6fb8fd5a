"""Chapter 4's verdicts and exercises (labkit.labs.ch04_1 .. ch04_4).

Each verdict is worded from numbers, so it is tested with numbers that go both ways. Each exercise passes the
right answer and refuses the naive one, the article's, a constant and an answer that ignores an argument; no
hint states the answer.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from labkit import losses, surfaces
from labkit.labs import ch04_1, ch04_2, ch04_3, ch04_4
from exercise_checks import refuses, states_answer


def no_hint_states(ex: dict, right: dict) -> None:
    for key, answer in right.items():
        if isinstance(answer, (int, float)):
            assert not states_answer(ex[key].hint, answer), key


# ============================================================================= 4.1 losses
def _scores(mse_model, ssim_model):
    return {"MSE": dict(zip(("MSE", "SSIM"), mse_model)), "1 − SSIM": dict(zip(("MSE", "SSIM"), ssim_model))}


TRAINED_FOR = {"MSE": "MSE", "1 − SSIM": "SSIM"}


def test_metric_verdicts_follow_the_numbers():
    mse_low, mse_high = np.full(10, 0.02), np.full(10, 0.03)
    ssim_low, ssim_high = np.full(10, 0.80), np.full(10, 0.85)
    own = ch04_1.metric_verdicts(_scores((mse_low, ssim_low), (mse_high, ssim_high)), TRAINED_FOR)
    assert own[-1] == "Verdict: each model is better on the metric it was trained for (clearly on both)."
    assert "the model trained with MSE is clearly better, 0.0200 against 0.0300" in own[0]
    assert "the model trained with 1 − SSIM is clearly better, 0.8500 against 0.8000" in own[1]
    both = ch04_1.metric_verdicts(_scores((mse_low, ssim_high), (mse_high, ssim_low)), TRAINED_FOR)
    assert both[-1].startswith("Verdict: the model trained with MSE is better on both metrics; training with "
                               "1 − SSIM did not even win SSIM")
    swapped = ch04_1.metric_verdicts(_scores((mse_high, ssim_high), (mse_low, ssim_low)), TRAINED_FOR)
    assert swapped[-1].startswith("Verdict: each model is better on the metric the other one was trained for")
    against = ch04_1.metric_verdicts(_scores((mse_low, ssim_low), (mse_high, ssim_high)), TRAINED_FOR,
                                     baseline={"MSE": 0.025, "SSIM": 0.7})
    assert "the model trained with MSE improves on the noisy input in MSE and SSIM" in against
    assert ("the model trained with 1 − SSIM improves on the noisy input in SSIM (it has not learned to denoise "
            "yet)") in against
    worse = ch04_1.metric_verdicts(_scores((mse_low, ssim_low), (mse_high, ssim_high)), TRAINED_FOR,
                                   baseline={"MSE": 0.01, "SSIM": 0.9})
    assert "the model trained with MSE improves on the noisy input in neither metric (it has not learned to " \
           "denoise yet)" in worse


def test_metric_verdicts_call_a_win_on_few_images_narrow():
    a = np.array([0.01] * 4 + [0.05] * 6)          # better mean, but better on only 40% of the images
    b = np.full(10, 0.04)
    ssim_a, ssim_b = np.full(10, 0.8), np.full(10, 0.9)
    lines = ch04_1.metric_verdicts(_scores((a, ssim_a), (b, ssim_b)), TRAINED_FOR)
    assert "narrowly better" in lines[0] and "on 40% of the 10 test images" in lines[0]
    assert lines[-1].endswith("(narrowly on MSE: a win on fewer than 60% of the images is close to a tie).")
    with pytest.raises(ValueError, match="same two models"):
        ch04_1.metric_verdicts(_scores((a, ssim_a), (b, ssim_b)), {"MSE": "MSE"})


def test_per_image_scores_match_the_losses():
    torch.manual_seed(0)
    clean = torch.rand(6, 1, 8, 8)
    noisy = (clean + 0.1 * torch.randn(clean.shape)).clamp(0, 1)
    model = nn.Identity()
    window = dict(window_size=5, sigma=1.0, data_range=1.0)
    s = ch04_1.per_image_scores(model, noisy, clean, window)
    np.testing.assert_allclose(s["MSE"], ((noisy - clean) ** 2).mean((1, 2, 3)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(s["SSIM"], losses.ssim(noisy, clean, reduction="none", **window).numpy(), rtol=1e-6)


@pytest.fixture(scope="module")
def ex41():
    zs = torch.linspace(-10, 10, 201, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(((torch.sigmoid(zs) - 1) ** 2).sum(), zs)
    labels = (torch.rand(100, generator=torch.Generator().manual_seed(2)) < 0.5).float()
    return ch04_1.exercises(labels, zs, g.abs(), dict(window_size=5, sigma=1.0, data_range=1.0)), labels


def test_chapter41_right_answers_pass_and_wrong_ones_fail(ex41):
    ex, labels = ex41
    pos = float(labels.sum())
    n = len(labels)
    bce = -(pos * math.log(0.9) + (n - pos) * math.log(0.1)) / n
    c1 = 0.01 ** 2
    right = {"4.1.1": bce, "4.1.2": -math.log(2), "4.1.3": (2 * 0.02 * 0.04 + c1) / (0.02 ** 2 + 0.04 ** 2 + c1)}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
    no_hint_states(ex, right)
    assert ex["4.1.2"].check(-0.7) and ex["4.1.2"].check(-0.69)
    assert refuses(ex["4.1.1"], -pos * math.log(0.9),                 # the article: one term, a sum
                   -pos * math.log(0.9) / n,                          # one term, averaged
                   bce * n,                                           # two terms, no 1/n
                   -(pos * math.log10(0.9) + (n - pos) * math.log10(0.1)) / n,   # log10
                   -((n - pos) * math.log(0.9) + pos * math.log(0.1)) / n,       # the labels swapped
                   -(0.5 * math.log(0.9) + 0.5 * math.log(0.1)),      # ignores the labels: as if half were positive
                   math.log(2), True, 0)                              # the constant-0.5 loss; constants
    assert refuses(ex["4.1.2"], 0.0, -10.0, 10.0, math.log(2), -math.log(3), True)  # σ' peak; most wrong; signs
    assert refuses(ex["4.1.3"], 2 * 0.02 * 0.04 / (0.02 ** 2 + 0.04 ** 2),  # without C1
                   1.0, 0.5, 1 - 0.02, 0.0, True)                     # luminance ignored; the ratio; 1 − |x − y|


def test_chapter41_exercises_follow_their_arguments(ex41):
    _, labels = ex41
    zs = torch.linspace(-10, 10, 201, dtype=torch.float64)
    other = ch04_1.exercises(labels[:10], zs, torch.ones_like(zs), dict(window_size=3, sigma=1.0, data_range=255.0))
    assert other["4.1.1"].check(ch04_1.constant_prediction_bce(labels[:10], 0.9))
    assert not other["4.1.1"].check(ch04_1.constant_prediction_bce(labels, 0.9)) or labels[:10].mean() == labels.mean()
    assert other["4.1.3"].check((2 * 0.02 * 0.04 + 2.55 ** 2) / (0.02 ** 2 + 0.04 ** 2 + 2.55 ** 2))  # L = 255
    assert ch04_1.constant_prediction_bce(torch.ones(4), 0.5) == pytest.approx(math.log(2))


# ============================================================================= 4.2 optimizers
def test_stability_verdict_follows_the_curve_and_the_rule():
    assert ch04_2.stability_verdict(0.04, 25.0, [14.5, 1.0, 1e-9]) == (
        "lr = 0.040 = 0.50 × 2/λ_max: converges (f 14.5 -> 1e-09 in 2 steps), as the rule lr < 2/λ_max predicts.")
    assert "diverges" in ch04_2.stability_verdict(0.09, 25.0, [14.5, 20.0, 80.0]) and \
        "as the rule" in ch04_2.stability_verdict(0.09, 25.0, [14.5, 20.0, 80.0])
    assert "AGAINST the rule" in ch04_2.stability_verdict(0.04, 25.0, [14.5, 20.0])
    assert "AGAINST the rule" in ch04_2.stability_verdict(0.09, 25.0, [14.5, 1.0])


def test_same_path_and_weight_decay_verdicts():
    assert ch04_2.same_path_verdict("constant lr", 3e-17) == "constant lr: the same path (largest difference 3.0e-17)."
    assert "DIFFERENT paths" in ch04_2.same_path_verdict("a schedule", 0.02)
    steady = {0.01: list(1 - 0.01 * np.arange(30)), 0.1: list(1 - 0.0099 * np.arange(30))}
    decay = {0.01: list((1 - 1e-4) ** np.arange(201))}
    lines = ch04_2.weight_decay_verdict(0.01, steady, decay)
    assert "about the same whatever λ is" in lines[0] and "a plain decay" in lines[1] and "NOT" not in lines[1]
    scaled = {0.01: list(1 - 0.001 * np.arange(30)), 0.1: list(1 - 0.01 * np.arange(30))}
    lines = ch04_2.weight_decay_verdict(0.01, scaled, {0.01: list(0.99 ** np.arange(201))})
    assert "it depends on λ" in lines[0] and "NOT a plain decay" in lines[1]


def test_surface_verdicts_read_the_trajectories():
    zig = np.array([[1.0, (-0.5) ** t] for t in range(41)])
    calm = np.array([[1.0, 0.5 ** t] for t in range(41)])
    quad = ({"gd (lr=0.07)": zig, "adam (lr=0.1)": calm}, {"gd (lr=0.07)": [1, 1e-7], "adam (lr=0.1)": [1, 1, 1]})
    ridge_slow = np.array([[0.0, 1e-3 * 1.05 ** t] for t in range(200)])
    ridge_fast = np.array([[0.0, 1e-3 * 2.0 ** t] for t in range(20)])
    lines = ch04_2.surface_verdicts({"quadratic": quad, "saddle": ({"gd (lr=0.05)": ridge_slow,
                                                                      "adam (lr=0.05)": ridge_fast}, {})},
                                    {"quadratic": 0.0, "saddle": -0.25})
    assert "gd (lr=0.07) 40, adam (lr=0.1) 0" in lines[0]
    assert "gd (lr=0.07) step 1, adam (lr=0.1) never" in lines[1]
    assert lines[-1] == ("saddle verdict: off the ridge sooner than gd (lr=0.05): adam (lr=0.05); not sooner: none.")
    late = ch04_2.surface_verdicts({"saddle": ({"gd (lr=0.05)": ridge_fast, "momentum (lr=0.05)": ridge_slow,
                                                "adam (lr=0.05)": np.zeros((50, 2))}, {})}, {"saddle": -0.25})
    assert late[-1] == ("saddle verdict: off the ridge sooner than gd (lr=0.05): none; not sooner: "
                        "momentum (lr=0.05), adam (lr=0.05).")
    assert "adam (lr=0.05) never" in late[0]
    short = ch04_2.surface_verdicts({"quadratic": ({"gd": zig[:11]}, {"gd": [1.0]})}, {"quadratic": 0.0})
    assert short[0].startswith("quadratic: sign changes of y in the first 10 steps") and "gd 10." in short[0]
    assert ch04_2.steps_to([5, 3, 1e-3], 1e-2) == 2 and ch04_2.steps_to([5, 3], 1e-2) is None
    assert ch04_2.sign_changes(zig, 1, 4) == 4 and ch04_2.sign_changes(calm, 1, 40) == 0


@pytest.fixture(scope="module")
def ex42():
    t = np.arange(1, 301)
    ratio = (1 - 0.9 ** t) / np.sqrt(1 - 0.999 ** t)
    lam = np.linalg.eigvalsh(surfaces.hessian("quadratic", (0.0, 0.0)))
    return ch04_2.exercises(lam, ratio, momentum=0.9), ratio


def test_chapter42_right_answers_pass_and_wrong_ones_fail(ex42):
    ex, ratio = ex42
    right = {"4.2.1": 2 / 26, "4.2.2": float(ratio.max()), "4.2.3": 10.0}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
    no_hint_states(ex, right)
    assert refuses(ex["4.2.1"], 2 / 25, 1 / 25, 1 / 1, 2 / 1,          # the edge; 1/λ
                   0.07, 1 / 26, True)                                # the cell's lr; 1/(λ1 + λ2)
    assert refuses(ex["4.2.2"], 0.1 / math.sqrt(0.001),                 # the first step only (3.16)
                   float(ratio[-1]), 1.0, 10.0, True)                   # the last step; no difference; 1/(1 − β1)
    assert refuses(ex["4.2.3"], 1.0, 0.9, 9.0, 1 / (1 - 0.81), 100.0, True)  # GD; μ; μ/(1 − μ); 1/(1 − μ²)


def test_chapter42_exercises_follow_their_arguments():
    other = ch04_2.exercises([2.0, 6.0], [1.0, 2.0, 1.5], momentum=0.5)
    assert other["4.2.1"].check(0.25) and not other["4.2.1"].check(2 / 26)
    assert other["4.2.2"].check(2.0)
    assert other["4.2.3"].check(2.0) and not other["4.2.3"].check(10.0)
    with pytest.raises(ValueError, match="momentum"):
        ch04_2.long_run_multiple(1.0)


# ============================================================================= 4.3 activations
def test_gradient_flow_verdicts_follow_the_ratio():
    lines = ch04_3.gradient_flow_verdicts({"sigmoid": [1e-13, 1e-3, 0.1], "tanh": [0.09, 0.1, 0.08],
                                           "wild": [5e4, 1.0, 1.0], "ReLU": [0.01, 0.1, 0.5], "up": [50.0, 1, 1]})
    assert lines[0] == "sigmoid: first / last hidden layer = 1e-12: vanishes (12.0 orders of magnitude)"
    assert lines[1].endswith("within a factor of 10")
    assert "explodes (4.7 orders" in lines[2]
    assert lines[3].endswith("shrinks by 1.7 orders of magnitude")
    assert lines[4].endswith("grows by 1.7 orders of magnitude")
    assert lines[-1] == "Verdict at depth 3: within a factor of 10: tanh; not: sigmoid, wild, ReLU, up."


def test_training_dead_units_and_reach_verdicts():
    assert ch04_3.training_verdict([0.70, 0.6932]).startswith("still at chance level")
    assert ch04_3.training_verdict([0.70, 0.10]) == "learning (loss 0.7000 -> 0.1000)"
    up = ch04_3.dead_units_verdict(31, {0.001: 23, 0.01: 45, 0.1: 139}, 256)
    assert "does not" not in up and "grows with the learning rate" in up and "after the largest rate 108 more units are dead" in up
    down = ch04_3.dead_units_verdict(30, {0.001: 40, 0.01: 12, 0.1: 20}, 256)
    assert "does not grow steadily" in down and "10 fewer units are dead" in down
    assert "no gradient at all" in ch04_3.gradient_reaches("ReLU", 0.0)
    assert "a gradient reaches the layer" in ch04_3.gradient_reaches("LeakyReLU", 3e-3)


def test_dead_units_counts_units_off_on_every_input():
    model = ch04_3.deep_mlp("ReLU", 2, width=4)
    with torch.no_grad():
        model[0].bias[:2] = -100.0                     # two units of layer 1 are off for every input
    X = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    counts = ch04_3.dead_units(model, X)
    assert counts[0] == 2 and len(counts) == 2
    assert ch04_3.dead_fraction(model, X) == pytest.approx(sum(counts) / 8)
    norms = ch04_3.layer_grad_norms(model, X, (X[:, 0] > 0).long())
    assert len(norms) == 2 and all(n >= 0 for n in norms)
    with pytest.raises(ValueError, match="act"):
        ch04_3.deep_mlp("swish", 3)


def _relu_outputs(model, X):
    h = X
    for m in model:
        h = m(h)
        if isinstance(m, nn.ReLU):
            yield h == 0


def _dead_fraction_right(model, X):  # a learner's answer: units 0 on every row, over all hidden units
    zeros = list(_relu_outputs(model, X))
    return sum(int(z.all(0).sum()) for z in zeros) / sum(z.shape[1] for z in zeros)


def _dead_fraction_any(model, X):  # a unit that is 0 on some input, not on all
    zeros = list(_relu_outputs(model, X))
    return sum(int(z.any(0).sum()) for z in zeros) / sum(z.shape[1] for z in zeros)


def _zero_activations(model, X):  # the share of zero entries, not of units
    zeros = list(_relu_outputs(model, X))
    return sum(int(z.sum()) for z in zeros) / sum(z.numel() for z in zeros)


@pytest.fixture(scope="module")
def ex43():
    X = torch.tensor(np.random.default_rng(0).normal(size=(64, 2)), dtype=torch.float32)
    Y = (X[:, 0] * X[:, 1] > 0).long()
    models = [ch04_3.deep_mlp("ReLU", 4, 16, seed=s) for s in range(2)]
    trained = ch04_3.deep_mlp("ReLU", 4, 16, seed=3)
    opt = torch.optim.Adam(trained.parameters(), lr=0.1)
    for _ in range(30):
        opt.zero_grad()
        F.cross_entropy(trained(X), Y).backward()
        opt.step()
    x = torch.linspace(-5, 5, 1001, dtype=torch.float64, requires_grad=True)
    (d,) = torch.autograd.grad(F.gelu(x).sum(), x)
    return ch04_3.exercises(20, x, {"GELU": d.numpy()}, models + [trained], X), X, models + [trained]


def test_chapter43_right_answers_pass_and_wrong_ones_fail(ex43):
    ex, X, models = ex43
    fractions = {ch04_3.dead_fraction(m, X) for m in models}
    assert len(fractions) > 1                          # the models differ, so a constant cannot pass
    right = {"4.3.1": 20 * math.log10(4), "4.3.2": math.sqrt(2), "4.3.3": _dead_fraction_right}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
    no_hint_states(ex, right)
    assert refuses(ex["4.3.1"], 20.0, 20 * 0.25, math.log10(4), 19 * math.log10(4),   # one order per layer; ...
                   -20 * math.log10(4), 20 * math.log(4), True)                      # the sign; ln instead of log10
    assert refuses(ex["4.3.2"], 0.0, 1.0, 1.13, 2.0, -math.sqrt(2), True)   # where sigmoid/tanh peak; the slope
    assert refuses(ex["4.3.3"], _dead_fraction_any, _zero_activations,
                   lambda model, X: ch04_3.dead_fraction(models[0], X),         # ignores the model
                   lambda model, X: ch04_3.dead_fraction(model, X[:1]),         # looks at one row of X only
                   lambda model, X: 0.0)                                        # a constant


def test_chapter43_exercises_follow_their_arguments(ex43):
    _, X, models = ex43
    x = np.linspace(-5, 5, 1001)
    other = ch04_3.exercises(12, x, {"GELU": -(x - 1.0) ** 2}, models, X)
    assert other["4.3.1"].check(12 * math.log10(4)) and not other["4.3.1"].check(20 * math.log10(4))
    assert other["4.3.2"].check(1.0) and not other["4.3.2"].check(math.sqrt(2))


# ============================================================================= 4.4 backprop
def test_fit_verdict_follows_the_distance_to_the_closed_form():
    assert "reaches the closed-form solution" in ch04_4.fit_verdict("GD", [32.629, 2.4663], [32.629, 2.4663])
    far = ch04_4.fit_verdict("GD on raw area", [0.66, 2.68], [32.63, 2.466])
    assert "has NOT reached" in far and "θ0 0.66 against 32.63 (98% off)" in far
    assert "has NOT reached" in ch04_4.fit_verdict("GD", [32.63, 2.47], [32.63, 2.466], rtol=1e-4)


def test_capacity_verdict_goes_both_ways():
    assert "limited by its size" in ch04_4.capacity_verdict("2-3-1", 0.85, "2-16-1", 0.97)
    assert "hardly help" in ch04_4.capacity_verdict("2-3-1", 0.85, "2-16-1", 0.86)
    assert "does worse" in ch04_4.capacity_verdict("2-3-1", 0.85, "2-16-1", 0.70)


@pytest.fixture(scope="module")
def ex44():
    rng = np.random.default_rng(0)
    net = {"X": rng.normal(size=(8, 2)), "Y": (rng.random((8, 1)) < 0.5) * 1.0, "W1": rng.normal(size=(2, 3)),
           "b1": np.zeros(3), "W2": rng.normal(size=(3, 1)), "b2": np.zeros(1)}
    area = rng.uniform(50, 200, 200)
    scaled = (area - area.mean()) / area.std()

    def hessian(x):
        return 2 * np.array([[1, x.mean()], [x.mean(), (x ** 2).mean()]])

    lr_raw = 0.9 * 2 / np.linalg.eigvalsh(hessian(area)).max()
    return ch04_4.exercises(net, hessian(scaled), hessian(area), lr_raw), net, hessian(area), lr_raw


def test_chapter44_right_answers_pass_and_wrong_ones_fail(ex44):
    ex, net, h_raw, lr_raw = ex44
    X, Y, W1, b1, W2, b2 = (net[k] for k in ("X", "Y", "W1", "b1", "W2", "b2"))
    Z1 = X @ W1 + b1
    A2 = 1 / (1 + np.exp(-(np.maximum(Z1, 0) @ W2 + b2)))
    db2 = float((A2 - Y).mean())
    lam_min, lam_max = np.linalg.eigvalsh(h_raw)
    steps = math.log(10) / -math.log(1 - lr_raw * lam_min)
    right = {"4.4.1": db2, "4.4.2": 0.5, "4.4.3": steps}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
    no_hint_states(ex, right)
    assert ex["4.4.3"].check(math.log(10) / (lr_raw * lam_min))          # ln(1 − a) ≈ −a is close enough
    sig_prime_of_sigma = (1 / (1 + np.exp(-A2))) * (1 - 1 / (1 + np.exp(-A2)))
    assert refuses(ex["4.4.1"], float((A2 - Y).sum()),                    # no 1/n
                   float((sig_prime_of_sigma * (A2 - Y).mean()).sum()),   # the article: σ'(σ(Z2)) ∇A2, summed
                   float((A2 * (1 - A2) * (A2 - Y)).mean()),              # σ' applied on top of (A2 − Y)/n
                   float((Y - A2).mean()), 0.0, True)                     # the sign; a constant
    assert refuses(ex["4.4.2"], 1.0, 0.1, 2.0, 0.25, True)                # the edge 2/λ; the cell's lr; λ
    assert refuses(ex["4.4.3"], math.log(10) / -math.log(abs(1 - lr_raw * lam_max)),  # the fast direction
                   lam_max / lam_min, 1 / (lr_raw * lam_min),             # the condition number; no log
                   2000, True)                                            # the steps the cell ran


def test_chapter44_exercises_follow_their_arguments(ex44):
    _, net, h_raw, lr_raw = ex44
    other = ch04_4.exercises(dict(net, b2=np.ones(1)), np.diag([4.0, 4.0]), h_raw, lr_raw / 2, factor=100)
    assert other["4.4.2"].check(0.25) and not other["4.4.2"].check(0.5)
    assert other["4.4.3"].check(ch04_4.slow_direction_steps(h_raw, lr_raw / 2, 100))
    assert not other["4.4.1"].check(ch04_4.b2_gradient(**net))           # b2 changed: the gradient did too
    with pytest.raises(ValueError, match="does not shrink"):
        ch04_4.slow_direction_steps(np.diag([1.0, 2.0]), 2.0)
    with pytest.raises(ValueError, match="lr"):
        ch04_4.slow_direction_steps(h_raw, True)
