"""Audio from scratch: the STFT, the mel filterbank, log-mel features, the CTC loss and greedy CTC decoding.

Features (chapter 6.3)::

    spec = stft(clip)                       # framing + Hann window + a DFT written as one matrix product
    feats = log_mel(clip, sample_rate=16000)   # Whisper's recipe: power -> 80 mel bands -> log10 -> 8-decade floor

:func:`stft` matches ``torch.stft``; :func:`mel_filterbank` matches
``transformers.audio_utils.mel_filter_bank``; :func:`log_mel` matches the Hugging
Face ``WhisperFeatureExtractor`` (``tests/test_audio.py``). A clip that is empty,
has the wrong rank, or comes at another sample rate is refused with the expectation
named (:func:`check_clip`).

Connectionist temporal classification (CTC; Graves et al., ICML 2006)::

    loss = ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=6)
    hyps = greedy_decode(log_probs, blank=6)

:func:`ctc_loss` is the forward algorithm in log space with the arguments and
reductions of ``torch.nn.functional.ctc_loss``, which it matches in value and
gradient. The models a chapter trains on these features are at the end: a small
CNN over log-mel spectrograms, a wav2vec 2.0 body with a classification head,
and a frame tagger for CTC.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from .check import number, one_of, whole_number

__all__ = ["SAMPLE_RATE", "check_clip", "hann_window", "stft", "power_spectrogram", "hz_to_mel", "mel_to_hz",
           "mel_filterbank", "log_mel", "ctc_loss", "ctc_forward", "ctc_objective", "min_ctc_frames", "collapse",
           "greedy_decode", "edit_distance", "error_rate", "SpectrogramCNN", "WAV2VEC2_20_MS", "receptive_field",
           "WaveformClassifier",
           "FrameTagger"]

SAMPLE_RATE = 16_000      # Hz: what wav2vec 2.0 and Whisper expect, and what labkit.data.sounds generates


# ----------------------------------------------------------------------------- guarding the input
def check_clip(clip, sample_rate: int, *, expected_rate: int = SAMPLE_RATE, min_samples: int = 1) -> torch.Tensor:
    """A clip as a float tensor of shape (samples,) or (clips, samples), else a ValueError saying what was expected.

    Refused: another sample rate (resample first), a rank other than 1 or 2 (a channel axis: mix to mono
    first), fewer than ``min_samples`` samples (an empty clip), integer samples (PCM: scale them first),
    NaN or infinite samples.
    """
    if sample_rate != expected_rate:
        raise ValueError(f"sample_rate must be {expected_rate} Hz (what these features expect); got {sample_rate!r}. "
                         f"Resample the clip to {expected_rate} Hz first.")
    x = torch.as_tensor(np.asarray(clip) if not isinstance(clip, torch.Tensor) else clip)
    if x.ndim not in (1, 2):
        raise ValueError(f"clip must have shape (samples,) or (clips, samples), mono; got shape {tuple(x.shape)}. "
                         "A channel axis? Mix to mono first (e.g. clip.mean(axis=0)).")
    if x.shape[-1] < min_samples:
        what = "empty (0 samples)" if x.shape[-1] == 0 else f"{x.shape[-1]} samples long"
        raise ValueError(f"clip is {what}; it needs at least {min_samples} samples "
                         f"({1000 * min_samples / expected_rate:.1f} ms at {expected_rate} Hz)")
    if not x.is_floating_point():
        raise ValueError(f"clip has {x.dtype} samples; expected float amplitudes in about [-1, 1] "
                         "(for 16-bit PCM, divide by 32768)")
    if not torch.isfinite(x).all():
        raise ValueError("clip has NaN or infinite samples; expected finite amplitudes (about -1 to 1)")
    return x


# ----------------------------------------------------------------------------- the STFT
def hann_window(n: int, dtype=torch.float64) -> torch.Tensor:
    """The periodic Hann window w[k] = 0.5 - 0.5 cos(2 pi k / n), as ``torch.hann_window(n)``."""
    k = torch.arange(n, dtype=dtype)
    return 0.5 - 0.5 * torch.cos(2 * math.pi * k / n)


@lru_cache(maxsize=8)
def _dft_basis(n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and -sin of 2 pi k n / n_fft for the n_fft // 2 + 1 non-negative frequencies k: (n_fft, n_freqs) each."""
    n = torch.arange(n_fft, dtype=torch.float64)[:, None]
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[None, :]
    angle = 2 * math.pi * ((n * k) % n_fft) / n_fft   # the modulo keeps the angle below 2 pi: accurate sines
    return torch.cos(angle), -torch.sin(angle)


