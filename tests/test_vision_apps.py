"""Chapter 6.2: the digit splits and shapes, IoU (torchvision's own cases and pixel counting), the shape
guards, batch-norm recalibration, fine-tuning, the VAE's likelihood terms, and the exercises' checks."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from labkit.data.digits import (DIGIT_MAX, class_rows, labels_per_class, load_digit_splits, make_shapes,
                                photo_patches, upsample)
from labkit.labs import ch06_2
from labkit.nn.efficientnet import EfficientNetLite0
from labkit.nn.vit import ViTConfig
from labkit.vision import (BoxRegressor, DigitVAE, HFViTBackbone, ImageClassifier, Inputs, RunRecord, ViTBackbone,
                           batch_norm_shift, binomial_log_prob, box_iou, compare_arms, curve_figure, curve_summary,
                           curve_table, elbo, trained_curve, ahead, how_far, fit_line,
                           fine_tune, frozen_curve, image_grid, independent_pixels_nll, kl_to_standard_normal,
                           paired_iou, recalibrate_batch_norm, threshold_boxes, vae_loss, verdict)


# ------------------------------------------------------------------ data
@pytest.fixture(scope="module")
def splits():
    return load_digit_splits()


def test_digit_splits_are_fixed_disjoint_and_stratified(splits):
    parts = (splits.train, splits.val, splits.test)
    assert sum(len(p) for p in parts) == 1797 and splits.sizes() == {"train": 1077, "val": 180, "test": 540}
    seen = np.concatenate([p.index for p in parts])
    assert len(np.unique(seen)) == 1797                                       # no image in two splits
    overall = np.bincount(np.concatenate([p.labels for p in parts])) / 1797
    for p in parts:
        assert np.abs(np.bincount(p.labels, minlength=10) / len(p) - overall).max() < 0.01   # stratified
    again = load_digit_splits()
    assert np.array_equal(again.test.index, splits.test.index)               # fixed
    assert not np.array_equal(load_digit_splits(seed=1).test.index, splits.test.index)


def test_labels_per_class_draws_k_of_each_class(splits):
    five = labels_per_class(splits.train, 5, seed=3)
    assert np.array_equal(np.bincount(five.labels), [5] * 10)
    assert np.array_equal(labels_per_class(splits.train, 5, seed=3).index, five.index)
    assert not np.array_equal(labels_per_class(splits.train, 5, seed=4).index, five.index)
    assert np.array_equal(labels_per_class(splits.train, None).index, splits.train.index)
    assert np.array_equal(class_rows(np.array([0, 1, 0, 1]), None), [0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"k \(labels per class\) must be a whole number from 1 to"):
        labels_per_class(splits.train, 0)
    with pytest.raises(ValueError, match="from 1 to"):
        labels_per_class(splits.train, 10_000)


def test_shrink_keeps_a_few_of_each_class_in_every_split(splits):
    small = splits.shrink(3)
    assert small.sizes() == {"train": 30, "val": 30, "test": 30}
    assert set(small.test.index) <= set(splits.test.index)
    assert splits.shrink(None) is splits


def test_upsample_repeats_grey_and_normalises_like_lite():
    digits = np.zeros((2, 8, 8), np.float32)
    digits[0, :, :4] = DIGIT_MAX                                              # left half full ink
    x = upsample(digits, 32)
    assert x.shape == (2, 3, 32, 32)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])   # grey on R, G and B
    assert x[0, 0, 10, 2] == pytest.approx(1.0)                               # 16 -> 255 -> (255 - 127) / 128
    assert x[1].max() == pytest.approx(-127 / 128)                            # 0 -> -127 / 128
    assert -127 / 128 - 1e-6 <= x.min() and x.max() <= 1 + 1e-6


def test_upsample_refuses_wrong_shapes_and_ranges():
    with pytest.raises(ValueError, match=r"images must have shape \(n, 8, 8\).*got \(3, 64\)"):
        upsample(np.zeros((3, 64)))                                           # flattened digits
    with pytest.raises(ValueError, match=r"got \(3, 8, 8, 3\)"):
        upsample(np.zeros((3, 8, 8, 3)))                                      # a colour channel
    with pytest.raises(ValueError, match=r"pixels must lie in 0..16"):
        upsample(np.full((1, 8, 8), 255.0))                                   # 0..255 pixels, not 0..16
    with pytest.raises(ValueError, match="size must be a whole number from 8 to 512"):
        upsample(np.zeros((1, 8, 8)), size=4)


def test_photo_patches_split_by_columns_without_shortcuts():
    p = photo_patches()
    assert p.sizes() == {"train": 260, "val": 52, "test": 208}
    for part in (p.train, p.val, p.test):
        assert np.array_equal(np.bincount(part.labels), [len(part) // 2] * 2)
    left = lambda part: part.index % 1000                                     # noqa: E731
    assert (left(p.train) + 32).max() <= 0.5 * 640 and left(p.test).min() >= 0.6 * 640   # no shared pixel
    means, stds = p.train.images.mean((1, 2)), p.train.images.std((1, 2))
    assert np.abs(means - 127).max() < 6 and np.median(stds) == pytest.approx(48, abs=2)  # brightness removed


def test_shapes_are_seeded_and_their_boxes_valid():
    a, b = make_shapes(64, seed=0), make_shapes(64, seed=0)
    assert torch.equal(a.images, b.images) and torch.equal(a.boxes, b.boxes)
    assert a.images.shape == (64, 1, 32, 32) and 0 <= a.images.min() and a.images.max() <= 1
    assert (a.boxes[:, 2:] > a.boxes[:, :2]).all() and a.boxes.min() >= 0 and a.boxes.max() <= 1
    assert set(a.kinds.tolist()) == {0, 1, 2}


def test_threshold_rule_is_exact_on_a_clean_square_and_not_on_the_data():
    image = torch.zeros(1, 1, 32, 32)
    image[0, 0, 8:20, 4:14] = 1.0                                             # rows 8..19, columns 4..13
    assert torch.allclose(threshold_boxes(image, blur=1), torch.tensor([[4, 8, 14, 20]]) / 32)
    shapes = make_shapes(200, seed=5)
    iou = paired_iou(threshold_boxes(shapes.images), shapes.boxes)
    assert 0.3 < iou.mean() < 0.9          # the ramp and the noise leave the rule imperfect: a real task


# ------------------------------------------------------------------ IoU
TV_INT_BOXES = [[0, 0, 100, 100], [0, 0, 50, 50], [200, 200, 300, 300]]
TV_INT_EXPECTED = [[1.0, 0.25, 0.0], [0.25, 1.0, 0.0], [0.0, 0.0, 1.0]]
TV_FLOAT_BOXES = [[285.3538, 185.5758, 1193.5110, 851.4551], [285.1472, 188.7374, 1192.4984, 851.0669],
                  [279.2440, 197.9812, 1189.4746, 849.2019]]
TV_FLOAT_EXPECTED = [[1.0, 0.9933, 0.9673], [0.9933, 1.0, 0.9737], [0.9673, 0.9737, 1.0]]


@pytest.mark.parametrize("boxes, expected, atol", [(TV_INT_BOXES, TV_INT_EXPECTED, 1e-4),
                                                   (TV_FLOAT_BOXES, TV_FLOAT_EXPECTED, 1e-3)])
def test_box_iou_reproduces_torchvisions_own_test_cases(boxes, expected, atol):
    # torchvision's test/test_ops.py (TestBoxIou) checks ops.box_iou(boxes, boxes) against these values;
    # torchvision cannot be installed here, so its cases are the reference.
    for dtype in (torch.float32, torch.float64):
        b = torch.tensor(boxes, dtype=dtype)
        torch.testing.assert_close(box_iou(b, b), torch.tensor(expected, dtype=dtype), rtol=0, atol=atol)


def test_box_iou_equals_counting_pixels():
    g = torch.Generator().manual_seed(0)

    def random_boxes(n):
        corners = torch.randint(0, 20, (n, 2, 2), generator=g)
        return torch.cat([corners.min(1).values, corners.max(1).values + 1], dim=1)   # (x1, y1, x2, y2), non-empty

    def mask(box):
        m = torch.zeros(20, 20, dtype=torch.bool)
        m[box[1]:box[3], box[0]:box[2]] = True                                 # rows y, columns x
        return m

    a, b = random_boxes(7), random_boxes(5)
    counted = torch.tensor([[float((mask(p) & mask(q)).sum() / (mask(p) | mask(q)).sum()) for q in b] for p in a])
    torch.testing.assert_close(box_iou(a.double(), b.double()), counted.double())
    assert (counted == 0).any() and (counted > 0).any()                        # both kinds of pair were drawn
    torch.testing.assert_close(paired_iou(a[:5].double(), b.double()), box_iou(a[:5].double(), b.double()).diagonal())


def test_box_iou_hand_cases_and_guards():
    iou = lambda a, b: float(box_iou(torch.tensor([a], dtype=torch.float64), torch.tensor([b], dtype=torch.float64)))  # noqa: E731
    assert iou((0, 0, 2, 2), (1, 0, 3, 2)) == pytest.approx(1 / 3)            # half of each: 2 / (4 + 4 - 2)
    assert iou((0, 0, 1, 1), (2, 3, 4, 5)) == 0                               # apart on both axes (not (-1)(-2) = 2)
    assert iou((0, 0, 2, 2), (2, 0, 4, 2)) == 0                               # touching edges
    assert iou((0, 0, 4, 4), (1, 1, 2, 2)) == pytest.approx(1 / 16)           # nested
    with pytest.raises(ValueError, match=r"a must be a tensor of shape \(n, 4\)"):
        box_iou(torch.zeros(2, 3), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="x2 >= x1"):
        box_iou(torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([[1.0, 0, 0, 1]]))   # width, height given as corners
    with pytest.raises(ValueError, match="same number of boxes"):
        paired_iou(torch.zeros(2, 4), torch.zeros(3, 4))


# ------------------------------------------------------------------ models and their input guards
def test_classifiers_refuse_images_of_the_wrong_shape():
    lite = ImageClassifier(EfficientNetLite0(), 1280, 10, size=64)
    assert lite.eval()(torch.zeros(2, 3, 64, 64)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"images must be a tensor of shape \(batch, 3, 64, 64\).*got \(2, 1, 64, 64\)"):
        lite(torch.zeros(2, 1, 64, 64))                                       # grey, not repeated to RGB
    with pytest.raises(ValueError, match=r"\(batch, 3, 64, 64\).*got \(2, 3, 8, 8\)"):
        lite(torch.zeros(2, 3, 8, 8))                                         # not upsampled
    with pytest.raises(ValueError, match=r"\(batch, 3, 64, 64\).*got \(2, 64, 64, 3\)"):
        lite(torch.zeros(2, 64, 64, 3))                                       # channels last (PIL / NumPy order)
    with pytest.raises(ValueError, match=r"\(batch, 3, 64, 64\).*got \(3, 64, 64\)"):
        lite(torch.zeros(3, 64, 64))                                          # one image without its batch axis
    with pytest.raises(ValueError, match="normalised floats"):
        lite(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))
    cfg = ViTConfig(image_size=32, patch_size=8, d_model=16, n_heads=2, n_layers=1)
    vit = ImageClassifier(ViTBackbone(cfg), cfg.d_model, 10, size=32)
    assert vit(torch.zeros(3, 3, 32, 32)).shape == (3, 10)
    with pytest.raises(ValueError, match=r"\(batch, 3, 32, 32\).*got \(3, 3, 64, 64\)"):
        vit(torch.zeros(3, 3, 64, 64))
    boxes = BoxRegressor(32)
    out = boxes(torch.rand(4, 1, 32, 32))
    assert out.shape == (4, 4) and (out[:, 2:] >= out[:, :2]).all() and out.min() >= -0.5
    with pytest.raises(ValueError, match=r"\(batch, 1, 32, 32\).*got \(4, 3, 32, 32\)"):
        boxes(torch.rand(4, 3, 32, 32))
    with pytest.raises(ValueError, match="multiple of 8"):
        BoxRegressor(30)


def test_inputs_refuse_mismatched_label_sets_and_lengths():
    x = torch.zeros(6, 4)
    ok = Inputs((x, [0, 1, 2, 0, 1, 2]), (x[:2], [0, 2]), (x[:3], np.array([1, 1, 0])))
    assert len(ok.test[0]) == 3
    with pytest.raises(ValueError, match=r"test has label\(s\) \[7\].*training label set: \[0, 1, 2\]"):
        Inputs((x, [0, 1, 2, 0, 1, 2]), (x[:2], [0, 2]), (x[:3], torch.tensor([1, 7, 0])))
    with pytest.raises(ValueError, match=r"val has label\(s\) \[3\]"):
        Inputs((x, [0, 1, 2, 0, 1, 2]), (x[:1], [3]), (x[:1], [0]))
    with pytest.raises(ValueError, match="train has 6 inputs but 5 labels"):
        Inputs((x, [0, 1, 2, 0, 1]), (x[:1], [0]), (x[:1], [0]))
    with pytest.raises(ValueError, match=r"test must be an \(inputs, labels\) pair"):
        Inputs((x, [0] * 6), (x[:1], [0]), x)
    # ten digit classes in training, a split that adds an eleventh: refused before any arm runs
    pixels = lambda n: np.zeros((n, 64))  # noqa: E731
    with pytest.raises(ValueError, match=r"test has label\(s\) \[10\]"):
        frozen_curve("digits", Inputs((pixels(20), np.arange(20) % 10), (pixels(10), np.arange(10)), (pixels(2), [3, 10])),
                     None, [1])


def test_recalibration_stores_the_statistics_of_the_images():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, momentum=0.01))
    images = 3 + 2 * torch.randn(40, 3, 5, 5)
    weight = model[0].weight.clone()
    model.eval()
    assert recalibrate_batch_norm(model, images, batch_size=20) == 1
    with torch.no_grad():
        h = model[0](images)
    # the average of the two batches' statistics: the mean exactly, the variance up to the between-batch part
    torch.testing.assert_close(model[1].running_mean, h.mean((0, 2, 3)), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model[1].running_var, h.var((0, 2, 3)), atol=0, rtol=0.05)
    assert model[1].momentum == 0.01 and not model.training and torch.equal(model[0].weight, weight)


def _tiny_classifier():
    torch.manual_seed(0)
    backbone = EfficientNetLite0()
    backbone._fc = nn.Identity()
    return ImageClassifier(backbone, 1280, 3, size=16)


@pytest.mark.parametrize("batch_norm", ["frozen", "recalibrated"])
def test_fine_tune_trains_every_weight_and_handles_batch_norm(batch_norm):
    model = _tiny_classifier()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images, labels = torch.randn(12, 3, 16, 16), torch.arange(12) % 3
    history = fine_tune(model, images, labels, steps=2, lr=1e-3, head_lr=1e-2, batch_norm=batch_norm, batch_size=6)
    assert len(history.steps) == 2
    after = model.state_dict()
    assert not torch.equal(after["backbone._conv_stem.weight"], before["backbone._conv_stem.weight"])
    assert not torch.equal(after["head.weight"], before["head.weight"])
    stats_kept = torch.equal(after["backbone._bn0.running_mean"], before["backbone._bn0.running_mean"])
    assert stats_kept == (batch_norm == "frozen")
    with pytest.raises(ValueError, match="batch_norm must be one of 'frozen', 'recalibrated'"):
        fine_tune(model, images, labels, steps=1, lr=1e-3, batch_norm="train")


def test_frozen_curve_has_every_arm_and_k_and_one_nn_fits_its_training_data():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 10)
    x = rng.normal(size=(30, 6)) + y[:, None]
    data = Inputs((x, y), (x[:6], y[:6]), (x, y))
    records = frozen_curve("toy", data, data, [2, None], draws=2)
    assert {(r.arm, r.labels_per_class) for r in records} == {(a, k) for a in ("linear probe", "logistic regression (pixels)",
                                                                            "1-NN (pixels)") for k in (2, "all")}
    assert len(records) == 3 * (2 + 1)                                        # two draws of k=2, one of "all"
    assert all(r.train_acc == 1.0 for r in records if r.arm == "1-NN (pixels)")


def test_trained_curve_runs_every_draw_also_with_all_labels():
    y = torch.arange(12) % 3
    images = Inputs((torch.randn(12, 3, 16, 16), y), (torch.randn(3, 3, 16, 16), y[:3]), (torch.randn(6, 3, 16, 16), y[:6]))
    seeds = []

    def make(seed):
        seeds.append(seed)
        torch.manual_seed(seed)
        backbone = EfficientNetLite0()
        backbone._fc = nn.Identity()
        return ImageClassifier(backbone, 1280, 3, size=16)

    records = trained_curve("toy", "from scratch", make, images, [1, None], steps={1: 1, "all": 1},
                            batch_size={1: 3, "all": 6}, draws=3, lr=1e-3, batch_norm="recalibrated")
    assert [(r.labels_per_class, r.draw) for r in records] == [(k, d) for k in (1, "all") for d in range(3)]
    assert seeds == [0, 1, 2, 0, 1, 2]                                       # every draw seeds its own model
    assert curve_summary(records).loc["from scratch", "all"].endswith("(3)")
    with pytest.raises(ValueError, match="draws"):
        trained_curve("toy", "x", make, images, [1], steps={1: 1}, batch_size={1: 3}, draws=0, lr=1e-3)


def test_hf_vit_backbone_reads_the_cls_vector_of_a_hugging_face_vit():
    from labkit import zoo
    hf = zoo.build("vit-base-patch16-224", "tiny").eval()                   # ViTForImageClassification, random
    backbone = HFViTBackbone(hf.vit)
    size = hf.config.image_size
    images = torch.randn(2, 3, size, size)
    with torch.no_grad():
        feats = backbone.features(images)
        assert feats.shape == (2, hf.config.hidden_size) and backbone.width == hf.config.hidden_size
        assert torch.allclose(hf.classifier(feats), hf(pixel_values=images).logits, atol=1e-5)  # what HF classifies
    model = ImageClassifier(backbone, backbone.width, 10, size=size)
    with pytest.raises(ValueError, match=rf"\(batch, 3, {size}, {size}\)"):
        model(torch.randn(2, 1, size, size))


def test_batch_norm_shift_is_zero_on_the_data_the_statistics_came_from():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.BatchNorm2d(4))
    images = 2 + torch.randn(64, 3, 6, 6)
    recalibrate_batch_norm(model, images, batch_size=64)                      # statistics of exactly these images
    same = batch_norm_shift(model, images)
    assert list(same.index) == ["1", "3"] and (same["mean |z|"] < 1e-3).all()
    assert np.allclose(same["variance ratio (median)"], 1.0, atol=0.02)
    other = batch_norm_shift(model, images + 3)                               # the same images, shifted
    assert (other.loc["1", "mean |z|"] > 1) and model.training                # mode restored


def _records(rows):
    return [RunRecord("t", arm, k, draw, 1.0, acc, acc, 0.0) for arm, k, draw, acc in rows]


def test_curve_table_verdict_and_figure_follow_the_numbers():
    records = _records([("1-NN (pixels)", 1, 0, 0.60), ("1-NN (pixels)", 1, 1, 0.70), ("linear probe", 1, 0, 0.80),
                        ("linear probe", 1, 1, 0.80), ("1-NN (pixels)", "all", 0, 0.95), ("linear probe", "all", 0, 0.93),
                        ("from scratch", 1, 0, 0.2), ("from scratch", "all", 0, 0.9)])
    table = curve_table(records)
    assert list(table.columns) == ["1", "all"] and table.loc["1-NN (pixels)", "1"] == pytest.approx(0.65)
    assert curve_table(records, how="std").loc["1-NN (pixels)", "1"] == pytest.approx(0.05)
    assert curve_table(records, how="std").loc["linear probe", "all"] == 0            # one draw: no spread, not NaN
    summary = curve_summary(records)
    assert summary.loc["1-NN (pixels)", "1"] == "0.650 ± 0.050 (2)" and summary.loc["linear probe", "all"] == "0.930 ± 0.000 (1)"
    compared = compare_arms(records)
    assert compared.loc["1", "verdict"] == "pretrained wins clearly" and compared.loc["1", "margin (points)"] == 15.0
    assert compared.loc["1", "pretrained spread"] == 0.0 and compared.loc["1", "baseline spread"] == 0.05
    assert bool(compared.loc["1", "beyond spreads"])                                   # 0.60 apart, spreads 0
    close = compare_arms(records + _records([("from scratch", 1, 1, 0.9)]))          # scratch 0.2 and 0.9: ± 0.35
    assert not bool(close.loc["1", "beyond spreads"])
    assert ahead(0.03, "freezing") == "freezing is ahead by 3.0 points"
    assert ahead(-0.03, "freezing") == "freezing is behind by 3.0 points"
    assert ahead(0.01, "freezing") == "level (+1.0 points, within 2)"
    assert how_far(2.84) == "2.8 times further from" and how_far(0.9) == "no further (ratio 0.90) from"
    assert fit_line(records).endswith("; every run fitted its labelled images (>= 0.95)")
    short = records + [RunRecord("t", "from scratch", 5, 0, 0.4, 0.2, 0.2, 0.0)]
    assert fit_line(short) == ("lowest training accuracy over draws and label counts: 1-NN (pixels) 1.000, linear probe "
                               "1.000, from scratch 0.400; from scratch did not fit its labelled images in every run "
                               "(< 0.95): there the step budget stopped it first")
    assert compared.loc["all", "verdict"] == "level (within 5 points)"
    assert compared.loc["all", "from scratch acc"] == 0.9
    assert verdict(-0.05) == "baseline wins clearly" and verdict(0.049) == "level (within 5 points)"
    fig = curve_figure(records, "t", counts={"all": "99 images"})
    assert [t.name for t in fig.data] == list(table.index) and list(fig.data[0].x) == ["1", "all (99 images)"]


def test_image_grid_draws_every_image_and_box():
    fig = image_grid(np.random.rand(12, 8, 8), [str(i) for i in range(12)], cols=6, boxes=np.tile([0.0, 0.0, 0.5, 1.0], (12, 1)))
    assert len(fig.data) == 12 and len(fig.layout.shapes) == 12
    assert fig.layout.shapes[0].x0 == -0.5 and fig.layout.shapes[0].x1 == 3.5 and fig.layout.shapes[0].y1 == 7.5


# ------------------------------------------------------------------ the VAE
def test_binomial_log_prob_and_kl_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 17, (4, 64), generator=g).float()
    logits = torch.randn(4, 64, generator=g)
    reference = torch.distributions.Binomial(total_count=16, logits=logits).log_prob(counts).sum(-1)
    torch.testing.assert_close(binomial_log_prob(counts, logits), reference, atol=1e-4, rtol=1e-5)
    mu, logvar = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    kl = torch.distributions.kl_divergence(torch.distributions.Normal(mu, (0.5 * logvar).exp()),
                                           torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(kl_to_standard_normal(mu, logvar), kl)


def test_vae_loss_is_minus_the_elbo_and_the_baseline_is_exact():
    model = DigitVAE(latent=2, hidden=8)
    counts = torch.randint(0, 17, (5, 64)).float()
    torch.manual_seed(1)
    loss = vae_loss(model(counts), counts)
    torch.manual_seed(1)
    assert loss.item() == pytest.approx(-elbo(model, counts).mean().item(), rel=1e-5)
    assert model.sample(3).shape == (3, 8, 8)
    train = torch.tensor([[0.0, 16.0], [8.0, 16.0]])
    p = torch.tensor([8.0 / 32, 32.0 / 32])                                    # mean count / 16, before smoothing
    prior = 1e-3
    smoothed = (train.sum(0) + prior) / (32 + 2 * prior)
    assert torch.allclose(smoothed, p, atol=1e-4)
    expected = -torch.distributions.Binomial(16, probs=smoothed).log_prob(train).sum(-1).mean()
    assert independent_pixels_nll(train, train, prior=prior) == pytest.approx(float(expected), rel=1e-4)
    with pytest.raises(ValueError, match=r"counts must have shape \(batch, 64\)"):
        model.encode(torch.zeros(2, 8, 8))


# ------------------------------------------------------------------ exercises
@pytest.fixture(scope="module")
def exercises():
    return ch06_2.exercises(EfficientNetLite0().eval())


def _corner_iou(a, b, clamp=True, union=True):
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if clamp:
        w, h = max(w, 0), max(h, 0)
    inter = w * h
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])                             # noqa: E731
    return inter / (area(a) + area(b) - inter) if union else inter / (area(a) + area(b))


def test_iou_exercise_refuses_the_usual_mistakes(exercises):
    ex = exercises["6.2.1"]
    assert ex.check(_corner_iou)
    assert not ex.check(lambda a, b: _corner_iou(a, b, clamp=False))          # product of two negative sides
    assert not ex.check(lambda a, b: _corner_iou(a, b, union=False))          # no overlap subtracted
    assert not ex.check(lambda a, b: _corner_iou(a, a))                       # ignores its second box
    assert not ex.check(lambda a, b: 0.5)


def test_probe_size_exercise(exercises):
    ex = exercises["6.2.2"]
    assert ex.check(1280 * 10 + 10)
    for wrong in (1280 * 10, 1280 * 1000 + 1000, 1280, None):
        assert not ex.check(wrong)


def test_map_side_exercise_measures_the_network(exercises):
    ex = exercises["6.2.3"]
    model = EfficientNetLite0().eval()
    assert [ch06_2.lite0_map_side(model, s) for s in (8, 64, 100, 224)] == [1, 2, 4, 7]
    assert ex.check(lambda size: math.ceil(size / 32))
    assert not ex.check(lambda size: size // 32)                              # floors: 8 -> 0, 100 -> 3
    assert not ex.check(lambda size: round(size / 32))
    assert not ex.check(lambda size: 7)                                       # the answer for 224 only


def test_kl_exercise(exercises):
    ex = exercises["6.2.4"]
    assert ex.check(lambda mu, logvar: 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(-1))
    assert not ex.check(lambda mu, logvar: (mu ** 2 + logvar.exp() - logvar - 1).sum(-1))          # no 1/2
    assert not ex.check(lambda mu, logvar: 0.5 * (mu ** 2 + logvar - torch.log(logvar.abs()) - 1).sum(-1))  # logvar as variance
    assert not ex.check(lambda mu, logvar: 0.5 * (logvar.exp() - logvar - 1).sum(-1))              # ignores mu
    assert not ex.check(lambda mu, logvar: 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).mean(-1))  # mean, not sum
    assert not ex.check(lambda mu, logvar: torch.zeros(len(mu)))
