"""Pixels given z, coded along wavefronts from their causal windows.

Pixel (r, c) sees rows r-R .. r-1 up to column c+W and row r left of c (R = window rows,
W = window half width). Popping it at step c + r*(W+1) therefore finds everything it
sees already popped, and one step pops one pixel of every row that has started, in every
image of the batch at once; its channels follow each other, each a stage or two of symbols.
The push order is the reverse of this pop order; the encoder, which knows every pixel,
evaluates many steps at once, with the same arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch

from . import cores
from .ans import information_bits
from .model.interface import CodingModel, PixelFeatures

ENCODE_BLOCK = 16384  # pixels evaluated together when encoding
CANVAS_ROWS = 256  # image rows turned into network inputs at a time


@lru_cache(maxsize=16)
def wavefronts(height: int, width: int, half_width: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """(rows, cols) popped at each step, rows ascending within a step."""
    lag = half_width + 1
    steps = []
    for t in range(width + (height - 1) * lag):
        rows = np.arange(height)
        cols = t - rows * lag
        keep = (cols >= 0) & (cols < width)
        if keep.any():  # images narrower than the lag leave some steps empty
            steps.append((rows[keep], cols[keep]))
    return tuple(steps)


def push_pixels(stack, model: CodingModel, x: torch.Tensor, features: PixelFeatures,
                progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Push images (N, C, H, W) given their z features; returns -log2 p(x|z) of each image row (N, H).
    `progress(k)` hears of every k pixel positions done.

    Every pixel's distribution comes from the same windowed computation the decoder runs,
    step by step; the push order is the exact reverse of the pop order."""
    n, _, h, w = x.shape
    canvas = _canvas(model, h, w, n, x)
    values_at = x.permute(2, 3, 0, 1)  # (H, W, N, C)
    steps = wavefronts(h, w, model.half)
    bits = np.zeros(n * h)
    # All pixels are known here, so several steps share one evaluation; only the order of
    # the symbols has to follow the steps. Blocks go last first, so that the pops, first
    # block first, meet them in pop order; each block is pushed as soon as it is made.
    per_block = max(1, ENCODE_BLOCK // (n * max(len(r) for r, _ in steps)))

    def evaluate(first: int) -> tuple:
        block = steps[first:first + per_block]
        rows = np.concatenate([r for r, _ in block])
        cols = np.concatenate([c for _, c in block])
        return block, rows, cols, _step_params(model, canvas, features.at(rows, cols), rows, cols)

    firsts = reversed(range(0, len(steps), per_block))
    # A binary pixel's table is two lookups: there is too little to overlap with the network,
    # and handing blocks between threads made binarized MNIST 5% slower.
    made = cores.ahead(evaluate, firsts) if model.pixel_stages > 1 else map(evaluate, firsts)
    for block, rows, cols, params in made:
        block_symbols = model.pixel_symbols(values_at[rows, cols].reshape(-1, x.shape[1]))
        block_tables = [model.pixel_freqs(params, s, block_symbols[:s]) for s in range(model.pixel_stages)]
        # Pop order within the block: step by step, and within a step stage by stage.
        order = [(a, b, s) for a, b in _step_bounds(block, n) for s in range(model.pixel_stages)]
        symbols = torch.cat([block_symbols[s][a:b] for a, b, s in order]).numpy()
        tables = torch.cat([block_tables[s][a:b] for a, b, s in order]).numpy()
        stack.push(symbols, tables)
        # Within each step and stage, symbols are position-major and image-minor.
        image_row = np.arange(len(rows) * n) % n * h + np.repeat(rows, n)
        bits += np.bincount(np.concatenate([image_row[a:b] for a, b, _ in order]),
                            weights=information_bits(symbols, tables), minlength=n * h)
        if progress:
            progress(len(rows) * n)
    return bits.reshape(n, h)


def _step_bounds(block, n: int) -> list[tuple[int, int]]:
    """Where each step's pixels lie in a block evaluated at once (position-major, image-minor)."""
    bounds = np.cumsum([0] + [len(r) * n for r, _ in block])
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def pop_pixels(stack, model: CodingModel, features: PixelFeatures, height: int, width: int,
               progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """Pop images (N, C, H, W) given their z features, evaluating only causal windows."""
    def pop(params: torch.Tensor) -> torch.Tensor:
        symbols: list[torch.Tensor] = []
        for s in range(model.pixel_stages):
            symbols.append(torch.from_numpy(stack.pop(model.pixel_freqs(params, s, symbols).numpy())))
        return model.pixel_value(symbols)

    return _wavefront_decode(pop, model, features, height, width, progress)


def generate_pixels(model: CodingModel, features: PixelFeatures, height: int, width: int,
                    uniforms: np.ndarray | None) -> torch.Tensor:
    """x from p(x|z) without a stack, deterministically: each pixel's mean given the pixels
    before it (rounded to a level), or, given uniform integers in [0, 2^PRECISION) per pixel
    and stage (N, stages, H, W), the sample they select."""
    if uniforms is None:
        return _wavefront_decode(model.pixel_mean, model, features, height, width)
    # In pop order: per step, per stage, position-major and image-minor.
    stream = iter([torch.from_numpy(uniforms[:, s, r, c].T.reshape(-1))
                   for r, c in wavefronts(height, width, model.half) for s in range(model.pixel_stages)])

    def sample(params: torch.Tensor) -> torch.Tensor:
        symbols: list[torch.Tensor] = []
        for s in range(model.pixel_stages):
            cdf = model.pixel_freqs(params, s, symbols).cumsum(dim=-1)
            symbols.append((cdf <= next(stream)[:, None]).sum(dim=-1))
        return model.pixel_value(symbols)

    return _wavefront_decode(sample, model, features, height, width)


def _wavefront_decode(draw, model: CodingModel, features: PixelFeatures, height: int, width: int,
                      progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """Images (N, C, H, W) pixel by pixel along the wavefronts; `draw(params)` gives the values
    (M, C) of one step's pixels (position-major, image-minor) from their parameters."""
    n, c = features.n, model.channels
    canvas = _canvas(model, height, width, n)
    values = torch.zeros(height, width, n, c, dtype=torch.long)
    for rows, cols in wavefronts(height, width, model.half):
        v = draw(_step_params(model, canvas, features.at(rows, cols), rows, cols)).view(len(rows), n, c)
        values[rows, cols] = v
        canvas[rows + model.rows, cols + model.half] = model.input(v).to(canvas.dtype)
        if progress:
            progress(len(rows) * n)
    return values.permute(2, 3, 0, 1)


def _canvas(model: CodingModel, height: int, width: int, n: int, x: torch.Tensor | None = None) -> torch.Tensor:
    """The network inputs of the windows, position-major and image-minor so that each step
    gathers whole rows of memory: (H + R, W + 2W', N, C), zero where the window sees off the
    image (and, without x, where nothing is decoded yet). int16 holds them exactly (binary
    0/1, or 2x - 255) at an eighth of float64's memory."""
    canvas = torch.zeros(height + model.rows, width + 2 * model.half, n, model.channels, dtype=torch.int16)
    if x is not None:
        for top in range(0, height, CANVAS_ROWS):  # a few rows at a time: no float64 copy of a whole photo
            rows = x[:, :, top:top + CANVAS_ROWS].permute(2, 3, 0, 1)
            canvas[model.rows + top:model.rows + top + len(rows), model.half:model.half + width] = model.input(rows)
    return canvas


def _step_params(model: CodingModel, canvas: torch.Tensor, step_features: torch.Tensor,
                 rows: np.ndarray, cols: np.ndarray) -> torch.Tensor:
    """Parameters of one step's pixels (position-major, image-minor) from their causal windows
    and their features (`PixelFeatures.at`)."""
    _, canvas_width, n, c = canvas.shape
    # Gathered as rows of the flattened canvas: one index_select is far cheaper than 2-D
    # fancy indexing at the few hundred pixels of a decoder's step.
    taps = (model.rows + model.dy) * canvas_width + model.half + model.dx
    at = torch.from_numpy((rows * canvas_width + cols)[:, None] + taps[None, :]).view(-1)
    windows = canvas.view(-1, n, c).index_select(0, at).view(len(rows), -1, n, c)
    windows = windows.transpose(1, 2).reshape(len(rows) * n, -1)  # (P*N, taps*C), tap-major
    return model.pixel_params_at(windows, step_features)
