"""Sharded collections: independent archives and an index; one image or shard restored alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import load_test_set, run_cli


@pytest.fixture(scope="module")
def folder(tmp_path_factory, bmnist_test):
    """A folder of 20 named 1-bit PNGs."""
    d = tmp_path_factory.mktemp("pngs")
    for i, digit in enumerate(bmnist_test[:20]):
        Image.fromarray(digit * 255).convert("1").save(d / f"digit{i:02d}.png")
    return d


def _pixels(path):
    return np.asarray(Image.open(path), dtype=np.uint8)


def test_sharded_round_trip_and_partial_restores(folder, tmp_path):
    out = tmp_path / "c.shards"
    r = run_cli("compress", str(folder), "--shard-size", "6", "--workers", "2", "-o", str(out))
    assert r.returncode == 0, r.stderr
    index = json.loads((out / "index.json").read_text())
    assert [s["count"] for s in index["shards"]] == [6, 6, 6, 2]
    # Sorted names go into the index as ranges; the names themselves are in the shards' headers.
    assert index["shards"][1]["first_name"] == "digit06.png" and index["shards"][1]["last_name"] == "digit11.png"
    assert "names" not in index["shards"][1] and "\n " not in (out / "index.json").read_text()

    r = run_cli("decompress", str(out), "-o", str(tmp_path / "all"))
    assert r.returncode == 0, r.stderr
    for p in sorted(folder.iterdir()):
        assert np.array_equal(_pixels(tmp_path / "all" / p.name), _pixels(p))

    r = run_cli("decompress", str(out), "--shard", "2", "-o", str(tmp_path / "two"))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [f"digit{i:02d}.png" for i in range(12, 18)]

    # One image needs only its own shard: with the others gone it still comes back.
    for s in index["shards"]:
        if not s["first_name"] <= "digit09.png" <= s["last_name"]:
            (out / s["file"]).unlink()
    r = run_cli("decompress", str(out), "--image", "digit09.png", "-o", str(tmp_path / "nine.png"))
    assert r.returncode == 0, r.stderr
    assert np.array_equal(_pixels(tmp_path / "nine.png"), _pixels(folder / "digit09.png"))


def test_sharded_output_is_not_overwritten_and_bad_requests_fail(folder, tmp_path, bmnist_test):
    np.save(tmp_path / "x.npy", bmnist_test[:10])
    out = tmp_path / "x.shards"
    assert run_cli("compress", str(tmp_path / "x.npy"), "--shard-size", "4", "--workers", "1").returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = run_cli("compress", str(tmp_path / "x.npy"), "--shard-size", "4")
    assert r.returncode != 0 and "exists" in r.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    r = run_cli("decompress", str(out), "--image", "7", "-o", str(tmp_path / "seven.png"))
    assert r.returncode == 0, r.stderr
    assert np.array_equal(_pixels(tmp_path / "seven.png"), bmnist_test[7])  # a 1-bit PNG reads as 0/1
    for args in (["--shard", "9"], ["--image", "10"], ["--image", "nope.png"]):
        r = run_cli("decompress", str(out), *args)
        assert r.returncode != 0 and r.stderr.startswith("vlae-codec: error:") and "Traceback" not in r.stderr
    (out / "index.json").write_text("{not json")
    r = run_cli("decompress", str(out))
    assert r.returncode != 0 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_measure_reports_each_shards_clean_start(bmnist_test, tmp_path):
    np.save(tmp_path / "x.npy", bmnist_test[:12])
    r = run_cli("measure", str(tmp_path / "x.npy"), "--shard-size", "5", "--no-baselines", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["shards"] == 3 and result["roundtrip_ok"]
    assert len(result["clean_start_bits_per_shard"]) == 3 and min(result["clean_start_bits_per_shard"]) > 0
    assert sum(result["shard_bytes"]) == result["bytes"]


def test_shards_keep_alpha_palette_and_16_bit_modes(tmp_path):
    """Each mode comes back from a sharded folder with every value; a mixed folder is refused with
    what to do."""
    mnist_test = load_test_set("mnist")
    rng = np.random.default_rng(0)
    kinds = {"rgba": lambda i: Image.fromarray(np.dstack([np.stack([mnist_test[i]] * 3, -1), mnist_test[i + 1]])),
             "la": lambda i: Image.fromarray(np.dstack([mnist_test[i], 255 - mnist_test[i]])),
             "p": lambda i: _palette(mnist_test[i]),
             "i16": lambda i: Image.fromarray(mnist_test[i].astype(np.uint16) * 257 + rng.integers(0, 3, (28, 28)).astype(np.uint16))}
    for kind, make in kinds.items():
        src = tmp_path / kind
        src.mkdir()
        for i in range(5):
            make(i).save(src / f"{i:03d}.png", **({"transparency": 0} if kind == "p" else {}))
        out = tmp_path / f"{kind}.shards"
        r = run_cli("compress", str(src), "--shard-size", "2", "--workers", "1", "-o", str(out))
        assert r.returncode == 0, r.stderr
        r = run_cli("decompress", str(out), "-o", str(tmp_path / f"{kind}-back"))
        assert r.returncode == 0, r.stderr
        for p in sorted(src.iterdir()):
            a, b = Image.open(p), Image.open(tmp_path / f"{kind}-back" / p.name)
            assert a.mode == b.mode and np.array_equal(np.asarray(a), np.asarray(b)), (kind, p.name)
            assert a.info.get("transparency") == b.info.get("transparency")
        r = run_cli("decompress", str(out), "--image", "003.png", "-o", str(tmp_path / f"{kind}-3.png"))
        assert r.returncode == 0, r.stderr
        assert Image.open(tmp_path / f"{kind}-3.png").mode == Image.open(src / "003.png").mode
    (tmp_path / "rgba" / "zz.png").write_bytes((tmp_path / "la" / "000.png").read_bytes())
    r = run_cli("compress", str(tmp_path / "rgba"), "--shard-size", "2", "-o", str(tmp_path / "mixed.shards"))
    assert r.returncode != 0 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "without --shard-size" in r.stderr and not (tmp_path / "mixed.shards").exists()


def _palette(digit):
    """A digit in six shades, all digits sharing one palette (images of one kind can be sharded)."""
    im = Image.new("P", digit.shape[::-1])
    im.putdata((digit // 43).ravel().tolist())
    im.putpalette([v for shade in range(0, 256, 51) for v in (shade, shade, shade)])
    im.info["transparency"] = 0
    return im
