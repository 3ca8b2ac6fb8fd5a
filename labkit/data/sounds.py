"""Sounds the book synthesises: six classes of short clips, and sequences of them for CTC (chapter 6.3).

Data card
---------
* **Sample rate** 16,000 Hz, mono, float32 amplitudes (full scale = 1).
* **Clips** (:func:`make_sounds`): 0.5 s (8,000 samples) each; one *event* of 0.20-0.45 s (uniform, the
  same for every class) starts at a uniform random time inside the clip, with 10 ms raised-cosine fades;
  the rest of the clip is noise only.
* **Classes** (:data:`CLASSES`), the event is:

  - ``tone``: one sine, frequency log-uniform in 200-3,000 Hz;
  - ``chirp up`` / ``chirp down``: an exponential sweep between two frequencies in 200-3,000 Hz, at least
    a factor 2 apart (up: low to high; down: high to low);
  - ``vowel /a/``, ``vowel /i/``, ``vowel /u/``: formant-style vowels. A voice at a pitch f0 uniform in
    90-250 Hz (all harmonics below 7.5 kHz, amplitude falling as 1/sqrt(k)) shaped by three resonances, the
    formants F1-F3 of :data:`FORMANTS` (Peterson & Barney's 1952 averages for men), scaled together by a
    "vocal tract" factor uniform in 0.9-1.15 and each moved by up to +/-5%.
* **Loudness**: every event is scaled to an RMS level uniform in -30 to -10 dBFS, *whatever its class*.
* **Noise**: white Gaussian noise over the whole clip, at a signal-to-noise ratio uniform in 0-15 dB
  (event RMS over noise RMS), whatever the class.
* **Splits and seeds**: train / val / test, balanced; clip i of class c in split s is drawn from its own
  generator ``numpy.random.default_rng([seed, s, c, i])`` (s = 0, 1, 2), so a split's clips do not change
  when another split's size does, and the three splits never share a clip. ``seed=0`` in the book.
* **Sequences** (:func:`make_sequences`, the CTC task): 1.2 s clips holding 1-4 events (uniform), each
  of a class drawn uniformly (so two equal labels in a row happen), 0.12-0.22 s long, 0.02-0.08 s of
  noise between them; each event's level as above, the noise at 10-25 dB below the events' mean RMS
  (cleaner than the clips: this task is about alignment). The labels are the classes in time order;
  ``seed`` and the split pick the generator, ``default_rng([seed, 10 + s, i])`` for clip i.
* **Shortcuts checked**: loudness (clip RMS, peak) and length (the time the clip is above its noise floor)
  are drawn from one distribution for all classes; :func:`shortcut_scores` measures how well a small
  decision tree predicts the class from each of them alone (chapter 6.3 prints it next to chance).
  ``make_sounds(fair=False)`` is the naive generator the book started from (every event at the same
  *peak* level, vowels held longer than beeps): the same check catches both of its shortcuts.
* **Limits**: synthetic and clean in structure; real speech has coarticulation, varying pitch,
  reverberation and coloured noise. Licensed with the project (MIT).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..check import whole_number

__all__ = ["SAMPLE_RATE", "CLIP_SECONDS", "SEQUENCE_SECONDS", "CLASSES", "FORMANTS", "Clips", "Sounds", "Sequences",
           "make_sounds", "make_sequences", "synthesise", "nuisance_features", "shortcut_scores"]

SAMPLE_RATE = 16_000
CLIP_SECONDS = 0.5
SEQUENCE_SECONDS = 1.2
CLASSES = ("tone", "chirp up", "chirp down", "vowel /a/", "vowel /i/", "vowel /u/")
FORMANTS = {"vowel /a/": (730.0, 1090.0, 2440.0),    # "father"; Peterson & Barney (1952), men
            "vowel /i/": (270.0, 2290.0, 3010.0),    # "heed"
            "vowel /u/": (300.0, 870.0, 2240.0)}     # "who'd"
BANDWIDTHS = (90.0, 110.0, 170.0)                    # Hz, of F1, F2, F3
PITCH_HZ = (200.0, 3000.0)                           # tones and chirps
VOICE_F0_HZ = (90.0, 250.0)
EVENT_SECONDS = (0.20, 0.45)
LEVEL_DBFS = (-30.0, -10.0)
SNR_DB = (0.0, 15.0)
SEQUENCE_SNR_DB = (10.0, 25.0)                        # the CTC toy task is about alignment: cleaner clips
FADE_SECONDS = 0.01
SPLITS = ("train", "val", "test")


# ----------------------------------------------------------------------------- one event
def _log_uniform(rng, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _voice(t: np.ndarray, f0: float, formants, rng) -> np.ndarray:
    """Harmonics of f0 (amplitude 1/k) weighted by the magnitude responses of resonances at the formants."""
    k = np.arange(1, int(7500 // f0) + 1)
    f = k * f0
    gain = 1.0 / np.sqrt(k)                              # a source falling 3 dB per octave
    for centre, width in zip(formants, BANDWIDTHS):      # a second-order resonance, 1 at 0 Hz
        gain = gain * centre ** 2 / np.sqrt((centre ** 2 - f ** 2) ** 2 + (width * f) ** 2)
    # sum_k gain_k sin(2 pi k f0 t + phase_k) = Im(sum_k gain_k e^{i phase_k} z^k) with z = e^{2 pi i f0 t}
    z = np.exp(2j * np.pi * f0 * t)
    coefficients = gain * np.exp(1j * rng.uniform(0, 2 * np.pi, len(k)))
    total, power = np.zeros_like(z), np.ones_like(z)
    for c in coefficients:
        power = power * z
        total += c * power
    return total.imag


def synthesise(label: str, seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One event of class ``label``, ``seconds`` long, at an arbitrary level; and the values drawn for it."""
    t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    if label == "tone":
        f = _log_uniform(rng, *PITCH_HZ)
        return np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)), {"f_start": f, "f_end": f}
    if label in ("chirp up", "chirp down"):
        low = _log_uniform(rng, PITCH_HZ[0], PITCH_HZ[1] / 2)
        high = _log_uniform(rng, 2 * low, PITCH_HZ[1])
        start, end = (low, high) if label == "chirp up" else (high, low)
        rate = np.log(end / start) / seconds                     # exponential sweep: f(t) = start * e^{rate t}
        phase = 2 * np.pi * start * (np.exp(rate * t) - 1) / rate
        return np.sin(phase + rng.uniform(0, 2 * np.pi)), {"f_start": start, "f_end": end}
    if label in FORMANTS:
        f0 = rng.uniform(*VOICE_F0_HZ)
        tract = rng.uniform(0.9, 1.15)
        formants = [f * tract * rng.uniform(0.95, 1.05) for f in FORMANTS[label]]
        return _voice(t, f0, formants, rng), {"f0": f0, "F1": formants[0], "F2": formants[1], "F3": formants[2]}
    raise ValueError(f"label must be one of {', '.join(map(repr, CLASSES))}; got {label!r}")


