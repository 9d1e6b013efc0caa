"""Bits/dim of one model's test images: the model's own figures, single-image files, classic codecs."""

from __future__ import annotations

import math
import time

import numpy as np

import vlae_codec
from vlae_codec import baselines, container
from vlae_codec.accounting import coding_neg_elbo
from vlae_codec.api import as_tensor, coding_model
from vlae_codec.model import zoo
from vlae_codec.model.evaluate import evaluate


def mosaic(images: np.ndarray, per_row: int = 100) -> np.ndarray:
    """Images (N, H, W[, C]) tiled into one image, `per_row` across."""
    n, h, w = images.shape[:3]
    rows = math.ceil(n / per_row)
    canvas = np.zeros((rows * h, per_row * w) + images.shape[3:], np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, per_row)
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = im
    return canvas


def model_figures(name: str, x: np.ndarray, elbo_samples: int, is_images: int, is_samples: int) -> dict:
    """The float model's -ELBO on all of x, and its -ELBO and importance-sampled NLL on the first
    `is_images` of x (the NLL costs `is_samples` network passes per image, so it gets a subset)."""
    model = zoo.load(name)
    t0 = time.time()
    full = evaluate(model, x, is_samples=0, elbo_samples=elbo_samples, seed=0)
    subset = evaluate(model, x[:is_images], is_samples=is_samples, elbo_samples=elbo_samples, seed=0)
    return {"images": len(x), "elbo_samples": elbo_samples,
            "neg_elbo_bits_per_dim": full["neg_elbo_bits_per_dim"],
            "neg_elbo_nats_per_image": full["neg_elbo_nats_per_image"],
            "kl_bits_per_image": full["kl_bits_per_image"],
            "is_images": subset["images"], "is_samples": is_samples,
            "is_subset_neg_elbo_bits_per_dim": subset["neg_elbo_bits_per_dim"],
            "nll_is_bits_per_dim": subset["nll_is_bits_per_dim"],
            "nll_is_nats_per_image": subset["nll_is_nats_per_image"],
            "seconds": round(time.time() - t0, 1)}


def information(info: np.ndarray, dims_per_image: int) -> dict:
    """What the coder wrote, per image, in bits (from `vlae_codec.encode`): the coding model's
    -ELBO is the mean over the images coded with bits back, i.e. all but the clean start."""
    info = np.asarray(info, dtype=np.float64)
    bits_back = info[1:] if len(info) > 1 else info
    return {"coding_neg_elbo_bits_per_dim": float(bits_back.mean() / dims_per_image),
            "coding_neg_elbo_images": len(bits_back),
            "information_bits_per_dim": float(info.sum() / (len(info) * dims_per_image)),
            "clean_start_bits": float(info[0])}


def archive_figures(blob: bytes, info: np.ndarray, x: np.ndarray) -> dict:
    """Real size of one archive against the information content it codes."""
    header, _ = container.unpack(blob)
    real = 8 * len(blob) / x.size
    fig = information(info, x[0].size)
    return {"bytes": len(blob), "header_bytes": len(blob) - header.payload_bytes, "real_bits_per_dim": real,
            "neg_elbo_bits_per_dim": fig["information_bits_per_dim"], "clean_start_bits": fig["clean_start_bits"],
            "real_over_neg_elbo": real / fig["information_bits_per_dim"]}


def codecs() -> tuple[str, ...]:
    """The lossless image codecs available here (JPEG-XL needs the `bench` extra)."""
    return ("png", "webp", "jxl") if baselines.HAVE_JXL else ("png", "webp")


def other_codecs(x: np.ndarray, binary: bool) -> dict:
    """PNG / WebP / JPEG-XL as single files and as one mosaic (100 images across), and gzip / bz2 / lzma
    of the raw array, in bits/dim."""
    dims = x.size
    out = {f"{k}_single_files_bits_per_dim": 8 * v / dims for k, v in baselines.sizes(x, binary).items() if v}
    m = mosaic(x, min(100, len(x)))
    for codec in codecs():
        out[f"{codec}_mosaic_bits_per_dim"] = 8 * baselines.encoded_size(m, binary, codec) / dims
    out.update({f"{k}_raw_array_bits_per_dim": 8 * v / dims for k, v in baselines.raw_sizes(x).items()})
    return out


def single_file_sizes(name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image as its own .vlae file (header and clean start included): file and header bytes."""
    sizes, headers = [], []
    for im in x:
        # An (H, W, 3) image alone would read as H greyscale images: give RGB ones a batch axis.
        blob = vlae_codec.compress(im if im.ndim == 2 else im[None], model=name)
        sizes.append(len(blob))
        headers.append(len(blob) - container.unpack(blob)[0].payload_bytes)
    return np.array(sizes), np.array(headers)


def single_file_figures(name: str, x: np.ndarray) -> dict:
    """Each image as its own .vlae file: mean bytes and header, and the payload against the
    coding model's -ELBO of the same images (what the clean start costs)."""
    sizes, headers = single_file_sizes(name, x)
    elbo = coding_neg_elbo(coding_model(name), as_tensor(x)).total
    payload = 8 * (sizes - headers)
    return {"images": len(x), "mean_bytes": float(sizes.mean()), "mean_header_bytes": float(headers.mean()),
            "mean_payload_bits": float(payload.mean()), "mean_neg_elbo_bits": float(elbo.mean()),
            "payload_over_neg_elbo": float(payload.mean() / elbo.mean())}


def single_files(name: str, x: np.ndarray, binary: bool) -> dict:
    """Each image as its own .vlae file, next to each classic codec's single files of the same images."""
    t0 = time.time()
    sizes, headers = single_file_sizes(name, x)
    seconds = time.time() - t0
    dims = x.size
    out = {"images": len(x), "mean_bytes": float(np.mean(sizes)), "mean_header_bytes": float(np.mean(headers)),
           "bits_per_dim": 8 * float(np.sum(sizes)) / dims,
           "payload_bits_per_dim": 8 * float(np.sum(sizes) - np.sum(headers)) / dims,
           "compress_seconds_per_image": round(seconds / len(x), 4)}
    out.update({f"{k}_bits_per_dim": 8 * v / dims for k, v in baselines.sizes(x, binary).items() if v})
    return out


def raw_photos(pixels: list[np.ndarray]) -> dict:
    """gzip / bz2 / lzma of each photo's raw bytes, summed, in bits/dim."""
    dims = sum(p.size for p in pixels)
    totals: dict[str, int] = {}
    for p in pixels:
        for k, v in baselines.raw_sizes(p).items():
            totals[k] = totals.get(k, 0) + v
    return {f"{k}_raw_array_bits_per_dim": 8 * v / dims for k, v in totals.items()}

