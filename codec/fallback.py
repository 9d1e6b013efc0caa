"""The plain fallback: zlib of the raw pixels, stored when the model would code them worse."""

from __future__ import annotations

import zlib

import numpy as np

from .errors import FormatError


def pack(pixels: np.ndarray) -> np.ndarray:
    """The pixels (uint8, C order) as a zlib stream, zero-padded into 32-bit payload words."""
    raw = zlib.compress(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes(), 9)
    raw += bytes(-len(raw) % 4)
    return np.frombuffer(raw, dtype="<u4").astype(np.uint32)


def unpack(words: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Pixels of the given shape from `pack`'s words; never inflates past that size."""
    size = int(np.prod(shape))
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(np.asarray(words, dtype="<u4").tobytes(), size)
    except zlib.error:
        raise FormatError("file is corrupt (stored pixels do not inflate)") from None
    rest = inflater.unconsumed_tail + inflater.unused_data
    if len(raw) != size or not inflater.eof or len(rest) > 3 or any(rest):
        raise FormatError("file is corrupt (stored pixels have the wrong size)")
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)
