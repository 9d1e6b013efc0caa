"""Every image mode, format and shape comes back as it went in: mode, size, palette and every value."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

import vlae_codec
from conftest import fixture_photo, run_cli
from vlae_codec import api, container, context
from vlae_codec.ans import Stack
from vlae_codec.errors import FormatError, InputError

MODES = ["1", "L", "LA", "RGB", "RGBA", "P", "P-alpha", "I;16"]


def _soft_disc(h: int, w: int) -> np.ndarray:
    """An anti-aliased disc as alpha: 0 outside, 255 inside, a one-pixel soft edge."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    return np.clip((min(h, w) / 3 + 0.5 - r) * 255, 0, 255).round().astype(np.uint8)


def make_image(mode: str, h: int, w: int) -> Image.Image:
    """An image of the mode from the fixture photo crop, with a soft disc for alpha."""
    photo = np.resize(fixture_photo("kodim23-200-300-45x37"), (h, w, 3)).astype(np.uint8)
    grey = np.asarray(Image.fromarray(photo).convert("L"))
    alpha = _soft_disc(h, w)
    if mode == "1":
        return Image.fromarray(grey > 100)
    if mode == "L":
        return Image.fromarray(grey)
    if mode == "LA":
        return Image.fromarray(np.stack([grey, alpha], -1))
    if mode == "RGB":
        return Image.fromarray(photo)
    if mode == "RGBA":
        return Image.fromarray(np.dstack([photo, alpha]))
    if mode in ("P", "P-alpha"):
        im = Image.fromarray(photo).quantize(16)
        if mode == "P-alpha":
            im.info["transparency"] = bytes([0, 128] + [255] * 14)
        return im
    if mode == "I;16":
        return Image.fromarray((grey.astype(np.uint16) << 8) | np.arange(h * w, dtype=np.uint16).reshape(h, w) % 251)
    raise ValueError(mode)


def _png(im: Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    if "transparency" in im.info:
        options["transparency"] = im.info["transparency"]
    im.save(buf, format="PNG", **options)
    return buf.getvalue()


def _round_trip(tmp_path, im: Image.Image, suffix: str = ".png", fmt: str = "PNG") -> Image.Image:
    src = tmp_path / f"in{suffix}"
    if fmt == "PNG":
        src.write_bytes(_png(im))
    else:
        im.save(src, format=fmt, **({"lossless": True, "exact": True} if fmt == "WEBP" else {}))
    api.compress_file(src, tmp_path / "a.vlae", force=True)
    out = api.decompress_file(tmp_path / "a.vlae", tmp_path / f"out{suffix}", force=True)
    return Image.open(out)


def _assert_same(back: Image.Image, im: Image.Image) -> None:
    assert back.mode == im.mode and back.size == im.size
    assert np.array_equal(np.asarray(back), np.asarray(im))
    if im.mode == "P":
        n = len(im.getpalette())
        assert back.getpalette()[:n] == im.getpalette()
        assert back.info.get("transparency") == im.info.get("transparency")


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_round_trips(tmp_path, mode):
    im = make_image(mode, 37, 45)
    if mode == "P-alpha":
        im = Image.open(io.BytesIO(_png(im)))  # as Pillow reads it back: tRNS bytes
    _assert_same(_round_trip(tmp_path, im), im)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (2, 2)])
@pytest.mark.parametrize("mode", MODES)
def test_degenerate_shapes_round_trip(tmp_path, mode, shape):
    im = make_image(mode, *shape)
    if mode == "P-alpha":
        im = Image.open(io.BytesIO(_png(im)))
    _assert_same(_round_trip(tmp_path, im), im)


@pytest.mark.parametrize("suffix,fmt", [(".tif", "TIFF"), (".bmp", "BMP"), (".ppm", "PPM"), (".pgm", "PPM"),
                                        (".webp", "WEBP")])
def test_other_formats_write_the_same_format_back(tmp_path, suffix, fmt):
    im = make_image("L" if suffix == ".pgm" else "RGBA" if fmt in ("TIFF", "WEBP") else "RGB", 12, 9)
    back = _round_trip(tmp_path, im, suffix, fmt)
    assert back.format == fmt
    _assert_same(back, im)


