"""The library API: images or paths in, bytes out, and back."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import bitsback, compact, container, context, fallback, images, modes, tuning
from .ans import Stack
from .errors import CodecError, FormatError, InputError, ModelMismatch
from .lossy import decode_lossy, encode_lossy
from .model.interface import (CodingModel, ModelNotFound, load_coding_model, network_device, resolve_model,
                              shipped_models)

DEFAULT_BATCH = 256  # images per network evaluation; any value decodes any file
DEFAULT_EFFORT = 16  # lossy: candidate codes tried per image
MAX_EFFORT = 64
# A lone image tries the context coder in full only if, on a band of its rows (an eighth, at
# least 32), it comes within 1.25 times the model's size on the same rows.
CONTEXT_BAND, CONTEXT_BAND_SHARE, CONTEXT_MARGIN = 32, 8, 1.25
# Bits a context-coded plane spends learning its counts from flat: a band pays them as the
# whole image does (2,240 on a smooth 640x480 gradient, whose full file is 0.35 times the model's)
CONTEXT_LEARNING = 2048
# Peak memory per pixel of a lone image, above the process and model, with some margin: with
# the photo model, a 12-megapixel photo took 1.8 GB to compress and 1.3 GB to decompress
# (benchmarks/results/big_photo.md), kodim23 (0.4 megapixels) 1.0 and 0.5 GB, a fifth of it
# the whole feature map that images up to a megapixel get (photo_speed.md).
BYTES_PER_PIXEL = {"compress": 120, "decompress": 120}
# Up to this many pixels, the clean start's posterior is made on one core beside the offsets' fit
# on the other (kodim23's settings and posterior 3.9 -> 3.1 s). A larger image's posterior would
# run on one core long after the fit (a 12-megapixel photo's compress 195 -> 209 s), so it waits
# for both.
POSTERIOR_BESIDE_FIT = 1 << 19


@dataclass
class Encoded:
    """A file's bytes, and the information content of what it codes (None for lossy files)."""

    data: bytes
    info: bitsback.Info | None


@dataclass
class Decoded:
    """What a file holds: images (N, H, W[, C]) in their mode (uint8, or uint16 for 16-bit ones;
    (H, W[, C]) for a single image), and its header."""

    images: np.ndarray
    header: container.Header
    parts: list[Decoded] = field(default_factory=list)  # a mixed archive: each part (its images empty)


@lru_cache(maxsize=8)
def coding_model(name_or_dir: str) -> CodingModel:
    """The coding form of a shipped model (by name) or of a model folder."""
    try:
        directory = resolve_model(name_or_dir)
    except ModelNotFound as e:
        raise InputError(str(e)) from None
    if not (directory / "coding.json").is_file():
        raise InputError(f"model {name_or_dir!r} has no coding form; run 'vlae-codec convert' on it")
    return load_coding_model(directory)


@lru_cache(maxsize=8)
def _on_device(name_or_dir: str, device: str) -> CodingModel:
    return coding_model(name_or_dir).to(device)


def _model(name_or_dir: str, device: str | None) -> CodingModel:
    """`coding_model`, its networks on `device` (None: the CPU)."""
    return coding_model(name_or_dir) if device is None else _on_device(name_or_dir, device)


def check_device(device: str | None) -> None:
    """InputError unless `device` (None: the CPU) can run the networks exactly."""
    if device is not None:
        try:
            network_device(device)
        except ValueError as e:
            raise InputError(str(e)) from None


# Which shipped model takes which kind of input, unless the user names one: the digit and CIFAR
# models at the size they were trained on, the photo models at every other size
# (benchmarks/results/model_choice.md measures the rule).
MODEL_FOR_KIND = {"binary": "bmnist", "greyscale": "photo-grey", "rgb": "photo"}
MODEL_FOR_SIZE = {("greyscale", 28, 28): "mnist", ("rgb", 32, 32): "cifar"}


