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


# The decoder's per-pixel layers are matrix products over pixels as rows ("channels last"):
# on CPUs that is several times faster than 1x1 convolutions and pixel_shuffle on NCHW maps.
def pointwise(layer: nn.Conv2d, h: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution applied to rows (..., C_in) -> (..., C_out)."""
    return F.linear(h, layer.weight.flatten(1), layer.bias)


def to_pixels(layer: nn.Conv2d, h: torch.Tensor, block: int) -> torch.Tensor:
    """1x1 conv then pixel_shuffle(block), channels last: (N, c, h, w) -> (N, h*B, w*B, C_out/B^2)."""
    n, _, gh, gw = h.shape
    out = pointwise(layer, h.permute(0, 2, 3, 1))
    out = out.view(n, gh, gw, -1, block, block).permute(0, 1, 4, 2, 5, 3)
    return out.reshape(n, gh * block, gw * block, -1)


class ZFeatures(nn.Module):
    """z -> a feature map on the pixel grid (N, H, W, hidden), computed once per image."""

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
        return to_pixels(self.to_pixels, torch.relu(self.up(h)), 2)


class GridFeatures(nn.Module):
    """A grid of codes (N, D, h, w) -> a feature map on the pixel grid (N, H, W, hidden); each
    block's features see the codes of its own and its 8 neighbouring blocks."""

    def __init__(self, cfg: VLAEConfig):
        super().__init__()
        c, self.block = cfg.feature_channels, cfg.block
        self.mix = nn.Conv2d(cfg.latent_dim, c, 3, padding=1)
        self.hidden = nn.Conv2d(c, c, 1)
        # Each code position gives the features of its B x B block of pixels.
        self.to_pixels = nn.Conv2d(c, cfg.pixel_hidden * cfg.block**2, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return to_pixels(self.to_pixels, torch.relu(self.hidden(torch.relu(self.mix(z)))), self.block)


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
        """Inputs (N, C, H, W) and features (N, H, W, hidden) -> parameters (N, P, H, W)."""
        n, _, height, width = x.shape
        windows = F.unfold(F.pad(x, (self.half, self.half, self.rows, 0)), tuple(self.mask.shape))
        weight = (self.window.weight * self.mask).flatten(1)
        h = torch.relu(windows.transpose(1, 2) @ weight.T + features.reshape(n, height * width, -1))
        for layer in self.pointwise[:-1]:
            h = torch.relu(pointwise(layer, h))
        # bfloat16 would round a mean to about a quarter of a level; the output layer is cheap.
        with torch.autocast(h.device.type, enabled=False):
            params = pointwise(self.pointwise[-1], h.float())
        return params.view(n, height, width, -1).permute(0, 3, 1, 2)


class Decoder(nn.Module):
    """(z, x) -> per-subpixel likelihood parameters; causal in x through the window."""

    def __init__(self, cfg: VLAEConfig):
        super().__init__()
        self.features = GridFeatures(cfg) if cfg.block else ZFeatures(cfg)
        self.head = PixelHead(cfg)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # With blocks, the feature map covers whole blocks; the image may end inside one.
        return self.head(x, self.features(z)[:, :x.shape[-2], :x.shape[-1]])
