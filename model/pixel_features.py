"""Per-pixel features of codes, handed out a few pixels at a time as the coder walks the image.

`at(rows, cols)` gives the features of those positions in every image, position-major and
image-minor, the order the codec reads them in. `WholeFeatures` holds a precomputed map (a
global code's, or a grid of codes' on a small enough image); `BlockFeatures` makes a grid of
codes' features a block at a time, when first asked for, and keeps them in a few slots per
row of blocks, so that its memory grows with the image's width and not with its area: a
12-megapixel photo's whole map would take 6 GB. Both give the same integers as the whole map.
"""

from __future__ import annotations

import numpy as np
import torch

from .quantize import IntLayer

GROUP = 4  # blocks along a row made together (a multiple of it starts each group)


class WholeFeatures:
    """A precomputed feature map, laid out position-major (H, W, N, F) int16: exact, as every
    model clamps its features to that range, at a quarter of int64's memory."""

    def __init__(self, by_position: torch.Tensor):
        _, self.width, self.n, self.channels = by_position.shape
        self._by_position = by_position

    @classmethod
    def of_map(cls, features: torch.Tensor) -> WholeFeatures:
        """From a map (N, F, H, W)."""
        return cls(features.permute(2, 3, 0, 1).to(torch.int16).contiguous())

    def at(self, rows: np.ndarray, cols: np.ndarray) -> torch.Tensor:
        """Features (len(rows) * N, F) of pixels (rows[i], cols[i]), position-major, image-minor."""
        at = torch.from_numpy(rows * self.width + cols)
        return self._by_position.view(-1, self.n, self.channels).index_select(0, at).view(-1, self.channels)

    def whole(self) -> torch.Tensor:
        """The map (N, F, H, W), int16."""
        return self._by_position.permute(2, 3, 0, 1)


class BlockFeatures:
    """Features of a grid of codes, `layer` (a 1x1 layer to F * B * B channels) applied to each
    block's vector (N, F', rows, cols); channel f at (i, j) of a block is output f*B*B + i*B + j,
    as pixel_shuffle has it."""

    def __init__(self, layer: IntLayer, vectors: torch.Tensor, block: int, height: int, width: int):
        self.layer, self.block, self.height, self.width = layer, block, height, width
        self.n, _, self.rows, self.cols = vectors.shape
        self.channels = layer.weight.shape[0] // block**2
        self._vectors = vectors.permute(2, 3, 0, 1).contiguous()  # (rows, cols, N, F')
        self.slots = 0  # no cache until `at` is first asked: a map made `whole` never needs one

    def _allocate(self, slots: int) -> None:
        """An empty cache of `slots` blocks per row of blocks; block column c lives in slot c % slots."""
        b = self.block
        self.slots = slots
        self._cache = torch.empty(self.rows * slots * b * b, self.n, self.channels, dtype=torch.int16)
        self._held = np.full((self.rows, slots), -1)  # the block column each slot holds

    def blocks(self, rows: np.ndarray, cols: np.ndarray) -> torch.Tensor:
        """The pixels of blocks (rows[k], cols[k]): (K, B, B, N, F) int16, exact (the layer
        clamps to that range)."""
        b, k = self.block, len(rows)
        vectors = self._vectors[torch.from_numpy(rows), torch.from_numpy(cols)]
        out = self.layer.pointwise(vectors.reshape(k * self.n, -1)).cpu()
        return out.to(torch.int16).view(k, self.n, self.channels, b, b).permute(0, 3, 4, 1, 2)

    def at(self, rows: np.ndarray, cols: np.ndarray) -> torch.Tensor:
        """Features (len(rows) * N, F) of pixels (rows[i], cols[i]), position-major, image-minor."""
        b = self.block
        block_row, block_col = rows // b, cols // b
        if self.slots == 0 or (self._held[block_row, block_col % self.slots] != block_col).any():
            self._make(block_row, block_col)
        where = ((block_row * self.slots + block_col % self.slots) * b + rows % b) * b + cols % b
        return self._cache.index_select(0, torch.from_numpy(where)).view(-1, self.channels)

    def _make(self, block_row: np.ndarray, block_col: np.ndarray) -> None:
        """Hold blocks (block_row[i], block_col[i]) all at once, making those not held yet."""
        b, g = self.block, GROUP
        wanted = np.unique(block_row * self.cols + block_col)  # sorted by row, then column
        wanted_row, wanted_col = np.divmod(wanted, self.cols)
        starts = np.flatnonzero(np.diff(wanted_row, prepend=-1))
        ends = np.append(starts[1:], len(wanted)) - 1
        # Held: the wanted columns of each row, widened to whole groups, and one slot to spare,
        # so that a walk that moves on evicts only what it has left behind.
        span = int((wanted_col[ends] - wanted_col[starts]).max()) + 2 * g
        if span >= self.slots:
            self._allocate(1 << span.bit_length())
        missing = self._held[wanted_row, wanted_col % self.slots] != wanted_col
        if missing.any():
            # Whole groups of GROUP blocks along the row: one matrix product of a few dozen
            # blocks runs several times faster per block than one of one or two.
            per_row = -(-self.cols // g)
            groups = np.unique(wanted_row[missing] * per_row + wanted_col[missing] // g)
            new_row = np.repeat(groups // per_row, g)
            new_col = ((groups % per_row * g)[:, None] + np.arange(g)).reshape(-1)
            keep = new_col < self.cols
            new_row, new_col = new_row[keep], new_col[keep]
            slot = torch.from_numpy(new_row * self.slots + new_col % self.slots)
            self._cache.view(-1, b, b, self.n, self.channels)[slot] = self.blocks(new_row, new_col)
            self._held[new_row, new_col % self.slots] = new_col

    def whole(self) -> torch.Tensor:
        """The map (N, F, H, W), int16, one row of blocks at a time (not through the cache)."""
        b, height, width = self.block, self.height, self.width
        out = torch.empty(height, width, self.n, self.channels, dtype=torch.int16)
        cols = np.arange(self.cols)
        for r in range(self.rows):
            pixels = self.blocks(np.full(self.cols, r), cols)  # (cols, B, B, N, F)
            pixels = pixels.permute(1, 0, 2, 3, 4).reshape(b, self.cols * b, self.n, self.channels)
            out[r * b:(r + 1) * b] = pixels[:height - r * b, :width]
        return out.permute(2, 3, 0, 1)
