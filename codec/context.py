"""A context coder for planes no model covers (alpha, masks, 16-bit low bytes, palette indices).

A plane (H, W) of uint8 is pushed as a 2-bit kind and what the kind needs:
- constant: its value (8 bits); a fully opaque alpha costs these 10 bits;
- two-valued: its two values (16 bits), then the plane as bits, each under adaptive counts in
  the context of 10 causal neighbours (JBIG's template); cut-out masks and 1-bit images;
- general: each value as its residual from the median edge predictor (LOCO-I), mod 256, under
  adaptive counts in one of 8 contexts of local activity; soft edges and gradients;
- labels: the number of labels, then each value under adaptive counts in the context of its
  left neighbour's value (its upper one's in the first column); palette indices, whose numbers
  mean nothing but whose repeats and neighbours do.
Counts start flat and are updated after every wavefront step with integer arithmetic, so the
decoder rebuilds exactly the encoder's tables. A pixel sees at most 2 columns to its right in
the row above, so all pixels of a wavefront (row lag 3, 2 for the general coder, 1 for labels)
are decoded in one call.
"""

from __future__ import annotations

import numpy as np

from .ans import PRECISION, Stack

CONSTANT, TWO_VALUED, GENERAL, LABELS = 0, 1, 2, 3
KINDS = 4  # the kind is pushed uniformly over 4
ONE = 1 << PRECISION
PUSH_ROWS = 4096  # symbols pushed per call, bounding the encoder's tables in memory
BAND_ROWS = 256  # rows whose contexts the encoder makes at once, bounding its temporaries
# (increment, total beyond which counts are halved) of the two adaptive models
BIT_STEP, BIT_LIMIT = 2, 1 << 13
BYTE_STEP, BYTE_LIMIT = 32, 1 << 16
# JBIG's 10-pixel template: (row offset, column offset) of each context bit
TEMPLATE = ((-2, -1), (-2, 0), (-2, 1), (-1, -2), (-1, -1), (-1, 0), (-1, 1), (-1, 2), (0, -2), (0, -1))
ACTIVITY = np.array([1, 3, 7, 15, 31, 63, 127])  # bucket edges of |W-NW| + |NW-N| + |N-NE|


