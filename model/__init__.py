"""The VLAE probability model: networks, likelihoods, training, evaluation and the model zoo."""

from .config import VLAEConfig
from .vlae import VLAE

__all__ = ["VLAE", "VLAEConfig"]
