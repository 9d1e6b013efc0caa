"""Per-file settings the encoder fits to its own images, which the header carries.

A model is trained on one kind of image, and a file may hold another. On 768x512 photos the
CIFAR-trained `cifar` is too sure of itself (its scales are about 1.5 times too narrow), and
a photo's clean start (bitsback.py) pays for its thousands of codes on bins finer than it
needs. So the encoder picks, from a sample of the file's own pixels:
- pixel offsets: one offset per output parameter of the decoder (48 for RGB), by gradient
  descent (`CodingModel.with_offsets`); kept only where they save more than their bytes;
- the clean shift: how much coarser than the lossy bins the clean start's code is binned
  (`CodingModel.clean_bins`).
Both sides then code with them. Only the encoder fits, so floats are fine here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch

from . import cores, latents
from .model.interface import OFFSET_BITS, OFFSET_MAX, CodingModel

# Against 64 crops, 32 cost 0.09% on Kodak and 0.05% on the held-out photos, at half the
# estimates' time. Twice the rate in half the steps fit Kodak as well but lost the offsets on
# some smaller photos (up to 4% larger files): the fit did not settle.
CROPS = 32  # crops of a lone image that its settings are fitted to
# An archive's crops are whole small images, cheap beside coding thousands of them: 128 make
# the MNIST test archive 0.23% smaller than 32 do, CIFAR-10's first 1,000 images 0.08%.
ARCHIVE_CROPS = 128
CROP_BLOCKS = 4  # a crop's side, in the model's blocks (a global-code model takes whole images)
STEPS = 400
BATCH = 2048  # pixels per step (twice as many fit 0.01% better on Kodak, at twice the time)
LEARNING_RATE = 0.01
BETAS = (0.9, 0.999)  # Adam's, as torch.optim's defaults
EPS = 1e-8
CLEAN_SHIFTS_TRIED = 5  # shifts 0..4; on the Kodak photos only 2 and 3 are ever chosen
FIRST_SHIFT = 2  # where a photo's walk starts
WALK_CODES = 1024  # images with at least this many codes walk (a 256x256 crop has 1024)

T = TypeVar("T")


def settings(model: CodingModel, x: torch.Tensor, fit_offsets: bool,
             beside: Callable[[], T] = lambda: None) -> tuple[torch.Tensor | None, int, T]:
    """(offsets, clean shift, beside()) to code images (N, C, H, W) with: the clean shift for
    the first image, then offsets fitted given the posterior means, or, for a lone image (all
    clean start), given its code snapped to that shift. The other order (offsets first, then
    the shift given them) was within 0.04% on the Kodak photos: not worth a second fit.
    The fit takes one core, so `beside()` runs on the other meanwhile (a photo's posterior:
    kodim23's settings and posterior 3.9 -> 3.1 s); without a fit, after the shift."""
    if len(x) == 0:
        return None, 0, beside()
    if len(x) > 1 or not fit_offsets:
        shift = clean_shift(model, x[:1])
        if not fit_offsets:
            return None, shift, beside()
        fitted, made = cores.together(lambda: offsets(model, x), beside)
        return fitted, shift, made
    sample = _Sample(model, x)
    shift, params = sample.best_shift()
    fitted, made = cores.together(lambda: _fit(model, params, sample.values, x[:, 0].numel()), beside)
    return fitted, shift, made


class _Sample:
    """Crops of a lone image (up to CROPS, spread over it) and their posterior means, standing
    in for the whole image in every estimate."""

    def __init__(self, model: CodingModel, image: torch.Tensor):
        self.model = model
        self.crops = _crops(model, image, CROPS)
        self.mu, _ = model.posterior(self.crops)
        self.values = _columns(self.crops)
        self.scale = image[:, 0].numel() / self.crops[:, 0].numel()
        self.codes = int(np.prod(model.code_grid(*image.shape[2:])))

    def params(self, z: torch.Tensor) -> torch.Tensor:
        return _params(self.model, self.crops, z)

    def best_shift(self) -> tuple[int, torch.Tensor]:
        """The clean shift of least estimated cost (the smallest of equals), and the crops'
        pixel parameters given it. A small image tries every shift, since its cost need not
        fall then rise with the shift; a photo's does (its thousands of codes make the code's
        bits fall by as many with each shift, against pixel bits that grow ever faster), so it
        walks down from FIRST_SHIFT while the cost falls: three trials instead of five."""
        shifts = self._shifts()
        tried: dict[int, tuple[float, torch.Tensor]] = {}

        def cost(i: int) -> float:
            if i not in tried:
                shift = shifts[i]
                params = self.params(latents.snap(self.model, self.mu, self.model.clean_bins(shift))[1])
                tried[i] = (self.bits(params) + self.code_bits(shift), params)
            return tried[i][0]

        if self.codes < WALK_CODES:
            for i in range(len(shifts)):
                cost(i)
        else:
            i = min(FIRST_SHIFT, len(shifts) - 1)
            step = 1 if i + 1 < len(shifts) and cost(i + 1) < cost(i) else -1
            while 0 <= i + step < len(shifts) and cost(i + step) < cost(i):
                i += step
        best = min(tried, key=lambda i: (tried[i][0], i))
        return shifts[best], tried[best][1]

    def _shifts(self) -> list[int]:
        """The shifts to choose from: those the model has bins for, the first of each distinct
        binning (bins at least 1 each: the coarsest shifts may all be the same)."""
        shifts, seen = [], []
        for shift in range(CLEAN_SHIFTS_TRIED):
            try:
                bins = self.model.clean_bins(shift)
            except ValueError:
                break
            if bins not in seen:
                shifts.append(shift)
                seen.append(bins)
        return shifts

    def bits(self, params: torch.Tensor) -> float:
        """Estimated bits of the whole image's pixels."""
        with torch.no_grad():
            return self.scale * (-self.model.pixel_log_prob(self.values, params).sum().item() / np.log(2))

    def code_bits(self, shift: int) -> float:
        return self.codes * float(np.sum(np.log2(self.model.clean_bins(shift))))


def offsets(model: CodingModel, x: torch.Tensor) -> torch.Tensor | None:
    """Offsets (P,) for `model.with_offsets` that make images (N, C, H, W) cheaper to code given
    their posterior means, or None where they would not pay for their own bytes."""
    if len(x) == 0:
        return None
    crops = _crops(model, x, ARCHIVE_CROPS)
    z, _ = model.posterior(crops)
    return _fit(model, _params(model, crops, z), _columns(crops), x[:, 0].numel())


def _fit(model: CodingModel, params: torch.Tensor, values: torch.Tensor, pixels: int) -> torch.Tensor | None:
    """Offsets fitted to pixels `values` under float `params` (as `_params` and `_columns`
    lay them out), or None where they would save fewer bits on `pixels` pixels than they cost."""
    def nats(delta: torch.Tensor) -> float:
        return -model.pixel_log_prob(values, params + delta[None, :, None, None]).sum().item()

    # Adam on small random batches in float32, a few seconds whatever the input. One thread:
    # on tensors this small a second one costs more than it gives (and the fit is then the
    # same whatever --threads says). Adam is written out because torch.optim's first
    # optimizer imports torch._dynamo, which alone took 1.3 s of every compress.
    with cores.one_thread():
        generator = torch.Generator().manual_seed(0)
        delta = torch.zeros(params.shape[1], requires_grad=True)
        mean, square = torch.zeros_like(delta), torch.zeros_like(delta)
        (b1, b2), count = BETAS, values.shape[2]
        params32, values32 = params.float(), values.float()
        for step in range(1, STEPS + 1):
            at = torch.randint(0, count, (min(BATCH, count),), generator=generator)
            loss = -model.pixel_log_prob(values32[:, :, at], params32[:, :, at] + delta[None, :, None, None]).sum()
            grad, = torch.autograd.grad(loss / len(at), delta)
            with torch.no_grad():
                mean.lerp_(grad, 1 - b1)
                square.mul_(b2).addcmul_(grad, grad, value=1 - b2)
                delta -= LEARNING_RATE / (1 - b1**step) * mean / ((square / (1 - b2**step)).sqrt() + EPS)
        fitted = torch.round(delta.detach().double() * 2**OFFSET_BITS).clamp(-OFFSET_MAX, OFFSET_MAX)
        with torch.no_grad():
            saved_bits_per_pixel = (nats(torch.zeros_like(fitted)) - nats(fitted / 2**OFFSET_BITS)) / count / np.log(2)
    return fitted.long() if saved_bits_per_pixel * pixels > _offset_cost(fitted) else None


def _offset_cost(fitted: torch.Tensor | None) -> int:
    return 0 if fitted is None else 8 * 2 * len(fitted)  # at most two varint bytes each (see container.py)


def clean_shift(model: CodingModel, image: torch.Tensor) -> int:
    """The clean shift for a file whose clean start is `image` (1, C, H, W): the one whose
    estimated cost (its pixels given the snapped code, plus log2 of the bins per code) is least."""
    return _Sample(model, image).best_shift()[0]


def _params(model: CodingModel, crops: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Float pixel parameters in their own units of crops (K, C, h, w) given their codes, as
    the columns of one image: (1, P, M, 1)."""
    params = model.pixel_params(crops, model.features(z, *crops.shape[2:]))
    units = 2.0 ** model.param_bits.double()
    return (params.double() / units[None, :, None, None]).transpose(0, 1).reshape(1, len(units), -1, 1)


def _columns(crops: torch.Tensor) -> torch.Tensor:
    """The pixel values of crops (K, C, h, w) laid out as `_params` lays out their parameters: (1, C, M, 1)."""
    return crops.double().transpose(0, 1).reshape(1, crops.shape[1], -1, 1)


def _crops(model: CodingModel, x: torch.Tensor, limit: int) -> torch.Tensor:
    """Up to `limit` different block-aligned crops (K, C, s, s) of the images, spread over them
    by a fixed random choice (so the same input gives the same file)."""
    n, _, height, width = x.shape
    block = model.cfg.block
    side_h, side_w = (min(height, CROP_BLOCKS * block), min(width, CROP_BLOCKS * block)) if block else (height, width)
    tops = (height - side_h) // block + 1 if block else 1
    lefts = (width - side_w) // block + 1 if block else 1
    rng = np.random.default_rng(0)
    total = n * tops * lefts
    picks = np.arange(total) if total <= limit else np.unique(rng.integers(0, total, size=limit))
    out = []
    for pick in picks.tolist():
        i, rest = divmod(pick, tops * lefts)
        top, left = divmod(rest, lefts)
        out.append(x[i, :, top * block:top * block + side_h, left * block:left * block + side_w])
    return torch.stack(out)