def _wavefronts(height: int, width: int, lag: int):
    """(rows, cols) of each step: pixel (r, c) is decoded at step c + lag * r."""
    for t in range(width + (height - 1) * lag):
        lo = max(0, -(-(t - width + 1) // lag))
        rows = np.arange(lo, min(height - 1, t // lag) + 1)
        yield rows, t - lag * rows


def _normalized(counts: np.ndarray) -> np.ndarray:
    """Counts (rows of any positive total) -> frequencies >= 1 summing to 2^PRECISION; the
    rounding remainder goes to each row's first largest entry."""
    k = counts.shape[1]
    freqs = 1 + (counts * (ONE - k)) // counts.sum(axis=1, keepdims=True)
    top = np.argmax(counts, axis=1)
    freqs[np.arange(len(freqs)), top] += ONE - freqs.sum(axis=1)
    return freqs


class _Values:
    """A coder whose symbols are the plane's values themselves."""

    @staticmethod
    def to_symbols(values: np.ndarray, padded, rows, cols) -> np.ndarray:
        return values

    @staticmethod
    def from_symbols(symbols: np.ndarray, padded, rows, cols) -> np.ndarray:
        return symbols


class _Bits(_Values):
    """Adaptive bits in JBIG contexts."""

    lag = 3

    def __init__(self):
        self.counts = np.ones((1 << len(TEMPLATE), 2), dtype=np.int64)

    @staticmethod
    def contexts(padded: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        ctx = np.zeros(len(rows), dtype=np.int64)
        for dr, dc in TEMPLATE:
            ctx = (ctx << 1) | padded[rows + 2 + dr, cols + 2 + dc]
        return ctx

    def counts_used(self, ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index of each pixel's row, rows of counts): here a row per pixel."""
        return np.arange(len(ctx)), self.counts[ctx]

    @staticmethod
    def tables(counts: np.ndarray) -> np.ndarray:
        one = np.clip((counts[:, 1] << PRECISION) // counts.sum(axis=1), 1, ONE - 1)
        return np.stack([ONE - one, one], axis=1)

    def update(self, ctx: np.ndarray, symbols: np.ndarray) -> None:
        _adapt(self.counts, ctx, symbols, BIT_STEP, BIT_LIMIT)


class _Bytes:
    """Adaptive residuals of the median edge predictor in 8 activity contexts."""

    lag = 2

    def __init__(self):
        self.counts = np.ones((len(ACTIVITY) + 1, 256), dtype=np.int64)

    @staticmethod
    def _neighbours(padded, rows, cols):
        r, c = rows + 2, cols + 2
        w, n, nw, ne = padded[r, c - 1], padded[r - 1, c], padded[r - 1, c - 1], padded[r - 1, c + 1]
        # Outside the plane a neighbour takes the nearest causal one, so edges predict well.
        first_row, first_col, last_col = rows == 0, cols == 0, cols == padded.shape[1] - 5
        w = np.where(first_col, n, w)
        n = np.where(first_row, w, n)
        nw = np.where(first_row | first_col, n, nw)
        ne = np.where(first_row | last_col, n, ne)
        return w, n, nw, ne

    def contexts(self, padded, rows, cols) -> np.ndarray:
        w, n, nw, ne = self._neighbours(padded, rows, cols)
        activity = np.abs(w - nw) + np.abs(nw - n) + np.abs(n - ne)
        return np.searchsorted(ACTIVITY, activity, side="left")

    def counts_used(self, ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index of each pixel's row, rows of counts): here every context's row."""
        return ctx, self.counts.copy()

    tables = staticmethod(_normalized)

    def update(self, ctx: np.ndarray, symbols: np.ndarray) -> None:
        _adapt(self.counts, ctx, symbols, BYTE_STEP, BYTE_LIMIT)

    def _predict(self, padded, rows, cols) -> np.ndarray:
        w, n, nw, _ = self._neighbours(padded, rows, cols)
        return np.where(nw >= np.maximum(w, n), np.minimum(w, n),
                        np.where(nw <= np.minimum(w, n), np.maximum(w, n), w + n - nw))

    def to_symbols(self, values, padded, rows, cols) -> np.ndarray:
        return (values - self._predict(padded, rows, cols)) % 256

    def from_symbols(self, symbols, padded, rows, cols) -> np.ndarray:
        return (symbols + self._predict(padded, rows, cols)) % 256


class _Labels(_Values):
    """Adaptive labels in the context of the label to the left."""

    lag = 1

    def __init__(self, labels: int):
        self.counts = np.ones((labels, labels), dtype=np.int64)

    @staticmethod
    def contexts(padded, rows, cols) -> np.ndarray:
        r, c = rows + 2, cols + 2
        return np.where(cols == 0, padded[r - 1, c], padded[r, c - 1])

    def counts_used(self, ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index of each pixel's row, rows of counts): here the rows of the step's contexts."""
        used, where = np.unique(ctx, return_inverse=True)
        return where, self.counts[used]

    tables = staticmethod(_normalized)

    def update(self, ctx: np.ndarray, symbols: np.ndarray) -> None:
        _adapt(self.counts, ctx, symbols, BYTE_STEP, BYTE_LIMIT)


def _adapt(counts: np.ndarray, ctx: np.ndarray, symbols: np.ndarray, step: int, limit: int) -> None:
    seen = np.bincount(ctx * counts.shape[1] + symbols, minlength=counts.size).reshape(counts.shape)
    counts += step * seen
    full = (seen.sum(axis=1) > 0) & (counts.sum(axis=1) > limit)  # only the step's contexts halve
    counts[full] = (counts[full] + 1) >> 1


def _padded(height: int, width: int) -> np.ndarray:
    return np.zeros((height + 2, width + 4), dtype=np.int64)


def _push_plane(stack: Stack, values: np.ndarray, coder) -> None:
    """Replay the decoder's steps to learn every table, then push in reverse step order. The
    encoder knows every pixel, so contexts and symbols are made for the whole plane at once
    (a band of rows at a time); only the adaptive counts go step by step. Each step keeps its
    contexts' counts, not a row per pixel, so memory stays a few bytes a pixel; tables are made
    from them a batch of steps at a time."""
    height, width = values.shape
    padded = _padded(height, width)
    padded[2:, 2:-2] = values
    ctx, symbols = np.empty((2, height, width), dtype=np.int64)
    for top in range(0, height, BAND_ROWS):
        rows, cols = (a.ravel() for a in np.indices((min(BAND_ROWS, height - top), width)))
        rows += top
        ctx[rows, cols] = coder.contexts(padded, rows, cols)
        symbols[rows, cols] = coder.to_symbols(values[rows, cols].astype(np.int64), padded, rows, cols)
    ctx, symbols = ctx.ravel(), symbols.ravel()
    steps = []
    for rows, cols in _wavefronts(height, width, coder.lag):
        at = rows * width + cols
        steps.append((at, *coder.counts_used(ctx[at])))
        coder.update(ctx[at], symbols[at])
    end = len(steps)
    while end > 0:
        start, size = end, 0
        while start > 0 and size < PUSH_ROWS:
            start -= 1
            size += len(steps[start][0])
        batch = steps[start:end]
        first = np.cumsum([0] + [len(c) for _, _, c in batch[:-1]])
        stack.push(symbols[np.concatenate([at for at, _, _ in batch])],
                   coder.tables(np.concatenate([c for _, _, c in batch])),
                   rows=np.concatenate([i + f for (_, i, _), f in zip(batch, first)]))
        end = start


def _pop_plane(stack: Stack, height: int, width: int, coder) -> np.ndarray:
    padded = _padded(height, width)
    for rows, cols in _wavefronts(height, width, coder.lag):
        ctx = coder.contexts(padded, rows, cols)
        index, counts = coder.counts_used(ctx)
        symbols = stack.pop(coder.tables(counts), rows=index)
        padded[rows + 2, cols + 2] = coder.from_symbols(symbols, padded, rows, cols)
        coder.update(ctx, symbols)
    return padded[2:, 2:-2].astype(np.uint8)


def push(stack: Stack, plane: np.ndarray, labels: bool = False) -> None:
    """Push a uint8 plane (H, W); `pop` with the same size returns it. `labels`: its values
    are labels (palette indices), not levels."""
    values = np.unique(plane)
    if len(values) == 1:
        stack.push_uniform(np.array([values[0]]), 256)
        kind = CONSTANT
    elif len(values) == 2:
        _push_plane(stack, (plane == values[1]).astype(np.int64), _Bits())
        stack.push_uniform(values.astype(np.int64), 256)
        kind = TWO_VALUED
    elif labels:
        count = int(values[-1]) + 1
        _push_plane(stack, plane.astype(np.int64), _Labels(count))
        stack.push_uniform(np.array([count - 1]), 256)
        kind = LABELS
    else:
        _push_plane(stack, plane.astype(np.int64), _Bytes())
        kind = GENERAL
    stack.push_uniform(np.array([kind]), KINDS)


def pop(stack: Stack, height: int, width: int) -> np.ndarray:
    """The plane (H, W) uint8 that `push` pushed last."""
    kind = int(stack.pop_uniform(1, KINDS)[0])
    if kind == CONSTANT:
        return np.full((height, width), stack.pop_uniform(1, 256)[0], dtype=np.uint8)
    if kind == TWO_VALUED:
        lo, hi = stack.pop_uniform(2, 256)
        bits = _pop_plane(stack, height, width, _Bits())
        return np.where(bits == 1, hi, lo).astype(np.uint8)
    if kind == GENERAL:
        return _pop_plane(stack, height, width, _Bytes())
    if kind == LABELS:
        count = int(stack.pop_uniform(1, 256)[0]) + 1
        return _pop_plane(stack, height, width, _Labels(count))
    raise ValueError(f"unknown plane kind {kind}")
