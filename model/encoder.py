"""Encoder: a convolutional net from an image to a diagonal Gaussian q(z|x)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

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


class GridEncoder(nn.Module):
    """x -> (mu, log_sigma) of q(z|x) for every B x B block (B = 8), each (N, D, ceil(H/B), ceil(W/B)).

    Fully convolutional, so it takes any size. An edge that is not a multiple of B is padded
    by repeating the last row or column: the padding is computed, never coded."""

    def __init__(self, cfg: VLAEConfig):
        super().__init__()
        if cfg.block != 8:
            raise ValueError("the grid encoder makes one code per 8 x 8 block (block = 8)")
        self.block = cfg.block
        c1, c2, c3 = cfg.encoder_channels
        self.convs = nn.Sequential(
            nn.Conv2d(cfg.channels, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c2, c3, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c3, c3, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c3, cfg.encoder_hidden, 1), nn.ReLU(),
            nn.Conv2d(cfg.encoder_hidden, 2 * cfg.latent_dim, 1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_sigma = self.convs(pad_to_blocks(x, self.block)).chunk(2, dim=1)
        return mu, log_sigma.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)


def pad_to_blocks(x: torch.Tensor, block: int) -> torch.Tensor:
    """Pad (N, C, H, W) on the bottom and right, repeating the edge, to multiples of `block`."""
    h, w = x.shape[-2:]
    dh, dw = -h % block, -w % block
    return F.pad(x, (0, dw, 0, dh), mode="replicate") if dh or dw else x


def build(cfg: VLAEConfig) -> nn.Module:
    """The encoder a config names: one global code, or a grid of codes."""
    return GridEncoder(cfg) if cfg.block else Encoder(cfg)
