"""Single-image files: each of 100 seeded test images of a digit model as its own .vlae file,
against its coding-model negative ELBO (the clean start's cost of having nothing to pop).

Run: python -m benchmarks.single_files [MODEL ...] [--images 100] [--threads 2] [--data-dir DIR]
Writes benchmarks/results/single_files.json and .md.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from vlae_codec.model import data

from .common import provenance, write
from .rates import single_file_figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="*", default=["bmnist", "mnist"])
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    result = {"provenance": provenance(), "models": {}}
    for name in args.models:
        x = data.load_split(name, "test", args.data_dir)
        # The same seeded digits as test_set.py's single-file figures.
        singles = x[np.random.default_rng(0).permutation(len(x))[:args.images]]
        result["models"][name] = single_file_figures(name, singles)
    md = ["# Single-image files", "", "| model | images | bytes per file | header | payload / -ELBO |",
          "| --- | --- | --- | --- | --- |"]
    md += [f"| {n} | {r['images']} | {r['mean_bytes']:.1f} | {r['mean_header_bytes']:.1f} | {r['payload_over_neg_elbo']:.3f} |"
           for n, r in result["models"].items()]
    write("single_files", result, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
