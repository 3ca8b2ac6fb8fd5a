"""Lab 8: fit your own scaling law. Pick a ladder of GPT sizes and token budgets; train the smaller sizes, fit
L(N) = E + A·N^-α on them, predict the largest size's loss, then train it and check the prediction.

:class:`ScalingLab` does one press of Run (:meth:`ScalingLab.run`) on a :class:`labkit.scaling.Sweep`, which
trains every (size, tokens) run once, so changing one setting re-trains only what it changes. :func:`panel`
puts the choices on controls; :func:`explorer` is the static counterpart for the rendered book (a slider over
how many sizes the fit uses, a dropdown over the budget, from the runs already trained). Every expected value
of :func:`exercises` is computed from the lab's runs and its fitted law.
"""
from __future__ import annotations

import numpy as np

from .. import scale
from ..check import number, one_of, whole_number
from ..exercises import Exercise
from ..scaling import (BATCH, BLOCK, HeldOutCheck, ModelSize, Sweep, chinchilla_tokens, fit_power_law,
                       held_out_check, non_embedding_params, story_entropy)
from ..widgets import Choice, Float, Int, LogFloat, Panel

__all__ = ["LADDERS", "TOKENS_PER_STEP", "budgets", "ScalingLab", "panel", "explorer",
           "most_data_hungry", "exercises"]

# Two ladders: one that grows only the width (depth 2), one that grows width and depth together.
LADDERS = {
    "width (depth 2)": [ModelSize(d, 2) for d in (8, 16, 24, 32, 48, 64, 96)],
    "width and depth": [ModelSize(16, 1), ModelSize(16, 2), ModelSize(24, 2), ModelSize(32, 3), ModelSize(48, 3),
                        ModelSize(64, 4), ModelSize(96, 4)],
}
TOKENS_PER_STEP = BATCH * BLOCK     # 1,024


def budgets(steps: int, n_budgets: int) -> list[int]:
    """The token budgets of a lab run: the largest (``steps`` steps), then halves of it, ``n_budgets`` in all."""
    whole_number("steps", steps)
    whole_number("n_budgets", n_budgets, maximum=4)
    if steps >> (n_budgets - 1) < 1:
        raise ValueError(f"steps={steps} cannot be halved {n_budgets - 1} times into whole steps")
    return sorted((steps >> k) * TOKENS_PER_STEP for k in range(n_budgets))


