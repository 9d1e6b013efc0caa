"""Same archives before and after a change: each model's first test images as one .npy archive, compressed by an old checkout and by this one (python -m benchmarks.same_bytes --old /tmp/pre21 [--images 1000] [--models bmnist mnist cifar])."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from vlae_codec import container
from vlae_codec.model import VLAEConfig, data, zoo

from .common import arguments, model_test_set, provenance, write

# Runs `vlae-codec ARGS...` with the package of the checkout OLD (its codec/ and model/ folders)
# in place of the installed one, without installing it: python -c LAUNCH OLD ARGS...
_LAUNCH = """
import importlib.util, sys
from pathlib import Path
old = Path(sys.argv[1])
spec = importlib.util.spec_from_file_location("vlae_codec", old / "codec" / "__init__.py",
                                              submodule_search_locations=[str(old / "codec"), str(old)])
module = importlib.util.module_from_spec(spec)
sys.modules["vlae_codec"] = module
spec.loader.exec_module(module)
from vlae_codec import cli
assert Path(cli.__file__).resolve().is_relative_to(old.resolve()), cli.__file__
sys.argv = ["vlae-codec", *sys.argv[2:]]
cli.main()
"""
# A photo model has no test split: it codes the first CIFAR-10 test images (their luma for greyscale).
PHOTO_STAND_IN = "cifar"
# Header fields that a newer format version may write differently for the same coding.
FORMAT_FIELDS = ("version", "source", "side_words")


def images_for(model: str, count: int, data_dir: str | None) -> tuple[str, np.ndarray]:
    """The test set a model is checked on, and its first `count` images."""
    if "images" not in json.loads((zoo.resolve(model) / zoo.LOG).read_text()):  # not trained on a folder of photos
        dataset, x = model_test_set(model, data_dir)
        return dataset, x[:count]
    x = data.load_split(PHOTO_STAND_IN, "test", data_dir)[:count]
    if VLAEConfig.load(zoo.resolve(model) / zoo.CONFIG).channels == 1:  # ITU-R 601-2 luma, as Pillow's convert("L")
        luma = (x.astype(np.int64) * np.array([19595, 38470, 7471]) + 32768).sum(-1) >> 16
        return f"{PHOTO_STAND_IN} (luma)", luma.astype(np.uint8)
    return PHOTO_STAND_IN, x


def vlae(args: list[str], old: Path | None) -> None:
    """The CLI of this checkout, or of the checkout `old`, in a child process."""
    cmd = [sys.executable, "-m", "vlae_codec.cli", *args] if old is None else \
        [sys.executable, "-c", _LAUNCH, str(old), *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")


def header_fields(header: container.Header) -> dict:
    """A header's fields, as JSON."""
    return {k: (v.hex() if isinstance(v, bytes) else str(v) if k == "source" else v)
            for k, v in dataclasses.asdict(header).items() if k != "side_words"}


def compare(model: str, x: np.ndarray, old: Path, threads: int, tmp: Path) -> dict:
    """Compress x with both checkouts, compare the files, and decode each with the checkout that made it."""
    np.save(tmp / "x.npy", x)
    files = {"old": tmp / "old.vlae", "new": tmp / "new.vlae"}
    for who, path in files.items():
        where = old if who == "old" else None
        vlae(["compress", str(tmp / "x.npy"), "-o", str(path), "--model", model, "--threads", str(threads)], where)
        vlae(["decompress", str(path), "-o", str(tmp / f"{who}.npy"), "--threads", str(threads)], where)
    blobs = {who: path.read_bytes() for who, path in files.items()}
    (h_old, w_old), (h_new, w_new) = (container.unpack(blobs[w]) for w in ("old", "new"))
    differ = sorted(k for k in header_fields(h_old) if getattr(h_old, k) != getattr(h_new, k))
    back = {who: np.load(tmp / f"{who}.npy", allow_pickle=False) for who in files}
    # The old file written again in the new format version: the new file's bytes, if the coding is the same.
    upgraded = dataclasses.replace(h_old, version=h_new.version, source=h_new.source, side_words=h_new.side_words)
    return {"images": len(x), "bytes_old": len(blobs["old"]), "bytes_new": len(blobs["new"]),
            "bytes_equal": blobs["old"] == blobs["new"],
            "bytes_equal_in_new_format": container.pack(upgraded, w_old) == blobs["new"],
            "format_version_old": h_old.version, "format_version_new": h_new.version,
            "payload_words": int(len(w_new)), "payload_words_equal": bool(np.array_equal(w_old, w_new)),
            "header_fields_that_differ": differ,
            "only_format_fields_differ": not set(differ) - set(FORMAT_FIELDS),
            "new_header": header_fields(h_new),
            "decoded_equal_to_input": {w: bool(back[w].shape == x.shape and np.array_equal(back[w], x))
                                       for w in files}}


