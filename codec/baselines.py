"""Sizes that classic lossless codecs reach on the same images, for comparison."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma

import numpy as np
from PIL import Image

try:  # JPEG-XL support for Pillow is optional (pip install 'vlae-codec[bench]').
    import pillow_jxl  # noqa: F401

    HAVE_JXL = True
except ImportError:
    HAVE_JXL = False


def _pil(image: np.ndarray, binary: bool) -> Image.Image:
    if binary:
        return Image.fromarray((image * 255).astype(np.uint8)).convert("1")
    return Image.fromarray(image)


def encode(image: np.ndarray, binary: bool, codec: str) -> bytes:
    """One image as a lossless file of the given codec ("png", "webp" or "jxl")."""
    im = _pil(image, binary)
    buf = io.BytesIO()
    if codec == "png":
        im.save(buf, format="PNG", optimize=True)
    elif codec == "webp":
        im = im.convert("L") if binary else im
        im.save(buf, format="WEBP", lossless=True, quality=100, method=6)
    elif codec == "jxl":
        im = im.convert("L") if binary else im
        im.save(buf, format="JXL", lossless=True, effort=9)
    else:
        raise ValueError(codec)
    return buf.getvalue()


def decode(encoded: bytes, grey: bool = False) -> np.ndarray:
    """The pixels of an encoded image file; `grey` for a greyscale image, which WebP stores as RGB."""
    with Image.open(io.BytesIO(encoded)) as im:
        return np.asarray(im.convert("L") if grey and im.mode != "L" else im)


def encoded_size(image: np.ndarray, binary: bool, codec: str) -> int:
    """Bytes of one image as a lossless file of the given codec ("png", "webp" or "jxl")."""
    return len(encode(image, binary, codec))


def sizes(images: np.ndarray, binary: bool) -> dict[str, int | None]:
    """Total bytes with each image as its own file, per codec (None where unavailable)."""
    out: dict[str, int | None] = {}
    for codec in ("png", "webp", "jxl"):
        if codec == "jxl" and not HAVE_JXL:
            out[codec] = None
            continue
        out[codec] = sum(encoded_size(im, binary, codec) for im in images)
    return out


def raw_sizes(images: np.ndarray) -> dict[str, int]:
    """Bytes of the raw uint8 array (one byte per pixel) under general-purpose compressors."""
    raw = np.ascontiguousarray(images, dtype=np.uint8).tobytes()
    return {"gzip": len(gzip.compress(raw, 9)), "bz2": len(bz2.compress(raw, 9)),
            "lzma": len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME))}
