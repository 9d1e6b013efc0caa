"""The networks on another torch device: the same integers, so files cross between CPU and GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vlae_codec
from vlae_codec import ans, bitsback
from vlae_codec.errors import InputError
from vlae_codec.model import VLAE, VLAEConfig, coding

from conftest import load_test_set, run_cli

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA GPU on this machine: CPU/GPU cross-decode not run")


@pytest.fixture(scope="module")
def digits(model_name):
    """A few test digits of each shipped model."""
    return load_test_set(model_name)[:6]


@pytest.fixture(scope="module")
def grid_cm():
    """A small untrained RGB model with a grid of codes: the block-model path (padded convolutions)."""
    torch.manual_seed(0)
    cfg = VLAEConfig(likelihood="logistic_mixture", channels=3, block=8, height=32, width=32, mixtures=3,
                     latent_dim=4, encoder_channels=(8, 8, 8), encoder_hidden=16, made_hidden=(12,),
                     feature_channels=8, pixel_hidden=16)
    return coding.convert(VLAE(cfg).eval(), torch.randint(0, 256, (32, 3, 32, 32)).float())


def _cross(cm_a: coding.VLAECodingModel, cm_b: coding.VLAECodingModel) -> None:
    """Images coded with either model decode with the other; both write the same words."""
    x = torch.randint(0, 256, (3, 3, 19, 13), generator=torch.Generator().manual_seed(1))
    words = []
    for cm in (cm_a, cm_b):
        stack = ans.Stack()
        bitsback.encode_lossless(stack, cm, x, 2, 2)
        words.append(stack.words())
    assert np.array_equal(words[0], words[1])
    for cm in (cm_a, cm_b):
        assert torch.equal(bitsback.decode_lossless(ans.Stack(words[0]), cm, 3, 19, 13, 2, 2), x)


def _cross_archives(digits: np.ndarray, device_a: str | None, device_b: str) -> None:
    """Archives made on either device are the same bytes and decode to the same pixels on the other."""
    for lossy in (False, True):
        a = vlae_codec.compress(digits, lossy=lossy, effort=2, device=device_a)
        b = vlae_codec.compress(digits, lossy=lossy, effort=2, device=device_b)
        assert a == b
        out = vlae_codec.decompress(a, device=device_b)
        assert np.array_equal(out, vlae_codec.decompress(b, device=device_a))
        if not lossy:
            assert np.array_equal(out, digits)


@needs_cuda
def test_cross_decode_cpu_gpu(digits, grid_cm):
    _cross_archives(digits, "cpu", "cuda")
    _cross(grid_cm, grid_cm.to("cuda"))


def test_explicit_cpu_device_changes_nothing(digits, grid_cm):
    """The device plumbing, run on the CPU: a moved copy codes exactly as the default path does."""
    _cross_archives(digits, None, "cpu")
    moved = grid_cm.to("cpu")
    assert moved is not grid_cm and moved.device == torch.device("cpu")
    _cross(grid_cm, moved)


def test_bad_device_is_refused(tmp_path, bmnist_test):
    for bad in ("nonsense", "cuda:99", "meta"):
        with pytest.raises(InputError, match="device"):
            vlae_codec.compress(bmnist_test[:1], device=bad)
    np.save(tmp_path / "x.npy", bmnist_test[:2])
    vlae_codec.compress_file(tmp_path / "x.npy")
    before = set(tmp_path.iterdir())
    for command, path in (("compress", "x.npy"), ("decompress", "x.vlae")):
        r = run_cli(command, str(tmp_path / path), "-o", str(tmp_path / "out"), "--device", "nonsense")
        assert r.returncode != 0
        assert r.stderr.startswith("vlae-codec: error:") and "device" in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert set(tmp_path.iterdir()) == before
