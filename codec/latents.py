"""The global code z on dynamic bins: equal-mass bins of each prior conditional p(z_i | z_<i).

Dimension i has K_i bins (a power of two fixed in the model). Bin b of p(z_i | z_<i) =
N(shift, scale^2) is the interval between shift + scale * Phi^-1(b/K_i) and
shift + scale * Phi^-1((b+1)/K_i); its z is shift + scale * Phi^-1((b+1/2)/K_i).
Every bin has prior mass 1/K_i, so z costs exactly log2 K_i bits under the prior, and
q(z_i|x) is coded on the same bins. All arithmetic is on int64 (see model/interface.py).

Codes come as (N, K, D): N images, K codes each (one global code, or one per block), D
dimensions. Every code is walked on its own, all of them at once, one dimension at a time.
"""

from __future__ import annotations

import numpy as np
import torch

from .ans import information_bits, normalize
from .model.interface import CDF_BITS, EXP_BITS, T_BITS, Z_BITS, CodingModel


def bin_values(model: CodingModel, shift: torch.Tensor, log_scale: torch.Tensor, k: int,
               bins: torch.Tensor) -> torch.Tensor:
    """z (at 2^-Z_BITS) of the given bins of N(shift, exp(log_scale)^2)."""
    if k == 1:
        return shift.clone()
    scale = model.exp(log_scale)
    offset = scale * model.bin_centers(k)[bins]
    return shift + ((offset + (1 << (EXP_BITS - 1))) >> EXP_BITS)


def posterior_freqs(model: CodingModel, shift: torch.Tensor, log_scale: torch.Tensor, mu: torch.Tensor,
                    log_sigma: torch.Tensor, k: int) -> np.ndarray:
    """q(z_i|x) mass on the K bins of p(z_i|z_<i), as frequency tables (N, K) summing to 2^PRECISION."""
    scale, sigma = model.exp(log_scale), model.exp(log_sigma)
    edges = (shift[:, None] << EXP_BITS) + scale[:, None] * model.bin_edges(k)[None, :]
    diff = edges - (mu[:, None] << EXP_BITS)  # at 2^-(Z_BITS + EXP_BITS)
    t = torch.div(diff, sigma[:, None] << (Z_BITS - T_BITS), rounding_mode="floor")
    cdf = model.gaussian_cdf(t)
    n = len(shift)
    cdf = torch.cat([torch.zeros(n, 1, dtype=torch.long), cdf,
                     torch.full((n, 1), 1 << CDF_BITS, dtype=torch.long)], dim=1)
    return normalize(torch.diff(cdf, dim=1).numpy())


def snap(model: CodingModel, mu: torch.Tensor, bins_per_dim: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The bins containing the posterior mean, walked in prior order: (bins, z), each (N, K, D)."""
    shape, mu = mu.shape, _rows(mu)
    n, d = mu.shape
    z = torch.zeros(n, d, dtype=torch.long)
    bins = torch.zeros(n, d, dtype=torch.long)
    for i, k in enumerate(bins_per_dim):
        shift, log_scale = model.prior_conditional(z, i)
        if k > 1:
            edges = (shift[:, None] << EXP_BITS) + model.exp(log_scale)[:, None] * model.bin_edges(k)[None, :]
            bins[:, i] = (edges <= (mu[:, i:i + 1] << EXP_BITS)).sum(dim=1)
        z[:, i] = bin_values(model, shift, log_scale, k, bins[:, i])
    return bins.view(shape), z.view(shape)


def from_bins(model: CodingModel, bins: torch.Tensor, bins_per_dim: list[int]) -> torch.Tensor:
    """z from its bins, walked in prior order (each conditional needs the z before it)."""
    shape, bins = bins.shape, _rows(bins)
    n, d = bins.shape
    z = torch.zeros(n, d, dtype=torch.long)
    for i, k in enumerate(bins_per_dim):
        shift, log_scale = model.prior_conditional(z, i)
        z[:, i] = bin_values(model, shift, log_scale, k, bins[:, i])
    return z.view(shape)


def pop_posterior(stack, model: CodingModel, mu: torch.Tensor, log_sigma: torch.Tensor,
                  bins_per_dim: list[int]) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """z ~ q(z|x), popped dimension by dimension: (bins, z, log2 q(bins|x) per image)."""
    shape, mu, log_sigma = mu.shape, _rows(mu), _rows(log_sigma)
    n, d = mu.shape
    z = torch.zeros(n, d, dtype=torch.long)
    bins = torch.zeros(n, d, dtype=torch.long)
    log_q = np.zeros(n)
    for i, k in enumerate(bins_per_dim):
        shift, log_scale = model.prior_conditional(z, i)
        if k > 1:
            freqs = posterior_freqs(model, shift, log_scale, mu[:, i], log_sigma[:, i], k)
            b = stack.pop(freqs)
            log_q -= information_bits(b, freqs)
            bins[:, i] = torch.from_numpy(b)
        z[:, i] = bin_values(model, shift, log_scale, k, bins[:, i])
    return bins.view(shape), z.view(shape), log_q.reshape(shape[:2]).sum(axis=1)


def push_posterior(stack, model: CodingModel, bins: torch.Tensor, z: torch.Tensor, mu: torch.Tensor,
                   log_sigma: torch.Tensor, bins_per_dim: list[int]) -> None:
    """Undo `pop_posterior`: push the bins back under q(z|x), last dimension first."""
    bins, z, mu, log_sigma = _rows(bins), _rows(z), _rows(mu), _rows(log_sigma)
    # Conditional i ignores z_>=i, so one pass over the final z gives every one of them.
    shifts, log_scales = model.prior_conditionals(z)
    for i in reversed(range(len(bins_per_dim))):
        k = bins_per_dim[i]
        if k > 1:
            freqs = posterior_freqs(model, shifts[:, i], log_scales[:, i], mu[:, i], log_sigma[:, i], k)
            stack.push(bins[:, i].numpy(), freqs)


def push_prior(stack, bins: torch.Tensor, bins_per_dim: list[int]) -> float:
    """Push z's bins under the prior (uniform on each dimension's bins); returns bits per image."""
    codes, rows = bins.shape[1], _rows(bins)
    for i in reversed(range(len(bins_per_dim))):
        stack.push_uniform(rows[:, i].numpy(), bins_per_dim[i])
    return codes * float(sum(np.log2(bins_per_dim)))


def pop_prior(stack, n: int, codes: int, bins_per_dim: list[int]) -> torch.Tensor:
    """Pop the bins of n images' z, `codes` codes each, under the prior: (N, K, D)."""
    cols = [torch.from_numpy(stack.pop_uniform(n * codes, k)) for k in bins_per_dim]
    rows = torch.stack(cols, dim=1) if cols else torch.zeros(n * codes, 0, dtype=torch.long)
    return rows.view(n, codes, len(bins_per_dim))


def _rows(codes: torch.Tensor) -> torch.Tensor:
    """(N, K, D) codes as (N*K, D) rows, image-major."""
    return codes.reshape(-1, codes.shape[-1])
