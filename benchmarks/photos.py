"""Photos, each as its own .vlae file, through the CLI as a user runs it: real bits/dim against
PNG, WebP and JPEG-XL (sizes and times, in the same run), exact round trip, and the time and
peak memory of each command.

Run: python -m benchmarks.photos [--set kodak|kodak-luma|held-out|held-out-luma] [--model NAME]
                                 [--data-dir DIR] [--threads 2] [--limit N]
Sets: the 24 Kodak photos in RGB; the same through Pillow's convert("L"); the photos that the
photo models held out of their training (named in their train_log.json), in RGB or as luma.
Without --model the CLI picks the model, as it does for a user.
Writes benchmarks/results/NAME.json and NAME.md (NAME: kodak, kodak_luma, photos_held_out or
photos_held_out_luma).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from vlae_codec import baselines
from vlae_codec.model import data, zoo

from .common import provenance, run_measured, write
from .rates import codecs


def run(args: list[str]) -> dict:
    """Run the CLI in a child process; its wall time and peak resident memory."""
    return run_measured([sys.executable, "-m", "vlae_codec.cli", *args])


# set -> (Pillow mode the photos are converted to, results file name)
SETS = {"kodak": ("RGB", "kodak"), "kodak-luma": ("L", "kodak_luma"),
        "held-out": ("RGB", "photos_held_out"), "held-out-luma": ("L", "photos_held_out_luma")}
SETS_FOR_CHANNELS = {3: ("kodak", "held-out"), 1: ("kodak-luma", "held-out-luma")}


def photos(which: str, data_dir: str | None = None, limit: int | None = None, model: str | None = None) -> list[Path]:
    """The photos of a set, sorted by name: Kodak, or the files a photo model held out of its
    training (`model`'s, by default the shipped photo model's of that set's mode)."""
    if which.startswith("held-out"):
        owner = model or ("photo-grey" if SETS[which][0] == "L" else "photo")
        log = json.loads((zoo.resolve(owner) / zoo.LOG).read_text())
        found = [data.data_dir(data_dir) / "photos" / name for name in log["held_out_files"]]
        missing = [p.name for p in found if not p.is_file()]
        if missing:
            raise SystemExit(f"held-out photos missing from the data folder's photos/: {', '.join(missing)}")
    else:
        found = sorted((data.data_dir(data_dir) / "kodak").glob("*.png"))
    if not found:
        raise SystemExit("no photos found in the data folder's kodak/")
    return found[:limit]


def classic_codecs(pixels: np.ndarray) -> dict:
    """Bits/dim, encode and decode seconds of each classic lossless codec on one image, in this process."""
    out = {}
    for codec in codecs():
        t0 = time.perf_counter()
        encoded = baselines.encode(pixels, False, codec)
        t1 = time.perf_counter()
        decoded = baselines.decode(encoded, grey=pixels.ndim == 2)
        t2 = time.perf_counter()
        if not np.array_equal(decoded, pixels):
            raise SystemExit(f"{codec} did not round-trip")
        out.update({f"{codec}_bits_per_dim": 8 * len(encoded) / pixels.size,
                    f"{codec}_encode_seconds": t1 - t0, f"{codec}_decode_seconds": t2 - t1})
    return out


def measure_photo(photo: Path, model: str | None, threads: int, tmp: str, mode: str = "RGB") -> dict:
    """One photo as its own .vlae file through the CLI: size, exact round trip, times, peak memory,
    and PNG / WebP / JPEG-XL sizes and times on the same pixels."""
    pixels = np.asarray(Image.open(photo).convert(mode))
    source = Path(tmp) / f"in-{photo.stem}.png"
    Image.fromarray(pixels).save(source)
    dims = pixels.size
    packed, back = Path(tmp) / "x.vlae", Path(tmp) / "back.png"
    chosen = ["--model", model] if model else []
    c = run(["compress", str(source), "-o", str(packed), *chosen, "--threads", str(threads), "--force", "--json"])
    coded = json.loads(c["stdout"])
    d = run(["decompress", str(packed), "-o", str(back), "--threads", str(threads), "--force"]
            + (chosen if model and Path(model).is_dir() else []))  # a model folder is not found by its id
    exact = bool(np.array_equal(np.asarray(Image.open(back)), pixels))
    header = json.loads(run(["info", str(packed), "--json"])["stdout"])
    row = {"photo": photo.name, "height": pixels.shape[0], "width": pixels.shape[1], "mode": mode,
           "model": header.get("model"), "bytes": packed.stat().st_size,
           "bits_per_dim": 8 * packed.stat().st_size / dims,
           "round_trip_exact": exact, "pixel_offsets": header.get("pixel_offsets"),
           "header_bytes": coded["header_bytes"], "neg_elbo_bits_per_dim": coded["neg_elbo_bits_per_dim"],
           # What the file costs beyond the information the coding model assigns: the clean start
           # and the ANS coder's slack (the header is counted with the information).
           "real_over_neg_elbo_plus_header": packed.stat().st_size / (
               coded["neg_elbo_bits_per_dim"] * dims / 8 + coded["header_bytes"]),
           "clean_shift": header.get("clean_shift"),
           "compress_seconds": c["seconds"], "compress_peak_mib": c["peak_mib"],
           "decompress_seconds": d["seconds"], "decompress_peak_mib": d["peak_mib"], **classic_codecs(pixels)}
    print(f"{photo.name}: {row['bits_per_dim']:.4f} bits/dim ({row['model']}; JPEG-XL "
          f"{row.get('jxl_bits_per_dim', float('nan')):.4f}), exact {exact}, "
          f"{c['seconds']:.1f} s / {d['seconds']:.1f} s, peak {max(c['peak_mib'], d['peak_mib']):.0f} MiB",
          file=sys.stderr, flush=True)
    return row


def summarize(rows: list[dict]) -> dict:
    """Means over photos of the rates and times, and the worst time and memory."""
    def mean(key: str) -> float | None:
        values = [r[key] for r in rows if key in r]
        return float(np.mean(values)) if values else None

    keys = ["bits_per_dim", "neg_elbo_bits_per_dim", "compress_seconds", "decompress_seconds"]
    keys += [f"{c}_{k}" for c in ("png", "webp", "jxl") for k in ("bits_per_dim", "encode_seconds", "decode_seconds")]
    summary = {k: mean(k) for k in keys}
    wins = [r["bits_per_dim"] < r["jxl_bits_per_dim"] for r in rows if "jxl_bits_per_dim" in r]
    summary.update(photos=len(rows), below_jxl=sum(wins), models=sorted({str(r.get("model")) for r in rows}),
                   all_exact=all(r["round_trip_exact"] for r in rows),
                   max_real_over_neg_elbo_plus_header=max(r["real_over_neg_elbo_plus_header"] for r in rows),
                   max_compress_seconds=max(r["compress_seconds"] for r in rows),
                   max_decompress_seconds=max(r["decompress_seconds"] for r in rows),
                   max_peak_mib=max(max(r["compress_peak_mib"], r["decompress_peak_mib"]) for r in rows))
    return summary


def report(which: str, model: str | None, rows: list[dict]) -> str:
    """The Markdown table of one set."""
    summary = summarize(rows)

    def fmt(v) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    def secs(v) -> str:
        return "n/a" if v is None else f"{v:.2f}"

    what = {"kodak": "Kodak photos", "kodak-luma": "Kodak photos through convert(\"L\")",
            "held-out": "photos held out of the photo model's training",
            "held-out-luma": "photos held out of the photo model's training, through convert(\"L\")"}[which]
    md = [f"# {model or 'the model the CLI picks'} on {len(rows)} {what}, each its own file", "",
          f"Models used: {', '.join(summary['models'])}.", "",
          "| | bits/dim | encode s | decode s |", "| --- | --- | --- | --- |",
          f"| **vlae-codec, real file size** (mean over photos) | **{fmt(summary['bits_per_dim'])}** | "
          f"{secs(summary['compress_seconds'])} | {secs(summary['decompress_seconds'])} |"]
    for codec, label in (("jxl", "JPEG-XL lossless, effort 9"), ("webp", "WebP lossless, method 6"), ("png", "PNG")):
        md.append(f"| {label} | {fmt(summary[f'{codec}_bits_per_dim'])} | {secs(summary[f'{codec}_encode_seconds'])} | "
                  f"{secs(summary[f'{codec}_decode_seconds'])} |")
    ratio = summary["bits_per_dim"] / summary["jxl_bits_per_dim"] if summary["jxl_bits_per_dim"] else None
    md += ["", f"Mean rate against JPEG-XL's: {fmt(ratio)}; below JPEG-XL on {summary['below_jxl']} of {len(rows)} "
           f"photos. Round trip exact on all photos: {summary['all_exact']}. The coding model's -ELBO of the photos "
           f"is {fmt(summary['neg_elbo_bits_per_dim'])} bits/dim on average; a file is at most "
           f"{summary['max_real_over_neg_elbo_plus_header']:.4f} times that plus its header. "
           "vlae-codec's times are whole commands in "
           "fresh processes, model loading included (compression at most "
           f"{summary['max_compress_seconds']:.1f} s, decompression at most {summary['max_decompress_seconds']:.1f} s, "
           f"peak memory of either at most {summary['max_peak_mib']:.0f} MiB); the classic codecs' are Pillow calls "
           "within one process.", "",
           "| photo | size | model | bits/dim | -ELBO | PNG | WebP | JPEG-XL | compress s | decompress s | peak MiB | exact "
           "| offsets | clean shift |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        md.append(f"| {r['photo']} | {r['width']}x{r['height']} | {r['model']} | {r['bits_per_dim']:.4f} | "
                  f"{r['neg_elbo_bits_per_dim']:.4f} | "
                  f"{fmt(r.get('png_bits_per_dim'))} | {fmt(r.get('webp_bits_per_dim'))} | "
                  f"{fmt(r.get('jxl_bits_per_dim'))} | {r['compress_seconds']:.1f} | {r['decompress_seconds']:.1f} | "
                  f"{max(r['compress_peak_mib'], r['decompress_peak_mib']):.0f} | {r['round_trip_exact']} | "
                  f"{r['pixel_offsets']} | {r['clean_shift']} |")
    return "\n".join(md)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", dest="which", choices=sorted(SETS), default="kodak")
    ap.add_argument("--model", default=None, help="model name or folder [default: the one the CLI picks]")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="first N photos only (a smoke test; not for results)")
    ap.add_argument("--name", default=None, help="results file name [default: from the set]")
    ap.add_argument("--card", action="store_true",
                    help="also store the figures as the card of the model that coded every photo")
    args = ap.parse_args()
    mode, name = SETS[args.which]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure_photo(photo, args.model, args.threads, tmp, mode)
                for photo in photos(args.which, args.data_dir, args.limit, args.model)]
    result = {"provenance": provenance(), "set": args.which, "model": args.model, "summary": summarize(rows),
              "photos": rows}
    write(args.name or name, result, report(args.which, args.model, rows))
    if args.card:
        write_card(args.which, result["summary"])


