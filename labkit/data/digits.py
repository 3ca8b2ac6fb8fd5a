"""scikit-learn's handwritten digits, split and upsampled for ImageNet models; shapes with boxes.

Data card (digits)
------------------
* **What**: the 1,797 handwritten digits scikit-learn ships (``sklearn.datasets.load_digits``,
  a copy of the UCI "Optical Recognition of Handwritten Digits" test set): 8 x 8 images, each pixel
  a count from 0 to 16 of the "on" pixels in a 4 x 4 block of a 32 x 32 bitmap, white ink on black;
  labels 0-9, about 180 per class. Written by 43 people (30 for UCI's training part, 13 for its
  test part); scikit-learn does not say who wrote which image, so a random split can put one
  writer on both sides (the numbers below may be slightly optimistic for a new writer).
* **Splits** (:func:`load_digit_splits`): one fixed, stratified split (seed 0): 60% train, 10%
  validation, 30% test. "k labels per class" (:func:`labels_per_class`) draws k training images of
  every class; every arm of an experiment gets the same draw.
* **For an ImageNet model** (:func:`upsample`): 8 x 8 grey -> ``size`` x ``size`` (bilinear), the
  grey value repeated on R, G and B, on the 0-255 scale and normalised like EfficientNet-Lite's
  training images, ``(pixel - 127) / 128``.

Data card (shapes)
------------------
* **What** (:func:`make_shapes`): one filled square, disc or triangle per grey image, at a random
  place and size, brighter than a background that is a random smooth ramp plus Gaussian noise;
  the target is the shape's box ``(x1, y1, x2, y2)`` as fractions of the image side.
* **Shortcut checks**: on a clean black background "bounding box of the bright pixels" is exact,
  so the ramp, the noise and a random contrast make that rule imperfect (chapter 6.2 scores it as
  the classical baseline); shapes and sizes are drawn independently of the position.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..check import number, whole_number

__all__ = ["DIGIT_SIDE", "DIGIT_MAX", "Split", "Splits", "load_digit_splits", "class_rows", "labels_per_class",
           "upsample", "PHOTOS", "photo_patches", "SHAPES", "Shapes", "make_shapes"]

DIGIT_SIDE = 8      # load_digits images are 8 x 8
DIGIT_MAX = 16      # and their pixels count from 0 to 16
LITE_MEAN, LITE_STD = 127.0, 128.0   # EfficientNet-Lite's normalisation (labkit.data.images)


@dataclass(frozen=True)
class Split:
    """Images (n, 8, 8) with pixels 0..16 and their labels (n,), plus the indices into load_digits."""
    images: np.ndarray
    labels: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, rows: np.ndarray) -> "Split":
        return Split(self.images[rows], self.labels[rows], self.index[rows])

    def pixels(self) -> np.ndarray:
        """(n, 64) raw pixel vectors: what the classical baselines read."""
        return self.images.reshape(len(self), -1)


@dataclass(frozen=True)
class Splits:
    train: Split
    val: Split
    test: Split

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def shrink(self, per_class: int | None, seed: int = 0) -> "Splits":
        """The same splits with at most ``per_class`` images of each class in each (None: unchanged); for quick runs."""
        if per_class is None:
            return self
        return Splits(*(labels_per_class(s, min(per_class, int(np.bincount(s.labels).min())), seed)
                        for s in (self.train, self.val, self.test)))


def load_digit_splits(seed: int = 0, val: float = 0.1, test: float = 0.3) -> Splits:
    """The fixed stratified train/validation/test split of the 1,797 digits (no download: they ship with scikit-learn)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    number("val", val, minimum=0, maximum=0.5, open_low=True)
    number("test", test, minimum=0, maximum=0.5, open_low=True)
    digits = load_digits()
    images, labels = digits.images.astype(np.float32), digits.target.astype(np.int64)
    index = np.arange(len(labels))
    rest, test_idx = train_test_split(index, test_size=test, stratify=labels, random_state=seed)
    train_idx, val_idx = train_test_split(rest, test_size=val / (1 - test), stratify=labels[rest], random_state=seed)
    part = lambda idx: Split(images[idx], labels[idx], idx)  # noqa: E731
    return Splits(part(np.sort(train_idx)), part(np.sort(val_idx)), part(np.sort(test_idx)))


