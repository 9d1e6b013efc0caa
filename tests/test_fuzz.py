"""Hostile archives: a short run of the fuzzer (the benchmark runs 10,000 cases), and archive
names that would write outside the output folder or clobber each other."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import vlae_codec
from benchmarks import fuzz
from vlae_codec import container
from vlae_codec.errors import FormatError

from conftest import fixture_data, run_cli


def test_mutated_archives_decode_exactly_or_are_refused():
    result = fuzz.run(cases=300, seed=1, timeout=20, data_dir=str(fixture_data()))
    assert result["bad_cases"] == [] and sum(result["outcomes"].values()) == 300
    assert result["outcomes"].get("refused", 0) > 200  # the mutations do reach the checks


@pytest.mark.parametrize("names", [["a\x00.png", "b.png"], ["../a.png", "b.png"], ["x" * 300 + ".png", "b.png"],
                                   ["same.png", "same.png"], ["a.npy", "b.png"], ["", "b.png"]])
def test_hostile_image_names_are_refused(tmp_path, bmnist_test, names):
    header, words = container.unpack(vlae_codec.compress(bmnist_test[:2]))
    data = container.pack(dataclasses.replace(header, layout="named", names=names), words)
    with pytest.raises(FormatError, match="name"):
        vlae_codec.decompress(data)
    (tmp_path / "n.vlae").write_bytes(data)
    r = run_cli("decompress", str(tmp_path / "n.vlae"), "-o", str(tmp_path / "out"))
    assert r.returncode != 0 and r.stderr.startswith("vlae-codec: error:") and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["n.vlae"]


def test_the_cases_the_10000_case_run_found():
    """A stored digit truncated to 13 bytes (read as context-coded words ending in a zero word),
    and a version 4 alpha archive re-packed as version 3, which has no place for its alpha."""
    with pytest.raises(FormatError, match="corrupt"):
        vlae_codec.decompress(bytes.fromhex("564c414505071c1c09000000" "0012ab9aaf"))
    header, words = container.unpack(vlae_codec.compress(np.zeros((2, 5, 6, 2), dtype=np.uint8)))
    with pytest.raises(ValueError, match="cannot hold"):
        container.pack(dataclasses.replace(header, version=3), words)