def write_card(which: str, summary: dict) -> None:
    """A photo model's card: its real rate on a set of whole photos, beside JPEG-XL's, and the
    photos it held out of training."""
    if len(summary["models"]) != 1:
        raise SystemExit(f"--card: the photos were coded by several models ({', '.join(summary['models'])})")
    directory = zoo.resolve(summary["models"][0])
    log = json.loads((directory / zoo.LOG).read_text())
    card = {"data": {"kodak": "Kodak", "kodak-luma": "Kodak luma"}.get(which, which), "images": summary["photos"],
            "real_bits_per_dim": summary["bits_per_dim"],
            "coding_neg_elbo_bits_per_dim": summary["neg_elbo_bits_per_dim"],
            "jxl_bits_per_dim": summary["jxl_bits_per_dim"], "webp_bits_per_dim": summary["webp_bits_per_dim"],
            "png_bits_per_dim": summary["png_bits_per_dim"], "all_exact": summary["all_exact"],
            "measured_by": f"python -m benchmarks.photos --set {which} --card", "date": time.strftime("%Y-%m-%d"),
            "epochs": len(log["epochs"]), "valid_neg_elbo_bits_per_dim": log["epochs"][-1]["valid_neg_elbo_bits_per_dim"],
            "held_out_files": log["held_out_files"]}
    zoo.write_text_atomic(directory / zoo.CARD, json.dumps(card, indent=1) + "\n")


if __name__ == "__main__":
    main()
