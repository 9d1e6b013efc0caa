"""The .vlae container: a small versioned header, the ANS words, and a CRC (see FORMAT.md)."""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from .errors import FormatError
from .names import varint as _varint, zigzag as _zigzag
from .modes import MODES as SOURCE_MODES, PALETTE, SIXTEEN, Source, planes_per_image

MAGIC = b"VLAE"
# 2: guarded payloads and a floor in the header (see ans.Stack); 3: pixel offsets, clean shift;
# 4: the source record (image mode, palette, array dtype and shape) and side planes, mode "context".
# 5: the compact header (codec/compact.py). Versions 1 to 4 are still read.
# 6: version 5 with a lossless payload of several chains (written only for those).
VERSION = 5
NEWEST = 6
MODES = {0: "lossless", 1: "lossy", 2: "stored", 3: "context", 4: "png"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LAYOUTS = {0: "array", 1: "single", 2: "named"}
# Limits checked before anything is allocated: a header cannot make the decoder build a bomb.
MAX_SIDE = 1 << 14
MAX_IMAGES = 1 << 24
MAX_SUBPIXELS = 1 << 28
MAX_CHUNK = 4096
MAX_NAME = 4096
MAX_OFFSETS = 64  # pixel parameter offsets: how many, and how large
MAX_OFFSET = 1 << 12
MAX_CLEAN_SHIFT = 12
MAX_NDIM = 5  # of a restored .npy array
MAX_CHAINS = 64


@dataclass
class Header:
    """Everything about a file except its payload."""

    mode: str
    model_id: str
    model_hash: bytes  # first 8 bytes of the coding model's sha256
    height: int
    width: int
    channels: int
    bit_depth: int
    count: int
    layout: str
    chunk_max: int
    seed: int | None  # lossy only: None = each pixel's mean, else the sampling seed
    checksum: bytes  # 8-byte BLAKE2b of the decoded pixels
    names: list[str] = field(default_factory=list)
    version: int = VERSION  # format version: files are written in VERSION, read back as they were
    floor: int = 0  # version 2: the fewest valid bits the encoder's ANS stack held (see ans.Stack)
    offsets: list[int] = field(default_factory=list)  # version 3: pixel parameter offsets (codec/tuning.py)
    clean_shift: int = 0  # version 3: the clean start's bins are the lossy bins / 2^clean_shift
    source: Source = field(default_factory=Source)  # version 4: what the decoded pixels become
    # version 4: the side planes' words; like the payload's words, not part of a header's equality
    side_words: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint32), compare=False)
    png: bytes = b""  # mode png: the whole image as a PNG file
    # version 6: (words, floor) of each chain of a lossless payload of several (codec/bitsback.py)
    chains: list[tuple[int, int]] = field(default_factory=list)
    parts: list[bytes] = field(default_factory=list, compare=False)  # a mixed archive: its parts' files
    payload_bytes: int = field(default=0, compare=False)  # bytes of the payload in the file (set by unpack)


def pixel_checksum(images: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(images, dtype=np.uint8).tobytes(), digest_size=8).digest()


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise FormatError("file is truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def varint(self, limit: int, what: str) -> int:
        n, shift = 0, 0
        while True:
            byte = self.u8()
            n |= (byte & 0x7F) << shift
            shift += 7
            if n > limit:
                raise FormatError(f"{what} {n} is beyond the limit {limit}")
            if not byte & 0x80:
                return n
            if shift > 63:
                raise FormatError(f"{what} is malformed")

    def signed(self, limit: int, what: str) -> int:
        n = self.varint(2 * limit, what)
        return n // 2 if n % 2 == 0 else -(n + 1) // 2

    def text(self, what: str) -> str:
        raw = self.take(self.varint(MAX_NAME, f"{what} length"))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"{what} is not valid UTF-8") from None


def _file_name(name: str) -> str:
    """An image name is a plain PNG file name: decoding writes it into a folder."""
    if (name in ("", ".", "..") or any(c in name for c in "/\\\x00") or len(name.encode("utf-8")) > 255
            or not name.lower().endswith(".png")):
        raise FormatError(f"archive holds an unsafe image name {name[:80]!r}")
    return name


def pack_png(png: bytes) -> bytes:
    """A file of mode png: the image as a PNG file, behind 6 bytes and its length, before the CRC."""
    body = MAGIC + bytes([4, 4]) + _varint(len(png)) + png  # a version 4 file: as small as version 5 would be
    return body + struct.pack("<I", zlib.crc32(body))


def _unpack_png(r: _Reader, body: bytes) -> Header:
    png = r.take(r.varint(len(body), "PNG length"))
    if r.pos != len(body):
        raise FormatError("file has trailing bytes")
    if len(png) < 24 or not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise FormatError("file holds a damaged PNG")
    width, height = struct.unpack(">II", png[16:24])
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise FormatError(f"PNG of {width}x{height} is beyond the side limit {MAX_SIDE}")
    return Header("png", "", bytes(8), height, width, 1, 8, 1, "single", 1, None, bytes(8), png=png, version=4,
                  payload_bytes=len(png))


