"""File formats 5 and 6: the compact header, compressed names, mixed folders, chains, and older versions still read."""

from __future__ import annotations

import dataclasses
import json
import lzma
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

import vlae_codec
from vlae_codec import ans, bitsback, compact, container, names
from vlae_codec.api import coding_model
from vlae_codec.errors import FormatError
from vlae_codec.model.interface import shipped_models

from conftest import load_test_set, run_cli


def test_every_shipped_model_has_its_number():
    for name in shipped_models():
        cm = coding_model(name)
        entry = [v for v in compact.SHIPPED.values() if v[0] == name]
        assert entry, f"{name} needs an entry in compact.SHIPPED"
        _, digest, height, width, channels, bits = entry[0]
        assert digest == cm.weights_hash[:16], f"{name} was retrained: give it a new number in compact.SHIPPED"
        assert (channels, bits) == (cm.cfg.channels, cm.bit_depth)
        assert (height, width) == ((0, 0) if cm.cfg.block else (cm.cfg.height, cm.cfg.width))
    assert compact.GUARD_FLOOR == ans.Stack().floor


def test_a_lone_digit_has_12_bytes_around_its_payload(bmnist_test):
    sizes = []
    for digit in bmnist_test[:5]:
        data = vlae_codec.compress(digit)
        header, _ = container.unpack(data)
        assert header.version == 5 and len(data) - header.payload_bytes == 12
        assert np.array_equal(vlae_codec.decompress(data), digit)
        sizes.append(len(data))
    assert np.mean(sizes) <= 40


def test_every_damaged_byte_of_a_small_file_is_refused(bmnist_test):
    data = vlae_codec.compress(bmnist_test[0])
    for pos in range(len(data)):
        for bit in (0, 7):
            bad = bytearray(data)
            bad[pos] ^= 1 << bit
            with pytest.raises(FormatError):
                vlae_codec.decompress(bytes(bad))
    for cut in range(1, len(data)):
        with pytest.raises(FormatError):
            vlae_codec.decompress(data[:cut])


def test_version_4_files_still_decode(bmnist_test):
    x = bmnist_test[:3]
    header, words = container.unpack(vlae_codec.compress(x))
    old = dataclasses.replace(header, version=4, checksum=container.pixel_checksum(x))
    data = container.pack(old, words)
    assert data[4] == 4 and container.unpack(data)[0] == old
    assert np.array_equal(vlae_codec.decompress(data), x)


@pytest.mark.parametrize("kind", ["padded", "plain", "prefixed", "random", "unicode", "one"])
def test_names_round_trip_and_numbered_names_are_nearly_free(kind):
    rng = np.random.default_rng(0)
    made = {"padded": [f"{i:05d}.png" for i in range(10000)],
            "plain": sorted(f"{i}.png" for i in range(1, 3000)),
            "prefixed": [f"scan_2024_{i:04d}_x.png" for i in range(0, 4000, 3)] + ["scan_2024_9999_x.png"],
            "random": [f"{rng.integers(1 << 40):x}.png" for _ in range(500)],
            "unicode": ["été.png", "日本.png", "a b.png"],
            "one": ["only.png"]}[kind]
    block = names.pack(made)

    r = container._Reader(block)
    assert names.unpack(r, len(made)) == made and r.pos == len(block)
    if kind in ("padded", "prefixed"):
        assert len(block) <= 40
    assert len(block) <= len(zlib.compress("/".join(made).encode(), 9))


def test_names_that_would_unpack_into_gigabytes_are_refused():
    bomb = bytes([names.NUMBERED]) + names.varint(0) + names.varint(200) + b"x" * 200 + bytes([0, 0, 0])
    with pytest.raises(FormatError, match="limit"):
        names.unpack(container._Reader(bomb), 1 << 24)
    raw = names._deflate(b"a" * (names.MAX_NAMES_BYTES + 10))
    with pytest.raises(FormatError, match="limit"):
        names.unpack(container._Reader(bytes([names.DEFLATE]) + names.varint(len(raw)) + raw), 2)
    raw = lzma.compress(b"a/b.png", format=lzma.FORMAT_RAW, filters=names._LZMA_FILTERS)
    with pytest.raises(FormatError, match="names"):
        names.unpack(container._Reader(bytes([names.LZMA]) + names.varint(len(raw)) + raw), 3)


def test_a_folder_of_numbered_pngs_costs_little_more_than_its_array(tmp_path, bmnist_test):
    x = bmnist_test[:40]
    for i, digit in enumerate(x):
        Image.fromarray(digit.astype(bool)).save(tmp_path / f"{i:05d}.png")
    from_folder, from_array = vlae_codec.compress(tmp_path), vlae_codec.compress(x)
    assert len(from_folder) <= len(from_array) + 20
    assert container.unpack(from_folder)[0].names == [f"{i:05d}.png" for i in range(40)]


