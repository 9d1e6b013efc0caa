"""The lossy mode on a digit model's whole test set at chosen efforts: bytes per digit and how
often the digit classifier gives the reconstruction the original's class.

Run: python benchmarks/lossy_effort.py MODEL [--efforts 64] [--threads 2] [--data-dir DIR]
Writes benchmarks/results/lossy_effort_MODEL.json and .md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import vlae_codec
from vlae_codec import container
from vlae_codec.model import data, zoo

import classifier
from common import provenance, write


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", help="shipped digit model (bmnist, mnist) or its folder")
    ap.add_argument("--efforts", type=int, nargs="+", default=[64])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--limit", type=int, default=None, help="first N test digits only (a smoke test; not for results)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dataset = json.loads((zoo.resolve(args.model) / zoo.LOG).read_text())["dataset"]
    x = data.load_split(dataset, "test", args.data_dir)[:args.limit]
    judge = classifier.load(args.data_dir)
    labels = classifier.predict(judge, x)
    result = {"provenance": provenance(), "model": args.model, "dataset": dataset, "images": len(x), "runs": []}
    for effort in args.efforts:
        t0 = time.time()
        blob = vlae_codec.compress(x, model=args.model, lossy=True, effort=effort)
        seconds = time.time() - t0
        recon = vlae_codec.decompress(blob)
        result["runs"].append({
            "effort": effort, "bytes": len(blob), "bytes_per_image": len(blob) / len(x),
            "payload_bits_per_image": 32 * len(container.unpack(blob)[1]) / len(x),
            "class_agreement": float(np.mean(classifier.predict(judge, recon) == labels)),
            "compress_seconds": round(seconds, 1)})
    label = Path(args.model).name
    md = [f"# {label}: lossy mode on the whole {dataset} test set ({len(x):,} digits)", "",
          "| effort | bytes/digit (one archive) | class agreement | compress |", "| --- | --- | --- | --- |"]
    md += [f"| {r['effort']} | {r['bytes_per_image']:.2f} | {100 * r['class_agreement']:.2f}% | {r['compress_seconds']} s |"
           for r in result["runs"]]
    write(f"lossy_effort_{label}", result, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
