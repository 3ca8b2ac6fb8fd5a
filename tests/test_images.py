"""ImageNet class names, scikit-learn's sample photos, preprocessing and top-k."""
import numpy as np
import pytest
import torch

from labkit.data.images import NORMALISATIONS, imagenet_classes, preprocess, sample_photos, top_classes


def test_imagenet_classes_are_torchvisions_list():
    names = imagenet_classes()
    assert len(names) == len(set(names)) == 1000
    # spot checks against torchvision's _IMAGENET_CATEGORIES (index = logit)
    assert (names[0], names[1], names[985], names[999]) == ("tench", "goldfish", "daisy", "toilet tissue")
    assert names[698] == "palace" and names[663] == "monastery"
    names.append("x")                                   # a copy: the shipped list is not mutated
    assert len(imagenet_classes()) == 1000


def test_sample_photos():
    photos = sample_photos()
    assert list(photos) == ["china.jpg", "flower.jpg"]
    for image in photos.values():
        assert image.shape == (427, 640, 3) and image.dtype == np.uint8


def test_preprocess_crops_the_centre_resizes_and_normalises():
    # left third black, centre white, right third black: the 87.5% centre crop of the shorter
    # side (373 of 427 pixels) is wider than the white band, so both edges of the crop are black
    image = np.zeros((427, 640, 3), np.uint8)
    image[:, 213:427] = 255
    x = preprocess(image)
    assert x.shape == (1, 3, 224, 224)
    assert torch.allclose(x[0, :, 112, 112], torch.full((3,), 128 / 128))        # white -> (255-127)/128
    assert torch.allclose(x[0, :, 112, 0], torch.full((3,), -127 / 128))         # black -> -127/128
    assert x.min() >= -127 / 128 - 1e-6 and x.max() <= 1 + 1e-6
    # ImageNet normalisation: per-channel mean and std
    grey = np.full((50, 80, 3), 100, np.uint8)
    mean, std = NORMALISATIONS["imagenet"]
    y = preprocess([grey, grey], size=32, normalisation="imagenet")
    assert y.shape == (2, 3, 32, 32)
    expected = (100 - torch.tensor(mean)) / torch.tensor(std)
    assert torch.allclose(y[1, :, 5, 7], expected, atol=1e-4)


def test_preprocess_refuses_bad_input():
    with pytest.raises(ValueError, match="normalisation must be one of 'lite', 'imagenet'"):
        preprocess(np.zeros((10, 10, 3), np.uint8), normalisation="zscore")
    with pytest.raises(ValueError, match=r"\(height, width, 3\)"):
        preprocess(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="size"):
        preprocess(np.zeros((10, 10, 3), np.uint8), size=0)


def test_top_classes_orders_by_probability():
    logits = torch.full((2, 1000), -5.0)
    logits[0, 985], logits[0, 3] = 4.0, 3.0
    logits[1, 0] = 9.0
    first, second = top_classes(logits, k=3)
    assert [name for name, _ in first[:2]] == ["daisy", "tiger shark"]
    probs = torch.softmax(logits[0], -1)
    assert first[0][1] == pytest.approx(probs[985].item()) and first[0][1] > first[1][1] > first[2][1]
    assert second[0][0] == "tench" and len(second) == 3
    with pytest.raises(ValueError, match="batch, 1000"):
        top_classes(torch.zeros(1000))
    with pytest.raises(ValueError, match="k must be a whole number from 1 to 1000"):
        top_classes(logits, k=0)
