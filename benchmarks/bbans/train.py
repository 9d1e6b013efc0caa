"""Train the two BB-ANS baselines, convert them to their coding form and save them under weights/.

Run from benchmarks/: python -m bbans.train [--only bmnist|mnist] [--epochs-bmnist N] [--epochs-mnist N]
Each model goes to benchmarks/bbans/weights/bbans_DATASET/: weights.safetensors, config.json,
coding.safetensors, coding.json and train_log.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from vlae_codec.model import data

from . import mlp_vae
from .coding import convert

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
CALIBRATION = 5000  # training images that set the coding form's activation ranges and latent bins
# The BB-ANS paper's shapes; 8-bit pixels get a small discretized logistic mixture.
CONFIGS = {"bmnist": mlp_vae.MLPConfig(),
           "mnist": mlp_vae.MLPConfig(likelihood="logistic_mixture", mixtures=3)}
EPOCHS = {"bmnist": 100, "mnist": 20}
OPTIONS = {"batch_size": 100, "lr": 1e-3, "lr_decay": 0.95}  # Adam, learning rate decayed per epoch


def build(dataset: str, epochs: int, seed: int = 0, data_dir: str | None = None) -> Path:
    """Train one baseline, convert it, and save everything; returns its folder."""
    cfg = CONFIGS[dataset]
    train_x = data.load_split(dataset, "train", data_dir)
    valid_x = data.load_split(dataset, "valid", data_dir)
    model = mlp_vae.MLPVAE(cfg)
    t0 = time.time()
    log = mlp_vae.train(model, train_x, valid_x, epochs, seed=seed, **OPTIONS,
                        report=lambda e: print(f"{dataset} epoch {e['epoch']}: train {e['train_neg_elbo_bits_per_dim']:.4f}, "
                                               f"valid {e['valid_neg_elbo_bits_per_dim']:.4f} bits/dim ({e['seconds']} s)",
                                               flush=True))
    seconds = time.time() - t0
    pick = np.random.default_rng(seed).choice(len(train_x), CALIBRATION, replace=False)
    cm = convert(model, data.to_tensor(train_x[np.sort(pick)]), seed=seed)
    directory = WEIGHTS_DIR / f"bbans_{dataset}"
    mlp_vae.save(model, directory)
    cm.save(directory)
    valid = mlp_vae.evaluate(model, valid_x)
    (directory / mlp_vae.LOG).write_text(json.dumps({
        "dataset": dataset, "config": json.loads(cfg.to_json()),
        "options": {"epochs": epochs, "optimizer": "Adam", **OPTIONS, "seed": seed, "torch_threads": torch.get_num_threads(), "calibration_images": CALIBRATION},
        "train_seconds": round(seconds, 1), "valid_final": valid, "epochs": log}, indent=1) + "\n")
    return directory


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", choices=sorted(CONFIGS), default=None)
    ap.add_argument("--epochs-bmnist", type=int, default=EPOCHS["bmnist"])
    ap.add_argument("--epochs-mnist", type=int, default=EPOCHS["mnist"])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    epochs = {"bmnist": args.epochs_bmnist, "mnist": args.epochs_mnist}
    for dataset in [args.only] if args.only else sorted(CONFIGS):
        print(f"saved {build(dataset, epochs[dataset], data_dir=args.data_dir)}")


if __name__ == "__main__":
    main()
