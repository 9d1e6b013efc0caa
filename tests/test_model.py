"""The float VLAE: causality, MADE's ordering, the importance-sampled bound, save/load, training."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vlae_codec.model import VLAE, zoo
from vlae_codec.model.decoder import window_mask
from vlae_codec.model.grow import grow, grow_run
from vlae_codec.model.prior import made_masks
from vlae_codec.model.train import TrainOptions, free_bits_nats, train, use_bf16


def test_decoder_is_causal(tiny_model):
    """Changing pixel j never changes the distribution of any pixel before j in raster order."""
    cfg = tiny_model.cfg
    g = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.full((1, 1, cfg.height, cfg.width), 0.3), generator=g)
    z = torch.randn(1, cfg.latent_dim, generator=g)
    base = tiny_model.decoder(z, x)[0, 0].flatten()
    n = cfg.height * cfg.width
    for j in range(0, n, 7):
        flipped = x.clone().view(-1)
        flipped[j] = 1 - flipped[j]
        out = tiny_model.decoder(z, flipped.view_as(x))[0, 0].flatten()
        changed = (out != base).nonzero().flatten()
        assert changed.numel() == 0 or changed.min() > j, f"pixel {j} changed pixel {changed.min()}"


def test_window_is_what_the_docs_say(tiny_config):
    """Flipping a pixel changes exactly the pixels whose documented window contains it."""
    torch.manual_seed(0)
    model = VLAE(tiny_config).eval()
    r, w = tiny_config.window_rows, tiny_config.window_half_width
    x = torch.zeros(1, 1, 28, 28)
    z = torch.zeros(1, tiny_config.latent_dim)
    base = model.decoder(z, x)[0, 0]
    x[0, 0, 10, 10] = 1
    changed = set(map(tuple, (model.decoder(z, x)[0, 0] != base).nonzero().tolist()))
    expected = {(10 + dy, 10 + dx) for dy in range(1, r + 1) for dx in range(-w, w + 1)}
    expected |= {(10, 10 + dx) for dx in range(1, w + 1)}
    assert changed == expected
    assert window_mask(r, w).sum() == r * (2 * w + 1) + w


def test_bf16_autocast_keeps_the_elbo_terms_in_float32():
    """Mixed precision rounds the networks' insides, not the ELBO: its terms stay float32 and close."""
    from vlae_codec.model import VLAEConfig

    torch.manual_seed(0)
    cfg = VLAEConfig(likelihood="logistic_mixture", channels=3, block=8, height=32, width=32, mixtures=3,
                     latent_dim=4, encoder_channels=(8, 8, 8), encoder_hidden=16, made_hidden=(12,),
                     feature_channels=8, pixel_hidden=32)
    model = VLAE(cfg)
    x = torch.randint(0, 256, (4, 3, 32, 32)).float()
    torch.manual_seed(1)
    exact = model.elbo_terms(x)
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model.elbo_terms(x)
    for key in ("recon", "kl", "neg_elbo"):
        assert mixed[key].dtype == torch.float32
    assert torch.allclose(mixed["neg_elbo"], exact["neg_elbo"], rtol=1e-2)
    assert not use_bf16("fp32", torch.device("cpu")) and use_bf16("bf16", torch.device("cpu"))
    with pytest.raises(ValueError, match="precision"):
        use_bf16("fp16", torch.device("cpu"))


def test_made_is_autoregressive(tiny_model):
    """Output i of the prior's MADE has zero gradient with respect to every z_j, j >= i."""
    d = tiny_model.cfg.latent_dim
    z = torch.randn(3, d, requires_grad=True)
    shift, log_scale = tiny_model.prior.conditionals(z)
    for i in range(d):
        for out in (shift, log_scale):
            (grad,) = torch.autograd.grad(out[:, i].sum(), z, retain_graph=True)
            assert torch.all(grad[:, i:] == 0), f"output {i} depends on z_>={i}"
    for m in made_masks(5, (7, 7)):
        assert m.dtype == torch.bool


def test_prior_sample_matches_log_prob(tiny_model):
    """Samples of the flow are finite and have finite density."""
    z = tiny_model.prior.sample(16, torch.Generator().manual_seed(0))
    assert torch.isfinite(tiny_model.prior.log_prob(z)).all()


def test_importance_bound_is_tighter_than_elbo(bmnist_test):
    model = zoo.load("bmnist")
    x = torch.from_numpy(bmnist_test[:50]).float()[:, None]
    torch.manual_seed(0)
    elbo = -torch.stack([model.elbo_terms(x)["neg_elbo"] for _ in range(10)]).mean(0)
    log_px = model.importance_log_px(x, samples=100)
    assert log_px.mean() >= elbo.mean()