def _fade(x: np.ndarray) -> np.ndarray:
    n = min(int(FADE_SECONDS * SAMPLE_RATE), len(x) // 2)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
    x = x.copy()
    x[:n] *= ramp
    x[len(x) - n:] *= ramp[::-1]
    return x


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x ** 2)))


# ----------------------------------------------------------------------------- classification clips
@dataclass
class Clips:
    """One split: waveforms (N, samples), labels (N,), and what was drawn for each clip (``info``)."""

    waveforms: torch.Tensor
    labels: torch.Tensor
    info: list[dict] = field(default_factory=list)
    classes: tuple = CLASSES
    sample_rate: int = SAMPLE_RATE

    def __len__(self) -> int:
        return len(self.labels)

    def frame(self):
        """``info`` as a pandas DataFrame, one row per clip."""
        import pandas as pd
        return pd.DataFrame(self.info)


@dataclass
class Sounds:
    train: Clips
    val: Clips
    test: Clips

    def splits(self) -> dict[str, Clips]:
        return {"train": self.train, "val": self.val, "test": self.test}


def _clip(label: str, rng: np.random.Generator, fair: bool) -> tuple[np.ndarray, dict]:
    n = int(CLIP_SECONDS * SAMPLE_RATE)
    if fair:
        seconds = rng.uniform(*EVENT_SECONDS)
    else:  # the naive generator: vowels held longer than beeps
        seconds = rng.uniform(0.30, 0.45) if label in FORMANTS else rng.uniform(0.20, 0.32)
    event, drawn = synthesise(label, seconds, rng)
    event = _fade(event)
    if fair:
        level = rng.uniform(*LEVEL_DBFS)
        event = event * 10 ** (level / 20) / _rms(event)
    else:  # the naive generator: every event at the same peak, 0.3
        event = 0.3 * event / np.abs(event).max()
        level = 20 * np.log10(_rms(event))
    snr = rng.uniform(*SNR_DB)
    onset = int(rng.integers(0, n - len(event) + 1))
    clip = rng.normal(0.0, _rms(event) / 10 ** (snr / 20), n)
    clip[onset:onset + len(event)] += event
    info = {"class": label, "onset_s": onset / SAMPLE_RATE, "event_s": len(event) / SAMPLE_RATE,
            "level_dbfs": level, "snr_db": snr, **drawn}
    return clip.astype(np.float32), info


def make_sounds(n_train: int = 60, n_val: int = 20, n_test: int = 40, *, seed: int = 0, fair: bool = True) -> Sounds:
    """Balanced train / val / test splits with ``n_*`` clips *per class* (see the data card above)."""
    sizes = {"train": whole_number("n_train", n_train), "val": whole_number("n_val", n_val),
             "test": whole_number("n_test", n_test)}
    whole_number("seed", seed, minimum=0)
    out = {}
    for s, split in enumerate(SPLITS):
        waves, labels, info = [], [], []
        for i in range(sizes[split]):
            for c, label in enumerate(CLASSES):          # interleaved: the classes stay balanced in any prefix
                clip, drawn = _clip(label, np.random.default_rng([seed, s, c, i]), fair)
                waves.append(clip)
                labels.append(c)
                info.append(drawn)
        out[split] = Clips(torch.from_numpy(np.stack(waves)), torch.tensor(labels), info)
    return Sounds(**out)