def class_rows(labels: np.ndarray, k: int | None, seed: int = 0) -> np.ndarray:
    """Sorted row numbers of ``k`` examples of every class in ``labels`` (seeded); ``k=None``: every row."""
    labels = np.asarray(labels)
    if k is None:
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    whole_number("k (labels per class)", k, minimum=1, maximum=int(counts.min()))
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c in classes]))


def labels_per_class(split: Split, k: int | None, seed: int = 0) -> Split:
    """``k`` images of every class drawn from ``split`` (seeded); ``k=None`` keeps them all."""
    return split.take(class_rows(split.labels, k, seed))


def upsample(images: np.ndarray | torch.Tensor, size: int = 64, *, side: int = DIGIT_SIDE,
             maximum: float = DIGIT_MAX) -> torch.Tensor:
    """(n, side, side) grey images with pixels 0..maximum -> (n, 3, size, size) normalised for EfficientNet-Lite.

    Bilinear interpolation (a blurred, larger digit: no new detail appears), grey repeated on the
    three colour channels, 0..maximum rescaled to 0..255, then ``(pixel - 127) / 128`` as in ImageNet
    training of the Lite models. The defaults fit ``load_digits`` (8 x 8, pixels 0..16).
    """
    whole_number("size", size, minimum=side, maximum=512)
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.dim() != 3 or tuple(x.shape[1:]) != (side, side):
        raise ValueError(f"images must have shape (n, {side}, {side}): grey images with pixels 0..{maximum:g} "
                         f"(for digits: load_digits().images); got {tuple(x.shape)}")
    if len(x) and (x.min() < 0 or x.max() > maximum):
        raise ValueError(f"pixels must lie in 0..{maximum:g}; got {float(x.min()):g}..{float(x.max()):g}")
    x = x.unsqueeze(1) * (255.0 / maximum)                                     # (n, 1, side, side), 0..255
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return ((x - LITE_MEAN) / LITE_STD).expand(-1, 3, -1, -1).contiguous()    # (n, 3, size, size)


# ------------------------------------------------------------------ photo patches
PHOTOS = ("china.jpg", "flower.jpg")
PATCH_MEAN, PATCH_STD = 127.0, 48.0   # every patch is brought to this grey mean and spread


def photo_patches(side: int = 32, val_from: float = 0.5, test_from: float = 0.6, normalise: bool = True) -> Splits:
    """Grey ``side`` x ``side`` patches of scikit-learn's two sample photos, labelled by photo (0 temple, 1 flower).

    Data card: the photos are ``load_sample_images()`` (427 x 640 RGB, CC BY 2.0). Patches tile each
    photo without overlap. Colour is dropped (luminance) and each patch is shifted and scaled to grey
    mean 127 and spread 48, so neither colour nor brightness nor contrast gives the photo away; what is
    left is texture and shape. Split by columns: patches left of ``val_from`` of the width train, those
    between ``val_from`` and ``test_from`` validate, those right of it test, so no test patch shares a
    pixel with a training patch. Limits: two scenes, one camera each; a toy task, but real pixels.
    ``Split.index`` holds (photo, row, column) of each patch's top-left corner as photo * 10^6 + row * 10^3 + column.
    """
    from .images import sample_photos
    whole_number("side", side, minimum=8, maximum=128)
    number("val_from", val_from, minimum=0.1, maximum=0.9)
    number("test_from", test_from, minimum=val_from, maximum=0.9)
    parts: dict[str, list] = {"train": [], "val": [], "test": []}
    photos = sample_photos()
    for label, name in enumerate(PHOTOS):
        grey = photos[name].astype(np.float64) @ np.array([0.299, 0.587, 0.114])   # (427, 640) luminance
        h, w = grey.shape
        for top in range(0, h - side + 1, side):
            for left in range(0, w - side + 1, side):
                patch = grey[top:top + side, left:left + side]
                if normalise:
                    patch = PATCH_MEAN + PATCH_STD * (patch - patch.mean()) / max(patch.std(), 1.0)
                where = "train" if left + side <= val_from * w else "val" if left + side <= test_from * w else "test"
                if left < val_from * w < left + side or left < test_from * w < left + side:
                    continue                                                    # straddles a border: dropped
                parts[where].append((np.clip(patch, 0, 255), label, label * 10**6 + top * 10**3 + left))
    split = lambda rows: Split(np.stack([r[0] for r in rows]).astype(np.float32),  # noqa: E731
                               np.array([r[1] for r in rows], np.int64), np.array([r[2] for r in rows]))
    return Splits(split(parts["train"]), split(parts["val"]), split(parts["test"]))


