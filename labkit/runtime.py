"""Where and how a notebook runs: its profile, device, seed and network status.

Every notebook starts with a cell tagged ``parameters`` that holds ``profile = None``
and, beside it, the sizes for each profile. :func:`setup` turns that into one
object the rest of the notebook reads::

    run = setup(profile, seed=0, epochs={"smoke": 1, "cpu": 10, "gpu": 20})
    run.epochs   # the value for the chosen profile

The profile comes, in this order, from the notebook parameter, the
``LABKIT_PROFILE`` environment variable (the book build and the tests set it), or
detection (``gpu`` when CUDA is present, ``cpu`` otherwise).
"""
from __future__ import annotations

import os
import random
import socket
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .check import whole_number

PROFILES = ("smoke", "cpu", "gpu")

__all__ = ["PROFILES", "get_profile", "get_device", "seed_everything", "is_offline", "setup", "Run", "headless"]


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
