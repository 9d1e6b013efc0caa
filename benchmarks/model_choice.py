"""Which shipped model codes an input smaller: the measurement behind the CLI's default choice
(codec/api.py MODEL_FOR_SIZE / MODEL_FOR_KIND).

Run: python -m benchmarks.model_choice [--data-dir DIR] [--images 100] [--crops 4]
Codes, with every candidate model, the same pixels: test-set images at their models' sizes (one
archive each, and single files), and square crops of Kodak photos from 32 to 512 pixels (each
its own file), RGB and through convert("L"). Writes benchmarks/results/model_choice.json and .md.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from PIL import Image

import vlae_codec
from vlae_codec.model import data

from .common import provenance, write

# kind -> (the candidates, the test set whose native size one of them was trained on)
CANDIDATES = {"rgb": (("cifar", "photo"), "cifar"), "greyscale": (("mnist", "photo-grey"), "mnist")}
CROP_SIDES = (32, 48, 64, 128, 256, 512)


def bits_per_dim(pixels: np.ndarray, model: str) -> float:
    """Real bits/dim of `pixels` (N,H,W[,C]) coded by `model` as one file."""
    return 8 * len(vlae_codec.compress(pixels, model=model)) / pixels.size


def test_set_rows(kind: str, n: int, data_dir: str | None) -> list[dict]:
    """The first `n` test images of the set at one model's native size, as one archive and as single files."""
    models, name = CANDIDATES[kind]
    x = data.load_split(name, "test", data_dir)[:n]
    rows = []
    for model in models:
        single = float(np.mean([bits_per_dim(img[None], model) for img in x[:max(1, n // 5)]]))
        rows.append({"kind": kind, "input": f"{name} test images ({x.shape[1]}x{x.shape[2]})", "model": model,
                     "archive_bits_per_dim": bits_per_dim(x, model), "single_file_bits_per_dim": single,
                     "images": len(x), "single_files": max(1, n // 5)})
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def crop_rows(kind: str, crops: int, data_dir: str | None) -> list[dict]:
    """Square centre crops of the first `crops` Kodak photos, each its own file, at each side length."""
    models, _ = CANDIDATES[kind]
    photos = sorted((data.data_dir(data_dir) / "kodak").glob("*.png"))[:crops]
    mode = "RGB" if kind == "rgb" else "L"
    pictures = [np.asarray(Image.open(p).convert(mode)) for p in photos]
    rows = []
    for side in CROP_SIDES:
        for model in models:
            rates = []
            for pic in pictures:
                top, left = (pic.shape[0] - side) // 2, (pic.shape[1] - side) // 2
                crop = pic[top:top + side, left:left + side]
                try:
                    rates.append(bits_per_dim(crop[None], model))
                except vlae_codec.InputError:
                    break  # a fixed-size model takes no other size
            if len(rates) == len(pictures):
                rows.append({"kind": kind, "input": f"Kodak {side}x{side} centre crops", "model": model,
                             "single_file_bits_per_dim": float(np.mean(rates)), "single_files": len(rates)})
                print(rows[-1], file=sys.stderr, flush=True)
    return rows


def report(rows: list[dict]) -> str:
    md = ["# Which model codes an input smaller", "",
          "The same pixels coded with each candidate; the CLI's default is the smaller one. Fixed-size models "
          "(cifar, mnist) take only their own size.", "",
          "| kind | input | model | bits/dim, one archive | bits/dim, single files |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        archive = f"{r['archive_bits_per_dim']:.4f}" if "archive_bits_per_dim" in r else ""
        md.append(f"| {r['kind']} | {r['input']} | {r['model']} | {archive} | {r['single_file_bits_per_dim']:.4f} "
                  f"({r['single_files']}) |")
    return "\n".join(md)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--images", type=int, default=100, help="test images per set (a fifth as single files)")
    ap.add_argument("--crops", type=int, default=4, help="Kodak photos to crop")
    args = ap.parse_args()
    rows = []
    for kind in CANDIDATES:
        rows += test_set_rows(kind, args.images, args.data_dir) + crop_rows(kind, args.crops, args.data_dir)
    write("model_choice", {"provenance": provenance(), "rows": rows}, report(rows))


if __name__ == "__main__":
    main()
