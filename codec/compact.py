"""File format version 5: the compact header (see FORMAT.md), and mixed archives of several parts."""

from __future__ import annotations

import struct
import zlib

import numpy as np

from . import names as names_block
from .container import (MAGIC, MAX_CHAINS, MAX_CHUNK, MAX_CLEAN_SHIFT, MAX_IMAGES, MAX_OFFSET, MAX_OFFSETS,
                        MAX_SIDE, MAX_SUBPIXELS, Header, _Reader, _file_name, _read_source_extras, _restored_channels,
                        _source_extras, check_geometry)
from .errors import FormatError
from .modes import MODES as SOURCE_MODES, Source, planes_per_image

VERSION = 5
CHAINED = 6  # version 5 with a chains block: a lossless payload of several chains
DEFAULT_CHUNK = 1024  # bitsback.DEFAULT_CHUNK_MAX: the chunk max a file leaves out
GUARD_FLOOR = 55  # valid bits of a stack holding only the guard (ans.GUARD): the floor a file leaves out
MAX_PARTS = 1 << 16
# Shipped models by the byte that names them (0: a model named in full). An entry is never
# reused: a retrained model gets a new number (tests/test_compact.py checks every shipped
# model has its entry). Height and width 0: the model takes any size, the header gives it.
SHIPPED = {1: ("bmnist", "11d14c2bd76dfeee", 28, 28, 1, 1), 2: ("mnist", "c16641f26ecbc73d", 28, 28, 1, 8),
           3: ("cifar", "e5506ac21496aae4", 0, 0, 3, 8), 4: ("photo", "7c90760a9fa3adfa", 0, 0, 3, 8),
           5: ("photo-grey", "156aa45252d03cd2", 0, 0, 1, 8)}
_MODES = ("lossless", "lossy", "stored", "context")
_LAYOUTS = ("array", "single", "named", "mixed")
_FLOOR, _OFFSETS, _CHUNK, _ARRAY = 0x10, 0x20, 0x40, 0x80
v = names_block.varint


def _entry(h: Header) -> int:
    """The byte that names the file's model: its SHIPPED number if it is one and fits, else 0."""
    for k, (name, digest, height, width, channels, bits) in SHIPPED.items():
        if (h.model_id, h.model_hash.hex(), channels, bits) == (name, digest, h.channels, h.bit_depth) and (
                height == 0 or (height, width) == (h.height, h.width)):
            return k
    return 0


def _default_floor(mode: str) -> int:
    return 0 if mode == "stored" else GUARD_FLOOR


def payload_bytes(words: np.ndarray) -> bytes:
    """The words, little-endian, less up to 3 zero bytes at the end (the reader pads them back)."""
    raw = np.asarray(words, dtype="<u4").tobytes()
    cut = 0
    while cut < 3 and cut < len(raw) and raw[-1 - cut] == 0:
        cut += 1
    return raw[:len(raw) - cut]


def _check(checksum: bytes, body: bytes) -> bytes:
    """The pixels' checksum (4 bytes) folded with a CRC of every byte before it (see FORMAT.md)."""
    return bytes(a ^ b for a, b in zip(checksum[:4], struct.pack("<I", zlib.crc32(body))))


