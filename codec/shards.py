"""Sharded collections: independent archives of at most N images each, compressed in parallel,
and an index (index.json) that maps every image to its archive.

A shard is an ordinary .vlae archive: it decodes alone, with its own clean start. The index
lists the shards in order with their first image, count, names and size, so one image or one
shard can be restored without reading the others.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from . import api, images
from .errors import FormatError, InputError

INDEX = "index.json"
FORMAT = "vlae-shards"
VERSION = 1


@dataclass
class Shard:
    """One archive of the collection: its file, and which images it holds."""

    file: str
    first: int  # position of its first image in the collection
    count: int
    names: list[str]  # empty unless the collection came from a folder of named PNGs
    bytes: int
    clean_start_bits: float | None  # information content of its first image (lossless only)


@dataclass
class Index:
    """The index of a sharded collection."""

    folder: Path
    model: str
    layout: str  # "array" or "named", as for one archive
    binary: bool
    images: int
    shards: list[Shard]

    def locate(self, image: str) -> tuple[int, int]:
        """(shard, position in it) of an image given by name, or by its number in the collection."""
        for k, s in enumerate(self.shards):
            if image in s.names:
                return k, s.names.index(image)
        if image.isdigit() and int(image) < self.images:
            i = int(image)
            k = next(k for k, s in enumerate(self.shards) if s.first <= i < s.first + s.count)
            return k, i - self.shards[k].first
        raise InputError(f"{self.folder}: no image {image!r} in this collection")


def _compress_one(args: tuple) -> tuple[bytes, float | None]:
    """Worker: one shard to bytes (run in its own process, one torch thread)."""
    pixels, names, layout, binary, kwargs = args
    import torch

    torch.set_num_threads(1)
    enc = api.encode(images.Images(pixels, binary, layout, names), **kwargs)
    return enc.data, (float(enc.info.total[0]) if enc.info is not None else None)


def compress(imgs: images.Images, out: Path, shard_size: int, workers: int = 1, force: bool = False,
             model: str | None = None, **kwargs) -> Index:
    """Write `imgs` as shards of at most `shard_size` images into the folder `out`, with its index.

    The folder appears complete or not at all: it is built under a temporary name and renamed."""
    if shard_size < 1:
        raise InputError("shard size must be at least 1")
    if workers < 1:
        raise InputError("workers must be at least 1")
    if out.exists() and not force:
        raise InputError(f"{out} exists; use --force to overwrite")
    if imgs.side is not None or imgs.source.mode not in ("plain", "1", "L", "RGB"):
        raise InputError(f"--shard-size takes 1-bit, greyscale and RGB images; these are {imgs.source.mode}")
    name = model or api.choose_model(imgs)
    if name is None:
        raise InputError("--shard-size needs a model that fits the images (binary images: 28x28)")
    n = len(imgs.pixels)
    starts = list(range(0, n, shard_size))
    jobs = [(imgs.pixels[s:s + shard_size], imgs.names[s:s + shard_size], imgs.layout if imgs.layout != "single"
             else "array", imgs.binary, dict(kwargs, model=name)) for s in starts]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the finished folder is an ordinary one
    try:
        shards = []
        for k, (start, (data, clean)) in enumerate(zip(starts, _parallel_map(_compress_one, jobs, workers))):
            file = f"shard-{k:05d}.vlae"
            (tmp / file).write_bytes(data)
            shards.append(Shard(file, start, len(jobs[k][0]), list(jobs[k][1]), len(data), clean))
        index = Index(out, Path(name).name, jobs[0][2], imgs.binary, n, shards)
        (tmp / INDEX).write_text(json.dumps(_index_json(index), indent=1) + "\n")
        _replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return index


def _parallel_map(fn, jobs: list, workers: int) -> list:
    """fn over jobs, in order, in up to `workers` processes (in this one when there is one)."""
    if workers == 1 or len(jobs) <= 1:
        return [fn(job) for job in jobs]
    # spawn, not fork: a forked copy of a process that has run torch's thread pool can hang.
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=get_context("spawn")) as pool:
        try:
            return list(pool.map(fn, jobs))
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


def _replace_folder(new: Path, out: Path) -> None:
    """Put the finished folder in place; an old one (allowed by --force) goes only after."""
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
        os.replace(out, old / "x")
        os.replace(new, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, out)


def _index_json(index: Index) -> dict:
    return {"format": FORMAT, "version": VERSION, "model": index.model, "layout": index.layout,
            "binary": index.binary, "images": index.images,
            "shards": [vars(s) for s in index.shards]}


def read_index(path: Path) -> Index:
    """The index of a sharded collection, given its folder or its index.json."""
    folder = path if path.is_dir() else path.parent
    try:
        d = json.loads((folder / INDEX).read_text())
    except OSError as e:
        raise InputError(f"{folder}: no readable {INDEX} ({e.strerror})") from None
    except ValueError:
        raise FormatError(f"{folder / INDEX}: not valid JSON") from None
    try:
        if d["format"] != FORMAT or d["version"] > VERSION:
            raise FormatError(f"{folder / INDEX}: not a {FORMAT} index of version <= {VERSION}")
        shards = [Shard(**s) for s in d["shards"]]
        index = Index(folder, d["model"], d["layout"], bool(d["binary"]), int(d["images"]), shards)
    except (KeyError, TypeError, ValueError):
        raise FormatError(f"{folder / INDEX}: malformed index") from None
    for s in shards:
        if Path(s.file).name != s.file or not s.file.endswith(".vlae"):
            raise FormatError(f"{folder / INDEX}: bad shard file name {s.file!r}")
    if sum(s.count for s in shards) != index.images:
        raise FormatError(f"{folder / INDEX}: shard counts do not add up to {index.images} images")
    return index


def decode_shards(index: Index, picked: list[int], workers: int = 1, **kwargs) -> np.ndarray:
    """The images of the picked shards, in order, decoded in up to `workers` processes."""
    jobs = [(index, k, kwargs) for k in picked]
    return np.concatenate(_parallel_map(_decode_one, jobs, workers))


def _decode_one(args: tuple) -> np.ndarray:
    """Worker: one shard's images (run in its own process, one torch thread)."""
    index, k, kwargs = args
    import torch

    torch.set_num_threads(1)
    return decode_shard(index, k, **kwargs)


def decode_shard(index: Index, k: int, **kwargs) -> np.ndarray:
    """The images (N, H, W[, C]) of shard k, reading only its file."""
    if not 0 <= k < len(index.shards):
        raise InputError(f"{index.folder}: no shard {k} (there are {len(index.shards)})")
    shard = index.shards[k]
    try:
        data = (index.folder / shard.file).read_bytes()
    except OSError as e:
        raise InputError(f"{index.folder / shard.file}: cannot read ({e.strerror})") from None
    decoded = api.decode(data, **kwargs)
    if decoded.header.count != shard.count:
        raise FormatError(f"{shard.file}: holds {decoded.header.count} images, the index says {shard.count}")
    return decoded.images
