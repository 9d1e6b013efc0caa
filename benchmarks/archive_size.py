"""Rate against the number of images in one archive, for the VLAE codec and the BB-ANS baseline.

The first image of an archive has no bits to pop (the clean start), so small archives pay
more per image; the curve shows how fast each codec gets to its asymptote.
"""

from __future__ import annotations

import time

import numpy as np

import vlae_codec
from vlae_codec import container

from .bbans import measure as bbans_measure
from .bbans import mlp_vae
from .rates import information


def counts_for(n: int, counts: tuple[int, ...]) -> list[int]:
    """The archive sizes to measure for n images: those of `counts` below n, and n itself."""
    return sorted({c for c in counts if 0 < c < n} | {n})


def vlae_counts(name: str, x: np.ndarray, counts: list[int], full: tuple[bytes, np.ndarray, dict]) -> list[dict]:
    """Real bits/dim (whole file: header, clean start, payload) of the first n images of x as one
    archive, for each n; every archive is decoded and checked. The archive of all of x is `full`
    (bytes, information, timing) from the speed measurement, not coded twice."""
    out = []
    for n in counts:
        if n == len(x):
            blob, info, timing = full
            t_c, t_d = timing["compress_seconds"], timing["decompress_seconds"]
        else:
            t0 = time.time()
            enc = vlae_codec.encode(x[:n], model=name)
            t_c = time.time() - t0
            t0 = time.time()
            back = vlae_codec.decode(enc.data, model=name).images
            t_d = time.time() - t0
            if not np.array_equal(back, x[:n]):
                raise RuntimeError(f"{name}: the archive of {n} images did not decode to its input")
            blob, info = enc.data, enc.info.total
        header, words = container.unpack(blob)
        dims = x[:n].size
        out.append({"images": n, "bytes": len(blob), "bits_per_dim": 8 * len(blob) / dims,
                    "payload_bits_per_dim": 8 * header.payload_bytes / dims if header.mode != "stored" else None,
                    "information_bits_per_dim": information(info, x[0].size)["information_bits_per_dim"],
                    "mode": header.mode, "compress_seconds": round(t_c, 3), "decompress_seconds": round(t_d, 3)})
    return out


def bbans_model(dataset: str) -> str | None:
    """The BB-ANS baseline trained for a data set, if there is one (binary and 8-bit MNIST)."""
    name = f"bbans_{dataset}"
    return name if name in bbans_measure.MODELS else None


def bbans_run(name: str, x: np.ndarray, counts: list[int], elbo_samples: int) -> tuple[dict, list[dict]]:
    """The BB-ANS baseline on x: its figures for the rate table, and its rate for each archive size.

    Archives are in the project's container (header, payload, CRC), like the VLAE's files."""
    model, cm, _ = bbans_measure.load(name)
    t0 = time.time()
    float_fig = mlp_vae.evaluate(model, x, samples=elbo_samples)
    coded = bbans_measure.archives(cm, x, tuple(counts), model_id=name)
    whole = coded[len(x)]
    dims_per_image = x[0].size
    figures = {"model": name, "images": len(x), "elbo_samples": elbo_samples,
               "float_neg_elbo_bits_per_dim": float_fig["neg_elbo_bits_per_dim"],
               "coding_neg_elbo_bits_per_dim": information(whole.info.total, dims_per_image)["coding_neg_elbo_bits_per_dim"],
               "file_bytes": whole.file_bytes, "file_bits_per_dim": whole.file_bits_per_dim,
               "payload_bits_per_dim": whole.payload_bits_per_dim,
               "compress_seconds": round(whole.seconds[0], 2), "decompress_seconds": round(whole.seconds[1], 2),
               "compress_images_per_second": round(len(x) / whole.seconds[0], 1),
               "decompress_images_per_second": round(len(x) / whole.seconds[1], 1),
               "roundtrip_ok": whole.roundtrip_ok, "seconds": round(time.time() - t0, 1)}
    per_count = [{"images": n, "bytes": a.file_bytes, "bits_per_dim": a.file_bits_per_dim,
                  "payload_bits_per_dim": a.payload_bits_per_dim,
                  "information_bits_per_dim": float(a.info.total.sum() / a.dims),
                  "compress_seconds": round(a.seconds[0], 3), "decompress_seconds": round(a.seconds[1], 3)}
                 for n, a in sorted(coded.items())]
    return figures, per_count