# ----------------------------------------------------------------------------- sequences for CTC
@dataclass
class Sequences:
    """Clips of 1-4 events: waveforms (N, samples), labels (N, 4) in time order padded with -1, and each
    event's (start, end) in seconds (``spans``)."""

    waveforms: torch.Tensor
    labels: torch.Tensor
    spans: list[list[tuple[float, float]]]
    classes: tuple = CLASSES
    sample_rate: int = SAMPLE_RATE

    def __len__(self) -> int:
        return len(self.labels)

    def targets(self) -> list[list[int]]:
        """Each clip's labels as a list (no padding)."""
        return [[int(v) for v in row if v >= 0] for row in self.labels]


MAX_EVENTS = 4


def _sequence(rng: np.random.Generator) -> tuple[np.ndarray, list[int], list[tuple[float, float]]]:
    n = int(SEQUENCE_SECONDS * SAMPLE_RATE)
    count = int(rng.integers(1, MAX_EVENTS + 1))
    labels = [int(rng.integers(len(CLASSES))) for _ in range(count)]
    lengths = rng.uniform(0.12, 0.22, count)
    gaps = rng.uniform(0.02, 0.08, count)
    slack = SEQUENCE_SECONDS - lengths.sum() - gaps.sum()
    start = rng.uniform(0.0, slack)
    signal, spans, levels = np.zeros(n), [], []
    for label, seconds, gap in zip(labels, lengths, gaps):
        event, _ = synthesise(CLASSES[label], seconds, rng)
        level = 10 ** (rng.uniform(*LEVEL_DBFS) / 20)
        event = _fade(event) * level / _rms(event)
        i = int(start * SAMPLE_RATE)
        signal[i:i + len(event)] += event
        spans.append((i / SAMPLE_RATE, (i + len(event)) / SAMPLE_RATE))
        levels.append(level)
        start += seconds + gap
    noise = float(np.mean(levels)) / 10 ** (rng.uniform(*SEQUENCE_SNR_DB) / 20)
    return (signal + rng.normal(0.0, noise, n)).astype(np.float32), labels, spans


def make_sequences(n: int, *, split: str = "train", seed: int = 0) -> Sequences:
    """``n`` sequence clips for CTC (see the data card); splits draw from different generators."""
    whole_number("n", n)
    s = SPLITS.index(split) if split in SPLITS else None
    if s is None:
        raise ValueError(f"split must be one of {', '.join(map(repr, SPLITS))}; got {split!r}")
    waves, labels, spans = [], [], []
    for i in range(n):
        w, lab, sp = _sequence(np.random.default_rng([seed, 10 + s, i]))
        waves.append(w)
        labels.append(lab + [-1] * (MAX_EVENTS - len(lab)))
        spans.append(sp)
    return Sequences(torch.from_numpy(np.stack(waves)), torch.tensor(labels), spans)


# ----------------------------------------------------------------------------- shortcuts
NUISANCES = ("RMS level (dBFS)", "peak level (dBFS)", "time above the noise floor (s)")


def nuisance_features(waveforms: torch.Tensor) -> np.ndarray:
    """What a model could use instead of the sound's content: (N, 3) = loudness twice, and length.

    The length is measured, not looked up: the time covered by 10 ms frames whose energy is at least
    3 dB above the clip's noise floor (the mean energy of its quietest 20% of frames).
    """
    x = waveforms.double().numpy()
    rms = 10 * np.log10(np.mean(x ** 2, axis=1))
    peak = 20 * np.log10(np.abs(x).max(axis=1))
    hop = SAMPLE_RATE // 100
    frames = x[:, : x.shape[1] // hop * hop].reshape(len(x), -1, hop)
    energy = (frames ** 2).mean(axis=2)
    quiet = np.sort(energy, axis=1)[:, : max(1, energy.shape[1] // 5)].mean(axis=1)
    active = (energy >= quiet[:, None] * 10 ** 0.3).sum(axis=1) * hop / SAMPLE_RATE
    return np.stack([rms, peak, active], axis=1)


def shortcut_scores(train: Clips, test: Clips, *, depth: int = 3) -> dict[str, float]:
    """Test accuracy of a depth-``depth`` decision tree that sees only one nuisance (and all of them).

    Near chance (1 / number of classes) means that nuisance does not give the class away.
    """
    from sklearn.tree import DecisionTreeClassifier
    a, b = nuisance_features(train.waveforms), nuisance_features(test.waveforms)
    scores = {}
    for j, name in [*enumerate(NUISANCES), (None, "all three together")]:
        cols = slice(None) if j is None else [j]
        tree = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(a[:, cols], train.labels.numpy())
        scores[name] = float((tree.predict(b[:, cols]) == test.labels.numpy()).mean())
    return scores
