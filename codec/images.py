"""Reading and writing what users hand us: PNG files, folders of PNGs and .npy arrays."""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import InputError

MAX_PIXELS = 1 << 28  # refuse PNGs that claim more (decompression bombs)


@dataclass
class Images:
    """A batch of same-sized images as uint8 (N, H, W) or (N, H, W, C), and where they came from."""

    pixels: np.ndarray
    binary: bool  # 1-bit PNGs, or an array holding only 0 and 1
    layout: str  # "single" | "array" | "named"
    names: list[str] = field(default_factory=list)


def from_array(array: np.ndarray, layout: str = "array") -> Images:
    """Check an array of images (N,H,W) or (N,H,W,C), or a single (H,W) image."""
    a = np.asarray(array)
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise InputError("array holds NaN or infinite values; give uint8 pixels")
        raise InputError(f"array has dtype {a.dtype}; give uint8 pixels (0..255, or 0/1 for binary images)")
    if a.dtype.kind not in "ui":
        raise InputError(f"array has dtype {a.dtype}; give uint8 pixels")
    if a.dtype != np.uint8:
        if a.size and (a.min() < 0 or a.max() > 255):
            raise InputError(f"array values span {a.min()}..{a.max()}; pixels must be in 0..255")
        a = a.astype(np.uint8)
    if layout == "single":
        a = a[None]
    if a.ndim == 4 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (3, 4):
        raise InputError(f"array has shape {a.shape}; expected (N, H, W) or (N, H, W, C)")
    if a.shape[0] == 0 or a.shape[1] == 0 or a.shape[2] == 0:
        raise InputError(f"array has shape {a.shape}: no pixels to compress")
    binary = bool(a.size) and int(a.max()) <= 1
    return Images(np.ascontiguousarray(a), binary, layout)


def _read_png(path: Path) -> tuple[np.ndarray, bool]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise InputError(f"{path}: {im.width}x{im.height} is too large")
                mode = im.mode
                if mode == "1":
                    return np.asarray(im, dtype=np.uint8), True
                if mode in ("L", "RGB"):
                    return np.asarray(im, dtype=np.uint8), False
                if mode in ("I;16", "I;16B", "I", "I;16L"):
                    raise InputError(f"{path}: 16-bit PNGs are not supported; convert to 8 bits")
                if mode == "P":
                    # A palette holds colours: code them as RGB (or with their alpha, below).
                    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                    mode = im.mode
                    if mode == "RGB":
                        return np.asarray(im, dtype=np.uint8), False
                if mode in ("LA", "RGBA"):
                    a = np.asarray(im, dtype=np.uint8)
                    if (a[..., -1] != 255).any():
                        raise InputError(f"{path}: has transparency, which is not supported yet; "
                                         "flatten it onto a background or save it without alpha")
                    return np.ascontiguousarray(a[..., :-1].squeeze(-1) if mode == "LA" else a[..., :3]), False
                raise InputError(f"{path}: PNG mode {mode} is not supported (binary, greyscale, RGB and palette "
                                 "are; alpha only when fully opaque)")
    except InputError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(f"{path}: not a readable PNG image ({e})") from None


def read(path: str | os.PathLike) -> Images:
    """A PNG file, a folder of PNG files (one archive, sorted by name) or an .npy array."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png" and p.is_file())
        if not files:
            raise InputError(f"{path}: folder holds no .png files")
        arrays, kinds = zip(*(_read_png(p) for p in files))
        if len({a.shape for a in arrays}) > 1 or len(set(kinds)) > 1:
            raise InputError(f"{path}: images differ in size or mode; an archive holds images of one kind")
        out = from_array(np.stack(arrays))
        return Images(out.pixels, kinds[0], "named", [p.name for p in files])
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise InputError(f"{path}: not a readable .npy array ({e})") from None
        return from_array(array)
    pixels, binary = _read_png(path)
    out = from_array(pixels, layout="single")
    return Images(out.pixels, binary, "single")


def refuse_overwrite(path: Path, force: bool) -> None:
    """Fail if the output exists and --force was not given (callers check before any work)."""
    if path.exists() and not force:
        raise InputError(f"{path} exists; use --force to overwrite")


def atomic_write(path: Path, write, force: bool) -> None:
    """Write through a temporary file in the same folder, then rename: never a partial file."""
    refuse_overwrite(path, force)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_png(path: Path, image: np.ndarray, binary: bool, force: bool) -> None:
    im = Image.fromarray((image * 255).astype(np.uint8)).convert("1") if binary else Image.fromarray(image)
    atomic_write(path, lambda tmp: im.save(tmp, format="PNG"), force)


def write(images: np.ndarray, binary: bool, layout: str, names: list[str], out: Path, force: bool) -> None:
    """Write decoded images where the user asked: a PNG, an .npy array or a folder of PNGs."""
    if layout == "single":
        write_png(out, images[0], binary, force)
    elif layout == "array":
        def save(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.save(f, images)

        atomic_write(out, save, force)
    else:
        if out.exists() and not out.is_dir():
            raise InputError(f"{out} exists and is not a folder")
        clash = [n for n in names if (out / n).exists()]
        if clash and not force:
            raise InputError(f"{out / clash[0]} exists; use --force to overwrite")
        out.mkdir(parents=True, exist_ok=True)
        for image, n in zip(images, names):
            write_png(out / n, image, binary, force=True)
