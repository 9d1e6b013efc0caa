"""Shared fixtures: the shipped test data, small images, a tiny random model, and a CLI runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vlae_codec.model import VLAE, VLAEConfig, data

torch.set_num_threads(1)
# The commands the tests start run single-threaded too, unless told otherwise (several tests pass
# --threads): several OpenMP threads on a busy machine spin against each other and run many times
# slower, and a test's result never depends on the thread count.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Samples of the test sets and photo crops, committed with the tests (tests/fixtures/make.py
# made them): the default suite needs nothing outside the repository.
FIXTURES = Path(__file__).resolve().parent / "fixtures"
DIGIT_MODELS = ("bmnist", "mnist")
_full_data: Path | str = "not looked up"  # the full data folder, or why there is none


def pytest_addoption(parser):
    parser.addoption("--full-data", default=None, metavar="DIR",
                     help="The full data folder, for tests marked full_data [default: $VLAE_DATA or ../shared/data].")


def pytest_configure(config):
    # The full data folder is looked up as the user had it; everything the tests run then sees
    # the fixtures as its data folder (subprocesses too), so no test reads ../shared by accident.
    global _full_data
    try:
        _full_data = data.data_dir(config.getoption("--full-data"))
    except data.DataError as e:
        _full_data = str(e)
    os.environ["VLAE_DATA"] = str(_fixture_data_folder())


def pytest_unconfigure(config):
    shutil.rmtree(fixture_data(), ignore_errors=True)


def _fixture_data_folder() -> Path:
    """The fixtures in the data folder's layout, in a temporary folder: each data set's sample
    strip as its .npz file (the test split only), and the photo crops."""
    folder = Path(tempfile.mkdtemp(prefix="vlae-fixtures-"))
    for name, (filename, _) in data.DATASETS.items():
        strip = np.asarray(Image.open(FIXTURES / "samples" / f"{name}.png"))
        side = strip.shape[0]  # the images are square, side by side
        np.savez(folder / filename, x_test=np.stack(np.split(strip, strip.shape[1] // side, axis=1)))
    (folder / "crops").symlink_to(FIXTURES / "crops")
    return folder


def fixture_data() -> Path:
    """The data folder the tests run with (see pytest_configure)."""
    return Path(os.environ["VLAE_DATA"])


def load_test_set(name: str) -> np.ndarray:
    """A fixed random sample (100 images) of a data set's test set, shipped in tests/fixtures."""
    return data.load_split(name, "test", fixture_data())


def fixture_photo(stem: str) -> np.ndarray:
    """An RGB photo crop shipped in tests/fixtures/crops, by file stem."""
    return np.asarray(Image.open(FIXTURES / "crops" / f"{stem}.png").convert("RGB"))


def full_test_set(name: str) -> np.ndarray:
    """A data set's whole test set from the full data folder (only for tests marked full_data)."""
    if isinstance(_full_data, str):
        pytest.skip(f"full data folder missing: {_full_data}")
    try:
        return data.load_split(name, "test", _full_data)
    except data.DataError as e:
        pytest.skip(f"full data set missing: {e}")


@pytest.fixture(scope="session")
def bmnist_test() -> np.ndarray:
    """The binarized MNIST test digits shipped with the tests."""
    return load_test_set("bmnist")


@pytest.fixture(scope="module", params=DIGIT_MODELS)
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
