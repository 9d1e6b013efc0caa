"""The shipped RGB model `cifar`: its coding form against the numpy reference on real images,
and photos of odd sizes through the CLI, exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from vlae_codec.api import coding_model
from vlae_codec.model import data, zoo

from conftest import data_file, run_cli
from reference import Reference
from test_reference import _compare


@pytest.fixture(scope="module")
def cifar_test() -> np.ndarray:
    data_file("cifar10.npz")
    return data.load_split("cifar", "test")


@pytest.fixture(scope="module")
def kodak_crop() -> np.ndarray:
    """A 45x37 piece of a Kodak photo: neither side a multiple of the 8-pixel block."""
    path = data_file("kodak/kodim23.png")
    return np.asarray(Image.open(path).convert("RGB"))[200:245, 300:337]


def test_cifar_coding_form_matches_reference(cifar_test, kodak_crop):
    cm, ref = coding_model("cifar"), Reference(zoo.resolve("cifar"))
    pick = np.random.default_rng(0).permutation(len(cifar_test))[:2]
    _compare(cm, ref, cifar_test[pick].transpose(0, 3, 1, 2).astype(np.int64))
    _compare(cm, ref, kodak_crop[None, :21, :13].transpose(0, 3, 1, 2).astype(np.int64))


def test_rgb_png_selects_cifar_and_round_trips(tmp_path, kodak_crop):
    Image.fromarray(kodak_crop).save(tmp_path / "crop.png")
    original = (tmp_path / "crop.png").read_bytes()
    r = run_cli("compress", str(tmp_path / "crop.png"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "crop.png").read_bytes() == original
    info = json.loads(run_cli("info", str(tmp_path / "crop.vlae"), "--json").stdout)
    assert info["model"] == "cifar"
    r = run_cli("decompress", str(tmp_path / "crop.vlae"), "-o", str(tmp_path / "back.png"))
    assert r.returncode == 0, r.stderr
    back = Image.open(tmp_path / "back.png")
    assert back.mode == "RGB" and np.array_equal(np.asarray(back), kodak_crop)


def test_rgb_array_archive_round_trips(tmp_path, cifar_test):
    x = cifar_test[:5]
    np.save(tmp_path / "x.npy", x)
    assert run_cli("compress", str(tmp_path / "x.npy")).returncode == 0
    assert run_cli("decompress", str(tmp_path / "x.vlae"), "-o", str(tmp_path / "back.npy")).returncode == 0
    back = np.load(tmp_path / "back.npy", allow_pickle=False)
    assert back.shape == x.shape and np.array_equal(back, x)


def test_eval_on_rgb_images(tmp_path, cifar_test):
    np.save(tmp_path / "x.npy", cifar_test[:4])
    r = run_cli("eval", "--model", "cifar", "--data", str(tmp_path / "x.npy"), "--samples", "2", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # The coding form and the float model agree to well within a percent on any images.
    assert abs(out["coding_neg_elbo_bits_per_dim"] / out["neg_elbo_bits_per_dim"] - 1) < 0.01


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (9, 2), (3, 4)])
def test_tiny_photos_round_trip(tmp_path, kodak_crop, shape):
    """Photos smaller than one block, and strips narrower than the wavefront lag, are coded like any other."""
    photo = np.ascontiguousarray(kodak_crop[:shape[0], :shape[1]])
    Image.fromarray(photo).save(tmp_path / "p.png")
    assert run_cli("compress", str(tmp_path / "p.png")).returncode == 0
    assert run_cli("decompress", str(tmp_path / "p.vlae"), "-o", str(tmp_path / "back.png")).returncode == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "back.png")), photo)
