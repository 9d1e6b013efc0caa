"""Decoder p(x|z): features of z on the pixel grid and a PixelCNN head with a small window.

Receptive field (the "window"): the distribution of pixel (i, j) depends on z and on
the pixels in rows i-R .. i-1, columns j-W .. j+W, and on row i, columns j-W .. j-1,
where R = `window_rows` and W = `window_half_width`. Pixels outside the image count as 0.
It sees nothing else: z has to carry the global structure, and a decoder can pop one
pixel by evaluating the head on its window alone.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .config import VLAEConfig
from . import likelihoods


def window_mask(rows: int, half_width: int) -> torch.Tensor:
    """0/1 mask of the causal window, shape (rows + 1, 2 * half_width + 1)."""
    mask = torch.zeros(rows + 1, 2 * half_width + 1)
    mask[:rows, :] = 1
    mask[rows, :half_width] = 1
    return mask


class ZFeatures(nn.Module):
    """z -> a feature map on the pixel grid, computed once per image."""

    def __init__(self, cfg: VLAEConfig):
        super().__init__()
        c = cfg.feature_channels
        self.h4, self.w4 = cfg.height // 4, cfg.width // 4
        self.c = c
        self.linear = nn.Linear(cfg.latent_dim, c * self.h4 * self.w4)
        self.up = nn.ConvTranspose2d(c, c, 4, stride=2, padding=1)
        # Each half-resolution position gives the features of its 2x2 block of pixels.
        self.to_pixels = nn.Conv2d(c, 4 * cfg.pixel_hidden, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.linear(z)).view(-1, self.c, self.h4, self.w4)
        h = torch.relu(self.up(h))
        return F.pixel_shuffle(self.to_pixels(h), 2)


class GridFeatures(nn.Module):
    """A grid of codes (N, D, h, w) -> a feature map on the pixel grid; each block's features
    see the codes of its own and its 8 neighbouring blocks."""

    def __init__(self, cfg: VLAEConfig):
        super().__init__()
        c, self.block = cfg.feature_channels, cfg.block
        self.mix = nn.Conv2d(cfg.latent_dim, c, 3, padding=1)
        self.hidden = nn.Conv2d(c, c, 1)
        # Each code position gives the features of its B x B block of pixels.
        self.to_pixels = nn.Conv2d(c, cfg.pixel_hidden * cfg.block**2, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.hidden(torch.relu(self.mix(z))))
        return F.pixel_shuffle(self.to_pixels(h), self.block)


class PixelHead(nn.Module):
    """Local PixelCNN: one masked window layer, then 1x1 layers, per pixel."""

    def __init__(self, cfg: VLAEConfig):
        super().__init__()
        self.rows, self.half = cfg.window_rows, cfg.window_half_width
        mask = window_mask(self.rows, self.half)
        self.window = nn.Conv2d(cfg.channels, cfg.pixel_hidden, tuple(mask.shape), bias=False)
        self.register_buffer("mask", mask, persistent=False)
        n_out = likelihoods.get(cfg).n_params
        widths = [cfg.pixel_hidden] * cfg.pixel_layers + [n_out]
        self.pointwise = nn.ModuleList(
            nn.Conv2d(a, b, 1) for a, b in zip(widths[:-1], widths[1:])
        )

    def forward(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.half, self.half, self.rows, 0))
        h = torch.relu(F.conv2d(x, self.window.weight * self.mask) + features)
        for layer in self.pointwise[:-1]:
            h = torch.relu(layer(h))
        return self.pointwise[-1](h)


class Decoder(nn.Module):
    """(z, x) -> per-subpixel likelihood parameters; causal in x through the window."""

    def __init__(self, cfg: VLAEConfig):
        super().__init__()
        self.features = GridFeatures(cfg) if cfg.block else ZFeatures(cfg)
        self.head = PixelHead(cfg)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # With blocks, the feature map covers whole blocks; the image may end inside one.
        return self.head(x, self.features(z)[..., :x.shape[-2], :x.shape[-1]])
