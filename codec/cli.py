"""The vlae-codec command line."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from . import api, baselines, container, images
from .errors import CodecError, InputError


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"vlae-codec: error: {message}", err=True)
    sys.exit(code)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


class _Group(click.Group):
    """Turns every expected failure into a one-line message and a non-zero exit."""

    def invoke(self, ctx):
        from .model import data, zoo

        # A polite kill (SIGTERM) unwinds like Ctrl-C, so half-written temporary files are removed.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            return super().invoke(ctx)
        except (CodecError, data.DataError, zoo.ModelNotFound) as e:
            _fail(str(e))
        except KeyboardInterrupt:
            _fail("interrupted; no output was written", 130)
        except OSError as e:  # the file system's refusals: permissions, a full disk, a name it cannot hold
            _fail(f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}")
        except MemoryError:
            _fail("out of memory; try a smaller --batch-size or fewer images per call", 3)


def _progress(total: int, desc: str, enabled: bool, unit: str = "img"):
    bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "px", disable=not enabled, leave=False)
    return bar, (lambda k: bar.update(k))


def _pixel_progress(imgs: images.Images, desc: str, enabled: bool):
    """A bar over pixel positions: big photos move it as steadily as big archives."""
    return _progress(int(np.prod(imgs.pixels.shape[:3])), desc, enabled, "px")


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vlae-codec")
def main() -> None:
    """Lossless and lossy image compression with a Variational Lossy Autoencoder and bits-back ANS.

    \b
    Try:  vlae-codec compress digit.png       (writes digit.vlae)
          vlae-codec decompress digit.vlae    (writes digit.png)
          vlae-codec measure digits.npy       (real bits/dim next to the ELBO and other codecs)
    """


# ------------------------------------------------------------------ model commands
@main.command()
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
@click.option("--epochs", type=int, default=None, help="Epochs in all (a resumed run may extend it) [default: 60].")
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
    from .model.train import TrainOptions, train as run

    _set_threads(threads)
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
        log = run(name, out, data_dir=data_dir, opts=TrainOptions(**given), resume=resume, device=device,
                  images=images, init=init)
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


@main.command()
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

    from .model import coding, data, zoo

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
    from .model.folder import CALIBRATION_SEED, ImageFolder

    crop = log["options"]["crop"]
    folder = ImageFolder.open(log["images"], log["config"]["channels"], crop)
    return folder.train_crops(max(1, calibration * 32 * 32 // crop**2), np.random.default_rng(CALIBRATION_SEED))


@main.command()
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

    from .model import grow as grow_mod
    from .model.config import VLAEConfig

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


@main.command("eval")
@click.option("--model", "model_name", required=True, help="Shipped model name or model folder.")
@click.option("--data", "data_spec", required=True, help=".npy uint8 array (N,H,W[,C]), or FILE.npz:KEY.")
@click.option("--samples", type=int, default=100, show_default=True, help="Importance samples per image (0: skip).")
@click.option("--limit", type=int, default=None, help="Evaluate only the first N images.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--card", is_flag=True, help="Also store the figures as the model's card.json.")
@click.option("--threads", type=int, default=None, help="Torch CPU threads.")
def evaluate(model_name, data_spec, samples, limit, as_json, card, threads) -> None:
    """Negative ELBO, KL, reconstruction and importance-sampled NLL; the coding form's ELBO too."""
    from .accounting import coding_neg_elbo
    from .model import zoo
    from .model.evaluate import evaluate as run

    _set_threads(threads)
    x = _load_eval_data(data_spec)[:limit]
    model = zoo.load(model_name)
    cfg = model.cfg
    if x.shape[1:3] != (cfg.height, cfg.width):
        raise InputError(f"model takes {cfg.height}x{cfg.width} images; data has {x.shape[1]}x{x.shape[2]}")
    tty = sys.stderr.isatty()
    bar, tick = _progress(len(x), "float model", tty)
    t0 = time.time()
    result = run(model, x, is_samples=samples, progress=tick)
    bar.close()
    result["float_seconds"] = round(time.time() - t0, 1)
    directory = zoo.resolve(model_name)
    if (directory / "coding.json").is_file():
        bar, tick = _progress(len(x), "coding model", tty)
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


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(as_json) -> None:
    """List the shipped models and their measured test figures."""
    from .model import zoo

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


# ------------------------------------------------------------------ codec commands
_batch_option = click.option("--batch-size", type=int, default=api.DEFAULT_BATCH, show_default=True,
                             help="Images per network evaluation (memory vs speed; files are the same).")