def pack(h: Header, words: np.ndarray) -> bytes:
    """A version 5 file, or 6 if its payload holds several chains."""
    mode, entry = _MODES.index(h.mode), _entry(h) if h.mode != "context" else 0
    src = h.source
    floor = h.floor != _default_floor(h.mode) and not h.chains  # a chained file's floors are in its chains block
    flags = (mode | _LAYOUTS.index(h.layout) << 2 | (_FLOOR if floor else 0)
             | (_OFFSETS if h.offsets else 0) | (_CHUNK if h.chunk_max != DEFAULT_CHUNK else 0)
             | (_ARRAY if src.dtype else 0))
    parts = [MAGIC, bytes([CHAINED if h.chains else VERSION, flags])]
    if h.mode != "context":
        parts.append(bytes([entry]))
        if not entry:
            model_id = h.model_id.encode("utf-8")
            parts += [v(len(model_id)), model_id, h.model_hash]
    if not entry or not SHIPPED[entry][2]:
        parts += [v(h.height), v(h.width)]
    if not entry:
        parts.append(bytes([h.channels | h.bit_depth << 3]))  # channels < 8, bit depth < 32
    if h.layout != "single":
        parts.append(v(h.count))
    if h.mode == "lossy":
        parts.append(v(0 if h.seed is None else h.seed + 1))
    if flags & _FLOOR:
        parts.append(v(h.floor))
    if h.offsets:
        parts += [v(len(h.offsets))] + [v(names_block.zigzag(o)) for o in h.offsets]
    if flags & _CHUNK:
        parts.append(v(h.chunk_max))
    if h.chains:  # every chain's words but the last's (the rest of the payload), then every floor
        parts += [v(len(h.chains))] + [v(words) for words, _ in h.chains[:-1]] + [v(floor) for _, floor in h.chains]
    parts.append(bytes([SOURCE_MODES.index(src.mode) | h.clean_shift << 4]))
    parts += _source_extras(src)
    if h.layout == "named":
        parts.append(names_block.pack(h.names))
    if planes_per_image(src, h.channels):
        parts += [v(len(h.side_words)), np.asarray(h.side_words, dtype="<u4").tobytes()]
    body = b"".join(parts) + payload_bytes(words)
    return body + _check(h.checksum, body)


def _model(r: _Reader, mode: str) -> tuple[int, str, bytes]:
    if mode == "context":
        return 0, "", bytes(8)
    entry = r.u8()
    if entry == 0:
        return 0, r.text("model id"), r.take(8)
    if entry not in SHIPPED:
        raise FormatError(f"file names shipped model number {entry}, which this vlae-codec does not know; upgrade")
    return entry, SHIPPED[entry][0], bytes.fromhex(SHIPPED[entry][1])


def _geometry(r: _Reader, entry: int) -> tuple[int, int, int, int]:
    if entry:
        _, _, height, width, channels, bits = SHIPPED[entry]
        if height:
            return height, width, channels, bits
        return r.varint(MAX_SIDE, "height"), r.varint(MAX_SIDE, "width"), channels, bits
    height, width = r.varint(MAX_SIDE, "height"), r.varint(MAX_SIDE, "width")
    code = r.u8()  # check_geometry refuses what no image type has
    return height, width, code & 7, code >> 3


def unpack(data: bytes) -> tuple[Header, np.ndarray]:
    """Header and words of a version 5 or 6 file (its checksum: the pixels' 4 bytes, the CRC taken out)."""
    if len(data) < len(MAGIC) + 2 + 4:
        raise FormatError("file is truncated")
    body, check = data[:-4], data[-4:]
    r = _Reader(body)
    r.take(len(MAGIC))
    version, flags = r.u8(), r.u8()
    if flags >> 2 & 3 == 3:
        raise FormatError("a mixed archive cannot be a part of one")
    mode, layout = _MODES[flags & 3], _LAYOUTS[flags >> 2 & 3]
    entry, model_id, model_hash = _model(r, mode)
    height, width, channels, bits = _geometry(r, entry)
    count = 1 if layout == "single" else r.varint(MAX_IMAGES, "image count")
    if height * width * channels * count > MAX_SUBPIXELS:
        raise FormatError(f"{count} images of {height}x{width}x{channels} exceed the limit of {MAX_SUBPIXELS} subpixels")
    seed = r.varint(1 << 62, "seed") if mode == "lossy" else 0
    floor = r.varint(32 * MAX_SUBPIXELS + 64, "payload floor") if flags & _FLOOR else _default_floor(mode)
    offsets = [r.signed(MAX_OFFSET, "pixel offset")
               for _ in range(r.varint(MAX_OFFSETS, "offset count"))] if flags & _OFFSETS else []
    chunk_max = r.varint(MAX_CHUNK, "chunk size") if flags & _CHUNK else DEFAULT_CHUNK
    chain_words, floors = _chains(r, mode, count, flags) if version == CHAINED else ([], [])
    code = r.u8()
    if code & 0xF >= len(SOURCE_MODES) or code >> 4 > MAX_CLEAN_SHIFT:
        raise FormatError(f"unknown image mode {code & 0xF} or clean shift {code >> 4}")
    src = _read_source_extras(r, Source(SOURCE_MODES[code & 0xF]), bool(flags & _ARRAY))
    names = [_file_name(n) for n in names_block.unpack(r, count)] if layout == "named" else []
    side = np.zeros(0, dtype=np.uint32)
    if planes_per_image(src, channels):
        subpixels = height * width * channels * count
        side = np.frombuffer(r.take(4 * r.varint(2 * subpixels + 64, "side payload length")), dtype="<u4")
    raw = body[r.pos:]
    raw += bytes(-len(raw) % 4)
    words = np.frombuffer(raw, dtype="<u4").astype(np.uint32)
    chains = list(zip(chain_words + [len(words) - sum(chain_words)], floors))
    if chains and chains[-1][0] < 1:
        raise FormatError("file is corrupt (its chains hold more words than its payload)")
    header = Header(mode, model_id, model_hash, height, width, channels, bits, count, layout, chunk_max,
                    None if seed == 0 else seed - 1, _check(check, body), names, version, floor, offsets,
                    code >> 4, src, side.astype(np.uint32), chains=chains,
                    payload_bytes=len(body) - r.pos)
    check_geometry(header)
    return header, words


