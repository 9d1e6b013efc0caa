"""Images with alpha, palettes and 16 bits: vlae-codec's file size against PNG, WebP lossless and
JPEG-XL lossless on the same image, with an exact round trip (mode and every value) checked.

Rows: Kodak crops under a soft gradient mask, an anti-aliased disc and a 1-bit cut-out (RGBA);
a palette image with a transparent entry; 16-bit greyscale (8-bit values stretched, and with
real low bits) and 16-bit RGB (as an .npy array; PNG written by hand, Pillow cannot).

Run: python -m benchmarks.modes [--data-dir DIR] [--crop 128] [--photos kodim03,kodim23] [--only TEXT]
Writes benchmarks/results/modes.json and modes.md; with --only, only the rows whose name holds
TEXT are measured again, the others kept from the existing modes.json (each row has its date).
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

import vlae_codec
from vlae_codec import baselines
from vlae_codec.model import data

from .common import RESULTS, provenance, write


def _masks(side: int) -> dict[str, np.ndarray]:
    yy, xx = np.mgrid[0:side, 0:side]
    r = np.hypot(yy - side / 2, xx - side / 2)
    disc = np.clip((side / 3 + 0.5 - r) * 255, 0, 255).round().astype(np.uint8)
    return {"gradient": (xx * 255 // (side - 1)).astype(np.uint8), "soft disc": disc,
            "cut-out": np.where(disc > 127, 255, 0).astype(np.uint8)}


def _png48(rgb16: np.ndarray) -> bytes:
    """A 16-bit RGB PNG (filter 0 on every row, zlib level 9), which Pillow cannot write."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    h, w, _ = rgb16.shape
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in rgb16)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _baselines(im: Image.Image | None, png: bytes | None = None) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for codec, fmt, options in (("png", "PNG", {"optimize": True}),
                                ("webp", "WEBP", {"lossless": True, "quality": 100, "method": 6, "exact": True}),
                                ("jxl", "JXL", {"lossless": True, "effort": 9})):
        if im is None:
            out[codec] = len(png) if codec == "png" and png else None
            continue
        if codec == "jxl" and not baselines.HAVE_JXL:
            out[codec] = None
            continue
        if "transparency" in im.info:
            options = {**options, "transparency": im.info["transparency"]} if codec == "png" else options
        # A baseline counts only if it gives back every value (WebP has no 16 bits; a palette
        # image is handed to WebP and JPEG-XL as its RGBA colours).
        source = im if codec == "png" or im.mode != "P" else im.convert("RGBA")
        try:
            buf = io.BytesIO()
            source.save(buf, format=fmt, **options)
            back = Image.open(io.BytesIO(buf.getvalue()))
            exact = np.array_equal(np.asarray(back), np.asarray(source))
        except (OSError, ValueError, KeyError):
            exact = False
        out[codec] = len(buf.getvalue()) if exact else None
    return out


