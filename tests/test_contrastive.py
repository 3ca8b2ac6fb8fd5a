"""CLIP's symmetric contrastive loss: by hand, against Hugging Face CLIPModel, and on pairs."""
import math

import pytest
import torch
import torch.nn.functional as F

from labkit.contrastive import (CAPTION_TEMPLATES, DIGIT_WORDS, LOGIT_SCALE_INIT, CaptionEncoder, DigitImageEncoder,
                                TinyCLIP, clip_forward, clip_logits, clip_loss, contrastive_loss, digit_captions,
                                duplicate_floor, zero_shot_predict)


def test_loss_by_hand():
    img = [[1.0, 0.0], [0.6, 0.8], [0.0, 2.0]]
    txt = [[2.0, 0.0], [0.0, 1.0], [-1.0, 1.0]]
    scale = 3.0
    unit = lambda v: [x / math.hypot(*v) for x in v]  # noqa: E731
    sim = [[scale * sum(a * b for a, b in zip(unit(i), unit(t))) for t in txt] for i in img]

    def ce(rows):
        return sum(math.log(sum(math.exp(x) for x in row)) - row[k] for k, row in enumerate(rows)) / len(rows)

    by_hand = (ce(sim) + ce([list(c) for c in zip(*sim)])) / 2
    got = clip_loss(torch.tensor(img), torch.tensor(txt), torch.tensor(math.log(scale)))
    assert got.item() == pytest.approx(by_hand, abs=1e-6)
    one_way = F.cross_entropy(clip_logits(torch.tensor(img), torch.tensor(txt), torch.tensor(math.log(scale))),
                              torch.arange(3))
    assert got.item() != pytest.approx(one_way.item(), abs=1e-3)    # the text->image half matters here


def _hf_clip():
    from transformers import CLIPConfig, CLIPModel
    text = dict(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=8,
                  patch_size=4, num_channels=3)
    torch.manual_seed(0)
    return CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=8)).eval()


@pytest.mark.parametrize("scale", [1.0, 1 / 0.07, 60.0, 100.0])
def test_matches_hugging_face_clip(scale):
    model = _hf_clip()
    g = torch.Generator().manual_seed(1)
    inputs = dict(input_ids=torch.randint(2, 50, (6, 7), generator=g),
                  pixel_values=torch.randn(6, 3, 8, 8, generator=g))
    with torch.no_grad():
        model.logit_scale.fill_(math.log(scale))
        out = model(**inputs, return_loss=True)
    ours = clip_loss(out.image_embeds, out.text_embeds, model.logit_scale)
    assert abs(ours.item() - out.loss.item()) < 1e-5
    assert torch.allclose(clip_logits(out.image_embeds, out.text_embeds, model.logit_scale), out.logits_per_image,
                          atol=1e-4)
    if scale == 100.0:  # above the clip, HF does not clamp in forward; ours stays at 100
        with torch.no_grad():
            model.logit_scale.fill_(math.log(1000.0))
            hf_1000 = model(**inputs, return_loss=True).loss
        ours_1000 = clip_loss(out.image_embeds, out.text_embeds, model.logit_scale)
        assert abs(ours_1000.item() - out.loss.item()) < 1e-5 and abs(hf_1000.item() - out.loss.item()) > 1e-3


def test_logit_scale_is_learnable_and_clipped_at_100():
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    for value, moves in ((LOGIT_SCALE_INIT, True), (math.log(500.0), False)):
        s = torch.tensor(value, requires_grad=True)
        clip_loss(img, txt, s).backward()
        assert (s.grad.abs() > 0).item() == moves
    assert LOGIT_SCALE_INIT == pytest.approx(math.log(1 / 0.07))


def test_a_perfect_pairing_beats_a_shuffled_one():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        img = torch.randn(16, 8, generator=g)
        txt = img + 0.3 * torch.randn(16, 8, generator=g)
        perm = torch.randperm(16, generator=g)
        s = torch.tensor(LOGIT_SCALE_INIT)
        assert clip_loss(img, txt, s) < clip_loss(img, txt[perm], s)
    with pytest.raises(ValueError, match="image_emb and text_emb"):
        clip_loss(torch.randn(4, 8), torch.randn(5, 8), s)


def test_duplicate_captions_set_a_floor():
    digits = [3, 3, 3, 1, 1, 7, 0, 0]
    onehot = F.one_hot(torch.tensor(digits), 10).float()       # the best embeddings: one direction per caption
    loss = clip_loss(onehot, onehot, torch.tensor(math.log(100.0)))
    floor = duplicate_floor(digits)
    assert floor == pytest.approx((3 * math.log(3) + 2 * math.log(2) + 2 * math.log(2)) / 8)
    assert loss.item() == pytest.approx(floor, abs=1e-6)
    assert duplicate_floor(range(8)) == 0


def test_captions_name_the_digit():
    g = torch.Generator().manual_seed(0)
    digits = list(range(10)) * 20
    caps = digit_captions(digits, generator=g)
    assert all(DIGIT_WORDS[d] in c.split() or str(d) in c.split() for d, c in zip(digits, caps))
    assert {c.replace(DIGIT_WORDS[d], "{word}").replace(str(d), "{numeral}") for d, c in zip(digits, caps)} \
        == set(CAPTION_TEMPLATES)
    assert digit_captions([7, 2], template="a handwritten {word}") == ["a handwritten seven", "a handwritten two"]


def test_tiny_clip_learns_digits_zero_shot():
    from sklearn.datasets import load_digits
    from labkit.data.tokenizer import get_tokenizer
    from labkit.train import fit
    x, y = load_digits(return_X_y=True)
    images, digits = torch.tensor(x / 16, dtype=torch.float32).reshape(-1, 8, 8), torch.tensor(y)
    g = torch.Generator().manual_seed(0)
    caps = digit_captions(digits.tolist(), generator=g)
    prompts = digit_captions(range(10), template="a handwritten {word}")
    tok = get_tokenizer("word", caps + prompts)
    ids, mask = tok.pad([tok.encode(c) for c in caps])
    torch.manual_seed(0)
    model = TinyCLIP(DigitImageEncoder(32, width=8), CaptionEncoder(tok.vocab_size, 32), 32, 32, 16)
    train, test = slice(0, 1400), slice(1400, None)
    p_ids, p_mask = tok.pad([tok.encode(c) for c in prompts])
    before = (zero_shot_predict(model, images[test], p_ids, p_mask) == digits[test]).float().mean()
    hist = fit(model, (images[train], ids[train], mask[train], digits[train]), epochs=4, batch_size=64, lr=3e-3,
               forward=clip_forward, loss_fn=contrastive_loss, progress=False, seed=0)
    after = (zero_shot_predict(model, images[test], p_ids, p_mask) == digits[test]).float().mean()
    assert after > 0.6 and after > before + 0.3, (before, after)
    assert hist.steps[-1]["loss"] < hist.steps[0]["loss"]
