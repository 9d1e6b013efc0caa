"""Exactness, proved independently: the codec's probabilities equal those of a second
implementation in plain numpy integer arithmetic (tests/reference.py), bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlae_codec import latents
from vlae_codec.api import coding_model
from vlae_codec.model import zoo

from conftest import load_test_set
from reference import Z_BITS, Reference


def _cases(model_name: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    real = load_test_set(model_name)
    top = 1 if int(real.max()) <= 1 else 255
    return {"real": real[rng.permutation(len(real))[:12]],
            "noise": rng.integers(0, top + 1, size=(6, 28, 28)),
            "extremes": np.stack([np.zeros((28, 28), int), np.full((28, 28), top)])}


@pytest.mark.parametrize("case", ["real", "noise", "extremes"])
def test_coding_model_matches_reference(model_name, case):
    cm, ref = coding_model(model_name), Reference(zoo.resolve(model_name))
    x = _cases(model_name)[case]
    xt = torch.from_numpy(x.astype(np.int64))[:, None]

    mu, log_sigma = (t[:, 0] for t in cm.posterior(xt))  # one global code per image
    ref_mu, ref_log_sigma = ref.posterior(x[:, None])
    assert np.array_equal(mu.numpy(), ref_mu) and np.array_equal(log_sigma.numpy(), ref_log_sigma)

    rng = np.random.default_rng(1)
    codes = {"posterior mean": mu,
             "typical": torch.from_numpy(rng.integers(-3 << Z_BITS, 3 << Z_BITS, size=mu.shape)),
             "far out": torch.from_numpy(rng.integers(-20 << Z_BITS, 20 << Z_BITS, size=mu.shape))}
    for name, z in codes.items():
        shift, log_scale = cm.prior_conditionals(z)
        ref_shift, ref_log_scale = ref.prior_conditionals(z.numpy())
        assert np.array_equal(shift.numpy(), ref_shift) and np.array_equal(log_scale.numpy(), ref_log_scale), name
        for i, k in enumerate(cm.lossless_bins):
            if k > 1:
                ours = latents.posterior_freqs(cm, shift[:, i], log_scale[:, i], mu[:, i], log_sigma[:, i], k)
                theirs = ref.posterior_freqs(ref_shift[:, i], ref_log_scale[:, i], ref_mu[:, i], ref_log_sigma[:, i], k)
                assert np.array_equal(ours, theirs), (name, i)

        features = cm.features(z[:, None], 28, 28)
        assert np.array_equal(features.numpy(), ref.features(z.numpy())), name
        params = cm.pixel_params(xt, features)
        ref_params = ref.pixel_params(x[:, None], features.numpy().astype(np.int64))
        assert np.array_equal(params.numpy(), ref_params), name

        flat = params.permute(0, 2, 3, 1).reshape(-1, params.shape[1])
        values = xt.flatten()
        symbols = cm.pixel_symbols(values[:, None])
        theirs = ref.pixel_freqs(flat.numpy(), values.numpy())
        for s in range(cm.pixel_stages):
            ours = cm.pixel_freqs(flat, s, symbols[:s]).numpy()
            assert np.array_equal(ours, theirs[s]), (name, s)
            assert (ours >= 1).all() and (ours.sum(axis=1) == 1 << 24).all()
