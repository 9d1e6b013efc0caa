"""Pixels given z: pushed in one parallel pass, popped along wavefronts from causal windows.

Pixel (r, c) sees rows r-R .. r-1 up to column c+W and row r left of c (R = window rows,
W = window half width). Popping it at step c + r*(W+1) therefore finds everything it
sees already popped, and one step pops one pixel of every row that has started, in every
image of the batch at once. The push order is the reverse of this pop order.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .ans import information_bits
from .model.coding import CodingModel


@lru_cache(maxsize=16)
def wavefronts(height: int, width: int, half_width: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """(rows, cols) popped at each step, rows ascending within a step."""
    lag = half_width + 1
    steps = []
    for t in range(width + (height - 1) * lag):
        rows = np.arange(height)
        cols = t - rows * lag
        keep = (cols >= 0) & (cols < width)
        steps.append((rows[keep], cols[keep]))
    return tuple(steps)


def _pop_order(height: int, width: int, half_width: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.concatenate([r for r, _ in wavefronts(height, width, half_width)])
    cols = np.concatenate([c for _, c in wavefronts(height, width, half_width)])
    return rows, cols


def push_pixels(stack, model: CodingModel, x: torch.Tensor, features: torch.Tensor) -> np.ndarray:
    """Push images (N, 1, H, W) given their z features; returns -log2 p(x|z) per image."""
    n, _, h, w = x.shape
    steps = wavefronts(h, w, model.half)
    rows, cols = _pop_order(h, w, model.half)
    # Everything in pop order: step by step, each step position-major and image-minor.
    params = model.pixel_params(x, features)[:, :, rows, cols].permute(2, 0, 1).reshape(len(rows) * n, -1)
    symbols = model.pixel_symbols(x[:, 0][:, rows, cols].T.reshape(-1))
    tables = [model.pixel_freqs(params, s, symbols[:s]).numpy() for s in range(model.pixel_stages)]
    # Within a step every stage is popped for all its pixels before the next stage.
    bounds = np.cumsum([0] + [len(r) * n for r, _ in steps])
    order = np.concatenate([np.arange(a, b) + s * len(params) for a, b in zip(bounds[:-1], bounds[1:])
                            for s in range(model.pixel_stages)])
    all_symbols = torch.cat(symbols).numpy()[order]
    all_tables = np.concatenate(tables)[order]
    stack.push(all_symbols, all_tables)
    bits = information_bits(all_symbols, all_tables)
    image = np.tile(np.arange(n), len(rows) * model.pixel_stages)[order]
    return np.bincount(image, weights=bits, minlength=n)


def pop_pixels(stack, model: CodingModel, features: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pop images (N, 1, H, W) given their z features, evaluating only causal windows."""
    n = features.shape[0]
    rows_pad, half = model.rows, model.half
    # The canvas holds network inputs; its zero border is what the window sees off the image.
    canvas = torch.zeros(n, height + rows_pad, width + 2 * half, dtype=torch.float64)
    values = torch.zeros(n, height, width, dtype=torch.long)
    dy = np.array([o[0] for o in model.window_offsets])
    dx = np.array([o[1] for o in model.window_offsets])
    for rows, cols in wavefronts(height, width, half):
        # Window taps of every pixel of this step, in the canvas' padded coordinates.
        ty = rows[:, None] + rows_pad + dy[None, :]
        tx = cols[:, None] + half + dx[None, :]
        windows = canvas[:, ty, tx]  # (N, P, taps)
        feats = features[:, :, rows, cols]  # (N, hidden, P)
        params = model.pixel_params_at(windows.transpose(0, 1).reshape(-1, windows.shape[-1]),
                                       feats.permute(2, 0, 1).reshape(-1, feats.shape[1]))
        symbols: list[torch.Tensor] = []
        for s in range(model.pixel_stages):
            symbols.append(torch.from_numpy(stack.pop(model.pixel_freqs(params, s, symbols).numpy())))
        v = model.pixel_value(symbols).view(len(rows), n).T
        values[:, rows, cols] = v
        canvas[:, rows + rows_pad, cols + half] = model.input(v)
    return values[:, None]


def generate_pixels(model: CodingModel, features: torch.Tensor, height: int, width: int,
                    uniforms: np.ndarray | None) -> torch.Tensor:
    """x from p(x|z) without a stack, deterministically: at each stage the most likely symbol
    (for 8-bit pixels: the most likely level of the most likely group of 16), or, given
    uniform integers in [0, 2^PRECISION) per pixel and stage (N, stages, H, W), the sample
    they select."""
    steps = wavefronts(height, width, model.half)
    if uniforms is not None:
        # In pop order: per step, per stage, position-major and image-minor.
        stream = np.concatenate([uniforms[:, s, r, c].T.reshape(-1) for r, c in steps
                                 for s in range(model.pixel_stages)])
    cursor = 0

    class _Chooser:
        def pop(self, freqs: np.ndarray) -> np.ndarray:
            nonlocal cursor
            if uniforms is None:
                return freqs.argmax(axis=-1)
            u = stream[cursor:cursor + len(freqs)]
            cursor += len(freqs)
            return (np.cumsum(freqs, axis=-1) <= u[:, None]).sum(axis=-1)

    return pop_pixels(_Chooser(), model, features, height, width)
