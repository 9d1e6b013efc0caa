"""Fast checks of the benchmark suite's pure parts: report, losses, plan helpers (run: python -m pytest -q benchmarks/test_suite.py)."""

from __future__ import annotations

import numpy as np

from benchmarks import archive_size, lossy, plots, report, speed, suite

PROV = {"command": "python -m benchmarks", "date": "2026-01-01T00:00:00+00:00", "commit": "abc", "python": "3.11",
        "machine": "x86_64, 2 cores", "torch": "2.x", "torch_threads": 2}


def fake_sections() -> dict:
    """A small results dict in the layout the suite writes: vlae-codec beats everything on
    bmnist, loses to JPEG-XL's mosaic on mnist, and to BB-ANS for one-image archives."""
    def model(dataset: str, vlae: float, jxl_mosaic: float) -> dict:
        return {"model": dataset, "dataset": dataset, "images": 100, "binary": dataset == "bmnist",
                "model_figures": {"neg_elbo_bits_per_dim": vlae - 0.01, "coding_neg_elbo_bits_per_dim": vlae - 0.005,
                                  "nll_is_bits_per_dim": vlae - 0.02, "is_subset_neg_elbo_bits_per_dim": vlae - 0.01,
                                  "is_images": 10, "is_samples": 5},
                "archive": {"real_bits_per_dim": vlae, "real_over_neg_elbo": 1.001, "header_bytes": 44,
                            "clean_start_bits": 120.0},
                "other_codecs": {"png_single_files_bits_per_dim": 2.0, "png_mosaic_bits_per_dim": 1.5,
                                 "jxl_mosaic_bits_per_dim": jxl_mosaic, "gzip_raw_array_bits_per_dim": 1.7},
                "single_files": {"bits_per_dim": 1.2, "mean_bytes": 100.0, "mean_header_bytes": 42.0},
                "bbans": {"file_bits_per_dim": vlae + 0.3}}

    rates = {"provenance": PROV, "plan": {**{k: v for k, v in suite.QUICK.__dict__.items()}, "threads": 2},
             "models": {"bmnist": model("bmnist", 0.15, 0.22), "mnist": model("mnist", 1.10, 1.05)},
             "kodak": None, "missing": ["the RGB model `cifar` is not shipped yet"], "run_seconds": 90.0}
    rows = [{"images": n, "bits_per_dim": b, "mode": "lossless", "compress_seconds": 0.1, "decompress_seconds": 0.2}
            for n, b in ((1, 0.9), (10, 0.2), (100, 0.15))]
    bb = [{"images": n, "bits_per_dim": b, "compress_seconds": 0.01, "decompress_seconds": 0.02}
          for n, b in ((1, 0.8), (10, 0.25), (100, 0.45))]
    archive = {"provenance": PROV, "models": {"bmnist": {"dataset": "bmnist", "vlae": rows, "bbans": bb}}}
    speed_ = {"provenance": PROV, "models": {"bmnist": {
        "archive": {"images": 100, "compress_images_per_second": 250.0, "decompress_images_per_second": 300.0,
                    "compress_peak_mib": 400.0, "decompress_peak_mib": 380.0},
        "single_file_compress_seconds": 0.02,
        "classic": {"png": {"images": 100, "encode_images_per_second": 20000.0, "decode_images_per_second": 100.0}},
        "bbans": None}}, "kodak": None, "crops": {}}
    lossy_ = {"provenance": PROV, "models": {"bmnist": {
        "images": 50, "classifier_accuracy_on_originals": None, "vlae_single_file_bytes": 47.0,
        "vlae_single_images": 20, "vlae_single_effort": 16, "grid": "lossy_grid_bmnist.png",
        "vlae": [{"effort": 16, "bytes_per_image": 4.4, "class_agreement": 0.8}],
        "classic": {"jpeg": {"smallest_kept": {"mean_bytes": 200.0, "class_agreement": 0.99, "median_quality": 5},
                             "per_quality": [{"quality": 0, "mean_bytes": 190.0, "class_agreement": 0.9}]},
                    "webp": {"smallest_kept": {"mean_bytes": 3.0, "class_agreement": 0.5, "median_quality": 0},
                             "per_quality": [{"quality": 0, "mean_bytes": 3.0, "class_agreement": 0.5}]}}}}}
    return {"rates": rates, "archive_size": archive, "speed": speed_, "lossy": lossy_}


