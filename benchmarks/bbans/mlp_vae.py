"""The float BB-ANS VAE: MLP encoder and decoder, N(0, I) prior, ELBO, training, safetensors storage."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vlae_codec.model import likelihoods
from vlae_codec.model.fixed_point import LOGIT_BITS, LOGIT_MAX, MEAN_BITS, MEAN_MAX
from vlae_codec.model.data import to_tensor
from vlae_codec.model.encoder import LOG_SIGMA_MAX, LOG_SIGMA_MIN
from vlae_codec.model.prior import HALF_LOG_2PI

WEIGHTS, CONFIG, LOG = "weights.safetensors", "config.json", "train_log.json"
LOG2 = math.log(2)
# The coding form clamps its integer outputs to these ranges; the float model clamps to the
# same ones, so that the float and coding ELBOs differ by quantization alone.
LOGIT_LIMIT = LOGIT_MAX / 2**LOGIT_BITS
MEAN_LIMIT = MEAN_MAX / 2**MEAN_BITS


@dataclass(frozen=True)
class MLPConfig:
    """Shapes of the BB-ANS VAE: pixels -> hidden -> (mu, log sigma) of `latent_dim`, and back."""

    likelihood: str = "bernoulli"  # or "logistic_mixture" for 8-bit pixels
    mixtures: int = 1  # logistic components per pixel (logistic_mixture only)
    height: int = 28
    width: int = 28
    channels: int = 1
    hidden: int = 100
    latent_dim: int = 40

    @property
    def dims(self) -> int:
        """Subpixels per image, the denominator of bits/dim."""
        return self.height * self.width * self.channels

    @property
    def params_per_pixel(self) -> int:
        return 1 if self.likelihood == "bernoulli" else 3 * self.mixtures

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "MLPConfig":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**d)


class MLPEncoder(nn.Module):
    """x -> (mu, log_sigma) of q(z|x): one ReLU hidden layer."""

    def __init__(self, cfg: MLPConfig):
        super().__init__()
        self.hidden = nn.Linear(cfg.dims, cfg.hidden)
        self.out = nn.Linear(cfg.hidden, 2 * cfg.latent_dim)

    def forward(self, xf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_sigma = self.out(torch.relu(self.hidden(xf.flatten(1)))).chunk(2, dim=1)
        return mu, log_sigma.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)


class StandardNormalPrior(nn.Module):
    """p(z) = N(0, I), offered in the prior interface of the project's VLAE (`conditionals`)."""

    def conditionals(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros_like(z), torch.zeros_like(z)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return (-0.5 * z**2 - HALF_LOG_2PI).sum(dim=-1)


class MLPDecoder(nn.Module):
    """z -> every pixel's likelihood parameters (N, P, H, W): one ReLU hidden layer, no autoregression."""

    def __init__(self, cfg: MLPConfig):
        super().__init__()
        self.cfg = cfg
        self.hidden = nn.Linear(cfg.latent_dim, cfg.hidden)
        self.out = nn.Linear(cfg.hidden, cfg.params_per_pixel * cfg.dims)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        params = self.out(torch.relu(self.hidden(z))).view(len(z), cfg.params_per_pixel, cfg.height, cfg.width)
        if cfg.likelihood == "bernoulli":
            return params.clamp(-LOGIT_LIMIT, LOGIT_LIMIT)
        logits, means, log_scales = params.chunk(3, dim=1)
        return torch.cat([logits.clamp(-LOGIT_LIMIT, LOGIT_LIMIT), means.clamp(-MEAN_LIMIT, MEAN_LIMIT),
                          log_scales], dim=1)


class MLPVAE(nn.Module):
    """The BB-ANS VAE; all quantities in nats per image."""

    def __init__(self, cfg: MLPConfig):
        super().__init__()
        if cfg.channels != 1:
            raise ValueError("the BB-ANS baseline is for greyscale or binary images (channels = 1)")
        self.cfg = cfg
        self.encoder = MLPEncoder(cfg)
        self.prior = StandardNormalPrior()
        self.decoder = MLPDecoder(cfg)
        self.likelihood = likelihoods.get(cfg)

    def x_in(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels (floats holding integer values) as the networks see them."""
        return self.likelihood.to_input(x)

    def elbo_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One-sample reconstruction term and the analytic KL to N(0, I), per image."""
        mu, log_sigma = self.encoder(self.x_in(x))
        z = mu + torch.exp(log_sigma) * torch.randn_like(mu)
        kl = (0.5 * (torch.exp(2 * log_sigma) + mu**2 - 1) - log_sigma).sum(dim=1)
        recon = -self.likelihood.log_prob(x, self.decoder(z))
        return {"recon": recon, "kl": kl, "neg_elbo": recon + kl}


@torch.no_grad()
def evaluate(model: MLPVAE, images: np.ndarray, samples: int = 10, batch_size: int = 500,
             seed: int = 0) -> dict:
    """Mean -ELBO, KL and reconstruction term; the reconstruction averages `samples` draws of z."""
    torch.manual_seed(seed)
    model.eval()
    sums = {"neg_elbo": 0.0, "kl": 0.0, "recon": 0.0}
    for start in range(0, len(images), batch_size):
        x = to_tensor(images[start:start + batch_size])
        for _ in range(samples):
            for k, v in model.elbo_terms(x).items():
                sums[k] += v.sum().item() / samples
    n, dims = len(images), model.cfg.dims
    return {"images": n,
            "neg_elbo_nats_per_image": sums["neg_elbo"] / n,
            "neg_elbo_bits_per_dim": sums["neg_elbo"] / n / dims / LOG2,
            "kl_bits_per_image": sums["kl"] / n / LOG2,
            "recon_bits_per_dim": sums["recon"] / n / dims / LOG2}


def train(model: MLPVAE, train_images: np.ndarray, valid_images: np.ndarray, epochs: int,
          batch_size: int = 100, lr: float = 1e-3, lr_decay: float = 0.95, seed: int = 0,
          report: Callable[[dict], None] | None = None) -> list[dict]:
    """Adam on the -ELBO; returns one log entry per epoch (train and validation -ELBO in bits/dim)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, lr_decay)
    x_all = to_tensor(train_images)
    log = []
    for epoch in range(epochs):
        model.train()
        t0, total = time.time(), 0.0
        for idx in np.array_split(rng.permutation(len(x_all)), len(x_all) // batch_size):
            loss = model.elbo_terms(x_all[idx])["neg_elbo"].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        valid = evaluate(model, valid_images, samples=1)
        entry = {"epoch": epoch + 1, "seconds": round(time.time() - t0, 1),
                 "train_neg_elbo_bits_per_dim": total / len(x_all) / model.cfg.dims / LOG2,
                 "valid_neg_elbo_bits_per_dim": valid["neg_elbo_bits_per_dim"],
                 "valid_kl_bits_per_image": valid["kl_bits_per_image"]}
        log.append(entry)
        if report:
            report(entry)
    model.eval()
    return log


def save(model: MLPVAE, directory: str | os.PathLike) -> None:
    """weights.safetensors and config.json in a folder."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(directory / WEIGHTS))
    (directory / CONFIG).write_text(model.cfg.to_json() + "\n")


def load(directory: str | os.PathLike) -> MLPVAE:
    """A saved model in eval mode; never unpickles anything."""
    directory = Path(directory)
    model = MLPVAE(MLPConfig.from_dict(json.loads((directory / CONFIG).read_text())))
    model.load_state_dict(load_file(str(directory / WEIGHTS)))
    return model.eval()