def pack(header: Header, words: np.ndarray) -> bytes:
    """The file's bytes."""
    if header.mode == "png":
        return pack_png(header.png)
    if header.version >= 5:
        from . import compact
        return compact.pack(header, words)
    _check_version_holds(header)
    mode = {v: k for k, v in MODES.items()}[header.mode]
    layout = {v: k for k, v in LAYOUTS.items()}[header.layout]
    model_id = header.model_id.encode("utf-8")
    parts = [MAGIC, bytes([header.version, mode]), _varint(len(model_id)), model_id, header.model_hash,
             _varint(header.height), _varint(header.width), _varint(header.channels),
             _varint(header.bit_depth), _varint(header.count), bytes([layout])]
    if header.layout == "named":
        for name in header.names:
            raw = name.encode("utf-8")
            parts += [_varint(len(raw)), raw]
    parts += [_varint(header.chunk_max), _varint(0 if header.seed is None else header.seed + 1),
              header.checksum]
    if header.version >= 2:
        parts.append(_varint(header.floor))
    if header.version >= 3:
        parts += [_varint(len(header.offsets))] + [_varint(_zigzag(o)) for o in header.offsets]
        parts.append(_varint(header.clean_shift))
    if header.version >= 4:
        parts += _source_fields(header)
    parts += [_varint(len(words)), np.asarray(words, dtype="<u4").tobytes()]
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def _check_version_holds(header: Header) -> None:
    """ValueError for a header of versions 1 to 4 with fields its version has no place for: a
    file written without them would decode to other images than the header describes."""
    missing = []
    if header.version < 2 and header.floor != 0:
        missing.append("a floor")
    if header.version < 3 and (header.offsets or header.clean_shift != 0):
        missing.append("offsets or a clean shift")
    if header.version < 4 and (header.source.mode != "plain" or len(header.side_words) > 0):
        missing.append("an image mode")
    if len(header.checksum) != 8:
        missing.append("a checksum of other than 8 bytes")
    if missing:
        raise ValueError(f"a version {header.version} file cannot hold {', '.join(missing)}")


# The main pixels' (channels, bit depth) of each image mode that fixes them.
_MAIN_GEOMETRY = {"1": (1, 1), "L": (1, 8), "LA": (1, 8), "RGB": (3, 8), "RGBA": (3, 8), "P": (3, 8),
                  "P;I": (1, 8), "I;16": (1, 8), "RGB;16": (3, 8)}


def _restored_channels(source: Source, channels: int) -> int:
    """Channels of a restored image: the main pixels' and an alpha plane; one palette index."""
    if source.mode in PALETTE:
        return 1
    return channels + (1 if source.mode in ("LA", "RGBA") else 0)


def _source_fields(header: Header) -> list[bytes]:
    src = header.source
    parts = [bytes([SOURCE_MODES.index(src.mode) | (0x80 if src.dtype else 0)])] + _source_extras(src)
    if planes_per_image(src, header.channels):
        parts += [_varint(len(header.side_words)), np.asarray(header.side_words, dtype="<u4").tobytes()]
    return parts


