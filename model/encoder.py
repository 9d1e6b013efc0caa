"""Encoder: a convolutional net from an image to a diagonal Gaussian q(z|x)."""

from __future__ import annotations

import torch
from torch import nn

from .config import VLAEConfig

LOG_SIGMA_MIN, LOG_SIGMA_MAX = -9.0, 2.0


class Encoder(nn.Module):
    """x -> (mu, log_sigma) of q(z|x); ReLU only, so its coding form can be exact."""

    def __init__(self, cfg: VLAEConfig):
        super().__init__()
        c1, c2, c3 = cfg.encoder_channels
        self.convs = nn.Sequential(
            nn.Conv2d(cfg.channels, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c2, c3, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(),
        )
        flat = c3 * (cfg.height // 4) * (cfg.width // 4)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, cfg.encoder_hidden), nn.ReLU(),
            nn.Linear(cfg.encoder_hidden, 2 * cfg.latent_dim),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_sigma = self.head(self.convs(x)).chunk(2, dim=1)
        return mu, log_sigma.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)