def test_jpeg_is_coded_as_its_pixels_with_a_note(tmp_path):
    Image.fromarray(fixture_photo("kodim23-200-300-45x37")).save(tmp_path / "p.jpg", quality=80)
    r = run_cli("compress", str(tmp_path / "p.jpg"))
    assert r.returncode == 0, r.stderr
    assert "lossless for the pixels, not for the JPEG file" in r.stderr and len(r.stderr.splitlines()) == 1
    r = run_cli("decompress", str(tmp_path / "p.vlae"))
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "p.png")), np.asarray(Image.open(tmp_path / "p.jpg")))
    r = run_cli("decompress", str(tmp_path / "p.vlae"), "-o", str(tmp_path / "q.jpg"))
    assert r.returncode != 0 and "not be lossless" in r.stderr and not (tmp_path / "q.jpg").exists()


def test_format_that_cannot_hold_the_mode_is_refused(tmp_path):
    (tmp_path / "in.png").write_bytes(_png(make_image("RGBA", 5, 6)))
    api.compress_file(tmp_path / "in.png", tmp_path / "a.vlae")
    with pytest.raises(vlae_codec.CodecError, match="BMP cannot hold"):
        api.decompress_file(tmp_path / "a.vlae", tmp_path / "out.bmp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.vlae", "in.png"]


@pytest.mark.parametrize("array", [
    np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4) * 2731,
    np.arange(3 * 4 * 3, dtype=np.uint16).reshape(1, 3, 4, 3) * 1807,
    np.arange(2 * 3 * 4 * 4, dtype=np.uint8).reshape(2, 3, 4, 4),
    np.arange(2 * 3 * 4 * 2, dtype=np.uint8).reshape(2, 3, 4, 2),
    np.arange(2 * 3 * 4, dtype=np.int64).reshape(2, 3, 4, 1),
    np.eye(4, dtype=bool)[None].repeat(3, 0),
], ids=["uint16", "uint16-rgb", "rgba", "la", "int64-c1", "bool"])
def test_arrays_keep_dtype_and_shape(tmp_path, array):
    np.save(tmp_path / "x.npy", array)
    api.compress_file(tmp_path / "x.npy", tmp_path / "x.vlae")
    back = np.load(api.decompress_file(tmp_path / "x.vlae", tmp_path / "y.npy"))
    assert back.dtype == array.dtype and back.shape == array.shape and np.array_equal(back, array)


def test_alpha_costs_little():
    """A fully opaque alpha costs a few bytes; a cut-out and a soft edge cost less than PNG's alpha."""
    rgb = fixture_photo("kodim23-200-300-45x37")[:9, :7]
    opaque = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert len(vlae_codec.compress(opaque[None])) <= len(vlae_codec.compress(rgb[None])) + 6
    disc = _soft_disc(96, 96)
    for alpha, share in ((np.where(disc > 127, 255, 0).astype(np.uint8), 0.5), (disc, 0.95)):
        plane = Stack(guarded=False)
        context.push(plane, alpha)
        assert 4 * len(plane.words()) < share * len(_png(Image.fromarray(alpha), optimize=True))


def test_sixteen_bit_not_larger_than_png(tmp_path):
    im = make_image("I;16", 37, 45)
    data = vlae_codec.compress(np.asarray(im))
    assert len(data) <= len(_png(im, optimize=True)) + 32
    scaled = (np.asarray(make_image("L", 37, 45)).astype(np.uint16) * 257)  # 8-bit values stretched to 16
    assert len(vlae_codec.compress(scaled)) <= len(vlae_codec.compress(scaled >> 8)) + 6


def test_context_coder_round_trips_planes():
    rng = np.random.default_rng(0)
    planes = [rng.integers(0, 256, (9, 13)), rng.integers(0, 2, (13, 9)) * 255, np.full((3, 4), 7),
              _soft_disc(20, 31), rng.integers(0, 256, (1, 1))]
    labels = [rng.integers(0, 256, (9, 13)), rng.integers(0, 5, (1, 17)), rng.integers(3, 9, (17, 1)),
              _palette_indices()]
    coded = [(p, False) for p in planes] + [(p, True) for p in labels]
    stack = Stack()
    for p, as_labels in coded[::-1]:
        context.push(stack, p.astype(np.uint8), as_labels)
    for p, _ in coded:
        assert np.array_equal(context.pop(stack, *p.shape), p)
    assert stack.finished()