_device_option = click.option("--device", default=None,
                              help="Torch device for the networks: cpu, cuda or cuda:N (speed only; files are "
                                   "the same on any) [default: cpu].")


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.option("-o", "--output", type=click.Path(), default=None, help="Output file [default: INPUT with .vlae].")
@click.option("--model", default=None, help="Model name or folder [default: chosen from the input].")
@click.option("--lossy", is_flag=True, help="Keep only the global code; decompression generates the image.")
@click.option("--seed", type=int, default=None,
              help="Lossy: sample pixels with this seed instead of taking each pixel's mean.")
@click.option("--effort", type=click.IntRange(1, api.MAX_EFFORT), default=api.DEFAULT_EFFORT, show_default=True,
              help="Lossy: codes tried per image; the closest reconstruction is kept (time grows with it).")
@click.option("--offsets/--no-offsets", default=True, show_default=True,
              help="Lossless: fit the pixel distributions to the input and store the fit in the file (a few "
                   "seconds; kept only where it saves bytes).")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: the file's size next to the coding "
                                                      "model's -ELBO of what it codes.")
@click.option("--shard-size", type=click.IntRange(1), default=None,
              help="Write independent archives of at most this many images, and an index, into a folder "
                   "[default OUTPUT: INPUT with .shards].")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="With --shard-size: processes compressing shards at once [default: CPU cores].")
@_batch_option
@_device_option
@click.option("--threads", type=int, default=None, help="Torch CPU threads.")
def compress(input_path, output, model, lossy, seed, effort, offsets, force, as_json, shard_size, workers,
             batch_size, device, threads) -> None:
    """Compress an image (PNG, TIFF, BMP, PPM/PGM, WebP, JPEG; any mode: 1-bit, greyscale, RGB, with
    alpha, palette, 16-bit), a folder of PNGs, or an .npy array (N,H,W[,C]) into one .vlae file
    (or, with --shard-size, into a folder of independent archives)."""
    _set_threads(threads)
    api.check_device(device)
    if shard_size is not None:
        _compress_shards(Path(input_path), output, model, lossy, seed, effort, offsets, force, shard_size, workers,
                         batch_size, device)
        return
    out = Path(output) if output else api.default_output(Path(input_path), True)
    images.refuse_overwrite(out, force)
    imgs = images.read(input_path)
    if imgs.format == "JPEG":
        click.echo("vlae-codec: note: a JPEG is coded as its decoded pixels: the result is lossless for the "
                   "pixels, not for the JPEG file", err=True)
    bar, tick = _pixel_progress(imgs, "compress", sys.stderr.isatty() and imgs.pixels.size > 100_000)
    encoded = api.encode(imgs, model=model, lossy=lossy, seed=seed, batch=batch_size, progress=tick,
                         effort=effort, device=device, offsets=offsets)
    bar.close()
    api.write_file(encoded.data, out, force)
    size, dims = out.stat().st_size, imgs.pixels.size
    header, words = container.unpack(encoded.data)
    result = {"output": str(out), "model": header.model_id, "mode": header.mode, "images": len(imgs.pixels),
              "subpixels": int(dims), "bytes": size, "header_bytes": size - 4 * len(words),
              "bits_per_dim": 8 * size / dims,
              "neg_elbo_bits_per_dim": None if encoded.info is None else float(encoded.info.total.sum() / dims)}
    if as_json:
        click.echo(json.dumps(result))
        return
    elbo = "" if result["neg_elbo_bits_per_dim"] is None else (
        f" (the coding model's -ELBO: {result['neg_elbo_bits_per_dim']:.4f} bits/dim)")
    click.echo(f"{out}: {size} bytes, {len(imgs.pixels)} image(s), {8 * size / dims:.4f} bits/dim{elbo}")


def _compress_shards(src: Path, output, model, lossy, seed, effort, offsets, force, shard_size, workers,
                     batch_size, device) -> None:
    from . import shards

    out = Path(output) if output else src.with_name(src.name.rstrip("/")).with_suffix(".shards")
    images.refuse_overwrite(out, force)
    imgs = images.read(src)
    workers = workers or os.cpu_count() or 1
    index = shards.compress(imgs, out, shard_size, workers, force, model=model, lossy=lossy, seed=seed,
                            effort=effort, batch=batch_size, device=device, offsets=offsets)
    size = sum(s.bytes for s in index.shards)
    click.echo(f"{out}: {len(index.shards)} shard(s), {size} bytes, {index.images} image(s), "
               f"{8 * size / imgs.pixels.size:.4f} bits/dim")