class ScalingLab:
    """Runs the lab on ``data`` (a :class:`labkit.scaling.ScalingData`): the runs are kept between presses."""

    def __init__(self, data, *, seed: int = 0, device="cpu"):
        self.data, self.seed, self.device = data, seed, device
        self.sweeps: dict[float, Sweep] = {}
        self.floor = story_entropy()["nats per token"]

    def sweep(self, lr: float) -> Sweep:
        if lr not in self.sweeps:
            self.sweeps[lr] = Sweep(self.data, lr=lr, seed=self.seed, device=self.device)
        return self.sweeps[lr]

    def run(self, ladder: str, n_sizes: int, steps: int, n_budgets: int, lr: float, tolerance: float,
            threshold: float = 0.02, plot: bool = True) -> HeldOutCheck:
        """Train the smaller sizes, fit, predict the largest, then train it and check the prediction."""
        from ..plots import LiveLossPlot
        one_of("ladder", ladder, LADDERS)
        whole_number("n_sizes", n_sizes, minimum=4, maximum=len(LADDERS[ladder]))
        number("tolerance", tolerance, minimum=0, open_low=True)
        sizes, tokens = LADDERS[ladder][:n_sizes], budgets(steps, n_budgets)
        if tokens[-1] > self.data.train_tokens:
            raise ValueError(f"steps={steps} needs {tokens[-1]:,} training tokens; the lab's data holds "
                             f"{self.data.train_tokens:,} (at most {self.data.train_tokens // TOKENS_PER_STEP:,} steps)")
        fit_sizes, held_out = sizes[:-1], sizes[-1]
        sweep = self.sweep(lr)
        live = LiveLossPlot("Training loss of every run (smoothed)", every=max(10, steps // 4), smooth=20,
                            log_y=True) if plot else None
        print(f"1 · train the {len(fit_sizes)} smaller sizes on {', '.join(f'{d:,}' for d in tokens)} tokens")
        sweep.run(fit_sizes, tokens, plot=live)
        small = sweep.run(fit_sizes, [tokens[-1]], quiet=True)
        x, y = small["N (non-embedding)"].to_numpy(), small["val loss"].to_numpy()
        law, line = fit_power_law(x, y), fit_power_law(x, y, irreducible=False)
        n_held = non_embedding_params(held_out.config(self.data.vocab_size))
        print(f"2 · fit on those {len(x)} sizes at D = {tokens[-1]:,}: {law}  (R² {law.r2:.4f}); "
              f"without E: {line} (R² {line.r2:.4f})")
        print(f"3 · predict {held_out.name} (N = {n_held:,}) before training it: {law(n_held):.4f} nats/token "
              f"(the line without E says {line(n_held):.4f})")
        print(f"4 · train {held_out.name} and check")
        sweep.run([held_out], tokens, plot=live)
        result = held_out_check(sweep.run(sizes, tokens, quiet=True), sizes, tolerance, threshold)
        for text in result.lines:
            print(text)
        return result


def _steps_fit(lab: ScalingLab):
    def check(values: dict) -> str | None:
        most = lab.data.train_tokens // TOKENS_PER_STEP
        if values["steps"] > most:
            return f"steps must be at most {most:,}: the lab's data holds {lab.data.train_tokens:,} training tokens"
        if values["steps"] >> (values["n_budgets"] - 1) < 1:
            return f"steps={values['steps']} cannot be halved {values['n_budgets'] - 1} times into whole steps"
        return None
    return check


def panel(lab: ScalingLab, *, steps: int, n_sizes: int = 5, n_budgets: int = 3, lr: float = 3e-3,
          tolerance: float = 0.05, max_steps: int | None = None) -> Panel:
    """The lab's controls over :meth:`ScalingLab.run` (defaults as given); the data-limited threshold applies only
    with two budgets or more."""
    most = max_steps or lab.data.train_tokens // TOKENS_PER_STEP
    return Panel(lab.run, title="Lab 8 · fit your own scaling law", validate=_steps_fit(lab),
                 ladder=Choice(list(LADDERS), "width (depth 2)", label="ladder of sizes"),
                 n_sizes=Int(4, 7, n_sizes, label="sizes (the largest is held out)"),
                 steps=Int(2, most, steps, label="steps at the largest budget (1,024 tokens each)"),
                 n_budgets=Int(1, 3, n_budgets, label="token budgets (each half the next)"),
                 lr=LogFloat(1e-3, 1e-2, lr, label="learning rate"),
                 tolerance=Float(0.01, 0.2, tolerance, step=0.01, label="stated error of the prediction"),
                 threshold=Float(0.005, 0.1, 0.02, step=0.005, label="data-limited above (loss drop per doubling)",
                                 applies=lambda v: v["n_budgets"] >= 2))


def explorer(result: HeldOutCheck):
    """The static counterpart: a slider over how many of the smaller sizes the fit uses (3 up to all), a dropdown
    over the budget; each position shows the points used, the law, and the held-out size measured and predicted.
    Computed from the runs already trained: nothing trains."""
    import plotly.graph_objects as go

    from ..static_panels import explorer as static_explorer
    t = result.table
    n_fit = list(range(3, len(result.sizes)))

    def traces(tokens, k):
        at = t[t["tokens D"] == tokens].sort_values("N (non-embedding)")
        used, held = at.iloc[:k], at[at["size"] == result.held_out.name].iloc[0]
        law = fit_power_law(used["N (non-embedding)"], used["val loss"])
        grid = np.geomspace(at["N (non-embedding)"].min(), held["N (non-embedding)"], 40)
        err = law(held["N (non-embedding)"]) / held["val loss"] - 1
        return [go.Scatter(x=used["N (non-embedding)"].tolist(), y=used["val loss"].tolist(), mode="markers",
                           name=f"the {k} sizes fitted", marker=dict(size=9)),
                go.Scatter(x=grid.tolist(), y=law(grid).tolist(), mode="lines", name=f"{law}",
                           line=dict(dash="dash", color="black")),
                go.Scatter(x=[held["N (non-embedding)"]], y=[held["val loss"]], mode="markers",
                           name=f"{result.held_out.name} measured", marker=dict(size=14, symbol="star", color="#d62728")),
                go.Scatter(x=[held["N (non-embedding)"]], y=[law(held["N (non-embedding)"])], mode="markers",
                           name=f"predicted ({err:+.1%})", marker=dict(size=12, symbol="x", color="black"))]

    fig = static_explorer(traces, slider=("sizes in the fit", n_fit), dropdown=("tokens D", result.budgets[::-1]),
                          slider_default=len(n_fit) - 1)
    fig.update_xaxes(type="log", title="non-embedding parameters N")
    fig.update_yaxes(type="log", title="validation loss (log)")
    fig.update_layout(title="How many sizes does the fit need? (precomputed from this run's models)", height=520,
                      template="plotly_white")
    return fig


def most_data_hungry(limits) -> str:
    """The size whose loss dropped most (per doubling of tokens) between the two largest budgets."""
    if limits is None or not len(limits):
        raise ValueError("most_data_hungry needs the data_limited table of a run with 2 budgets or more")
    last = limits[limits["next budget"] == limits["next budget"].max()]
    return str(last.loc[last["drop per doubling"].idxmax(), "size"])


def exercises(result: HeldOutCheck) -> dict[str, Exercise]:
    """The lab's questions on ``result`` (a :class:`labkit.scaling.HeldOutCheck`); every expected value is computed from it."""
    held = result.held_out_row
    n_held, d_held, total_held = int(held["N (non-embedding)"]), int(held["tokens D"]), int(held["parameters"])
    small = result.largest[result.largest["size"] != result.held_out.name]
    ten_x = 10 * n_held
    ex = {
        "8.1": Exercise(
            "8.1", "Fit a power law WITHOUT an irreducible loss, L = A·N^-α, to the same points the lab's law was "
            "fitted on (the smaller sizes at the largest budget, N non-embedding). What is its exponent α?",
            expected=lambda: fit_power_law(small["N (non-embedding)"], small["val loss"], irreducible=False).alpha,
            rel=1e-3,
            hint="on log-log axes a pure power law is a straight line: regress log L on log N over those points; "
                 "what is α in terms of the slope?",
            explain="Without E the line must bend nowhere, so it keeps falling where the measured losses flatten: "
                    "compare its prediction for the held-out size with the law's."),
        "8.2": Exercise(
            "8.2", f"By the lab's fitted law (with E), what loss would a model with 10 times the held-out size's N "
            f"reach, trained on the same budget? (N = {ten_x:,})",
            expected=lambda: result.law(ten_x), rel=1e-3,
            hint="evaluate E + A·N^-α at that N with the law's own E, A and α (result.law is callable)",
            explain="Ten times the parameters buys only the gap to E shrunk by 10^-α: the law flattens toward E."),
        "8.3": Exercise(
            "8.3", f"What is the training compute C = 6ND of the held-out run ({result.held_out.name} at the largest "
            "budget), in FLOPs, with Kaplan's N?",
            expected=lambda: scale.training_flops(n_held, d_held), rel=1e-6,
            hint="N is the non-embedding count (the table's column), D the training tokens of that run (not its "
                 "steps); each parameter does 2 FLOPs per token forward and 4 backward",
            explain=f"Kaplan's convention; counting the embeddings too would make this run's C "
                    f"{total_held / n_held - 1:.0%} larger."),
        "8.4": Exercise(
            "8.4", f"How many training tokens would Chinchilla's rule give the held-out size ({result.held_out.name}, "
            f"{total_held:,} parameters in all)?",
            expected=lambda: chinchilla_tokens(total_held), rel=1e-6,
            hint="Hoffmann et al. count every parameter, embeddings included, and give each a fixed number of tokens "
                 "at the compute-optimal point",
            explain="Compare it with the tokens the lab gave that size: was it above or below the rule?"),
        "8.6": Exercise(
            "8.6", "What was the relative error of the lab's prediction for the held-out size, predicted / measured "
            "− 1 (a signed fraction, e.g. -0.03 for 3% too low)?",
            expected=lambda: result.prediction["relative error"], abs_tol=5e-4,
            hint="take the law's prediction for the held-out N and that run's measured validation loss; the sign "
                 "says on which side of the measurement the law fell",
            explain="This is the number the stated tolerance is compared with."),
    }
    if result.limits is not None and len(result.limits):
        sizes = [s.name for s in result.sizes]
        ex["8.5"] = Exercise(
            "8.5", f"Which size ({', '.join(sizes)}) gained most from more data: the largest loss drop per doubling "
            "of tokens between the two largest budgets? Answer with its name, e.g. 'd16·L2'.",
            expected=lambda: most_data_hungry(result.limits),
            hint="read the rows of result.limits whose next budget is the largest one, and compare their drop "
                 "per doubling",
            explain="The size that gains most from data is the one its budget limited most.")
    return dict(sorted(ex.items()))
