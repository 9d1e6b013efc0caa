"""Image names of an archive, stored compactly: numbered patterns, deflate or LZMA, whichever is smallest."""

from __future__ import annotations

import lzma
import re
import zlib

from .errors import FormatError

MAX_NAMES_BYTES = 1 << 26  # the names of one archive, joined: a small file cannot unpack into gigabytes
MAX_DIGITS = 64  # of a number in a numbered name
SEPARATOR = "/"  # never inside a name (FORMAT.md), so it can join them
# Methods of the names block's first byte (FORMAT.md, version 5).
LIST, DEFLATE, LZMA, NUMBERED = 0, 1, 2, 3
_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 20, "preset": 9}]
_LZMA_READ = [{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 20}]
_NUMBERED = re.compile(r"^(.*?)(\d+)(\D*)$", re.S | re.ASCII)


def varint(n: int) -> bytes:
    """Unsigned LEB128."""
    if n < 0:
        raise ValueError("varints are unsigned")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def zigzag(n: int) -> int:
    return 2 * n if n >= 0 else -2 * n - 1


def _text(s: str) -> bytes:
    raw = s.encode("utf-8")
    return varint(len(raw)) + raw


def _numbered(names: list[str]) -> bytes | None:
    """prefix, suffix, width, then the numbers as runs of equal steps; None unless every name is
    prefix + number + suffix with one shared prefix and suffix, written back exactly."""
    parts = [_NUMBERED.match(n) for n in names]
    if not names or not all(parts):
        return None
    # The prefix is everything before the last run of digits, the same in every name.
    prefix, suffix = parts[0].group(1), parts[0].group(3)
    if any(p.group(1) != prefix or p.group(3) != suffix or len(p.group(2)) > MAX_DIGITS for p in parts):
        return None
    digits = [p.group(2) for p in parts]
    width = len(digits[0]) if len({len(d) for d in digits}) == 1 else 0
    numbers = [int(d) for d in digits]
    if any(_digits(n, width) != d for n, d in zip(numbers, digits)):
        return None
    out = [bytes([NUMBERED]), _text(prefix), _text(suffix), bytes([width]), varint(numbers[0])]
    runs, k = [], 1
    while k < len(numbers):  # (length, step) runs: 00000..09999 is one run of step 1
        step, start = numbers[k] - numbers[k - 1], k
        while k < len(numbers) and numbers[k] - numbers[k - 1] == step:
            k += 1
        runs.append((k - start, step))
    out += [varint(len(runs))] + [varint(n) + varint(zigzag(s)) for n, s in runs]
    return b"".join(out)


def _digits(n: int, width: int) -> str:
    return str(n).zfill(width)


def pack(names: list[str]) -> bytes:
    """The smallest names block for `names` (count known to the reader)."""
    joined = SEPARATOR.join(names).encode("utf-8")
    candidates = [bytes([LIST]) + b"".join(_text(n) for n in names),
                  bytes([DEFLATE]) + _sized(_deflate(joined)),
                  bytes([LZMA]) + _sized(lzma.compress(joined, format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS))]
    numbered = _numbered(names)
    if numbered is not None:
        candidates.append(numbered)
    return min(candidates, key=len)


def _sized(raw: bytes) -> bytes:
    return varint(len(raw)) + raw


def _deflate(raw: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    return c.compress(raw) + c.flush()


def unpack(r, count: int) -> list[str]:
    """`count` names from a names block read through `r` (container._Reader); checks sizes only."""
    method = r.u8()
    if method == LIST:
        return [r.text("image name") for _ in range(count)]
    if method == NUMBERED:
        return _unnumbered(r, count)
    if method not in (DEFLATE, LZMA):
        raise FormatError(f"unknown names method {method}")
    if count == 0:
        raise FormatError("an archive without images has no names block")
    raw = r.take(r.varint(MAX_NAMES_BYTES, "names block length"))
    try:
        if method == DEFLATE:
            d = zlib.decompressobj(-15)
            joined = d.decompress(raw, MAX_NAMES_BYTES + 1)
            done = d.eof and not d.unconsumed_tail and not d.unused_data
        else:
            d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=_LZMA_READ)
            joined = d.decompress(raw, MAX_NAMES_BYTES + 1)
            done = d.eof and not d.unused_data
    except (zlib.error, lzma.LZMAError):
        raise FormatError("file is corrupt (its names do not inflate)") from None
    if len(joined) > MAX_NAMES_BYTES:
        raise FormatError(f"names exceed the limit of {MAX_NAMES_BYTES} bytes")
    if not done:
        raise FormatError("file is corrupt (its names block is cut short)")
    try:
        names = joined.decode("utf-8").split(SEPARATOR)
    except UnicodeDecodeError:
        raise FormatError("image names are not valid UTF-8") from None
    if len(names) != count:
        raise FormatError(f"file holds {len(names)} names for {count} images")
    return names


def _unnumbered(r, count: int) -> list[str]:
    prefix, suffix = r.text("name prefix"), r.text("name suffix")
    width = r.varint(MAX_DIGITS, "name number width")
    per_name = len(prefix.encode()) + len(suffix.encode()) + max(width, 1)
    if count * per_name > MAX_NAMES_BYTES:
        raise FormatError(f"names exceed the limit of {MAX_NAMES_BYTES} bytes")
    limit = 10 ** MAX_DIGITS
    numbers = [r.varint(limit, "name number")]
    for _ in range(r.varint(max(count - 1, 0), "name runs")):
        length = r.varint(count - len(numbers), "name run")
        step = r.signed(limit, "name step")
        numbers += [numbers[-1] + step * (k + 1) for k in range(length)]
    if len(numbers) != count or min(numbers) < 0 or max(numbers) >= limit:
        raise FormatError("file is corrupt (its numbered names do not add up)")
    return [f"{prefix}{_digits(n, width)}{suffix}" for n in numbers]
