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
Every bit of the clean start is in the file and in the accounting. An archive of at least
CHAIN_MIN_IMAGES images is cut into CHAINS such chains, each on a stack of its own (the
file's payload holds them one after another). (The lossy mode, which codes only z, is
codec/lossy.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from . import cores, latents, pixels
from .ans import Stack
from .model.interface import CodingModel

DEFAULT_CHUNK_MAX = 1024
# Images this small have networks too small to keep two threads busy, so an archive's
# posteriors are made on a core of their own (encode_lossless): binarized MNIST compressed
# 17% faster, MNIST 10%. CIFAR-10 (3,072 subpixels) gained nothing (1,000 images 18.7-19.0 s
# alone, 19.3 s beside), nor did 768x512 photos, which took 450 MB more. A chain that shares
# the cores with another (below) has one thread, and makes its posteriors itself.
STREAM_MAX_SUBPIXELS = 1024
# An archive this large is coded as CHAINS independent chains, each with its own clean start
# and stack, coded and decoded side by side: a decoder's chunks follow each other (a chunk's
# posterior needs its pixels, and its pushes are what the next chunk pops), so only another
# chain gives the second core work of its own. A chain costs one more clean start (about 130
# bits of a binarized digit, of 1.2 million bits for 10,000).
CHAINS = 2
CHAIN_MIN_IMAGES = 2048
# A chain's first chunks pop posteriors from a stack holding only the chunks before them; on
# easy images (a binarized digit of 64 bits whose posterior pop takes more) the stack runs dry
# and bits-back is lost: 1,050 easy test digits as an archive of their own took 82 bits each
# for 64 of information. A chain that starts among them costs the whole archive that much
# (2,100 digits as two chains 9% larger than as one). So chains whose payload exceeds their
# information by more than this factor are coded again as one chain, and the smaller kept.
CHAINS_SLACK = 1.005


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


def chains_for(n: int) -> int:
    """How many chains an archive of n images is coded as."""
    return CHAINS if n >= CHAIN_MIN_IMAGES else 1


def chain_spans(n: int, count: int) -> list[tuple[int, int]]:
    """[start, stop) of each of `count` chains of n images: in order, sizes differing by at most one."""
    bounds = np.cumsum([0] + [n // count + (i < n % count) for i in range(count)])
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


@dataclass
class Info:
    """Information content per image, in bits, of what was coded."""

    pixel_rows: np.ndarray  # -log2 p(x|z) of each image row (N, H)
    latents: np.ndarray  # -log2 p(z) + log2 q(z|x); for the clean start, -log2 p(z) alone

    @property
    def pixels(self) -> np.ndarray:
        """-log2 p(x|z) per image."""
        return self.pixel_rows.sum(axis=1)

    @property
    def total(self) -> np.ndarray:
        return self.pixels + self.latents

    @classmethod
    def joined(cls, parts: list[Info]) -> Info:
        """The information of consecutive runs of images, in order."""
        return cls(np.concatenate([p.pixel_rows for p in parts]), np.concatenate([p.latents for p in parts]))


def posterior_of(model: CodingModel, x: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [model.posterior(x[i:i + batch]) for i in range(0, len(x), batch)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def codes_per_image(model: CodingModel, height: int, width: int) -> int:
    rows, cols = model.code_grid(height, width)
    return rows * cols


def encode_chunk(stack, model: CodingModel, x: torch.Tensor, batch: int, progress=None,
                 posterior: tuple[torch.Tensor, torch.Tensor] | None = None) -> Info:
    """Bits-back encode a chunk of images (N, C, H, W); `posterior`: their q(z|x), if made already."""
    mu, log_sigma = posterior if posterior is not None else posterior_of(model, x, batch)
    bins, z, log_q = latents.pop_posterior(stack, model, mu, log_sigma, model.lossless_bins)
    recon = pixels.push_pixels(stack, model, x, model.pixel_features(z, *x.shape[2:]), progress)
    prior = latents.push_prior(stack, bins, model.lossless_bins)
    return Info(recon, prior + log_q)


def decode_chunk(stack, model: CodingModel, n: int, height: int, width: int, batch: int,
                 progress=None) -> torch.Tensor:
    """Undo `encode_chunk`, returning the chunk's images and the popped bits to the stack."""
    bins = latents.pop_prior(stack, n, codes_per_image(model, height, width), model.lossless_bins)
    z = latents.from_bins(model, bins, model.lossless_bins)
    x = pixels.pop_pixels(stack, model, model.pixel_features(z, height, width), height, width, progress)
    mu, log_sigma = posterior_of(model, x, batch)
    latents.push_posterior(stack, model, bins, z, mu, log_sigma, model.lossless_bins)
    return x


def encode_clean(stack, model: CodingModel, x: torch.Tensor, batch: int, progress=None,
                 clean_shift: int = 0, mu: torch.Tensor | None = None) -> Info:
    """Encode images with no bits to pop: z on the coarse bins (`model.clean_bins`), then x given z.
    `mu`: their posterior means, if made already."""
    bins_per_dim = model.clean_bins(clean_shift)
    if mu is None:
        mu, _ = posterior_of(model, x, batch)
    bins, z = latents.snap(model, mu, bins_per_dim)
    recon = pixels.push_pixels(stack, model, x, model.pixel_features(z, *x.shape[2:]), progress)
    prior = latents.push_prior(stack, bins, bins_per_dim)
    return Info(recon, np.full(len(x), prior))


def decode_clean(stack, model: CodingModel, n: int, height: int, width: int, batch: int,
                 progress=None, clean_shift: int = 0) -> torch.Tensor:
    bins_per_dim = model.clean_bins(clean_shift)
    bins = latents.pop_prior(stack, n, codes_per_image(model, height, width), bins_per_dim)
    z = latents.from_bins(model, bins, bins_per_dim)
    return pixels.pop_pixels(stack, model, model.pixel_features(z, height, width), height, width, progress)


def encode_lossless(stack, model: CodingModel, x: torch.Tensor, chunk_max: int, batch: int,
                    progress=None, clean_shift: int = 0, clean_mu: torch.Tensor | None = None) -> Info:
    """Encode all images, chained; `progress(k)` is told of every k pixel positions done.
    `clean_mu`: the first image's posterior mean, if made already."""
    spans = list(chunks(len(x), chunk_max))
    parts = []
    # q(z|x) takes no bits from the stack, so the chunks' posteriors are all made on one core
    # while the other pops, features and pushes the chunks before them (the decoder cannot:
    # it needs a chunk's pixels for its posterior, and the posterior's pushes for the next chunk).
    small = len(x) > 0 and x[0].numel() <= STREAM_MAX_SUBPIXELS
    with cores.streamed(lambda span: posterior_of(model, x[span[0]:span[1]], batch), spans[1:], small) as posteriors:
        for start, stop in spans:
            if start == 0:
                parts.append(encode_clean(stack, model, x[:1], batch, progress, clean_shift, clean_mu))
            else:
                parts.append(encode_chunk(stack, model, x[start:stop], batch, progress, next(posteriors)))
    return Info.joined(parts)


def encode_chains(model: CodingModel, x: torch.Tensor, chunk_max: int, batch: int, progress=None,
                  clean_shift: int = 0, clean_mu: torch.Tensor | None = None) -> tuple[list[Stack], Info]:
    """`encode_lossless` of each chain (`chains_for`) on a stack of its own, side by side; as one
    chain instead where that is smaller (`CHAINS_SLACK`)."""
    def coded(count: int) -> tuple[list[Stack], Info]:
        spans = chain_spans(len(x), count)
        stacks = [Stack() for _ in spans]
        infos = cores.side_by_side([partial(encode_lossless, stack, model, x[start:stop], chunk_max, batch,
                                            progress, clean_shift, clean_mu if start == 0 else None)
                                    for stack, (start, stop) in zip(stacks, spans)])
        return stacks, Info.joined(infos)

    def bits(stacks: list[Stack]) -> int:  # whole words, as the file holds them, without copying them out
        return sum(s.num_bits() for s in stacks)

    stacks, info = coded(chains_for(len(x)))
    if len(stacks) > 1 and bits(stacks) > CHAINS_SLACK * info.total.sum():
        one, one_info = coded(1)
        if bits(one) < bits(stacks):
            return one, one_info
    return stacks, info


def decode_chains(stacks: list[Stack], model: CodingModel, n: int, height: int, width: int, chunk_max: int,
                  batch: int, progress=None, clean_shift: int = 0) -> torch.Tensor:
    """Undo `encode_chains`: the n images of the chains on `stacks`, decoded side by side."""
    return torch.cat(cores.side_by_side([
        partial(decode_lossless, stack, model, stop - start, height, width, chunk_max, batch, progress, clean_shift)
        for stack, (start, stop) in zip(stacks, chain_spans(n, len(stacks)))]))


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