def test_context_coder_words_are_pinned():
    """Files made before still decode: the words of these planes (one of each kind) are the
    ones the first context coder wrote, so a faster encoder cannot move them unnoticed."""
    photo = fixture_photo("kodim03-100-200-96x96")
    planes = [(photo[..., 1], False), ((_soft_disc(40, 70) > 127).astype(np.uint8) * 255, False),
              (_palette_indices(), True), (photo[..., 0], True)]
    stack = Stack()
    for p, as_labels in planes:
        context.push(stack, p, as_labels)
    assert len(stack.words()) == 3859
    assert hashlib.sha256(stack.words().tobytes()).hexdigest() == (
        "e92aaa844bc4fb835bd28976de1cd19de700fcc8ea856fef137de64a3e630811")


def test_context_trial_compares_the_same_rows():
    """The context coder is tried in full when it beats the model on a band of rows, both
    coders measured on that band: a quiet band in a noisy image is cheap for the model too."""
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (1, 96, 64, 3)).astype(np.uint8)
    noisy[:, 32:64] = rng.integers(120, 136, (1, 32, 64, 3))
    row_bits = np.r_[np.full(32, 1800.0), np.full(32, 10000 / 32), np.full(32, 1800.0)]
    assert not api._context_may_win(noisy, int(row_bits.sum()) // 32, row_bits)
    # A gradient costs the context coder little beyond learning its counts, which its band
    # pays in full: tried where it wins by half, though the band alone looks worse.
    gradient = np.broadcast_to(np.linspace(0, 255, 640).astype(np.uint8)[None, None, :, None], (1, 480, 640, 3))
    whole = api._push_planes(gradient).num_bits()
    assert api._context_may_win(gradient, 2 * whole // 32, np.full(480, 2.0 * whole / 480))


def _palette_indices() -> np.ndarray:
    return np.asarray(Image.fromarray(fixture_photo("kodim03-100-200-96x96")).quantize(64))


def test_palette_indices_cost_less_as_labels_than_as_levels():
    """Indices coded by what their neighbours are, not by their numbers: 11% smaller here."""
    sizes = []
    for as_labels in (False, True):
        stack = Stack()
        context.push(stack, _palette_indices(), as_labels)
        sizes.append(stack.num_bits())
    assert sizes[1] < 0.9 * sizes[0]


def test_png_bounds_a_lone_image(tmp_path):
    """A lone image's file is at most its PNG plus a few bytes, and such a file decodes too."""
    im = Image.fromarray(np.array([[40000, 7], [65535, 0]], dtype=np.uint16))
    data = vlae_codec.compress(np.asarray(im))
    assert len(data) <= len(_png(im, optimize=True)) + 11
    (tmp_path / "a.vlae").write_bytes(container.pack_png(_png(im, optimize=True)))
    _assert_same(Image.open(api.decompress_file(tmp_path / "a.vlae")), im)
    with pytest.raises(FormatError):
        vlae_codec.decompress(container.pack_png(_png(im)[:30]))


def test_damaged_side_planes_are_caught():
    rgba = np.dstack([fixture_photo("kodim23-200-300-45x37"), _soft_disc(45, 37)])[None]
    data = vlae_codec.compress(rgba)
    header, words = container.unpack(data)
    header.side_words = header.side_words[:-1]
    with pytest.raises(FormatError):
        vlae_codec.decompress(container.pack(header, words))
    assert header.version == container.VERSION == 5


def test_an_image_too_big_for_free_memory_is_refused_before_work(monkeypatch, tmp_path):
    """Refused with a message saying what to do, and no output file, rather than killed halfway."""
    src = tmp_path / "photo.png"
    Image.fromarray(fixture_photo("kodim03-100-200-96x96")).save(src)
    usual = api.BYTES_PER_PIXEL["compress"]
    monkeypatch.setitem(api.BYTES_PER_PIXEL, "compress", 1 << 60)
    with pytest.raises(InputError, match="GB are free; crop or scale it down"):
        api.compress_file(src, tmp_path / "photo.vlae")
    assert not (tmp_path / "photo.vlae").exists()
    monkeypatch.setitem(api.BYTES_PER_PIXEL, "compress", usual)
    packed = api.compress_file(src, tmp_path / "photo.vlae")
    monkeypatch.setitem(api.BYTES_PER_PIXEL, "decompress", 1 << 60)
    with pytest.raises(InputError, match="to decompress"):
        api.decompress_file(packed, tmp_path / "back.png")
    assert not (tmp_path / "back.png").exists()