def _source_extras(src: Source) -> list[bytes]:
    """The palette, the 16-bit delta flag and the array record of an image mode that has them."""
    parts = []
    if src.mode in PALETTE:
        parts += [_varint(len(src.palette) // 3), src.palette, _varint(len(src.transparency)), src.transparency]
    if src.mode in SIXTEEN:
        parts.append(bytes([src.delta]))
    if src.dtype:
        raw = src.dtype.encode("ascii")
        parts += [_varint(len(raw)), raw, _varint(len(src.shape))] + [_varint(d) for d in src.shape]
    return parts


def _read_source(r: _Reader, channels: int, subpixels: int) -> tuple[Source, np.ndarray]:
    code = r.u8()
    if code & 0x7F >= len(SOURCE_MODES):
        raise FormatError(f"unknown image mode {code & 0x7F}")
    src = _read_source_extras(r, Source(SOURCE_MODES[code & 0x7F]), bool(code & 0x80))
    words = np.zeros(0, dtype=np.uint32)
    if planes_per_image(src, channels):
        words = np.frombuffer(r.take(4 * r.varint(2 * subpixels + 64, "side payload length")), dtype="<u4")
    return src, words.astype(np.uint32)


def _read_source_extras(r: _Reader, src: Source, has_array: bool) -> Source:
    """`_source_extras`' fields of `src`'s image mode."""
    if src.mode in PALETTE:
        src.palette = r.take(3 * r.varint(256, "palette size"))
        src.transparency = r.take(r.varint(len(src.palette) // 3, "transparency entries"))
    if src.mode in SIXTEEN:
        src.delta = bool(r.varint(1, "16-bit delta flag"))
    if has_array:
        raw = r.take(r.varint(16, "array dtype length"))
        try:
            dtype = np.dtype(raw.decode("ascii"))
        except (UnicodeDecodeError, TypeError, ValueError):
            raise FormatError("file names an unknown array dtype") from None
        if dtype.kind not in "uib":
            raise FormatError(f"file names an array dtype {dtype} that holds no pixels")
        src.dtype = dtype.str
        src.shape = tuple(r.varint(MAX_SUBPIXELS, "array side") for _ in range(r.varint(MAX_NDIM, "array rank")))
    return src


def unpack(data: bytes) -> tuple[Header, np.ndarray]:
    """Header and words of a file; any damage or excess raises FormatError."""
    if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
        raise FormatError("not a .vlae file (bad magic)")
    if len(data) < len(MAGIC) + 2 + 4:
        raise FormatError("file is truncated")
    body, crc = data[:-4], struct.unpack("<I", data[-4:])[0]
    r = _Reader(body)
    r.take(len(MAGIC))
    version = r.u8()
    if version in (5, 6):
        from . import compact
        if compact.is_mixed(data):
            return compact.unpack_mixed(data), np.zeros(0, dtype=np.uint32)
        return compact.unpack(data)
    if version > NEWEST:
        raise FormatError(f"file format version {version} is newer than this vlae-codec reads ({NEWEST}); upgrade")
    if version < 1:
        raise FormatError(f"unknown file format version {version}")
    if zlib.crc32(body) != crc:
        raise FormatError("file is corrupt (CRC mismatch)")
    mode = r.u8()
    if mode not in MODES or (MODES[mode] in ("context", "png") and version < 4):
        raise FormatError(f"unknown mode {mode}")
    if MODES[mode] == "png":
        return _unpack_png(r, body), np.zeros(0, dtype=np.uint32)
    model_id = r.text("model id")
    model_hash = r.take(8)
    height = r.varint(MAX_SIDE, "height")
    width = r.varint(MAX_SIDE, "width")
    channels = r.varint(4, "channels")
    bit_depth = r.varint(16, "bit depth")
    count = r.varint(MAX_IMAGES, "image count")
    if height * width * max(channels, 1) * count > MAX_SUBPIXELS:
        raise FormatError(f"{count} images of {height}x{width}x{channels} exceed the limit of {MAX_SUBPIXELS} subpixels")
    layout = r.u8()
    if layout not in LAYOUTS:
        raise FormatError(f"unknown layout {layout}")
    names = [_file_name(r.text("image name")) for _ in range(count)] if LAYOUTS[layout] == "named" else []
    chunk_max = r.varint(MAX_CHUNK, "chunk size")
    seed = r.varint(1 << 62, "seed")
    checksum = r.take(8)
    floor = r.varint(32 * MAX_SUBPIXELS + 64, "payload floor") if version >= 2 else 0
    offsets, clean_shift = [], 0
    if version >= 3:
        offsets = [r.signed(MAX_OFFSET, "pixel offset") for _ in range(r.varint(MAX_OFFSETS, "offset count"))]
        clean_shift = r.varint(MAX_CLEAN_SHIFT, "clean shift")
    source, side_words = Source(), np.zeros(0, dtype=np.uint32)
    if version >= 4:
        source, side_words = _read_source(r, channels, height * width * max(channels, 1) * count)
    n_words = r.varint(MAX_SUBPIXELS, "payload length")
    raw = r.take(4 * n_words)
    if r.pos != len(body):
        raise FormatError("file has trailing bytes")
    header = Header(MODES[mode], model_id, model_hash, height, width, channels, bit_depth, count,
                    LAYOUTS[layout], chunk_max, None if seed == 0 else seed - 1, checksum, names, version, floor,
                    offsets, clean_shift, source, side_words, payload_bytes=len(raw))
    check_geometry(header)
    return header, np.frombuffer(raw, dtype="<u4").astype(np.uint32)


def check_geometry(h: Header) -> None:
    """FormatError unless a parsed header's fields fit each other (every version)."""
    if h.channels == 0 or h.bit_depth == 0 or (h.count and (h.height == 0 or h.width == 0)) or h.chunk_max == 0:
        raise FormatError("file has an impossible geometry")
    if (h.channels, h.bit_depth) not in ((1, 1), (1, 8), (3, 8)):
        raise FormatError(f"{h.channels} channels of bit depth {h.bit_depth} are not a supported image type")
    if h.seed is not None and h.mode != "lossy":
        raise FormatError("only a lossy file has a sampling seed")
    if (h.offsets or h.clean_shift) and h.mode != "lossless":
        raise FormatError("only a lossless file has pixel offsets or a clean shift")
    src = h.source
    if src.dtype and int(np.prod(src.shape)) != h.count * h.height * h.width * _restored_channels(src, h.channels):
        raise FormatError("the array shape in the file does not match its geometry")
    if src.mode != "plain" and (h.channels, h.bit_depth) != _MAIN_GEOMETRY.get(src.mode, (h.channels, h.bit_depth)):
        raise FormatError(f"image mode {src.mode} does not fit {h.channels} channel(s) of bit depth {h.bit_depth}")
    if h.layout == "single" and h.count != 1:
        raise FormatError("single-image file holds more than one image")
    if len(set(h.names)) != len(h.names):
        raise FormatError("archive holds two images of the same name")
