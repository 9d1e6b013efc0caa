"""Exactness, proved independently: the codec's probabilities equal those of a second
implementation in plain numpy integer arithmetic (tests/reference.py), bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlae_codec import latents
from vlae_codec.api import coding_model
from vlae_codec.model import VLAE, VLAEConfig, coding, zoo

from conftest import load_test_set
from reference import Z_BITS, Reference


def _cases(model_name: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    real = load_test_set(model_name)[:12]  # already a random sample of the test set
    top = 1 if int(real.max()) <= 1 else 255
    return {"real": real,
            "noise": rng.integers(0, top + 1, size=(6, 28, 28)),
            "extremes": np.stack([np.zeros((28, 28), int), np.full((28, 28), top)])}


def _compare(cm: coding.VLAECodingModel, ref: Reference, x: np.ndarray) -> None:
    """Every probability the coder uses, for images x (N, C, H, W), from both implementations."""
    xt = torch.from_numpy(x.astype(np.int64))
    n, c, h, w = x.shape
    mu, log_sigma = cm.posterior(xt)
    ref_mu, ref_log_sigma = ref.posterior(x)
    assert np.array_equal(mu.numpy(), ref_mu) and np.array_equal(log_sigma.numpy(), ref_log_sigma)

    rng = np.random.default_rng(1)
    codes = {"posterior mean": mu,
             "typical": torch.from_numpy(rng.integers(-3 << Z_BITS, 3 << Z_BITS, size=mu.shape)),
             "far out": torch.from_numpy(rng.integers(-20 << Z_BITS, 20 << Z_BITS, size=mu.shape))}
    d = mu.shape[-1]
    rows = (mu.reshape(-1, d), log_sigma.reshape(-1, d))
    for name, z in codes.items():
        shift, log_scale = cm.prior_conditionals(z.reshape(-1, d))
        ref_shift, ref_log_scale = ref.prior_conditionals(z.reshape(-1, d).numpy())
        assert np.array_equal(shift.numpy(), ref_shift) and np.array_equal(log_scale.numpy(), ref_log_scale), name
        for i, k in enumerate(cm.lossless_bins):
            if k > 1:
                ours = latents.posterior_freqs(cm, shift[:, i], log_scale[:, i], rows[0][:, i], rows[1][:, i], k)
                theirs = ref.posterior_freqs(ref_shift[:, i], ref_log_scale[:, i], rows[0][:, i].numpy(),
                                             rows[1][:, i].numpy(), k)
                assert np.array_equal(ours, theirs), (name, i)

        features = cm.features(z, h, w)
        assert np.array_equal(features.numpy(), ref.features(z.numpy(), h, w)), name
        params = cm.pixel_params(xt, features)
        ref_params = ref.pixel_params(x, features.numpy().astype(np.int64))
        assert np.array_equal(params.numpy(), ref_params), name

        flat = params.permute(0, 2, 3, 1).reshape(-1, params.shape[1])
        values = xt.permute(0, 2, 3, 1).reshape(-1, c)
        symbols = cm.pixel_symbols(values)
        theirs = ref.pixel_freqs(flat.numpy(), values.numpy())
        assert len(theirs) == cm.pixel_stages
        for s in range(cm.pixel_stages):
            ours = cm.pixel_freqs(flat, s, symbols[:s]).numpy()
            assert np.array_equal(ours, theirs[s]), (name, s)
            assert (ours >= 1).all() and (ours.sum(axis=1) == 1 << 24).all()


@pytest.mark.parametrize("case", ["real", "noise", "extremes"])
def test_coding_model_matches_reference(model_name, case):
    _compare(coding_model(model_name), Reference(zoo.resolve(model_name)), _cases(model_name)[case][:, None])


def test_rgb_grid_coding_form_matches_reference(tmp_path):
    """An RGB model with a grid of codes (trained or not, the arithmetic is the same), on images
    whose sides are not multiples of the block."""
    torch.manual_seed(0)
    cfg = VLAEConfig(channels=3, block=8, height=32, width=32, likelihood="logistic_mixture", mixtures=3,
                     latent_dim=4, encoder_channels=(8, 8, 8), encoder_hidden=16, made_hidden=(12,),
                     feature_channels=8, pixel_hidden=16)
    calib = torch.randint(0, 256, (16, 3, 32, 32)).float()
    coding.convert(VLAE(cfg).eval(), calib).save(tmp_path)
    cm, ref = coding.VLAECodingModel.load(tmp_path), Reference(tmp_path)
    rng = np.random.default_rng(2)
    smooth = np.cumsum(rng.integers(-3, 4, size=(2, 3, 21, 13)), axis=3).clip(-100, 100) + 128
    for x in (rng.integers(0, 256, size=(3, 3, 21, 13)), smooth, np.stack([np.zeros((3, 9, 17)), np.full((3, 9, 17), 255)])):
        _compare(cm, ref, x.astype(np.int64))
