"""Hostile archives: mutate real .vlae files and check that every one decodes exactly or is refused.

Run: python -m benchmarks.fuzz [--cases 10000] [--seed 0] [--timeout 20] [--threads 1]
Writes benchmarks/results/fuzz.json and fuzz.md.

Seeds are small archives of every shipped model and mode, images with alpha (RGBA, LA),
16 bits, palettes with a transparent entry (coded as colours and as indices), a folder of named
PNGs and a folder that mixes kinds (one archive of parts), all in the compact format 5 (and a
version 4 file). Mutations: bit flips, byte
overwrites, truncations, insertions and deletions (with the CRC left as is, or recomputed so
that the damage reaches the parser and the decoder), and header fields set to extremes and
re-packed with a valid CRC. Each case ends as one of:
- exact: decoded to the original pixels (a header edit may change only their layout);
- refused: the codec's own error (CodecError) with a one-line message;
- crash: any other exception; hang: over the time limit; wrong: decoded to other images.
The last three must never happen.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import struct
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import vlae_codec
from vlae_codec import container
from vlae_codec.api import coding_model
from vlae_codec.errors import CodecError
from vlae_codec.model import data, zoo

from .common import provenance, write


class Hang(Exception):
    """A case ran past its time limit."""


def _test_images(name: str, data_dir: str | None) -> np.ndarray:
    """Four test images for a model: its data set's, or CIFAR-10's for a photo model (one
    channel of them for a greyscale one)."""
    if name in data.DATASETS:
        return data.load_split(name, "test", data_dir)[:4]
    x = data.load_split("cifar", "test", data_dir)[:4]
    return x[..., 1] if coding_model(name).cfg.channels == 1 else x


def seeds(data_dir: str | None = None) -> list[tuple[str, bytes, np.ndarray | None]]:
    """(name, archive, the images it decodes to) for every shipped model and mode."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in zoo.shipped_models():
            x = _test_images(name, data_dir)
            rgb = x.ndim == 4
            # An (H, W, 3) array would read as H greyscale images: a single photo comes as a PNG file.
            single = Path(tmp) / f"{name}.png"
            Image.fromarray(x[0]).save(single)
            noise = np.random.default_rng(0).integers(0, int(x.max()) + 1, size=((1,) if rgb else ()) + x.shape[1:]).astype(np.uint8)
            for label, images, kwargs in (("archive", x[:3], {}), ("single", x[0] if not rgb else single, {}),
                                          ("lossy", x[:2], {"lossy": True}), ("stored", noise, {})):
                blob = vlae_codec.compress(images, model=name, **kwargs)
                out.append((f"{name} {label}", blob, vlae_codec.decompress(blob)))
        out += _mode_seeds(Path(tmp), data.load_split("mnist", "test", data_dir)[:4])
    return out


def _mode_seeds(tmp: Path, x: np.ndarray) -> list[tuple[str, bytes, np.ndarray | dict]]:
    """Archives of the image modes beyond the models' own: alpha, 16 bits, palettes, names, mixed folders."""
    rng = np.random.default_rng(1)
    palette = Image.fromarray(x[0]).quantize(6)
    palette.save(tmp / "p.png", transparency=0)
    pixels = np.asarray(palette)
    indices = Image.fromarray(np.where(pixels % 2 == 0, pixels, 5).astype(np.uint8), "P")
    indices.putpalette([0, 0, 0] * 3 + [255, 255, 255] * 3)  # colours repeat: only the indices tell them apart
    indices.save(tmp / "pi.png", transparency=1)
    inputs = {"RGBA single": np.dstack([np.stack([x[0]] * 3, -1), 255 - x[1]])[:16, :12],
              "LA archive": np.stack([x[:3], x[1:4]], -1),
              "16-bit single": x[0].astype(np.uint16) * 257 + rng.integers(0, 4, (28, 28)).astype(np.uint16),
              "palette P single": tmp / "p.png", "palette P;I single": tmp / "pi.png"}
    named, mixed = tmp / "named", tmp / "mixed"
    named.mkdir()
    mixed.mkdir()
    for i in range(3):
        Image.fromarray(x[i]).save(named / f"{i:05d}.png")
    Image.fromarray(x[3]).save(mixed / "a.png")
    Image.fromarray(x[2] > 127).save(mixed / "b.png")
    Image.open(tmp / "p.png").save(mixed / "c.png", transparency=0)
    inputs.update({"named archive": named, "mixed archive": mixed})
    out = []
    for label, images in inputs.items():
        blob = vlae_codec.compress(images)
        out.append((label, blob, vlae_codec.decompress(blob)))
    v4 = container.unpack(out[1][1])[0]  # the LA archive again, in format 4
    v4 = dataclasses.replace(v4, version=4, checksum=container.pixel_checksum(vlae_codec.decode(out[1][1]).images[..., 0]))
    blob = container.pack(v4, container.unpack(out[1][1])[1])
    out.append(("LA archive v4", blob, vlae_codec.decompress(blob)))
    return out