def stft(clip: torch.Tensor, n_fft: int = 400, hop_length: int = 160, *, center: bool = True) -> torch.Tensor:
    """Short-time Fourier transform: (..., samples) -> complex (..., n_fft // 2 + 1 frequencies, frames).

    Cut the clip into frames of ``n_fft`` samples every ``hop_length`` samples, multiply each by a Hann
    window, and take each frame's discrete Fourier transform X[k] = sum_n x[n] e^{-2 pi i k n / n_fft}.
    ``center=True`` first pads n_fft // 2 samples on each side by reflection, so frame t is centred on
    sample t * hop_length: 1 + samples // hop_length frames. Same result as ``torch.stft(clip, n_fft,
    hop_length, window=torch.hann_window(n_fft), return_complex=True)``.
    """
    whole_number("n_fft", n_fft, minimum=2)
    whole_number("hop_length", hop_length, minimum=1)
    x = clip
    if center:                                        # reflect-pad: the edges get full frames too
        if x.shape[-1] <= n_fft // 2:
            raise ValueError(f"clip must be longer than n_fft // 2 = {n_fft // 2} samples for the centred STFT; "
                             f"got {x.shape[-1]}")
        shape = x.shape
        x = nn.functional.pad(x.reshape(-1, 1, shape[-1]), (n_fft // 2, n_fft // 2), mode="reflect")
        x = x.reshape(*shape[:-1], -1)
    if x.shape[-1] < n_fft:
        raise ValueError(f"clip must have at least n_fft = {n_fft} samples without centring; got {x.shape[-1]}")
    frames = x.unfold(-1, n_fft, hop_length)          # (..., frames, n_fft): a view, no copy
    windowed = frames * hann_window(n_fft).to(x.dtype)
    cos, sin = (b.to(x.dtype) for b in _dft_basis(n_fft))
    real, imag = windowed @ cos, windowed @ sin       # the DFT as a matrix product: (..., frames, n_freqs)
    return torch.complex(real, imag).transpose(-1, -2)


def power_spectrogram(clip: torch.Tensor, n_fft: int = 400, hop_length: int = 160) -> torch.Tensor:
    """|STFT|^2: the energy of each frequency in each frame, (..., n_freqs, frames)."""
    spec = stft(clip, n_fft, hop_length)
    return spec.real ** 2 + spec.imag ** 2


# ----------------------------------------------------------------------------- the mel scale and filterbank
def hz_to_mel(f, scale: str = "slaney"):
    """Hertz -> mel. ``"htk"``: 2595 log10(1 + f / 700). ``"slaney"`` (librosa's default, Whisper's): linear
    below 1 kHz (3 mel per 200 Hz), logarithmic above (27 mel per factor 6.4)."""
    one_of("scale", scale, ("htk", "slaney"))
    f = np.asarray(f, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    linear = 3.0 * f / 200.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-12) / 1000.0) * 27.0 / np.log(6.4), linear)


def mel_to_hz(m, scale: str = "slaney"):
    """Mel -> hertz, the inverse of :func:`hz_to_mel`."""
    one_of("scale", scale, ("htk", "slaney"))
    m = np.asarray(m, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    return np.where(m >= 15.0, 1000.0 * np.exp((m - 15.0) * np.log(6.4) / 27.0), 200.0 * m / 3.0)


def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None,
                   *, scale: str = "slaney", norm: str | None = "slaney") -> torch.Tensor:
    """Triangular filters, one per mel band: (n_freqs, n_mels), so ``fb.T @ power`` gives mel energies.

    The band edges are n_mels + 2 points equally spaced on the mel scale between f_min and f_max; filter m
    rises linearly (in hertz) from edge m to edge m + 1 and falls to edge m + 2. ``norm="slaney"`` divides
    each triangle by its width in hertz (times 2), so a wide high band does not collect more energy than
    a narrow low one.
    """
    whole_number("n_freqs", n_freqs, minimum=2)
    whole_number("n_mels", n_mels, minimum=1)
    f_max = sample_rate / 2 if f_max is None else f_max
    number("f_min", f_min, minimum=0)
    number("f_max", f_max, minimum=f_min, maximum=sample_rate / 2, open_low=True)
    one_of("norm", norm, ("slaney", None))
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min, scale), hz_to_mel(f_max, scale), n_mels + 2), scale)
    bins = np.linspace(0, sample_rate // 2, n_freqs)                       # the frequency of each STFT row
    rising = (bins[:, None] - edges[None, :-2]) / np.diff(edges)[None, :-1]
    falling = (edges[None, 2:] - bins[:, None]) / np.diff(edges)[None, 1:]
    fb = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        fb = fb * (2.0 / (edges[2:] - edges[:-2]))[None, :]
    return torch.from_numpy(fb)


@lru_cache(maxsize=8)
def _whisper_filters(n_fft: int, n_mels: int, sample_rate: int, f_max: float) -> torch.Tensor:
    return mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate, 0.0, f_max).float()


