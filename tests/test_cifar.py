"""The shipped RGB model `cifar`: its coding form against the numpy reference on real images,
and photos of odd sizes through the CLI, exactly."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

import vlae_codec
from vlae_codec import container
from vlae_codec.api import coding_model
from vlae_codec.errors import FormatError
from vlae_codec.model import zoo

from conftest import fixture_photo, load_test_set, run_cli
from reference import Reference
from test_reference import _compare


@pytest.fixture(scope="module")
def cifar_test() -> np.ndarray:
    """A few CIFAR-10 test images, in a fixed random order."""
    return load_test_set("cifar")


@pytest.fixture(scope="module")
def kodak_crop() -> np.ndarray:
    """A 45x37 piece of a Kodak photo: neither side a multiple of the 8-pixel block."""
    return fixture_photo("kodim23-200-300-45x37")


def test_cifar_coding_form_matches_reference(cifar_test, kodak_crop):
    cm, ref = coding_model("cifar"), Reference(zoo.resolve("cifar"))
    pick = np.random.default_rng(0).permutation(len(cifar_test))[:2]
    _compare(cm, ref, cifar_test[pick].transpose(0, 3, 1, 2).astype(np.int64))
    _compare(cm, ref, kodak_crop[None, :21, :13].transpose(0, 3, 1, 2).astype(np.int64))


def _png_round_trip(tmp_path, pixels: np.ndarray, mode: str) -> str:
    """Compress a PNG of `pixels` with the CLI's default model, decompress it, check it is the
    same (and the input untouched); returns the model the CLI picked."""
    Image.fromarray(pixels).save(tmp_path / "in.png")
    original = (tmp_path / "in.png").read_bytes()
    r = run_cli("compress", str(tmp_path / "in.png"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "in.png").read_bytes() == original
    info = json.loads(run_cli("info", str(tmp_path / "in.vlae"), "--json").stdout)
    r = run_cli("decompress", str(tmp_path / "in.vlae"), "-o", str(tmp_path / "back.png"))
    assert r.returncode == 0, r.stderr
    back = Image.open(tmp_path / "back.png")
    assert back.mode == mode and np.array_equal(np.asarray(back), pixels)
    return info["model"]


def test_rgb_png_selects_photo_and_round_trips(tmp_path, kodak_crop):
    assert _png_round_trip(tmp_path, kodak_crop, "RGB") == "photo"


def test_greyscale_photo_selects_photo_grey_and_round_trips(tmp_path, kodak_crop):
    luma = np.asarray(Image.fromarray(kodak_crop).convert("L"))
    assert _png_round_trip(tmp_path, luma, "L") == "photo-grey"


def test_cifar_sized_png_selects_cifar(tmp_path, cifar_test):
    Image.fromarray(cifar_test[7]).save(tmp_path / "thumb.png")
    assert run_cli("compress", str(tmp_path / "thumb.png")).returncode == 0
    assert json.loads(run_cli("info", str(tmp_path / "thumb.vlae"), "--json").stdout)["model"] == "cifar"
    assert run_cli("decompress", str(tmp_path / "thumb.vlae"), "-o", str(tmp_path / "back.png")).returncode == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "back.png")), cifar_test[7])


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


def test_fitted_offsets_make_a_photo_smaller_and_still_round_trip():
    """On a photo the encoder's fitted offsets pay for themselves; the decoder applies them
    from the header, and a file whose offsets were changed no longer decodes."""
    photo = fixture_photo("kodim03-100-200-96x96")[None]  # kodim03.png [100:196, 200:296]
    fitted = vlae_codec.compress(photo)
    plain = vlae_codec.compress(photo, offsets=False)
    header, words = container.unpack(fitted)
    assert len(header.offsets) == 48 and any(header.offsets)
    assert container.unpack(plain)[0].offsets == []
    # 0.6% with the shipped fit (32 crops); 0.6-2.5% with other crops, steps and rates
    assert len(fitted) < 0.995 * len(plain)
    assert np.array_equal(vlae_codec.decompress(fitted), photo)
    assert np.array_equal(vlae_codec.decompress(plain), photo)
    nudged = dataclasses.replace(header, offsets=[o + 8 for o in header.offsets])
    with pytest.raises(FormatError):
        vlae_codec.decompress(container.pack(nudged, words))
    for bad in (header.offsets[:5], [4096] * 48):
        with pytest.raises(FormatError, match="does not fit its model"):
            vlae_codec.decompress(container.pack(dataclasses.replace(header, offsets=bad), words))
