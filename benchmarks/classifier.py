"""A small MNIST digit classifier, the judge of lossy reconstructions: does the class survive?

Trained on MNIST's training images (8-bit) on first use and cached under
benchmarks/results/cache/ (never committed). Binary images are scaled to 0/255.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vlae_codec.model import data

CACHE = Path(__file__).resolve().parent / "results" / "cache" / "classifier.safetensors"


def _net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 49, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def _input(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images.astype(np.float32))
    if images.max() <= 1:
        x = x * 255
    return (x[:, None] / 255 - 0.1307) / 0.3081


def load(data_dir: str | None = None, epochs: int = 2) -> nn.Module:
    """The classifier, trained now if it is not cached."""
    net = _net()
    if CACHE.is_file():
        net.load_state_dict(load_file(str(CACHE)))
        return net.eval()
    path = data.data_dir(data_dir) / "mnist.npz"
    with np.load(path, allow_pickle=False) as z:
        x, y = z["x_train"], torch.from_numpy(z["y_train"].astype(np.int64))
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for epoch in range(epochs):
        order = np.random.default_rng(epoch).permutation(len(x))
        for i in range(0, len(x), 128):
            idx = order[i:i + 128]
            loss = nn.functional.cross_entropy(net(_input(x[idx])), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    save_file(net.state_dict(), str(CACHE))
    return net.eval()


@torch.no_grad()
def predict(net: nn.Module, images: np.ndarray) -> np.ndarray:
    return np.concatenate([net(_input(images[i:i + 1000])).argmax(1).numpy() for i in range(0, len(images), 1000)])


def accuracy(predicted: np.ndarray, data_dir: str | None = None) -> float:
    """Share of the first MNIST test digits whose predicted class (in test-set order) is their label."""
    with np.load(data.data_dir(data_dir) / "mnist.npz", allow_pickle=False) as z:
        return float(np.mean(predicted == z["y_test"][:len(predicted)]))