def choose_model(imgs: images.Images) -> str | None:
    """The shipped model for an input: 28x28 binary images go to bmnist; 28x28 greyscale to mnist
    and other greyscale to photo-grey; 32x32 RGB to cifar and other RGB to photo. None: no model
    fits (binary images of other sizes, palette indices), the context coder codes them."""
    if imgs.source.mode in modes.MODEL_FREE:
        return None
    if imgs.binary:
        if imgs.pixels.shape[1:3] != (28, 28):
            return None
        kind = "binary"
    elif imgs.pixels.ndim == 3:
        kind = "greyscale"
    elif imgs.pixels.shape[-1] == 3:
        kind = "rgb"
    else:
        kind = f"{imgs.pixels.shape[-1]}-channel"
    height, width = imgs.pixels.shape[1:3]
    name = MODEL_FOR_SIZE.get((kind, height, width), MODEL_FOR_KIND.get(kind))
    if name is None or name not in shipped_models():
        raise InputError(f"no shipped model fits {kind} images yet (shipped: {', '.join(shipped_models())}); "
                         "binary images (1-bit PNG, or arrays of 0/1) use bmnist, 8-bit greyscale (PNG mode L) "
                         "mnist or photo-grey, RGB cifar or photo")
    return name


def _as_images(images_or_path) -> images.Images | images.Mixed:
    if isinstance(images_or_path, (images.Images, images.Mixed)):
        return images_or_path
    if isinstance(images_or_path, (str, os.PathLike)):
        return images.read(images_or_path)
    array = np.asarray(images_or_path)
    return images.from_array(array, layout="single" if array.ndim == 2 else "array")


def _check_fits(model: CodingModel, name: str, imgs: images.Images) -> None:
    cfg = model.cfg
    n, h, w = imgs.pixels.shape[:3]
    c = 1 if imgs.pixels.ndim == 3 else imgs.pixels.shape[3]
    if cfg.block and c != cfg.channels:
        raise InputError(f"model {name} takes images with {cfg.channels} channel(s); got {c}")
    if not cfg.block and (h, w, c) != (cfg.height, cfg.width, cfg.channels):
        raise InputError(f"model {name} takes {cfg.height}x{cfg.width} images with {cfg.channels} channel(s); "
                         f"got {h}x{w} with {c}")
    if max(h, w) > container.MAX_SIDE:
        raise InputError(f"images of {h}x{w} exceed the side limit of {container.MAX_SIDE}")
    if cfg.likelihood == "bernoulli" and int(imgs.pixels.max()) > 1:
        raise InputError(f"model {name} codes binary images (values 0/1); got values up to {imgs.pixels.max()}")


