"""Exactness over everything at hand: each shipped model's whole test set as one archive, and
every Kodak photo as its own file, compressed and decompressed with the current code and
compared pixel by pixel.

Run: python -m benchmarks.roundtrip [--threads 1] [--data-dir DIR]
Writes benchmarks/results/roundtrip.json and .md; exits non-zero if any round trip is not exact.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import vlae_codec
from vlae_codec import container
from vlae_codec.model import data, zoo

from .common import arguments, provenance, write


def _timed(images, **kwargs) -> dict:
    t0 = time.time()
    blob = vlae_codec.compress(images, **kwargs)
    t1 = time.time()
    back = vlae_codec.decompress(blob)
    t2 = time.time()
    original = np.asarray(Image.open(images).convert("RGB")) if isinstance(images, Path) else images
    header = container.unpack(blob)[0]
    return {"bytes": len(blob), "bits_per_dim": 8 * len(blob) / original.size,
            "format_version": header.version, "mode": header.mode,
            "compress_seconds": round(t1 - t0, 1), "decompress_seconds": round(t2 - t1, 1),
            "exact": bool(back.shape == original.shape and np.array_equal(back, original))}


def main() -> None:
    ap = arguments(__doc__, threads=1)
    ap.add_argument("--limit", type=int, default=None, help="first N test images and photos only (a smoke test)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    result = {"provenance": provenance(), "test_sets": {}, "kodak": {}}
    for name in zoo.shipped_models():
        x = data.load_split(name, "test", args.data_dir)[:args.limit]
        r = _timed(x, model=name)
        result["test_sets"][name] = {"images": len(x), **r}
        print(name, r, file=sys.stderr, flush=True)
    for photo in sorted((data.data_dir(args.data_dir) / "kodak").glob("*.png"))[:args.limit]:
        r = _timed(photo, model="cifar")
        result["kodak"][photo.name] = r
        print(photo.name, r, file=sys.stderr, flush=True)
    rows = [f"| {n} test set, one archive ({r['images']:,} images) | {r['bits_per_dim']:.4f} | {r['mode']} | "
            f"{r['compress_seconds']} s / {r['decompress_seconds']} s | {'yes' if r['exact'] else '**NO**'} |"
            for n, r in result["test_sets"].items()]
    rows += [f"| Kodak {n}, its own file | {r['bits_per_dim']:.4f} | {r['mode']} | "
             f"{r['compress_seconds']} s / {r['decompress_seconds']} s | {'yes' if r['exact'] else '**NO**'} |"
             for n, r in result["kodak"].items()]
    runs = list(result["test_sets"].values()) + list(result["kodak"].values())
    exact = sum(r["exact"] for r in runs)
    md = ["# Round trips with the current code", "",
          f"{exact} of {len(runs)} round trips exact (every pixel compared); file format version "
          f"{sorted({r['format_version'] for r in runs})}; torch threads {args.threads}.", "",
          "| input | bits/dim (real file) | mode | compress / decompress | exact |", "| --- | --- | --- | --- | --- |",
          *rows]
    write("roundtrip", result, "\n".join(md))
    print("\n".join(md))
    sys.exit(0 if exact == len(runs) else 1)


if __name__ == "__main__":
    main()
