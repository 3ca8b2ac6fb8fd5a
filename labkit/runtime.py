"""Where and how a notebook runs: its profile, device, seed and network status.

Every notebook starts with a cell tagged ``parameters`` that holds ``profile = None``
and, beside it, the sizes for each profile. :func:`setup` turns that into one
object the rest of the notebook reads::

    run = setup(profile, seed=0, epochs={"smoke": 1, "cpu": 10, "gpu": 20})
    run.epochs   # the value for the chosen profile

The profile comes, in this order, from the notebook parameter, the
``LABKIT_PROFILE`` environment variable (the book build and the tests set it), or
detection (``gpu`` when CUDA is present, ``cpu`` otherwise).

Offline, most of the zoo's models are tiny randomly initialised stand-ins (``real_weights=False``).
:func:`weights_notice` puts a visible note on the page wherever a result comes from one, and nothing
where the published weights were loaded.
"""
from __future__ import annotations

import html
import os
import random
import socket
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .check import whole_number

PROFILES = ("smoke", "cpu", "gpu")

__all__ = ["PROFILES", "get_profile", "get_device", "seed_everything", "is_offline", "setup", "Run", "headless",
           "weights_notice", "stand_in_notice", "WeightsNotice"]


def get_profile(profile: str | None = None) -> str:
    """Return the profile: the argument, else ``$LABKIT_PROFILE``, else detected."""
    source = "profile"
    if profile is None or profile == "":
        profile = os.environ.get("LABKIT_PROFILE") or None
        source = "LABKIT_PROFILE"
    if profile is None:
        return "gpu" if torch.cuda.is_available() else "cpu"
    name = str(profile).strip().lower()
    if name not in PROFILES:
        raise ValueError(f"{source} must be one of {', '.join(PROFILES)}; got {profile!r}")
    return name


