"""Chapter 8.2 (efficiency, privacy, interpretability): the sentences that word what the chapter measured, and
its exercises.

Every verdict is worded from the numbers it is given (``tests/test_ch08_2.py`` feeds it numbers that go both
ways); every expected answer is computed from the chapter's objects, never typed in.
"""
from __future__ import annotations

from torch import nn

from ..check import number
from ..exercises import Exercise
from ..federated import FedRun
from ..privacy import DPResult
from ..quantize import QuantizedLinear

__all__ = ["stored_bytes", "noise_std", "communication_verdict", "leak_verdict", "exercises"]


def stored_bytes(model: nn.Module) -> int:
    """Bytes of the quantised layers' codes and scales (the biases, kept in float32, not counted)."""
    layers = [m for m in model.modules() if isinstance(m, QuantizedLinear)]
    if not layers:
        raise ValueError("model holds no QuantizedLinear layer: quantise it with labkit.quantize.quantize_linears")
    return sum(m.codes.numel() * m.codes.element_size() + m.scale.numel() * m.scale.element_size() for m in layers)


def noise_std(run: DPResult, expected_batch_size: int) -> float:
    """Standard deviation of the noise on each coordinate of the averaged DP-SGD gradient: σ C / B."""
    return run.noise_multiplier * run.max_norm / expected_batch_size


def communication_verdict(bytes_sent: int, data_bytes: int, rounds: int) -> str:
    """FedAvg's traffic against the size of the data it keeps at home."""
    number("bytes_sent", bytes_sent, minimum=0)
    number("data_bytes", data_bytes, minimum=0, open_low=True)
    ratio = bytes_sent / data_bytes
    return (f"FedAvg sent {bytes_sent / 1e6:.2f} MB of weights in {rounds} rounds; the clients' data is "
            f"{data_bytes / 1e6:.2f} MB: the traffic is {ratio:.1f}x the data "
            + ("(federated learning here costs more communication than shipping the data once)."
               if ratio > 1 else "(less than the data here; it grows with the model and the rounds)."))


def leak_verdict(exact_error: float, noisy_error: float, pixel_range: float = 1.0, tol: float = 1e-3) -> str:
    """The input read back from one example's gradient: exactly (clear gradient) and after DP noise."""
    clear = (f"from the clear gradient the image comes back with max |error| {exact_error:.1e} "
             + ("(exactly: the shared gradient IS the data)" if exact_error <= tol * pixel_range
                else "(not exactly)"))
    noisy = (f"from the clipped and noised gradient, max |error| {noisy_error:.2f} "
             + ("(on a 0-1 pixel scale: the noise hides it)" if noisy_error > 0.25 * pixel_range
                else "(still close: this noise does not hide it)"))
    return f"Verdict: {clear}; {noisy}."


def exercises(int4_model: nn.Module, fed_run: FedRun, dp_run: DPResult, batch_size: int, ig: dict,
              class_name: str) -> dict[str, Exercise]:
    """Four questions on the chapter's objects: the int4 encoder, the non-IID FedAvg run, a DP-SGD run, the IG
    attributions of one sentence (``ig`` from :func:`labkit.attribution.token_attributions`)."""
    return {
        "8.2.1": Exercise(
            "8.2.1", "How many bytes do the int4 encoder's quantised linear layers store (codes and scales, "
            "without the float32 biases)?",
            expected=lambda: stored_bytes(int4_model),
            hint="count the linear weights; each code takes half a byte; every group of the group size adds one "
                 "float32 scale",
            explain="The scales are a real cost: with one float32 per 64 weights they add 0.5 bits to each weight."),
        "8.2.2": Exercise(
            "8.2.2", f"How many bytes of weights went over the network in the {fed_run.name} run?",
            expected=lambda: fed_run.bytes_sent,
            hint="every round, every chosen client receives the whole model and sends the whole model back; "
                 "4 bytes a float32 weight",
            explain="The data stayed home; the weights travelled, every round, in both directions."),
        "8.2.3": Exercise(
            "8.2.3", f"In the DP-SGD run with noise multiplier σ = {dp_run.noise_multiplier:g} and clipping norm "
            f"C = {dp_run.max_norm:g}, what is the standard deviation of the noise on each coordinate of the "
            f"gradient the step uses (expected batch size {batch_size})?",
            expected=lambda: noise_std(dp_run, batch_size), rel=1e-4,
            hint="the noise is added to the SUM of the clipped per-sample gradients, with a standard deviation of "
                 "σ times C; then the sum is divided",
            explain="More examples per batch dilute the same noise: that is why DP-SGD likes large batches."),
        "8.2.4": Exercise(
            "8.2.4", f"Completeness, used backwards: take the model's '{class_name}' logit F(x) for the example "
            "sentence (compute it) and the Integrated Gradients of its words (the table above, or ig['tokens']). "
            "What is the logit at the baseline, F(x')? (3 decimals)",
            expected=lambda: ig["f_x"] - float(ig["tokens"].sum()), abs_tol=5e-3,
            hint="the axiom says what the attributions add up to; one side of it is the output at the input, the "
                 "other the output at the baseline",
            explain="Completeness is what makes IG an account of this very number; attention weights add up to 1 "
                    "whatever the output is."),
    }
