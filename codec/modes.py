"""Image modes: an image of any supported mode as the pixels a model codes plus side planes, and back.

The main pixels are what the models know: bits, 8-bit greyscale or RGB. The rest travels as
side planes for the context coder (codec/context.py): alpha, the low bytes of 16-bit values;
and as a `Source` record in the header: the mode, a palette, an array's dtype and shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError

# Header codes of the modes; "plain" is a file of format 3 or older: the geometry says it all.
MODES = ("plain", "1", "L", "LA", "RGB", "RGBA", "P", "P;I", "I;16", "RGB;16")
ALPHA = {"LA", "RGBA"}
SIXTEEN = {"I;16", "RGB;16"}
PALETTE = {"P", "P;I"}  # P: coded as its colours; P;I: as its indices (its colours repeat)
MODEL_FREE = {"P;I"}  # main pixels that no model knows: coded by the context coder


@dataclass
class Source:
    """What turns decoded main pixels and side planes back into the user's images."""

    mode: str = "plain"
    palette: bytes = b""  # P: 3 bytes (RGB) per entry
    transparency: bytes = b""  # P: the alpha of each entry (PNG's tRNS); empty: all opaque
    delta: bool = False  # 16-bit: the side plane holds (low - high) mod 256, not the low byte
    dtype: str = ""  # .npy: the array's dtype and shape; empty: uint8 as decoded
    shape: tuple[int, ...] = ()


def planes_per_image(source: Source, channels: int) -> int:
    """How many side planes each image carries."""
    if source.mode in ALPHA or (source.mode == "P" and source.transparency):
        return 1
    if source.mode in SIXTEEN:
        return channels
    return 0


def _palette_arrays(source: Source) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.frombuffer(source.palette, dtype=np.uint8).reshape(-1, 3)
    alpha = np.full(len(rgb), 255, dtype=np.uint8)
    trns = np.frombuffer(source.transparency, dtype=np.uint8)[:len(rgb)]
    alpha[:len(trns)] = trns
    return rgb, alpha


def _keys(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    c = rgb.astype(np.int64)
    return c[..., 0] << 24 | c[..., 1] << 16 | c[..., 2] << 8 | alpha


def split(full: np.ndarray, source: Source) -> tuple[np.ndarray, np.ndarray, Source]:
    """Main pixels (N,H,W[,C]) uint8, side planes (N,K,H,W) uint8 and the source record of
    images `full` (N,H,W[,C]) in `source.mode`; a palette image may move to mode P;I."""
    n, h, w = full.shape[:3]
    none = np.zeros((n, 0, h, w), dtype=np.uint8)
    mode = source.mode
    if mode in ("plain", "1", "L", "RGB"):
        return full.astype(np.uint8), none, source
    if mode in ALPHA:
        main = full[..., 0] if mode == "LA" else full[..., :3]
        return np.ascontiguousarray(main), np.ascontiguousarray(full[..., -1][:, None]), source
    if mode in SIXTEEN:
        high = (full >> 8).astype(np.uint8)
        low = (full & 0xFF).astype(np.uint8)
        delta = (low.astype(np.int16) - high) % 256
        use_delta = len(np.unique(delta)) < len(np.unique(low))
        side = (delta if use_delta else low).astype(np.uint8)
        side = side[:, None] if side.ndim == 3 else side.transpose(0, 3, 1, 2)
        return high, np.ascontiguousarray(side), Source(**{**source.__dict__, "delta": use_delta})
    if mode == "P":
        rgb, alpha = _palette_arrays(source)
        index = full.astype(np.int64)
        keys = _keys(rgb, alpha)
        # Colours decode to the first entry of that colour: fine unless a later one is used.
        first = np.unique(keys, return_index=True)
        if index.max() >= len(rgb) or not np.array_equal(first[1][np.searchsorted(first[0], keys[index])], index):
            return full.astype(np.uint8), none, Source(**{**source.__dict__, "mode": "P;I"})
        side = alpha[index][:, None] if source.transparency else none
        return np.ascontiguousarray(rgb[index]), np.ascontiguousarray(side), source
    raise InputError(f"images of mode {mode} are not supported")


def restore(main: np.ndarray, side: np.ndarray, source: Source) -> np.ndarray:
    """Images (N,H,W[,C]) in the source's mode (uint16 for 16-bit ones) from `split`'s parts."""
    mode = source.mode
    if mode in ("plain", "1", "L", "RGB", "P;I"):
        return main
    if mode in ALPHA:
        return np.concatenate([main[..., None] if main.ndim == 3 else main, side[:, 0, ..., None]], axis=-1)
    if mode in SIXTEEN:
        low = side[:, 0] if main.ndim == 3 else side.transpose(0, 2, 3, 1)
        if source.delta:
            low = (low.astype(np.int16) + main) % 256
        return (main.astype(np.uint16) << 8) | low.astype(np.uint16)
    if mode == "P":
        rgb, alpha = _palette_arrays(source)
        keys = _keys(rgb, alpha)
        order = np.unique(keys, return_index=True)
        a = side[:, 0] if source.transparency else np.full(main.shape[:3], 255, dtype=np.uint8)
        wanted = _keys(main, a)
        pos = np.clip(np.searchsorted(order[0], wanted), 0, len(order[0]) - 1)
        if not np.array_equal(order[0][pos], wanted):
            raise ValueError("a decoded colour is not in the palette")
        return order[1][pos].astype(np.uint8)
    raise ValueError(f"unknown mode {mode}")


def to_array(images: np.ndarray, source: Source) -> np.ndarray:
    """Restored images as the .npy array they came from (its dtype and shape)."""
    if not source.dtype:
        return images
    return images.astype(np.dtype(source.dtype)).reshape(source.shape)