def test_mixed_folders_restore_every_file_under_its_name_and_mode(tmp_path):
    digits = load_test_set("mnist")
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(digits[0]).save(src / "grey.png")
    Image.fromarray(digits[1]).save(src / "grey2.png")
    Image.fromarray(digits[2] > 127).save(src / "bits.png")
    Image.fromarray(np.dstack([np.stack([digits[3][:20, :24]] * 3, -1), digits[4][:20, :24]])).save(src / "rgba.png")
    p = Image.fromarray(digits[5]).quantize(5)
    p.save(src / "pal.png", transparency=1)
    Image.fromarray(digits[6].astype(np.uint16) * 257 + 3).save(src / "deep.png")
    r = run_cli("compress", str(src), "-o", str(tmp_path / "m.vlae"))
    assert r.returncode == 0, r.stderr
    r = run_cli("decompress", str(tmp_path / "m.vlae"), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in src.iterdir())
    for f in src.iterdir():
        a, b = Image.open(f), Image.open(tmp_path / "out" / f.name)
        assert a.mode == b.mode and a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b)), f.name
        assert a.info.get("transparency") == b.info.get("transparency") and a.getpalette() == b.getpalette()
    back = vlae_codec.decompress((tmp_path / "m.vlae").read_bytes())
    assert sorted(back) == sorted(p.name for p in src.iterdir())
    r = run_cli("decompress", str(tmp_path / "m.vlae"), "-o", str(tmp_path / "out"))
    assert r.returncode != 0 and "exists" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("compress", str(src), "--model", "bmnist", "-o", str(tmp_path / "n.vlae"))
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "own folder" in r.stderr
    assert not (tmp_path / "n.vlae").exists()


def test_a_palette_image_codes_smaller_than_its_png(tmp_path):
    photo = load_test_set("cifar")[:4].reshape(-1, 32, 3)[:, :32]  # a 128x32 strip of photos
    im = Image.fromarray(np.ascontiguousarray(photo)).quantize(64)
    im.save(tmp_path / "p.png", transparency=0, optimize=True)
    data = vlae_codec.compress(tmp_path / "p.png")
    assert len(data) < (tmp_path / "p.png").stat().st_size
    assert np.array_equal(vlae_codec.decompress(data), np.asarray(im))


def test_mixed_archive_limits_are_checked(bmnist_test):
    part = vlae_codec.compress(bmnist_test[:2])
    header, words = container.unpack(part)
    named = container.pack(dataclasses.replace(header, layout="named", names=["a.png", "b.png"]), words)
    for parts, message in (([named, named], "same name"), ([part], "named images only"), ([], "named images only")):
        with pytest.raises(FormatError, match=message):
            vlae_codec.decompress(compact.pack_mixed(parts))
    bad = bytearray(compact.pack_mixed([named]))
    bad[10] ^= 1
    with pytest.raises(FormatError, match="CRC"):
        vlae_codec.decompress(bytes(bad))


@pytest.fixture
def chained(monkeypatch):
    """Archives of 6 images or more coded as chains, as the large ones are, whatever their clean
    starts cost beside so few images."""
    monkeypatch.setattr(bitsback, "CHAIN_MIN_IMAGES", 6)
    monkeypatch.setattr(bitsback, "CHAINS_SLACK", float("inf"))


def test_chains_that_lose_bits_back_give_way_to_one_chain(bmnist_test, monkeypatch):
    monkeypatch.setattr(bitsback, "CHAIN_MIN_IMAGES", 6)
    x = bmnist_test[:13]
    monkeypatch.setattr(bitsback, "CHAINS_SLACK", float("inf"))
    chained = vlae_codec.compress(x)
    monkeypatch.setattr(bitsback, "CHAINS", 1)
    one = vlae_codec.compress(x)
    monkeypatch.setattr(bitsback, "CHAINS", 2)
    monkeypatch.setattr(bitsback, "CHAINS_SLACK", 1.0)  # any loss: the encoder tries one chain too
    kept = vlae_codec.compress(x)
    assert len(one) < len(chained) and kept == one
    assert np.array_equal(vlae_codec.decompress(kept), x)


def test_chains_of_an_archive_decode_alike_on_any_number_of_threads(bmnist_test, chained, tmp_path):
    x = bmnist_test[:13]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        data = vlae_codec.compress(x)
        header, words = container.unpack(data)
        assert header.version == 6 and [n for n, _ in header.chains][-1] > 0
        assert len(header.chains) == bitsback.CHAINS and sum(n for n, _ in header.chains) == len(words)
        torch.set_num_threads(1)
        assert vlae_codec.compress(x) == data
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            assert np.array_equal(vlae_codec.decompress(data), x)
            assert torch.get_num_threads() == n
    finally:
        torch.set_num_threads(threads)
    (tmp_path / "x.vlae").write_bytes(data)
    shown = run_cli("info", "--json", str(tmp_path / "x.vlae"))
    assert shown.returncode == 0 and json.loads(shown.stdout)["chains"] == bitsback.CHAINS


def test_a_damaged_chains_block_is_refused(bmnist_test, chained):
    data = vlae_codec.compress(bmnist_test[:7])
    header, words = container.unpack(data)
    for pos in range(len(data) - header.payload_bytes - 4):  # every header byte
        for bit in (0, 7):
            bad = bytearray(data)
            bad[pos] ^= 1 << bit
            with pytest.raises(FormatError):
                vlae_codec.decompress(bytes(bad))
    # Chains that claim more words than the payload holds, or fewer chains than two.
    for chains in ([(len(words) + 1, 55), (1, 55)], [(len(words), 55)]):
        forged = dataclasses.replace(header, chains=chains)
        with pytest.raises(FormatError):
            vlae_codec.decompress(compact.pack(forged, words))
