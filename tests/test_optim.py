"""labkit.optim takes the same steps as torch.optim (float64, 100 steps, relative error <= 1e-10)."""
import itertools

import numpy as np
import pytest
import torch

from labkit import optim

STEPS = 100


def make_params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True),
            torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True),
            torch.randn(2, 2, generator=g, dtype=torch.float64, requires_grad=True)]  # never gets a gradient


def loss_fn(params, t):
    w, b, _unused = params  # the third parameter is not used, so its .grad stays None
    x = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(3, 4) * (1 + 0.01 * t)
    out = torch.tanh(x @ w + b)
    return (out ** 2).sum() + 0.1 * (w ** 4).sum() + torch.sin(b).sum()


def run(opt_cls, params, **kw):
    opt = opt_cls(params, **kw)
    for t in range(STEPS):
        opt.zero_grad()
        loss_fn(params, t).backward()
        opt.step()
    return [p.detach() for p in params], opt


def assert_same_trajectory(ours_cls, theirs_cls, **kw):
    mine, theirs = make_params(), make_params()
    ours_cls(mine, **kw)  # argument check only
    opt_a = ours_cls(mine, **kw)
    opt_b = theirs_cls(theirs, **kw)
    for t in range(STEPS):
        for opt, ps in ((opt_a, mine), (opt_b, theirs)):
            opt.zero_grad()
            loss_fn(ps, t).backward()
            opt.step()
        for a, b in zip(mine, theirs):
            rel = ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()
            assert rel <= 1e-10, f"step {t + 1}: relative difference {rel:.2e} with {kw}"
    assert mine[2].grad is None and len(opt_a.state.get(mine[2], {})) == 0  # skipped, no state
    assert torch.equal(mine[2], make_params()[2])


SGD_GRID = [dict(lr=lr, momentum=m, dampening=d, nesterov=n, weight_decay=wd)
            for lr, m, d, n, wd in itertools.product([1e-3, 0.05], [0.0, 0.5, 0.9], [0.0, 0.3],
                                                     [False, True], [0.0, 1e-2])
            if not (n and (m == 0 or d != 0))]


@pytest.mark.parametrize("kw", SGD_GRID, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_sgd_matches_torch(kw):
    assert_same_trajectory(optim.SGD, torch.optim.SGD, **kw)


ADAM_GRID = [dict(lr=lr, betas=b, eps=e, weight_decay=wd)
             for lr, b, e, wd in itertools.product([1e-3, 0.05], [(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)],
                                                   [1e-8, 1e-3], [0.0, 0.1])]


@pytest.mark.parametrize("kw", ADAM_GRID, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_adam_matches_torch(kw):
    assert_same_trajectory(optim.Adam, torch.optim.Adam, **kw)


@pytest.mark.parametrize("kw", ADAM_GRID, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_adamw_matches_torch(kw):
    assert_same_trajectory(optim.AdamW, torch.optim.AdamW, **kw)


def test_adamw_default_weight_decay_matches_torch():
    assert optim.AdamW([torch.zeros(1, requires_grad=True)]).defaults["weight_decay"] == \
        torch.optim.AdamW([torch.zeros(1, requires_grad=True)]).defaults["weight_decay"]


def test_param_groups_with_different_lrs():
    a, b = make_params(), make_params()
    groups = lambda ps: [{"params": ps[:1], "lr": 0.1}, {"params": ps[1:], "lr": 0.01}]
    run(lambda p, **k: optim.Adam(groups(p)), a)
    run(lambda p, **k: torch.optim.Adam(groups(p)), b)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=0)


def test_adam_and_adamw_differ_with_weight_decay():
    a, _ = run(optim.Adam, make_params(), lr=0.01, weight_decay=0.1)
    b, _ = run(optim.AdamW, make_params(), lr=0.01, weight_decay=0.1)
    assert (a[0] - b[0]).abs().max() > 1e-4


def test_heavy_ball_equals_pytorch_momentum():
    # v_t = mu v - lr g  and  b_t = mu b + g, theta -= lr b  give the same iterates (v = -lr b).
    A = np.diag([1.0, 10.0])
    theta_hb, v = np.array([1.0, 1.0]), np.zeros(2)
    p = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    opt = optim.SGD([p], lr=0.05, momentum=0.9)
    for _ in range(50):
        theta_hb, v = optim.heavy_ball_step(theta_hb, v, A @ theta_hb, lr=0.05, momentum=0.9)
        opt.zero_grad()
        (0.5 * p @ torch.tensor(A) @ p).backward()
        opt.step()
    np.testing.assert_allclose(theta_hb, p.detach().numpy(), rtol=1e-12, atol=1e-15)


def test_adam_functions_and_the_article_first_step():
    g = np.array([0.3, -2.0, 1e-3])
    zero = np.zeros(3)
    step, _, _ = optim.adam_step(zero, zero, zero, g, t=1, lr=1e-3)
    np.testing.assert_allclose(-step, 1e-3 * np.sign(g), rtol=1e-4)  # bias-corrected: |step| = lr
    bad, _, _ = optim.adam_step_no_bias_correction(zero, zero, zero, g, lr=1e-3)
    ratio = bad / step
    np.testing.assert_allclose(ratio, (1 - 0.9) / np.sqrt(1 - 0.999), rtol=1e-3)
    assert 3.1 < ratio[0] < 3.2
    # adam_step equals torch.optim.Adam for several steps
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=1e-2)
    theta, m, v = zero, zero, zero
    for t in range(1, 6):
        grad = 2 * (theta - 1) + g
        theta, m, v = optim.adam_step(theta, m, v, grad, t, lr=1e-2)
        opt.zero_grad()
        ((p - 1) ** 2 + p * torch.tensor(g)).sum().backward()
        opt.step()
    np.testing.assert_allclose(theta, p.detach().numpy(), rtol=1e-12)


P = [torch.zeros(2, requires_grad=True)]


@pytest.mark.parametrize("make, name", [
    (lambda: optim.SGD(P, lr=-0.1), "lr"),
    (lambda: optim.SGD(P, lr=0.1, momentum=-0.5), "momentum"),
    (lambda: optim.SGD(P, lr=0.1, weight_decay=-1), "weight_decay"),
    (lambda: optim.SGD(P, lr=0.1, nesterov=True), "nesterov"),
    (lambda: optim.SGD(P, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    (lambda: optim.Adam(P, lr=-1e-3), "lr"),
    (lambda: optim.Adam(P, betas=(1.0, 0.999)), "betas"),
    (lambda: optim.Adam(P, betas=(0.9, -0.1)), "betas"),
    (lambda: optim.Adam(P, betas=(0.9,)), "betas"),
    (lambda: optim.Adam(P, eps=-1e-8), "eps"),
    (lambda: optim.AdamW(P, weight_decay=-0.1), "weight_decay"),
    (lambda: optim.AdamW(P, lr=float("nan")), "lr"),
])
def test_bad_arguments_are_refused(make, name):
    with pytest.raises(ValueError, match=name):
        make()
