"""Speed and peak memory of compression and decompression, each in a fresh child process.

The suite calls `archive`, `size_sweep` and `classic_speed`; the child side runs as
    python -m benchmarks.speed compress MODEL IN.npy OUT.vlae [--info INFO.npy] [--threads T] [--chains K]
    python -m benchmarks.speed decompress IN.vlae OUT.npy [--model MODEL] [--threads T]
and prints one JSON line: the seconds spent coding (model loading excluded) and the model load time.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image



def _child(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("action", choices=["compress", "decompress"])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("model", nargs="?", default=None)
    ap.add_argument("--info", default=None, help="compress: also save each image's information content (bits)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chains", type=int, default=None,
                    help="compress: a large archive's chains (codec/bitsback.py) instead of the codec's own")
    args = ap.parse_args(argv)
    import torch  # imported here so that the parent's helpers stay light

    import vlae_codec
    from vlae_codec import bitsback, container
    from vlae_codec.api import coding_model

    if args.chains:
        bitsback.CHAINS = args.chains

    torch.set_num_threads(args.threads)
    t0 = time.time()
    if args.action == "compress":
        x = np.load(args.src, allow_pickle=False)
        coding_model(args.model)  # load before the clock starts: its time is reported apart
        t1 = time.time()
        enc = vlae_codec.encode(x, model=args.model)
        seconds = time.time() - t1
        Path(args.dst).write_bytes(enc.data)
        if args.info:
            np.save(args.info, enc.info.total)
    else:
        blob = Path(args.src).read_bytes()
        header = container.unpack(blob)[0]
        coding_model(args.model or header.model_id)
        t1 = time.time()
        out = vlae_codec.decode(blob, model=args.model).images
        seconds = time.time() - t1
        np.save(args.dst, out)
    print(json.dumps({"seconds": round(seconds, 4), "load_seconds": round(t1 - t0, 3)}))


def _run(args: list[str]) -> dict:
    """The child's own report, with the whole process's wall time and peak memory beside it."""
    from .common import run_measured

    r = run_measured([sys.executable, "-m", "benchmarks.speed", *args])
    own = json.loads(r["stdout"].splitlines()[-1])
    return {**own, "process_seconds": r["seconds"], "peak_mib": r["peak_mib"]}


def archive(model: str, x: np.ndarray, threads: int, tmp: Path,
            chains: int | None = None) -> tuple[bytes, np.ndarray, dict]:
    """Images as one archive, compressed in one child and decompressed in another (with
    `chains`, that many chains if the archive is large enough for several).

    Returns the file, each image's information content in bits, and the timing record; a
    failed round trip raises."""
    src, packed, back, info = tmp / "x.npy", tmp / "x.vlae", tmp / "back.npy", tmp / "info.npy"
    np.save(src, x)
    c = _run(["compress", str(src), str(packed), model, "--info", str(info), "--threads", str(threads)]
             + (["--chains", str(chains)] if chains else []))
    d = _run(["decompress", str(packed), str(back), model, "--threads", str(threads)])
    if not np.array_equal(np.load(back, allow_pickle=False), x):
        raise RuntimeError(f"{model}: the archive of {len(x)} images did not decode to its input")
    n = len(x)
    c_s, d_s = max(c["seconds"], 1e-4), max(d["seconds"], 1e-4)  # a stored (zlib) file decodes in no time
    timing = {"images": n, "threads": threads,
              "compress_seconds": round(c_s, 4), "decompress_seconds": round(d_s, 4),
              "compress_images_per_second": round(n / c_s, 1), "decompress_images_per_second": round(n / d_s, 1),
              "compress_peak_mib": c["peak_mib"], "decompress_peak_mib": d["peak_mib"],
              "model_load_seconds": round(max(c["load_seconds"], d["load_seconds"]), 2),
              "bytes": packed.stat().st_size, "roundtrip_ok": True}
    return packed.read_bytes(), np.load(info, allow_pickle=False), timing


def crop_sizes(height: int, width: int, sizes: tuple[int, ...]) -> list[int]:
    """The square crop sides that fit in a height x width photo."""
    return [s for s in sizes if s <= min(height, width)]


def size_sweep(model: str, photo: np.ndarray, sizes: tuple[int, ...], threads: int, tmp: Path) -> list[dict]:
    """Centre crops of one photo (H, W, 3), each compressed and decompressed in fresh children:
    how time and memory grow with the image's size."""
    h, w = photo.shape[:2]
    rows = []
    for s in crop_sizes(h, w, sizes):
        top, left = (h - s) // 2, (w - s) // 2
        crop = np.ascontiguousarray(photo[None, top:top + s, left:left + s])
        blob, _, t = archive(model, crop, threads, tmp)
        rows.append({"side": s, "pixels": s * s, "bytes": len(blob), "bits_per_dim": 8 * len(blob) / crop.size,
                     "compress_seconds": t["compress_seconds"], "decompress_seconds": t["decompress_seconds"],
                     "compress_peak_mib": t["compress_peak_mib"], "decompress_peak_mib": t["decompress_peak_mib"]})
        print(f"  crop {s}x{s}: decompress {t['decompress_seconds']} s, peak {t['decompress_peak_mib']} MiB",
              file=sys.stderr, flush=True)
    return rows


def _pil(image: np.ndarray, binary: bool) -> Image.Image:
    # As vlae_codec.baselines stores them: 1-bit PNGs, and 8-bit greyscale for WebP and JPEG-XL.
    im = Image.fromarray((image * 255).astype(np.uint8) if binary else image)
    return im.convert("1") if binary else im


def classic_speed(x: np.ndarray, binary: bool, codecs: tuple[str, ...]) -> dict:
    """Images/s of encoding and decoding each image as its own lossless file, in this process
    (the codecs are C libraries without a model to load), with the settings of the rate figures."""
    from vlae_codec import baselines  # noqa: F401  (registers Pillow's JPEG-XL plugin where installed)

    options = {"png": ("PNG", {"optimize": True}),
               "webp": ("WEBP", {"lossless": True, "quality": 100, "method": 6}),
               "jxl": ("JXL", {"lossless": True, "effort": 9})}
    out = {}
    for codec in codecs:
        fmt, kw = options[codec]
        images = [_pil(im, binary) for im in x]
        if binary and codec != "png":
            images = [im.convert("L") for im in images]
        t0 = time.time()
        blobs = []
        for im in images:
            buf = io.BytesIO()
            im.save(buf, format=fmt, **kw)
            blobs.append(buf.getvalue())
        t1 = time.time()
        for blob in blobs:
            Image.open(io.BytesIO(blob)).load()
        t2 = time.time()
        out[codec] = {"images": len(x), "encode_images_per_second": round(len(x) / (t1 - t0), 1),
                      "decode_images_per_second": round(len(x) / (t2 - t1), 1)}
    return out


if __name__ == "__main__":
    _child(sys.argv[1:])