def _vlae(tmp: Path, im: Image.Image | None, array: np.ndarray | None = None) -> dict:
    """Compress through the library as the CLI does (an image file or an .npy), decompress, compare."""
    src = tmp / ("in.npy" if array is not None else "in.png")
    if array is not None:
        np.save(src, array)
    else:
        im.save(src, format="PNG", **({"transparency": im.info["transparency"]} if "transparency" in im.info else {}))
    t0 = time.time()
    vlae_codec.api.compress_file(src, tmp / "a.vlae", force=True)
    t_c = time.time() - t0
    t0 = time.time()
    out = vlae_codec.api.decompress_file(tmp / "a.vlae", tmp / ("out.npy" if array is not None else "out.png"),
                                         force=True)
    t_d = time.time() - t0
    if array is not None:
        back = np.load(out, allow_pickle=False)
        exact = back.dtype == array.dtype and np.array_equal(back, array)
    else:
        back_im = Image.open(out)
        exact = back_im.mode == im.mode and np.array_equal(np.asarray(back_im), np.asarray(im))
    header = vlae_codec.container.unpack((tmp / "a.vlae").read_bytes())[0]
    return {"bytes": (tmp / "a.vlae").stat().st_size, "exact": bool(exact), "mode": header.mode,
            "image_mode": header.source.mode,
            "side_bytes": 4 * len(header.side_words), "compress_seconds": round(t_c, 2),
            "decompress_seconds": round(t_d, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--photos", default="kodim03,kodim23")
    parser.add_argument("--only", default="", help="Measure only the rows whose name holds this; keep the others.")
    args = parser.parse_args()
    kept = {}
    if args.only and (RESULTS / "modes.json").is_file():
        kept = {r["image"]: r for r in json.loads((RESULTS / "modes.json").read_text())["rows"]}
    kodak = data.data_dir(args.data_dir) / "kodak"
    side = args.crop
    rows = []
    import tempfile

    for stem in args.photos.split(","):
        photo = np.asarray(Image.open(kodak / f"{stem}.png").convert("RGB"))
        y0, x0 = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
        crop = np.ascontiguousarray(photo[y0:y0 + side, x0:x0 + side])
        cases = [(f"{stem} RGBA, {name} alpha", Image.fromarray(np.dstack([crop, mask])), None)
                 for name, mask in _masks(side).items()]
        pal = Image.fromarray(crop).quantize(64)
        pal.info["transparency"] = 0
        cases.append((f"{stem} palette (64 colours), entry 0 transparent", Image.open(io.BytesIO(_png_bytes(pal))),
                      None))
        grey = np.asarray(Image.fromarray(crop).convert("L")).astype(np.uint16)
        cases.append((f"{stem} 16-bit grey, 8-bit values x257", Image.fromarray(grey * 257), None))
        smooth = np.asarray(Image.fromarray(crop).convert("L").resize((side // 4, side // 4)).resize(
            (side, side), Image.BICUBIC)).astype(np.uint16)
        real = (grey << 8) | ((smooth * 37 + np.arange(side)[None] * 5) % 256)
        cases.append((f"{stem} 16-bit grey, structured low byte", Image.fromarray(real.astype(np.uint16)), None))
        rgb16 = (crop.astype(np.uint16) * 257)[None]
        cases.append((f"{stem} 16-bit RGB (.npy), 8-bit values x257", None, rgb16))
        for name, im, array in cases:
            if args.only and args.only not in name and name in kept:
                rows.append(kept[name])
                continue
            with tempfile.TemporaryDirectory() as tmp:
                row = {"image": name, **_vlae(Path(tmp), im, array)}
            row.update(_baselines(im, _png48(array[0]) if array is not None else None))
            row["date"] = provenance()["date"]
            for codec in ("png", "webp", "jxl"):
                row[f"ratio_to_{codec}"] = round(row["bytes"] / row[codec], 4) if row[codec] else None
            rows.append(row)
            print(row, flush=True)
    result = {"provenance": provenance(), "crop": side, "rows": rows}
    md = ["| image | vlae-codec bytes (side planes) | file mode | PNG | WebP | JPEG-XL | vlae/PNG | vlae/JPEG-XL | exact |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        mode = r["mode"] + (f" ({r['image_mode']})" if r.get("image_mode") == "P;I" else "")
        md.append(f"| {r['image']} | {r['bytes']} ({r['side_bytes']}) | {mode} | {r['png']} | {r['webp'] or '–'} | "
                  f"{r['jxl'] or '–'} | {r['ratio_to_png']} | {r['ratio_to_jxl'] or '–'} | {r['exact']} |")
    write("modes", result, f"Crops of {side}×{side} from the middle of each photo. File mode: how the main "
                           "pixels were coded (lossless: the model; stored: zlib; png: the PNG kept whole; context (P;I): "
                           "the palette indices through the context coder). "
                           "Baselines are counted only where they give back every value (–: cannot).\n\n"
                           + "\n".join(md))


def _png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", **({"transparency": im.info["transparency"]} if "transparency" in im.info else {}))
    return buf.getvalue()


if __name__ == "__main__":
    main()
