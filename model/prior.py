"""Prior p(z): an autoregressive flow on MADE, with Gaussian conditionals in index order."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .config import VLAEConfig

LOG_SCALE_MIN, LOG_SCALE_MAX = -7.0, 3.0
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 connectivity mask."""

    def __init__(self, n_in: int, n_out: int, mask: torch.Tensor):
        super().__init__(n_in, n_out)
        self.register_buffer("mask", mask.to(self.weight.dtype), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def made_masks(dim: int, hidden: tuple[int, ...]) -> list[torch.Tensor]:
    """Masks for MADE with inputs in natural order: output i sees inputs < i only."""
    degrees = [torch.arange(1, dim + 1)]
    for h in hidden:
        # Degrees 1..dim-1 cycled: deterministic, so a rebuilt model has the same masks.
        degrees.append(torch.arange(h) % max(dim - 1, 1) + 1)
    masks = [(d_out[:, None] >= d_in[None, :]) for d_in, d_out in zip(degrees[:-1], degrees[1:])]
    out_deg = torch.arange(1, dim + 1).repeat(2)  # (shift, log_scale) for each dimension
    masks.append(out_deg[:, None] > degrees[-1][None, :])
    return masks


class ARFlowPrior(nn.Module):
    """p(z) = prod_i N(z_i; m_i(z_<i), s_i(z_<i)^2): one autoregressive-flow layer.

    z_i = m_i + s_i * eps_i with eps ~ N(0, I). Because every conditional is a Gaussian
    in a fixed order, a coder can walk z one dimension at a time (`conditionals`).
    """

    def __init__(self, cfg: VLAEConfig):
        super().__init__()
        self.dim = cfg.latent_dim
        masks = made_masks(self.dim, cfg.made_hidden)
        sizes = [self.dim, *cfg.made_hidden, 2 * self.dim]
        self.layers = nn.ModuleList(
            MaskedLinear(a, b, m) for a, b, m in zip(sizes[:-1], sizes[1:], masks)
        )

    def conditionals(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(shift, log_scale) of p(z_i | z_<i) for every i; entry i ignores z_>=i."""
        h = z
        for layer in self.layers[:-1]:
            h = torch.relu(layer(h))
        shift, log_scale = self.layers[-1](h).chunk(2, dim=-1)
        return shift, log_scale.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) in nats, one value per row (the last dimension is the code)."""
        shift, log_scale = self.conditionals(z)
        eps = (z - shift) * torch.exp(-log_scale)
        return (-0.5 * eps**2 - HALF_LOG_2PI - log_scale).sum(dim=-1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        eps = torch.randn(n, self.dim, generator=generator)
        z = torch.zeros(n, self.dim)
        for i in range(self.dim):
            shift, log_scale = self.conditionals(z)
            z[:, i] = shift[:, i] + torch.exp(log_scale[:, i]) * eps[:, i]
        return z
