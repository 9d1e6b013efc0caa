"""The figures the README quotes are the measured ones in benchmarks/results/*.json, rounded as printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

# Each test set's table in the README: its row labels and the figures of each row, as paths
# into the results file, in the order the row prints them.
TEST_SET_ROWS = {
    "**vlae-codec, real file size**": ["archive.real_bits_per_dim"],
    "its coding model's negative ELBO": ["model_figures.coding_neg_elbo_bits_per_dim"],
    "float model: negative ELBO / importance-sampled NLL": ["model_figures.neg_elbo_bits_per_dim",
                                                            "model_figures.nll_is_bits_per_dim"],
    "float model: negative ELBO |": ["model_figures.neg_elbo_bits_per_dim"],
    "JPEG-XL lossless, ": ["other_codecs.jxl_mosaic_bits_per_dim", "other_codecs.jxl_single_files_bits_per_dim"],
    "WebP lossless, ": ["other_codecs.webp_mosaic_bits_per_dim", "other_codecs.webp_single_files_bits_per_dim"],
    "PNG, ": ["other_codecs.png_mosaic_bits_per_dim", "other_codecs.png_single_files_bits_per_dim"],
    "lzma -9e / bz2 / gzip": ["other_codecs.lzma_raw_array_bits_per_dim", "other_codecs.bz2_raw_array_bits_per_dim",
                              "other_codecs.gzip_raw_array_bits_per_dim"],
}
# The photo sets, quoted in prose: figures from each results file's summary.
PHOTO_FIGURES = {"kodak": ["bits_per_dim", "webp_bits_per_dim", "jxl_bits_per_dim", "png_bits_per_dim"],
                 "photos_held_out": ["bits_per_dim", "webp_bits_per_dim", "jxl_bits_per_dim"]}


def _results(name: str) -> dict:
    return json.loads((ROOT / "benchmarks" / "results" / f"{name}.json").read_text())


def _at(result: dict, path: str) -> float:
    for key in path.split("."):
        result = result[key]
    return result


def _table_after(link: str) -> list[str]:
    """The rows of the first Markdown table after the line that links `link`."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if link in line)
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    return rows


@pytest.mark.parametrize("name", ["bmnist", "mnist", "cifar"])
def test_test_set_tables_quote_the_results(name):
    result, rows = _results(name), _table_after(f"benchmarks/results/{name}.md")
    checked = 0
    for label, paths in TEST_SET_ROWS.items():
        row = next((r for r in rows if r.startswith(f"| {label}")), None)
        if row is None:
            continue
        assert " / ".join(f"{_at(result, p):.4f}" for p in paths) in row, row
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize("name", list(PHOTO_FIGURES))
def test_photo_figures_are_the_measured_ones(name):
    summary = _results(name)["summary"]
    for key in PHOTO_FIGURES[name]:
        assert f"{summary[key]:.4f}" in README, key
