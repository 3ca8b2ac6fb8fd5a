"""Chapter 4.2's verdicts and exercises: what the measured trajectories say, and three questions on step sizes.

The verdict functions word what a cell measured (does GD converge at a learning rate, do two momentum forms
take the same path, does weight decay depend on the gradient's scale, which optimizer leaves the saddle's
ridge first), so each sentence follows the numbers. Every expected answer of :func:`exercises` is computed
from the chapter's objects or with :mod:`labkit.optim`; ``tests/test_ch04.py`` checks that each refuses the
usual wrong answers.
"""
from __future__ import annotations

import numpy as np

from .. import optim
from ..check import positive, probability
from ..exercises import Exercise

__all__ = ["stability_verdict", "same_path_verdict", "weight_decay_verdict", "mean_early_step", "steps_to",
           "sign_changes", "surface_verdicts", "long_run_multiple", "exercises"]


def stability_verdict(lr: float, lam_max: float, curve) -> str:
    """Whether GD at ``lr`` converged (f ended below where it started, no blow-up), next to what the rule
    lr < 2/λ_max predicts. ``curve``: f at every step (shorter than asked when the run blew up)."""
    curve = np.asarray(curve, dtype=float)
    converged = bool(np.isfinite(curve[-1]) and curve[-1] < curve[0])
    predicted = lr < 2 / lam_max
    what = (f"converges (f {curve[0]:.3g} -> {curve[-1]:.2g} in {len(curve) - 1} steps)" if converged else
            f"diverges (f {curve[0]:.3g} -> {curve[-1]:.3g} after {len(curve) - 1} steps)")
    agree = "as the rule lr < 2/λ_max predicts" if converged == predicted else "AGAINST the rule lr < 2/λ_max"
    return f"lr = {lr:.3f} = {lr * lam_max / 2:.2f} × 2/λ_max: {what}, {agree}."


def same_path_verdict(name: str, difference: float, tol: float = 1e-10) -> str:
    """Two implementations took the same path (largest difference <= ``tol``) or different ones."""
    same = difference <= tol
    return f"{name}: {'the same path' if same else 'DIFFERENT paths'} (largest difference {difference:.1e})."


def mean_early_step(values, steps: int = 20) -> float:
    """Mean size of the first ``steps`` steps of a parameter's trajectory (its values, step 0 first)."""
    v = np.asarray(values, dtype=float)
    return float(np.abs(np.diff(v[:steps + 1])).mean())


def weight_decay_verdict(lr: float, adam_l2: dict[float, list], adamw: dict[float, list],
                         rel: float = 0.2) -> list[str]:
    """Read two runs each of Adam + L2 and AdamW on a parameter with zero loss gradient, one per weight decay.

    ``adam_l2`` / ``adamw``: weight decay -> the parameter's values, step 0 first. Adam + L2's step is
    independent of the decay when the two decays give steps within ``rel`` of each other; AdamW follows
    (1 − lr·λ)^t when its last value matches it.
    """
    lams = sorted(adam_l2)
    steps = {lam: mean_early_step(adam_l2[lam]) for lam in lams}
    ratio = max(steps.values()) / min(steps.values())
    sizes = ", ".join(f"{steps[lam] / lr:.2f} lr (λ = {lam:g})" for lam in lams)
    lines = [f"Adam + L2: mean step over the first 20 steps {sizes}: "
             f"{'about the same whatever λ is' if ratio <= 1 + rel else 'it depends on λ'} (ratio {ratio:.2f})."]
    for lam in sorted(adamw):
        t = len(adamw[lam]) - 1
        want = (1 - lr * lam) ** t
        got = adamw[lam][-1]
        ok = np.isclose(got, want, rtol=1e-6)
        lines.append(f"AdamW (λ = {lam:g}): θ after {t} steps = {got:.5f}, (1 − lr·λ)^{t} = {want:.5f}: "
                     f"{'a plain decay' if ok else 'NOT a plain decay'}.")
    return lines


def steps_to(curve, threshold: float, offset: float = 0.0) -> int | None:
    """The first step at which f − ``offset`` <= ``threshold``; None if never."""
    hit = np.nonzero(np.asarray(curve, dtype=float) - offset <= threshold)[0]
    return int(hit[0]) if len(hit) else None


def sign_changes(path, coordinate: int, steps: int) -> int:
    """How often a coordinate of the path changes sign in its first ``steps`` steps (a zig-zag count)."""
    s = np.sign(np.asarray(path, dtype=float)[: steps + 1, coordinate])
    s = s[s != 0]
    return int((np.diff(s) != 0).sum())


def _leaves(path, ridge: float) -> int | None:
    hit = np.nonzero(np.abs(np.asarray(path, dtype=float)[:, 1]) > ridge)[0]
    return int(hit[0]) if len(hit) else None


def _when(n: int | None) -> str:
    return f"step {n}" if n is not None else "never"


