"""Chapter 8.1's exercises: the floor of the corpus, and what compute and memory real sizes need.

Every expected answer is computed (the generator's entropy by :func:`labkit.scaling.story_entropy`, the Llama 2
sizes by :mod:`labkit.sizing` from the published configs), never typed in; ``tests/test_lab08.py`` checks that
each refuses the usual wrong answers, among them the article's "数百万甚至数亿个参数".
"""
from __future__ import annotations

from .. import scale
from ..exercises import Exercise
from ..scaling import A100, LLAMA2_PRETRAINING, compute_optimal, llama2_config, story_entropy, training_cost

__all__ = ["exercises"]


def exercises() -> dict[str, Exercise]:
    """Four questions: the corpus's entropy rate, Llama 2 70B's training FLOPs and the GPUs its model states need,
    and the Chinchilla-optimal size for Llama 2 7B's compute."""
    tokens = LLAMA2_PRETRAINING["tokens"]
    seventy, seven = llama2_config("70B"), llama2_config("7B")
    return {
        "8.1.1": Exercise(
            "8.1.1", "What is the lowest loss, in nats per token, that any model can reach on the generated stories "
            "(reading each story from its start, the [SEP] that ends it counted as a token)?",
            expected=lambda: story_entropy()["nats per token"], rel=1e-4,
            hint="every draw of labkit.data.corpus.make_document is a uniform choice that shows in the text: add up "
                 "the information of all the draws of one story (mind the template of each middle sentence), then "
                 "spread it over the tokens of a story",
            explain="The fitted E of the chapter's law is compared with this floor above."),
        "8.1.2": Exercise(
            "8.1.2", f"By C = 6ND, how many FLOPs does pretraining Llama 2 70B on its {tokens:.1e} tokens take? "
            "(Count its parameters from its config with labkit.sizing; scaling.llama2_config gives the config.)",
            expected=lambda: scale.training_flops(training_cost(seventy, tokens)["parameters"], tokens), rel=1e-3,
            hint="N is the exact parameter count of the 70B config (not a rounded 70e9); D the pretraining tokens; "
                 "the factor counts a multiply-add forward and two backward",
            explain="About 10^24 FLOPs; at 40% of an A100's peak that is over a million GPU-hours, as the Llama 2 "
                    "paper reports."),
        "8.1.3": Exercise(
            "8.1.3", f"Training Llama 2 70B in bf16 mixed precision with AdamW: what is the fewest "
            f"{A100.memory_gb:.0f} GB GPUs that can hold its model states (weights, gradients, master weights and "
            "optimizer moments, sharded evenly; no activations)?",
            expected=lambda: training_cost(seventy, tokens)["GPUs to hold the states"],
            hint="count the bytes every parameter needs: bf16 weights and gradients, an fp32 copy of the weights, "
                 "and AdamW's two fp32 moments; divide the total by one GPU's memory and round the right way",
            explain="And that is before activations: real 70B runs use hundreds to thousands of GPUs."),
        "8.1.4": Exercise(
            "8.1.4", "Take the compute of Llama 2 7B's pretraining (6ND, its exact N, 2.0e12 tokens). By "
            "Chinchilla's rule (D = 20N under the same C = 6ND), how many parameters should a model trained with "
            "that compute have?",
            expected=lambda: compute_optimal(scale.training_flops(training_cost(seven, tokens)["parameters"],
                                                                  tokens))["parameters"], rel=1e-3,
            hint="write C = 6·N·D with D = 20·N and solve for N",
            explain="Several times 7B: Llama 2 7B saw far more tokens than Chinchilla's optimum, on purpose, since "
                    "a smaller model is cheaper to serve."),
    }

