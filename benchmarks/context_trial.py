"""How well a band of rows predicts whether the context coder beats the model on a lone image.

Run: python -m benchmarks.context_trial [--every 9] [--mosaic] [--data-dir DIR]
Writes benchmarks/results/context_trial.json and .md. For each image (the Kodak photos, every
9th photo of data/photos, a few graphics made here, and with --mosaic the 12-MP mosaic of
benchmarks.big_photo) it measures the model's bits (-ELBO per row, as the encoder counts them)
and the context coder's bits on the whole image, and asks both rules whether to try it in
full against the file the encoder has by then (the model's, or zlib's stored fallback where
that is smaller): the first (a middle band's context bits, scaled to the image, against that
file) and the current `api._context_may_win` (the same band, both coders measured on its
rows). A missed win is a skipped image the context coder would have made smaller; a wasted
trial is a tried one it did not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import vlae_codec
from vlae_codec import api, fallback
from vlae_codec.model import data

from .big_photo import mosaic
from .common import arguments, provenance, write


def graphics(kodak: Path) -> dict[str, np.ndarray]:
    """Images a photo model was not made for: few colours, text, ramps, flat patches."""
    photo = np.asarray(Image.open(kodak / "kodim03.png").convert("RGB"))
    out = {f"kodim03 in {k} colours": np.asarray(Image.fromarray(photo).quantize(k).convert("RGB")) for k in (16, 64)}
    canvas = Image.new("RGB", (800, 600), "white")
    draw, rng = ImageDraw.Draw(canvas), np.random.default_rng(0)
    for i in range(40):
        draw.text((int(rng.integers(0, 700)), int(rng.integers(0, 580))), f"Hello vlae-codec {i}",
                  fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    out["text on white"] = np.asarray(canvas)
    out["horizontal ramp"] = np.broadcast_to(np.linspace(0, 255, 640).astype(np.uint8)[None, :, None], (480, 640, 3))
    patched = np.asarray(Image.open(kodak / "kodim05.png").convert("RGB")).copy()
    patched[100:400, 100:600] = 240
    out["kodim05 with a flat patch"] = patched
    half = np.asarray(Image.open(kodak / "kodim05.png").convert("RGB")).copy()
    half[:, 384:] = out["text on white"][:512, :384]
    out["kodim05 beside text"] = half
    return out


def first_rule(pixels: np.ndarray, file_bits: float) -> tuple[float, bool]:
    """The first rule's estimate of the context bits, and whether it tries the context coder."""
    band_rows = api.context_band(pixels.shape[1])
    if band_rows is None:
        return float("nan"), True
    share = pixels.shape[1] / (band_rows.stop - band_rows.start)
    estimate = api._push_planes(pixels[:, band_rows]).num_bits() * share
    return estimate, estimate < api.CONTEXT_MARGIN * file_bits


def measure(name: str, image: np.ndarray) -> dict:
    pixels = np.ascontiguousarray(image)[None]
    info = vlae_codec.encode(pixels).info
    model_bits = float(info.total.sum())
    file_bits = min(model_bits, 32.0 * len(fallback.pack(pixels)))
    estimate, first = first_rule(pixels, file_bits)
    current = api._context_may_win(pixels, int(file_bits // 32), info.pixel_rows[0])
    context_bits = api._push_planes(pixels).num_bits()
    return {"image": name, "height": image.shape[0], "width": image.shape[1], "model_bits": model_bits,
            "file_bits": file_bits, "stored": file_bits < model_bits,
            "context_bits": context_bits, "context_to_file": context_bits / file_bits,
            "first_rule_estimate_to_file": estimate / file_bits, "first_rule_tries": bool(first),
            "current_rule_tries": bool(current)}


def summary(rows: list[dict], rule: str) -> dict:
    wins = [r["context_to_file"] < 1 for r in rows]
    tries = [r[f"{rule}_tries"] for r in rows]
    return {"missed_wins": sum(w and not t for w, t in zip(wins, tries)),
            "wasted_trials": sum(t and not w for w, t in zip(wins, tries)),
            "trials": sum(tries), "wins": sum(wins)}


def main() -> None:
    ap = arguments(__doc__)
    ap.add_argument("--every", type=int, default=9, help="take every n-th photo of data/photos")
    ap.add_argument("--mosaic", action="store_true", help="add the 12-MP mosaic (about 5 minutes)")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    root = data.data_dir(args.data_dir)
    images = {p.stem: np.asarray(Image.open(p).convert("RGB")) for p in sorted((root / "kodak").glob("kodim*.png"))}
    images.update({p.stem: np.asarray(Image.open(p).convert("RGB"))
                   for p in sorted((root / "photos").glob("*.png"))[::args.every]})
    images.update(graphics(root / "kodak"))
    if args.mosaic:
        images["12-MP Kodak mosaic"] = mosaic(root / "kodak", 4000, 3000)
    rows = []
    for name, image in images.items():
        rows.append(measure(name, image))
        print(rows[-1], flush=True)
    result = {"provenance": {**provenance(), "torch_threads": args.threads}, "images": rows,
              "summary": {rule: summary(rows, rule) for rule in ("first_rule", "current_rule")}}
    lines = ["# When to try the context coder in full on a lone image", "",
             "The context coder's bits over the file's so far (the model's -ELBO, or zlib's where that is smaller: "
             "stored), the first rule's estimate of that ratio (a middle band scaled to the image), and each "
             "rule's choice.", "",
             "| image | size | file so far | context / file | first rule's estimate | first rule tries | "
             "current rule tries |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['image']} | {r['width']}x{r['height']} | {'stored' if r['stored'] else 'model'} | "
                     f"{r['context_to_file']:.3f} | {r['first_rule_estimate_to_file']:.3f} | {r['first_rule_tries']} | "
                     f"{r['current_rule_tries']} |")
    lines += ["", "| rule | trials | wasted trials | missed wins (of all wins) |", "| --- | --- | --- | --- |"]
    for rule, s in result["summary"].items():
        lines.append(f"| {rule.replace('_', ' ')} | {s['trials']} | {s['wasted_trials']} | "
                     f"{s['missed_wins']} (of {s['wins']}) |")
    write("context_trial", result, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