def surface_verdicts(results: dict, minima: dict[str, float], *, zigzag_steps: int = 40, quad_tol: float = 1e-6,
                     valley_tol: float = 1e-2, ridge: float = 0.5, baseline: str = "gd") -> list[str]:
    """What the trajectories did, one line per surface.

    ``results``: surface -> (paths, curves), each a dict keyed by the run's label, whose first word is the
    optimizer's name ("gd (lr=0.07)"); ``minima``: surface -> the minimum value f*. On the quadratic: the
    zig-zag count of y and the steps to f − f* <= ``quad_tol``; in the Rosenbrock valley: the steps to
    f − f* <= ``valley_tol``; at the saddle: the step at which |y| first exceeds ``ridge`` (leaving the ridge
    y = 0), and which optimizers did it sooner than ``baseline``.
    """
    lines = []
    if "quadratic" in results:
        paths, curves = results["quadratic"]
        zigzag_steps = min([zigzag_steps] + [len(p) - 1 for p in paths.values()])   # a short run: fewer steps
        zig = ", ".join(f"{k} {sign_changes(p, 1, zigzag_steps)}" for k, p in paths.items())
        reach = ", ".join(f"{k} {_when(steps_to(c, quad_tol, minima['quadratic']))}" for k, c in curves.items())
        lines.append(f"quadratic: sign changes of y in the first {zigzag_steps} steps (a zig-zag across the narrow "
                     f"direction): {zig}.")
        lines.append(f"quadratic: f − f* <= {quad_tol:g} first reached at: {reach}.")
    if "rosenbrock" in results:
        paths, curves = results["rosenbrock"]
        reach = ", ".join(f"{k} {_when(steps_to(c, valley_tol, minima['rosenbrock']))}" for k, c in curves.items())
        lines.append(f"rosenbrock: f − f* <= {valley_tol:g} first reached at: {reach}.")
    if "saddle" in results:
        paths, _ = results["saddle"]
        left = {k: _leaves(p, ridge) for k, p in paths.items()}
        lines.append(f"saddle: |y| > {ridge:g} (off the ridge) first at: "
                     f"{', '.join(f'{k} {_when(n)}' for k, n in left.items())}.")
        base = next((k for k in left if k.split()[0] == baseline), None)
        if base is not None:
            def rank(n):
                return float("inf") if n is None else n
            others = [k for k in left if k != base]
            sooner = [k for k in others if rank(left[k]) < rank(left[base])]
            later = [k for k in others if k not in sooner]
            lines.append(f"saddle verdict: off the ridge sooner than {base}: {', '.join(sooner) or 'none'}; "
                         f"not sooner: {', '.join(later) or 'none'}.")
    return lines


# ----------------------------------------------------------------------------- exercises
def long_run_multiple(momentum: float, steps: int = 2000) -> float:
    """Heavy-ball momentum under a constant gradient: the size of its step after ``steps`` steps, in units of lr·g."""
    probability("momentum", momentum, open_high=True)
    theta, v = np.zeros(1), np.zeros(1)
    for _ in range(steps):
        theta, v = optim.heavy_ball_step(theta, v, np.ones(1), lr=1.0, momentum=momentum)
    return float(abs(v[0]))


def exercises(eigenvalues, adam_ratio, momentum: float = 0.9) -> dict[str, Exercise]:
    """Three questions on the chapter's objects.

    ``eigenvalues``: the quadratic's Hessian eigenvalues (4.2.1); ``adam_ratio``: the article's Adam step
    divided by the corrected one under a constant gradient, at steps 1, 2, ... (4.2.2); ``momentum``: the
    coefficient of the chapter's momentum runs (4.2.3).
    """
    lam = np.sort(np.asarray(eigenvalues, dtype=float))
    ratio = np.asarray(adam_ratio, dtype=float)
    positive("momentum", momentum)
    return {
        "4.2.1": Exercise(
            "4.2.1", "Plain GD on the quadratic with one constant learning rate: which learning rate makes the "
            "slowest eigen-direction shrink as fast as possible (the best constant learning rate)?",
            expected=lambda: float(2 / (lam[0] + lam[-1])), rel=1e-3,
            hint="each eigen-direction shrinks by its own factor per step, and the slowest of them sets the pace; "
                 "as lr grows, the steep direction's factor gets worse while the flat one's gets better",
            explain="At that lr both directions shrink by (κ − 1)/(κ + 1) per step (κ = λ_max/λ_min): the "
                    "condition number alone sets GD's best speed."),
        "4.2.2": Exercise(
            "4.2.2", f"Under a constant gradient, the article's Adam (no bias correction) takes steps larger than "
            f"torch.optim.Adam's. Over the first {len(ratio)} steps, what is the largest ratio of the two steps?",
            expected=lambda: float(ratio.max()), rel=1e-3,
            hint="write m_t and v_t for a constant g: the ratio of the two steps depends on t alone, and its two "
                 "parts approach 1 at very different speeds; look at every t, not only at t = 1",
            explain=f"It peaks at step {int(ratio.argmax()) + 1}, not at step 1: m_t forgets its zero start within "
                    "about 10 steps, v_t only within about 1000, so for hundreds of steps the article's Adam is "
                    "several times too fast."),
        "4.2.3": Exercise(
            "4.2.3", f"Heavy-ball momentum (μ = {momentum:g}) under a constant gradient g: its step grows and "
            "levels off. In the long run, the step is how many times lr·g?",
            expected=lambda: long_run_multiple(momentum), rel=1e-3,
            hint="write v_t for a constant g as a sum over past steps; it is a geometric series in μ",
            explain="So momentum is GD with a larger effective learning rate along a direction the gradient keeps, "
                    "while directions where the gradient flips sign are damped."),
    }
