"""The VLAE: encoder, prior and decoder together, with the ELBO and its bounds."""

from __future__ import annotations

import math

import torch
from torch import nn

from . import likelihoods
from .config import VLAEConfig
from .decoder import Decoder
from .encoder import build as build_encoder
from .prior import HALF_LOG_2PI, ARFlowPrior


def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, sigma^2) in nats, summed over the last (code) dimension."""
    eps = (z - mu) * torch.exp(-log_sigma)
    return (-0.5 * eps**2 - HALF_LOG_2PI - log_sigma).sum(dim=-1)


def full_precision(t: torch.Tensor) -> torch.autocast:
    """A region where autocast is off (float32 as written), on t's device."""
    return torch.autocast(t.device.type, enabled=False)


def code_rows(t: torch.Tensor) -> torch.Tensor:
    """Codes as rows (N, K, D): K = 1 for a global code (N, D), one per block for a grid (N, D, h, w)."""
    return t[:, None, :] if t.dim() == 2 else t.flatten(2).transpose(1, 2)


class VLAE(nn.Module):
    """Variational Lossy Autoencoder; all quantities in nats per image."""

    def __init__(self, cfg: VLAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = build_encoder(cfg)
        self.prior = ARFlowPrior(cfg)
        self.decoder = Decoder(cfg)
        self.likelihood = likelihoods.get(cfg)

    def x_in(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels (floats holding integer values) as the networks see them."""
        return self.likelihood.to_input(x)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The ELBO terms (what training differentiates, and what DistributedDataParallel wraps)."""
        return self.elbo_terms(x)

    def elbo_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One-sample estimates of the reconstruction term and KL, per image."""
        xf = self.x_in(x)
        mu, log_sigma = self.encoder(xf)
        # Under bfloat16 autocast the networks may run in bf16, but the ELBO's terms are sums of
        # thousands of log densities: they, and the prior, stay float32.
        with full_precision(x):
            mu, log_sigma = mu.float(), log_sigma.float()
            z = mu + torch.exp(log_sigma) * torch.randn_like(mu)
            kl = self.log_q_over_p(z, mu, log_sigma)
        params = self.decoder(z, xf)
        with full_precision(x):
            recon = -self.likelihood.log_prob(x, params.float())
        return {"recon": recon, "kl": kl, "neg_elbo": recon + kl}

    def log_q_over_p(self, z: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
        """log q(z|x) - log p(z) per image, summed over all its codes."""
        z, mu, log_sigma = code_rows(z), code_rows(mu), code_rows(log_sigma)
        return (gaussian_log_prob(z, mu, log_sigma) - self.prior.log_prob(z)).sum(dim=1)

    @torch.no_grad()
    def importance_log_px(self, x: torch.Tensor, samples: int, chunk: int = 50) -> torch.Tensor:
        """log p(x) estimated with `samples` draws from q(z|x) (a stochastic lower bound)."""
        xf = self.x_in(x)
        mu, log_sigma = self.encoder(xf)
        log_w = []
        for start in range(0, samples, chunk):
            k = min(chunk, samples - start)
            ones = [1] * (mu.dim() - 1)
            mu_k, ls_k = mu.repeat(k, *ones), log_sigma.repeat(k, *ones)
            z = mu_k + torch.exp(ls_k) * torch.randn_like(mu_k)
            xk, xfk = x.repeat(k, 1, 1, 1), xf.repeat(k, 1, 1, 1)
            lw = self.likelihood.log_prob(xk, self.decoder(z, xfk)) - self.log_q_over_p(z, mu_k, ls_k)
            log_w.append(lw.view(k, -1))
        log_w = torch.cat(log_w, dim=0)
        return torch.logsumexp(log_w, dim=0) - math.log(samples)
