"""Fast checks of the BB-ANS baseline's coding form on untrained tiny models (run: python -m pytest -q benchmarks/bbans/test_bbans.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlae_codec import ans, bitsback
from vlae_codec.accounting import coding_neg_elbo

from benchmarks.bbans.coding import MLPCodingModel, convert
from benchmarks.bbans.mlp_vae import MLPConfig, MLPVAE
from benchmarks.bbans.measure import rate_vs_count

CONFIGS = {"bernoulli": MLPConfig(hidden=16, latent_dim=6),
           "logistic_mixture": MLPConfig(likelihood="logistic_mixture", mixtures=2, hidden=16, latent_dim=6)}


def images(cfg: MLPConfig, n: int, seed: int) -> torch.Tensor:
    top = 2 if cfg.likelihood == "bernoulli" else 256
    return torch.from_numpy(np.random.default_rng(seed).integers(0, top, size=(n, 1, cfg.height, cfg.width)))


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def coding_model(request) -> MLPCodingModel:
    cfg = CONFIGS[request.param]
    torch.manual_seed(0)
    model = MLPVAE(cfg)
    with torch.no_grad():
        # Narrow posteriors, so that latent dimensions get many bins and bits-back has work to do.
        model.encoder.out.bias[cfg.latent_dim:] = -3.0
    return convert(model, images(cfg, 64, 0).float())


def test_tables_cover_every_bin_count(coding_model):
    assert max(coding_model.lossless_bins) > 1
    for k in set(coding_model.lossless_bins) | set(coding_model.lossy_bins):
        assert len(coding_model.bin_centers(k)) == k
        if k > 1:
            assert len(coding_model.bin_edges(k)) == k - 1
    for name in ("exp", "phi", "logistic", "mix_weight", "sigmoid"):
        assert name in coding_model.tables


def test_pixel_tables_are_complete(coding_model):
    x = images(coding_model.cfg, 3, 1)
    z, _ = coding_model.posterior(x)
    params = coding_model.features(z, 28, 28).permute(0, 2, 3, 1).reshape(-1, coding_model.cfg.params_per_pixel)
    symbols = coding_model.pixel_symbols(x.permute(0, 2, 3, 1).reshape(-1, 1))
    for s in range(coding_model.pixel_stages):
        freqs = coding_model.pixel_freqs(params, s, symbols[:s])
        assert (freqs >= 1).all() and (freqs.sum(dim=1) == 1 << 24).all()


def test_lossless_round_trip_any_batch(coding_model, tmp_path):
    x = images(coding_model.cfg, 5, 2)
    words = {}
    for batch in (2, 5):
        stack = ans.Stack()
        info = bitsback.encode_lossless(stack, coding_model, x, 2, batch)
        words[batch] = stack.words()
        # At most the guard's 33 bits (ans.GUARD) and the coder's 64-bit state above the information.
        assert info.total.sum() <= 32 * len(words[batch]) <= info.total.sum() + 33 + 64
    assert np.array_equal(words[2], words[5])
    coding_model.save(tmp_path)
    loaded = MLPCodingModel.load(tmp_path)
    for model, batch in ((coding_model, 2), (loaded, 5), (loaded, 1)):
        back = bitsback.decode_lossless(ans.Stack(words[2]), model, 5, 28, 28, 2, batch)
        assert torch.equal(back, x)


def test_accounting_and_rate_vs_count(coding_model):
    x = images(coding_model.cfg, 5, 3)
    info = coding_neg_elbo(coding_model, x)
    assert info.total.shape == (5,) and np.isfinite(info.total).all()
    rates = rate_vs_count(coding_model, x, counts=(1, 5))
    assert set(rates) == {1, 5} and all(r > 0 for r in rates.values())
