"""Reading and writing what users hand us: image files, folders of PNGs and .npy arrays."""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from . import modes
from .errors import InputError

MAX_PIXELS = 1 << 28  # refuse images that claim more (decompression bombs)
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")
# Output formats by file extension: each writes the modes it can hold exactly (checked on writing).
FORMATS = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".ppm": "PPM", ".pgm": "PPM",
           ".pbm": "PPM", ".pnm": "PPM", ".webp": "WEBP"}


@dataclass
class Images:
    """A batch of same-sized images: the main pixels a model codes, uint8 (N, H, W) or (N, H, W, C),
    the side planes (N, K, H, W) that the context coder codes, and where they came from."""

    pixels: np.ndarray
    binary: bool  # 1-bit images, or an array holding only 0 and 1
    layout: str  # "single" | "array" | "named"
    names: list[str] = field(default_factory=list)
    source: modes.Source = field(default_factory=modes.Source)
    side: np.ndarray | None = None  # None: no side planes
    format: str = ""  # the input file's format as Pillow names it (PNG, JPEG, TIFF, ...)

    def full(self) -> np.ndarray:
        """The images as the user gave them (N, H, W[, C]), in their mode; for arrays, their dtype."""
        return modes.restore(self.pixels, self._side(), self.source)

    def _side(self) -> np.ndarray:
        n, h, w = self.pixels.shape[:3]
        return self.side if self.side is not None else np.zeros((n, 0, h, w), dtype=np.uint8)


@dataclass
class Mixed:
    """A folder of PNGs of several kinds: one named `Images` per size, mode and palette, in the
    order their first file comes by name. It becomes one archive of several parts."""

    groups: list[Images]

    def kinds(self) -> str:
        """The kinds, for messages: e.g. '28x28 L, 32x32 RGBA'."""
        return ", ".join(f"{g.pixels.shape[2]}x{g.pixels.shape[1]} {g.source.mode}" for g in self.groups)


def _split(full: np.ndarray, source: modes.Source, layout: str, names=(), fmt: str = "") -> Images:
    main, side, source = modes.split(full, source)
    binary = source.mode == "1" or (source.mode == "plain" and bool(main.size) and int(main.max()) <= 1)
    return Images(np.ascontiguousarray(main), binary, layout, list(names), source,
                  side if side.shape[1] else None, fmt)


def _check_shape(a: np.ndarray) -> None:
    if a.ndim not in (3, 4):
        raise InputError(f"array has shape {a.shape}; expected (N, H, W) or (N, H, W, C)")
    if a.shape[0] == 0 or a.shape[1] == 0 or a.shape[2] == 0:
        raise InputError(f"array has shape {a.shape}: no pixels to compress")


def from_array(array: np.ndarray, layout: str = "array") -> Images:
    """Check an array of images (N,H,W) or (N,H,W,C), or a single (H,W) image: uint8 values (0/1 for
    binary images) or up to 65535 (16-bit); 2 channels are greyscale and alpha, 4 RGB and alpha.
    Decoding gives back the array's dtype and shape."""
    a = np.asarray(array)
    original = a
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise InputError("array holds NaN or infinite values; give uint8 pixels")
        raise InputError(f"array has dtype {a.dtype}; give uint8 pixels (0..255, or 0/1 for binary images)")
    if a.dtype.kind not in "uib":
        raise InputError(f"array has dtype {a.dtype}; give uint8 pixels")
    if layout == "single":
        a = a[None]
    if a.ndim == 4 and a.shape[-1] == 1:
        a = a[..., 0]
    _check_shape(a)
    low, high = (int(a.min()), int(a.max())) if a.size else (0, 0)
    if low < 0 or high > 65535:
        raise InputError(f"array values span {low}..{high}; pixels must be in 0..255 (or 0..65535 for 16-bit)")
    channels = 1 if a.ndim == 3 else a.shape[-1]
    if high > 255:
        mode = {1: "I;16", 3: "RGB;16"}.get(channels)
        if mode is None:
            raise InputError(f"16-bit arrays must have 1 or 3 channels; got {channels}")
        a = a.astype(np.uint16)
    else:
        mode = {1: "plain", 2: "LA", 3: "plain", 4: "RGBA"}.get(channels)
        if mode is None:
            raise InputError(f"array has {channels} channels; expected 1, 2 (with alpha), 3 or 4 (with alpha)")
        a = a.astype(np.uint8)
    source = modes.Source(mode)
    if original.dtype != np.uint8 or (layout == "array" and original.shape != a.shape):
        source.dtype, source.shape = original.dtype.str, tuple(original.shape)
    return _split(np.ascontiguousarray(a), source, layout)


