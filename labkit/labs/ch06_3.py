"""Chapter 6.3's exercises: STFT frames, the mel scale, CTC's collapse and the frames CTC needs.

Every expected answer is computed by :mod:`labkit.audio` (the code the chapter
shows), never typed in; :mod:`tests.test_audio` checks that each exercise
refuses the usual wrong answers.
"""
from __future__ import annotations

import numpy as np
import torch

from ..audio import collapse, hz_to_mel, min_ctc_frames, stft
from ..exercises import Exercise

__all__ = ["exercises", "COLLAPSE_CASES"]

# (frame path, blank id): cases that tell apart the usual mistakes.
COLLAPSE_CASES = [
    ([1, 1, 6, 1, 2, 2, 6, 6, 3], 6),    # a blank between two 1s keeps both
    ([6, 6, 4, 4, 4, 6], 6),
    ([0, 3, 3, 0, 3, 0, 5, 5], 0),       # another blank id: the argument must be used
    ([2, 6, 2, 2, 6, 6, 2], 6),
    ([6, 6, 6], 6),                      # only blanks: nothing
]


def exercises(*, seconds: float = 0.5, sample_rate: int = 16_000, n_fft: int = 400, hop_length: int = 160,
              target: tuple[int, ...] = (3, 3, 1, 1, 1, 5)) -> dict[str, Exercise]:
    samples = int(round(seconds * sample_rate))
    frames = stft(torch.zeros(samples), n_fft, hop_length).shape[-1]

    def check_mel(fn) -> bool:
        f = np.array([0.0, 100.0, 440.0, 700.0, 1000.0, 2000.0, 4000.0, 8000.0])
        got = np.asarray([float(fn(v)) for v in f])
        return bool(np.allclose(got, hz_to_mel(f, "htk"), rtol=1e-4, atol=1e-6))

    def check_collapse(fn) -> bool:
        for path, blank in COLLAPSE_CASES:
            got = [int(v) for v in fn(list(path), blank)]
            if got != collapse(path, blank):
                print(f"   collapse({path}, blank={blank}) gave {got}")
                return False
        return True

    return {
        "6.3.1": Exercise(
            "6.3.1", f"How many frames does labkit.audio.stft (centred, n_fft={n_fft}, hop_length={hop_length}) give "
            f"for a {seconds} s clip at {sample_rate} Hz?", expected=frames,
            hint="the centred STFT pads n_fft // 2 samples at both ends, so a frame starts at every multiple of "
                 "the hop from the first sample to the last one: count those starting points",
            explain=f"1 + {samples} // {hop_length}; Whisper then drops the last one."),
        "6.3.2": Exercise(
            "6.3.2", "Write hz_to_mel(f) for the HTK mel scale (one frequency in hertz -> mel).", check_fn=check_mel,
            hint="HTK's formula is a logarithm of (1 + f / a corner frequency), nearly linear below that corner; "
                 "its scale factor makes 1,000 Hz come out near 1,000 mel, and it belongs to one logarithm base",
            explain="2595 log10(1 + f/700): linear-ish below 700 Hz, logarithmic above."),
        "6.3.3": Exercise(
            "6.3.3", "Write collapse(path, blank) -> labels: CTC's map from a path of frame symbols to a label "
            "sequence.", check_fn=check_collapse,
            hint="the order of the two steps matters: a blank is what separates two copies of the same label",
            explain="Merge repeats first, then drop blanks: that is how CTC can still spell a doubled label."),
        "6.3.4": Exercise(
            "6.3.4", f"At least how many frames must a clip have for CTC to emit the labels {list(target)}?",
            expected=min_ctc_frames(target),
            hint="each label needs a frame of its own; think about what has to sit between two equal labels",
            explain="One frame per label, plus one blank between each pair of equal neighbours; with fewer "
                    "frames the CTC loss is infinite."),
    }