def as_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 images (N, H, W[, C]) as the int64 (N, C, H, W) the coding model takes."""
    x = torch.from_numpy(pixels.astype(np.int64))
    return x[:, None] if x.dim() == 3 else x.permute(0, 3, 1, 2).contiguous()


def _array(x: torch.Tensor) -> np.ndarray:
    a = x.numpy().astype(np.uint8)
    return a[:, 0] if a.shape[1] == 1 else a.transpose(0, 2, 3, 1)


def compress(images_or_path, model: str | None = None, lossy: bool = False, seed: int | None = None,
             chunk_max: int = bitsback.DEFAULT_CHUNK_MAX, batch: int = DEFAULT_BATCH,
             progress: Callable[[int], None] | None = None, effort: int = DEFAULT_EFFORT,
             device: str | None = None, offsets: bool = True) -> bytes:
    """Compress images (array (N,H,W[,C]) or (H,W), an image file, a folder of PNGs or an .npy path) to bytes.

    Lossless by default; `lossy=True` keeps only the global code, and decompression then
    generates each pixel's mean given the pixels before it (or, with `seed`, a sample) given it;
    `effort` codes are tried and the one whose image is closest to the original is kept.
    `device` (e.g. "cuda") runs the networks there; the bytes are the same on any device.
    `offsets` lets the encoder fit the pixel distributions to the images (codec/tuning.py),
    where that saves more than it costs.
    """
    return encode(images_or_path, model, lossy, seed, chunk_max, batch, progress, effort, device, offsets).data


def encode(images_or_path, model: str | None = None, lossy: bool = False, seed: int | None = None,
           chunk_max: int = bitsback.DEFAULT_CHUNK_MAX, batch: int = DEFAULT_BATCH,
           progress: Callable[[int], None] | None = None, effort: int = DEFAULT_EFFORT,
           device: str | None = None, offsets: bool = True) -> Encoded:
    """`compress`, also returning the information content of every image (None for a mixed archive)."""
    opts = Options(model, lossy, seed, chunk_max, batch, progress, effort, device, offsets)
    opts.check()  # before any work
    imgs = _as_images(images_or_path)
    if isinstance(imgs, images.Mixed):
        return Encoded(compact.pack_mixed([_encode_part(g, imgs, opts) for g in imgs.groups]), None)
    encoded = _encode_one(imgs, opts)
    if imgs.source.mode == "P" and not lossy and model is None:
        # Palette indices may suit the context coder better than the colours do (graphics).
        indices = images.Images(imgs.full(), False, imgs.layout, imgs.names, modes.Source(
            **{**imgs.source.__dict__, "mode": "P;I"}))
        by_index = _encode_one(indices, opts)
        if len(by_index.data) < len(encoded.data):
            encoded = by_index
    return encoded


@dataclass(frozen=True)
class Options:
    """What `compress` was asked to do, as one value for the functions that do it."""

    model: str | None = None
    lossy: bool = False
    seed: int | None = None
    chunk_max: int = bitsback.DEFAULT_CHUNK_MAX
    batch: int = DEFAULT_BATCH
    progress: Callable[[int], None] | None = None
    effort: int = DEFAULT_EFFORT
    device: str | None = None
    offsets: bool = True

    def check(self) -> None:
        """InputError for settings out of range."""
        check_device(self.device)
        if not 1 <= self.chunk_max <= container.MAX_CHUNK:
            raise InputError(f"chunk_max must be in 1..{container.MAX_CHUNK}")
        if self.seed is not None and not 0 <= self.seed < 1 << 62:
            raise InputError("seed must be a non-negative integer below 2^62")
        if not 1 <= self.effort <= MAX_EFFORT:
            raise InputError(f"effort must be in 1..{MAX_EFFORT}")


def _encode_part(group: images.Images, mixed: images.Mixed, opts: Options) -> bytes:
    """One kind of image of a mixed folder, as a part of its archive."""
    try:
        return _encode_one(group, opts).data
    except InputError as e:
        raise InputError(f"{e}; the folder mixes {mixed.kinds()}: compress each kind in its own folder"
                         + (", or leave out --model so that each kind gets its own" if opts.model else "")) from None


def _encode_one(imgs: images.Images, opts: Options) -> Encoded:
    """`encode` of images of one kind."""
    name = opts.model or choose_model(imgs)
    if name is None and opts.lossy:
        raise InputError("no shipped model fits these images, so they have no lossy code; compress them losslessly")
    cm = None if name is None else _model(name, opts.device)
    if cm is not None:
        _check_fits(cm, name, imgs)
    if max(imgs.pixels.shape[1:3]) > container.MAX_SIDE:
        raise InputError(f"images of {imgs.pixels.shape[1]}x{imgs.pixels.shape[2]} exceed the side limit of "
                         f"{container.MAX_SIDE}")
    if imgs.pixels.size > container.MAX_SUBPIXELS:
        raise InputError(f"{len(imgs.pixels)} images exceed one archive's limit of {container.MAX_SUBPIXELS} "
                         "subpixels; compress them in parts")
    if cm is not None and len(imgs.pixels) == 1:
        _check_memory(imgs.pixels.shape[1] * imgs.pixels.shape[2], "compress")
    # zlib and Pillow's PNG encoder let go of the GIL, so the stored fallback and the PNG
    # are made on a second thread while the model codes.
    with ThreadPoolExecutor(max_workers=1) as pool:
        png_made = None if opts.lossy else pool.submit(images.png_bytes, imgs)
        x = as_tensor(imgs.pixels)
        stack = Stack()
        info = None
        fitted, shift, chains = None, 0, []
        if opts.lossy:
            # The checksum covers what the decoder will generate, so corruption is still caught.
            stored = _array(encode_lossy(stack, cm, x, opts.batch, opts.seed, opts.effort))
            mode, words = "lossy", stack.words()
        elif cm is None:
            stack = _push_planes(imgs.pixels, labels=imgs.source.mode in modes.MODEL_FREE)
            mode, words = "context", stack.words()
            stored = imgs.pixels
        else:
            # Never worse than plain zlib of the pixels (plus the header).
            plain = pool.submit(fallback.pack, imgs.pixels)
            overlap = x[0, 0].numel() <= POSTERIOR_BESIDE_FIT
            fitted, shift, clean_mu = tuning.settings(
                cm, x, opts.offsets, beside=lambda: bitsback.posterior_of(cm, x[:1], opts.batch)[0] if overlap else None)
            stacks, info = bitsback.encode_chains(cm.with_offsets(fitted), x, opts.chunk_max, opts.batch,
                                                  opts.progress, shift, clean_mu)
            stack, chained = stacks[0], [s.words() for s in stacks]
            mode, words = "lossless", np.concatenate(chained)
            if len(stacks) > 1:
                chains = [(len(w), s.floor) for w, s in zip(chained, stacks)]
            if len(plain.result()) < len(words):
                mode, words, chains = "stored", plain.result(), []
            if len(imgs.pixels) == 1 and _context_may_win(imgs.pixels, len(words), info.pixel_rows[0]):
                planes = _push_planes(imgs.pixels)
                if len(planes.words()) < len(words):
                    stack, mode, words = planes, "context", planes.words()
            stored = imgs.pixels
    side = Stack(guarded=False)
    if imgs.side is not None:
        for plane in imgs.side.reshape(-1, *imgs.side.shape[2:])[::-1]:
            context.push(side, plane)
    header = container.Header(
        mode=mode, model_id="" if cm is None else Path(name).name,
        model_hash=bytes(8) if cm is None else bytes.fromhex(cm.weights_hash[:16]),
        height=x.shape[2], width=x.shape[3], channels=x.shape[1],
        bit_depth=cm.bit_depth if cm is not None else 1 if imgs.binary else 8, count=len(x), layout=imgs.layout,
        chunk_max=opts.chunk_max, seed=opts.seed if opts.lossy else None, checksum=container.pixel_checksum(stored),
        names=imgs.names, floor=stack.floor if mode in ("lossless", "lossy", "context") and not chains else 0,
        offsets=fitted.tolist() if fitted is not None and mode == "lossless" else [],
        clean_shift=shift if mode == "lossless" else 0, source=imgs.source,
        side_words=side.words() if imgs.side is not None else np.zeros(0, dtype=np.uint32), chains=chains)
    data = container.pack(header, words)
    # A lone image's file is never larger than its PNG plus the (at most 14) bytes that wrap it.
    png = None if png_made is None else png_made.result()
    if png is not None and len(container.pack_png(png)) < len(data):
        data = container.pack_png(png)
    return Encoded(data, info)


def _check_memory(pixels: int, direction: str) -> None:
    """InputError, before any heavy work, for a lone image too big for this machine's free memory:
    being refused beats being killed halfway."""
    need = BYTES_PER_PIXEL[direction] * pixels
    try:
        with open("/proc/meminfo") as f:
            free = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return  # not Linux: nothing to ask
    if need > free:
        raise InputError(f"a {pixels / 1e6:.1f}-megapixel image needs about {need / 2**30:.1f} GB to {direction}, "
                         f"and {free / 2**30:.1f} GB are free; crop or scale it down, or use a machine with more memory")


def context_band(height: int) -> slice | None:
    """The middle rows a lone image's context trial is judged on, or None if that is all of them."""
    rows = max(CONTEXT_BAND, height // CONTEXT_BAND_SHARE)
    return None if rows >= height else slice((height - rows) // 2, (height - rows) // 2 + rows)


def _context_may_win(pixels: np.ndarray, words: int, row_bits: np.ndarray) -> bool:
    """Whether the context coder might beat `words` words on a lone image (1, H, W[, C]), judged
    by what it and the model (`row_bits`: its bits on each row) make of the same band of rows.
    Graphics (few colours, flat areas) come out far below the model there; photos far above,
    and are spared coding twice."""
    band_rows = context_band(pixels.shape[1])
    if band_rows is None:
        return True
    band = _push_planes(pixels[:, band_rows]).num_bits()
    # The model's bits on the band, scaled to the file's words as on the whole image: a band
    # of one photo in a mosaic can be far easier than the rest, for either coder.
    model = 32 * words * row_bits[band_rows].sum() / row_bits.sum()
    planes = pixels.shape[3] if pixels.ndim == 4 else 1
    return band < CONTEXT_MARGIN * model + CONTEXT_LEARNING * planes


def _push_planes(pixels: np.ndarray, labels: bool = False) -> Stack:
    """A guarded stack with every channel plane of the images pushed by the context coder;
    `labels`: the values are palette indices."""
    stack = Stack()
    planes = pixels[..., None] if pixels.ndim == 3 else pixels
    for plane in planes.transpose(0, 3, 1, 2).reshape(-1, *pixels.shape[1:3])[::-1]:
        context.push(stack, plane, labels)
    return stack


def _pop_planes(stack: Stack, count: int, h: int, w: int, channels: int) -> np.ndarray:
    """`_push_planes`'s images (N, H, W[, C])."""
    out = np.stack([context.pop(stack, h, w) for _ in range(count * channels)]).reshape(count, channels, h, w)
    return out[:, 0] if channels == 1 else out.transpose(0, 2, 3, 1)


def decode(data: bytes, model: str | None = None, batch: int = DEFAULT_BATCH,
           progress: Callable[[int], None] | None = None, device: str | None = None) -> Decoded:
    """Decode a .vlae file's bytes, checking the model's identity and the pixels' checksum."""
    check_device(device)  # even for stored files, which need no model
    header, words = container.unpack(bytes(data))
    if header.layout == "mixed":
        parts = [decode(part, model, batch, progress, device) for part in header.parts]
        return Decoded(np.zeros(0, dtype=np.uint8), header, parts)
    shape = (header.count, header.height, header.width) + ((header.channels,) if header.channels > 1 else ())
    if header.mode == "stored":
        return _checked(fallback.unpack(words, shape), header)
    if header.mode == "png":
        try:
            imgs = images.from_png(header.png)
        except InputError as e:
            raise FormatError(f"file is corrupt ({e})") from None
        header.source = imgs.source
        return Decoded(imgs.full()[0], header)
    if header.mode == "context":
        try:
            stack = Stack(words, floor=header.floor)
            out = _pop_planes(stack, header.count, header.height, header.width, header.channels)
        except (ValueError, RuntimeError, IndexError, OverflowError) as e:
            raise FormatError(f"file is corrupt ({type(e).__name__} while decoding)") from None
        if not stack.finished():
            raise FormatError("file is corrupt (payload has words left over)")
        return _checked(out, header)
    name = model or header.model_id
    try:
        cm = _model(name, device)
    except InputError:
        raise ModelMismatch(f"file needs model {header.model_id!r}, which is not available here "
                            f"(shipped: {', '.join(shipped_models())})") from None
    if bytes.fromhex(cm.weights_hash[:16]) != header.model_hash:
        raise ModelMismatch(f"file was made with another version of model {header.model_id!r} "
                            f"(weights {header.model_hash.hex()}, here {cm.weights_hash[:16]})")
    cfg = cm.cfg
    if (header.channels != cfg.channels or header.bit_depth != cm.bit_depth
            or (not cfg.block and (header.height, header.width) != (cfg.height, cfg.width))):
        raise FormatError("file geometry does not match its model")
    try:
        cm = cm.with_offsets(torch.tensor(header.offsets) if header.offsets else None)
        cm.clean_bins(header.clean_shift)
    except ValueError as e:
        raise FormatError(f"file does not fit its model ({e})") from None
    h, w = header.height, header.width
    if header.count == 1:
        _check_memory(h * w, "decompress")
    try:
        if header.chains:
            parts = np.split(words, np.cumsum([n for n, _ in header.chains])[:-1])
            stacks = [Stack(part, floor=floor) for part, (_, floor) in zip(parts, header.chains)]
        else:
            stacks = [Stack(words, floor=header.floor, guarded=header.version >= 2)]
        if header.mode == "lossy":
            x = decode_lossy(stacks[0], cm, header.count, h, w, batch, header.seed)
        else:
            x = bitsback.decode_chains(stacks, cm, header.count, h, w, header.chunk_max, batch, progress,
                                       header.clean_shift)
        left_over = not all(s.finished() for s in stacks)
    except (ValueError, RuntimeError, IndexError, OverflowError) as e:
        raise FormatError(f"file is corrupt ({type(e).__name__} while decoding)") from None
    if left_over:
        raise FormatError("file is corrupt (payload has words left over)")
    return _checked(_array(x), header)


def _checked(out: np.ndarray, header: container.Header) -> Decoded:
    """The decoded main pixels checked, with their side planes restored to the source's mode."""
    # Version 5 keeps 4 bytes of the checksum (FORMAT.md), older versions all 8.
    if container.pixel_checksum(out)[:len(header.checksum)] != header.checksum:
        raise FormatError("file is corrupt (decoded pixels fail the checksum)")
    if header.bit_depth == 1 and out.size and out.max() > 1:
        raise FormatError("file is corrupt (a binary image holds values above 1)")
    per_image = modes.planes_per_image(header.source, header.channels)
    try:
        stack = Stack(header.side_words, guarded=False)
        side = np.zeros((header.count, per_image, header.height, header.width), dtype=np.uint8)
        for i, k in np.ndindex(header.count, per_image):
            side[i, k] = context.pop(stack, header.height, header.width)
        full = modes.restore(out, side, header.source)
    except (ValueError, RuntimeError, IndexError, OverflowError) as e:
        raise FormatError(f"file is corrupt ({e if isinstance(e, ValueError) else type(e).__name__} in its side "
                          "planes)") from None
    if per_image and not stack.finished():
        raise FormatError("file is corrupt (side planes have words left over)")
    return Decoded(full[0] if header.layout == "single" else full, header)


def decompress(data: bytes, batch: int = DEFAULT_BATCH, device: str | None = None) -> np.ndarray | dict:
    """Images from a .vlae file's bytes, as they went in: (N, H, W[, C]) in their mode (an array
    with its dtype and shape), or (H, W[, C]) for a single image; a mixed archive (a folder of
    several kinds of image) gives a dict of each image (H, W[, C]) by name."""
    decoded = decode(data, batch=batch, device=device)
    if decoded.parts:
        return {n: image for part in decoded.parts for n, image in zip(part.header.names, part.images)}
    if decoded.header.layout == "array":
        return modes.to_array(decoded.images, decoded.header.source)
    return decoded.images


def default_output(src: Path, compressing: bool, layout: str | None = None) -> Path:
    if compressing:
        return src.with_name(src.name.rstrip("/") + ".vlae") if src.is_dir() else src.with_suffix(".vlae")
    base = src.with_suffix("")
    if layout == "single":
        return base if base.suffix.lower() == ".png" else base.with_suffix(".png")
    if layout == "array":
        return base if base.suffix.lower() == ".npy" else base.with_suffix(".npy")
    return base


def compress_file(src: str | os.PathLike, dst: str | os.PathLike | None = None, force: bool = False,
                  **kwargs) -> Path:
    """Compress an image file, a folder of PNGs or an .npy file into a .vlae file; returns its path."""
    src = Path(src)
    dst = Path(dst) if dst is not None else default_output(src, True)
    images.refuse_overwrite(dst, force)
    return write_file(compress(images.read(src), **kwargs), dst, force)


def write_file(data: bytes, dst: Path, force: bool) -> Path:
    """Write a .vlae file atomically."""
    images.atomic_write(dst, lambda tmp: tmp.write_bytes(data), force)
    return dst


def decompress_file(src: str | os.PathLike, dst: str | os.PathLike | None = None, force: bool = False,
                    **kwargs) -> Path:
    """Decompress a .vlae file to an image file (format by `dst`'s extension, PNG by default), a folder
    of PNGs or an .npy file; returns its path."""
    src = Path(src)
    try:
        data = src.read_bytes()
    except OSError as e:
        raise InputError(f"{src}: cannot read ({e.strerror})") from None
    decoded = decode(data, **kwargs)
    h = decoded.header
    dst = Path(dst) if dst is not None else default_output(src, False, h.layout)
    if h.layout not in ("named", "mixed"):
        images.refuse_overwrite(dst, force)
    parts = decoded.parts or [decoded]
    if h.layout == "mixed":  # every part's names checked before anything is written
        if dst.exists() and not dst.is_dir():
            raise InputError(f"{dst} exists and is not a folder")
        for n in h.names:
            images.refuse_overwrite(dst / n, force)
    for part in parts:
        p = part.header
        imgs = part.images[None] if p.layout == "single" else part.images
        images.write(imgs, p.bit_depth == 1, p.layout, p.names, dst, force or h.layout == "mixed", p.source)
    return dst


__all__ = ["compress", "decompress", "decode", "compress_file", "decompress_file", "CodecError"]