def same(r: dict) -> bool:
    """The two files code the same: equal bytes, or equal payloads under headers that differ only by format."""
    return r["bytes_equal"] or (r["bytes_equal_in_new_format"] and r["payload_words_equal"]
                                and r["only_format_fields_differ"] and all(r["decoded_equal_to_input"].values()))


def markdown(result: dict) -> str:
    rows = [f"| {m} | {r['dataset']} | {r['images']:,} | {r['bytes_old']:,} / {r['bytes_new']:,} | "
            f"{'yes' if r['bytes_equal'] else 'no'} | {'yes' if r['bytes_equal_in_new_format'] else '**NO**'} | "
            f"{r['format_version_old']} / {r['format_version_new']} | "
            f"{'yes' if r['payload_words_equal'] else '**NO**'} ({r['payload_words']:,}) | "
            f"{', '.join(r['header_fields_that_differ']) or 'none'} | "
            f"{'yes' if all(r['decoded_equal_to_input'].values()) else '**NO**'} |"
            for m, r in result["models"].items()]
    return "\n".join([
        f"Each model's first test images as one `.npy` archive, compressed by the checkout "
        f"{result['old_checkout']} (commit {result['old_commit']}) and by this one, both with "
        f"`--threads {result['threads']}`; each file decoded by the checkout that made it.", "",
        "| model | images of | count | bytes old / new | bytes equal | old file rewritten in the new format: bytes equal "
        "| format old / new | payload words equal | "
        "header fields that differ | both decode to the input |",
        "| --- | --- | ---: | ---: | --- | --- | --- | --- | --- | --- |", *rows, "",
        f"Same coding for every model: **{'yes' if result['all_same'] else 'NO'}**. A field that only a newer "
        f"format version writes ({', '.join(FORMAT_FIELDS)}) may differ, so may the bytes; the payload words, "
        "every other header field (pixel checksum included) and the decoded pixels may not."])


def main() -> None:
    ap = arguments(__doc__, threads=1)
    ap.add_argument("--old", type=Path, required=True, help="the old checkout (e.g. a git worktree of the commit)")
    ap.add_argument("--images", type=int, default=1000, help="the first N test images of each model")
    ap.add_argument("--models", nargs="*", default=None,
                    help="models shipped in both checkouts [default: all of them]")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    old_models = {p.name for p in (args.old / "model" / "zoo").iterdir() if (p / "coding.json").is_file()}
    models = args.models or [m for m in zoo.shipped_models() if m in old_models]
    old_commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=args.old, capture_output=True, text=True)
    result = {"provenance": provenance(), "old_checkout": str(args.old), "old_commit": old_commit.stdout.strip(),
              "threads": args.threads, "models": {}}
    for model in models:
        dataset, x = images_for(model, args.images, args.data_dir)
        with tempfile.TemporaryDirectory() as tmp:
            result["models"][model] = {"dataset": dataset, **compare(model, x, args.old, args.threads, Path(tmp))}
        print(model, {k: v for k, v in result["models"][model].items() if k != "new_header"}, file=sys.stderr,
              flush=True)
    result["all_same"] = all(same(r) for r in result["models"].values())
    write("same_bytes", result, markdown(result))
    if not result["all_same"]:
        raise SystemExit("the old and new checkouts code some archive differently")


if __name__ == "__main__":
    main()
