"""The figures the README quotes are the measured ones in benchmarks/results/*.json, rounded as printed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from benchmarks.steps import README_STEPS

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


# Prose: the README's text with its line breaks as spaces, so a sentence reads as one line.
PROSE = " ".join(README.split())


def _quoted(pattern: str) -> tuple[str, ...]:
    """The numbers a regular expression's groups pick out of the README's prose."""
    match = re.search(pattern, PROSE)
    assert match, f"the README no longer says {pattern!r}"
    return match.groups()


def _rounds_to(value: float, quoted: str, scale: float = 1.0) -> None:
    """`value` times `scale`, rounded to the quoted figure's decimals, is the quoted figure."""
    decimals = len(quoted.partition(".")[2])
    assert f"{value * scale:.{decimals}f}" == quoted, (value, quoted)


def test_every_results_file_the_readme_names_is_made_by_the_suite():
    """`python -m benchmarks` ends with README_STEPS: each results file the README links comes from one."""
    named = set(re.findall(r"benchmarks/results/(\w+)\.(?:md|json)", README)) | {"kodak_cifar"}
    assert named <= set(README_STEPS), named - set(README_STEPS)
    for module, *_ in README_STEPS.values():
        assert (ROOT / "benchmarks" / (module.replace(".", "/") + ".py")).is_file(), module


def test_digit_prose_quotes_the_results():
    bmnist, mnist = _results("bmnist"), _results("mnist")
    compress, decompress = _quoted(r"Compression and decompression of the archive take (\d+) s and (\d+) s")
    _rounds_to(bmnist["archive"]["compress_seconds"], compress)
    _rounds_to(bmnist["archive"]["decompress_seconds"], decompress)
    _rounds_to(bmnist["lossy"]["bytes_per_image"], _quoted(r"The lossy mode stores ([\d.]+) bytes per digit\. 8-bit")[0])
    bbans = next(r for r in _results("bbans")["results"] if r["dataset"] == "mnist")
    _rounds_to(bbans["archive"]["file_bits_per_dim"], _quoted(r"through this coder \(\[bbans\.md\]\S+\) \| ([\d.]+) \|")[0])
    # Speed: every run of the archive's compression and decompression, rounded as printed.
    runs = _results("speed_mnist")["runs"]
    # A range reads "36–37 s", or "32 s" where both ends round alike.
    quoted = _quoted(r"archive takes (\d+)(?:–(\d+))? s \((\d+)(?:–(\d+))? images/s\) and decompressing it "
                     r"(\d+)(?:–(\d+))? s \((\d+)(?:–(\d+))? images/s\)")
    for direction, (lo, hi, r_lo, r_hi) in zip(("compress", "decompress"), (quoted[:4], quoted[4:])):
        seconds = [r[f"{direction}_seconds"] for r in runs]
        assert (f"{min(seconds):.0f}", f"{max(seconds):.0f}") == (lo, hi or lo)
        rates = [r[f"{direction}_images_per_second"] for r in runs]
        assert (round(min(rates), -1), round(max(rates), -1)) == (int(r_lo), int(r_hi or r_lo))
    # One digit as its own file.
    single = _results("single_files")["models"]["mnist"]
    size, header, ratio, old_ratio = _quoted(r"digit as its own file is ([\d.]+) bytes, ([\d.]+) of them header .*? its "
                                             r"payload is ([\d.]+)× its negative ELBO \(([\d.]+)× before")
    _rounds_to(single["mean_bytes"], size)
    _rounds_to(single["mean_header_bytes"], header)
    _rounds_to(single["payload_over_neg_elbo"], ratio)
    _rounds_to(mnist["single_files"]["payload_over_neg_elbo"], old_ratio)  # measured with file format 1


