"""The plain fallback: zlib of the raw pixels, stored when the model would code them worse."""

from __future__ import annotations

import zlib

import numpy as np

from .errors import FormatError

# The fallback only matters where the model codes worse than zlib, and level 9 bought little
# there for its time: on the digit test sets it took 2.4-2.9 s (a tenth of an archive's
# compress, on a core the networks want) against 0.17-0.23 s at level 6, for files 2% (MNIST)
# to 18% (binarized MNIST) smaller. Any level inflates alike.
LEVEL = 6


def pack(pixels: np.ndarray) -> np.ndarray:
    """The pixels (uint8, C order) as a zlib stream, zero-padded into 32-bit payload words."""
    raw = zlib.compress(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes(), LEVEL)
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
