"""From-scratch building blocks and models."""
from .classifier import SequenceClassifier  # noqa: F401
