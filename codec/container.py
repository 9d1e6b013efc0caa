"""The .vlae container: a small versioned header, the ANS words, and a CRC (see FORMAT.md)."""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from .errors import FormatError

MAGIC = b"VLAE"
# 2: guarded payloads and a floor in the header (see ans.Stack); 3: pixel offsets, clean shift.
# Versions 1 and 2 are still read.
VERSION = 3
MODES = {0: "lossless", 1: "lossy", 2: "stored"}
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


def pixel_checksum(images: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(images, dtype=np.uint8).tobytes(), digest_size=8).digest()


def _varint(n: int) -> bytes:
    if n < 0:
        raise ValueError("varints are unsigned")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _zigzag(n: int) -> int:
    return 2 * n if n >= 0 else -2 * n - 1


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


def pack(header: Header, words: np.ndarray) -> bytes:
    """The file's bytes."""
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
    parts += [_varint(len(words)), np.asarray(words, dtype="<u4").tobytes()]
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


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
    if version > VERSION:
        raise FormatError(f"file format version {version} is newer than this vlae-codec reads ({VERSION}); upgrade")
    if version < 1:
        raise FormatError(f"unknown file format version {version}")
    if zlib.crc32(body) != crc:
        raise FormatError("file is corrupt (CRC mismatch)")
    mode = r.u8()
    if mode not in MODES:
        raise FormatError(f"unknown mode {mode}")
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
    if len(set(names)) != len(names):
        raise FormatError("archive holds two images of the same name")
    chunk_max = r.varint(MAX_CHUNK, "chunk size")
    seed = r.varint(1 << 62, "seed")
    checksum = r.take(8)
    floor = r.varint(32 * MAX_SUBPIXELS + 64, "payload floor") if version >= 2 else 0
    offsets, clean_shift = [], 0
    if version >= 3:
        offsets = [r.signed(MAX_OFFSET, "pixel offset") for _ in range(r.varint(MAX_OFFSETS, "offset count"))]
        clean_shift = r.varint(MAX_CLEAN_SHIFT, "clean shift")
    n_words = r.varint(MAX_SUBPIXELS, "payload length")
    raw = r.take(4 * n_words)
    if r.pos != len(body):
        raise FormatError("file has trailing bytes")
    if channels == 0 or bit_depth == 0 or (count and (height == 0 or width == 0)) or chunk_max == 0:
        raise FormatError("file has an impossible geometry")
    if (channels, bit_depth) not in ((1, 1), (1, 8), (3, 8)):
        raise FormatError(f"{channels} channels of bit depth {bit_depth} are not a supported image type")
    if seed and MODES[mode] != "lossy":
        raise FormatError("only a lossy file has a sampling seed")
    if (offsets or clean_shift) and MODES[mode] != "lossless":
        raise FormatError("only a lossless file has pixel offsets or a clean shift")
    if LAYOUTS[layout] == "single" and count != 1:
        raise FormatError("single-image file holds more than one image")
    header = Header(MODES[mode], model_id, model_hash, height, width, channels, bit_depth, count,
                    LAYOUTS[layout], chunk_max, None if seed == 0 else seed - 1, checksum, names, version, floor,
                    offsets, clean_shift)
    return header, np.frombuffer(raw, dtype="<u4").astype(np.uint32)
