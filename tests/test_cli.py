"""The vlae-codec command as a user runs it: round trips, refusals, nothing half-written."""

from __future__ import annotations

import io
import json
import signal
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import full_test_set, load_test_set, run_cli


@pytest.fixture(scope="module")
def digits(model_name):
    return load_test_set(model_name)[:40]


def _binary(digits) -> bool:
    return int(digits.max()) <= 1


def _png_bytes(digit) -> bytes:
    buf = io.BytesIO()
    (Image.fromarray(digit * 255).convert("1") if _binary(digit) else Image.fromarray(digit)).save(buf, format="PNG")
    return buf.getvalue()


def _png(path, digit):
    """A 1-bit PNG for binary digits, a greyscale (mode L) one for 8-bit digits."""
    path.write_bytes(_png_bytes(digit))


def test_png_round_trip(tmp_path, digits, model_name):
    _png(tmp_path / "d.png", digits[0])
    r = run_cli("compress", str(tmp_path / "d.png"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "d.png").read_bytes() == _png_bytes(digits[0])  # the input is untouched
    (tmp_path / "d.png").rename(tmp_path / "orig.png")
    r = run_cli("info", str(tmp_path / "d.vlae"), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["model"] == model_name
    r = run_cli("decompress", str(tmp_path / "d.vlae"))
    assert r.returncode == 0, r.stderr
    back = np.asarray(Image.open(tmp_path / "d.png"), dtype=np.uint8)
    assert Image.open(tmp_path / "d.png").mode == ("1" if _binary(digits) else "L")
    assert np.array_equal(back, digits[0])


def test_opaque_alpha_is_dropped_losslessly(tmp_path):
    """A greyscale+alpha PNG whose alpha is fully opaque holds a greyscale image: it is coded as one."""
    digit = load_test_set("mnist")[7]
    Image.fromarray(np.stack([digit, np.full_like(digit, 255)], axis=-1), mode="LA").save(tmp_path / "d.png")
    assert run_cli("compress", str(tmp_path / "d.png")).returncode == 0
    r = run_cli("decompress", str(tmp_path / "d.vlae"), "-o", str(tmp_path / "back.png"))
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "back.png")), digit)


def test_folder_round_trip(tmp_path, digits):
    src = tmp_path / "in"
    src.mkdir()
    for i, d in enumerate(digits[:5]):
        _png(src / f"{i:02d}.png", d)
    assert run_cli("compress", str(src), "-o", str(tmp_path / "a.vlae")).returncode == 0
    r = run_cli("decompress", str(tmp_path / "a.vlae"), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    for i, d in enumerate(digits[:5]):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / f"{i:02d}.png"), dtype=np.uint8), d)


def test_decode_with_other_threads_and_batch(tmp_path, digits):
    np.save(tmp_path / "x.npy", digits)
    r = run_cli("compress", str(tmp_path / "x.npy"), "--threads", "2", "--batch-size", "256")
    assert r.returncode == 0, r.stderr
    r = run_cli("decompress", str(tmp_path / "x.vlae"), "-o", str(tmp_path / "y.npy"), "--threads", "1",
                "--batch-size", "3", env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.load(tmp_path / "y.npy"), digits)


def test_no_overwrite_without_force(tmp_path, digits):
    np.save(tmp_path / "x.npy", digits[:2])
    (tmp_path / "x.vlae").write_bytes(b"keep me")
    r = run_cli("compress", str(tmp_path / "x.npy"))
    assert r.returncode != 0 and "--force" in r.stderr
    assert (tmp_path / "x.vlae").read_bytes() == b"keep me"
    assert run_cli("compress", str(tmp_path / "x.npy"), "--force").returncode == 0


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header declares a size (and nothing else): a decompression bomb's first bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("make", ["text", "truncated_png", "float_npy", "grey_png_to_bmnist", "big_binary", "big_grey",
                                  "missing", "sixteen_bit", "rgba", "over_255_npy", "palette", "grey_alpha", "one_pixel",
                                  "empty_npy", "huge_declared", "cmyk_jpeg", "pickle_npy", "empty_folder"])
