"""Bits-back coding through the library API: exact round trips, honest sizes, refusals."""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pytest
import torch

import vlae_codec
from vlae_codec import ans, bitsback, container, fallback, lossy
from vlae_codec.api import as_tensor, coding_model
from vlae_codec.errors import FormatError, InputError, ModelMismatch

from conftest import load_test_set


@pytest.fixture(scope="module")
def digits(model_name):
    """100 random digits of the model's test set; the input alone selects the model."""
    return load_test_set(model_name)


def test_stack_round_trip_and_counts():
    rng = np.random.default_rng(0)
    freqs = rng.integers(1, 1000, size=(500, 5))
    freqs[:, 0] += (1 << ans.PRECISION) - freqs.sum(1)
    symbols = rng.integers(0, 5, size=500)
    stack = ans.Stack()
    stack.push(symbols, freqs)
    bits = ans.information_bits(symbols, freqs).sum()
    assert bits <= stack.num_bits() <= bits + 64
    assert np.array_equal(ans.Stack(stack.words()).pop(freqs), symbols)


def test_shared_tables_code_as_a_table_per_symbol():
    """push/pop under freqs[rows] write and read the words of the tables written out per symbol."""
    rng = np.random.default_rng(1)
    tables = ans.normalize(rng.integers(0, 1000, size=(7, 5)))
    rows, symbols = rng.integers(0, 7, size=500), rng.integers(0, 5, size=500)
    whole, shared = ans.Stack(), ans.Stack()
    whole.push(symbols, tables[rows])
    shared.push(symbols, tables, rows=rows)
    assert np.array_equal(whole.words(), shared.words())
    assert np.array_equal(ans.Stack(shared.words()).pop(tables, rows=rows), symbols)


def test_pixel_bits_are_counted_on_their_rows(digits):
    """The model's bits of each image row: a digit's blank top rows cost less than its middle."""
    info = vlae_codec.encode(digits[:1]).info
    rows = info.pixel_rows[0]
    assert rows.shape == (28,) and rows.sum() == pytest.approx(info.pixels[0])
    assert 4 * rows[:3].sum() < rows[12:15].sum()


def test_archive_round_trip_and_size_matches_information(digits):
    enc = vlae_codec.encode(digits)
    assert np.array_equal(vlae_codec.decompress(enc.data), digits)
    header, words = container.unpack(enc.data)
    payload_bits = 32 * len(words)
    info = enc.info.total.sum()
    assert info <= payload_bits <= info * 1.005 + 64


def test_posteriors_made_beside_the_chunks_leave_the_bytes_unchanged(digits):
    """With two threads the encoder makes the chunks' posteriors on the second one
    (cores.streamed), each thread on one core; the file is the one a single thread makes."""
    alone = vlae_codec.compress(digits[:40])
    torch.set_num_threads(2)
    try:
        beside = vlae_codec.compress(digits[:40])
        assert torch.get_num_threads() == 2  # given back once the stream has ended
    finally:
        torch.set_num_threads(1)
    assert beside == alone
    assert np.array_equal(vlae_codec.decompress(beside), digits[:40])


def test_input_selects_model(digits, model_name):
    header, _ = container.unpack(vlae_codec.compress(digits[:2]))
    assert header.model_id == model_name


def test_decode_with_other_batch_size(digits):
    data = vlae_codec.compress(digits[:100], batch=256)
    assert np.array_equal(vlae_codec.decompress(data, batch=7), digits[:100])


def test_single_image(digits):
    data = vlae_codec.compress(digits[0])
    out = vlae_codec.decompress(data)
    assert out.shape == (28, 28) and np.array_equal(out, digits[0])


def test_two_images_one_pixel_apart(digits):
    a = digits[:2].copy()
    b = a.copy()
    b[1, 14, 14] ^= 1
    da, db = vlae_codec.compress(a), vlae_codec.compress(b)
    assert da != db
    assert np.array_equal(vlae_codec.decompress(da), a) and np.array_equal(vlae_codec.decompress(db), b)


def test_lossy_is_deterministic_and_small(digits):
    d1 = vlae_codec.compress(digits[:20], lossy=True)
    d2 = vlae_codec.compress(digits[:20], lossy=True)
    assert d1 == d2
    out1, out2 = vlae_codec.decompress(d1), vlae_codec.decompress(d1)
    assert np.array_equal(out1, out2) and out1.shape == (20, 28, 28) and out1.max() <= digits.max()
    sampled = vlae_codec.compress(digits[:20], lossy=True, seed=3)
    assert np.array_equal(vlae_codec.decompress(sampled), vlae_codec.decompress(sampled))
    assert len(d1) < len(vlae_codec.compress(digits[:20]))


