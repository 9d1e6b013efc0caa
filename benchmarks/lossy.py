"""Lossy digits: bytes per image against a digit classifier's class agreement, for the VLAE's
lossy mode and for the smallest JPEG, WebP and AVIF files that keep each digit's class.

A digit "keeps its class" when the classifier (benchmarks/classifier.py) gives the decoded
image the class it gives the original. Classic codecs store each digit as its own file, so
their sizes include their container headers; the VLAE's figures are given both ways (one
archive, header shared; and single files, header included).
"""

from __future__ import annotations

import io
import time

import numpy as np
from PIL import Image, features

import vlae_codec
from vlae_codec import container

from . import classifier

# Quality settings tried for each classic codec; the smallest file that keeps the class wins.
QUALITIES = (0, 1, 2, 3, 5, 7, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 100)
# Settings for small files: JPEG with optimized Huffman tables, WebP's slowest method. AVIF at
# speed 6 (Pillow's default): speed 0 made files about 4% smaller at 13x the time on MNIST digits.
CODECS = {"jpeg": ("JPEG", "jpg", {"optimize": True}),
          "webp": ("WEBP", "webp", {"method": 6}),
          "avif": ("AVIF", "avif", {"speed": 6})}


def available() -> tuple[str, ...]:
    """The lossy codecs this Pillow build can write."""
    return tuple(c for c, (_, feature, _) in CODECS.items() if features.check(feature))


def to_8bit(images: np.ndarray) -> np.ndarray:
    """uint8 0..255 images; binary (0/1) images become 0/255."""
    return (images * 255).astype(np.uint8) if images.max() <= 1 else images.astype(np.uint8)


def encode_classic(image: np.ndarray, codec: str, quality: int) -> bytes:
    """One greyscale image (H, W) uint8 as a lossy file of the codec at the quality."""
    fmt, _, options = CODECS[codec]
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, quality=quality, **options)
    return buf.getvalue()


def decode_classic(blob: bytes) -> np.ndarray:
    """A file back to greyscale pixels (H, W) uint8."""
    return np.asarray(Image.open(io.BytesIO(blob)).convert("L"))


def smallest_kept(sizes: np.ndarray, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image (columns of sizes and kept, one row per setting): the row of the smallest file
    that keeps the class, or of the last (highest quality) setting where none does; and
    whether one did."""
    masked = np.where(kept, sizes, np.iinfo(np.int64).max)
    choice = masked.argmin(axis=0)
    any_kept = kept.any(axis=0)
    choice[~any_kept] = len(sizes) - 1
    return choice, any_kept


def classic_lossy(x8: np.ndarray, classes: np.ndarray, judge, codec: str,
                  qualities: tuple[int, ...] = QUALITIES) -> tuple[dict, np.ndarray]:
    """A codec on digits x8 (N, H, W) uint8: each quality's mean file size and agreement, and the
    per-digit smallest file that keeps the class. Returns the figures and those files' images."""
    t0 = time.time()
    sizes = np.zeros((len(qualities), len(x8)), dtype=np.int64)
    decoded = np.zeros((len(qualities),) + x8.shape, dtype=np.uint8)
    for q, quality in enumerate(qualities):
        for i, im in enumerate(x8):
            blob = encode_classic(im, codec, quality)
            sizes[q, i] = len(blob)
            decoded[q, i] = decode_classic(blob)
    kept = np.stack([classifier.predict(judge, decoded[q]) == classes for q in range(len(qualities))])
    choice, any_kept = smallest_kept(sizes, kept)
    cols = np.arange(len(x8))
    figures = {"codec": codec, "images": len(x8), "options": CODECS[codec][2], "qualities": list(qualities),
               "per_quality": [{"quality": qu, "mean_bytes": float(sizes[q].mean()),
                                "class_agreement": float(kept[q].mean())} for q, qu in enumerate(qualities)],
               "smallest_kept": {"mean_bytes": float(sizes[choice, cols].mean()),
                                 "class_agreement": float(any_kept.mean()),
                                 "median_quality": float(np.median(np.asarray(qualities)[choice]))},
               "seconds": round(time.time() - t0, 1)}
    return figures, decoded[choice, cols]


def vlae_lossy(name: str, x: np.ndarray, classes: np.ndarray, judge, effort: int) -> tuple[dict, np.ndarray]:
    """The VLAE's lossy mode on digits x as one archive at an effort: bytes per image (the
    archive's header shared) and class agreement. Returns the figures and the reconstructions."""
    t0 = time.time()
    blob = vlae_codec.compress(x, model=name, lossy=True, effort=effort)
    t_c = time.time() - t0
    t0 = time.time()
    recon = vlae_codec.decode(blob, model=name).images
    t_d = time.time() - t0
    agree = float(np.mean(classifier.predict(judge, to_8bit(recon)) == classes))
    return {"effort": effort, "images": len(x), "bytes": len(blob), "bytes_per_image": len(blob) / len(x),
            "payload_bits_per_image": 32 * len(container.unpack(blob)[1]) / len(x),
            "class_agreement": agree, "compress_seconds": round(t_c, 1), "decompress_seconds": round(t_d, 1)}, recon


def vlae_single_bytes(name: str, x: np.ndarray, effort: int) -> float:
    """Mean size of lossy .vlae files holding one digit each, header included."""
    return float(np.mean([len(vlae_codec.compress(im, model=name, lossy=True, effort=effort)) for im in x]))


def judge_and_classes(x: np.ndarray, data_dir: str | None) -> tuple[object, np.ndarray]:
    """The digit classifier and the class it gives each original."""
    judge = classifier.load(data_dir)
    return judge, classifier.predict(judge, to_8bit(x))