def test_bad_inputs_fail_cleanly(tmp_path, bmnist_test, make):
    digits = bmnist_test[:1]
    path = tmp_path / "in.png"
    args = []
    if make == "text":
        path.write_text("not an image")
    elif make == "truncated_png":
        _png(path, digits[0])
        path.write_bytes(path.read_bytes()[:40])
    elif make == "float_npy":
        path = tmp_path / "in.npy"
        np.save(path, np.full((2, 28, 28), np.nan))
    elif make == "grey_png_to_bmnist":
        Image.fromarray(digits[0] * 200).save(path)
        args = ["--model", "bmnist"]
    elif make == "big_binary":
        Image.fromarray(np.zeros((40, 40), np.uint8)).convert("1").save(path)
    elif make == "big_grey":  # photo-grey takes any size; mnist only 28x28
        Image.fromarray(np.zeros((40, 40), np.uint8) + 9).save(path)
        args = ["--model", "mnist"]
    elif make == "over_255_npy":
        path = tmp_path / "in.npy"
        np.save(path, np.full((2, 28, 28), 256, np.uint16))
    elif make == "palette":  # with a transparent colour
        Image.fromarray(digits[0] * 255).convert("P").save(path, transparency=0)
    elif make == "grey_alpha":  # with transparency
        Image.fromarray(np.stack([digits[0] * 255, digits[0] * 255], axis=-1), mode="LA").save(path)
    elif make == "one_pixel":  # photo-grey takes any size; mnist only 28x28
        Image.fromarray(np.zeros((1, 1), np.uint8)).save(path)
        args = ["--model", "mnist"]
    elif make == "empty_npy":
        path = tmp_path / "in.npy"
        np.save(path, np.zeros((1, 0, 0), np.uint8))
    elif make == "huge_declared":
        path.write_bytes(_png_claiming(100_000, 100_000))
    elif make == "cmyk_jpeg":  # not a PNG at all, whatever its name says
        Image.fromarray(np.zeros((28, 28, 4), np.uint8), mode="CMYK").save(path, format="JPEG")
    elif make == "pickle_npy":
        path = tmp_path / "in.npy"
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif make == "empty_folder":
        path = tmp_path / "folder"
        path.mkdir()
    elif make == "sixteen_bit":
        Image.fromarray(np.zeros((28, 28), np.uint16) + 300).save(path)
    elif make == "rgba":
        Image.fromarray(np.zeros((28, 28, 4), np.uint8)).save(path)
    before = set(tmp_path.iterdir())
    r = run_cli("compress", str(path), *args)
    assert r.returncode != 0
    assert r.stderr.startswith("vlae-codec: error:") and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert set(tmp_path.iterdir()) == before