def _decompress_shards(folder: Path, output, shard, image, force, kwargs) -> Path:
    from . import shards

    index = shards.read_index(folder)
    if image is not None:
        k, position = index.locate(image)
        name = index.shards[k].names[position] if index.shards[k].names else f"image-{index.shards[k].first + position}.png"
        out = Path(output) if output else folder.parent / name
        images.refuse_overwrite(out, force)
        one = shards.decode_shard(index, k, **kwargs)[position]
        images.write(one[None], index.binary, "single", [], out, force)
        return out
    if shard is not None:
        picked = [shard]
        default = folder.with_name(f"{folder.stem}-shard{shard}")
    else:
        picked = list(range(len(index.shards)))
        default = folder.with_suffix("")
    named = index.layout == "named"
    out = Path(output) if output else (default if named else default.with_suffix(".npy"))
    if not named:
        images.refuse_overwrite(out, force)
    pixels = shards.decode_shards(index, picked, os.cpu_count() or 1, **kwargs)
    names = [n for k in picked for n in index.shards[k].names]
    images.write(pixels, index.binary, index.layout, names, out, force)
    return out


@main.command()
@click.argument("file", type=click.Path())
@click.option("-o", "--output", type=click.Path(), default=None,
              help="Output image (its extension picks PNG, TIFF, BMP, PPM/PGM or lossless WebP), folder or .npy "
                   "[default: from FILE, images as PNG].")
@click.option("--model", default=None, help="Model folder, for files made with an unshipped model.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--shard", type=click.IntRange(0), default=None,
              help="For a sharded folder: restore only this shard (reads no other).")
@click.option("--image", default=None,
              help="For a sharded folder: restore only this image, by name or number (reads only its shard).")
@_batch_option
@_device_option
@click.option("--threads", type=int, default=None, help="Torch CPU threads.")
def decompress(file, output, model, force, shard, image, batch_size, device, threads) -> None:
    """Decompress a .vlae file to the PNG(s) or .npy array it was made from, or a sharded
    folder (from compress --shard-size) to all, one shard, or one image of its images."""
    _set_threads(threads)
    api.check_device(device)
    if Path(file).is_dir() or Path(file).name == "index.json":
        folder = Path(file) if Path(file).is_dir() else Path(file).parent
        kwargs = dict(model=model, batch=batch_size, device=device)
        click.echo(f"{_decompress_shards(folder, output, shard, image, force, kwargs)}")
        return
    if shard is not None or image is not None:
        raise InputError("--shard and --image apply to a sharded folder (made by compress --shard-size)")
    try:
        header, _ = container.unpack(Path(file).read_bytes())
    except OSError as e:
        raise InputError(f"{file}: cannot read ({e.strerror})") from None
    total = header.count * header.height * header.width
    bar, tick = _progress(total, "decompress", sys.stderr.isatty() and total > 100_000, "px")
    out = api.decompress_file(file, output, force=force, model=model, batch=batch_size, progress=tick,
                              device=device)
    bar.close()
    click.echo(f"{out}")