def test_lossy_prose_quotes_the_results():
    mnist, whole = _results("mnist")["lossy"], _results("lossy_effort_mnist")
    effort64 = whole["runs"][0]
    size, at64, at32, at16, at1 = _quoted(r"The lossy mode stores ([\d.]+) bytes per digit; .*? for ([\d.]+)% of the "
                                          r"test set with `--effort 64`.*?, ([\d.]+)% with `--effort 32`, and "
                                          r"([\d.]+)% with the default 16 and ([\d.]+)% with 1 on 1,000 random digits")
    _rounds_to(effort64["bytes_per_image"], size)
    _rounds_to(mnist["bytes_per_image"], size)
    assert effort64["effort"] == 64 and mnist["effort"] == 32 and mnist["images"] == whole["images"] == 10000
    _rounds_to(effort64["class_agreement"], at64, 100)
    _rounds_to(mnist["class_agreement"], at32, 100)
    sweep = {r["effort"]: r for r in mnist["effort_sweep"]}
    assert sweep[16]["images"] == sweep[1]["images"] == 1000
    _rounds_to(sweep[16]["class_agreement"], at16, 100)
    _rounds_to(sweep[1]["class_agreement"], at1, 100)


def test_photo_prose_quotes_the_results():
    kodak, cifar = _results("kodak")["summary"], _results("kodak_cifar")["summary"]
    assert _quoted(r"On the (\d+) held-out photos it makes")[0] == str(_results("photos_held_out")["summary"]["photos"])
    assert _quoted(r"On the (\d+) Kodak photos")[0] == str(kodak["photos"]) == str(cifar["photos"])
    _rounds_to(cifar["bits_per_dim"], _quoted(r"\(`cifar` made ([\d.]+),")[0])
    _rounds_to(kodak["bits_per_dim"] / kodak["jxl_bits_per_dim"] - 1, _quoted(r"still ([\d.]+)% larger than JPEG-XL")[0],
               100)
    luma = _results("kodak_luma")["summary"]
    quoted = _quoted(r"it makes ([\d.]+) bits/dim against WebP ([\d.]+) and JPEG-XL ([\d.]+), ([\d.]+)% larger")
    for key, figure in zip(("bits_per_dim", "webp_bits_per_dim", "jxl_bits_per_dim"), quoted):
        _rounds_to(luma[key], figure)
    _rounds_to(luma["bits_per_dim"] / luma["jxl_bits_per_dim"] - 1, quoted[3], 100)
    bound = float(_quoted(r"Every Kodak file is exact and at most ([\d.]+) times the coding model's -ELBO")[0])
    for summary in (kodak, luma):
        assert summary["all_exact"] and summary["photos"] == 24
        assert summary["max_real_over_neg_elbo_plus_header"] <= bound


def test_modes_prose_quotes_the_results():
    rows = [r for r in _results("modes")["rows"] if "RGBA" in r["image"]]
    cut_out, to_png, jxl_lo, jxl_hi = _quoted(r"a (?:96×96 )?cut-out (\d+)\. A 96×96 Kodak crop with an alpha mask "
                                              r"makes ([\d.]+)× its PNG and ([\d.]+)–([\d.]+)× its JPEG-XL")
    assert _results("modes")["crop"] == 96 and rows
    _rounds_to(next(r for r in rows if "cut-out" in r["image"])["side_bytes"], cut_out)
    assert {f"{r['ratio_to_png']:.2f}" for r in rows} == {to_png}
    assert {f"{r['ratio_to_jxl']:.2f}" for r in rows} == {jxl_lo, jxl_hi}
    palette = next(r for r in _results("modes")["rows"] if "palette" in r["image"])
    to_png, to_jxl = _quoted(r"palette of 64 colours, one of them transparent, ([\d.]+)× its PNG and ([\d.]+)× its JPEG-XL")
    _rounds_to(palette["ratio_to_png"], to_png)
    _rounds_to(palette["ratio_to_jxl"], to_jxl)


def _train_log(folder: str) -> dict:
    return json.loads((ROOT / folder / "train_log.json").read_text())


