"""A test set as one archive against the same set in independent shards: real bits/dim, each
shard's clean start, and times.

Run: python -m benchmarks.shards MODEL [--shard-size 1000] [--workers 2] [--data-dir DIR]
Writes benchmarks/results/shards_MODEL.json and .md.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import vlae_codec
from vlae_codec import images, shards

from .common import arguments, model_test_set, provenance, write


def main() -> None:
    ap = arguments(__doc__, "shipped model name", threads_help="threads of the single-archive run")
    ap.add_argument("--shard-size", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dataset, x = model_test_set(args.model, args.data_dir)
    dims = x.size

    t0 = time.time()
    single = vlae_codec.encode(x, model=args.model)
    single_seconds = time.time() - t0
    imgs = images.from_array(x)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        index = shards.compress(imgs, Path(tmp) / "s", args.shard_size, args.workers, model=args.model)
        t_c = time.time() - t0
        t0 = time.time()
        back = shards.decode_shards(index, list(range(len(index.shards))), args.workers, model=args.model)
        t_d = time.time() - t0
    sharded_bytes = sum(s.bytes for s in index.shards)
    single_bpd, sharded_bpd = 8 * len(single.data) / dims, 8 * sharded_bytes / dims
    result = {"provenance": provenance(), "model": args.model, "images": len(x), "shard_size": args.shard_size,
              "workers": args.workers, "single_bytes": len(single.data), "single_bits_per_dim": single_bpd,
              "single_compress_seconds": round(single_seconds, 1),
              "sharded_bytes": sharded_bytes, "sharded_bits_per_dim": sharded_bpd,
              "sharded_over_single": sharded_bpd / single_bpd, "shards": len(index.shards),
              "shard_bytes": [s.bytes for s in index.shards],
              "clean_start_bits_per_shard": [s.clean_start_bits for s in index.shards],
              "sharded_compress_seconds": round(t_c, 1), "sharded_decompress_seconds": round(t_d, 1),
              "round_trip_exact": bool(np.array_equal(back, x))}
    md = [f"# {args.model}: {len(x):,} test images as one archive and in shards of {args.shard_size}", "",
          "| | bytes | bits/dim |", "| --- | --- | --- |",
          f"| one archive | {len(single.data)} | {single_bpd:.4f} |",
          f"| {len(index.shards)} shards | {sharded_bytes} | {sharded_bpd:.4f} |", "",
          f"Sharded / single: {sharded_bpd / single_bpd:.5f} (the extra is each shard's header and clean start: "
          f"{np.mean(result['clean_start_bits_per_shard']):.0f} bits on average for a shard's first image, which has "
          "no bits back). "
          f"Sharded compression took {t_c:.1f} s and decompression {t_d:.1f} s with {args.workers} worker processes "
          f"(one archive: compression {single_seconds:.1f} s with {args.threads} threads). "
          f"Round trip exact: {result['round_trip_exact']}.", "",
          "| shard | bytes | clean start (bits) |", "| --- | --- | --- |"]
    md += [f"| {k} | {s.bytes} | {s.clean_start_bits:.1f} |" for k, s in enumerate(index.shards)]
    write(f"shards_{args.model}", result, "\n".join(md))


if __name__ == "__main__":
    main()
