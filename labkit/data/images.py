"""Images for the vision models: ImageNet's class names, two real photos, and preprocessing.

* :func:`imagenet_classes` -- the 1,000 ImageNet-1k category names, in class-index order
  (the list torchvision uses, shipped here as ``imagenet_classes.txt``).
* :func:`sample_photos` -- the two photos scikit-learn ships (``load_sample_images``): a
  temple in China and a flower, 427 x 640 RGB each.
* :func:`preprocess` -- centre crop, resize and normalise, as EfficientNet's evaluation does.
* :func:`top_classes` -- logits -> the k most likely class names with their probabilities.

Normalisation matters: a network sees numbers, and weights trained on one scale of input
give confident nonsense on another. EfficientNet-Lite was trained on ``(pixel - 127) / 128``
("inception-style", roughly [-1, 1]; it quantises better), not on ImageNet's per-channel
mean and standard deviation that most PyTorch models use; both are offered here so the
difference can be measured.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F

from ..check import one_of, whole_number

__all__ = ["NORMALISATIONS", "imagenet_classes", "sample_photos", "preprocess", "top_classes"]

# (mean, std) per RGB channel, on the 0..255 pixel scale.
NORMALISATIONS = {
    "lite": ((127.0, 127.0, 127.0), (128.0, 128.0, 128.0)),            # EfficientNet-Lite, MobileNet
    "imagenet": ((0.485 * 255, 0.456 * 255, 0.406 * 255),              # torchvision, ResNet, ViT...
                 (0.229 * 255, 0.224 * 255, 0.225 * 255)),
}
CROP_PADDING = 32   # evaluation crops the central 224 / (224 + 32) = 87.5% of the shorter side


@lru_cache(maxsize=1)
def _classes() -> tuple[str, ...]:
    text = resources.files("labkit.data").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    names = tuple(line for line in text.splitlines() if line)
    if len(names) != 1000:
        raise RuntimeError(f"imagenet_classes.txt should list 1000 classes; it lists {len(names)}")
    return names


def imagenet_classes() -> list[str]:
    """The 1,000 ImageNet-1k class names; ``imagenet_classes()[i]`` is the name of logit ``i``."""
    return list(_classes())


def sample_photos() -> dict[str, np.ndarray]:
    """scikit-learn's two bundled photos, ``{"china.jpg": temple, "flower.jpg": flower}``.

    Each is a (427, 640, 3) uint8 RGB array (CC BY 2.0, see ``load_sample_images().DESCR``).
    Reading the JPEGs needs Pillow.
    """
    try:
        from sklearn.datasets import load_sample_images
        bunch = load_sample_images()
    except ImportError as e:
        raise ModuleNotFoundError("sample_photos reads JPEG files with Pillow: pip install pillow",
                                  name="PIL") from e
    return {path.replace("\\", "/").rsplit("/", 1)[-1]: image
            for path, image in zip(bunch.filenames, bunch.images)}


def preprocess(images: np.ndarray | list[np.ndarray], size: int = 224, normalisation: str = "lite") -> torch.Tensor:
    """(H, W, 3) uint8 RGB image(s) -> (batch, 3, size, size) float tensor, ready for the model.

    Evaluation preprocessing of EfficientNet: crop the central square of side
    ``size / (size + 32)`` of the shorter side, resize it to ``size`` (bicubic, antialiased),
    then normalise with ``NORMALISATIONS[normalisation]``: "lite" for EfficientNet-Lite,
    "imagenet" for models trained with ImageNet's mean and std.
    """
    whole_number("size", size, minimum=8)
    mean, std = NORMALISATIONS[one_of("normalisation", normalisation, NORMALISATIONS)]
    batch = []
    for image in ([images] if isinstance(images, np.ndarray) else images):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"an image must be an (height, width, 3) RGB array; got shape {image.shape}")
        h, w = image.shape[:2]
        crop = int(size / (size + CROP_PADDING) * min(h, w))
        top, left = (h - crop + 1) // 2, (w - crop + 1) // 2
        x = torch.as_tensor(np.ascontiguousarray(image[top:top + crop, left:left + crop]), dtype=torch.float32)
        x = x.permute(2, 0, 1).unsqueeze(0)                              # (1, 3, crop, crop), 0..255
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
        batch.append(x.clamp(0, 255))
    x = torch.cat(batch)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def top_classes(logits: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
    """(batch, 1000) logits -> for each image, the k most probable (class name, probability)."""
    names = _classes()
    if logits.dim() != 2 or logits.shape[1] != len(names):
        raise ValueError(f"logits must have shape (batch, {len(names)}); got {tuple(logits.shape)}")
    whole_number("k", k, minimum=1, maximum=len(names))
    probs, idx = logits.detach().float().softmax(dim=-1).topk(k, dim=-1)
    return [[(names[i], p) for i, p in zip(row_i.tolist(), row_p.tolist())] for row_i, row_p in zip(idx, probs)]