def get_device(prefer: str | None = None) -> torch.device:
    """The best device here (cuda, then mps, then cpu), or ``prefer`` if given."""
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so runs repeat exactly."""
    whole_number("seed", seed, minimum=0)
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))


def headless() -> bool:
    """True where no one can click: papermill, the book build, the tests (they set ``LABKIT_HEADLESS=1``),
    or outside a Jupyter kernel. Widgets are then drawn as a static description instead."""
    if os.environ.get("LABKIT_HEADLESS", "").strip() == "1":
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    ip = get_ipython()
    return ip is None or type(ip).__name__ != "ZMQInteractiveShell"


_OFFLINE_ENV = ("LABKIT_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
_offline_cache: bool | None = None


def is_offline(host: str = "huggingface.co", timeout: float = 1.5) -> bool:
    """True when the Hugging Face hub cannot be used.

    The environment decides first (``HF_HUB_OFFLINE=1`` and friends), so the tests
    never open a socket; otherwise one TCP connection to ``host`` is tried once
    and the answer is cached for the session.
    """
    global _offline_cache
    for var in _OFFLINE_ENV:
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return True
    if _offline_cache is None:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            _offline_cache = False
        except OSError:
            _offline_cache = True
    return _offline_cache


@dataclass
class Run:
    """What :func:`setup` returns: the profile, device, seed, and the picked sizes."""

    profile: str
    device: torch.device
    seed: int
    offline: bool
    sizes: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        sizes = self.__dict__.get("sizes", {})
        if name in sizes:
            return sizes[name]
        raise AttributeError(f"Run has no setting {name!r}; known: {', '.join(sorted(sizes)) or 'none'}")

    def __str__(self) -> str:
        net = "offline" if self.offline else "online"
        return f"profile={self.profile} · device={self.device.type} · {net} · seed={self.seed}"


def pick(profile: str, name: str, value: Any) -> Any:
    """``value`` itself, or ``value[profile]`` when it is a per-profile dict."""
    if isinstance(value, dict) and set(value) & set(PROFILES):
        missing = [p for p in PROFILES if p not in value]
        if missing:
            raise ValueError(f"{name} gives no value for profile(s) {', '.join(missing)}")
        return value[profile]
    return value


def setup(profile: str | None = None, *, seed: int = 0, device: str | None = None,
          quiet: bool = False, **sizes: Any) -> Run:
    """Resolve the profile, seed everything, and pick each size for the profile."""
    name = get_profile(profile)
    seed_everything(seed)
    run = Run(profile=name, device=get_device(device), seed=int(seed), offline=is_offline(),
              sizes={k: pick(name, k, v) for k, v in sizes.items()})
    if not quiet:
        print(run)
    return run


# ----------------------------------------------------------------------------- where the weights came from
_NOTICE_STYLE = ("background:#fff8db;border:1px solid #e0b400;border-left:6px solid #e0b400;color:#2b2b2b;"
                 "padding:0.55em 0.9em;margin:0.6em 0;border-radius:4px;line-height:1.45;font-size:0.95em")
_NOTICE_TITLE_STYLE = "font-weight:600;margin:0 0 0.25em 0;color:#5c4700"


@dataclass
class WeightsNotice:
    """The note :func:`weights_notice` displays: an HTML box (JupyterLab, Colab, the built book) and plain text."""

    names: list[str]
    what: str | None = None   # what on the page comes from the stand-in (default: "the numbers that come from it")
    why: str = "Offline"      # why the stand-in is here
    where: str = "when the notebook runs (or the book is built) with Hugging Face hub access"

    @property
    def text(self) -> str:
        one = len(self.names) == 1
        what = self.what or f"the numbers that come from {'it' if one else 'them'}"
        stand_in = "is a tiny randomly initialised stand-in" if one else "are tiny randomly initialised stand-ins"
        return (f"{self.why}, {_and(self.names)} {stand_in} of the same architecture, not the published weights. "
                f"{what[:1].upper() + what[1:]} show that the code runs, not what the published "
                f"{'model does' if one else 'models do'}. The published weights are loaded {self.where}.")

    def _repr_html_(self) -> str:
        return (f'<div class="labkit-weights-notice admonition note" role="note" style="{_NOTICE_STYLE}">'
                f'<p class="labkit-weights-notice-title" style="{_NOTICE_TITLE_STYLE}">'
                f"Note · not the published weights</p><p style=\"margin:0\">{html.escape(self.text)}</p></div>")

    def __repr__(self) -> str:
        return f"NOTE · not the published weights. {self.text}"


def _and(names: list[str]) -> str:
    if len(names) > 4:
        return f"{', '.join(names[:3])} and {len(names) - 3} other models"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _stand_ins(loaded: Any) -> list[str]:
    """Names of the offline stand-ins in ``loaded`` (one loaded model, or a dict / list of them)."""
    if isinstance(loaded, str):      # the name of a model the notebook replaced by a stand-in itself
        return [loaded]
    if isinstance(loaded, dict):
        loaded = list(loaded.values())
    if isinstance(loaded, (list, tuple)):
        return [name for item in loaded for name in _stand_ins(item)]
    if not hasattr(loaded, "real_weights"):
        raise TypeError("weights_notice: loaded must be what labkit.zoo.load or labkit.transfer.Encoders returns "
                        "(it has .real_weights), a dict or list of them, or the name of a model replaced by a "
                        f"stand-in; got {type(loaded).__name__}")
    if loaded.real_weights:
        return []
    inner = getattr(loaded, "loaded", loaded)          # Encoders wraps the zoo's Pretrained
    if getattr(inner, "source", None) == "random-init":  # random weights asked for (pretrained=False): no stand-in
        return []
    return [str(getattr(loaded, "name", None) or getattr(inner, "name", "this model"))]


def stand_in_notice(loaded: Any, *, what: str | None = None, **wording: str) -> WeightsNotice | None:
    """The note for ``loaded`` when it holds an offline stand-in instead of the published weights, else ``None``.

    ``loaded``: what :func:`labkit.zoo.load` or :class:`labkit.transfer.Encoders` returns (or a dict / list of
    them), or the name of a model the notebook itself replaced by a tiny random one. A model loaded with
    ``pretrained=False`` (random weights on purpose, a "from scratch" arm) is no stand-in. ``what`` names what
    on the page comes from it; ``why`` and ``where`` (keywords) say why the stand-in is there (default
    "Offline") and where the published weights are loaded (default: with Hugging Face hub access).
    """
    names = _stand_ins(loaded)
    return WeightsNotice(list(dict.fromkeys(names)), what, **wording) if names else None


def weights_notice(loaded: Any, *, what: str | None = None, **wording: str) -> None:
    """Show :func:`stand_in_notice`'s note, if there is one: in a notebook an HTML box (JupyterLab, Colab and the
    built book; plain text where HTML is not shown), elsewhere a printed line. Nothing when the weights are real."""
    notice = stand_in_notice(loaded, what=what, **wording)
    if notice is None:
        return
    try:
        from IPython import get_ipython
        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is None:
        print(repr(notice))
    else:
        from IPython.display import display
        display(notice)
