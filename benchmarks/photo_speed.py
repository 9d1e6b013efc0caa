"""Speed on photos against JPEG-XL and WebP: every codec's whole command in a fresh process, same run.

Run: python -m benchmarks.photo_speed [--photos kodim23 kodim05] [--repeats 2] [--threads 2] [--data-dir DIR]
Writes benchmarks/results/photo_speed.json and .md. vlae-codec runs as its CLI (imports and
model loading included); JPEG-XL (lossless, effort 9) and WebP (lossless, method 6) run as
small Python programs calling Pillow, so both sides pay for starting a process. Times are
medians over the repeats; ratios are vlae-codec's time over the other codec's, since this
machine's absolute times drift from run to run.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from vlae_codec.model import data

from .common import arguments, provenance, run_measured, write

# Encode and decode programs for the classic codecs: argv[1] source, argv[2] destination.
CLASSIC = {
    "jpeg-xl": ("jxl", "import pillow_jxl; from PIL import Image; import sys; "
                       "Image.open(sys.argv[1]).save(sys.argv[2], lossless=True, effort=9)"),
    "webp": ("webp", "from PIL import Image; import sys; "
                     "Image.open(sys.argv[1]).save(sys.argv[2], lossless=True, quality=100, method=6)"),
}
_DECODE = "{plugin}from PIL import Image; import sys; Image.open(sys.argv[1]).load()"


def _median(cmd: list[str], repeats: int) -> dict:
    runs = [run_measured(cmd) for _ in range(repeats)]
    return {"seconds": statistics.median(r["seconds"] for r in runs), "peak_mib": max(r["peak_mib"] for r in runs)}


def classic_codecs(image: Path, folder: Path, repeats: int) -> dict:
    """Each classic codec's file of an image (written in `folder`): its bytes, and the median
    whole-command seconds (and peak MiB) of its encode and decode."""
    out = {}
    for codec, (ext, program) in CLASSIC.items():
        packed = folder / f"{image.stem}.{ext}"
        plugin = "import pillow_jxl; " if codec == "jpeg-xl" else ""
        encode = _median([sys.executable, "-c", program, str(image), str(packed)], repeats)
        decode = _median([sys.executable, "-c", _DECODE.format(plugin=plugin), str(packed)], repeats)
        out[codec] = {"encode": encode, "decode": decode, "bytes": packed.stat().st_size}
    return out


def measure(photo: Path, threads: int, repeats: int) -> dict:
    """Median whole-command seconds (and peak MiB) of each codec's encode and decode of one photo."""
    row: dict = {"photo": photo.name}
    with tempfile.TemporaryDirectory() as tmp:
        packed, back = Path(tmp) / "photo.vlae", Path(tmp) / "back.png"
        cli = [sys.executable, "-m", "vlae_codec.cli"]
        row["vlae-codec"] = {
            "encode": _median(cli + ["compress", str(photo), "-o", str(packed), "--force", "--threads", str(threads)],
                              repeats),
            "decode": _median(cli + ["decompress", str(packed), "-o", str(back), "--force", "--threads", str(threads)],
                              repeats)}
        row.update(classic_codecs(photo, Path(tmp), repeats))
    for codec in CLASSIC:
        row[f"ratio_to_{codec}"] = {d: row["vlae-codec"][d]["seconds"] / row[codec][d]["seconds"]
                                    for d in ("encode", "decode")}
    return row


def table(rows: list[dict]) -> str:
    lines = ["| photo | vlae-codec encode / decode s | JPEG-XL e9 encode / decode s | WebP m6 encode / decode s "
             "| vlae / JPEG-XL | vlae / WebP | vlae peak MiB |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        cells = [f"{r[c]['encode']['seconds']:.2f} / {r[c]['decode']['seconds']:.2f}"
                 for c in ("vlae-codec", "jpeg-xl", "webp")]
        ratios = [f"{r[f'ratio_to_{c}']['encode']:.1f}x / {r[f'ratio_to_{c}']['decode']:.1f}x"
                  for c in ("jpeg-xl", "webp")]
        peak = max(r["vlae-codec"][d]["peak_mib"] for d in ("encode", "decode"))
        lines.append(f"| {r['photo']} | " + " | ".join(cells + ratios) + f" | {peak:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = arguments(__doc__)
    ap.add_argument("--photos", nargs="+", default=["kodim23", "kodim05"], help="Kodak photo names")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    folder = data.data_dir(args.data_dir) / "kodak"
    rows = [measure(folder / f"{name}.png", args.threads, args.repeats) for name in args.photos]
    result = {"provenance": {**provenance(), "torch_threads": args.threads}, "repeats": args.repeats, "photos": rows}
    markdown = (f"# Photo speed: whole commands in fresh processes, median of {args.repeats}\n\n" + table(rows) + "\n\n"
                "Ratios are vlae-codec's seconds over the other codec's (encode / decode), measured in the same run.")
    write("photo_speed", result, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