def _palette(im: Image.Image) -> tuple[bytes, bytes]:
    """A palette image's colours (3 bytes per entry) and the alpha of each entry (empty if opaque)."""
    palette = bytes(im.getpalette("RGB") or [])
    trns = im.info.get("transparency")
    if isinstance(trns, int):
        trns = bytes([255] * trns + [0])
    trns = bytes(trns or b"")[:len(palette) // 3]
    return palette, trns


def _read_image(path: Path, file=None) -> tuple[np.ndarray, modes.Source, str]:
    """One image file (at `path`, or the file object `file` called so) through Pillow: its pixels,
    mode and format."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file or path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise InputError(f"{path}: {im.width}x{im.height} is too large")
                mode, fmt = im.mode, im.format or ""
                raw = str(im.tile[0][3] if im.tile and len(im.tile[0]) > 3 else "")
                if ";16" in raw and mode not in SIXTEEN_BIT_MODES:
                    raise InputError(f"{path}: 16-bit {mode} is read by Pillow only as 8 bits; give the pixels "
                                     "as a uint16 .npy array")
                if mode in ("1", "L", "RGB", "LA", "RGBA"):
                    a = np.asarray(im, dtype=np.uint8)
                    return a, modes.Source(mode), fmt
                if mode == "P":
                    palette, trns = _palette(im)
                    return np.asarray(im, dtype=np.uint8), modes.Source("P", palette, trns), fmt
                if mode in SIXTEEN_BIT_MODES:
                    a = np.asarray(im)
                    if a.size and (a.min() < 0 or a.max() > 65535):
                        raise InputError(f"{path}: values beyond 16 bits are not supported")
                    return a.astype(np.uint16), modes.Source("I;16"), fmt
                raise InputError(f"{path}: image mode {mode} is not supported (1-bit, greyscale, RGB, with or "
                                 "without alpha, palette, and 16-bit greyscale are)")
    except InputError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(f"{path}: not a readable image ({e})") from None


def read(path: str | os.PathLike) -> Images | Mixed:
    """An image file (PNG, TIFF, BMP, PPM/PGM, WebP, JPEG: whatever Pillow reads losslessly), a folder
    of PNG files (one archive, sorted by name; `Mixed` if they differ in size, mode or palette) or an
    .npy array."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png" and p.is_file())
        if not files:
            raise InputError(f"{path}: folder holds no .png files")
        groups: dict[tuple, list] = {}
        for p in files:
            a, source, _ = _read_image(p)
            groups.setdefault((a.shape, repr(source)), []).append((p.name, a, source))
        parts = [_split(np.stack([a for _, a, _ in g]), g[0][2], "named", [n for n, _, _ in g], "PNG")
                 for g in groups.values()]
        return parts[0] if len(parts) == 1 else Mixed(parts)
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise InputError(f"{path}: not a readable .npy array ({e})") from None
        return from_array(array)
    pixels, source, fmt = _read_image(path)
    return _split(pixels[None], source, "single", (), fmt)


def from_png(png: bytes) -> Images:
    """A single image from a PNG file's bytes."""
    pixels, source, fmt = _read_image(Path("stored PNG"), io.BytesIO(png))
    return _split(pixels[None], source, "single", (), fmt)


def png_bytes(imgs: Images) -> bytes | None:
    """A single image as a PNG file (Pillow, optimize=True), or None if PNG cannot hold it."""
    if imgs.layout != "single" or imgs.source.dtype or imgs.source.mode == "RGB;16":
        return None
    try:
        im = to_pil(imgs.full()[0], imgs.source, imgs.binary)
    except InputError:
        return None
    buf = io.BytesIO()
    _save(im, buf, "PNG", optimize=True)
    return buf.getvalue()


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


def to_pil(image: np.ndarray, source: modes.Source, binary: bool) -> Image.Image:
    """One restored image (H, W[, C]) as a Pillow image of its mode."""
    mode = source.mode
    if mode == "RGB;16":
        raise InputError("Pillow cannot write 16-bit RGB images; decompress to an .npy file")
    if binary or mode == "1":
        return Image.fromarray(image.astype(bool))
    if mode in modes.PALETTE:
        im = Image.frombytes("P", image.shape[::-1], np.ascontiguousarray(image, dtype=np.uint8).tobytes())
        im.putpalette(source.palette, "RGB")
        if source.transparency:
            im.info["transparency"] = source.transparency
        return im
    return Image.fromarray(image)


def _save(im: Image.Image, tmp, fmt: str, **options) -> None:
    if fmt == "WEBP":
        options.update(lossless=True, quality=100, exact=True)
    if "transparency" in im.info:
        options["transparency"] = im.info["transparency"]
    im.save(tmp, format=fmt, **options)


def write_image(path: Path, image: np.ndarray, source: modes.Source, binary: bool, force: bool) -> None:
    """Write one image in the format its extension names (PNG if it names none), refusing a format
    that would not give back the same mode and pixels."""
    ext = path.suffix.lower()
    if ext in (".jpg", ".jpeg"):
        raise InputError(f"{path}: JPEG output would not be lossless; write .png, .tif, .bmp, .ppm or .webp")
    fmt = FORMATS.get(ext, "PNG")
    im = to_pil(image, source, binary)

    def write(tmp: Path) -> None:
        try:
            _save(im, tmp, fmt)
            with Image.open(tmp) as back:
                same = back.mode == im.mode and np.array_equal(np.asarray(back), np.asarray(im))
        except (OSError, ValueError, KeyError) as e:
            raise InputError(f"{path}: {fmt} cannot hold this {im.mode} image ({e}); write .png") from None
        if not same:
            raise InputError(f"{path}: {fmt} cannot hold this {im.mode} image exactly; write .png")

    atomic_write(path, write, force)


def write(images: np.ndarray, binary: bool, layout: str, names: list[str], out: Path, force: bool,
          source: modes.Source | None = None) -> None:
    """Write restored images where the user asked: an image file, an .npy array or a folder of PNGs."""
    source = source or modes.Source()
    if layout == "single":
        write_image(out, images[0], source, binary, force)
    elif layout == "array":
        def save(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.save(f, modes.to_array(images, source))

        atomic_write(out, save, force)
    else:
        if out.exists() and not out.is_dir():
            raise InputError(f"{out} exists and is not a folder")
        clash = [n for n in names if (out / n).exists()]
        if clash and not force:
            raise InputError(f"{out / clash[0]} exists; use --force to overwrite")
        out.mkdir(parents=True, exist_ok=True)
        for image, n in zip(images, names):
            write_image(out / n, image, source, binary, force=True)