def _same(out, original) -> bool:
    """Decoded to the original images (a mixed archive: the same names and images)."""
    if isinstance(original, dict) or isinstance(out, dict):
        return (isinstance(out, dict) and isinstance(original, dict) and out.keys() == original.keys()
                and all(_same(out[k], original[k]) for k in out))
    return out.size == original.size and np.array_equal(out.ravel(), original.ravel())


def _recrc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def mutate(blob: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One random mutation of a file: (what was done, the new bytes)."""
    kind = rng.choice(["flip", "overwrite", "truncate", "insert", "delete", "header"])
    body = bytearray(blob[:-4])
    if kind == "header":
        header, words = container.unpack(blob)
        fields = ["count", "height", "width", "channels", "bit_depth", "chunk_max", "seed", "version", "layout",
                  "mode", "model_id", "names", "checksum", "words"]
        field = str(rng.choice(fields))
        extremes = {"count": [0, 2, 1 << 24, (1 << 24) + 1, 1 << 40], "height": [0, 1, 27, 29, 1 << 14, 1 << 20],
                    "width": [0, 1, 1 << 14, 1 << 30], "channels": [0, 2, 3, 4, 5, 1 << 20], "bit_depth": [0, 2, 8, 16, 99],
                    "chunk_max": [0, 1, 4096, 4097, 1 << 50], "seed": [None, 0, (1 << 62) - 1, 1 << 62],
                    "version": [0, 1, 2, 3, 4, 5, 255]}
        if field in extremes:
            value = extremes[field][rng.integers(len(extremes[field]))]
            header = dataclasses.replace(header, **{field: None if value is None else int(value)})
        elif field == "layout":
            header = dataclasses.replace(header, layout=str(rng.choice(["array", "single", "named"])))
            if header.layout == "named":
                header.names = [str(rng.choice(["a.png", "../x.png", "", ".", "/etc/x"])) for _ in range(header.count)]
        elif field == "mode":
            header = dataclasses.replace(header, mode=str(rng.choice(["lossless", "lossy", "stored"])))
        elif field == "model_id":
            header = dataclasses.replace(header, model_id=str(rng.choice(["", "x" * 5000, "../bmnist", "cifar", "mnist",
                                                                          "bmnist"])))
        elif field == "names":
            header = dataclasses.replace(header, layout="named", names=["\x00" * int(rng.integers(0, 10))] * header.count)
        elif field == "checksum":
            header = dataclasses.replace(header, checksum=bytes(rng.integers(0, 256, 8, dtype=np.uint8)))
        else:
            words = words.copy()
            if len(words):
                words[rng.integers(len(words))] = rng.integers(0, 1 << 32, dtype=np.uint64)
            words = words[:rng.integers(0, len(words) + 2)] if rng.random() < 0.5 else words
        try:
            return f"header {field}", container.pack(header, words)
        except (ValueError, KeyError, OverflowError):
            return f"header {field} (unpackable, raw flip instead)", _recrc(bytes(body[:-1]))
    fix_crc = rng.random() < 0.7  # most cases should get past the CRC to the parser and decoder
    pos = int(rng.integers(0, max(1, len(body))))
    if kind == "flip":
        body[pos] ^= 1 << int(rng.integers(8))
    elif kind == "overwrite":
        body[pos] = int(rng.integers(256)) if rng.random() < 0.5 else int(rng.choice([0, 0x7F, 0x80, 0xFF]))
    elif kind == "truncate":
        body = body[:pos]
    elif kind == "insert":
        body[pos:pos] = bytes(rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8))
    else:
        del body[pos:pos + int(rng.integers(1, 9))]
    return f"{kind}{' +crc' if fix_crc else ''}", _recrc(bytes(body)) if fix_crc else bytes(body) + blob[-4:]


def run(cases: int, seed: int = 0, timeout: float = 20.0, data_dir: str | None = None) -> dict:
    """Fuzz `cases` mutated archives; returns counts per outcome and the bad cases."""
    corpus = seeds(data_dir)
    rng = np.random.default_rng(seed)
    outcomes: Counter = Counter()
    by_kind: dict[str, Counter] = {}
    bad, slowest = [], 0.0

    def alarm(*_):
        raise Hang()

    previous = signal.signal(signal.SIGALRM, alarm)
    try:
        for i in range(cases):
            name, blob, original = corpus[i % len(corpus)]
            what, mutated = mutate(blob, rng)
            t0 = time.time()
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                out = vlae_codec.decompress(mutated)
                # A header edited with a valid CRC may change the layout ((H, W) vs (1, H, W)); the pixels must not change.
                outcome = "exact" if _same(out, original) else "wrong"
            except CodecError as e:
                outcome = "refused" if str(e) and "\n" not in str(e) else "crash"
            except Hang:
                outcome = "hang"
            except Exception as e:  # noqa: BLE001 - anything else is exactly what the fuzzer looks for
                outcome = "crash"
                what += f": {type(e).__name__}: {e}"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            slowest = max(slowest, time.time() - t0)
            outcomes[outcome] += 1
            by_kind.setdefault(what.split(":")[0].split(" (")[0], Counter())[outcome] += 1
            if outcome in ("crash", "hang", "wrong"):
                bad.append({"case": i, "seed_archive": name, "mutation": what, "outcome": outcome})
    finally:
        signal.signal(signal.SIGALRM, previous)
    return {"cases": cases, "seed": seed, "timeout_seconds": timeout, "seed_archives": [c[0] for c in corpus],
            "outcomes": dict(outcomes), "by_mutation": {k: dict(v) for k, v in sorted(by_kind.items())},
            "slowest_case_seconds": round(slowest, 3), "bad_cases": bad}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds allowed per case")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: cases are small, and more threads only contend)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    result = {"provenance": provenance(), **run(args.cases, args.seed, args.timeout, args.data_dir)}
    result["seconds"] = round(time.time() - t0, 1)
    import resource
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    o = result["outcomes"]
    md = [f"# Fuzzing: {args.cases:,} mutated archives", "",
          "| outcome | cases |", "| --- | --- |"]
    md += [f"| {k} | {o.get(k, 0):,} |" for k in ("exact", "refused", "crash", "hang", "wrong")]
    md += ["", f"Seed archives: {', '.join(result['seed_archives'])}.",
           f"Slowest case {result['slowest_case_seconds']} s (limit {args.timeout} s); peak memory "
           f"{result['peak_rss_mb']} MB; {result['seconds']} s in all.", "",
           "| mutation | " + " | ".join(("exact", "refused", "crash", "hang", "wrong")) + " |",
           "| --- |" + " --- |" * 5]
    md += [f"| {k} | " + " | ".join(str(v.get(c, 0)) for c in ("exact", "refused", "crash", "hang", "wrong")) + " |"
           for k, v in result["by_mutation"].items()]
    write("fuzz", result, "\n".join(md))
    print("\n".join(md))
    sys.exit(1 if result["bad_cases"] else 0)


if __name__ == "__main__":
    main()
