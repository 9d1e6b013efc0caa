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

import numpy as np
import torch

from . import latents
from .model.interface import OFFSET_BITS, OFFSET_MAX, CodingModel

CROPS = 64  # crops of the file's images that the settings are fitted to
CROP_BLOCKS = 4  # a crop's side, in the model's blocks (a global-code model takes whole images)
STEPS = 400
BATCH = 4096  # pixels per step
LEARNING_RATE = 0.01
CLEAN_SHIFTS_TRIED = 5  # shifts 0..4; on the Kodak photos only 2 and 3 are ever chosen


def candidates(model: CodingModel, x: torch.Tensor, fit_offsets: bool) -> list[tuple[torch.Tensor | None, int]]:
    """(offsets, clean shift) pairs to code images (N, C, H, W) with; the encoder keeps the
    smallest file. The clean shift is chosen first and the offsets fitted given it. A lone
    image also gets the other order (offsets fitted to its posterior mean, then the shift):
    the estimates on crops cannot tell the two apart, and each wins on about half of the Kodak
    photos, by up to 0.02 bits/dim."""
    if len(x) == 0:
        return [(None, 0)]
    shift = clean_shift(model, x[:1])
    if not fit_offsets:
        return [(None, shift)]
    pairs = [(offsets(model, x, shift if len(x) == 1 else None), shift)]
    if len(x) == 1:
        fitted = offsets(model, x)
        other = (fitted, clean_shift(model.with_offsets(fitted), x))
        if other[1] != shift or not _same(other[0], pairs[0][0]):
            pairs.append(other)
    return pairs


def _same(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))


def offsets(model: CodingModel, x: torch.Tensor, clean_shift: int | None = None) -> torch.Tensor | None:
    """Offsets (P,) for `model.with_offsets` that make images (N, C, H, W) cheaper to code,
    or None where they would not pay for their own bytes. With `clean_shift`, the pixels are
    fitted given codes on those clean bins (as a lone image is coded), else given the posterior mean."""
    if len(x) == 0:
        return None
    crops = _crops(model, x)
    z, _ = model.posterior(crops)
    if clean_shift is not None:
        _, z = latents.snap(model, z, model.clean_bins(clean_shift))
    params, values = _pixels(model, crops, z)

    def nats(delta: torch.Tensor) -> float:
        return -model.pixel_log_prob(values, params + delta[None, :, None, None]).sum().item()

    # Adam on small random batches in float32: about 3 s on one core, whatever the input.
    generator = torch.Generator().manual_seed(0)
    delta = torch.zeros(params.shape[1], requires_grad=True)
    optimizer = torch.optim.Adam([delta], lr=LEARNING_RATE)
    count = values.shape[2]
    params32, values32 = params.float(), values.float()
    for _ in range(STEPS):
        at = torch.randint(0, count, (min(BATCH, count),), generator=generator)
        loss = -model.pixel_log_prob(values32[:, :, at], params32[:, :, at] + delta[None, :, None, None]).sum()
        optimizer.zero_grad()
        (loss / len(at)).backward()
        optimizer.step()
    fitted = torch.round(delta.detach().double() * 2**OFFSET_BITS).clamp(-OFFSET_MAX, OFFSET_MAX)
    with torch.no_grad():
        saved_bits_per_pixel = (nats(torch.zeros_like(fitted)) - nats(fitted / 2**OFFSET_BITS)) / count / np.log(2)
    cost_bits = 8 * 2 * len(fitted)  # at most two varint bytes each (see container.py)
    return fitted.long() if saved_bits_per_pixel * x[:, 0].numel() > cost_bits else None


def clean_shift(model: CodingModel, image: torch.Tensor) -> int:
    """The clean shift for a file whose clean start is `image` (1, C, H, W): the one whose
    estimated cost (its pixels given the snapped code, plus log2 of the bins per code) is least."""
    crops = _crops(model, image)
    mu, _ = model.posterior(crops)
    rows, cols = model.code_grid(*image.shape[2:])
    scale = image[:, 0].numel() / crops[:, 0].numel()  # the crops stand for the whole image
    best, best_bits = 0, np.inf
    for shift in range(CLEAN_SHIFTS_TRIED):
        try:
            bins = model.clean_bins(shift)
        except ValueError:
            break
        _, z = latents.snap(model, mu, bins)
        params, values = _pixels(model, crops, z)
        pixel_bits = -model.pixel_log_prob(values, params).sum().item() / np.log(2)
        bits = scale * pixel_bits + rows * cols * float(np.sum(np.log2(bins)))
        if bits < best_bits:
            best, best_bits = shift, bits
    return best


def _pixels(model: CodingModel, crops: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Float pixel parameters in their own units, and the pixel values, of crops (K, C, h, w)
    given their codes, as the columns of one image: (1, P, M, 1) and (1, C, M, 1)."""
    params = model.pixel_params(crops, model.features(z, *crops.shape[2:]))
    units = 2.0 ** model.param_bits.double()
    params = (params.double() / units[None, :, None, None]).transpose(0, 1).reshape(1, len(units), -1, 1)
    return params, crops.double().transpose(0, 1).reshape(1, crops.shape[1], -1, 1)


def _crops(model: CodingModel, x: torch.Tensor) -> torch.Tensor:
    """Up to CROPS different block-aligned crops (K, C, s, s) of the images, spread over them
    by a fixed random choice (so the same input gives the same file)."""
    n, _, height, width = x.shape
    block = model.cfg.block
    side_h, side_w = (min(height, CROP_BLOCKS * block), min(width, CROP_BLOCKS * block)) if block else (height, width)
    tops = (height - side_h) // block + 1 if block else 1
    lefts = (width - side_w) // block + 1 if block else 1
    rng = np.random.default_rng(0)
    total = n * tops * lefts
    picks = np.arange(total) if total <= CROPS else np.unique(rng.integers(0, total, size=CROPS))
    out = []
    for pick in picks.tolist():
        i, rest = divmod(pick, tops * lefts)
        top, left = divmod(rest, lefts)
        out.append(x[i, :, top * block:top * block + side_h, left * block:left * block + side_w])
    return torch.stack(out)
