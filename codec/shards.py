"""Sharded collections: independent archives of at most N images each, compressed in parallel,
and an index (index.json) that maps every image to its archive.

A shard is an ordinary .vlae archive: it decodes alone, with its own clean start. The index
lists the shards in order with their first image, count, size and the range of their names
(names sorted, as a folder's are; otherwise every name), so one image or one shard can be
restored without reading the others. The names themselves are in each shard's header.
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

from . import api, container, images
from .errors import FormatError, InputError

INDEX = "index.json"
FORMAT = "vlae-shards"
VERSION = 2  # 2: compact JSON, names as ranges (first_name, last_name); version 1 is still read


@dataclass
class Shard:
    """One archive of the collection: its file, and which images it holds."""

    file: str
    first: int  # position of its first image in the collection
    count: int
    names: list[str]  # version 1, or names not in sorted order: every name; else empty
    bytes: int
    clean_start_bits: float | None  # information content of its first image (lossless only)
    first_name: str = ""  # version 2, sorted names: the shard holds names from first_name to last_name
    last_name: str = ""


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
            if s.first_name and s.first_name <= image <= s.last_name:
                names = self.names(k)
                if image in names:
                    return k, names.index(image)
        if image.isdigit() and int(image) < self.images:
            i = int(image)
            k = next(k for k, s in enumerate(self.shards) if s.first <= i < s.first + s.count)
            return k, i - self.shards[k].first
        raise InputError(f"{self.folder}: no image {image!r} in this collection")

    def names(self, k: int) -> list[str]:
        """The names of shard k's images, from the index or else from the shard's header."""
        if self.shards[k].names or self.layout != "named":
            return self.shards[k].names
        header, _ = container.unpack(_read_shard(self, k))
        return header.names


def _compress_one(args: tuple) -> tuple[bytes, float | None]:
    """Worker: one shard to bytes (run in its own process, one torch thread)."""
    pixels, names, layout, binary, source, side, kwargs = args
    import torch

    torch.set_num_threads(1)
    enc = api.encode(images.Images(pixels, binary, layout, names, source, side), **kwargs)
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
    if isinstance(imgs, images.Mixed):
        raise InputError(f"--shard-size takes images of one kind, and these mix {imgs.kinds()}: compress them as "
                         "one archive (without --shard-size), or shard each kind on its own")
    name = model or api.choose_model(imgs)  # None: the context coder (no model fits)
    n = len(imgs.pixels)
    starts = list(range(0, n, shard_size))
    source = imgs.source
    if imgs.layout == "single" and source.dtype:
        source = images.modes.Source(**{**source.__dict__, "dtype": "", "shape": ()})
    jobs = [(imgs.pixels[s:s + shard_size], imgs.names[s:s + shard_size], imgs.layout if imgs.layout != "single"
             else "array", imgs.binary, _shard_source(source, imgs.pixels[s:s + shard_size]),
             None if imgs.side is None else imgs.side[s:s + shard_size], dict(kwargs, model=name)) for s in starts]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the finished folder is an ordinary one
    try:
        shards, ranged = [], bool(imgs.names) and imgs.names == sorted(imgs.names)
        for k, (start, (data, clean)) in enumerate(zip(starts, _parallel_map(_compress_one, jobs, workers))):
            file = f"shard-{k:05d}.vlae"
            (tmp / file).write_bytes(data)
            names = list(jobs[k][1])
            shards.append(Shard(file, start, len(jobs[k][0]), [] if ranged else names, len(data),
                                None if clean is None else round(clean, 1), names[0] if ranged else "",
                                names[-1] if ranged else ""))
        index = Index(out, Path(name).name if name else "", jobs[0][2], imgs.binary, n, shards)
        (tmp / INDEX).write_text(json.dumps(_index_json(index), separators=(",", ":")) + "\n")
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


def _shard_source(source: images.modes.Source, pixels: np.ndarray) -> images.modes.Source:
    """A shard's source record: an array's shape is the shard's own."""
    if not source.dtype:
        return source
    return images.modes.Source(**{**source.__dict__, "shape": (len(pixels),) + tuple(source.shape[1:])})


def _index_json(index: Index) -> dict:
    def entry(s: Shard) -> dict:  # only the fields a shard has: the index stays a small fraction of the shards
        d = {"file": s.file, "first": s.first, "count": s.count, "bytes": s.bytes,
             "clean_start_bits": s.clean_start_bits}
        d.update({"names": s.names} if s.names else {"first_name": s.first_name, "last_name": s.last_name}
                 if s.first_name else {})
        return d

    return {"format": FORMAT, "version": VERSION, "model": index.model, "layout": index.layout,
            "binary": index.binary, "images": index.images, "shards": [entry(s) for s in index.shards]}


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
        shards = [Shard(**{"names": [], **s}) for s in d["shards"]]
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
    return np.concatenate([d.images for d in decode_parts(index, picked, workers, **kwargs)])


def decode_parts(index: Index, picked: list[int], workers: int = 1, **kwargs) -> list[api.Decoded]:
    """The picked shards decoded, in order, in up to `workers` processes."""
    return _parallel_map(_decode_one, [(index, k, kwargs) for k in picked], workers)


def _decode_one(args: tuple) -> np.ndarray:
    """Worker: one shard's images (run in its own process, one torch thread)."""
    index, k, kwargs = args
    import torch

    torch.set_num_threads(1)
    return decode_part(index, k, **kwargs)


def decode_shard(index: Index, k: int, **kwargs) -> np.ndarray:
    """The images (N, H, W[, C]) of shard k, reading only its file."""
    return decode_part(index, k, **kwargs).images


def _read_shard(index: Index, k: int) -> bytes:
    if not 0 <= k < len(index.shards):
        raise InputError(f"{index.folder}: no shard {k} (there are {len(index.shards)})")
    try:
        return (index.folder / index.shards[k].file).read_bytes()
    except OSError as e:
        raise InputError(f"{index.folder / index.shards[k].file}: cannot read ({e.strerror})") from None


def decode_part(index: Index, k: int, **kwargs) -> api.Decoded:
    """Shard k decoded (its images in their mode, its header with names and mode), reading only its file."""
    decoded = api.decode(_read_shard(index, k), **kwargs)
    shard = index.shards[k]
    if decoded.header.count != shard.count or decoded.header.layout == "mixed":
        raise FormatError(f"{shard.file}: holds {decoded.header.count} images, the index says {shard.count}")
    if decoded.header.layout == "single":
        decoded.images = decoded.images[None]
    return decoded
