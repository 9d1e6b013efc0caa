"""What bounds the codec's speed: each shipped model's arithmetic per image against the rate at
which these cores do exact (float64) matrix products, and the wavefront's sequential steps.

Run: python -m benchmarks.flops [--threads 2]
Writes benchmarks/results/flops.json and .md. Multiply-accumulates are counted by torch's
FlopCounterMode on the coding form's networks (q(z|x), the features of z, the pixel network
over every pixel), which both directions run once per image. The rate is the best of a few
float64 products of the pixel network's shape (16384 pixels x 256 -> 256); float32 is shown
for comparison only, since its 24-bit sums cannot hold the coding form's integers exactly.
q(z|x) and the features are mostly convolutions, which float64 runs far below that rate, so
they are also timed as the codec runs them, on a batch (BATCH), for a second, tighter bound.
"""

from __future__ import annotations

import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from vlae_codec import api

from .common import arguments, provenance, write

# (model, image shape) measured: the digit models at their size, the others at a thumbnail and a Kodak photo.
CASES = [("bmnist", (1, 28, 28)), ("mnist", (1, 28, 28)), ("cifar", (3, 32, 32)), ("photo", (3, 512, 768)),
         ("photo-grey", (1, 512, 768))]
BATCH = {"bmnist": 1024, "mnist": 1024, "cifar": 256}  # images timed at once (an archive's chunk); else 1


def product_rate(dtype: torch.dtype, repeats: int = 5) -> float:
    """Multiply-accumulates per second of the best of `repeats` products (16384, 256) x (256, 256)."""
    a = torch.randint(0, 1 << 15, (16384, 256)).to(dtype)
    w = torch.randint(-2047, 2048, (256, 256)).to(dtype)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.nn.functional.linear(a, w)
        best = min(best, time.perf_counter() - start)
    return a.shape[0] * w.shape[0] * w.shape[1] / best


def macs(model: str, shape: tuple[int, int, int]) -> dict:
    """Multiply-accumulates of one image's networks, by part."""
    cm = api.coding_model(model)
    x = torch.randint(0, 1 << cm.bit_depth, (1, *shape))
    out = {}
    with FlopCounterMode(display=False) as count:
        mu, _ = cm.posterior(x)
    out["posterior"] = count.get_total_flops() // 2
    with FlopCounterMode(display=False) as count:
        features = cm.features(mu, *shape[1:])
    out["features"] = count.get_total_flops() // 2
    with FlopCounterMode(display=False) as count:
        cm.pixel_params(x, features)
    out["pixel_network"] = count.get_total_flops() // 2
    out["total"] = sum(out.values())
    _, height, width = shape
    out["wavefront_steps"] = width + (height - 1) * (cm.half + 1)
    return out


def latent_seconds(model: str, shape: tuple[int, int, int], repeats: int = 2) -> float:
    """Seconds per image of q(z|x) and the features of z, the best of `repeats` runs on a batch
    of random images, the way the codec runs them (bitsback.py, pixels.py)."""
    cm = api.coding_model(model)
    x = torch.randint(0, 1 << cm.bit_depth, (BATCH.get(model, 1), *shape))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        mu, _ = cm.posterior(x)
        cm.pixel_features(mu, *shape[1:])
        best = min(best, time.perf_counter() - start)
    return best / len(x)


def _figure(value: float) -> str:
    """Whole numbers from 100 up, three significant figures below (a photo's 0.418 images/s)."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def main() -> None:
    args = arguments(__doc__).parse_args()
    torch.set_num_threads(args.threads)
    rate64, rate32 = product_rate(torch.float64), product_rate(torch.float32)
    rows = []
    for model, shape in CASES:
        m = macs(model, shape)
        latent = latent_seconds(model, shape)
        measured = latent + m["pixel_network"] / rate64
        rows.append({"model": model, "shape": list(shape), "macs": m,
                     "macs_per_subpixel": round(m["total"] / (shape[0] * shape[1] * shape[2])),
                     "arithmetic_seconds": m["total"] / rate64, "images_per_second_bound": rate64 / m["total"],
                     "latent_seconds_measured": latent,
                     "latent_macs_per_second": (m["posterior"] + m["features"]) / latent,
                     "measured_seconds": measured, "images_per_second_bound_measured": 1 / measured})
    result = {"provenance": provenance(), "float64_macs_per_second": rate64, "float32_macs_per_second": rate32,
              "models": rows}
    table = [f"| {r['model']} | {'x'.join(map(str, r['shape']))} | {r['macs']['posterior'] / 1e6:,.1f} "
             f"| {r['macs']['features'] / 1e6:,.1f} | {r['macs']['pixel_network'] / 1e6:,.1f} "
             f"| {r['macs']['total'] / 1e6:,.1f} | {r['macs_per_subpixel']:,} | {r['macs']['wavefront_steps']:,} "
             f"| {r['arithmetic_seconds']:.3g} s | {_figure(r['images_per_second_bound'])} "
             f"| {r['latent_macs_per_second'] / 1e9:.1f} G/s | {r['measured_seconds']:.3g} s "
             f"| {_figure(r['images_per_second_bound_measured'])} |" for r in rows]
    md = "\n".join([
        "# What bounds the speed: arithmetic per image against these cores", "",
        f"Float64 matrix products on {args.threads} threads: {rate64 / 1e9:.1f} G multiply-accumulates/s "
        f"(float32: {rate32 / 1e9:.1f} G/s, not exact for the coding form's sums). Each direction runs every "
        "network below once per image, so the arithmetic alone takes at least the seconds shown, and the "
        "images per second cannot exceed the bound, before any table, ANS or Python work. The decoder's "
        "pixels also wait on one another: the wavefront takes the steps shown, one after the other.", "",
        "q(z|x) and the features are mostly float64 convolutions, which run far below the matrix-product rate. "
        "Timed as the codec runs them (on a batch of "
        + ", ".join(f"{n:,} for {m}" for m, n in BATCH.items()) + ", one photo), they reach the rate in the "
        "column 'q(z|x) + features rate'; with the pixel network at the product rate, that gives the tighter "
        "bound in the last two columns.", "",
        "| model | image (CxHxW) | q(z\\|x) M | features M | pixel network M | total M | per subpixel "
        "| wavefront steps | arithmetic | images/s at most | q(z\\|x) + features rate | measured parts "
        "| images/s at most, measured parts |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", *table])
    write("flops", result, md)
    print(md)


if __name__ == "__main__":
    main()