# ------------------------------------------------------------------ shapes with boxes
SHAPES = ("square", "disc", "triangle")


@dataclass(frozen=True)
class Shapes:
    """Grey images (n, 1, size, size) in [0, 1], boxes (n, 4) as (x1, y1, x2, y2) fractions, shape ids (n,)."""
    images: torch.Tensor
    boxes: torch.Tensor
    kinds: torch.Tensor

    def __len__(self) -> int:
        return len(self.boxes)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, boxes): a data set for ``labkit.train.fit``."""
        return self.images, self.boxes


def _shape_mask(kind: str, yy: np.ndarray, xx: np.ndarray, x1: float, y1: float, side: float) -> np.ndarray:
    """Pixels (centres at i + 0.5) inside the shape whose box is [x1, x1 + side] x [y1, y1 + side]."""
    cx, cy, r = x1 + side / 2, y1 + side / 2, side / 2
    u, v = xx + 0.5, yy + 0.5
    if kind == "square":
        return (u >= x1) & (u <= x1 + side) & (v >= y1) & (v <= y1 + side)
    if kind == "disc":
        return (u - cx) ** 2 + (v - cy) ** 2 <= r ** 2
    # triangle: apex at the top centre, base along the bottom edge
    t = (v - y1) / side                                   # 0 at the apex, 1 at the base
    return (t >= 0) & (t <= 1) & (np.abs(u - cx) <= t * r)


def make_shapes(n: int, size: int = 32, seed: int = 0, noise: float = 0.15,
                min_side: float = 0.25, max_side: float = 0.7) -> Shapes:
    """``n`` images of one random shape each, on a noisy ramp, with its box (see the data card)."""
    whole_number("n", n)
    whole_number("size", size, minimum=8, maximum=256)
    number("noise", noise, minimum=0, maximum=1)
    number("min_side", min_side, minimum=0.05, maximum=1, open_low=True)
    number("max_side", max_side, minimum=min_side, maximum=1)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    images = np.empty((n, size, size), np.float32)
    boxes = np.empty((n, 4), np.float32)
    kinds = rng.integers(len(SHAPES), size=n)
    for i in range(n):
        side = rng.uniform(min_side, max_side) * size
        x1, y1 = rng.uniform(0, size - side, size=2)
        gx, gy, base = rng.uniform(-0.3, 0.3, size=3)      # the background ramp: a random tilt and level
        background = 0.35 + base / 2 + gx * (xx / size - 0.5) + gy * (yy / size - 0.5)
        contrast = rng.uniform(0.25, 0.6)
        mask = _shape_mask(SHAPES[kinds[i]], yy, xx, x1, y1, side)
        image = background + contrast * mask + rng.normal(0, noise, size=(size, size))
        images[i] = np.clip(image, 0, 1)
        boxes[i] = np.array([x1, y1, x1 + side, y1 + side]) / size
    return Shapes(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(boxes), torch.from_numpy(kinds))
