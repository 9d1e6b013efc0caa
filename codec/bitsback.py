"""Bits-back coding of image batches chained on one ANS stack (DESIGN.md, "Bits-back coding").

    encode(x):                         decode():
      z ~ pop   q(z|x)   (bits back)     z = pop  p(z)
      push x  | p(x|z)                   x = pop  p(x|z)
      push z  | p(z)                     push z | q(z|x)   (bits returned)

Images go in chunks; a chunk's pushes are what the next chunk pops. The first image has
nothing to pop from, so it is coded without bits-back (the clean start): z is the
posterior mean on coarse bins (the model's "lossy" bins, or 2^clean_shift times coarser,
as the encoder picks per file), coded under the prior, then x given z.
Chunks then grow 1, 2, 4, ... up to `chunk_max`, so each one finds enough bits to pop.
Every bit of the clean start is in the file and in the accounting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from . import latents, pixels
from .ans import PRECISION
from .model.coding import EXP_BITS, Z_BITS, CodingModel

DEFAULT_CHUNK_MAX = 1024


def chunks(n: int, chunk_max: int) -> Iterator[tuple[int, int]]:
    """[start, stop) of each chunk: the clean-start image alone, then sizes 1, 2, 4, ... <= chunk_max."""
    if n == 0:
        return
    yield 0, 1
    start, size = 1, 1
    while start < n:
        stop = min(n, start + size)
        yield start, stop
        start, size = stop, min(2 * size, chunk_max)


@dataclass
class Info:
    """Information content per image, in bits, of what was coded."""

    pixels: np.ndarray  # -log2 p(x|z)
    latents: np.ndarray  # -log2 p(z) + log2 q(z|x); for the clean start, -log2 p(z) alone

    @property
    def total(self) -> np.ndarray:
        return self.pixels + self.latents


def _posterior(model: CodingModel, x: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [model.posterior(x[i:i + batch]) for i in range(0, len(x), batch)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _features(model: CodingModel, z: torch.Tensor, height: int, width: int, batch: int) -> torch.Tensor:
    # int32 holds them exactly (they are clamped to int16 range) at a quarter of the memory.
    return torch.cat([model.features(z[i:i + batch], height, width).to(torch.int32)
                      for i in range(0, len(z), batch)])


def _codes(model: CodingModel, height: int, width: int) -> int:
    rows, cols = model.code_grid(height, width)
    return rows * cols


def encode_chunk(stack, model: CodingModel, x: torch.Tensor, batch: int, progress=None) -> Info:
    """Bits-back encode a chunk of images (N, C, H, W)."""
    mu, log_sigma = _posterior(model, x, batch)
    bins, z, log_q = latents.pop_posterior(stack, model, mu, log_sigma, model.lossless_bins)
    recon = pixels.push_pixels(stack, model, x, _features(model, z, *x.shape[2:], batch), progress)
    prior = latents.push_prior(stack, bins, model.lossless_bins)
    return Info(recon, prior + log_q)


def decode_chunk(stack, model: CodingModel, n: int, height: int, width: int, batch: int,
                 progress=None) -> torch.Tensor:
    """Undo `encode_chunk`, returning the chunk's images and the popped bits to the stack."""
    bins = latents.pop_prior(stack, n, _codes(model, height, width), model.lossless_bins)
    z = latents.from_bins(model, bins, model.lossless_bins)
    x = pixels.pop_pixels(stack, model, _features(model, z, height, width, batch), height, width, progress)
    mu, log_sigma = _posterior(model, x, batch)
    latents.push_posterior(stack, model, bins, z, mu, log_sigma, model.lossless_bins)
    return x


def encode_clean(stack, model: CodingModel, x: torch.Tensor, batch: int, progress=None,
                 clean_shift: int = 0) -> Info:
    """Encode images with no bits to pop: z on the coarse bins (`model.clean_bins`), then x given z."""
    bins_per_dim = model.clean_bins(clean_shift)
    mu, _ = _posterior(model, x, batch)
    bins, z = latents.snap(model, mu, bins_per_dim)
    recon = pixels.push_pixels(stack, model, x, _features(model, z, *x.shape[2:], batch), progress)
    prior = latents.push_prior(stack, bins, bins_per_dim)
    return Info(recon, np.full(len(x), prior))


def decode_clean(stack, model: CodingModel, n: int, height: int, width: int, batch: int,
                 progress=None, clean_shift: int = 0) -> torch.Tensor:
    bins_per_dim = model.clean_bins(clean_shift)
    bins = latents.pop_prior(stack, n, _codes(model, height, width), bins_per_dim)
    z = latents.from_bins(model, bins, bins_per_dim)
    return pixels.pop_pixels(stack, model, _features(model, z, height, width, batch), height, width, progress)