def test_training_figures_are_the_logged_ones():
    """Figures of training runs come from the shipped models' train_log.json (written by training, not a benchmark)."""
    lines = _table_after("from their `train_log.json`")
    epochs = [int(e) for e in lines[0].strip("| ").split(" | ")[1:]]
    for name in ("photo", "photo-grey"):
        log = {e["epoch"]: e["valid_neg_elbo_bits_per_dim"] for e in _train_log(f"model/zoo/{name}")["epochs"]}
        row = next(r for r in lines if r.startswith(f"| `{name}` |"))
        assert row == f"| `{name}` | " + " | ".join(f"{log[e]:.4f}" for e in epochs) + " |"
    for name, hours in zip(("photo", "photo-grey"), _quoted(r"70 epochs each, ([\d.]+) and ([\d.]+) hours")):
        _rounds_to(_train_log(f"model/zoo/{name}")["total_wall_seconds"], hours, 1 / 3600)
    photo = {e["epoch"]: e["valid_neg_elbo_bits_per_dim"] for e in _train_log("model/zoo/photo")["epochs"]}
    _rounds_to(photo[61] - photo[70], _quoted(r"\(([\d.]+) over the last 9 epochs\)")[0])
    log = _train_log("model/zoo/photo")
    assert _quoted(r"trained on from `cifar` over (\d+) real photographs \(\S+, (\d+) more held out\)") == (
        str(len(log["train_files"])), str(len(log["held_out_files"])))
    assert _quoted(r"from \S+ \((\d+) photographs;")[0] == str(len(log["train_files"]) + len(log["held_out_files"]))
    assert _quoted(r"bits/dim on (\d+) fixed 64×64 crops")[0] == str(log["valid_images"])
    cifar = _train_log("model/zoo/cifar")
    epochs, hours = _quoted(r"The `cifar` model \(trained (\d+) epochs, about ([\d.]+) hours")
    assert int(epochs) == len(cifar["epochs"])
    _rounds_to(cifar["total_wall_seconds"], hours, 1 / 3600)
    fast, slow = _quoted(r"an epoch takes ([\d.]+) instead of ([\d.]+) minutes")
    assert f"{fast} instead of {slow} min per epoch" in " ".join(_train_log("checkpoints/cifar-wide")["notes"])


def test_photo_speed_prose_quotes_the_results():
    row = next(r for r in _results("photo_speed")["photos"] if r["photo"] == "kodim23.png")
    quoted = _quoted(r"kodim23 \(768×512\) takes ([\d.]+) s to compress and ([\d.]+) s to decompress .*? at most "
                     r"([\d.]+) GB, where JPEG-XL at effort 9 takes ([\d.]+) s and ([\d.]+) s")
    figures = (row["vlae-codec"]["encode"]["seconds"], row["vlae-codec"]["decode"]["seconds"],
               max(row["vlae-codec"][d]["peak_mib"] for d in ("encode", "decode")) / 1024,
               row["jpeg-xl"]["encode"]["seconds"], row["jpeg-xl"]["decode"]["seconds"])
    for value, figure in zip(figures, quoted):
        _rounds_to(value, figure)


def test_big_photo_prose_quotes_the_results():
    row = _results("big_photo")["photo"]
    quoted = _quoted(r"takes ([\d.]+) s to compress and\s+([\d.]+) s to decompress, at most ([\d.]+) GB, where "
                     r"JPEG-XL takes ([\d.]+) s and ([\d.]+) s")
    vlae, jxl = row["vlae-codec"], row["jpeg-xl"]
    assert (row["width"], row["height"]) == (4000, 3000) and vlae["exact"]
    figures = (vlae["encode"]["seconds"], vlae["decode"]["seconds"],
               max(vlae[d]["peak_mib"] for d in ("encode", "decode")) / 1024,
               jxl["encode"]["seconds"], jxl["decode"]["seconds"])
    for value, figure in zip(figures, quoted):
        _rounds_to(value, figure)
