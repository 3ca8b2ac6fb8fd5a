"""labkit.surfaces: trajectories follow torch.optim, divergence is detected, bad names are refused."""
import numpy as np
import pytest
import torch

from labkit import surfaces


def test_gd_trajectory_matches_torch_sgd():
    path, losses = surfaces.trajectory("rosenbrock", "momentum", lr=1e-3, steps=50, momentum=0.9)
    p = torch.tensor(surfaces.SURFACES["rosenbrock"].start, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1e-3, momentum=0.9)
    for _ in range(50):
        opt.zero_grad()
        surfaces.SURFACES["rosenbrock"].f(p).backward()
        opt.step()
    assert path.shape == (51, 2) and losses.shape == (51,)
    np.testing.assert_allclose(path[-1], p.detach().numpy(), rtol=1e-12)


def test_gd_diverges_exactly_above_two_over_lambda_max():
    lam_max = np.linalg.eigvalsh(surfaces.hessian("quadratic", (0.0, 0.0))).max()
    assert lam_max == pytest.approx(25.0)
    stable, _ = surfaces.trajectory("quadratic", "gd", lr=0.99 * 2 / lam_max, steps=2000)
    unstable, _ = surfaces.trajectory("quadratic", "gd", lr=1.01 * 2 / lam_max, steps=2000)
    assert len(stable) == 2001 and np.abs(stable[-1]).max() < 1e-3
    assert len(unstable) < 2001  # stopped early: blew up


def test_every_optimizer_reaches_a_saddle_minimum():
    for name in surfaces.OPTIMIZERS:
        path, _ = surfaces.trajectory("saddle", name, lr=0.05, steps=400)
        assert abs(abs(path[-1][1]) - 1) < 0.05 and abs(path[-1][0]) < 0.05, name


def test_figures_build():
    path, losses = surfaces.trajectory("quadratic", "adam", lr=0.1, steps=20)
    fig = surfaces.contour_figure("quadratic", {"adam": path})
    assert len(fig.data) == 4  # contour, path, end marker, minimum
    assert len(surfaces.loss_figure({"adam": losses}).data) == 1


@pytest.mark.parametrize("call, name", [
    (lambda: surfaces.trajectory("bowl", "gd", lr=0.1, steps=5), "surface"),
    (lambda: surfaces.trajectory("quadratic", "rmsprop", lr=0.1, steps=5), "optimizer"),
    (lambda: surfaces.trajectory("quadratic", "gd", lr=0.1, steps=0), "steps"),
    (lambda: surfaces.trajectory("quadratic", "gd", lr=-0.1, steps=5), "lr"),
    (lambda: surfaces.trajectory("quadratic", "gd", lr=0.0, steps=5), "lr"),
    (lambda: surfaces.trajectory("quadratic", "gd", lr=True, steps=5), "lr"),
])
def test_bad_input_is_refused(call, name):
    with pytest.raises(ValueError, match=name):
        call()