def test_lossy_search_only_improves(digits):
    """More candidates never give an image further from the original (in the search's own measure)."""
    x = digits[:20]
    error = {e: lossy.shape_error(torch.from_numpy(vlae_codec.decompress(vlae_codec.compress(x, lossy=True, effort=e))
                                                      .astype(np.int64))[:, None],
                                     torch.from_numpy(x.astype(np.int64))[:, None]) for e in (1, 4)}
    assert (error[4] <= error[1]).all() and (error[4] < error[1]).any()


def test_never_worse_than_zlib(digits):
    """Images the model codes badly (noise, for a digit model) are stored as zlib instead (a lone
    image may go to the context coder or its PNG, where they are smaller still)."""
    top = int(digits.max())
    noise = np.random.default_rng(0).integers(0, top + 1, size=(3, 28, 28)).astype(np.uint8)
    for x in (noise, noise[0]):
        data = vlae_codec.compress(x)
        header, words = container.unpack(data)
        if x.ndim == 3:
            assert header.mode == "stored"
            assert len(data) <= len(zlib.compress(x.tobytes(), fallback.LEVEL)) + 3 + (len(data) - 4 * len(words))
        else:
            assert header.mode in ("stored", "context", "png")
            assert len(data) <= len(zlib.compress(x.tobytes(), fallback.LEVEL)) + 60
        assert np.array_equal(vlae_codec.decompress(data), x)
    damaged = bytearray(vlae_codec.compress(noise))
    damaged[-10] ^= 1
    header, words = container.unpack(vlae_codec.compress(noise))
    with pytest.raises(FormatError):
        vlae_codec.decompress(bytes(damaged))
    words = words.copy()
    words[len(words) // 2] ^= 1  # past the CRC: the inflater or the checksum must catch it
    with pytest.raises(FormatError):
        vlae_codec.decompress(container.pack(header, words))
    assert container.unpack(vlae_codec.compress(digits[:3]))[0].mode == "lossless"


def test_refuses_bad_arrays():
    with pytest.raises(InputError):
        vlae_codec.compress(np.full((2, 28, 28), np.nan))
    with pytest.raises(InputError):
        vlae_codec.compress(np.zeros((2, 30, 30, 5), dtype=np.uint8))
    with pytest.raises(InputError):
        vlae_codec.compress(np.full((2, 28, 28), 1 << 16, dtype=np.int64))
    with pytest.raises(InputError, match="binary"):
        vlae_codec.compress(np.full((2, 28, 28), 7, dtype=np.uint8), model="bmnist")
    with pytest.raises(InputError):
        vlae_codec.compress(np.zeros((0, 28, 28), dtype=np.uint8))


def test_refuses_damaged_files(digits):
    data = vlae_codec.compress(digits[:5])
    for bad in (data[:-1], data[:10], b"PNG" + data[3:], data[:-8] + bytes(4) + data[-4:]):
        with pytest.raises(FormatError):
            vlae_codec.decompress(bad)
    newer = bytearray(data)
    newer[4] = container.NEWEST + 1
    with pytest.raises(FormatError, match="newer"):
        vlae_codec.decompress(bytes(newer))


def test_refuses_headers_that_contradict_the_file(digits, model_name):
    header, words = container.unpack(vlae_codec.compress(digits[:3]))
    for change, message in ((dict(bit_depth=16), "not a supported image type"),
                            (dict(channels=3, bit_depth=1), "not a supported image type"),
                            (dict(bit_depth=8 if model_name == "bmnist" else 1), "does not match its model"),
                            # Version 4 could write a seed on a lossless file; version 5 has no field for it.
                            (dict(seed=5, version=4, checksum=container.pixel_checksum(digits[:3])),
                             "only a lossy file")):
        with pytest.raises(FormatError, match=message):
            vlae_codec.decompress(container.pack(dataclasses.replace(header, **change), words))


def test_payload_that_runs_out_is_refused_at_once(digits):
    # A header claiming 1,000 times the images: decoding pops garbage until the payload runs
    # dry, and the guard bit makes that an error instead of zeros for a million digits.
    header, words = container.unpack(vlae_codec.compress(digits[:20]))
    bomb = container.pack(dataclasses.replace(header, count=20_000), words)
    with pytest.raises(FormatError, match="ran out"):
        vlae_codec.decompress(bomb)


def test_version_1_files_still_decode(digits, model_name):
    # Version 1 payloads have no guard bit.
    x = digits[:7]
    header, _ = container.unpack(vlae_codec.compress(x))
    stack = ans.Stack(guarded=False)
    bitsback.encode_lossless(stack, coding_model(model_name), as_tensor(x), header.chunk_max, 3)
    # Versions 1 to 4 hold all 8 bytes of the checksum; version 1 has no floor, offsets or clean shift.
    header = dataclasses.replace(header, version=1, checksum=container.pixel_checksum(x), floor=0, offsets=[],
                                 clean_shift=0)
    old = container.pack(header, stack.words())
    assert container.unpack(old)[0].version == 1
    assert np.array_equal(vlae_codec.decompress(old), x)
    # A version 2 payload read as version 1 keeps its guard bit: words left over.
    with pytest.raises(FormatError, match="left over"):
        vlae_codec.decompress(container.pack(header, container.unpack(vlae_codec.compress(x))[1]))


def test_version_2_files_still_decode(digits, model_name):
    # Version 2 has neither pixel offsets nor a clean shift: the decoder codes without them.
    x = digits[:7]
    header, _ = container.unpack(vlae_codec.compress(x))
    stack = ans.Stack()
    bitsback.encode_lossless(stack, coding_model(model_name), as_tensor(x), header.chunk_max, 3)
    old = dataclasses.replace(header, version=2, floor=stack.floor, offsets=[], clean_shift=0,
                              checksum=container.pixel_checksum(x))
    data = container.pack(old, stack.words())
    assert container.unpack(data)[0] == old
    assert np.array_equal(vlae_codec.decompress(data), x)


def test_header_round_trips_offsets_and_clean_shift(digits):
    header, words = container.unpack(vlae_codec.compress(digits[:3]))
    changed = dataclasses.replace(header, offsets=[0, -1, 1, -256, 256, 4096, -4096], clean_shift=3)
    back, back_words = container.unpack(container.pack(changed, words))
    assert back == changed and np.array_equal(back_words, words)
    for bad, message in ((dict(offsets=[4097]), "pixel offset"), (dict(clean_shift=13), "clean shift")):
        with pytest.raises(FormatError, match=message):
            container.unpack(container.pack(dataclasses.replace(header, **bad), words))


def test_clean_shifts_round_trip_and_cost_log2_bins(digits, model_name):
    """Every clean shift the model has tables for codes exactly, its code costing exactly
    log2 of its bins; a file read with another shift than it was coded with is refused."""
    cm, x = coding_model(model_name), as_tensor(digits[:4])
    shifts = [s for s in range(6) if _has_clean_bins(cm, s)]
    assert shifts[0] == 0
    for shift in shifts:
        stack = ans.Stack()
        info = bitsback.encode_lossless(stack, cm, x, 2, 4, clean_shift=shift)
        assert info.latents[0] == pytest.approx(np.log2(cm.clean_bins(shift)).sum())
        back = bitsback.decode_lossless(ans.Stack(stack.words()), cm, 4, 28, 28, 2, 4, clean_shift=shift)
        assert torch.equal(back, x)
    header, words = container.unpack(vlae_codec.compress(digits[:3]))
    for shift in range(container.MAX_CLEAN_SHIFT + 1):
        if shift != header.clean_shift:
            with pytest.raises(FormatError, match="corrupt" if _has_clean_bins(cm, shift) else "does not fit"):
                vlae_codec.decompress(container.pack(dataclasses.replace(header, clean_shift=shift), words))


def _has_clean_bins(cm, shift: int) -> bool:
    try:
        cm.clean_bins(shift)
    except ValueError:
        return False
    return True


def test_refuses_other_model_version(digits, model_name):
    header, words = container.unpack(vlae_codec.compress(digits[:3]))
    header.model_hash = bytes(8)
    with pytest.raises(ModelMismatch, match=model_name):
        vlae_codec.decompress(container.pack(header, words))
    header.model_id = "nosuchmodel"
    with pytest.raises(ModelMismatch, match="nosuchmodel"):
        vlae_codec.decompress(container.pack(header, words))


@pytest.mark.parametrize("version", [4, 5])
def test_header_round_trip(version):
    # Version 5 keeps 4 bytes of the pixel checksum, older versions 8.
    h = container.Header("lossless", "bmnist", bytes(range(8)), 28, 28, 1, 1, 2, "named", 1024, None,
                         bytes(range(4 if version == 5 else 8)), ["a.png", "b.png"], version=version, floor=40)
    words = np.arange(5, dtype=np.uint32)
    h2, w2 = container.unpack(container.pack(h, words))
    assert h2 == h and np.array_equal(w2, words)