def test_killed_compression_leaves_nothing(tmp_path, digits):
    np.save(tmp_path / "x.npy", np.tile(digits, (200, 1, 1)))  # long enough to be killed midway
    before = (tmp_path / "x.npy").read_bytes()
    proc = subprocess.Popen([sys.executable, "-m", "vlae_codec.cli", "compress", str(tmp_path / "x.npy")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]
    assert (tmp_path / "x.npy").read_bytes() == before


def test_corrupt_file_fails_cleanly(tmp_path, digits):
    np.save(tmp_path / "x.npy", digits[:3])
    assert run_cli("compress", str(tmp_path / "x.npy")).returncode == 0
    data = bytearray((tmp_path / "x.vlae").read_bytes())
    data[len(data) // 2] ^= 0x10
    (tmp_path / "x.vlae").write_bytes(bytes(data))
    (tmp_path / "x.npy").unlink()
    r = run_cli("decompress", str(tmp_path / "x.vlae"))
    assert r.returncode != 0 and "corrupt" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.npy").exists()


def test_info_and_measure(tmp_path, digits):
    np.save(tmp_path / "x.npy", digits)
    r = run_cli("measure", str(tmp_path / "x.npy"), "--json", "--no-baselines")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    for key in ("images", "real_bits_per_dim", "neg_elbo_bits_per_dim", "compress_seconds",
                "decompress_seconds", "roundtrip_ok"):
        assert key in m
    assert m["roundtrip_ok"] is True and m["images"] == len(digits)
    assert run_cli("compress", str(tmp_path / "x.npy")).returncode == 0
    r = run_cli("info", str(tmp_path / "x.vlae"), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["images"] == len(digits)


def test_compress_json_reports_the_file_beside_its_elbo(tmp_path, digits):
    """compress --json: the file's real size, its header, and the coding model's -ELBO of the
    same images, which the file exceeds only by the header and a little coder slack."""
    np.save(tmp_path / "x.npy", digits)
    r = run_cli("compress", str(tmp_path / "x.npy"), "--json")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    size = (tmp_path / "x.vlae").stat().st_size
    assert m["bytes"] == size and m["images"] == len(digits) and m["subpixels"] == digits.size
    assert m["bits_per_dim"] == 8 * size / digits.size and 0 < m["header_bytes"] < size
    information = m["neg_elbo_bits_per_dim"] * digits.size / 8
    assert information < size < information + m["header_bytes"] + 64


def test_lossy_cli_is_repeatable(tmp_path, digits):
    np.save(tmp_path / "x.npy", digits[:10])
    outs = []
    for k in range(2):
        assert run_cli("compress", str(tmp_path / "x.npy"), "--lossy", "-o", str(tmp_path / f"{k}.vlae")).returncode == 0
        assert run_cli("decompress", str(tmp_path / f"{k}.vlae"), "-o", str(tmp_path / f"{k}.npy")).returncode == 0
        outs.append(np.load(tmp_path / f"{k}.npy"))
    assert (tmp_path / "0.vlae").read_bytes() == (tmp_path / "1.vlae").read_bytes()
    assert np.array_equal(outs[0], outs[1])


def test_eval_json(digits, model_name, tmp_path):
    np.save(tmp_path / "t.npy", digits[:20])
    r = run_cli("eval", "--model", model_name, "--data", str(tmp_path / "t.npy"), "--json", "--samples", "100")
    assert r.returncode == 0, r.stderr
    e = json.loads(r.stdout)
    for key in ("images", "neg_elbo_bits_per_dim", "kl_bits_per_image", "nll_is_bits_per_dim",
                "coding_neg_elbo_bits_per_dim"):
        assert key in e
    assert e["nll_is_bits_per_dim"] <= e["neg_elbo_bits_per_dim"] * 1.01


def test_models_lists_shipped_models(model_name):
    r = run_cli("models")
    assert r.returncode == 0 and model_name in r.stdout


def test_shipped_sample_round_trip(model_name, tmp_path):
    """The tests' sample of the test set as one archive: exact, and its payload its information content to 0.5%."""
    x = load_test_set(model_name)
    np.save(tmp_path / "sample.npy", x)
    r = run_cli("measure", str(tmp_path / "sample.npy"), "--json", "--no-baselines")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["roundtrip_ok"] is True and m["images"] == len(x)
    # With 100 images the header is a few percent of the file: compare the payload alone.
    info, payload_bits = m["neg_elbo_bits_per_dim"] * m["subpixels"], 8 * (m["bytes"] - m["header_bytes"])
    assert info <= payload_bits <= info * 1.005 + 64


@pytest.mark.slow
@pytest.mark.full_data
def test_full_test_set_round_trip(model_name, tmp_path):
    np.save(tmp_path / "test.npy", full_test_set(model_name))
    r = run_cli("measure", str(tmp_path / "test.npy"), "--json", "--no-baselines")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["roundtrip_ok"] is True and m["images"] == 10000
    assert m["real_over_neg_elbo"] < 1.005
