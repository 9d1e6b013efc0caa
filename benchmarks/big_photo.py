"""A 12-megapixel photo: time per megapixel and peak memory of both directions, against JPEG-XL and WebP.

Run: python -m benchmarks.big_photo [--width 4000] [--height 3000] [--threads 2] [--data-dir DIR]
Writes benchmarks/results/big_photo.json and .md. The photo is a mosaic of the Kodak photos
(each 768x512 or 512x768, laid left to right and top to bottom, cropped to the size), written
as an RGB PNG; no photo that large is in the data. Every command runs in a fresh process
(imports and model loading included) and its peak resident memory is measured; the output
must equal the input in every pixel. JPEG-XL (lossless, effort 9) and WebP (lossless,
method 6) code the same PNG in the same run.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from vlae_codec.model import data

from .common import arguments, provenance, run_measured, write
from .photo_speed import CLASSIC, classic_codecs


def mosaic(folder: Path, width: int, height: int) -> np.ndarray:
    """Kodak photos side by side, row after row, until (height, width, 3) is covered."""
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("kodim*.png"))]
    out = np.zeros((height, width, 3), dtype=np.uint8)
    top, k = 0, 0
    while top < height:
        left, row_height = 0, 0
        while left < width:
            p = photos[k % len(photos)][:height - top, :width - left]
            out[top:top + p.shape[0], left:left + p.shape[1]] = p
            left, row_height, k = left + p.shape[1], max(row_height, p.shape[0]), k + 1
        top += row_height
    return out


def measure(image: np.ndarray, threads: int) -> dict:
    """Sizes, seconds and peak MiB of vlae-codec and the classic codecs on one image."""
    height, width = image.shape[:2]
    megapixels = height * width / 1e6
    row: dict = {"width": width, "height": height, "megapixels": megapixels}
    with tempfile.TemporaryDirectory() as tmp:
        src, packed, back = Path(tmp) / "big.png", Path(tmp) / "big.vlae", Path(tmp) / "back.png"
        Image.fromarray(image).save(src)
        row["png_bytes"] = src.stat().st_size
        cli = [sys.executable, "-m", "vlae_codec.cli"]
        enc = run_measured(cli + ["compress", str(src), "-o", str(packed), "--threads", str(threads)])
        dec = run_measured(cli + ["decompress", str(packed), "-o", str(back), "--threads", str(threads)])
        exact = np.array_equal(np.asarray(Image.open(back)), image)
        row["vlae-codec"] = {"bytes": packed.stat().st_size, "exact": exact,
                             **{d: {"seconds": r["seconds"], "peak_mib": r["peak_mib"],
                                    "seconds_per_megapixel": r["seconds"] / megapixels}
                                for d, r in (("encode", enc), ("decode", dec))}}
        row.update(classic_codecs(src, Path(tmp), repeats=1))
    dims = 3 * height * width
    for codec in ("vlae-codec", *CLASSIC):
        row[codec]["bits_per_dim"] = 8 * row[codec]["bytes"] / dims
    row["png_bits_per_dim"] = 8 * row["png_bytes"] / dims
    return row


def table(r: dict) -> str:
    v = r["vlae-codec"]
    lines = [f"{r['width']}x{r['height']} ({r['megapixels']:.1f} MP), exact: {v['exact']}", "",
             "| codec | bits/dim | encode s | decode s | encode s/MP | decode s/MP | encode peak MiB | decode peak MiB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for codec in ("vlae-codec", *CLASSIC):
        c = r[codec]
        per_mp = [f"{c[d]['seconds'] / r['megapixels']:.2f}" for d in ("encode", "decode")]
        lines.append(f"| {codec} | {c['bits_per_dim']:.4f} | {c['encode']['seconds']:.1f} | {c['decode']['seconds']:.1f}"
                     f" | {' | '.join(per_mp)} | {c['encode']['peak_mib']:.0f} | {c['decode']['peak_mib']:.0f} |")
    lines.append(f"| PNG | {r['png_bits_per_dim']:.4f} | | | | | | |")
    return "\n".join(lines)


def main() -> None:
    ap = arguments(__doc__)
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--height", type=int, default=3000)
    args = ap.parse_args()
    image = mosaic(data.data_dir(args.data_dir) / "kodak", args.width, args.height)
    row = measure(image, args.threads)
    result = {"provenance": {**provenance(), "torch_threads": args.threads}, "photo": row}
    markdown = ("# A 12-megapixel photo: whole commands in fresh processes\n\n"
                "A mosaic of the Kodak photos; vlae-codec with its shipped photo model.\n\n" + table(row) + "\n")
    write("big_photo", result, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