def log_mel(clip, sample_rate: int, *, n_mels: int = 80, n_fft: int = 400, hop_length: int = 160,
            f_max: float = 8000.0) -> torch.Tensor:
    """Whisper's log-mel spectrogram: (samples,) -> (n_mels, samples // hop_length); batched (clips, ...) too.

    Power spectrogram (25 ms Hann frames every 10 ms), the last frame dropped; Slaney mel filters up to
    8 kHz; log10 of max(energy, 1e-10); values more than 8 decades (80 dB) below the clip's loudest are
    raised to that floor; then (x + 4) / 4 puts typical values near [-1, 1].
    """
    x = check_clip(clip, sample_rate, min_samples=n_fft // 2 + 1)
    power = power_spectrogram(x, n_fft, hop_length)[..., :-1]              # Whisper drops the last frame
    mel = _whisper_filters(n_fft, n_mels, sample_rate, f_max).to(power.dtype).T @ power
    logs = torch.clamp(mel, min=1e-10).log10()
    loudest = logs.amax(dim=(-2, -1), keepdim=True)                        # per clip
    return (torch.maximum(logs, loudest - 8.0) + 4.0) / 4.0


# ----------------------------------------------------------------------------- CTC
def _log_add(*terms: torch.Tensor) -> torch.Tensor:
    """log(sum(exp(terms))), elementwise. Exact where every term is -inf (the result is -inf) and with a zero
    gradient there: ``torch.logsumexp`` would give NaN gradients for such unreachable states."""
    top = torch.stack(terms).amax(dim=0)
    reachable = torch.isfinite(top)
    shift = torch.where(reachable, top, torch.zeros_like(top)).detach()
    total = sum((t - shift).exp() for t in terms)                          # >= 1 wherever a term is finite
    return torch.where(reachable, shift + total.clamp_min(1.0).log(), top)


def _padded_targets(targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """(N, S) targets with S >= 1, from either padded (N, S) or concatenated (sum of lengths,) form."""
    if targets.ndim == 2:
        return targets if targets.shape[1] else targets.new_zeros(len(targets), 1)
    longest = int(target_lengths.max()) if len(target_lengths) else 0
    out = targets.new_zeros(len(target_lengths), max(longest, 1))
    for i, piece in enumerate(torch.split(targets, target_lengths.tolist())):
        out[i, :len(piece)] = piece
    return out


def ctc_forward(log_probs: torch.Tensor, targets: torch.Tensor, input_lengths: torch.Tensor,
                target_lengths: torch.Tensor, blank: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The CTC forward variables in log space: (alphas (T, N, 2S+1), log-likelihood (N,)).

    The target y_1..y_S is extended with blanks, b y_1 b y_2 ... y_S b (2S + 1 states). alpha_t(s) is the
    log-probability of all frame paths that are in state s at frame t. A path may stay in its state,
    move to the next, or skip the blank between two *different* labels:

        alpha_t(s) = log_probs[t, l'_s] + log( e^alpha_{t-1}(s) + e^alpha_{t-1}(s-1) + [skip ok] e^alpha_{t-1}(s-2) )

    and the sequence's log-likelihood adds the last label's state and the final blank at its last frame.
    """
    T, N, C = log_probs.shape
    targets = _padded_targets(targets, target_lengths).long()
    S = targets.shape[1]
    ext = torch.full((N, 2 * S + 1), blank, dtype=torch.long, device=log_probs.device)
    ext[:, 1::2] = targets.clamp(0, C - 1)                                 # b y1 b y2 ... yS b
    can_skip = torch.zeros_like(ext, dtype=torch.bool)
    can_skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])  # skip a blank only between different labels
    emit = log_probs.gather(2, ext[None].expand(T, N, 2 * S + 1))          # (T, N, 2S+1): log p(state's symbol)
    minus_inf = torch.full((N, 1), -math.inf, dtype=log_probs.dtype, device=log_probs.device)
    alpha = torch.cat([emit[0, :, :2], minus_inf.expand(N, 2 * S - 1)], dim=1)   # start in the blank or y_1
    alphas = [alpha]
    for t in range(1, T):
        stay = alpha
        step = torch.cat([minus_inf, alpha[:, :-1]], dim=1)
        skip = torch.cat([minus_inf, minus_inf, alpha[:, :-2]], dim=1).masked_fill(~can_skip, -math.inf)
        new = _log_add(stay, step, skip) + emit[t]
        alpha = torch.where((t < input_lengths)[:, None], new, alpha)       # a clip that ended keeps its last alphas
        alphas.append(alpha)
    end = (2 * target_lengths.long())[:, None]                             # index of the final blank
    last_label = alpha.gather(1, (end - 1).clamp_min(0)).masked_fill(end == 0, -math.inf)
    return torch.stack(alphas), _log_add(alpha.gather(1, end), last_label)[:, 0]


def ctc_loss(log_probs: torch.Tensor, targets: torch.Tensor, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> torch.Tensor:
    """-log p(targets | log_probs), summed over every alignment; the arguments of ``F.ctc_loss``.

    ``log_probs``: (T, N, C) log-softmax outputs; ``targets``: (N, S) padded or the labels of all clips
    concatenated; ``reduction="mean"`` divides each clip's loss by its target length, then averages.
    A target that needs more frames than the clip has (see :func:`min_ctc_frames`) has probability 0:
    infinite loss, or 0 with ``zero_infinity=True``.
    """
    one_of("reduction", reduction, ("none", "mean", "sum"))
    input_lengths = torch.as_tensor(input_lengths, dtype=torch.long, device=log_probs.device)
    target_lengths = torch.as_tensor(target_lengths, dtype=torch.long, device=log_probs.device)
    _, log_likelihood = ctc_forward(log_probs, targets, input_lengths, target_lengths, blank)
    loss = -log_likelihood
    if zero_infinity:
        loss = torch.where(torch.isinf(loss), torch.zeros_like(loss), loss)
    if reduction == "mean":
        return (loss / target_lengths.clamp_min(1).to(loss.dtype)).mean()
    return loss.sum() if reduction == "sum" else loss


def ctc_objective(blank: int):
    """A ``fit`` loss for fixed-length clips: ``loss(log_probs (T, N, C), targets (N, S) padded with -1)``."""
    def loss(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        lengths = (targets >= 0).sum(dim=1)
        frames = torch.full_like(lengths, log_probs.shape[0])
        return ctc_loss(log_probs, targets.clamp_min(0), frames, lengths, blank=blank)
    return loss


def min_ctc_frames(target) -> int:
    """The fewest frames that can emit ``target``: one per label, plus a blank between two equal labels."""
    target = list(target)
    return len(target) + sum(a == b for a, b in zip(target, target[1:]))


def collapse(path, blank: int = 0) -> list[int]:
    """CTC's many-to-one map: merge runs of the same symbol, then drop the blanks. [a a _ a b b] -> [a a b]."""
    out, previous = [], None
    for symbol in (int(s) for s in path):
        if symbol != previous and symbol != blank:
            out.append(symbol)
        previous = symbol
    return out


def greedy_decode(log_probs: torch.Tensor, input_lengths=None, blank: int = 0) -> list[list[int]]:
    """Best symbol per frame, then :func:`collapse`: (T, N, C) -> one label list per clip ((T, C): one clip)."""
    if log_probs.ndim == 2:
        log_probs = log_probs[:, None]
    best = log_probs.argmax(dim=-1).T.tolist()                             # (N, T)
    lengths = [len(b) for b in best] if input_lengths is None else [int(n) for n in input_lengths]
    return [collapse(path[:n], blank) for path, n in zip(best, lengths)]


def edit_distance(ref, hyp) -> int:
    """Levenshtein distance: the fewest substitutions, deletions and insertions that turn ``ref`` into ``hyp``."""
    ref, hyp = list(ref), list(hyp)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[-1]


def error_rate(refs, hyps) -> float:
    """Total edit distance over total reference length: WER for words, CER for characters, LER for labels."""
    refs, hyps = list(refs), list(hyps)
    if len(refs) != len(hyps):
        raise ValueError(f"refs and hyps must pair up: {len(refs)} references, {len(hyps)} hypotheses")
    total = sum(len(r) for r in refs)
    if total == 0:
        raise ValueError("refs are all empty: an error rate needs at least one reference label")
    return sum(edit_distance(r, h) for r, h in zip(refs, hyps)) / total


# ----------------------------------------------------------------------------- models on these features
class SpectrogramCNN(nn.Module):
    """A small CNN that reads a log-mel spectrogram as a one-channel image: (N, mels, frames) -> logits.

    Three 3x3 convolution blocks (batch norm, ReLU, 2x2 max-pooling after the first two), then the mean
    over what is left of frequency and time, then a linear layer.
    """

    def __init__(self, n_classes: int, channels: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        whole_number("n_classes", n_classes, minimum=2)
        layers, c_in = [], 1
        for i, c_out in enumerate(channels):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
            if i < len(channels) - 1:
                layers.append(nn.MaxPool2d(2))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, n_classes)

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        h = self.features(spectrogram[:, None])                            # (N, channels, mels', frames')
        return self.head(h.mean(dim=(-2, -1)))


# The zoo's tiny wav2vec 2.0 has a 3-layer feature encoder (one frame per 1.25 ms: 400 frames for half a
# second, slow to attend over). These overrides give it the published model's seven layers, kernels and
# strides (one frame per 20 ms), still 32 channels wide: ``zoo.build(name, "tiny", **WAV2VEC2_20_MS)``.
WAV2VEC2_20_MS = dict(num_feat_extract_layers=7, conv_dim=[32] * 7, conv_stride=[5, 2, 2, 2, 2, 2, 2],
                      conv_kernel=[10, 3, 3, 3, 3, 2, 2])


def receptive_field(kernels, strides) -> int:
    """Samples one output frame of a stack of 1-D convolutions sees (the fewest a clip needs to give one frame).

    Going down from the top: one frame of a layer with kernel k and stride s reads k frames of the layer
    below, and each further frame of the layer above adds s more: r_below = (r_above - 1) * s + k.
    """
    r = 1
    for k, s in zip(reversed(list(kernels)), reversed(list(strides))):
        r = (r - 1) * s + k
    return r


class WaveformClassifier(nn.Module):
    """A wav2vec 2.0 body on the raw waveform, its frames averaged, then a linear head: (N, samples) -> logits.

    Each clip is scaled to zero mean and unit variance first, as wav2vec 2.0's feature extractor does.
    """

    def __init__(self, body: nn.Module, n_classes: int):
        super().__init__()
        whole_number("n_classes", n_classes, minimum=2)
        self.body = body
        self.head = nn.Linear(body.config.hidden_size, n_classes)
        self.min_samples = receptive_field(body.config.conv_kernel, body.config.conv_stride)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        check_clip(waveform, SAMPLE_RATE, min_samples=self.min_samples)   # one frame needs a whole receptive field
        x = (waveform - waveform.mean(-1, keepdim=True)) / (waveform.std(-1, keepdim=True) + 1e-7)
        frames = self.body(input_values=x).last_hidden_state              # (N, frames, hidden): one per 20 ms
        return self.head(frames.mean(dim=1))


class FrameTagger(nn.Module):
    """A CTC acoustic model: log-mel frames -> three 1-D convolutions (batch norm, ReLU; the first with
    stride 2, so one output frame per 20 ms, wav2vec 2.0's rate) -> per-frame log-probabilities over the
    labels and the blank: (N, mels, T) -> (ceil(T / 2), N, n_labels + 1). Each output frame sees 210 ms."""

    def __init__(self, n_mels: int, n_labels: int, hidden: int = 64):
        super().__init__()
        whole_number("n_labels", n_labels, minimum=1)
        layers, c_in = [], n_mels
        for stride in (2, 1, 1):
            layers += [nn.Conv1d(c_in, hidden, 5, stride=stride, padding=2), nn.BatchNorm1d(hidden), nn.ReLU()]
            c_in = hidden
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv1d(hidden, n_labels + 1, 1)                     # a linear layer applied to every frame

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.out(self.body(features))                             # (N, C, T')
        return logits.log_softmax(dim=1).permute(2, 0, 1)                  # (T', N, C): CTC's layout
