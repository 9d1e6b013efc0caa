"""The lossy mode: only the global code is coded; the decoder generates the pixels from it.

The code is z snapped to the model's coarse ("lossy") bins and pushed under the prior; the
decoder pops it and draws every pixel from p(x|z) along wavefronts, as its mean given the
pixels before it or as a seeded sample (DESIGN.md, "Lossy mode").
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from . import latents, pixels
from .ans import PRECISION
from .bitsback import codes_per_image, posterior_of
from .model.interface import EXP_BITS, Z_BITS, CodingModel


def encode_lossy(stack, model: CodingModel, x: torch.Tensor, batch: int, seed: int | None = None,
                 candidates: int = 1) -> torch.Tensor:
    """Push only the global code, on the coarse bins; returns what decoding will generate.

    The code is chosen among `candidates`: the posterior mean, then draws from q(z|x) (a fixed
    random sequence, so the same input gives the same file). Each is snapped to the bins and
    generated as the decoder will; the one whose image is closest to x in shape wins.
    """
    mu, log_sigma = posterior_of(model, x, batch)
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
    bins = latents.pop_prior(stack, n, codes_per_image(model, height, width), model.lossy_bins)
    return generate(model, latents.from_bins(model, bins, model.lossy_bins), height, width, batch, seed)


def generate(model: CodingModel, z: torch.Tensor, height: int, width: int, batch: int,
             seed: int | None) -> torch.Tensor:
    """Images from p(x|z): each pixel its mean given the pixels before it, or samples.

    Image j's sample uses its own generator seeded with (seed, j), so it does not depend on
    how images are batched."""
    n = len(z)
    out = []
    for i in range(0, n, batch):
        feats = model.pixel_features(z[i:i + batch], height, width)
        uniforms = None if seed is None else np.stack([
            np.random.default_rng([seed, j]).integers(0, 1 << PRECISION, size=(model.pixel_stages, height, width))
            for j in range(i, min(n, i + batch))])
        out.append(pixels.generate_pixels(model, feats, height, width, uniforms))
    return torch.cat(out) if out else torch.zeros(0, model.cfg.channels, height, width, dtype=torch.long)