def test_save_load_is_bit_exact(tiny_model, tmp_path):
    zoo.save(tiny_model, tmp_path)
    loaded = zoo.load(tmp_path)
    for (k, a), (k2, b) in zip(tiny_model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = torch.bernoulli(torch.full((2, 1, 28, 28), 0.2))
    z = torch.randn(2, tiny_model.cfg.latent_dim)
    assert torch.equal(tiny_model.decoder(z, x), loaded.decoder(z, x))


def _tiny_data(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {k: (rng.random((n, 28, 28)) < 0.15).astype(np.uint8)
              for k, n in (("x_train", 96), ("x_valid", 32), ("x_test", 32))}
    np.savez(tmp_path / "binarized_mnist.npz", **arrays)
    return tmp_path


def test_training_runs_and_resumes(tiny_config, tmp_path):
    data_dir = _tiny_data(tmp_path)
    out = tmp_path / "run"
    opts = TrainOptions(epochs=2, batch_size=16, max_steps=3)
    log = train("bmnist", out, data_dir=str(data_dir), cfg=tiny_config, opts=opts, progress=False)
    assert log["epochs"] == [] and (out / "checkpoint" / "state.json").is_file()
    train("bmnist", out, data_dir=str(data_dir), resume=True, progress=False)
    saved = json.loads((out / "train_log.json").read_text())
    assert [e["epoch"] for e in saved["epochs"]][-1] == 2
    for key in ("train_neg_elbo_nats", "train_neg_elbo_bits_per_dim", "train_kl_bits",
                "valid_neg_elbo_bits_per_dim", "wall_seconds"):
        assert key in saved["epochs"][-1]
    assert zoo.load(out).cfg == tiny_config


def test_a_run_resumed_for_more_epochs_keeps_its_free_bits_schedule(tiny_config, tmp_path):
    """The free-bits floor is planned in fractions of the epochs; more epochs on resume must not
    bring it back after it has faded."""
    data_dir = _tiny_data(tmp_path)
    out = tmp_path / "run"
    first = TrainOptions(epochs=2, batch_size=16, max_steps=3)
    train("bmnist", out, data_dir=str(data_dir), cfg=tiny_config, opts=first, progress=False)
    train("bmnist", out, data_dir=str(data_dir), opts=TrainOptions(epochs=10, max_steps=1), resume=True,
          progress=False)
    resumed = TrainOptions(**json.loads((out / "train_log.json").read_text())["options"])
    assert resumed.epochs == 10
    for epoch in (0.0, 0.5, 0.8, 1.0, 1.2, 2.0, 5.0):
        assert free_bits_nats(resumed, epoch) == pytest.approx(free_bits_nats(first, epoch))


def test_grown_model_computes_the_same_and_trains_on(tiny_config, tiny_model, tmp_path):
    bigger = dataclasses.replace(tiny_config, pixel_hidden=24, pixel_layers=3, window_rows=3, window_half_width=3)
    grown = grow(tiny_model, bigger).eval()
    x = (torch.rand(4, 1, 28, 28) < 0.2).float()
    z = torch.randn(4, tiny_config.latent_dim)
    with torch.no_grad():
        assert torch.allclose(tiny_model.decoder(z, x), grown.decoder(z, x), atol=1e-5)
    assert not any(torch.equal(a, b) for a, b in zip(grown.decoder.head.parameters(), tiny_model.decoder.head.parameters()))
    with pytest.raises(ValueError, match="smaller"):
        grow(tiny_model, dataclasses.replace(tiny_config, pixel_hidden=8))
    with pytest.raises(ValueError, match="only"):
        grow(tiny_model, dataclasses.replace(tiny_config, latent_dim=9))

    # A run grown at an epoch's end resumes as the bigger model.
    data_dir, run = _tiny_data(tmp_path), tmp_path / "run"
    train("bmnist", run, data_dir=str(data_dir), cfg=tiny_config, opts=TrainOptions(epochs=1, batch_size=16),
          progress=False)
    grow_run(run, tmp_path / "grown", bigger)
    log = train("bmnist", tmp_path / "grown", data_dir=str(data_dir), opts=TrainOptions(epochs=2), resume=True,
                progress=False)
    assert [e["epoch"] for e in log["epochs"]] == [1, 2] and "grown" in log["notes"][-1]
    assert zoo.load(tmp_path / "grown").cfg == bigger


def test_two_process_training_keeps_ranks_identical(tmp_path):
    """torchrun with 2 CPU processes (gloo): after some steps, and after a resume, both ranks hold
    the same weights, and rank 0's checkpoint is what they hold."""
    data_dir, out = _tiny_data(tmp_path), tmp_path / "run"
    worker = Path(__file__).resolve().parent / "ddp_worker.py"
    for steps in (4, 7):  # the second run resumes from the first one's checkpoint
        r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                            "--master_port", str(29500 + os.getpid() % 1000), str(worker), str(data_dir), str(out),
                            str(steps)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        ranks = [load_file(str(out / f"rank{k}.safetensors")) for k in (0, 1)]
        assert ranks[0].keys() == ranks[1].keys()
        assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])
    saved = load_file(str(out / "checkpoint" / "model.safetensors"))
    assert all(torch.equal(saved[k], ranks[0][k]) for k in saved)
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["global_step"] == 7


def test_nothing_is_ever_unpickled():
    """Weights come from safetensors and JSON only: no torch.load, no pickle, no np.load with pickles."""
    root = Path(__file__).resolve().parents[1]
    sources = [p for d in ("codec", "model", "benchmarks") for p in (root / d).rglob("*.py")]
    assert sources
    for path in sources:
        text = path.read_text()
        assert "torch.load(" not in text and "import pickle" not in text, path
        for line in text.splitlines():
            assert "np.load(" not in line or "allow_pickle=False" in line, (path, line)