@main.command()
@click.argument("file", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(file, as_json) -> None:
    """Show what a .vlae file holds, without decoding it."""
    try:
        data = Path(file).read_bytes()
    except OSError as e:
        raise InputError(f"{file}: cannot read ({e.strerror})") from None
    header, words = container.unpack(data)
    d = {"file": file, "bytes": len(data), "format_version": header.version, "mode": header.mode,
         "model": header.model_id, "model_hash": header.model_hash.hex(), "images": header.count,
         "height": header.height, "width": header.width, "channels": header.channels,
         "bit_depth": header.bit_depth, "layout": header.layout, "chunk_max": header.chunk_max,
         "payload_bytes": 4 * len(words), "header_bytes": len(data) - 4 * len(words),
         "bits_per_dim": 8 * len(data) / max(1, header.count * header.height * header.width * header.channels)}
    if header.mode == "lossless":
        d["pixel_offsets"] = len(header.offsets)
        d["clean_shift"] = header.clean_shift
    if header.mode == "lossy":
        d["generation"] = "each pixel's mean" if header.seed is None else f"sampled, seed {header.seed}"
    if as_json:
        click.echo(json.dumps(d))
        return
    for k, v in d.items():
        click.echo(f"{k:15s} {v:.4f}" if isinstance(v, float) else f"{k:15s} {v}")


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.option("--model", default=None, help="Model name or folder [default: chosen from the input].")
@click.option("--lossy", is_flag=True, help="Measure the lossy mode.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--no-baselines", is_flag=True, help="Skip PNG/WebP/JPEG-XL sizes.")
@click.option("--shard-size", type=click.IntRange(1), default=None,
              help="Measure sharded compression: archives of at most this many images, each with its clean start.")
@click.option("--workers", type=click.IntRange(1), default=None, help="With --shard-size: processes [default: CPU cores].")
@_batch_option
@click.option("--threads", type=int, default=None, help="Torch CPU threads.")
def measure(input_path, model, lossy, as_json, no_baselines, shard_size, workers, batch_size, threads) -> None:
    """Compress, decompress and verify; real bits/dim next to the ELBO and other codecs."""
    _set_threads(threads)
    imgs = images.read(input_path)
    name = model or api.choose_model(imgs)
    dims = imgs.pixels.size
    result = {"input": str(input_path), "model": name, "mode": "lossy" if lossy else "lossless",
              "images": len(imgs.pixels), "subpixels": int(dims)}
    if shard_size is None:
        result.update(_measure_archive(imgs, name, lossy, batch_size))
    else:
        result.update(_measure_shards(imgs, name, lossy, batch_size, shard_size, workers or os.cpu_count() or 1))
    result["real_bits_per_dim"] = 8 * result["bytes"] / dims
    if result.get("neg_elbo_bits_per_dim"):
        result["real_over_neg_elbo"] = result["real_bits_per_dim"] / result["neg_elbo_bits_per_dim"]
    if not no_baselines:
        sizes = baselines.sizes(imgs.pixels, imgs.binary)
        result.update({f"{k}_bits_per_dim": (None if v is None else 8 * v / dims) for k, v in sizes.items()})
    if as_json:
        click.echo(json.dumps(result))
    else:
        for k, v in result.items():
            if isinstance(v, list):
                v = ", ".join(f"{e:.1f}" if isinstance(e, float) else str(e) for e in v)
            click.echo(f"{k:24s} {v:.4f}" if isinstance(v, float) else f"{k:24s} {v}")
    if not lossy and not result["roundtrip_ok"]:
        _fail("round trip FAILED: decoded pixels differ from the input", 1)


def _measure_archive(imgs: images.Images, name: str, lossy: bool, batch_size: int) -> dict:
    """One archive: its size, times, round trip and information content."""
    tty = sys.stderr.isatty()
    bar, tick = _pixel_progress(imgs, "compress", tty)
    t0 = time.time()
    encoded = api.encode(imgs, model=name, lossy=lossy, batch=batch_size, progress=tick)
    data = encoded.data
    t_c = time.time() - t0
    bar.close()
    bar, tick = _pixel_progress(imgs, "decompress", tty)
    t0 = time.time()
    decoded = api.decode(data, model=name, batch=batch_size, progress=tick)
    t_d = time.time() - t0
    bar.close()
    out = decoded.images[None] if imgs.layout == "single" else decoded.images
    header, words = container.unpack(data)
    result = {"bytes": len(data), "header_bytes": len(data) - 4 * len(words),
              "compress_seconds": round(t_c, 3), "decompress_seconds": round(t_d, 3),
              "roundtrip_ok": bool(np.array_equal(out, imgs.full())) if not lossy else None,
              "neg_elbo_bits_per_dim": None}
    if encoded.info is not None:
        # The information content of what was coded, on the z actually drawn: its mean is the
        # coding model's negative ELBO (the first image, the clean start, has no bits back).
        result["neg_elbo_bits_per_dim"] = float(encoded.info.total.sum() / imgs.pixels.size)
        result["clean_start_bits"] = float(encoded.info.total[0])
    return result


def _measure_shards(imgs: images.Images, name: str, lossy: bool, batch_size: int, shard_size: int,
                    workers: int) -> dict:
    """Independent archives of at most `shard_size` images: total size, each one's clean start, times."""
    import tempfile

    from . import shards

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        index = shards.compress(imgs, Path(tmp) / "shards", shard_size, workers, model=name, lossy=lossy,
                                batch=batch_size)
        t_c = time.time() - t0
        t0 = time.time()
        out = shards.decode_shards(index, list(range(len(index.shards))), workers, model=name, batch=batch_size)
        t_d = time.time() - t0
    return {"shards": len(index.shards), "workers": workers, "bytes": sum(s.bytes for s in index.shards),
            "shard_bytes": [s.bytes for s in index.shards],
            "clean_start_bits_per_shard": [s.clean_start_bits for s in index.shards] if not lossy else None,
            "compress_seconds": round(t_c, 3), "decompress_seconds": round(t_d, 3),
            "roundtrip_ok": bool(np.array_equal(out, imgs.pixels)) if not lossy else None}


if __name__ == "__main__":
    main()
