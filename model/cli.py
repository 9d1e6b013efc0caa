"""The training-side commands (train, convert, grow, eval, models), mounted on the vlae-codec command line."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import click
import numpy as np

from .. import api, images
from ..console import progress, set_threads
from ..errors import CodecError, InputError


@click.command()
@click.option("--dataset", default=None, help="Data set name: bmnist, mnist or cifar (or --images).")
@click.option("--images", type=click.Path(file_okay=False, exists=True), default=None,
              help="Train on random crops of the pictures in this folder instead; 10% of the files are held out.")
@click.option("--preset", default=None,
              help="With --images: the architecture, photo (RGB) or photo-grey (greyscale) [default: photo].")
@click.option("--crop", type=click.IntRange(8), default=None, help="With --images: crop side in pixels [default: 64].")
@click.option("--epoch-crops", type=click.IntRange(1), default=None,
              help="With --images: crops per epoch [default: 4096].")
@click.option("--init", default=None,
              help="Start from this model's weights (a name or folder; a colour model may start a greyscale one).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with the data sets [default: $VLAE_DATA or ../shared/data].")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for checkpoints, log and weights.")
@click.option("--epochs", type=int, default=None,
              help="Epochs in all (a resumed run may extend it, its free-bits schedule kept at the same epochs) "
                   "[default: 60].")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in --out.")
@click.option("--batch-size", type=int, default=None, help="Images per step [default: 128].")
@click.option("--lr", type=float, default=None, help="Initial learning rate [default: 1e-3].")
@click.option("--lr-decay", type=float, default=None,
              help="Learning rate factor per epoch; a resumed run may anneal faster [default: 0.97].")
@click.option("--seed", type=int, default=None, help="Random seed [default: 0].")
@click.option("--max-steps", type=int, default=None, help="Stop after this many steps (smoke tests).")
@click.option("--threads", type=int, default=None, help="Torch CPU threads (per process).")
@click.option("--device", default=None, help="Torch device, e.g. cpu or cuda:0 [default: this process's GPU if any].")
@click.option("--precision", type=click.Choice(["auto", "bf16", "fp32"]), default=None,
              help="bf16: mixed-precision forward pass, faster where the hardware has bfloat16 (an epoch "
                   "1.35x as fast on 2 Zen 4 cores); auto picks it on GPUs and such CPUs [default: auto].")
def train(dataset, images, preset, crop, epoch_crops, init, data_dir, out, epochs, resume, batch_size, lr, lr_decay,
          seed, max_steps, threads, device, precision) -> None:
    """Train a VLAE; writes weights, config, train_log.json and a resumable checkpoint to --out.

    Under torchrun it trains with DistributedDataParallel (gloo on CPU, nccl on GPU), the
    global batch split over the processes; rank 0 writes checkpoints and the log."""
    from .train import TrainOptions, train as run

    set_threads(threads)
    if images is not None and dataset is not None:
        raise click.UsageError("give --dataset or --images, not both")
    if images is None and dataset is None and not resume:
        raise click.UsageError("give --dataset NAME or --images FOLDER")
    if preset is not None and images is None:
        raise click.UsageError("--preset goes with --images")
    given = {k: v for k, v in dict(epochs=epochs, batch_size=batch_size, lr=lr, lr_decay=lr_decay, seed=seed,
                                   max_steps=max_steps, precision=precision, crop=crop,
                                   epoch_crops=epoch_crops).items() if v is not None}
    name = dataset or (preset or "photo" if images is not None else None)
    try:
        log = run(name, out, data_dir=data_dir, opts=given if resume else TrainOptions(**given), resume=resume,
                  device=device, images=images, init=init)
    except (ValueError, FileNotFoundError) as e:
        raise CodecError(str(e)) from None
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if not log["epochs"]:
        click.echo(f"stopped within the first epoch; resume with --resume --out {out}")
        return
    last = log["epochs"][-1]
    click.echo(f"epoch {last['epoch']}: valid -ELBO {last['valid_neg_elbo_nats']:.2f} nats "
               f"({last['valid_neg_elbo_bits_per_dim']:.4f} bits/dim); weights in {out}")


@click.command()
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False, exists=True),
              help="Model folder (weights.safetensors + config.json + train_log.json).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Folder with the data sets.")
@click.option("--calibration", type=int, default=2000, show_default=True, help="Training images that set activation ranges.")
@click.option("--lossy-bins", type=click.FloatRange(min=1.0, max=64.0), default=4.0, show_default=True,
              help="Lossy mode: bins per typical posterior width of each latent dimension (finer: "
                   "bigger lossy files, closer to the original).")
def convert(model_dir, data_dir, calibration, lossy_bins) -> None:
    """Build the exact integer coding form of a trained model (coding.safetensors + coding.json)."""
    import torch

    from . import coding, data, zoo

    log = json.loads((Path(model_dir) / zoo.LOG).read_text())
    if "images" in log:
        x = _calibration_crops(log, calibration)
    else:
        x = data.load_split(log["dataset"], "train", data_dir)
        x = x[np.sort(np.random.default_rng(0).permutation(len(x))[:calibration])]
    torch.manual_seed(0)
    try:
        cm = coding.convert(zoo.load(model_dir), data.to_tensor(x), lossy_bins)
    except ValueError as e:  # a layer that cannot be made exact: say which, write nothing
        raise CodecError(f"cannot build an exact coding form: {e}") from None
    cm.save(model_dir)
    active = sum(k > 1 for k in cm.lossless_bins)
    click.echo(f"coding form written to {model_dir}: {active} active latent dimensions")


def _calibration_crops(log: dict, calibration: int) -> np.ndarray:
    """Crops of a folder run's training pictures, as many pixels as `calibration` 32x32 images."""
    from .folder import CALIBRATION_SEED, ImageFolder

    crop = log["options"]["crop"]
    folder = ImageFolder.open(log["images"], log["config"]["channels"], crop)
    return folder.train_crops(max(1, calibration * 32 * 32 // crop**2), np.random.default_rng(CALIBRATION_SEED))


@click.command()
@click.option("--from", "source", required=True, type=click.Path(file_okay=False, exists=True),
              help="Training run folder to grow (its checkpoint/ and train_log.json), stopped at an epoch's end.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New run folder; resume it with train --resume.")
@click.option("--pixel-hidden", type=int, default=None, help="Hidden units of the pixel head [default: unchanged].")
@click.option("--pixel-layers", type=int, default=None, help="1x1 layers of the pixel head [default: unchanged].")
@click.option("--window-rows", type=int, default=None, help="Rows above a pixel that it sees [default: unchanged].")
@click.option("--window-half-width", type=int, default=None, help="Columns each side that it sees [default: unchanged].")
def grow(source, out, pixel_hidden, pixel_layers, window_rows, window_half_width) -> None:
    """Grow a training run's pixel head without changing what it computes, to train on from there."""
    import dataclasses

    from . import grow as grow_mod
    from .config import VLAEConfig

    cfg = VLAEConfig.from_dict(json.loads((Path(source) / "train_log.json").read_text())["config"])
    given = dict(pixel_hidden=pixel_hidden, pixel_layers=pixel_layers, window_rows=window_rows,
                 window_half_width=window_half_width)
    cfg = dataclasses.replace(cfg, **{k: v for k, v in given.items() if v is not None})
    try:
        grow_mod.grow_run(source, out, cfg)
    except (ValueError, FileExistsError) as e:
        raise CodecError(str(e)) from None
    click.echo(f"grown run written to {out}; continue with: vlae-codec train --dataset DATASET --out {out} --resume --epochs N")


def _load_eval_data(spec: str) -> np.ndarray:
    path, _, key = spec.partition(":") if spec.count(":") == 1 and not Path(spec).exists() else (spec, "", "")
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file")
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            if not key:
                raise InputError(f"{path} is an .npz; name the array as {path}:KEY (keys: {', '.join(z.files)})")
            if key not in z.files:
                raise InputError(f"{path} has no array {key!r} (keys: {', '.join(z.files)})")
            array = z[key]
    else:
        array = np.load(p, allow_pickle=False)
    return images.from_array(array).pixels


@click.command("eval")
@click.option("--model", "model_name", required=True, help="Shipped model name or model folder.")
@click.option("--data", "data_spec", required=True, help=".npy uint8 array (N,H,W[,C]), or FILE.npz:KEY.")
@click.option("--samples", type=int, default=100, show_default=True, help="Importance samples per image (0: skip).")
@click.option("--limit", type=int, default=None, help="Evaluate only the first N images.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--card", is_flag=True, help="Also store the figures as the model's card.json.")
@click.option("--threads", type=int, default=None, help="Torch CPU threads.")
def evaluate(model_name, data_spec, samples, limit, as_json, card, threads) -> None:
    """Negative ELBO, KL, reconstruction and importance-sampled NLL; the coding form's ELBO too."""
    from ..accounting import coding_neg_elbo
    from . import zoo
    from .evaluate import evaluate as run

    set_threads(threads)
    x = _load_eval_data(data_spec)[:limit]
    model = zoo.load(model_name)
    cfg = model.cfg
    if x.shape[1:3] != (cfg.height, cfg.width):
        raise InputError(f"model takes {cfg.height}x{cfg.width} images; data has {x.shape[1]}x{x.shape[2]}")
    tty = sys.stderr.isatty()
    bar, tick = progress(len(x), "float model", tty)
    t0 = time.time()
    result = run(model, x, is_samples=samples, progress=tick)
    bar.close()
    result["float_seconds"] = round(time.time() - t0, 1)
    directory = zoo.resolve(model_name)
    if (directory / "coding.json").is_file():
        bar, tick = progress(len(x), "coding model", tty)
        t0 = time.time()
        info = coding_neg_elbo(api.coding_model(str(directory)), api.as_tensor(x),
                               progress=tick)
        bar.close()
        result["coding_neg_elbo_bits_per_dim"] = float(info.total.mean() / cfg.dims)
        result["coding_neg_elbo_nats_per_image"] = float(info.total.mean() * math.log(2))
        result["coding_kl_bits_per_image"] = float(info.latents.mean())
        result["coding_seconds"] = round(time.time() - t0, 1)
    result["model"] = model_name
    result["data"] = data_spec
    if card:
        zoo.write_text_atomic(directory / zoo.CARD, json.dumps(result, indent=1) + "\n")
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"images                      {result['images']}")
    click.echo(f"negative ELBO (float)       {result['neg_elbo_nats_per_image']:.2f} nats/image  "
               f"{result['neg_elbo_bits_per_dim']:.4f} bits/dim")
    if "coding_neg_elbo_bits_per_dim" in result:
        click.echo(f"negative ELBO (coding form) {result['coding_neg_elbo_nats_per_image']:.2f} nats/image  "
                   f"{result['coding_neg_elbo_bits_per_dim']:.4f} bits/dim")
    click.echo(f"KL                          {result['kl_bits_per_image']:.2f} bits/image")
    click.echo(f"reconstruction              {result['recon_nats_per_image']:.2f} nats/image")
    if samples:
        click.echo(f"-log p(x), {samples} IS samples  {result['nll_is_nats_per_image']:.2f} nats/image  "
                   f"{result['nll_is_bits_per_dim']:.4f} bits/dim")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(as_json) -> None:
    """List the shipped models and their measured test figures."""
    from . import zoo

    rows = []
    for name in zoo.shipped_models():
        card = zoo.card(name)
        cfg = zoo.VLAEConfig.load(zoo.resolve(name) / zoo.CONFIG)
        size = f"any size x{cfg.channels}" if cfg.block else f"{cfg.height}x{cfg.width}x{cfg.channels}"
        rows.append({"name": name, "input": f"{size} {cfg.likelihood}",
                     **{k: card.get(k) for k in ("data", "images", "neg_elbo_bits_per_dim",
                                                 "coding_neg_elbo_bits_per_dim", "nll_is_bits_per_dim",
                                                 "kl_bits_per_image", "real_bits_per_dim", "jxl_bits_per_dim")}})
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("no shipped models")
    for r in rows:
        click.echo(f"{r['name']:10s} {r['input']:24s} {_card_figures(r)}")


def _card_figures(r: dict) -> str:
    """One line of a model card's test figures: a photo model's are real file sizes on whole
    photos, a fixed-size model's are its test set's ELBO."""
    if r["images"] is None:
        return "no test figures"
    if r["real_bits_per_dim"] is not None:
        return (f"{r['data']}: {r['real_bits_per_dim']:.4f} bits/dim in real files (coding -ELBO "
                f"{r['coding_neg_elbo_bits_per_dim']:.4f}; JPEG-XL {r['jxl_bits_per_dim']:.4f})")
    nll = "" if r["nll_is_bits_per_dim"] is None else f"IS NLL {r['nll_is_bits_per_dim']:.4f}, "
    return (f"test -ELBO {r['neg_elbo_bits_per_dim']:.4f} bits/dim (coding form "
            f"{r['coding_neg_elbo_bits_per_dim']:.4f}), {nll}"
            f"KL {r['kl_bits_per_image']:.1f} bits, on {r['images']} images")


COMMANDS = (train, convert, grow, evaluate, models)
