"""labkit: the helper package of the lab book. Notebooks tell the story; labkit does the work."""
from .runtime import PROFILES, get_device, get_profile, is_offline, seed_everything, setup  # noqa: F401
from .source import show_source  # noqa: F401

__version__ = "0.1.0"
