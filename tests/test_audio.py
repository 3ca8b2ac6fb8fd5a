"""labkit.audio against its references (torch.stft, transformers' mel filterbank and WhisperFeatureExtractor,
F.ctc_loss, jiwer), the synthetic sounds and their shortcut check, and chapter 6.3's exercises."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labkit import audio
from labkit.data import sounds
from labkit.labs import ch06_3
from exercise_checks import refuses, states_answer


# ----------------------------------------------------------------------------- STFT and mel features
@pytest.mark.parametrize("n_fft,hop,center", [(400, 160, True), (512, 128, True), (256, 100, False), (7, 3, True)])
def test_stft_matches_torch_stft(n_fft, hop, center):
    x = torch.randn(3, 2000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    want = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft, dtype=torch.float64), center=center,
                      return_complex=True)
    got = audio.stft(x, n_fft, hop, center=center)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-9)
    one = audio.stft(x[1], n_fft, hop, center=center)          # an unbatched clip too
    assert torch.allclose(one, want[1], atol=1e-9)


def test_stft_finds_a_tone_in_its_bin():
    f = 1000.0                                                  # bin 25 of a 400-point DFT at 16 kHz
    t = torch.arange(16000, dtype=torch.float64) / 16000
    power = audio.power_spectrogram(torch.sin(2 * math.pi * f * t))
    assert power.shape == (201, 101)
    assert (power[:, 1:-1].argmax(dim=0) == 25).all()


@pytest.mark.parametrize("scale", ["htk", "slaney"])
@pytest.mark.parametrize("norm", ["slaney", None])
@pytest.mark.parametrize("n_freqs,n_mels,rate,f_min,f_max", [(201, 80, 16000, 0.0, 8000.0), (257, 40, 16000, 50.0, 7600.0),
                                                              (513, 128, 22050, 0.0, 11025.0)])
def test_mel_filterbank_matches_transformers(scale, norm, n_freqs, n_mels, rate, f_min, f_max):
    from transformers.audio_utils import mel_filter_bank
    want = mel_filter_bank(n_freqs, n_mels, f_min, f_max, rate, norm=norm, mel_scale=scale)
    got = audio.mel_filterbank(n_freqs, n_mels, rate, f_min, f_max, scale=scale, norm=norm).numpy()
    assert got.shape == want.shape == (n_freqs, n_mels)
    assert np.abs(got - want).max() <= 1e-12 * max(1.0, np.abs(want).max())


def test_mel_scales_round_trip_and_agree_with_transformers():
    from transformers.audio_utils import hertz_to_mel
    f = np.array([0.0, 200.0, 999.0, 1000.0, 1001.0, 4000.0, 8000.0])
    for scale in ("htk", "slaney"):
        assert np.allclose(audio.hz_to_mel(f, scale), hertz_to_mel(f.copy(), scale), rtol=1e-12)
        assert np.allclose(audio.mel_to_hz(audio.hz_to_mel(f, scale), scale), f, atol=1e-9)


def _clip(seconds=0.5, seed=0):
    g = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.1 * np.sin(2 * np.pi * 440 * t) + 0.02 * g.standard_normal(len(t))).astype(np.float32)


def test_log_mel_within_1e4_of_whisper_feature_extractor():
    from transformers import WhisperFeatureExtractor
    fe = WhisperFeatureExtractor()
    for seconds, seed in [(0.5, 0), (1.23, 1), (3.0, 2)]:
        clip = _clip(seconds, seed)
        want = fe(clip, sampling_rate=16000, padding="longest", return_tensors="np")["input_features"][0]
        got = audio.log_mel(torch.from_numpy(clip), 16000).numpy()
        assert got.shape == want.shape == (80, len(clip) // 160)
        assert np.abs(got - want).max() <= 1e-4


def test_log_mel_matches_the_numpy_spectrogram_of_transformers():
    """A second reference that does not use torch.stft at all."""
    from transformers.audio_utils import mel_filter_bank, spectrogram, window_function
    clip = _clip(0.8, 3)
    filters = mel_filter_bank(201, 40, 0.0, 8000.0, 16000, norm="slaney", mel_scale="slaney")
    ref = spectrogram(clip, window_function(400, "hann"), frame_length=400, hop_length=160, power=2.0,
                      mel_filters=filters, log_mel="log10")[:, :-1]
    ref = (np.maximum(ref, ref.max() - 8.0) + 4.0) / 4.0
    got = audio.log_mel(clip, 16000, n_mels=40).numpy()
    assert np.abs(got - ref).max() <= 1e-4


def test_log_mel_of_a_batch_is_per_clip():
    a, b = _clip(0.5, 0), 10 * _clip(0.5, 1)
    batch = audio.log_mel(np.stack([a, b]), 16000)
    assert torch.allclose(batch[0], audio.log_mel(a, 16000), atol=1e-6)
    assert torch.allclose(batch[1], audio.log_mel(b, 16000), atol=1e-6)


@pytest.mark.parametrize("clip,rate,words", [
    (np.zeros(0, dtype=np.float32), 16000, ["empty", "at least 201 samples"]),
    (np.zeros(100, dtype=np.float32), 16000, ["100 samples long", "at least 201"]),
    (np.zeros((2, 1, 8000), dtype=np.float32), 16000, ["(samples,) or (clips, samples)", "mono", "(2, 1, 8000)"]),
    (np.zeros(8000, dtype=np.float32), 8000, ["16000 Hz", "got 8000", "Resample"]),
    (np.full(8000, np.nan, dtype=np.float32), 16000, ["NaN"]),
    (np.zeros(8000, dtype=np.int16), 16000, ["int16", "float amplitudes", "32768"]),
])
def test_bad_clips_are_refused_with_what_was_expected(clip, rate, words):
    with pytest.raises(ValueError) as e:
        audio.log_mel(clip, rate)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_stft_refuses_a_clip_too_short_for_one_frame():
    for clip in (torch.zeros(0), torch.zeros(2, 200)):                 # empty; not longer than n_fft // 2
        with pytest.raises(ValueError, match=r"clip must be longer than n_fft // 2 = 200 samples.*got"):
            audio.stft(clip, n_fft=400)
    assert audio.stft(torch.zeros(201), n_fft=400, hop_length=160).shape == (201, 2)
    with pytest.raises(ValueError, match="at least n_fft = 400 samples without centring; got 399"):
        audio.stft(torch.zeros(399), n_fft=400, center=False)


def test_bad_filterbank_arguments_are_named():
    with pytest.raises(ValueError, match="f_max"):
        audio.mel_filterbank(201, 40, 16000, 0.0, 9000.0)
    with pytest.raises(ValueError, match="scale"):
        audio.hz_to_mel(100.0, "mel")


# ----------------------------------------------------------------------------- CTC
def _ctc_case(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    T, N, C = 20, 5, 6
    logits = torch.randn(T, N, C, dtype=dtype, generator=g, requires_grad=True)
    targets = torch.randint(1, C, (N, 6), generator=g)
    targets[0, :4] = torch.tensor([2, 2, 3, 3])                # repeats need blanks between them
    input_lengths = torch.tensor([20, 18, 15, 20, 9])
    target_lengths = torch.tensor([4, 6, 2, 0, 5])             # one empty target
    return logits, targets, input_lengths, target_lengths


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_ctc_loss_matches_torch_in_value_and_gradient(reduction):
    logits, targets, il, tl = _ctc_case()
    ours = audio.ctc_loss(logits.log_softmax(-1), targets, il, tl, blank=0, reduction=reduction)
    ref = F.ctc_loss(logits.log_softmax(-1), targets, il, tl, blank=0, reduction=reduction)
    assert torch.allclose(ours, ref, rtol=1e-10, atol=1e-10)
    # Gradients w.r.t. the logits. (PyTorch's own gradient w.r.t. log_probs assumes they came from a
    # log_softmax and is not the plain derivative, so the comparison goes through the softmax.)
    g_ours, = torch.autograd.grad(ours.sum(), logits)
    g_ref, = torch.autograd.grad(ref.sum(), logits)
    assert torch.allclose(g_ours, g_ref, atol=1e-10)


def test_ctc_loss_takes_concatenated_targets_and_another_blank():
    logits, targets, il, tl = _ctc_case(1)
    lp = logits.log_softmax(-1)
    flat = torch.cat([targets[i, :n] for i, n in enumerate(tl)])
    shifted = targets - 1                                       # labels 0..4, blank = 5
    want = F.ctc_loss(lp, shifted, il, tl, blank=5, reduction="none")
    assert torch.allclose(audio.ctc_loss(lp, shifted, il, tl, blank=5, reduction="none"), want)
    assert torch.allclose(audio.ctc_loss(lp, flat, il, tl, reduction="none"),
                          F.ctc_loss(lp, flat, il, tl, reduction="none"))


def test_ctc_needs_a_blank_between_equal_labels():
    target = torch.tensor([[2, 2, 3, 3, 3]])
    need = audio.min_ctc_frames(target[0].tolist())
    assert need == 8                                            # 5 labels + 3 blanks between equal neighbours
    lp = torch.randn(need, 1, 5, dtype=torch.float64).log_softmax(-1)
    length = torch.tensor([5])
    enough, short = torch.tensor([need]), torch.tensor([need - 1])
    assert math.isfinite(audio.ctc_loss(lp, target, enough, length, reduction="sum").item())
    assert math.isinf(audio.ctc_loss(lp[:-1], target, short, length, reduction="sum").item())
    assert math.isinf(F.ctc_loss(lp[:-1], target, short, length, reduction="sum").item())
    assert audio.ctc_loss(lp[:-1], target, short, length, zero_infinity=True).item() == 0.0


def test_ctc_loss_of_empty_targets_is_all_blanks():
    lp = torch.randn(7, 2, 4, dtype=torch.float64).log_softmax(-1)
    for targets in (torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, dtype=torch.long)):
        loss = audio.ctc_loss(lp, targets, torch.tensor([7, 5]), torch.tensor([0, 0]), reduction="none")
        assert torch.allclose(loss, -torch.stack([lp[:7, 0, 0].sum(), lp[:5, 1, 0].sum()]))


def test_ctc_gradient_is_finite_with_unreachable_states():
    logits = torch.randn(6, 2, 4, dtype=torch.float64, requires_grad=True)
    loss = audio.ctc_loss(logits.log_softmax(-1), torch.tensor([[1, 2, 3], [1, 1, 1]]), torch.tensor([6, 4]),
                          torch.tensor([3, 3]), zero_infinity=True)      # [1, 1, 1] needs 5 frames: impossible in 4
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_ctc_forward_sums_every_alignment():
    """Brute force: the probability of a target is the sum over every frame path that collapses to it."""
    import itertools
    T, C, target = 4, 3, [1, 1]
    lp = torch.randn(T, 1, C, dtype=torch.float64, generator=torch.Generator().manual_seed(2)).log_softmax(-1)
    total = sum(math.exp(sum(lp[t, 0, s].item() for t, s in enumerate(path)))
                for path in itertools.product(range(C), repeat=T) if audio.collapse(path, 0) == target)
    _, ll = audio.ctc_forward(lp, torch.tensor([target]), torch.tensor([T]), torch.tensor([2]))
    assert math.isclose(math.exp(ll.item()), total, rel_tol=1e-10)


def test_greedy_decode_collapses_then_drops_blanks():
    path = [0, 1, 1, 0, 1, 2, 2, 0, 0]
    lp = F.one_hot(torch.tensor(path), 3).double().log()
    assert audio.greedy_decode(lp, blank=0) == [[1, 1, 2]]
    batch = torch.stack([lp, lp.flip(0)], dim=1)
    assert audio.greedy_decode(batch, input_lengths=[9, 3], blank=0) == [[1, 1, 2], [2]]


def test_error_rate_matches_jiwer():
    jiwer = pytest.importorskip("jiwer", reason="jiwer: the ASR field's WER/CER library")
    g = np.random.default_rng(0)
    refs = [list(g.integers(0, 6, g.integers(1, 6))) for _ in range(50)]
    hyps = [[s for s in r if g.random() > 0.2] + list(g.integers(0, 6, g.integers(0, 2))) for r in refs]
    words = lambda seq: " ".join(sounds.CLASSES[s].replace(" ", "_") for s in seq)
    assert math.isclose(audio.error_rate(refs, hyps), jiwer.wer([words(r) for r in refs], [words(h) for h in hyps]),
                        rel_tol=1e-12)
    assert audio.edit_distance("kitten", "sitting") == 3
    with pytest.raises(ValueError, match="pair up"):
        audio.error_rate([[1]], [])


# ----------------------------------------------------------------------------- the synthetic sounds
@pytest.fixture(scope="module")
def small():
    return sounds.make_sounds(12, 4, 12, seed=0)


def test_sounds_are_balanced_seeded_and_splits_independent(small):
    assert small.train.waveforms.shape == (12 * 6, 8000) and small.train.waveforms.dtype == torch.float32
    assert torch.bincount(small.train.labels).tolist() == [12] * 6
    again = sounds.make_sounds(12, 9, 3, seed=0)                # other split sizes: the train split is the same
    assert torch.equal(again.train.waveforms, small.train.waveforms)
    other = sounds.make_sounds(12, 4, 12, seed=1)
    assert not torch.equal(other.train.waveforms, small.train.waveforms)
    assert not any(torch.equal(a, b) for a in small.train.waveforms[:6] for b in small.test.waveforms[:6])


def test_sound_levels_and_lengths_follow_the_data_card(small):
    info = small.train.frame()
    assert info.level_dbfs.between(*sounds.LEVEL_DBFS).all() and info.snr_db.between(*sounds.SNR_DB).all()
    assert info.event_s.between(0.199, 0.451).all()
    measured = 10 * np.log10((small.train.waveforms.double() ** 2).mean(dim=1).numpy())
    # event power over its share of the clip, plus noise over the whole clip at the drawn SNR
    predicted = info.level_dbfs + 10 * np.log10(info.event_s / sounds.CLIP_SECONDS + 10 ** (-info.snr_db / 10))
    assert np.abs(measured - predicted.to_numpy()).max() < 1.0


def test_vowels_put_their_energy_at_their_formants():
    """/i/ has a high second formant (2.3 kHz), /u/ a low one (0.9 kHz), /a/ a high first one (0.7 kHz)."""
    def share(label, low, high):
        out = []
        for seed in range(8):
            x, _ = sounds.synthesise(label, 0.3, np.random.default_rng(seed))
            power, f = np.abs(np.fft.rfft(x)) ** 2, np.fft.rfftfreq(len(x), 1 / sounds.SAMPLE_RATE)
            out.append(power[(f >= low) & (f < high)].sum() / power.sum())
        return np.mean(out)
    assert share("vowel /i/", 1800, 2800) > 10 * share("vowel /u/", 1800, 2800)
    assert share("vowel /u/", 500, 1500) > 3 * share("vowel /i/", 500, 1500)
    assert share("vowel /a/", 500, 1500) > 0.5 > share("vowel /u/", 500, 1500)


def test_shortcut_check_passes_the_fair_set_and_catches_the_naive_one():
    fair = sounds.make_sounds(40, 1, 40, seed=0)
    naive = sounds.make_sounds(40, 1, 40, seed=0, fair=False)
    fair_scores = sounds.shortcut_scores(fair.train, fair.test)
    naive_scores = sounds.shortcut_scores(naive.train, naive.test)
    chance = 1 / len(sounds.CLASSES)
    assert max(fair_scores.values()) < chance + 0.1, fair_scores
    assert naive_scores["time above the noise floor (s)"] > chance + 0.1, naive_scores
    assert naive_scores["all three together"] > fair_scores["all three together"] + 0.1


def test_sequences_hold_their_labels_in_time_order():
    seq = sounds.make_sequences(30, split="val", seed=0)
    assert seq.waveforms.shape == (30, int(sounds.SEQUENCE_SECONDS * 16000))
    for labels, spans in zip(seq.targets(), seq.spans):
        assert 1 <= len(labels) <= 4 and len(spans) == len(labels)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])) and spans[-1][1] <= sounds.SEQUENCE_SECONDS
    assert any(a == b for t in seq.targets() for a, b in zip(t, t[1:]))     # repeats occur
    with pytest.raises(ValueError, match="split"):
        sounds.make_sequences(3, split="dev")


def test_synthesise_refuses_an_unknown_class():
    with pytest.raises(ValueError, match="vowel /a/"):
        sounds.synthesise("whistle", 0.2, np.random.default_rng(0))


# ----------------------------------------------------------------------------- models
def test_models_output_shapes():
    feats = torch.randn(3, 40, 120)
    assert audio.SpectrogramCNN(6)(feats).shape == (3, 6)
    out = audio.FrameTagger(40, 6)(feats)
    assert out.shape == (60, 3, 7) and torch.allclose(out.exp().sum(-1), torch.ones(60, 3))
    from labkit import zoo
    body = zoo.build("wav2vec2-base-960h", "tiny", **audio.WAV2VEC2_20_MS).wav2vec2
    assert audio.WaveformClassifier(body, 6).eval()(torch.randn(2, 8000)).shape == (2, 6)
    frames = body(torch.randn(1, 8000)).last_hidden_state.shape[1]
    assert frames == 24                                         # one per 20 ms (the real model's 400-sample receptive field)


def test_the_waveform_classifier_refuses_clips_shorter_than_one_frame():
    from labkit import zoo
    body = zoo.build("wav2vec2-base-960h", "tiny", **audio.WAV2VEC2_20_MS).wav2vec2
    model = audio.WaveformClassifier(body, 6).eval()
    assert model.min_samples == audio.receptive_field(body.config.conv_kernel, body.config.conv_stride) == 400
    assert body(torch.randn(1, 400)).last_hidden_state.shape[1] == 1          # exactly one receptive field: one frame
    with pytest.raises(RuntimeError):
        body(torch.randn(1, 399))                                              # one sample less: the convolution fails
    assert model(torch.randn(2, 400)).shape == (2, 6)
    for clip, words in ((torch.zeros(2, 0), ["empty (0 samples)", "at least 400 samples", "25.0 ms"]),
                        (torch.zeros(2, 399), ["399 samples long", "at least 400"]),
                        (torch.zeros(2, 1, 8000), ["(samples,) or (clips, samples)", "mono"])):
        with pytest.raises(ValueError) as e:
            model(clip)
        assert all(w in str(e.value) for w in words), str(e.value)
    assert audio.receptive_field([10, 3, 3, 3, 3, 2, 2], [5, 2, 2, 2, 2, 2, 2]) == 400   # wav2vec 2.0 (arXiv:2006.11477)
    assert audio.receptive_field([3], [1]) == 3 and audio.receptive_field([3, 3], [2, 1]) == 7


def test_ctc_objective_trains_a_frame_tagger_on_a_toy_alignment():
    """Frames that are noisy one-hot codes of their label: a few hundred steps of the from-scratch CTC loss
    teach the tagger to emit the label sequence."""
    g = torch.Generator().manual_seed(0)
    n, T, B = 48, 24, 3
    labels = torch.randint(0, B, (n, 3), generator=g)
    frames = labels.repeat_interleave(T // 3, dim=1)                       # (n, T): 8 frames per label
    feats = F.one_hot(frames, 4).float().transpose(1, 2) + 0.1 * torch.randn(n, 4, T, generator=g)
    torch.manual_seed(0)
    model = audio.FrameTagger(4, B, hidden=16)
    from labkit.train import fit
    fit(model, (feats, labels), steps=60, batch_size=16, lr=1e-2, loss_fn=audio.ctc_objective(blank=B),
        progress=False)
    with torch.no_grad():
        hyps = audio.greedy_decode(model.eval()(feats), blank=B)
    refs = [[int(v) for v in row] for row in labels]
    assert audio.error_rate(refs, hyps) < 0.1


# ----------------------------------------------------------------------------- exercises
def test_exercise_frames():
    ex = ch06_3.exercises()
    assert ex["6.3.1"].check(51)
    assert refuses(ex["6.3.1"], 50, 48, 8000 // 160 - 1, 8000)   # Whisper's count, center=False, off by two, samples
    assert ch06_3.exercises(seconds=1.0)["6.3.1"].check(101)    # follows its arguments
    assert not states_answer(ex["6.3.1"].hint, 51)


def test_exercise_mel():
    ex = ch06_3.exercises()["6.3.2"]
    assert ex.check(lambda f: 2595 * math.log10(1 + f / 700))
    assert ex.check(lambda f: 1127 * math.log(1 + f / 700))      # the same scale, natural log
    assert refuses(ex, lambda f: 2595 * math.log(1 + f / 700),  # natural log with the log10 constant
                   lambda f: 2595 * math.log10(f / 700 + 1e-9),  # the 1 + dropped
                   lambda f: float(audio.hz_to_mel(f, "slaney")),  # the other mel scale
                   lambda f: f,                                  # no warping
                   lambda f: 1000.0)                             # a constant
    assert not states_answer(ex.hint, 2595) and not states_answer(ex.hint, 700)


def test_exercise_collapse():
    ex = ch06_3.exercises()["6.3.3"]
    assert ex.check(audio.collapse)

    def blanks_first(path, blank):
        kept = [s for s in path if s != blank]
        return [s for i, s in enumerate(kept) if i == 0 or s != kept[i - 1]]

    def ignores_blank(path, blank):
        return audio.collapse(path, 6)

    def uniques(path, blank):
        return sorted({s for s in path if s != blank})

    assert refuses(ex, blanks_first, ignores_blank, uniques,
                   lambda p, b: [s for s in p if s != b],                # no merging
                   lambda p, b: [s for i, s in enumerate(p) if i == 0 or s != p[i - 1]],  # no blank removal
                   lambda p, b: [])                                       # constant
    assert "merge" not in ex.hint.lower()


def test_exercise_min_frames():
    ex = ch06_3.exercises()
    target = [3, 3, 1, 1, 1, 5]
    assert ex["6.3.4"].check(9)
    assert refuses(ex["6.3.4"], len(target), 2 * len(target) + 1, 2 * len(target), 4)
    assert ch06_3.exercises(target=(1, 2, 3))["6.3.4"].check(3)
    assert not states_answer(ex["6.3.4"].hint, 9)