def test_rate_losses_name_the_codec_and_margin():
    cols = report.rate_columns(fake_sections()["rates"])
    assert [t for t, _ in cols] == ["binarized MNIST, 100 images", "MNIST, 100 images"]
    out = report.rate_losses(cols)
    assert len(out) == 1
    assert out[0].startswith("MNIST, 100 images: JPEG-XL lossless, one mosaic (1.0500 bits/dim)")
    assert "by 0.0500 bits/dim" in out[0] and "4.8% larger" in out[0]


def test_single_files_are_compared_like_for_like():
    cols = [("x", {"vlae": 0.1, "vlae_single": 1.0, "png_single": 0.9, "png_mosaic": 0.5, "gzip_raw": 0.2})]
    out = report.rate_losses(cols)
    # The archive beats everything; single files lose only to PNG's single files, not to its mosaic.
    assert len(out) == 1 and "PNG, single files" in out[0] and "single-image files" in out[0]
    kodak = [("Kodak", {"vlae_single": 3.0, "png_single": 3.5, "gzip_raw": 2.9})]
    assert len(report.rate_losses(kodak)) == 1  # photos have no archive row: raw compressors count too


def test_count_lossy_and_speed_losses():
    s = fake_sections()
    counts = report.count_losses(s["archive_size"])
    assert len(counts) == 1 and counts[0].startswith("bmnist, 1 image(s)")
    lossy_out = report.lossy_losses(s["lossy"])
    assert any("JPEG keeps the class of 99.0%" in line for line in lossy_out)
    assert any("WebP's smallest class-keeping files (3.0 bytes)" in line for line in lossy_out)
    speed_out = report.speed_losses(s["speed"])
    # PNG encodes faster but decodes slower here: only the encoding is a loss.
    assert len(speed_out) == 1 and "compresses 20,000 images/s, 80.0x" in speed_out[0] and "decompress" not in speed_out[0]


def test_render_has_provenance_tables_plots_and_missing_note():
    md = report.render(fake_sections(), lambda name: f"results/{name}", quick=False, seconds=90.0)
    for needed in ("Command: `python -m benchmarks`", "Commit: abc", "Machine: x86_64, 2 cores", "Run time: 1.5 minutes",
                   "**Missing:** the RGB model `cifar` is not shipped yet", "## Where vlae-codec loses",
                   "(results/rates.png)", "(results/archive_size.png)", "(results/decode_time.png)",
                   "(results/lossy_tradeoff.png)", "(results/lossy_grid_bmnist.png)", "## How this run was budgeted",
                   "| **vlae-codec**, real file size, the test images as one archive | 0.1500 | 1.1000 |"):
        assert needed in md, needed
    assert "QUICK MODE" in report.render(fake_sections(), str, quick=True, seconds=None)


def test_smallest_kept_picks_the_smallest_passing_file():
    sizes = np.array([[10, 10, 10], [30, 5, 40], [20, 50, 60]])
    kept = np.array([[False, True, False], [True, True, False], [True, False, False]])
    choice, ok = lossy.smallest_kept(sizes, kept)
    assert choice.tolist() == [2, 1, 2] and ok.tolist() == [True, True, False]


def test_classic_codecs_round_trip_a_digit():
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    for codec in lossy.available():
        back = lossy.decode_classic(lossy.encode_classic(digit, codec, 90))
        assert back.shape == digit.shape and np.abs(back.astype(int) - digit).mean() < 20
    assert lossy.to_8bit(np.array([[0, 1]])).tolist() == [[0, 255]]


def test_plan_helpers():
    assert archive_size.counts_for(300, (1, 10, 100, 1000, 10000)) == [1, 10, 100, 300]
    assert archive_size.counts_for(10000, (1, 10, 100, 1000, 10000)) == [1, 10, 100, 1000, 10000]
    assert speed.crop_sizes(512, 768, (32, 512, 768)) == [32, 512]
    assert archive_size.bbans_model("mnist") == "bbans_mnist" and archive_size.bbans_model("cifar") is None
    for plan in (suite.FULL, suite.QUICK):
        assert plan.crop_photo.startswith("kodim") and min(plan.lossy_efforts) >= 1


def test_plots_write_pngs(tmp_path):
    s = fake_sections()
    suite.make_plots(s, tmp_path)
    for name in ("rates.png", "archive_size.png", "decode_time.png", "lossy_tradeoff.png"):
        assert (tmp_path / name).stat().st_size > 1000
    plots.image_grid([("a", np.zeros((3, 28, 28), np.uint8)), ("b", np.full((3, 28, 28), 255, np.uint8))],
                     tmp_path / "grid.png")
    assert (tmp_path / "grid.png").is_file()