def _chains(r: _Reader, mode: str, count: int, flags: int) -> tuple[list[int], list[int]]:
    """A version 6 chains block: the words of every chain but the last, and every chain's floor."""
    chains = r.varint(MAX_CHAINS, "chain count")
    if mode != "lossless" or flags & _FLOOR or not 2 <= chains <= count:
        raise FormatError(f"file is corrupt ({chains} chains of {count} images in a {mode} file)")
    words = [r.varint(MAX_SUBPIXELS, "chain length") for _ in range(chains - 1)]
    return words, [r.varint(32 * MAX_SUBPIXELS + 64, "payload floor") for _ in range(chains)]


def pack_mixed(parts: list[bytes]) -> bytes:
    """A mixed archive: parts (version 5 files of named images, each of one kind) and a CRC."""
    body = b"".join([MAGIC, bytes([VERSION, 3 << 2]), v(len(parts))] + [v(len(p)) + p for p in parts])
    return body + struct.pack("<I", zlib.crc32(body))


def is_mixed(data: bytes) -> bool:
    return len(data) > 6 and data[:4] == MAGIC and data[4] == VERSION and data[5] >> 2 & 3 == 3


def unpack_mixed(data: bytes) -> Header:
    """The header of a mixed archive: its parts' bytes, each part's header checked, their names and sizes."""
    body, crc = data[:-4], data[-4:]
    if len(data) < 11 or zlib.crc32(body) != struct.unpack("<I", crc)[0]:
        raise FormatError("file is corrupt (CRC mismatch)")
    r = _Reader(body)
    r.take(len(MAGIC) + 2)
    parts = [r.take(r.varint(len(body), "part length")) for _ in range(r.varint(MAX_PARTS, "part count"))]
    if r.pos != len(body):
        raise FormatError("file has trailing bytes")
    if any(p[:len(MAGIC)] != MAGIC or p[len(MAGIC):len(MAGIC) + 1] not in (bytes([VERSION]), bytes([CHAINED]))
           for p in parts):
        raise FormatError("a mixed archive holds a part that is not a version 5 or 6 file")
    headers = [unpack(p)[0] for p in parts]
    if any(h.layout != "named" for h in headers) or not headers:
        raise FormatError("a mixed archive holds parts of named images only")
    all_names = [n for h in headers for n in h.names]
    if len(set(all_names)) != len(all_names):
        raise FormatError("archive holds two images of the same name")
    if sum(h.count * h.height * h.width * _restored_channels(h.source, h.channels) for h in headers) > MAX_SUBPIXELS:
        raise FormatError(f"the parts exceed the limit of {MAX_SUBPIXELS} subpixels")
    return Header("mixed", "", bytes(8), 0, 0, 0, 0, len(all_names), "mixed", 1, None, b"", all_names,
                  VERSION, parts=parts, payload_bytes=0)
