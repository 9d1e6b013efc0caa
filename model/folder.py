"""Training data from a folder of pictures: whole files held out for validation, random square crops."""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .data import DataError

SUFFIXES = {".png", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".webp", ".jpg", ".jpeg"}
VALID_FRACTION = 0.1
VALID_CROPS = 512  # fixed crops of the held-out pictures that score each epoch
CALIBRATION_SEED = 1


def held_out(names: list[str], fraction: float = VALID_FRACTION) -> list[str]:
    """The names held out for validation: the ceil(fraction * n) whose SHA-256 comes first.

    A hash of the name, not of the folder order, so that adding pictures to the folder keeps
    every earlier held-out picture held out unless a new one hashes ahead of it."""
    ranked = sorted(names, key=lambda n: hashlib.sha256(n.encode()).hexdigest())
    return sorted(ranked[:max(1, math.ceil(fraction * len(names)))])


def _read(path: Path, channels: int) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L" if channels == 1 else "RGB"))


@dataclass
class ImageFolder:
    """Pictures of one folder as uint8 arrays (H, W) or (H, W, 3), split into train and held-out."""

    folder: Path
    channels: int
    crop: int
    train: list[np.ndarray]
    valid: list[np.ndarray]
    train_names: list[str]
    valid_names: list[str]

    @classmethod
    def open(cls, folder: str | os.PathLike, channels: int, crop: int) -> "ImageFolder":
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder of images")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)
        usable = {}
        for p in files:
            pixels = _read(p, channels)
            if min(pixels.shape[:2]) >= crop:  # smaller pictures have no crop of this size
                usable[p.name] = pixels
        if len(usable) < 2:
            raise DataError(f"{folder}: need at least 2 images of at least {crop}x{crop} pixels, found {len(usable)}")
        valid_names = held_out(sorted(usable))
        train_names = [n for n in sorted(usable) if n not in valid_names]
        return cls(folder, channels, crop, [usable[n] for n in train_names], [usable[n] for n in valid_names],
                   train_names, valid_names)

    def train_crops(self, count: int, rng: np.random.Generator) -> np.ndarray:
        return _crops(self.train, count, self.crop, rng)

    def valid_crops(self) -> np.ndarray:
        """The same crops every time, so that epochs are compared on equal terms."""
        return _crops(self.valid, VALID_CROPS, self.crop, np.random.default_rng(0))

    @property
    def train_pixels(self) -> int:
        return sum(p.shape[0] * p.shape[1] for p in self.train)


def _crops(pictures: list[np.ndarray], count: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """`count` random size x size crops, each picture drawn in proportion to its crop positions."""
    positions = np.array([(p.shape[0] - size + 1) * (p.shape[1] - size + 1) for p in pictures], dtype=float)
    which = rng.choice(len(pictures), size=count, p=positions / positions.sum())
    out = np.empty((count, size, size) + pictures[0].shape[2:], dtype=np.uint8)
    for k, i in enumerate(which):
        p = pictures[i]
        top = rng.integers(p.shape[0] - size + 1)
        left = rng.integers(p.shape[1] - size + 1)
        out[k] = p[top:top + size, left:left + size]
    return out
