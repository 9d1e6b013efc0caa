"""Shared fixtures: data folder, small images, a tiny random model, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vlae_codec.model import VLAE, VLAEConfig, data

torch.set_num_threads(1)


def data_file(name: str) -> Path:
    try:
        path = data.data_dir() / name
    except data.DataError as e:
        pytest.skip(f"data folder missing: {e}")
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return path


TEST_FILES = {"bmnist": "binarized_mnist.npz", "mnist": "mnist.npz"}


def load_test_set(name: str) -> np.ndarray:
    """A shipped model's test set (skips when the data folder lacks it)."""
    data_file(TEST_FILES[name])
    return data.load_split(name, "test")


@pytest.fixture(scope="session")
def bmnist_test() -> np.ndarray:
    return load_test_set("bmnist")


@pytest.fixture(scope="module", params=sorted(TEST_FILES))
def model_name(request) -> str:
    """Each shipped model in turn, for tests that hold for all of them."""
    return request.param


@pytest.fixture
def tiny_config() -> VLAEConfig:
    return VLAEConfig(latent_dim=8, encoder_channels=(8, 8, 8), encoder_hidden=16, made_hidden=(24,),
                      feature_channels=8, pixel_hidden=16, window_rows=2, window_half_width=2)


@pytest.fixture
def tiny_model(tiny_config) -> VLAE:
    torch.manual_seed(0)
    return VLAE(tiny_config).eval()


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The installed command, as a user runs it."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "vlae_codec.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=900)
