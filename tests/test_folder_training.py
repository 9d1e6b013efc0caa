"""Training on a folder of pictures: the held-out split, crops, resuming, converting, and a colour
model started as a greyscale one."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from vlae_codec.model import VLAE, VLAEConfig
from vlae_codec.model.folder import ImageFolder, held_out
from vlae_codec.model.train import TrainOptions, train
from vlae_codec.model.transplant import check_grey_equivalence, start_from

from conftest import run_cli


@pytest.fixture
def grid_config() -> VLAEConfig:
    """A tiny block model (one code per 8x8 block), as the photo presets are."""
    return VLAEConfig(height=16, width=16, channels=3, likelihood="logistic_mixture", mixtures=2, block=8,
                      latent_dim=4, encoder_channels=(8, 8, 8), encoder_hidden=16, made_hidden=(16,),
                      feature_channels=8, pixel_hidden=16, window_rows=2, window_half_width=2)


@pytest.fixture
def picture_folder(tmp_path):
    """Twelve smooth pictures of a few sizes, one too small to crop, and a file that is not a picture."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(12):
        h, w = (20 + 3 * k, 18 + 2 * k) if k else (10, 10)
        ramp = np.add.outer(np.arange(h), np.arange(w))[..., None] * (k + 1) % 256
        noise = rng.integers(0, 20, (h, w, 3))
        Image.fromarray((ramp + noise).clip(0, 255).astype(np.uint8)).save(folder / f"p{k:02d}.png")
    (folder / "notes.txt").write_text("not a picture")
    return folder


def test_held_out_files_are_whole_stable_and_at_least_a_tenth():
    names = [f"img{k}.png" for k in range(95)]
    valid = held_out(names)
    assert len(valid) == 10 and set(valid) <= set(names)
    assert held_out(list(reversed(names))) == valid  # the folder's order does not matter


def test_folder_crops_come_from_training_files_only(picture_folder):
    folder = ImageFolder.open(picture_folder, 3, 16)
    assert "p00.png" not in folder.train_names + folder.valid_names  # 10x10 has no 16x16 crop
    assert not set(folder.train_names) & set(folder.valid_names)
    crops = folder.train_crops(40, np.random.default_rng(1))
    assert crops.shape == (40, 16, 16, 3) and crops.dtype == np.uint8
    valid = folder.valid_crops()
    assert np.array_equal(valid, folder.valid_crops())
    grey = ImageFolder.open(picture_folder, 1, 16)
    assert grey.train_crops(3, np.random.default_rng(1)).shape == (3, 16, 16)


def test_folder_training_runs_resumes_and_converts(picture_folder, grid_config, tmp_path):
    out = tmp_path / "run"
    opts = TrainOptions(epochs=2, batch_size=8, crop=16, epoch_crops=16, max_steps=3)
    train("photo", out, cfg=grid_config, opts=opts, images=picture_folder, progress=False)
    log = json.loads((out / "train_log.json").read_text())
    assert log["held_out_files"] and log["images"] == str(picture_folder.resolve())
    assert log["epochs"][0]["steps"] == 2 and not log["epochs"][1:]
    # Resuming needs neither the folder nor the preset again: the log has them.
    log = train(None, out, opts=TrainOptions(epochs=2), resume=True, progress=False)
    assert [e["epoch"] for e in log["epochs"]] == [1, 2]
    done = run_cli("convert", "--model", str(out), "--calibration", "64")
    assert done.returncode == 0, done.stderr
    assert (out / "coding.json").is_file()


def test_colour_model_starts_a_greyscale_one_computing_the_same(grid_config):
    torch.manual_seed(0)
    colour = VLAE(grid_config).eval()
    grey = start_from(colour, dataclasses.replace(grid_config, channels=1)).eval()
    x = torch.randint(0, 256, (2, 1, 24, 16)).float()
    assert check_grey_equivalence(colour, grey, x) < 1e-4


def test_train_refuses_conflicting_sources(picture_folder, tmp_path):
    both = run_cli("train", "--dataset", "bmnist", "--images", str(picture_folder), "--out", str(tmp_path / "r"))
    assert both.returncode != 0 and "not both" in both.stderr and "Traceback" not in both.stderr
    neither = run_cli("train", "--out", str(tmp_path / "r"))
    assert neither.returncode != 0 and "--images" in neither.stderr
    wrong = run_cli("train", "--images", str(picture_folder), "--preset", "nope", "--out", str(tmp_path / "r"))
    assert wrong.returncode != 0 and "unknown preset" in wrong.stderr and "Traceback" not in wrong.stderr


def test_train_command_runs_to_the_end(picture_folder, tmp_path):
    """The three README commands' first one, end to end through the CLI, on a tiny budget; then
    resumed with a setting changed back to its default, which the resumed run must take."""
    out = tmp_path / "run"
    done = run_cli("train", "--images", str(picture_folder), "--preset", "photo", "--crop", "16", "--epochs", "1",
                   "--batch-size", "4", "--epoch-crops", "8", "--lr-decay", "0.9", "--threads", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "valid -ELBO" in done.stdout and (out / "weights.safetensors").is_file()
    resumed = run_cli("train", "--resume", "--epochs", "2", "--lr-decay", "0.97", "--threads", "1", "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    log = json.loads((out / "train_log.json").read_text())
    assert log["options"]["lr_decay"] == 0.97 and [e["epoch"] for e in log["epochs"]] == [1, 2]
