"""A test set as a folder of named PNGs (00000.png, 00001.png, ...): one archive of the folder
against one archive of the same images from an .npy (what the names cost), and the folder in
shards (every shard plus index.json) against one archive of it.

Run: python -m benchmarks.folders MODEL [--images N] [--shard-size 1000] [--workers 2] [--threads 2] [--data-dir DIR]
(--images: the first N test images only; the ratios depend on the shard size, hardly on N.)
Writes benchmarks/results/folders_MODEL.json and .md.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import vlae_codec
from vlae_codec import container, images, shards

from .common import arguments, model_test_set, provenance, write


def _timed(fn):
    t0 = time.time()
    out = fn()
    return out, round(time.time() - t0, 1)


def main() -> None:
    ap = arguments(__doc__, "shipped model name")
    ap.add_argument("--shard-size", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--images", type=int, default=None, help="the first N test images [default: all]")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = model_test_set(args.model, args.data_dir)[1][:args.images]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "digits"
        folder.mkdir()
        for i, digit in enumerate(x):
            Image.fromarray(digit.astype(bool) if args.model == "bmnist" else digit).save(folder / f"{i:05d}.png")
        npy, t_npy = _timed(lambda: vlae_codec.compress(x, model=args.model))
        imgs = images.read(folder)
        named, t_named = _timed(lambda: vlae_codec.compress(imgs, model=args.model))
        index, t_shards = _timed(lambda: shards.compress(imgs, Path(tmp) / "s", args.shard_size, args.workers,
                                                         model=args.model))
        index_bytes = (Path(tmp) / "s" / shards.INDEX).stat().st_size
        back = vlae_codec.decompress(named)
        parts = shards.decode_parts(index, list(range(len(index.shards))), args.workers, model=args.model)
    header = container.unpack(named)[0]
    exact = (np.array_equal(back, x) and header.names == [f"{i:05d}.png" for i in range(len(x))]
             and np.array_equal(np.concatenate([p.images for p in parts]), x)
             and [n for p in parts for n in p.header.names] == header.names)
    shard_bytes = sum(s.bytes for s in index.shards)
    result = {"provenance": provenance(), "model": args.model, "images": len(x), "shard_size": args.shard_size,
              "npy_archive_bytes": len(npy), "folder_archive_bytes": len(named),
              "folder_over_npy": len(named) / len(npy), "names_bytes": len(named) - len(npy),
              "shards": len(index.shards), "shard_bytes": shard_bytes, "index_bytes": index_bytes,
              "sharded_over_one_archive": (shard_bytes + index_bytes) / len(named),
              "seconds": {"npy": t_npy, "folder": t_named, "sharded": t_shards}, "round_trip_exact": exact}
    md = [f"# {args.model}: {len(x):,} test images as a folder of named PNGs", "",
          "| | bytes | ratio |", "| --- | --- | --- |",
          f"| one archive of the .npy | {len(npy)} | 1 |",
          f"| one archive of the folder (names 00000.png ...) | {len(named)} | {len(named) / len(npy):.5f} × the .npy's |",
          f"| {len(index.shards)} shards of {args.shard_size} + index.json ({index_bytes} bytes) | "
          f"{shard_bytes + index_bytes} | {result['sharded_over_one_archive']:.5f} × the folder's archive |", "",
          f"Round trip exact (every pixel and name): {exact}. Compression took {t_npy} s (.npy), {t_named} s (folder) "
          f"and {t_shards} s (shards, {args.workers} workers)."]
    write(f"folders_{args.model}", result, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
