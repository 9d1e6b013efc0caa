"""Photos, each as its own .vlae file, through the CLI as a user runs it: real bits/dim against
PNG, WebP and JPEG-XL, exact round trip, and the time and peak memory of each command.

Run: python benchmarks/kodak.py [--model cifar] [--data-dir DIR] [--threads 2] [--limit N]
Writes benchmarks/results/kodak.json and kodak.md (or NAME.json/.md with --name).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from vlae_codec import baselines
from vlae_codec.model import data

from common import provenance, run_measured, write
from rates import codecs


def run(args: list[str]) -> dict:
    """Run the CLI in a child process; its wall time and peak resident memory."""
    return run_measured([sys.executable, "-m", "vlae_codec.cli", *args])


def photos(data_dir: str | None = None, limit: int | None = None) -> list[Path]:
    """The Kodak photos in the data folder's kodak/, sorted by name."""
    found = sorted((data.data_dir(data_dir) / "kodak").glob("*.png"))[:limit]
    if not found:
        raise SystemExit("no Kodak photos found in the data folder's kodak/")
    return found


def measure_photo(photo: Path, model: str, threads: int, tmp: str) -> dict:
    """One photo as its own .vlae file through the CLI: size, exact round trip, times, peak memory,
    and PNG / WebP / JPEG-XL sizes of the same pixels."""
    pixels = np.asarray(Image.open(photo).convert("RGB"))
    dims = pixels.size
    packed, back = Path(tmp) / "x.vlae", Path(tmp) / "back.png"
    c = run(["compress", str(photo), "-o", str(packed), "--model", model, "--threads", str(threads), "--force"])
    d = run(["decompress", str(packed), "-o", str(back), "--threads", str(threads), "--force"]
            + (["--model", model] if Path(model).is_dir() else []))  # a model folder is not found by its id
    exact = bool(np.array_equal(np.asarray(Image.open(back)), pixels))
    header = json.loads(run(["info", str(packed), "--json"])["stdout"])
    row = {"photo": photo.name, "height": pixels.shape[0], "width": pixels.shape[1],
           "bytes": packed.stat().st_size, "bits_per_dim": 8 * packed.stat().st_size / dims,
           "round_trip_exact": exact, "pixel_offsets": header.get("pixel_offsets"),
           "clean_shift": header.get("clean_shift"),
           "compress_seconds": c["seconds"], "compress_peak_mib": c["peak_mib"],
           "decompress_seconds": d["seconds"], "decompress_peak_mib": d["peak_mib"]}
    for codec in codecs():
        row[f"{codec}_bits_per_dim"] = 8 * baselines.encoded_size(pixels, False, codec) / dims
    print(f"{photo.name}: {row['bits_per_dim']:.4f} bits/dim, exact {exact}, "
          f"{c['seconds']:.1f} s / {d['seconds']:.1f} s, peak {max(c['peak_mib'], d['peak_mib']):.0f} MiB",
          file=sys.stderr, flush=True)
    return row


def summarize(rows: list[dict]) -> dict:
    """Means over photos of the rates and times, and the worst time and memory."""
    def mean(key: str) -> float | None:
        values = [r[key] for r in rows if key in r]
        return float(np.mean(values)) if values else None

    summary = {k: mean(k) for k in ("bits_per_dim", "png_bits_per_dim", "webp_bits_per_dim", "jxl_bits_per_dim",
                                    "compress_seconds", "decompress_seconds")}
    summary.update(photos=len(rows), all_exact=all(r["round_trip_exact"] for r in rows),
                   max_compress_seconds=max(r["compress_seconds"] for r in rows),
                   max_decompress_seconds=max(r["decompress_seconds"] for r in rows),
                   max_peak_mib=max(max(r["compress_peak_mib"], r["decompress_peak_mib"]) for r in rows))
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="cifar")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="first N photos only (a smoke test; not for results)")
    ap.add_argument("--name", default="kodak", help="results file name")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure_photo(photo, args.model, args.threads, tmp) for photo in photos(args.data_dir, args.limit)]
    summary = summarize(rows)
    result = {"provenance": provenance(), "model": args.model, "summary": summary, "photos": rows}

    def fmt(v) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    md = [f"# {args.model} on {len(rows)} Kodak photos, each its own file", "",
          "| | bits/dim |", "| --- | --- |",
          f"| **vlae-codec, real file size** (mean over photos) | **{fmt(summary['bits_per_dim'])}** |",
          f"| JPEG-XL lossless, effort 9 | {fmt(summary['jxl_bits_per_dim'])} |",
          f"| WebP lossless, method 6 | {fmt(summary['webp_bits_per_dim'])} |",
          f"| PNG | {fmt(summary['png_bits_per_dim'])} |", "",
          f"Round trip exact on all photos: {summary['all_exact']}. Compression takes {summary['compress_seconds']:.1f} s "
          f"on average (at most {summary['max_compress_seconds']:.1f} s), decompression "
          f"{summary['decompress_seconds']:.1f} s (at most {summary['max_decompress_seconds']:.1f} s); peak memory of "
          f"either command at most {summary['max_peak_mib']:.0f} MiB. Times are for the whole command, model loading "
          "included.", "",
          "| photo | size | bits/dim | PNG | WebP | JPEG-XL | compress s | decompress s | peak MiB | exact "
          "| offsets | clean shift |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        md.append(f"| {r['photo']} | {r['width']}x{r['height']} | {r['bits_per_dim']:.4f} | "
                  f"{fmt(r.get('png_bits_per_dim'))} | {fmt(r.get('webp_bits_per_dim'))} | "
                  f"{fmt(r.get('jxl_bits_per_dim'))} | {r['compress_seconds']:.1f} | {r['decompress_seconds']:.1f} | "
                  f"{max(r['compress_peak_mib'], r['decompress_peak_mib']):.0f} | {r['round_trip_exact']} | "
                  f"{r['pixel_offsets']} | {r['clean_shift']} |")
    write(args.name, result, "\n".join(md))


if __name__ == "__main__":
    main()
