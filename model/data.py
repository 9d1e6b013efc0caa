"""Benchmark data sets from the data folder (an option, or $VLAE_DATA)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .errors import ModelError

# name -> (file, {split: (array key, slice of it)})
DATASETS = {
    "bmnist": ("binarized_mnist.npz", {"train": ("x_train", slice(None)), "valid": ("x_valid", slice(None)),
                                       "test": ("x_test", slice(None))}),
    # MNIST has no validation split: the last 5,000 training images serve as one.
    "mnist": ("mnist.npz", {"train": ("x_train", slice(None, 55000)), "valid": ("x_train", slice(55000, None)),
                            "test": ("x_test", slice(None))}),
    # CIFAR-10 likewise: the last 5,000 training images serve as validation.
    "cifar": ("cifar10.npz", {"train": ("x_train", slice(None, 45000)), "valid": ("x_train", slice(45000, None)),
                              "test": ("x_test", slice(None))}),
}
_DEFAULT_DIRS = [Path(__file__).resolve().parents[1].parent / "shared" / "data"]


class DataError(ModelError):
    """A data set is missing or malformed; the message says what to do."""


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data folder: the explicit one, else $VLAE_DATA, else ../shared/data beside the repo."""
    if explicit is not None:
        path = Path(explicit)
    elif os.environ.get("VLAE_DATA"):
        path = Path(os.environ["VLAE_DATA"])
    else:
        path = next((p for p in _DEFAULT_DIRS if p.is_dir()), None)
        if path is None:
            raise DataError("no data folder: pass --data-dir DIR or set VLAE_DATA")
    if not path.is_dir():
        raise DataError(f"data folder {path} does not exist")
    return path


def load_split(name: str, split: str, directory: str | os.PathLike | None = None) -> np.ndarray:
    """uint8 images (N, H, W) or (N, H, W, C) of one split of a named data set."""
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    filename, keys = DATASETS[name]
    path = data_dir(directory) / filename
    if not path.is_file():
        raise DataError(f"{name}: {path} is missing (expected {filename} in the data folder)")
    if split not in keys:
        raise DataError(f"{name} has no split {split!r}; splits: {', '.join(keys)}")
    key, part = keys[split]
    with np.load(path, allow_pickle=False) as archive:
        return np.ascontiguousarray(archive[key][part])


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N,H,W) or (N,H,W,C) -> float (N,C,H,W) holding the integer pixel values."""
    x = torch.from_numpy(np.asarray(images))
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    return x.float()