def encode_lossless(stack, model: CodingModel, x: torch.Tensor, chunk_max: int, batch: int,
                    progress=None, clean_shift: int = 0) -> Info:
    """Encode all images, chained; `progress(k)` is told of every k pixel positions done."""
    parts = []
    for start, stop in chunks(len(x), chunk_max):
        if start == 0:
            parts.append(encode_clean(stack, model, x[:1], batch, progress, clean_shift))
        else:
            parts.append(encode_chunk(stack, model, x[start:stop], batch, progress))
    return Info(np.concatenate([p.pixels for p in parts]), np.concatenate([p.latents for p in parts]))


def decode_lossless(stack, model: CodingModel, n: int, height: int, width: int, chunk_max: int,
                    batch: int, progress=None, clean_shift: int = 0) -> torch.Tensor:
    """Decode n images; chunks come off the stack last first."""
    out = []
    for start, stop in reversed(list(chunks(n, chunk_max))):
        if start == 0:
            out.append(decode_clean(stack, model, 1, height, width, batch, progress, clean_shift))
        else:
            out.append(decode_chunk(stack, model, stop - start, height, width, batch, progress))
    return torch.cat(out[::-1]) if out else torch.zeros(0, model.cfg.channels, height, width, dtype=torch.long)


def encode_lossy(stack, model: CodingModel, x: torch.Tensor, batch: int, seed: int | None = None,
                 candidates: int = 1) -> torch.Tensor:
    """Push only the global code, on the coarse bins; returns what decoding will generate.

    The code is chosen among `candidates`: the posterior mean, then draws from q(z|x) (a fixed
    random sequence, so the same input gives the same file). Each is snapped to the bins and
    generated as the decoder will; the one whose image is closest to x in shape wins.
    """
    mu, log_sigma = _posterior(model, x, batch)
    # sigma at 2^-Z_BITS, from the exp table so that the candidates are the same on any machine.
    sigma = model.exp(log_sigma).double() / 2 ** (EXP_BITS - Z_BITS)
    rng = np.random.default_rng(0)
    best_bins = best_image = best_error = None
    for c in range(candidates):
        point = mu if c == 0 else mu + torch.round(sigma * torch.from_numpy(rng.standard_normal(mu.shape))).long()
        bins, z = latents.snap(model, point, model.lossy_bins)
        image = generate(model, z, x.shape[2], x.shape[3], batch, seed)
        error = shape_error(image, x)
        if c == 0:
            best_bins, best_image, best_error = bins, image, error
            continue
        better = error < best_error
        best_bins[better], best_image[better], best_error[better] = bins[better], image[better], error[better]
    latents.push_prior(stack, best_bins, model.lossy_bins)
    return best_image


def shape_error(image: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Squared error between blurred images, per image. Blurring first makes a stroke drawn a
    pixel away cost little and a missing or extra stroke cost much: on MNIST it keeps the
    class of more digits than plain squared error. Only the encoder uses it, so floats are fine."""
    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t.double(), 4, stride=2, padding=1)
    return ((blur(image) - blur(x)) ** 2).flatten(1).sum(dim=1)


def decode_lossy(stack, model: CodingModel, n: int, height: int, width: int, batch: int,
                 seed: int | None) -> torch.Tensor:
    """Pop the global codes and generate the images."""
    bins = latents.pop_prior(stack, n, _codes(model, height, width), model.lossy_bins)
    return generate(model, latents.from_bins(model, bins, model.lossy_bins), height, width, batch, seed)


def generate(model: CodingModel, z: torch.Tensor, height: int, width: int, batch: int,
             seed: int | None) -> torch.Tensor:
    """Images from p(x|z): each pixel its mean given the pixels before it, or samples.

    Image j's sample uses its own generator seeded with (seed, j), so it does not depend on
    how images are batched."""
    n = len(z)
    out = []
    for i in range(0, n, batch):
        feats = _features(model, z[i:i + batch], height, width, batch)
        uniforms = None if seed is None else np.stack([
            np.random.default_rng([seed, j]).integers(0, 1 << PRECISION, size=(model.pixel_stages, height, width))
            for j in range(i, min(n, i + batch))])
        out.append(pixels.generate_pixels(model, feats, height, width, uniforms))
    return torch.cat(out) if out else torch.zeros(0, model.cfg.channels, height, width, dtype=torch.long)
